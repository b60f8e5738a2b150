//! A scope named twice, in different branches.
use scopegate::requires_scope;

#[requires_scope(any("admin", all("write", "admin")))]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
