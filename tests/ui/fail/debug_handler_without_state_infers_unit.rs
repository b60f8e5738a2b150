//! Plain `#[axum::debug_handler]` (no `state = …`) on a handler without a `State<…>`
//! argument checks it against the state `()`, whatever the router's: `()` cannot supply
//! the `Authority`, and the error says to name the router's state with `state = …`.
use axum::{Router, extract::FromRef, routing::get};
use scopegate::{Authority, requires_scope};

#[derive(Clone, FromRef)]
struct AppState {
    authority: Authority,
}

#[requires_scope("read:appointments")]
#[axum::debug_handler]
async fn list() -> &'static str {
    "[]"
}

fn app(state: AppState) -> Router {
    Router::new().route("/appointments", get(list)).with_state(state)
}

fn main() {
    let _ = app;
}
