//! Options go at the top level.
use scopegate::requires_scope;

#[requires_scope(any("read", aud = "https://api.example.test"))]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
