//! [`AuthorityBuilder`]: the setters, and `build`/`connect`, which check the whole
//! configuration (each sub-policy its own bounds: [`HttpLimits`], [`CachePolicy`], the
//! userinfo, introspection and DPoP settings) and assemble the [`Authority`].

use std::{sync::Arc, time::Duration};

use super::{Authority, Counters, Inner, self_test::crypto_self_test};
use crate::{
    algorithm::Algorithm,
    cache::{DEFAULT_TOKEN_CACHE_CAPACITY, DEFAULT_TOKEN_CACHE_MAX_AGE, DEFAULT_TOKEN_CACHE_MAX_BYTES, TokenCache},
    client_assertion::{AssertionSigner, KeyText},
    clock::Clock,
    config::{
        Allowlist, Config, ConfigError, DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME, DEFAULT_MAX_TOKEN_SIZE, FromEnv,
        MAX_LEEWAY, MAX_TOKEN_SIZE_LIMIT, Profile, ScopeClaim, check_audience,
    },
    http::{HttpLimits, IssuerClient, check_url},
    introspection::{self, ClientAuth, Endpoint, Introspector, MAX_INTROSPECTION_CACHE_TTL},
    jwks::{CachePolicy, Location, RemoteKeys},
    keys::{self, KeySet, VerifyingKey},
    rejection::{ChallengeConfig, Rejection, RejectionHook},
    source::KeySource,
};

/// The shared secret's bytes, which the builder's `Debug` never prints.
struct SecretBytes(Vec<u8>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} secret bytes>", self.0.len())
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
    rejection_hook: Option<RejectionHook>,
    public_url: Option<String>,
    jwks: Vec<String>,
    pems: Vec<(Option<String>, String)>,
    secret: Option<(Algorithm, SecretBytes)>,
    jwks_uri: Option<String>,
    http: HttpLimits,
    cache: CachePolicy,
    token_cache_capacity: Option<usize>,
    token_cache_max_bytes: Option<usize>,
    token_cache_max_age: Option<Duration>,
    clock: Clock,
    tls_roots: Vec<Vec<u8>>,
    userinfo: crate::userinfo_client::Settings,
    introspection: introspection::Settings,
    also: Vec<AuthorityBuilder>,
    // Set by the presets only.
    pub(super) tenants: Option<Vec<String>>,
    pub(super) require_token_use: bool,
    pub(super) appid_names_client: bool,
    dpop: crate::dpop::Settings,
    /// The settings `from_env` read from a variable, so that an error about one names the
    /// variable; the setting's own method, called afterwards, clears its mark.
    pub(crate) from_env: FromEnv,
}

