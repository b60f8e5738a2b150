//! The `UserInfo` extractor over real HTTP, against an issuer each test starts on
//! 127.0.0.1 that serves discovery, its keys and `/userinfo`, counts the `/userinfo`
//! calls, and answers them as told (JSON, a signed JWT, a status, a hang, garbage, 10 MB).

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, Request, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use http_body_util::BodyExt;
use scopegate::{
    AccessToken, Authority, AuthorityBuilder, UserInfo,
    testing::{DEFAULT_CLIENT_ID, DEFAULT_SUBJECT, TestClock, TestIssuer},
};
use serde_json::{Value, json};
use tower::ServiceExt;

const AUD: &str = "https://api.example.test";

/// What the issuer answers on `/userinfo`.
#[derive(Clone)]
enum Mode {
    Json(Value),
    Jwt(String),
    Status(u16),
    Hang,
    Body { content_type: &'static str, body: String },
    Huge,
}

struct ServerState {
    issuer: String,
    jwks: Value,
    mode: Mutex<Mode>,
    delay: Mutex<Duration>,
    advertise_userinfo: bool,
    calls: AtomicUsize,
    seen: Mutex<Vec<(String, String)>>,
}

struct Issuer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    keys: TestIssuer,
}

impl Issuer {
    async fn start(mode: Mode) -> Self {
        Self::start_with(mode, true).await
    }

    async fn start_with(mode: Mode, advertise_userinfo: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let keys = TestIssuer::new().with_issuer(format!("http://{addr}"));
        let state = Arc::new(ServerState {
            issuer: keys.issuer().to_owned(),
            jwks: keys.jwks(),
            mode: Mutex::new(mode),
            delay: Mutex::new(Duration::ZERO),
            advertise_userinfo,
            calls: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(|State(state): State<Arc<ServerState>>| async move { Json(state.jwks.clone()) }))
            .route("/userinfo", get(userinfo))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state, keys }
    }

    fn userinfo_url(&self) -> String {
        format!("http://{}/userinfo", self.addr)
    }

    fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// Static keys of this issuer, and its `/userinfo` configured explicitly.
    fn builder(&self) -> AuthorityBuilder {
        self.keys.authority_builder(AUD).userinfo_endpoint(self.userinfo_url())
    }

    fn authority(&self) -> Authority {
        self.builder().build().unwrap()
    }

    fn token(&self) -> String {
        self.keys.access_token().scope("profile").sign()
    }
}

async fn discovery(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let mut doc = json!({"issuer": state.issuer, "jwks_uri": format!("http://{host}/jwks")});
    if state.advertise_userinfo {
        doc["userinfo_endpoint"] = json!(format!("http://{host}/userinfo"));
    }
    Json(doc).into_response()
}

