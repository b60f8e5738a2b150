//! Opaque access tokens: RFC 7662 token introspection at the issuer.
//!
//! A bearer token that is not a compact JWS (three dot-separated segments) cannot be
//! verified locally; when introspection is configured it is sent to the issuer's
//! `introspection_endpoint` (from discovery, or configured) with the API's own client
//! credentials, and the answer is checked as strictly as a JWT's claims:
//! - the body must be one strict JSON object (no duplicate members at any depth);
//!   anything else means the endpoint is broken: 503, never an accept;
//! - `active` must be the boolean `true` (`"true"`, `1`, a missing member: `inactive_token`);
//! - `iss`, when present, equals the issuer byte for byte;
//! - `aud` must contain the audience: an answer without `aud` is refused
//!   (`invalid_audience`) unless [`introspection_accepts_missing_audience`] says
//!   otherwise, because an issuer serving several APIs answers `active` for a token minted
//!   for any of them, and only `aud` tells this API's tokens from the others';
//! - `exp` is required (it bounds the cache and [`AccessToken::expires_at`]), `nbf` and
//!   `iat` optional, all judged with the same leeway and maximum lifetime as a JWT's;
//! - `token_type`, when present, must not be `refresh_token`;
//! - `scope` is the space-delimited string of RFC 7662 §2.2;
//! - `sub`, `client_id`, `username`, `jti` are exposed through [`AccessToken`]; an answer
//!   without `sub` (a client-credentials token at many providers) has the `client_id` as
//!   its subject, so [`AccessToken::is_client_token`] is true; an answer with neither is
//!   refused (`invalid_claim`), and an empty `sub`, `client_id` or `jti` is refused
//!   (`empty_claim`) as in a JWT.
//!
//! Answers are cached ([`IntrospectionCache`]), and concurrent requests with the same
//! unknown token share one call (single flight).
//!
//! With [`introspection_jwt_response`], the API asks for a signed answer (RFC 9701:
//! `Accept: application/token-introspection+jwt`) and takes nothing else: the answer must
//! be a JWS of that media type with `typ: token-introspection+jwt`, an algorithm of the
//! allowlist, a signature by the issuer's keys (the token's own keys: an unknown `kid`
//! may refresh them like a token's), `iss` equal to the issuer, `aud` naming the API's
//! introspection client id, `iat`, and the RFC 7662 answer as its `token_introspection`
//! object, which is then checked as above. A plain JSON answer, an encrypted one (JWE)
//! or a signed one that fails any check means the endpoint gave no usable answer: 503.
//!
//! [`introspection_jwt_response`]: crate::AuthorityBuilder::introspection_jwt_response
//! [`introspection_accepts_missing_audience`]: crate::AuthorityBuilder::introspection_accepts_missing_audience
//! [`AccessToken`]: crate::AccessToken
//! [`AccessToken::expires_at`]: crate::AccessToken::expires_at
//! [`AccessToken::is_client_token`]: crate::AccessToken::is_client_token

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use base64::Engine as _;
use reqwest::Url;
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::{
    claims::{self, AudienceCheck, VerifiedClaims},
    client_assertion::{AssertionSigner, JWT_BEARER, KeyText},
    config::Config,
    http::{FetchError, IssuerClient},
    jwks::RemoteKeys,
    rejection::{RejectionKind, TokenError},
    scope::Scopes,
    source::{DocumentRefused, KeySource, TypRule},
};

/// The media type (and `typ`) of a signed introspection answer (RFC 9701 §5).
const JWT_ANSWER: &str = "application/token-introspection+jwt";

/// The default time a positive introspection answer is reused (never past the token's `exp`).
pub const DEFAULT_INTROSPECTION_CACHE_TTL: Duration = Duration::from_secs(60);
/// The default time a negative answer (inactive, refused) is reused.
pub const DEFAULT_INTROSPECTION_NEGATIVE_TTL: Duration = Duration::from_secs(10);
/// The default number of cached introspection answers.
pub const DEFAULT_INTROSPECTION_CACHE_CAPACITY: usize = 10_000;
/// The default memory budget of the introspection cache (tokens and answers).
pub const DEFAULT_INTROSPECTION_CACHE_MAX_BYTES: usize = 16 * 1024 * 1024;
/// The longest cache TTL the builder accepts.
pub const MAX_INTROSPECTION_CACHE_TTL: Duration = Duration::from_secs(60 * 60);
/// The `Retry-After` of a 503 when the introspection endpoint cannot answer.
const RETRY_AFTER_SECS: u32 = 5;
/// What an entry costs besides its token and answer.
const ENTRY_OVERHEAD: usize = 256;

