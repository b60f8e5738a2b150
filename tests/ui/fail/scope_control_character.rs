//! Control characters (here DEL) are not allowed in a scope.
use scopegate::requires_scope;

#[requires_scope("read:appointments\u{7f}")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
