//! The verifier's configuration and its limits: the bottom layer every other module may
//! use. [`AuthorityBuilder`](crate::AuthorityBuilder) fills it in and checks it; it never
//! changes afterwards.

use std::{fmt, time::Duration};

use crate::{algorithm::Algorithm, clock::Clock, rejection::ChallengeConfig};

/// The longest `kid` accepted, in bytes (in a key set and in a token header).
pub(crate) const MAX_KID_LEN: usize = 256;

/// The default clock-skew allowance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The largest leeway [`AuthorityBuilder::leeway`](crate::AuthorityBuilder::leeway) accepts.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// The default maximum token size in bytes.
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 8 * 1024;
/// The hard cap on [`AuthorityBuilder::max_token_size`](crate::AuthorityBuilder::max_token_size).
pub const MAX_TOKEN_SIZE_LIMIT: usize = 64 * 1024;
/// The default maximum token lifetime (`exp` may be at most this far past `iat` and now).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Which tokens count as access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Profile {
    /// Strict RFC 9068 (the default): `typ` must be `at+jwt`, and `client_id`, `jti`,
    /// `sub`, `iat`, `exp`, `iss` and `aud` are required.
    #[default]
    Rfc9068,
    /// For issuers that mint access tokens typed `JWT` or untyped (Auth0's default token
    /// profile, Okta, Entra ID). Such a token is accepted only if its audience matches,
    /// it names its client (`client_id`, `azp` or `cid`), it carries none of the ID-token
    /// claims `nonce`, `at_hash`, `c_hash`, and no vendor type claim marks it as an ID
    /// token; `jti` becomes optional. Enabling it logs a warning at startup.
    Compatible,
}

/// A claim scopes are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScopeClaim {
    /// `scope`: a space-delimited string (RFC 9068 §2.2.3). The default.
    Scope,
    /// `scp`: a string or an array of strings (Okta, Entra ID).
    Scp,
    /// `permissions`: an array of strings (Auth0 RBAC).
    Permissions,
    /// `roles`: an array of strings (Entra ID app roles, in app-only tokens).
    Roles,
    /// `realm_access.roles`: Keycloak's realm roles, an array of strings.
    RealmRoles,
    /// `resource_access.{client}.roles`: Keycloak's client roles of the API's own client,
    /// the first configured audience that has an entry there.
    ClientRoles,
}

impl ScopeClaim {
    /// The claim's name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Scope => "scope",
            Self::Scp => "scp",
            Self::Permissions => "permissions",
            Self::Roles => "roles",
            Self::RealmRoles => "realm_access.roles",
            Self::ClientRoles => "resource_access.roles",
        }
    }
}

/// A configuration the builder refused, naming the setting to change.
///
/// Its `Debug` form reads like its `Display` form, so that `main() -> Result<(), Box<dyn
/// Error>>` prints a sentence rather than a struct.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("scopegate: {} `{setting}` setting: {message}", lead(*.unreachable))]
pub struct ConfigError {
    setting: &'static str,
    message: String,
    /// The setting may be right: the issuer could not be reached at all.
    unreachable: bool,
}

impl ConfigError {
    pub(crate) fn new(setting: &'static str, message: impl Into<String>) -> Self {
        Self { setting, message: message.into(), unreachable: false }
    }

    /// The issuer named by `setting` could not be reached (the setting may well be right).
    pub(crate) fn unreachable(setting: &'static str, message: impl Into<String>) -> Self {
        Self { setting, message: message.into(), unreachable: true }
    }

