//! The claim checks of RFC 9068 §4 and the security spec's sections 6 to 8, run on the
//! claim set of a token whose signature has verified.
//!
//! jsonwebtoken's `Validation` is not used for any of this: it treats wrongly typed
//! claims as absent, accepts `iss` arrays, never checks `iat`, `jti` or `client_id`, and
//! accepts `exp == now` (security spec section 13). Each check here is explicit.
//!
//! The claim set is read once, strictly ([`json::read_object`]), into [`RawClaims`]:
//! only the claims the checks need, with strings borrowed from the decoded payload.
//! [`validate`] makes the verified facts ([`VerifiedClaims`]) in one go: they keep a copy
//! of the payload and point into it, so an accepted token costs a handful of
//! allocations, not one per claim.

use std::{borrow::Cow, ops::Range, sync::OnceLock};

use serde_json::{Map, Value};

use crate::{
    config::{Config, Profile, ScopeClaim},
    json::{self, Member, Sink},
    jws::Typ,
    rejection::TokenError,
    scope::Scopes,
};

/// How a verified [`AccessToken`](crate::AccessToken) was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verification {
    /// A JWT: its signature with the issuer's keys, then its claims.
    Jwt,
    /// The issuer's RFC 7662 introspection answer.
    Introspection,
}

/// A string of the verified claims: a range of the payload, or a copy when the JSON
/// string had escapes.
#[derive(Debug, Clone)]
enum Text {
    At(Range<usize>),
    Owned(Box<str>),
}

/// The facts of a verified access token, extracted once.
#[derive(Debug)]
pub(crate) struct VerifiedClaims {
    /// The decoded claim set (JSON text).
    payload: String,
    subject: Text,
    client_id: Option<Text>,
    audiences: Vec<Text>,
    issuer: Text,
    jti: Option<Text>,
    /// `exp` exactly as sent (a NumericDate may have a fraction).
    pub(crate) expires_at: f64,
    pub(crate) issued_at: f64,
    pub(crate) scopes: Scopes,
    /// How the token was verified: its signature, or the issuer's introspection answer.
    pub(crate) verification: Verification,
    /// A `cnf` claim (or member of the introspection answer): the token is
    /// sender-constrained (DPoP or mTLS) and is never accepted as a bearer token.
    pub(crate) bound: bool,
    raw: OnceLock<Map<String, Value>>,
}

impl VerifiedClaims {
    /// The facts of an introspection answer (RFC 7662 §2.2) that passed every check:
    /// `payload` is the answer's JSON object, the strings are copied out of it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn introspected(
        payload: String,
        subject: &str,
        client_id: Option<&str>,
        audiences: &[&str],
        issuer: &str,
        jti: Option<&str>,
        expires_at: f64,
        issued_at: f64,
        scopes: Scopes,
    ) -> Self {
        let owned = |s: &str| Text::Owned(s.into());
        // The answer passed the strict reader already; parsed once more here, its `cnf`
        // says whether the token is bound (and the map serves `raw()` afterwards).
        let raw = OnceLock::new();
        let map = json::parse_object(payload.as_bytes()).unwrap_or_default();
        let bound = map.contains_key("cnf");
        let _ = raw.set(map);
        Self {
            payload,
            subject: owned(subject),
            client_id: client_id.map(owned),
            audiences: audiences.iter().map(|a| owned(a)).collect(),
            issuer: owned(issuer),
            jti: jti.map(owned),
            expires_at,
            issued_at,
            scopes,
            verification: Verification::Introspection,
            bound,
            raw,
        }
    }

    fn text<'a>(&'a self, text: &'a Text) -> &'a str {
        match text {
            Text::At(range) => self.payload.get(range.clone()).unwrap_or_default(),
            Text::Owned(s) => s,
        }
    }

    pub(crate) fn subject(&self) -> &str {
        self.text(&self.subject)
    }

    pub(crate) fn issuer(&self) -> &str {
        self.text(&self.issuer)
    }

    pub(crate) fn client_id(&self) -> Option<&str> {
        self.client_id.as_ref().map(|t| self.text(t))
    }

    pub(crate) fn jti(&self) -> Option<&str> {
        self.jti.as_ref().map(|t| self.text(t))
    }

    pub(crate) fn audiences(&self) -> impl ExactSizeIterator<Item = &str> {
        self.audiences.iter().map(|t| self.text(t))
    }

    /// Whether these claims are still young enough for `max_token_age` at `now`: a cached
    /// result (a verified JWT or an introspection answer) past it is not served.
    pub(crate) fn within_max_age(&self, config: &Config, now: f64) -> bool {
        config.max_age.is_none_or(|max| now - self.issued_at <= max.as_secs_f64())
    }

    /// The claim set as JSON text.
    pub(crate) fn payload(&self) -> &str {
        &self.payload
    }

    /// `cnf.jkt`: the thumbprint of the DPoP key the token is bound to (RFC 9449 §6).
    pub(crate) fn jkt(&self) -> Option<&str> {
        if !self.bound {
            return None;
        }
        match self.raw().get("cnf")? {
            Value::Object(cnf) => cnf.get("jkt")?.as_str().filter(|jkt| !jkt.is_empty()),
            _ => None,
        }
    }

    /// Every claim, parsed on first use.
    pub(crate) fn raw(&self) -> &Map<String, Value> {
        // The payload already passed the strict reader, so this parse succeeds; an empty
        // map would be the answer if the two readers ever disagreed.
        self.raw.get_or_init(|| json::parse_object(self.payload.as_bytes()).unwrap_or_default())
    }
}

