//! The axum extractors: [`AccessToken`], `Option<AccessToken>`, and the guard that
//! `#[requires_scope]` inserts in front of a handler's own arguments.
//!
//! All of them get the [`Authority`] from the router state through `FromRef`, verify the
//! request's bearer token at most once per authority and audience check (the results are
//! kept in the request's extensions, see [`AccessToken`]), and never read the body: they
//! are `FromRequestParts` extractors, so they run before any body extractor.

use std::{
    marker::PhantomData,
    sync::{Arc, Weak, atomic::Ordering},
    time::{Duration, SystemTime},
};

use axum::{
    extract::{FromRef, FromRequestParts, OptionalFromRequestParts},
    http::request::Parts,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{
    authority::{Authority, Inner},
    claims::{AudienceCheck, VerifiedClaims},
    credentials::{self, Credentials},
    rejection::{Rejection, RejectionKind, TokenError},
    scope::{ScopeExpr, Scopes},
};

/// A router state that can supply the [`Authority`] scopegate verifies tokens with.
///
/// Implemented for every state `S` for which `Authority: FromRef<S>`: a state that *is*
/// an `Authority`, or a struct with an `Authority` field and `#[derive(FromRef)]`.
#[diagnostic::on_unimplemented(
    message = "the router state `{Self}` does not provide a `scopegate::Authority`",
    label = "scopegate cannot get its token verifier from this state",
    note = "implement `axum::extract::FromRef<{Self}>` for `scopegate::Authority`: add an `Authority` field to the state and `#[derive(FromRef)]` on it, or use `.with_state(authority)`",
    note = "with `#[axum::debug_handler]`, `{Self}` is the state it was told or inferred from a `State<…>` argument: name the router's state with `#[axum::debug_handler(state = YourState)]`, below `#[requires_scope]`"
)]
pub trait AuthorityState: Send + Sync {
    /// The authority to verify with.
    fn authority(&self) -> Authority;
}

#[diagnostic::do_not_recommend]
impl<S> AuthorityState for S
where
    S: Send + Sync,
    Authority: FromRef<S>,
{
    fn authority(&self) -> Authority {
        Authority::from_ref(self)
    }
}

/// A verified access token: the extractor for "any valid access token for this API".
///
/// It verifies the request's `Authorization: Bearer` token against the router state's
/// [`Authority`] and its default audience. Take `Option<AccessToken>` for optional
/// authentication: no credentials gives `None`, while a bad token is still refused.
///
/// # Verified once per authority
///
/// A request's token is verified at most once per [`Authority`] and audience check; the
/// results are kept in the request's extensions, each bound to the authority that made it
/// (the same `Authority` or a clone of it, not another one built with the same settings):
///
/// - `AccessToken` and `Option<AccessToken>` reuse a result of **their own authority**,
///   whatever audience it was checked for. This is how a `#[requires_scope]` handler's
///   `AccessToken` argument gets the token its guard verified (also for `aud = "…"`).
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

/// The verification results kept in a request's extensions: one per authority and
/// audience check, so that extractors of several authorities (an outer middleware's and a
/// nested router's) or audiences each verify once, and none is handed another's result.
/// The first needs no allocation of its own: most requests verify once.
#[derive(Clone)]
struct Verified {
    first: Outcome,
    more: Vec<Outcome>,
}

/// One successful verification of the request's token.
#[derive(Clone)]
struct Outcome {
    /// The authority that verified it. A `Weak` keeps the allocation, so the address
    /// cannot be reused by another authority while the request holds it.
    authority: Weak<Inner>,
    /// The audience checked: `None` for the authority's configured audiences.
    audience: Option<&'static str>,
    token: AccessToken,
}

