//! [`Authority`]: one trusted issuer, the audience this API answers to, and every policy
//! the verifier applies. Built once at startup with [`Authority::builder`].

use std::{
    fmt,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::{
    algorithm::Algorithm,
    cache::{DEFAULT_TOKEN_CACHE_CAPACITY, DEFAULT_TOKEN_CACHE_MAX_AGE, DEFAULT_TOKEN_CACHE_MAX_BYTES, TokenCache},
    clock::Clock,
    http::{HttpLimits, IssuerClient, check_url},
    jwks::{
        CachePolicy, Location, MAX_FETCH_BUDGET_BURST, MAX_FETCH_BUDGET_PER_HOUR, MAX_JWKS_DURATION,
        MAX_REFRESH_COOLDOWN, RemoteKeys,
    },
    keys::{self, KeySet, VerifyingKey},
    rejection::ChallengeConfig,
    source::KeySource,
};

/// The default clock-skew allowance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The largest leeway [`AuthorityBuilder::leeway`] accepts.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// The default maximum token size in bytes.
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 8 * 1024;
/// The hard cap on [`AuthorityBuilder::max_token_size`].
pub const MAX_TOKEN_SIZE_LIMIT: usize = 64 * 1024;
/// The default maximum token lifetime (`exp` may be at most this far past `iat` and now).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Which tokens count as access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Profile {
    /// Strict RFC 9068 (the default): `typ` must be `at+jwt`, and `client_id`, `jti`,
    /// `sub`, `iat`, `exp`, `iss` and `aud` are required.
    #[default]
    Rfc9068,
    /// For issuers that mint access tokens typed `JWT` or untyped (Auth0's default token
    /// profile, Okta, Entra ID). Such a token is accepted only if its audience matches,
    /// it names its client (`client_id`, `azp` or `cid`), it carries none of the ID-token
    /// claims `nonce`, `at_hash`, `c_hash`, and no vendor type claim marks it as an ID
    /// token; `jti` becomes optional. Enabling it logs a warning at startup.
    Compatible,
}

/// A claim scopes are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScopeClaim {
    /// `scope`: a space-delimited string (RFC 9068 §2.2.3). The default.
    Scope,
    /// `scp`: a string or an array of strings (Okta, Entra ID).
    Scp,
    /// `permissions`: an array of strings (Auth0 RBAC).
    Permissions,
}

impl ScopeClaim {
    /// The claim's name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Scope => "scope",
            Self::Scp => "scp",
            Self::Permissions => "permissions",
        }
    }
}

/// A configuration the builder refused, naming the setting to change.
///
/// Its `Debug` form reads like its `Display` form, so that `main() -> Result<(), Box<dyn
/// Error>>` prints a sentence rather than a struct.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigError {
    setting: &'static str,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(setting: &'static str, message: impl Into<String>) -> Self {
        Self { setting, message: message.into() }
    }

    /// The builder setting to change (for example `"audience"`).
    #[must_use]
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scopegate: invalid `{}` setting: {}", self.setting, self.message)
    }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ConfigError {}

/// The verifier's settings, fixed at build time.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) issuer: Box<str>,
    pub(crate) audiences: Vec<Box<str>>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) leeway: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_token_size: usize,
    pub(crate) profile: Profile,
    pub(crate) scope_claims: Vec<ScopeClaim>,
    pub(crate) allowed_clients: Option<Vec<Box<str>>>,
    pub(crate) reject_id_token_claims: bool,
    pub(crate) require_single_audience: bool,
    pub(crate) challenge: ChallengeConfig,
    /// The wall clock, or a test's (feature `testing`).
    pub(crate) clock: Clock,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) keys: KeySource,
    pub(crate) stats: Counters,
    pub(crate) token_cache: Option<TokenCache>,
}

/// Every rejection reason code, for the per-reason counters.
pub(crate) const REASONS: [&str; 27] = [
    "missing_credentials",
    "empty_token",
    "malformed_credentials",
    "non_ascii_header",
    "multiple_authorization_headers",
    "multiple_methods",
    "token_too_large",
    "malformed_token",
    "algorithm_not_allowed",
    "not_an_access_token",
    "id_token",
    "unsupported_header",
    "unknown_key",
    "invalid_signature",
    "invalid_issuer",
    "invalid_audience",
    "token_expired",
    "token_not_yet_valid",
    "issued_in_future",
    "lifetime_exceeded",
    "invalid_claim",
    "invalid_scope_claim",
    "client_not_allowed",
    "sender_constrained",
    "empty_claim",
    "insufficient_scope",
    "keys_unavailable",
];

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) signatures_checked: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    by_reason: [AtomicU64; REASONS.len()],
    other_reasons: AtomicU64,
}

