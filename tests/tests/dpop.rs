//! DPoP (RFC 9449) end to end through a real axum router: a bound token opens a route
//! only with its proof, every proof rule refuses on its own with the exact status,
//! `WWW-Authenticate` and reason, and a replayed proof is refused on a second authority
//! sharing a real `redis-server` (started here on 127.0.0.1).

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
    routing::{get, post},
};
use http_body_util::BodyExt as _;
use scopegate::{
    AccessToken, Algorithm, Authority, AuthorityBuilder, DpopError, RejectionKind, TokenError,
    dpop::{DpopNonce, DpopPolicy, MemoryReplayStore, RedisReplayStore, ReplayStore},
    testing::{self, DpopKey, TestClock, TestIssuer},
};
use scopegate_tests::{skip_notice, under_ci};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const AUD: &str = testing::DEFAULT_AUDIENCE;
const REALM: &str = AUD;
/// The URL of `/me` as clients see it: the audience is the external base URL.
const ME: &str = "https://api.example.test/me";
const ALGS: &str = "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519";

fn builder() -> AuthorityBuilder {
    TestIssuer::new().authority_builder(AUD).dpop(DpopPolicy::Allowed)
}

fn authority() -> Authority {
    builder().build().unwrap()
}

async fn me(token: AccessToken) -> String {
    token.subject().to_owned()
}

#[scopegate::requires_scope("admin")]
async fn admin() -> &'static str {
    "admin"
}

/// DPoP only, under any authority policy.
#[scopegate::requires_scope("payments:write", dpop = "required")]
async fn pay(token: AccessToken) -> String {
    token.subject().to_owned()
}

/// The same requirement without the option.
#[scopegate::requires_scope("payments:write")]
async fn pay_either_way(token: AccessToken) -> String {
    token.subject().to_owned()
}

fn app(authority: Authority) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/pay", get(pay))
        .route("/pay-either-way", get(pay_either_way))
        .route("/items", post(me))
        .route("/admin", get(admin))
        .nest("/v1", Router::new().route("/me", get(me)))
        .with_state(authority)
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    /// The `DPoP-Nonce` header.
    nonce: Option<String>,
    body: String,
}

impl Reply {
    fn reason(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.body).ok()?.get("reason")?.as_str().map(str::to_owned)
    }
}

async fn send(router: &Router, method: &str, path: &str, authorization: Option<&str>, proofs: &[&str]) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    let response = router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let challenge = response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
    let nonce = response.headers().get("dpop-nonce").map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Reply { status, challenge, nonce, body }
}

/// `GET /me` with `Authorization: DPoP <token>` and one proof.
async fn get_me(router: &Router, token: &str, proof: &str) -> Reply {
    send(router, "GET", "/me", Some(&format!("DPoP {token}")), &[proof]).await
}

/// The challenge of a refused proof: the error on the `DPoP` challenge, after a bare
/// `Bearer` one.
fn proof_challenge(error: DpopError) -> String {
    format!(
        "Bearer realm=\"{REALM}\", DPoP realm=\"{REALM}\", error=\"invalid_dpop_proof\", error_description=\"{}\", algs=\"{ALGS}\"",
        error.description()
    )
}

/// A bound token and its key.
fn bound_token() -> (DpopKey, String) {
    let key = DpopKey::generate();
    let token = TestIssuer::new().access_token().dpop_bound(&key).sign();
    (key, token)
}

/// Asserts that the request with this proof is refused for `error`, with the exact
/// response.
async fn assert_refused(router: &Router, token: &str, proof: &str, error: DpopError) {
    let reply = get_me(router, token, proof).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.challenge.as_deref(), Some(proof_challenge(error).as_str()), "{reply:?}");
    assert_eq!(reply.reason().as_deref(), Some(error.code()), "{reply:?}");
}

#[tokio::test]
async fn case_168_a_bound_token_with_its_proof_opens_the_route() {
    let router = app(authority());
    let (key, token) = bound_token();
    let proof = key.proof("GET", ME).access_token(&token).sign();
    let reply = get_me(&router, &token, &proof).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, testing::DEFAULT_SUBJECT));
}

#[tokio::test]
async fn case_117_and_168_a_bound_token_sent_as_bearer_is_invalid_token_with_both_challenges() {
    let authority = authority();
    let router = app(authority.clone());
    let (_, token) = bound_token();
    let reply = send(&router, "GET", "/me", Some(&format!("Bearer {token}")), &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let description = TokenError::SenderConstrained.description();
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\", DPoP realm=\"{REALM}\", algs=\"{ALGS}\""
            )
            .as_str()
        )
    );
    assert_eq!(reply.reason().as_deref(), Some("sender_constrained"));
    // Outside a request too.
    assert_eq!(
        authority.verify(&token).await.unwrap_err().kind(),
        &RejectionKind::InvalidToken(TokenError::SenderConstrained)
    );
}

