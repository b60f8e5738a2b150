//! Each bad scope is its own error, at its own literal.
use scopegate::requires_scope;

#[requires_scope("read appointments", "ok", "", any("é", "fine"))]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
