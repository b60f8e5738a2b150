//! The `RequireAccessToken` layer (a floor: a valid token on every covered route, refined
//! by the handlers' `#[requires_scope]`, public routes excepted by name) and the
//! `on_rejection` hook (the app's own error body, scopegate's RFC 6750 challenge).
//!
//! Real axum routers, requests through `tower::ServiceExt::oneshot`, and for the path
//! tricks a real server on 127.0.0.1 that gets the request line byte for byte.
#![allow(clippy::expect_used)]

use axum::{
    Json, Router,
    body::Body,
    http::{HeaderValue, Request, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use http_body_util::BodyExt as _;
use scopegate::{
    AccessToken, Authority, AuthorityBuilder, Rejection, TokenError,
    layer::RequireAccessToken,
    requires_scope,
    testing::{DEFAULT_AUDIENCE as AUD, TestIssuer},
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower::{Layer as _, ServiceExt as _};

const REPORTS: &str = "https://reports.example.test";
const REALM: &str = AUD;
const METADATA: &str = "https://api.example.test/.well-known/oauth-protected-resource";

// ------------------------------------------------------------------ the handlers

#[requires_scope("admin")]
async fn admin(token: AccessToken) -> String {
    format!("admin for {}", token.subject())
}

#[requires_scope("reports:read", aud = "https://reports.example.test")]
async fn reports() -> &'static str {
    "reports"
}

async fn me(token: AccessToken) -> String {
    format!("me: {}", token.subject())
}

async fn open_by_floor() -> &'static str {
    "any valid token"
}

async fn health() -> &'static str {
    "ok"
}

async fn user() -> &'static str {
    "a user"
}

// ------------------------------------------------------------------ the harness

fn issuer() -> TestIssuer {
    TestIssuer::new()
}

/// An authority without the verified-token cache, so every verification is a signature
/// check and `Stats::signatures_checked` counts verifications.
fn builder() -> AuthorityBuilder {
    issuer().authority_builder(AUD).token_cache_capacity(0)
}

fn routes() -> Router<Authority> {
    Router::new()
        .route("/admin", get(admin))
        .route("/reports", get(reports))
        .route("/me", get(me))
        .route("/open", get(open_by_floor))
        .route("/health", get(health))
        .route("/users/{id}", get(user))
}

/// Every route behind the floor (as a route layer), `/health` and `/users/{id}` excepted.
fn app(authority: &Authority) -> Router {
    let floor = RequireAccessToken::new(authority.clone()).except(["/health", "/users/{id}"]).expect("route paths");
    routes().route_layer(floor).with_state(authority.clone())
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    content_type: Option<String>,
    cache_control: Option<String>,
    retry_after: Option<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    fn assert_ok(&self, body: &str) {
        assert_eq!((self.status, self.challenge.as_deref(), self.body.as_str()), (StatusCode::OK, None, body));
    }

    fn assert_missing_credentials(&self, challenge: &str) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{}", self.body);
        assert_eq!(self.challenge.as_deref(), Some(challenge));
        assert_eq!(
            self.json(),
            json!({"error": "unauthorized", "error_description": "The request carries no bearer access token", "reason": "missing_credentials"})
        );
    }
}

async fn send(app: &Router, uri: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder().uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app.clone().oneshot(request.body(Body::empty()).expect("a request")).await.expect("infallible");
    reply(response).await
}

async fn reply(response: axum::response::Response) -> Reply {
    let text = |name: header::HeaderName| {
        response.headers().get(&name).map(|v: &HeaderValue| v.to_str().expect("ASCII").to_owned())
    };
    let (challenge, content_type, cache_control, retry_after) = (
        text(header::WWW_AUTHENTICATE),
        text(header::CONTENT_TYPE),
        text(header::CACHE_CONTROL),
        text(header::RETRY_AFTER),
    );
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    let body = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    Reply { status, challenge, content_type, cache_control, retry_after, body }
}

fn token(scope: &str) -> String {
    issuer().access_token().scope(scope).sign()
}

// ------------------------------------------------------------------ the floor

