//! `#[axum::debug_handler]` below `#[requires_scope]` checks the guarded handler,
//! guard included, against the router state.
use axum::{
    Router,
    extract::{FromRef, State},
    routing::get,
};
use scopegate::{Authority, requires_scope};

#[derive(Clone, FromRef)]
struct AppState {
    authority: Authority,
    name: String,
}

#[requires_scope("read:appointments")]
#[axum::debug_handler(state = AppState)]
async fn list(State(name): State<String>) -> String {
    name
}

fn app(state: AppState) -> Router {
    Router::new().route("/appointments", get(list)).with_state(state)
}

fn main() {
    let _ = app;
}
