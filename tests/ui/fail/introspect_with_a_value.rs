//! `introspect` is a flag: `introspect = true` is refused with the way to write it.
use scopegate::requires_scope;

#[requires_scope("payments:write", introspect = true)]
async fn pay() -> &'static str {
    "paid"
}

fn main() {
    let _ = pay;
}
