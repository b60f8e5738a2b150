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
        json::read_text_object(payload, &mut claims).map_err(|_| TokenError::Malformed)?;
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

#[cfg(test)]
mod tests {
    //! The claim checks judged directly: a claim set (JSON), the configuration and the
    //! time, with no signature in between, so each bound is met exactly.

    use std::{sync::Arc, time::Duration};

    use serde_json::{Value, json};

    use super::*;

    const ISS: &str = "https://issuer.test/";
    const AUD: &str = "https://api.test";
    const NOW: f64 = 1_800_000_000.0;

    /// The builder's defaults, for one issuer and audience: the claim checks' settings of
    /// an authority built by `AuthorityBuilder` itself, so that a changed default there is
    /// a changed default here. Its keys (a shared secret) play no part in the claim checks.
    fn config() -> Config {
        let authority = crate::Authority::builder()
            .issuer(ISS)
            .audience(AUD)
            .shared_secret(crate::Algorithm::HS256, [7u8; 32])
            .build()
            .expect("the builder accepts one issuer, one audience and a shared secret");
        let Ok(inner) = Arc::try_unwrap(authority.inner) else { panic!("a built authority has no other handle") };
        inner.config
    }

    fn compatible() -> Config {
        Config { profile: Profile::Compatible, ..config() }
    }

    /// An RFC 9068 claim set issued now, valid for five minutes.
    fn claims() -> Value {
        json!({
            "iss": ISS, "sub": "alice", "aud": AUD, "client_id": "app", "jti": "j-1",
            "iat": NOW, "exp": NOW + 300.0, "scope": "read write",
        })
    }

    /// `claims()` with these members set (`null` removes one).
    #[allow(clippy::needless_pass_by_value)]
    fn with(changes: Value) -> Value {
        let mut claims = claims();
        if let (Some(object), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
            for (name, value) in changes {
                if value.is_null() {
                    object.remove(name);
                } else {
                    object.insert(name.clone(), value.clone());
                }
            }
        }
        claims
    }

    fn judge(
        claims: &Value,
        typ: Typ,
        config: &Config,
        audience: AudienceCheck<'_>,
        now: f64,
    ) -> Result<VerifiedClaims, TokenError> {
        let payload = claims.to_string();
        let raw = RawClaims::read(&payload)?;
        validate(&payload, &raw, typ, config, audience, now)
    }

    /// The error of an `at+jwt` token with `claims` under `config` at `now`, `None` when accepted.
    fn refusal_at(claims: &Value, config: &Config, now: f64) -> Option<TokenError> {
        judge(claims, Typ::AccessToken, config, AudienceCheck::Configured, now).err()
    }

    fn refusal(claims: &Value, config: &Config) -> Option<TokenError> {
        refusal_at(claims, config, NOW)
    }

    fn typed_refusal(claims: &Value, typ: Typ, config: &Config) -> Option<TokenError> {
        judge(claims, typ, config, AudienceCheck::Configured, NOW).err()
    }

    fn accepted(claims: &Value, config: &Config) -> VerifiedClaims {
        match judge(claims, Typ::AccessToken, config, AudienceCheck::Configured, NOW) {
            Ok(facts) => facts,
            Err(e) => panic!("refused with {e:?}: {claims}"),
        }
    }

    fn scopes_of(facts: &VerifiedClaims) -> Vec<&str> {
        facts.scopes.iter().collect()
    }

    #[test]
    fn the_verified_facts_are_the_claims_of_the_token() {
        let facts = accepted(&claims(), &config());
        assert_eq!(facts.subject(), "alice");
        assert_eq!(facts.issuer(), ISS);
        assert_eq!(facts.client_id(), Some("app"));
        assert_eq!(facts.jti(), Some("j-1"));
        assert_eq!(facts.audiences().collect::<Vec<_>>(), [AUD]);
        assert_eq!((facts.expires_at, facts.issued_at), (NOW + 300.0, NOW));
        assert_eq!(scopes_of(&facts), ["read", "write"]);
        assert_eq!(facts.verification, Verification::Jwt);
        assert!(!facts.bound);
        assert_eq!(facts.payload(), claims().to_string());
        assert_eq!(facts.raw().get("sub"), Some(&json!("alice")));
        assert_eq!(facts.jkt(), None);

        // A string with an escape is copied out, unescaped.
        let payload = claims().to_string().replace("\"alice\"", "\"al\\u0069ce\"");
        let raw = RawClaims::read(&payload).expect("reads");
        let facts =
            validate(&payload, &raw, Typ::AccessToken, &config(), AudienceCheck::Configured, NOW).expect("accepted");
        assert_eq!(facts.subject(), "alice");
        assert_eq!(facts.issuer(), ISS);
    }

