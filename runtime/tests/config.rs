//! A contradictory or unsafe configuration fails to build, with an error that names the
//! setting to change.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use scopegate::{Algorithm, Authority, AuthorityBuilder, Profile, testing::TestIssuer};

const AUD: &str = "https://api.example.test";

fn valid() -> AuthorityBuilder {
    TestIssuer::new().authority_builder(AUD)
}

#[track_caller]
fn refused(builder: AuthorityBuilder, setting: &str, says: &str) {
    let error = builder.build().expect_err("the configuration must be refused");
    assert_eq!(error.setting(), setting, "{error}");
    assert!(error.to_string().contains(says), "{error}");
    assert!(error.to_string().starts_with(&format!("scopegate: invalid `{setting}` setting: ")), "{error}");
}

#[test]
fn the_valid_configuration_builds() {
    valid().build().unwrap();
}

#[test]
fn issuer_and_audience_are_required_and_trimmed() {
    let jwks = TestIssuer::new().jwks().to_string();
    refused(Authority::builder().audience(AUD).static_jwks(jwks.clone()), "issuer", "no issuer set");
    refused(valid().issuer(" https://x/"), "issuer", "without surrounding whitespace");
    refused(Authority::builder().issuer("https://x/").static_jwks(jwks), "audience", "no audience set");
    refused(valid().audience(""), "audience", "non-empty");
    refused(valid().audience("my api"), "audience", "no whitespace");
}

#[test]
fn hmac_is_only_an_explicit_exclusive_mode() {
    refused(valid().algorithms([Algorithm::RS256, Algorithm::HS256]), "algorithms", "needs a shared secret");
    refused(valid().shared_secret(Algorithm::HS256, [7u8; 32]), "shared_secret", "cannot be combined with public keys");
    let secret_only = || Authority::builder().issuer("https://x/").audience(AUD);
    refused(secret_only().shared_secret(Algorithm::HS256, [7u8; 31]), "shared_secret", "at least 32 bytes");
    refused(secret_only().shared_secret(Algorithm::HS512, [7u8; 63]), "shared_secret", "at least 64 bytes");
    refused(secret_only().shared_secret(Algorithm::RS256, [7u8; 64]), "shared_secret", "HS256, HS384 or HS512");
    refused(
        secret_only().shared_secret(Algorithm::HS256, [7u8; 32]).algorithms([Algorithm::HS384]),
        "algorithms",
        "the secret's own",
    );
    secret_only().shared_secret(Algorithm::HS256, [7u8; 32]).build().unwrap();
    refused(valid().algorithms([]), "algorithms", "at least one");
}

#[test]
fn keys_are_required_and_checked() {
    let base = || Authority::builder().issuer("my-issuer").audience(AUD);
    refused(base(), "issuer", "discovered from the issuer URL");
    refused(base().static_jwks("{\"keys\":[]}"), "static_jwks", "no usable signing key");
    refused(base().static_jwks("not json"), "static_jwks", "not a JWK set");
    refused(
        base().public_key_pem("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"),
        "public_key_pem",
        "private",
    );
    refused(valid().jwks_uri("https://issuer.example/jwks"), "jwks_uri", "cannot be combined with static keys");
}

#[test]
fn limits_have_bounds() {
    refused(valid().leeway(Duration::from_secs(301)), "leeway", "at most 300 seconds");
    refused(valid().max_token_size(64 * 1024 + 1), "max_token_size", "64 KiB");
    refused(valid().max_token_size(100), "max_token_size", "256 bytes");
    refused(valid().max_token_lifetime(Duration::ZERO), "max_token_lifetime", "positive");
    refused(valid().max_token_age(Duration::ZERO), "max_token_age", "positive");
    refused(valid().scope_claims([]), "scope_claims", "at least one scope claim");
    refused(valid().allowed_clients(Vec::<String>::new()), "allowed_clients", "refuse every token");
    refused(valid().realm("a \"quoted\" realm"), "realm", "printable ASCII");
    refused(valid().token_cache_max_age(Duration::ZERO), "token_cache", "positive max age");
}

#[test]
fn pem_keys_are_accepted_for_every_key_type() {
    let issuer = TestIssuer::new();
    for kid in ["rsa-1", "ec-1", "ec-384", "ed-1"] {
        Authority::builder()
            .issuer(issuer.issuer())
            .audience(AUD)
            .public_key_pem_with_kid(kid, issuer.public_key_pem(kid))
            .build()
            .unwrap_or_else(|e| panic!("{kid}: {e}"));
    }
}

#[tokio::test]
async fn remote_key_settings_have_bounds() {
    let remote = || Authority::builder().issuer("https://issuer.example/").audience(AUD);
    refused(remote().http_timeouts(Duration::ZERO, Duration::from_secs(1)), "http_timeouts", "positive");
    refused(remote().http_timeouts(Duration::from_secs(1), Duration::from_secs(61)), "http_timeouts", "at most 60");
    refused(remote().max_jwks_size(10), "max_jwks_size", "between 1 KiB and 4 MiB");
    refused(remote().jwks_refresh_cooldown(Duration::from_millis(10)), "jwks_refresh_cooldown", "at least 1 second");
    refused(remote().jwks_ttl_bounds(Duration::from_secs(10), Duration::from_secs(5)), "jwks_ttl_bounds", "min <= max");
    refused(remote().jwks_uri("https://169.254.169.254/jwks"), "jwks_uri", "allow_private_networks");
    remote().jwks_uri("https://10.0.0.8/jwks").allow_private_networks(true).build().unwrap();
}

#[test]
fn the_compatible_profile_builds_with_a_warning() {
    valid().profile(Profile::Compatible).build().unwrap();
}