/// Which earlier verification an extractor may reuse.
#[derive(Clone, Copy)]
enum Reuse {
    /// A plain `AccessToken`: any verification by the same authority, whatever audience
    /// it checked (a guarded handler's `AccessToken` argument gets the guard's token).
    SameAuthority,
    /// A guard: only a verification by the same authority for the same audience check,
    /// and for a guard with `introspect`, only one the introspection endpoint made.
    SameAudience(Option<&'static str>, bool),
}

impl Verified {
    fn find(&self, authority: &Authority, reuse: Reuse) -> Option<&AccessToken> {
        let all = std::iter::once(&self.first).chain(&self.more);
        let by_authority = all.filter(|o| std::ptr::eq(o.authority.as_ptr(), Arc::as_ptr(&authority.inner)));
        match reuse {
            Reuse::SameAuthority => by_authority.map(|o| &o.token).next(),
            Reuse::SameAudience(audience, introspect) => by_authority
                .filter(|o| o.audience == audience)
                .filter(|o| !introspect || o.token.verified_by() == crate::Verification::Introspection)
                .map(|o| &o.token)
                .next(),
        }
    }
}

/// Verifies the request's token with `authority`, for a guard's audience (a plain
/// `AccessToken`, or a guard without `aud`: the authority's configured audiences),
/// reusing an earlier result only as `reuse` allows.
async fn authenticate(
    parts: &mut Parts,
    authority: &Authority,
    reuse: Reuse,
) -> Result<Option<AccessToken>, Rejection> {
    if let Some(token) = parts.extensions.get::<Verified>().and_then(|v| v.find(authority, reuse)) {
        return Ok(Some(token.clone()));
    }
    let (audience, introspect) = match reuse {
        Reuse::SameAuthority => (None, false),
        Reuse::SameAudience(audience, introspect) => (audience, introspect),
    };
    let check = audience.map_or(AudienceCheck::Configured, AudienceCheck::Exact);
    // The common request: a bearer token verified before. A token in the verified-token
    // cache passed every syntax check `credentials::token` makes, so they are not made
    // again (see `credentials::plain_bearer`); anything else takes the full path below.
    let cached = match credentials::plain_bearer(&parts.headers, &parts.uri) {
        Some(token) if !introspect && !authority.dpop_required() => authority.cached(token, check),
        _ => None,
    };
    let token = match cached {
        Some((member, result)) => authority.settle(result, Some(&member.inner.config.issuer))?,
        None => match verify_presented(parts, authority, check, introspect).await? {
            Some(token) => token,
            None => return Ok(None),
        },
    };
    let outcome = Outcome { authority: Arc::downgrade(&authority.inner), audience, token: token.clone() };
    match parts.extensions.get_mut::<Verified>() {
        Some(verified) => verified.more.push(outcome),
        None => {
            parts.extensions.insert(Verified { first: outcome, more: Vec::new() });
        }
    }
    Ok(Some(token))
}

/// Reads the request's credentials with every syntax check and verifies them for `check`.
async fn verify_presented(
    parts: &mut Parts,
    authority: &Authority,
    check: AudienceCheck<'_>,
    introspect: bool,
) -> Result<Option<AccessToken>, Rejection> {
    let credentials = match credentials::token(&parts.headers, &parts.uri, authority.dpop_enabled()) {
        // DPoP required: a bearer token is an unsupported scheme (RFC 6750 §3.1).
        Ok(Credentials::Bearer(_)) if authority.dpop_required() => return Err(missing_credentials(authority)),
        Ok(Credentials::None) => return Ok(None),
        Ok(credentials) => credentials,
        Err(error) => return Err(authority.reject(RejectionKind::InvalidRequest(error))),
    };
    match credentials {
        Credentials::Dpop(token) => {
            // Owned: the proof check records the accepted proof in the request extensions.
            let token = token.to_owned();
            match authority.verify_dpop(parts, &token, check, introspect).await {
                Ok(claims) => Ok(Some(authority.accepted(claims))),
                Err(kind) => Err(authority.reject(kind).under_dpop()),
            }
        }
        Credentials::Bearer(token) => authority.verify_for(token, check, introspect).await.map(Some),
        Credentials::None => Ok(None),
    }
}

impl Authority {
    /// Verifies a bearer token (the credential after `Bearer `) for the default
    /// audiences, outside of an HTTP request: for WebSocket handshakes, message queues or
    /// tests. Scope requirements are the caller's to check ([`AccessToken::has_scope`],
    /// [`ScopeExpr::is_satisfied_by`]).
    ///
    /// # Errors
    /// A [`Rejection`] saying why the token was refused.
    pub async fn verify(&self, token: &str) -> Result<AccessToken, Rejection> {
        self.verify_for(token, AudienceCheck::Configured, false).await
    }