    #[test]
    fn the_issuer_and_jti_are_read_for_the_logs_and_a_malformed_claim_set_is_refused() {
        let payload = claims().to_string();
        let raw = RawClaims::read(&payload).expect("reads");
        assert_eq!((raw.iss(), raw.jti()), (Some(ISS), Some("j-1")));
        let payload = json!({"iss": 7, "jti": ["j"]}).to_string();
        let raw = RawClaims::read(&payload).expect("reads");
        assert_eq!((raw.iss(), raw.jti()), (None, None));
        assert_eq!(RawClaims::read("{\"iss\": 1").err(), Some(TokenError::Malformed));
        assert_eq!(RawClaims::read("{\"sub\": \"a\", \"sub\": \"b\"}").err(), Some(TokenError::Malformed));
    }

    #[test]
    fn a_cnf_claim_binds_the_token_and_its_jkt_is_the_dpop_thumbprint() {
        let facts = accepted(&with(json!({"cnf": {"jkt": "thumb"}})), &config());
        assert!(facts.bound);
        assert_eq!(facts.jkt(), Some("thumb"));
        assert!(accepted(&with(json!({"cnf": {"jkt": ""}})), &config()).jkt().is_none());
        assert!(accepted(&with(json!({"cnf": {"x5t#S256": "t"}})), &config()).jkt().is_none());
        let facts = accepted(&with(json!({"cnf": "thumb"})), &config());
        assert!(facts.bound);
        assert_eq!(facts.jkt(), None);
    }

    #[test]
    fn within_max_age_holds_up_to_the_exact_maximum_age() {
        let facts = accepted(&claims(), &config());
        let aged = Config { max_age: Some(Duration::from_secs(100)), ..config() };
        assert!(facts.within_max_age(&aged, NOW));
        assert!(facts.within_max_age(&aged, NOW + 100.0));
        assert!(!facts.within_max_age(&aged, NOW + 100.5));
        assert!(facts.within_max_age(&config(), NOW + 1e6));
    }

    #[test]
    fn a_typ_claim_of_id_refresh_or_logout_is_refused_whatever_the_header_says() {
        for (typ, error) in [
            ("ID", TokenError::IdToken),
            ("Refresh", TokenError::NotAnAccessToken),
            ("Logout", TokenError::NotAnAccessToken),
        ] {
            assert_eq!(refusal(&with(json!({"typ": typ})), &config()), Some(error), "{typ}");
            assert_eq!(refusal(&with(json!({"typ": typ})), &compatible()), Some(error), "{typ}");
        }
        assert_eq!(refusal(&with(json!({"typ": "Bearer"})), &config()), None);
    }

    #[test]
    fn a_token_not_typed_at_jwt_is_told_apart_as_an_id_token_or_another_jwt_by_its_claims() {
        let none = json!({"client_id": null, "scope": null});
        // Any one of the claims an access token carries makes it "not an access token".
        for only in [
            json!({"client_id": "app"}),
            json!({"scope": "read"}),
            json!({"scp": "read"}),
            json!({"permissions": ["read"]}),
        ] {
            let mut claims = with(none.clone());
            for (name, value) in only.as_object().into_iter().flatten() {
                claims[name] = value.clone();
            }
            for typ in [Typ::Jwt, Typ::Absent, Typ::Other] {
                assert_eq!(
                    typed_refusal(&claims, typ, &config()),
                    Some(TokenError::NotAnAccessToken),
                    "{only} {typ:?}"
                );
            }
        }
        // None of them, or an ID-token claim: an ID token.
        assert_eq!(typed_refusal(&with(none), Typ::Jwt, &config()), Some(TokenError::IdToken));
        for claim in ["nonce", "at_hash", "c_hash"] {
            assert_eq!(
                typed_refusal(&with(json!({claim: "n"})), Typ::Jwt, &config()),
                Some(TokenError::IdToken),
                "{claim}"
            );
        }
        // The compatible profile takes `JWT` and untyped tokens, not other types.
        assert_eq!(typed_refusal(&claims(), Typ::Jwt, &compatible()), None);
        assert_eq!(typed_refusal(&claims(), Typ::Absent, &compatible()), None);
        assert_eq!(typed_refusal(&claims(), Typ::Other, &compatible()), Some(TokenError::NotAnAccessToken));
    }

