//! An audience with trailing whitespace.
use scopegate::requires_scope;

#[requires_scope("read", aud = "https://api.example.test\n")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
