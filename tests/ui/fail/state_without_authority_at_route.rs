//! The same mistake without `#[axum::debug_handler]`: axum reports that the handler is
//! not a `Handler`, and its note points to `#[axum::debug_handler]` (which gives the
//! message of `state_without_authority.rs`). Kept to notice if rustc or axum improve.
use axum::{Router, routing::get};
use scopegate::requires_scope;

#[derive(Clone)]
struct AppState;

#[requires_scope("read:appointments")]
async fn list() -> &'static str {
    "[]"
}

fn main() {
    let _app: Router = Router::new().route("/", get(list)).with_state(AppState);
}
