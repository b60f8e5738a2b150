//! The JWKS cache: the issuer's keys, fetched over HTTP and kept fresh through rotation,
//! outages and floods of unknown `kid`s (security spec section 10).
//!
//! - **Readers never wait.** The current key set is an atomically swapped `Arc`
//!   ([`arc_swap`]); verifying a token with a known `kid` loads it and goes on, whatever a
//!   refresh is doing.
//! - **Single flight.** A refresh runs as its own task; every request that needs it waits
//!   on a `watch` channel for it to finish. No lock is held across an `.await`.
//! - **Cooldown.** At most one fetch per cooldown (default 30 s) is started for unknown
//!   kids, and a bounded negative cache answers repeats of the same unknown kid at once.
//! - **TTL.** `Cache-Control: max-age` clamped to [5 min, 24 h] (1 h when absent, the
//!   minimum for `no-store`/`no-cache`); a background task refreshes at 80 % of the TTL.
//! - **Outages.** A failed fetch keeps the last good set; it is served stale for up to
//!   `max_stale` (default 24 h) past its expiry, then requests get 503 with
//!   `Retry-After`. A successful fetch replaces the set whole, so a key the issuer removed
//!   stops working at once.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use reqwest::Url;
use tokio::sync::watch;

use crate::{
    algorithm::Algorithm,
    discovery,
    http::{FetchError, IssuerClient},
    keys::{KeyRejection, KeySet, KeySetError},
    source::Unavailable,
};

/// The default minimum interval between fetches triggered by unknown kids.
pub const DEFAULT_REFRESH_COOLDOWN: Duration = Duration::from_secs(30);
/// The default lower bound of a key set's TTL.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(5 * 60);
/// The default upper bound of a key set's TTL.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The TTL of a key set served without `Cache-Control: max-age`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);
/// How long past its expiry a key set is still used while the issuer is unreachable.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 60 * 60);
/// How many unknown kids are remembered.
const NEGATIVE_CACHE_SIZE: usize = 1024;
/// The longest wait between retries while fetches fail.
const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Timing policy of the cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CachePolicy {
    pub(crate) cooldown: Duration,
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) max_stale: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            cooldown: DEFAULT_REFRESH_COOLDOWN,
            min_ttl: DEFAULT_MIN_TTL,
            max_ttl: DEFAULT_MAX_TTL,
            max_stale: DEFAULT_MAX_STALE,
        }
    }
}

/// Where the key set lives.
#[derive(Debug)]
pub(crate) enum Location {
    /// A configured `jwks_uri`.
    Fixed(Url),
    /// Found through discovery from the issuer URL (then remembered).
    Discover(Url),
}

struct Snapshot {
    keys: Arc<KeySet>,
    refresh_at: Instant,
    expires: Instant,
}

#[derive(Default)]
struct RefreshState {
    in_flight: bool,
    last_attempt: Option<Instant>,
    consecutive_failures: u32,
    unknown_kids: HashMap<Box<str>, Instant>,
}

/// Counters for fetches and key changes.
#[derive(Debug, Default)]
pub(crate) struct JwksCounters {
    pub(crate) fetches: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) key_changes: AtomicU64,
    /// Successful fetches: the key-set generation.
    pub(crate) stores: AtomicU64,
}

/// The cache for one issuer's keys.
pub(crate) struct RemoteKeys {
    client: IssuerClient,
    issuer: Box<str>,
    location: Location,
    discovered: ArcSwapOption<Url>,
    allowed: Vec<Algorithm>,
    allow_private: bool,
    policy: CachePolicy,
    current: ArcSwapOption<Snapshot>,
    state: Mutex<RefreshState>,
    generation: watch::Sender<u64>,
    pub(crate) counters: JwksCounters,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("issuer", &self.issuer)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl RemoteKeys {
    pub(crate) fn new(
        client: IssuerClient,
        issuer: Box<str>,
        location: Location,
        allowed: Vec<Algorithm>,
        allow_private: bool,
        policy: CachePolicy,
    ) -> Arc<Self> {
        Arc::new(Self {
            client,
            issuer,
            location,
            discovered: ArcSwapOption::empty(),
            allowed,
            allow_private,
            policy,
            current: ArcSwapOption::empty(),
            state: Mutex::new(RefreshState::default()),
            generation: watch::Sender::new(0),
            counters: JwksCounters::default(),
        })
    }

    /// Bumped by every successful fetch.
    pub(crate) fn generation(&self) -> u64 {
        self.counters.stores.load(Ordering::Acquire)
    }

    /// Fetches once, now, reporting the outcome (used by `connect()`).
    pub(crate) async fn fetch_now(self: &Arc<Self>) -> Result<(), FetchError> {
        {
            let mut state = self.lock_state();
            state.in_flight = true;
            state.last_attempt = Some(Instant::now());
        }
        let result = self.fetch().await;
        self.finish(&result);
        result
    }

    /// Starts the background task that keeps the set fresh. It ends when the last
    /// `Authority` using this cache is dropped.
    pub(crate) fn spawn_maintenance(self: &Arc<Self>) {
        if self.current.load().is_none() {
            self.start_refresh(false);
        }
        let weak = Arc::downgrade(self);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(maintain(weak));
        }
    }

