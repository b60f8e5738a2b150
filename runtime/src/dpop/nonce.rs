//! Server-provided nonces (RFC 9449 §9): with [`DpopNonce`] on, every proof must carry a
//! `nonce` this API handed out recently, which bounds how long before its use a proof can
//! have been made (a client that pre-signs proofs with a stolen key cannot know the future
//! nonces).
//!
//! A nonce is base64url(first 16 bytes of HMAC-SHA-256(secret, "scopegate-dpop-nonce:" ||
//! step)), where `step` is the number of whole rotation periods since the Unix epoch on
//! the authority's clock. The nonce of the current step and of the one before are
//! accepted, so a nonce lasts between one and two rotation periods. Nothing is stored:
//! replicas built with the same secret ([`DpopNonce::shared_secret`]) hand out and accept
//! the same nonces; with [`DpopNonce::random`] each process has its own.
//!
//! A proof without a nonce, or with one that is not current, is refused with 401,
//! `error="use_dpop_nonce"` on the `DPoP` challenge, and the current nonce in the
//! `DPoP-Nonce` response header; every 401 of the authority carries that header, so a
//! client learns the nonce from its first refused request and retries once.

use std::{fmt, time::Duration};

use aws_lc_rs::hmac;

use crate::{b64::b64url_encode, config::ConfigError};

/// How often the nonce changes by default.
pub const DEFAULT_NONCE_ROTATION: Duration = Duration::from_secs(300);
/// The longest rotation period accepted.
pub const MAX_NONCE_ROTATION: Duration = Duration::from_secs(3600);
/// The shortest shared secret accepted, in bytes (the HMAC-SHA-256 key length).
pub const MIN_NONCE_SECRET_LEN: usize = 32;
/// What the HMAC covers before the step number, so that the secret signs nothing else.
const LABEL: &[u8] = b"scopegate-dpop-nonce:";
/// How many bytes of the HMAC a nonce keeps (128 bits: 22 base64url characters).
const NONCE_BYTES: usize = 16;

/// Server-provided DPoP nonces, for
/// [`AuthorityBuilder::dpop_nonce`](crate::AuthorityBuilder::dpop_nonce): off unless given.
///
/// ```
/// use std::time::Duration;
/// use scopegate::dpop::DpopNonce;
///
/// // One process: a random secret.
/// let single = DpopNonce::random();
/// // Several replicas behind one URL: the same secret in each (at least 32 bytes, from
/// // your secret store), so a nonce one hands out is accepted by the others.
/// let shared = DpopNonce::shared_secret(*b"0123456789abcdef0123456789abcdef").rotation(Duration::from_secs(120));
/// # let _ = (single, shared);
/// ```
#[derive(Clone)]
#[must_use]
pub struct DpopNonce {
    secret: Option<Vec<u8>>,
    rotation: Duration,
}

impl fmt::Debug for DpopNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("DpopNonce")
            .field("shared_secret", &self.secret.is_some())
            .field("rotation", &self.rotation)
            .finish()
    }
}

impl DpopNonce {
    /// Nonces from a secret drawn when the authority is built: for one process (replicas
    /// would refuse each other's nonces; use [`shared_secret`](Self::shared_secret)).
    pub fn random() -> Self {
        Self { secret: None, rotation: DEFAULT_NONCE_ROTATION }
    }

    /// Nonces from `secret`, which every replica of the API is given: at least
    /// [`MIN_NONCE_SECRET_LEN`] bytes (a shorter one is a [`ConfigError`] for
    /// `dpop_nonce`).
    pub fn shared_secret(secret: impl Into<Vec<u8>>) -> Self {
        Self { secret: Some(secret.into()), rotation: DEFAULT_NONCE_ROTATION }
    }

    /// How often the nonce changes (default [`DEFAULT_NONCE_ROTATION`], 5 minutes; from 1
    /// second to [`MAX_NONCE_ROTATION`], 1 hour). A nonce is accepted for one to two
    /// periods.
    pub fn rotation(mut self, every: Duration) -> Self {
        self.rotation = every;
        self
    }

