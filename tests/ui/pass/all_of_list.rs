//! A top-level list requires every scope.
use axum::{Router, routing::get};
use scopegate::__private::Requirement;
use scopegate::{Authority, requires_scope};

#[requires_scope("read:appointments", "read:patients", r"read:notes")]
async fn list() -> &'static str {
    "[]"
}

fn app(authority: Authority) -> Router {
    Router::new().route("/appointments", get(list)).with_state(authority)
}

fn main() {
    let _ = app;
    type R = __scopegate_requirement_list;
    assert_eq!(R::SCOPES.to_string(), r#"all("read:appointments", "read:patients", "read:notes")"#);
    assert_eq!(R::CHALLENGE, "read:appointments read:patients read:notes");
}
