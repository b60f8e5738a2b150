//! An empty scope is not an RFC 6749 scope token.
use scopegate::requires_scope;

#[requires_scope("")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