impl Counters {
    /// Counts one rejection under its reason code.
    pub(crate) fn count_rejection(&self, code: &str) {
        match REASONS.iter().position(|r| *r == code).and_then(|i| self.by_reason.get(i)) {
            Some(counter) => counter.fetch_add(1, Ordering::Relaxed),
            None => self.other_reasons.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Counts of what an [`Authority`] has done since it was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Tokens that passed every check.
    pub accepted: u64,
    /// Requests refused (any reason, including missing credentials and missing scope).
    pub rejected: u64,
    /// Signature verifications performed.
    pub signatures_checked: u64,
    /// Tokens accepted from the verified-token cache, without a signature check.
    pub token_cache_hits: u64,
    /// JWKS fetches started (discovery included), for issuers whose keys come over HTTP.
    pub jwks_fetches: u64,
    /// JWKS fetches that failed (the last good keys were kept).
    pub jwks_fetch_failures: u64,
    /// Fetches that changed the set of key ids (the first load counts).
    pub key_set_changes: u64,
}

/// A trusted issuer and the policy for its access tokens. Cheap to clone (an `Arc`
/// inside); put it in your router state and give the state a `FromRef` for it.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use scopegate::Authority;
///
/// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig",
///                "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let authority = Authority::builder()
///     .issuer("https://issuer.example.test/")
///     .audience("https://api.example.test")
///     .static_jwks(jwks)
///     .build()?;
/// # let _ = authority;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Authority {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.inner.config;
        f.debug_struct("Authority")
            .field("issuer", &config.issuer)
            .field("audiences", &config.audiences)
            .field("profile", &config.profile)
            .field("algorithms", &config.algorithms)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Starts configuring an authority.
    pub fn builder() -> AuthorityBuilder {
        AuthorityBuilder::default()
    }

    /// The issuer tokens must carry in `iss`, exactly.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.inner.config.issuer
    }

    /// The audiences accepted by default (handlers may name another with `aud = "…"`).
    pub fn audiences(&self) -> impl Iterator<Item = &str> {
        self.inner.config.audiences.iter().map(|a| &**a)
    }

    /// Auth0: issuer `https://{domain}/`, the compatible profile (Auth0's default token
    /// profile types access tokens `JWT`; tenants on the RFC 9068 profile send `at+jwt`,
    /// which is accepted either way), scopes from `scope`. For RBAC `permissions`, add
    /// `.scope_claims([ScopeClaim::Permissions])`. Keys come from discovery.
    pub fn auth0(domain: &str, audience: impl Into<String>) -> AuthorityBuilder {
        Self::builder()
            .issuer(format!("https://{}/", bare_host(domain)))
            .audience(audience)
            .profile(Profile::Compatible)
            .scope_claims([ScopeClaim::Scope])
    }

    /// Okta: issuer `https://{domain}/oauth2/default` (pass `domain` with an
    /// `/oauth2/{server}` path for another custom authorization server), the compatible
    /// profile, scopes from `scp` (an array), the client from `cid`. Keys come from
    /// discovery.
    pub fn okta(domain: &str, audience: impl Into<String>) -> AuthorityBuilder {
        let domain = bare_host(domain);
        let issuer = if domain.contains("/oauth2/") {
            format!("https://{domain}")
        } else {
            format!("https://{domain}/oauth2/default")
        };
        Self::builder().issuer(issuer).audience(audience).profile(Profile::Compatible).scope_claims([ScopeClaim::Scp])
    }

    /// Microsoft Entra ID (v2.0 tokens): issuer
    /// `https://login.microsoftonline.com/{tenant_id}/v2.0`, the compatible profile,
    /// scopes from `scp` (space-delimited), the client from `azp`. The audience is the
    /// API's application ID (or its App ID URI, as configured in the app registration).
    pub fn entra(tenant_id: &str, audience: impl Into<String>) -> AuthorityBuilder {
        Self::builder()
            .issuer(format!("https://login.microsoftonline.com/{tenant_id}/v2.0"))
            .audience(audience)
            .profile(Profile::Compatible)
            .scope_claims([ScopeClaim::Scp])
    }

    /// Keycloak: issuer `{base_url}/realms/{realm}`, the compatible profile (Keycloak
    /// types access tokens `JWT`; its ID and refresh tokens are told apart by their
    /// `typ` claim and refused), scopes from `scope`, the client from `azp`. Keycloak
    /// puts the API in `aud` only with an audience mapper on the client scope.
    pub fn keycloak(base_url: &str, realm: &str, audience: impl Into<String>) -> AuthorityBuilder {
        Self::builder()
            .issuer(format!("{}/realms/{realm}", base_url.trim_end_matches('/')))
            .audience(audience)
            .profile(Profile::Compatible)
            .scope_claims([ScopeClaim::Scope])
    }

