//! The harness every spec test runs through: a real axum `Router` protected by scopegate,
//! requests sent with `tower::ServiceExt::oneshot`, and assertions on the exact outcome of
//! security spec section 0 (status, `WWW-Authenticate`, JSON body and reason code).

use std::{
    fmt::Write as _,
    io,
    sync::{Arc, Mutex, OnceLock},
    time::{SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use axum::{
    Json, Router,
    body::Body,
    http::{HeaderMap, HeaderValue, Request, StatusCode, header, request},
    routing::get,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use http_body_util::BodyExt as _;
use scopegate::{
    AccessToken, Authority, RequestError, TokenError, requires_scope,
    testing::{self, TestIssuer},
};
use serde_json::{Map, Value, json};
use tower::ServiceExt as _;

/// The API audience every default authority is built with.
pub(crate) const AUD: &str = testing::DEFAULT_AUDIENCE;
/// The default realm: the first audience, which is header-safe.
pub(crate) const REALM: &str = AUD;
/// The test issuer's `iss`.
pub(crate) const ISS: &str = testing::DEFAULT_ISSUER;
/// The scope `/appointments` requires.
pub(crate) const READ: &str = "read:appointments";
/// The audience `/reports` names with `aud = …` instead of the configured one.
pub(crate) const REPORTS_AUD: &str = "https://reports.example.test";

// ---------------------------------------------------------------------------------------
// Issuers and authorities
// ---------------------------------------------------------------------------------------

/// The shared test issuer (keys generated once per process).
pub(crate) fn issuer() -> TestIssuer {
    TestIssuer::new()
}

/// An issuer with the same `iss` but keys of its own ("signed by another key"). Generated
/// once per process.
pub(crate) fn other_issuer() -> TestIssuer {
    static OTHER: OnceLock<TestIssuer> = OnceLock::new();
    OTHER.get_or_init(|| TestIssuer::with_fresh_keys(ISS)).clone()
}

/// The default authority: trusts [`issuer`], audience [`AUD`], default settings.
pub(crate) fn authority() -> Authority {
    issuer().authority(AUD)
}

/// An authority for [`ISS`] and [`AUD`] that trusts exactly these JWKs.
pub(crate) fn authority_with_jwks(keys: &[Value]) -> Authority {
    Authority::builder()
        .issuer(ISS)
        .audience(AUD)
        .static_jwks(json!({ "keys": keys }).to_string())
        .build()
        .expect("the authority builds")
}

// ---------------------------------------------------------------------------------------
// The application under test
// ---------------------------------------------------------------------------------------

/// What a handler answers: proof that it ran, and the verified facts it was given.
fn facts(handler: &str, token: &AccessToken) -> Value {
    json!({
        "handler": handler,
        "sub": token.subject(),
        "client_id": token.client_id(),
        "client_token": token.is_client_token(),
        "iss": token.issuer(),
        "aud": token.audiences().collect::<Vec<_>>(),
        "jti": token.jti(),
        "scopes": token.scopes().iter().collect::<Vec<_>>(),
    })
}

async fn me(token: AccessToken) -> Json<Value> {
    Json(facts("me", &token))
}

#[requires_scope("read:appointments")]
async fn appointments(token: AccessToken) -> Json<Value> {
    Json(facts("appointments", &token))
}

#[requires_scope("a", "b")]
async fn a_and_b(token: AccessToken) -> Json<Value> {
    Json(facts("ab", &token))
}

#[requires_scope("read:appointments", aud = "https://reports.example.test")]
async fn reports(token: AccessToken) -> Json<Value> {
    Json(facts("reports", &token))
}

async fn optional(token: Option<AccessToken>) -> Json<Value> {
    Json(json!({ "handler": "optional", "sub": token.as_ref().map(AccessToken::subject) }))
}

/// The router under test:
/// - `GET /me`: any valid access token (`AccessToken`);
/// - `GET /appointments`: `#[requires_scope("read:appointments")]`;
/// - `GET /ab`: `#[requires_scope("a", "b")]` (all of);
/// - `GET /reports`: `#[requires_scope("read:appointments", aud = REPORTS_AUD)]`;
/// - `GET /optional`: `Option<AccessToken>`.
pub(crate) fn app_for(authority: Authority) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/appointments", get(appointments))
        .route("/ab", get(a_and_b))
        .route("/reports", get(reports))
        .route("/optional", get(optional))
        .with_state(authority)
}

/// [`app_for`] with the default [`authority`].
pub(crate) fn default_app() -> Router {
    app_for(authority())
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// A GET request builder for `path`.
pub(crate) fn get_req(path: &str) -> request::Builder {
    Request::builder().method("GET").uri(path)
}

/// Sends one request through the router.
pub(crate) async fn send(app: &Router, request: Request<Body>) -> Outcome {
    let label = format!("{} {}", request.method(), request.uri());
    let response = app.clone().oneshot(request).await.expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("the body can be read").to_bytes();
    Outcome { status, headers, body: String::from_utf8_lossy(&bytes).into_owned(), label }
}

/// `GET path` with exactly this `Authorization` value (raw bytes).
pub(crate) async fn with_authorization(app: &Router, path: &str, value: &[u8]) -> Outcome {
    let label = format!("GET {path} with Authorization: {}", shorten(&String::from_utf8_lossy(value)));
    let value = HeaderValue::from_bytes(value).expect("a representable header value");
    send(app, get_req(path).header(header::AUTHORIZATION, value).body(Body::empty()).expect("a request"))
        .await
        .labelled(label)
}

/// `GET path` with `Authorization: Bearer <token>`.
pub(crate) async fn with_token(app: &Router, path: &str, token: &str) -> Outcome {
    with_authorization(app, path, format!("Bearer {token}").as_bytes()).await
}

/// `GET /me` with `Authorization: Bearer <token>`.
pub(crate) async fn call(app: &Router, token: &str) -> Outcome {
    with_token(app, "/me", token).await
}

/// `GET /me` with no credentials at all.
pub(crate) async fn call_without_credentials(app: &Router, path: &str) -> Outcome {
    send(app, get_req(path).body(Body::empty()).expect("a request")).await
}

pub(crate) async fn expect_accept(app: &Router, token: &str) -> Value {
    call(app, token).await.accept()
}

pub(crate) async fn expect_badtok(app: &Router, token: &str, error: TokenError) {
    call(app, token).await.badtok(error);
}

pub(crate) async fn expect_badreq(app: &Router, authorization: &[u8], error: RequestError) {
    with_authorization(app, "/me", authorization).await.badreq(error);
}

pub(crate) async fn expect_noauth(app: &Router, authorization: &[u8]) {
    with_authorization(app, "/me", authorization).await.noauth();
}

/// `GET /appointments` (requires `read:appointments`) with this token: NOSCOPE expected.
pub(crate) async fn expect_noscope(app: &Router, token: &str) {
    with_token(app, "/appointments", token).await.noscope(READ);
}

/// Sends `token` to `/me`, which must accept it, so that the verified-token cache of the
/// app's authority holds it: the request the test sends next is decided by a cache hit
/// (or by the full path again, if the cache must not serve it). A fresh authority per
/// test otherwise never hits the cache.
pub(crate) async fn warm_cache(app: &Router, token: &str) {
    call(app, token).await.labelled("GET /me, warming the verified-token cache").accept();
}

fn shorten(text: &str) -> String {
    if text.len() <= 120 {
        return text.to_owned();
    }
    let head: String = text.chars().take(100).collect();
    format!("{head}… ({} bytes)", text.len())
}

// ---------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------

/// One response, reduced to what the spec's response contract talks about.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
    pub(crate) label: String,
}

impl Outcome {
    /// Names the input in assertion messages.
    pub(crate) fn labelled(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// The single `WWW-Authenticate` value, if any (panics on several).
    pub(crate) fn challenge(&self) -> Option<String> {
        let values: Vec<_> = self.headers.get_all(header::WWW_AUTHENTICATE).iter().collect();
        assert!(values.len() <= 1, "[{}] several WWW-Authenticate headers: {values:?}", self.label);
        values.first().map(|v| v.to_str().expect("an ASCII challenge").to_owned())
    }

    /// The JSON body.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("[{}] body is not JSON ({e}): {}", self.label, self.body))
    }

    /// ACCEPT: the handler ran. Returns what it answered.
    pub(crate) fn accept(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "[{}] expected ACCEPT, got {} {}", self.label, self.status, self.body);
        assert_eq!(self.challenge(), None, "[{}] an accepted request carries no challenge", self.label);
        let body = self.json();
        assert!(body.get("handler").is_some_and(Value::is_string), "[{}] the handler did not run: {body}", self.label);
        body
    }

    /// Asserts a rejection with this status, exact challenge and exact body.
    pub(crate) fn rejected(&self, status: StatusCode, challenge: &str, body: &Value) {
        assert_eq!(self.status, status, "[{}] status (body {})", self.label, self.body);
        assert_eq!(self.challenge().as_deref(), Some(challenge), "[{}] WWW-Authenticate", self.label);
        assert_eq!(&self.json(), body, "[{}] body", self.label);
        assert_eq!(
            self.headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes),
            Some(&b"application/json"[..]),
            "[{}] content type",
            self.label
        );
        assert_eq!(
            self.headers.get(header::CACHE_CONTROL).map(HeaderValue::as_bytes),
            Some(&b"no-store"[..]),
            "[{}] cache control",
            self.label
        );
    }

    /// NOAUTH: 401 with a bare challenge (no `error`).
    pub(crate) fn noauth(&self) {
        self.noauth_in(REALM);
    }

    pub(crate) fn noauth_in(&self, realm: &str) {
        self.rejected(
            StatusCode::UNAUTHORIZED,
            &format!("Bearer realm=\"{realm}\""),
            &json!({
                "error": "unauthorized",
                "error_description": "The request carries no bearer access token",
                "reason": "missing_credentials",
            }),
        );
    }

    /// BADREQ: 400 `invalid_request` with the fixed description of `error`.
    pub(crate) fn badreq(&self, error: RequestError) {
        self.badreq_in(REALM, error);
    }

    pub(crate) fn badreq_in(&self, realm: &str, error: RequestError) {
        self.rejected(
            StatusCode::BAD_REQUEST,
            &format!(
                "Bearer realm=\"{realm}\", error=\"invalid_request\", error_description=\"{}\"",
                error.description()
            ),
            &json!({ "error": "invalid_request", "error_description": error.description(), "reason": error.code() }),
        );
    }

    /// BADTOK: 401 `invalid_token` with the fixed description of `error`.
    pub(crate) fn badtok(&self, error: TokenError) {
        self.badtok_in(REALM, error);
    }

    pub(crate) fn badtok_in(&self, realm: &str, error: TokenError) {
        self.rejected(
            StatusCode::UNAUTHORIZED,
            &format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                error.description()
            ),
            &json!({ "error": "invalid_token", "error_description": error.description(), "reason": error.code() }),
        );
    }

    /// NOSCOPE: 403 `insufficient_scope` with `scope="<required>"`.
    pub(crate) fn noscope(&self, required: &str) {
        self.noscope_in(REALM, required);
    }

    /// The harness's guarded routes require all of their scopes, so `required` (the
    /// challenge's set) also spells the whole requirement of the body.
    pub(crate) fn noscope_in(&self, realm: &str, required: &str) {
        let scopes: Vec<String> = required.split(' ').map(|s| format!("\"{s}\"")).collect();
        let requirement = match scopes.as_slice() {
            [one] => one.clone(),
            all => format!("all({})", all.join(", ")),
        };
        self.rejected(
            StatusCode::FORBIDDEN,
            &format!("Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{required}\""),
            &json!({
                "error": "insufficient_scope",
                "error_description": "The access token lacks a scope this route requires",
                "scope": required,
                "requirement": requirement,
                "reason": "insufficient_scope",
            }),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Token surgery
// ---------------------------------------------------------------------------------------

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()).cast_signed()
}

