//! The verified-token cache: a token seen before is accepted without a second signature
//! check.
//!
//! Why it is safe:
//! - **Exact key.** An entry is found by a keyed hash of the token's signature tail (its
//!   last 16 characters; SipHash with a per-process random key, so hashes cannot be
//!   aimed) and then compared with the *whole* token string: a different token, even one
//!   differing in a single bit or a malleated signature, can never hit another's entry.
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
//! - **Bounded.** At most `capacity` entries (default 10 000) and a byte budget for the
//!   tokens and claim texts (default 32 MiB, plus 256 bytes counted per entry); when a
//!   shard is full, stale entries go first, then arbitrary ones.

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
/// The default memory budget of the cache, in bytes (tokens and their claims).
pub const DEFAULT_TOKEN_CACHE_MAX_BYTES: usize = 32 * 1024 * 1024;
/// What an entry costs besides its token and claim text: map slot, `Arc`, small fields.
const ENTRY_OVERHEAD: usize = 256;

/// The default longest time a verified token is served from the cache.
pub const DEFAULT_TOKEN_CACHE_MAX_AGE: Duration = Duration::from_secs(5 * 60);

struct Entry {
    token: Box<str>,
    claims: Arc<VerifiedClaims>,
    generation: u64,
    inserted: Instant,
}

impl Entry {
    /// The bytes this entry holds, as counted against the budget.
    fn cost(&self) -> usize {
        cost(&self.token, &self.claims)
    }
}

fn cost(token: &str, claims: &VerifiedClaims) -> usize {
    token.len() + claims.payload().len() + ENTRY_OVERHEAD
}

struct Shard {
    map: HashMap<u64, Entry, IdentityHasher>,
    bytes: usize,
    last_purge: Instant,
}

impl Shard {
    fn remove(&mut self, hash: u64) {
        if let Some(entry) = self.map.remove(&hash) {
            self.bytes = self.bytes.saturating_sub(entry.cost());
        }
    }
}

