//! The user's profile: the issuer's OpenID Connect `/userinfo` answer for the presented
//! access token ([`UserInfo`]).
//!
//! - **On demand only.** The endpoint is called when a handler takes [`UserInfo`] (or the
//!   application calls [`Authority::userinfo`]), after the token itself was verified,
//!   never for other requests.
//! - **Where.** [`AuthorityBuilder::userinfo_endpoint`](crate::AuthorityBuilder::userinfo_endpoint),
//!   or the `userinfo_endpoint` of the issuer's discovery document; the same URL policy as
//!   key fetches, the same timeouts and body cap ([`max_jwks_size`](crate::AuthorityBuilder::max_jwks_size)).
//! - **Checked.** The answer's `sub` must equal the token's (OpenID Connect Core §5.3.2).
//!   `application/json` is read with the strict JSON reader; `application/jwt` (a signed
//!   answer) must verify with the issuer's keys (the authority's key source and
//!   algorithms), be typed `JWT` or untyped, and its `iss` and `aud`, when present, must
//!   be the issuer and contain the token's `client_id`.
//! - **Cached** per token (the whole token string is the key, in a map with a per-process
//!   random SipHash key) until the token's `exp` or the TTL (default 60 s), whichever comes
//!   first; bounded in entries and bytes; only successful answers are kept.
//! - **Single flight.** Concurrent requests with the same token share one call.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use axum::{extract::FromRequestParts, http::request::Parts};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{
    access_token::AccessToken,
    authority::Authority,
    credentials::{self, Credentials},
    extract::{self, AuthorityState, Scheme},
    jws::Typ,
    rejection::{Rejection, RejectionKind, TokenError},
    source::{DocumentRefused, TypRule},
    userinfo_client::{ACCEPT, Failure, Flight, Profile, lock},
};

/// The issuer's `/userinfo` answer for the request's access token: the user's profile.
///
/// An extractor: it verifies the request's token exactly like [`AccessToken`] (reusing a
/// verification already made for the request), then asks the issuer's `userinfo_endpoint`
/// with that token, on demand only, through a cache. Its `sub` is the token's.
///
/// ```
/// use axum::{Json, Router, routing::get};
/// use scopegate::{Authority, UserInfo};
///
/// async fn profile(user: UserInfo) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "sub": user.subject(), "name": user.name(), "email": user.email() }))
/// }
///
/// fn app(authority: Authority) -> Router {
///     Router::new().route("/profile", get(profile)).with_state(authority)
/// }
/// # let _ = app;
/// ```
///
/// Refusals: those of [`AccessToken`]; 401 `userinfo_refused` when the endpoint answers
/// 401 or 403 (for example, the token's audience does not include it); 401
/// `userinfo_subject_mismatch` when the answer is about another subject; 502
/// `userinfo_invalid` when a signed answer does not verify; 503 `userinfo_unavailable`
/// (with `Retry-After`) when the issuer is down, slow, or answers anything else; 500
/// `misconfigured` when no endpoint is configured or discovered.
///
/// A DPoP-bound token (RFC 9449) is refused with 401 `invalid_token`, reason
/// `userinfo_dpop_bound`, without calling the issuer, even with its valid proof: the
/// issuer's `/userinfo` is a protected resource that must refuse a bound token presented
/// as `Bearer` (RFC 9449 §7.2), and presenting it with the `DPoP` scheme needs a fresh
/// proof for that URL signed with the client's private key, which the API never holds
/// (the client's proof names the API's URL, and is single-use). A route that must serve
/// DPoP clients reads the profile from the token's own claims
/// ([`AccessToken::claims`]) instead. Bearer tokens are unaffected.
#[derive(Clone)]
pub struct UserInfo {
    profile: Arc<Profile>,
}

impl fmt::Debug for UserInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserInfo").field("subject", &self.subject()).finish_non_exhaustive()
    }
}

impl UserInfo {
    fn string(&self, name: &str) -> Option<&str> {
        self.profile.claims.get(name).and_then(Value::as_str)
    }

    /// `sub`: equal to the access token's subject (checked).
    #[must_use]
    pub fn subject(&self) -> &str {
        self.string("sub").unwrap_or_default()
    }

