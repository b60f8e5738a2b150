//! Keys from the issuer over real HTTP: discovery and the JWKS cache (security spec
//! section 10, cases 149-167), against a key server each test starts on 127.0.0.1 and
//! controls (rotate, drop a key, fail, hang, send huge, chunked or HTML bodies, count
//! requests).

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, Request, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use http_body_util::BodyExt;
use scopegate::{AccessToken, Authority, AuthorityBuilder, testing::TestIssuer};
use serde_json::{Value, json};
use tower::ServiceExt;

const AUD: &str = "https://api.example.test";

/// What the key server answers on `/jwks`.
#[derive(Clone)]
enum Mode {
    Serve,
    Status(u16),
    Hang,
    Body { content_type: &'static str, body: String },
    Huge { chunked: bool },
    Redirect(String),
}

struct ServerState {
    issuer: Mutex<String>,
    jwks: Mutex<Value>,
    mode: Mutex<Mode>,
    cache_control: Mutex<Option<String>>,
    jwks_hits: AtomicUsize,
    discovery_hits: AtomicUsize,
    paths: Mutex<Vec<String>>,
    oidc_discovery: Mutex<bool>,
}

struct KeyServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
}

impl KeyServer {
    async fn start(jwks: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState {
            issuer: Mutex::new(format!("http://{addr}")),
            jwks: Mutex::new(jwks),
            mode: Mutex::new(Mode::Serve),
            cache_control: Mutex::new(None),
            jwks_hits: AtomicUsize::new(0),
            discovery_hits: AtomicUsize::new(0),
            paths: Mutex::new(Vec::new()),
            oidc_discovery: Mutex::new(true),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(oidc_discovery))
            .route("/.well-known/oauth-authorization-server", get(oauth_discovery))
            .route("/jwks", get(jwks_handler))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn jwks_uri(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    fn set_jwks(&self, jwks: Value) {
        *self.state.jwks.lock().unwrap() = jwks;
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }
}

async fn oidc_discovery(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    if !*state.oidc_discovery.lock().unwrap() {
        return StatusCode::NOT_FOUND.into_response();
    }
    discovery(&state, &headers)
}

async fn oauth_discovery(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    discovery(&state, &headers)
}

fn discovery(state: &ServerState, headers: &HeaderMap) -> Response {
    state.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let doc = json!({"issuer": *state.issuer.lock().unwrap(), "jwks_uri": format!("http://{host}/jwks")});
    ([(header::CONTENT_TYPE, "application/json")], doc.to_string()).into_response()
}

async fn jwks_handler(State(state): State<Arc<ServerState>>, uri: Uri) -> Response {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    state.paths.lock().unwrap().push(uri.to_string());
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        Mode::Serve => {
            let body = state.jwks.lock().unwrap().to_string();
            let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(cc) = state.cache_control.lock().unwrap().clone() {
                response.headers_mut().insert(header::CACHE_CONTROL, cc.parse().unwrap());
            }
            response
        }
        Mode::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Mode::Body { content_type, body } => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Mode::Huge { chunked } => {
            // A valid-looking JSON document of 1 MiB: `{"keys":[], "pad":"xxxx…"}`.
            let pad = "x".repeat(1024 * 1024);
            let body = format!(r#"{{"keys":[],"pad":"{pad}"}}"#);
            if chunked {
                let chunks: Vec<Result<Bytes, Infallible>> =
                    body.into_bytes().chunks(16 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
                Body::from_stream(futures_util::stream::iter(chunks)).into_response()
            } else {
                body.into_response()
            }
        }
        Mode::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
    }
}

/// The outcome of one request through a real `Router`.
#[derive(Debug)]
struct Outcome {
    status: u16,
    reason: String,
    retry_after: Option<String>,
}

async fn me(token: AccessToken) -> String {
    token.subject().to_owned()
}

async fn call(authority: &Authority, token: &str) -> Outcome {
    let app = Router::new().route("/me", get(me)).with_state(authority.clone());
    let request = Request::get("/me").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let reason = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    Outcome { status, reason, retry_after }
}

fn issuer_for(server: &KeyServer) -> TestIssuer {
    TestIssuer::new().with_issuer(server.url())
}

/// A key server publishing the keys of an issuer named after it.
async fn serving_test_keys() -> (KeyServer, TestIssuer) {
    let server = KeyServer::start(json!({"keys": []})).await;
    let issuer = issuer_for(&server);
    server.set_jwks(issuer.jwks());
    (server, issuer)
}

fn builder(server: &KeyServer) -> AuthorityBuilder {
    Authority::builder()
        .issuer(server.url())
        .audience(AUD)
        .jwks_refresh_cooldown(Duration::from_secs(1))
        .http_timeouts(Duration::from_secs(1), Duration::from_secs(2))
}

/// A JWK set with the issuer's keys plus `extra`.
fn jwks_with(issuer: &TestIssuer, extra: &[Value]) -> Value {
    let mut keys = issuer.jwks()["keys"].as_array().unwrap().clone();
    keys.extend(extra.iter().cloned());
    json!({ "keys": keys })
}

/// A new RSA key under `kid`, and an issuer (same `iss`) that signs with it.
fn rotated_key(server: &KeyServer, kid: &str) -> (Value, TestIssuer) {
    let fresh = TestIssuer::with_fresh_keys(server.url());
    let mut jwk = fresh.jwk("rsa-1");
    jwk["kid"] = kid.into();
    (jwk, fresh)
}

async fn eventually(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn case_057_kid_over_256_bytes_triggers_no_jwks_refresh() {
    // Security spec section 3 with keys over HTTP, where a refresh can be observed: a kid
    // too long to be one is malformed, refused before key lookup, and fetches nothing.
    let (server, issuer) = serving_test_keys().await;
    let authority = builder(&server).connect().await.unwrap();
    assert_eq!(server.hits(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the 1 s cooldown: a refresh would be allowed
    for kid in ["k".repeat(257), "é".repeat(129), "k".repeat(1_000)] {
        let outcome = call(&authority, &issuer.access_token().kid(&kid).sign()).await;
        assert_eq!((outcome.status, outcome.reason.as_str()), (401, "malformed_token"), "{} bytes", kid.len());
    }
    assert_eq!(server.hits(), 1, "no JWKS fetch for an oversized kid");
    // The control: an unknown kid of 256 bytes does trigger the refresh.
    let outcome = call(&authority, &issuer.access_token().kid(&"k".repeat(256)).sign()).await;
    assert_eq!((outcome.status, outcome.reason.as_str()), (401, "unknown_key"));
    assert_eq!(server.hits(), 2, "one refresh for an unknown kid of legal length");
}

#[tokio::test]
async fn case_149_connect_fails_at_startup_when_the_issuer_is_down() {
    // Bind and drop a listener: nothing answers on that port.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let error = Authority::builder()
        .issuer(format!("http://127.0.0.1:{port}"))
        .audience(AUD)
        .http_timeouts(Duration::from_secs(1), Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.setting(), "issuer");
    assert!(error.to_string().contains("could not load the issuer's keys"), "{error}");
}

#[tokio::test]
async fn an_unreachable_issuer_is_reported_as_such_with_the_url_and_the_cause() {
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let error = Authority::builder()
        .issuer(format!("http://127.0.0.1:{port}"))
        .audience(AUD)
        .http_timeouts(Duration::from_secs(1), Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert!(error.is_unreachable(), "{error}");
    // The last location discovery tried, and why it failed; `Debug` reads the same.
    let expected = format!(
        "scopegate: cannot reach the issuer of the `issuer` setting: could not load the issuer's keys (GET http://127.0.0.1:{port}/.well-known/oauth-authorization-server): the connection was refused or reset"
    );
    assert_eq!(error.to_string(), expected);
    assert_eq!(format!("{error:?}"), expected);
}

#[tokio::test]
async fn an_issuer_that_answers_with_an_error_status_is_invalid_not_unreachable() {
    let (server, _) = serving_test_keys().await;
    server.set_mode(Mode::Status(404));
    let error = builder(&server).connect().await.unwrap_err();
    assert!(!error.is_unreachable(), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "scopegate: invalid `issuer` setting: could not load the issuer's keys (GET {}): the server answered HTTP 404",
            server.jwks_uri()
        )
    );
}

#[tokio::test]
async fn case_149_lazy_start_answers_503_until_keys_arrive_then_accepts() {
    let issuer = TestIssuer::new();
    let server = KeyServer::start(json!({"keys": []})).await;
    let issuer = issuer.with_issuer(server.url());
    server.set_mode(Mode::Status(500));
    let authority = builder(&server).build().unwrap();
    let token = issuer.access_token().sign();

    let outcome = call(&authority, &token).await;
    assert_eq!((outcome.status, outcome.reason.as_str()), (503, "keys_unavailable"));
    assert_eq!(outcome.retry_after.as_deref(), Some("1"));

    server.set_jwks(issuer.jwks());
    server.set_mode(Mode::Serve);
    eventually("keys to load after the issuer recovers", Duration::from_secs(10), async || {
        call(&authority, &token).await.status == 200
    })
    .await;
}

#[tokio::test]
async fn case_150_concurrent_requests_with_the_same_unknown_kid_cause_exactly_one_fetch() {
    let (server, issuer) = serving_test_keys().await;
    let authority = builder(&server).connect().await.unwrap();
    assert_eq!(server.hits(), 1);

    let (new_key, signer) = rotated_key(&server, "rsa-2");
    server.set_jwks(jwks_with(&issuer, &[new_key]));
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the cooldown of the first fetch
    let token = signer.access_token().kid("rsa-2").sign();

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (authority, token) = (authority.clone(), token.clone());
        tasks.spawn(async move { call(&authority, &token).await.status });
    }
    let statuses = tasks.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(server.hits(), 2, "one initial fetch and exactly one refresh");
}

#[tokio::test]
async fn case_150_kid_still_unknown_after_the_refresh_is_badtok() {
    let (server, issuer) = serving_test_keys().await;
    let authority = builder(&server).connect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let outcome = call(&authority, &issuer.access_token().kid("nope").sign()).await;
    assert_eq!((outcome.status, outcome.reason.as_str()), (401, "unknown_key"));
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn case_151_unknown_kid_again_within_the_cooldown_is_refused_without_a_fetch() {
    let (server, issuer) = serving_test_keys().await;
    let authority = builder(&server).jwks_refresh_cooldown(Duration::from_secs(30)).connect().await.unwrap();
    for kid in ["x1", "x1", "x2"] {
        let outcome = call(&authority, &issuer.access_token().kid(kid).sign()).await;
        assert_eq!((outcome.status, outcome.reason.as_str()), (401, "unknown_key"));
    }
    assert_eq!(server.hits(), 1, "the initial fetch only: every unknown kid fell inside the cooldown");
}

#[tokio::test]
async fn case_151_a_kid_refused_during_the_cooldown_is_accepted_at_the_first_fetch_after_it() {
    let (server, issuer) = serving_test_keys().await;
    // The slow part (an RSA key) before the clock starts.
    let (new_key, signer) = rotated_key(&server, "rsa-2");
    let token = signer.access_token().kid("rsa-2").sign();
    // The cooldown runs from the start of the startup fetch, somewhere between these two
    // instants; the times below are taken from the safe end of each, so a slow machine
    // cannot move a request across the cooldown's end.
    let before_connect = Instant::now();
    let authority = builder(&server).jwks_refresh_cooldown(Duration::from_secs(5)).connect().await.unwrap();
    let after_connect = Instant::now();
    server.set_jwks(jwks_with(&issuer, &[new_key]));
    // Inside the cooldown of the startup fetch: refused without a fetch.
    tokio::time::sleep_until((before_connect + Duration::from_millis(2000)).into()).await;
    let outcome = call(&authority, &token).await;
    assert!(before_connect.elapsed() < Duration::from_secs(5), "too slow to test: {:?}", before_connect.elapsed());
    assert_eq!((outcome.status, outcome.reason.as_str()), (401, "unknown_key"));
    assert_eq!(server.hits(), 1);
    // The cooldown of the startup fetch is over (not a cooldown from the refusal): the
    // next request fetches and is accepted.
    tokio::time::sleep_until((after_connect + Duration::from_millis(5100)).into()).await;
    assert_eq!(call(&authority, &token).await.status, 200);
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn case_152_a_flood_of_random_kids_is_rate_limited_per_cooldown() {
    let (server, issuer) = serving_test_keys().await;
    let authority = builder(&server).connect().await.unwrap();
    let other = KeyServer::start(issuer.with_issuer("unused").jwks()).await;
    let other_issuer = issuer_for(&other);
    other.set_jwks(other_issuer.jwks());
    let other_authority = builder(&other).connect().await.unwrap();

    let started = Instant::now();
    let mut n = 0u32;
    // At least 1 000 kids over at least 2.5 s (several cooldown windows), however slow the
    // machine: the bound below counts the windows that actually passed.
    while n < 1000 || started.elapsed() < Duration::from_millis(2500) {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..100 {
            n += 1;
            let (authority, token) = (authority.clone(), issuer.access_token().kid(&format!("random-{n}")).sign());
            tasks.spawn(async move { call(&authority, &token).await.status });
        }
        assert!(tasks.join_all().await.iter().all(|s| *s == 401));
    }
    let windows = started.elapsed().as_secs() as usize + 1;
    assert!(n >= 1000, "sent {n} tokens");
    assert!(
        server.hits() <= 1 + windows,
        "{} fetches for {n} random kids in {windows} cooldown windows",
        server.hits()
    );
    // Another issuer's cache is unaffected.
    assert_eq!(other.hits(), 1);
    assert_eq!(call(&other_authority, &other_issuer.access_token().sign()).await.status, 200);
}

/// Sends tokens with never-seen kids, 5 at a time every 50 ms (light enough not to slow
/// the timing of the tests running beside it), until `until` has passed since `started`;
/// each must be refused as `unknown_key`.
async fn flood_of_unknown_kids(authority: &Authority, issuer: &TestIssuer, started: Instant, until: Duration) {
    static N: AtomicUsize = AtomicUsize::new(0);
    while started.elapsed() < until {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let kid = format!("flood-{}", N.fetch_add(1, Ordering::Relaxed));
            let (authority, token) = (authority.clone(), issuer.access_token().kid(&kid).sign());
            tasks.spawn(async move { call(&authority, &token).await });
        }
        for outcome in tasks.join_all().await {
            assert_eq!((outcome.status, outcome.reason.as_str()), (401, "unknown_key"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn case_167_the_fetch_budget_bounds_a_flood_of_unknown_kids_and_the_scheduled_refresh_still_sees_a_new_key() {
    let (server, issuer) = serving_test_keys().await;
    // A TTL of 5 s: the scheduled refresh runs 4 s after the last successful fetch.
    *server.state.cache_control.lock().unwrap() = Some("max-age=5".to_owned());
    let authority = builder(&server)
        .jwks_ttl_bounds(Duration::from_secs(1), Duration::from_secs(60))
        .jwks_fetch_budget(3, 3)
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    // Six cooldown windows of unknown kids: the cooldown alone would allow six fetches;
    // the budget allows its burst of 3 (at 1 s, 2 s and 3 s), and the scheduled refresh
    // is not due before 7 s.
    flood_of_unknown_kids(&authority, &issuer, started, Duration::from_secs(6)).await;
    assert_eq!(server.hits(), 1 + 3, "the startup fetch and the burst, in {:?}", started.elapsed());

    // The issuer rotates while the flood goes on: the scheduled refresh, outside the
    // budget, picks the new key up.
    let (new_key, signer) = rotated_key(&server, "rsa-2");
    server.set_jwks(jwks_with(&issuer, &[new_key]));
    let published = Instant::now();
    let rotated = signer.access_token().kid("rsa-2").sign();
    loop {
        flood_of_unknown_kids(&authority, &issuer, Instant::now(), Duration::from_millis(200)).await;
        if call(&authority, &rotated).await.status == 200 {
            break;
        }
        assert!(published.elapsed() < Duration::from_secs(6), "the new key was not picked up");
    }
    assert_eq!(server.hits(), 1 + 3 + 1, "one scheduled refresh, no on-demand fetch");
    assert!(published.elapsed() <= Duration::from_secs(5), "seen {:?} after publication", published.elapsed());
}

#[tokio::test]
async fn case_153_while_the_issuer_hangs_known_kids_are_still_verified() {
    let (server, issuer) = serving_test_keys().await;
    let authority =
        builder(&server).http_timeouts(Duration::from_secs(5), Duration::from_secs(10)).connect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server.set_mode(Mode::Hang);

    // An unknown kid starts a refresh that hangs.
    let stuck = {
        let (authority, token) = (authority.clone(), issuer.access_token().kid("rotated").sign());
        tokio::spawn(async move { call(&authority, &token).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.hits(), 2, "the refresh is in flight");

    let token = issuer.access_token().sign();
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(call(&authority, &token).await.status, 200);
        assert!(started.elapsed() < Duration::from_millis(500), "a known kid waited {:?}", started.elapsed());
    }
    assert!(!stuck.is_finished(), "the unknown-kid request is still waiting for the hung refresh");
    stuck.abort();
}

#[tokio::test]
async fn case_154_the_jwks_url_never_carries_token_data() {
    let (server, issuer) = serving_test_keys().await;
    let authority = builder(&server).connect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let outcome = call(&authority, &issuer.access_token().kid("../../evil?kid=x").sign()).await;
    assert_eq!(outcome.status, 401);
    assert_eq!(*server.state.paths.lock().unwrap(), ["/jwks", "/jwks"]);
}

#[tokio::test]
async fn case_155_a_hanging_endpoint_fails_within_the_timeout_and_keeps_the_last_good_keys() {
    let (server, issuer) = serving_test_keys().await;
    let authority = builder(&server).connect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server.set_mode(Mode::Hang);
    let started = Instant::now();
    let outcome = call(&authority, &issuer.access_token().kid("new").sign()).await;
    assert_eq!((outcome.status, outcome.reason.as_str()), (401, "unknown_key"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the 2 s total timeout bounded the wait: {:?}",
        started.elapsed()
    );
    eventually("the failed fetch to be counted", Duration::from_secs(3), async || {
        authority.stats().jwks_fetch_failures == 1
    })
    .await;
    assert_eq!(call(&authority, &issuer.access_token().sign()).await.status, 200);
}

/// Makes the server misbehave, forces a refresh with an unknown kid, and checks the
/// fetch failed while the last good keys keep working.
async fn assert_failed_refresh_keeps_keys(mode: Mode, what: &str) {
    let (server, issuer) = serving_test_keys().await;
    let authority = builder(&server).connect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server.set_mode(mode);
    let outcome = call(&authority, &issuer.access_token().kid("new").sign()).await;
    assert_eq!((outcome.status, outcome.reason.as_str()), (401, "unknown_key"), "{what}");
    assert_eq!(server.hits(), 2, "{what}");
    assert_eq!(authority.stats().jwks_fetch_failures, 1, "{what}");
    assert_eq!(call(&authority, &issuer.access_token().sign()).await.status, 200, "{what}: last good keys kept");
}

#[tokio::test]
async fn case_156_body_cap_is_enforced_with_and_without_content_length() {
    assert_failed_refresh_keeps_keys(Mode::Huge { chunked: false }, "1 MiB with Content-Length").await;
    assert_failed_refresh_keeps_keys(Mode::Huge { chunked: true }, "1 MiB chunked").await;
}

#[tokio::test]
async fn case_156_more_than_100_keys_is_a_failed_fetch() {
    let issuer = TestIssuer::new();
    let jwk = issuer.jwk("ed-1");
    let keys: Vec<Value> = (0..101)
        .map(|i| {
            let mut k = jwk.clone();
            k["kid"] = format!("k{i}").into();
            k
        })
        .collect();
    let body = json!({ "keys": keys }).to_string();
    assert_failed_refresh_keeps_keys(Mode::Body { content_type: "application/json", body }, "101 keys").await;
}

#[tokio::test]
async fn case_157_errors_and_unusable_documents_keep_the_last_good_keys() {
    assert_failed_refresh_keeps_keys(Mode::Status(500), "HTTP 500").await;
    assert_failed_refresh_keeps_keys(Mode::Status(404), "HTTP 404").await;
    let html = "<html><body>Please log in to the Wi-Fi</body></html>".to_owned();
    assert_failed_refresh_keeps_keys(Mode::Body { content_type: "text/html", body: html }, "captive portal").await;
    let not_json = "keys: none".to_owned();
    assert_failed_refresh_keeps_keys(Mode::Body { content_type: "application/json", body: not_json }, "not JSON").await;
    let no_keys = r#"{"jwks":[]}"#.to_owned();
    assert_failed_refresh_keeps_keys(Mode::Body { content_type: "application/json", body: no_keys }, "no keys").await;
    let empty = r#"{"keys":[]}"#.to_owned();
    assert_failed_refresh_keeps_keys(Mode::Body { content_type: "application/json", body: empty }, "zero keys").await;
    let only_bad = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"new"}]}"#.to_owned();
    assert_failed_refresh_keeps_keys(
        Mode::Body { content_type: "application/json", body: only_bad },
        "no admissible key",
    )
    .await;
}

#[tokio::test]
async fn case_070_one_bad_key_in_a_fetched_set_does_not_discard_the_others() {
    let server = KeyServer::start(json!({"keys": []})).await;
    let issuer = issuer_for(&server);
    let bad = json!({"kty": "RSA", "kid": "bad", "use": 5, "n": "AQAB", "e": "AQAB"});
    server.set_jwks(jwks_with(&issuer, &[bad]));
    let authority = builder(&server).connect().await.unwrap();
    assert_eq!(call(&authority, &issuer.access_token().sign()).await.status, 200);
}

#[tokio::test]
async fn case_158_stale_keys_are_served_for_max_stale_then_503_with_retry_after() {
    let (server, issuer) = serving_test_keys().await;
    *server.state.cache_control.lock().unwrap() = Some("max-age=1".to_owned());
    let authority = builder(&server)
        .jwks_ttl_bounds(Duration::from_secs(1), Duration::from_secs(60))
        .jwks_max_stale(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    server.set_mode(Mode::Status(503));
    let token = issuer.access_token().sign();
    // Expired after 1 s, still served stale until 3 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(call(&authority, &token).await.status, 200, "served stale");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let outcome = call(&authority, &token).await;
    assert_eq!((outcome.status, outcome.reason.as_str()), (503, "keys_unavailable"));
    assert_eq!(outcome.retry_after.as_deref(), Some("1"));
    assert!(authority.stats().jwks_fetch_failures >= 1);
    // The issuer comes back: keys load again.
    server.set_mode(Mode::Serve);
    eventually("keys to come back", Duration::from_secs(10), async || call(&authority, &token).await.status == 200)
        .await;
}

#[tokio::test]
async fn case_159_a_key_the_issuer_removed_stops_working_at_the_next_refresh() {
    let server = KeyServer::start(json!({"keys": []})).await;
    let issuer = issuer_for(&server);
    let (new_key, signer) = rotated_key(&server, "rsa-2");
    server.set_jwks(jwks_with(&issuer, std::slice::from_ref(&new_key)));
    let authority = builder(&server).connect().await.unwrap();
    let old = issuer.access_token().sign();
    assert_eq!(call(&authority, &old).await.status, 200);

    // The issuer drops rsa-1 and publishes rsa-3; a token with rsa-3 triggers the refresh.
    let (newer_key, newer_signer) = rotated_key(&server, "rsa-3");
    server.set_jwks(json!({ "keys": [new_key, newer_key] }));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call(&authority, &newer_signer.access_token().kid("rsa-3").sign()).await.status, 200);
    let outcome = call(&authority, &old).await;
    assert_eq!((outcome.status, outcome.reason.as_str()), (401, "unknown_key"));
    assert_eq!(call(&authority, &signer.access_token().kid("rsa-2").sign()).await.status, 200);
    assert_eq!(authority.stats().key_set_changes, 2);
}

#[tokio::test]
async fn case_160_cache_control_sets_the_ttl_and_refresh_is_proactive() {
    let (server, issuer) = serving_test_keys().await;
    *server.state.cache_control.lock().unwrap() = Some("public, max-age=2".to_owned());
    let authority =
        builder(&server).jwks_ttl_bounds(Duration::from_secs(1), Duration::from_secs(60)).connect().await.unwrap();
    // Refreshed at 80 % of 2 s without any request asking for it.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(server.hits(), 1);
    eventually("a proactive refresh", Duration::from_secs(3), async || server.hits() >= 2).await;
    // A rotated key published meanwhile is picked up without an unknown-kid miss.
    let (new_key, signer) = rotated_key(&server, "rsa-2");
    server.set_jwks(jwks_with(&issuer, &[new_key]));
    let hits = server.hits();
    eventually("the next proactive refresh", Duration::from_secs(4), async || server.hits() > hits).await;
    assert_eq!(call(&authority, &signer.access_token().kid("rsa-2").sign()).await.status, 200);
}

#[tokio::test]
async fn case_160_a_max_age_of_u64_max_is_clamped_to_the_upper_bound_without_panicking() {
    let (server, issuer) = serving_test_keys().await;
    for max_age in ["18446744073709551615", "18446744073709551616", "99999999999999999999999999"] {
        *server.state.cache_control.lock().unwrap() = Some(format!("max-age={max_age}"));
        let authority = builder(&server)
            .jwks_ttl_bounds(Duration::from_secs(1), scopegate::MAX_JWKS_DURATION)
            .jwks_max_stale(scopegate::MAX_JWKS_DURATION)
            .connect()
            .await
            .unwrap();
        assert_eq!(call(&authority, &issuer.access_token().sign()).await.status, 200, "max-age={max_age}");
    }
}

#[tokio::test]
async fn case_160_no_store_means_the_minimum_ttl() {
    let (server, _issuer) = serving_test_keys().await;
    *server.state.cache_control.lock().unwrap() = Some("no-store".to_owned());
    let _authority =
        builder(&server).jwks_ttl_bounds(Duration::from_secs(1), Duration::from_secs(60)).connect().await.unwrap();
    eventually("a refresh at 80 % of the 1 s minimum", Duration::from_secs(3), async || server.hits() >= 2).await;
}

#[tokio::test]
async fn case_161_http_jwks_uri_off_loopback_is_a_configuration_error() {
    let error = Authority::builder()
        .issuer("https://issuer.example")
        .audience(AUD)
        .jwks_uri("http://issuer.example/jwks")
        .build()
        .unwrap_err();
    assert_eq!(error.setting(), "jwks_uri");
    assert!(error.to_string().contains("must use https"), "{error}");
    let error = Authority::builder().issuer("http://issuer.example").audience(AUD).build().unwrap_err();
    assert_eq!(error.setting(), "issuer");
}

/// An https issuer (on loopback) whose discovery document names a plain-http loopback
/// `jwks_uri`: the key set may not leave TLS, so nothing is fetched from it.
#[tokio::test]
async fn case_161_a_discovered_jwks_uri_cannot_move_an_https_issuer_to_plain_http_loopback() {
    let ca = TestCa::new();
    let plain = KeyServer::start(TestIssuer::new().jwks()).await;
    let server = TlsKeyServer::start(ca.certificate("127.0.0.1"), json!({"keys": []})).await;
    let issuer = server.url("");
    let discovery = |jwks_uri: &str| TlsAnswer::Json(json!({"issuer": issuer, "jwks_uri": jwks_uri}).to_string());
    server.answer("/.well-known/openid-configuration", discovery(&plain.jwks_uri()));
    let builder = || {
        Authority::builder()
            .issuer(issuer.clone())
            .audience(AUD)
            .tls_root_certificate(ca.der.clone())
            .http_timeouts(Duration::from_secs(1), Duration::from_secs(2))
    };
    let error = builder().connect().await.unwrap_err();
    assert_eq!(error.setting(), "issuer");
    assert!(!error.is_unreachable(), "{error}");
    let expected = format!(
        "scopegate: invalid `issuer` setting: could not load the issuer's keys: the discovery document's jwks_uri is unusable: `{}` must use https: plain http to a loopback host is allowed only when the issuer itself is plain http on loopback",
        plain.jwks_uri()
    );
    assert_eq!(error.to_string(), expected);
    assert_eq!(plain.hits(), 0, "nothing was fetched over plain http");
    // Control: the same document naming the issuer's own https key set loads it.
    let keys = TestIssuer::new().with_issuer(issuer.clone());
    server.answer("/.well-known/openid-configuration", discovery(&server.url("/keys")));
    server.answer("/keys", TlsAnswer::Json(keys.jwks().to_string()));
    let authority = builder().connect().await.unwrap();
    assert_eq!(call(&authority, &keys.access_token().sign()).await.status, 200);
    assert_eq!(plain.hits(), 0);
}

/// A test CA and the certificates it (or nobody) vouches for.
struct TestCa {
    der: Vec<u8>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "scopegate test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Self { der, issuer: rcgen::Issuer::new(params, key) }
    }

    /// A server certificate for `name` (an IP address or a DNS name) signed by this CA,
    /// with its private key.
    fn certificate(&self, name: &str) -> (Vec<u8>, Vec<u8>) {
        self.certificate_for(&[name])
    }

    /// A server certificate for every one of `names`, signed by this CA, with its key.
    fn certificate_for(&self, names: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|&name| name.to_owned()).collect();
        let cert = rcgen::CertificateParams::new(names).unwrap().signed_by(&key, &self.issuer).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }
}

/// A certificate for `name` signed by its own key, with that key.
fn self_signed(name: &str) -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().self_signed(&key).unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

/// What the TLS key server answers on one path instead of its key set.
#[derive(Clone)]
enum TlsAnswer {
    /// `302 Found` to this location.
    Redirect(String),
    /// This JSON document.
    Json(String),
}

/// A key server over TLS on 127.0.0.1 (rustls, aws-lc-rs provider). It answers every
/// request with `jwks` (HTTP/1.1, one request per connection) using the certificate it
/// holds, which the test can swap, except on the paths given another answer; it counts
/// failed handshakes and answered requests, and records the paths asked for.
struct TlsKeyServer {
    addr: SocketAddr,
    config: Arc<Mutex<Arc<tokio_rustls::rustls::ServerConfig>>>,
    failed_handshakes: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
    answers: Arc<Mutex<HashMap<String, TlsAnswer>>>,
    paths: Arc<Mutex<Vec<String>>>,
}

fn tls_config((cert, key): (Vec<u8>, Vec<u8>)) -> Arc<tokio_rustls::rustls::ServerConfig> {
    use tokio_rustls::rustls::{
        ServerConfig,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    };
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert)], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
        .unwrap();
    Arc::new(config)
}

impl TlsKeyServer {
    async fn start(certificate: (Vec<u8>, Vec<u8>), jwks: Value) -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Arc::new(Mutex::new(tls_config(certificate)));
        let failed_handshakes = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicUsize::new(0));
        let answers: Arc<Mutex<HashMap<String, TlsAnswer>>> = Arc::default();
        let paths: Arc<Mutex<Vec<String>>> = Arc::default();
        let (shared, failed, served) = (Arc::clone(&config), Arc::clone(&failed_handshakes), Arc::clone(&answered));
        let (answers_read, paths_written) = (Arc::clone(&answers), Arc::clone(&paths));
        let body = jwks.to_string();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&*shared.lock().unwrap()));
                let (failed, served, body) = (Arc::clone(&failed), Arc::clone(&served), body.clone());
                let (answers, paths) = (Arc::clone(&answers_read), Arc::clone(&paths_written));
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        failed.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    // The request line: `GET /path HTTP/1.1`.
                    let head = String::from_utf8_lossy(&request);
                    let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                    paths.lock().unwrap().push(path.clone());
                    let ok = |body: &str| {
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    let answer = answers.lock().unwrap().get(&path).cloned();
                    let response = match answer {
                        Some(TlsAnswer::Redirect(to)) => format!(
                            "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        ),
                        Some(TlsAnswer::Json(document)) => ok(&document),
                        None => ok(&body),
                    };
                    served.fetch_add(1, Ordering::SeqCst);
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self { addr, config, failed_handshakes, answered, answers, paths }
    }

    fn jwks_uri(&self) -> String {
        format!("https://{}/jwks", self.addr)
    }

    /// `https://127.0.0.1:<port>` followed by `path`.
    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Answers `path` with `answer` from now on.
    fn answer(&self, path: &str, answer: TlsAnswer) {
        self.answers.lock().unwrap().insert(path.to_owned(), answer);
    }

    /// The paths asked for so far, in order.
    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }

    fn set_certificate(&self, certificate: (Vec<u8>, Vec<u8>)) {
        *self.config.lock().unwrap() = tls_config(certificate);
    }

    fn counts(&self) -> (usize, usize) {
        (self.failed_handshakes.load(Ordering::SeqCst), self.answered.load(Ordering::SeqCst))
    }
}

const TLS_ISSUER: &str = "https://issuer.tls.test/";

/// An authority fetching its keys from `server`, trusting only `ca`.
fn tls_builder(server: &TlsKeyServer, ca: &TestCa) -> AuthorityBuilder {
    tls_builder_at(server.jwks_uri(), ca)
}

/// An authority fetching its keys from `jwks_uri`, trusting only `ca`.
fn tls_builder_at(jwks_uri: String, ca: &TestCa) -> AuthorityBuilder {
    Authority::builder()
        .issuer(TLS_ISSUER)
        .audience(AUD)
        .jwks_uri(jwks_uri)
        .tls_root_certificate(ca.der.clone())
        .jwks_refresh_cooldown(Duration::from_secs(1))
        .http_timeouts(Duration::from_secs(1), Duration::from_secs(2))
}

#[tokio::test]
async fn case_162_keys_over_tls_from_a_certificate_the_trusted_ca_signed_for_this_host_are_fetched() {
    // The control for the two refusals below: the same server, the right certificate.
    let ca = TestCa::new();
    let issuer = TestIssuer::new().with_issuer(TLS_ISSUER);
    let server = TlsKeyServer::start(ca.certificate("127.0.0.1"), issuer.jwks()).await;
    let authority = tls_builder(&server, &ca).connect().await.unwrap();
    assert_eq!(server.counts(), (0, 1));
    assert_eq!(call(&authority, &issuer.access_token().sign()).await.status, 200);
}

#[tokio::test]
async fn case_162_a_self_signed_certificate_fails_the_fetch_at_the_handshake() {
    let ca = TestCa::new();
    let server = TlsKeyServer::start(self_signed("127.0.0.1"), TestIssuer::new().jwks()).await;
    let error = tls_builder(&server, &ca).connect().await.unwrap_err();
    assert_eq!(error.setting(), "jwks_uri");
    assert!(error.is_unreachable(), "{error}");
    let expected = format!(
        "scopegate: cannot reach the issuer of the `jwks_uri` setting: could not load the issuer's keys (GET {}): the TLS handshake failed (certificate not trusted, or issued for another name)",
        server.jwks_uri()
    );
    assert_eq!(error.to_string(), expected);
    // The server sees the handshake fail (the client's alert) a moment later.
    eventually("the server to see the handshake fail", Duration::from_secs(2), async || server.counts().0 >= 1).await;
    assert_eq!(server.counts().1, 0, "no request was sent over an unverified connection");
}

#[tokio::test]
async fn case_162_a_certificate_for_another_name_fails_the_fetch_at_the_handshake() {
    // Signed by the trusted CA, but for another host: only the name check refuses it.
    let ca = TestCa::new();
    let server = TlsKeyServer::start(ca.certificate("keys.example.test"), TestIssuer::new().jwks()).await;
    let error = tls_builder(&server, &ca).connect().await.unwrap_err();
    assert_eq!(error.setting(), "jwks_uri");
    assert!(error.is_unreachable(), "{error}");
    let expected = format!(
        "scopegate: cannot reach the issuer of the `jwks_uri` setting: could not load the issuer's keys (GET {}): the TLS handshake failed (certificate not trusted, or issued for another name)",
        server.jwks_uri()
    );
    assert_eq!(error.to_string(), expected);
    // The server sees the handshake fail (the client's alert) a moment later.
    eventually("the server to see the handshake fail", Duration::from_secs(2), async || server.counts().0 >= 1).await;
    assert_eq!(server.counts().1, 0, "no request was sent over an unverified connection");
}

#[tokio::test]
async fn case_162_a_certificate_failure_at_a_refresh_keeps_the_last_good_keys() {
    let ca = TestCa::new();
    let issuer = TestIssuer::new().with_issuer(TLS_ISSUER);
    let server = TlsKeyServer::start(ca.certificate("127.0.0.1"), issuer.jwks()).await;
    let authority = tls_builder(&server, &ca).connect().await.unwrap();
    for (round, certificate) in [self_signed("127.0.0.1"), ca.certificate("keys.example.test")].into_iter().enumerate()
    {
        server.set_certificate(certificate);
        tokio::time::sleep(Duration::from_millis(1100)).await; // past the cooldown
        // An unknown kid asks for a refresh, which fails at the handshake.
        let outcome = call(&authority, &issuer.access_token().kid("rotated").sign()).await;
        assert_eq!((outcome.status, outcome.reason.as_str()), (401, "unknown_key"));
        let stats = authority.stats();
        assert_eq!((stats.jwks_fetches, stats.jwks_fetch_failures), (2 + round as u64, 1 + round as u64));
        assert_eq!(server.counts().1, 1, "nothing answered after the first fetch");
        // The keys fetched over the good connection still verify.
        assert_eq!(call(&authority, &issuer.access_token().sign()).await.status, 200);
    }
}

#[tokio::test]
async fn case_163_redirects_to_http_or_another_host_are_refused() {
    let target = KeyServer::start(TestIssuer::new().jwks()).await;
    let server = KeyServer::start(json!({"keys": []})).await;
    server.set_mode(Mode::Redirect(target.jwks_uri()));
    let error = builder(&server).jwks_uri(server.jwks_uri()).connect().await.unwrap_err();
    assert!(error.to_string().contains("redirect"), "{error}");
    assert_eq!(target.hits(), 0, "the redirect was not followed");
}

/// The startup error of a key fetch from `url` that a refused redirect failed.
fn refused_redirect(url: &str) -> String {
    format!(
        "scopegate: invalid `jwks_uri` setting: could not load the issuer's keys (GET {url}): the server redirected to another host, to http, or more than once"
    )
}

#[tokio::test]
async fn case_163_one_redirect_over_https_to_the_same_host_and_port_is_followed() {
    let ca = TestCa::new();
    let issuer = TestIssuer::new().with_issuer(TLS_ISSUER);
    let server = TlsKeyServer::start(ca.certificate("127.0.0.1"), issuer.jwks()).await;
    server.answer("/old-jwks", TlsAnswer::Redirect(server.url("/jwks")));
    let authority = tls_builder_at(server.url("/old-jwks"), &ca).connect().await.unwrap();
    assert_eq!(server.paths(), ["/old-jwks", "/jwks"]);
    let stats = authority.stats();
    assert_eq!((stats.jwks_fetches, stats.jwks_fetch_failures), (1, 0));
    assert_eq!(call(&authority, &issuer.access_token().sign()).await.status, 200);
}

#[tokio::test]
async fn case_163_a_second_redirect_is_refused_and_its_target_gets_no_request() {
    let ca = TestCa::new();
    let server = TlsKeyServer::start(ca.certificate("127.0.0.1"), TestIssuer::new().jwks()).await;
    server.answer("/first", TlsAnswer::Redirect(server.url("/second")));
    server.answer("/second", TlsAnswer::Redirect(server.url("/jwks")));
    let error = tls_builder_at(server.url("/first"), &ca).connect().await.unwrap_err();
    assert_eq!(error.setting(), "jwks_uri");
    assert!(!error.is_unreachable(), "{error}");
    assert_eq!(error.to_string(), refused_redirect(&server.url("/first")));
    assert_eq!(server.paths(), ["/first", "/second"], "the second hop's target got no request");
}

#[tokio::test]
async fn case_163_a_redirect_to_another_port_of_the_same_host_is_refused() {
    let ca = TestCa::new();
    let server = TlsKeyServer::start(ca.certificate("127.0.0.1"), json!({"keys": []})).await;
    // Same CA, same address, a certificate for it: only the port differs.
    let other = TlsKeyServer::start(ca.certificate("127.0.0.1"), TestIssuer::new().jwks()).await;
    server.answer("/jwks", TlsAnswer::Redirect(other.jwks_uri()));
    let error = tls_builder(&server, &ca).connect().await.unwrap_err();
    assert_eq!(error.setting(), "jwks_uri");
    assert!(!error.is_unreachable(), "{error}");
    assert_eq!(error.to_string(), refused_redirect(&server.jwks_uri()));
    assert_eq!(server.paths(), ["/jwks"]);
    assert_eq!(other.counts(), (0, 0), "no connection to the other port, let alone a request");
    // Control: the other port itself serves the keys to an authority configured with it.
    tls_builder(&other, &ca).connect().await.unwrap();
    assert_eq!(other.counts(), (0, 1));
}

#[tokio::test]
async fn case_163_a_redirect_to_another_host_name_for_the_same_server_is_refused() {
    // One server, one certificate naming both `127.0.0.1` and `localhost`: the redirect
    // is refused for its host name alone, not by the handshake.
    let ca = TestCa::new();
    let issuer = TestIssuer::new().with_issuer(TLS_ISSUER);
    let server = TlsKeyServer::start(ca.certificate_for(&["127.0.0.1", "localhost"]), issuer.jwks()).await;
    let by_name = format!("https://localhost:{}/keys", server.addr.port());
    server.answer("/jwks", TlsAnswer::Redirect(by_name.clone()));
    let error = tls_builder(&server, &ca).connect().await.unwrap_err();
    assert_eq!(error.setting(), "jwks_uri");
    assert!(!error.is_unreachable(), "{error}");
    assert_eq!(error.to_string(), refused_redirect(&server.jwks_uri()));
    assert_eq!(server.paths(), ["/jwks"], "the redirect's target got no request");
    assert_eq!(server.counts(), (0, 1));
    // Control: configured directly, the host name's URL serves the keys.
    let authority = tls_builder_at(by_name, &ca).connect().await.unwrap();
    assert_eq!(server.paths(), ["/jwks", "/keys"]);
    assert_eq!(call(&authority, &issuer.access_token().sign()).await.status, 200);
}

#[tokio::test]
async fn case_164_discovered_jwks_uri_in_a_link_local_range_is_refused() {
    let server = KeyServer::start(json!({"keys": []})).await;
    // A discovery document pointing at the cloud metadata address.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let doc =
        json!({"issuer": format!("http://{addr}"), "jwks_uri": "https://169.254.169.254/latest/jwks"}).to_string();
    let app = Router::new().route("/.well-known/openid-configuration", get(move || async move { doc }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let error = Authority::builder()
        .issuer(format!("http://{addr}"))
        .audience(AUD)
        .http_timeouts(Duration::from_secs(1), Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("private, link-local or metadata"), "{error}");
    drop(server);
}

#[tokio::test]
async fn case_164_jku_and_x5u_in_a_token_cause_no_request() {
    let trap = KeyServer::start(json!({"keys": []})).await;
    let (server, issuer) = serving_test_keys().await;
    let authority = builder(&server).connect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (name, value) in [("jku", trap.jwks_uri()), ("x5u", trap.jwks_uri())] {
        let outcome = call(&authority, &issuer.access_token().header(name, value).kid("attacker").sign()).await;
        assert_eq!((outcome.status, outcome.reason.as_str()), (401, "unsupported_header"));
    }
    assert_eq!(trap.hits(), 0);
    assert_eq!(server.hits(), 1, "not even a refresh of the real JWKS");
}

#[tokio::test]
async fn case_165_discovery_issuer_must_match_byte_for_byte() {
    let server = KeyServer::start(TestIssuer::new().jwks()).await;
    *server.state.issuer.lock().unwrap() = format!("{}/", server.url());
    let error = builder(&server).connect().await.unwrap_err();
    assert_eq!(error.setting(), "issuer");
    assert!(error.to_string().contains("names another issuer"), "{error}");
}

#[tokio::test]
async fn case_165_rfc8414_discovery_is_the_fallback() {
    let (server, issuer) = serving_test_keys().await;
    *server.state.oidc_discovery.lock().unwrap() = false;
    let authority = builder(&server).connect().await.unwrap();
    assert_eq!(call(&authority, &issuer.access_token().sign()).await.status, 200);
    assert_eq!(server.state.discovery_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn case_166_key_sets_are_per_issuer() {
    let server_a = KeyServer::start(json!({"keys": []})).await;
    let server_b = KeyServer::start(json!({"keys": []})).await;
    let issuer_a = issuer_for(&server_a);
    let issuer_b = TestIssuer::with_fresh_keys(server_b.url());
    server_a.set_jwks(issuer_a.jwks());
    server_b.set_jwks(issuer_b.jwks());
    let authority_a = builder(&server_a).connect().await.unwrap();
    // iss = A, signed with B's key (same kid): refused by A.
    let forged = issuer_b.access_token().claim("iss", issuer_a.issuer()).sign();
    let outcome = call(&authority_a, &forged).await;
    assert_eq!((outcome.status, outcome.reason.as_str()), (401, "invalid_signature"));
    assert_eq!(call(&authority_a, &issuer_a.access_token().sign()).await.status, 200);
}

#[tokio::test]
async fn explicit_jwks_uri_skips_discovery() {
    let (server, issuer) = serving_test_keys().await;
    let authority = builder(&server).jwks_uri(server.jwks_uri()).connect().await.unwrap();
    assert_eq!(call(&authority, &issuer.access_token().sign()).await.status, 200);
    assert_eq!(server.state.discovery_hits.load(Ordering::SeqCst), 0);
}

#[test]
fn build_with_remote_keys_outside_a_runtime_is_a_configuration_error() {
    let error = Authority::builder().issuer("https://issuer.example/").audience(AUD).build().unwrap_err();
    assert_eq!(error.setting(), "keys");
}

#[test]
fn verify_outside_a_runtime_answers_from_the_current_keys_without_panicking() {
    use std::{
        future::Future,
        pin::pin,
        task::{Context, Poll, Waker},
    };

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (_server, issuer, authority) = runtime.block_on(async {
        let (server, issuer) = serving_test_keys().await;
        let authority = builder(&server).connect().await.unwrap();
        (server, issuer, authority)
    });
    std::thread::sleep(Duration::from_millis(1100)); // past the cooldown: a refresh would be allowed
    let poll_once = |token: String| {
        let mut future = pin!(authority.verify(&token));
        match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => result.map(|t| t.subject().to_owned()).map_err(|r| r.reason()),
            Poll::Pending => panic!("no fetch can start outside a runtime, so nothing waits"),
        }
    };
    assert_eq!(poll_once(issuer.access_token().sign()), Ok("user-123".to_owned()));
    assert_eq!(poll_once(issuer.access_token().kid("rotated").sign()), Err("unknown_key"));
    drop(runtime);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

#[test]
fn a_refresh_cancelled_with_its_runtime_does_not_wedge_later_refreshes() {
    // The key server runs on a runtime of its own, which outlives the authority's first one.
    let servers = runtime();
    let (server, issuer) = servers.block_on(serving_test_keys());
    let first = runtime();
    let authority = first
        .block_on(builder(&server).http_timeouts(Duration::from_secs(5), Duration::from_secs(10)).connect())
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // past the cooldown of the startup fetch
    server.set_mode(Mode::Hang);
    first.block_on(async {
        let (authority, token) = (authority.clone(), issuer.access_token().kid("rotated").sign());
        tokio::spawn(async move { call(&authority, &token).await });
        eventually("the refresh to hang in flight", Duration::from_secs(3), async || server.hits() == 2).await;
    });
    // Shutting the runtime down drops the hanging refresh task mid-fetch.
    drop(first);
    std::thread::sleep(Duration::from_millis(1100)); // past the cooldown of the cancelled fetch

    let (new_key, signer) = rotated_key(&server, "rsa-2");
    server.set_jwks(jwks_with(&issuer, &[new_key]));
    server.set_mode(Mode::Serve);
    let second = runtime();
    let started = Instant::now();
    let outcome = second.block_on(call(&authority, &signer.access_token().kid("rsa-2").sign()));
    assert_eq!((outcome.status, outcome.reason.as_str()), (200, ""));
    assert!(started.elapsed() < Duration::from_secs(3), "waited {:?} for a refresh", started.elapsed());
    assert_eq!(server.hits(), 3, "the startup fetch, the cancelled one, and a new one");
    assert_eq!(second.block_on(async { authority.stats() }).jwks_fetch_failures, 1, "the cancelled fetch is a failure");
}

#[tokio::test]
async fn while_the_issuer_fails_the_scheduled_retries_back_off_doubling_from_the_cooldown() {
    let (server, issuer) = serving_test_keys().await;
    // A TTL of 1 s: the scheduled refresh is due 0.8 s after the startup fetch.
    *server.state.cache_control.lock().unwrap() = Some("max-age=1".to_owned());
    let authority =
        builder(&server).jwks_ttl_bounds(Duration::from_secs(1), Duration::from_secs(60)).connect().await.unwrap();
    server.set_mode(Mode::Status(503));
    // It fails at about 0.8 s; the retries wait the cooldown (1 s), then 2 s, then 4 s: at
    // about 1.8 s and 3.8 s, the next one not before 7.8 s.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert_eq!(server.hits(), 1 + 3, "the startup fetch, the scheduled refresh and two retries");
    assert_eq!(authority.stats().jwks_fetch_failures, 3);
    // The last good keys are served stale meanwhile.
    assert_eq!(call(&authority, &issuer.access_token().sign()).await.status, 200);
}

#[tokio::test]
async fn a_request_with_an_unknown_kid_waits_for_a_slow_refresh_within_the_http_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = TestIssuer::new().with_issuer(base.clone());
    let signer = TestIssuer::with_fresh_keys(base.clone());
    let mut new_key = signer.jwk("rsa-1");
    new_key["kid"] = "rsa-2".into();
    let jwks = Arc::new(Mutex::new(issuer.jwks()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (served, counted) = (Arc::clone(&jwks), Arc::clone(&hits));
    let app = Router::new().route(
        "/jwks",
        get(move || {
            let (served, counted) = (Arc::clone(&served), Arc::clone(&counted));
            async move {
                // Every fetch after the startup one takes 1.5 s.
                if counted.fetch_add(1, Ordering::SeqCst) > 0 {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
                let body = served.lock().unwrap().to_string();
                ([(header::CONTENT_TYPE, "application/json")], body)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let authority = Authority::builder()
        .issuer(base.clone())
        .audience(AUD)
        .jwks_uri(format!("{base}/jwks"))
        .jwks_refresh_cooldown(Duration::from_secs(1))
        .http_timeouts(Duration::from_secs(1), Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the cooldown of the startup fetch
    *jwks.lock().unwrap() = jwks_with(&issuer, &[new_key]);
    let started = Instant::now();
    let outcome = call(&authority, &signer.access_token().kid("rsa-2").sign()).await;
    assert_eq!((outcome.status, outcome.reason.as_str()), (200, ""), "after {:?}", started.elapsed());
    assert!(started.elapsed() >= Duration::from_millis(1500), "answered after {:?}", started.elapsed());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn without_usable_keys_the_503_asks_to_retry_after_the_refresh_cooldown() {
    let (server, issuer) = serving_test_keys().await;
    server.set_mode(Mode::Status(500));
    let authority = builder(&server).jwks_refresh_cooldown(Duration::from_secs(45)).build().unwrap();
    let outcome = call(&authority, &issuer.access_token().sign()).await;
    assert_eq!(
        (outcome.status, outcome.reason.as_str(), outcome.retry_after.as_deref()),
        (503, "keys_unavailable", Some("45"))
    );
}

#[tokio::test]
async fn a_failed_discovery_is_tried_again_a_second_later_and_the_keys_load_once_it_answers() {
    let (server, issuer) = serving_test_keys().await;
    // Discovery fails at first: the document names another issuer.
    *server.state.issuer.lock().unwrap() = format!("{}/", server.url());
    // A cooldown of 30 s: no request may fetch, the retries are the maintenance task's.
    let authority = builder(&server).jwks_refresh_cooldown(Duration::from_secs(30)).build().unwrap();
    let token = issuer.access_token().sign();
    let discoveries = || server.state.discovery_hits.load(Ordering::SeqCst);
    eventually("the first discovery to fail", Duration::from_secs(3), async || discoveries() > 0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first = discoveries();
    assert_eq!(call(&authority, &token).await.status, 503);
    // The first retry, about a second later, fails as well.
    eventually("the first retry", Duration::from_secs(3), async || discoveries() > first).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    *server.state.issuer.lock().unwrap() = server.url();
    // The next retry comes more than a second after the last failure: discovery is
    // fetched again, and the keys load.
    eventually("the keys to load after discovery recovers", Duration::from_secs(5), async || {
        call(&authority, &token).await.status == 200
    })
    .await;
    assert_eq!(server.hits(), 1, "one JWKS fetch, once discovery answered");
}

#[tokio::test]
async fn past_max_stale_a_token_never_verified_before_is_refused_with_503_as_well() {
    let (server, issuer) = serving_test_keys().await;
    *server.state.cache_control.lock().unwrap() = Some("max-age=1".to_owned());
    let authority = builder(&server)
        .jwks_ttl_bounds(Duration::from_secs(1), Duration::from_secs(60))
        .jwks_max_stale(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    server.set_mode(Mode::Status(503));
    // Expired after 1 s, too stale after 2 s: a token the cache has never seen is checked
    // against the key set itself, which may no longer be used.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let outcome = call(&authority, &issuer.access_token().sign()).await;
    assert_eq!(
        (outcome.status, outcome.reason.as_str(), outcome.retry_after.as_deref()),
        (503, "keys_unavailable", Some("1"))
    );
}
