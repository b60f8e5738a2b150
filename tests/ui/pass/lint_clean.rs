//! The expansion adds no warning to a crate that denies them, including the lints a
//! library typically turns on; the generated items are as visible as the handler.
#![deny(warnings, unreachable_pub, missing_docs, missing_debug_implementations, unused_qualifications)]
#![deny(rust_2018_idioms, non_camel_case_types, private_interfaces, private_bounds, unused)]
#![deny(clippy::all, clippy::pedantic)]

//! Crate docs.

use axum::{Router, routing::get};
use scopegate::{Authority, requires_scope};

/// Public handlers.
pub mod handlers {
    use scopegate::requires_scope;

    /// A public handler.
    #[requires_scope("read:appointments", aud = "https://api.example.test")]
    pub async fn list() -> &'static str {
        "[]"
    }
}

mod private {
    use scopegate::requires_scope;

    #[requires_scope(any("a", "b"))]
    pub(crate) async fn crate_visible() {}

    #[requires_scope("c")]
    pub(super) async fn super_visible() {}
}

#[requires_scope("d")]
async fn private_handler() {}

/// The application.
pub fn app(authority: Authority) -> Router {
    Router::new()
        .route("/a", get(handlers::list))
        .route("/b", get(private::crate_visible))
        .route("/c", get(private::super_visible))
        .route("/d", get(private_handler))
        .with_state(authority)
}

fn main() {
    let _ = app;
}
