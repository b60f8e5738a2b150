//! `iss = "…"` requires one of the Authority's issuers for this handler; without it, any.
use axum::{Router, routing::get};
use scopegate::__private::Requirement;
use scopegate::{Authority, requires_scope};

#[requires_scope("staff:read", iss = "https://login.example.test/staff/v2.0")]
async fn staff() -> &'static str {
    "[]"
}

#[requires_scope("staff:read", aud = "https://api.example.test", iss = "http://127.0.0.1:8080/realms/dev")]
async fn dev() -> &'static str {
    "[]"
}

#[requires_scope("read")]
async fn anyone() -> &'static str {
    "[]"
}

fn app(authority: Authority) -> Router {
    Router::new().route("/staff", get(staff)).route("/dev", get(dev)).route("/", get(anyone)).with_state(authority)
}

fn main() {
    let _ = app;
    assert_eq!(__scopegate_requirement_staff::ISSUER, Some("https://login.example.test/staff/v2.0"));
    assert_eq!(__scopegate_requirement_dev::ISSUER, Some("http://127.0.0.1:8080/realms/dev"));
    assert_eq!(__scopegate_requirement_anyone::ISSUER, None);
}
