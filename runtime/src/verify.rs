//! The verifier: its entry points ([`Authority::verify`], and for the extractors
//! `verify_for`: a token in, an [`AccessToken`] or a [`Rejection`] out, each outcome
//! counted once), and the pipeline from a bearer token string to verified claims.
//!
//! The order is fixed and cheap checks come first: size cap, compact form, header
//! (algorithm allowlist, refused parameters, `typ`), key selection, the signature, and
//! only then the claim set. Nothing read before the signature check can widen acceptance
//! (security spec G3). The header is decoded into a stack buffer and read without a map,
//! or recalled when the last verified token had the same header segment
//! ([`jws::HeaderMemo`]); the claim set is read once into borrowed values (see
//! [`claims`]).

use std::sync::{Arc, atomic::Ordering};

use crate::{
    access_token::AccessToken,
    authority::Authority,
    b64::b64url_decode,
    claims::{self, AudienceCheck, RawClaims, VerifiedClaims},
    dpop,
    introspection::{Introspector, is_compact_jws},
    json::{self, Member, Sink},
    jws::{self, MAX_HEADER_BYTES, MAX_SIGNATURE_BYTES, Typ},
    keys::Unavailable,
    rejection::{DpopError, LogDetail, Rejection, RejectionKind, TokenError, TokenIds},
    source::SignatureRefused,
    userinfo_client::Failure,
};

/// The entry points: a token in, an [`AccessToken`] or a [`Rejection`] out, each outcome
/// counted once. The extractors (`extract.rs`) call these; they only read the request.
impl Authority {
    /// Verifies a bearer token (the credential after `Bearer `) for the default
    /// audiences, outside of an HTTP request: for WebSocket handshakes, message queues or
    /// tests. Scope requirements are the caller's to check ([`AccessToken::has_scope`],
    /// [`ScopeExpr::is_satisfied_by`](crate::ScopeExpr::is_satisfied_by)).
    ///
    /// # Errors
    /// A [`Rejection`] saying why the token was refused.
    pub async fn verify(&self, token: &str) -> Result<AccessToken, Rejection> {
        self.verify_for(token, AudienceCheck::Configured, None, false).await
    }

    /// Verifies a bearer token for `audience` (`introspect`: this authority's introspection,
    /// where a handler with `introspect` sends every token, even a JWT), counting the
    /// outcome. `cache_missed`: the verified-token caches were just asked for exactly
    /// this token ([`cached`](Self::cached)) and had no answer, so they are not asked again.
    pub(crate) async fn verify_for(
        &self,
        token: &str,
        audience: AudienceCheck<'_>,
        introspect: Option<&Introspector>,
        cache_missed: bool,
    ) -> Result<AccessToken, Rejection> {
        let (member, verified) = self.verify_routed(token, audience, introspect, cache_missed).await;
        self.settle(verified, member.map(|member| &*member.inner.config.issuer))
    }

    /// The response to a bearer token's verification: the token, counted as accepted, or
    /// the counted rejection (`issuer`: the trusted issuer whose checks it went through,
    /// for the metrics). A sender-constrained token (`cnf`) is refused: it needs its
    /// proof (RFC 9449 §7.2).
    pub(crate) fn settle(
        &self,
        verified: Result<Arc<VerifiedClaims>, Refusal>,
        issuer: Option<&str>,
    ) -> Result<AccessToken, Rejection> {
        match verified {
            Ok(claims) if claims.bound => Err(self.reject_from(TokenError::SenderConstrained.into(), issuer)),
            Ok(claims) => Ok(self.accepted(claims)),
            Err(refusal) => Err(self.refuse(refusal, issuer)),
        }
    }

    /// Counts an accepted token.
    pub(crate) fn accepted(&self, claims: Arc<VerifiedClaims>) -> AccessToken {
        self.inner.stats.accepted.fetch_add(1, Ordering::Relaxed);
        crate::metrics::token_accepted(self.metrics_issuer(claims.issuer()));
        AccessToken::new(claims)
    }

