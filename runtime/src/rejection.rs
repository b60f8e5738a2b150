//! Why a request was refused, and the RFC 6750 response that says so.
//!
//! Every refusal is a [`Rejection`]: a [`RejectionKind`] plus the realm and the
//! description policy of the [`Authority`](crate::Authority) that produced it. The
//! `WWW-Authenticate` header and the JSON body are built in one place,
//! [`Rejection::into_response`](axum::response::IntoResponse::into_response), from fixed
//! strings: nothing from the token or the request is ever echoed.

use std::{fmt, sync::Arc};

use axum::{
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::scope::ScopeExpr;

/// A malformed request: the credentials could not even be read (HTTP 400,
/// `error="invalid_request"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestError {
    /// `Bearer` with no token after it.
    EmptyToken,
    /// The token contains a character outside RFC 6750's `b64token`, or the separator after
    /// `Bearer` is not a space.
    MalformedCredentials,
    /// The `Authorization` value is not visible ASCII (obs-text or non-UTF-8 bytes).
    NonAsciiHeader,
    /// More than one `Authorization` header line.
    MultipleAuthorizationHeaders,
    /// A bearer token in the header and an `access_token` query parameter as well.
    MultipleMethods,
}

impl RequestError {
    /// The stable, machine-readable reason code.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::EmptyToken => "empty_token",
            Self::MalformedCredentials => "malformed_credentials",
            Self::NonAsciiHeader => "non_ascii_header",
            Self::MultipleAuthorizationHeaders => "multiple_authorization_headers",
            Self::MultipleMethods => "multiple_methods",
        }
    }

    /// The fixed human-readable description.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::EmptyToken => "The Authorization header names the Bearer scheme but carries no token",
            Self::MalformedCredentials => "The Authorization header is not of the form: Bearer <token>",
            Self::NonAsciiHeader => "The Authorization header contains bytes that are not visible ASCII",
            Self::MultipleAuthorizationHeaders => "The request carries more than one Authorization header",
            Self::MultipleMethods => "The request carries an access token in more than one place",
        }
    }
}

/// A token that failed verification (HTTP 401, `error="invalid_token"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than the configured maximum token size.
    TooLarge,
    /// Not a compact JWS: wrong segment count, bad base64url, bad UTF-8 or JSON, a
    /// duplicate member, too deep, or not a JSON object.
    Malformed,
    /// `alg` missing, unknown, or not in the allowlist.
    AlgorithmNotAllowed,
    /// `typ` is not `at+jwt` (and the token does not look like an ID token).
    NotAnAccessToken,
    /// An OpenID Connect ID token was presented where an access token is required.
    IdToken,
    /// A header parameter the verifier refuses: `crit`, `b64`, `cty`, `zip`, `enc`,
    /// `jwk`, `jku` or `x5u`.
    UnsupportedHeader,
    /// No admitted key matches the token's `kid` and `alg`.
    UnknownKey,
    /// The signature does not verify with the selected key.
    InvalidSignature,
    /// `iss` is missing, not a string, or not exactly the configured issuer (with several
    /// issuers, none of them; with a tenant template, not an allowed tenant's, or not the
    /// tenant of `tid`).
    InvalidIssuer,
    /// `aud` is missing, malformed, or does not contain this API's audience.
    InvalidAudience,
    /// `exp` has passed.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iat` is in the future.
    IssuedInFuture,
    /// `exp` lies further in the future than the maximum token lifetime allows, or the
    /// token is older than the maximum token age.
    LifetimeExceeded,
    /// A required claim (`exp`, `iat`, `sub`, `client_id`, `jti`, …) is missing or has the
    /// wrong type.
    InvalidClaim,
    /// The scope claim is not a space-delimited string (or, for `scp`/`permissions`, a
    /// list of strings).
    InvalidScopeClaim,
    /// The calling client is not in the configured allowlist.
    ClientNotAllowed,
    /// A valid token of a trusted issuer, but the handler requires another issuer
    /// (`#[requires_scope(…, iss = "…")]`).
    IssuerNotAllowedHere,
    /// A sender-constrained token (`cnf` claim: DPoP or mTLS) presented as a bearer token.
    SenderConstrained,
    /// `sub`, `client_id` or `jti` (in the compatible profile also `azp` or `cid`) is
    /// present but an empty string: it identifies no one.
    EmptyClaim,
    /// The issuer's userinfo endpoint answered 401 or 403 for the token (for example, the
    /// token's audience does not include it). Only when the handler asks for
    /// [`UserInfo`](crate::UserInfo).
    UserinfoRefused,
    /// The issuer's userinfo answer names another `sub` than the token (OpenID Connect
    /// Core §5.3.2: the answer must not be used).
    UserinfoSubjectMismatch,
    /// The issuer's introspection endpoint answered that the token is not active
    /// (`active` is not the boolean `true`: revoked, expired, or unknown to the issuer).
    Inactive,
    /// The issuer's introspection endpoint describes the token as a refresh token
    /// (`token_type` is `refresh_token`).
    RefreshToken,
    /// A token presented with the `DPoP` scheme that is not bound to a DPoP key (no
    /// `cnf.jkt`): a bearer token cannot be upgraded by adding a proof (RFC 9449 §7.1).
    NotDpopBound,
    /// A DPoP-bound token (with its valid proof) to a handler that takes
    /// [`UserInfo`](crate::UserInfo): the issuer's `/userinfo` would need a proof signed
    /// with the client's key, which the API does not hold, and refuses the token as
    /// `Bearer` (RFC 9449 §7.2). Refused without calling the issuer.
    UserinfoDpopBound,
}

