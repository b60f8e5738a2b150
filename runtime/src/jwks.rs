//! The JWKS cache: the issuer's keys, fetched over HTTP and kept fresh through rotation,
//! outages and floods of unknown `kid`s (security spec section 10).
//!
//! - **Readers never wait.** The current key set is an atomically swapped `Arc`
//!   ([`arc_swap`]); verifying a token with a known `kid` loads it and goes on, whatever a
//!   refresh is doing.
//! - **Single flight.** A refresh runs as its own task; every request that needs it waits
//!   on a `watch` channel for it to finish. No lock is held across an `.await`.
//! - **Cooldown and budget.** At most one fetch per cooldown (default 30 s) is started for
//!   unknown kids or for a request that found no usable keys, a bounded negative cache
//!   answers repeats of the same unknown kid at once, and those fetches also draw on a
//!   token bucket per issuer (default 60 an hour, burst 5). The scheduled refreshes
//!   below never draw on it, so a real rotation is never starved.
//! - **TTL.** `Cache-Control: max-age` clamped to [5 min, 24 h] (1 h when absent, the
//!   minimum for `no-store`/`no-cache`); a background task refreshes at 80 % of the TTL
//!   after the last successful fetch.
//! - **No wedge.** A fetch in flight is marked by a guard that clears the mark and wakes
//!   every waiter when it is dropped, so a fetch task that panics or is cancelled (its
//!   runtime shut down) never blocks later refreshes. Every instant computed from an
//!   issuer's `max-age` or a setting uses checked arithmetic.
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
    config::ConfigError,
    discovery,
    http::{FetchError, IssuerClient},
    keys::{KeyRejection, KeySet, KeySetError, Unavailable},
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
/// The largest upper TTL bound and the largest `max_stale` the builder accepts (7 days).
pub const MAX_JWKS_DURATION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// After a failed discovery fetch, callers within this long get the same failure without
/// a new request: a flood of opaque tokens or `/userinfo` lookups against an issuer that is
/// down makes at most one discovery request per second. (The key refresh backs off from
/// one second, so its retries are never held back.)
const DISCOVERY_RETRY: Duration = Duration::from_secs(1);

/// The longest refresh cooldown the builder accepts.
pub const MAX_REFRESH_COOLDOWN: Duration = Duration::from_secs(60 * 60);
/// The default budget of on-demand key fetches per issuer: refilled at this many an hour.
pub const DEFAULT_FETCH_BUDGET_PER_HOUR: u32 = 60;
/// The default burst of the fetch budget: this many on-demand fetches may run back to back
/// (each still one cooldown apart).
pub const DEFAULT_FETCH_BUDGET_BURST: u32 = 5;
/// The largest refill rate of the fetch budget the builder accepts (one a second).
pub const MAX_FETCH_BUDGET_PER_HOUR: u32 = 3600;
/// The largest burst of the fetch budget the builder accepts.
pub const MAX_FETCH_BUDGET_BURST: u32 = 100;
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
    /// On-demand fetches refilled per hour.
    pub(crate) budget_per_hour: u32,
    /// On-demand fetches available at once.
    pub(crate) budget_burst: u32,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            cooldown: DEFAULT_REFRESH_COOLDOWN,
            min_ttl: DEFAULT_MIN_TTL,
            max_ttl: DEFAULT_MAX_TTL,
            max_stale: DEFAULT_MAX_STALE,
            budget_per_hour: DEFAULT_FETCH_BUDGET_PER_HOUR,
            budget_burst: DEFAULT_FETCH_BUDGET_BURST,
        }
    }
}

