//! `iss` is a string literal: constants are not supported.
use scopegate::requires_scope;

#[allow(dead_code)]
const ISSUER: &str = "https://issuer.example.test/";

#[requires_scope("read", iss = ISSUER)]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