/// A sharded map from token hash to the verified claims of that exact token.
pub(crate) struct TokenCache {
    shards: Vec<RwLock<Shard>>,
    per_shard: usize,
    per_shard_bytes: usize,
    max_age: Duration,
    hasher: RandomState,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &(self.per_shard * SHARDS))
            .field("max_bytes", &(self.per_shard_bytes * SHARDS))
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(capacity: usize, max_bytes: usize, max_age: Duration) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    RwLock::new(Shard {
                        map: HashMap::with_hasher(IdentityHasher),
                        bytes: 0,
                        last_purge: Instant::now(),
                    })
                })
                .collect(),
            per_shard,
            per_shard_bytes: max_bytes / SHARDS,
            max_age,
            hasher: RandomState::new(),
        }
    }

    fn locate(&self, token: &[u8]) -> (u64, &RwLock<Shard>) {
        // The last 16 characters (96 bits) of the token, or all of a shorter one
        // zero-padded: only compact JWS are inserted, so that is the tail of the signature
        // segment, which the issuer's key makes unpredictable. Hashed as one `u128` (half
        // the cost of hashing 48 characters as a slice, as before), and hits still compare
        // the whole token. Only tokens that passed every check are inserted, so nobody can
        // choose colliding entries; a lookup that collides costs one comparison.
        let last = token.get(token.len().saturating_sub(TAIL_BYTES)..).unwrap_or(token);
        let mut tail = [0u8; TAIL_BYTES];
        if let Some(start) = tail.get_mut(..last.len()) {
            start.copy_from_slice(last);
        }
        let hash = self.hasher.hash_one(u128::from_le_bytes(tail));
        // The low bits pick the shard; the map uses the whole hash.
        let shard = &self.shards[(hash as usize) % SHARDS];
        (hash, shard)
    }

    /// The cached claims of exactly this token, if still fresh for `generation` and
    /// unexpired at `now` (seconds since the epoch). Bytes, not text: a request's header
    /// is looked up before it is read as text (an exact match is the same text).
    #[cfg(test)]
    pub(crate) fn get(&self, token: &[u8], generation: u64, now: f64) -> Option<Arc<VerifiedClaims>> {
        self.get_at(token, generation, now, Instant::now())
    }

    /// [`get`](Self::get) with the monotonic clock already read (`at`), for the maximum
    /// age: a hit reads each clock once, and shares this reading with the key set's check.
    pub(crate) fn get_at(&self, token: &[u8], generation: u64, now: f64, at: Instant) -> Option<Arc<VerifiedClaims>> {
        let (hash, shard) = self.locate(token);
        let shard = shard.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = shard.map.get(&hash)?;
        let fresh = *entry.token.as_bytes() == *token
            && entry.generation == generation
            && now < entry.claims.expires_at
            && at.saturating_duration_since(entry.inserted) < self.max_age;
        fresh.then(|| Arc::clone(&entry.claims))
    }

    /// Remembers a token that passed every check. A shard over its entry or byte budget
    /// first drops its stale entries (older generation or past the maximum age), at most
    /// once per eighth of the maximum age so that a full cache does not rescan itself on
    /// every insert; then arbitrary entries until the new one fits. A token too large for
    /// a shard's byte budget is not cached.
    pub(crate) fn insert(&self, token: &str, claims: &Arc<VerifiedClaims>, generation: u64) {
        let needed = cost(token, claims);
        if needed > self.per_shard_bytes {
            return;
        }
        let (hash, shard) = self.locate(token.as_bytes());
        let mut guard = shard.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let shard = &mut *guard;
        shard.remove(hash);
        let full = |s: &Shard| s.map.len() >= self.per_shard || s.bytes + needed > self.per_shard_bytes;
        if full(shard) && shard.last_purge.elapsed() >= self.max_age / 8 {
            let max_age = self.max_age;
            let mut freed = 0;
            shard.map.retain(|_, e| {
                let keep = e.generation == generation && e.inserted.elapsed() < max_age;
                if !keep {
                    freed += e.cost();
                }
                keep
            });
            shard.bytes = shard.bytes.saturating_sub(freed);
            shard.last_purge = Instant::now();
        }
        while full(shard) {
            let Some(victim) = shard.map.keys().next().copied() else {
                break;
            };
            shard.remove(victim);
        }
        shard.bytes += needed;
        shard.map.insert(
            hash,
            Entry { token: token.into(), claims: Arc::clone(claims), generation, inserted: Instant::now() },
        );
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.read().map(|s| s.bytes).unwrap_or_default()).sum()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().map(|s| s.map.len()).unwrap_or_default()).sum()
    }
}

/// The map's keys are already keyed SipHash values: hashing them again would only cost.
#[derive(Clone, Copy, Default)]
struct IdentityHasher;

