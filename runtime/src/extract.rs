//! The axum extractors: [`AccessToken`], `Option<AccessToken>`, and the guard that
//! `#[requires_scope]` inserts in front of a handler's own arguments.
//!
//! All of them get the [`Authority`] from the router state through `FromRef`, have the
//! request's bearer token verified (by the verifier, `verify.rs`) at most once per
//! authority and audience check (the results are kept in the request's extensions, see
//! [`AccessToken`]), and never read the body: they are `FromRequestParts` extractors, so
//! they run before any body extractor.

use std::{
    marker::PhantomData,
    sync::{Arc, Weak},
};

use crate::{
    access_token::AccessToken,
    authority::{Authority, Inner},
    claims::AudienceCheck,
    credentials::{self, Credentials},
    introspection::Introspector,
    rejection::{Rejection, RejectionKind},
    scope::ScopeExpr,
};
use axum::{
    extract::{FromRef, FromRequestParts, OptionalFromRequestParts},
    http::request::Parts,
};

/// A router state that can supply the [`Authority`] scopegate verifies tokens with.
///
/// Implemented for every state `S` for which `Authority: FromRef<S>`: a state that *is*
/// an `Authority`, or a struct with an `Authority` field and `#[derive(FromRef)]`.
#[diagnostic::on_unimplemented(
    message = "the router state `{Self}` does not provide a `scopegate::Authority`",
    label = "scopegate cannot get its token verifier from this state",
    note = "implement `axum::extract::FromRef<{Self}>` for `scopegate::Authority`: add an `Authority` field to the state and `#[derive(FromRef)]` on it, or use `.with_state(authority)`",
    note = "with `#[axum::debug_handler]`, `{Self}` is the state it was told, inferred from a `State<…>` argument, or `()` without one: name the router's state with `#[axum::debug_handler(state = YourState)]`, below `#[requires_scope]`"
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
    /// The scheme the token came with (the same for every extractor of the request: one
    /// `Authorization` header, read with the authority's DPoP setting).
    scheme: Scheme,
    token: AccessToken,
}

/// The scheme a verified token came with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Bearer,
    Dpop,
}