    /// Rejections counted by reason code (see [`RejectionKind::code`](crate::RejectionKind::code)),
    /// only the reasons seen at least once.
    #[must_use]
    pub fn rejections_by_reason(&self) -> Vec<(&'static str, u64)> {
        let counters = &self.inner.stats;
        let mut out: Vec<(&'static str, u64)> = REASONS
            .iter()
            .zip(&counters.by_reason)
            .map(|(reason, n)| (*reason, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let other = counters.other_reasons.load(Ordering::Relaxed);
        if other > 0 {
            out.push(("other", other));
        }
        out
    }

    /// What this authority has counted so far.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let c = &self.inner.stats;
        let mut stats = Stats {
            accepted: c.accepted.load(Ordering::Relaxed),
            // The total is the sum of the per-reason counters, not a counter of its own.
            rejected: c.by_reason.iter().chain([&c.other_reasons]).map(|n| n.load(Ordering::Relaxed)).sum(),
            signatures_checked: c.signatures_checked.load(Ordering::Relaxed),
            token_cache_hits: c.cache_hits.load(Ordering::Relaxed),
            ..Stats::default()
        };
        if let KeySource::Remote(remote) = &self.inner.keys {
            stats.jwks_fetches = remote.counters.fetches.load(Ordering::Relaxed);
            stats.jwks_fetch_failures = remote.counters.failures.load(Ordering::Relaxed);
            stats.key_set_changes = remote.counters.key_changes.load(Ordering::Relaxed);
        }
        stats
    }
}

/// Configures an [`Authority`]. Setters never fail; [`build`](Self::build) checks the
/// whole configuration and names the setting to change when it is contradictory or
/// unsafe.
#[derive(Debug, Default)]
#[must_use]
pub struct AuthorityBuilder {
    issuer: Option<String>,
    audiences: Vec<String>,
    algorithms: Option<Vec<Algorithm>>,
    leeway: Option<Duration>,
    max_lifetime: Option<Duration>,
    max_age: Option<Duration>,
    max_token_size: Option<usize>,
    profile: Profile,
    scope_claims: Option<Vec<ScopeClaim>>,
    allowed_clients: Option<Vec<String>>,
    reject_id_token_claims: Option<bool>,
    require_single_audience: bool,
    realm: Option<String>,
    error_descriptions: Option<bool>,
    resource_metadata: bool,
    public_url: Option<String>,
    jwks: Vec<String>,
    pems: Vec<(Option<String>, String)>,
    secret: Option<(Algorithm, Vec<u8>)>,
    jwks_uri: Option<String>,
    http: HttpLimits,
    cache: CachePolicy,
    token_cache_capacity: Option<usize>,
    token_cache_max_bytes: Option<usize>,
    token_cache_max_age: Option<Duration>,
    clock: Clock,
    tls_roots: Vec<Vec<u8>>,
}

impl AuthorityBuilder {
    /// The issuer identifier: tokens must carry exactly this `iss` (byte for byte, no
    /// normalisation of slashes, case or ports). Required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The API's identifier, which access tokens must carry in `aud`. Required; call it
    /// again to accept several audiences.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Trusts the keys of a JWK set document (`{"keys":[…]}`). Each key is admitted on
    /// its own; bad keys are skipped with a warning.
    pub fn static_jwks(mut self, jwks: impl Into<String>) -> Self {
        self.jwks.push(jwks.into());
        self
    }

    /// Trusts a PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`), usable by tokens with
    /// no `kid`.
    pub fn public_key_pem(mut self, pem: impl Into<String>) -> Self {
        self.pems.push((None, pem.into()));
        self
    }

    /// Trusts a PEM public key for tokens whose header carries this `kid`.
    pub fn public_key_pem_with_kid(mut self, kid: impl Into<String>, pem: impl Into<String>) -> Self {
        self.pems.push((Some(kid.into()), pem.into()));
        self
    }

    /// Shared-secret mode: tokens are HMAC-signed with `secret` using `algorithm`
    /// (HS256, HS384 or HS512). This mode is exclusive: it cannot be combined with public
    /// keys, and only this one algorithm is accepted. The secret must be at least as long
    /// as the hash output (32, 48 or 64 bytes).
    pub fn shared_secret(mut self, algorithm: Algorithm, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some((algorithm, secret.into()));
        self
    }

    /// The accepted signature algorithms. Default: [`Algorithm::ASYMMETRIC`]. HMAC
    /// algorithms are only available through [`shared_secret`](Self::shared_secret).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat` (default 60 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// The longest lifetime accepted: `exp` may be at most this far past `iat` and past
    /// now (default 24 h).
    pub fn max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }

    /// Refuses tokens issued (`iat`) longer ago than this. Off by default.
    pub fn max_token_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// The longest token accepted, in bytes, checked before any decoding (default 8 KiB,
    /// at most 64 KiB).
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.max_token_size = Some(bytes);
        self
    }

