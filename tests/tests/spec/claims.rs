//! Security spec section 6: claims (RFC 7519 §4.1; RFC 9068 §2.2, §4).

use std::{net::TcpListener, time::Duration};

use scopegate::{
    Authority, Profile, TokenError,
    testing::{TestClock, TestIssuer},
};
use serde_json::{Value, json};

use crate::harness::*;

/// Expects every token built by `variant(issuer().access_token())` for each value to fail
/// with `error` on the default app.
async fn refused_for_values(claim: &str, values: &[Value], error: TokenError) {
    let app = default_app();
    for value in values {
        let token = issuer().access_token().claim(claim, value.clone()).sign();
        call(&app, &token).await.labelled(format!("{claim}: {value}")).badtok(error);
    }
}

async fn refused_without(claim: &str, error: TokenError) {
    let token = issuer().access_token().without_claim(claim).sign();
    call(&default_app(), &token).await.labelled(format!("without {claim}")).badtok(error);
}

// --- 6a. iss -------------------------------------------------------------------------

#[tokio::test]
async fn case_079_exact_issuer_is_accepted() {
    let body = expect_accept(&default_app(), &issuer().access_token().claim("iss", ISS).sign()).await;
    assert_eq!(body["iss"], ISS);
}

#[tokio::test]
async fn case_080_missing_iss_is_refused() {
    refused_without("iss", TokenError::InvalidIssuer).await;
}

#[tokio::test]
async fn case_081_iss_that_is_not_a_string_is_refused() {
    refused_for_values(
        "iss",
        &[json!(7), json!({}), json!({"iss": ISS}), Value::Null, json!(true)],
        TokenError::InvalidIssuer,
    )
    .await;
}

#[tokio::test]
async fn case_082_iss_array_is_refused_even_with_the_right_member() {
    refused_for_values(
        "iss",
        &[json!(["https://evil.example/", ISS]), json!([ISS]), json!([ISS, ISS])],
        TokenError::InvalidIssuer,
    )
    .await;
}

#[tokio::test]
async fn case_083_iss_is_compared_byte_for_byte() {
    assert_eq!(ISS, "https://issuer.scopegate.test/");
    let variants = [
        "https://issuer.scopegate.test",
        "https://issuer.scopegate.test//",
        "HTTPS://ISSUER.SCOPEGATE.TEST/",
        "https://Issuer.scopegate.test/",
        "https://issuer.scopegate.test:443/",
        "https://issuer%2Escopegate.test/",
        "https://issuer.scopegate.test/%2F",
        "https://іssuer.scopegate.test/", // Cyrillic і
        " https://issuer.scopegate.test/",
        "https://issuer.scopegate.test/ ",
        "http://issuer.scopegate.test/",
        "",
    ];
    refused_for_values("iss", &variants.map(Value::from), TokenError::InvalidIssuer).await;
}

#[tokio::test]
async fn case_084_a_token_is_verified_only_with_its_own_issuers_keys() {
    // One `Authority` per issuer: each holds its own issuer's keys only, so issuer B (also
    // trusted, by another authority) cannot mint a token for A. Multi-issuer routing in one
    // authority does not exist yet; when it does, it must keep this property.
    let a = issuer().with_issuer("https://a.example/");
    let b = other_issuer().with_issuer("https://b.example/");
    let app_a = app_for(a.authority(AUD));
    let app_b = app_for(b.authority(AUD));
    call(&app_a, &a.access_token().sign()).await.accept();
    call(&app_b, &b.access_token().sign()).await.accept();
    // `iss = A`, signed with B's key (same kid): A's keys refuse the signature, and B's
    // authority refuses the issuer.
    let forged = b.access_token().claim("iss", a.issuer()).sign();
    call(&app_a, &forged).await.badtok(TokenError::InvalidSignature);
    call(&app_b, &forged).await.badtok(TokenError::InvalidIssuer);
}