#[tokio::test]
async fn without_credentials_both_schemes_are_offered_and_bearer_tokens_still_work() {
    let router = app(authority());
    let reply = send(&router, "GET", "/me", None, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(format!("Bearer realm=\"{REALM}\", DPoP realm=\"{REALM}\", algs=\"{ALGS}\"").as_str())
    );
    let bearer = TestIssuer::new().access_token().sign();
    let reply = send(&router, "GET", "/me", Some(&format!("Bearer {bearer}")), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn dpop_required_answers_a_bearer_token_like_no_credentials_with_a_dpop_challenge_alone() {
    let router =
        app(builder().dpop(DpopPolicy::Required).dpop_algorithms([scopegate::Algorithm::ES256]).build().unwrap());
    let bearer = TestIssuer::new().access_token().sign();
    let reply = send(&router, "GET", "/me", Some(&format!("Bearer {bearer}")), &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge.as_deref(), Some(format!("DPoP realm=\"{REALM}\", algs=\"ES256\"").as_str()));
    assert_eq!(reply.reason().as_deref(), Some("missing_credentials"));
    let (key, token) = bound_token();
    let reply = get_me(&router, &token, &key.proof("GET", ME).access_token(&token).sign()).await;
    assert_eq!(reply.status, StatusCode::OK);
    // A refused proof: the DPoP challenge alone carries the error.
    let reply = get_me(&router, &token, &key.proof("POST", ME).access_token(&token).sign()).await;
    let description = DpopError::MethodMismatch.description();
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            format!(
                "DPoP realm=\"{REALM}\", error=\"invalid_dpop_proof\", error_description=\"{description}\", algs=\"ES256\""
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn without_dpop_on_the_dpop_scheme_is_no_credentials_and_a_bound_token_is_refused() {
    let router = app(TestIssuer::new().authority(AUD));
    let (key, token) = bound_token();
    let reply = get_me(&router, &token, &key.proof("GET", ME).access_token(&token).sign()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge.as_deref(), Some(format!("Bearer realm=\"{REALM}\"").as_str()));
    assert_eq!(reply.reason().as_deref(), Some("missing_credentials"));
}

#[tokio::test]
async fn case_168_a_proof_for_another_method_is_refused() {
    let router = app(authority());
    let (key, token) = bound_token();
    assert_refused(&router, &token, &key.proof("POST", ME).access_token(&token).sign(), DpopError::MethodMismatch)
        .await;
    // Methods are case-sensitive (RFC 9110 §9.1).
    assert_refused(&router, &token, &key.proof("get", ME).access_token(&token).sign(), DpopError::MethodMismatch).await;
}

#[tokio::test]
async fn case_168_a_proof_for_another_url_is_refused() {
    let router = app(authority());
    let (key, token) = bound_token();
    for htu in [
        "https://api.example.test/other",
        "https://api.example.test/me/",
        "https://evil.example.test/me",
        "http://api.example.test/me",
        "https://api.example.test:8443/me",
        "/me",
    ] {
        let proof = key.proof("GET", htu).access_token(&token).sign();
        assert_refused(&router, &token, &proof, DpopError::UriMismatch).await;
    }
}

#[tokio::test]
async fn htu_is_compared_after_normalization_and_without_query_or_fragment() {
    let router = app(authority());
    let (key, token) = bound_token();
    for htu in ["https://API.example.TEST/me", "https://api.example.test:443/me", "https://api.example.test/%6De?x=1#f"]
    {
        let proof = key.proof("GET", htu).access_token(&token).sign();
        let reply = send(&router, "GET", "/me?page=2", Some(&format!("DPoP {token}")), &[&proof]).await;
        assert_eq!(reply.status, StatusCode::OK, "{htu}: {reply:?}");
    }
}

#[tokio::test]
async fn behind_a_proxy_htu_is_the_public_url_and_nested_routes_keep_their_prefix() {
    let router = app(builder().public_url("https://gateway.example.test/api").build().unwrap());
    let (key, token) = bound_token();
    let proof = key.proof("GET", "https://gateway.example.test/api/v1/me").access_token(&token).sign();
    let reply = send(&router, "GET", "/v1/me", Some(&format!("DPoP {token}")), &[&proof]).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    // The audience is no longer the base.
    let proof = key.proof("GET", "https://api.example.test/v1/me").access_token(&token).sign();
    let reply = send(&router, "GET", "/v1/me", Some(&format!("DPoP {token}")), &[&proof]).await;
    assert_eq!(reply.reason().as_deref(), Some("dpop_htu_mismatch"));
}

#[tokio::test]
async fn case_168_a_stale_or_future_proof_is_refused() {
    let router =
        app(builder().dpop_proof_max_age(Duration::from_secs(30)).leeway(Duration::from_secs(5)).build().unwrap());
    let (key, token) = bound_token();
    for seconds in [-40, -3600, 10] {
        let proof = key.proof("GET", ME).access_token(&token).issued_in(seconds).sign();
        assert_refused(&router, &token, &proof, DpopError::Stale).await;
    }
    // Inside the window (30 s + 5 s of leeway back, 5 s ahead).
    for seconds in [-33, 3] {
        let proof = key.proof("GET", ME).access_token(&token).issued_in(seconds).sign();
        assert_eq!(get_me(&router, &token, &proof).await.status, StatusCode::OK, "iat {seconds}");
    }
}

#[tokio::test]
async fn case_168_a_proof_without_ath_or_for_another_token_is_refused() {
    let router = app(authority());
    let (key, token) = bound_token();
    assert_refused(&router, &token, &key.proof("GET", ME).sign(), DpopError::AthMismatch).await;
    let other = TestIssuer::new().access_token().dpop_bound(&key).sign();
    assert_refused(&router, &token, &key.proof("GET", ME).access_token(&other).sign(), DpopError::AthMismatch).await;
}

#[tokio::test]
async fn case_168_a_proof_by_another_key_than_the_bound_one_is_refused() {
    let router = app(authority());
    let (_, token) = bound_token();
    let thief = DpopKey::generate();
    assert_refused(&router, &token, &thief.proof("GET", ME).access_token(&token).sign(), DpopError::KeyMismatch).await;
}

#[tokio::test]
async fn case_168_a_replayed_proof_is_refused() {
    let authority = authority();
    let router = app(authority.clone());
    let (key, token) = bound_token();
    let proof = key.proof("GET", ME).access_token(&token).sign();
    assert_eq!(get_me(&router, &token, &proof).await.status, StatusCode::OK);
    assert_refused(&router, &token, &proof, DpopError::Replayed).await;
    assert_eq!(authority.rejections_by_reason(), vec![("dpop_replayed", 1)]);
    // A new proof (new jti) is fine.
    let again = key.proof("GET", ME).access_token(&token).sign();
    assert_eq!(get_me(&router, &token, &again).await.status, StatusCode::OK);
}

#[tokio::test]
async fn case_168_a_proof_signed_with_hs256_or_none_is_refused() {
    let router = app(authority());
    let (key, token) = bound_token();
    let hs256 = key.proof("GET", ME).access_token(&token).hmac_secret([7u8; 32]).sign();
    assert_refused(&router, &token, &hs256, DpopError::AlgorithmNotAllowed).await;
    let none = key.proof("GET", ME).access_token(&token).header("alg", "none").sign();
    assert_refused(&router, &token, &none, DpopError::AlgorithmNotAllowed).await;
}

#[tokio::test]
async fn case_168_a_proof_with_the_private_key_inside_is_refused() {
    let router = app(authority());
    let (key, token) = bound_token();
    let proof = key.proof("GET", ME).access_token(&token).header("jwk", key.private_jwk()).sign();
    assert_refused(&router, &token, &proof, DpopError::PrivateKey).await;
}

#[tokio::test]
async fn case_168_a_proof_of_another_type_without_a_key_or_with_a_bad_signature_is_refused() {
    let router = app(authority());
    let (key, token) = bound_token();
    let proof = |p: testing::ProofBuilder| p.access_token(&token).sign();
    assert_refused(&router, &token, &proof(key.proof("GET", ME).header("typ", "JWT")), DpopError::WrongType).await;
    assert_refused(&router, &token, &proof(key.proof("GET", ME).without_header("typ")), DpopError::WrongType).await;
    assert_refused(&router, &token, &proof(key.proof("GET", ME).without_header("jwk")), DpopError::InvalidKey).await;
    let symmetric = json!({"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"});
    assert_refused(&router, &token, &proof(key.proof("GET", ME).header("jwk", symmetric)), DpopError::PrivateKey).await;
    // Signed by `key`, but naming another public key.
    let other = DpopKey::generate().public_jwk();
    assert_refused(&router, &token, &proof(key.proof("GET", ME).header("jwk", other)), DpopError::InvalidSignature)
        .await;
    assert_refused(&router, &token, &proof(key.proof("GET", ME).without_claim("jti")), DpopError::MissingJti).await;
    assert_refused(&router, &token, &proof(key.proof("GET", ME).without_claim("htu")), DpopError::MalformedProof).await;
    assert_refused(&router, &token, "not-a-jws", DpopError::MalformedProof).await;
}

#[tokio::test]
async fn case_168_a_missing_proof_or_two_proofs_are_refused() {
    let router = app(authority());
    let (key, token) = bound_token();
    let reply = send(&router, "GET", "/me", Some(&format!("DPoP {token}")), &[]).await;
    assert_eq!(reply.challenge.as_deref(), Some(proof_challenge(DpopError::MissingProof).as_str()));
    let one = key.proof("GET", ME).access_token(&token).sign();
    let two = key.proof("GET", ME).access_token(&token).sign();
    let reply = send(&router, "GET", "/me", Some(&format!("DPoP {token}")), &[&one, &two]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge.as_deref(), Some(proof_challenge(DpopError::MultipleProofs).as_str()));
}

#[tokio::test]
async fn an_unbound_or_expired_token_under_the_dpop_scheme_is_invalid_token_on_the_dpop_challenge() {
    let router = app(authority());
    let key = DpopKey::generate();
    for (token, error) in [
        (TestIssuer::new().access_token().sign(), TokenError::NotDpopBound),
        (TestIssuer::new().access_token().dpop_bound(&key).expires_in(-120).sign(), TokenError::Expired),
    ] {
        let reply = get_me(&router, &token, &key.proof("GET", ME).access_token(&token).sign()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.challenge.as_deref(),
            Some(
                format!(
                    "Bearer realm=\"{REALM}\", DPoP realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{}\", algs=\"{ALGS}\"",
                    error.description()
                )
                .as_str()
            )
        );
        assert_eq!(reply.reason().as_deref(), Some(error.code()));
    }
}

#[tokio::test]
async fn a_403_carries_only_the_challenge_of_the_scheme_the_request_used() {
    let router = app(authority());
    let (key, token) = bound_token();
    let proof = key.proof("GET", "https://api.example.test/admin").access_token(&token).sign();
    let reply = send(&router, "GET", "/admin", Some(&format!("DPoP {token}")), &[&proof]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            format!("DPoP realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"admin\", algs=\"{ALGS}\"").as_str()
        )
    );
    let bearer = TestIssuer::new().access_token().sign();
    let reply = send(&router, "GET", "/admin", Some(&format!("Bearer {bearer}")), &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"admin\"").as_str())
    );
}

#[scopegate::requires_scope("read:appointments", aud = "https://api.example.test")]
async fn explicit_audience(token: AccessToken) -> String {
    token.subject().to_owned()
}

async fn note_caller(
    caller: Option<AccessToken>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    if let Some(caller) = caller {
        response.headers_mut().insert("x-caller", caller.subject().parse().unwrap());
    }
    response
}

#[tokio::test]
async fn a_middleware_and_a_guard_checking_one_proof_in_one_request_is_not_a_replay() {
    let authority = authority();
    // The guard names its audience, so it verifies again after the middleware.
    let router = Router::new()
        .route("/explicit", get(explicit_audience))
        .layer(axum::middleware::from_fn_with_state(authority.clone(), note_caller))
        .with_state(authority);
    let key = DpopKey::generate();
    let token = TestIssuer::new().access_token().scope("read:appointments").dpop_bound(&key).sign();
    let proof = key.proof("GET", "https://api.example.test/explicit").access_token(&token).sign();
    let reply = send(&router, "GET", "/explicit", Some(&format!("DPoP {token}")), &[&proof]).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, testing::DEFAULT_SUBJECT), "{reply:?}");
    // The next request with the same proof is one.
    let reply = send(&router, "GET", "/explicit", Some(&format!("DPoP {token}")), &[&proof]).await;
    assert_eq!(reply.reason().as_deref(), Some("dpop_replayed"));
}