/// A DPoP proof (RFC 9449 §4.3) that failed its checks (HTTP 401,
/// `error="invalid_dpop_proof"` in the `DPoP` challenge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DpopError {
    /// `Authorization: DPoP` with no `DPoP` proof header.
    MissingProof,
    /// More than one `DPoP` header (RFC 9449 §4.3, check 1).
    MultipleProofs,
    /// Not a compact JWS with a JSON header and claim set, a required claim (`htm`,
    /// `htu`, `iat`) missing or of the wrong type, or longer than 8 KiB.
    MalformedProof,
    /// The header's `typ` is not `dpop+jwt`.
    WrongType,
    /// `alg` is missing, not asymmetric, or not in the DPoP algorithm allowlist (`none`
    /// and `HS*` never are).
    AlgorithmNotAllowed,
    /// The header's `jwk` is missing or is not an admissible public key for `alg`.
    InvalidKey,
    /// The header's `jwk` carries private key members (`d`, `p`, `q`, `dp`, `dq`, `qi`,
    /// `oth`, `k`).
    PrivateKey,
    /// The proof's signature does not verify with its own `jwk`.
    InvalidSignature,
    /// `htm` is not the request's method.
    MethodMismatch,
    /// `htu` is not the request's URL (scheme, host and path, query and fragment ignored).
    UriMismatch,
    /// `iat` is outside the accepted window (too old, or in the future).
    Stale,
    /// `jti` is missing, empty or longer than 256 bytes.
    MissingJti,
    /// `ath` is missing or is not the hash of the presented access token.
    AthMismatch,
    /// The proof's key is not the key the access token is bound to (`cnf.jkt`).
    KeyMismatch,
    /// This proof (`jti`, for this key) was seen before: a replay.
    Replayed,
    /// Server-provided nonces are on ([`DpopNonce`](crate::dpop::DpopNonce)) and the proof
    /// has no `nonce` (401 `error="use_dpop_nonce"`, with the nonce in `DPoP-Nonce`).
    MissingNonce,
    /// The proof's `nonce` is not one this API handed out in the current or the previous
    /// rotation period (401 `error="use_dpop_nonce"`, with the nonce in `DPoP-Nonce`).
    InvalidNonce,
}

impl DpopError {
    /// The stable, machine-readable reason code.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::MissingProof => "dpop_proof_missing",
            Self::MultipleProofs => "dpop_multiple_proofs",
            Self::MalformedProof => "dpop_malformed_proof",
            Self::WrongType => "dpop_wrong_type",
            Self::AlgorithmNotAllowed => "dpop_algorithm_not_allowed",
            Self::InvalidKey => "dpop_invalid_key",
            Self::PrivateKey => "dpop_private_key",
            Self::InvalidSignature => "dpop_invalid_signature",
            Self::MethodMismatch => "dpop_htm_mismatch",
            Self::UriMismatch => "dpop_htu_mismatch",
            Self::Stale => "dpop_stale_proof",
            Self::MissingJti => "dpop_missing_jti",
            Self::AthMismatch => "dpop_ath_mismatch",
            Self::KeyMismatch => "dpop_key_mismatch",
            Self::Replayed => "dpop_replayed",
            Self::MissingNonce => "dpop_nonce_missing",
            Self::InvalidNonce => "dpop_nonce_invalid",
        }
    }

    /// The fixed human-readable description sent as `error_description`.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::MissingProof => "The request uses the DPoP scheme but carries no DPoP proof",
            Self::MultipleProofs => "The request carries more than one DPoP proof",
            Self::MalformedProof => "The DPoP proof is malformed",
            Self::WrongType => "The DPoP proof is not typed dpop+jwt",
            Self::AlgorithmNotAllowed => "The DPoP proof is signed with an algorithm this API does not accept",
            Self::InvalidKey => "The DPoP proof does not carry a usable public key",
            Self::PrivateKey => "The DPoP proof carries private key material",
            Self::InvalidSignature => "The DPoP proof signature is invalid",
            Self::MethodMismatch => "The DPoP proof is for another HTTP method",
            Self::UriMismatch => "The DPoP proof is for another URL",
            Self::Stale => "The DPoP proof is not fresh",
            Self::MissingJti => "The DPoP proof has no usable jti",
            Self::AthMismatch => "The DPoP proof is not for this access token",
            Self::KeyMismatch => "The DPoP proof key is not the key the access token is bound to",
            Self::Replayed => "The DPoP proof was already used",
            Self::MissingNonce => "The DPoP proof has no nonce; retry with the one in the DPoP-Nonce header",
            Self::InvalidNonce => "The DPoP proof nonce is not current; retry with the one in the DPoP-Nonce header",
        }
    }
}

