//! A wrong `crate` path is reported at the literal.
use scopegate::requires_scope;

#[requires_scope("read", crate = "scopegate_renamed")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