/// How the API authenticates to the introspection endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded client id and secret (the default).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): a JWT signed with the
    /// API's private key, fresh for each request, instead of a secret. Set by
    /// `AuthorityBuilder::introspection_private_key_pem` and `…_jwk`, which give the key.
    PrivateKeyJwt,
}

/// The builder's introspection settings.
#[derive(Default)]
pub(crate) struct Settings {
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) endpoint: Option<String>,
    pub(crate) client_auth: ClientAuth,
    pub(crate) introspect_jwts: bool,
    pub(crate) accepts_missing_audience: bool,
    pub(crate) cache_ttl: Option<Duration>,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) cache_capacity: Option<usize>,
    pub(crate) cache_max_bytes: Option<usize>,
    pub(crate) jwt_response: bool,
    /// `private_key_jwt`: the `kid` and the private key.
    pub(crate) signing_key: Option<(String, KeyText)>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Settings")
            .field("client_id", &self.credentials.as_ref().map(|(id, _)| id))
            .field("endpoint", &self.endpoint)
            .field("client_auth", &self.client_auth)
            .field("introspect_jwts", &self.introspect_jwts)
            .field("jwt_response", &self.jwt_response)
            .finish_non_exhaustive()
    }
}

/// Where the endpoint is.
pub(crate) enum Endpoint {
    Fixed(Url),
    /// The issuer's discovered `introspection_endpoint`.
    Discovered(Arc<RemoteKeys>),
}

/// What an introspection gave, as cached and shared.
#[derive(Debug, Clone)]
enum Outcome {
    /// An active token whose answer passed every audience-independent check.
    Active(Arc<VerifiedClaims>),
    /// A refusal that does not depend on the request.
    Refused(TokenError),
    /// The endpoint gave no usable answer (not cached).
    Unavailable,
}

/// The calls in flight: token hash → (the token, the channel its outcome comes on).
type InFlight = Mutex<HashMap<u64, (Box<str>, watch::Receiver<Option<Outcome>>)>>;

/// The introspection client, its cache and its in-flight calls.
pub(crate) struct Introspector {
    client: IssuerClient,
    endpoint: Endpoint,
    client_id: Box<str>,
    client_secret: Box<str>,
    client_auth: ClientAuth,
    /// `private_key_jwt`: the signer and the assertions' `aud` (the issuer identifier).
    assertion: Option<(AssertionSigner, Box<str>)>,
    pub(crate) introspect_jwts: bool,
    accepts_missing_audience: bool,
    /// RFC 9701: ask for, and accept only, answers signed with these keys.
    signed_answers: Option<KeySource>,
    cache: IntrospectionCache,
    in_flight: InFlight,
    pub(crate) calls: AtomicU64,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

impl Introspector {
    pub(crate) fn new(
        client: IssuerClient,
        endpoint: Endpoint,
        client_id: String,
        client_secret: String,
        keys: &KeySource,
        settings: &Settings,
        assertion: Option<(AssertionSigner, Box<str>)>,
    ) -> Self {
        Self {
            client,
            endpoint,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            client_auth: settings.client_auth,
            assertion,
            introspect_jwts: settings.introspect_jwts,
            accepts_missing_audience: settings.accepts_missing_audience,
            signed_answers: settings.jwt_response.then(|| keys.clone()),
            cache: IntrospectionCache::new(
                settings.cache_capacity.unwrap_or(DEFAULT_INTROSPECTION_CACHE_CAPACITY),
                settings.cache_max_bytes.unwrap_or(DEFAULT_INTROSPECTION_CACHE_MAX_BYTES),
                settings.cache_ttl.unwrap_or(DEFAULT_INTROSPECTION_CACHE_TTL),
                settings.negative_ttl.unwrap_or(DEFAULT_INTROSPECTION_NEGATIVE_TTL),
            ),
            in_flight: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
        }
    }

    /// Whether the endpoint comes from discovery.
    pub(crate) fn discovers(&self) -> bool {
        matches!(self.endpoint, Endpoint::Discovered(_))
    }

