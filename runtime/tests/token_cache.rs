//! The verified-token cache, seen through a real axum `Router`: hits skip the signature
//! check, it can be turned off, and a hit never outlives `exp` or skips the audience check.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use axum::{Router, routing::get};
use scopegate::testing::{TestClock, TestIssuer};
use support::{call, me};

#[tokio::test]
async fn a_token_seen_before_is_accepted_from_the_cache_without_a_signature_check() {
    let issuer = TestIssuer::new();
    let authority = issuer.authority("https://api.example.test");
    let app = Router::new().route("/me", get(me)).with_state(authority.clone());
    let token = format!("Bearer {}", issuer.access_token().scope("a").sign());
    for _ in 0..3 {
        assert_eq!(call(&app, Some(&token), "/me").await.0, 200);
    }
    let stats = authority.stats();
    assert_eq!((stats.signatures_checked, stats.token_cache_hits, stats.accepted), (1, 2, 3));
    // A different token (one more claim) is verified in full.
    let other = format!("Bearer {}", issuer.access_token().scope("a").claim("x", 1).sign());
    assert_eq!(call(&app, Some(&other), "/me").await.0, 200);
    assert_eq!(authority.stats().signatures_checked, 2);
}

#[tokio::test]
async fn the_cache_can_be_turned_off() {
    let issuer = TestIssuer::new();
    let authority = issuer.authority_builder("https://api.example.test").token_cache_capacity(0).build().unwrap();
    let app = Router::new().route("/me", get(me)).with_state(authority.clone());
    let token = format!("Bearer {}", issuer.access_token().sign());
    for _ in 0..3 {
        assert_eq!(call(&app, Some(&token), "/me").await.0, 200);
    }
    assert_eq!((authority.stats().signatures_checked, authority.stats().token_cache_hits), (3, 0));
}

#[tokio::test]
async fn a_cached_token_is_never_accepted_past_its_exp() {
    let issuer = TestIssuer::new();
    let authority =
        issuer.authority_builder("https://api.example.test").leeway(std::time::Duration::ZERO).build().unwrap();
    let app = Router::new().route("/me", get(me)).with_state(authority.clone());
    let token = format!("Bearer {}", issuer.access_token().expires_in(2).sign());
    assert_eq!(call(&app, Some(&token), "/me").await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _, body) = call(&app, Some(&token), "/me").await;
    assert_eq!(status, 401);
    assert!(body.contains("\"reason\":\"token_expired\""), "{body}");
    assert_eq!(authority.stats().token_cache_hits, 0);
}

#[tokio::test]
async fn a_cached_token_past_max_token_age_is_not_served_from_the_cache() {
    let issuer = TestIssuer::new();
    let start = 1_800_000_000.0;
    let clock = TestClock::at(start);
    let authority = issuer
        .authority_builder("https://api.example.test")
        .max_token_age(Duration::from_secs(600))
        .clock(&clock)
        .build()
        .unwrap();
    let app = Router::new().route("/me", get(me)).with_state(authority.clone());
    let token = issuer.access_token().claim("iat", start - 500.0).claim("exp", start + 3600.0).sign();
    let token = format!("Bearer {token}");
    assert_eq!(call(&app, Some(&token), "/me").await.0, 200);
    // 550 s old: still young enough, served from the cache.
    clock.advance(Duration::from_secs(50));
    assert_eq!(call(&app, Some(&token), "/me").await.0, 200);
    assert_eq!((authority.stats().signatures_checked, authority.stats().token_cache_hits), (1, 1));
    // 700 s old: the cache entry (verified 200 s ago, well inside the cache's own 5 min)
    // must not serve it; the full check refuses it.
    clock.advance(Duration::from_secs(150));
    let (status, _, body) = call(&app, Some(&token), "/me").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"reason\":\"lifetime_exceeded\""), "{body}");
    assert_eq!((authority.stats().signatures_checked, authority.stats().token_cache_hits), (2, 1));
}

#[tokio::test]
async fn the_cache_rechecks_the_audience_on_every_hit() {
    use scopegate::requires_scope;

    #[requires_scope("a", aud = "https://other.example.test")]
    async fn other_api() -> &'static str {
        "other"
    }

    let issuer = TestIssuer::new();
    let authority = issuer.authority("https://api.example.test");
    let app = Router::new().route("/me", get(me)).route("/other", get(other_api)).with_state(authority.clone());
    let token = format!("Bearer {}", issuer.access_token().scope("a").sign());
    assert_eq!(call(&app, Some(&token), "/me").await.0, 200);
    let (status, _, body) = call(&app, Some(&token), "/other").await;
    assert_eq!(status, 401);
    assert!(body.contains("\"reason\":\"invalid_audience\""), "{body}");
}

