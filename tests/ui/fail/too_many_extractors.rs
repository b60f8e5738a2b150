//! Axum handlers take at most 16 arguments and the guard is one of them.
use axum::http::{HeaderMap, Method, Uri, Version};
use scopegate::requires_scope;

#[requires_scope("write:appointments")]
#[allow(clippy::too_many_arguments)]
async fn list(
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
    _: Version,
    _: String,
) -> &'static str {
    "[]"
}

fn main() {
    let _ = list;
}