#[tokio::test]
async fn a_post_with_its_proof_is_accepted() {
    let router = app(authority());
    let (key, token) = bound_token();
    let proof = key.proof("POST", "https://api.example.test/items").access_token(&token).sign();
    let reply = send(&router, "POST", "/items", Some(&format!("DPoP {token}")), &[&proof]).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
}

#[test]
fn dpop_settings_are_checked_at_build_time() {
    let issuer = TestIssuer::new();
    let error = issuer.authority_builder("api://appointments").dpop(DpopPolicy::Allowed).build().unwrap_err();
    assert_eq!(error.setting(), "public_url", "{error}");
    assert!(
        issuer
            .authority_builder("api://appointments")
            .dpop(DpopPolicy::Allowed)
            .public_url("https://api.example.test")
            .build()
            .is_ok()
    );
    let error = builder().dpop_algorithms([scopegate::Algorithm::HS256]).build().unwrap_err();
    assert_eq!(error.setting(), "dpop_algorithms", "{error}");
    let error = builder().dpop_proof_max_age(Duration::from_secs(301)).build().unwrap_err();
    assert_eq!(error.setting(), "dpop_proof_max_age", "{error}");
    let error = issuer.authority_builder(AUD).dpop_proof_max_age(Duration::from_secs(30)).build().unwrap_err();
    assert_eq!(error.setting(), "dpop", "{error}");
    // Every DPoP setting alone, with DPoP not on, is refused under `dpop`.
    let alone = [
        ("a replay store", issuer.authority_builder(AUD).dpop_replay_store(Arc::new(MemoryReplayStore::default()))),
        ("proof algorithms", issuer.authority_builder(AUD).dpop_algorithms([scopegate::Algorithm::ES256])),
        ("nonces", issuer.authority_builder(AUD).dpop_nonce(scopegate::dpop::DpopNonce::random())),
    ];
    for (what, builder) in alone {
        let error = builder.build().unwrap_err();
        assert_eq!(error.setting(), "dpop", "{what}: {error}");
    }
    // The proof age's bounds: 300 s is the largest accepted, zero is refused.
    builder().dpop_proof_max_age(Duration::from_secs(300)).build().unwrap();
    let error = builder().dpop_proof_max_age(Duration::ZERO).build().unwrap_err();
    assert_eq!(error.setting(), "dpop_proof_max_age", "{error}");
}