impl TokenError {
    /// The stable, machine-readable reason code.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::TooLarge => "token_too_large",
            Self::Malformed => "malformed_token",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::NotAnAccessToken => "not_an_access_token",
            Self::IdToken => "id_token",
            Self::UnsupportedHeader => "unsupported_header",
            Self::UnknownKey => "unknown_key",
            Self::InvalidSignature => "invalid_signature",
            Self::InvalidIssuer => "invalid_issuer",
            Self::InvalidAudience => "invalid_audience",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::LifetimeExceeded => "lifetime_exceeded",
            Self::InvalidClaim => "invalid_claim",
            Self::InvalidScopeClaim => "invalid_scope_claim",
            Self::ClientNotAllowed => "client_not_allowed",
            Self::IssuerNotAllowedHere => "issuer_not_allowed_here",
            Self::SenderConstrained => "sender_constrained",
            Self::EmptyClaim => "empty_claim",
            Self::UserinfoRefused => "userinfo_refused",
            Self::UserinfoSubjectMismatch => "userinfo_subject_mismatch",
            Self::Inactive => "inactive_token",
            Self::RefreshToken => "refresh_token",
            Self::NotDpopBound => "not_dpop_bound",
            Self::UserinfoDpopBound => "userinfo_dpop_bound",
        }
    }

    /// The fixed human-readable description sent as `error_description`.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::TooLarge => "The access token is too large",
            Self::Malformed => "The access token is malformed",
            Self::AlgorithmNotAllowed => "The access token is signed with an algorithm this API does not accept",
            Self::NotAnAccessToken => "The token is not an access token (typ must be at+jwt)",
            Self::IdToken => "An ID token was presented; this API accepts access tokens only",
            Self::UnsupportedHeader => "The access token uses a header parameter this API does not accept",
            Self::UnknownKey => "The access token is signed with an unknown key",
            Self::InvalidSignature => "The access token signature is invalid",
            Self::InvalidIssuer => "The access token was not issued by the trusted issuer",
            Self::InvalidAudience => "The access token is not meant for this API",
            Self::Expired => "The access token expired",
            Self::NotYetValid => "The access token is not valid yet",
            Self::IssuedInFuture => "The access token is issued in the future",
            Self::LifetimeExceeded => "The access token lifetime exceeds the allowed maximum",
            Self::InvalidClaim => "The access token lacks a required claim or has a malformed one",
            Self::InvalidScopeClaim => "The access token scope claim is malformed",
            Self::ClientNotAllowed => "The access token was issued to a client this API does not accept",
            Self::IssuerNotAllowedHere => "The access token was issued by an issuer this resource does not accept",
            Self::SenderConstrained => "The access token is sender-constrained and cannot be used as a bearer token",
            Self::EmptyClaim => "The access token has an empty sub, client_id or jti claim",
            Self::UserinfoRefused => "The issuer's userinfo endpoint refused the access token",
            Self::UserinfoSubjectMismatch => {
                "The issuer's userinfo answer is about another subject than the access token"
            }
            Self::Inactive => "The access token is not active",
            Self::RefreshToken => "A refresh token was presented; this API accepts access tokens only",
            Self::NotDpopBound => "The access token is not bound to a DPoP key",
            Self::UserinfoDpopBound => {
                "The access token is DPoP-bound; this API cannot present it to the issuer's userinfo endpoint"
            }
        }
    }
}

/// What went wrong, without the response details.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// No credentials, or only credentials of another scheme (HTTP 401, bare challenge).
    MissingCredentials,
    /// The credentials could not be read (HTTP 400).
    InvalidRequest(RequestError),
    /// The token failed verification (HTTP 401).
    InvalidToken(TokenError),
    /// The token is valid but lacks the scopes the route requires (HTTP 403).
    InsufficientScope {
        /// A set of scopes that satisfies the route's requirement, space-separated: the
        /// challenge's `scope` (see [`ScopeExpr::satisfying_scopes`]).
        required: &'static str,
        /// The route's whole requirement, sent in the JSON body as `requirement`.
        requirement: ScopeExpr,
    },
    /// The issuer's keys cannot be obtained right now (HTTP 503 with `Retry-After`).
    KeysUnavailable {
        /// Seconds the client should wait before retrying.
        retry_after_secs: u32,
    },
    /// The issuer's introspection endpoint could not give a usable answer right now:
    /// down, slow, an error status (a 4xx means the API's own credentials are refused),
    /// or a body that is not a JSON object (HTTP 503 with `Retry-After`).
    IntrospectionUnavailable {
        /// Seconds the client should wait before retrying.
        retry_after_secs: u32,
    },
    /// The verifier is missing or misconfigured at runtime (HTTP 500). Never reaches the
    /// handler. Also: a handler asks for [`UserInfo`](crate::UserInfo) but no userinfo
    /// endpoint is configured or discovered.
    Misconfigured,
    /// A signed (`application/jwt`) userinfo answer failed verification: malformed, an
    /// unknown key, a bad signature, a `typ` other than `JWT`, or an `iss`/`aud` that is
    /// not the issuer and the token's client (HTTP 502).
    UserinfoInvalid,
    /// The issuer's userinfo endpoint is down, slow, or answered something unusable (an
    /// unexpected status, not JSON, too large) (HTTP 503 with `Retry-After`).
    UserinfoUnavailable {
        /// Seconds the client should wait before retrying.
        retry_after_secs: u32,
    },
    /// The DPoP proof failed its checks (HTTP 401, `error="invalid_dpop_proof"`).
    InvalidDpopProof(DpopError),
    /// The DPoP replay store (Redis) could not answer, so a proof cannot be told fresh
    /// from replayed (HTTP 503 with `Retry-After`: refused, never accepted unchecked).
    ReplayStoreUnavailable {
        /// Seconds the client should wait before retrying.
        retry_after_secs: u32,
    },
}

