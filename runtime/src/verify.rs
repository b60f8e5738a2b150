//! The verification pipeline: from a bearer token string to verified claims.
//!
//! The order is fixed and cheap checks come first: size cap, compact form, header
//! (algorithm allowlist, refused parameters, `typ` per profile), key selection, the
//! signature, and only then the claim set. Nothing read before the signature check can
//! widen acceptance (security spec G3).

use std::{
    sync::{Arc, atomic::Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{
    authority::Authority,
    claims::{self, AudienceCheck, VerifiedClaims},
    jws::{self, Typ, b64url_decode},
    keys::KeyLookup,
    rejection::{RejectionKind, TokenError},
};

impl Authority {
    /// Verifies a bearer token for the given audience, through the verified-token cache.
    pub(crate) async fn verify_token(
        &self,
        token: &str,
        audience: AudienceCheck<'_>,
    ) -> Result<Arc<VerifiedClaims>, RejectionKind> {
        let config = &self.inner.config;
        if token.len() > config.max_token_size {
            return Err(TokenError::TooLarge.into());
        }
        let Some(cache) = &self.inner.token_cache else {
            return self.verify_uncached(token, audience).await.map(Arc::new);
        };
        self.inner
            .keys
            .check_usable()
            .map_err(|u| RejectionKind::KeysUnavailable { retry_after_secs: u.retry_after_secs })?;
        let generation = self.inner.keys.generation();
        let now = now();
        if let Some(claims) = cache.get(token, generation, now).filter(|c| within_max_age(c, config, now)) {
            if !claims::audience_matches(&claims.audiences, config, audience) {
                return Err(TokenError::InvalidAudience.into());
            }
            self.inner.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_uncached(token, audience).await?);
        cache.insert(token, &claims, generation);
        Ok(claims)
    }

    /// The full verification, without the cache. A refusal is logged with its reason and
    /// what may be said of the token: its `kid` and, once the signature has verified, its
    /// `iss` and `jti`, each escaped and truncated (security spec case 148). Never the
    /// token itself.
    async fn verify_uncached(&self, token: &str, audience: AudienceCheck<'_>) -> Result<VerifiedClaims, RejectionKind> {
        let mut seen = Seen::default();
        let result = self.verify_steps(token, audience, &mut seen).await;
        if let Err(kind) = &result {
            tracing::debug!(
                target: "scopegate",
                reason = kind.code(),
                kid = seen.kid.as_deref(),
                iss = seen.iss.as_deref(),
                jti = seen.jti.as_deref(),
                "access token refused"
            );
        }
        result
    }

    async fn verify_steps(
        &self,
        token: &str,
        audience: AudienceCheck<'_>,
        seen: &mut Seen,
    ) -> Result<VerifiedClaims, RejectionKind> {
        let config = &self.inner.config;
        let compact = jws::split(token)?;
        let header = jws::parse_header(compact.header, &config.algorithms)?;

        seen.kid = header.kid.as_deref().map(log_value);

        // A token typed as anything but an access token or a plain JWT (`logout+jwt`,
        // `dpop+jwt`, `at+jwt;v=1`, …) is refused before any key work. Tokens typed `JWT`
        // or untyped go on to the signature check even in the strict profile, where
        // `claims::validate` refuses them: only their claims tell an ID token (named as
        // such) from another JWT, and claims are read only once the signature has verified
        // (security spec case 78).
        if header.typ == Typ::Other {
            return Err(TokenError::NotAnAccessToken.into());
        }

        let signature = b64url_decode(compact.signature.as_bytes()).ok_or(TokenError::Malformed)?;
        let mut keys = self
            .inner
            .keys
            .snapshot()
            .map_err(|u| RejectionKind::KeysUnavailable { retry_after_secs: u.retry_after_secs })?;
        let kid = header.kid.as_deref();
        let mut lookup = keys.lookup(kid, header.alg);
        if let (KeyLookup::UnknownKid, Some(kid)) = (&lookup, kid)
            && let Some(newer) = self.inner.keys.refresh_for_unknown_kid(kid).await
        {
            keys = newer;
            lookup = keys.lookup(Some(kid), header.alg);
        }
        let KeyLookup::Found(candidates) = lookup else {
            return Err(TokenError::UnknownKey.into());
        };
        self.inner.stats.signatures_checked.fetch_add(1, Ordering::Relaxed);
        let message = compact.signing_input.as_bytes();
        if !candidates.iter().flatten().any(|verifier| verifier.verify(message, &signature)) {
            return Err(TokenError::InvalidSignature.into());
        }

        let payload = decode_claims(compact.payload)?;
        seen.iss = payload.get("iss").and_then(serde_json::Value::as_str).map(log_value);
        seen.jti = payload.get("jti").and_then(serde_json::Value::as_str).map(log_value);
        Ok(claims::validate(payload, header.typ, config, audience, now())?)
    }
}

/// What the log line of a refused token may say about it.
#[derive(Debug, Default)]
struct Seen {
    kid: Option<String>,
    iss: Option<String>,
    jti: Option<String>,
}

/// A value taken from a token, fit for a log line: at most 64 characters, escaped to
/// printable ASCII (no line breaks or quotes from the attacker).
fn log_value(value: &str) -> String {
    value.chars().take(64).flat_map(char::escape_default).collect()
}

/// A cached token must still be young enough for `max_token_age`.
fn within_max_age(claims: &VerifiedClaims, config: &crate::authority::Config, now: f64) -> bool {
    config.max_age.is_none_or(|max| now - claims.issued_at as f64 <= max.as_secs_f64())
}

fn decode_claims(segment: &str) -> Result<serde_json::Map<String, serde_json::Value>, TokenError> {
    let bytes = b64url_decode(segment.as_bytes()).ok_or(TokenError::Malformed)?;
    crate::json::parse_object(&bytes).map_err(|_| TokenError::Malformed)
}

/// The wall clock in seconds since the Unix epoch (token times are wall-clock times).
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl From<TokenError> for RejectionKind {
    fn from(error: TokenError) -> Self {
        Self::InvalidToken(error)
    }
}
