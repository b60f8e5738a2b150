//! The verifier's clock: the wall clock, or, with the `testing` feature, a [`TestClock`]
//! a test sets to the instant it needs (`exp` exactly equal to now, a cached token that
//! has aged past `max_token_age`).
//!
//! Without the feature the clock has a single variant and reading it is a direct call to
//! [`SystemTime::now`]: no indirection on the verification path.

use std::time::{SystemTime, UNIX_EPOCH};
#[cfg(feature = "testing")]
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Where the verifier reads the time from.
#[derive(Debug, Clone, Default)]
pub(crate) enum Clock {
    /// The wall clock (token times are wall-clock times).
    #[default]
    System,
    /// A clock a test controls.
    #[cfg(feature = "testing")]
    Test(TestClock),
}

impl Clock {
    /// Now, in seconds since the Unix epoch.
    #[inline]
    pub(crate) fn now(&self) -> f64 {
        match self {
            Self::System => system_now(),
            #[cfg(feature = "testing")]
            Self::Test(clock) => clock.now(),
        }
    }
}

/// The wall clock in seconds since the Unix epoch.
fn system_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A clock for tests (feature `testing`): it stands still until the test moves it. Give
/// it to an authority with [`AuthorityBuilder::clock`](crate::AuthorityBuilder::clock);
/// clones share the same time.
///
/// It governs the token times the verifier judges (`exp`, `nbf`, `iat`, `max_token_age`,
/// and a cached token's `exp`); the verified-token cache's own entry age and the JWKS
/// cache run on the monotonic clock as always.
///
/// ```
/// use scopegate::testing::{TestClock, TestIssuer};
///
/// let clock = TestClock::at(1_800_000_000.0);
/// let authority = TestIssuer::new().authority_builder("https://api.example.test").clock(&clock).build().unwrap();
/// clock.advance(std::time::Duration::from_secs(60));
/// assert_eq!(clock.now(), 1_800_000_060.0);
/// # let _ = authority;
/// ```
#[cfg(feature = "testing")]
#[derive(Debug, Clone)]
pub struct TestClock(Arc<AtomicU64>);

#[cfg(feature = "testing")]
impl TestClock {
    /// A clock standing at `unix_seconds` (fractions allowed).
    #[must_use]
    pub fn at(unix_seconds: f64) -> Self {
        Self(Arc::new(AtomicU64::new(unix_seconds.to_bits())))
    }

    /// A clock standing at the current wall-clock time.
    #[must_use]
    pub fn at_system_time() -> Self {
        Self::at(system_now())
    }

    /// The time it shows, in seconds since the Unix epoch.
    #[must_use]
    pub fn now(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::SeqCst))
    }

    /// Moves it to `unix_seconds`.
    pub fn set(&self, unix_seconds: f64) {
        self.0.store(unix_seconds.to_bits(), Ordering::SeqCst);
    }

    /// Moves it forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.set(self.now() + by.as_secs_f64());
    }
}
