//! An unknown option lists the known ones.
use scopegate::requires_scope;

#[requires_scope("read", realm = "api")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
