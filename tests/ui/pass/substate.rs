//! The Authority can come from a larger state through `FromRef`, next to the handler's own
//! `State<…>` of another part of the state, and the handler can take `AccessToken` too.
use axum::{
    Router,
    extract::{FromRef, State},
    routing::get,
};
use scopegate::{AccessToken, Authority, requires_scope};

#[derive(Clone)]
struct Db;

#[derive(Clone, FromRef)]
struct AppState {
    authority: Authority,
    db: Db,
}

#[requires_scope("read:appointments")]
async fn list(State(_db): State<Db>, token: AccessToken) -> String {
    token.subject().to_owned()
}

fn app(state: AppState) -> Router {
    Router::new().route("/appointments", get(list)).with_state(state)
}

fn main() {
    let _ = app;
}