#[tokio::test]
async fn case_085_unknown_iss_is_refused_without_network_io() {
    let trap = TcpListener::bind("127.0.0.1:0").expect("a loopback trap");
    trap.set_nonblocking(true).expect("non-blocking");
    let address = trap.local_addr().expect("an address");
    let app = default_app();
    for iss in [format!("http://{address}/"), format!("https://{address}/"), "https://evil.example/".to_owned()] {
        let token = issuer().access_token().claim("iss", iss.clone()).sign();
        call(&app, &token).await.labelled(iss).badtok(TokenError::InvalidIssuer);
    }
    match trap.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the verifier connected to the token's issuer: {other:?}"),
    }
}

// --- 6b. aud -------------------------------------------------------------------------

#[tokio::test]
async fn case_086_exact_audience_is_accepted() {
    let body = expect_accept(&default_app(), &issuer().access_token().audience(AUD).sign()).await;
    assert_eq!(body["aud"], json!([AUD]));
}

#[tokio::test]
async fn case_087_audience_array_with_a_matching_member_is_accepted() {
    let app = default_app();
    for aud in [json!(["other-api", AUD]), json!([AUD]), json!([AUD, "https://tenant.example/userinfo"])] {
        let body = call(&app, &issuer().access_token().audience(aud.clone()).sign()).await.accept();
        assert_eq!(body["aud"], aud);
    }
}

#[tokio::test]
async fn case_087_require_single_audience_refuses_a_token_for_several_apis() {
    // The optional hardening: a token for this API alone, as a string or a one-member
    // array, is still accepted.
    let strict = app_for(issuer().authority_builder(AUD).require_single_audience(true).build().expect("builds"));
    let several = issuer().access_token().audience(json!([AUD, "other-api"])).sign();
    expect_badtok(&strict, &several, TokenError::InvalidAudience).await;
    for aud in [json!(AUD), json!([AUD])] {
        call(&strict, &issuer().access_token().audience(aud.clone()).sign()).await.labelled(aud.to_string()).accept();
    }
}

#[tokio::test]
async fn case_088_audience_array_without_this_api_is_refused() {
    refused_for_values(
        "aud",
        &[json!(["other-api"]), json!(["other-api", "billing-api"])],
        TokenError::InvalidAudience,
    )
    .await;
}

#[tokio::test]
async fn case_089_missing_aud_is_refused() {
    refused_without("aud", TokenError::InvalidAudience).await;
}

#[tokio::test]
async fn case_090_empty_or_null_aud_is_refused() {
    refused_for_values(
        "aud",
        &[json!([]), json!(""), Value::Null, json!([""]), json!([AUD, ""])],
        TokenError::InvalidAudience,
    )
    .await;
}

#[tokio::test]
async fn case_091_aud_of_the_wrong_type_is_refused() {
    refused_for_values(
        "aud",
        &[json!(123), json!({"x": AUD}), json!(true), json!([[AUD]])],
        TokenError::InvalidAudience,
    )
    .await;
}

#[tokio::test]
async fn case_092_aud_array_with_mixed_types_is_refused() {
    refused_for_values(
        "aud",
        &[json!([AUD, 5]), json!([5, AUD]), json!([AUD, null]), json!([AUD, {}])],
        TokenError::InvalidAudience,
    )
    .await;
}

#[tokio::test]
async fn case_093_aud_is_compared_byte_for_byte() {
    assert_eq!(AUD, "https://api.example.test");
    let variants = [
        "HTTPS://API.EXAMPLE.TEST",
        "https://api.example.test ",
        " https://api.example.test",
        "https://api.example.test/",
        "https://api.example.test:443",
        "https://api.example.tesт", // Cyrillic т
    ];
    refused_for_values("aud", &variants.map(Value::from), TokenError::InvalidAudience).await;
}

#[tokio::test]
async fn case_094_token_for_a_sibling_api_is_refused() {
    let token = issuer().access_token().audience("billing-api").scope(READ).sign();
    expect_badtok(&default_app(), &token, TokenError::InvalidAudience).await;
    with_token(&default_app(), "/appointments", &token).await.badtok(TokenError::InvalidAudience);
}

