//! A router state that cannot supply the `Authority`: with `#[axum::debug_handler]` below
//! `#[requires_scope]`, the error is scopegate's, naming the `FromRef` impl to write.
use axum::{Router, extract::State, routing::get};
use scopegate::requires_scope;

#[derive(Clone)]
struct AppState {
    name: String,
}

#[requires_scope("read:appointments")]
#[axum::debug_handler(state = AppState)]
async fn list(State(state): State<AppState>) -> String {
    state.name
}

fn main() {
    let _app: Router = Router::new().route("/", get(list)).with_state(AppState { name: String::new() });
}
