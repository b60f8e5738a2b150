//! An audience with leading whitespace.
use scopegate::requires_scope;

#[requires_scope("read", aud = " https://api.example.test")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
