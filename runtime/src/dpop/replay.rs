//! Replay detection for DPoP proofs (RFC 9449 §11.1): each proof's `jti` is accepted once
//! for as long as the proof could be accepted at all.
//!
//! [`ReplayStore`] is the seam: [`MemoryReplayStore`] (the default) remembers what one
//! process saw; [`RedisReplayStore`] (feature `redis`) shares one record between every
//! replica of an API, so a proof replayed on another instance is refused too.

use std::{
    collections::HashMap,
    error::Error,
    fmt,
    future::Future,
    pin::Pin,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// The future a [`ReplayStore`] returns.
pub type ReplayFuture<'a> = Pin<Box<dyn Future<Output = Result<Freshness, ReplayStoreError>> + Send + 'a>>;

/// Whether a proof was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Freshness {
    /// First sighting: the key is now recorded.
    Fresh,
    /// The key was already recorded and has not expired: a replay.
    Replayed,
}

/// Where the `jti`s of accepted DPoP proofs are remembered.
///
/// `check_and_insert` must be atomic: of two concurrent calls with one key, exactly one
/// sees [`Freshness::Fresh`]. An error refuses the request (503 with `Retry-After`,
/// reason `dpop_replay_store_unavailable`): a proof is never accepted unchecked.
pub trait ReplayStore: Send + Sync + fmt::Debug + 'static {
    /// Records `key` for `ttl` unless it is recorded already. `key` is a fixed-length
    /// base64url string (a SHA-256 hash of the proof key's thumbprint and the `jti`).
    fn check_and_insert<'a>(&'a self, key: &'a str, ttl: Duration) -> ReplayFuture<'a>;
}

/// A replay store that could not answer.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ReplayStoreError {
    message: &'static str,
    source: Option<Box<dyn Error + Send + Sync>>,
}

impl ReplayStoreError {
    /// An error with a fixed message and, when there is one, its cause.
    #[must_use]
    pub fn new(message: &'static str, source: Option<Box<dyn Error + Send + Sync>>) -> Self {
        Self { message, source }
    }
}

/// The default capacity of a [`MemoryReplayStore`].
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// The in-process replay store: a map of keys to their expiry, bounded.
///
/// When full it drops expired entries (at most once a second); when every entry is still
/// live it refuses new proofs (fail closed) rather than forget one that could be replayed.
/// With several replicas, use [`RedisReplayStore`] instead: each process would otherwise
/// accept a proof once.
#[derive(Debug)]
pub struct MemoryReplayStore {
    state: Mutex<MemoryState>,
    capacity: usize,
}

#[derive(Debug)]
struct MemoryState {
    entries: HashMap<Box<str>, Instant>,
    last_purge: Option<Instant>,
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl MemoryReplayStore {
    /// A store for at most `capacity` live proofs (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { state: Mutex::new(MemoryState { entries: HashMap::new(), last_purge: None }), capacity: capacity.max(1) }
    }

    /// How many keys are recorded (live or not yet purged).
    #[must_use]
    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).entries.len()
    }

    /// Whether no key is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check(&self, key: &str, ttl: Duration, now: Instant) -> Result<Freshness, ReplayStoreError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(expires) = state.entries.get(key) {
            if *expires > now {
                return Ok(Freshness::Replayed);
            }
        } else if state.entries.len() >= self.capacity {
            let due = state.last_purge.is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1));
            if due {
                state.entries.retain(|_, expires| *expires > now);
                state.last_purge = Some(now);
            }
            if state.entries.len() >= self.capacity {
                return Err(ReplayStoreError::new("the in-memory DPoP replay store is full of live proofs", None));
            }
        }
        state.entries.insert(key.into(), now + ttl);
        Ok(Freshness::Fresh)
    }
}

impl ReplayStore for MemoryReplayStore {
    fn check_and_insert<'a>(&'a self, key: &'a str, ttl: Duration) -> ReplayFuture<'a> {
        let outcome = self.check(key, ttl, Instant::now());
        Box::pin(std::future::ready(outcome))
    }
}

#[cfg(feature = "redis")]
pub use self::redis_store::RedisReplayStore;

#[cfg(feature = "redis")]
mod redis_store {
    use std::time::Duration;

    use redis::aio::{ConnectionManager, ConnectionManagerConfig};

    use super::{Freshness, ReplayFuture, ReplayStore, ReplayStoreError};

    /// The longest a replay check waits for Redis before the request is refused.
    const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

    /// A replay store in Redis (feature `redis`), shared by every replica of an API: each
    /// key is written with `SET key 1 NX PX ttl`, which Redis runs atomically, so of two
    /// instances that see one proof only the first accepts it. Keys are prefixed
    /// `scopegate:dpop:` and expire by themselves.
    ///
    /// The connection reconnects on its own; while Redis is unreachable, DPoP requests are
    /// refused with 503 (`dpop_replay_store_unavailable`), never accepted unchecked.
    #[derive(Clone)]
    pub struct RedisReplayStore {
        connection: ConnectionManager,
        prefix: String,
    }

