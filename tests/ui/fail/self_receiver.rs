//! A method cannot be a guarded handler: `self` is not an extractor.
use scopegate::requires_scope;

struct Api;

impl Api {
    #[requires_scope("read")]
    async fn list(&self) -> &'static str {
        "[]"
    }
}

fn main() {
    let _ = Api::list;
}
