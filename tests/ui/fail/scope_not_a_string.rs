//! A scope is a string literal, not a number.
use scopegate::requires_scope;

#[requires_scope(1)]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