#[cfg(test)]
impl VerifiedClaims {
    /// Claims with only an expiry, for unit tests of the cache.
    pub(crate) fn for_tests(expires_at: f64) -> Self {
        Self {
            payload: "{}".to_owned(),
            subject: Text::Owned("s".into()),
            client_id: None,
            audiences: Vec::new(),
            issuer: Text::Owned("i".into()),
            jti: None,
            expires_at,
            issued_at: 0.0,
            scopes: Scopes::default(),
            verification: Verification::Jwt,
            bound: false,
            raw: OnceLock::new(),
        }
    }
}

/// Which audience a request must carry.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AudienceCheck<'a> {
    /// Any of the `Authority`'s configured audiences.
    Configured,
    /// Exactly this one (a handler's `aud = "…"`).
    Exact(&'a str),
}

/// The claims the checks read, as found in the token.
#[derive(Debug, Default)]
pub(crate) struct RawClaims<'p> {
    iss: Option<Member<'p>>,
    sub: Option<Member<'p>>,
    aud: Option<Member<'p>>,
    exp: Option<Member<'p>>,
    nbf: Option<Member<'p>>,
    iat: Option<Member<'p>>,
    client_id: Option<Member<'p>>,
    azp: Option<Member<'p>>,
    cid: Option<Member<'p>>,
    jti: Option<Member<'p>>,
    scope: Option<Member<'p>>,
    scp: Option<Member<'p>>,
    permissions: Option<Member<'p>>,
    /// Vendor type claim (Keycloak: `Bearer`, `ID`, `Refresh`).
    typ: Option<Member<'p>>,
    /// Entra ID: the tenant, and (v1.0) the client.
    tid: Option<Member<'p>>,
    appid: Option<Member<'p>>,
    /// Entra ID app roles.
    roles: Option<Member<'p>>,
    /// Amazon Cognito: `access` or `id`.
    token_use: Option<Member<'p>>,
    /// Keycloak's role objects, read from the payload only when asked for.
    realm_access: bool,
    resource_access: bool,
    /// `nonce`, `at_hash` or `c_hash`: claims only ID tokens carry (OIDC Core §2,
    /// §3.1.3.6, §3.3.2.11).
    id_token_claims: bool,
    /// `cnf`: a sender-constrained token.
    cnf: bool,
}

impl<'p> RawClaims<'p> {
    /// Reads a claim set strictly.
    pub(crate) fn read(payload: &'p str) -> Result<Self, TokenError> {
        let mut claims = RawClaims::default();
        json::read_object(payload.as_bytes(), &mut claims).map_err(|_| TokenError::Malformed)?;
        Ok(claims)
    }

    /// `iss`, for logs.
    pub(crate) fn iss(&self) -> Option<&str> {
        self.iss.as_ref().and_then(Member::as_str)
    }

    /// `jti`, for logs.
    pub(crate) fn jti(&self) -> Option<&str> {
        self.jti.as_ref().and_then(Member::as_str)
    }

