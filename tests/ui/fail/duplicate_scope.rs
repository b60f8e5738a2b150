//! A scope named twice.
use scopegate::requires_scope;

#[requires_scope("read", "write", "read")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
