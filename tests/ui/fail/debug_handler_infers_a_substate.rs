//! Plain `#[axum::debug_handler]` infers the state from the handler's `State<…>` argument:
//! here `String`, a substate of the router's `AppState`, which cannot supply the
//! `Authority`. The error says to name the router's state with `state = …`.
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
#[axum::debug_handler]
async fn list(State(name): State<String>) -> String {
    name
}

fn app(state: AppState) -> Router {
    Router::new().route("/appointments", get(list)).with_state(state)
}

fn main() {
    let _ = app;
}
