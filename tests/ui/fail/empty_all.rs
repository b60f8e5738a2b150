//! An empty `all()` requires nothing.
use scopegate::requires_scope;

#[requires_scope("read", all())]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