    #[test]
    fn id_token_claims_are_refused_unless_allowed_and_then_only_in_an_at_jwt() {
        let nonce = with(json!({"nonce": "n"}));
        assert_eq!(refusal(&nonce, &config()), Some(TokenError::IdToken));
        let lenient = Config { reject_id_token_claims: false, ..compatible() };
        assert_eq!(refusal(&nonce, &lenient), None);
        assert_eq!(typed_refusal(&nonce, Typ::Jwt, &lenient), Some(TokenError::IdToken));
        assert_eq!(typed_refusal(&nonce, Typ::Absent, &lenient), Some(TokenError::IdToken));
        assert_eq!(typed_refusal(&claims(), Typ::Jwt, &lenient), None);
    }

    #[test]
    fn with_token_use_required_only_access_is_accepted() {
        let cognito = Config { require_token_use: true, ..compatible() };
        assert_eq!(refusal(&with(json!({"token_use": "access"})), &cognito), None);
        assert_eq!(refusal(&with(json!({"token_use": "id"})), &cognito), Some(TokenError::IdToken));
        assert_eq!(refusal(&with(json!({"token_use": "refresh"})), &cognito), Some(TokenError::NotAnAccessToken));
        assert_eq!(refusal(&claims(), &cognito), Some(TokenError::NotAnAccessToken));
        assert_eq!(refusal(&claims(), &compatible()), None);
    }

    #[test]
    fn the_issuer_must_be_the_configured_string_and_a_tenant_template_the_tokens_own_tenant() {
        assert_eq!(refusal(&with(json!({"iss": "https://issuer.test"})), &config()), Some(TokenError::InvalidIssuer));
        assert_eq!(refusal(&with(json!({"iss": null})), &config()), Some(TokenError::InvalidIssuer));
        let entra = Config {
            issuer: "https://login.test/{tenantid}/v2.0".into(),
            tenants: Some(vec!["t1".into(), "t2".into()]),
            ..compatible()
        };
        let t1 = with(json!({"iss": "https://login.test/t1/v2.0", "tid": "t1"}));
        assert_eq!(refusal(&t1, &entra), None);
        let mut other = t1;
        other["tid"] = json!("t2");
        assert_eq!(refusal(&other, &entra), Some(TokenError::InvalidIssuer));
        other["tid"] = Value::Null;
        assert_eq!(refusal(&other, &entra), Some(TokenError::InvalidIssuer));
        let t3 = with(json!({"iss": "https://login.test/t3/v2.0", "tid": "t3"}));
        assert_eq!(refusal(&t3, &entra), Some(TokenError::InvalidIssuer));
    }

    #[test]
    fn aud_is_a_non_empty_string_or_array_of_non_empty_strings_naming_the_audience() {
        for aud in [json!([AUD]), json!(["https://other.test", AUD]), json!([AUD, AUD])] {
            let facts = accepted(&with(json!({"aud": aud})), &config());
            assert!(facts.audiences().any(|a| a == AUD), "{aud}");
        }
        assert_eq!(accepted(&with(json!({"aud": ["https://other.test", AUD]})), &config()).audiences().count(), 2);
        for aud in [
            json!(""),
            json!([]),
            json!([""]),
            json!(["", AUD]),
            json!([AUD, ""]),
            json!("https://other.test"),
            json!(["https://other.test"]),
            json!(7),
            Value::Null,
        ] {
            assert_eq!(refusal(&with(json!({"aud": aud})), &config()), Some(TokenError::InvalidAudience), "{aud}");
        }
    }

