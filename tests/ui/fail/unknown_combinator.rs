//! Only `any` and `all` combine scopes.
use scopegate::requires_scope;

#[requires_scope(one_of("read", "write"))]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