    /// Verifies `token` through the cache, a call in flight for the same token, or a call
    /// of its own; then checks the audience asked for.
    pub(crate) async fn verify(
        &self,
        config: &Config,
        token: &str,
        audience: AudienceCheck<'_>,
    ) -> Result<Arc<VerifiedClaims>, RejectionKind> {
        let now = config.clock.now();
        // A cached answer past `max_token_age` is not served: the issuer is asked again.
        let cached = self.cache.get(token, now).filter(|outcome| match outcome {
            Outcome::Active(claims) => claims.within_max_age(config, now),
            _ => true,
        });
        let outcome = match cached {
            Some(outcome) => outcome,
            None => self.single_flight(config, token).await,
        };
        match outcome {
            Outcome::Active(claims) => {
                let matches = if claims.audiences().len() == 0 {
                    self.accepts_missing_audience
                } else {
                    claims::audience_matches(claims.audiences(), config, audience)
                };
                if matches { Ok(claims) } else { Err(refused(TokenError::InvalidAudience)) }
            }
            Outcome::Refused(error) => Err(refused(error)),
            Outcome::Unavailable => Err(RejectionKind::IntrospectionUnavailable { retry_after_secs: RETRY_AFTER_SECS }),
        }
    }

    /// One call per token at a time: the first request calls, the others wait for its
    /// outcome on a `watch` channel (no lock is held across an `.await`). A waiter whose
    /// leader went away without an answer (its request was cancelled) calls itself.
    async fn single_flight(&self, config: &Config, token: &str) -> Outcome {
        let hash = self.cache.hash(token);
        let joined = {
            let mut in_flight = lock(&self.in_flight);
            match in_flight.get(&hash) {
                Some((pending, receiver)) if **pending == *token => Ok(receiver.clone()),
                // Another token with the same hash is in flight: go alone.
                Some(_) => Err(None),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    in_flight.insert(hash, (token.into(), receiver));
                    Err(Some(sender))
                }
            }
        };
        match joined {
            Ok(mut receiver) => {
                let wait = self.client.total_timeout().saturating_add(Duration::from_secs(1));
                if let Ok(Ok(outcome)) = tokio::time::timeout(wait, receiver.wait_for(Option::is_some)).await
                    && let Some(outcome) = outcome.clone()
                {
                    return outcome;
                }
                self.call_and_cache(config, token).await
            }
            Err(None) => self.call_and_cache(config, token).await,
            Err(Some(sender)) => {
                let _landing = Landing { in_flight: &self.in_flight, hash };
                let outcome = self.call_and_cache(config, token).await;
                sender.send_replace(Some(outcome.clone()));
                outcome
            }
        }
    }

    async fn call_and_cache(&self, config: &Config, token: &str) -> Outcome {
        let outcome = self.call(config, token).await;
        self.cache.insert(token, &outcome, config.clock.now());
        outcome
    }