impl AuthorityBuilder {
    /// The issuer identifier: tokens must carry exactly this `iss` (byte for byte, no
    /// normalisation of slashes, case or ports). Required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self.from_env.issuer = false;
        self
    }

    /// Trusts another issuer as well, configured in full by its own builder: its issuer,
    /// keys (discovery, `jwks_uri` or static keys), audiences, profile, scope claims,
    /// allowed clients and every other token policy. Call it once per issuer.
    ///
    /// A token is routed by its `iss`, read from the payload before any key work, to
    /// exactly one issuer's keys and policy: a key of one issuer never verifies another's
    /// token, and a token naming no trusted issuer is refused `invalid_issuer` without a
    /// key lookup or a fetch (no URL is ever derived from a token). What concerns the API
    /// rather than an issuer comes from this builder alone and is ignored on the other:
    /// the challenge (`realm`, `error_descriptions`, resource metadata) and the token-size
    /// cap checked before routing. An error body set with
    /// [`on_rejection`](Self::on_rejection) on an added builder is refused at build (this
    /// builder's renders every issuer's refusals). Each issuer keeps its own key and token caches; an
    /// opaque token (no `iss` to route by) goes to this builder's introspection, so an
    /// issuer added here may introspect only JWTs ([`introspect_jwts`](Self::introspect_jwts)).
    /// [`Authority::issuer`] is this builder's issuer, [`Authority::issuers`] lists all.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use scopegate::Authority;
    ///
    /// # let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig",
    /// #              "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    /// // Customers sign in with Auth0, staff with Entra ID (keys given here so that the
    /// // example needs no network; without them each issuer's keys are discovered).
    /// let authority = Authority::auth0("customers.eu.auth0.com", "https://api.example.test")
    ///     .static_jwks(jwks)
    ///     .also_trust(Authority::entra("7d1a9b62-0d54-4a4c-9b1e-3f5c2a8e6b10", "api://example").static_jwks(jwks))
    ///     .build()?;
    /// assert_eq!(
    ///     authority.issuers(),
    ///     ["https://customers.eu.auth0.com/", "https://login.microsoftonline.com/7d1a9b62-0d54-4a4c-9b1e-3f5c2a8e6b10/v2.0"]
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub fn also_trust(mut self, issuer: AuthorityBuilder) -> Self {
        self.also.push(issuer);
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
        self.secret = Some((algorithm, SecretBytes(secret.into())));
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

    /// Renders every refusal of this authority (by a `#[requires_scope]` guard,
    /// [`AccessToken`](crate::AccessToken), [`UserInfo`](crate::UserInfo) and the
    /// [`RequireAccessToken`](crate::layer::RequireAccessToken) layer) with the
    /// application's own error body, for example its JSON error envelope. `render` gets
    /// the [`Rejection`] ([`status`](Rejection::status), [`error`](Rejection::error),
    /// [`reason`](Rejection::reason), [`description`](Rejection::description),
    /// [`required_scope`](Rejection::required_scope)) and returns a response whose body
    /// and headers are kept; its status is replaced by the rejection's, and
    /// `WWW-Authenticate`, `Retry-After` and `Cache-Control: no-store` are always
    /// scopegate's, so clients still get the RFC 6750 challenge. See the crate docs'
    /// "Your own error body".
    pub fn on_rejection<F, R>(mut self, render: F) -> Self
    where
        F: Fn(&Rejection) -> R + Send + Sync + 'static,
        R: axum::response::IntoResponse,
    {
        self.rejection_hook = Some(RejectionHook(Arc::new(move |rejection| render(rejection).into_response())));
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
        self.from_env.jwks_uri = false;
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

    /// The issuer's OpenID Connect userinfo endpoint, for the [`UserInfo`](crate::UserInfo)
    /// extractor (default: the `userinfo_endpoint` of the discovery document, when keys
    /// are discovered). The same URL policy as [`jwks_uri`](Self::jwks_uri); the same
    /// timeouts and body cap as key fetches.
    pub fn userinfo_endpoint(mut self, url: impl Into<String>) -> Self {
        self.userinfo.endpoint = Some(url.into());
        self
    }

    /// The longest a userinfo answer is reused for the same token (default 60 s, at most
    /// 1 hour; never past the token's `exp` either).
    pub fn userinfo_cache_ttl(mut self, ttl: Duration) -> Self {
        self.userinfo.ttl = Some(ttl);
        self
    }

    /// How many userinfo answers are kept (default 1 000; `0` turns the cache off, while
    /// concurrent requests with one token still share one call).
    pub fn userinfo_cache_capacity(mut self, entries: usize) -> Self {
        self.userinfo.capacity = Some(entries);
        self
    }

    /// The memory budget of the userinfo cache: tokens and answer texts, plus 256 bytes
    /// per entry (default 4 MiB, at least 64 KiB).
    pub fn userinfo_cache_max_bytes(mut self, bytes: usize) -> Self {
        self.userinfo.max_bytes = Some(bytes);
        self
    }

    /// Accepts opaque access tokens through RFC 7662 introspection at the issuer's
    /// `introspection_endpoint` (from discovery, or [`introspection_endpoint`](Self::introspection_endpoint)),
    /// authenticating as this client (the API's own credentials at the issuer). A compact
    /// JWS is still verified locally (see [`introspect_jwts`](Self::introspect_jwts));
    /// every other token is introspected. See "Opaque tokens" in the crate docs.
    pub fn introspection(mut self, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        self.introspection.credentials = Some((client_id.into(), client_secret.into()));
        self
    }

    /// The introspection endpoint, instead of the issuer's discovered one. Must be https
    /// (http is allowed for loopback hosts).
    pub fn introspection_endpoint(mut self, url: impl Into<String>) -> Self {
        self.introspection.endpoint = Some(url.into());
        self
    }

    /// How the API authenticates to the introspection endpoint (default
    /// [`ClientAuth::ClientSecretBasic`]).
    pub fn introspection_client_auth(mut self, auth: ClientAuth) -> Self {
        self.introspection.client_auth = auth;
        self
    }

    /// Sends JWTs to the introspection endpoint too, *instead of* verifying them locally
    /// (off by default). For APIs that must see a revocation at once: a JWT's signature
    /// stays valid until `exp`, only the issuer knows it was revoked; verifying it locally
    /// first would add nothing the issuer's answer does not already say.
    pub fn introspect_jwts(mut self, introspect: bool) -> Self {
        self.introspection.introspect_jwts = introspect;
        self
    }

    /// Asks the introspection endpoint for signed answers (RFC 9701: a JWT of type
    /// `token-introspection+jwt`, signed with the issuer's keys, naming this API's
    /// introspection client id in `aud`) and accepts nothing else (off by default). For
    /// an issuer that signs its answers, so that a proxy or a compromised endpoint host
    /// cannot forge `active: true`; a plain JSON answer is then refused like a broken one
    /// (503). Encrypted answers (JWE) are not supported.
    pub fn introspection_jwt_response(mut self, signed: bool) -> Self {
        self.introspection.jwt_response = signed;
        self
    }

    /// Accepts an introspection answer that carries no `aud` (off by default). An issuer
    /// serving several APIs answers `active: true` for a token minted for any of them;
    /// without `aud` this API cannot tell its own tokens from the others', so turn this on
    /// only for an issuer whose tokens are all meant for this API.
    pub fn introspection_accepts_missing_audience(mut self, accept: bool) -> Self {
        self.introspection.accepts_missing_audience = accept;
        self
    }

    /// How long a positive introspection answer is reused (default 60 s, at most 1 h; never
    /// past the token's `exp`). A revoked token keeps working for at most this long.
    pub fn introspection_cache_ttl(mut self, ttl: Duration) -> Self {
        self.introspection.cache_ttl = Some(ttl);
        self
    }

    /// How long a negative introspection answer (inactive, refused) is reused (default
    /// 10 s, at most the positive TTL).
    pub fn introspection_negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.introspection.negative_ttl = Some(ttl);
        self
    }

    /// How many introspection answers are cached (default 10 000; `0` turns the cache
    /// off) and their memory budget (default 16 MiB, at least 64 KiB).
    pub fn introspection_cache_size(mut self, entries: usize, max_bytes: usize) -> Self {
        self.introspection.cache_capacity = Some(entries);
        self.introspection.cache_max_bytes = Some(max_bytes);
        self
    }

    /// Accepts DPoP-bound access tokens (RFC 9449): `Authorization: DPoP <token>` with a
    /// `DPoP` proof, checked as described in [`crate::dpop`]. Off by default; with
    /// [`DpopPolicy::Allowed`](crate::dpop::DpopPolicy::Allowed) bearer tokens are still
    /// accepted (a bound token only with its proof), with
    /// [`DpopPolicy::Required`](crate::dpop::DpopPolicy::Required) only DPoP is. A proof's
    /// `htu` is compared with [`public_url`](Self::public_url) (behind a proxy), or else
    /// the first audience, which must then be an http(s) URL.
    pub fn dpop(mut self, policy: crate::dpop::DpopPolicy) -> Self {
        self.dpop.policy = Some(policy);
        self
    }

    /// Where the `jti`s of accepted proofs are remembered (default: a
    /// [`MemoryReplayStore`](crate::dpop::MemoryReplayStore) of this process). With several
    /// replicas, give them one shared store, such as
    /// `RedisReplayStore` (feature `redis`), so a proof replayed on another replica is
    /// refused.
    pub fn dpop_replay_store(mut self, store: Arc<dyn crate::dpop::ReplayStore>) -> Self {
        self.dpop.store = Some(store);
        self
    }

    /// How old a proof's `iat` may be (default 60 s, at most 300 s); the
    /// [`leeway`](Self::leeway) is added, and is also how far in the future it may be.
    pub fn dpop_proof_max_age(mut self, max_age: Duration) -> Self {
        self.dpop.max_age = Some(max_age);
        self
    }

    /// The algorithms accepted for proofs (default [`Algorithm::ASYMMETRIC`] and
    /// [`Algorithm::Ed25519`], RFC 9864's name for `EdDSA` with an Ed25519 key; HMAC never:
    /// a proof is signed with the client's private key). Also the challenge's `algs`.
    pub fn dpop_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.dpop.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Server-provided DPoP nonces (RFC 9449 §9): off by default. When on, every proof
    /// must carry a recent `nonce`; one without, or with a stale one, is refused with 401
    /// `error="use_dpop_nonce"` and the current nonce in the `DPoP-Nonce` header, which
    /// every 401 of this authority carries. Nonces rotate ([`DpopNonce::rotation`](crate::dpop::DpopNonce::rotation));
    /// replicas agree when built with one [`DpopNonce::shared_secret`](crate::dpop::DpopNonce::shared_secret).
    /// See [`DpopNonce`](crate::dpop::DpopNonce).
    pub fn dpop_nonce(mut self, nonce: crate::dpop::DpopNonce) -> Self {
        self.dpop.nonce = Some(nonce);
        self
    }

    /// Judges token times by `clock` instead of the wall clock (feature `testing`): for
    /// tests that need `exp` exactly equal to now, or a token that ages while cached.
    #[cfg(feature = "testing")]
    pub fn clock(mut self, clock: &crate::clock::TestClock) -> Self {
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

    /// Authenticates to the introspection endpoint with `private_key_jwt` (RFC 7523 §2.2,
    /// OpenID Connect Core §9) instead of a client secret, and enables introspection like
    /// [`introspection`](Self::introspection): each request carries a fresh JWT signed
    /// with `pem`, with `iss` = `sub` = `client_id`, `aud` = the issuer identifier, a random
    /// `jti`, `iat` and an `exp` one minute later, and names `kid` in its header (the key
    /// id under which the issuer knows the public key: the client's registered JWKS).
    ///
    /// `pem` is an unencrypted private key: `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` or
    /// `EC PRIVATE KEY`; an RSA key signs with RS256, a P-256 key with ES256. It is read at
    /// [`build`](Self::build), which names `introspection_private_key` if it cannot be used.
    pub fn introspection_private_key_pem(
        self,
        client_id: impl Into<String>,
        kid: impl Into<String>,
        pem: impl Into<String>,
    ) -> Self {
        self.private_key_jwt(client_id.into(), kid.into(), KeyText::Pem(pem.into()))
    }

    /// [`introspection_private_key_pem`](Self::introspection_private_key_pem) with the
    /// key as a private JWK (`kty` `RSA` with `n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`;
    /// or `EC`, `crv` `P-256`, with `x`, `y`, `d`).
    pub fn introspection_private_key_jwk(
        self,
        client_id: impl Into<String>,
        kid: impl Into<String>,
        jwk: impl Into<String>,
    ) -> Self {
        self.private_key_jwt(client_id.into(), kid.into(), KeyText::Jwk(jwk.into()))
    }

    fn private_key_jwt(mut self, client_id: String, kid: String, key: KeyText) -> Self {
        self.introspection.credentials = Some((client_id, String::new()));
        self.introspection.client_auth = ClientAuth::PrivateKeyJwt;
        self.introspection.signing_key = Some((kid, key));
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
        let (authority, members) = self.assemble_all()?;
        let remotes: Vec<_> = members.into_iter().filter_map(|m| m.remote).collect();
        if !remotes.is_empty() && tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::new(
                "keys",
                "keys fetched over HTTP need a Tokio runtime: call build() or connect().await inside the runtime",
            ));
        }
        for remote in remotes {
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
        let (authority, members) = self.assemble_all()?;
        for member in &members {
            let (Some(remote), setting) = (&member.remote, member.setting) else { continue };
            if let Err(error) = remote.fetch_now().await {
                let at = remote.last_failed_url().map(|url| format!(" (GET {url})")).unwrap_or_default();
                return Err(if error.is_unreachable() {
                    ConfigError::unreachable(setting, format!("could not load the issuer's keys{at}: {error}"))
                } else {
                    ConfigError::new(setting, format!("could not load the issuer's keys{at}: {error}"))
                }
                .for_issuer(member.authority.issuer(), member.added));
            }
            if member.authority.inner.introspection.as_ref().is_some_and(Introspector::discovers) {
                let metadata = remote.metadata().await.map_err(|error| {
                    ConfigError::new(
                        "introspection_endpoint",
                        format!("the issuer's metadata could not be read: {error}"),
                    )
                })?;
                if metadata.introspection_endpoint.is_none() {
                    return Err(ConfigError::new(
                        "introspection_endpoint",
                        "the issuer's discovery document advertises no usable introspection_endpoint: give it with .introspection_endpoint(url)",
                    ));
                }
            }
        }
        for remote in members.into_iter().filter_map(|m| m.remote) {
            remote.spawn_maintenance();
        }
        Ok(authority)
    }

    /// Assembles this issuer and each one of [`also_trust`](Self::also_trust) (flattened:
    /// an added builder's own additions are added too), returning every issuer's key
    /// cache, this builder's first.
    fn assemble_all(mut self) -> Result<(Authority, Vec<Member>), ConfigError> {
        let mut pending = std::mem::take(&mut self.also);
        let mut index = 0;
        while let Some(builder) = pending.get_mut(index) {
            let nested = std::mem::take(&mut builder.also);
            pending.extend(nested);
            index += 1;
        }
        let mut members = Vec::with_capacity(pending.len() + 1);
        for builder in pending {
            let issuer = builder.issuer.clone().unwrap_or_default();
            if builder.introspection.credentials.is_some() && !builder.introspection.introspect_jwts {
                return Err(ConfigError::new(
                    "also_trust",
                    "an opaque token names no issuer, so only the first issuer's introspection sees them: an issuer added with also_trust may introspect JWTs only (.introspect_jwts(true))",
                )
                .for_issuer(&issuer, true));
            }
            if builder.rejection_hook.is_some() {
                return Err(ConfigError::new(
                    "on_rejection",
                    "the error body is the API's, not an issuer's: set .on_rejection(...) on the first builder, which renders the refusals of every issuer",
                )
                .for_issuer(&issuer, true));
            }
            let setting = builder.from_env.name(if builder.from_env.issuer { "issuer" } else { "also_trust" });
            let (authority, remote) = builder.assemble(Vec::new()).map_err(|e| e.for_issuer(&issuer, true))?;
            members.push(Member { authority, remote, setting, added: true });
        }
        let setting = self.from_env.name(if self.jwks_uri.is_some() { "jwks_uri" } else { "issuer" });
        let (authority, remote) = self.assemble(members.iter().map(|m| m.authority.clone()).collect())?;
        let issuers = authority.issuers();
        if let Some(twice) = issuers.iter().enumerate().find_map(|(i, iss)| issuers[..i].contains(iss).then_some(iss)) {
            return Err(ConfigError::new(
                "also_trust",
                format!("the issuer `{twice}` is trusted twice: each issuer is configured once"),
            ));
        }
        members.insert(0, Member { authority: authority.clone(), remote, setting, added: false });
        Ok((authority, members))
    }

    /// Checks this issuer's settings and assembles its authority, trusting `also` (the
    /// issuers added with [`also_trust`](Self::also_trust), already assembled) as well;
    /// returns its key cache too when keys come over HTTP. The checks run in a fixed
    /// order, so a configuration with several mistakes always names the same one first.
    /// An error about a value read from the environment names its variable.
    fn assemble(self, also: Vec<Authority>) -> Result<(Authority, Option<Arc<RemoteKeys>>), ConfigError> {
        let from_env = self.from_env;
        self.assemble_checked(also).map_err(|error| from_env.rename(error))
    }

    /// [`assemble`](Self::assemble), its errors named as the builder names its settings.
    fn assemble_checked(self, also: Vec<Authority>) -> Result<(Authority, Option<Arc<RemoteKeys>>), ConfigError> {
        crypto_self_test()?;
        crate::metrics::describe();
        let issuer = self.checked_issuer()?;
        self.check_audiences()?;
        let limits = self.token_limits()?;
        let token_cache = self.token_cache()?;
        self.check_claim_policy()?;
        let (algorithms, keys) = self.keys(&issuer)?;
        let realm = self.challenge_realm()?;
        let resource_metadata = self.resource_metadata_url()?;
        self.warn_about_lenient_settings(&issuer);

        let dpop =
            self.dpop.build(limits.leeway, self.public_url.as_deref(), self.audiences.first().map(String::as_str))?;
        let (dpop, dpop_challenge) = match dpop {
            Some((dpop, challenge)) => (Some(dpop), Some(Arc::new(challenge))),
            None => (None, None),
        };
        let config = Config {
            issuer: issuer.into(),
            audiences: self.audiences.into_iter().map(Into::into).collect(),
            algorithms,
            leeway: limits.leeway,
            max_lifetime: limits.max_lifetime,
            max_age: self.max_age,
            max_token_size: limits.max_token_size,
            profile: self.profile,
            scope_claims: self.scope_claims.unwrap_or_else(|| vec![ScopeClaim::Scope]),
            allowed_clients: self.allowed_clients.map(|c| c.into_iter().map(Into::into).collect()),
            reject_id_token_claims: self.reject_id_token_claims.unwrap_or(true),
            require_single_audience: self.require_single_audience,
            challenge: Arc::new(ChallengeConfig {
                realm: realm.into(),
                describe: self.error_descriptions.unwrap_or(true),
                resource_metadata,
                hook: self.rejection_hook,
                dpop: dpop_challenge,
            }),
            tenants: self.tenants.map(|t| t.into_iter().map(Into::into).collect()),
            require_token_use: self.require_token_use,
            appid_names_client: self.appid_names_client,
            clock: self.clock,
        };
        // The key cache, when keys come over HTTP: `build` or `connect` starts it.
        let remote = match &keys {
            KeySource::Remote(remote) => Some(Arc::clone(remote)),
            KeySource::Fixed(_) => None,
        };
        let introspection =
            introspector(self.introspection, remote.as_ref(), &keys, self.http, &self.tls_roots, &config.issuer)?;
        let userinfo = self.userinfo.build(self.http, &self.tls_roots)?;
        let authority = Authority {
            inner: Arc::new(Inner {
                config,
                keys,
                stats: Counters::default(),
                token_cache,
                userinfo,
                introspection,
                also,
                dpop,
                headers: crate::jws::HeaderMemo::default(),
            }),
        };
        Ok((authority, remote))
    }

    /// The issuer identifier, and for a tenant template its tenants, checked.
    fn checked_issuer(&self) -> Result<String, ConfigError> {
        let issuer = match &self.issuer {
            None => return Err(ConfigError::new("issuer", "no issuer set: call .issuer(\"https://your-issuer/\")")),
            Some(i) if i.trim().is_empty() || i.trim() != i => {
                return Err(ConfigError::new("issuer", "the issuer must be non-empty, without surrounding whitespace"));
            }
            Some(i) => i.clone(),
        };
        if let Some(tenants) = &self.tenants {
            let tenant_id =
                |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if tenants.is_empty() || !tenants.iter().all(|t| tenant_id(t)) {
                return Err(ConfigError::new(
                    "tenants",
                    "name at least one tenant, each a tenant ID (a GUID) or a domain: letters, digits, `-` and `.`",
                ));
            }
        }
        Ok(issuer)
    }

    /// At least one audience (but for Cognito), each non-empty and without whitespace.
    fn check_audiences(&self) -> Result<(), ConfigError> {
        // Cognito's access tokens carry no `aud`: its preset checks the client instead.
        if self.audiences.is_empty() && !self.require_token_use {
            return Err(ConfigError::new(
                "audience",
                "no audience set: call .audience(\"https://your-api/\") with the API identifier your issuer puts in `aud`",
            ));
        }
        self.audiences.iter().try_for_each(|aud| check_audience("audience", aud))
    }

    /// The time and size limits of a token, defaulted and checked.
    fn token_limits(&self) -> Result<TokenLimits, ConfigError> {
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
        Ok(TokenLimits { leeway, max_lifetime, max_token_size })
    }

    /// The verified-token cache, its settings checked (`None`: capacity 0, turned off).
    fn token_cache(&self) -> Result<Option<TokenCache>, ConfigError> {
        let max_age = self.token_cache_max_age.unwrap_or(DEFAULT_TOKEN_CACHE_MAX_AGE);
        if max_age.is_zero()
            || self.token_cache_capacity.is_some_and(|c| c > 1_000_000)
            || self.token_cache_max_bytes.is_some_and(|b| b < 64 * 1024)
        {
            return Err(ConfigError::new(
                "token_cache",
                "the token cache needs a positive max age, at most 1 000 000 entries (capacity 0 turns it off) and at least 64 KiB",
            ));
        }
        Ok(match self.token_cache_capacity.unwrap_or(DEFAULT_TOKEN_CACHE_CAPACITY) {
            0 => None,
            capacity => Some(TokenCache::new(
                capacity,
                self.token_cache_max_bytes.unwrap_or(DEFAULT_TOKEN_CACHE_MAX_BYTES),
                max_age,
            )),
        })
    }

    /// The claims scopes are read from, and the client allowlist: neither may be empty.
    fn check_claim_policy(&self) -> Result<(), ConfigError> {
        if self.scope_claims.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::new(
                "scope_claims",
                "name at least one scope claim (ScopeClaim::Scope is the standard)",
            ));
        }
        if self.allowed_clients.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::new("allowed_clients", "an empty client allowlist would refuse every token"));
        }
        Ok(())
    }

    /// The accepted algorithms and where the keys come from: the shared secret, the static
    /// keys, or the issuer over HTTP.
    fn keys(&self, issuer: &str) -> Result<(Vec<Algorithm>, KeySource), ConfigError> {
        if let Some((alg, SecretBytes(secret))) = &self.secret {
            return self.shared_secret_key(*alg, secret).map(|key| (vec![*alg], key));
        }
        let algorithms = self.algorithms.clone().unwrap_or_else(|| Algorithm::ASYMMETRIC.to_vec());
        Allowlist::Tokens.check(&algorithms)?;
        let keys = if self.jwks.is_empty() && self.pems.is_empty() {
            KeySource::Remote(remote_keys(
                issuer,
                self.jwks_uri.as_deref(),
                &algorithms,
                self.http,
                self.cache,
                &self.tls_roots,
                self.from_env,
            )?)
        } else {
            self.static_keys(&algorithms)?
        };
        Ok((algorithms, keys))
    }

    /// Shared-secret mode: the one HMAC key, alone.
    fn shared_secret_key(&self, alg: Algorithm, secret: &[u8]) -> Result<KeySource, ConfigError> {
        if !self.jwks.is_empty() || !self.pems.is_empty() {
            return Err(ConfigError::new(
                "shared_secret",
                "shared-secret (HS*) mode cannot be combined with public keys: use one or the other",
            ));
        }
        if !alg.is_symmetric() {
            return Err(ConfigError::new("shared_secret", "the shared-secret algorithm must be HS256, HS384 or HS512"));
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
        let key = keys::hmac_key(secret, alg, None);
        Ok(KeySource::fixed(KeySet::from_keys(vec![key])))
    }

    /// The static keys (`static_jwks`, `public_key_pem`), each admitted for `algorithms`.
    fn static_keys(&self, algorithms: &[Algorithm]) -> Result<KeySource, ConfigError> {
        if self.jwks_uri.is_some() {
            return Err(ConfigError::new(
                "jwks_uri",
                "a jwks_uri cannot be combined with static keys (static_jwks, public_key_pem): use one or the other",
            ));
        }
        let mut admitted: Vec<VerifyingKey> = Vec::new();
        for doc in &self.jwks {
            let set = KeySet::from_jwks(doc.as_bytes(), algorithms)
                .map_err(|e| ConfigError::new("static_jwks", e.to_string()))?;
            for (index, why) in &set.rejected {
                tracing::warn!(target: "scopegate", index, reason = why.code(), "JWK not admitted");
            }
            admitted.extend(set.into_keys());
        }
        for (kid, pem) in &self.pems {
            let key = keys::admit_pem(pem, kid.as_deref(), algorithms)
                .map_err(|e| ConfigError::new("public_key_pem", format!("the PEM key was not admitted: {e}")))?;
            admitted.push(key);
        }
        if admitted.len() > keys::MAX_KEYS {
            return Err(ConfigError::new("static_jwks", "more than 100 keys"));
        }
        Ok(KeySource::fixed(KeySet::from_keys(admitted)))
    }

    /// The challenges' `realm`: the one set, or the first audience when it is header-safe,
    /// or `api`.
    fn challenge_realm(&self) -> Result<String, ConfigError> {
        match &self.realm {
            Some(realm) if is_quoted_string_safe(realm) && !realm.is_empty() => Ok(realm.clone()),
            Some(_) => Err(ConfigError::new("realm", "the realm must be printable ASCII without `\"` or `\\`")),
            None => Ok(self
                .audiences
                .first()
                .filter(|a| is_quoted_string_safe(a))
                .cloned()
                .unwrap_or_else(|| "api".to_owned())),
        }
    }

    /// The RFC 9728 metadata URL the challenges carry, when asked for.
    fn resource_metadata_url(&self) -> Result<Option<Arc<str>>, ConfigError> {
        if !self.resource_metadata {
            return Ok(None);
        }
        let (setting, base) = match &self.public_url {
            Some(url) => ("public_url", url.as_str()),
            None => ("audience", self.audiences.first().map_or("", String::as_str)),
        };
        match crate::resource::metadata_url(base).filter(|url| is_quoted_string_safe(url)) {
            Some(url) => Ok(Some(url.into())),
            None => Err(ConfigError::new(
                setting,
                format!(
                    "the resource metadata URL is formed from an http(s) URL with a host, no fragment and no `\"`, `\\` or whitespace; `{base}` is not one: set `public_url`"
                ),
            )),
        }
    }

    /// Warns (at startup, once per issuer) about settings that accept more than the
    /// defaults do.
    fn warn_about_lenient_settings(&self, issuer: &str) {
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
    }
}