    /// Counts a rejection and builds its response (a 401 with the current DPoP nonce
    /// when the authority hands out nonces).
    pub(crate) fn reject(&self, kind: RejectionKind) -> Rejection {
        self.reject_from(kind, None)
    }

    /// [`reject`](Self::reject) for a token that went through the checks of the trusted
    /// issuer `issuer` (its configured identifier: the metrics' `issuer` label).
    pub(crate) fn reject_from(&self, kind: RejectionKind, issuer: Option<&str>) -> Rejection {
        self.refuse(kind.into(), issuer)
    }

    /// `misconfigured` (500): this authority cannot serve the request, `why` saying what to
    /// configure (the refusal's one log event, at ERROR).
    pub(crate) fn misconfigured(&self, why: &'static str) -> Rejection {
        self.refuse(Refusal { kind: RejectionKind::Misconfigured, detail: LogDetail::Why(why.into()) }, None)
    }

    /// [`reject_from`](Self::reject_from) for a refusal of the verifier, whose log event
    /// says what it carries (the token's `kid`, `iss`, `jti`).
    pub(crate) fn refuse(&self, refusal: Refusal, issuer: Option<&str>) -> Rejection {
        let Refusal { kind, detail } = refusal;
        self.inner.stats.count_rejection(kind.code());
        crate::metrics::token_rejected(kind.code(), issuer);
        let unauthorized = kind.status() == axum::http::StatusCode::UNAUTHORIZED;
        let rejection = Rejection::new(kind, self.inner.config.challenge.clone(), &detail);
        match self.dpop_nonce().filter(|_| unauthorized) {
            Some(nonce) => rejection.with_dpop_nonce(nonce),
            None => rejection,
        }
    }

    /// The configured identifier of the trusted issuer of a verified token's `iss`, for
    /// the metrics' `issuer` label; not looked up without the `metrics` feature.
    pub(crate) fn metrics_issuer(&self, iss: &str) -> Option<&str> {
        if !crate::metrics::ENABLED {
            return None;
        }
        self.member_for(iss).map(|member| &*member.inner.config.issuer)
    }
}

impl Authority {
    /// Verifies a bearer token for the given audience, with the one trusted issuer its
    /// `iss` names (see [`AuthorityBuilder::also_trust`](crate::AuthorityBuilder::also_trust)).
    ///
    /// With one issuer nothing is read here: its claim checks refuse another `iss` once
    /// the signature has verified, as they always did. With several, the payload's `iss`
    /// is read before any key work: it only chooses which issuer's keys and policy are
    /// tried (a wrong choice fails their signature check, and the claim checks compare
    /// `iss` again), and an `iss` no issuer trusts is refused at once, without a key
    /// lookup or a fetch. An opaque token names no issuer: it goes to this authority's own
    /// introspection, and so does every token of a handler with `introspect`
    /// (`#[requires_scope(…, introspect)]`: even a JWT; the guard passes this authority's
    /// introspection, and answers `misconfigured` before any verification without one).
    ///
    /// With the result, the trusted issuer whose checks the token went through (`None`:
    /// refused before it reached one, by the size cap or, with several issuers, for an
    /// `iss` that could not be read or is not trusted), for the `issuer` label of the
    /// metrics.
    pub(crate) async fn verify_routed(
        &self,
        token: &str,
        audience: AudienceCheck<'_>,
        introspect: Option<&Introspector>,
        cache_missed: bool,
    ) -> (Option<&Authority>, Result<Arc<VerifiedClaims>, Refusal>) {
        if token.len() > self.inner.config.max_token_size {
            return (None, Err(TokenError::TooLarge.into()));
        }
        if self.inner.also.is_empty() || introspect.is_some() {
            return (Some(self), self.verify_own(token, audience, introspect, None, cache_missed).await);
        }
        if !is_compact_jws(token) {
            return (Some(self), self.verify_own(token, audience, None, None, cache_missed).await);
        }
        if !cache_missed && let Some((member, hit)) = self.cached(token.as_bytes(), audience) {
            return (Some(member), hit);
        }
        let (member, payload) = match self.route(token) {
            Ok(routed) => routed,
            Err(kind) => return (None, Err(kind)),
        };
        (Some(member), member.verify_own(token, audience, None, Some(payload), true).await)
    }