    /// `name`: the full name.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.string("name")
    }

    /// `given_name`.
    #[must_use]
    pub fn given_name(&self) -> Option<&str> {
        self.string("given_name")
    }

    /// `family_name`.
    #[must_use]
    pub fn family_name(&self) -> Option<&str> {
        self.string("family_name")
    }

    /// `nickname`.
    #[must_use]
    pub fn nickname(&self) -> Option<&str> {
        self.string("nickname")
    }

    /// `preferred_username`.
    #[must_use]
    pub fn preferred_username(&self) -> Option<&str> {
        self.string("preferred_username")
    }

    /// `email`.
    #[must_use]
    pub fn email(&self) -> Option<&str> {
        self.string("email")
    }

    /// `email_verified`, when it is a boolean.
    #[must_use]
    pub fn email_verified(&self) -> Option<bool> {
        self.profile.claims.get("email_verified").and_then(Value::as_bool)
    }

    /// `phone_number`.
    #[must_use]
    pub fn phone_number(&self) -> Option<&str> {
        self.string("phone_number")
    }

    /// `picture`: a URL of the user's picture (not fetched, not checked).
    #[must_use]
    pub fn picture(&self) -> Option<&str> {
        self.string("picture")
    }

    /// `locale`.
    #[must_use]
    pub fn locale(&self) -> Option<&str> {
        self.string("locale")
    }

    /// `zoneinfo`.
    #[must_use]
    pub fn zoneinfo(&self) -> Option<&str> {
        self.string("zoneinfo")
    }

    /// `updated_at`, seconds since the epoch, when it is a non-negative number.
    #[must_use]
    pub fn updated_at(&self) -> Option<SystemTime> {
        let secs =
            self.profile.claims.get("updated_at").and_then(Value::as_f64).filter(|s| s.is_finite() && *s >= 0.0)?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(secs).ok()?)
    }

    /// Whether the issuer answered with a signed JWT (`application/jwt`) rather than JSON.
    #[must_use]
    pub fn is_signed(&self) -> bool {
        self.profile.signed
    }

    /// Every claim of the answer, as parsed (duplicate-free).
    #[must_use]
    pub fn raw_claims(&self) -> &Map<String, Value> {
        &self.profile.claims
    }

    /// The answer's JSON text (for a signed answer, its verified payload).
    #[must_use]
    pub fn json(&self) -> &str {
        &self.profile.json
    }

    /// Deserializes the answer into the application's own type.
    ///
    /// # Errors
    /// When the claims do not fit `T`.
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        // The text passed the strict reader (no duplicate members at any depth).
        serde_json::from_str(&self.profile.json)
    }
}

impl Authority {
    /// The issuer's `/userinfo` answer for a bearer token (the credential after
    /// `Bearer `), outside of an HTTP request. The token is verified first, as by
    /// [`Authority::verify`].
    ///
    /// # Errors
    /// A [`Rejection`]: the token's, or why the answer was refused (see [`UserInfo`]).
    pub async fn userinfo(&self, token: &str) -> Result<UserInfo, Rejection> {
        let verified = self.verify(token).await?;
        self.userinfo_for(token, &verified).await
    }

    /// The `/userinfo` answer for `token`, already verified as `verified`.
    async fn userinfo_for(&self, token: &str, verified: &AccessToken) -> Result<UserInfo, Rejection> {
        // The token goes to its own issuer's endpoint, never to another trusted issuer's.
        let issuer = self.member_for(verified.issuer()).unwrap_or(self);
        let userinfo = &issuer.inner.userinfo;
        let now = issuer.inner.config.clock.now();
        if let Some(profile) = userinfo.cached(token, now) {
            return Ok(UserInfo { profile });
        }
        let flight: Flight = Arc::clone(lock(&userinfo.in_flight).entry(token.into()).or_default());
        let result = flight
            .get_or_init(|| async {
                let result = issuer.fetch_userinfo(token, verified).await;
                if let Ok(profile) = &result {
                    let exp =
                        verified.expires_at().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
                    userinfo.remember(token, profile, exp);
                }
                result
            })
            .await
            .clone();
        {
            let mut in_flight = lock(&userinfo.in_flight);
            if in_flight.get(token).is_some_and(|current| Arc::ptr_eq(current, &flight)) {
                in_flight.remove(token);
            }
        }
        result
            .map(|profile| UserInfo { profile })
            .map_err(|failure| self.refuse(failure.into(), Some(&issuer.inner.config.issuer)))
    }

