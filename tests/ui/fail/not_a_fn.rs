//! The attribute goes on handlers only.
use scopegate::requires_scope;

#[requires_scope("read")]
struct List;

fn main() {
    let _ = List;
}
