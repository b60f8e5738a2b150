//! scopegate's routing functions serve what axum's would: a `public(…)` handler answers
//! without a token, a guarded one still refuses, and methods chained with `.merge(…)` each
//! keep their own requirement.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::{
    Router,
    body::Body,
    http::{Method, Request, header},
};
use http_body_util::BodyExt;
use scopegate::{
    AccessToken, Authority, requires_scope,
    routing::{get, post, public},
    testing::TestIssuer,
};
use tower::ServiceExt;

const AUD: &str = "https://api.example.test";

#[requires_scope("read:appointments")]
async fn list() -> &'static str {
    "[]"
}

#[requires_scope("write:appointments")]
async fn create(body: String) -> String {
    format!("created {body}")
}

async fn me(token: AccessToken) -> String {
    token.subject().to_owned()
}

async fn health() -> &'static str {
    "ok"
}

fn app(authority: Authority) -> Router {
    Router::new()
        .route("/appointments", get(list).merge(post(create)))
        .route("/me", get(me))
        .route("/health", get(public(health)))
        .with_state(authority)
}

async fn call(app: &Router, method: Method, path: &str, token: Option<&str>) -> (u16, Option<String>, String) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app.clone().oneshot(request.body(Body::from("x")).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let challenge = response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, challenge, body)
}

#[tokio::test]
async fn a_public_handler_answers_without_a_token_and_a_guarded_one_still_refuses() {
    let app = app(TestIssuer::new().authority(AUD));
    assert_eq!(call(&app, Method::GET, "/health", None).await, (200, None, "ok".to_owned()));
    let (status, challenge, _) = call(&app, Method::GET, "/appointments", None).await;
    assert_eq!((status, challenge.as_deref()), (401, Some(r#"Bearer realm="https://api.example.test""#)));
    let (status, challenge, _) = call(&app, Method::GET, "/me", None).await;
    assert_eq!((status, challenge.as_deref()), (401, Some(r#"Bearer realm="https://api.example.test""#)));
}

#[tokio::test]
async fn methods_merged_on_one_path_each_keep_their_own_requirement() {
    let issuer = TestIssuer::new();
    let app = app(issuer.authority(AUD));
    let reader = issuer.access_token().audience(AUD).subject("jo").scope("read:appointments").sign();
    assert_eq!(call(&app, Method::GET, "/appointments", Some(&reader)).await, (200, None, "[]".to_owned()));
    let (status, challenge, _) = call(&app, Method::POST, "/appointments", Some(&reader)).await;
    assert_eq!(status, 403);
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer realm="https://api.example.test", error="insufficient_scope", scope="write:appointments""#)
    );
    let writer = issuer.access_token().audience(AUD).subject("jo").scope("write:appointments").sign();
    assert_eq!(call(&app, Method::POST, "/appointments", Some(&writer)).await, (200, None, "created x".to_owned()));
    assert_eq!(call(&app, Method::GET, "/me", Some(&writer)).await, (200, None, "jo".to_owned()));
}
