//! An empty `any()` can never be satisfied.
use scopegate::requires_scope;

#[requires_scope(any())]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
