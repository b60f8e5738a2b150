//! `any` and `all` nest, next to plain scopes.
use axum::{Router, extract::Path, http::StatusCode, routing::delete};
use scopegate::__private::Requirement;
use scopegate::{Authority, requires_scope};

#[requires_scope(any("admin", all("write:appointments", "delete:appointments")), "audit")]
async fn remove(Path(id): Path<u32>) -> StatusCode {
    let _ = id;
    StatusCode::NO_CONTENT
}

fn app(authority: Authority) -> Router {
    Router::new().route("/appointments/{id}", delete(remove)).with_state(authority)
}

fn main() {
    let _ = app;
    type R = __scopegate_requirement_remove;
    assert_eq!(
        R::SCOPES.to_string(),
        r#"all(any("admin", all("write:appointments", "delete:appointments")), "audit")"#
    );
    assert_eq!(R::CHALLENGE, "admin audit");
}
