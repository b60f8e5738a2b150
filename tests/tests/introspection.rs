//! Opaque access tokens through RFC 7662 introspection, over real HTTP against an
//! introspection endpoint each test starts on 127.0.0.1 and controls (answers, status,
//! hangs, garbage, huge bodies, delays), counting the calls it receives.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, Request, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http_body_util::BodyExt;
use scopegate::{
    AccessToken, Authority, AuthorityBuilder, ClientAuth, Verification, requires_scope, testing::TestIssuer,
};
use serde_json::{Value, json};
use tower::ServiceExt;

const AUD: &str = "https://api.example.test";
const CLIENT: &str = "api-introspector";
const SECRET: &str = "s3cret:with/odd+chars";
const OPAQUE: &str = "opaque-token-4f1c2a";

/// What the endpoint answers.
#[derive(Clone)]
enum Mode {
    Answer(Value),
    Raw(&'static str),
    /// A body with this content type.
    Typed(&'static str, String),
    Status(u16),
    Hang,
    Huge,
}

struct EndpointState {
    issuer: Mutex<String>,
    mode: Mutex<Mode>,
    delay: Mutex<Duration>,
    calls: AtomicUsize,
    authorization: Mutex<Option<String>>,
    accept: Mutex<Option<String>>,
    form: Mutex<String>,
    advertise: bool,
}

struct Endpoint {
    addr: SocketAddr,
    state: Arc<EndpointState>,
}

impl Endpoint {
    async fn start(answer: Value) -> Self {
        Self::start_with(answer, true).await
    }

    async fn start_with(answer: Value, advertise: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(EndpointState {
            issuer: Mutex::new(format!("http://{addr}")),
            mode: Mutex::new(Mode::Answer(answer)),
            delay: Mutex::new(Duration::ZERO),
            calls: AtomicUsize::new(0),
            authorization: Mutex::new(None),
            accept: Mutex::new(None),
            form: Mutex::new(String::new()),
            advertise,
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/introspect", post(introspect))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn url(&self) -> String {
        format!("http://{}/introspect", self.addr)
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

    /// A builder trusting the test issuer's keys (statically) with this endpoint configured.
    fn builder(&self) -> AuthorityBuilder {
        TestIssuer::new()
            .with_issuer(self.issuer())
            .authority_builder(AUD)
            .introspection(CLIENT, SECRET)
            .introspection_endpoint(self.url())
    }
}

async fn discovery(State(state): State<Arc<EndpointState>>) -> Json<Value> {
    let issuer = state.issuer.lock().unwrap().clone();
    let mut doc = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
    if state.advertise {
        doc["introspection_endpoint"] = format!("{issuer}/introspect").into();
    }
    Json(doc)
}

async fn jwks() -> Json<Value> {
    Json(TestIssuer::new().jwks())
}

async fn introspect(State(state): State<Arc<EndpointState>>, headers: HeaderMap, body: Bytes) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    *state.authorization.lock().unwrap() = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
    *state.accept.lock().unwrap() = headers.get(header::ACCEPT).map(|v| v.to_str().unwrap().to_owned());
    *state.form.lock().unwrap() = String::from_utf8(body.to_vec()).unwrap();
    let delay = *state.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        Mode::Answer(answer) => Json(answer).into_response(),
        Mode::Raw(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Mode::Typed(content_type, body) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Mode::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Mode::Huge => ([(header::CONTENT_TYPE, "application/json")], " ".repeat(10 * 1024 * 1024)).into_response(),
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A good answer for an opaque user token.
fn active(issuer: &str) -> Value {
    let now = now();
    json!({
        "active": true, "iss": issuer, "sub": "user-7", "client_id": "web-app", "aud": AUD,
        "scope": "read:appointments openid", "exp": now + 300, "iat": now, "token_type": "Bearer",
        "username": "jo", "jti": "j-1"
    })
}

#[requires_scope("read:appointments")]
async fn guarded(token: AccessToken) -> String {
    format!(
        "{} {:?} {:?} {}",
        token.subject(),
        token.client_id(),
        token.verified_by(),
        token.raw_claims().get("username").and_then(Value::as_str).unwrap_or("-")
    )
}

#[requires_scope("write:appointments")]
async fn writer() -> &'static str {
    "written"
}

fn app(authority: Authority) -> Router {
    Router::new().route("/guarded", get(guarded)).route("/write", get(writer)).with_state(authority)
}

struct Outcome {
    status: StatusCode,
    challenge: Option<String>,
    retry_after: Option<String>,
    body: String,
}

impl Outcome {
    fn reason(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default()
    }
}

async fn call_path(router: &Router, path: &str, token: &str) -> Outcome {
    let request =
        Request::get(path).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let (challenge, retry_after) = {
        let text = |name| response.headers().get(name).map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned());
        (text(header::WWW_AUTHENTICATE), text(header::RETRY_AFTER))
    };
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Outcome { status, challenge, retry_after, body }
}

async fn call(router: &Router, token: &str) -> Outcome {
    call_path(router, "/guarded", token).await
}

fn invalid_token(description: &str) -> Option<String> {
    Some(format!("Bearer realm=\"{AUD}\", error=\"invalid_token\", error_description=\"{description}\""))
}

#[tokio::test]
async fn an_active_answer_opens_a_guarded_route_with_basic_credentials() {
    let endpoint = Endpoint::start(Value::Null).await;
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    let router = app(endpoint.builder().build().unwrap());
    let outcome = call(&router, OPAQUE).await;
    assert_eq!(outcome.status, StatusCode::OK, "{}", outcome.body);
    assert_eq!(outcome.body, "user-7 Some(\"web-app\") Introspection jo");
    assert_eq!(endpoint.calls(), 1);
    // RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic.
    let expected = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "api-introspector:s3cret%3Awith%2Fodd%2Bchars",
    );
    assert_eq!(endpoint.state.authorization.lock().unwrap().as_deref(), Some(format!("Basic {expected}").as_str()));
    assert_eq!(*endpoint.state.form.lock().unwrap(), format!("token={OPAQUE}&token_type_hint=access_token"));
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_form() {
    let endpoint = Endpoint::start(Value::Null).await;
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    let router = app(endpoint.builder().introspection_client_auth(ClientAuth::ClientSecretPost).build().unwrap());
    assert_eq!(call(&router, OPAQUE).await.status, StatusCode::OK);
    assert_eq!(*endpoint.state.authorization.lock().unwrap(), None);
    assert_eq!(
        *endpoint.state.form.lock().unwrap(),
        format!(
            "token={OPAQUE}&token_type_hint=access_token&client_id=api-introspector&client_secret=s3cret%3Awith%2Fodd%2Bchars"
        )
    );
}

#[tokio::test]
async fn case_170_every_refusal_reason_of_the_introspection_answer_is_a_401_with_its_reason() {
    let endpoint = Endpoint::start(Value::Null).await;
    let issuer = endpoint.issuer();
    let now = now();
    let with = |name: &str, value: Value| {
        let mut answer = active(&issuer);
        answer[name] = value;
        answer
    };
    let without = |name: &str| {
        let mut answer = active(&issuer);
        answer.as_object_mut().unwrap().remove(name);
        answer
    };
    const INACTIVE: &str = "The access token is not active";
    const EMPTY: &str = "The access token has an empty sub, client_id or jti claim";
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("active false", json!({"active": false}), "inactive_token", INACTIVE),
        ("active as a string", with("active", json!("true")), "inactive_token", INACTIVE),
        ("active as a number", with("active", json!(1)), "inactive_token", INACTIVE),
        ("active missing", without("active"), "inactive_token", INACTIVE),
        (
            "another issuer",
            with("iss", json!(format!("{issuer}/"))),
            "invalid_issuer",
            "The access token was not issued by the trusted issuer",
        ),
        (
            "another audience",
            with("aud", json!("https://other.example")),
            "invalid_audience",
            "The access token is not meant for this API",
        ),
        ("no audience", without("aud"), "invalid_audience", "The access token is not meant for this API"),
        (
            "an empty audience list",
            with("aud", json!([])),
            "invalid_audience",
            "The access token is not meant for this API",
        ),
        ("expired", with("exp", json!(now - 120)), "token_expired", "The access token expired"),
        ("no exp", without("exp"), "invalid_claim", "The access token lacks a required claim or has a malformed one"),
        (
            "exp as a string",
            with("exp", json!((now + 300).to_string())),
            "invalid_claim",
            "The access token lacks a required claim or has a malformed one",
        ),
        ("nbf ahead", with("nbf", json!(now + 600)), "token_not_yet_valid", "The access token is not valid yet"),
        ("iat ahead", with("iat", json!(now + 600)), "issued_in_future", "The access token is issued in the future"),
        (
            "a lifetime over 24 h",
            with("exp", json!(now + 2 * 86_400)),
            "lifetime_exceeded",
            "The access token lifetime exceeds the allowed maximum",
        ),
        (
            "a refresh token",
            with("token_type", json!("refresh_token")),
            "refresh_token",
            "A refresh token was presented; this API accepts access tokens only",
        ),
        (
            "scope as a list",
            with("scope", json!(["read:appointments"])),
            "invalid_scope_claim",
            "The access token scope claim is malformed",
        ),
        (
            "sub as a number",
            with("sub", json!(7)),
            "invalid_claim",
            "The access token lacks a required claim or has a malformed one",
        ),
        (
            "neither sub nor client_id",
            {
                let mut answer = without("sub");
                answer.as_object_mut().unwrap().remove("client_id");
                answer
            },
            "invalid_claim",
            "The access token lacks a required claim or has a malformed one",
        ),
        ("an empty sub", with("sub", json!("")), "empty_claim", EMPTY),
        ("an empty client_id", with("client_id", json!("")), "empty_claim", EMPTY),
        ("an empty jti", with("jti", json!("")), "empty_claim", EMPTY),
    ];
    for (index, (name, answer, reason, description)) in cases.into_iter().enumerate() {
        endpoint.set_mode(Mode::Answer(answer));
        // A fresh authority per case, so no answer comes from the cache.
        let router = app(endpoint.builder().build().unwrap());
        let outcome = call(&router, &format!("{OPAQUE}-{index}")).await;
        assert_eq!(outcome.status, StatusCode::UNAUTHORIZED, "{name}: {}", outcome.body);
        assert_eq!(outcome.reason(), reason, "{name}");
        assert_eq!(outcome.challenge, invalid_token(description), "{name}");
    }
}

/// The JWT rule for identifiers holds for an answer: an empty `sub`, `client_id` or `jti`
/// identifies no one and is refused as such, and an empty `client_id` is not taken as the
/// subject of an answer without `sub`.
#[tokio::test]
async fn an_empty_sub_client_id_or_jti_in_an_introspection_answer_is_refused_as_an_empty_claim() {
    let endpoint = Endpoint::start(Value::Null).await;
    let issuer = endpoint.issuer();
    let description = "The access token has an empty sub, client_id or jti claim";
    let authority = endpoint.builder().build().unwrap();
    let router = app(authority.clone());
    let no_sub = {
        let mut answer = active(&issuer);
        answer.as_object_mut().unwrap().remove("sub");
        answer["client_id"] = json!("");
        answer
    };
    let cases = ["sub", "client_id", "jti"].map(|claim| {
        let mut answer = active(&issuer);
        answer[claim] = json!("");
        (format!("{claim}: \"\""), answer)
    });
    for (index, (name, answer)) in cases.into_iter().chain([("no sub, client_id: \"\"".to_owned(), no_sub)]).enumerate()
    {
        endpoint.set_mode(Mode::Answer(answer));
        // A token per case, so no answer comes from the cache.
        let outcome = call(&router, &format!("{OPAQUE}-{index}")).await;
        assert_eq!(outcome.status, StatusCode::UNAUTHORIZED, "{name}: {}", outcome.body);
        assert_eq!(outcome.challenge, invalid_token(description), "{name}");
        assert_eq!(outcome.reason(), "empty_claim", "{name}");
    }
    assert_eq!(authority.rejections_by_reason(), vec![("empty_claim", 4)]);
    assert_eq!(endpoint.calls(), 4);
    // One character is enough.
    let mut short = active(&issuer);
    (short["sub"], short["client_id"], short["jti"]) = (json!("u"), json!("c"), json!("j"));
    endpoint.set_mode(Mode::Answer(short));
    let token = authority.verify(&format!("{OPAQUE}-short")).await.unwrap();
    assert_eq!((token.subject(), token.client_id(), token.jti()), ("u", Some("c"), Some("j")));
}

#[tokio::test]
async fn a_missing_audience_is_accepted_only_when_the_builder_says_so() {
    let endpoint = Endpoint::start(Value::Null).await;
    let mut answer = active(&endpoint.issuer());
    answer.as_object_mut().unwrap().remove("aud");
    endpoint.set_mode(Mode::Answer(answer));
    let strict = app(endpoint.builder().build().unwrap());
    assert_eq!(call(&strict, OPAQUE).await.reason(), "invalid_audience");
    let lenient = app(endpoint.builder().introspection_accepts_missing_audience(true).build().unwrap());
    assert_eq!(call(&lenient, OPAQUE).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_client_credentials_answer_without_sub_has_the_client_as_subject() {
    let endpoint = Endpoint::start(Value::Null).await;
    let mut answer = active(&endpoint.issuer());
    answer.as_object_mut().unwrap().remove("sub");
    answer.as_object_mut().unwrap().remove("iss");
    endpoint.set_mode(Mode::Answer(answer));
    let authority = endpoint.builder().build().unwrap();
    let token = authority.verify(OPAQUE).await.unwrap();
    assert_eq!(token.subject(), "web-app");
    assert!(token.is_client_token());
    assert_eq!(token.issuer(), endpoint.issuer(), "no iss: the configured issuer");
    assert_eq!(token.verified_by(), Verification::Introspection);
}

#[tokio::test]
async fn an_introspected_token_without_the_scope_gets_403() {
    let endpoint = Endpoint::start(Value::Null).await;
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    let router = app(endpoint.builder().build().unwrap());
    let outcome = call_path(&router, "/write", OPAQUE).await;
    assert_eq!(outcome.status, StatusCode::FORBIDDEN);
    assert_eq!(
        outcome.challenge.as_deref(),
        Some(format!("Bearer realm=\"{AUD}\", error=\"insufficient_scope\", scope=\"write:appointments\"").as_str())
    );
}

#[tokio::test]
async fn case_170_a_cached_answer_makes_no_second_call_and_expires_after_its_ttl() {
    let endpoint = Endpoint::start(Value::Null).await;
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    let authority = endpoint.builder().introspection_cache_ttl(Duration::from_millis(300)).build().unwrap();
    let router = app(authority.clone());
    for _ in 0..5 {
        assert_eq!(call(&router, OPAQUE).await.status, StatusCode::OK);
    }
    assert_eq!(endpoint.calls(), 1, "hits make no call");
    assert_eq!(authority.stats().introspections, 1);
    // The issuer revokes it; the cached answer serves until the TTL, then the new one counts.
    endpoint.set_mode(Mode::Answer(json!({"active": false})));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(call(&router, OPAQUE).await.reason(), "inactive_token");
    assert_eq!(endpoint.calls(), 2);
}

#[tokio::test]
async fn a_negative_answer_is_cached_for_the_negative_ttl() {
    let endpoint = Endpoint::start(json!({"active": false})).await;
    let router = app(endpoint
        .builder()
        .introspection_cache_ttl(Duration::from_secs(60))
        .introspection_negative_cache_ttl(Duration::from_millis(300))
        .build()
        .unwrap());
    for _ in 0..3 {
        assert_eq!(call(&router, OPAQUE).await.reason(), "inactive_token");
    }
    assert_eq!(endpoint.calls(), 1);
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(call(&router, OPAQUE).await.status, StatusCode::OK);
    assert_eq!(endpoint.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100_requests_with_one_unknown_token_makes_one_call() {
    let endpoint = Endpoint::start(Value::Null).await;
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    endpoint.set_delay(Duration::from_millis(300));
    let router = app(endpoint.builder().build().unwrap());
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let router = router.clone();
        tasks.push(tokio::spawn(async move { call(&router, OPAQUE).await.status }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(endpoint.calls(), 1, "introspection calls under a burst of 100");
}

async fn assert_unavailable(router: &Router, token: &str, what: &str) {
    let outcome = call(router, token).await;
    assert_eq!(outcome.status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {}", outcome.body);
    assert_eq!(outcome.reason(), "introspection_unavailable", "{what}");
    assert_eq!(outcome.retry_after.as_deref(), Some("5"), "{what}");
    assert_eq!(outcome.challenge, None, "{what}");
}

#[tokio::test]
async fn an_endpoint_that_fails_gives_503_with_retry_after_never_an_accept() {
    let endpoint = Endpoint::start(Value::Null).await;
    let router =
        app(endpoint.builder().http_timeouts(Duration::from_millis(500), Duration::from_millis(800)).build().unwrap());
    let cases = [
        ("5xx", Mode::Status(500)),
        ("a 401 for the API's own credentials", Mode::Status(401)),
        ("garbage", Mode::Raw("<html>oops</html>")),
        ("a JSON array", Mode::Raw("[true]")),
        ("duplicate members", Mode::Raw(r#"{"active":false,"active":true}"#)),
        ("10 MB", Mode::Huge),
        ("slow", Mode::Hang),
    ];
    for (index, (what, mode)) in cases.into_iter().enumerate() {
        endpoint.set_mode(mode);
        assert_unavailable(&router, &format!("{OPAQUE}-{index}"), what).await;
    }
    // Failures are not cached: the same token is accepted once the endpoint recovers.
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    assert_eq!(call(&router, &format!("{OPAQUE}-0")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_endpoint_that_is_down_gives_503() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let router = app(TestIssuer::new()
        .with_issuer(format!("http://{addr}"))
        .authority_builder(AUD)
        .introspection(CLIENT, SECRET)
        .introspection_endpoint(format!("http://{addr}/introspect"))
        .build()
        .unwrap());
    assert_unavailable(&router, OPAQUE, "down").await;
}

#[tokio::test]
async fn a_jws_token_is_never_introspected_by_default() {
    let endpoint = Endpoint::start(json!({"active": false})).await;
    let issuer = TestIssuer::new().with_issuer(endpoint.issuer());
    let jwt = issuer.access_token().audience(AUD).scope("read:appointments").sign();
    let router = app(endpoint.builder().build().unwrap());
    let outcome = call(&router, &jwt).await;
    assert_eq!(outcome.status, StatusCode::OK, "{}", outcome.body);
    assert!(outcome.body.ends_with(" Jwt -"), "{}", outcome.body);
    assert_eq!(endpoint.calls(), 0);
    // With introspect_jwts the issuer's answer decides, instead of the signature.
    let router = app(endpoint.builder().introspect_jwts(true).build().unwrap());
    assert_eq!(call(&router, &jwt).await.reason(), "inactive_token");
    assert_eq!(endpoint.calls(), 1);
}

#[requires_scope("read:appointments", introspect)]
async fn introspected(token: AccessToken) -> String {
    format!("{} {:?}", token.subject(), token.verified_by())
}

fn app_with_introspected(authority: Authority) -> Router {
    Router::new().route("/guarded", get(guarded)).route("/introspected", get(introspected)).with_state(authority)
}

#[tokio::test]
async fn a_handler_with_introspect_sends_a_jwt_to_the_endpoint_and_a_plain_handler_does_not() {
    let endpoint = Endpoint::start(Value::Null).await;
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    let issuer = TestIssuer::new().with_issuer(endpoint.issuer());
    let jwt = issuer.access_token().audience(AUD).subject("jwt-user").scope("read:appointments").sign();
    let router = app_with_introspected(endpoint.builder().introspection_cache_size(0, 65_536).build().unwrap());

    let plain = call_path(&router, "/guarded", &jwt).await;
    assert_eq!((plain.status, plain.body.as_str()), (StatusCode::OK, "jwt-user Some(\"test-client\") Jwt -"));
    assert_eq!(endpoint.calls(), 0, "a plain handler verifies a JWT locally");

    let introspected = call_path(&router, "/introspected", &jwt).await;
    assert_eq!((introspected.status, introspected.body.as_str()), (StatusCode::OK, "user-7 Introspection"));
    assert_eq!(endpoint.calls(), 1, "the introspect handler asked the endpoint about the JWT");
    assert_eq!(*endpoint.state.form.lock().unwrap(), format!("token={jwt}&token_type_hint=access_token"));

    // Revoked at the issuer: the introspect handler sees it at once, the plain one cannot.
    endpoint.set_mode(Mode::Answer(json!({"active": false})));
    let refused = call_path(&router, "/introspected", &jwt).await;
    assert_eq!((refused.status, refused.reason().as_str()), (StatusCode::UNAUTHORIZED, "inactive_token"));
    assert_eq!(
        refused.challenge.as_deref(),
        Some(
            r#"Bearer realm="https://api.example.test", error="invalid_token", error_description="The access token is not active""#
        )
    );
    assert_eq!(endpoint.calls(), 2);
    assert_eq!(call_path(&router, "/guarded", &jwt).await.status, StatusCode::OK);
    assert_eq!(endpoint.calls(), 2);
}

#[tokio::test]
async fn a_handler_with_introspect_under_an_authority_without_introspection_is_misconfigured() {
    let issuer = TestIssuer::new();
    let jwt = issuer.access_token().audience(AUD).scope("read:appointments").sign();
    let router = app_with_introspected(issuer.authority(AUD));
    let outcome = call_path(&router, "/introspected", &jwt).await;
    assert_eq!((outcome.status, outcome.reason().as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "misconfigured"));
    assert_eq!(call_path(&router, "/guarded", &jwt).await.status, StatusCode::OK);
}

/// The handler option is checked before the request is read, as `dpop = "required"` is:
/// no request to the handler, with or without a usable token, gets another answer.
#[tokio::test]
async fn a_handler_with_introspect_under_an_authority_without_introspection_is_misconfigured_for_every_request() {
    let router = app_with_introspected(TestIssuer::new().authority(AUD));
    let oversized = format!("Bearer {}", "a".repeat(20_000));
    for authorization in
        [None, Some("Bearer a b"), Some("Bearer"), Some(oversized.as_str()), Some("Basic dXNlcjpwdw==")]
    {
        let mut request = Request::get("/introspected");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let response = router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let label = authorization.map(|a| &a[..a.len().min(16)]);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "{label:?}");
        assert_eq!(response.headers().get(header::WWW_AUTHENTICATE), None, "{label:?}");
        let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        let reason = serde_json::from_str::<Value>(&body).unwrap()["reason"].clone();
        assert_eq!(reason, "misconfigured", "{label:?}");
    }
}

#[tokio::test]
async fn an_opaque_token_is_malformed_without_introspection() {
    let router = app(TestIssuer::new().authority(AUD));
    let outcome = call(&router, OPAQUE).await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(outcome.reason(), "malformed_token");
    assert_eq!(outcome.challenge, invalid_token("The access token is malformed"));
}

#[tokio::test]
async fn the_endpoint_is_discovered_from_the_issuer() {
    let endpoint = Endpoint::start(Value::Null).await;
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    let authority = Authority::builder()
        .issuer(endpoint.issuer())
        .audience(AUD)
        .introspection(CLIENT, SECRET)
        .connect()
        .await
        .unwrap();
    let router = app(authority);
    assert_eq!(call(&router, OPAQUE).await.status, StatusCode::OK);
    assert_eq!(endpoint.calls(), 1);
}

#[tokio::test]
async fn connect_fails_when_the_issuer_advertises_no_introspection_endpoint() {
    let endpoint = Endpoint::start_with(Value::Null, false).await;
    let error = Authority::builder()
        .issuer(endpoint.issuer())
        .audience(AUD)
        .introspection(CLIENT, SECRET)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.setting(), "introspection_endpoint");
}

#[tokio::test]
async fn case_170_a_cached_answer_is_never_used_past_the_tokens_exp() {
    let endpoint = Endpoint::start(Value::Null).await;
    let clock = scopegate::testing::TestClock::at(1_900_000_000.0);
    let mut answer = active(&endpoint.issuer());
    answer["iat"] = json!(1_900_000_000);
    answer["exp"] = json!(1_900_000_010);
    endpoint.set_mode(Mode::Answer(answer));
    let router = app(endpoint
        .builder()
        .clock(&clock)
        .leeway(Duration::ZERO)
        .introspection_cache_ttl(Duration::from_secs(60))
        .build()
        .unwrap());
    let first = call(&router, OPAQUE).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    clock.advance(Duration::from_secs(9));
    assert_eq!(call(&router, OPAQUE).await.status, StatusCode::OK);
    assert_eq!(endpoint.calls(), 1, "a hit before exp");
    clock.advance(Duration::from_secs(1));
    assert_eq!(call(&router, OPAQUE).await.reason(), "token_expired");
    assert_eq!(endpoint.calls(), 2, "the entry is not served at exp, well within its TTL");
}

#[tokio::test]
async fn case_170_a_jwt_introspection_response_is_never_taken_as_an_access_token() {
    let endpoint = Endpoint::start(Value::Null).await;
    // A signed JWT (RFC 9701 shape) as the body, not a JSON object: the endpoint gave no
    // usable answer, so 503, and the JWT is not read as the token's claims.
    let jwt = TestIssuer::new().with_issuer(endpoint.issuer()).access_token().scope("read:appointments").sign();
    endpoint.set_mode(Mode::Raw(Box::leak(jwt.into_boxed_str())));
    let router = app(endpoint.builder().build().unwrap());
    assert_unavailable(&router, OPAQUE, "a JWT response").await;
    assert_eq!(endpoint.state.accept.lock().unwrap().as_deref(), Some("application/json"));
}

#[tokio::test]
async fn a_cached_answer_is_never_used_past_max_token_age() {
    let endpoint = Endpoint::start(Value::Null).await;
    let clock = scopegate::testing::TestClock::at(1_900_000_000.0);
    let mut answer = active(&endpoint.issuer());
    answer["iat"] = json!(1_900_000_000);
    answer["exp"] = json!(1_900_000_600);
    endpoint.set_mode(Mode::Answer(answer));
    let router = app(endpoint
        .builder()
        .clock(&clock)
        .leeway(Duration::ZERO)
        .max_token_age(Duration::from_secs(60))
        .introspection_cache_ttl(Duration::from_secs(300))
        .build()
        .unwrap());
    assert_eq!(call(&router, OPAQUE).await.status, StatusCode::OK);
    clock.advance(Duration::from_secs(60));
    assert_eq!(call(&router, OPAQUE).await.status, StatusCode::OK);
    assert_eq!(endpoint.calls(), 1, "a hit at max_token_age");
    clock.advance(Duration::from_secs(1));
    let past = call(&router, OPAQUE).await;
    assert_eq!(past.status, StatusCode::UNAUTHORIZED);
    assert_eq!(past.reason(), "lifetime_exceeded");
    assert_eq!(endpoint.calls(), 2, "the entry is not served past max_token_age, well within its TTL");
}

/// Discovery that always fails, counting its requests.
async fn failing_discovery() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let app = Router::new().route(
        "/.well-known/openid-configuration",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::INTERNAL_SERVER_ERROR }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), calls)
}

#[tokio::test]
async fn a_flood_of_opaque_tokens_against_a_failing_discovery_makes_at_most_one_request_a_second() {
    let (issuer, discovery_calls) = failing_discovery().await;
    let router = app(Authority::builder()
        .issuer(issuer)
        .audience(AUD)
        .introspection(CLIENT, SECRET)
        .allow_private_networks(true)
        .build()
        .unwrap());
    let started = std::time::Instant::now();
    let burst: Vec<_> = (0..50)
        .map(|_| {
            let router = router.clone();
            tokio::spawn(async move { call(&router, OPAQUE).await.status })
        })
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    }
    for _ in 0..50 {
        assert_eq!(call(&router, OPAQUE).await.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    let elapsed = started.elapsed().as_secs();
    // One for the requests and one for the key refresh per second begun, never one per request.
    let calls = discovery_calls.load(Ordering::SeqCst);
    assert!(calls <= 2 * (elapsed as usize + 1), "{calls} discovery requests in {elapsed} s for 100 token requests");
}

const JWT_ANSWER: &str = "application/token-introspection+jwt";

/// An RFC 9701 signed answer wrapping `answer`, with `edit` applied to its claims.
fn signed_answer(signer: &TestIssuer, issuer: &str, answer: &Value, edit: impl FnOnce(&mut Value)) -> String {
    let mut claims = json!({ "iss": issuer, "aud": CLIENT, "iat": now(), "token_introspection": answer });
    edit(&mut claims);
    signer.access_token().typ("token-introspection+jwt").raw_claims(&claims.to_string()).sign()
}

#[tokio::test]
async fn a_signed_introspection_answer_is_asked_for_verified_and_accepted() {
    let endpoint = Endpoint::start(Value::Null).await;
    let issuer = endpoint.issuer();
    let jwt = signed_answer(&TestIssuer::new(), &issuer, &active(&issuer), |_| {});
    endpoint.set_mode(Mode::Typed(JWT_ANSWER, jwt));
    let router = app(endpoint.builder().introspection_jwt_response(true).build().unwrap());
    let outcome = call(&router, OPAQUE).await;
    assert_eq!(outcome.status, StatusCode::OK, "{}", outcome.body);
    assert_eq!(outcome.body, "user-7 Some(\"web-app\") Introspection jo");
    assert_eq!(endpoint.state.accept.lock().unwrap().as_deref(), Some(JWT_ANSWER));
}

#[tokio::test]
async fn the_answer_inside_a_signed_answer_is_checked_like_a_plain_one() {
    let endpoint = Endpoint::start(Value::Null).await;
    let issuer = endpoint.issuer();
    let jwt = signed_answer(&TestIssuer::new(), &issuer, &json!({ "active": false }), |_| {});
    endpoint.set_mode(Mode::Typed(JWT_ANSWER, jwt));
    let router = app(endpoint.builder().introspection_jwt_response(true).build().unwrap());
    let outcome = call(&router, OPAQUE).await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(outcome.reason(), "inactive_token");
}

#[tokio::test]
async fn every_flaw_of_a_signed_answer_gives_503_never_an_accept() {
    let endpoint = Endpoint::start(Value::Null).await;
    let issuer = endpoint.issuer();
    let good = active(&issuer);
    let ours = TestIssuer::new();
    let stranger = TestIssuer::with_fresh_keys(issuer.clone());
    let typed = |typ: &str| {
        ours.access_token()
            .typ(typ)
            .raw_claims(&json!({ "iss": issuer, "aud": CLIENT, "iat": now(), "token_introspection": good }).to_string())
            .sign()
    };
    let cases: Vec<(&str, Mode)> = vec![
        ("plain JSON when a signed answer was asked for", Mode::Answer(good.clone())),
        (
            "the right JWT under application/json",
            Mode::Raw(Box::leak(signed_answer(&ours, &issuer, &good, |_| {}).into_boxed_str())),
        ),
        (
            "signed by a key the issuer does not publish",
            Mode::Typed(JWT_ANSWER, signed_answer(&stranger, &issuer, &good, |_| {})),
        ),
        ("typ at+jwt (an access token, not an answer)", Mode::Typed(JWT_ANSWER, typed("at+jwt"))),
        (
            "no typ",
            Mode::Typed(
                JWT_ANSWER,
                ours.access_token()
                    .without_header("typ")
                    .raw_claims(
                        &json!({ "iss": issuer, "aud": CLIENT, "iat": now(), "token_introspection": good }).to_string(),
                    )
                    .sign(),
            ),
        ),
        (
            "another iss",
            Mode::Typed(
                JWT_ANSWER,
                signed_answer(&ours, &issuer, &good, |c| c["iss"] = json!("https://other.example.test/")),
            ),
        ),
        (
            "aud naming another client",
            Mode::Typed(JWT_ANSWER, signed_answer(&ours, &issuer, &good, |c| c["aud"] = json!("someone-else"))),
        ),
        (
            "no aud",
            Mode::Typed(
                JWT_ANSWER,
                signed_answer(&ours, &issuer, &good, |c| {
                    c.as_object_mut().unwrap().remove("aud");
                }),
            ),
        ),
        (
            "no iat",
            Mode::Typed(
                JWT_ANSWER,
                signed_answer(&ours, &issuer, &good, |c| {
                    c.as_object_mut().unwrap().remove("iat");
                }),
            ),
        ),
        (
            "token_introspection a string",
            Mode::Typed(
                JWT_ANSWER,
                signed_answer(&ours, &issuer, &good, |c| c["token_introspection"] = json!(good.to_string())),
            ),
        ),
        (
            "no token_introspection",
            Mode::Typed(
                JWT_ANSWER,
                signed_answer(&ours, &issuer, &good, |c| {
                    c.as_object_mut().unwrap().remove("token_introspection");
                }),
            ),
        ),
        ("an encrypted answer (five segments)", Mode::Typed(JWT_ANSWER, "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d".to_owned())),
    ];
    for (what, mode) in cases {
        endpoint.set_mode(mode);
        // A fresh authority per case: nothing cached from the one before.
        let router = app(endpoint.builder().introspection_jwt_response(true).build().unwrap());
        assert_unavailable(&router, OPAQUE, what).await;
    }
}

#[tokio::test]
async fn an_introspected_answer_with_cnf_is_refused_as_bearer_and_accepted_with_its_dpop_proof() {
    use scopegate::{dpop::DpopPolicy, testing::DpopKey};
    let key = DpopKey::generate();
    let endpoint = Endpoint::start(Value::Null).await;
    let mut answer = active(&endpoint.issuer());
    answer["cnf"] = json!({"jkt": key.thumbprint()});
    endpoint.set_mode(Mode::Answer(answer));
    let router = app(endpoint.builder().dpop(DpopPolicy::Allowed).build().unwrap());
    // RFC 9449 §7.2: a bound token presented as a bearer token is a downgrade.
    let outcome = call(&router, OPAQUE).await;
    assert_eq!((outcome.status, outcome.reason().as_str()), (StatusCode::UNAUTHORIZED, "sender_constrained"));
    // With its proof (`ath` of the opaque token, the key of the answer's `cnf.jkt`).
    let proof = key.proof("GET", &format!("{AUD}/guarded")).access_token(OPAQUE).sign();
    let request = Request::get("/guarded")
        .header(header::AUTHORIZATION, format!("DPoP {OPAQUE}"))
        .header("dpop", proof)
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Another key's proof for the same token: refused.
    let thief = DpopKey::generate().proof("GET", &format!("{AUD}/guarded")).access_token(OPAQUE).sign();
    let request = Request::get("/guarded")
        .header(header::AUTHORIZATION, format!("DPoP {OPAQUE}"))
        .header("dpop", thief)
        .body(Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The error on the DPoP challenge the request used, the Bearer one still offered.
    let algs = "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519";
    let description = "The DPoP proof key is not the key the access token is bound to";
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap(),
        format!(
            "Bearer realm=\"{AUD}\", DPoP realm=\"{AUD}\", error=\"invalid_dpop_proof\", error_description=\"{description}\", algs=\"{algs}\""
        )
    );
    let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["reason"], "dpop_key_mismatch");
    assert_eq!(endpoint.calls(), 1, "one introspection, then the cache");
}

#[tokio::test]
async fn an_introspected_answer_with_cnf_is_refused_as_bearer_without_dpop_too() {
    let endpoint = Endpoint::start(Value::Null).await;
    let mut answer = active(&endpoint.issuer());
    answer["cnf"] = json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"});
    endpoint.set_mode(Mode::Answer(answer));
    let outcome = call(&app(endpoint.builder().build().unwrap()), OPAQUE).await;
    let description = "The access token is sender-constrained and cannot be used as a bearer token";
    assert_eq!((outcome.status, outcome.challenge.clone()), (StatusCode::UNAUTHORIZED, invalid_token(description)));
    assert_eq!(outcome.reason(), "sender_constrained");
}

/// The moment the clock-bound tests below stop the clock at (a fraction of a second, so
/// that a bound half a second away is on the other side).
const T: f64 = 1_800_000_000.25;

/// The outcome of one introspection answer: `answer` is `active()` with `edit` applied,
/// read by a fresh authority (nothing cached) whose clock stands at `T`.
async fn answer_outcome(
    endpoint: &Endpoint,
    edit: impl FnOnce(&mut Value),
    configure: impl FnOnce(AuthorityBuilder) -> AuthorityBuilder,
) -> (StatusCode, String) {
    let mut answer = active(&endpoint.issuer());
    answer["iat"] = json!(T - 10.0);
    answer["exp"] = json!(T + 300.0);
    edit(&mut answer);
    endpoint.set_mode(Mode::Answer(answer));
    let clock = scopegate::testing::TestClock::at(T);
    let router = app(configure(endpoint.builder().clock(&clock)).build().unwrap());
    let outcome = call(&router, OPAQUE).await;
    (outcome.status, outcome.reason())
}

/// `aud` in an introspection answer: a string or a non-empty array of non-empty strings
/// naming this API. An empty array is not "no audience" (even where a missing `aud` is
/// accepted), and an array naming the API among others is accepted unless a single
/// audience is required.
#[tokio::test]
async fn the_audience_of_an_introspection_answer_is_read_in_both_forms_and_an_empty_one_is_refused() {
    let endpoint = Endpoint::start(Value::Null).await;
    let ok = (StatusCode::OK, String::new());
    let refused = (StatusCode::UNAUTHORIZED, "invalid_audience".to_owned());
    let keep = |b: AuthorityBuilder| b;
    let missing_ok = |b: AuthorityBuilder| b.introspection_accepts_missing_audience(true);
    let single = |b: AuthorityBuilder| b.require_single_audience(true);
    type Configure<'a> = &'a dyn Fn(AuthorityBuilder) -> AuthorityBuilder;
    let cases: Vec<(&str, Value, Configure<'_>, (StatusCode, String))> = vec![
        ("the API among others", json!([AUD, "https://other.example.test"]), &keep, ok.clone()),
        ("the API alone, in an array", json!([AUD]), &keep, ok.clone()),
        ("an empty array, missing aud accepted", json!([]), &missing_ok, refused.clone()),
        ("an array with an empty string", json!(["", AUD]), &keep, refused.clone()),
        ("an array of a number", json!([AUD, 7]), &keep, refused.clone()),
        ("an empty string", json!(""), &missing_ok, refused.clone()),
        ("two audiences, one required", json!([AUD, "https://other.example.test"]), &single, refused.clone()),
        ("one audience in an array, one required", json!([AUD]), &single, ok.clone()),
    ];
    for (what, aud, configure, expected) in cases {
        let outcome = answer_outcome(&endpoint, |a| a["aud"] = aud, configure).await;
        let outcome = if outcome.0 == StatusCode::OK { (outcome.0, String::new()) } else { outcome };
        assert_eq!(outcome, expected, "{what}");
    }
}

/// The dates of an introspection answer are checked like a JWT's, to the exact bound
/// (default leeway 60 s, lifetime at most 24 h), on a stopped clock: accepted at the
/// bound, refused half a second past it; a date that is not a positive number below 2^53
/// is `invalid_claim`.
#[tokio::test]
async fn the_dates_of_an_introspection_answer_are_checked_to_the_exact_bound() {
    let endpoint = Endpoint::start(Value::Null).await;
    let day = 24.0 * 3600.0;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("exp just within the leeway", "exp", json!(T - 59.5), ""),
        ("exp at the leeway", "exp", json!(T - 60.0), "token_expired"),
        ("nbf at the leeway", "nbf", json!(T + 60.0), ""),
        ("nbf now", "nbf", json!(T), ""),
        ("nbf past the leeway", "nbf", json!(T + 60.5), "token_not_yet_valid"),
        ("iat at the leeway", "iat", json!(T + 60.0), ""),
        ("iat past the leeway", "iat", json!(T + 60.5), "issued_in_future"),
        ("nbf zero", "nbf", json!(0), "invalid_claim"),
        ("nbf negative", "nbf", json!(-1), "invalid_claim"),
        ("nbf at 2^53", "nbf", json!(9_007_199_254_740_992_u64), "invalid_claim"),
        ("iat zero", "iat", json!(0), "invalid_claim"),
        ("exp zero", "exp", json!(0), "invalid_claim"),
        ("exp a string", "exp", json!("soon"), "invalid_claim"),
    ];
    for (what, claim, value, reason) in cases {
        let (status, got) = answer_outcome(&endpoint, |a| a[claim] = value, |b| b).await;
        let expected = if reason.is_empty() { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
        assert_eq!((status, got.as_str()), (expected, if reason.is_empty() { "" } else { reason }), "{what}");
    }
    // The lifetime: exp at most 24 h after now and after iat.
    let lifetime: Vec<(&str, f64, f64, &str)> = vec![
        ("exp a day from now", T + day, T, ""),
        ("exp past a day from now", T + day + 0.5, T, "lifetime_exceeded"),
        // iat the leeway ahead: exp within a day of iat but past a day from now.
        ("exp past a day from now, within a day of iat", T + day + 30.0, T + 60.0, "lifetime_exceeded"),
        ("exp a day after iat", T + 100.0, T + 100.0 - day, ""),
        ("exp past a day after iat", T + 100.0, T + 99.5 - day, "lifetime_exceeded"),
    ];
    for (what, exp, iat, reason) in lifetime {
        let (status, got) = answer_outcome(
            &endpoint,
            |a| {
                a["exp"] = json!(exp);
                a["iat"] = json!(iat);
            },
            |b| b,
        )
        .await;
        let expected = if reason.is_empty() { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
        assert_eq!((status, got.as_str()), (expected, if reason.is_empty() { "" } else { reason }), "{what}");
    }
    // `max_token_age`: iat at most that long ago.
    for (what, iat, reason) in
        [("iat exactly an hour ago", T - 3600.0, ""), ("iat past an hour ago", T - 3600.5, "lifetime_exceeded")]
    {
        let (status, got) =
            answer_outcome(&endpoint, |a| a["iat"] = json!(iat), |b| b.max_token_age(Duration::from_secs(3600))).await;
        let expected = if reason.is_empty() { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
        assert_eq!((status, got.as_str()), (expected, if reason.is_empty() { "" } else { reason }), "{what}");
    }
}

/// `allowed_clients` holds for introspected tokens as for JWTs: the answer's `client_id`
/// must be one of them, and an answer without one is refused.
#[tokio::test]
async fn allowed_clients_applies_to_the_client_id_of_an_introspection_answer() {
    let endpoint = Endpoint::start(Value::Null).await;
    let only = |clients: &'static [&'static str]| move |b: AuthorityBuilder| b.allowed_clients(clients.iter().copied());
    let refused = (StatusCode::UNAUTHORIZED, "client_not_allowed".to_owned());
    assert_eq!(answer_outcome(&endpoint, |_| {}, only(&["web-app", "cli"])).await.0, StatusCode::OK);
    assert_eq!(answer_outcome(&endpoint, |_| {}, only(&["cli"])).await, refused);
    let without = |a: &mut Value| {
        a.as_object_mut().unwrap().remove("client_id");
    };
    assert_eq!(answer_outcome(&endpoint, without, only(&["web-app"])).await, refused);
}

/// Each token's answer has its own cache entry: two tokens introspected in turn are
/// each asked for once, however often they come back.
#[tokio::test]
async fn the_answers_for_two_tokens_are_cached_side_by_side() {
    let endpoint = Endpoint::start(Value::Null).await;
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    let router = app(endpoint.builder().build().unwrap());
    for _ in 0..3 {
        for token in ["opaque-token-one", "opaque-token-two"] {
            assert_eq!(call(&router, token).await.status, StatusCode::OK);
        }
    }
    assert_eq!(endpoint.calls(), 2);
}

/// RFC 9701: a signed answer's `aud` may be an array; it must name this API's client id.
#[tokio::test]
async fn a_signed_answer_whose_aud_array_names_the_client_is_accepted_and_one_that_does_not_is_refused() {
    let endpoint = Endpoint::start(Value::Null).await;
    let issuer = endpoint.issuer();
    let ours = TestIssuer::new();
    let with_aud = |aud: Value| signed_answer(&ours, &issuer, &active(&issuer), |c| c["aud"] = aud);
    endpoint.set_mode(Mode::Typed(JWT_ANSWER, with_aud(json!(["someone-else", CLIENT]))));
    let router = app(endpoint.builder().introspection_jwt_response(true).build().unwrap());
    let outcome = call(&router, OPAQUE).await;
    assert_eq!(outcome.status, StatusCode::OK, "{}", outcome.body);
    endpoint.set_mode(Mode::Typed(JWT_ANSWER, with_aud(json!(["someone-else", "another"]))));
    let router = app(endpoint.builder().introspection_jwt_response(true).build().unwrap());
    assert_unavailable(&router, OPAQUE, "an aud array without the client id").await;
}

/// An explicit endpoint needs nothing from discovery: `connect` succeeds against an
/// issuer whose metadata advertises no introspection endpoint, and tokens go to the
/// endpoint given.
#[tokio::test]
async fn connect_with_an_explicit_endpoint_does_not_need_one_advertised() {
    let endpoint = Endpoint::start_with(Value::Null, false).await;
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    let authority = Authority::builder()
        .issuer(endpoint.issuer())
        .audience(AUD)
        .introspection(CLIENT, SECRET)
        .introspection_endpoint(endpoint.url())
        .connect()
        .await
        .unwrap();
    assert_eq!(call(&app(authority), OPAQUE).await.status, StatusCode::OK);
    assert_eq!(endpoint.calls(), 1);
}

#[tokio::test]
async fn with_a_configured_jwks_uri_the_introspection_endpoint_must_be_given_too() {
    // The issuer's metadata is discovered only when its keys are: with a `jwks_uri`
    // nothing is, so an introspection endpoint left out is a configuration error.
    let error = Authority::builder()
        .issuer("https://issuer.example.test")
        .audience(AUD)
        .jwks_uri("https://issuer.example.test/jwks")
        .introspection(CLIENT, SECRET)
        .build()
        .unwrap_err();
    assert_eq!(error.setting(), "introspection_endpoint");
    assert!(error.to_string().contains("with static keys or a jwks_uri"), "{error}");
}

/// An `introspect` handler behind a `RequireAccessToken` floor of the same authority and
/// audience: the floor verifies the JWT locally, and the handler still asks the endpoint
/// (it never reuses a result the endpoint did not give), so a token revoked at the issuer
/// is refused there although the floor accepted it; a plain handler reuses the floor's.
#[tokio::test]
async fn an_introspect_handler_behind_a_floor_that_verified_the_jwt_locally_still_asks_the_endpoint() {
    let endpoint = Endpoint::start(Value::Null).await;
    endpoint.set_mode(Mode::Answer(active(&endpoint.issuer())));
    let issuer = TestIssuer::new().with_issuer(endpoint.issuer());
    let jwt = issuer.access_token().audience(AUD).subject("jwt-user").scope("read:appointments").sign();
    let authority = endpoint.builder().introspection_cache_size(0, 65_536).build().unwrap();
    let floor = scopegate::layer::RequireAccessToken::new(authority.clone());
    let router = app_with_introspected(authority.clone()).layer(floor);

    // The handler's `AccessToken` is the guard's, the endpoint's answer (not the floor's).
    let introspected = call_path(&router, "/introspected", &jwt).await;
    assert_eq!((introspected.status, introspected.body.as_str()), (StatusCode::OK, "user-7 Introspection"));
    assert_eq!(endpoint.calls(), 1, "the introspect handler asked the endpoint about the JWT");

    endpoint.set_mode(Mode::Answer(json!({"active": false})));
    let refused = call_path(&router, "/introspected", &jwt).await;
    assert_eq!((refused.status, refused.reason().as_str()), (StatusCode::UNAUTHORIZED, "inactive_token"));
    assert_eq!(endpoint.calls(), 2);

    let plain = call_path(&router, "/guarded", &jwt).await;
    assert_eq!((plain.status, plain.body.as_str()), (StatusCode::OK, "jwt-user Some(\"test-client\") Jwt -"));
    assert_eq!(endpoint.calls(), 2, "a plain handler reuses the floor's local verification");
}