    /// The current key set, without waiting.
    pub(crate) fn snapshot(self: &Arc<Self>) -> Result<Arc<KeySet>, Unavailable> {
        match self.current.load_full() {
            Some(snapshot) if self.within_max_stale(&snapshot) => Ok(Arc::clone(&snapshot.keys)),
            _ => Err(self.unavailable()),
        }
    }

    /// Whether the current set may be used, without taking a reference to it.
    pub(crate) fn check_usable(self: &Arc<Self>) -> Result<(), Unavailable> {
        match self.current.load().as_deref() {
            Some(snapshot) if self.within_max_stale(snapshot) => Ok(()),
            _ => Err(self.unavailable()),
        }
    }

    fn within_max_stale(&self, snapshot: &Snapshot) -> bool {
        Instant::now() <= snapshot.expires + self.policy.max_stale
    }

    /// No usable keys: nudge a refresh (within the cooldown) and tell the client to retry.
    fn unavailable(self: &Arc<Self>) -> Unavailable {
        self.start_refresh(true);
        Unavailable { retry_after_secs: self.retry_after_secs() }
    }

    /// A token named a `kid` the current set lacks: refresh once (single flight, at most
    /// once per cooldown) and return the newest set. When the cooldown forbids a fetch,
    /// the current set is returned as is: a refresh that finished meanwhile may hold the
    /// kid, and a kid refused now is not blocked beyond the cooldown of the last fetch.
    pub(crate) async fn refresh_for_unknown_kid(self: &Arc<Self>, kid: &str) -> Option<Arc<KeySet>> {
        let current = || self.current.load_full().map(|snapshot| Arc::clone(&snapshot.keys));
        if self.lock_state().unknown_kids.get(kid).is_some_and(|seen| seen.elapsed() < self.policy.cooldown) {
            return current();
        }
        let mut done = self.generation.subscribe();
        let start = *done.borrow_and_update();
        if !self.start_refresh(true) {
            return current();
        }
        let wait = self.client_total_timeout() + Duration::from_secs(1);
        let _ = tokio::time::timeout(wait, done.wait_for(|generation| *generation != start)).await;
        let keys = current()?;
        if !keys.has_kid(kid) {
            // Still unknown after a fetch: answer repeats at once until the next fetch may run.
            self.remember_unknown(kid);
        }
        Some(keys)
    }

    fn client_total_timeout(&self) -> Duration {
        self.client.total_timeout()
    }

    fn retry_after_secs(&self) -> u32 {
        u32::try_from(self.policy.cooldown.as_secs()).unwrap_or(u32::MAX).max(1)
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, RefreshState> {
        // A panic while holding this lock cannot leave the state inconsistent (plain
        // fields), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remember_unknown(&self, kid: &str) {
        let mut state = self.lock_state();
        if state.unknown_kids.len() >= NEGATIVE_CACHE_SIZE {
            let cooldown = self.policy.cooldown;
            state.unknown_kids.retain(|_, seen| seen.elapsed() < cooldown);
            if state.unknown_kids.len() >= NEGATIVE_CACHE_SIZE {
                state.unknown_kids.clear();
            }
        }
        // Dated by the fetch that did not find it, so the entry ends with that fetch's cooldown.
        let seen = state.last_attempt.unwrap_or_else(Instant::now);
        state.unknown_kids.insert(kid.into(), seen);
    }

    /// Starts a fetch task unless one is running (then `true`: wait for it) or the
    /// cooldown forbids it (`false`).
    fn start_refresh(self: &Arc<Self>, respect_cooldown: bool) -> bool {
        // Outside a Tokio runtime (a caller polling `Authority::verify` by hand) no task can
        // be spawned: answer from the current set rather than panic.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        {
            let mut state = self.lock_state();
            if state.in_flight {
                return true;
            }
            if respect_cooldown && state.last_attempt.is_some_and(|last| last.elapsed() < self.policy.cooldown) {
                return false;
            }
            state.in_flight = true;
            state.last_attempt = Some(Instant::now());
        }
        let this = Arc::clone(self);
        runtime.spawn(async move {
            let result = this.fetch().await;
            this.finish(&result);
        });
        true
    }

