//! Options alone are no requirement.
use scopegate::requires_scope;

#[requires_scope(aud = "https://api.example.test")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