impl CachePolicy {
    /// Checks the cache's bounds, naming the builder setting that is out of them.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.cooldown < Duration::from_secs(1) || self.cooldown > MAX_REFRESH_COOLDOWN {
            return Err(ConfigError::new(
                "jwks_refresh_cooldown",
                "the refresh cooldown must be at least 1 second and at most 1 hour",
            ));
        }
        if self.min_ttl < Duration::from_secs(1) || self.min_ttl > self.max_ttl || self.max_ttl > MAX_JWKS_DURATION {
            return Err(ConfigError::new(
                "jwks_ttl_bounds",
                "the TTL bounds need 1 s <= min <= max, with max at most 7 days",
            ));
        }
        if self.max_stale > MAX_JWKS_DURATION {
            return Err(ConfigError::new("jwks_max_stale", "the stale-serving window may be at most 7 days"));
        }
        if !(1..=MAX_FETCH_BUDGET_PER_HOUR).contains(&self.budget_per_hour)
            || !(1..=MAX_FETCH_BUDGET_BURST).contains(&self.budget_burst)
        {
            return Err(ConfigError::new(
                "jwks_fetch_budget",
                "the fetch budget needs 1 to 3600 fetches an hour and a burst of 1 to 100",
            ));
        }
        Ok(())
    }
}

/// `now + by`, or a far instant if that cannot be represented (never reached with the
/// bounds the builder enforces; no panic either way).
fn later(now: Instant, by: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    now.checked_add(by).or_else(|| now.checked_add(CENTURY.min(by))).unwrap_or(now)
}

/// The budget of on-demand fetches: a token bucket holding up to `burst` fetches,
/// refilled continuously at `per_hour`.
#[derive(Debug)]
struct FetchBudget {
    tokens: f64,
    updated: Instant,
}

impl FetchBudget {
    fn full(policy: &CachePolicy) -> Self {
        Self { tokens: f64::from(policy.budget_burst), updated: Instant::now() }
    }

