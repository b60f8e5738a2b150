//! A near miss of `crate` gets a suggestion.
use scopegate::requires_scope;

#[requires_scope("read", krate = "scopegate")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