    /// Whether the issuer could not be reached at all (DNS, connection, TLS, timeout) at
    /// [`connect`](crate::AuthorityBuilder::connect), as opposed to a setting that is
    /// wrong or an issuer that answered with something unusable. An unreachable issuer
    /// may be worth a retry; an invalid setting is not.
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        self.unreachable
    }

    /// Names the issuer an error is about, for an authority trusting several: `added` for
    /// one added with `also_trust`.
    pub(crate) fn for_issuer(mut self, issuer: &str, added: bool) -> Self {
        if added {
            self.message = format!("for the issuer `{issuer}` added with also_trust: {}", self.message);
        }
        self
    }

    /// The same error under another name for its setting: the variable a value was read
    /// from.
    pub(crate) fn named(mut self, setting: &'static str) -> Self {
        self.setting = setting;
        self
    }

    /// The builder setting to change (for example `"audience"`).
    #[must_use]
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// What is wrong with it, without the setting's name (the [`Display`](fmt::Display)
    /// form is "invalid `setting`: `message`", or "cannot reach the issuer of the …").
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The two allowlists of asymmetric algorithms: the access tokens' (`algorithms`) and the
/// DPoP proofs' (`dpop_algorithms`). Their one check lives here, next to [`ConfigError`],
/// not in `algorithm.rs`: that module is below this one, and an error of its own would
/// only be mapped to these messages again.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Allowlist {
    /// `AuthorityBuilder::algorithms`: shared-secret algorithms have their own mode.
    Tokens,
    /// `AuthorityBuilder::dpop_algorithms`: a proof is signed with the client's private key.
    DpopProofs,
}

impl Allowlist {
    /// Checks `list`: at least one algorithm, and no shared-secret (HMAC) one. Each refusal
    /// names this list's setting and says what to do.
    pub(crate) fn check(self, list: &[Algorithm]) -> Result<(), ConfigError> {
        let (setting, empty) = match self {
            Self::Tokens => ("algorithms", "allow at least one algorithm"),
            Self::DpopProofs => ("dpop_algorithms", "allow at least one proof algorithm"),
        };
        if list.is_empty() {
            return Err(ConfigError::new(setting, empty));
        }
        let Some(alg) = list.iter().find(|a| a.is_symmetric()) else {
            return Ok(());
        };
        Err(ConfigError::new(
            setting,
            match self {
                Self::Tokens => {
                    format!("{alg} needs a shared secret: use .shared_secret({alg}, secret) instead of listing it")
                }
                Self::DpopProofs => {
                    format!("{alg} is symmetric: a DPoP proof is signed with the client's private key (RFC 9449 §4.2)")
                }
            },
        ))
    }
}

/// How a [`ConfigError`] starts: a setting that is wrong, or one that may be right.
fn lead(unreachable: bool) -> &'static str {
    if unreachable { "cannot reach the issuer of the" } else { "invalid" }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Checks one audience identifier: non-empty and without whitespace (as the macro's
/// `aud = "…"`), for the setting `setting`.
pub(crate) fn check_audience(setting: &'static str, audience: &str) -> Result<(), ConfigError> {
    if audience.is_empty() || audience.chars().any(char::is_whitespace) {
        return Err(ConfigError::new(setting, "an audience must be non-empty and contain no whitespace"));
    }
    Ok(())
}

/// What stands for the tenant in an issuer template (Entra ID's multi-tenant issuer
/// `https://login.microsoftonline.com/{tenantid}/v2.0`).
pub(crate) const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// The verifier's settings, fixed at build time.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) issuer: Box<str>,
    pub(crate) audiences: Vec<Box<str>>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) leeway: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_token_size: usize,
    pub(crate) profile: Profile,
    pub(crate) scope_claims: Vec<ScopeClaim>,
    pub(crate) allowed_clients: Option<Vec<Box<str>>>,
    pub(crate) reject_id_token_claims: bool,
    pub(crate) require_single_audience: bool,
    pub(crate) challenge: std::sync::Arc<ChallengeConfig>,
    /// Entra ID multi-tenant: `issuer` is a template with [`TENANT_PLACEHOLDER`], and a
    /// token's `iss` must be it with one of these tenants in place, equal to its `tid`.
    pub(crate) tenants: Option<Vec<Box<str>>>,
    /// Amazon Cognito: `token_use` must be `access` (`id` is an ID token).
    pub(crate) require_token_use: bool,
    /// Entra ID v1.0: `appid` names the client too (after `client_id`, `azp` and `cid`).
    pub(crate) appid_names_client: bool,
    /// The wall clock, or a test's (feature `testing`).
    pub(crate) clock: Clock,
}

