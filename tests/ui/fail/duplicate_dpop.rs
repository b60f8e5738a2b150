//! `dpop = …` is given at most once; the second is refused at its key.
use scopegate::requires_scope;

#[requires_scope("payments:write", dpop = "required", dpop = "allowed")]
async fn pay() -> &'static str {
    "paid"
}

fn main() {
    let _ = pay;
}
