//! `#[requires_scope]` through a real axum `Router`: each expression form accepts a token
//! with the required scopes and answers 401/403 with the exact RFC 6750 challenge
//! otherwise; the guard runs before the body is touched; the token is verified once per
//! request.
//!
//! This file is also a user crate of the macro: `cargo clippy --all-targets -D warnings`
//! (with `clippy::pedantic` on) checks the expansion adds no lint.
#![warn(clippy::pedantic)]
// The helpers below are test code too: a failed `expect` is a failed test.
#![allow(clippy::expect_used)]

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::Path,
    http::{Method, Request, Response, StatusCode, header},
    routing::{delete, get, post},
};
use http_body_util::BodyExt as _;
use scopegate::{AccessToken, Authority, requires_scope, testing::TestIssuer};
use serde::Deserialize;
use tower::ServiceExt as _;

const AUDIENCE: &str = "https://api.example.test";
const REPORTS: &str = "https://reports.example.test";
const REALM: &str = "appointments";

// ------------------------------------------------------------------ the handlers

/// A top-level list: every scope is required. Also takes the verified token.
#[requires_scope("read:appointments", "read:patients")]
async fn list(token: AccessToken) -> String {
    format!("list for {}", token.subject())
}

/// `all(…)` spelled out.
#[requires_scope(all("write:appointments", "audit"))]
async fn audited_write() -> &'static str {
    "audited"
}

/// `any(…)`: one alternative suffices.
#[requires_scope(any("admin", "read:appointments"))]
async fn overview() -> &'static str {
    "overview"
}

/// Nested: `admin`, or both `write:appointments` and `delete:appointments`.
#[requires_scope(any("admin", all("write:appointments", "delete:appointments")))]
async fn remove(Path(id): Path<u32>) -> String {
    format!("removed {id}")
}

/// An audience other than the Authority's.
#[requires_scope("reports:read", aud = "https://reports.example.test")]
async fn reports() -> &'static str {
    "reports"
}

#[derive(Deserialize)]
struct NewAppointment {
    at: String,
}

/// A body extractor after the guard.
#[requires_scope("write:appointments")]
async fn create(Json(new): Json<NewAppointment>) -> (StatusCode, String) {
    (StatusCode::CREATED, new.at)
}

/// "Any valid access token", for comparison with the guarded `list`.
async fn me(token: AccessToken) -> String {
    token.subject().to_owned()
}

// ------------------------------------------------------------------ the harness

fn issuer() -> TestIssuer {
    TestIssuer::new()
}

fn authority() -> Authority {
    issuer().authority_builder(AUDIENCE).realm(REALM).build().expect("the test authority builds")
}

fn app(authority: Authority) -> Router {
    Router::new()
        .route("/list", get(list))
        .route("/audited", post(audited_write))
        .route("/overview", get(overview))
        .route("/appointments/{id}", delete(remove))
        .route("/reports", get(reports))
        .route("/appointments", post(create))
        .route("/me", get(me))
        .with_state(authority)
}

/// A token for the default audience with `scope`.
fn token(scope: &str) -> String {
    issuer().access_token().scope(scope).sign()
}

struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    body: String,
}

async fn send(app: Router, request: Request<Body>) -> Reply {
    let response: Response<Body> = app.oneshot(request).await.expect("the router is infallible");
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|value| value.to_str().expect("an ASCII challenge").to_owned());
    let bytes = response.into_body().collect().await.expect("the body is readable").to_bytes();
    Reply { status, challenge, body: String::from_utf8_lossy(&bytes).into_owned() }
}

fn request(method: Method, uri: &str, bearer: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = bearer {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Body::empty()).expect("a valid request")
}

async fn call(method: Method, uri: &str, bearer: Option<&str>) -> Reply {
    send(app(authority()), request(method, uri, bearer)).await
}

fn assert_ok(reply: &Reply, body: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.challenge, None);
    assert_eq!(reply.body, body);
}