    /// Which tokens count as access tokens (default [`Profile::Rfc9068`]).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// The claims scopes are read from, in order of preference; the first one present in
    /// a token is used and claims are never merged. Default: `[ScopeClaim::Scope]`.
    pub fn scope_claims(mut self, claims: impl IntoIterator<Item = ScopeClaim>) -> Self {
        self.scope_claims = Some(claims.into_iter().collect());
        self
    }

    /// Accepts only tokens issued to these clients (`client_id`, or in the compatible
    /// profile `azp`/`cid`).
    pub fn allowed_clients<I, S>(mut self, clients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_clients = Some(clients.into_iter().map(Into::into).collect());
        self
    }

    /// Whether an `at+jwt` token carrying ID-token claims (`nonce`, `at_hash`, `c_hash`)
    /// is refused (default `true`).
    pub fn reject_id_token_claims(mut self, reject: bool) -> Self {
        self.reject_id_token_claims = Some(reject);
        self
    }

    /// Refuses tokens whose `aud` names more than one audience (off by default: RFC 7519
    /// allows an array, and a token for this API among others is accepted). A hardening
    /// for APIs that want tokens minted for them alone.
    pub fn require_single_audience(mut self, require: bool) -> Self {
        self.require_single_audience = require;
        self
    }

    /// Whether every challenge carries `resource_metadata="…"` (RFC 9728 §5.1), and a 401
    /// for a guarded route its `scope` (default `false`). The URL is formed from the
    /// first audience (RFC 9728 §3.1, see [`crate::policy::metadata_url`]), or from
    /// [`AuthorityBuilder::public_url`]; never from the request's `Host`. Serve the
    /// document with [`crate::policy::ProtectedResource::router`].
    pub fn protected_resource_metadata(mut self, enabled: bool) -> Self {
        self.resource_metadata = enabled;
        self
    }

