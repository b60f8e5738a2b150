//! Security spec section 8: scope authorization (RFC 6749 §3.3; RFC 8693 §4.2; RFC 9068
//! §2.2.3; RFC 6750 §3.1).
//!
//! `/appointments` requires `read:appointments`; `/ab` requires `a` and `b`.

use scopegate::{ScopeClaim, TokenError};
use serde_json::{Value, json};

use crate::harness::*;

async fn scope_accepted(scope: &str) -> Value {
    let token = issuer().access_token().scope(scope).sign();
    with_token(&default_app(), "/appointments", &token).await.labelled(format!("{scope:?}")).accept()
}

async fn scope_refused(scope: &str) {
    let token = issuer().access_token().scope(scope).sign();
    with_token(&default_app(), "/appointments", &token).await.labelled(format!("{scope:?}")).noscope(READ);
}

#[tokio::test]
async fn case_131_exact_scope_is_accepted() {
    let body = scope_accepted("read:appointments").await;
    assert_eq!(body["handler"], "appointments");
    assert_eq!(body["scopes"], json!([READ]));
}

#[tokio::test]
async fn case_132_scope_order_does_not_matter() {
    for scope in ["openid profile read:appointments", "read:appointments openid", "a read:appointments b"] {
        scope_accepted(scope).await;
    }
}

#[tokio::test]
async fn case_133_scopes_are_case_sensitive() {
    for scope in ["Read:Appointments", "READ:APPOINTMENTS", "read:Appointments"] {
        scope_refused(scope).await;
    }
}

#[tokio::test]
async fn case_134_no_prefix_substring_or_wildcard_matching() {
    for scope in [
        "read:appointments:all",
        "read:appointment",
        "xread:appointmentsx",
        "read:appointments-admin",
        "read:*",
        "*",
        "read",
        "read:appointments/",
    ] {
        scope_refused(scope).await;
    }
}

#[tokio::test]
async fn case_135_empty_or_absent_scope_is_noscope() {
    scope_refused("").await;
    scope_refused(" ").await;
    let app = default_app();
    let token = issuer().access_token().without_claim("scope").sign();
    expect_noscope(&app, &token).await;
    // The token itself is valid: a route with no scope requirement accepts it.
    expect_accept(&app, &token).await;
}

#[tokio::test]
async fn case_136_scopes_split_on_space_only() {
    for scope in [
        "read:appointments\twrite:all",
        "write:all\tread:appointments",
        "read:appointments\nwrite:all",
        "read:appointments\u{a0}write:all",
        "read:appointments\u{2003}write:all",
        "read:appointments,write:all",
        "\tread:appointments",
        "read:appointments\t",
    ] {
        scope_refused(scope).await;
    }
}

#[tokio::test]
async fn case_137_extra_spaces_are_ignored() {
    // Policy (spec case 137): empty segments from repeated, leading or trailing spaces are
    // ignored (no strict-grammar mode), so these are accepted.
    for scope in ["  read:appointments  ", "openid  read:appointments", " read:appointments", "read:appointments "] {
        let body = scope_accepted(scope).await;
        assert!(body["scopes"].as_array().expect("scopes").iter().all(|s| !s.as_str().expect("a string").is_empty()));
    }
}

#[tokio::test]
async fn case_138_scope_claim_that_is_not_a_string_is_refused() {
    let app = default_app();
    for scope in [json!([READ]), json!(5), json!({"read:appointments": true}), json!(true), Value::Null] {
        let token = issuer().access_token().claim("scope", scope.clone()).sign();
        with_token(&app, "/appointments", &token)
            .await
            .labelled(scope.to_string())
            .badtok(TokenError::InvalidScopeClaim);
        // The claim is malformed, so even a route without a scope requirement refuses it.
        call(&app, &token).await.labelled(scope.to_string()).badtok(TokenError::InvalidScopeClaim);
    }
    // Vendor mode is opt-in per authority: `scp` as a string or a list of strings.
    let vendor = app_with_scope_claims(&[ScopeClaim::Scp]);
    for scp in [json!([READ, "openid"]), json!("openid read:appointments")] {
        let token = issuer().access_token().claim("scp", scp.clone()).sign();
        with_token(&vendor, "/appointments", &token).await.labelled(scp.to_string()).accept();
    }
    let token = issuer().access_token().claim("scp", json!([READ, 5])).sign();
    with_token(&vendor, "/appointments", &token).await.badtok(TokenError::InvalidScopeClaim);
    let permissions = app_with_scope_claims(&[ScopeClaim::Permissions]);
    let token = issuer().access_token().claim("permissions", json!([READ])).sign();
    with_token(&permissions, "/appointments", &token).await.accept();
    // `permissions` must be a list.
    let token = issuer().access_token().claim("permissions", READ).sign();
    with_token(&permissions, "/appointments", &token).await.badtok(TokenError::InvalidScopeClaim);
    // Claims are never merged: the first configured claim present wins.
    let both = app_with_scope_claims(&[ScopeClaim::Scope, ScopeClaim::Scp]);
    let token = issuer().access_token().scope("openid").claim("scp", json!([READ])).sign();
    with_token(&both, "/appointments", &token).await.noscope(READ);
    let token = issuer().access_token().claim("scp", json!([READ])).sign();
    with_token(&both, "/appointments", &token).await.accept();
}