    /// Verifies a bearer token for `audience` (`introspect`: at the introspection endpoint
    /// even if it is a JWT), counting the outcome.
    async fn verify_for(
        &self,
        token: &str,
        audience: AudienceCheck<'_>,
        introspect: bool,
    ) -> Result<AccessToken, Rejection> {
        let (member, verified) = self.verify_routed(token, audience, introspect).await;
        self.settle(verified, member.map(|member| &*member.inner.config.issuer))
    }

    /// The response to a bearer token's verification: the token, counted as accepted, or
    /// the counted rejection (`issuer`: the trusted issuer whose checks it went through,
    /// for the metrics). A sender-constrained token (`cnf`) is refused: it needs its
    /// proof (RFC 9449 §7.2).
    fn settle(
        &self,
        verified: Result<Arc<VerifiedClaims>, RejectionKind>,
        issuer: Option<&str>,
    ) -> Result<AccessToken, Rejection> {
        match verified {
            Ok(claims) if claims.bound => Err(self.reject_from(TokenError::SenderConstrained.into(), issuer)),
            Ok(claims) => Ok(self.accepted(claims)),
            Err(kind) => Err(self.reject_from(kind, issuer)),
        }
    }

    /// Counts an accepted token.
    fn accepted(&self, claims: Arc<VerifiedClaims>) -> AccessToken {
        self.inner.stats.accepted.fetch_add(1, Ordering::Relaxed);
        crate::metrics::token_accepted(self.metrics_issuer(claims.issuer()));
        AccessToken { claims }
    }

    /// Counts a rejection and builds its response (a 401 with the current DPoP nonce
    /// when the authority hands out nonces).
    pub(crate) fn reject(&self, kind: RejectionKind) -> Rejection {
        self.reject_from(kind, None)
    }

    /// [`reject`](Self::reject) for a token that went through the checks of the trusted
    /// issuer `issuer` (its configured identifier: the metrics' `issuer` label).
    pub(crate) fn reject_from(&self, kind: RejectionKind, issuer: Option<&str>) -> Rejection {
        self.inner.stats.count_rejection(kind.code());
        crate::metrics::token_rejected(kind.code(), issuer);
        let unauthorized = kind.status() == axum::http::StatusCode::UNAUTHORIZED;
        let rejection = Rejection::new(kind, self.inner.config.challenge.clone());
        match self.dpop_nonce().filter(|_| unauthorized) {
            Some(nonce) => rejection.with_dpop_nonce(nonce),
            None => rejection,
        }
    }

    /// The configured identifier of the trusted issuer of a verified token's `iss`, for
    /// the metrics' `issuer` label; not looked up without the `metrics` feature.
    fn metrics_issuer(&self, iss: &str) -> Option<&str> {
        if !crate::metrics::ENABLED {
            return None;
        }
        self.member_for(iss).map(|member| &*member.inner.config.issuer)
    }
}

/// The request's token, verified for the authority's configured audiences exactly as by
/// [`AccessToken`] (reusing a verification already made for this request): for the
/// extractors of other modules ([`UserInfo`](crate::UserInfo)).
pub(crate) async fn verified_token(parts: &mut Parts, authority: &Authority) -> Result<AccessToken, Rejection> {
    authenticate(parts, authority, Reuse::SameAuthority).await?.ok_or_else(|| missing_credentials(authority))
}

/// The request's token, verified by [`RequireAccessToken`](crate::layer::RequireAccessToken)
/// for `audience` (`None`: the authority's configured audiences) and kept exactly like a
/// guard's result, so a `#[requires_scope]` guard of the same authority and audience
/// check, and every `AccessToken` of that authority, reuse it instead of verifying again.
pub(crate) async fn required_token(
    parts: &mut Parts,
    authority: &Authority,
    audience: Option<&'static str>,
) -> Result<AccessToken, Rejection> {
    authenticate(parts, authority, Reuse::SameAudience(audience, false))
        .await?
        .ok_or_else(|| missing_credentials(authority))
}

fn missing_credentials(authority: &Authority) -> Rejection {
    authority.reject(RejectionKind::MissingCredentials)
}

impl<S: AuthorityState> FromRequestParts<S> for AccessToken {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let authority = state.authority();
        authenticate(parts, &authority, Reuse::SameAuthority).await?.ok_or_else(|| missing_credentials(&authority))
    }
}

