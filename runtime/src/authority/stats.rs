//! What an [`Authority`] counts: acceptances and rejections by reason, signatures, cache
//! hits, and its issuers' fetches, read back as [`Stats`].

use std::sync::atomic::{AtomicU64, Ordering};

use super::Authority;
use crate::{rejection::REASONS, source::KeySource};

#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) signatures_checked: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    by_reason: [AtomicU64; REASONS.len()],
    other_reasons: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        // Arrays longer than 32 have no `Default`.
        Self {
            accepted: AtomicU64::new(0),
            signatures_checked: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            by_reason: std::array::from_fn(|_| AtomicU64::new(0)),
            other_reasons: AtomicU64::new(0),
        }
    }
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
    /// Requests sent to the introspection endpoint (cache hits and shared calls excluded).
    pub introspections: u64,
}

impl Authority {
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
            ..Stats::default()
        };
        // Acceptances and rejections are counted by the authority the request used; the
        // work (signatures, caches, fetches) by the issuer that did it.
        for member in std::iter::once(self).chain(&self.inner.also) {
            let (inner, c) = (&member.inner, &member.inner.stats);
            stats.signatures_checked += c.signatures_checked.load(Ordering::Relaxed);
            stats.token_cache_hits += c.cache_hits.load(Ordering::Relaxed);
            stats.introspections += inner.introspection.as_ref().map_or(0, |i| i.calls.load(Ordering::Relaxed));
            if let KeySource::Remote(remote) = &inner.keys {
                stats.jwks_fetches += remote.counters.fetches.load(Ordering::Relaxed);
                stats.jwks_fetch_failures += remote.counters.failures.load(Ordering::Relaxed);
                stats.key_set_changes += remote.counters.key_changes.load(Ordering::Relaxed);
            }
        }
        stats
    }
}
