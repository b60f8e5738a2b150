//! `iss` names its host: a URL without one identifies no issuer.
use scopegate::requires_scope;

#[requires_scope("read", iss = "https:///realms/clinic")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
