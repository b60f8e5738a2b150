//! `#[axum::debug_handler]` *above* `#[requires_scope]` would check the handler before the
//! guard is added (its checks would call the guarded handler with one argument too few,
//! rustc's E0061). The attribute sees it above and says to put it below, the one error
//! (see `ui/pass/debug_handler.rs`).
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
