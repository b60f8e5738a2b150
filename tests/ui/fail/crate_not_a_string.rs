//! `crate` takes the path as a string.
use scopegate::requires_scope;

#[requires_scope("read", crate = scopegate)]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