    /// The public URL of the service (for example `https://api.example.test`), from which
    /// the `resource_metadata` URL is formed when the audience is not one (say `api://…`).
    /// Setting it turns [`AuthorityBuilder::protected_resource_metadata`] on.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self.resource_metadata = true;
        self
    }

    /// The `realm` of `WWW-Authenticate` challenges (default: the first audience when it
    /// is header-safe, otherwise `api`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Whether `error_description` is sent with `invalid_token` and `invalid_request`
    /// errors (default `true`). Descriptions come from a fixed table and never echo token
    /// content. `false` also leaves the `reason` code out of every JSON body (it would
    /// tell `unknown_key` from `invalid_signature`); it is still logged and counted.
    pub fn error_descriptions(mut self, send: bool) -> Self {
        self.error_descriptions = Some(send);
        self
    }

    /// How many verified tokens are remembered so that a token seen again is accepted
    /// without a second signature check (default 10 000; `0` turns the cache off). See
    /// the `cache` notes in the crate docs for why this is safe.
    pub fn token_cache_capacity(mut self, entries: usize) -> Self {
        self.token_cache_capacity = Some(entries);
        self
    }

    /// The memory budget of the verified-token cache: the bytes of cached tokens and
    /// their claims, plus 256 per entry (default 32 MiB, at least 64 KiB).
    pub fn token_cache_max_bytes(mut self, bytes: usize) -> Self {
        self.token_cache_max_bytes = Some(bytes);
        self
    }

    /// The longest a verified token is served from the cache before it is verified in
    /// full again (default 5 minutes; never past the token's `exp` either).
    pub fn token_cache_max_age(mut self, max_age: Duration) -> Self {
        self.token_cache_max_age = Some(max_age);
        self
    }

    /// Fetches keys from this JWK set URL instead of discovering it from the issuer.
    /// Must be https (http is allowed for loopback hosts).
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = Some(url.into());
        self
    }

    /// Lets discovery and JWKS fetches reach private, shared, link-local and metadata
    /// addresses (off by default, against SSRF). Loopback is always allowed.
    pub fn allow_private_networks(mut self, allow: bool) -> Self {
        self.http.allow_private_networks = allow;
        self
    }

    /// Timeouts for discovery and JWKS requests: the connection (default 5 s) and the
    /// whole request including the body (default 10 s). Each at most 60 s.
    pub fn http_timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.http.connect_timeout = connect;
        self.http.total_timeout = total;
        self
    }

    /// The largest discovery or JWKS document accepted, enforced while streaming
    /// (default 256 KiB, at most 4 MiB).
    pub fn max_jwks_size(mut self, bytes: usize) -> Self {
        self.http.max_body = bytes;
        self
    }

    /// The minimum interval between JWKS fetches triggered by tokens with an unknown
    /// `kid` or by requests that found no usable keys (default 30 s, at least 1 s, at most
    /// 1 hour).
    pub fn jwks_refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.cache.cooldown = cooldown;
        self
    }

    /// The budget of on-demand JWKS fetches for this issuer (those triggered by unknown
    /// `kid`s or by requests that found no usable keys), on top of the cooldown: a token
    /// bucket of `burst` fetches refilled at `per_hour` (default 60 an hour, burst 5; 1 to
    /// 3600 an hour, burst 1 to 100). Over any period of `h` hours at most
    /// `burst + per_hour × h` such fetches run. Scheduled refreshes (the first load, its
    /// retries, the refresh at 80 % of the TTL) never draw on it, so a rotation is picked
    /// up however many unknown kids arrive; see "Key rotation and outages" in the crate
    /// docs for the bound.
    pub fn jwks_fetch_budget(mut self, per_hour: u32, burst: u32) -> Self {
        self.cache.budget_per_hour = per_hour;
        self.cache.budget_burst = burst;
        self
    }

    /// The bounds a JWKS response's `Cache-Control: max-age` is clamped to (default 5 min
    /// to 24 h; the lower bound at least 1 s, the upper at most 7 days).
    pub fn jwks_ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.cache.min_ttl = min;
        self.cache.max_ttl = max;
        self
    }

    /// How long past its expiry the last good key set keeps being used while the issuer
    /// is unreachable (default 24 h, at most 7 days; zero serves nothing stale). After
    /// that, requests get 503 with `Retry-After`.
    pub fn jwks_max_stale(mut self, max_stale: Duration) -> Self {
        self.cache.max_stale = max_stale;
        self
    }

    /// Judges token times by `clock` instead of the wall clock (feature `testing`): for
    /// tests that need `exp` exactly equal to now, or a token that ages while cached.
    #[cfg(feature = "testing")]
    pub fn clock(mut self, clock: &crate::testing::TestClock) -> Self {
        self.clock = Clock::Test(clock.clone());
        self
    }

    /// Trusts only this CA certificate (DER) for https fetches of discovery and keys,
    /// instead of the system's CAs (feature `testing`): for tests that serve keys over
    /// TLS with a certificate they made. Call it again to trust several.
    #[cfg(feature = "testing")]
    pub fn tls_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.tls_roots.push(der.into());
        self
    }

    /// Builds the authority without waiting for the issuer.
    ///
    /// With static keys (`static_jwks`, `public_key_pem`, `shared_secret`) everything is
    /// ready at once. With keys over HTTP (discovery from the issuer, or `jwks_uri`) the
    /// first fetch starts in the background: until it succeeds, requests get 503 with
    /// `Retry-After`, never an accept. Must then be called inside a Tokio runtime. Use
    /// [`connect`](Self::connect) to fail at startup instead when the issuer is
    /// unreachable.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the setting to change when the configuration is missing
    /// something, contradictory or unsafe.
    pub fn build(self) -> Result<Authority, ConfigError> {
        let (authority, remote) = self.assemble()?;
        if let Some(remote) = remote {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(ConfigError::new(
                    "keys",
                    "keys fetched over HTTP need a Tokio runtime: call build() or connect().await inside the runtime",
                ));
            }
            remote.spawn_maintenance();
        }
        Ok(authority)
    }

    /// Builds the authority and, for keys over HTTP, runs discovery and the first JWKS
    /// fetch now, failing if they do not succeed.
    ///
    /// # Errors
    /// As [`build`](Self::build), and when discovery or the first JWKS fetch fails (the
    /// error names the `issuer` or `jwks_uri` setting and says what went wrong).
    pub async fn connect(self) -> Result<Authority, ConfigError> {
        let setting = if self.jwks_uri.is_some() { "jwks_uri" } else { "issuer" };
        let (authority, remote) = self.assemble()?;
        if let Some(remote) = remote {
            remote
                .fetch_now()
                .await
                .map_err(|error| ConfigError::new(setting, format!("could not load the issuer's keys: {error}")))?;
            remote.spawn_maintenance();
        }
        Ok(authority)
    }

    fn assemble(self) -> Result<(Authority, Option<Arc<RemoteKeys>>), ConfigError> {
        crypto_self_test()?;
        let issuer = match self.issuer {
            None => return Err(ConfigError::new("issuer", "no issuer set: call .issuer(\"https://your-issuer/\")")),
            Some(i) if i.trim().is_empty() || i.trim() != i => {
                return Err(ConfigError::new("issuer", "the issuer must be non-empty, without surrounding whitespace"));
            }
            Some(i) => i,
        };
        if self.audiences.is_empty() {
            return Err(ConfigError::new(
                "audience",
                "no audience set: call .audience(\"https://your-api/\") with the API identifier your issuer puts in `aud`",
            ));
        }
        for aud in &self.audiences {
            if aud.is_empty() || aud.chars().any(char::is_whitespace) {
                return Err(ConfigError::new("audience", "an audience must be non-empty and contain no whitespace"));
            }
        }

        let leeway = self.leeway.unwrap_or(DEFAULT_LEEWAY);
        if leeway > MAX_LEEWAY {
            return Err(ConfigError::new("leeway", "the leeway may be at most 300 seconds"));
        }
        let max_lifetime = self.max_lifetime.unwrap_or(DEFAULT_MAX_LIFETIME);
        if max_lifetime.is_zero() {
            return Err(ConfigError::new("max_token_lifetime", "the maximum token lifetime must be positive"));
        }
        if self.max_age.is_some_and(|a| a.is_zero()) {
            return Err(ConfigError::new("max_token_age", "the maximum token age must be positive"));
        }
        let max_token_size = self.max_token_size.unwrap_or(DEFAULT_MAX_TOKEN_SIZE);
        if !(256..=MAX_TOKEN_SIZE_LIMIT).contains(&max_token_size) {
            return Err(ConfigError::new(
                "max_token_size",
                "the maximum token size must be between 256 bytes and 64 KiB",
            ));
        }
        let token_cache_max_age = self.token_cache_max_age.unwrap_or(DEFAULT_TOKEN_CACHE_MAX_AGE);
        if token_cache_max_age.is_zero()
            || self.token_cache_capacity.is_some_and(|c| c > 1_000_000)
            || self.token_cache_max_bytes.is_some_and(|b| b < 64 * 1024)
        {
            return Err(ConfigError::new(
                "token_cache",
                "the token cache needs a positive max age, at most 1 000 000 entries (capacity 0 turns it off) and at least 64 KiB",
            ));
        }
        let scope_claims = self.scope_claims.unwrap_or_else(|| vec![ScopeClaim::Scope]);
        if scope_claims.is_empty() {
            return Err(ConfigError::new(
                "scope_claims",
                "name at least one scope claim (ScopeClaim::Scope is the standard)",
            ));
        }
        if self.allowed_clients.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::new("allowed_clients", "an empty client allowlist would refuse every token"));
        }

        let (algorithms, keys) = match self.secret {
            Some((alg, secret)) => {
                if !self.jwks.is_empty() || !self.pems.is_empty() {
                    return Err(ConfigError::new(
                        "shared_secret",
                        "shared-secret (HS*) mode cannot be combined with public keys: use one or the other",
                    ));
                }
                if !alg.is_symmetric() {
                    return Err(ConfigError::new(
                        "shared_secret",
                        "the shared-secret algorithm must be HS256, HS384 or HS512",
                    ));
                }
                if self.algorithms.as_ref().is_some_and(|a| a.as_slice() != [alg]) {
                    return Err(ConfigError::new(
                        "algorithms",
                        "in shared-secret mode the only accepted algorithm is the secret's own; remove .algorithms(...)",
                    ));
                }
                if secret.len() < alg.min_secret_len() {
                    return Err(ConfigError::new(
                        "shared_secret",
                        format!("a {alg} secret must be at least {} bytes of random data", alg.min_secret_len()),
                    ));
                }
                if self.jwks_uri.is_some() {
                    return Err(ConfigError::new("jwks_uri", "a jwks_uri cannot be combined with shared-secret mode"));
                }
                let key = keys::hmac_key(&secret, alg, None);
                (vec![alg], Keys::Fixed(KeySet::from_keys(vec![key])))
            }
            None => {
                let algorithms = self.algorithms.unwrap_or_else(|| Algorithm::ASYMMETRIC.to_vec());
                if algorithms.is_empty() {
                    return Err(ConfigError::new("algorithms", "allow at least one algorithm"));
                }
                if let Some(alg) = algorithms.iter().find(|a| a.is_symmetric()) {
                    return Err(ConfigError::new(
                        "algorithms",
                        format!("{alg} needs a shared secret: use .shared_secret({alg}, secret) instead of listing it"),
                    ));
                }
                if self.jwks.is_empty() && self.pems.is_empty() {
                    let remote = remote_keys(
                        &issuer,
                        self.jwks_uri.as_deref(),
                        &algorithms,
                        self.http,
                        self.cache,
                        &self.tls_roots,
                    )?;
                    (algorithms, Keys::Remote(remote))
                } else {
                    if self.jwks_uri.is_some() {
                        return Err(ConfigError::new(
                            "jwks_uri",
                            "a jwks_uri cannot be combined with static keys (static_jwks, public_key_pem): use one or the other",
                        ));
                    }
                    let mut admitted: Vec<VerifyingKey> = Vec::new();
                    for doc in &self.jwks {
                        let set = KeySet::from_jwks(doc.as_bytes(), &algorithms)
                            .map_err(|e| ConfigError::new("static_jwks", e.to_string()))?;
                        for (index, why) in &set.rejected {
                            tracing::warn!(target: "scopegate", index, reason = why.code(), "JWK not admitted");
                        }
                        admitted.extend(set.into_keys());
                    }
                    for (kid, pem) in &self.pems {
                        let key = keys::admit_pem(pem, kid.as_deref(), &algorithms).map_err(|e| {
                            ConfigError::new("public_key_pem", format!("the PEM key was not admitted: {e}"))
                        })?;
                        admitted.push(key);
                    }
                    if admitted.len() > keys::MAX_KEYS {
                        return Err(ConfigError::new("static_jwks", "more than 100 keys"));
                    }
                    (algorithms, Keys::Fixed(KeySet::from_keys(admitted)))
                }
            }
        };

        let realm = match self.realm {
            Some(realm) if is_quoted_string_safe(&realm) && !realm.is_empty() => realm,
            Some(_) => {
                return Err(ConfigError::new("realm", "the realm must be printable ASCII without `\"` or `\\`"));
            }
            None => {
                self.audiences.first().filter(|a| is_quoted_string_safe(a)).cloned().unwrap_or_else(|| "api".to_owned())
            }
        };

        let resource_metadata = if self.resource_metadata {
            let (setting, base) = match &self.public_url {
                Some(url) => ("public_url", url.as_str()),
                None => ("audience", self.audiences.first().map_or("", String::as_str)),
            };
            match crate::policy::metadata_url(base).filter(|url| is_quoted_string_safe(url)) {
                Some(url) => Some(url.into()),
                None => {
                    return Err(ConfigError::new(
                        setting,
                        format!(
                            "the resource metadata URL is formed from an http(s) URL with a host, no fragment and no `\"`, `\\` or whitespace; `{base}` is not one: set `public_url`"
                        ),
                    ));
                }
            }
        } else {
            None
        };

        if let Some(clients) = &self.allowed_clients
            && let Some(aud) = self.audiences.iter().find(|a| clients.contains(a))
        {
            tracing::warn!(
                target: "scopegate",
                audience = %aud,
                "the API audience equals an allowed client_id: ID tokens for that client would carry a matching `aud`"
            );
        }
        if self.profile == Profile::Compatible {
            tracing::warn!(
                target: "scopegate",
                issuer = %issuer,
                "compatible token profile enabled: tokens typed `JWT` or untyped are accepted when they look like access tokens (RFC 9068 strict mode is off)"
            );
        }

        let config = Config {
            issuer: issuer.into(),
            audiences: self.audiences.into_iter().map(Into::into).collect(),
            algorithms,
            leeway,
            max_lifetime,
            max_age: self.max_age,
            max_token_size,
            profile: self.profile,
            scope_claims,
            allowed_clients: self.allowed_clients.map(|c| c.into_iter().map(Into::into).collect()),
            reject_id_token_claims: self.reject_id_token_claims.unwrap_or(true),
            require_single_audience: self.require_single_audience,
            challenge: ChallengeConfig {
                realm: realm.into(),
                describe: self.error_descriptions.unwrap_or(true),
                resource_metadata,
            },
            clock: self.clock,
        };
        let (source, remote) = match keys {
            Keys::Fixed(set) => (KeySource::fixed(set), None),
            Keys::Remote(remote) => (KeySource::Remote(Arc::clone(&remote)), Some(remote)),
        };
        let token_cache = match self.token_cache_capacity.unwrap_or(DEFAULT_TOKEN_CACHE_CAPACITY) {
            0 => None,
            capacity => Some(TokenCache::new(
                capacity,
                self.token_cache_max_bytes.unwrap_or(DEFAULT_TOKEN_CACHE_MAX_BYTES),
                token_cache_max_age,
            )),
        };
        let authority =
            Authority { inner: Arc::new(Inner { config, keys: source, stats: Counters::default(), token_cache }) };
        Ok((authority, remote))
    }
}

