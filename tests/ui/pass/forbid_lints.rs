//! The expansion carries no `#[allow]`, which a crate that forbids a lint would reject
//! (E0453), and still adds no warning: generated names are spanned at the attribute.
#![forbid(dead_code, non_camel_case_types, warnings)]

use axum::{Router, routing::get};
use scopegate::{Authority, requires_scope};

#[requires_scope("read:appointments")]
async fn list() -> &'static str {
    "[]"
}

fn app(authority: Authority) -> Router {
    Router::new().route("/appointments", get(list)).with_state(authority)
}

fn main() {
    let _ = app;
}