/// Unpadded base64url.
pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url.
pub(crate) fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

/// The three segments of a compact token.
pub(crate) fn segments(token: &str) -> [String; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS");
    [parts[0].to_owned(), parts[1].to_owned(), parts[2].to_owned()]
}

/// The token with its signature replaced by `signature` (raw bytes).
pub(crate) fn with_signature(token: &str, signature: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').expect("a compact JWS");
    format!("{input}.{}", b64(signature))
}

/// The same bytes as `segment` encodes, but with a non-zero unused trailing bit: a
/// non-canonical encoding a lax decoder would accept.
pub(crate) fn non_canonical(segment: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_ne!(segment.len() % 4, 0, "a segment without unused trailing bits");
    let mut bytes = segment.as_bytes().to_vec();
    let last = bytes.last_mut().expect("a non-empty segment");
    let index = ALPHABET.iter().position(|c| c == last).expect("a base64url character");
    assert_eq!(index & 1, 0, "the segment is canonical");
    *last = ALPHABET[index | 1];
    String::from_utf8(bytes).expect("ASCII")
}

/// The default access-token claims of [`TestIssuer::access_token`], as a map.
pub(crate) fn access_claims() -> Map<String, Value> {
    let now = now();
    let mut claims = Map::new();
    claims.insert("iss".into(), ISS.into());
    claims.insert("sub".into(), testing::DEFAULT_SUBJECT.into());
    claims.insert("aud".into(), AUD.into());
    claims.insert("client_id".into(), testing::DEFAULT_CLIENT_ID.into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + 300).into());
    claims.insert("jti".into(), format!("jti-harness-{now}").into());
    claims
}

