//! A scope is a string literal, not a bare path.
use scopegate::requires_scope;

#[requires_scope(read:appointments)]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
