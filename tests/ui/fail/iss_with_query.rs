//! An issuer identifier has no query or fragment.
use scopegate::requires_scope;

#[requires_scope("read", iss = "https://issuer.example.test/?tenant=a")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
