//! Where the verifier gets its keys: the seam between verification and key retrieval.
//!
//! The verifier asks for a snapshot (an `Arc<KeySet>`, read without locks) and, when a
//! token names a `kid` the snapshot lacks, may ask for a refresh. A fixed key set (static
//! JWKS, PEM keys or a shared secret) never changes and never refreshes; a remote one is
//! the JWKS cache of [`crate::jwks`].

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::{
    algorithm::Algorithm,
    b64::b64url_decode,
    jwks::RemoteKeys,
    jws::{self, MAX_HEADER_BYTES, MAX_SIGNATURE_BYTES, Typ},
    keys::{KeyMatch, KeySet, Unavailable},
};

/// Why a signed document from the issuer (a signed `/userinfo` or introspection answer)
/// was not accepted by [`KeySource::verify_document`].
#[derive(Debug)]
pub(crate) enum DocumentRefused {
    /// No usable key set right now.
    Unavailable,
    /// The document is not a JWS this source's keys verify; why, for the log.
    Invalid(&'static str),
}

/// What a document's `typ` must be: checked with the header's `typ` as the JWS parser
/// classifies it, and the header's JSON (for a `typ` of its own), before any key work.
pub(crate) struct TypRule<'a> {
    pub(crate) accepts: &'a (dyn Fn(Typ, &[u8]) -> bool + Sync),
    /// Why a document is refused when `accepts` says no (for the log).
    pub(crate) refusal: &'static str,
}

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
    pub(crate) fn check_usable(&self, at: std::time::Instant) -> Result<(), Unavailable> {
        match self {
            Self::Fixed(_) => Ok(()),
            Self::Remote(remote) => remote.check_usable(at),
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
        if let (KeyMatch::UnknownKid, Some(kid)) = (&lookup, kid)
            && let Some(newer) = self.refresh_for_unknown_kid(kid).await
        {
            keys = newer;
            lookup = keys.lookup(Some(kid), alg);
        }
        let KeyMatch::Found(candidates) = lookup else {
            return Err(SignatureRefused::UnknownKey);
        };
        if candidates.iter().flatten().any(|verifier| verifier.verify(message, signature)) {
            Ok(())
        } else {
            Err(SignatureRefused::Invalid)
        }
    }

    /// Verifies a signed document from the issuer: a compact JWS (surrounding ASCII
    /// whitespace ignored) with an algorithm of `algorithms`, a `typ` that `typ` accepts,
    /// and a signature by this source's keys ([`verify_signature`](Self::verify_signature)).
    /// Returns its payload as a strict JSON object and as text.
    pub(crate) async fn verify_document(
        &self,
        body: &[u8],
        algorithms: &[Algorithm],
        typ: &TypRule<'_>,
    ) -> Result<(Map<String, Value>, String), DocumentRefused> {
        use DocumentRefused::Invalid;
        let text = std::str::from_utf8(body).map_err(|_| Invalid("not UTF-8"))?.trim_ascii();
        let compact = jws::split(text).map_err(|_| Invalid("not a compact JWS"))?;
        let mut header_buffer = [0u8; MAX_HEADER_BYTES];
        let header_json =
            jws::decode_header(compact.header, &mut header_buffer).map_err(|_| Invalid("header refused"))?;
        let header = jws::parse_header(header_json, algorithms).map_err(|_| Invalid("header refused"))?;
        if !(typ.accepts)(header.typ, header_json) {
            return Err(Invalid(typ.refusal));
        }
        let mut signature_buffer = [0u8; MAX_SIGNATURE_BYTES];
        let signature =
            jws::decode_signature(compact.signature, &mut signature_buffer).ok_or(Invalid("bad signature"))?;
        let message = compact.signing_input.as_bytes();
        match self.verify_signature(header.kid.as_deref(), header.alg, message, signature).await {
            Ok(()) => {}
            Err(SignatureRefused::Unavailable(_)) => return Err(DocumentRefused::Unavailable),
            Err(SignatureRefused::UnknownKey) => return Err(Invalid("unknown key")),
            Err(SignatureRefused::Invalid) => return Err(Invalid("invalid signature")),
        }
        let json = b64url_decode(compact.payload.as_bytes())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(Invalid("payload is not base64url UTF-8"))?;
        let claims = crate::json::parse_object(json.as_bytes()).map_err(|_| Invalid("payload is not a JSON object"))?;
        Ok((claims, json))
    }
}