impl<S: AuthorityState> OptionalFromRequestParts<S> for AccessToken {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Rejection> {
        authenticate(parts, &state.authority(), Reuse::SameAuthority).await
    }
}

/// A handler's scope requirement, generated by `#[requires_scope]`. Not public API.
#[doc(hidden)]
pub trait Requirement: Send + Sync + 'static {
    /// The audience named with `aud = "…"`, or `None` for the authority's default.
    const AUDIENCE: Option<&'static str>;
    /// The scope expression.
    const SCOPES: ScopeExpr;
    /// The 403 challenge's `scope` value.
    const CHALLENGE: &'static str;
    /// `introspect`: the token goes to the introspection endpoint even when it is a JWT.
    const INTROSPECT: bool = false;
    /// The issuer named with `iss = "…"`, or `None` for any issuer the authority trusts.
    const ISSUER: Option<&'static str> = None;
    /// `dpop = "required"`: bearer tokens are refused on this handler.
    const DPOP_REQUIRED: bool = false;
}

/// The extractor `#[requires_scope]` puts first in a handler. Not public API.
#[doc(hidden)]
pub struct Guard<R>(PhantomData<fn() -> R>);

impl<R> std::fmt::Debug for Guard<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guard")
    }
}

impl<S: AuthorityState, R: Requirement> FromRequestParts<S> for Guard<R> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let authority = state.authority();
        // `dpop = "required"`: the handler's challenges offer DPoP alone.
        let scheme = |rejection: Rejection| {
            let rejection = rejection.for_route(R::CHALLENGE);
            if R::DPOP_REQUIRED { rejection.dpop_only() } else { rejection }
        };
        if R::DPOP_REQUIRED {
            if !authority.dpop_enabled() {
                tracing::error!(
                    "a handler with `#[requires_scope(…, dpop = \"required\")]` is served by an Authority without \
                     DPoP: configure it with .dpop(DpopPolicy::Allowed) or .dpop(DpopPolicy::Required)"
                );
                return Err(authority.reject(RejectionKind::Misconfigured));
            }
            // A bearer token is an unsupported scheme here (RFC 6750 §3.1), even one an
            // earlier extractor of this request accepted.
            if matches!(credentials::token(&parts.headers, &parts.uri, true), Ok(Credentials::Bearer(_))) {
                return Err(scheme(missing_credentials(&authority)));
            }
        }
        let token = authenticate(parts, &authority, Reuse::SameAudience(R::AUDIENCE, R::INTROSPECT))
            .await
            .and_then(|token| token.ok_or_else(|| missing_credentials(&authority)))
            .map_err(scheme)?;
        if let Some(issuer) = R::ISSUER
            && token.issuer() != issuer
        {
            let kind = RejectionKind::InvalidToken(crate::rejection::TokenError::IssuerNotAllowedHere);
            return Err(scheme(authority.reject_from(kind, authority.metrics_issuer(token.issuer()))));
        }
        if !R::SCOPES.is_satisfied_by(token.scopes()) {
            let kind = RejectionKind::InsufficientScope { required: R::CHALLENGE, requirement: R::SCOPES };
            let rejection = authority.reject_from(kind, authority.metrics_issuer(token.issuer()));
            // The 403 goes on the challenge of the scheme the token came with.
            let dpop = authority.dpop_enabled()
                && matches!(credentials::token(&parts.headers, &parts.uri, true), Ok(Credentials::Dpop(_)));
            return Err(if dpop { rejection.under_dpop() } else { rejection });
        }
        Ok(Guard(PhantomData))
    }
}