    /// One call to the endpoint, and the checks of its answer.
    async fn fetch_userinfo(&self, token: &str, verified: &AccessToken) -> Result<Arc<Profile>, Failure> {
        let userinfo = &self.inner.userinfo;
        let url = userinfo.endpoint(&self.inner.keys).await?;
        let client = userinfo.client()?;
        crate::metrics::userinfo_request();
        let answer = client.get_authorized(&url, token, ACCEPT).await.map_err(|error| {
            tracing::warn!(target: "scopegate", error = error.code(), "the userinfo endpoint could not be reached");
            Failure::Unavailable
        })?;
        match answer.status {
            200 => {}
            // Logged once, by the refusal of each request (`userinfo_refused`).
            401 | 403 => return Err(Failure::Refused),
            status => {
                tracing::warn!(target: "scopegate", status, "the userinfo endpoint answered an unexpected status");
                return Err(Failure::Unavailable);
            }
        }
        let (claims, json, signed) = match answer.media_type.as_deref() {
            Some("application/json") => {
                let claims = crate::json::parse_object(&answer.body).map_err(|_| garbage("not a JSON object"))?;
                let json = String::from_utf8(answer.body).map_err(|_| garbage("not UTF-8"))?;
                (claims, json, false)
            }
            Some("application/jwt") => {
                let (claims, json) = self.verify_signed_userinfo(&answer.body, verified).await?;
                (claims, json, true)
            }
            _ => return Err(garbage("neither application/json nor application/jwt")),
        };
        match claims.get("sub") {
            Some(Value::String(sub)) if sub == verified.subject() => {}
            _ => {
                tracing::warn!(target: "scopegate", "the userinfo answer's sub is not the token's");
                return Err(Failure::SubjectMismatch);
            }
        }
        Ok(Arc::new(Profile { claims, json, signed }))
    }

    /// Verifies a signed userinfo answer (OIDC Core §5.3.2) with the authority's keys.
    async fn verify_signed_userinfo(
        &self,
        body: &[u8],
        verified: &AccessToken,
    ) -> Result<(Map<String, Value>, String), Failure> {
        let config = &self.inner.config;
        let invalid = |why: &'static str| {
            tracing::warn!(target: "scopegate", why, "signed userinfo answer refused");
            Failure::Invalid
        };
        let typ = TypRule {
            accepts: &|typ, _| matches!(typ, Typ::Jwt | Typ::Absent),
            refusal: "typ is neither JWT nor absent",
        };
        let (claims, json) = match self.inner.keys.verify_document(body, &config.algorithms, &typ).await {
            Ok(document) => document,
            Err(DocumentRefused::Unavailable) => return Err(Failure::Unavailable),
            Err(DocumentRefused::Invalid(why)) => return Err(invalid(why)),
        };
        match claims.get("iss") {
            None => {}
            Some(Value::String(iss)) if **iss == *config.issuer => {}
            Some(_) => return Err(invalid("iss is not the issuer")),
        }
        let client_id = verified.client_id();
        let names_client = |value: &Value| value.as_str().is_some_and(|aud| Some(aud) == client_id);
        match claims.get("aud") {
            None => {}
            Some(Value::Array(audiences)) if audiences.iter().any(names_client) => {}
            Some(aud) if names_client(aud) => {}
            Some(_) => return Err(invalid("aud does not contain the token's client_id")),
        }
        Ok((claims, json))
    }
}

fn garbage(why: &'static str) -> Failure {
    tracing::warn!(target: "scopegate", why, "the userinfo answer is unusable");
    Failure::Unavailable
}

impl<S: AuthorityState> FromRequestParts<S> for UserInfo {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let authority = state.authority();
        let (verified, scheme) = extract::verified_token(parts, &authority).await?;
        // Verified with its proof, but `/userinfo` would need a proof of the client's key
        // too: as `Bearer` the issuer must refuse it (RFC 9449 §7.2).
        if scheme == Scheme::Dpop {
            let issuer = authority.metrics_issuer(verified.issuer());
            return Err(authority.reject_from(TokenError::UserinfoDpopBound.into(), issuer).under_dpop());
        }
        // The token was just read from this header as a bearer token, so it is there: read
        // again for the string `/userinfo` is sent (an `AccessToken` keeps its claims only).
        let Ok(Credentials::Bearer(token)) = credentials::bearer_token(&parts.headers, &parts.uri) else {
            return Err(authority.reject(RejectionKind::MissingCredentials));
        };
        authority.userinfo_for(token, &verified).await
    }
}