async fn userinfo(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    state.seen.lock().unwrap().push((header(header::AUTHORIZATION), header(header::ACCEPT)));
    let delay = *state.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        Mode::Json(value) => Json(value).into_response(),
        Mode::Jwt(jwt) => ([(header::CONTENT_TYPE, "application/jwt")], jwt).into_response(),
        Mode::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Mode::Body { content_type, body } => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Mode::Huge => {
            let pad = "x".repeat(10 * 1024 * 1024);
            ([(header::CONTENT_TYPE, "application/json")], format!(r#"{{"sub":"{DEFAULT_SUBJECT}","pad":"{pad}"}}"#))
                .into_response()
        }
    }
}

fn profile_json() -> Value {
    json!({
        "sub": DEFAULT_SUBJECT,
        "name": "Ada Lovelace",
        "preferred_username": "ada",
        "email": "ada@example.test",
        "email_verified": true,
        "picture": "https://example.test/ada.png",
        "department": "engines",
    })
}

#[derive(serde::Deserialize)]
struct Department {
    department: String,
}

async fn profile(user: UserInfo) -> Json<Value> {
    let department = user.claims::<Department>().map(|d| d.department).unwrap_or_default();
    Json(json!({
        "sub": user.subject(),
        "name": user.name(),
        "preferred_username": user.preferred_username(),
        "email": user.email(),
        "email_verified": user.email_verified(),
        "picture": user.picture(),
        "department": department,
        "signed": user.is_signed(),
        "json": user.json(),
    }))
}

async fn subject_only(token: AccessToken) -> String {
    token.subject().to_owned()
}

fn app(authority: &Authority) -> Router {
    Router::new().route("/profile", get(profile)).route("/token", get(subject_only)).with_state(authority.clone())
}

/// The outcome of one request through a real `Router`.
#[derive(Debug)]
struct Outcome {
    status: u16,
    body: Value,
    challenge: Option<String>,
    retry_after: Option<String>,
}

impl Outcome {
    fn reason(&self) -> &str {
        self.body.get("reason").and_then(Value::as_str).unwrap_or_default()
    }
}

async fn get_with(app: &Router, path: &str, token: Option<&str>) -> Outcome {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers();
    let challenge = headers.get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
    let retry_after = headers.get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Outcome { status, body, challenge, retry_after }
}

#[tokio::test]
async fn a_json_answer_gives_the_profile_with_typed_and_custom_claims() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let token = issuer.token();
    let outcome = get_with(&app(&issuer.authority()), "/profile", Some(&token)).await;
    assert_eq!(outcome.status, 200, "{outcome:?}");
    assert_eq!(outcome.body["sub"], DEFAULT_SUBJECT);
    assert_eq!(outcome.body["name"], "Ada Lovelace");
    assert_eq!(outcome.body["preferred_username"], "ada");
    assert_eq!(outcome.body["email"], "ada@example.test");
    assert_eq!(outcome.body["email_verified"], true);
    assert_eq!(outcome.body["picture"], "https://example.test/ada.png");
    assert_eq!(outcome.body["department"], "engines");
    assert_eq!(outcome.body["signed"], false);
    let raw: Value = serde_json::from_str(outcome.body["json"].as_str().unwrap()).unwrap();
    assert_eq!(raw, profile_json());
    // The endpoint got the presented token, and was told both answer types are fine.
    let seen = issuer.state.seen.lock().unwrap().clone();
    assert_eq!(seen, vec![(format!("Bearer {token}"), "application/json, application/jwt".to_owned())]);
}

#[tokio::test]
async fn the_endpoint_is_found_through_discovery() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let authority = Authority::builder().issuer(issuer.keys.issuer()).audience(AUD).connect().await.unwrap();
    let outcome = get_with(&app(&authority), "/profile", Some(&issuer.token())).await;
    assert_eq!((outcome.status, outcome.body["name"].as_str()), (200, Some("Ada Lovelace")), "{outcome:?}");
    assert_eq!(issuer.calls(), 1);
}

#[tokio::test]
async fn without_a_configured_or_discovered_endpoint_userinfo_is_a_500_misconfigured() {
    // Discovered keys, but the document advertises no userinfo_endpoint.
    let issuer = Issuer::start_with(Mode::Json(profile_json()), false).await;
    let authority = Authority::builder().issuer(issuer.keys.issuer()).audience(AUD).connect().await.unwrap();
    let outcome = get_with(&app(&authority), "/profile", Some(&issuer.token())).await;
    assert_eq!((outcome.status, outcome.reason()), (500, "misconfigured"), "{outcome:?}");
    // Static keys and no endpoint: there is no discovery document to ask.
    let outcome = get_with(&app(&issuer.keys.authority(AUD)), "/profile", Some(&issuer.token())).await;
    assert_eq!((outcome.status, outcome.reason()), (500, "misconfigured"), "{outcome:?}");
    assert_eq!(issuer.calls(), 0);
}

fn signed_profile(signer: &TestIssuer, claims: &Value) -> String {
    signer.access_token().typ("JWT").raw_claims(&claims.to_string()).sign()
}