    impl std::fmt::Debug for RedisReplayStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // Never the URL: it may carry a password.
            f.debug_struct("RedisReplayStore").field("prefix", &self.prefix).finish_non_exhaustive()
        }
    }

    impl RedisReplayStore {
        /// Connects to `url` (`redis://host:port/db`, `rediss://…` for TLS needs the redis
        /// crate's TLS features) and checks the connection.
        ///
        /// # Errors
        /// When the URL is not a Redis URL or the server cannot be reached.
        pub async fn connect(url: &str) -> Result<Self, ReplayStoreError> {
            let client = redis::Client::open(url)
                .map_err(|e| ReplayStoreError::new("not a usable Redis URL", Some(Box::new(e))))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(RESPONSE_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(2);
            let connection = ConnectionManager::new_with_config(client, config)
                .await
                .map_err(|e| ReplayStoreError::new("cannot connect to Redis", Some(Box::new(e))))?;
            Ok(Self { connection, prefix: "scopegate:dpop:".to_owned() })
        }

        /// The same store with keys under another prefix (default `scopegate:dpop:`), for
        /// several APIs sharing one Redis database.
        #[must_use]
        pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
            self.prefix = prefix.into();
            self
        }
    }

    impl ReplayStore for RedisReplayStore {
        fn check_and_insert<'a>(&'a self, key: &'a str, ttl: Duration) -> ReplayFuture<'a> {
            Box::pin(async move {
                let mut connection = self.connection.clone();
                let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let reply: Option<String> = redis::cmd("SET")
                    .arg(format!("{}{key}", self.prefix))
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| ReplayStoreError::new("the Redis replay check failed", Some(Box::new(e))))?;
                // `OK` when the key was set; nil when it existed (NX).
                Ok(if reply.is_some() { Freshness::Fresh } else { Freshness::Replayed })
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_fresh_once_until_it_expires() {
        let store = MemoryReplayStore::new(10);
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        assert_eq!(store.check("k", ttl, now).unwrap(), Freshness::Fresh);
        assert_eq!(store.check("k", ttl, now + Duration::from_secs(59)).unwrap(), Freshness::Replayed);
        assert_eq!(store.check("k", ttl, now + Duration::from_secs(60)).unwrap(), Freshness::Fresh);
    }

    #[test]
    fn a_full_store_drops_expired_keys_and_refuses_when_all_are_live() {
        let store = MemoryReplayStore::new(2);
        let now = Instant::now();
        store.check("a", Duration::from_secs(1), now).unwrap();
        store.check("b", Duration::from_secs(100), now).unwrap();
        // "a" has expired: purged to make room.
        let later = now + Duration::from_secs(2);
        assert_eq!(store.check("c", Duration::from_secs(100), later).unwrap(), Freshness::Fresh);
        assert_eq!(store.len(), 2);
        // Both live: refused, not forgotten (and no second purge within the second).
        assert!(store.check("d", Duration::from_secs(100), later).is_err());
        assert!(store.check("d", Duration::from_secs(100), later + Duration::from_secs(5)).is_err());
        assert_eq!(store.check("b", Duration::from_secs(100), later).unwrap(), Freshness::Replayed);
    }

    #[test]
    fn a_store_is_empty_until_a_key_is_recorded() {
        let store = MemoryReplayStore::new(10);
        assert!(store.is_empty());
        store.check("k", Duration::from_secs(60), Instant::now()).unwrap();
        assert!(!store.is_empty());
    }

    #[test]
    fn a_full_store_looks_for_expired_keys_at_most_once_a_second() {
        let store = MemoryReplayStore::new(1);
        let now = Instant::now();
        let at = |millis| now + Duration::from_millis(millis);
        store.check("a", Duration::from_secs(1), now).unwrap();
        // Full, and "a" still live: the purge at 0.9 s finds nothing to drop.
        assert!(store.check("b", Duration::from_secs(100), at(900)).is_err());
        // "a" has expired at 1.2 s, but the last purge was 0.3 s ago: still full.
        assert!(store.check("b", Duration::from_secs(100), at(1200)).is_err());
        // A second after that purge, the next one drops "a".
        assert_eq!(store.check("b", Duration::from_secs(100), at(1900)).unwrap(), Freshness::Fresh);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_key_expiring_at_the_purge_instant_is_dropped() {
        let store = MemoryReplayStore::new(1);
        let now = Instant::now();
        store.check("a", Duration::from_secs(1), now).unwrap();
        // "a" expires at exactly now + 1 s, as it stops counting as a replay.
        let expiry = now + Duration::from_secs(1);
        assert_eq!(store.check("b", Duration::from_secs(1), expiry).unwrap(), Freshness::Fresh);
        assert_eq!(store.len(), 1);
    }
}