    /// Records a fetch's outcome and wakes everyone waiting for it.
    fn finish(&self, result: &Result<(), FetchError>) {
        {
            let mut state = self.lock_state();
            state.in_flight = false;
            match result {
                Ok(()) => state.consecutive_failures = 0,
                Err(_) => state.consecutive_failures = state.consecutive_failures.saturating_add(1),
            }
        }
        if let Err(error) = result {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
            let stale = self.current.load().is_some();
            tracing::warn!(
                target: "scopegate",
                issuer = %self.issuer,
                error = error.code(),
                detail = %error,
                keeping_last_good_keys = stale,
                "JWKS fetch failed"
            );
        }
        self.generation.send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    async fn jwks_url(&self) -> Result<Arc<Url>, FetchError> {
        match &self.location {
            Location::Fixed(url) => Ok(Arc::new(url.clone())),
            Location::Discover(issuer_url) => {
                if let Some(url) = self.discovered.load_full() {
                    return Ok(url);
                }
                let url =
                    Arc::new(discovery::jwks_uri(&self.client, &self.issuer, issuer_url, self.allow_private).await?);
                self.discovered.store(Some(Arc::clone(&url)));
                Ok(url)
            }
        }
    }

    async fn fetch(&self) -> Result<(), FetchError> {
        self.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let url = self.jwks_url().await?;
        let fetched = self.client.get(&url).await?;
        let set = KeySet::from_jwks(&fetched.body, &self.allowed).map_err(|error| match error {
            KeySetError::NotAJwks => FetchError::NotJson,
            other => FetchError::BadKeySet(other.to_string()),
        })?;
        for (index, why) in &set.rejected {
            if *why == KeyRejection::PrivateKeyMaterial {
                tracing::error!(target: "scopegate", issuer = %self.issuer, index, "the issuer publishes private key material in its JWKS; key skipped");
            } else {
                tracing::warn!(target: "scopegate", issuer = %self.issuer, index, reason = why.code(), "JWK not admitted");
            }
        }
        let ttl = ttl(fetched.cache_control.as_deref(), &self.policy);
        let now = Instant::now();
        let previous = self.current.load_full();
        let changed = previous.as_ref().is_none_or(|p| !p.keys.same_kids(&set));
        if changed {
            self.counters.key_changes.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                target: "scopegate",
                issuer = %self.issuer,
                keys = set.len(),
                kids = ?set.kid_list(),
                "JWKS key set loaded"
            );
        }
        self.current.store(Some(Arc::new(Snapshot {
            keys: Arc::new(set),
            refresh_at: now + ttl.mul_f64(0.8),
            expires: now + ttl,
        })));
        self.counters.stores.fetch_add(1, Ordering::Release);
        self.lock_state().unknown_kids.clear();
        Ok(())
    }

    /// How long the maintenance task sleeps before its next fetch.
    fn next_maintenance_in(&self) -> Duration {
        let failures = self.lock_state().consecutive_failures;
        let backoff =
            |base: Duration| base.saturating_mul(1u32 << failures.saturating_sub(1).min(10)).min(MAX_RETRY_INTERVAL);
        match self.current.load_full() {
            None => backoff(Duration::from_secs(1)).min(self.policy.cooldown.max(Duration::from_secs(1))),
            Some(_) if failures > 0 => backoff(self.policy.cooldown),
            Some(snapshot) => snapshot.refresh_at.saturating_duration_since(Instant::now()),
        }
    }
}

async fn maintain(weak: Weak<RemoteKeys>) {
    loop {
        let Some(delay) = weak.upgrade().map(|keys| keys.next_maintenance_in()) else {
            return;
        };
        tokio::time::sleep(delay).await;
        let Some(keys) = weak.upgrade() else {
            return;
        };
        let mut done = keys.generation.subscribe();
        let start = *done.borrow_and_update();
        if keys.start_refresh(false) {
            let wait = keys.client_total_timeout().saturating_mul(3);
            let _ = tokio::time::timeout(wait, done.wait_for(|generation| *generation != start)).await;
        }
    }
}

/// The TTL a response asks for, clamped to the policy (security spec case 160).
fn ttl(cache_control: Option<&str>, policy: &CachePolicy) -> Duration {
    let Some(value) = cache_control else {
        return DEFAULT_TTL.clamp(policy.min_ttl, policy.max_ttl);
    };
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return policy.min_ttl;
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            max_age = seconds.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    max_age.unwrap_or(DEFAULT_TTL).clamp(policy.min_ttl, policy.max_ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_clamped() {
        let policy = CachePolicy::default();
        assert_eq!(ttl(None, &policy), DEFAULT_TTL);
        assert_eq!(ttl(Some("public, max-age=600"), &policy), Duration::from_secs(600));
        assert_eq!(ttl(Some("max-age=5"), &policy), DEFAULT_MIN_TTL);
        assert_eq!(ttl(Some("max-age=99999999"), &policy), DEFAULT_MAX_TTL);
        assert_eq!(ttl(Some("no-store"), &policy), DEFAULT_MIN_TTL);
        assert_eq!(ttl(Some("max-age=600, no-cache"), &policy), DEFAULT_MIN_TTL);
        assert_eq!(ttl(Some("max-age=abc"), &policy), DEFAULT_TTL);
    }
}