#[tokio::test]
async fn a_signed_answer_verified_with_the_issuers_keys_is_accepted() {
    let issuer = Issuer::start(Mode::Json(json!({}))).await;
    let mut claims = profile_json();
    claims["iss"] = json!(issuer.keys.issuer());
    claims["aud"] = json!(DEFAULT_CLIENT_ID);
    issuer.set_mode(Mode::Jwt(signed_profile(&issuer.keys, &claims)));
    let outcome = get_with(&app(&issuer.authority()), "/profile", Some(&issuer.token())).await;
    assert_eq!(outcome.status, 200, "{outcome:?}");
    assert_eq!((outcome.body["name"].as_str(), outcome.body["signed"].as_bool()), (Some("Ada Lovelace"), Some(true)));
    // Untyped, without iss and aud, with aud an array naming the client: accepted too.
    for claims in [profile_json(), {
        let mut c = profile_json();
        c["aud"] = json!(["other", DEFAULT_CLIENT_ID]);
        c
    }] {
        let jwt = issuer.keys.access_token().without_header("typ").raw_claims(&claims.to_string()).sign();
        issuer.set_mode(Mode::Jwt(jwt));
        let outcome = get_with(&app(&issuer.authority()), "/profile", Some(&issuer.token())).await;
        assert_eq!(outcome.status, 200, "{outcome:?}");
    }
}

#[tokio::test]
async fn a_signed_answer_that_does_not_verify_is_a_502_userinfo_invalid() {
    let issuer = Issuer::start(Mode::Json(json!({}))).await;
    let another_key = TestIssuer::with_fresh_keys(issuer.keys.issuer());
    let mut wrong_iss = profile_json();
    wrong_iss["iss"] = json!("https://elsewhere.example/");
    let mut wrong_aud = profile_json();
    wrong_aud["aud"] = json!(AUD);
    let cases = [
        ("signed by another key", signed_profile(&another_key, &profile_json())),
        ("typed at+jwt", issuer.keys.access_token().raw_claims(&profile_json().to_string()).sign()),
        ("another iss", signed_profile(&issuer.keys, &wrong_iss)),
        ("an aud without the token's client", signed_profile(&issuer.keys, &wrong_aud)),
        ("not a JWS", "not-a-jwt".to_owned()),
    ];
    for (label, jwt) in cases {
        issuer.set_mode(Mode::Jwt(jwt));
        let outcome = get_with(&app(&issuer.authority()), "/profile", Some(&issuer.token())).await;
        assert_eq!((outcome.status, outcome.reason()), (502, "userinfo_invalid"), "{label}: {outcome:?}");
        assert_eq!(outcome.challenge, None, "{label}");
        assert_eq!(outcome.body["error"], "server_error", "{label}");
    }
}

#[tokio::test]
async fn an_answer_about_another_subject_is_refused_with_userinfo_subject_mismatch() {
    let mut other = profile_json();
    other["sub"] = json!("someone-else");
    let issuer = Issuer::start(Mode::Json(other.clone())).await;
    let authority = issuer.authority();
    let outcome = get_with(&app(&authority), "/profile", Some(&issuer.token())).await;
    assert_eq!((outcome.status, outcome.reason()), (401, "userinfo_subject_mismatch"), "{outcome:?}");
    assert_eq!(
        outcome.challenge.as_deref(),
        Some(
            "Bearer realm=\"https://api.example.test\", error=\"invalid_token\", error_description=\"The issuer's userinfo answer is about another subject than the access token\""
        )
    );
    // A signed answer about another subject, and an answer without `sub`, likewise.
    issuer.set_mode(Mode::Jwt(signed_profile(&issuer.keys, &other)));
    let outcome = get_with(&app(&authority), "/profile", Some(&issuer.token())).await;
    assert_eq!((outcome.status, outcome.reason()), (401, "userinfo_subject_mismatch"), "{outcome:?}");
    issuer.set_mode(Mode::Json(json!({"name": "nobody"})));
    let outcome = get_with(&app(&authority), "/profile", Some(&issuer.token())).await;
    assert_eq!((outcome.status, outcome.reason()), (401, "userinfo_subject_mismatch"), "{outcome:?}");
    assert_eq!(authority.rejections_by_reason(), vec![("userinfo_subject_mismatch", 3)]);
}

#[tokio::test]
async fn a_401_or_403_from_the_endpoint_is_userinfo_refused() {
    for status in [401, 403] {
        let issuer = Issuer::start(Mode::Status(status)).await;
        let outcome = get_with(&app(&issuer.authority()), "/profile", Some(&issuer.token())).await;
        assert_eq!((outcome.status, outcome.reason()), (401, "userinfo_refused"), "{status}: {outcome:?}");
        assert_eq!(
            outcome.challenge.as_deref(),
            Some(
                "Bearer realm=\"https://api.example.test\", error=\"invalid_token\", error_description=\"The issuer's userinfo endpoint refused the access token\""
            )
        );
    }
}

