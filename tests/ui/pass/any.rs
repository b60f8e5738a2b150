//! `any(…)`: one of the alternatives suffices; the challenge names the first one.
use axum::{Router, routing::get};
use scopegate::__private::Requirement;
use scopegate::{Authority, requires_scope};

#[requires_scope(any("admin", "read:appointments"))]
async fn list() -> &'static str {
    "[]"
}

fn app(authority: Authority) -> Router {
    Router::new().route("/appointments", get(list)).with_state(authority)
}

fn main() {
    let _ = app;
    type R = __scopegate_requirement_list;
    assert_eq!(R::SCOPES.to_string(), r#"all(any("admin", "read:appointments"))"#);
    assert_eq!(R::CHALLENGE, "admin");
}