fn app_with_scope_claims(claims: &[ScopeClaim]) -> axum::Router {
    app_for(issuer().authority_builder(AUD).scope_claims(claims.iter().copied()).build().expect("scope claims"))
}

#[tokio::test]
async fn case_139_scp_is_not_read_by_default() {
    let app = default_app();
    for scp in [json!(READ), json!([READ])] {
        let token = issuer().access_token().claim("scp", scp).sign();
        expect_noscope(&app, &token).await;
    }
    let token = issuer().access_token().claim("permissions", json!([READ])).sign();
    expect_noscope(&app, &token).await;
}

#[tokio::test]
async fn case_140_all_required_scopes_must_be_granted() {
    let app = default_app();
    for scope in ["a", "b", "", "a c", "ab", "a,b"] {
        let token = issuer().access_token().scope(scope).sign();
        with_token(&app, "/ab", &token).await.labelled(scope).noscope("a b");
    }
    for scope in ["a b", "b a", "c b a"] {
        with_token(&app, "/ab", &issuer().access_token().scope(scope).sign()).await.labelled(scope).accept();
    }
}

#[tokio::test]
async fn case_141_unicode_look_alike_is_noscope() {
    for scope in ["reаd:appointments", "read:appointmentѕ", "read：appointments", "read:appointments\u{200b}"] {
        scope_refused(scope).await;
    }
}

#[tokio::test]
async fn case_142_huge_scope_strings_are_bounded_by_the_size_cap() {
    let many: String = (0..10_000).map(|i| format!("s{}", i % 100)).collect::<Vec<_>>().join(" ");
    let with_read = format!("{many} read:appointments");
    let app = default_app();
    let token = issuer().access_token().scope(&with_read).sign();
    with_token(&app, "/appointments", &token).await.badtok(TokenError::TooLarge);
    let megabyte = issuer().access_token().scope(&"x".repeat(1 << 20)).sign();
    with_token(&app, "/appointments", &megabyte).await.badtok(TokenError::TooLarge);
    // At the 64 KiB hard cap, 10 000 scope tokens fit and are matched exactly.
    let big = app_with_cap(scopegate::MAX_TOKEN_SIZE_LIMIT);
    let short: String = (0..10_000).map(|i| ["a", "c", "d", "e"][i % 4]).collect::<Vec<_>>().join(" ");
    let token = issuer().access_token().scope(&format!("{short} read:appointments")).sign();
    assert!(token.len() > 8 * 1024 && token.len() <= 64 * 1024, "{}", token.len());
    with_token(&big, "/appointments", &token).await.accept();
    with_token(&big, "/appointments", &issuer().access_token().scope(&short).sign()).await.noscope(READ);
    with_token(&big, "/appointments", &megabyte).await.badtok(TokenError::TooLarge);
}

fn app_with_cap(cap: usize) -> axum::Router {
    app_for(issuer().authority_builder(AUD).max_token_size(cap).build().expect("cap"))
}

#[tokio::test]
async fn case_143_insufficient_scope_challenge_names_only_the_routes_scopes() {
    let app = default_app();
    // Token scopes full of characters that would break a quoted-string.
    let hostile = r#"x" error="none", scope="read:appointments\ admin"#;
    let token = issuer().access_token().scope(hostile).sign();
    let outcome = with_token(&app, "/appointments", &token).await;
    outcome.noscope(READ);
    let ab = with_token(&app, "/ab", &token).await;
    ab.noscope("a b");
    for outcome in [outcome, ab] {
        let challenge = outcome.challenge().expect("a challenge");
        assert_eq!(challenge.matches("scope=").count(), 1, "{challenge}");
        let value = challenge.split("scope=\"").nth(1).and_then(|v| v.strip_suffix('"')).expect("a scope value");
        assert!(
            value.bytes().all(|b| b == b' ' || b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)),
            "{value:?}"
        );
        assert!(!outcome.body.contains("admin"), "{}", outcome.body);
    }
}

#[tokio::test]
async fn case_144_only_a_fully_valid_token_can_reach_noscope() {
    let app = default_app();
    let unscoped = || issuer().access_token().scope("openid");
    for (token, error) in [
        (unscoped().expires_in(-3600).sign(), TokenError::Expired),
        (other_issuer().access_token().scope("openid").sign(), TokenError::InvalidSignature),
        (unscoped().audience("billing-api").sign(), TokenError::InvalidAudience),
        (unscoped().claim("iss", "https://evil.example/").sign(), TokenError::InvalidIssuer),
        (unscoped().typ("JWT").sign(), TokenError::NotAnAccessToken),
        (unscoped().without_claim("jti").sign(), TokenError::InvalidClaim),
        (issuer().id_token("spa-client").sign(), TokenError::IdToken),
    ] {
        with_token(&app, "/appointments", &token).await.badtok(error);
        with_token(&app, "/ab", &token).await.badtok(error);
    }
    expect_noscope(&app, &unscoped().sign()).await;
}
