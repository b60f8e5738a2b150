//! A request's token is verified once per authority and audience check, and a result is
//! reused only where it is valid: a `#[requires_scope]` guard reuses only a result of its
//! own `Authority` for its own audience check; a plain `AccessToken` reuses a result of its
//! own `Authority` (how a guarded handler's `AccessToken` argument gets the guard's token),
//! never one of another authority.
//!
//! The apps are real axum routers: an outer `from_fn_with_state` middleware that takes
//! `Option<AccessToken>` with one authority, and routes nested with their own state.
#![allow(clippy::expect_used)]

use axum::{
    Router,
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::Response,
    routing::get,
};
use http_body_util::BodyExt as _;
use scopegate::{AccessToken, Authority, Stats, TokenError, requires_scope, testing::TestIssuer};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const AUDIENCE: &str = "https://api.example.test";
const REPORTS: &str = "https://reports.example.test";

// ------------------------------------------------------------------ the handlers

/// The admin route of whichever authority its router's state holds.
#[requires_scope("admin")]
async fn admin(token: AccessToken) -> String {
    format!("admin for {}", token.subject())
}

/// A guard for another audience than the authority's default.
#[requires_scope("reports:read", aud = "https://reports.example.test")]
async fn reports(token: AccessToken) -> String {
    format!("reports for {}", token.subject())
}

/// Any valid token of the router's authority.
async fn me(token: AccessToken) -> String {
    format!("me: {}", token.issuer())
}

/// The outer middleware: notes who is calling (if anyone), as an app would for its logs.
async fn note_caller(caller: Option<AccessToken>, request: Request, next: Next) -> Response {
    let issuer = caller.as_ref().map_or_else(|| "anonymous".to_owned(), |token| token.issuer().to_owned());
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&issuer) {
        response.headers_mut().insert("x-caller", value);
    }
    response
}

// ------------------------------------------------------------------ the harness

/// An authority for `issuer` with its own realm.
fn authority(issuer: &TestIssuer, audience: &str, realm: &str) -> Authority {
    issuer.authority_builder(audience).realm(realm).build().expect("the authority builds")
}

/// `/nested/…` routes with the `nested` authority as their state, behind a middleware that
/// takes `Option<AccessToken>` with the `outer` authority.
fn app(outer: Authority, nested: Authority) -> Router {
    let nested = Router::new()
        .route("/admin", get(admin))
        .route("/reports", get(reports))
        .route("/me", get(me))
        .with_state(nested);
    Router::new()
        .route("/me", get(me))
        .nest("/nested", nested)
        .layer(middleware::from_fn_with_state(outer.clone(), note_caller))
        .with_state(outer)
}

struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    caller: Option<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    /// 401 `invalid_token` with the exact challenge and body of `error` in `realm`.
    fn assert_invalid_token(&self, realm: &str, error: TokenError) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{}", self.body);
        let challenge =
            format!(r#"Bearer realm="{realm}", error="invalid_token", error_description="{}""#, error.description());
        assert_eq!(self.challenge.as_deref(), Some(challenge.as_str()));
        assert_eq!(
            self.json(),
            json!({"error": "invalid_token", "error_description": error.description(), "reason": error.code()})
        );
    }

    fn assert_ok(&self, body: &str) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.challenge, None);
        assert_eq!(self.body, body);
    }
}

async fn get_with(app: &Router, uri: &str, token: &str) -> Reply {
    let request = Request::builder()
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("a valid request");
    let response = app.clone().oneshot(request).await.expect("the router is infallible");
    let status = response.status();
    let text = |name| response.headers().get(name).map(|v: &HeaderValue| v.to_str().expect("ASCII").to_owned());
    let challenge = text(header::WWW_AUTHENTICATE.as_str());
    let caller = text("x-caller");
    let bytes = response.into_body().collect().await.expect("the body is readable").to_bytes();
    Reply { status, challenge, caller, body: String::from_utf8_lossy(&bytes).into_owned() }
}

/// What the stats say about verifications, without the JWKS counters.
fn verified(stats: Stats) -> (u64, u64, u64) {
    (stats.accepted, stats.signatures_checked, stats.token_cache_hits)
}

// ------------------------------------------------------------------ two authorities

/// A partner-facing issuer and a staff-facing one, each with keys of its own.
fn issuers() -> (TestIssuer, TestIssuer) {
    (
        TestIssuer::with_fresh_keys("https://public.issuer.example/"),
        TestIssuer::with_fresh_keys("https://internal.issuer.example/"),
    )
}

#[tokio::test]
async fn a_public_token_does_not_open_an_internal_route_behind_a_public_middleware() {
    let (public, internal) = issuers();
    let (public_authority, internal_authority) =
        (authority(&public, AUDIENCE, "public"), authority(&internal, AUDIENCE, "internal"));
    let app = app(public_authority.clone(), internal_authority.clone());
    let partner_admin = public.access_token().scope("admin").sign();

    // The middleware accepts the public token: it is one.
    let reply = get_with(&app, "/me", &partner_admin).await;
    reply.assert_ok("me: https://public.issuer.example/");
    assert_eq!(reply.caller.as_deref(), Some("https://public.issuer.example/"));

    // The internal guard verifies it with the internal authority, whose keys did not sign
    // it, instead of reusing the middleware's result and checking only the scope.
    let reply = get_with(&app, "/nested/admin", &partner_admin).await;
    reply.assert_invalid_token("internal", TokenError::InvalidSignature);
    // Nor does a plain `AccessToken` of the internal authority reuse it.
    get_with(&app, "/nested/me", &partner_admin).await.assert_invalid_token("internal", TokenError::InvalidSignature);
    assert_eq!(verified(internal_authority.stats()), (0, 2, 0), "the internal authority checked both requests");
    assert_eq!(internal_authority.rejections_by_reason(), vec![("invalid_signature", 2)]);
}

