//! Where the verifier gets its keys: the seam between verification and key retrieval.
//!
//! The verifier asks for a snapshot (an `Arc<KeySet>`, read without locks) and, when a
//! token names a `kid` the snapshot lacks, may ask for a refresh. A fixed key set (static
//! JWKS, PEM keys or a shared secret) never changes and never refreshes; a remote one is
//! the JWKS cache of [`crate::jwks`].

use std::sync::Arc;

use crate::{
    algorithm::Algorithm,
    jwks::RemoteKeys,
    keys::{KeyLookup, KeySet, Unavailable},
};

/// Why a signature was not accepted by [`KeySource::verify_signature`].
#[derive(Debug)]
pub(crate) enum SignatureRefused {
    /// No usable key set right now (none fetched yet, or too stale).
    Unavailable(Unavailable),
    /// No key for this `kid` and algorithm, even after the refresh an unknown `kid` may
    /// cause. No signature was checked.
    UnknownKey,
    /// The key was found and the signature does not verify with it.
    Invalid,
}

/// A source of verification keys (cheap to clone: an `Arc` inside).
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// Keys given in the configuration.
    Fixed(Arc<KeySet>),
    /// The issuer's JWKS, fetched and cached.
    Remote(Arc<RemoteKeys>),
}

impl KeySource {
    pub(crate) fn fixed(keys: KeySet) -> Self {
        Self::Fixed(Arc::new(keys))
    }

    /// The current key set: a cheap `Arc` clone, never waiting on I/O.
    pub(crate) fn snapshot(&self) -> Result<Arc<KeySet>, Unavailable> {
        match self {
            Self::Fixed(keys) => Ok(Arc::clone(keys)),
            Self::Remote(remote) => remote.snapshot(),
        }
    }

    /// Whether keys may be used at all right now (a remote set can be missing or too
    /// stale); checked on verified-token cache hits, which need no key.
    pub(crate) fn check_usable(&self) -> Result<(), Unavailable> {
        match self {
            Self::Fixed(_) => Ok(()),
            Self::Remote(remote) => remote.check_usable(),
        }
    }

    /// A number that changes whenever the key set may have changed (every successful
    /// fetch); verified-token cache entries from an older generation are not used.
    pub(crate) fn generation(&self) -> u64 {
        match self {
            Self::Fixed(_) => 0,
            Self::Remote(remote) => remote.generation(),
        }
    }

    /// Called when a token names an unknown `kid`: returns a newer key set if one could be
    /// obtained, or `None` (the token is then refused).
    pub(crate) async fn refresh_for_unknown_kid(&self, kid: &str) -> Option<Arc<KeySet>> {
        match self {
            Self::Fixed(_) => None,
            Self::Remote(remote) => remote.refresh_for_unknown_kid(kid).await,
        }
    }

    /// Checks a JWS signature with the key its header names (`kid`, `alg`): in the current
    /// set, or when the `kid` is unknown, in the set a refresh brings (within the refresh
    /// cooldown and budget). Access tokens, signed `/userinfo` answers and signed
    /// introspection answers all go through here.
    pub(crate) async fn verify_signature(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureRefused> {
        let mut keys = self.snapshot().map_err(SignatureRefused::Unavailable)?;
        let mut lookup = keys.lookup(kid, alg);
        if let (KeyLookup::UnknownKid, Some(kid)) = (&lookup, kid)
            && let Some(newer) = self.refresh_for_unknown_kid(kid).await
        {
            keys = newer;
            lookup = keys.lookup(Some(kid), alg);
        }
        let KeyLookup::Found(candidates) = lookup else {
            return Err(SignatureRefused::UnknownKey);
        };
        if candidates.iter().flatten().any(|verifier| verifier.verify(message, signature)) {
            Ok(())
        } else {
            Err(SignatureRefused::Invalid)
        }
    }
}