    /// Whether the claim set has the shape of an OpenID Connect ID token rather than an
    /// access token: ID-token claims, a vendor `typ` of `ID`, or none of the claims an
    /// access token carries (`client_id` or a scope claim).
    fn looks_like_id_token(&self) -> bool {
        self.id_token_claims
            || self.typ.as_ref().and_then(Member::as_str) == Some("ID")
            || !(self.client_id.is_some() || self.scope.is_some() || self.scp.is_some() || self.permissions.is_some())
    }
}

impl<'p> Sink<'p> for RawClaims<'p> {
    fn wants(&self, name: &str) -> bool {
        matches!(
            name,
            "iss"
                | "sub"
                | "aud"
                | "exp"
                | "nbf"
                | "iat"
                | "client_id"
                | "azp"
                | "cid"
                | "jti"
                | "scope"
                | "scp"
                | "permissions"
                | "typ"
                | "tid"
                | "appid"
                | "roles"
                | "token_use"
        )
    }

    fn member(&mut self, name: &str, value: Option<Member<'p>>) {
        let slot = match name {
            "iss" => &mut self.iss,
            "sub" => &mut self.sub,
            "aud" => &mut self.aud,
            "exp" => &mut self.exp,
            "nbf" => &mut self.nbf,
            "iat" => &mut self.iat,
            "client_id" => &mut self.client_id,
            "azp" => &mut self.azp,
            "cid" => &mut self.cid,
            "jti" => &mut self.jti,
            "scope" => &mut self.scope,
            "scp" => &mut self.scp,
            "permissions" => &mut self.permissions,
            "typ" => &mut self.typ,
            "tid" => &mut self.tid,
            "appid" => &mut self.appid,
            "roles" => &mut self.roles,
            "token_use" => &mut self.token_use,
            "realm_access" => {
                self.realm_access = true;
                return;
            }
            "resource_access" => {
                self.resource_access = true;
                return;
            }
            "nonce" | "at_hash" | "c_hash" => {
                self.id_token_claims = true;
                return;
            }
            "cnf" => {
                self.cnf = true;
                return;
            }
            _ => return,
        };
        *slot = value;
    }
}