#[tokio::test]
async fn two_authorities_sharing_one_memory_store_refuse_a_replay_on_the_other() {
    let store: Arc<dyn ReplayStore> = Arc::new(MemoryReplayStore::default());
    let first = app(builder().dpop_replay_store(Arc::clone(&store)).build().unwrap());
    let second = app(builder().dpop_replay_store(store).build().unwrap());
    let (key, token) = bound_token();
    let proof = key.proof("GET", ME).access_token(&token).sign();
    assert_eq!(get_me(&first, &token, &proof).await.status, StatusCode::OK);
    assert_refused(&second, &token, &proof, DpopError::Replayed).await;
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

/// A `redis-server` on a free loopback port, stopped on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one, or `None` (with a visible [`skip_notice`]) when `redis-server` is not
    /// installed; under CI ([`under_ci`]) a missing server fails the test.
    fn start(test: &str) -> Option<Self> {
        let installed = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok();
        if !installed {
            assert!(
                !under_ci(),
                "{test}: redis-server is not installed; `.ci/run` installs it (apt-get install -y redis-server)"
            );
            skip_notice(test, "redis-server is not installed (apt-get install -y redis-server)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{test}: redis-server did not listen on {port} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn case_168_a_proof_replayed_on_a_second_instance_sharing_redis_is_refused() {
    let Some(redis) = RedisServer::start("case_168_a_proof_replayed_on_a_second_instance_sharing_redis_is_refused")
    else {
        return;
    };
    // Two instances of the service: separate authorities, separate connections, one Redis.
    let store =
        |url: String| async move { Arc::new(RedisReplayStore::connect(&url).await.unwrap()) as Arc<dyn ReplayStore> };
    let first = app(builder().dpop_replay_store(store(redis.url()).await).build().unwrap());
    let second = app(builder().dpop_replay_store(store(redis.url()).await).build().unwrap());
    let (key, token) = bound_token();
    let proof = key.proof("GET", ME).access_token(&token).sign();
    assert_eq!(get_me(&first, &token, &proof).await.status, StatusCode::OK);
    assert_refused(&second, &token, &proof, DpopError::Replayed).await;
    assert_refused(&first, &token, &proof, DpopError::Replayed).await;
    let fresh = key.proof("GET", ME).access_token(&token).sign();
    assert_eq!(get_me(&second, &token, &fresh).await.status, StatusCode::OK);
}

#[tokio::test]
async fn redis_keys_expire_with_the_proof_window() {
    let Some(redis) = RedisServer::start("redis_keys_expire_with_the_proof_window") else {
        return;
    };
    let store = RedisReplayStore::connect(&redis.url()).await.unwrap();
    use scopegate::dpop::Freshness;
    assert_eq!(store.check_and_insert("k", Duration::from_millis(300)).await.unwrap(), Freshness::Fresh);
    assert_eq!(store.check_and_insert("k", Duration::from_millis(300)).await.unwrap(), Freshness::Replayed);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.check_and_insert("k", Duration::from_millis(300)).await.unwrap(), Freshness::Fresh);
}

#[tokio::test]
async fn when_redis_goes_away_dpop_requests_get_503_never_an_accept() {
    let Some(redis) = RedisServer::start("when_redis_goes_away_dpop_requests_get_503_never_an_accept") else {
        return;
    };
    let store = Arc::new(RedisReplayStore::connect(&redis.url()).await.unwrap());
    let router = app(builder().dpop_replay_store(store).build().unwrap());
    drop(redis);
    let (key, token) = bound_token();
    let reply = get_me(&router, &token, &key.proof("GET", ME).access_token(&token).sign()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.challenge, None);
    assert_eq!(reply.reason().as_deref(), Some("dpop_replay_store_unavailable"));
}

// ---------------------------------------------------------------------------------------
// `#[requires_scope(…, dpop = "required")]`
// ---------------------------------------------------------------------------------------

const PAY: &str = "https://api.example.test/pay";

/// A token with `payments:write`, bound to a new key.
fn payment_token() -> (DpopKey, String) {
    let key = DpopKey::generate();
    let token = TestIssuer::new().access_token().scope("payments:write").dpop_bound(&key).sign();
    (key, token)
}

#[tokio::test]
async fn a_bearer_token_to_a_dpop_required_handler_is_401_with_the_dpop_challenge_alone() {
    let authority = authority();
    let router = app(authority.clone());
    let bearer = TestIssuer::new().access_token().scope("payments:write").sign();
    let reply = send(&router, "GET", "/pay", Some(&format!("Bearer {bearer}")), &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.challenge.as_deref(), Some(format!("DPoP realm=\"{REALM}\", algs=\"{ALGS}\"").as_str()));
    assert_eq!(reply.reason().as_deref(), Some("missing_credentials"));
    // The same token opens the handler without the option: the authority allows bearer.
    let reply = send(&router, "GET", "/pay-either-way", Some(&format!("Bearer {bearer}")), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    // No credentials: the DPoP challenge alone too.
    let reply = send(&router, "GET", "/pay", None, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge.as_deref(), Some(format!("DPoP realm=\"{REALM}\", algs=\"{ALGS}\"").as_str()));
    // A bound token sent as `Bearer`: refused before it is verified.
    let (_, bound) = payment_token();
    let reply = send(&router, "GET", "/pay", Some(&format!("Bearer {bound}")), &[]).await;
    assert_eq!(reply.challenge.as_deref(), Some(format!("DPoP realm=\"{REALM}\", algs=\"{ALGS}\"").as_str()));
    assert_eq!(reply.reason().as_deref(), Some("missing_credentials"));
    assert_eq!(authority.stats().accepted, 1, "only the bearer request to /pay-either-way was accepted");
}

#[tokio::test]
async fn a_dpop_request_to_a_dpop_required_handler_passes_and_its_refusals_offer_dpop_alone() {
    let router = app(authority());
    let (key, token) = payment_token();
    let proof = key.proof("GET", PAY).access_token(&token).sign();
    let reply = send(&router, "GET", "/pay", Some(&format!("DPoP {token}")), &[&proof]).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, testing::DEFAULT_SUBJECT), "{reply:?}");
    // A refused proof: the error on the DPoP challenge, and no Bearer challenge before it.
    let proof = key.proof("POST", PAY).access_token(&token).sign();
    let reply = send(&router, "GET", "/pay", Some(&format!("DPoP {token}")), &[&proof]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let description = DpopError::MethodMismatch.description();
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            format!(
                "DPoP realm=\"{REALM}\", error=\"invalid_dpop_proof\", error_description=\"{description}\", algs=\"{ALGS}\""
            )
            .as_str()
        )
    );
    // Without the scope: 403 on the DPoP challenge.
    let key = DpopKey::generate();
    let token = TestIssuer::new().access_token().dpop_bound(&key).sign();
    let proof = key.proof("GET", PAY).access_token(&token).sign();
    let reply = send(&router, "GET", "/pay", Some(&format!("DPoP {token}")), &[&proof]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            format!("DPoP realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"payments:write\", algs=\"{ALGS}\"")
                .as_str()
        )
    );
}

