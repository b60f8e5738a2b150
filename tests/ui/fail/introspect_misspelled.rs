//! A misspelled `introspect` is an unknown option with a suggestion, not a scope
//! without quotes.
use scopegate::requires_scope;

#[requires_scope("payments:write", introspekt)]
async fn pay() -> &'static str {
    "paid"
}

fn main() {
    let _ = pay;
}