    /// The trusted issuer the unverified `iss` of a compact JWS names, with the payload
    /// decoded to read it (the issuer's checks read the claims from it once the signature
    /// has verified, without decoding the token again).
    fn route(&self, token: &str) -> Result<(&Authority, DecodedPayload), Refusal> {
        let compact = jws::split(token).map_err(|e| refused(e, None, None))?;
        let payload =
            b64url_decode(compact.payload.as_bytes()).ok_or_else(|| refused(TokenError::Malformed, None, None))?;
        let mut iss = Issuer(None);
        json::read_object(&payload, &mut iss).map_err(|_| refused(TokenError::Malformed, None, None))?;
        let member = iss.0.as_ref().and_then(Member::as_str).and_then(|iss| self.member_for(iss));
        let member = member.ok_or_else(|| refused(TokenError::InvalidIssuer, None, None))?;
        Ok((member, DecodedPayload(payload)))
    }

    /// Verifies a bearer token with this issuer's own keys and policy, through its
    /// verified-token cache (or its introspection, see above); `payload`: the token's
    /// payload segment, already decoded by the routing. `cache_missed`: the cache was
    /// just asked for this token and did not have it (one lookup per verification).
    async fn verify_own(
        &self,
        token: &str,
        audience: AudienceCheck<'_>,
        introspect: Option<&Introspector>,
        payload: Option<DecodedPayload>,
        cache_missed: bool,
    ) -> Result<Arc<VerifiedClaims>, Refusal> {
        let config = &self.inner.config;
        if token.len() > config.max_token_size {
            return Err(TokenError::TooLarge.into());
        }
        // A compact JWS is verified locally unless the handler (`introspect`) or the API
        // asked to introspect JWTs too; any other token goes to the introspection endpoint
        // when there is one, and is refused `malformed_token` below when there is not.
        let introspector = introspect
            .or_else(|| self.inner.introspection.as_ref().filter(|i| i.introspect_jwts || !is_compact_jws(token)));
        if let Some(introspector) = introspector {
            return introspector.verify(config, token, audience).await.map_err(|kind| match kind {
                RejectionKind::InvalidToken(_) => Refusal { kind, detail: LogDetail::Introspected },
                kind => kind.into(),
            });
        }
        let Some(cache) = &self.inner.token_cache else {
            return self.verify_uncached(token, audience, payload).await.map(Arc::new);
        };
        if !cache_missed && let Some(hit) = self.cache_hit(token.as_bytes(), audience) {
            return hit;
        }
        let generation = self.inner.keys.generation();
        let claims = Arc::new(self.verify_uncached(token, audience, payload).await?);
        cache.insert(token, &claims, generation);
        Ok(claims)
    }

    /// The answer [`verify_routed`](Self::verify_routed) gives a JWT that one of the trusted
    /// issuers' verified-token caches holds, without reading the token (`None`: verify it),
    /// with the issuer whose cache held it. A token seen before is in its issuer's cache: no need to read its `iss` again. Not
    /// for a handler with `introspect`, nor for JWTs that go to introspection.
    pub(crate) fn cached(
        &self,
        token: &[u8],
        audience: AudienceCheck<'_>,
    ) -> Option<(&Authority, Result<Arc<VerifiedClaims>, Refusal>)> {
        if token.len() > self.inner.config.max_token_size {
            return None;
        }
        std::iter::once(self)
            .chain(&self.inner.also)
            .filter(|member| !member.inner.introspection.as_ref().is_some_and(|i| i.introspect_jwts))
            .find_map(|member| member.cache_hit(token, audience).map(|hit| (member, hit)))
    }