fn assert_unauthenticated(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(reply.challenge.as_deref(), Some(r#"Bearer realm="appointments""#));
}

fn assert_insufficient_scope(reply: &Reply, scope: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    let expected = format!(r#"Bearer realm="appointments", error="insufficient_scope", scope="{scope}""#);
    assert_eq!(reply.challenge.as_deref(), Some(expected.as_str()));
    assert!(reply.body.contains(r#""reason":"insufficient_scope""#), "{}", reply.body);
}

// ------------------------------------------------------------------ expression forms

#[tokio::test]
async fn all_of_list() {
    let both = token("read:patients read:appointments");
    assert_ok(&call(Method::GET, "/list", Some(&both)).await, "list for user-123");
    assert_unauthenticated(&call(Method::GET, "/list", None).await);
    let one = token("read:appointments");
    assert_insufficient_scope(&call(Method::GET, "/list", Some(&one)).await, "read:appointments read:patients");
    let none = issuer().access_token().sign();
    assert_insufficient_scope(&call(Method::GET, "/list", Some(&none)).await, "read:appointments read:patients");
}

#[tokio::test]
async fn all_combinator() {
    let both = token("audit write:appointments");
    assert_ok(&call(Method::POST, "/audited", Some(&both)).await, "audited");
    assert_unauthenticated(&call(Method::POST, "/audited", None).await);
    let one = token("write:appointments");
    assert_insufficient_scope(&call(Method::POST, "/audited", Some(&one)).await, "write:appointments audit");
}

#[tokio::test]
async fn any_combinator() {
    assert_ok(&call(Method::GET, "/overview", Some(&token("admin"))).await, "overview");
    assert_ok(&call(Method::GET, "/overview", Some(&token("read:appointments"))).await, "overview");
    assert_unauthenticated(&call(Method::GET, "/overview", None).await);
    // Scopes compare byte for byte: no prefix or case folding.
    let near = token("read:appointments:all Admin");
    assert_insufficient_scope(&call(Method::GET, "/overview", Some(&near)).await, "admin");
}

#[tokio::test]
async fn nested_any_all() {
    assert_ok(&call(Method::DELETE, "/appointments/7", Some(&token("admin"))).await, "removed 7");
    let both = token("delete:appointments write:appointments");
    assert_ok(&call(Method::DELETE, "/appointments/7", Some(&both)).await, "removed 7");
    assert_unauthenticated(&call(Method::DELETE, "/appointments/7", None).await);
    let half = token("write:appointments");
    let reply = call(Method::DELETE, "/appointments/7", Some(&half)).await;
    assert_insufficient_scope(&reply, "admin");
    // The challenge names one satisfying set (the first alternative); the body the whole
    // requirement, parseable JSON.
    assert_eq!(
        reply.body,
        r#"{"error":"insufficient_scope","error_description":"The access token lacks a scope this route requires","scope":"admin","requirement":"any(\"admin\", all(\"write:appointments\", \"delete:appointments\"))","reason":"insufficient_scope"}"#
    );
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["requirement"], r#"any("admin", all("write:appointments", "delete:appointments"))"#);
}

#[tokio::test]
async fn the_403_challenge_names_scopes_that_satisfy_the_route_when_granted() {
    // A client following RFC 6750 asks for exactly the challenged scopes, all of them.
    for (method, path, held) in [
        (Method::DELETE, "/appointments/7", "write:appointments"),
        (Method::GET, "/overview", "read:appointments:all"),
        (Method::GET, "/list", "read:appointments"),
        (Method::POST, "/audited", "write:appointments"),
    ] {
        let reply = call(method.clone(), path, Some(&token(held))).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        let challenge = reply.challenge.unwrap_or_default();
        let scope = challenge.split("scope=\"").nth(1).and_then(|rest| rest.strip_suffix('"')).unwrap_or_default();
        assert!(!scope.is_empty(), "{path}: {challenge}");
        let asked_for = call(method, path, Some(&token(scope))).await;
        assert_eq!(asked_for.status, StatusCode::OK, "{path} with scope={scope:?}: {}", asked_for.body);
    }
}

#[tokio::test]
async fn aud_override() {
    let for_reports = issuer().access_token().audience(REPORTS).scope("reports:read").sign();
    assert_ok(&call(Method::GET, "/reports", Some(&for_reports)).await, "reports");
    assert_unauthenticated(&call(Method::GET, "/reports", None).await);

    // A token for the Authority's own audience is not one for the reports API…
    let for_api = token("reports:read");
    let reply = call(Method::GET, "/reports", Some(&for_api)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            r#"Bearer realm="appointments", error="invalid_token", error_description="The access token is not meant for this API""#
        )
    );
    assert!(reply.body.contains(r#""reason":"invalid_audience""#), "{}", reply.body);

    // …and a reports token is not one for the handlers without an override.
    let reply = call(Method::GET, "/overview", Some(&for_reports)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.body.contains(r#""reason":"invalid_audience""#), "{}", reply.body);

    // The audience is checked before the scopes: the right scope for the wrong API is 401.
    let reports_with_scope_for_wrong_api = issuer().access_token().audience(REPORTS).scope("admin").sign();
    let reply = call(Method::GET, "/overview", Some(&reports_with_scope_for_wrong_api)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // With the right audience and a missing scope, 403 as usual.
    let no_scope = issuer().access_token().audience(REPORTS).scope("reports:write").sign();
    assert_insufficient_scope(&call(Method::GET, "/reports", Some(&no_scope)).await, "reports:read");
}

// ------------------------------------------------------------------ before the body

fn json_post(bearer: Option<&str>, content_type: Option<&str>, body: Body) -> Request<Body> {
    let mut builder = Request::builder().method(Method::POST).uri("/appointments");
    if let Some(token) = bearer {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(body).expect("a valid request")
}

#[tokio::test]
async fn the_guard_answers_before_the_body_extractor() {
    // Without a token, neither the missing content type (415) nor the malformed JSON
    // (400/422) is reported: the guard has already answered.
    let reply = send(app(authority()), json_post(None, None, Body::from("not json"))).await;
    assert_unauthenticated(&reply);
    let reply = send(app(authority()), json_post(None, Some("application/json"), Body::from("{"))).await;
    assert_unauthenticated(&reply);
    let reply = send(app(authority()), json_post(Some("garbage"), Some("application/json"), Body::from("{"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.challenge.as_deref().is_some_and(|c| c.contains(r#"error="invalid_token""#)));
    let reader = token("read:appointments");
    let reply = send(app(authority()), json_post(Some(&reader), None, Body::from("not json"))).await;
    assert_insufficient_scope(&reply, "write:appointments");

    // The same requests with the right token do reach the body extractor and fail there,
    // so the statuses above are the guard's.
    let writer = token("write:appointments");
    let reply = send(app(authority()), json_post(Some(&writer), None, Body::from("not json"))).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let reply = send(app(authority()), json_post(Some(&writer), Some("application/json"), Body::from("{"))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply =
        send(app(authority()), json_post(Some(&writer), Some("application/json"), Body::from(r#"{"at":"09:00"}"#)))
            .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body, "09:00");
}

/// A request body that records whether anyone polled it.
struct RecordingBody {
    polled: Arc<AtomicBool>,
    sent: bool,
}

impl futures_core::Stream for RecordingBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.polled.store(true, Ordering::SeqCst);
        if self.sent {
            return Poll::Ready(None);
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Bytes::from_static(br#"{"at":"10:30"}"#))))
    }
}

fn recording_body() -> (Body, Arc<AtomicBool>) {
    let polled = Arc::new(AtomicBool::new(false));
    (Body::from_stream(RecordingBody { polled: Arc::clone(&polled), sent: false }), polled)
}

#[tokio::test]
async fn an_unauthorized_request_never_has_its_body_polled() {
    let (body, polled) = recording_body();
    let reply = send(app(authority()), json_post(None, Some("application/json"), body)).await;
    assert_unauthenticated(&reply);
    assert!(!polled.load(Ordering::SeqCst), "the body of an unauthenticated request was read");

    let (body, polled) = recording_body();
    let reader = token("read:appointments");
    let reply = send(app(authority()), json_post(Some(&reader), Some("application/json"), body)).await;
    assert_insufficient_scope(&reply, "write:appointments");
    assert!(!polled.load(Ordering::SeqCst), "the body of a forbidden request was read");

    // Control: an authorized request's body is read through the same recorder.
    let (body, polled) = recording_body();
    let writer = token("write:appointments");
    let reply = send(app(authority()), json_post(Some(&writer), Some("application/json"), body)).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body, "10:30");
    assert!(polled.load(Ordering::SeqCst));
}

// ------------------------------------------------------------------ verified once

/// Token verifications so far: full ones plus those served by the verified-token cache.
fn verifications(authority: &Authority) -> u64 {
    let stats = authority.stats();
    stats.signatures_checked + stats.token_cache_hits
}

#[tokio::test]
async fn the_token_is_verified_once_even_when_the_handler_takes_access_token() {
    let authority = authority();
    let both = token("read:appointments read:patients");

    let before = verifications(&authority);
    let reply = send(app(authority.clone()), request(Method::GET, "/list", Some(&both))).await;
    assert_ok(&reply, "list for user-123");
    assert_eq!(verifications(&authority) - before, 1, "the guard and `AccessToken` both verified the token");
    assert_eq!(authority.stats().accepted, 1);

    // Control: `AccessToken` alone does verify, and is counted.
    let other = token("read:appointments read:patients");
    let before = verifications(&authority);
    let reply = send(app(authority.clone()), request(Method::GET, "/me", Some(&other))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(verifications(&authority) - before, 1);
    assert_eq!(authority.stats().accepted, 2);
}