enum Keys {
    Fixed(KeySet),
    Remote(Arc<RemoteKeys>),
}

/// Checks the remote-key settings and creates the (empty) JWKS cache.
fn remote_keys(
    issuer: &str,
    jwks_uri: Option<&str>,
    algorithms: &[Algorithm],
    http: HttpLimits,
    cache: CachePolicy,
    tls_roots: &[Vec<u8>],
) -> Result<Arc<RemoteKeys>, ConfigError> {
    let max_timeout = Duration::from_secs(60);
    if http.connect_timeout.is_zero()
        || http.total_timeout.is_zero()
        || http.connect_timeout > max_timeout
        || http.total_timeout > max_timeout
    {
        return Err(ConfigError::new("http_timeouts", "timeouts must be positive and at most 60 seconds"));
    }
    if !(1024..=4 * 1024 * 1024).contains(&http.max_body) {
        return Err(ConfigError::new("max_jwks_size", "the JWKS size limit must be between 1 KiB and 4 MiB"));
    }
    if cache.cooldown < Duration::from_secs(1) || cache.cooldown > MAX_REFRESH_COOLDOWN {
        return Err(ConfigError::new(
            "jwks_refresh_cooldown",
            "the refresh cooldown must be at least 1 second and at most 1 hour",
        ));
    }
    if cache.min_ttl < Duration::from_secs(1) || cache.min_ttl > cache.max_ttl || cache.max_ttl > MAX_JWKS_DURATION {
        return Err(ConfigError::new(
            "jwks_ttl_bounds",
            "the TTL bounds need 1 s <= min <= max, with max at most 7 days",
        ));
    }
    if cache.max_stale > MAX_JWKS_DURATION {
        return Err(ConfigError::new("jwks_max_stale", "the stale-serving window may be at most 7 days"));
    }
    if !(1..=MAX_FETCH_BUDGET_PER_HOUR).contains(&cache.budget_per_hour)
        || !(1..=MAX_FETCH_BUDGET_BURST).contains(&cache.budget_burst)
    {
        return Err(ConfigError::new(
            "jwks_fetch_budget",
            "the fetch budget needs 1 to 3600 fetches an hour and a burst of 1 to 100",
        ));
    }
    let location = match jwks_uri {
        Some(url) => {
            Location::Fixed(check_url(url, http.allow_private_networks, true).map_err(|e| ConfigError::new("jwks_uri", e))?)
        }
        None => Location::Discover(check_url(issuer, http.allow_private_networks, true).map_err(|e| {
            ConfigError::new(
                "issuer",
                format!(
                    "keys are discovered from the issuer URL, but {e}; or give keys with .jwks_uri(url) or .static_jwks(json)"
                ),
            )
        })?),
    };
    let client = IssuerClient::new(http, tls_roots)?;
    Ok(RemoteKeys::new(client, issuer.into(), location, algorithms.to_vec(), http.allow_private_networks, cache))
}

