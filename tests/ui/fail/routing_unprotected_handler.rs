//! Under scopegate's router a handler that is neither `#[requires_scope]`, nor takes
//! `AccessToken`/`UserInfo` first, nor is wrapped in `public(…)` does not compile, and the
//! message names the three fixes.
use axum::Router;
use scopegate::{Authority, routing::get};

async fn export() -> &'static str {
    "every appointment of every patient"
}

fn main() {
    let _app = |authority: Authority| -> Router { Router::new().route("/export", get(export)).with_state(authority) };
}