    #[test]
    fn require_single_audience_refuses_a_token_for_two() {
        let two = with(json!({"aud": [AUD, "https://other.test"]}));
        assert_eq!(refusal(&two, &config()), None);
        let single = Config { require_single_audience: true, ..config() };
        assert_eq!(refusal(&two, &single), Some(TokenError::InvalidAudience));
        assert_eq!(refusal(&with(json!({"aud": [AUD]})), &single), None);
        assert_eq!(refusal(&claims(), &single), None);
    }

    #[test]
    fn a_handlers_audience_is_matched_exactly_among_the_tokens() {
        let for_other = |aud: Value| {
            judge(
                &with(json!({"aud": aud})),
                Typ::AccessToken,
                &config(),
                AudienceCheck::Exact("https://other.test"),
                NOW,
            )
            .err()
        };
        assert_eq!(for_other(json!("https://other.test")), None);
        assert_eq!(for_other(json!([AUD, "https://other.test"])), None);
        assert_eq!(for_other(json!(AUD)), Some(TokenError::InvalidAudience));
        assert_eq!(for_other(json!("https://other.test/")), Some(TokenError::InvalidAudience));
    }

    #[test]
    fn with_no_audience_configured_only_a_token_without_aud_passes_the_configured_check() {
        let cognito = Config { audiences: Vec::new(), allowed_clients: Some(vec!["app".into()]), ..compatible() };
        let facts = accepted(&with(json!({"aud": null})), &cognito);
        assert_eq!(facts.audiences().count(), 0);
        for aud in [json!(AUD), json!([]), json!([AUD]), json!("")] {
            assert_eq!(refusal(&with(json!({"aud": aud})), &cognito), Some(TokenError::InvalidAudience), "{aud}");
        }
        // Configured audiences: a token without `aud` is refused.
        assert_eq!(refusal(&with(json!({"aud": null})), &config()), Some(TokenError::InvalidAudience));
    }

    #[test]
    fn exp_holds_until_the_leeway_past_it() {
        let exp = NOW + 300.0;
        let leeway = 60.0;
        assert_eq!(refusal_at(&claims(), &config(), exp + leeway - 0.5), None);
        assert_eq!(refusal_at(&claims(), &config(), exp), None);
        assert_eq!(refusal_at(&claims(), &config(), exp + leeway), Some(TokenError::Expired));
        assert_eq!(refusal_at(&claims(), &config(), exp + 1e6), Some(TokenError::Expired));
    }

    #[test]
    fn nbf_and_iat_may_be_at_most_the_leeway_ahead() {
        for (claim, error) in [("nbf", TokenError::NotYetValid), ("iat", TokenError::IssuedInFuture)] {
            for (at, expected) in [(NOW, None), (NOW + 30.0, None), (NOW + 60.0, None), (NOW + 61.0, Some(error))] {
                assert_eq!(refusal(&with(json!({claim: at})), &config()), expected, "{claim} now + {}", at - NOW);
            }
        }
        assert_eq!(refusal(&with(json!({"nbf": NOW - 1e6})), &config()), None);
    }

    #[test]
    fn the_lifetime_is_bounded_both_from_now_and_from_iat() {
        let hour = Config { max_lifetime: Duration::from_secs(3600), ..config() };
        let times = |iat: f64, exp: f64| with(json!({"iat": NOW + iat, "exp": NOW + exp}));
        // exp - now: iat ahead (within the leeway) keeps exp - iat below the bound.
        assert_eq!(refusal(&times(60.0, 3600.0), &hour), None);
        assert_eq!(refusal(&times(60.0, 3601.0), &hour), Some(TokenError::LifetimeExceeded));
        // exp - iat: iat past keeps exp - now below the bound.
        assert_eq!(refusal(&times(-50.0, 3550.0), &hour), None);
        assert_eq!(refusal(&times(-100.0, 3550.0), &hour), Some(TokenError::LifetimeExceeded));
    }

