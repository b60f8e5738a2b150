//! Section 12: the macro and axum integration (cases 172-180). The compile-time cases
//! (172-175, 177) are trybuild cases in `tests/ui/fail` (`scope_empty`, `scope_space`,
//! `scope_backslash`, `scope_non_ascii`, `aud_empty`, `aud_leading_whitespace`,
//! `duplicate_scope`, `state_without_authority`); the cases here run through a router.

use axum::{
    Json, Router,
    body::Body,
    http::{Method, Request, StatusCode, header},
    routing::{get, post},
};
use scopegate::{AccessToken, requires_scope};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use tower_http::cors::CorsLayer;

use crate::harness::{READ, authority, default_app, get_req, issuer, send};

#[requires_scope("write:appointments")]
async fn create(Json(body): Json<Value>) -> Json<Value> {
    Json(json!({ "created": body }))
}

#[tokio::test]
async fn case_176_a_10_mb_json_body_without_a_token_gets_401_before_the_body_is_read() {
    let app = Router::new().route("/appointments", post(create)).with_state(authority());
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let request =
        Request::post("/appointments").header(header::CONTENT_TYPE, "application/json").body(Body::from(body));
    // 401, not 413 (axum's 2 MB default body limit), 415 or 422: the guard ran first.
    send(&app, request.unwrap()).await.noauth();
    // A wrong content type with a valid token reaches the body extractor (and fails there).
    let token = issuer().access_token().scope("write:appointments").sign();
    let request = Request::post("/appointments")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn case_178_the_handler_receives_the_verified_claims() {
    // `AccessToken` is built only from a verified token; there is no API to parse an
    // unverified one, and clippy.toml disallows jsonwebtoken's `insecure_decode*`.
    let token = issuer().access_token().scope(READ).claim("tenant", "acme").sign();
    let facts = crate::harness::expect_accept(&default_app(), &token).await;
    assert_eq!(facts["scopes"], json!([READ]));

    async fn tenant(token: AccessToken) -> String {
        #[derive(serde::Deserialize)]
        struct Claims {
            tenant: String,
        }
        token.claims::<Claims>().map(|c| c.tenant).unwrap_or_default()
    }
    let app = Router::new().route("/tenant", get(tenant)).with_state(authority());
    let request = get_req("/tenant").header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty());
    let response = app.oneshot(request.unwrap()).await.unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    assert_eq!(&body[..], b"acme");
}

#[tokio::test]
async fn case_179_the_crypto_backend_self_test_runs_when_an_authority_is_built() {
    // `build()` refuses to return an authority if the aws-lc-rs self-test (an RFC 8032
    // vector and an HMAC round trip) fails; a signature check then works at once. The
    // self-test runs once per process, on the first build: whichever test builds first,
    // once an authority exists it has run and passed.
    let app = default_app();
    assert_eq!(scopegate::testing::crypto_self_test_result(), Some(true), "building an authority ran the self-test");
    let token = issuer().access_token().scope(READ).sign();
    crate::harness::expect_accept(&app, &token).await;
}

#[tokio::test]
async fn case_180_head_to_a_guarded_get_route_is_guarded() {
    let app = default_app();
    let head = |token: Option<String>| {
        let mut request = Request::builder().method(Method::HEAD).uri("/appointments");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request.body(Body::empty()).unwrap()
    };
    // A HEAD response has no body: the status and the challenge carry the outcome.
    let outcome = send(&app, head(None)).await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(outcome.challenge().as_deref(), Some(r#"Bearer realm="https://api.example.test""#));
    let outcome = send(&app, head(Some(issuer().access_token().sign()))).await;
    assert_eq!(outcome.status, StatusCode::FORBIDDEN);
    assert_eq!(
        outcome.challenge().as_deref(),
        Some(r#"Bearer realm="https://api.example.test", error="insufficient_scope", scope="read:appointments""#)
    );
    let outcome = send(&app, head(Some(issuer().access_token().scope(READ).sign()))).await;
    assert_eq!(outcome.status, StatusCode::OK);
}

#[tokio::test]
async fn case_180_a_cors_preflight_answered_by_a_layer_never_reaches_the_guard() {
    let app = default_app().layer(CorsLayer::permissive());
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/appointments")
        .header(header::ORIGIN, "https://app.example.test")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(preflight).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
    // The actual request after the preflight is guarded as usual.
    let request = get_req("/appointments").header(header::ORIGIN, "https://app.example.test").body(Body::empty());
    send(&app, request.unwrap()).await.noauth();
}
