//! `aud = "…"` overrides the Authority's audience for this handler.
use axum::{Router, routing::get};
use scopegate::__private::Requirement;
use scopegate::{Authority, requires_scope};

#[requires_scope("reports:read", aud = "https://reports.example.test")]
async fn reports() -> &'static str {
    "[]"
}

fn app(authority: Authority) -> Router {
    Router::new().route("/reports", get(reports)).with_state(authority)
}

fn main() {
    let _ = app;
    assert_eq!(__scopegate_requirement_reports::AUDIENCE, Some("https://reports.example.test"));
}
