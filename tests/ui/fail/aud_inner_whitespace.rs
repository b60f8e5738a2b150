//! An audience with whitespace inside.
use scopegate::requires_scope;

#[requires_scope("read", aud = "my api")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