    #[test]
    fn max_token_age_refuses_a_token_issued_longer_ago() {
        let aged = Config { max_age: Some(Duration::from_secs(100)), ..config() };
        let issued = |ago: f64| with(json!({"iat": NOW - ago}));
        assert_eq!(refusal(&issued(0.0), &aged), None);
        assert_eq!(refusal(&issued(100.0), &aged), None);
        assert_eq!(refusal(&issued(101.0), &aged), Some(TokenError::LifetimeExceeded));
        assert_eq!(refusal(&issued(101.0), &config()), None);
    }

    #[test]
    fn a_numeric_date_is_a_positive_number_below_2_pow_53() {
        for claim in ["exp", "iat", "nbf"] {
            for value in [
                json!(0),
                json!(-1),
                json!(9_007_199_254_740_992.0_f64),
                json!(1e300),
                json!("1800000000"),
                json!(true),
            ] {
                assert_eq!(
                    refusal(&with(json!({claim: value})), &config()),
                    Some(TokenError::InvalidClaim),
                    "{claim}: {value}"
                );
            }
        }
        assert_eq!(refusal(&with(json!({"exp": null})), &config()), Some(TokenError::InvalidClaim));
        assert_eq!(refusal(&with(json!({"iat": null})), &config()), Some(TokenError::InvalidClaim));
        assert_eq!(refusal(&with(json!({"nbf": 1})), &config()), None);
        assert_eq!(refusal(&with(json!({"iat": NOW - 0.25, "exp": NOW + 0.5})), &config()), None);
    }

    #[test]
    fn identifiers_are_non_empty_strings_and_required_in_rfc_9068() {
        for claim in ["sub", "client_id", "jti"] {
            assert_eq!(refusal(&with(json!({claim: ""})), &config()), Some(TokenError::EmptyClaim), "{claim}");
            assert_eq!(refusal(&with(json!({claim: 7})), &config()), Some(TokenError::InvalidClaim), "{claim}");
            assert_eq!(refusal(&with(json!({claim: null})), &config()), Some(TokenError::InvalidClaim), "{claim}");
        }
        // In the compatible profile `jti` is optional, `sub` is not.
        let facts = accepted(&with(json!({"jti": null})), &compatible());
        assert_eq!(facts.jti(), None);
        assert_eq!(refusal(&with(json!({"sub": null})), &compatible()), Some(TokenError::InvalidClaim));
    }

    #[test]
    fn the_compatible_profile_finds_the_client_in_client_id_azp_cid_then_appid() {
        let named = |changes: Value, config: &Config, typ: Typ| {
            judge(&with(changes), typ, config, AudienceCheck::Configured, NOW).map(|f| f.client_id().map(str::to_owned))
        };
        let entra_v1 = Config { appid_names_client: true, ..compatible() };
        assert_eq!(named(json!({"client_id": null, "azp": "spa"}), &compatible(), Typ::Jwt), Ok(Some("spa".into())));
        assert_eq!(named(json!({"client_id": null, "cid": "okta"}), &compatible(), Typ::Jwt), Ok(Some("okta".into())));
        assert_eq!(named(json!({"client_id": null, "appid": "v1"}), &entra_v1, Typ::Jwt), Ok(Some("v1".into())));
        assert_eq!(named(json!({"azp": "spa"}), &compatible(), Typ::Jwt), Ok(Some("app".into())));
        // `appid` only where it names the client; a `JWT` must name one, an `at+jwt` need not.
        assert_eq!(
            named(json!({"client_id": null, "appid": "v1"}), &compatible(), Typ::Jwt),
            Err(TokenError::InvalidClaim)
        );
        assert_eq!(named(json!({"client_id": null}), &compatible(), Typ::Absent), Err(TokenError::InvalidClaim));
        assert_eq!(named(json!({"client_id": null}), &compatible(), Typ::AccessToken), Ok(None));
    }

    #[test]
    fn allowed_clients_accepts_only_the_listed_clients_byte_for_byte() {
        let only_app = Config { allowed_clients: Some(vec!["app".into()]), ..compatible() };
        assert_eq!(refusal(&claims(), &only_app), None);
        for client in [json!("intruder"), json!("App"), json!("app "), Value::Null] {
            assert_eq!(
                refusal(&with(json!({"client_id": client})), &only_app),
                Some(TokenError::ClientNotAllowed),
                "{client}"
            );
        }
        let two = Config { allowed_clients: Some(vec!["mobile".into(), "app".into()]), ..config() };
        assert_eq!(refusal(&claims(), &two), None);
    }