/// Checks every claim and extracts the verified facts of a JWT. `payload` is the text
/// `claims` was read from: the facts keep a copy of it and point into that.
pub(crate) fn validate(
    payload: &str,
    claims: &RawClaims<'_>,
    typ: Typ,
    config: &Config,
    audience: AudienceCheck<'_>,
    now: f64,
) -> Result<VerifiedClaims, TokenError> {
    // The token type and ID-token markers first: an ID token is reported as such.
    match claims.typ.as_ref().and_then(Member::as_str) {
        Some("ID") => return Err(TokenError::IdToken),
        Some("Refresh" | "Logout") => return Err(TokenError::NotAnAccessToken),
        _ => {}
    }
    match (typ, config.profile) {
        (Typ::AccessToken, _) | (Typ::Jwt | Typ::Absent, Profile::Compatible) => {}
        _ if claims.looks_like_id_token() => return Err(TokenError::IdToken),
        _ => return Err(TokenError::NotAnAccessToken),
    }
    if claims.id_token_claims && (config.reject_id_token_claims || typ != Typ::AccessToken) {
        return Err(TokenError::IdToken);
    }
    // Cognito marks its ID tokens `token_use: id`, its access tokens `access`.
    if config.require_token_use {
        match claims.token_use.as_ref().and_then(Member::as_str) {
            Some("access") => {}
            Some("id") => return Err(TokenError::IdToken),
            _ => return Err(TokenError::NotAnAccessToken),
        }
    }

    let issuer = match &claims.iss {
        Some(Member::Str(iss)) if config.trusts_issuer(iss) => iss,
        _ => return Err(TokenError::InvalidIssuer),
    };
    // A tenant template (Entra ID multi-tenant) holds only for the token's own tenant.
    if let Some(tenant) = config.tenant_of(issuer)
        && claims.tid.as_ref().and_then(Member::as_str) != Some(tenant)
    {
        return Err(TokenError::InvalidIssuer);
    }

    // No configured audience (Cognito, whose access tokens carry none): a token without
    // `aud` is accepted for the configured check, its client checked by the allowlist the
    // builder then requires.
    let audiences = match claims.aud.as_ref() {
        None if config.audiences.is_empty() => Vec::new(),
        aud => audiences(aud).ok_or(TokenError::InvalidAudience)?,
    };
    if config.require_single_audience && audiences.len() != 1 {
        return Err(TokenError::InvalidAudience);
    }
    if !audience_matches(audiences.iter().map(|a| a.as_ref()), config, audience) {
        return Err(TokenError::InvalidAudience);
    }

    let leeway = config.leeway.as_secs_f64();
    let exp = numeric_date(claims.exp.as_ref())?.ok_or(TokenError::InvalidClaim)?;
    let iat = numeric_date(claims.iat.as_ref())?.ok_or(TokenError::InvalidClaim)?;
    let nbf = numeric_date(claims.nbf.as_ref())?;
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

    let subject = identifier(claims.sub.as_ref())?.ok_or(TokenError::InvalidClaim)?;
    let client_id = match config.profile {
        Profile::Rfc9068 => Some(identifier(claims.client_id.as_ref())?.ok_or(TokenError::InvalidClaim)?),
        Profile::Compatible => {
            let mut found = None;
            let appid = if config.appid_names_client { &claims.appid } else { &None };
            for claim in [&claims.client_id, &claims.azp, &claims.cid, appid] {
                if let Some(id) = identifier(claim.as_ref())? {
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
    };
    let jti = match (identifier(claims.jti.as_ref())?, config.profile) {
        (None, Profile::Rfc9068) => return Err(TokenError::InvalidClaim),
        (jti, _) => jti,
    };

    if let Some(allowed) = &config.allowed_clients
        && !client_id.is_some_and(|id| allowed.iter().any(|a| **a == *id))
    {
        return Err(TokenError::ClientNotAllowed);
    }

    let scopes = scopes(payload, claims, config)?;
    let text = |s: &Cow<'_, str>| locate(payload, s);
    Ok(VerifiedClaims {
        subject: text(subject),
        client_id: client_id.map(text),
        audiences: audiences.iter().map(|a| text(a)).collect(),
        issuer: text(issuer),
        jti: jti.map(text),
        expires_at: exp,
        issued_at: iat,
        scopes,
        verification: Verification::Jwt,
        // `cnf` is present: only the DPoP scheme, with a proof for `cnf.jkt`, may present it.
        bound: claims.cnf,
        raw: OnceLock::new(),
        // The ranges above are offsets into `payload`, so they hold in the copy.
        payload: payload.to_owned(),
    })
}

/// Where a string read from `payload` lies in it: a range when it points into the
/// payload (a JSON string without escapes is borrowed from it), a copy otherwise.
fn locate(payload: &str, s: &str) -> Text {
    let start = (s.as_ptr() as usize).wrapping_sub(payload.as_ptr() as usize);
    let range = start..start.wrapping_add(s.len());
    match payload.get(range.clone()) {
        Some(found) if std::ptr::eq(found, s) => Text::At(range),
        _ => Text::Owned(s.into()),
    }
}

/// Whether one of `audiences` is the one asked for.
pub(crate) fn audience_matches<'a>(
    mut audiences: impl Iterator<Item = &'a str>,
    config: &Config,
    check: AudienceCheck<'_>,
) -> bool {
    match check {
        // Only a token with no `aud` gets here with none configured (see `validate`).
        AudienceCheck::Configured if config.audiences.is_empty() => audiences.next().is_none(),
        AudienceCheck::Configured => audiences.any(|a| config.audiences.iter().any(|c| **c == *a)),
        AudienceCheck::Exact(wanted) => audiences.any(|a| a == wanted),
    }
}

/// `aud` as a non-empty string or a non-empty array of non-empty strings.
fn audiences<'a, 'p>(aud: Option<&'a Member<'p>>) -> Option<Vec<&'a Cow<'p, str>>> {
    match aud? {
        Member::Str(a) if !a.is_empty() => Some(vec![a]),
        Member::StrList(items) if !items.is_empty() && items.iter().all(|a| !a.is_empty()) => {
            Some(items.iter().collect())
        }
        _ => None,
    }
}

/// The latest NumericDate accepted: 2^53 seconds, where `f64` is still exact.
const MAX_NUMERIC_DATE: f64 = 9_007_199_254_740_992.0;

/// A NumericDate claim (RFC 7519 §2): absent, or a positive JSON number (fractions
/// allowed). Strings, booleans, null, zero, negatives and absurd values are malformed.
fn numeric_date(value: Option<&Member<'_>>) -> Result<Option<f64>, TokenError> {
    match value {
        None => Ok(None),
        Some(Member::Num(t)) if t.is_finite() && *t > 0.0 && *t < MAX_NUMERIC_DATE => Ok(Some(*t)),
        Some(_) => Err(TokenError::InvalidClaim),
    }
}

/// A claim that must be a string when present.
fn string<'a, 'p>(value: Option<&'a Member<'p>>) -> Result<Option<&'a Cow<'p, str>>, TokenError> {
    match value {
        None => Ok(None),
        Some(Member::Str(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::InvalidClaim),
    }
}

/// An identifier claim (`sub`, `client_id`, `azp`, `cid`, `jti`): absent, or a non-empty
/// string. An empty one identifies no one and is refused as such, not skipped.
fn identifier<'a, 'p>(value: Option<&'a Member<'p>>) -> Result<Option<&'a Cow<'p, str>>, TokenError> {
    match string(value)? {
        Some(s) if s.is_empty() => Err(TokenError::EmptyClaim),
        found => Ok(found),
    }
}

/// The granted scopes from the first configured scope claim the token carries. Claims are
/// never merged (case 138).
fn scopes(payload: &str, claims: &RawClaims<'_>, config: &Config) -> Result<Scopes, TokenError> {
    for claim in &config.scope_claims {
        let value = match claim {
            ScopeClaim::Scope => &claims.scope,
            ScopeClaim::Scp => &claims.scp,
            ScopeClaim::Permissions => &claims.permissions,
            ScopeClaim::Roles => &claims.roles,
            ScopeClaim::RealmRoles | ScopeClaim::ClientRoles => {
                match keycloak_roles(payload, claims, *claim, config)? {
                    Some(scopes) => return Ok(scopes),
                    None => continue,
                }
            }
        };
        let Some(value) = value else {
            continue;
        };
        return match (claim, value) {
            (ScopeClaim::Scope | ScopeClaim::Scp, Member::Str(s)) => Ok(Scopes::from_space_delimited(s)),
            (ScopeClaim::Scp | ScopeClaim::Permissions | ScopeClaim::Roles, Member::StrList(items)) => {
                if items.iter().any(|s| s.is_empty()) {
                    Err(TokenError::InvalidScopeClaim)
                } else {
                    Ok(items.iter().map(|s| &**s).collect())
                }
            }
            _ => Err(TokenError::InvalidScopeClaim),
        };
    }
    Ok(Scopes::default())
}

/// Keycloak's roles as scopes: `realm_access.roles`, or `resource_access.{client}.roles`
/// for the first configured audience that has an entry. `None` when the token has none;
/// a role list that is not an array of non-empty strings is refused. The payload is
/// parsed again only for an authority that asked for roles.
fn keycloak_roles(
    payload: &str,
    claims: &RawClaims<'_>,
    claim: ScopeClaim,
    config: &Config,
) -> Result<Option<Scopes>, TokenError> {
    let present = if claim == ScopeClaim::RealmRoles { claims.realm_access } else { claims.resource_access };
    if !present {
        return Ok(None);
    }
    let parsed = json::parse_object(payload.as_bytes()).map_err(|_| TokenError::Malformed)?;
    let holder = if claim == ScopeClaim::RealmRoles {
        parsed.get("realm_access")
    } else {
        let clients = parsed.get("resource_access").and_then(Value::as_object);
        config.audiences.iter().find_map(|a| clients.and_then(|c| c.get(&**a)))
    };
    let Some(holder) = holder else {
        return Ok(None);
    };
    let Some(roles) = holder.as_object().ok_or(TokenError::InvalidScopeClaim)?.get("roles") else {
        return Ok(None);
    };
    let roles = roles.as_array().ok_or(TokenError::InvalidScopeClaim)?;
    let names: Option<Vec<&str>> = roles.iter().map(|r| r.as_str().filter(|s| !s.is_empty())).collect();
    names.map(|n| Some(n.into_iter().collect())).ok_or(TokenError::InvalidScopeClaim)
}