impl Config {
    /// Whether `iss` names this issuer: the identifier exactly, or with a tenant template,
    /// the template with one of the allowed tenants in place. Read before any key work
    /// (to route a token to its issuer) and again once the signature has verified.
    pub(crate) fn trusts_issuer(&self, iss: &str) -> bool {
        match &self.tenants {
            None => *self.issuer == *iss,
            Some(tenants) => self.tenant_of(iss).is_some_and(|t| tenants.iter().any(|a| **a == *t)),
        }
    }

    /// With a tenant template, the tenant `iss` names (not yet checked against the
    /// allowlist); `None` without a template or when `iss` does not fit it.
    pub(crate) fn tenant_of<'a>(&self, iss: &'a str) -> Option<&'a str> {
        self.tenants.as_ref()?;
        let (prefix, suffix) = self.issuer.split_once(TENANT_PLACEHOLDER)?;
        iss.strip_prefix(prefix)?.strip_suffix(suffix).filter(|t| !t.is_empty() && !t.contains('/'))
    }

    /// Every issuer identifier this configuration trusts: the issuer, or the template
    /// expanded for each allowed tenant.
    pub(crate) fn issuers(&self) -> Vec<String> {
        match &self.tenants {
            None => vec![self.issuer.to_string()],
            Some(tenants) => tenants.iter().map(|t| self.issuer.replace(TENANT_PLACEHOLDER, t)).collect(),
        }
    }
}

/// Which of a builder's settings hold a value read from the environment: an error about
/// one names the variable, the thing to change for whoever deploys the API. Only the
/// values whose checks need the rest of the builder (the issuer's and the keys' URLs) are
/// marked; `from_env` checks the others itself.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FromEnv {
    pub(crate) issuer: bool,
    pub(crate) jwks_uri: bool,
}

impl FromEnv {
    /// The name an error gives `setting`: its variable when its value came from there.
    pub(crate) fn name(self, setting: &'static str) -> &'static str {
        match setting {
            "issuer" if self.issuer => "ISSUER",
            "jwks_uri" if self.jwks_uri => "JWKS_URI",
            other => other,
        }
    }

    /// `error`, naming the variable when its setting's value came from the environment.
    pub(crate) fn rename(self, error: ConfigError) -> ConfigError {
        let setting = self.name(error.setting());
        error.named(setting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_algorithm_allowlist_is_refused_empty_or_with_a_shared_secret_algorithm_naming_its_setting() {
        let refusal = |list: Allowlist, algorithms: &[Algorithm]| {
            list.check(algorithms).err().map(|e| (e.setting(), e.message().to_owned()))
        };
        assert_eq!(refusal(Allowlist::Tokens, &[]), Some(("algorithms", "allow at least one algorithm".into())));
        assert_eq!(
            refusal(Allowlist::Tokens, &[Algorithm::RS256, Algorithm::HS384]),
            Some((
                "algorithms",
                "HS384 needs a shared secret: use .shared_secret(HS384, secret) instead of listing it".into()
            ))
        );
        assert_eq!(
            refusal(Allowlist::DpopProofs, &[]),
            Some(("dpop_algorithms", "allow at least one proof algorithm".into()))
        );
        assert_eq!(
            refusal(Allowlist::DpopProofs, &[Algorithm::HS256, Algorithm::ES256]),
            Some((
                "dpop_algorithms",
                "HS256 is symmetric: a DPoP proof is signed with the client's private key (RFC 9449 §4.2)".into()
            ))
        );
        assert_eq!(refusal(Allowlist::Tokens, &Algorithm::ASYMMETRIC), None);
        assert_eq!(refusal(Allowlist::DpopProofs, &Algorithm::PROOF), None);
    }

    #[test]
    fn each_scope_claim_is_named_as_tokens_spell_it() {
        let names = [
            ScopeClaim::Scope,
            ScopeClaim::Scp,
            ScopeClaim::Permissions,
            ScopeClaim::Roles,
            ScopeClaim::RealmRoles,
            ScopeClaim::ClientRoles,
        ]
        .map(ScopeClaim::name);
        assert_eq!(names, ["scope", "scp", "permissions", "roles", "realm_access.roles", "resource_access.roles"]);
    }
}
