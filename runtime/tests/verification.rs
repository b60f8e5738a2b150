//! Verification through the extractors and a real axum `Router`: the accepted algorithms,
//! ID tokens refused, the optional extractor, audience checks and the counters by reason.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::{Router, routing::get};
use scopegate::{AccessToken, Algorithm, testing::TestIssuer};
use support::{call, me};

async fn maybe(token: Option<AccessToken>) -> String {
    token.map_or_else(|| "anonymous".to_owned(), |t| t.subject().to_owned())
}

fn app(issuer: &TestIssuer) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .with_state(issuer.authority("https://api.example.test"))
}

#[tokio::test]
async fn every_algorithm_of_the_test_issuer_is_accepted() {
    let issuer = TestIssuer::new();
    let app = app(&issuer);
    for alg in Algorithm::ASYMMETRIC {
        let token = issuer.access_token().algorithm(alg).scope("b a").sign();
        let (status, _, body) = call(&app, Some(&format!("Bearer {token}")), "/me").await;
        assert_eq!((status, body.as_str()), (200, "user-123 a,b"), "{alg}");
    }
}

#[tokio::test]
async fn id_token_is_refused_with_its_own_description() {
    let issuer = TestIssuer::new();
    let app = app(&issuer);
    let token = issuer.id_token("spa-client").sign();
    let (status, challenge, body) = call(&app, Some(&format!("Bearer {token}")), "/me").await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        "Bearer realm=\"https://api.example.test\", error=\"invalid_token\", error_description=\"An ID token was presented; this API accepts access tokens only\""
    );
    assert!(body.contains("\"reason\":\"id_token\""), "{body}");
}

#[tokio::test]
async fn optional_token() {
    let issuer = TestIssuer::new();
    let app = app(&issuer);
    assert_eq!(call(&app, None, "/maybe").await.2, "anonymous");
    let token = issuer.access_token().sign();
    assert_eq!(call(&app, Some(&format!("Bearer {token}")), "/maybe").await.2, "user-123");
    assert_eq!(call(&app, Some("Bearer x.y.z"), "/maybe").await.0, 401);
    let (status, challenge, _) = call(&app, None, "/me").await;
    assert_eq!((status, challenge.as_str()), (401, "Bearer realm=\"https://api.example.test\""));
}

#[tokio::test]
async fn rejections_are_counted_by_reason() {
    let issuer = TestIssuer::new();
    let authority = issuer.authority("https://api.example.test");
    let app = Router::new().route("/me", get(me)).with_state(authority.clone());
    let id_token = format!("Bearer {}", issuer.id_token("spa").sign());
    call(&app, Some(&id_token), "/me").await;
    call(&app, Some(&id_token), "/me").await;
    call(&app, None, "/me").await;
    call(&app, Some(&format!("Bearer {}", issuer.access_token().sign())), "/me").await;
    assert_eq!(authority.rejections_by_reason(), [("missing_credentials", 1), ("id_token", 2)]);
    let stats = authority.stats();
    assert_eq!((stats.accepted, stats.rejected, stats.signatures_checked), (1, 3, 3));
}

#[tokio::test]
async fn require_single_audience_refuses_tokens_for_several_apis() {
    let issuer = TestIssuer::new();
    let strict = issuer.authority_builder("https://api.example.test").require_single_audience(true).build().unwrap();
    let app = Router::new().route("/me", get(me)).with_state(strict);
    let several =
        issuer.access_token().audience(serde_json::json!(["https://api.example.test", "https://other"])).sign();
    let (status, _, body) = call(&app, Some(&format!("Bearer {several}")), "/me").await;
    assert_eq!(status, 401);
    assert!(body.contains("\"reason\":\"invalid_audience\""), "{body}");
    let single = issuer.access_token().audience(serde_json::json!(["https://api.example.test"])).sign();
    assert_eq!(call(&app, Some(&format!("Bearer {single}")), "/me").await.0, 200);
    // Off by default (security spec case 87): a token for this API among others is accepted.
    assert_eq!(call(&self::app(&issuer), Some(&format!("Bearer {several}")), "/me").await.0, 200);
}

/// With the verified-token cache off, every token is verified in full; the header of the
/// last verified token is recalled by its exact segment (`jws::HeaderMemo`), which must
/// change no answer: a forged signature under that same header, a header that differs in
/// one member, and a refused algorithm are each refused as a fresh authority refuses them.
#[tokio::test]
async fn a_recalled_header_changes_no_answer() {
    let issuer = TestIssuer::new();
    let authority = issuer.authority_builder("https://api.example.test").token_cache_capacity(0).build().unwrap();
    let fresh = || issuer.authority_builder("https://api.example.test").token_cache_capacity(0).build().unwrap();
    let token = issuer.access_token().scope("a").sign();
    assert_eq!(authority.verify(&token).await.unwrap().subject(), "user-123");

    let (input, _) = token.rsplit_once('.').unwrap();
    let other = issuer.access_token().subject("someone-else").scope("a").sign();
    let forged = format!("{input}.{}", other.rsplit_once('.').unwrap().1);
    let other_kid = issuer.access_token().kid("rsa-2").scope("a").sign();
    let refused_alg = issuer.access_token().header("alg", "HS256").scope("a").sign();
    for (token, reason) in
        [(&forged, "invalid_signature"), (&other_kid, "unknown_key"), (&refused_alg, "algorithm_not_allowed")]
    {
        assert_eq!(authority.verify(token).await.unwrap_err().reason(), reason, "{token}");
        assert_eq!(fresh().verify(token).await.unwrap_err().reason(), reason, "{token}");
    }
    // The remembered header still serves its own issuer's next token.
    let next = issuer.access_token().subject("user-456").scope("a").sign();
    assert_eq!(authority.verify(&next).await.unwrap().subject(), "user-456");
}
