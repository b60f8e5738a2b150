//! `aud` given twice.
use scopegate::requires_scope;

#[requires_scope("read", aud = "https://a.example.test", aud = "https://b.example.test")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