/// A token's time and size limits, checked.
struct TokenLimits {
    leeway: Duration,
    max_lifetime: Duration,
    max_token_size: usize,
}

/// One trusted issuer being started: its authority, its key cache when keys come over
/// HTTP, and the setting a failed first fetch names.
struct Member {
    authority: Authority,
    remote: Option<Arc<RemoteKeys>>,
    setting: &'static str,
    /// Added with `also_trust`: its errors say which issuer they are about.
    added: bool,
}

/// Checks the remote-key settings and creates the (empty) JWKS cache.
fn remote_keys(
    issuer: &str,
    jwks_uri: Option<&str>,
    algorithms: &[Algorithm],
    http: HttpLimits,
    cache: CachePolicy,
    tls_roots: &[Vec<u8>],
    from_env: FromEnv,
) -> Result<Arc<RemoteKeys>, ConfigError> {
    http.check()?;
    cache.check()?;
    let location = match jwks_uri {
        Some(url) => Location::Fixed(
            check_url(url, http.allow_private_networks, true).map_err(|e| ConfigError::new("jwks_uri", e))?,
        ),
        None => Location::Discover(check_url(issuer, http.allow_private_networks, true).map_err(|e| {
            // Whoever set the issuer in the environment gives the keys' URL there too.
            let instead = if from_env.issuer {
                "set JWKS_URI to the URL of the issuer's keys"
            } else {
                "give keys with .jwks_uri(url) or .static_jwks(json)"
            };
            ConfigError::new("issuer", format!("keys are discovered from the issuer URL, but {e}; or {instead}"))
        })?),
    };
    let client = IssuerClient::new(http, tls_roots)?;
    Ok(RemoteKeys::new(client, issuer.into(), location, algorithms.to_vec(), http.allow_private_networks, cache))
}

