//! An unused guarded handler is still dead code, and reported as such (only the
//! handler: the generated requirement type is not the user's to remove).
#![deny(dead_code)]

use scopegate::requires_scope;

#[requires_scope("read:appointments")]
async fn list() -> &'static str {
    "[]"
}

fn main() {}