#[tokio::test]
async fn an_issuer_down_slow_answering_garbage_or_10_mb_gets_503_with_retry_after() {
    let issuer = Issuer::start(Mode::Hang).await;
    let slow = issuer.builder().http_timeouts(Duration::from_secs(1), Duration::from_secs(1)).build().unwrap();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let down =
        issuer.keys.authority_builder(AUD).userinfo_endpoint(format!("http://{closed}/userinfo")).build().unwrap();
    let started = std::time::Instant::now();
    for (label, authority, mode) in [
        ("slow", &slow, Mode::Hang),
        ("down", &down, Mode::Json(profile_json())),
        ("html", &issuer.authority(), Mode::Body { content_type: "text/html", body: "<html>".into() }),
        ("json that is not", &issuer.authority(), Mode::Body { content_type: "application/json", body: "{".into() }),
        ("an array", &issuer.authority(), Mode::Body { content_type: "application/json", body: "[]".into() }),
        ("500", &issuer.authority(), Mode::Status(500)),
        ("10 MB", &issuer.authority(), Mode::Huge),
    ] {
        issuer.set_mode(mode);
        let outcome = get_with(&app(authority), "/profile", Some(&issuer.token())).await;
        assert_eq!((outcome.status, outcome.reason()), (503, "userinfo_unavailable"), "{label}: {outcome:?}");
        assert_eq!(outcome.retry_after.as_deref(), Some("5"), "{label}");
        assert_eq!(outcome.challenge, None, "{label}");
    }
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_second_request_with_the_same_token_is_answered_from_the_cache() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let app = app(&issuer.authority());
    let token = issuer.token();
    for _ in 0..3 {
        assert_eq!(get_with(&app, "/profile", Some(&token)).await.status, 200);
    }
    assert_eq!(issuer.calls(), 1);
    // Another token of the same user is another entry.
    assert_eq!(get_with(&app, "/profile", Some(&issuer.token())).await.status, 200);
    assert_eq!(issuer.calls(), 2);
}

#[tokio::test]
async fn a_cached_answer_is_asked_again_after_its_ttl() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let app = app(&issuer.builder().userinfo_cache_ttl(Duration::from_millis(300)).build().unwrap());
    let token = issuer.token();
    assert_eq!(get_with(&app, "/profile", Some(&token)).await.status, 200);
    assert_eq!(get_with(&app, "/profile", Some(&token)).await.status, 200);
    assert_eq!(issuer.calls(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get_with(&app, "/profile", Some(&token)).await.status, 200);
    assert_eq!(issuer.calls(), 2);
}

#[tokio::test]
async fn a_cached_answer_never_outlives_the_tokens_exp() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let clock = TestClock::at_system_time();
    let app = app(&issuer.builder().clock(&clock).build().unwrap());
    let token = issuer.keys.access_token().expires_in(30).sign();
    assert_eq!(get_with(&app, "/profile", Some(&token)).await.status, 200);
    // Past exp, within the 60 s leeway: the token is still accepted, its answer is not reused.
    clock.advance(Duration::from_secs(31));
    assert_eq!(get_with(&app, "/profile", Some(&token)).await.status, 200);
    assert_eq!(issuer.calls(), 2);
}

/// Whether `token`'s answer is in the cache, asked while the endpoint fails with a 500:
/// a cached answer is served (200, no call), any other request reaches the endpoint and
/// gets 503. The failure is not cached, so the probe changes nothing.
async fn cached(issuer: &Issuer, app: &Router, token: &str) -> bool {
    let calls = issuer.calls();
    let outcome = get_with(app, "/profile", Some(token)).await;
    match (outcome.status, outcome.reason()) {
        (200, _) => {
            assert_eq!(issuer.calls(), calls, "a cached answer makes no call");
            true
        }
        (503, "userinfo_unavailable") => {
            assert_eq!(issuer.calls(), calls + 1, "an answer not cached is asked for");
            false
        }
        _ => panic!("{outcome:?}"),
    }
}