    #[test]
    fn scopes_come_from_the_first_configured_claim_the_token_carries() {
        let from = |claims: &[ScopeClaim], changes: Value| {
            let config = Config { scope_claims: claims.to_vec(), ..compatible() };
            judge(&with(changes), Typ::AccessToken, &config, AudienceCheck::Configured, NOW)
                .map(|f| f.scopes.iter().map(str::to_owned).collect::<Vec<_>>())
        };
        use ScopeClaim::*;
        let list = |s: &[&str]| Ok(s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(from(&[Scope], json!({})), list(&["read", "write"]));
        assert_eq!(from(&[Scp], json!({"scp": "a b"})), list(&["a", "b"]));
        assert_eq!(from(&[Scp], json!({"scp": ["a", "b"]})), list(&["a", "b"]));
        assert_eq!(from(&[Permissions], json!({"permissions": ["p"]})), list(&["p"]));
        assert_eq!(from(&[Roles], json!({"roles": ["r"]})), list(&["r"]));
        assert_eq!(from(&[Scp, Roles], json!({"roles": ["r"]})), list(&["r"]));
        assert_eq!(from(&[Scp, Scope], json!({"scp": ["s"]})), list(&["s"]));
        assert_eq!(from(&[Scp], json!({})), list(&[]));
        for (claims, changes) in [
            (&[Scp][..], json!({"scp": ["a", ""]})),
            (&[Scope][..], json!({"scope": ["read"]})),
            (&[Permissions][..], json!({"permissions": "p"})),
            (&[Roles][..], json!({"roles": 7})),
        ] {
            assert_eq!(from(claims, changes.clone()), Err(TokenError::InvalidScopeClaim), "{changes}");
        }
    }

    #[test]
    fn keycloak_roles_are_read_from_realm_access_or_the_audiences_resource_access() {
        let from = |claim: ScopeClaim, changes: Value| {
            let config = Config { scope_claims: vec![claim, ScopeClaim::Scope], ..compatible() };
            judge(&with(changes), Typ::AccessToken, &config, AudienceCheck::Configured, NOW)
                .map(|f| f.scopes.iter().map(str::to_owned).collect::<Vec<_>>())
        };
        let list = |s: &[&str]| Ok(s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        let realm = json!({"realm_access": {"roles": ["admin", "user"]}});
        let client = json!({"resource_access": {"other": {"roles": ["no"]}, AUD: {"roles": ["editor"]}}});
        assert_eq!(from(ScopeClaim::RealmRoles, realm.clone()), list(&["admin", "user"]));
        assert_eq!(from(ScopeClaim::ClientRoles, client.clone()), list(&["editor"]));
        // The other kind of roles, or none: the next claim (`scope`).
        assert_eq!(from(ScopeClaim::RealmRoles, client), list(&["read", "write"]));
        assert_eq!(from(ScopeClaim::ClientRoles, realm), list(&["read", "write"]));
        assert_eq!(from(ScopeClaim::RealmRoles, json!({"realm_access": {}})), list(&["read", "write"]));
        for bad in [json!({"roles": ["a", ""]}), json!({"roles": "a"}), json!({"roles": [7]}), json!(["a"])] {
            assert_eq!(
                from(ScopeClaim::RealmRoles, json!({"realm_access": bad.clone()})),
                Err(TokenError::InvalidScopeClaim),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_empty_aud_names_no_audience_even_for_a_layer_asking_for_the_empty_one() {
        // `RequireAccessToken::audience("")` is not refused at build time: the token's
        // empty `aud` must not match it.
        let for_empty = |aud: Value| {
            judge(&with(json!({"aud": aud})), Typ::AccessToken, &config(), AudienceCheck::Exact(""), NOW).err()
        };
        for aud in [json!(""), json!([""]), json!(["", AUD])] {
            assert_eq!(for_empty(aud.clone()), Some(TokenError::InvalidAudience), "{aud}");
        }
    }
}
