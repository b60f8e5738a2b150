//! One requirement per handler: two attributes are combined into one.
use scopegate::requires_scope;

#[requires_scope("read:appointments")]
#[requires_scope("read:patients")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