#[tokio::test]
async fn with_room_for_two_answers_a_third_tokens_answer_evicts_exactly_one_of_the_others() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let app = app(&issuer.builder().userinfo_cache_capacity(2).build().unwrap());
    let tokens = [issuer.token(), issuer.token(), issuer.token()];
    for token in &tokens {
        assert_eq!(get_with(&app, "/profile", Some(token)).await.status, 200);
    }
    assert_eq!(issuer.calls(), 3);
    issuer.set_mode(Mode::Status(500));
    // The newest answer is kept; the victim among the older two is arbitrary, but there
    // is exactly one.
    assert!(cached(&issuer, &app, &tokens[2]).await, "the third answer is cached");
    let kept = [cached(&issuer, &app, &tokens[0]).await, cached(&issuer, &app, &tokens[1]).await];
    assert_eq!(kept.iter().filter(|&&kept| kept).count(), 1, "{kept:?}");
    assert_eq!(issuer.calls(), 4);
}

#[tokio::test]
async fn a_full_userinfo_cache_drops_its_expired_answers_before_any_fresh_one() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let ttl = Duration::from_millis(300);
    let app = app(&issuer.builder().userinfo_cache_capacity(2).userinfo_cache_ttl(ttl).build().unwrap());
    let tokens = [issuer.token(), issuer.token(), issuer.token()];
    assert_eq!(get_with(&app, "/profile", Some(&tokens[0])).await.status, 200);
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    // The second fills the cache; the third finds the first expired and takes its place.
    for token in &tokens[1..] {
        assert_eq!(get_with(&app, "/profile", Some(token)).await.status, 200);
    }
    assert_eq!(issuer.calls(), 3);
    issuer.set_mode(Mode::Status(500));
    assert!(cached(&issuer, &app, &tokens[1]).await, "the fresh second answer was not evicted");
    assert!(cached(&issuer, &app, &tokens[2]).await, "the third answer is cached");
    assert!(!cached(&issuer, &app, &tokens[0]).await, "the expired first answer is gone");
    assert_eq!(issuer.calls(), 4);
}

/// A JSON answer about the default subject, `len` bytes long.
fn profile_of_len(len: usize) -> Mode {
    let frame = format!(r#"{{"sub":"{DEFAULT_SUBJECT}","pad":""}}"#).len();
    let pad = "x".repeat(len - frame);
    let body = format!(r#"{{"sub":"{DEFAULT_SUBJECT}","pad":"{pad}"}}"#);
    assert_eq!(body.len(), len);
    Mode::Body { content_type: "application/json", body }
}

#[tokio::test]
async fn a_userinfo_answer_is_cached_only_when_its_whole_cost_fits_the_byte_budget() {
    // An entry costs its token, its answer's text and 256 bytes.
    const BUDGET: usize = 64 * 1024;
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let app = app(&issuer.builder().userinfo_cache_max_bytes(BUDGET).build().unwrap());
    let twice = async |token: &str| {
        for _ in 0..2 {
            assert_eq!(get_with(&app, "/profile", Some(token)).await.status, 200);
        }
    };
    // Exactly the budget: cached.
    let filling = issuer.token();
    issuer.set_mode(profile_of_len(BUDGET - 256 - filling.len()));
    twice(&filling).await;
    assert_eq!(issuer.calls(), 1);
    // One byte over: asked for every time, and it evicts nothing.
    let over = issuer.token();
    issuer.set_mode(profile_of_len(BUDGET - 256 - over.len() + 1));
    twice(&over).await;
    assert_eq!(issuer.calls(), 3);
    twice(&filling).await;
    assert_eq!(issuer.calls(), 3, "the filling answer is still cached");
    // A small answer that fits only without the filling one evicts it.
    let small = issuer.token();
    issuer.set_mode(Mode::Json(profile_json()));
    twice(&small).await;
    assert_eq!(issuer.calls(), 4);
    issuer.set_mode(Mode::Status(500));
    assert!(cached(&issuer, &app, &small).await, "the small answer is cached");
    assert!(!cached(&issuer, &app, &filling).await, "the filling answer was evicted for the bytes");
    assert_eq!(issuer.calls(), 5);
}

#[tokio::test]
async fn a_burst_of_100_concurrent_requests_with_one_token_makes_one_call() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    issuer.set_delay(Duration::from_millis(300));
    let app = app(&issuer.authority());
    let token = issuer.token();
    let requests = (0..100).map(|_| {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move { get_with(&app, "/profile", Some(&token)).await.status })
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s.as_ref().unwrap() == 200), "{statuses:?}");
    assert_eq!(issuer.calls(), 1);
}

