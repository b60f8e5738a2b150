//! `crate` given twice.
use scopegate::requires_scope;

#[requires_scope("read", crate = "::scopegate", crate = "::scopegate")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
