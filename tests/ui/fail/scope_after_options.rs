//! Scopes come first, then options.
use scopegate::requires_scope;

#[requires_scope("read", aud = "https://api.example.test", "write")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
