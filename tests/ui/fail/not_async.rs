//! Handlers are async.
use scopegate::requires_scope;

#[requires_scope("read")]
fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
