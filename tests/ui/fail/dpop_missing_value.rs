//! `dpop` is not a flag: a bare `dpop` is refused with the two values it takes.
use scopegate::requires_scope;

#[requires_scope("payments:write", dpop)]
async fn pay() -> &'static str {
    "paid"
}

fn main() {
    let _ = pay;
}