#[tokio::test]
async fn a_bearer_token_an_earlier_extractor_accepted_is_still_refused_by_a_dpop_required_handler() {
    let authority = authority();
    let router = Router::new()
        .route("/pay", get(pay))
        .layer(axum::middleware::from_fn_with_state(authority.clone(), note_caller))
        .with_state(authority);
    let bearer = TestIssuer::new().access_token().scope("payments:write").sign();
    let reply = send(&router, "GET", "/pay", Some(&format!("Bearer {bearer}")), &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.challenge.as_deref(), Some(format!("DPoP realm=\"{REALM}\", algs=\"{ALGS}\"").as_str()));
    assert_eq!(reply.reason().as_deref(), Some("missing_credentials"));
}

#[tokio::test]
async fn behind_an_authority_that_requires_dpop_the_handler_option_changes_nothing() {
    let router = app(builder().dpop(DpopPolicy::Required).build().unwrap());
    let bearer = TestIssuer::new().access_token().scope("payments:write").sign();
    let (key, token) = payment_token();
    for path in ["/pay", "/pay-either-way"] {
        let url = format!("https://api.example.test{path}");
        let reply = send(&router, "GET", path, Some(&format!("Bearer {bearer}")), &[]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            reply.challenge.as_deref(),
            Some(format!("DPoP realm=\"{REALM}\", algs=\"{ALGS}\"").as_str()),
            "{path}"
        );
        assert_eq!(reply.reason().as_deref(), Some("missing_credentials"), "{path}");
        let reply = send(&router, "GET", path, None, &[]).await;
        assert_eq!(
            reply.challenge.as_deref(),
            Some(format!("DPoP realm=\"{REALM}\", algs=\"{ALGS}\"").as_str()),
            "{path}"
        );
        let proof = key.proof("GET", &url).access_token(&token).sign();
        let reply = send(&router, "GET", path, Some(&format!("DPoP {token}")), &[&proof]).await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, testing::DEFAULT_SUBJECT), "{path}");
    }
}

