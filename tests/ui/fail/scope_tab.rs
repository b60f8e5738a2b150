//! A tab is a control character, not allowed in a scope.
use scopegate::requires_scope;

#[requires_scope("read\tappointments")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
