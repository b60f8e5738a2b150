//! `aud` is a string literal: constants are not supported.
use scopegate::requires_scope;

#[allow(dead_code)]
const AUDIENCE: &str = "https://api.example.test";

#[requires_scope("read", aud = AUDIENCE)]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
