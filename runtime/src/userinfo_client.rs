//! The `/userinfo` client of one authority: its settings, the HTTP client, the per-token
//! answer cache and the flights in progress. The [`UserInfo`](crate::UserInfo) extractor
//! (`userinfo.rs`, above the verifier) drives it; the [`Authority`](crate::Authority) owns
//! it, so it sits below both and knows neither.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use reqwest::Url;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::{
    config::ConfigError,
    http::{FetchError, HttpLimits, IssuerClient},
    rejection::{RejectionKind, TokenError},
    source::KeySource,
};

/// The default longest time a `/userinfo` answer is reused for the same token.
pub const DEFAULT_USERINFO_CACHE_TTL: Duration = Duration::from_secs(60);
/// The default number of `/userinfo` answers kept.
pub const DEFAULT_USERINFO_CACHE_CAPACITY: usize = 1_000;
/// The default memory budget of the `/userinfo` cache: tokens and answer texts, plus 256
/// bytes counted per entry.
pub const DEFAULT_USERINFO_CACHE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// The longest [`AuthorityBuilder::userinfo_cache_ttl`](crate::AuthorityBuilder::userinfo_cache_ttl) accepted.
pub const MAX_USERINFO_CACHE_TTL: Duration = Duration::from_secs(60 * 60);
/// The `Retry-After` of a 503 `userinfo_unavailable`, in seconds.
pub const USERINFO_RETRY_AFTER_SECS: u32 = 5;
pub(crate) const ENTRY_OVERHEAD: usize = 256;
pub(crate) const ACCEPT: &str = "application/json, application/jwt";

/// The `/userinfo` settings of the builder.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    pub(crate) endpoint: Option<String>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) capacity: Option<usize>,
    pub(crate) max_bytes: Option<usize>,
}

impl Settings {
    /// Checks the settings; the HTTP client is made on first use.
    pub(crate) fn build(self, http: HttpLimits, tls_roots: &[Vec<u8>]) -> Result<Userinfo, ConfigError> {
        let endpoint = match self.endpoint {
            Some(url) => Some(
                crate::http::check_url(&url, http.allow_private_networks, true)
                    .map_err(|e| ConfigError::new("userinfo_endpoint", e))?,
            ),
            None => None,
        };
        let ttl = self.ttl.unwrap_or(DEFAULT_USERINFO_CACHE_TTL);
        if ttl.is_zero() || ttl > MAX_USERINFO_CACHE_TTL {
            return Err(ConfigError::new(
                "userinfo_cache_ttl",
                "the userinfo cache TTL must be positive and at most 1 hour",
            ));
        }
        let capacity = self.capacity.unwrap_or(DEFAULT_USERINFO_CACHE_CAPACITY);
        let max_bytes = self.max_bytes.unwrap_or(DEFAULT_USERINFO_CACHE_MAX_BYTES);
        if capacity > 1_000_000 || max_bytes < 64 * 1024 {
            return Err(ConfigError::new(
                "userinfo_cache",
                "the userinfo cache holds at most 1 000 000 entries (0 turns it off) and needs at least 64 KiB",
            ));
        }
        Ok(Userinfo {
            endpoint,
            http,
            tls_roots: tls_roots.to_vec(),
            client: OnceLock::new(),
            ttl,
            capacity,
            max_bytes,
            cache: Mutex::new(Cache::default()),
            in_flight: Mutex::new(HashMap::new()),
        })
    }
}

/// Why a `/userinfo` lookup failed, shared by every request of one flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    Refused,
    SubjectMismatch,
    Invalid,
    Unavailable,
    /// What to configure: said by the `misconfigured` refusal's one log event (ERROR),
    /// not logged here.
    NotConfigured(Box<str>),
}

impl From<Failure> for RejectionKind {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused => Self::InvalidToken(TokenError::UserinfoRefused),
            Failure::SubjectMismatch => Self::InvalidToken(TokenError::UserinfoSubjectMismatch),
            Failure::Invalid => Self::UserinfoInvalid,
            Failure::Unavailable => Self::UserinfoUnavailable { retry_after_secs: USERINFO_RETRY_AFTER_SECS },
            Failure::NotConfigured(_) => Self::Misconfigured,
        }
    }
}

pub(crate) type Flight = Arc<OnceCell<Result<Arc<Profile>, Failure>>>;