    /// Takes one fetch from the budget, if there is one.
    fn take(&mut self, policy: &CachePolicy, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        let refill = elapsed * f64::from(policy.budget_per_hour) / 3600.0;
        self.tokens = (self.tokens + refill).min(f64::from(policy.budget_burst));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
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

struct RefreshState {
    in_flight: bool,
    last_attempt: Option<Instant>,
    consecutive_failures: u32,
    unknown_kids: HashMap<Box<str>, Instant>,
    budget: FetchBudget,
}

/// A fetch in flight: created with `in_flight` set, it clears it and wakes every waiter
/// when dropped, whether the fetch ended, panicked or was cancelled (a task dropped with
/// its runtime, or never polled).
struct Flight {
    keys: Arc<RemoteKeys>,
    landed: bool,
}

impl Flight {
    /// Marks a fetch in flight; the caller holds the state lock and checked none is.
    fn take_off(keys: &Arc<RemoteKeys>, state: &mut RefreshState) -> Self {
        state.in_flight = true;
        state.last_attempt = Some(Instant::now());
        Self { keys: Arc::clone(keys), landed: false }
    }

    /// Runs the fetch and records its outcome.
    async fn run(mut self) -> Result<(), FetchError> {
        let result = self.keys.fetch().await;
        self.landed = true;
        self.keys.finish(&result);
        result
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        if !self.landed {
            tracing::warn!(
                target: "scopegate",
                issuer = %self.keys.issuer,
                "JWKS fetch abandoned: its task panicked or was cancelled"
            );
            self.keys.land(false);
        }
    }
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
    discovered: ArcSwapOption<discovery::Metadata>,
    /// Held while the discovery document is fetched (one fetch at a time); remembers the
    /// last failure so that requests within [`DISCOVERY_RETRY`] of it fetch nothing.
    discovery_attempt: tokio::sync::Mutex<Option<(Instant, FetchError)>>,
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
            discovery_attempt: tokio::sync::Mutex::new(None),
            allowed,
            allow_private,
            policy,
            current: ArcSwapOption::empty(),
            state: Mutex::new(RefreshState {
                in_flight: false,
                last_attempt: None,
                consecutive_failures: 0,
                unknown_kids: HashMap::new(),
                budget: FetchBudget::full(&policy),
            }),
            generation: watch::Sender::new(0),
            counters: JwksCounters::default(),
        })
    }

    /// Whether the issuer's metadata comes from discovery (no `jwks_uri` configured).
    pub(crate) fn discovers(&self) -> bool {
        matches!(self.location, Location::Discover(_))
    }

    /// Bumped by every successful fetch.
    pub(crate) fn generation(&self) -> u64 {
        self.counters.stores.load(Ordering::Acquire)
    }

    /// Fetches once, now, reporting the outcome (used by `connect()`).
    pub(crate) async fn fetch_now(self: &Arc<Self>) -> Result<(), FetchError> {
        let flight = Flight::take_off(self, &mut self.lock_state());
        flight.run().await
    }

    /// Starts the background task that keeps the set fresh. It ends when the last
    /// `Authority` using this cache is dropped.
    pub(crate) fn spawn_maintenance(self: &Arc<Self>) {
        if self.current.load().is_none() {
            self.start_refresh(Trigger::Scheduled);
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

    /// Whether the current set may be used at `at`, without taking a reference to it.
    pub(crate) fn check_usable(self: &Arc<Self>, at: Instant) -> Result<(), Unavailable> {
        match self.current.load().as_deref() {
            Some(snapshot) if self.within_max_stale_at(snapshot, at) => Ok(()),
            _ => Err(self.unavailable()),
        }
    }

    fn within_max_stale(&self, snapshot: &Snapshot) -> bool {
        self.within_max_stale_at(snapshot, Instant::now())
    }

    /// [`within_max_stale`](Self::within_max_stale) at `at` (the caller's clock reading).
    fn within_max_stale_at(&self, snapshot: &Snapshot, at: Instant) -> bool {
        snapshot.expires.checked_add(self.policy.max_stale).is_none_or(|until| at <= until)
    }

    /// No usable keys: nudge a refresh (within the cooldown and the budget) and tell the
    /// client to retry.
    fn unavailable(self: &Arc<Self>) -> Unavailable {
        self.start_refresh(Trigger::OnDemand);
        Unavailable { retry_after_secs: self.retry_after_secs() }
    }

    /// A token named a `kid` the current set lacks: refresh once (single flight, at most
    /// once per cooldown, within the fetch budget) and return the newest set. When the
    /// cooldown or the budget forbids a fetch, the current set is returned as is: a
    /// refresh that finished meanwhile may hold the kid, and a kid refused now is not
    /// blocked beyond the cooldown of the last fetch.
    pub(crate) async fn refresh_for_unknown_kid(self: &Arc<Self>, kid: &str) -> Option<Arc<KeySet>> {
        let current = || self.current.load_full().map(|snapshot| Arc::clone(&snapshot.keys));
        if self.lock_state().unknown_kids.get(kid).is_some_and(|seen| seen.elapsed() < self.policy.cooldown) {
            return current();
        }
        let mut done = self.generation.subscribe();
        let start = *done.borrow_and_update();
        if !self.start_refresh(Trigger::OnDemand) {
            return current();
        }
        let wait = self.client_total_timeout().saturating_add(Duration::from_secs(1));
        let _ = tokio::time::timeout(wait, done.wait_for(|generation| *generation != start)).await;
        let keys = current()?;
        if !keys.has_kid(kid) {
            // Still unknown after a fetch: answer repeats at once until the next fetch may run.
            self.remember_unknown(kid);
        }
        Some(keys)
    }

    /// The URL of the last discovery or JWKS request that failed.
    pub(crate) fn last_failed_url(&self) -> Option<Url> {
        self.client.last_failed_url()
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

    /// Starts a fetch task unless one is running (then `true`: wait for it) or, for an
    /// on-demand fetch, the cooldown or the budget forbids it (`false`).
    fn start_refresh(self: &Arc<Self>, trigger: Trigger) -> bool {
        // Outside a Tokio runtime (a caller polling `Authority::verify` by hand) no task can
        // be spawned: answer from the current set rather than panic.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let flight = {
            let mut state = self.lock_state();
            if state.in_flight {
                return true;
            }
            if trigger == Trigger::OnDemand {
                if state.last_attempt.is_some_and(|last| last.elapsed() < self.policy.cooldown) {
                    return false;
                }
                if !state.budget.take(&self.policy, Instant::now()) {
                    tracing::debug!(target: "scopegate", issuer = %self.issuer, "JWKS fetch budget exhausted; no on-demand fetch");
                    return false;
                }
            }
            Flight::take_off(self, &mut state)
        };
        // The flight moves into the task: if the task never runs or is dropped mid-fetch,
        // dropping it clears `in_flight` and wakes the waiters.
        runtime.spawn(async move {
            let _ = flight.run().await;
        });
        true
    }

    /// Records a fetch's outcome and wakes everyone waiting for it.
    fn finish(&self, result: &Result<(), FetchError>) {
        if let Err(error) = result {
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
        self.land(result.is_ok());
    }

    /// Ends the flight: clears `in_flight`, counts the outcome and wakes every waiter.
    /// Called from `Flight`'s drop too, so nothing here may panic.
    fn land(&self, succeeded: bool) {
        {
            let mut state = self.lock_state();
            state.in_flight = false;
            state.consecutive_failures = if succeeded { 0 } else { state.consecutive_failures.saturating_add(1) };
        }
        if !succeeded {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        crate::metrics::jwks_fetch(succeeded);
        self.generation.send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    async fn jwks_url(&self) -> Result<Url, FetchError> {
        match &self.location {
            Location::Fixed(url) => Ok(url.clone()),
            Location::Discover(_) => Ok(self.metadata().await?.jwks_uri.clone()),
        }
    }

    /// The issuer's discovered metadata (fetched once, then remembered; one fetch at a time,
    /// and none within [`DISCOVERY_RETRY`] of a failed one). With a configured
    /// `jwks_uri` there is no discovery: `FetchError::BadJwksUri` says so.
    pub(crate) async fn metadata(&self) -> Result<Arc<discovery::Metadata>, FetchError> {
        let Location::Discover(issuer_url) = &self.location else {
            return Err(FetchError::BadJwksUri(
                "a jwks_uri is configured, so the issuer's metadata is not discovered".to_owned(),
            ));
        };
        if let Some(metadata) = self.discovered.load_full() {
            return Ok(metadata);
        }
        let mut last_failure = self.discovery_attempt.lock().await;
        // Another caller may have fetched it while this one waited.
        if let Some(metadata) = self.discovered.load_full() {
            return Ok(metadata);
        }
        if let Some((at, error)) = &*last_failure
            && at.elapsed() < DISCOVERY_RETRY
        {
            return Err(error.clone());
        }
        match discovery::fetch(&self.client, &self.issuer, issuer_url, self.allow_private).await {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                self.discovered.store(Some(Arc::clone(&metadata)));
                *last_failure = None;
                Ok(metadata)
            }
            Err(error) => {
                *last_failure = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    async fn fetch(&self) -> Result<(), FetchError> {
        self.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let url = self.jwks_url().await?;
        let fetched = self.client.get(&url).await?;
        let set = KeySet::from_jwks(&fetched.body, &self.allowed).map_err(|error| match error {
            KeySetError::NotAJwks => FetchError::NotJson,
            other => FetchError::BadKeySet(other),
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
            crate::metrics::key_set_changed();
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
            refresh_at: later(now, refresh_delay(ttl)),
            expires: later(now, ttl),
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

/// What asks for a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// The maintenance task (first load, retries, refresh before expiry): neither the
    /// cooldown nor the budget applies.
    Scheduled,
    /// A request (an unknown kid, or no usable keys): one cooldown apart, within the budget.
    OnDemand,
}

/// When, after a fetch, the next scheduled refresh is due: at 80 % of the TTL.
fn refresh_delay(ttl: Duration) -> Duration {
    ttl.saturating_sub(ttl / 5)
}

async fn maintain(weak: Weak<RemoteKeys>) {
    loop {
        let Some((delay, generation)) = weak.upgrade().map(|keys| (keys.next_maintenance_in(), keys.generation()))
        else {
            return;
        };
        tokio::time::sleep(delay).await;
        let Some(keys) = weak.upgrade() else {
            return;
        };
        if keys.generation() != generation {
            // A fetch succeeded meanwhile (an unknown kid's): the schedule starts from it.
            continue;
        }
        let mut done = keys.generation.subscribe();
        let start = *done.borrow_and_update();
        if keys.start_refresh(Trigger::Scheduled) {
            let wait = keys.client_total_timeout().saturating_mul(3);
            let _ = tokio::time::timeout(wait, done.wait_for(|generation| *generation != start)).await;
        }
    }
}

/// The TTL a response asks for, clamped to the policy (security spec case 160). Any
/// header value, however large or malformed its `max-age`, gives a TTL in the bounds.
pub(crate) fn ttl(cache_control: Option<&str>, policy: &CachePolicy) -> Duration {
    // `Duration::clamp` panics when min > max; the builder forbids that, and this cannot.
    let clamp = |ttl: Duration| ttl.min(policy.max_ttl).max(policy.min_ttl);
    let Some(value) = cache_control else {
        return clamp(DEFAULT_TTL);
    };
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return policy.min_ttl;
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            max_age = delta_seconds(seconds.trim_matches('"')).map(Duration::from_secs);
        }
    }
    clamp(max_age.unwrap_or(DEFAULT_TTL))
}

/// RFC 9111 §1.2.2 delta-seconds: digits only; a value too large to represent counts as
/// the largest one (then clamped to the TTL bounds like any other).
fn delta_seconds(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse::<u64>().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpLimits;

    fn remote(policy: CachePolicy) -> Arc<RemoteKeys> {
        let client = IssuerClient::new(HttpLimits::default(), &[]).unwrap();
        // Nothing listens on port 9 (discard): a fetch fails at once.
        let location = Location::Fixed(Url::parse("http://127.0.0.1:9/jwks").unwrap());
        RemoteKeys::new(client, "http://127.0.0.1:9".into(), location, Algorithm::ASYMMETRIC.to_vec(), false, policy)
    }

    #[test]
    fn huge_and_overflowing_max_ages_are_clamped_without_panicking() {
        let policy = CachePolicy::default();
        for value in [
            "max-age=18446744073709551615",
            "max-age=18446744073709551616",
            "max-age=99999999999999999999999999999999",
            "public, max-age=\"18446744073709551615\"",
        ] {
            assert_eq!(ttl(Some(value), &policy), DEFAULT_MAX_TTL, "{value}");
        }
        for value in ["max-age=-1", "max-age=", "max-age=1e9", "max-age= 60", "max-age=+60"] {
            assert_eq!(ttl(Some(value), &policy), DEFAULT_TTL, "{value}");
        }
        // Bounds the builder would refuse still give a TTL, not a panic.
        let inverted = CachePolicy { min_ttl: Duration::from_secs(600), max_ttl: Duration::from_secs(60), ..policy };
        assert_eq!(ttl(Some("max-age=100"), &inverted), Duration::from_secs(600));
        let widest = CachePolicy { min_ttl: Duration::ZERO, max_ttl: Duration::MAX, ..policy };
        assert_eq!(ttl(Some("max-age=18446744073709551615"), &widest), Duration::from_secs(u64::MAX));
    }

    #[test]
    fn instants_far_in_the_future_saturate_instead_of_panicking() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        assert!(later(now, Duration::from_secs(u64::MAX)) > now);
        assert_eq!(later(now, Duration::from_secs(60)), now + Duration::from_secs(60));
        assert_eq!(refresh_delay(Duration::MAX), Duration::MAX - Duration::MAX / 5);
        assert_eq!(refresh_delay(Duration::from_secs(3600)), Duration::from_secs(2880));

        // A set expiring at the far end with the widest staleness is still usable.
        let keys = remote(CachePolicy { max_stale: Duration::MAX, ..CachePolicy::default() });
        let snapshot =
            Snapshot { keys: Arc::new(KeySet::default()), refresh_at: now, expires: later(now, Duration::MAX) };
        assert!(keys.within_max_stale(&snapshot));
        let expired = Snapshot { keys: Arc::new(KeySet::default()), refresh_at: now, expires: now };
        assert!(keys.within_max_stale(&expired));
        let strict = remote(CachePolicy { max_stale: Duration::ZERO, ..CachePolicy::default() });
        std::thread::sleep(Duration::from_millis(5));
        assert!(!strict.within_max_stale(&expired));
    }

    #[tokio::test]
    async fn a_fetch_that_panics_clears_in_flight_and_wakes_its_waiters() {
        let keys = remote(CachePolicy::default());
        let flight = Flight::take_off(&keys, &mut keys.lock_state());
        let mut done = keys.generation.subscribe();
        let start = *done.borrow_and_update();
        let waiter = tokio::spawn(async move { done.wait_for(|generation| *generation != start).await.is_ok() });

        let crashed = tokio::spawn(async move {
            let _flight = flight;
            panic!("a fetch that panics");
        })
        .await;
        assert!(crashed.is_err_and(|error| error.is_panic()));

        let woken = tokio::time::timeout(Duration::from_secs(1), waiter).await;
        assert!(matches!(woken, Ok(Ok(true))), "the waiter returned: {woken:?}");
        {
            let state = keys.lock_state();
            assert!(!state.in_flight);
            assert_eq!(state.consecutive_failures, 1);
        }
        assert_eq!(keys.counters.failures.load(Ordering::Relaxed), 1);
        // A later refresh runs.
        assert!(keys.start_refresh(Trigger::Scheduled));
        for _ in 0..100 {
            if keys.counters.failures.load(Ordering::Relaxed) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(keys.counters.fetches.load(Ordering::Relaxed), 1, "the later fetch ran");
        assert_eq!(keys.counters.failures.load(Ordering::Relaxed), 2, "and failed (nothing listens)");
        assert!(!keys.lock_state().in_flight);
    }

    /// Waits until no fetch is in flight and moves the last attempt out of the cooldown.
    async fn settle(keys: &RemoteKeys) {
        for _ in 0..200 {
            if !keys.lock_state().in_flight {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut state = keys.lock_state();
        assert!(!state.in_flight, "the fetch ended");
        state.last_attempt = Instant::now().checked_sub(Duration::from_secs(2));
    }

    #[tokio::test]
    async fn requests_without_usable_keys_draw_on_the_budget_and_scheduled_fetches_do_not() {
        let policy = CachePolicy {
            cooldown: Duration::from_secs(1),
            budget_per_hour: 1,
            budget_burst: 2,
            ..CachePolicy::default()
        };
        let keys = remote(policy);
        let fetches = || keys.counters.fetches.load(Ordering::Relaxed);
        for _ in 0..5 {
            settle(&keys).await;
            // No keys at all: every request is refused with 503 and nudges a fetch.
            assert_eq!(keys.snapshot().err(), Some(Unavailable { retry_after_secs: 1 }));
            tokio::task::yield_now().await;
        }
        settle(&keys).await;
        assert_eq!(fetches(), 2, "the burst of 2, then none: every nudge was past the cooldown");
        // An unknown kid draws on the same budget.
        assert!(!keys.start_refresh(Trigger::OnDemand));
        // The maintenance task's fetches do not.
        for expected in 3..=5 {
            assert!(keys.start_refresh(Trigger::Scheduled));
            settle(&keys).await;
            assert_eq!(fetches(), expected);
        }
    }

    #[test]
    fn the_fetch_budget_holds_burst_fetches_and_refills_per_hour() {
        let policy = CachePolicy { budget_per_hour: 60, budget_burst: 3, ..CachePolicy::default() };
        let start = Instant::now();
        let mut budget = FetchBudget { tokens: 3.0, updated: start };
        assert!((0..3).all(|_| budget.take(&policy, start)));
        assert!(!budget.take(&policy, start));
        assert!(!budget.take(&policy, start + Duration::from_secs(59)));
        assert!(budget.take(&policy, start + Duration::from_secs(60)), "one a minute at 60 an hour");
        assert!(!budget.take(&policy, start + Duration::from_secs(61)));
        // Refills stop at the burst.
        let much_later = start + Duration::from_secs(24 * 3600);
        assert!((0..3).all(|_| budget.take(&policy, much_later)));
        assert!(!budget.take(&policy, much_later));
        // A clock that goes backwards refills nothing and does not panic.
        assert!(!budget.take(&policy, start));
    }

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

    #[test]
    fn the_jwks_cache_defaults_and_bounds_are_the_documented_ones() {
        let secs = Duration::from_secs;
        assert_eq!(DEFAULT_REFRESH_COOLDOWN, secs(30));
        assert_eq!(DEFAULT_MIN_TTL, secs(300), "5 minutes");
        assert_eq!(DEFAULT_MAX_TTL, secs(86_400), "a day");
        assert_eq!(DEFAULT_TTL, secs(3_600), "an hour");
        assert_eq!(DEFAULT_MAX_STALE, secs(86_400), "a day");
        assert_eq!(MAX_JWKS_DURATION, secs(604_800), "7 days");
        assert_eq!(MAX_REFRESH_COOLDOWN, secs(3_600), "an hour");
        assert_eq!(MAX_RETRY_INTERVAL, secs(300), "5 minutes");
        // A duration past what an `Instant` can hold lands a century ahead.
        let now = Instant::now();
        assert_eq!(later(now, Duration::MAX), now + secs(100 * 365 * 86_400));
    }

    #[test]
    fn a_cache_policy_is_accepted_at_each_bound_and_refused_past_it_naming_its_setting() {
        let secs = Duration::from_secs;
        let base = CachePolicy::default();
        for accepted in [
            base,
            CachePolicy { cooldown: secs(1), ..base },
            CachePolicy { cooldown: MAX_REFRESH_COOLDOWN, ..base },
            CachePolicy { min_ttl: secs(1), max_ttl: secs(1), ..base },
            CachePolicy { min_ttl: secs(60), max_ttl: secs(60), ..base },
            CachePolicy { max_ttl: MAX_JWKS_DURATION, ..base },
            CachePolicy { max_stale: MAX_JWKS_DURATION, ..base },
            CachePolicy { max_stale: Duration::ZERO, ..base },
            CachePolicy { budget_per_hour: 1, budget_burst: 1, ..base },
            CachePolicy { budget_per_hour: MAX_FETCH_BUDGET_PER_HOUR, budget_burst: MAX_FETCH_BUDGET_BURST, ..base },
        ] {
            assert_eq!(accepted.check().map_err(|e| e.to_string()), Ok(()), "{accepted:?}");
        }
        let nanosecond = Duration::from_nanos(1);
        for (refused, setting) in [
            (CachePolicy { cooldown: secs(1) - nanosecond, ..base }, "jwks_refresh_cooldown"),
            (CachePolicy { cooldown: MAX_REFRESH_COOLDOWN + nanosecond, ..base }, "jwks_refresh_cooldown"),
            (CachePolicy { min_ttl: secs(1) - nanosecond, ..base }, "jwks_ttl_bounds"),
            (CachePolicy { min_ttl: secs(61), max_ttl: secs(60), ..base }, "jwks_ttl_bounds"),
            (CachePolicy { max_ttl: MAX_JWKS_DURATION + nanosecond, ..base }, "jwks_ttl_bounds"),
            (CachePolicy { max_stale: MAX_JWKS_DURATION + nanosecond, ..base }, "jwks_max_stale"),
            (CachePolicy { budget_per_hour: 0, ..base }, "jwks_fetch_budget"),
            (CachePolicy { budget_per_hour: MAX_FETCH_BUDGET_PER_HOUR + 1, ..base }, "jwks_fetch_budget"),
            (CachePolicy { budget_burst: 0, ..base }, "jwks_fetch_budget"),
            (CachePolicy { budget_burst: MAX_FETCH_BUDGET_BURST + 1, ..base }, "jwks_fetch_budget"),
        ] {
            assert_eq!(refused.check().map_err(|e| e.setting()), Err(setting), "{refused:?}");
        }
    }

    #[tokio::test]
    async fn a_kid_still_unknown_after_a_fetch_is_answered_at_once_within_the_cooldown_even_while_a_fetch_runs() {
        let keys = remote(CachePolicy::default());
        let now = Instant::now();
        let held = Snapshot { keys: Arc::new(KeySet::default()), refresh_at: later(now, DEFAULT_TTL), expires: now };
        keys.current.store(Some(Arc::new(held)));
        // The first request for the kid fetches (and fails: nothing listens); the set it
        // answers with, the one kept, does not have the kid either.
        let first = keys.refresh_for_unknown_kid("rotated").await;
        assert_eq!(first.map(|set| set.len()), Some(0));
        assert_eq!(keys.counters.fetches.load(Ordering::Relaxed), 1);

        // A fetch in flight (the maintenance task's): the same kid again, within the
        // cooldown, is answered from the current set without waiting for it.
        let flight = Flight::take_off(&keys, &mut keys.lock_state());
        let again = tokio::time::timeout(Duration::from_millis(500), keys.refresh_for_unknown_kid("rotated")).await;
        assert_eq!(again.ok().flatten().map(|set| set.len()), Some(0), "answered at once");
        // Another unknown kid waits for that fetch (the single flight).
        let other = tokio::time::timeout(Duration::from_millis(300), keys.refresh_for_unknown_kid("other")).await;
        assert!(other.is_err(), "a kid never fetched for waits for the fetch in flight");
        drop(flight);
        assert_eq!(keys.counters.fetches.load(Ordering::Relaxed), 1, "no other fetch ran");
    }

    #[test]
    fn the_negative_cache_holds_at_most_1024_kids_and_drops_the_expired_ones_first() {
        let keys = remote(CachePolicy::default());
        let now = Instant::now();
        let expired = now.checked_sub(DEFAULT_REFRESH_COOLDOWN * 2).unwrap();
        {
            let mut state = keys.lock_state();
            state.last_attempt = Some(now);
            for i in 0..NEGATIVE_CACHE_SIZE {
                let seen = if i % 2 == 0 { expired } else { now };
                state.unknown_kids.insert(format!("kid-{i}").into(), seen);
            }
        }
        // Full: the entries past the cooldown go, the others stay, the new one is added.
        keys.remember_unknown("new");
        {
            let state = keys.lock_state();
            assert_eq!(state.unknown_kids.len(), NEGATIVE_CACHE_SIZE / 2 + 1);
            assert!(state.unknown_kids.contains_key("new"));
            assert!(
                (0..NEGATIVE_CACHE_SIZE)
                    .all(|i| state.unknown_kids.contains_key(format!("kid-{i}").as_str()) == (i % 2 == 1))
            );
        }
        // Full of live entries: all are dropped, and the new one is kept.
        {
            let mut state = keys.lock_state();
            state.unknown_kids.clear();
            for i in 0..NEGATIVE_CACHE_SIZE {
                state.unknown_kids.insert(format!("kid-{i}").into(), now);
            }
        }
        keys.remember_unknown("newer");
        let state = keys.lock_state();
        assert_eq!(state.unknown_kids.len(), 1);
        assert!(state.unknown_kids.contains_key("newer"));
    }
}
