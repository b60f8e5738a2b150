//! A space separates scopes; it cannot be inside one.
use scopegate::requires_scope;

#[requires_scope("read appointments")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