#[tokio::test]
async fn a_handler_without_userinfo_makes_no_call() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let app = app(&issuer.authority());
    for _ in 0..5 {
        let outcome = get_with(&app, "/token", Some(&issuer.token())).await;
        assert_eq!(outcome.status, 200, "{outcome:?}");
    }
    assert_eq!(issuer.calls(), 0);
}

#[tokio::test]
async fn userinfo_verifies_the_token_first() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let app = app(&issuer.authority());
    let outcome = get_with(&app, "/profile", None).await;
    assert_eq!((outcome.status, outcome.reason()), (401, "missing_credentials"));
    let expired = issuer.keys.access_token().expires_in(-3600).sign();
    let outcome = get_with(&app, "/profile", Some(&expired)).await;
    assert_eq!((outcome.status, outcome.reason()), (401, "token_expired"));
    assert_eq!(issuer.calls(), 0);
}

#[tokio::test]
async fn authority_userinfo_answers_outside_a_request() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let user = issuer.authority().userinfo(&issuer.token()).await.unwrap();
    assert_eq!((user.subject(), user.email()), (DEFAULT_SUBJECT, Some("ada@example.test")));
}

#[tokio::test]
async fn a_userinfo_endpoint_must_pass_the_url_policy() {
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    for url in ["http://example.com/userinfo", "http://10.0.0.1/userinfo", "ftp://example.com/", "no url"] {
        let error = issuer.keys.authority_builder(AUD).userinfo_endpoint(url).build().unwrap_err();
        assert_eq!(error.setting(), "userinfo_endpoint", "{url}");
    }
    let error = issuer.builder().userinfo_cache_ttl(Duration::ZERO).build().unwrap_err();
    assert_eq!(error.setting(), "userinfo_cache_ttl");
}

#[tokio::test]
async fn a_dpop_bound_token_with_its_proof_is_refused_by_userinfo_without_calling_the_issuer() {
    use scopegate::{TokenError, dpop::DpopPolicy, testing::DpopKey};
    let issuer = Issuer::start(Mode::Json(profile_json())).await;
    let authority = issuer.builder().dpop(DpopPolicy::Allowed).build().unwrap();
    let app = app(&authority);
    let key = DpopKey::generate();
    let token = issuer.keys.access_token().scope("profile").dpop_bound(&key).sign();
    let request = |path: &str| {
        let proof = key.proof("GET", &format!("{AUD}{path}")).access_token(&token).sign();
        Request::get(path)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap()
    };
    let response = app.clone().oneshot(request("/profile")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let algs = "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519";
    let description = TokenError::UserinfoDpopBound.description();
    assert_eq!(
        response.headers().get(header::WWW_AUTHENTICATE).unwrap().to_str().unwrap(),
        format!(
            "Bearer realm=\"{AUD}\", DPoP realm=\"{AUD}\", error=\"invalid_token\", error_description=\"{description}\", algs=\"{algs}\""
        )
    );
    let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["reason"], "userinfo_dpop_bound");
    assert_eq!(issuer.calls(), 0, "the bound token was not sent to the issuer");
    // The same request to a handler without UserInfo is accepted: only /userinfo cannot be served.
    let response = app.clone().oneshot(request("/token")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Bearer tokens still get their profile from the same authority.
    let outcome = get_with(&app, "/profile", Some(&issuer.token())).await;
    assert_eq!((outcome.status, issuer.calls()), (200, 1), "{outcome:?}");
    // Outside a request the bound token is refused as any bearer use of it is.
    let error = authority.userinfo(&token).await.unwrap_err();
    assert_eq!(error.reason(), "sender_constrained");
}
