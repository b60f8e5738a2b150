//! The verified-token cache: a token seen before is accepted without a second signature
//! check.
//!
//! Why it is safe:
//! - **Exact key.** An entry is found by a keyed hash of the token's signature segment
//!   (SipHash with a per-process random key, so hashes cannot be aimed) and then compared
//!   with the *whole* token string: a different token, even one differing in a single bit
//!   or a malleated signature, can never hit another's entry.
//! - **Only successes.** Only a token that passed every check is stored; failures are
//!   never cached, so nothing an attacker sends can poison it.
//! - **Never past `exp`.** A hit requires `now < exp` (no leeway) and an entry younger
//!   than the configured maximum age (default 5 minutes); otherwise the token goes through
//!   the full path again.
//! - **Key changes empty it.** Each entry records the key-set generation it was verified
//!   under; after any successful JWKS fetch the generation moves on and older entries
//!   miss (and are dropped).
//! - **Same policy.** The audience is re-checked on every hit (a handler's `aud = …` is a
//!   different question), and the configuration is immutable for an `Authority`'s life.
//! - **Bounded.** At most `capacity` entries and about 64 bytes + 4 × token length of
//!   memory each; when a shard is full, expired entries go first, then arbitrary ones.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hasher, RandomState},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use crate::claims::VerifiedClaims;

const SHARDS: usize = 16;

/// The default number of cached tokens.
pub const DEFAULT_TOKEN_CACHE_CAPACITY: usize = 10_000;
/// The default longest time a verified token is served from the cache.
pub const DEFAULT_TOKEN_CACHE_MAX_AGE: Duration = Duration::from_secs(5 * 60);

struct Entry {
    token: Box<str>,
    claims: Arc<VerifiedClaims>,
    generation: u64,
    inserted: Instant,
}

struct Shard {
    map: HashMap<u64, Entry, IdentityHasher>,
    last_purge: Instant,
}

/// A sharded map from token hash to the verified claims of that exact token.
pub(crate) struct TokenCache {
    shards: Vec<RwLock<Shard>>,
    per_shard: usize,
    max_age: Duration,
    hasher: RandomState,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &(self.per_shard * SHARDS))
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(capacity: usize, max_age: Duration) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(Shard { map: HashMap::with_hasher(IdentityHasher), last_purge: Instant::now() }))
                .collect(),
            per_shard,
            max_age,
            hasher: RandomState::new(),
        }
    }

    fn locate(&self, token: &str) -> (u64, &RwLock<Shard>) {
        // The signature segment is the token's high-entropy tail and a third of its length
        // or less: hashing it alone is cheaper, and hits still compare the whole token.
        let tail = token.rsplit_once('.').map_or(token, |(_, signature)| signature);
        let hash = self.hasher.hash_one(tail);
        // The low bits pick the shard; the map uses the whole hash.
        let shard = &self.shards[(hash as usize) % SHARDS];
        (hash, shard)
    }

    /// The cached claims of exactly this token, if still fresh for `generation` and
    /// unexpired at `now` (seconds since the epoch).
    pub(crate) fn get(&self, token: &str, generation: u64, now: f64) -> Option<Arc<VerifiedClaims>> {
        let (hash, shard) = self.locate(token);
        let shard = shard.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = shard.map.get(&hash)?;
        let fresh = *entry.token == *token
            && entry.generation == generation
            && now < entry.claims.expires_at
            && entry.inserted.elapsed() < self.max_age;
        fresh.then(|| Arc::clone(&entry.claims))
    }

    /// Remembers a token that passed every check. A full shard first drops its stale
    /// entries (older generation or past the maximum age), at most once per eighth of the
    /// maximum age so that a full cache does not rescan itself on every insert; then, if
    /// still full, one arbitrary entry.
    pub(crate) fn insert(&self, token: &str, claims: &Arc<VerifiedClaims>, generation: u64) {
        let (hash, shard) = self.locate(token);
        let mut guard = shard.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Shard { map, last_purge } = &mut *guard;
        if map.len() >= self.per_shard && !map.contains_key(&hash) {
            if last_purge.elapsed() >= self.max_age / 8 {
                let max_age = self.max_age;
                map.retain(|_, e| e.generation == generation && e.inserted.elapsed() < max_age);
                *last_purge = Instant::now();
            }
            if map.len() >= self.per_shard
                && let Some(victim) = map.keys().next().copied()
            {
                map.remove(&victim);
            }
        }
        map.insert(
            hash,
            Entry { token: token.into(), claims: Arc::clone(claims), generation, inserted: Instant::now() },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().map(|s| s.map.len()).unwrap_or_default()).sum()
    }
}

/// The map's keys are already keyed SipHash values: hashing them again would only cost.
#[derive(Clone, Copy, Default)]
struct IdentityHasher;

impl BuildHasher for IdentityHasher {
    type Hasher = Identity;
    fn build_hasher(&self) -> Identity {
        Identity(0)
    }
}

struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for `u64` keys; fold anything else for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: f64) -> Arc<VerifiedClaims> {
        Arc::new(VerifiedClaims::for_tests(exp))
    }

    #[test]
    fn hits_only_the_exact_token_while_fresh() {
        let cache = TokenCache::new(100, Duration::from_secs(60));
        cache.insert("a.b.c", &claims(1000.0), 7);
        assert!(cache.get("a.b.c", 7, 999.0).is_some());
        assert!(cache.get("a.b.d", 7, 999.0).is_none());
        assert!(cache.get("a.b.c", 8, 999.0).is_none(), "another key-set generation");
        assert!(cache.get("a.b.c", 7, 1000.0).is_none(), "at exp");
    }

    #[test]
    fn a_token_sharing_the_signature_segment_never_hits() {
        let cache = TokenCache::new(100, Duration::from_secs(60));
        cache.insert("h.payload-one.sig", &claims(1000.0), 0);
        assert!(cache.get("h.payload-two.sig", 0, 1.0).is_none());
        assert!(cache.get("h.payload-one.sig", 0, 1.0).is_some());
        // The second token takes the slot; the first then misses (and is verified again).
        cache.insert("h.payload-two.sig", &claims(1000.0), 0);
        assert!(cache.get("h.payload-one.sig", 0, 1.0).is_none());
        assert!(cache.get("h.payload-two.sig", 0, 1.0).is_some());
    }

    #[test]
    fn max_age_bounds_an_entry() {
        let cache = TokenCache::new(100, Duration::from_millis(1));
        cache.insert("a.b.c", &claims(1e9), 0);
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get("a.b.c", 0, 1.0).is_none());
    }

    #[test]
    fn capacity_is_bounded() {
        let cache = TokenCache::new(32, Duration::from_secs(60));
        for i in 0..1000 {
            cache.insert(&format!("token-{i}"), &claims(1e9), 0);
        }
        assert!(cache.len() <= 32, "{}", cache.len());
    }
}