    /// One introspection request and the check of its answer.
    async fn call(&self, config: &Config, token: &str) -> Outcome {
        let url = match &self.endpoint {
            Endpoint::Fixed(url) => url.clone(),
            Endpoint::Discovered(remote) => match remote.metadata().await {
                Ok(metadata) => match &metadata.introspection_endpoint {
                    Some(url) => url.clone(),
                    None => {
                        tracing::error!(
                            target: "scopegate",
                            issuer = %config.issuer,
                            "the issuer's discovery document advertises no usable introspection_endpoint; configure it with .introspection_endpoint(url)"
                        );
                        return Outcome::Unavailable;
                    }
                },
                Err(error) => {
                    tracing::warn!(target: "scopegate", error = error.code(), detail = %error, "discovery failed; cannot introspect");
                    return Outcome::Unavailable;
                }
            },
        };
        self.calls.fetch_add(1, Ordering::Relaxed);
        crate::metrics::introspection_request();
        let mut form = format!("token={}&token_type_hint=access_token", form_encode(token));
        let authorization = match self.client_auth {
            ClientAuth::ClientSecretBasic => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    form_encode(&self.client_id),
                    form_encode(&self.client_secret)
                ))
            )),
            ClientAuth::ClientSecretPost => {
                form.push_str("&client_id=");
                form.push_str(&form_encode(&self.client_id));
                form.push_str("&client_secret=");
                form.push_str(&form_encode(&self.client_secret));
                None
            }
            ClientAuth::PrivateKeyJwt => {
                let now = config.clock.now().max(0.0) as u64;
                let Some(assertion) =
                    self.assertion.as_ref().and_then(|(signer, aud)| signer.assertion(&self.client_id, aud, now))
                else {
                    tracing::error!(target: "scopegate", "cannot sign the private_key_jwt client assertion; cannot introspect");
                    return Outcome::Unavailable;
                };
                form.push_str("&client_id=");
                form.push_str(&form_encode(&self.client_id));
                form.push_str("&client_assertion_type=");
                form.push_str(&form_encode(JWT_BEARER));
                form.push_str("&client_assertion=");
                form.push_str(&assertion);
                None
            }
        };
        let accept = if self.signed_answers.is_some() { JWT_ANSWER } else { "application/json" };
        let answer = match self.client.post_form(&url, form, authorization.as_deref(), accept).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(target: "scopegate", url = %url, error = error.code(), detail = %error, "introspection request failed");
                return Outcome::Unavailable;
            }
        };
        let status = answer.status;
        match status {
            200 => {}
            400..=499 => {
                tracing::error!(
                    target: "scopegate",
                    url = %url,
                    status,
                    "the introspection endpoint refused the request: check the API's introspection client id, secret and client authentication method"
                );
                return Outcome::Unavailable;
            }
            _ => {
                tracing::warn!(target: "scopegate", url = %url, error = FetchError::Status(status).code(), status, "introspection endpoint failed");
                return Outcome::Unavailable;
            }
        }
        let body = match &self.signed_answers {
            None => answer.body,
            Some(keys) => match self.signed_answer(keys, config, answer.media_type.as_deref(), &answer.body).await {
                Ok(body) => body,
                Err(why) => {
                    tracing::warn!(target: "scopegate", url = %url, why, "signed introspection answer (RFC 9701) refused");
                    return Outcome::Unavailable;
                }
            },
        };
        match check_answer(body, config, config.clock.now()) {
            Ok(claims) => Outcome::Active(Arc::new(claims)),
            // Logged once, by the refusal of each request (`LogDetail::Introspected`).
            Err(Some(error)) => Outcome::Refused(error),
            Err(None) => {
                tracing::warn!(target: "scopegate", url = %url, "the introspection endpoint answered something that is not a JSON object");
                Outcome::Unavailable
            }
        }
    }
}

impl Introspector {
    /// Checks a signed answer (RFC 9701 §5) and returns its `token_introspection` object
    /// as JSON text, or why it is unusable.
    async fn signed_answer(
        &self,
        keys: &KeySource,
        config: &Config,
        media_type: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, &'static str> {
        if media_type != Some(JWT_ANSWER) {
            return Err("the answer is not application/token-introspection+jwt");
        }
        let text = std::str::from_utf8(body).map_err(|_| "not UTF-8")?.trim_ascii();
        if text.bytes().filter(|b| *b == b'.').count() == 4 {
            return Err("an encrypted (JWE) answer: only signed answers are supported");
        }
        let typ = TypRule {
            accepts: &|_, header_json| {
                let typ =
                    crate::json::parse_object(header_json).ok().and_then(|h| h.get("typ")?.as_str().map(str::to_owned));
                typ.is_some_and(|t| {
                    t.strip_prefix("application/").unwrap_or(&t).eq_ignore_ascii_case("token-introspection+jwt")
                })
            },
            refusal: "typ is not token-introspection+jwt",
        };
        let mut claims = match keys.verify_document(text.as_bytes(), &config.algorithms, &typ).await {
            Ok((claims, _)) => claims,
            Err(DocumentRefused::Unavailable) => return Err("the issuer's keys are unavailable"),
            Err(DocumentRefused::Invalid(why)) => return Err(why),
        };
        if claims.get("iss").and_then(Value::as_str) != Some(&*config.issuer) {
            return Err("iss is not the issuer");
        }
        let names_us = |aud: &Value| aud.as_str() == Some(&*self.client_id);
        match claims.get("aud") {
            Some(Value::Array(audiences)) if audiences.iter().any(names_us) => {}
            Some(aud) if names_us(aud) => {}
            _ => return Err("aud does not name this API's introspection client id"),
        }
        if !claims.get("iat").is_some_and(Value::is_number) {
            return Err("iat is missing");
        }
        match claims.remove("token_introspection") {
            Some(answer @ Value::Object(_)) => serde_json::to_vec(&answer).map_err(|_| "unserializable"),
            _ => Err("token_introspection is not an object"),
        }
    }
}