impl RejectionKind {
    /// The stable, machine-readable reason code, as logged and as returned in the JSON
    /// body's `reason` member.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidRequest(e) => e.code(),
            Self::InvalidToken(e) => e.code(),
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::KeysUnavailable { .. } => "keys_unavailable",
            Self::IntrospectionUnavailable { .. } => "introspection_unavailable",
            Self::Misconfigured => "misconfigured",
            Self::UserinfoInvalid => "userinfo_invalid",
            Self::UserinfoUnavailable { .. } => "userinfo_unavailable",
            Self::InvalidDpopProof(e) => e.code(),
            Self::ReplayStoreUnavailable { .. } => "dpop_replay_store_unavailable",
        }
    }

    /// The HTTP status this outcome maps to.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidToken(_) | Self::InvalidDpopProof(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::KeysUnavailable { .. }
            | Self::IntrospectionUnavailable { .. }
            | Self::UserinfoUnavailable { .. }
            | Self::ReplayStoreUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UserinfoInvalid => StatusCode::BAD_GATEWAY,
        }
    }

    /// The RFC 6750 error code, if this outcome has one.
    #[must_use]
    pub const fn oauth_error(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
            // RFC 9449 §9: the client retries with the nonce it was given.
            Self::InvalidDpopProof(DpopError::MissingNonce | DpopError::InvalidNonce) => Some("use_dpop_nonce"),
            Self::InvalidDpopProof(_) => Some("invalid_dpop_proof"),
            Self::MissingCredentials => None,
            Self::KeysUnavailable { .. }
            | Self::IntrospectionUnavailable { .. }
            | Self::Misconfigured
            | Self::UserinfoUnavailable { .. }
            | Self::ReplayStoreUnavailable { .. } => Some("temporarily_unavailable"),
            Self::UserinfoInvalid => Some("server_error"),
        }
    }

    /// The fixed description of this outcome.
    #[must_use]
    pub const fn description(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "The request carries no bearer access token",
            Self::InvalidRequest(e) => e.description(),
            Self::InvalidToken(e) => e.description(),
            Self::InsufficientScope { .. } => "The access token lacks a scope this route requires",
            Self::KeysUnavailable { .. } => "The issuer's signing keys are unavailable; retry later",
            Self::IntrospectionUnavailable { .. } => "The issuer's introspection endpoint is unavailable; retry later",
            Self::Misconfigured => "The API's token verifier is not configured",
            Self::UserinfoInvalid => "The issuer's signed userinfo answer failed verification",
            Self::UserinfoUnavailable { .. } => "The issuer's userinfo endpoint is unavailable; retry later",
            Self::InvalidDpopProof(e) => e.description(),
            Self::ReplayStoreUnavailable { .. } => "The DPoP replay store is unavailable; retry later",
        }
    }
}

/// Every reason code, in the order of the per-reason counters: each read from the `code()`
/// tables above (a test checks that every variant is here).
pub(crate) const REASONS: [&str; 56] = {
    use DpopError as D;
    use RequestError as R;
    use TokenError as T;
    [
        RejectionKind::MissingCredentials.code(),
        R::EmptyToken.code(),
        R::MalformedCredentials.code(),
        R::NonAsciiHeader.code(),
        R::MultipleAuthorizationHeaders.code(),
        R::MultipleMethods.code(),
        T::TooLarge.code(),
        T::Malformed.code(),
        T::AlgorithmNotAllowed.code(),
        T::NotAnAccessToken.code(),
        T::IdToken.code(),
        T::UnsupportedHeader.code(),
        T::UnknownKey.code(),
        T::InvalidSignature.code(),
        T::InvalidIssuer.code(),
        T::InvalidAudience.code(),
        T::Expired.code(),
        T::NotYetValid.code(),
        T::IssuedInFuture.code(),
        T::LifetimeExceeded.code(),
        T::InvalidClaim.code(),
        T::InvalidScopeClaim.code(),
        T::ClientNotAllowed.code(),
        T::IssuerNotAllowedHere.code(),
        T::SenderConstrained.code(),
        T::EmptyClaim.code(),
        T::UserinfoRefused.code(),
        T::UserinfoSubjectMismatch.code(),
        T::Inactive.code(),
        T::RefreshToken.code(),
        RejectionKind::InsufficientScope { required: "", requirement: ScopeExpr::All(&[]) }.code(),
        RejectionKind::KeysUnavailable { retry_after_secs: 0 }.code(),
        RejectionKind::UserinfoInvalid.code(),
        RejectionKind::UserinfoUnavailable { retry_after_secs: 0 }.code(),
        RejectionKind::IntrospectionUnavailable { retry_after_secs: 0 }.code(),
        T::NotDpopBound.code(),
        D::MissingProof.code(),
        D::MultipleProofs.code(),
        D::MalformedProof.code(),
        D::WrongType.code(),
        D::AlgorithmNotAllowed.code(),
        D::InvalidKey.code(),
        D::PrivateKey.code(),
        D::InvalidSignature.code(),
        D::MethodMismatch.code(),
        D::UriMismatch.code(),
        D::Stale.code(),
        D::MissingJti.code(),
        D::AthMismatch.code(),
        D::KeyMismatch.code(),
        D::Replayed.code(),
        RejectionKind::ReplayStoreUnavailable { retry_after_secs: 0 }.code(),
        D::MissingNonce.code(),
        D::InvalidNonce.code(),
        T::UserinfoDpopBound.code(),
        RejectionKind::Misconfigured.code(),
    ]
};

