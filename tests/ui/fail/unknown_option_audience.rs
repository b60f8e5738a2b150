//! A near miss of `aud` gets a suggestion.
use scopegate::requires_scope;

#[requires_scope("read", audience = "https://api.example.test")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