fn refused(error: TokenError) -> RejectionKind {
    RejectionKind::InvalidToken(error)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic while holding the lock leaves nothing inconsistent.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Clears a call's in-flight mark when the leader finishes or is dropped; waiters then
/// see the answer or a closed channel.
struct Landing<'a> {
    in_flight: &'a InFlight,
    hash: u64,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        lock(self.in_flight).remove(&self.hash);
    }
}

/// `application/x-www-form-urlencoded` encoding of one value: unreserved characters as
/// they are, everything else percent-encoded.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Checks an introspection answer (RFC 7662 §2.2). `Err(None)`: not a JSON object (the
/// endpoint is broken); `Err(Some(_))`: the token is refused. The audience is checked by
/// the caller, per request.
fn check_answer(body: Vec<u8>, config: &Config, now: f64) -> Result<VerifiedClaims, Option<TokenError>> {
    let payload = String::from_utf8(body).map_err(|_| None)?;
    let answer = crate::json::parse_object(payload.as_bytes()).map_err(|_| None)?;
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(Some(TokenError::Inactive));
    }
    let facts = facts(&answer, config, now)?;
    let Facts { subject, client_id, audiences, issuer, jti, expires_at, issued_at, scopes } = facts;
    let audiences: Vec<&str> = audiences.iter().map(String::as_str).collect();
    drop(answer);
    Ok(VerifiedClaims::introspected(
        payload,
        &subject,
        client_id.as_deref(),
        &audiences,
        &issuer,
        jti.as_deref(),
        expires_at,
        issued_at,
        scopes,
    ))
}

struct Facts {
    subject: String,
    client_id: Option<String>,
    audiences: Vec<String>,
    issuer: String,
    jti: Option<String>,
    expires_at: f64,
    issued_at: f64,
    scopes: Scopes,
}

fn facts(answer: &Map<String, Value>, config: &Config, now: f64) -> Result<Facts, Option<TokenError>> {
    let string = |name: &str| match answer.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Some(TokenError::InvalidClaim)),
    };
    // An identifier (`sub`, `client_id`, `jti`): absent, or a non-empty string, as in a
    // JWT; an empty one identifies no one and is refused as such, not skipped.
    let identifier = |name: &str| match string(name)? {
        Some(s) if s.is_empty() => Err(Some(TokenError::EmptyClaim)),
        found => Ok(found),
    };
    match answer.get("token_type") {
        None => {}
        Some(Value::String(t)) if t == "refresh_token" => return Err(Some(TokenError::RefreshToken)),
        Some(Value::String(_)) => {}
        Some(_) => return Err(Some(TokenError::InvalidClaim)),
    }
    let issuer = match answer.get("iss") {
        None => config.issuer.to_string(),
        Some(Value::String(iss)) if **iss == *config.issuer => iss.clone(),
        Some(_) => return Err(Some(TokenError::InvalidIssuer)),
    };
    let audiences = match answer.get("aud") {
        None => Vec::new(),
        Some(Value::String(a)) if !a.is_empty() => vec![a.clone()],
        Some(Value::Array(items))
            if !items.is_empty() && items.iter().all(|a| a.as_str().is_some_and(|a| !a.is_empty())) =>
        {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        Some(_) => return Err(Some(TokenError::InvalidAudience)),
    };
    if config.require_single_audience && audiences.len() > 1 {
        return Err(Some(TokenError::InvalidAudience));
    }
    let date = |name: &str| match answer.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) if t.is_finite() && t > 0.0 && t < 9_007_199_254_740_992.0 => Ok(Some(t)),
            _ => Err(Some(TokenError::InvalidClaim)),
        },
        Some(_) => Err(Some(TokenError::InvalidClaim)),
    };
    let leeway = config.leeway.as_secs_f64();
    let exp = date("exp")?.ok_or(Some(TokenError::InvalidClaim))?;
    let iat = date("iat")?;
    let nbf = date("nbf")?;
    if now >= exp + leeway {
        return Err(Some(TokenError::Expired));
    }
    if nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(Some(TokenError::NotYetValid));
    }
    if iat.is_some_and(|iat| iat > now + leeway) {
        return Err(Some(TokenError::IssuedInFuture));
    }
    let max_lifetime = config.max_lifetime.as_secs_f64();
    if exp - now > max_lifetime || iat.is_some_and(|iat| exp - iat > max_lifetime) {
        return Err(Some(TokenError::LifetimeExceeded));
    }
    if let (Some(max), Some(iat)) = (config.max_age, iat)
        && now - iat > max.as_secs_f64()
    {
        return Err(Some(TokenError::LifetimeExceeded));
    }
    let scopes = match answer.get("scope") {
        None => Scopes::default(),
        Some(Value::String(s)) => Scopes::from_space_delimited(s),
        Some(_) => return Err(Some(TokenError::InvalidScopeClaim)),
    };
    let client_id = identifier("client_id")?;
    let username = string("username")?;
    let jti = identifier("jti")?;
    // No `sub` (a client-credentials token at many providers): the client is the subject.
    let subject = match identifier("sub")? {
        Some(sub) => sub,
        None => client_id.clone().ok_or(Some(TokenError::InvalidClaim))?,
    };
    drop(username);
    if let Some(allowed) = &config.allowed_clients
        && !client_id.as_deref().is_some_and(|id| allowed.iter().any(|a| **a == *id))
    {
        return Err(Some(TokenError::ClientNotAllowed));
    }
    Ok(Facts { subject, client_id, audiences, issuer, jti, expires_at: exp, issued_at: iat.unwrap_or(now), scopes })
}

