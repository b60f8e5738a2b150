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
