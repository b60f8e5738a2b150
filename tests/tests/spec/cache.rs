//! The cases of sections 6 and 8 that a verified-token cache could get wrong, sent again
//! to an authority that has already accepted the token: the audience a handler names
//! with `aud = …`, expiry, `max_token_age` and scopes. A cache hit skips the signature
//! and the claim parse, never these checks.
//!
//! Each test warms the cache through `/me` (see [`warm_cache`]), then asserts the exact
//! outcome of the request under test and, from the authority's counters, whether it was
//! decided by a cache hit or by the full path.

use std::time::Duration;

use scopegate::{Authority, TokenError, testing::TestClock};
use serde_json::json;

use crate::harness::*;

/// (signatures checked, cache hits) so far.
fn counts(authority: &Authority) -> (u64, u64) {
    let stats = authority.stats();
    (stats.signatures_checked, stats.token_cache_hits)
}

#[tokio::test]
async fn case_094_a_cached_token_is_refused_by_a_handler_naming_another_audience() {
    let authority = authority();
    let app = app_for(authority.clone());
    let token = issuer().access_token().scope(READ).sign();
    warm_cache(&app, &token).await;
    with_token(&app, "/reports", &token).await.badtok(TokenError::InvalidAudience);
    assert_eq!(counts(&authority), (1, 0), "refused on the cache hit, with no second signature check");
    // The configured audience still gets it from the cache.
    with_token(&app, "/appointments", &token).await.accept();
    assert_eq!(counts(&authority), (1, 1));
}

#[tokio::test]
async fn case_087_a_cached_token_for_both_audiences_is_accepted_by_each_handler() {
    let authority = authority();
    let app = app_for(authority.clone());
    let token = issuer().access_token().audience(json!([AUD, REPORTS_AUD])).scope(READ).sign();
    warm_cache(&app, &token).await;
    let body = with_token(&app, "/reports", &token).await.accept();
    assert_eq!(body["handler"], "reports");
    assert_eq!(counts(&authority), (1, 1));
}

#[tokio::test]
async fn case_098_a_cached_token_is_expired_when_now_reaches_exp() {
    let at = now() as f64;
    let clock = TestClock::at(at);
    let authority = issuer().authority_builder(AUD).leeway(Duration::ZERO).clock(&clock).build().expect("builds");
    let app = app_for(authority.clone());
    let token = issuer().access_token().claim("iat", at - 10.0).claim("exp", at + 1.0).sign();
    warm_cache(&app, &token).await;
    clock.set(at + 0.5);
    call(&app, &token).await.accept();
    assert_eq!(counts(&authority), (1, 1), "served from the cache before exp");
    clock.set(at + 1.0);
    expect_badtok(&app, &token, TokenError::Expired).await;
    assert_eq!(counts(&authority), (2, 1), "at exp the cache does not serve it; the full check refuses it");
}

#[tokio::test]
async fn case_097_a_cached_token_is_expired_beyond_the_leeway() {
    let at = now() as f64;
    let clock = TestClock::at(at);
    let authority = issuer().authority_builder(AUD).clock(&clock).build().expect("builds");
    let app = app_for(authority.clone());
    let token = issuer().access_token().claim("iat", at - 10.0).claim("exp", at + 10.0).sign();
    warm_cache(&app, &token).await;
    // Past `exp` but inside the 60 s leeway: verified again (a hit needs now < exp) and accepted.
    clock.set(at + 30.0);
    call(&app, &token).await.accept();
    assert_eq!(counts(&authority), (2, 0));
    clock.set(at + 71.0);
    expect_badtok(&app, &token, TokenError::Expired).await;
    assert_eq!(counts(&authority), (3, 0));
}

#[tokio::test]
async fn case_110_a_cached_token_older_than_max_token_age_is_refused() {
    let at = now() as f64;
    let clock = TestClock::at(at);
    let authority =
        issuer().authority_builder(AUD).max_token_age(Duration::from_secs(600)).clock(&clock).build().expect("builds");
    let app = app_for(authority.clone());
    let token = issuer().access_token().claim("iat", at - 590.0).claim("exp", at + 300.0).sign();
    warm_cache(&app, &token).await;
    clock.set(at + 5.0);
    call(&app, &token).await.accept();
    assert_eq!(counts(&authority), (1, 1));
    clock.set(at + 11.0);
    expect_badtok(&app, &token, TokenError::LifetimeExceeded).await;
    assert_eq!(counts(&authority), (2, 1));
}

#[tokio::test]
async fn case_135_a_cached_token_without_the_scope_is_noscope() {
    let authority = authority();
    let app = app_for(authority.clone());
    let token = issuer().access_token().scope("other").sign();
    warm_cache(&app, &token).await;
    expect_noscope(&app, &token).await;
    with_token(&app, "/ab", &token).await.noscope("a b");
    assert_eq!(counts(&authority), (1, 2), "both decided on cache hits");
}
