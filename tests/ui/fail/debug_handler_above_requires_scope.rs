//! `#[axum::debug_handler]` *above* `#[requires_scope]` checks the handler before the guard
//! is added, so its checks call the guarded handler with one argument too few. The macro
//! docs say to put `debug_handler` below (see `ui/pass/debug_handler.rs`).
use axum::{Router, routing::get};
use scopegate::{Authority, requires_scope};

#[axum::debug_handler(state = Authority)]
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