    /// The verified-token cache's answer for `token`, if it has one: `None` on a miss (or
    /// without a cache).
    fn cache_hit(&self, token: &[u8], audience: AudienceCheck<'_>) -> Option<Result<Arc<VerifiedClaims>, Refusal>> {
        let config = &self.inner.config;
        let cache = self.inner.token_cache.as_ref()?;
        // Each clock is read once: the wall clock (`exp`, `max_token_age`) and the
        // monotonic one (the entry's age, the key set's staleness).
        let now = config.clock.now();
        let at = std::time::Instant::now();
        let claims =
            cache.get_at(token, self.inner.keys.generation(), now, at).filter(|c| c.within_max_age(config, now))?;
        // A hit needs no key, but keys must still be usable (a stale set past its limit
        // refuses everything). A miss learns this from the key snapshot.
        if let Err(unavailable) = self.inner.keys.check_usable(at) {
            return Some(Err(unavailable.into()));
        }
        if !claims::audience_matches(claims.audiences(), config, audience) {
            return Some(Err(TokenError::InvalidAudience.into()));
        }
        self.inner.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
        crate::metrics::token_cache_hit(&config.issuer);
        Some(Ok(claims))
    }

    /// The full verification, without the cache. A refusal carries what may be said of the
    /// token to the refusal's one log event ([`TokenIds`]): its `kid` and, once the
    /// signature has verified, its `iss` and `jti`. Never the token itself; nothing is
    /// copied unless the event is enabled. `payload`: the payload segment, when the
    /// routing decoded it already.
    async fn verify_uncached(
        &self,
        token: &str,
        audience: AudienceCheck<'_>,
        payload: Option<DecodedPayload>,
    ) -> Result<VerifiedClaims, Refusal> {
        let config = &self.inner.config;
        let compact = jws::split(token).map_err(|e| refused(e, None, None))?;
        let memo = self.inner.headers.load();
        let recalled = memo.as_ref().and_then(|m| m.header(compact.header));
        let read_now = recalled.is_none();
        let mut header_buffer = [0u8; MAX_HEADER_BYTES];
        let header = match recalled {
            Some(header) => header,
            None => jws::decode_header(compact.header, &mut header_buffer)
                .and_then(|json| jws::parse_header(json, &config.algorithms))
                .map_err(|e| refused(e, None, None))?,
        };
        let kid = header.kid.as_deref();
        let refuse = |error: TokenError| refused(error, kid, None);

        // A token typed as anything but an access token or a plain JWT (`logout+jwt`,
        // `dpop+jwt`, `at+jwt;v=1`, …) is refused before any key work. Tokens typed `JWT`
        // or untyped go on to the signature check even in the strict profile, where
        // `claims::validate` refuses them: only their claims tell an ID token (named as
        // such) from another JWT, and claims are read only once the signature has verified
        // (security spec case 78).
        if header.typ == Typ::Other {
            return Err(refuse(TokenError::NotAnAccessToken));
        }

        let mut signature_buffer = [0u8; MAX_SIGNATURE_BYTES];
        let signature = jws::decode_signature(compact.signature, &mut signature_buffer)
            .ok_or_else(|| refuse(TokenError::Malformed))?;
        let message = compact.signing_input.as_bytes();
        let checked = self.inner.keys.verify_signature(kid, header.alg, message, signature).await;
        if matches!(checked, Ok(()) | Err(SignatureRefused::Invalid)) {
            self.inner.stats.signatures_checked.fetch_add(1, Ordering::Relaxed);
            crate::metrics::signature_checked(&config.issuer);
        }
        match checked {
            Ok(()) if read_now => self.inner.headers.remember(compact.header, &header),
            Ok(()) => {}
            Err(SignatureRefused::Unavailable(unavailable)) => return Err(unavailable.into()),
            Err(SignatureRefused::UnknownKey) => return Err(refuse(TokenError::UnknownKey)),
            Err(SignatureRefused::Invalid) => return Err(refuse(TokenError::InvalidSignature)),
        }

        let mut payload_buffer = [0u8; jws::PAYLOAD_BUFFER_BYTES];
        let payload = match payload {
            // Decoded by the routing already (several issuers).
            Some(DecodedPayload(bytes)) => {
                std::borrow::Cow::Owned(String::from_utf8(bytes).map_err(|_| refuse(TokenError::Malformed))?)
            }
            None => jws::decode_payload(compact.payload, &mut payload_buffer)
                .ok_or_else(|| refuse(TokenError::Malformed))?,
        };
        let raw = RawClaims::read(&payload).map_err(refuse)?;
        claims::validate(&payload, &raw, header.typ, config, audience, config.clock.now())
            .map_err(|e| refused(e, kid, Some((raw.iss(), raw.jti()))))
    }
}

