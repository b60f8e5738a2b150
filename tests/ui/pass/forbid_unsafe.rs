//! The declaration the attribute registers (a link-time inventory entry) compiles in a
//! crate that forbids `unsafe` code, and is found at run time.
#![forbid(unsafe_code)]

use axum::{Router, routing::get};
use scopegate::{Authority, requires_scope};

#[requires_scope("read:appointments", aud = "https://reports.example.test")]
async fn list() -> &'static str {
    "[]"
}

fn app(authority: Authority) -> Router {
    Router::new().route("/appointments", get(list)).with_state(authority)
}

fn main() {
    let _ = app;
    let declaration = scopegate::policy::declarations().find(|d| d.handler().ends_with("::list"));
    assert!(declaration.is_some_and(|d| d.audience() == Some("https://reports.example.test")));
}