/// The `/userinfo` client of one authority: where, the HTTP client, the cache and the
/// flights in progress.
pub(crate) struct Userinfo {
    pub(crate) endpoint: Option<Url>,
    pub(crate) http: HttpLimits,
    pub(crate) tls_roots: Vec<Vec<u8>>,
    /// Made on first use; its error is what to configure.
    pub(crate) client: OnceLock<Result<IssuerClient, ConfigError>>,
    pub(crate) ttl: Duration,
    pub(crate) capacity: usize,
    pub(crate) max_bytes: usize,
    pub(crate) cache: Mutex<Cache>,
    pub(crate) in_flight: Mutex<HashMap<Box<str>, Flight>>,
}

impl fmt::Debug for Userinfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Userinfo")
            .field("endpoint", &self.endpoint.as_ref().map(Url::as_str))
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
pub(crate) struct Cache {
    map: HashMap<Box<str>, Cached>,
    bytes: usize,
}

struct Cached {
    profile: Arc<Profile>,
    /// The token's `exp`, seconds since the epoch (the authority's clock).
    token_exp: f64,
    inserted: Instant,
}

impl Cached {
    fn cost(&self, token: &str) -> usize {
        token.len() + self.profile.json.len() + ENTRY_OVERHEAD
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain maps: a panic while holding the lock cannot leave them inconsistent.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Userinfo {
    pub(crate) fn client(&self) -> Result<&IssuerClient, Failure> {
        self.client.get_or_init(|| IssuerClient::new(self.http, &self.tls_roots)).as_ref().map_err(|error| {
            Failure::NotConfigured(format!("the userinfo HTTP client could not be built: {error}").into())
        })
    }

    pub(crate) fn cached(&self, token: &str, now: f64) -> Option<Arc<Profile>> {
        let cache = lock(&self.cache);
        let entry = cache.map.get(token)?;
        (now < entry.token_exp && entry.inserted.elapsed() < self.ttl).then(|| Arc::clone(&entry.profile))
    }

    pub(crate) fn remember(&self, token: &str, profile: &Arc<Profile>, token_exp: f64) {
        let entry = Cached { profile: Arc::clone(profile), token_exp, inserted: Instant::now() };
        let needed = entry.cost(token);
        if self.capacity == 0 || needed > self.max_bytes {
            return;
        }
        let mut guard = lock(&self.cache);
        let cache = &mut *guard;
        if let Some((key, old)) = cache.map.remove_entry(token) {
            cache.bytes = cache.bytes.saturating_sub(old.cost(&key));
        }
        let full = |c: &Cache| c.map.len() >= self.capacity || c.bytes + needed > self.max_bytes;
        if full(cache) {
            let ttl = self.ttl;
            let mut freed = 0;
            cache.map.retain(|key, e| {
                let keep = e.inserted.elapsed() < ttl;
                if !keep {
                    freed += e.cost(key);
                }
                keep
            });
            cache.bytes = cache.bytes.saturating_sub(freed);
        }
        while full(cache) {
            let Some(victim) = cache.map.keys().next().cloned() else {
                break;
            };
            if let Some(old) = cache.map.remove(&victim) {
                cache.bytes = cache.bytes.saturating_sub(old.cost(&victim));
            }
        }
        cache.bytes += needed;
        cache.map.insert(token.into(), entry);
    }

    /// The endpoint to call: configured, or discovered.
    pub(crate) async fn endpoint(&self, keys: &KeySource) -> Result<Url, Failure> {
        if let Some(url) = &self.endpoint {
            return Ok(url.clone());
        }
        let KeySource::Remote(remote) = keys else {
            return Err(Failure::NotConfigured(
                "UserInfo needs .userinfo_endpoint(url): with static keys there is no discovery document".into(),
            ));
        };
        match remote.metadata().await {
            Ok(metadata) => metadata.userinfo_endpoint.clone().ok_or_else(|| {
                Failure::NotConfigured(
                    "the issuer's discovery document has no usable userinfo_endpoint: configure it with \
                     .userinfo_endpoint(url)"
                        .into(),
                )
            }),
            Err(FetchError::BadJwksUri(why)) => Err(Failure::NotConfigured(
                format!("UserInfo needs .userinfo_endpoint(url) when jwks_uri is configured ({why})").into(),
            )),
            Err(error) => {
                tracing::warn!(target: "scopegate", error = error.code(), "discovery for the userinfo endpoint failed");
                Err(Failure::Unavailable)
            }
        }
    }
}

/// What the issuer said about the user.
pub(crate) struct Profile {
    pub(crate) claims: Map<String, Value>,
    pub(crate) json: String,
    pub(crate) signed: bool,
}