/// Which earlier verification an extractor may reuse.
#[derive(Clone, Copy)]
enum Reuse {
    /// A plain `AccessToken`: the latest verification by the same authority, whatever
    /// audience it checked (a guarded handler's `AccessToken` argument gets the guard's
    /// token, not an outer floor's or middleware's).
    SameAuthority,
    /// A guard: only a verification by the same authority for the same audience check,
    /// and for a guard with `introspect`, only one the introspection endpoint made. With
    /// `dpop` (`dpop = "required"`), a token that came as a bearer token is refused, as
    /// under an authority's `DpopPolicy::Required`, even one an earlier extractor accepted.
    SameAudience { audience: Option<&'static str>, introspect: bool, dpop: bool },
}

impl Verified {
    fn find(&self, authority: &Authority, reuse: Reuse) -> Option<&Outcome> {
        let all = std::iter::once(&self.first).chain(&self.more);
        let mut by_authority = all.filter(|o| std::ptr::eq(o.authority.as_ptr(), Arc::as_ptr(&authority.inner)));
        match reuse {
            Reuse::SameAuthority => by_authority.next_back(),
            Reuse::SameAudience { audience, introspect, .. } => by_authority
                .filter(|o| o.audience == audience)
                .find(|o| !introspect || o.token.verified_by() == crate::Verification::Introspection),
        }
    }
}

/// Verifies the request's token with `authority`, for a guard's audience (a plain
/// `AccessToken`, or a guard without `aud`: the authority's configured audiences),
/// reusing an earlier result only as `reuse` allows. With the token, the scheme it came
/// with.
///
/// DPoP required, by the authority (`DpopPolicy::Required`) or by the guard's handler
/// (`dpop = "required"`): a bearer token is an unsupported scheme (RFC 6750 §3.1), refused
/// as `missing_credentials` by this one check, without reading the header again.
async fn authenticate(
    parts: &mut Parts,
    authority: &Authority,
    reuse: Reuse,
) -> Result<Option<(AccessToken, Scheme)>, Rejection> {
    let (audience, introspect, dpop) = match reuse {
        Reuse::SameAuthority => (None, false, false),
        Reuse::SameAudience { audience, introspect, dpop } => (audience, introspect, dpop),
    };
    let introspector = handler_options(authority, introspect, dpop)?;
    let dpop_required = dpop || authority.dpop_required();
    if let Some(earlier) = parts.extensions.get::<Verified>().and_then(|v| v.find(authority, reuse)) {
        if dpop_required && earlier.scheme == Scheme::Bearer {
            return Err(missing_credentials(authority));
        }
        return Ok(Some((earlier.token.clone(), earlier.scheme)));
    }
    let check = audience.map_or(AudienceCheck::Configured, AudienceCheck::Exact);
    // The common request: a bearer token verified before. A token in the verified-token
    // cache passed every syntax check `credentials::token` makes, so they are not made
    // again (see `credentials::plain_bearer`); anything else takes the full path below.
    // On a miss the verification does not ask the caches again for the same bytes.
    let looked_up =
        (!introspect && !dpop_required).then(|| credentials::plain_bearer(&parts.headers, &parts.uri)).flatten();
    let cached = looked_up.and_then(|token| authority.cached(token, check));
    let looked_up = looked_up.map(Place::of);
    let (token, scheme) = match cached {
        Some((member, result)) => (authority.settle(result, Some(&member.inner.config.issuer))?, Scheme::Bearer),
        // Boxed: the full path's state (its header and signature buffers among it) is
        // about 4.5 KiB, and a future holds the largest state of all its branches. Inline,
        // every request's handler future would carry it, and axum moves that future into
        // its box (a 4.5 KiB copy per request, cache hit or not: BENCHMARKS.md). A miss
        // pays one allocation beside its signature check instead.
        None => {
            match Box::pin(verify_presented(parts, authority, check, introspector, dpop_required, looked_up)).await? {
                Some(verified) => verified,
                None => return Ok(None),
            }
        }
    };
    let outcome = Outcome { authority: Arc::downgrade(&authority.inner), audience, scheme, token: token.clone() };
    match parts.extensions.get_mut::<Verified>() {
        Some(verified) => verified.more.push(outcome),
        None => {
            parts.extensions.insert(Verified { first: outcome, more: Vec::new() });
        }
    }
    Ok(Some((token, scheme)))
}

/// The options of a guard's handler that its authority must serve, checked in one place
/// before the request is read: `introspect` needs the authority's introspection (the
/// endpoint every token of the handler goes to, returned), `dpop = "required"` needs DPoP
/// on. An authority that cannot serve them answers `misconfigured` (500) to every request
/// of the handler, never an accept, and logs what to configure.
fn handler_options(authority: &Authority, introspect: bool, dpop: bool) -> Result<Option<&Introspector>, Rejection> {
    let introspector = authority.inner.introspection.as_ref().filter(|_| introspect);
    if introspect && introspector.is_none() {
        return Err(authority.misconfigured(
            "a handler with `#[requires_scope(…, introspect)]` is served by an Authority without \
             introspection: configure it with .introspection(client_id, client_secret)",
        ));
    }
    if dpop && !authority.dpop_enabled() {
        return Err(authority.misconfigured(
            "a handler with `#[requires_scope(…, dpop = \"required\")]` is served by an Authority without \
             DPoP: configure it with .dpop(DpopPolicy::Allowed) or .dpop(DpopPolicy::Required)",
        ));
    }
    Ok(introspector)
}

/// Where some bytes of the request's headers are (address and length), to tell that a
/// token read later is exactly the bytes read before (not borrowed: the request's parts
/// are lent on mutably).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Place(usize, usize);

impl Place {
    fn of(bytes: &[u8]) -> Self {
        Self(bytes.as_ptr().addr(), bytes.len())
    }
}

/// Reads the request's credentials with every syntax check and verifies them for `check`.
/// `looked_up`: the header bytes the verified-token caches were just asked for, and did
/// not have; a bearer token of exactly those bytes is not looked up again.
async fn verify_presented(
    parts: &mut Parts,
    authority: &Authority,
    check: AudienceCheck<'_>,
    introspect: Option<&Introspector>,
    dpop_required: bool,
    looked_up: Option<Place>,
) -> Result<Option<(AccessToken, Scheme)>, Rejection> {
    let credentials = match credentials::token(&parts.headers, &parts.uri, authority.dpop_enabled()) {
        // DPoP required: a bearer token is an unsupported scheme (RFC 6750 §3.1).
        Ok(Credentials::Bearer(_)) if dpop_required => return Err(missing_credentials(authority)),
        Ok(Credentials::None) => return Ok(None),
        Ok(credentials) => credentials,
        Err(error) => return Err(authority.reject(RejectionKind::InvalidRequest(error))),
    };
    match credentials {
        Credentials::Dpop(token) => {
            // Owned: the proof check records the accepted proof in the request extensions.
            let token = token.to_owned();
            match authority.verify_dpop(parts, &token, check, introspect).await {
                Ok(claims) => Ok(Some((authority.accepted(claims), Scheme::Dpop))),
                Err(rejection) => Err(rejection.under_dpop()),
            }
        }
        Credentials::Bearer(token) => {
            // The same bytes of the same header: the same address and length.
            let cache_missed = looked_up == Some(Place::of(token.as_bytes()));
            authority
                .verify_for(token, check, introspect, cache_missed)
                .await
                .map(|token| Some((token, Scheme::Bearer)))
        }
        Credentials::None => Ok(None),
    }
}

/// The request's token, verified for the authority's configured audiences exactly as by
/// [`AccessToken`] (reusing a verification already made for this request), with the
/// scheme it came with: for the extractors of other modules ([`UserInfo`](crate::UserInfo)).
pub(crate) async fn verified_token(
    parts: &mut Parts,
    authority: &Authority,
) -> Result<(AccessToken, Scheme), Rejection> {
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
    authenticate(parts, authority, Reuse::SameAudience { audience, introspect: false, dpop: false })
        .await?
        .map(|(token, _)| token)
        .ok_or_else(|| missing_credentials(authority))
}

fn missing_credentials(authority: &Authority) -> Rejection {
    authority.reject(RejectionKind::MissingCredentials)
}

impl<S: AuthorityState> FromRequestParts<S> for AccessToken {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        // `authenticate` itself, not through `verified_token`: one future less per request.
        let authority = state.authority();
        match authenticate(parts, &authority, Reuse::SameAuthority).await? {
            Some((token, _)) => Ok(token),
            None => Err(missing_credentials(&authority)),
        }
    }
}

