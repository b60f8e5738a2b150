//! An attribute without any scope protects nothing.
use scopegate::requires_scope;

#[requires_scope]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
