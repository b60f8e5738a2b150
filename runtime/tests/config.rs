//! A contradictory or unsafe configuration fails to build, with an error that names the
//! setting to change.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

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

#[tokio::test]
async fn a_max_stale_above_7_days_is_refused() {
    let remote = || Authority::builder().issuer("https://issuer.example/").audience(AUD);
    refused(remote().jwks_max_stale(Duration::MAX), "jwks_max_stale", "at most 7 days");
    refused(remote().jwks_max_stale(Duration::from_secs(7 * 86_400 + 1)), "jwks_max_stale", "at most 7 days");
    remote().jwks_max_stale(Duration::from_secs(7 * 86_400)).build().unwrap();
    remote().jwks_max_stale(Duration::ZERO).build().unwrap();
}

#[tokio::test]
async fn a_ttl_upper_bound_above_7_days_is_refused() {
    let remote = || Authority::builder().issuer("https://issuer.example/").audience(AUD);
    let second = Duration::from_secs(1);
    refused(remote().jwks_ttl_bounds(second, Duration::MAX), "jwks_ttl_bounds", "at most 7 days");
    refused(remote().jwks_ttl_bounds(second, Duration::from_secs(7 * 86_400 + 1)), "jwks_ttl_bounds", "at most 7 days");
    refused(remote().jwks_ttl_bounds(Duration::ZERO, second), "jwks_ttl_bounds", "1 s <= min <= max");
    remote().jwks_ttl_bounds(second, Duration::from_secs(7 * 86_400)).build().unwrap();
}

#[tokio::test]
async fn a_refresh_cooldown_above_1_hour_is_refused() {
    let remote = || Authority::builder().issuer("https://issuer.example/").audience(AUD);
    refused(remote().jwks_refresh_cooldown(Duration::MAX), "jwks_refresh_cooldown", "at most 1 hour");
    refused(remote().jwks_refresh_cooldown(Duration::from_secs(3601)), "jwks_refresh_cooldown", "at most 1 hour");
    remote().jwks_refresh_cooldown(Duration::from_secs(3600)).build().unwrap();
}

#[tokio::test]
async fn http_timeouts_of_any_size_are_refused_without_overflow() {
    let remote = || Authority::builder().issuer("https://issuer.example/").audience(AUD);
    refused(remote().http_timeouts(Duration::MAX, Duration::MAX), "http_timeouts", "at most 60 seconds");
    refused(remote().http_timeouts(Duration::from_secs(5), Duration::ZERO), "http_timeouts", "positive");
    remote().http_timeouts(Duration::from_secs(60), Duration::from_secs(60)).build().unwrap();
}

#[tokio::test]
async fn a_fetch_budget_outside_its_bounds_is_refused() {
    let remote = || Authority::builder().issuer("https://issuer.example/").audience(AUD);
    let says = "1 to 3600 fetches an hour and a burst of 1 to 100";
    refused(remote().jwks_fetch_budget(0, 5), "jwks_fetch_budget", says);
    refused(remote().jwks_fetch_budget(3601, 5), "jwks_fetch_budget", says);
    refused(remote().jwks_fetch_budget(60, 0), "jwks_fetch_budget", says);
    refused(remote().jwks_fetch_budget(60, 101), "jwks_fetch_budget", says);
    remote().jwks_fetch_budget(1, 1).build().unwrap();
    remote().jwks_fetch_budget(3600, 100).build().unwrap();
}

