//! A guarded handler under a state that cannot supply the `Authority`: scopegate's
//! routing functions report it at the route with scopegate's message (the `FromRef` to
//! write), without `#[axum::debug_handler]`, and it is the only error reported.
use axum::Router;
use scopegate::{requires_scope, routing::get};

#[derive(Clone)]
struct AppState;

#[requires_scope("read:appointments")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _app: Router = Router::new().route("/", get(list)).with_state(AppState);
}