    /// Checks the settings and makes the nonce source.
    pub(crate) fn build(self) -> Result<Nonces, ConfigError> {
        if self.rotation < Duration::from_secs(1) || self.rotation > MAX_NONCE_ROTATION {
            return Err(ConfigError::new(
                "dpop_nonce",
                "the nonce rotation period must be at least 1 second and at most 1 hour",
            ));
        }
        let secret = match self.secret {
            Some(secret) if secret.len() < MIN_NONCE_SECRET_LEN => {
                return Err(ConfigError::new(
                    "dpop_nonce",
                    format!(
                        "the shared nonce secret has {} bytes; give at least {MIN_NONCE_SECRET_LEN} random bytes",
                        secret.len()
                    ),
                ));
            }
            Some(secret) => secret,
            None => {
                let mut secret = vec![0u8; MIN_NONCE_SECRET_LEN];
                aws_lc_rs::rand::fill(&mut secret)
                    .map_err(|_| ConfigError::new("dpop_nonce", "no random nonce secret could be drawn"))?;
                secret
            }
        };
        Ok(Nonces { key: hmac::Key::new(hmac::HMAC_SHA256, &secret), rotation: self.rotation.as_secs_f64() })
    }
}

/// The nonce source of an authority: the key and the rotation period.
pub(crate) struct Nonces {
    key: hmac::Key,
    /// The rotation period in seconds.
    rotation: f64,
}

impl fmt::Debug for Nonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nonces").field("rotation", &self.rotation).finish_non_exhaustive()
    }
}

impl Nonces {
    /// The step `now` (seconds since the epoch) falls in: `as` saturates, so a clock
    /// before 1970 (or a NaN) is step 0.
    fn step(&self, now: f64) -> u64 {
        (now / self.rotation).floor().max(0.0) as u64
    }

    fn nonce_at(&self, step: u64) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(LABEL);
        context.update(&step.to_be_bytes());
        let tag = context.sign();
        b64url_encode(tag.as_ref().get(..NONCE_BYTES).unwrap_or_default())
    }

    /// The nonce handed out at `now`.
    pub(crate) fn current(&self, now: f64) -> String {
        self.nonce_at(self.step(now))
    }

    /// Whether `nonce` is the current one or the one before it. The comparison need not be
    /// constant-time: the current nonce is public (every 401 carries it), and the previous
    /// one was.
    pub(crate) fn accepts(&self, nonce: &str, now: f64) -> bool {
        let step = self.step(now);
        nonce == self.nonce_at(step) || step.checked_sub(1).is_some_and(|previous| nonce == self.nonce_at(previous))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces(secret: &[u8]) -> Nonces {
        DpopNonce::shared_secret(secret).rotation(Duration::from_secs(60)).build().unwrap()
    }

    #[test]
    fn a_nonce_is_accepted_in_its_step_and_the_next_only() {
        let source = nonces(&[7; 32]);
        let t = 1_800_000_000.0;
        let nonce = source.current(t);
        assert_eq!(nonce.len(), 22);
        assert_eq!(source.current(t + 59.0 - t % 60.0), nonce, "same step");
        assert!(source.accepts(&nonce, t));
        assert!(source.accepts(&nonce, t + 60.0), "the previous step's nonce");
        assert!(!source.accepts(&nonce, t + 120.0), "two steps on");
        assert!(!source.accepts(&nonce, t - 60.0), "a nonce of the future");
        assert_ne!(source.current(t + 60.0), nonce);
        assert!(!source.accepts("", t));
    }

    #[test]
    fn replicas_with_one_secret_agree_and_others_do_not() {
        let t = 1_800_000_000.0;
        assert_eq!(nonces(&[7; 32]).current(t), nonces(&[7; 32]).current(t));
        assert_ne!(nonces(&[7; 32]).current(t), nonces(&[8; 32]).current(t));
        let random = DpopNonce::random().build().unwrap();
        assert!(!random.accepts(&nonces(&[7; 32]).current(t), t));
    }

    #[test]
    fn bad_settings_name_dpop_nonce() {
        for settings in [
            DpopNonce::shared_secret([1; 31]),
            DpopNonce::random().rotation(Duration::from_millis(999)),
            DpopNonce::random().rotation(Duration::from_secs(3601)),
        ] {
            assert_eq!(settings.build().unwrap_err().setting(), "dpop_nonce");
        }
    }

    #[test]
    fn the_rotation_bounds_themselves_are_accepted() {
        for every in [Duration::from_secs(1), MAX_NONCE_ROTATION] {
            assert!(DpopNonce::random().rotation(every).build().is_ok(), "{every:?}");
        }
    }

    #[test]
    fn the_debug_forms_never_show_the_secret() {
        let settings = DpopNonce::shared_secret([7; 32]).rotation(Duration::from_secs(120));
        assert_eq!(format!("{settings:?}"), "DpopNonce { shared_secret: true, rotation: 120s }");
        assert_eq!(format!("{:?}", settings.build().unwrap()), "Nonces { rotation: 120.0, .. }");
    }
}