struct Entry {
    token: Box<str>,
    outcome: Outcome,
    until: Instant,
    cost: usize,
}

/// The cache of introspection answers: keyed by a keyed hash of the token (SipHash with a
/// per-process random key), compared with the whole token on a hit; a positive answer is
/// kept at most its TTL and never past the token's `exp`, a negative one its shorter TTL;
/// bounded in entries and bytes (arbitrary entries are evicted first once expired ones
/// are gone). The endpoint being unavailable is never cached.
pub(crate) struct IntrospectionCache {
    map: Mutex<(HashMap<u64, Entry>, usize)>,
    capacity: usize,
    max_bytes: usize,
    ttl: Duration,
    negative_ttl: Duration,
    hasher: RandomState,
}

impl IntrospectionCache {
    fn new(capacity: usize, max_bytes: usize, ttl: Duration, negative_ttl: Duration) -> Self {
        Self {
            map: Mutex::new((HashMap::new(), 0)),
            capacity,
            max_bytes,
            ttl,
            negative_ttl,
            hasher: RandomState::new(),
        }
    }

    fn hash(&self, token: &str) -> u64 {
        self.hasher.hash_one(token)
    }

    fn get(&self, token: &str, now: f64) -> Option<Outcome> {
        if self.capacity == 0 {
            return None;
        }
        let hash = self.hash(token);
        let map = lock(&self.map);
        let entry = map.0.get(&hash)?;
        let fresh = *entry.token == *token
            && Instant::now() < entry.until
            && match &entry.outcome {
                Outcome::Active(claims) => now < claims.expires_at,
                _ => true,
            };
        fresh.then(|| entry.outcome.clone())
    }

    fn insert(&self, token: &str, outcome: &Outcome, now: f64) {
        let ttl = match outcome {
            Outcome::Active(claims) => {
                let left = Duration::try_from_secs_f64(claims.expires_at - now).unwrap_or(Duration::ZERO);
                self.ttl.min(left)
            }
            Outcome::Refused(_) => self.negative_ttl,
            Outcome::Unavailable => return,
        };
        let cost = token.len()
            + ENTRY_OVERHEAD
            + match outcome {
                Outcome::Active(claims) => claims.payload().len(),
                _ => 0,
            };
        if self.capacity == 0 || ttl.is_zero() || cost > self.max_bytes {
            return;
        }
        let hash = self.hash(token);
        let created = Instant::now();
        let mut guard = lock(&self.map);
        let (map, bytes) = &mut *guard;
        if let Some(old) = map.remove(&hash) {
            *bytes = bytes.saturating_sub(old.cost);
        }
        // Whether the new entry needs room: one entry more than the capacity, or more bytes
        // than the budget, if it were inserted now.
        let full = |entries: usize, held: usize| entries >= self.capacity || held + cost > self.max_bytes;
        if full(map.len(), *bytes) {
            let mut freed = 0;
            map.retain(|_, e| {
                let keep = e.until > created;
                if !keep {
                    freed += e.cost;
                }
                keep
            });
            *bytes = bytes.saturating_sub(freed);
        }
        while full(map.len(), *bytes) {
            let Some(victim) = map.keys().next().copied() else {
                break;
            };
            if let Some(old) = map.remove(&victim) {
                *bytes = bytes.saturating_sub(old.cost);
            }
        }
        *bytes += cost;
        map.insert(hash, Entry { token: token.into(), outcome: outcome.clone(), until: created + ttl, cost });
    }
}