#[tokio::test]
async fn a_dpop_required_handler_behind_an_authority_without_dpop_is_misconfigured_never_open() {
    let router = app(TestIssuer::new().authority(AUD));
    let bearer = TestIssuer::new().access_token().scope("payments:write").sign();
    for authorization in [Some(format!("Bearer {bearer}")), None] {
        let reply = send(&router, "GET", "/pay", authorization.as_deref(), &[]).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{reply:?}");
        assert_eq!(reply.challenge, None);
        assert_eq!(reply.reason().as_deref(), Some("misconfigured"));
    }
}

#[test]
fn the_route_table_shows_a_dpop_required_handler() {
    use axum::http::Method;
    let policy = scopegate::policy::Policy::new(AUD).route(Method::GET, "/pay", pay).route(
        Method::GET,
        "/pay-either-way",
        pay_either_way,
    );
    let routes = policy.routes();
    assert_eq!(routes.iter().map(|r| r.dpop_required()).collect::<Vec<_>>(), [true, false]);
    assert!(scopegate::policy::declaration_of(&pay).unwrap().dpop_required());
    assert!(!scopegate::policy::declaration_of(&pay_either_way).unwrap().dpop_required());
    let table = policy.to_string();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(
        rows[0],
        "GET     /pay             \"payments:write\", dpop = \"required\"  https://api.example.test  dpop::pay",
        "{table}"
    );
    assert_eq!(
        rows[1],
        "GET     /pay-either-way  \"payments:write\"                     https://api.example.test  dpop::pay_either_way",
        "{table}"
    );
}

// ---------------------------------------------------------------------------------------
// Server-provided nonces (RFC 9449 §9)
// ---------------------------------------------------------------------------------------

const NONCE_SECRET: [u8; 32] = *b"a shared secret of 32 bytes, ok!";

/// An authority handing out nonces from the shared secret, rotated every minute, on
/// `clock`.
fn nonce_builder(clock: &TestClock) -> AuthorityBuilder {
    builder().dpop_nonce(DpopNonce::shared_secret(NONCE_SECRET).rotation(Duration::from_secs(60))).clock(clock)
}

/// A clock at the start of the current minute (a rotation period of the tests).
fn minute_clock() -> TestClock {
    let now = TestClock::at_system_time().now();
    TestClock::at(now - now % 60.0)
}

/// A bound token issued at the clock's time.
fn bound_token_at(clock: &TestClock) -> (DpopKey, String) {
    let key = DpopKey::generate();
    #[allow(clippy::cast_possible_truncation)]
    let now = clock.now() as i64;
    let token = TestIssuer::new().access_token().dpop_bound(&key).claim("iat", now).claim("exp", now + 3600).sign();
    (key, token)
}

/// A proof for `GET /me` at the clock's time, with `nonce` if given.
fn proof_at(key: &DpopKey, token: &str, clock: &TestClock, nonce: Option<&str>) -> String {
    #[allow(clippy::cast_possible_truncation)]
    let proof = key.proof("GET", ME).access_token(token).claim("iat", clock.now() as i64);
    match nonce {
        Some(nonce) => proof.nonce(nonce).sign(),
        None => proof.sign(),
    }
}

/// The challenge of a proof refused for its nonce.
fn nonce_challenge(error: DpopError) -> String {
    format!(
        "Bearer realm=\"{REALM}\", DPoP realm=\"{REALM}\", error=\"use_dpop_nonce\", error_description=\"{}\", algs=\"{ALGS}\"",
        error.description()
    )
}

/// Asserts a 401 `use_dpop_nonce` for `error`, and returns the nonce it hands out.
fn assert_use_nonce(reply: &Reply, error: DpopError) -> String {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.challenge.as_deref(), Some(nonce_challenge(error).as_str()), "{reply:?}");
    assert_eq!(reply.reason().as_deref(), Some(error.code()), "{reply:?}");
    let nonce = reply.nonce.clone().expect("a DPoP-Nonce header");
    assert_eq!(nonce.len(), 22, "{nonce}");
    nonce
}

#[tokio::test]
async fn with_nonces_on_a_proof_without_a_nonce_gets_use_dpop_nonce_and_the_nonce_to_retry_with() {
    let clock = minute_clock();
    let router = app(nonce_builder(&clock).build().unwrap());
    let (key, token) = bound_token_at(&clock);
    let reply = get_me(&router, &token, &proof_at(&key, &token, &clock, None)).await;
    let nonce = assert_use_nonce(&reply, DpopError::MissingNonce);
    // The retry with it is accepted.
    let reply = get_me(&router, &token, &proof_at(&key, &token, &clock, Some(&nonce))).await;
    assert_eq!((reply.status, reply.nonce), (StatusCode::OK, None), "{}", reply.body);
    // Every 401 hands out the nonce, a request without credentials too.
    let reply = send(&router, "GET", "/me", None, &[]).await;
    assert_eq!((reply.status, reply.nonce.as_deref()), (StatusCode::UNAUTHORIZED, Some(nonce.as_str())));
    // A 403 does not: the proof was accepted.
    let proof = key.proof("GET", "https://api.example.test/admin").access_token(&token).nonce(&nonce);
    #[allow(clippy::cast_possible_truncation)]
    let proof = proof.claim("iat", clock.now() as i64).sign();
    let reply = send(&router, "GET", "/admin", Some(&format!("DPoP {token}")), &[&proof]).await;
    assert_eq!((reply.status, reply.nonce), (StatusCode::FORBIDDEN, None));
}

