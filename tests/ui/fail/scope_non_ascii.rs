//! Scopes are ASCII.
use scopegate::requires_scope;

#[requires_scope("lire:rendez-vous-médicaux")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