/// Sends one GET with these `Authorization` values: (status, challenge, body).
async fn send(app: &Router, authorizations: &[&str], path: &str) -> (u16, String, String) {
    use axum::{body::Body, http::Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut request = Request::get(path);
    for value in authorizations {
        request = request.header("authorization", *value);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, challenge.unwrap_or_default(), String::from_utf8(body.to_vec()).unwrap())
}

/// A request whose token the cache holds skips the header's syntax checks (they were the
/// largest cost of such a request); every header form those checks refuse must still be
/// refused exactly as by an authority that never saw the token.
#[tokio::test]
async fn a_cached_token_in_a_header_the_syntax_checks_refuse_is_refused_as_if_never_seen() {
    let issuer = TestIssuer::new();
    let warm = issuer.authority("https://api.example.test");
    let cold = issuer.authority("https://api.example.test");
    let warm_app = Router::new().route("/me", get(me)).with_state(warm.clone());
    let cold_app = Router::new().route("/me", get(me)).with_state(cold.clone());
    let token = issuer.access_token().scope("a").sign();
    let bearer = format!("Bearer {token}");
    assert_eq!(send(&warm_app, &[&bearer], "/me").await.0, 200);

    let tab = format!("Bearer\t{token}");
    let trailing = format!("Bearer {token} ");
    let comma = format!("Bearer {token},");
    let refused: [(&[&str], &str, u16, &str); 5] = [
        (&[&tab], "/me", 400, "malformed_credentials"),
        (&[&bearer], "/me?access_token=x", 400, "multiple_methods"),
        (&[&bearer], "/me?a=1&access%5Ftoken=x", 400, "multiple_methods"),
        (&[&bearer, &bearer], "/me", 400, "multiple_authorization_headers"),
        (&[&trailing], "/me", 400, "malformed_credentials"),
    ];
    for (headers, path, status, reason) in
        refused.iter().copied().chain([(&[comma.as_str()][..], "/me", 400, "malformed_credentials")])
    {
        let answer = send(&warm_app, headers, path).await;
        assert_eq!(answer, send(&cold_app, headers, path).await, "{headers:?} {path}");
        assert_eq!(answer.0, status, "{headers:?} {path}");
        assert!(answer.2.contains(&format!("\"reason\":\"{reason}\"")), "{headers:?} {path}: {}", answer.2);
    }
    assert_eq!(warm.stats().token_cache_hits, 0);

    // The forms the checks accept are served from the cache.
    for value in [format!("bearer {token}"), format!("BEARER   {token}")] {
        assert_eq!(send(&warm_app, &[&value], "/me?q=1").await.0, 200, "{value}");
    }
    assert_eq!((warm.stats().token_cache_hits, warm.stats().signatures_checked), (2, 1));
}

/// The cache-first path must not let a bearer token past a DPoP policy: with DPoP
/// required, a token the cache holds is still "no credentials" when sent as `Bearer`, and a
/// DPoP-bound token in the cache is still `sender_constrained` without its proof.
#[tokio::test]
async fn a_cached_token_sent_as_bearer_still_meets_the_dpop_policy() {
    use scopegate::{Algorithm, dpop::DpopPolicy, testing::DpopKey};
    let issuer = TestIssuer::new();
    let required = issuer
        .authority_builder("https://api.example.test")
        .dpop(DpopPolicy::Required)
        .dpop_algorithms([Algorithm::ES256])
        .build()
        .unwrap();
    let token = issuer.access_token().sign();
    required.verify(&token).await.unwrap(); // now in the cache
    let app = Router::new().route("/me", get(me)).with_state(required.clone());
    let (status, challenge, body) = send(&app, &[&format!("Bearer {token}")], "/me").await;
    assert_eq!((status, challenge.as_str()), (401, "DPoP realm=\"https://api.example.test\", algs=\"ES256\""));
    assert!(body.contains("\"reason\":\"missing_credentials\""), "{body}");

    let allowed = issuer.authority_builder("https://api.example.test").dpop(DpopPolicy::Allowed).build().unwrap();
    let app = Router::new().route("/me", get(me)).with_state(allowed.clone());
    let key = DpopKey::generate();
    let bound = issuer.access_token().dpop_bound(&key).sign();
    let proof = key.proof("GET", "https://api.example.test/me").access_token(&bound).sign();
    let request = axum::http::Request::get("/me")
        .header("authorization", format!("DPoP {bound}"))
        .header("dpop", proof)
        .body(axum::body::Body::empty())
        .unwrap();
    use tower::ServiceExt;
    assert_eq!(app.clone().oneshot(request).await.unwrap().status(), 200);
    let (status, _, body) = send(&app, &[&format!("Bearer {bound}")], "/me").await;
    assert_eq!(status, 401);
    assert!(body.contains("\"reason\":\"sender_constrained\""), "{body}");
    assert_eq!(allowed.stats().token_cache_hits, 1);
}

/// `max_token_size` is the longest token accepted: a token of exactly that many bytes is
/// verified and then served from the cache like any other, and one byte over the cap is
/// refused `token_too_large` before any signature check, even once the token is cached.
#[tokio::test]
async fn a_token_of_exactly_the_size_cap_is_accepted_and_served_from_the_cache() {
    let issuer = TestIssuer::new();
    let token = issuer.access_token().scope("a").sign();
    let exact = issuer.authority_builder("https://api.example.test").max_token_size(token.len()).build().unwrap();
    let app = Router::new().route("/me", get(me)).with_state(exact.clone());
    let bearer = format!("Bearer {token}");
    for _ in 0..2 {
        assert_eq!(call(&app, Some(&bearer), "/me").await, (200, String::new(), "user-123 a".to_owned()));
    }
    assert_eq!((exact.stats().signatures_checked, exact.stats().token_cache_hits), (1, 1));
    assert_eq!(exact.verify(&token).await.unwrap().subject(), "user-123");
    assert_eq!((exact.stats().signatures_checked, exact.stats().token_cache_hits), (1, 2));

    let smaller = issuer.authority_builder("https://api.example.test").max_token_size(token.len() - 1).build().unwrap();
    let app = Router::new().route("/me", get(me)).with_state(smaller.clone());
    for _ in 0..2 {
        let (status, _, body) = call(&app, Some(&bearer), "/me").await;
        assert_eq!(status, 401);
        assert!(body.contains("\"reason\":\"token_too_large\""), "{body}");
        assert_eq!(smaller.verify(&token).await.unwrap_err().reason(), "token_too_large");
    }
    let stats = smaller.stats();
    assert_eq!((stats.signatures_checked, stats.token_cache_hits, stats.rejected), (0, 0, 4));
}