/// The default access-token claims as JSON text, without the members named in `remove`,
/// and with `extra` (raw JSON text such as `,"exp":1`) spliced in before the closing
/// brace: for duplicates and numbers a `serde_json::Value` cannot express.
pub(crate) fn raw_claims(remove: &[&str], extra: &str) -> String {
    let mut claims = access_claims();
    for name in remove {
        claims.remove(*name);
    }
    splice(&Value::Object(claims).to_string(), extra)
}

/// The default header of the test issuer (`RS256`, `at+jwt`, `rsa-1`) as JSON text with
/// `extra` spliced in.
pub(crate) fn raw_header(extra: &str) -> String {
    splice(r#"{"alg":"RS256","typ":"at+jwt","kid":"rsa-1"}"#, extra)
}

fn splice(object: &str, extra: &str) -> String {
    let body = object.strip_suffix('}').expect("a JSON object");
    format!("{body}{extra}}}")
}

// ---------------------------------------------------------------------------------------
// A signer for arbitrary bytes
// ---------------------------------------------------------------------------------------

/// An Ed25519 key that signs any header and payload bytes (the test issuer signs only
/// UTF-8 JSON text), for cases that need a valid signature over bytes that are not: invalid
/// UTF-8, the standard base64 alphabet, non-canonical base64.
pub(crate) struct RawSigner {
    key: Ed25519KeyPair,
    pub(crate) kid: &'static str,
}

impl RawSigner {
    pub(crate) fn new() -> Self {
        Self { key: Ed25519KeyPair::generate().expect("an Ed25519 key"), kid: "raw-1" }
    }

    /// The public key as a JWK.
    pub(crate) fn jwk(&self) -> Value {
        json!({ "kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": self.kid, "x": b64(self.key.public_key().as_ref()) })
    }

    /// An authority for [`ISS`] and [`AUD`] trusting this key only.
    pub(crate) fn authority(&self) -> Authority {
        authority_with_jwks(&[self.jwk()])
    }

    /// A valid access-token header for this key.
    pub(crate) fn header(&self) -> String {
        format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}"}}"#, self.kid)
    }

    /// Signs `header_segment "." payload_segment`, exactly as given (already encoded).
    pub(crate) fn sign_segments(&self, header_segment: &str, payload_segment: &str) -> String {
        let input = format!("{header_segment}.{payload_segment}");
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(signature.as_ref()))
    }

    /// Signs the base64url encodings of `header` and `payload` bytes.
    pub(crate) fn sign(&self, header: &[u8], payload: &[u8]) -> String {
        self.sign_segments(&b64(header), &b64(payload))
    }
}

// ---------------------------------------------------------------------------------------
// Log capture
// ---------------------------------------------------------------------------------------

/// Everything a `tracing` subscriber at TRACE level printed on this thread.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

pub(crate) struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("the log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter(Arc::clone(&self.0))
    }
}

impl Logs {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("the log buffer")).into_owned()
    }
}

/// Captures every event and span (TRACE and up) emitted on the current thread until the
/// guard drops. `#[tokio::test]` runs on one thread, so a request sent with `oneshot`
/// logs here.
pub(crate) fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(logs.clone()).finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

/// A one-line summary of a JSON value (for messages).
pub(crate) fn describe(value: &Value) -> String {
    let mut out = String::new();
    let _ = write!(out, "{value}");
    shorten(&out)
}