#[tokio::test]
async fn with_nonces_on_a_wrong_or_malformed_nonce_is_refused() {
    let clock = minute_clock();
    let router = app(nonce_builder(&clock).build().unwrap());
    let (key, token) = bound_token_at(&clock);
    // Another secret's nonce of the same instant.
    let other = app(builder().dpop_nonce(DpopNonce::random()).clock(&clock).build().unwrap());
    let foreign = send(&other, "GET", "/me", None, &[]).await.nonce.unwrap();
    for wrong in [foreign.as_str(), "", "AAAAAAAAAAAAAAAAAAAAAA"] {
        let reply = get_me(&router, &token, &proof_at(&key, &token, &clock, Some(wrong))).await;
        assert_use_nonce(&reply, DpopError::InvalidNonce);
    }
    let proof = key.proof("GET", ME).access_token(&token).claim("nonce", 7);
    #[allow(clippy::cast_possible_truncation)]
    let proof = proof.claim("iat", clock.now() as i64).sign();
    assert_refused(&router, &token, &proof, DpopError::MalformedProof).await;
}

#[tokio::test]
async fn nonces_rotate_and_one_lasts_into_the_next_period_but_not_further() {
    let clock = minute_clock();
    let router = app(nonce_builder(&clock).build().unwrap());
    let (key, token) = bound_token_at(&clock);
    let first = send(&router, "GET", "/me", None, &[]).await.nonce.unwrap();
    // 59 s on: the same period, the same nonce.
    clock.advance(Duration::from_secs(59));
    assert_eq!(send(&router, "GET", "/me", None, &[]).await.nonce.as_deref(), Some(first.as_str()));
    // The next period: a new nonce is handed out, and the first is still accepted.
    clock.advance(Duration::from_secs(1));
    let second = send(&router, "GET", "/me", None, &[]).await.nonce.unwrap();
    assert_ne!(second, first);
    let reply = get_me(&router, &token, &proof_at(&key, &token, &clock, Some(&first))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Two periods on: the first is stale; the refusal hands out the current one, which works.
    clock.advance(Duration::from_secs(60));
    let reply = get_me(&router, &token, &proof_at(&key, &token, &clock, Some(&first))).await;
    let third = assert_use_nonce(&reply, DpopError::InvalidNonce);
    assert!(third != first && third != second, "{first} {second} {third}");
    let reply = get_me(&router, &token, &proof_at(&key, &token, &clock, Some(&third))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // A nonce of a period still to come is not accepted either.
    let future = {
        let later = TestClock::at(clock.now() + 60.0);
        let ahead = app(nonce_builder(&later).build().unwrap());
        send(&ahead, "GET", "/me", None, &[]).await.nonce.unwrap()
    };
    let reply = get_me(&router, &token, &proof_at(&key, &token, &clock, Some(&future))).await;
    assert_use_nonce(&reply, DpopError::InvalidNonce);
}

#[tokio::test]
async fn replicas_with_one_nonce_secret_accept_each_others_nonces() {
    let clock = minute_clock();
    let store: Arc<dyn ReplayStore> = Arc::new(MemoryReplayStore::default());
    let first = app(nonce_builder(&clock).dpop_replay_store(Arc::clone(&store)).build().unwrap());
    let second = app(nonce_builder(&clock).dpop_replay_store(store).build().unwrap());
    let (key, token) = bound_token_at(&clock);
    let nonce = send(&first, "GET", "/me", None, &[]).await.nonce.unwrap();
    let reply = get_me(&second, &token, &proof_at(&key, &token, &clock, Some(&nonce))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Random secrets: each replica its own nonces.
    let random = |clock: &TestClock| app(builder().dpop_nonce(DpopNonce::random()).clock(clock).build().unwrap());
    let (one, two) = (random(&clock), random(&clock));
    let nonce = send(&one, "GET", "/me", None, &[]).await.nonce.unwrap();
    let reply = get_me(&two, &token, &proof_at(&key, &token, &clock, Some(&nonce))).await;
    assert_use_nonce(&reply, DpopError::InvalidNonce);
}

#[tokio::test]
async fn without_nonces_no_dpop_nonce_header_is_sent() {
    let router = app(authority());
    let (key, token) = bound_token();
    let reply = send(&router, "GET", "/me", None, &[]).await;
    assert_eq!((reply.status, reply.nonce), (StatusCode::UNAUTHORIZED, None));
    // A proof with a nonce nobody asked for is accepted as it is.
    let reply = get_me(&router, &token, &key.proof("GET", ME).access_token(&token).nonce("anything").sign()).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[test]
fn nonce_settings_are_checked_at_build_time() {
    let error = builder().dpop_nonce(DpopNonce::shared_secret(*b"too short")).build().unwrap_err();
    assert_eq!(error.setting(), "dpop_nonce", "{error}");
    assert!(error.to_string().contains("has 9 bytes; give at least 32"), "{error}");
    let error = builder().dpop_nonce(DpopNonce::random().rotation(Duration::ZERO)).build().unwrap_err();
    assert_eq!(error.setting(), "dpop_nonce", "{error}");
    let error = TestIssuer::new().authority_builder(AUD).dpop_nonce(DpopNonce::random()).build().unwrap_err();
    assert_eq!(error.setting(), "dpop", "{error}");
    // The secret is never printed.
    assert_eq!(
        format!("{:?}", DpopNonce::shared_secret(NONCE_SECRET)),
        "DpopNonce { shared_secret: true, rotation: 300s }"
    );
}

// ---------------------------------------------------------------------------------------
// `Ed25519` (RFC 9864)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_ed25519_proof_is_accepted_under_either_name() {
    let router = app(authority());
    let key = DpopKey::ed25519();
    let token = TestIssuer::new().access_token().dpop_bound(&key).sign();
    for alg in ["EdDSA", "Ed25519"] {
        let proof = key.proof("GET", ME).access_token(&token).header("alg", alg).sign();
        let reply = get_me(&router, &token, &proof).await;
        assert_eq!(reply.status, StatusCode::OK, "{alg}: {reply:?}");
    }
    // An allowlist without the new name refuses it, and says which it takes.
    let router = app(builder().dpop_algorithms([Algorithm::EdDSA]).build().unwrap());
    let proof = key.proof("GET", ME).access_token(&token).header("alg", "Ed25519").sign();
    let reply = get_me(&router, &token, &proof).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let description = DpopError::AlgorithmNotAllowed.description();
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            format!(
                "Bearer realm=\"{REALM}\", DPoP realm=\"{REALM}\", error=\"invalid_dpop_proof\", error_description=\"{description}\", algs=\"EdDSA\""
            )
            .as_str()
        )
    );
    // An Ed25519 key does not verify an ES256-named proof.
    let proof = key.proof("GET", ME).access_token(&token).header("alg", "ES256").sign();
    assert_refused(&app(authority()), &token, &proof, DpopError::InvalidKey).await;
}

#[tokio::test]
async fn a_redis_store_shows_only_its_prefix_and_keeps_its_keys_apart_from_another_prefix() {
    let Some(redis) =
        RedisServer::start("a_redis_store_shows_only_its_prefix_and_keeps_its_keys_apart_from_another_prefix")
    else {
        return;
    };
    use scopegate::dpop::Freshness;
    let store = RedisReplayStore::connect(&redis.url()).await.unwrap();
    // The Debug form names the prefix and never the URL (which may carry a password).
    assert_eq!(format!("{store:?}"), r#"RedisReplayStore { prefix: "scopegate:dpop:", .. }"#);
    let other = store.clone().with_prefix("orders:");
    assert_eq!(format!("{other:?}"), r#"RedisReplayStore { prefix: "orders:", .. }"#);
    let ttl = Duration::from_secs(60);
    assert_eq!(store.check_and_insert("k", ttl).await.unwrap(), Freshness::Fresh);
    assert_eq!(other.check_and_insert("k", ttl).await.unwrap(), Freshness::Fresh, "another prefix, another key");
    assert_eq!(other.check_and_insert("k", ttl).await.unwrap(), Freshness::Replayed);
    assert_eq!(store.check_and_insert("k", ttl).await.unwrap(), Freshness::Replayed);
}

// ---------------------------------------------------------------------------------------
// Every proof algorithm: RSA (RS*, PS*), P-256, P-384, Ed25519
// ---------------------------------------------------------------------------------------

/// A new key of the type that signs `alg`, or `rsa` for RS* and PS* (one RSA key, as
/// generating one is slow).
fn key_for(alg: Algorithm, rsa: &DpopKey) -> DpopKey {
    match alg {
        Algorithm::ES256 => DpopKey::generate(),
        Algorithm::ES384 => DpopKey::p384(),
        Algorithm::EdDSA | Algorithm::Ed25519 => DpopKey::ed25519(),
        _ => rsa.clone(),
    }
}

#[tokio::test]
async fn a_bound_token_with_a_proof_of_each_default_dpop_algorithm_opens_the_route() {
    let authority = authority();
    let defaults: Vec<&str> = authority.dpop_algorithms().iter().map(|alg| alg.as_str()).collect();
    assert_eq!(defaults.join(" "), ALGS, "the default allowlist, as advertised");
    let router = app(authority.clone());
    let rsa = DpopKey::rsa();
    for &alg in authority.dpop_algorithms() {
        let key = key_for(alg, &rsa);
        let token = TestIssuer::new().access_token().dpop_bound(&key).sign();
        let proof = key.proof("GET", ME).access_token(&token).algorithm(alg).sign();
        let reply = get_me(&router, &token, &proof).await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, testing::DEFAULT_SUBJECT), "{alg}: {reply:?}");
    }
    assert_eq!(authority.stats().accepted, 10, "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519");
}

#[tokio::test]
async fn a_proof_whose_alg_is_outside_a_narrowed_dpop_algorithms_list_is_refused_naming_the_list() {
    let router = app(builder().dpop_algorithms([Algorithm::PS256, Algorithm::ES384]).build().unwrap());
    let description = DpopError::AlgorithmNotAllowed.description();
    let challenge = format!(
        "Bearer realm=\"{REALM}\", DPoP realm=\"{REALM}\", error=\"invalid_dpop_proof\", error_description=\"{description}\", algs=\"PS256 ES384\""
    );
    let rsa = DpopKey::rsa();
    // Validly signed proofs all: only the algorithm decides. One RSA key signs PS256
    // (allowed) and RS256 (not).
    for (alg, allowed) in [
        (Algorithm::PS256, true),
        (Algorithm::ES384, true),
        (Algorithm::RS256, false),
        (Algorithm::PS384, false),
        (Algorithm::ES256, false),
        (Algorithm::EdDSA, false),
    ] {
        let key = key_for(alg, &rsa);
        let token = TestIssuer::new().access_token().dpop_bound(&key).sign();
        let reply = get_me(&router, &token, &key.proof("GET", ME).access_token(&token).algorithm(alg).sign()).await;
        if allowed {
            assert_eq!(reply.status, StatusCode::OK, "{alg}: {reply:?}");
        } else {
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{alg}: {reply:?}");
            assert_eq!(reply.challenge.as_deref(), Some(challenge.as_str()), "{alg}");
            assert_eq!(reply.reason().as_deref(), Some("dpop_algorithm_not_allowed"), "{alg}");
        }
    }
}

#[tokio::test]
async fn an_rsa_or_p384_proof_with_its_private_key_inside_is_refused() {
    let router = app(authority());
    for key in [DpopKey::rsa(), DpopKey::p384()] {
        let token = TestIssuer::new().access_token().dpop_bound(&key).sign();
        let private = key.private_jwk();
        let proof = key.proof("GET", ME).access_token(&token).header("jwk", private.clone()).sign();
        assert_refused(&router, &token, &proof, DpopError::PrivateKey).await;
        // The private members are the key's own: with them the public JWK is the same.
        let mut public = private;
        for member in ["d", "p", "q", "dp", "dq", "qi"] {
            public.as_object_mut().unwrap().remove(member);
        }
        assert_eq!(public, key.public_jwk());
    }
}