/// Checks the introspection settings and creates the introspection client.
fn introspector(
    settings: introspection::Settings,
    remote: Option<&Arc<RemoteKeys>>,
    keys: &KeySource,
    http: HttpLimits,
    tls_roots: &[Vec<u8>],
    issuer: &str,
) -> Result<Option<Introspector>, ConfigError> {
    let Some((client_id, client_secret)) = settings.credentials.clone() else {
        let orphan = settings.endpoint.is_some()
            || settings.introspect_jwts
            || settings.jwt_response
            || settings.accepts_missing_audience
            || settings.cache_ttl.is_some()
            || settings.negative_ttl.is_some()
            || settings.cache_capacity.is_some();
        if orphan {
            return Err(ConfigError::new(
                "introspection",
                "introspection settings are given but introspection is not enabled: call .introspection(client_id, client_secret)",
            ));
        }
        return Ok(None);
    };
    let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x20..0x7f).contains(&b));
    // `private_key_jwt`: the key instead of a secret, read now, so that a request never
    // finds it unusable; each assertion names the issuer as its audience.
    let assertion = match (&settings.signing_key, settings.client_auth) {
        (Some((kid, key)), ClientAuth::PrivateKeyJwt) => Some((
            AssertionSigner::new(kid, key).map_err(|e| ConfigError::new("introspection_private_key", e))?,
            Box::from(issuer),
        )),
        (None, ClientAuth::PrivateKeyJwt) => {
            return Err(ConfigError::new(
                "introspection_client_auth",
                "private_key_jwt needs the API's private key: give it with .introspection_private_key_pem(client_id, kid, pem) or .introspection_private_key_jwk(client_id, kid, jwk)",
            ));
        }
        (Some(_), _) => {
            return Err(ConfigError::new(
                "introspection_client_auth",
                "a private key is given for private_key_jwt, but the client authentication was set to another method afterwards: remove one of the two",
            ));
        }
        (None, _) => None,
    };
    if !printable(&client_id) || (assertion.is_none() && !printable(&client_secret)) {
        return Err(ConfigError::new(
            "introspection",
            "the introspection client id and secret must be non-empty printable ASCII",
        ));
    }
    let ttl = settings.cache_ttl.unwrap_or(introspection::DEFAULT_INTROSPECTION_CACHE_TTL);
    if ttl.is_zero() || ttl > MAX_INTROSPECTION_CACHE_TTL {
        return Err(ConfigError::new(
            "introspection_cache_ttl",
            "the introspection cache TTL must be positive and at most 1 hour",
        ));
    }
    let negative = settings.negative_ttl.unwrap_or(introspection::DEFAULT_INTROSPECTION_NEGATIVE_TTL.min(ttl));
    if negative.is_zero() || negative > ttl {
        return Err(ConfigError::new(
            "introspection_negative_cache_ttl",
            "the negative introspection cache TTL must be positive and at most the positive TTL",
        ));
    }
    if settings.cache_capacity.is_some_and(|c| c > 1_000_000) || settings.cache_max_bytes.is_some_and(|b| b < 64 * 1024)
    {
        return Err(ConfigError::new(
            "introspection_cache_size",
            "the introspection cache holds at most 1 000 000 entries (0 turns it off) in at least 64 KiB",
        ));
    }
    let endpoint = match (&settings.endpoint, remote) {
        (Some(url), _) => Endpoint::Fixed(
            check_url(url, http.allow_private_networks, true)
                .map_err(|e| ConfigError::new("introspection_endpoint", e))?,
        ),
        (None, Some(remote)) if remote.discovers() => Endpoint::Discovered(Arc::clone(remote)),
        (None, _) => {
            return Err(ConfigError::new(
                "introspection_endpoint",
                "the introspection endpoint is discovered from the issuer only when keys are too: with static keys or a jwks_uri, give it with .introspection_endpoint(url)",
            ));
        }
    };
    http.check()?;
    let client = IssuerClient::new(http, tls_roots)?;
    let settings = introspection::Settings { negative_ttl: Some(negative), cache_ttl: Some(ttl), ..settings };
    Ok(Some(Introspector::new(client, endpoint, client_id, client_secret, keys, &settings, assertion)))
}

/// RFC 9110 quoted-string content without escapes: visible ASCII and SP, minus `"` and `\`.
fn is_quoted_string_safe(value: &str) -> bool {
    value.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}