#[tokio::test]
async fn the_floor_refuses_a_request_without_a_token_on_every_covered_route() {
    let authority = builder().build().expect("builds");
    let app = app(&authority);
    for uri in ["/open", "/me", "/admin"] {
        send(&app, uri, None).await.assert_missing_credentials(&format!(r#"Bearer realm="{REALM}""#));
    }
    assert_eq!(authority.rejections_by_reason(), [("missing_credentials", 3)]);
}

#[tokio::test]
async fn the_floor_lets_any_valid_token_through_to_a_route_without_a_guard() {
    let authority = builder().build().expect("builds");
    send(&app(&authority), "/open", Some(&token("unrelated"))).await.assert_ok("any valid token");
    assert_eq!((authority.stats().accepted, authority.stats().signatures_checked), (1, 1));
}

#[tokio::test]
async fn a_guard_behind_the_floor_reuses_its_verification() {
    let authority = builder().build().expect("builds");
    send(&app(&authority), "/admin", Some(&token("admin"))).await.assert_ok("admin for user-123");
    // The layer verified once; the guard and the handler's `AccessToken` reused it.
    let stats = authority.stats();
    assert_eq!((stats.accepted, stats.signatures_checked, stats.rejected), (1, 1, 0));
}

#[tokio::test]
async fn a_guard_behind_the_floor_still_checks_its_scopes() {
    let authority = builder().build().expect("builds");
    let reply = send(&app(&authority), "/admin", Some(&token("read"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(format!(r#"Bearer realm="{REALM}", error="insufficient_scope", scope="admin""#).as_str())
    );
    assert_eq!(reply.json()["reason"], "insufficient_scope");
    assert_eq!(authority.stats().signatures_checked, 1);
}

#[tokio::test]
async fn a_guard_for_another_audience_than_the_floors_verifies_again() {
    let authority = builder().build().expect("builds");
    let both = issuer().access_token().audience(json!([AUD, REPORTS])).scope("reports:read").sign();
    send(&app(&authority), "/reports", Some(&both)).await.assert_ok("reports");
    // The floor checked the configured audience, the guard its own: two verifications.
    assert_eq!(authority.stats().signatures_checked, 2);
}

#[tokio::test]
async fn a_floor_for_the_guards_audience_is_reused_by_the_guard() {
    let authority = builder().build().expect("builds");
    let floor = RequireAccessToken::new(authority.clone()).audience(REPORTS).expect("a valid audience");
    let app = Router::new().route("/reports", get(reports)).route_layer(floor).with_state(authority.clone());
    let for_reports = issuer().access_token().audience(REPORTS).scope("reports:read").sign();
    send(&app, "/reports", Some(&for_reports)).await.assert_ok("reports");
    assert_eq!(authority.stats().signatures_checked, 1);
    // A token for the configured audience only does not pass a floor for REPORTS.
    let reply = send(&app, "/reports", Some(&token("reports:read"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["reason"], TokenError::InvalidAudience.code());
}

#[tokio::test]
async fn a_floor_of_another_authority_does_not_vouch_for_the_guard() {
    let state = builder().build().expect("builds");
    let other = builder().build().expect("builds");
    let app = Router::new()
        .route("/admin", get(admin))
        .route_layer(RequireAccessToken::new(other.clone()))
        .with_state(state.clone());
    send(&app, "/admin", Some(&token("admin"))).await.assert_ok("admin for user-123");
    assert_eq!((other.stats().signatures_checked, state.stats().signatures_checked), (1, 1));
}

#[tokio::test]
async fn the_floor_refuses_a_bad_token_exactly_as_the_extractor_does() {
    let authority = builder().protected_resource_metadata(true).build().expect("builds");
    let floor = app(&authority);
    let extractor_only = routes().with_state(authority.clone());
    let expired = issuer().access_token().expires_in(-3600).sign();
    let description = TokenError::Expired.description();
    let challenge = format!(
        r#"Bearer realm="{REALM}", error="invalid_token", error_description="{description}", resource_metadata="{METADATA}""#
    );
    let by_floor = send(&floor, "/open", Some(&expired)).await;
    let by_extractor = send(&extractor_only, "/me", Some(&expired)).await;
    for reply in [&by_floor, &by_extractor] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.challenge.as_deref(), Some(challenge.as_str()));
        assert_eq!(
            reply.json(),
            json!({"error": "invalid_token", "error_description": description, "reason": "token_expired"})
        );
        assert_eq!(reply.cache_control.as_deref(), Some("no-store"));
    }
    let no_token = send(&floor, "/open", None).await;
    no_token.assert_missing_credentials(&format!(r#"Bearer realm="{REALM}", resource_metadata="{METADATA}""#));
}

#[tokio::test]
async fn an_excepted_route_needs_no_token() {
    let authority = builder().build().expect("builds");
    let app = app(&authority);
    send(&app, "/health", None).await.assert_ok("ok");
    // Matched by the route as written: every user, through the `{id}` template.
    send(&app, "/users/7", None).await.assert_ok("a user");
    assert_eq!(authority.stats(), scopegate::Stats::default());
}

#[tokio::test]
async fn routes_added_after_the_layer_are_not_covered() {
    let authority = builder().build().expect("builds");
    let app = Router::new()
        .route("/open", get(open_by_floor))
        .route_layer(RequireAccessToken::new(authority.clone()))
        .route("/late", get(health))
        .with_state(authority.clone());
    send(&app, "/open", None).await.assert_missing_credentials(&format!(r#"Bearer realm="{REALM}""#));
    send(&app, "/late", None).await.assert_ok("ok");
}

#[tokio::test]
async fn an_exception_names_the_full_path_of_a_nested_route() {
    let authority = builder().build().expect("builds");
    let inner = Router::new().route("/health", get(health)).route("/open", get(open_by_floor));
    let floor = RequireAccessToken::new(authority.clone()).except(["/api/health"]).expect("a route path");
    let app = Router::new().nest("/api", inner).route_layer(floor).with_state(authority.clone());
    send(&app, "/api/health", None).await.assert_ok("ok");
    send(&app, "/api/open", None).await.assert_missing_credentials(&format!(r#"Bearer realm="{REALM}""#));
}

#[tokio::test]
async fn the_floor_around_a_whole_router_excepts_nothing() {
    // Outside the router no route is known yet (no `MatchedPath`): nothing is excepted.
    let authority = builder().build().expect("builds");
    let floor = RequireAccessToken::new(authority.clone()).except(["/health"]).expect("a route path");
    let service = floor.layer(routes().with_state(authority.clone()));
    let request = Request::builder().uri("/health").body(Body::empty()).expect("a request");
    let response = service.oneshot(request).await.expect("infallible");
    reply(response).await.assert_missing_credentials(&format!(r#"Bearer realm="{REALM}""#));
}

#[test]
fn an_exception_that_cannot_be_a_route_is_refused_naming_the_setting() {
    let authority = issuer().authority(AUD);
    let error = RequireAccessToken::new(authority).except(["/health", "/a/../admin"]).expect_err("not a route path");
    assert_eq!(error.setting(), "except");
    assert_eq!(
        error.to_string(),
        r#"scopegate: invalid `except` setting: "/a/../admin" is not a route path (no `.` or `..` segment): name the route exactly as in .route("/health", …)"#
    );
}

/// Sends `target` as the request line's target, byte for byte, to a real server.
async fn raw_get(address: std::net::SocketAddr, target: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connects");
    let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("reads");
    let status = response.get(9..12).and_then(|s| s.parse().ok()).expect("a status line");
    (status, response)
}

#[tokio::test]
async fn path_tricks_around_an_exception_never_reach_a_route_without_a_token() {
    let authority = builder().build().expect("builds");
    let floor = RequireAccessToken::new(authority.clone()).except(["/health"]).expect("a route path");
    // `layer` (not `route_layer`) covers the fallback too: an unknown path gets 401.
    let app = routes().layer(floor).with_state(authority.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("an address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let challenge = format!("www-authenticate: Bearer realm=\"{REALM}\"\r\n");
    for target in [
        "/health/../admin",
        "/health/..%2Fadmin",
        "/health%2F..%2Fadmin",
        "/health%2Fadmin",
        "/health/",
        "//health",
        "/./health",
        "/HEALTH",
        "/%68ealth",
        "/health;/../admin",
        "/admin",
        "/open",
    ] {
        let (status, response) = raw_get(address, target).await;
        assert_eq!(status, 401, "{target}: {response}");
        assert!(response.contains(&challenge), "{target}: {response}");
    }
    assert_eq!(raw_get(address, "/health").await.0, 200);
    assert_eq!(raw_get(address, "/health?x=/admin").await.0, 200);
    server.abort();
}

// ------------------------------------------------------------------ the rejection hook

/// The app's JSON error envelope.
fn envelope(rejection: &Rejection) -> impl IntoResponse + use<> {
    // A status of its own, which scopegate replaces with the rejection's.
    let body = json!({
        "error": {
            "code": rejection.reason(),
            "status": rejection.status().as_u16(),
            "oauth_error": rejection.error(),
            "message": rejection.description(),
            "scope": rejection.required_scope(),
        }
    });
    (StatusCode::IM_A_TEAPOT, [(header::WWW_AUTHENTICATE, "Basic realm=\"app\"")], Json(body))
}

fn hooked() -> Authority {
    builder().on_rejection(envelope).build().expect("builds")
}

#[tokio::test]
async fn the_rejection_hook_renders_a_guards_refusal_keeping_the_challenge() {
    let authority = hooked();
    let app = routes().with_state(authority);
    let reply = send(&app, "/admin", Some(&token("read"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(format!(r#"Bearer realm="{REALM}", error="insufficient_scope", scope="admin""#).as_str())
    );
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(reply.cache_control.as_deref(), Some("no-store"));
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "insufficient_scope", "status": 403, "oauth_error": "insufficient_scope",
                         "message": "The access token lacks a scope this route requires", "scope": "admin"}})
    );
}

#[tokio::test]
async fn the_rejection_hook_renders_an_access_token_refusal_keeping_the_challenge() {
    let app = routes().with_state(hooked());
    let reply = send(&app, "/me", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge.as_deref(), Some(format!(r#"Bearer realm="{REALM}""#).as_str()));
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "missing_credentials", "status": 401, "oauth_error": null,
                         "message": "The request carries no bearer access token", "scope": null}})
    );
}

#[tokio::test]
async fn the_rejection_hook_renders_the_floors_refusal_keeping_the_challenge() {
    let authority = hooked();
    let unknown_key = issuer().access_token().kid("not-a-key").sign();
    let reply = send(&app(&authority), "/open", Some(&unknown_key)).await;
    let error = TokenError::UnknownKey;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            format!(r#"Bearer realm="{REALM}", error="invalid_token", error_description="{}""#, error.description())
                .as_str()
        )
    );
    assert_eq!(reply.json()["error"]["code"], "unknown_key");
    assert_eq!(reply.json()["error"]["message"], error.description());
}

#[tokio::test]
async fn the_rejection_hook_gets_no_description_when_descriptions_are_off() {
    let authority = builder().error_descriptions(false).on_rejection(envelope).build().expect("builds");
    let expired = issuer().access_token().expires_in(-3600).sign();
    let reply = send(&routes().with_state(authority), "/me", Some(&expired)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge.as_deref(), Some(format!(r#"Bearer realm="{REALM}", error="invalid_token""#).as_str()));
    assert_eq!(reply.json()["error"]["message"], Value::Null);
}

#[tokio::test]
async fn the_rejection_hook_cannot_add_a_challenge_to_a_503() {
    // Keys over HTTP from a port nobody listens on: until a fetch succeeds, 503.
    let unavailable = |hook: bool| {
        let builder = Authority::builder().issuer(issuer().issuer()).audience(AUD).jwks_uri("http://127.0.0.1:9/jwks");
        if hook { builder.on_rejection(envelope) } else { builder }.build().expect("builds")
    };
    let plain = send(&routes().with_state(unavailable(false)), "/me", Some(&token("x"))).await;
    let reply = send(&routes().with_state(unavailable(true)), "/me", Some(&token("x"))).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.challenge, None);
    assert_eq!(plain.retry_after.as_deref().map(|s| s.parse::<u64>().is_ok()), Some(true));
    assert_eq!(reply.retry_after, plain.retry_after);
    assert_eq!(reply.json()["error"]["code"], "keys_unavailable");
}

#[tokio::test]
async fn a_floor_for_an_empty_or_spaced_audience_is_refused_when_configured() {
    let authority = builder().build().expect("builds");
    for bad in ["", "my api", " api", "api\t"] {
        let error = RequireAccessToken::new(authority.clone()).audience(bad).expect_err("refused");
        assert_eq!(error.setting(), "audience", "for {bad:?}");
        assert_eq!(error.message(), "an audience must be non-empty and contain no whitespace", "for {bad:?}");
    }
}

/// A service with back-pressure (tower's contract: `call` only after `poll_ready` said
/// ready, and a clone starts unready): it answers 200 when it was driven to readiness
/// first, 503 when it was called without.
#[derive(Default)]
struct NeedsReadiness {
    ready: bool,
    polled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Clone for NeedsReadiness {
    fn clone(&self) -> Self {
        Self { ready: false, polled: std::sync::Arc::clone(&self.polled) }
    }
}

impl tower::Service<Request<Body>> for NeedsReadiness {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.polled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.ready = true;
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        let ready = std::mem::take(&mut self.ready);
        let response = if ready {
            (StatusCode::OK, "called when ready").into_response()
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "called without poll_ready").into_response()
        };
        std::future::ready(Ok(response))
    }
}

#[tokio::test]
async fn the_floor_drives_the_service_it_wraps_to_readiness_before_calling_it() {
    let authority = builder().build().expect("builds");
    let inner = NeedsReadiness::default();
    let polled = std::sync::Arc::clone(&inner.polled);
    let service = RequireAccessToken::new(authority).layer(inner);
    let request = Request::builder()
        .uri("/reports")
        .header(header::AUTHORIZATION, format!("Bearer {}", token("reports:read")))
        .body(Body::empty())
        .expect("a request");
    let response = service.oneshot(request).await.expect("infallible");
    reply(response).await.assert_ok("called when ready");
    assert_eq!(polled.load(std::sync::atomic::Ordering::SeqCst), 1, "the wrapped service was asked once");
}
