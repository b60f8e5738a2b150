//! The claim checks of RFC 9068 §4 and the security spec's sections 6 to 8, run on the
//! claim set of a token whose signature has verified.
//!
//! jsonwebtoken's `Validation` is not used for any of this: it treats wrongly typed
//! claims as absent, accepts `iss` arrays, never checks `iat`, `jti` or `client_id`, and
//! accepts `exp == now` (security spec section 13). Each check here is explicit.

use serde_json::{Map, Value};

use crate::{
    authority::{Config, Profile, ScopeClaim},
    jws::Typ,
    rejection::TokenError,
    scope::Scopes,
};

/// The facts of a verified access token, extracted once.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedClaims {
    pub(crate) subject: String,
    pub(crate) client_id: Option<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) issuer: String,
    pub(crate) expires_at: u64,
    /// `exp` exactly as sent (NumericDate may have a fraction).
    pub(crate) expires_at_secs: f64,
    pub(crate) issued_at: u64,
    pub(crate) jti: Option<String>,
    pub(crate) scopes: Scopes,
    pub(crate) raw: Map<String, Value>,
}

/// Which audience a request must carry.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AudienceCheck<'a> {
    /// Any of the `Authority`'s configured audiences.
    Configured,
    /// Exactly this one (a handler's `aud = "…"`).
    Exact(&'a str),
}

/// Claims only ID tokens carry (OIDC Core §2, §3.1.3.6, §3.3.2.11).
const ID_TOKEN_CLAIMS: [&str; 3] = ["nonce", "at_hash", "c_hash"];

/// Whether a claim set has the shape of an OpenID Connect ID token rather than an access
/// token. Used to pick the error description for a token that is refused anyway.
pub(crate) fn looks_like_id_token(claims: &Map<String, Value>) -> bool {
    ID_TOKEN_CLAIMS.iter().any(|c| claims.contains_key(*c))
        || claims.get("typ").is_some_and(|t| t == "ID")
        || !(claims.contains_key("client_id")
            || claims.contains_key("scope")
            || claims.contains_key("scp")
            || claims.contains_key("permissions"))
}