#[tokio::test]
async fn an_internal_token_does_not_open_a_public_route_behind_an_internal_middleware() {
    let (public, internal) = issuers();
    let (public_authority, internal_authority) =
        (authority(&public, AUDIENCE, "public"), authority(&internal, AUDIENCE, "internal"));
    let app = app(internal_authority.clone(), public_authority.clone());
    let staff_admin = internal.access_token().scope("admin").sign();

    let reply = get_with(&app, "/me", &staff_admin).await;
    reply.assert_ok("me: https://internal.issuer.example/");
    assert_eq!(reply.caller.as_deref(), Some("https://internal.issuer.example/"));

    let reply = get_with(&app, "/nested/admin", &staff_admin).await;
    reply.assert_invalid_token("public", TokenError::InvalidSignature);
    get_with(&app, "/nested/me", &staff_admin).await.assert_invalid_token("public", TokenError::InvalidSignature);
    assert_eq!(verified(public_authority.stats()), (0, 2, 0), "the public authority checked both requests");
}

// ------------------------------------------------------------------ audiences

#[tokio::test]
async fn a_guard_verifies_for_its_own_audience_after_a_plain_access_token() {
    let issuer = TestIssuer::new();

    // One authority: the middleware's `Option<AccessToken>` verified the token for the
    // default audience; the `aud = REPORTS` guard must check its own audience.
    let api = authority(&issuer, AUDIENCE, "api");
    let app_one = app(api.clone(), api.clone());
    let for_the_api = issuer.access_token().scope("reports:read").sign();
    let reply = get_with(&app_one, "/nested/reports", &for_the_api).await;
    reply.assert_invalid_token("api", TokenError::InvalidAudience);
    assert_eq!(reply.caller.as_deref(), Some(issuer.issuer()), "the middleware accepted the token");
    // Control: a token for both audiences passes both.
    let for_both = issuer.access_token().audience(json!([AUDIENCE, REPORTS])).scope("reports:read").sign();
    get_with(&app_one, "/nested/reports", &for_both).await.assert_ok("reports for user-123");

    // Two authorities of the same issuer with different default audiences: a guard without
    // `aud` checks its own authority's audience, not the one the middleware checked.
    let reports_api = authority(&issuer, REPORTS, "reports");
    let app_two = app(reports_api, api);
    let for_reports = issuer.access_token().audience(REPORTS).scope("admin").sign();
    let reply = get_with(&app_two, "/nested/admin", &for_reports).await;
    reply.assert_invalid_token("api", TokenError::InvalidAudience);
    assert_eq!(reply.caller.as_deref(), Some(issuer.issuer()), "the middleware accepted the token");
    get_with(&app_two, "/nested/me", &for_reports).await.assert_invalid_token("api", TokenError::InvalidAudience);
}

#[tokio::test]
async fn a_plain_access_token_after_a_guard_reuses_the_guards_result() {
    // Two authorities that accept the same tokens (same issuer and audience): each still
    // verifies for itself, and within one authority the guard's result serves the
    // handler's `AccessToken`.
    let issuer = TestIssuer::new();
    let outer = authority(&issuer, AUDIENCE, "outer");
    let nested = authority(&issuer, AUDIENCE, "nested");
    let app = app(outer.clone(), nested.clone());
    let token = issuer.access_token().scope("admin").sign();

    let reply = get_with(&app, "/nested/admin", &token).await;
    reply.assert_ok("admin for user-123");
    assert_eq!(reply.caller.as_deref(), Some(issuer.issuer()));
    assert_eq!(verified(outer.stats()), (1, 1, 0), "the middleware verified once");
    assert_eq!(verified(nested.stats()), (1, 1, 0), "the guard verified once; the handler reused its result");

    // The guard for another audience: the handler's plain `AccessToken` reuses it too.
    let reports_token = issuer.access_token().audience(json!([AUDIENCE, REPORTS])).scope("reports:read").sign();
    get_with(&app, "/nested/reports", &reports_token).await.assert_ok("reports for user-123");
    assert_eq!(verified(outer.stats()), (2, 2, 0));
    assert_eq!(verified(nested.stats()), (2, 2, 0), "one verification for the guard and the handler");
}

#[tokio::test]
async fn alternating_authorities_in_one_request_verify_once_each() {
    // Outer middleware (authority A), then the nested guard (B) and the handler's
    // `AccessToken` (B): each result is kept, so nothing is verified twice in one request.
    let issuer = TestIssuer::new();
    let outer = authority(&issuer, AUDIENCE, "outer");
    let nested = authority(&issuer, AUDIENCE, "nested");
    let inner_app = app(nested.clone(), outer.clone());
    // A third layer of the outer authority around the whole app: it runs first, so the
    // request meets A, then B (middleware), then A (guard and handler).
    let app = inner_app.layer(middleware::from_fn_with_state(outer.clone(), note_caller));
    let token = issuer.access_token().scope("admin").sign();

    get_with(&app, "/nested/admin", &token).await.assert_ok("admin for user-123");
    assert_eq!(verified(nested.stats()), (1, 1, 0));
    assert_eq!(verified(outer.stats()), (1, 1, 0), "the outer result was kept for the guard and the handler");
}