/// The response settings a rejection needs from its [`Authority`](crate::Authority).
#[derive(Debug, Clone)]
pub(crate) struct ChallengeConfig {
    /// The `realm` auth-param, already checked to be header-safe.
    pub(crate) realm: Arc<str>,
    /// Whether `error_description` is sent.
    pub(crate) describe: bool,
    /// The RFC 9728 metadata URL sent as `resource_metadata`, already checked to be
    /// header-safe; `None` when the metadata is off.
    pub(crate) resource_metadata: Option<Arc<str>>,
    /// The application's rendering of a rejection, if it gave one.
    pub(crate) hook: Option<RejectionHook>,
    /// The `DPoP` challenge's settings; `None` when DPoP is off.
    /// (Boxed: it keeps `Rejection` small.)
    pub(crate) dpop: Option<Arc<DpopChallenge>>,
}

/// The application's own rendering of a rejection, set with
/// [`AuthorityBuilder::on_rejection`](crate::AuthorityBuilder::on_rejection).
#[derive(Clone)]
pub(crate) struct RejectionHook(pub(crate) Arc<dyn Fn(&Rejection) -> Response + Send + Sync>);

impl fmt::Debug for RejectionHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RejectionHook")
    }
}

/// What the `DPoP` challenge (RFC 9449 §7.1) says, fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct DpopChallenge {
    /// The `algs` value: the accepted proof algorithms, space-separated.
    pub(crate) algs: Arc<str>,
    /// Whether the `Bearer` scheme is offered too (`DpopPolicy::Allowed`).
    pub(crate) bearer: bool,
}

/// A refused request: the one error type of scopegate's extractors.
///
/// It implements [`IntoResponse`] with the RFC 6750 status, `WWW-Authenticate` challenge
/// and a small JSON body (`{"error": …, "error_description": …, "reason": …}`; with
/// `error_descriptions(false)`, no `reason`, and no description for `invalid_token`). To use
/// your own error format, take `Result<AccessToken, Rejection>` in the handler, or map it
/// in a middleware, reading [`Rejection::kind`] and [`Rejection::status`].
#[derive(Debug, Clone)]
pub struct Rejection {
    kind: RejectionKind,
    challenge: Arc<ChallengeConfig>,
    /// The guarded route's challenge set, sent as `scope` in a 401 when the metadata is on.
    route_scope: Option<&'static str>,
    /// The request used the `DPoP` scheme: the `DPoP` challenge carries the error.
    dpop_scheme: bool,
    /// The route accepts only DPoP (`#[requires_scope(…, dpop = "required")]`): no
    /// `Bearer` challenge is offered.
    dpop_only: bool,
    /// The current DPoP nonce, sent as `DPoP-Nonce` with a 401 (RFC 9449 §9), when the
    /// authority hands out nonces.
    dpop_nonce: Option<Box<str>>,
}

/// What a refusal's one log event says besides its reason and status.
#[derive(Debug, Default)]
pub(crate) enum LogDetail {
    /// Nothing more.
    #[default]
    Nothing,
    /// What may be said of the refused token ([`TokenIds::capture`]).
    Token(Box<TokenIds>),
    /// Why the verifier cannot serve the request, and what to configure (`misconfigured`).
    Why(std::borrow::Cow<'static, str>),
    /// The error of a service the refusal depends on (the DPoP replay store).
    Cause(Box<str>),
    /// The token was refused by the introspection endpoint's answer.
    Introspected,
}

/// What a refused token's log event may say of it: its `kid` and, once its signature has
/// verified, its `iss` and `jti`, each escaped to printable ASCII and cut to 64 characters
/// (security spec case 148). Never the token itself.
#[derive(Debug)]
pub(crate) struct TokenIds {
    kid: Option<Box<str>>,
    iss: Option<Box<str>>,
    jti: Option<Box<str>>,
}

impl TokenIds {
    /// The detail for a refused token's event, taken only when that event (DEBUG, target
    /// `scopegate`) is enabled: nothing is copied or formatted otherwise.
    pub(crate) fn capture(kid: Option<&str>, iss: Option<&str>, jti: Option<&str>) -> LogDetail {
        if (kid, iss, jti) == (None, None, None) || !tracing::enabled!(target: "scopegate", tracing::Level::DEBUG) {
            return LogDetail::Nothing;
        }
        let log = |value: Option<&str>| value.map(|v| LogValue(v).to_string().into_boxed_str());
        LogDetail::Token(Box::new(Self { kid: log(kid), iss: log(iss), jti: log(jti) }))
    }
}

/// A value taken from a token, fit for a log line: at most 64 characters, escaped to
/// printable ASCII (no line breaks or quotes from the attacker).
struct LogValue<'a>(&'a str);

impl fmt::Display for LogValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars().take(64).flat_map(char::escape_default) {
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

impl Rejection {
    /// A rejection, logged here: the one event of the refusal (see [`Self::trace`]).
    pub(crate) fn new(kind: RejectionKind, challenge: Arc<ChallengeConfig>, detail: &LogDetail) -> Self {
        let rejection =
            Self { kind, challenge, route_scope: None, dpop_scheme: false, dpop_only: false, dpop_nonce: None };
        rejection.trace(detail);
        rejection
    }

