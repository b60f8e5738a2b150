//! Fifteen extractors fit: with the guard, axum's handler gets its maximum of sixteen.
use axum::{
    Router,
    http::{HeaderMap, Method, Uri, Version},
    routing::post,
};
use scopegate::{Authority, requires_scope};

#[requires_scope("write:appointments")]
#[allow(clippy::too_many_arguments)]
async fn create(
    _: Method,
    _: Uri,
    _: Version,
    _: HeaderMap,
    _: Method,
    _: Uri,
    _: Version,
    _: HeaderMap,
    _: Method,
    _: Uri,
    _: Version,
    _: HeaderMap,
    _: Method,
    _: Uri,
    _: String,
) -> &'static str {
    "created"
}

fn app(authority: Authority) -> Router {
    Router::new().route("/appointments", post(create)).with_state(authority)
}

fn main() {
    let _ = app;
}
