//! `"` is not allowed in a scope.
use scopegate::requires_scope;

#[requires_scope("read:\"appointments\"")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