/// How many trailing bytes of a token (of its signature segment) are hashed.
const TAIL_BYTES: usize = 16;

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
        let cache = TokenCache::new(100, DEFAULT_TOKEN_CACHE_MAX_BYTES, Duration::from_secs(60));
        cache.insert("a.b.c", &claims(1000.0), 7);
        assert!(cache.get(b"a.b.c", 7, 999.0).is_some());
        assert!(cache.get(b"a.b.d", 7, 999.0).is_none());
        assert!(cache.get(b"a.b.c", 8, 999.0).is_none(), "another key-set generation");
        assert!(cache.get(b"a.b.c", 7, 1000.0).is_none(), "at exp");
    }

    #[test]
    fn a_token_sharing_the_hashed_tail_never_hits() {
        // Two tokens whose last 16 characters (the signature's tail) are equal share a
        // hash, and so a slot: each compares the whole token.
        let signature = "s".repeat(TAIL_BYTES + 12);
        let (one, two) = (format!("h.payload-one.{signature}"), format!("h.payload-two.{signature}"));
        let cache = TokenCache::new(100, DEFAULT_TOKEN_CACHE_MAX_BYTES, Duration::from_secs(60));
        cache.insert(&one, &claims(1000.0), 0);
        assert!(cache.get(two.as_bytes(), 0, 1.0).is_none());
        assert!(cache.get(one.as_bytes(), 0, 1.0).is_some());
        // The second token takes the slot; the first then misses (and is verified again).
        cache.insert(&two, &claims(1000.0), 0);
        assert!(cache.get(one.as_bytes(), 0, 1.0).is_none());
        assert!(cache.get(two.as_bytes(), 0, 1.0).is_some());
    }

    #[test]
    fn max_age_bounds_an_entry() {
        let cache = TokenCache::new(100, DEFAULT_TOKEN_CACHE_MAX_BYTES, Duration::from_millis(1));
        cache.insert("a.b.c", &claims(1e9), 0);
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get(b"a.b.c", 0, 1.0).is_none());
    }

    #[test]
    fn memory_is_bounded() {
        // 16 shards of 4 KiB: each entry here costs 2,000 + 2 + 256 bytes.
        let cache = TokenCache::new(10_000, 16 * 4096, Duration::from_secs(60));
        let long = "x".repeat(2000);
        for i in 0..500 {
            cache.insert(&format!("{long}.{i}"), &claims(1e9), 0);
        }
        assert!(cache.bytes() <= 16 * 4096, "{}", cache.bytes());
        assert!(cache.len() <= 16, "{}", cache.len());
        // A token larger than a shard's budget is not cached at all.
        let huge = "y".repeat(5000);
        cache.insert(&huge, &claims(1e9), 0);
        assert!(cache.get(huge.as_bytes(), 0, 1.0).is_none());
    }

    #[test]
    fn capacity_is_bounded() {
        let cache = TokenCache::new(32, DEFAULT_TOKEN_CACHE_MAX_BYTES, Duration::from_secs(60));
        for i in 0..1000 {
            cache.insert(&format!("token-{i}"), &claims(1e9), 0);
        }
        assert!(cache.len() <= 32, "{}", cache.len());
    }

    /// `n` distinct tokens of `len` bytes that `cache` keeps in one shard.
    fn one_shard(cache: &TokenCache, n: usize, len: usize) -> Vec<String> {
        let token = |i: usize| format!("{i:0>len$}");
        let (_, shard) = cache.locate(token(0).as_bytes());
        (0..).map(token).filter(|t| std::ptr::eq(cache.locate(t.as_bytes()).1, shard)).take(n).collect()
    }

    #[test]
    fn a_token_costing_exactly_a_shards_byte_budget_is_cached() {
        // 742 bytes of token + 2 of claims + 256 counted per entry: 1,000 bytes, a
        // shard's whole budget.
        let cache = TokenCache::new(100, 16 * 1000, Duration::from_secs(60));
        let token = "t".repeat(742);
        cache.insert(&token, &claims(1e9), 0);
        assert!(cache.get(token.as_bytes(), 0, 1.0).is_some());
        assert_eq!(cache.bytes(), 1000);
    }

    #[test]
    fn a_shard_keeps_as_many_entries_as_its_byte_budget_holds() {
        // A shard's budget is 3,000 bytes; each entry costs 742 + 2 + 256 = 1,000.
        let cache = TokenCache::new(10_000, 16 * 3000, Duration::from_secs(60));
        let tokens = one_shard(&cache, 4, 742);
        for token in &tokens[..3] {
            cache.insert(token, &claims(1e9), 0);
        }
        assert_eq!((cache.len(), cache.bytes()), (3, 3000));
        for token in &tokens[..3] {
            assert!(cache.get(token.as_bytes(), 0, 1.0).is_some());
        }
        // A fourth takes the place of one of them.
        cache.insert(&tokens[3], &claims(1e9), 0);
        assert_eq!((cache.len(), cache.bytes()), (3, 3000));
        assert!(cache.get(tokens[3].as_bytes(), 0, 1.0).is_some());
        // The same token again replaces its own entry.
        cache.insert(&tokens[3], &claims(1e9), 0);
        assert_eq!((cache.len(), cache.bytes()), (3, 3000));
    }

    #[test]
    fn a_full_shard_does_not_rescan_within_an_eighth_of_the_max_age() {
        // Two entries a shard; the max age is an hour, so no purge in the first 450 s.
        let cache = TokenCache::new(32, DEFAULT_TOKEN_CACHE_MAX_BYTES, Duration::from_secs(3600));
        let tokens = one_shard(&cache, 3, 10);
        cache.insert(&tokens[0], &claims(1e9), 0);
        cache.insert(&tokens[1], &claims(1e9), 0);
        // Both entries are of an older key-set generation, but the shard was just made:
        // one arbitrary entry makes room, the other stays (until a scan drops it).
        cache.insert(&tokens[2], &claims(1e9), 1);
        assert_eq!((cache.len(), cache.bytes()), (2, 2 * (10 + 2 + 256)));
    }

    #[test]
    fn a_full_shard_drops_the_entries_of_older_key_sets_first() {
        // Two entries a shard; a scan is allowed 125 ms after the last one (its creation).
        let cache = TokenCache::new(32, DEFAULT_TOKEN_CACHE_MAX_BYTES, Duration::from_secs(1));
        let tokens = one_shard(&cache, 3, 10);
        std::thread::sleep(Duration::from_millis(200));
        cache.insert(&tokens[0], &claims(1e9), 0);
        cache.insert(&tokens[1], &claims(1e9), 0);
        cache.insert(&tokens[2], &claims(1e9), 1);
        // Both generation-0 entries go (and their bytes with them); the new one stays.
        assert_eq!((cache.len(), cache.bytes()), (1, 10 + 2 + 256));
        assert!(cache.get(tokens[2].as_bytes(), 1, 1.0).is_some());
    }

    #[test]
    fn a_full_shard_drops_the_entries_past_the_max_age_and_keeps_the_fresh_ones() {
        let cache = TokenCache::new(32, DEFAULT_TOKEN_CACHE_MAX_BYTES, Duration::from_secs(1));
        let tokens = one_shard(&cache, 3, 10);
        cache.insert(&tokens[0], &claims(1e9), 0);
        std::thread::sleep(Duration::from_millis(1100));
        cache.insert(&tokens[1], &claims(1e9), 0);
        // The shard is full: the aged entry goes, the fresh one of the same generation stays.
        cache.insert(&tokens[2], &claims(1e9), 0);
        assert_eq!((cache.len(), cache.bytes()), (2, 2 * (10 + 2 + 256)));
        assert!(cache.get(tokens[1].as_bytes(), 0, 1.0).is_some());
        assert!(cache.get(tokens[2].as_bytes(), 0, 1.0).is_some());
    }

    #[test]
    fn the_default_cache_holds_thousands_of_rs256_sized_tokens_for_five_minutes() {
        // The documented defaults: 10 000 entries, 32 MiB, 5 minutes.
        assert_eq!(DEFAULT_TOKEN_CACHE_MAX_AGE, Duration::from_secs(300));
        let cache =
            TokenCache::new(DEFAULT_TOKEN_CACHE_CAPACITY, DEFAULT_TOKEN_CACHE_MAX_BYTES, DEFAULT_TOKEN_CACHE_MAX_AGE);
        // 4,000 tokens of 1.5 KiB: about 250 a shard, well within its 625 entries and
        // 2 MiB (1,794 bytes each).
        let tokens: Vec<String> = (0..4000).map(|i| format!("{i:0>1536}")).collect();
        for token in &tokens {
            cache.insert(token, &claims(1e9), 0);
        }
        assert_eq!((cache.len(), cache.bytes()), (4000, 4000 * (1536 + 2 + 256)));
        assert!(tokens.iter().all(|t| cache.get(t.as_bytes(), 0, 1.0).is_some()));
    }

    /// The maximum age is measured on the monotonic clock reading the caller hands in (a
    /// request reads it once): an entry is served while younger than the maximum age,
    /// also for a reading taken just before its insertion, and not from then on.
    #[test]
    fn an_entry_is_served_until_the_max_age_after_its_insertion_on_the_callers_clock() {
        let max_age = Duration::from_secs(60);
        let cache = TokenCache::new(100, DEFAULT_TOKEN_CACHE_MAX_BYTES, max_age);
        let before = Instant::now();
        cache.insert("a.b.c", &claims(1e9), 0);
        let after = Instant::now();
        let hit = |at: Instant| cache.get_at(b"a.b.c", 0, 1.0, at).is_some();
        assert!(hit(before), "a reading from before the insertion");
        assert!(hit(after));
        assert!(hit(before + max_age - Duration::from_nanos(1)), "a nanosecond before the maximum age at the latest");
        assert!(!hit(after + max_age), "the maximum age at the earliest");
        assert!(!hit(after + 2 * max_age));
        // The clock reading decides alone: the same entry is still served at a fresh one.
        assert!(hit(Instant::now()));
    }
}
