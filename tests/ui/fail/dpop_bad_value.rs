//! `dpop` takes `"required"` or `"allowed"`, exactly: another value is refused at the
//! literal, naming both.
use scopegate::requires_scope;

#[requires_scope("payments:write", dpop = "mandatory")]
async fn pay() -> &'static str {
    "paid"
}

fn main() {
    let _ = pay;
}