/// The events a build logs: (level, target, message and fields as `name=value`).
#[derive(Default)]
struct Events(Mutex<Vec<(tracing::Level, String, String)>>);

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                use std::fmt::Write as _;
                let _ = write!(self.0, " {}={value:?}", field.name());
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        let meta = event.metadata();
        self.0.lock().unwrap().push((*meta.level(), meta.target().to_owned(), text.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The events logged while `f` runs on this thread.
fn logged(f: impl FnOnce()) -> Vec<(tracing::Level, String, String)> {
    let events = Arc::new(Events::default());
    tracing::subscriber::with_default(Arc::clone(&events), f);
    std::mem::take(&mut *events.0.lock().unwrap())
}

#[test]
fn the_compatible_profile_builds_with_a_warning() {
    let issuer = scopegate::testing::DEFAULT_ISSUER;
    let events = logged(|| drop(valid().profile(Profile::Compatible).build().unwrap()));
    let message = "compatible token profile enabled: tokens typed `JWT` or untyped are accepted when they look \
                   like access tokens (RFC 9068 strict mode is off)";
    assert_eq!(events, [(tracing::Level::WARN, "scopegate".to_owned(), format!(" message={message} issuer={issuer}"))],);
    // The strict profile builds without a word.
    assert_eq!(logged(|| drop(valid().build().unwrap())), []);
}

#[test]
fn a_config_error_debugs_like_it_displays() {
    // `main() -> Result<(), Box<dyn Error>>` prints the error with `Debug`.
    let error = Authority::builder().audience("api").build().unwrap_err();
    assert_eq!(format!("{error:?}"), error.to_string());
    assert_eq!(
        format!("{error:?}"),
        "scopegate: invalid `issuer` setting: no issuer set: call .issuer(\"https://your-issuer/\")"
    );
}

fn introspecting() -> AuthorityBuilder {
    valid().introspection("api", "secret").introspection_endpoint("https://issuer.example.test/introspect")
}

#[test]
fn introspection_builds_with_an_explicit_endpoint() {
    introspecting().build().unwrap();
}

#[test]
fn introspection_settings_without_introspection_are_refused() {
    refused(valid().introspection_endpoint("https://issuer.example.test/introspect"), "introspection", "not enabled");
    refused(valid().introspect_jwts(true), "introspection", "not enabled");
}

#[test]
fn introspection_credentials_must_be_printable() {
    refused(
        valid().introspection("", "secret").introspection_endpoint("https://i.example/x"),
        "introspection",
        "non-empty printable ASCII",
    );
    refused(
        valid().introspection("api", "se\ncret").introspection_endpoint("https://i.example/x"),
        "introspection",
        "non-empty printable ASCII",
    );
}

#[test]
fn an_introspection_endpoint_over_plain_http_is_refused() {
    refused(
        introspecting().introspection_endpoint("http://issuer.example.test/introspect"),
        "introspection_endpoint",
        "must use https",
    );
}

#[test]
fn an_introspection_endpoint_at_a_private_address_is_refused() {
    refused(
        introspecting().introspection_endpoint("https://169.254.169.254/introspect"),
        "introspection_endpoint",
        "metadata address",
    );
}

#[test]
fn introspection_without_an_endpoint_needs_discovery() {
    refused(
        valid().introspection("api", "secret"),
        "introspection_endpoint",
        "give it with .introspection_endpoint(url)",
    );
}

#[test]
fn an_introspection_cache_ttl_outside_its_bounds_is_refused() {
    refused(introspecting().introspection_cache_ttl(Duration::ZERO), "introspection_cache_ttl", "at most 1 hour");
    refused(
        introspecting().introspection_cache_ttl(Duration::from_secs(3601)),
        "introspection_cache_ttl",
        "at most 1 hour",
    );
}

#[test]
fn a_negative_introspection_ttl_above_the_positive_one_is_refused() {
    refused(
        introspecting()
            .introspection_cache_ttl(Duration::from_secs(5))
            .introspection_negative_cache_ttl(Duration::from_secs(6)),
        "introspection_negative_cache_ttl",
        "at most the positive TTL",
    );
}

#[test]
fn an_introspection_cache_size_outside_its_bounds_is_refused() {
    refused(introspecting().introspection_cache_size(2_000_000, 1 << 20), "introspection_cache_size", "1 000 000");
    refused(introspecting().introspection_cache_size(10, 1024), "introspection_cache_size", "64 KiB");
}

#[test]
fn the_introspection_secret_never_shows_in_debug_output() {
    let builder = introspecting().introspection("api", "very-secret-value");
    assert!(!format!("{builder:?}").contains("very-secret-value"));
}

/// The introspection cache TTL's documented bounds, positive and at most 1 hour, from the
/// accepting side (the refusals of zero and 3 601 s are above): a millisecond and exactly
/// one hour both build.
#[test]
fn an_introspection_cache_ttl_from_a_millisecond_to_exactly_one_hour_builds() {
    introspecting().introspection_cache_ttl(Duration::from_millis(1)).build().unwrap();
    introspecting().introspection_cache_ttl(Duration::from_secs(3600)).build().unwrap();
}

#[test]
fn a_builders_debug_never_prints_its_shared_secret_or_introspection_secret() {
    let secret = "correct-horse-battery-staple-0123456789";
    let builder = Authority::builder()
        .issuer("https://issuer.example.test/")
        .audience("https://api.example.test")
        .shared_secret(Algorithm::HS256, secret.as_bytes())
        .introspection("api", "introspection-secret-0123456789");
    let debug = format!("{builder:?}");
    assert!(!debug.contains(secret), "{debug}");
    assert!(!debug.contains(&format!("{:?}", secret.as_bytes())), "{debug}");
    assert!(!debug.contains("99, 111, 114, 114"), "{debug}");
    assert!(!debug.contains("introspection-secret"), "{debug}");
    assert!(debug.contains(&format!("<{} secret bytes>", secret.len())), "{debug}");
}