impl<S: AuthorityState> OptionalFromRequestParts<S> for AccessToken {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Rejection> {
        Ok(authenticate(parts, &state.authority(), Reuse::SameAuthority).await?.map(|(token, _)| token))
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
        let reuse = Reuse::SameAudience { audience: R::AUDIENCE, introspect: R::INTROSPECT, dpop: R::DPOP_REQUIRED };
        let (token, came_with) = authenticate(parts, &authority, reuse)
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
            return Err(if came_with == Scheme::Dpop { rejection.under_dpop() } else { rejection });
        }
        Ok(Guard(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler's future holds its extractors' futures and axum moves it once per
    /// request: the cache-hit path must not carry the full verification's state (about
    /// 4.5 KiB, boxed on a miss), or every request copies it.
    #[test]
    fn the_access_token_extractors_future_does_not_carry_the_full_verifications_state() {
        let authority = crate::testing::TestIssuer::new().authority("https://api.example.test");
        let (mut parts, ()) = axum::http::Request::new(()).into_parts();
        let full = verify_presented(&mut parts, &authority, AudienceCheck::Configured, None, false, None);
        let full_size = std::mem::size_of_val(&full);
        drop(full);
        let extractor = authenticate(&mut parts, &authority, Reuse::SameAuthority);
        let size = std::mem::size_of_val(&extractor);
        assert!(full_size > 2048, "the full path's future is {full_size} bytes: this test no longer measures anything");
        assert!(size < 1024, "the extractor's future is {size} bytes (the full path's: {full_size})");
    }
}