/// The payload segment of a compact JWS, decoded from base64url by the routing (to read
/// its `iss`) and handed to the chosen issuer, which reads the claims from it only once
/// the signature has verified.
struct DecodedPayload(Vec<u8>);

/// Reads only `iss` from an unverified claim set, to route the token to its issuer.
struct Issuer<'p>(Option<Member<'p>>);

impl<'p> Sink<'p> for Issuer<'p> {
    fn wants(&self, name: &str) -> bool {
        name == "iss"
    }

    fn member(&mut self, name: &str, value: Option<Member<'p>>) {
        if name == "iss" {
            self.0 = value;
        }
    }
}

/// A refused token, with what its log event may say of it (`claims`: its `iss` and `jti`,
/// once the signature has verified).
fn refused(error: TokenError, kid: Option<&str>, claims: Option<(Option<&str>, Option<&str>)>) -> Refusal {
    let (iss, jti) = claims.unwrap_or_default();
    Refusal { kind: RejectionKind::InvalidToken(error), detail: TokenIds::capture(kid, iss, jti) }
}

/// A refusal on its way to its [`Rejection`]: the reason, and what the refusal's one log
/// event says besides it.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) kind: RejectionKind,
    detail: LogDetail,
}

impl From<RejectionKind> for Refusal {
    fn from(kind: RejectionKind) -> Self {
        Self { kind, detail: LogDetail::Nothing }
    }
}

impl From<TokenError> for Refusal {
    fn from(error: TokenError) -> Self {
        RejectionKind::InvalidToken(error).into()
    }
}

impl From<DpopError> for Refusal {
    fn from(error: DpopError) -> Self {
        RejectionKind::InvalidDpopProof(error).into()
    }
}

impl From<Unavailable> for Refusal {
    fn from(unavailable: Unavailable) -> Self {
        RejectionKind::from(unavailable).into()
    }
}

impl From<Failure> for Refusal {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::NotConfigured(why) => {
                Self { kind: RejectionKind::Misconfigured, detail: LogDetail::Why(String::from(why).into()) }
            }
            failure => RejectionKind::from(failure).into(),
        }
    }
}

impl From<Unavailable> for RejectionKind {
    fn from(unavailable: Unavailable) -> Self {
        Self::KeysUnavailable { retry_after_secs: unavailable.retry_after_secs }
    }
}

impl From<TokenError> for RejectionKind {
    fn from(error: TokenError) -> Self {
        Self::InvalidToken(error)
    }
}

/// DPoP (RFC 9449): the token through the usual verification, then its proof ([`dpop`]).
impl Authority {
    /// Whether this authority refuses bearer tokens (`DpopPolicy::Required`).
    pub(crate) fn dpop_required(&self) -> bool {
        self.inner.dpop.as_ref().is_some_and(|d| d.policy == dpop::DpopPolicy::Required)
    }

