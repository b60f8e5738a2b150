//! [`AccessToken`]: a verified access token, what the verifier
//! ([`Authority::verify`](crate::Authority::verify)) returns and the extractors hand to
//! handlers (`extract.rs` says how they get it from a request).

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{claims::VerifiedClaims, scope::Scopes};

/// A verified access token: the extractor for "any valid access token for this API".
///
/// It verifies the request's `Authorization: Bearer` token against the router state's
/// [`Authority`](crate::Authority) and its default audience. Take `Option<AccessToken>` for optional
/// authentication: no credentials gives `None`, while a bad token is still refused.
///
/// # Verified once per authority
///
/// A request's token is verified at most once per [`Authority`](crate::Authority) and audience check; the
/// results are kept in the request's extensions, each bound to the authority that made it
/// (the same `Authority` or a clone of it, not another one built with the same settings):
///
/// - `AccessToken` and `Option<AccessToken>` reuse the latest result of **their own
///   authority**, whatever audience it was checked for. This is how a `#[requires_scope]`
///   handler's `AccessToken` argument gets the token its guard verified (also for
///   `aud = "…"` and `introspect`), not an outer middleware's.
/// - A `#[requires_scope]` guard reuses only a result of its own authority **for its own
///   audience check** (`aud = "…"`, or the authority's audiences): after a middleware's
///   `AccessToken`, a guard with `aud = "…"` verifies again.
/// - A result of another authority is never reused: a middleware that authenticates with
///   one authority does not vouch for routes nested with another. Those verify again
///   (the verified-token cache keeps that cheap).
///
/// ```
/// use axum::{Json, Router, routing::get};
/// use scopegate::{AccessToken, Authority};
///
/// async fn me(token: AccessToken) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "sub": token.subject(), "scopes": token.scopes().iter().collect::<Vec<_>>() }))
/// }
///
/// fn app(authority: Authority) -> Router {
///     Router::new().route("/me", get(me)).with_state(authority)
/// }
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct AccessToken {
    claims: Arc<VerifiedClaims>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("subject", &self.claims.subject())
            .field("client_id", &self.claims.client_id())
            .field("scopes", &self.claims.scopes)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    /// The token of these verified claims: made by the verifier only.
    pub(crate) fn new(claims: Arc<VerifiedClaims>) -> Self {
        Self { claims }
    }

    /// `sub`: the user, or for client-credentials tokens the client.
    #[must_use]
    pub fn subject(&self) -> &str {
        self.claims.subject()
    }

    /// `client_id` (in the compatible profile, `azp` or `cid` when `client_id` is absent).
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        self.claims.client_id()
    }

    /// Whether this token was issued to a client acting for itself (`sub == client_id`),
    /// not to a user.
    #[must_use]
    pub fn is_client_token(&self) -> bool {
        self.client_id() == Some(self.subject())
    }

    /// Every audience in `aud`.
    pub fn audiences(&self) -> impl ExactSizeIterator<Item = &str> {
        self.claims.audiences()
    }

    /// The granted scopes.
    #[must_use]
    pub fn scopes(&self) -> &Scopes {
        &self.claims.scopes
    }

    /// Whether `scope` was granted.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.scopes.contains(scope)
    }

    /// `iss`.
    #[must_use]
    pub fn issuer(&self) -> &str {
        self.claims.issuer()
    }

    /// `exp`, truncated to whole seconds.
    #[must_use]
    pub fn expires_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(self.claims.expires_at.trunc())
    }

    /// `iat`, truncated to whole seconds.
    #[must_use]
    pub fn issued_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(self.claims.issued_at.trunc())
    }

    /// `jti`, the token's unique identifier (required in the RFC 9068 profile).
    #[must_use]
    pub fn jti(&self) -> Option<&str> {
        self.claims.jti()
    }

    /// How the token was verified: locally as a JWT, or by the issuer's introspection
    /// endpoint (an opaque token, or any token with `introspect_jwts`).
    #[must_use]
    pub fn verified_by(&self) -> crate::Verification {
        self.claims.verification
    }

    /// Every claim of the verified token, as parsed (duplicate-free); for an introspected
    /// token, the members of the introspection answer.
    #[must_use]
    pub fn raw_claims(&self) -> &Map<String, Value> {
        self.claims.raw()
    }

    /// Deserializes the verified claims into the application's own type.
    ///
    /// # Errors
    /// When the claims do not fit `T`.
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        // The payload passed the strict reader (no duplicate members at any depth), so a
        // plain parse reads exactly the claims that were verified.
        serde_json::from_str(self.claims.payload())
    }
}