#[tokio::test]
async fn case_095_configured_audience_is_never_empty_and_a_client_id_audience_warns() {
    let error = issuer().authority_builder("").build().expect_err("empty audience");
    assert_eq!(error.setting(), "audience");
    for bad in [" https://api.example.test", "https://api.example.test\n", "a b"] {
        assert_eq!(issuer().authority_builder(bad).build().expect_err("whitespace").setting(), "audience");
    }
    let error = Authority::builder().issuer(ISS).static_jwks(issuer().jwks().to_string()).build().expect_err("no aud");
    assert_eq!(error.setting(), "audience");

    // An audience equal to an allowed client_id warns at startup.
    let (logs, guard) = capture_logs();
    let _authority = issuer().authority_builder("spa-client").allowed_clients(["spa-client"]).build().expect("builds");
    drop(guard);
    let text = logs.text();
    assert!(text.contains("WARN") && text.contains("the API audience equals an allowed client_id"), "{text}");
}

// --- 6c. time ------------------------------------------------------------------------

#[tokio::test]
async fn case_096_missing_exp_is_refused() {
    refused_without("exp", TokenError::InvalidClaim).await;
}

#[tokio::test]
async fn case_097_expired_beyond_the_leeway_is_refused() {
    let app = default_app();
    for seconds in [-61, -120, -3600, -86_400 * 365] {
        let token = issuer().access_token().expires_in(seconds).sign();
        call(&app, &token).await.labelled(format!("exp now{seconds}")).badtok(TokenError::Expired);
    }
}

#[tokio::test]
async fn case_098_exp_equal_to_now_is_expired_with_zero_leeway() {
    // The verifier's clock stands exactly at `exp` (a whole second, then a fraction).
    let at = now() as f64;
    let clock = TestClock::at(at);
    let authority = issuer().authority_builder(AUD).leeway(Duration::ZERO).clock(&clock).build().expect("zero leeway");
    let app = app_for(authority);
    let expiring = |exp: f64| issuer().access_token().claim("iat", at - 10.0).claim("exp", exp).sign();
    expect_badtok(&app, &expiring(at), TokenError::Expired).await;
    expect_badtok(&app, &expiring(at - 1.0), TokenError::Expired).await;
    expect_accept(&app, &expiring(at + 1.0)).await;
    clock.set(at + 0.5);
    expect_badtok(&app, &expiring(at + 0.5), TokenError::Expired).await;
    expect_accept(&app, &expiring(at + 0.75)).await;
}

#[tokio::test]
async fn case_099_exp_within_the_default_leeway_is_accepted() {
    expect_accept(&default_app(), &issuer().access_token().expires_in(-30).sign()).await;
}

#[tokio::test]
async fn case_100_exp_of_the_wrong_type_is_refused() {
    refused_for_values(
        "exp",
        &[json!("9999999999"), json!("never"), json!(true), json!({"t": 1}), Value::Null, json!([now() + 60])],
        TokenError::InvalidClaim,
    )
    .await;
}