/// Checks every claim and extracts the verified facts.
pub(crate) fn validate(
    claims: Map<String, Value>,
    typ: Typ,
    config: &Config,
    audience: AudienceCheck<'_>,
    now: f64,
) -> Result<VerifiedClaims, TokenError> {
    // The token type and ID-token markers first: an ID token is reported as such.
    let has_id_markers = ID_TOKEN_CLAIMS.iter().any(|c| claims.contains_key(*c));
    match claims.get("typ") {
        Some(t) if t == "ID" => return Err(TokenError::IdToken),
        Some(t) if t == "Refresh" || t == "Logout" => return Err(TokenError::NotAnAccessToken),
        _ => {}
    }
    match (typ, config.profile) {
        (Typ::AccessToken, _) | (Typ::Jwt | Typ::Absent, Profile::Compatible) => {}
        _ if looks_like_id_token(&claims) => return Err(TokenError::IdToken),
        _ => return Err(TokenError::NotAnAccessToken),
    }
    if has_id_markers && (config.reject_id_token_claims || typ != Typ::AccessToken) {
        return Err(TokenError::IdToken);
    }
    if claims.contains_key("cnf") {
        return Err(TokenError::SenderConstrained);
    }

    let issuer = match claims.get("iss") {
        Some(Value::String(iss)) if *iss == *config.issuer => iss.clone(),
        _ => return Err(TokenError::InvalidIssuer),
    };

    let audiences = audiences(claims.get("aud")).ok_or(TokenError::InvalidAudience)?;
    let audience_ok = audience_matches(&audiences, config, audience);
    if !audience_ok {
        return Err(TokenError::InvalidAudience);
    }

    let leeway = config.leeway.as_secs_f64();
    let exp = numeric_date(claims.get("exp"))?.ok_or(TokenError::InvalidClaim)?;
    let iat = numeric_date(claims.get("iat"))?.ok_or(TokenError::InvalidClaim)?;
    let nbf = numeric_date(claims.get("nbf"))?;
    if now >= exp + leeway {
        return Err(TokenError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(TokenError::NotYetValid);
    }
    if iat > now + leeway {
        return Err(TokenError::IssuedInFuture);
    }
    let max_lifetime = config.max_lifetime.as_secs_f64();
    if exp - now > max_lifetime || exp - iat > max_lifetime {
        return Err(TokenError::LifetimeExceeded);
    }
    if config.max_age.is_some_and(|max| now - iat > max.as_secs_f64()) {
        return Err(TokenError::LifetimeExceeded);
    }

    let subject = required_string(&claims, "sub")?.ok_or(TokenError::InvalidClaim)?.to_owned();
    let client_id = match config.profile {
        Profile::Rfc9068 => Some(required_string(&claims, "client_id")?.ok_or(TokenError::InvalidClaim)?),
        Profile::Compatible => {
            let mut found = None;
            for name in ["client_id", "azp", "cid"] {
                if let Some(id) = required_string(&claims, name)? {
                    found = Some(id);
                    break;
                }
            }
            // Case 126: a token typed `JWT` (or untyped) must name its client.
            if found.is_none() && typ != Typ::AccessToken {
                return Err(TokenError::InvalidClaim);
            }
            found
        }
    }
    .map(str::to_owned);
    let jti = match (required_string(&claims, "jti")?, config.profile) {
        (None, Profile::Rfc9068) => return Err(TokenError::InvalidClaim),
        (jti, _) => jti.map(str::to_owned),
    };

    if let Some(allowed) = &config.allowed_clients
        && !client_id.as_deref().is_some_and(|id| allowed.iter().any(|a| **a == *id))
    {
        return Err(TokenError::ClientNotAllowed);
    }

    let scopes = scopes(&claims, &config.scope_claims)?;
    Ok(VerifiedClaims {
        subject,
        client_id,
        audiences,
        issuer,
        // Checked positive and below 2^53 by `numeric_date`; truncating a fraction is
        // the documented behaviour of the accessors.
        expires_at: exp as u64,
        expires_at_secs: exp,
        issued_at: iat as u64,
        jti,
        scopes,
        raw: claims,
    })
}

/// Whether one of the token's audiences is the one asked for.
pub(crate) fn audience_matches(audiences: &[String], config: &Config, check: AudienceCheck<'_>) -> bool {
    match check {
        AudienceCheck::Configured => audiences.iter().any(|a| config.audiences.iter().any(|c| **c == **a)),
        AudienceCheck::Exact(wanted) => audiences.iter().any(|a| a == wanted),
    }
}

/// `aud` as a non-empty string or a non-empty array of non-empty strings.
fn audiences(aud: Option<&Value>) -> Option<Vec<String>> {
    match aud? {
        Value::String(a) if !a.is_empty() => Some(vec![a.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::String(a) if !a.is_empty() => Some(a.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// The latest NumericDate accepted: 2^53 seconds, where `f64` is still exact.
const MAX_NUMERIC_DATE: f64 = 9_007_199_254_740_992.0;

/// A NumericDate claim (RFC 7519 §2): absent, or a positive JSON number (fractions
/// allowed). Strings, booleans, null, zero, negatives and absurd values are malformed.
fn numeric_date(value: Option<&Value>) -> Result<Option<f64>, TokenError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) if t.is_finite() && t > 0.0 && t < MAX_NUMERIC_DATE => Ok(Some(t)),
            _ => Err(TokenError::InvalidClaim),
        },
        Some(_) => Err(TokenError::InvalidClaim),
    }
}

/// A claim that must be a string when present.
fn required_string<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::InvalidClaim),
    }
}

/// The granted scopes from the first configured scope claim the token carries. Claims are
/// never merged (case 138).
fn scopes(claims: &Map<String, Value>, configured: &[ScopeClaim]) -> Result<Scopes, TokenError> {
    for claim in configured {
        let Some(value) = claims.get(claim.name()) else {
            continue;
        };
        return match (claim, value) {
            (ScopeClaim::Scope | ScopeClaim::Scp, Value::String(s)) => Ok(Scopes::from_space_delimited(s)),
            (ScopeClaim::Scp | ScopeClaim::Permissions, Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().filter(|s| !s.is_empty()))
                .collect::<Option<Vec<_>>>()
                .map(Scopes::from_iter)
                .ok_or(TokenError::InvalidScopeClaim),
            _ => Err(TokenError::InvalidScopeClaim),
        };
    }
    Ok(Scopes::default())
}
