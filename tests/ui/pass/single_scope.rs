//! One required scope: the guard's requirement is `all("read:appointments")`, the default
//! audience, and the 403 challenge names the scope.
use axum::{Router, routing::get};
use scopegate::__private::{Requirement, ScopeExpr};
use scopegate::{AccessToken, Authority, requires_scope};

#[requires_scope("read:appointments")]
async fn list(token: AccessToken) -> String {
    token.subject().to_owned()
}

fn app(authority: Authority) -> Router {
    Router::new().route("/appointments", get(list)).with_state(authority)
}

fn main() {
    let _ = app;
    type R = __scopegate_requirement_list;
    assert_eq!(R::SCOPES, ScopeExpr::All(&[ScopeExpr::Scope("read:appointments")]));
    assert_eq!(R::AUDIENCE, None);
    assert_eq!(R::CHALLENGE, "read:appointments");
}