/// A host name given with or without a scheme or trailing slash.
fn bare_host(domain: &str) -> &str {
    domain.trim_start_matches("https://").trim_end_matches('/')
}

/// RFC 9110 quoted-string content without escapes: visible ASCII and SP, minus `"` and `\`.
fn is_quoted_string_safe(value: &str) -> bool {
    value.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// The outcome of the crypto self-test, once it has run.
static SELF_TEST: OnceLock<bool> = OnceLock::new();

/// Proves once per process that the crypto backend verifies a good signature and refuses
/// a bad one (security spec case 179).
fn crypto_self_test() -> Result<(), ConfigError> {
    let ok = *SELF_TEST.get_or_init(|| {
        use aws_lc_rs::hmac;
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"scopegate crypto self-test key, 32+ bytes");
        let tag = hmac::sign(&key, b"message");
        let good = hmac::verify(&key, b"message", tag.as_ref()).is_ok();
        let bad = hmac::verify(&key, b"messagf", tag.as_ref()).is_err();
        let ed = ed25519_self_test();
        good && bad && ed
    });
    if ok { Ok(()) } else { Err(ConfigError::new("crypto", "the aws-lc-rs crypto backend failed its self-test")) }
}

/// Whether the crypto self-test has run in this process, and passed (feature `testing`):
/// `None` until the first authority is built. Lets a test see that building one ran it.
#[cfg(feature = "testing")]
#[doc(hidden)]
#[must_use]
pub fn crypto_self_test_result() -> Option<bool> {
    SELF_TEST.get().copied()
}

