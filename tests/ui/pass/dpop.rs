//! `dpop = "required"` and `dpop = "allowed"`, alone and with the other options.
use axum::{Router, routing::get};
use scopegate::{AccessToken, Authority, requires_scope};

#[requires_scope("payments:write", dpop = "required")]
async fn pay(token: AccessToken) -> String {
    token.subject().to_owned()
}

#[requires_scope(any("admin", "payments:read"), introspect, dpop = "allowed", aud = "https://payments.example.test",)]
async fn history() -> &'static str {
    "[]"
}

fn app(authority: Authority) -> Router {
    Router::new().route("/pay", get(pay)).route("/history", get(history)).with_state(authority)
}

fn main() {
    let _ = app;
}
