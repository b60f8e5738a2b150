//! Scopes are written inline: constants are not supported.
use scopegate::requires_scope;

#[allow(dead_code)]
const READ: &str = "read";

#[requires_scope(READ)]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