fn ed25519_self_test() -> bool {
    use aws_lc_rs::signature::{ED25519, ParsedPublicKey};
    // RFC 8032 §7.1, test 1: the empty message.
    const PUBLIC: [u8; 32] = [
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1,
        0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
    ];
    const SIGNATURE: [u8; 64] = [
        0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72, 0x90, 0x86, 0xe2, 0xcc, 0x80, 0x6e, 0x82, 0x8a, 0x84, 0x87,
        0x7f, 0x1e, 0xb8, 0xe5, 0xd9, 0x74, 0xd8, 0x73, 0xe0, 0x65, 0x22, 0x49, 0x01, 0x55, 0x5f, 0xb8, 0x82, 0x15,
        0x90, 0xa3, 0x3b, 0xac, 0xc6, 0x1e, 0x39, 0x70, 0x1c, 0xf9, 0xb4, 0x6b, 0xd2, 0x5b, 0xf5, 0xf0, 0x59, 0x5b,
        0xbe, 0x24, 0x65, 0x51, 0x41, 0x43, 0x8e, 0x7a, 0x10, 0x0b,
    ];
    ParsedPublicKey::new(&ED25519, PUBLIC)
        .is_ok_and(|key| key.verify_sig(b"", &SIGNATURE).is_ok() && key.verify_sig(b"x", &SIGNATURE).is_err())
}