    /// Whether this authority reads the `DPoP` scheme.
    pub(crate) fn dpop_enabled(&self) -> bool {
        self.inner.dpop.is_some()
    }

    /// The DPoP nonce to hand out now, when nonces are on ([`dpop::DpopNonce`]).
    pub(crate) fn dpop_nonce(&self) -> Option<String> {
        let nonces = self.inner.dpop.as_ref()?.nonces.as_ref()?;
        Some(nonces.current(self.inner.config.clock.now()))
    }

    /// Verifies a token sent with the `DPoP` scheme and the request's proof
    /// (`introspect`: the token at this introspection endpoint even if it is a JWT),
    /// counting a refusal: once the token reached a trusted issuer, under that issuer's
    /// `issuer` label, as a bearer token's (the proof checks come after the token's).
    pub(crate) async fn verify_dpop(
        &self,
        parts: &mut axum::http::request::Parts,
        token: &str,
        audience: AudienceCheck<'_>,
        introspect: Option<&Introspector>,
    ) -> Result<Arc<VerifiedClaims>, Rejection> {
        let Some(dpop) = &self.inner.dpop else {
            return Err(self.reject(RejectionKind::MissingCredentials));
        };
        let proof = dpop::proof_header(&parts.headers).map_err(|error| self.reject(error.into()))?;
        let (member, verified) = self.verify_routed(token, audience, introspect, false).await;
        let issuer = member.map(|member| &*member.inner.config.issuer);
        let checked = match verified {
            Ok(claims) => {
                let request = (&parts.method, &parts.uri, &mut parts.extensions);
                self.check_proof(request, dpop, proof, token, &claims).await.map(|()| claims)
            }
            Err(refusal) => Err(refusal),
        };
        checked.map_err(|refusal| self.refuse(refusal, issuer))
    }

    /// The checks of a verified token's DPoP proof: the token is bound to a key, the proof
    /// is signed by it for this request (its method, URI and extensions, where accepted
    /// proofs are recorded), and it was not seen before.
    async fn check_proof(
        &self,
        (method, uri, extensions): (&axum::http::Method, &axum::http::Uri, &mut axum::http::Extensions),
        dpop: &dpop::Dpop,
        proof: &str,
        token: &str,
        claims: &VerifiedClaims,
    ) -> Result<(), Refusal> {
        let Some(jkt) = claims.jkt() else {
            return Err(TokenError::NotDpopBound.into());
        };
        let uri: &axum::http::Uri = extensions.get::<axum::extract::OriginalUri>().map_or(uri, |original| &original.0);
        let now = self.inner.config.clock.now();
        let checked =
            dpop.check(proof, token, method, uri.path(), jkt, now).map_err(RejectionKind::InvalidDpopProof)?;
        // A second extractor of the same request (a middleware's, then a guard's with its
        // own `aud`, or another authority's) checks the same proof: not a replay.
        if extensions.get::<dpop::AcceptedProofs>().is_some_and(|accepted| accepted.0.contains(&checked.replay_key)) {
            return Ok(());
        }
        match dpop.store.check_and_insert(&checked.replay_key, checked.ttl).await {
            Ok(dpop::Freshness::Fresh) => {
                match extensions.get_mut::<dpop::AcceptedProofs>() {
                    Some(accepted) => accepted.0.push(checked.replay_key),
                    None => {
                        extensions.insert(dpop::AcceptedProofs(vec![checked.replay_key]));
                    }
                }
                Ok(())
            }
            Ok(dpop::Freshness::Replayed) => Err(DpopError::Replayed.into()),
            Err(error) => {
                let kind = RejectionKind::ReplayStoreUnavailable { retry_after_secs: 1 };
                Err(Refusal { kind, detail: LogDetail::Cause(error.to_string().into()) })
            }
        }
    }
}