    /// The same rejection for a guarded route whose challenge set is `scope`.
    pub(crate) fn for_route(mut self, scope: &'static str) -> Self {
        self.route_scope = Some(scope);
        self
    }

    /// The same rejection for a request that used the `DPoP` scheme.
    pub(crate) fn under_dpop(mut self) -> Self {
        self.dpop_scheme = true;
        self
    }

    /// The same rejection for a route that accepts only DPoP: the `Bearer` scheme is not
    /// offered (as under `DpopPolicy::Required`).
    pub(crate) fn dpop_only(mut self) -> Self {
        self.dpop_only = true;
        self
    }

    /// The same rejection with the nonce the client is to put in its next proof.
    pub(crate) fn with_dpop_nonce(mut self, nonce: String) -> Self {
        self.dpop_nonce = Some(nonce.into());
        self
    }

    /// The nonce sent in the `DPoP-Nonce` header of this 401, when the authority hands
    /// out DPoP nonces ([`AuthorityBuilder::dpop_nonce`](crate::AuthorityBuilder::dpop_nonce)).
    #[must_use]
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop_nonce.as_deref()
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &RejectionKind {
        &self.kind
    }

    /// The stable reason code (see [`RejectionKind::code`]).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        self.kind.code()
    }

    /// The HTTP status of the response.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The RFC 6750 error code (`invalid_request`, `invalid_token`, `insufficient_scope`;
    /// `temporarily_unavailable` or `server_error` for a 5xx), `None` without credentials.
    #[must_use]
    pub fn error(&self) -> Option<&'static str> {
        self.kind.oauth_error()
    }

    /// The fixed description, as the default body sends it: `None` for an `invalid_token`
    /// when the authority sends no descriptions
    /// ([`AuthorityBuilder::error_descriptions`](crate::AuthorityBuilder::error_descriptions)`(false)`).
    #[must_use]
    pub fn description(&self) -> Option<&'static str> {
        (self.challenge.describe || !matches!(self.kind, RejectionKind::InvalidToken(_)))
            .then(|| self.kind.description())
    }

    /// Whether the authority sends descriptions and reason codes to clients
    /// ([`AuthorityBuilder::error_descriptions`](crate::AuthorityBuilder::error_descriptions)):
    /// a rejection hook that puts [`reason`](Self::reason) in its body should honour it.
    #[must_use]
    pub fn describes(&self) -> bool {
        self.challenge.describe
    }

    /// The scopes the route requires, for an `insufficient_scope` refusal (the challenge's
    /// `scope`).
    #[must_use]
    pub fn required_scope(&self) -> Option<&'static str> {
        match self.kind {
            RejectionKind::InsufficientScope { required, .. } => Some(required),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` value, if this outcome has a challenge (400, 401, 403).
    ///
    /// With DPoP on, a 401's `DPoP` challenge with `algs` follows the `Bearer` one (RFC
    /// 9449 §7.1), or stands alone when DPoP is required (by the authority or by the
    /// route's `dpop = "required"`); the error goes on the challenge
    /// of the scheme the request used, and a 400 or 403 carries that challenge alone.
    #[must_use]
    pub fn challenge(&self) -> Option<String> {
        let error = match &self.kind {
            RejectionKind::KeysUnavailable { .. }
            | RejectionKind::IntrospectionUnavailable { .. }
            | RejectionKind::Misconfigured
            | RejectionKind::UserinfoInvalid
            | RejectionKind::UserinfoUnavailable { .. }
            | RejectionKind::ReplayStoreUnavailable { .. } => return None,
            RejectionKind::MissingCredentials => None,
            kind => kind.oauth_error(),
        };
        let dpop = self.challenge.dpop.as_ref();
        let bearer_offered = dpop.is_none_or(|d| d.bearer && !self.dpop_only);
        let on_dpop = dpop.is_some()
            && (self.dpop_scheme || !bearer_offered || matches!(self.kind, RejectionKind::InvalidDpopProof(_)));
        // The other scheme is offered only with a 401: a 400 or 403 answers the request's own.
        let offer_both = self.status() == StatusCode::UNAUTHORIZED;
        let dpop = dpop.filter(|_| on_dpop || offer_both);
        let mut value = String::new();
        if bearer_offered && (!on_dpop || offer_both) {
            value.push_str("Bearer realm=\"");
            value.push_str(&self.challenge.realm);
            value.push('"');
            if !on_dpop {
                self.push_details(&mut value, error);
            }
        }
        if let Some(dpop) = dpop {
            if !value.is_empty() {
                value.push_str(", ");
            }
            value.push_str("DPoP realm=\"");
            value.push_str(&self.challenge.realm);
            value.push('"');
            if on_dpop {
                self.push_details(&mut value, error);
            }
            value.push_str(", algs=\"");
            value.push_str(&dpop.algs);
            value.push('"');
        }
        Some(value)
    }

    /// The error, its description, the scope and the metadata URL of a challenge.
    fn push_details(&self, value: &mut String, error: Option<&str>) {
        if let Some(error) = error {
            value.push_str(", error=\"");
            value.push_str(error);
            value.push('"');
            if self.challenge.describe
                && let RejectionKind::InvalidToken(_)
                | RejectionKind::InvalidRequest(_)
                | RejectionKind::InvalidDpopProof(_) = self.kind
            {
                value.push_str(", error_description=\"");
                value.push_str(self.kind.description());
                value.push('"');
            }
        }
        let scope = match self.kind {
            RejectionKind::InsufficientScope { required, .. } => Some(required),
            // RFC 9728 §5.1 and the MCP authorization specification: with the metadata on,
            // a 401 for a guarded route names the scopes a client should ask for.
            _ if self.challenge.resource_metadata.is_some() && self.status() == StatusCode::UNAUTHORIZED => {
                self.route_scope
            }
            _ => None,
        };
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            value.push_str(", scope=\"");
            value.push_str(scope);
            value.push('"');
        }
        if let Some(url) = &self.challenge.resource_metadata {
            value.push_str(", resource_metadata=\"");
            value.push_str(url);
            value.push('"');
        }
    }

    /// The one event of a refused request, target `scopegate`: ERROR for `misconfigured`
    /// (with what to configure, when known), WARN when the issuer's keys or its
    /// introspection endpoint are unavailable, DEBUG for the rest, a refused token's with
    /// what may be said of it ([`TokenIds`]).
    fn trace(&self, detail: &LogDetail) {
        let reason = self.kind.code();
        let status = self.kind.status().as_u16();
        match (&self.kind, detail) {
            (RejectionKind::Misconfigured, LogDetail::Why(why)) => {
                tracing::error!(target: "scopegate", reason, "request refused: {why}");
            }
            (RejectionKind::Misconfigured, _) => {
                tracing::error!(target: "scopegate", reason, "request refused: the verifier is not configured");
            }
            (RejectionKind::KeysUnavailable { .. }, _) => {
                tracing::warn!(target: "scopegate", reason, "request refused: issuer keys unavailable");
            }
            (RejectionKind::IntrospectionUnavailable { .. }, _) => {
                tracing::warn!(target: "scopegate", reason, "request refused: introspection endpoint unavailable");
            }
            (RejectionKind::ReplayStoreUnavailable { .. }, detail) => {
                let error = match detail {
                    LogDetail::Cause(error) => Some(&**error),
                    _ => None,
                };
                tracing::warn!(target: "scopegate", reason, error, "request refused: DPoP replay store unavailable");
            }
            (RejectionKind::InvalidToken(_), LogDetail::Token(ids)) => {
                fn field(value: &Option<Box<str>>) -> Option<tracing::field::DisplayValue<&str>> {
                    value.as_deref().map(tracing::field::display)
                }
                tracing::debug!(
                    target: "scopegate",
                    reason,
                    status,
                    kid = field(&ids.kid),
                    iss = field(&ids.iss),
                    jti = field(&ids.jti),
                    "request refused: access token refused"
                );
            }
            (RejectionKind::InvalidToken(_), LogDetail::Introspected) => {
                tracing::debug!(target: "scopegate", reason, status, "request refused: access token refused by introspection");
            }
            (RejectionKind::InvalidToken(_), _) => {
                tracing::debug!(target: "scopegate", reason, status, "request refused: access token refused");
            }
            _ => tracing::debug!(target: "scopegate", reason, status, "request refused"),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind.description(), self.kind.code())
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    /// The default JSON body.
    fn json_body(&self) -> String {
        let mut body = String::with_capacity(160);
        body.push_str("{\"error\":\"");
        body.push_str(self.kind.oauth_error().unwrap_or("unauthorized"));
        body.push('"');
        if self.challenge.describe
            || !matches!(self.kind, RejectionKind::InvalidToken(_) | RejectionKind::InvalidDpopProof(_))
        {
            body.push_str(",\"error_description\":\"");
            body.push_str(self.kind.description());
            body.push('"');
        }
        if let RejectionKind::InsufficientScope { required, requirement } = &self.kind {
            body.push_str(",\"scope\":\"");
            body.push_str(required);
            body.push_str("\",\"requirement\":\"");
            // Scope tokens cannot contain `"` or `\` (RFC 6749 §3.3, checked at compile
            // time), so escaping the quotes of the expression's own syntax is enough.
            let text = match requirement {
                ScopeExpr::All([only]) => only.to_string(),
                whole => whole.to_string(),
            };
            body.push_str(&text.replace('"', "\\\""));
            body.push('"');
        }
        // The reason code tells more than the description (`unknown_key` from
        // `invalid_signature`): without descriptions it stays in the logs and counters.
        if self.challenge.describe {
            body.push_str(",\"reason\":\"");
            body.push_str(self.kind.code());
            body.push('"');
        }
        body.push('}');
        body
    }
}

