//! The `metrics` feature: every counter reaches a real recorder (metrics-util's
//! `DebuggingRecorder`) under its stable name and labels, with exactly the values of the
//! events a test drives: requests through an axum router, JWKS, introspection and
//! userinfo over HTTP against a server on 127.0.0.1.
//!
//! Each test installs its recorder for its own thread only (`with_local_recorder`) and
//! runs a current-thread runtime inside it, so every task it spawns records there too
//! and tests running in parallel do not add to each other's counts.
#![allow(clippy::expect_used)]

use std::net::SocketAddr;

use axum::{
    Json, Router,
    body::Body,
    http::{Request, StatusCode, header},
    routing::{get, post},
};
use metrics_util::{
    MetricKind,
    debugging::{DebugValue, DebuggingRecorder},
};
use scopegate::{
    AccessToken, Authority, Stats, metrics as names, requires_scope,
    testing::{DEFAULT_AUDIENCE as AUD, DEFAULT_ISSUER as ISS, DEFAULT_SUBJECT, TestIssuer},
};
use serde_json::json;
use tower::ServiceExt as _;

#[requires_scope("admin")]
async fn admin() -> &'static str {
    "admin"
}

async fn me(token: AccessToken) -> String {
    token.subject().to_owned()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The issuer's endpoints: keys, a broken key URL, introspection and userinfo.
async fn issuer_server() -> SocketAddr {
    let jwks = TestIssuer::new().jwks();
    let introspection = json!({
        "active": true, "iss": ISS, "sub": "user-7", "client_id": "web-app", "aud": AUD,
        "scope": "read", "exp": now() + 300, "iat": now(), "token_type": "Bearer"
    });
    let app = Router::new()
        .route("/jwks", get(move || async move { Json(jwks) }))
        .route("/broken", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/introspect", post(move || async move { Json(introspection) }))
        .route("/userinfo", get(|| async { Json(json!({"sub": DEFAULT_SUBJECT, "name": "Jo"})) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

async fn status(app: &Router, uri: &str, token: Option<&str>) -> StatusCode {
    let mut request = Request::builder().uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    app.clone().oneshot(request.body(Body::empty()).expect("a request")).await.expect("infallible").status()
}

/// Every counter of the snapshot: `(name, labels, value)`, sorted.
fn counters(recorder: &DebuggingRecorder) -> Vec<(String, Vec<String>, u64)> {
    let mut out: Vec<_> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            assert_eq!(key.kind(), MetricKind::Counter, "scopegate exports counters only");
            let DebugValue::Counter(n) = value else { unreachable!("a counter") };
            let labels = key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            (key.key().name().to_owned(), labels, n)
        })
        .collect();
    out.sort();
    out
}

fn counter(name: &str, labels: &[&str], value: u64) -> (String, Vec<String>, u64) {
    (name.to_owned(), labels.iter().map(|l| (*l).to_owned()).collect(), value)
}

fn run<T>(recorder: &DebuggingRecorder, test: impl Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    metrics::with_local_recorder(recorder, || runtime.block_on(test))
}

#[test]
fn every_counter_is_exported_under_its_stable_name_with_exact_values() {
    let recorder = DebuggingRecorder::new();
    let stats = run(&recorder, async {
        let address = issuer_server().await;
        let issuer = TestIssuer::new();
        let authority = Authority::builder()
            .issuer(ISS)
            .audience(AUD)
            .jwks_uri(format!("http://{address}/jwks"))
            .introspection("api", "secret")
            .introspection_endpoint(format!("http://{address}/introspect"))
            .userinfo_endpoint(format!("http://{address}/userinfo"))
            .connect()
            .await
            .expect("connects");
        let broken = Authority::builder().issuer(ISS).audience(AUD).jwks_uri(format!("http://{address}/broken"));
        assert!(broken.connect().await.is_err(), "the broken key URL fails");

        let app = Router::new().route("/me", get(me)).route("/admin", get(admin)).with_state(authority.clone());
        let admin_token = issuer.access_token().scope("admin").sign();
        let read_token = issuer.access_token().scope("read").sign();
        let expired = issuer.access_token().expires_in(-3600).sign();
        assert_eq!(status(&app, "/me", Some(&admin_token)).await, StatusCode::OK); // a signature
        assert_eq!(status(&app, "/me", Some(&admin_token)).await, StatusCode::OK); // a cache hit
        assert_eq!(status(&app, "/admin", Some(&admin_token)).await, StatusCode::OK); // a cache hit
        assert_eq!(status(&app, "/me", None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(&app, "/admin", Some(&read_token)).await, StatusCode::FORBIDDEN); // a signature
        assert_eq!(status(&app, "/me", Some(&expired)).await, StatusCode::UNAUTHORIZED); // a signature
        assert_eq!(status(&app, "/me", Some("opaque-token-1")).await, StatusCode::OK); // introspected
        let profile = authority.userinfo(&admin_token).await.expect("the profile"); // a cache hit
        assert_eq!(profile.name(), Some("Jo"));
        // The endpoint answers for another `sub`: a signature, an acceptance, a refusal.
        let stranger = issuer.access_token().subject("someone-else").sign();
        let refused = authority.userinfo(&stranger).await.expect_err("another subject's profile");
        assert_eq!(refused.reason(), "userinfo_subject_mismatch");
        authority.stats()
    });

    assert_eq!(
        counters(&recorder),
        [
            counter(names::INTROSPECTION_REQUESTS, &[], 1),
            counter(names::JWKS_FETCHES, &["outcome=failure"], 1),
            counter(names::JWKS_FETCHES, &["outcome=success"], 1),
            counter(names::KEY_SET_CHANGES, &[], 1),
            counter(names::SIGNATURES_CHECKED, &[ISSUER_LABEL], 4),
            counter(names::TOKEN_CACHE_HITS, &[ISSUER_LABEL], 3),
            counter(names::TOKENS_ACCEPTED, &[ISSUER_LABEL], 7),
            counter(names::TOKENS_REJECTED, &["reason=insufficient_scope", ISSUER_LABEL], 1),
            counter(names::TOKENS_REJECTED, &["reason=missing_credentials"], 1),
            counter(names::TOKENS_REJECTED, &["reason=token_expired", ISSUER_LABEL], 1),
            counter(names::TOKENS_REJECTED, &["reason=userinfo_subject_mismatch", ISSUER_LABEL], 1),
            counter(names::USERINFO_REQUESTS, &[], 2),
        ]
    );
    // The same events as the working authority's own stats (the broken one failed alone).
    let mut expected = Stats::default();
    (expected.accepted, expected.rejected, expected.signatures_checked, expected.token_cache_hits) = (7, 4, 4, 3);
    (expected.jwks_fetches, expected.key_set_changes, expected.introspections) = (1, 1, 1);
    assert_eq!(stats, expected);
}

/// The `issuer` label of the tokens of [`ISS`].
const ISSUER_LABEL: &str = "issuer=https://issuer.scopegate.test/";

#[test]
fn the_issuer_label_names_the_trusted_issuer_whose_checks_the_token_went_through() {
    const OTHER: &str = "https://workforce.example.test/";
    let recorder = DebuggingRecorder::new();
    run(&recorder, async {
        let a = TestIssuer::new();
        let b = a.with_issuer(OTHER);
        let authority = a.authority_builder(AUD).also_trust(b.authority_builder(AUD)).build().expect("builds");
        let app = Router::new().route("/me", get(me)).route("/admin", get(admin)).with_state(authority);
        let from_b = b.access_token().scope("read").sign();
        assert_eq!(status(&app, "/me", Some(&a.access_token().sign())).await, StatusCode::OK); // a: a signature
        assert_eq!(status(&app, "/me", Some(&from_b)).await, StatusCode::OK); // b: a signature
        assert_eq!(status(&app, "/me", Some(&from_b)).await, StatusCode::OK); // b: a cache hit
        assert_eq!(status(&app, "/admin", Some(&from_b)).await, StatusCode::FORBIDDEN); // b: the guard refuses
        let expired = b.access_token().expires_in(-3600).sign();
        assert_eq!(status(&app, "/me", Some(&expired)).await, StatusCode::UNAUTHORIZED); // b: a signature
        let stranger = a.with_issuer("https://stranger.example.test/").access_token().sign();
        assert_eq!(status(&app, "/me", Some(&stranger)).await, StatusCode::UNAUTHORIZED); // routed nowhere
    });
    let b = "issuer=https://workforce.example.test/";
    assert_eq!(
        counters(&recorder),
        [
            counter(names::SIGNATURES_CHECKED, &[ISSUER_LABEL], 1),
            counter(names::SIGNATURES_CHECKED, &[b], 2),
            counter(names::TOKEN_CACHE_HITS, &[b], 2),
            counter(names::TOKENS_ACCEPTED, &[ISSUER_LABEL], 1),
            counter(names::TOKENS_ACCEPTED, &[b], 3),
            counter(names::TOKENS_REJECTED, &["reason=insufficient_scope", b], 1),
            counter(names::TOKENS_REJECTED, &["reason=invalid_issuer"], 1),
            counter(names::TOKENS_REJECTED, &["reason=token_expired", b], 1),
        ]
    );
}

#[test]
fn the_names_are_the_documented_ones() {
    assert_eq!(
        [
            names::TOKENS_ACCEPTED,
            names::TOKENS_REJECTED,
            names::SIGNATURES_CHECKED,
            names::TOKEN_CACHE_HITS,
            names::JWKS_FETCHES,
            names::KEY_SET_CHANGES,
            names::INTROSPECTION_REQUESTS,
            names::USERINFO_REQUESTS,
        ],
        [
            "scopegate_tokens_accepted_total",
            "scopegate_tokens_rejected_total",
            "scopegate_signatures_checked_total",
            "scopegate_token_cache_hits_total",
            "scopegate_jwks_fetches_total",
            "scopegate_key_set_changes_total",
            "scopegate_introspection_requests_total",
            "scopegate_userinfo_requests_total",
        ]
    );
}

#[test]
fn the_counters_carry_their_descriptions() {
    let recorder = DebuggingRecorder::new();
    run(&recorder, async {
        let issuer = TestIssuer::new();
        let authority = issuer.authority(AUD);
        authority.verify(&issuer.access_token().sign()).await.expect("a valid token");
    });
    let described: Vec<_> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, description, _)| (key.key().name().to_owned(), description.map(|d| d.to_string())))
        .collect();
    assert_eq!(
        described,
        [
            (names::SIGNATURES_CHECKED.to_owned(), Some("Token signature verifications performed".to_owned())),
            (names::TOKENS_ACCEPTED.to_owned(), Some("Access tokens that passed every check".to_owned())),
        ]
    );
}

#[requires_scope("admin", introspect)]
async fn introspected() -> &'static str {
    "introspected"
}

async fn profile(user: scopegate::UserInfo) -> String {
    user.subject().to_owned()
}

/// A misconfiguration is a refusal like any other: counted under its own reason, in the
/// metrics and in the authority's own counters (not as `other`).
#[test]
fn a_misconfigured_request_is_counted_under_its_reason() {
    let recorder = DebuggingRecorder::new();
    let authority = run(&recorder, async {
        let issuer = TestIssuer::new();
        // Static keys, no introspection, no userinfo endpoint: neither handler can be served.
        let authority = issuer.authority(AUD);
        let app = Router::new()
            .route("/introspected", get(introspected))
            .route("/profile", get(profile))
            .with_state(authority.clone());
        let token = issuer.access_token().scope("admin").sign();
        assert_eq!(status(&app, "/introspected", Some(&token)).await, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status(&app, "/profile", Some(&token)).await, StatusCode::INTERNAL_SERVER_ERROR);
        authority
    });
    assert_eq!(
        counters(&recorder),
        [
            counter(names::SIGNATURES_CHECKED, &[ISSUER_LABEL], 1),
            counter(names::TOKENS_ACCEPTED, &[ISSUER_LABEL], 1),
            counter(names::TOKENS_REJECTED, &["reason=misconfigured"], 1),
            counter(names::TOKENS_REJECTED, &["reason=misconfigured", ISSUER_LABEL], 1),
        ]
    );
    assert_eq!(authority.rejections_by_reason(), [("misconfigured", 2)]);
    assert_eq!((authority.stats().accepted, authority.stats().rejected), (1, 2));
}

/// A request with the `DPoP` scheme and its proof.
async fn dpop_status(app: &Router, path: &str, token: &str, proof: Option<&str>) -> StatusCode {
    let mut request = Request::builder().uri(path).header(header::AUTHORIZATION, format!("DPoP {token}"));
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    app.clone().oneshot(request.body(Body::empty()).expect("a request")).await.expect("infallible").status()
}

#[test]
fn a_refusal_on_the_dpop_path_names_the_issuer_that_verified_the_token() {
    use scopegate::{dpop::DpopPolicy, testing::DpopKey};
    const OTHER: &str = "https://workforce.example.test/";
    let recorder = DebuggingRecorder::new();
    run(&recorder, async {
        let a = TestIssuer::new();
        let b = a.with_issuer(OTHER);
        let authority = a
            .authority_builder(AUD)
            .dpop(DpopPolicy::Allowed)
            .also_trust(b.authority_builder(AUD))
            .build()
            .expect("builds");
        let app = Router::new().route("/me", get(me)).route("/profile", get(profile)).with_state(authority);
        let key = DpopKey::generate();
        let bound = b.access_token().dpop_bound(&key).sign();
        let proof = |method: &str, path: &str, token: &str| {
            key.proof(method, &format!("{AUD}{path}")).access_token(token).sign()
        };
        let once = proof("GET", "/me", &bound);
        assert_eq!(dpop_status(&app, "/me", &bound, Some(&once)).await, StatusCode::OK); // b: a signature
        assert_eq!(dpop_status(&app, "/me", &bound, Some(&once)).await, StatusCode::UNAUTHORIZED); // a hit, replayed
        let post = proof("POST", "/me", &bound);
        assert_eq!(dpop_status(&app, "/me", &bound, Some(&post)).await, StatusCode::UNAUTHORIZED); // a hit, htm
        // A signature each.
        let unbound = b.access_token().sign();
        let unbound_proof = proof("GET", "/me", &unbound);
        assert_eq!(dpop_status(&app, "/me", &unbound, Some(&unbound_proof)).await, StatusCode::UNAUTHORIZED);
        let expired = b.access_token().dpop_bound(&key).expires_in(-3600).sign();
        let expired_proof = proof("GET", "/me", &expired);
        assert_eq!(dpop_status(&app, "/me", &expired, Some(&expired_proof)).await, StatusCode::UNAUTHORIZED);
        // A hit; the token is accepted, then UserInfo refuses it.
        let for_profile = proof("GET", "/profile", &bound);
        assert_eq!(dpop_status(&app, "/profile", &bound, Some(&for_profile)).await, StatusCode::UNAUTHORIZED);
        // No proof: refused before the token reaches an issuer.
        assert_eq!(dpop_status(&app, "/me", &bound, None).await, StatusCode::UNAUTHORIZED);
    });
    let b = "issuer=https://workforce.example.test/";
    assert_eq!(
        counters(&recorder),
        [
            counter(names::SIGNATURES_CHECKED, &[b], 3),
            counter(names::TOKEN_CACHE_HITS, &[b], 3),
            counter(names::TOKENS_ACCEPTED, &[b], 2),
            counter(names::TOKENS_REJECTED, &["reason=dpop_htm_mismatch", b], 1),
            counter(names::TOKENS_REJECTED, &["reason=dpop_proof_missing"], 1),
            counter(names::TOKENS_REJECTED, &["reason=dpop_replayed", b], 1),
            counter(names::TOKENS_REJECTED, &["reason=not_dpop_bound", b], 1),
            counter(names::TOKENS_REJECTED, &["reason=token_expired", b], 1),
            counter(names::TOKENS_REJECTED, &["reason=userinfo_dpop_bound", b], 1),
        ]
    );
}

/// The size cap refuses a token before it reaches any issuer's checks: `token_too_large`
/// carries no `issuer` label, with one trusted issuer as with several, while a refusal
/// by an issuer's checks (here its signature check) carries that issuer.
#[test]
fn a_token_over_the_size_cap_is_counted_without_an_issuer_label() {
    const OTHER: &str = "https://workforce.example.test/";
    let recorder = DebuggingRecorder::new();
    run(&recorder, async {
        let a = TestIssuer::new();
        let one = a.authority_builder(AUD).max_token_size(2048).build().expect("builds");
        let two = a
            .authority_builder(AUD)
            .max_token_size(2048)
            .also_trust(a.with_issuer(OTHER).authority_builder(AUD))
            .build()
            .expect("builds");
        let over = a.access_token().claim("pad", "x".repeat(2048)).sign();
        let (input, _) = over.rsplit_once('.').expect("a compact JWS");
        let (signed, _) =
            a.access_token().sign().rsplit_once('.').map(|(i, s)| (i.to_owned(), s.to_owned())).expect("a JWS");
        let other = a.access_token().subject("someone-else").sign();
        let forged = format!("{signed}.{}", other.rsplit_once('.').expect("a compact JWS").1);
        for authority in [&one, &two] {
            assert_eq!(authority.verify(&over).await.expect_err("over the cap").reason(), "token_too_large");
            assert_eq!(authority.verify(input).await.expect_err("over the cap").reason(), "token_too_large");
            assert_eq!(authority.verify(&forged).await.expect_err("forged").reason(), "invalid_signature");
        }
    });
    assert_eq!(
        counters(&recorder),
        [
            counter(names::SIGNATURES_CHECKED, &[ISSUER_LABEL], 2),
            counter(names::TOKENS_REJECTED, &["reason=invalid_signature", ISSUER_LABEL], 2),
            counter(names::TOKENS_REJECTED, &["reason=token_too_large"], 4),
        ]
    );
}
