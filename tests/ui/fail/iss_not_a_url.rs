//! `iss` is the issuer's identifier, an absolute URL: a bare host is not one.
use scopegate::requires_scope;

#[requires_scope("read", iss = "issuer.example.test")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