impl IntoResponse for Rejection {
    /// The RFC 6750 response: the JSON body above, or the body of the authority's
    /// [`on_rejection`](crate::AuthorityBuilder::on_rejection) hook. Either way the status,
    /// `WWW-Authenticate`, `Retry-After` and `Cache-Control: no-store` are scopegate's.
    fn into_response(self) -> Response {
        let mut response = match &self.challenge.hook {
            Some(hook) => {
                let mut response = (hook.0)(&self);
                *response.status_mut() = self.status();
                response
            }
            None => {
                let mut response = (self.status(), self.json_body()).into_response();
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // The hook's own challenge or `Retry-After`, if it set one, never survives.
        headers.remove(header::WWW_AUTHENTICATE);
        headers.remove(header::RETRY_AFTER);
        if let Some(challenge) = self.challenge() {
            // Built only from the checked realm and fixed strings, so it is always a
            // valid header value; the fallback keeps the response well-formed regardless.
            let value =
                HeaderValue::from_str(&challenge).unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"api\""));
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        // Base64url, so always a valid header value.
        if let Some(nonce) = self.dpop_nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
            headers.insert(HeaderName::from_static("dpop-nonce"), nonce);
        }
        if let RejectionKind::KeysUnavailable { retry_after_secs }
        | RejectionKind::IntrospectionUnavailable { retry_after_secs }
        | RejectionKind::UserinfoUnavailable { retry_after_secs }
        | RejectionKind::ReplayStoreUnavailable { retry_after_secs } = self.kind
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every reason code a rejection can carry. The `match`es are exhaustive (inside the
    /// crate `#[non_exhaustive]` does not apply), so a new variant fails to compile here
    /// until it is listed. The crate docs' reason table is checked against it too.
    pub(crate) fn every_kind() -> Vec<RejectionKind> {
        use RequestError as Q;
        use TokenError as T;
        let requests = [
            Q::EmptyToken,
            Q::MalformedCredentials,
            Q::NonAsciiHeader,
            Q::MultipleAuthorizationHeaders,
            Q::MultipleMethods,
        ];
        let tokens = [
            T::TooLarge,
            T::Malformed,
            T::AlgorithmNotAllowed,
            T::NotAnAccessToken,
            T::IdToken,
            T::UnsupportedHeader,
            T::UnknownKey,
            T::InvalidSignature,
            T::InvalidIssuer,
            T::InvalidAudience,
            T::Expired,
            T::NotYetValid,
            T::IssuedInFuture,
            T::LifetimeExceeded,
            T::InvalidClaim,
            T::InvalidScopeClaim,
            T::ClientNotAllowed,
            T::IssuerNotAllowedHere,
            T::SenderConstrained,
            T::EmptyClaim,
            T::UserinfoRefused,
            T::UserinfoSubjectMismatch,
            T::Inactive,
            T::RefreshToken,
            T::NotDpopBound,
            T::UserinfoDpopBound,
        ];
        use DpopError as D;
        let proofs = [
            D::MissingProof,
            D::MultipleProofs,
            D::MalformedProof,
            D::WrongType,
            D::AlgorithmNotAllowed,
            D::InvalidKey,
            D::PrivateKey,
            D::InvalidSignature,
            D::MethodMismatch,
            D::UriMismatch,
            D::Stale,
            D::MissingJti,
            D::AthMismatch,
            D::KeyMismatch,
            D::Replayed,
            D::MissingNonce,
            D::InvalidNonce,
        ];
        for error in proofs {
            match error {
                D::MissingProof
                | D::MultipleProofs
                | D::MalformedProof
                | D::WrongType
                | D::AlgorithmNotAllowed
                | D::InvalidKey
                | D::PrivateKey
                | D::InvalidSignature
                | D::MethodMismatch
                | D::UriMismatch
                | D::Stale
                | D::MissingJti
                | D::AthMismatch
                | D::KeyMismatch
                | D::Replayed
                | D::MissingNonce
                | D::InvalidNonce => {}
            }
        }
        for error in requests {
            match error {
                Q::EmptyToken
                | Q::MalformedCredentials
                | Q::NonAsciiHeader
                | Q::MultipleAuthorizationHeaders
                | Q::MultipleMethods => {}
            }
        }
        for error in tokens {
            match error {
                T::TooLarge
                | T::Malformed
                | T::AlgorithmNotAllowed
                | T::NotAnAccessToken
                | T::IdToken
                | T::UnsupportedHeader
                | T::UnknownKey
                | T::InvalidSignature
                | T::InvalidIssuer
                | T::InvalidAudience
                | T::Expired
                | T::NotYetValid
                | T::IssuedInFuture
                | T::LifetimeExceeded
                | T::InvalidClaim
                | T::InvalidScopeClaim
                | T::ClientNotAllowed
                | T::IssuerNotAllowedHere
                | T::SenderConstrained
                | T::EmptyClaim
                | T::UserinfoRefused
                | T::UserinfoSubjectMismatch
                | T::Inactive
                | T::RefreshToken
                | T::NotDpopBound
                | T::UserinfoDpopBound => {}
            }
        }
        let mut kinds = vec![
            RejectionKind::MissingCredentials,
            RejectionKind::InsufficientScope { required: "s", requirement: ScopeExpr::Scope("s") },
            RejectionKind::KeysUnavailable { retry_after_secs: 1 },
            RejectionKind::UserinfoInvalid,
            RejectionKind::UserinfoUnavailable { retry_after_secs: 1 },
            RejectionKind::IntrospectionUnavailable { retry_after_secs: 1 },
            RejectionKind::ReplayStoreUnavailable { retry_after_secs: 1 },
            RejectionKind::Misconfigured,
        ];
        kinds.extend(requests.map(RejectionKind::InvalidRequest));
        kinds.extend(tokens.map(RejectionKind::InvalidToken));
        kinds.extend(proofs.map(RejectionKind::InvalidDpopProof));
        kinds
    }

    #[test]
    fn every_reason_code_has_its_own_counter() {
        let kinds = every_kind();
        for kind in &kinds {
            assert!(REASONS.contains(&kind.code()), "{} has no counter in REASONS", kind.code());
        }
        // `misconfigured` too: an authority that cannot serve a handler counts its refusals
        // (and the metrics' `reason` label says so) like any other.
        assert_eq!(REASONS.len(), kinds.len(), "REASONS lists a code no rejection carries");
    }
}