/// Whether a token has the compact JWS form (three dot-separated segments): such a
/// token is verified locally unless `introspect_jwts` is set.
pub(crate) fn is_compact_jws(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_everything_but_unreserved_characters() {
        assert_eq!(form_encode("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(form_encode("a b:c/+=&%"), "a%20b%3Ac%2F%2B%3D%26%25");
    }

    #[test]
    fn a_cached_answer_is_found_only_for_the_exact_token_and_not_past_its_ttl() {
        let cache = IntrospectionCache::new(10, 1 << 20, Duration::from_millis(50), Duration::from_millis(10));
        let claims = Arc::new(VerifiedClaims::for_tests(1e9));
        cache.insert("token-a", &Outcome::Active(claims), 1.0);
        assert!(matches!(cache.get("token-a", 1.0), Some(Outcome::Active(_))));
        assert!(cache.get("token-b", 1.0).is_none());
        assert!(cache.get("token-a", 1e9).is_none(), "never past exp");
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("token-a", 1.0).is_none(), "never past the TTL");
    }

    #[test]
    fn the_cache_is_bounded_in_entries_and_bytes() {
        let cache = IntrospectionCache::new(8, 1 << 20, Duration::from_secs(60), Duration::from_secs(10));
        for i in 0..100 {
            cache.insert(&format!("token-{i}"), &Outcome::Refused(TokenError::Inactive), 1.0);
        }
        assert!(lock(&cache.map).0.len() <= 8);
        let small = IntrospectionCache::new(1000, 4096, Duration::from_secs(60), Duration::from_secs(10));
        for i in 0..100 {
            small.insert(&format!("{}-{i}", "x".repeat(500)), &Outcome::Refused(TokenError::Inactive), 1.0);
        }
        assert!(lock(&small.map).1 <= 4096);
    }

    #[test]
    fn the_introspection_cache_defaults_are_the_documented_ones() {
        assert_eq!(DEFAULT_INTROSPECTION_CACHE_MAX_BYTES, 16 * 1024 * 1024, "16 MiB");
        assert_eq!(DEFAULT_INTROSPECTION_CACHE_CAPACITY, 10_000);
        assert_eq!(DEFAULT_INTROSPECTION_CACHE_TTL, Duration::from_secs(60));
        assert_eq!(DEFAULT_INTROSPECTION_NEGATIVE_TTL, Duration::from_secs(10));
    }

    #[test]
    fn three_segments_make_a_compact_jws() {
        assert!(is_compact_jws("a.b.c"));
        assert!(!is_compact_jws("opaque-token"));
        assert!(!is_compact_jws("a.b.c.d.e"), "a JWE has five segments and is introspected");
    }

    /// An entry costs its token, `ENTRY_OVERHEAD` and an active answer's JSON text, and
    /// that whole cost is what the byte budget bounds: an answer costing exactly the
    /// budget is cached, one costing a byte more is not.
    #[test]
    fn an_answer_is_cached_only_when_its_whole_cost_fits_the_byte_budget() {
        let active = Outcome::Active(Arc::new(VerifiedClaims::for_tests(1e9)));
        let refused = Outcome::Refused(TokenError::Inactive);
        // "t" (1 byte) + 256 + "{}" (2 bytes) for the active answer; no answer text for a refusal.
        for (outcome, cost) in [(&active, 259), (&refused, 257)] {
            let fits = IntrospectionCache::new(10, cost, Duration::from_secs(60), Duration::from_secs(10));
            fits.insert("t", outcome, 1.0);
            assert!(fits.get("t", 1.0).is_some(), "{outcome:?} at exactly the budget");
            assert_eq!(lock(&fits.map).1, cost);
            let short = IntrospectionCache::new(10, cost - 1, Duration::from_secs(60), Duration::from_secs(10));
            short.insert("t", outcome, 1.0);
            assert!(short.get("t", 1.0).is_none(), "{outcome:?} a byte over the budget");
            assert_eq!(lock(&short.map).1, 0);
        }
    }

    /// Answers that together cost exactly the byte budget all stay: the cache evicts only
    /// for an entry that would take it past the budget (or past its capacity).
    #[test]
    fn answers_that_exactly_fill_the_byte_budget_are_all_kept() {
        let fresh = || Outcome::Active(Arc::new(VerifiedClaims::for_tests(1e9)));
        // Each answer costs 1 + 256 + 2 bytes; the budget holds three of them exactly.
        let cache = IntrospectionCache::new(3, 3 * 259, Duration::from_secs(60), Duration::from_secs(10));
        for token in ["a", "b", "c"] {
            cache.insert(token, &fresh(), 1.0);
        }
        for token in ["a", "b", "c"] {
            assert!(cache.get(token, 1.0).is_some(), "{token} kept");
        }
        assert_eq!(lock(&cache.map).1, 3 * 259);
        // A fourth takes one place: past the capacity and the budget alike.
        cache.insert("d", &fresh(), 1.0);
        assert!(cache.get("d", 1.0).is_some());
        assert_eq!(lock(&cache.map).0.len(), 3);
        assert_eq!(lock(&cache.map).1, 3 * 259);
    }

    /// An answer that is not cached (its token's `exp` already reached, a zero negative
    /// TTL, or more bytes than the whole budget) takes no other answer's place.
    #[test]
    fn an_answer_that_is_not_cached_evicts_nothing() {
        let fresh = || Outcome::Active(Arc::new(VerifiedClaims::for_tests(1e9)));
        let cache = IntrospectionCache::new(2, 1 << 20, Duration::from_secs(60), Duration::ZERO);
        cache.insert("a", &fresh(), 1.0);
        cache.insert("b", &fresh(), 1.0);
        cache.insert("expired", &Outcome::Active(Arc::new(VerifiedClaims::for_tests(1.0))), 1.0);
        cache.insert("refused", &Outcome::Refused(TokenError::Inactive), 1.0);
        let small = IntrospectionCache::new(10, 600, Duration::from_secs(60), Duration::from_secs(10));
        small.insert("a", &fresh(), 1.0);
        small.insert("b", &fresh(), 1.0);
        small.insert(&"x".repeat(400), &fresh(), 1.0);
        for cache in [&cache, &small] {
            assert!(cache.get("a", 1.0).is_some() && cache.get("b", 1.0).is_some());
            assert_eq!(lock(&cache.map).0.len(), 2);
            assert_eq!(lock(&cache.map).1, 2 * 259);
        }
    }

    /// A full cache (by entries or by bytes) first drops the answers that can no longer be
    /// served (here one whose token reached its `exp`, which came before the TTL), and
    /// only if that frees no room an arbitrary fresh one; the byte count stays the sum of
    /// the entries' costs through it. Three rounds of each: an arbitrary eviction would
    /// have to hit the one expired entry among a hundred every time to pass.
    #[test]
    fn a_full_cache_drops_its_expired_answers_before_any_fresh_one() {
        let fresh = || Outcome::Active(Arc::new(VerifiedClaims::for_tests(1e9)));
        // Every token 9 bytes, so every entry costs 9 + 256 + 2.
        let cost = 267;
        for round in 0..6 {
            let cache = if round % 2 == 0 {
                IntrospectionCache::new(100, 1 << 20, Duration::from_secs(60), Duration::from_secs(10))
            } else {
                IntrospectionCache::new(10_000, 100 * cost, Duration::from_secs(60), Duration::from_secs(10))
            };
            // Kept 2 ms: its `exp` is 2 ms after `now`, well before the 60 s TTL.
            cache.insert("token-exp", &Outcome::Active(Arc::new(VerifiedClaims::for_tests(1.002))), 1.0);
            for i in 1..100 {
                cache.insert(&format!("token-{i:03}"), &fresh(), 1.0);
            }
            assert_eq!(lock(&cache.map).0.len(), 100, "round {round}: full");
            std::thread::sleep(Duration::from_millis(10));
            cache.insert("token-100", &fresh(), 1.0);
            for i in 1..=100 {
                assert!(cache.get(&format!("token-{i:03}"), 1.0).is_some(), "round {round}: token-{i:03} kept");
            }
            let map = lock(&cache.map);
            assert_eq!(map.0.len(), 100, "round {round}");
            assert!(!map.0.values().any(|e| &*e.token == "token-exp"), "round {round}: the expired answer dropped");
            assert_eq!(map.1, map.0.values().map(|e| e.cost).sum::<usize>(), "round {round}: bytes counted");
            assert_eq!(map.1, 100 * cost, "round {round}");
        }
    }
}