#[tokio::test]
async fn case_101_exp_negative_zero_or_minus_zero_is_refused() {
    refused_for_values("exp", &[json!(-1), json!(0), json!(-0.0), json!(-1.5e9)], TokenError::InvalidClaim).await;
    let token = issuer().access_token().raw_claims(&raw_claims(&["exp"], r#","exp":-0"#)).sign();
    expect_badtok(&default_app(), &token, TokenError::InvalidClaim).await;
}

#[tokio::test]
async fn case_102_fractional_exp_is_accepted() {
    let exp = now() as f64 + 100.7;
    let body = expect_accept(&default_app(), &issuer().access_token().claim("exp", exp).sign()).await;
    assert_eq!(body["handler"], "me");
}

#[tokio::test]
async fn case_103_exp_beyond_numeric_range_is_refused() {
    let app = default_app();
    let with_exp = |exp: &str| issuer().access_token().raw_claims(&raw_claims(&["exp"], &format!(r#","exp":{exp}"#)));
    for exp in ["18446744073709551616", "1e300", "9007199254740993"] {
        call(&app, &with_exp(exp).sign()).await.labelled(exp).badtok(TokenError::InvalidClaim);
    }
    // Beyond f64 the JSON number itself cannot be read.
    call(&app, &with_exp("1E400").sign()).await.badtok(TokenError::Malformed);
}

#[tokio::test]
async fn case_104_exp_too_far_in_the_future_is_refused() {
    let app = default_app();
    expect_badtok(&app, &issuer().access_token().claim("exp", u64::MAX).sign(), TokenError::InvalidClaim).await;
    // More than the default 24 h maximum lifetime past now, or past iat.
    for exp in [25 * 3600, 365 * 86_400, 4_000_000_000 - now()] {
        let token = issuer().access_token().expires_in(exp).sign();
        call(&app, &token).await.labelled(format!("exp now+{exp}")).badtok(TokenError::LifetimeExceeded);
    }
    let old = issuer().access_token().claim("iat", now() - 2 * 3600).expires_in(23 * 3600).sign();
    expect_badtok(&app, &old, TokenError::LifetimeExceeded).await;
    expect_accept(&app, &issuer().access_token().expires_in(23 * 3600).sign()).await;
    // A configured maximum lifetime.
    let short = app_with_lifetime(Duration::from_secs(3600));
    expect_badtok(&short, &issuer().access_token().expires_in(2 * 3600).sign(), TokenError::LifetimeExceeded).await;
    expect_accept(&short, &issuer().access_token().expires_in(1800).sign()).await;
}

fn app_with_lifetime(lifetime: Duration) -> axum::Router {
    app_for(issuer().authority_builder(AUD).max_token_lifetime(lifetime).build().expect("lifetime"))
}

#[tokio::test]
async fn case_105_nbf_in_the_future_is_refused() {
    let app = default_app();
    for nbf in [61, 120, 3600] {
        let token = issuer().access_token().claim("nbf", now() + nbf).sign();
        call(&app, &token).await.labelled(format!("nbf now+{nbf}")).badtok(TokenError::NotYetValid);
    }
    // Within the leeway, or in the past: fine.
    for nbf in [30, 0, -3600] {
        call(&app, &issuer().access_token().claim("nbf", now() + nbf).sign()).await.accept();
    }
}

#[tokio::test]
async fn case_106_nbf_of_the_wrong_type_is_refused() {
    refused_for_values(
        "nbf",
        &[json!("0"), json!("1700000000"), json!(true), Value::Null, json!({}), json!(-5)],
        TokenError::InvalidClaim,
    )
    .await;
}

#[tokio::test]
async fn case_107_missing_iat_is_refused() {
    refused_without("iat", TokenError::InvalidClaim).await;
}

#[tokio::test]
async fn case_108_iat_in_the_future_is_refused() {
    // On a stopped clock: with the wall clock, `now + 61` signed at a whole second passed
    // the leeway once the check ran more than a second later (a loaded machine).
    let (app, at, token) = app_at_a_fixed_time();
    for ahead in [61.0, 120.0, 250.0] {
        let token = token(at + ahead, at + 300.0).sign();
        call(&app, &token).await.labelled(format!("iat now+{ahead}")).badtok(TokenError::IssuedInFuture);
    }
    expect_accept(&app, &token(at + 30.0, at + 300.0).sign()).await;
}

#[tokio::test]
async fn case_109_iat_of_the_wrong_type_is_refused() {
    refused_for_values(
        "iat",
        &[json!("1700000000"), json!(true), Value::Null, json!([1]), json!(0)],
        TokenError::InvalidClaim,
    )
    .await;
}

#[tokio::test]
async fn case_110_max_token_age_refuses_old_tokens() {
    let authority = issuer().authority_builder(AUD).max_token_age(Duration::from_secs(600)).build().expect("max age");
    let app = app_for(authority);
    let old = issuer().access_token().claim("iat", now() - 1200).sign();
    expect_badtok(&app, &old, TokenError::LifetimeExceeded).await;
    expect_accept(&app, &issuer().access_token().claim("iat", now() - 300).sign()).await;
    // Off by default.
    expect_accept(&default_app(), &old).await;
    assert_eq!(
        issuer().authority_builder(AUD).max_token_age(Duration::ZERO).build().expect_err("zero").setting(),
        "max_token_age"
    );
}

#[tokio::test]
async fn case_111_time_checks_use_the_wall_clock() {
    // Partial: tokens dated by the wall clock (`SystemTime`) are judged by it at the leeway
    // boundary. Clock jumps and JWKS freshness (monotonic) belong to the JWKS source
    // (section 10); there is no clock injection to test them here.
    let app = default_app();
    expect_badtok(&app, &issuer().access_token().expires_in(-61).sign(), TokenError::Expired).await;
    expect_accept(&app, &issuer().access_token().expires_in(-55).sign()).await;
}

/// An app whose verifier's clock stands still at the returned time, so that each time
/// bound can be met exactly: leeway 60 s (the default), maximum lifetime 1 h,
/// `max_token_age` 10 min. The token builder sets `iat` and `exp`.
fn app_at_a_fixed_time() -> (axum::Router, f64, impl Fn(f64, f64) -> scopegate::testing::TokenBuilder) {
    let at = now() as f64;
    let clock = TestClock::at(at);
    let authority = issuer()
        .authority_builder(AUD)
        .max_token_lifetime(Duration::from_secs(3600))
        .max_token_age(Duration::from_secs(600))
        .clock(&clock)
        .build()
        .expect("builds");
    let token = |iat: f64, exp: f64| issuer().access_token().claim("iat", iat).claim("exp", exp);
    (app_for(authority), at, token)
}

#[tokio::test]
async fn case_105_nbf_exactly_the_leeway_ahead_is_accepted_and_no_later() {
    let (app, at, token) = app_at_a_fixed_time();
    expect_accept(&app, &token(at, at + 300.0).claim("nbf", at + 60.0).sign()).await;
    expect_badtok(&app, &token(at, at + 300.0).claim("nbf", at + 60.5).sign(), TokenError::NotYetValid).await;
}

#[tokio::test]
async fn case_108_iat_exactly_the_leeway_ahead_is_accepted_and_no_later() {
    let (app, at, token) = app_at_a_fixed_time();
    expect_accept(&app, &token(at + 60.0, at + 300.0).sign()).await;
    expect_badtok(&app, &token(at + 60.5, at + 300.0).sign(), TokenError::IssuedInFuture).await;
}

#[tokio::test]
async fn case_104_exp_exactly_the_maximum_lifetime_past_now_is_accepted_and_no_later() {
    // `iat` ahead of now, inside the leeway: `exp - iat` stays below the maximum, so only
    // the distance from now decides.
    let (app, at, token) = app_at_a_fixed_time();
    expect_accept(&app, &token(at + 30.0, at + 3600.0).sign()).await;
    expect_badtok(&app, &token(at + 30.0, at + 3600.5).sign(), TokenError::LifetimeExceeded).await;
}

#[tokio::test]
async fn case_104_exp_exactly_the_maximum_lifetime_past_iat_is_accepted_and_no_later() {
    let (app, at, token) = app_at_a_fixed_time();
    expect_accept(&app, &token(at - 30.0, at + 3570.0).sign()).await;
    expect_badtok(&app, &token(at - 30.5, at + 3570.0).sign(), TokenError::LifetimeExceeded).await;
}

#[tokio::test]
async fn case_110_iat_exactly_max_token_age_ago_is_accepted_and_no_earlier() {
    let (app, at, token) = app_at_a_fixed_time();
    expect_accept(&app, &token(at - 600.0, at + 300.0).sign()).await;
    expect_badtok(&app, &token(at - 600.5, at + 300.0).sign(), TokenError::LifetimeExceeded).await;
}

// --- 6d. other required claims -------------------------------------------------------

#[tokio::test]
async fn case_112_sub_missing_or_not_a_string_is_refused() {
    refused_without("sub", TokenError::InvalidClaim).await;
    refused_for_values(
        "sub",
        &[json!(5), Value::Null, json!(["user-123"]), json!({}), json!(true)],
        TokenError::InvalidClaim,
    )
    .await;
}

#[tokio::test]
async fn case_113_client_id_missing_or_not_a_string_is_refused() {
    refused_without("client_id", TokenError::InvalidClaim).await;
    refused_for_values(
        "client_id",
        &[json!(5), Value::Null, json!(["test-client"]), json!({})],
        TokenError::InvalidClaim,
    )
    .await;
    // `azp` is no substitute in the default profile.
    let token = issuer().access_token().without_claim("client_id").claim("azp", "test-client").sign();
    expect_badtok(&default_app(), &token, TokenError::InvalidClaim).await;
}

#[tokio::test]
async fn case_114_jti_missing_or_not_a_string_is_refused() {
    refused_without("jti", TokenError::InvalidClaim).await;
    refused_for_values("jti", &[json!(5), Value::Null, json!(["a"]), json!({})], TokenError::InvalidClaim).await;
}

#[tokio::test]
async fn case_115_client_credentials_token_is_accepted_and_marked() {
    let app = default_app();
    let token = issuer().access_token().subject("test-client").client_id("test-client").sign();
    let body = expect_accept(&app, &token).await;
    assert_eq!(body["client_token"], true);
    let body = expect_accept(&app, &issuer().access_token().sign()).await;
    assert_eq!(body["client_token"], false);
    // Not covered: a `requires_user` route form (403 for client tokens) does not exist yet.
}

#[tokio::test]
async fn case_116_auth_time_acr_amr_are_allowed() {
    let token = issuer()
        .access_token()
        .claim("auth_time", now() - 60)
        .claim("acr", "urn:mace:incommon:iap:silver")
        .claim("amr", json!(["pwd", "mfa"]))
        .sign();
    expect_accept(&default_app(), &token).await;
}

#[tokio::test]
async fn case_117_sender_constrained_token_presented_as_bearer_is_refused() {
    let app = default_app();
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        json!({}),
    ] {
        let token = issuer().access_token().claim("cnf", cnf.clone()).scope(READ).sign();
        call(&app, &token).await.labelled(cnf.to_string()).badtok(TokenError::SenderConstrained);
        with_token(&app, "/appointments", &token).await.badtok(TokenError::SenderConstrained);
        // Under the DPoP scheme it is not a bearer credential at all (DPoP unsupported).
        with_authorization(&app, "/me", format!("DPoP {token}").as_bytes()).await.noauth();
    }
}

#[tokio::test]
async fn case_118_a_fully_valid_token_is_accepted_with_its_facts() {
    let fresh = TestIssuer::new();
    let token = fresh.access_token().scope("read:appointments openid").claim("jti", "jti-118").sign();
    let body = expect_accept(&default_app(), &token).await;
    assert_eq!(
        body,
        json!({
            "handler": "me",
            "sub": "user-123",
            "client_id": "test-client",
            "client_token": false,
            "iss": ISS,
            "aud": [AUD],
            "jti": "jti-118",
            "scopes": ["openid", "read:appointments"],
        })
    );
}

// --- Empty identifiers and the client allowlist -----------------------------------------

#[tokio::test]
async fn an_empty_sub_client_id_or_jti_is_refused_as_an_empty_claim() {
    let authority = authority();
    let app = app_for(authority.clone());
    for claim in ["sub", "client_id", "jti"] {
        let token = issuer().access_token().claim(claim, "").scope(READ).sign();
        call(&app, &token).await.labelled(format!("{claim}: \"\"")).badtok(TokenError::EmptyClaim);
        with_token(&app, "/appointments", &token)
            .await
            .labelled(format!("{claim}: \"\""))
            .badtok(TokenError::EmptyClaim);
    }
    assert_eq!(authority.rejections_by_reason(), vec![("empty_claim", 6)]);
    // One character is enough.
    let short = issuer().access_token().subject("u").client_id("c").claim("jti", "j").sign();
    let body = expect_accept(&app, &short).await;
    assert_eq!((&body["sub"], &body["client_id"], &body["jti"]), (&json!("u"), &json!("c"), &json!("j")));
}

#[tokio::test]
async fn in_the_compatible_profile_an_empty_client_claim_is_refused_as_an_empty_claim() {
    let app = app_for(issuer().authority_builder(AUD).profile(Profile::Compatible).build().expect("compatible"));
    for claim in ["azp", "cid"] {
        for typ in ["at+jwt", "JWT"] {
            let token = issuer().access_token().typ(typ).without_claim("client_id").claim(claim, "").sign();
            call(&app, &token).await.labelled(format!("{typ}, {claim}: \"\"")).badtok(TokenError::EmptyClaim);
        }
    }
    // An empty `client_id` is not skipped for the `azp` behind it.
    let token = issuer().access_token().typ("JWT").client_id("").claim("azp", "test-client").sign();
    expect_badtok(&app, &token, TokenError::EmptyClaim).await;
    // `sub` and `jti` (optional here) as well.
    for claim in ["sub", "jti"] {
        let token = issuer().access_token().typ("JWT").claim(claim, "").sign();
        call(&app, &token).await.labelled(format!("JWT, {claim}: \"\"")).badtok(TokenError::EmptyClaim);
    }
    // Control: a non-empty `azp` names the client.
    let token = issuer().access_token().typ("JWT").without_claim("client_id").claim("azp", "spa").sign();
    assert_eq!(expect_accept(&app, &token).await["client_id"], "spa");
}

/// The exact 401 of a token issued to a client outside the allowlist.
fn assert_client_not_allowed(outcome: &Outcome) {
    outcome.rejected(
        axum::http::StatusCode::UNAUTHORIZED,
        &format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"The access token was issued to a client this API does not accept\""
        ),
        &json!({
            "error": "invalid_token",
            "error_description": "The access token was issued to a client this API does not accept",
            "reason": "client_not_allowed",
        }),
    );
}

#[tokio::test]
async fn allowed_clients_refuses_a_token_issued_to_another_client() {
    let authority =
        issuer().authority_builder(AUD).allowed_clients(["test-client", "mobile-app"]).build().expect("allowlist");
    let app = app_for(authority.clone());
    let intruder = issuer().access_token().client_id("intruder").scope(READ).sign();
    assert_client_not_allowed(&call(&app, &intruder).await);
    assert_client_not_allowed(&with_token(&app, "/appointments", &intruder).await);
    // Byte for byte: no case folding or prefix match.
    for near in ["Test-Client", "test-client ", "test-clien", "mobile-app-2"] {
        let token = issuer().access_token().client_id(near).sign();
        assert_client_not_allowed(&call(&app, &token).await.labelled(near));
    }
    assert_eq!(authority.rejections_by_reason(), vec![("client_not_allowed", 6)]);

    // Each allowed client is accepted.
    for client in ["test-client", "mobile-app"] {
        let token = issuer().access_token().client_id(client).scope(READ).sign();
        assert_eq!(with_token(&app, "/appointments", &token).await.accept()["client_id"], client);
    }
}

#[tokio::test]
async fn allowed_clients_reads_azp_and_cid_in_the_compatible_profile() {
    let authority = issuer()
        .authority_builder(AUD)
        .profile(Profile::Compatible)
        .allowed_clients(["spa-client"])
        .build()
        .expect("allowlist");
    let app = app_for(authority);
    let by = |claim: &str, client: &str| {
        issuer().access_token().typ("JWT").without_claim("client_id").claim(claim, client).scope(READ).sign()
    };
    for claim in ["azp", "cid"] {
        assert_eq!(call(&app, &by(claim, "spa-client")).await.labelled(claim).accept()["client_id"], "spa-client");
        assert_client_not_allowed(&call(&app, &by(claim, "other-spa")).await.labelled(claim));
        assert_client_not_allowed(&with_token(&app, "/appointments", &by(claim, "other-spa")).await.labelled(claim));
    }
    // `client_id` comes first: an allowed `azp` behind another `client_id` does not help.
    let token = issuer().access_token().typ("JWT").client_id("other-spa").claim("azp", "spa-client").sign();
    assert_client_not_allowed(&call(&app, &token).await);
}
