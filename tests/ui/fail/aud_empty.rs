//! An empty audience.
use scopegate::requires_scope;

#[requires_scope("read", aud = "")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
