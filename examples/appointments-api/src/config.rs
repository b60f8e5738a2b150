//! Configuration, read once at startup from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ISSUER` | unset: a development issuer runs in-process | the exact `iss` of your issuer; its keys are found through discovery. Several issuers separated by commas (`https://a/,https://b/`): each with its own discovery and keys, and a token verified only with its own issuer's |
//! | `AUDIENCE` | `https://api.example.test` | this API's identifier: what the issuer puts in `aud` |
//! | `JWKS_URI` | from discovery | the issuer's JWK set URL, to skip discovery (needs `ISSUER`, one issuer only) |
//! | `TOKEN_PROFILE` | `rfc9068` | `rfc9068` (strict `at+jwt` access tokens) or `compatible` (tokens typed `JWT`, as Auth0, Okta, Entra ID and Keycloak issue them; scopes from `scope` or `scp`) |
//! | `BIND` | `127.0.0.1:3000` | the address to listen on (`0.0.0.0:3000` in a container); without `ISSUER` it must be a loopback address |
//! | `DATABASE_PATH` | in memory | the SQLite file |
//! | `RUST_LOG` | `info,scopegate=debug` | log filter (logs go to stderr; the default logs one line per refused request, with its reason, never the token) |
//! | `JWKS_REFRESH_COOLDOWN_SECS` | `30` | the least time between two key fetches caused by tokens with an unknown `kid` (1 to 3600) |
//! | `INTROSPECTION_CLIENT_ID`, `INTROSPECTION_CLIENT_SECRET` | unset | this API's own credentials at the issuer (HTTP Basic): with both set, a token that is not a JWS (an opaque token) is introspected (RFC 7662), and the development issuer hands out opaque tokens on `-d token_format=opaque` |
//! | `INTROSPECTION_URI` | from discovery | the issuer's introspection endpoint, to skip discovery's `introspection_endpoint` (needs the two above) |
//! | `DPOP_NONCE` | `off` | `on`: server-provided DPoP nonces (RFC 9449 §9). A proof without a current nonce gets 401 `use_dpop_nonce`, and every 401 carries the nonce to use in `DPoP-Nonce`; nonces rotate every 5 minutes. Needs an http(s) `AUDIENCE` (DPoP is off otherwise) |
//! | `DPOP_NONCE_SECRET` | a random one per process | with `DPOP_NONCE=on`: the secret nonces are derived from, at least 32 bytes, the same for every replica so that each accepts the others' nonces |
//! | `DPOP_REPLAY_STORE` | `memory` | where the `jti`s of accepted DPoP proofs are kept: `memory` (this process) or a `redis://host:port/` URL shared by every replica, so a proof replayed on another one is refused |
//! | `INTROSPECTION_ACCEPTS_MISSING_AUDIENCE` | `false` | `true` accepts an introspection answer without `aud` (needs the two above). Some issuers name no audience for a token asked without a resource, the only kind oidc-provider serves at `/userinfo`; turn it on only for an issuer whose tokens are all meant for this API |
//! | `INTROSPECTION_CACHE_TTL_SECS` | `60` | how long an introspection answer is reused (1 to 3600): a revoked opaque token is refused at most this long after its revocation |
//! | `TOKEN_CACHE` | `on` | `off` turns the verified-token cache off, so that every request checks its token's signature (for measuring that path) |
//!
//! Every error names the variable to fix, in one line.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use scopegate::{Profile, dpop::MIN_NONCE_SECRET_LEN};

/// COPY: your API's identifier, the `aud` your issuer puts in access tokens for it.
pub(crate) const DEFAULT_AUDIENCE: &str = "https://api.example.test";
/// Loopback by default: a copy that should be reachable from elsewhere sets `BIND`.
const DEFAULT_BIND: &str = "127.0.0.1:3000";

/// Where access tokens come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IssuerConfig {
    /// `ISSUER` is set: only these issuers are trusted, the development issuer never starts.
    External {
        /// The exact `iss` value (the first, with several).
        issuer: String,
        /// The other issuers of a comma-separated `ISSUER`, each trusted as well.
        also: Vec<String>,
        /// `JWKS_URI`, when discovery should be skipped.
        jwks_uri: Option<String>,
    },
    /// `ISSUER` is unset: a development issuer starts on loopback (see `dev_issuer.rs`).
    Development,
}

/// The service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) bind: SocketAddr,
    pub(crate) audience: String,
    pub(crate) issuer: IssuerConfig,
    pub(crate) profile: Profile,
    /// `None`: an in-memory database, emptied at every start.
    pub(crate) database_path: Option<PathBuf>,
    /// `RUST_LOG`, when set.
    pub(crate) log_filter: Option<String>,
    /// `JWKS_REFRESH_COOLDOWN_SECS`, when set.
    pub(crate) refresh_cooldown: Option<Duration>,
    /// The `INTROSPECTION_*` variables, when the client id and secret are set.
    pub(crate) introspection: Option<Introspection>,
    /// `TOKEN_CACHE`: `false` when it is `off`.
    pub(crate) token_cache: bool,
    /// `DPOP_REPLAY_STORE`.
    pub(crate) dpop_replay_store: DpopReplayStore,
    /// `DPOP_NONCE` and `DPOP_NONCE_SECRET`.
    pub(crate) dpop_nonces: DpopNonces,
}

/// Server-provided DPoP nonces (`DPOP_NONCE`, `DPOP_NONCE_SECRET`).
#[derive(Clone, PartialEq, Eq, Default)]
pub(crate) enum DpopNonces {
    /// `off`, the default.
    #[default]
    Off,
    /// `on` without a secret: one drawn at start, for this process only.
    Random,
    /// `on` with `DPOP_NONCE_SECRET`, shared by every replica.
    Shared(String),
}

impl fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("Off"),
            Self::Random => f.write_str("Random"),
            // Never the secret.
            Self::Shared(_) => f.write_str("Shared"),
        }
    }
}

/// Where accepted DPoP proofs are remembered (`DPOP_REPLAY_STORE`).
#[derive(Clone, PartialEq, Eq, Default)]
pub(crate) enum DpopReplayStore {
    /// `memory`, the default: this process only.
    #[default]
    Memory,
    /// A `redis://` URL, shared by every replica.
    Redis(String),
}

impl fmt::Debug for DpopReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            // Never the URL: it may carry a password.
            Self::Redis(_) => f.write_str("Redis"),
        }
    }
}

/// Opaque tokens through introspection at the issuer.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Introspection {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// `INTROSPECTION_URI`, when discovery should be skipped.
    pub(crate) uri: Option<String>,
    /// `INTROSPECTION_CACHE_TTL_SECS`, when set.
    pub(crate) cache_ttl: Option<Duration>,
    /// `INTROSPECTION_ACCEPTS_MISSING_AUDIENCE=true`.
    pub(crate) accepts_missing_audience: bool,
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("Introspection")
            .field("client_id", &self.client_id)
            .field("uri", &self.uri)
            .field("cache_ttl", &self.cache_ttl)
            .field("accepts_missing_audience", &self.accepts_missing_audience)
            .finish_non_exhaustive()
    }
}

/// A setting that cannot be used, with the variable to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}: {message}")]
pub(crate) struct ConfigError {
    variable: &'static str,
    message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self { variable, message: message.into() }
    }
}

impl Config {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var_os(name).map(|value| value.to_string_lossy().into_owned()))
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let bind_text = lookup("BIND").unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind = bind_text.trim().parse::<SocketAddr>().map_err(|_| {
            ConfigError::new("BIND", format!("`{bind_text}` is not an IP address and port, such as 127.0.0.1:3000"))
        })?;

        let audience = lookup("AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
        if audience.is_empty() || audience.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::new(
                "AUDIENCE",
                "must be your API's identifier (the `aud` your issuer sets), non-empty and without spaces",
            ));
        }

        let profile = match lookup("TOKEN_PROFILE").as_deref().map(str::trim) {
            None | Some("rfc9068") => Profile::Rfc9068,
            Some("compatible") => Profile::Compatible,
            Some(other) => {
                return Err(ConfigError::new(
                    "TOKEN_PROFILE",
                    format!("`{other}` is not a token profile: use `rfc9068` (the default) or `compatible`"),
                ));
            }
        };

        let jwks_uri = lookup("JWKS_URI");
        let issuer = match lookup("ISSUER") {
            // An empty ISSUER is a deployment mistake, not a request for the development
            // issuer: starting one would hide it.
            Some(issuer) if issuer.trim().is_empty() => {
                return Err(ConfigError::new(
                    "ISSUER",
                    "is set but empty: set it to your issuer's URL, or unset it to use the development issuer",
                ));
            }
            Some(list) => {
                // Several issuers are separated by commas, read by scopegate's own rules
                // (those of `AuthorityBuilder::from_env`, which this service does not use:
                // here `ISSUER` is optional, `AUDIENCE` has a default, and every issuer also
                // gets `JWKS_REFRESH_COOLDOWN_SECS` and `TOKEN_CACHE`, which `from_env` does
                // not read).
                let mut issuers =
                    scopegate::issuer_list(&list).map_err(|e| ConfigError::new(e.setting(), e.message()))?;
                if jwks_uri.as_deref().is_some_and(|uri| uri.trim().is_empty()) {
                    return Err(ConfigError::new("JWKS_URI", "is set but empty: unset it to use discovery"));
                }
                if jwks_uri.is_some() && issuers.len() > 1 {
                    return Err(ConfigError::new(
                        "JWKS_URI",
                        "holds one issuer's keys, but ISSUER lists several: unset JWKS_URI, each issuer's keys are then discovered",
                    ));
                }
                let issuer = issuers.remove(0);
                IssuerConfig::External { issuer, also: issuers, jwks_uri }
            }
            None if jwks_uri.is_some() => {
                return Err(ConfigError::new(
                    "JWKS_URI",
                    "needs ISSUER: set ISSUER to the issuer these keys belong to, or unset JWKS_URI",
                ));
            }
            // The development issuer hands a token to whoever reaches its API: only this
            // machine may. Any other BIND (`0.0.0.0`, `[::]`, a public address, an
            // IPv4-mapped one) needs ISSUER.
            None if !bind.ip().is_loopback() => {
                return Err(ConfigError::new(
                    "BIND",
                    format!(
                        "{bind} is not a loopback address, and without ISSUER the development issuer would be reachable from other machines: set ISSUER to your issuer, or bind to 127.0.0.1"
                    ),
                ));
            }
            None => IssuerConfig::Development,
        };

        let database_path = match lookup("DATABASE_PATH") {
            Some(path) if path.trim().is_empty() => {
                return Err(ConfigError::new("DATABASE_PATH", "is set but empty: unset it for an in-memory database"));
            }
            path => path.map(PathBuf::from),
        };

        let log_filter = lookup("RUST_LOG");

        let refresh_cooldown = match lookup("JWKS_REFRESH_COOLDOWN_SECS") {
            None => None,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(secs @ 1..=3600) => Some(Duration::from_secs(secs)),
                _ => {
                    return Err(ConfigError::new(
                        "JWKS_REFRESH_COOLDOWN_SECS",
                        format!("`{text}` is not a number of seconds from 1 to 3600"),
                    ));
                }
            },
        };

        let introspection = introspection(&lookup)?;

        let token_cache = match lookup("TOKEN_CACHE").as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    "TOKEN_CACHE",
                    format!("`{other}` is neither `on` (the default) nor `off`"),
                ));
            }
        };

        let dpop_replay_store = match lookup("DPOP_REPLAY_STORE").as_deref().map(str::trim) {
            None | Some("memory") => DpopReplayStore::Memory,
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                DpopReplayStore::Redis(url.to_owned())
            }
            Some(_) => {
                return Err(ConfigError::new(
                    "DPOP_REPLAY_STORE",
                    "is neither `memory` nor a redis:// URL (such as redis://127.0.0.1:6379/)",
                ));
            }
        };

        let dpop_nonces = dpop_nonces(&lookup, &audience)?;

        Ok(Self {
            bind,
            audience,
            issuer,
            profile,
            database_path,
            log_filter,
            refresh_cooldown,
            introspection,
            token_cache,
            dpop_replay_store,
            dpop_nonces,
        })
    }
}

/// `DPOP_NONCE` and `DPOP_NONCE_SECRET`.
fn dpop_nonces(lookup: &impl Fn(&str) -> Option<String>, audience: &str) -> Result<DpopNonces, ConfigError> {
    let secret = lookup("DPOP_NONCE_SECRET");
    let nonces = match (lookup("DPOP_NONCE").as_deref().map(str::trim), secret) {
        (None | Some("off"), None) => return Ok(DpopNonces::Off),
        (None | Some("off"), Some(_)) => {
            return Err(ConfigError::new("DPOP_NONCE_SECRET", "needs DPOP_NONCE=on: set it, or unset the secret"));
        }
        (Some("on"), None) => DpopNonces::Random,
        (Some("on"), Some(secret)) if secret.len() >= MIN_NONCE_SECRET_LEN => DpopNonces::Shared(secret),
        (Some("on"), Some(_)) => {
            return Err(ConfigError::new(
                "DPOP_NONCE_SECRET",
                format!("is shorter than {MIN_NONCE_SECRET_LEN} bytes: replicas would share a guessable secret"),
            ));
        }
        (Some(other), _) => {
            return Err(ConfigError::new("DPOP_NONCE", format!("`{other}` is neither `off` (the default) nor `on`")));
        }
    };
    if scopegate::policy::metadata_url(audience).is_none() {
        return Err(ConfigError::new(
            "DPOP_NONCE",
            format!("DPoP is off: the AUDIENCE `{audience}` is not an http(s) URL to compare proofs' htu with"),
        ));
    }
    Ok(nonces)
}

/// The `INTROSPECTION_*` variables: the client id and secret together or not at all.
fn introspection(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<Introspection>, ConfigError> {
    let present = |name: &'static str| match lookup(name) {
        Some(value) if value.trim().is_empty() => {
            Err(ConfigError::new(name, "is set but empty: set it, or unset every INTROSPECTION_ variable"))
        }
        value => Ok(value),
    };
    let uri = present("INTROSPECTION_URI")?;
    let ttl = present("INTROSPECTION_CACHE_TTL_SECS")?;
    let missing_audience = present("INTROSPECTION_ACCEPTS_MISSING_AUDIENCE")?;
    let (client_id, client_secret) =
        match (present("INTROSPECTION_CLIENT_ID")?, present("INTROSPECTION_CLIENT_SECRET")?) {
            (Some(id), Some(secret)) => (id, secret),
            (None, None) => {
                let given = [
                    ("INTROSPECTION_URI", uri.is_some()),
                    ("INTROSPECTION_CACHE_TTL_SECS", ttl.is_some()),
                    ("INTROSPECTION_ACCEPTS_MISSING_AUDIENCE", missing_audience.is_some()),
                ];
                if let Some((variable, _)) = given.into_iter().find(|(_, set)| *set) {
                    return Err(ConfigError::new(
                        variable,
                        "needs INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET: set them, or unset it",
                    ));
                }
                return Ok(None);
            }
            (Some(_), None) => {
                return Err(ConfigError::new("INTROSPECTION_CLIENT_SECRET", "is needed with INTROSPECTION_CLIENT_ID"));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new("INTROSPECTION_CLIENT_ID", "is needed with INTROSPECTION_CLIENT_SECRET"));
            }
        };
    let cache_ttl = match ttl {
        None => None,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(secs @ 1..=3600) => Some(Duration::from_secs(secs)),
            _ => {
                return Err(ConfigError::new(
                    "INTROSPECTION_CACHE_TTL_SECS",
                    format!("`{text}` is not a number of seconds from 1 to 3600"),
                ));
            }
        },
    };
    let accepts_missing_audience = match missing_audience.as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ConfigError::new(
                "INTROSPECTION_ACCEPTS_MISSING_AUDIENCE",
                format!("`{other}` is not `true` or `false`"),
            ));
        }
    };
    Ok(Some(Introspection { client_id, client_secret, uri, cache_ttl, accepts_missing_audience }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_run_the_development_issuer_on_loopback() {
        let config = config(&[]).unwrap();
        assert_eq!(config.bind, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(config.audience, "https://api.example.test");
        assert_eq!(config.issuer, IssuerConfig::Development);
        assert_eq!(config.profile, Profile::Rfc9068);
        assert_eq!(config.database_path, None);
        assert_eq!(config.log_filter, None);
        assert!(config.token_cache);
    }

    #[test]
    fn token_cache_off_turns_the_verified_token_cache_off() {
        assert!(!config(&[("TOKEN_CACHE", "off")]).unwrap().token_cache);
        assert!(config(&[("TOKEN_CACHE", "on")]).unwrap().token_cache);
    }

    #[test]
    fn an_issuer_replaces_the_development_issuer() {
        let config = config(&[
            ("ISSUER", "https://tenant.example/"),
            ("JWKS_URI", "https://tenant.example/keys"),
            ("TOKEN_PROFILE", "compatible"),
            ("AUDIENCE", "my-api"),
        ])
        .unwrap();
        assert_eq!(
            config.issuer,
            IssuerConfig::External {
                issuer: "https://tenant.example/".to_owned(),
                also: Vec::new(),
                jwks_uri: Some("https://tenant.example/keys".to_owned())
            }
        );
        assert_eq!(config.profile, Profile::Compatible);
        assert_eq!(config.audience, "my-api");
    }

    #[test]
    fn issuer_may_list_several_issuers_separated_by_commas() {
        let two = config(&[("ISSUER", "https://a.example/, https://b.example/oauth2/default")]).unwrap();
        assert_eq!(
            two.issuer,
            IssuerConfig::External {
                issuer: "https://a.example/".to_owned(),
                also: vec!["https://b.example/oauth2/default".to_owned()],
                jwks_uri: None
            }
        );
        let error = |vars: &[(&str, &str)]| config(vars).unwrap_err().to_string();
        assert_eq!(
            error(&[("ISSUER", "https://a.example/,")]),
            "invalid ISSUER: `` is not an issuer URL: use the exact `iss` of your tokens, such as https://your-tenant.example/ (several separated by commas)"
        );
        assert_eq!(
            error(&[("ISSUER", "https://a.example/,https://a.example/")]),
            "invalid ISSUER: `https://a.example/` is listed twice"
        );
        assert_eq!(
            error(&[("ISSUER", "https://a.example/,https://b.example/"), ("JWKS_URI", "https://a.example/keys")]),
            "invalid JWKS_URI: holds one issuer's keys, but ISSUER lists several: unset JWKS_URI, each issuer's keys are then discovered"
        );
    }

    #[test]
    fn without_an_issuer_only_a_loopback_bind_is_accepted() {
        for bind in ["127.0.0.1:3000", "127.0.0.2:8080", "[::1]:3000", "127.0.0.1:0"] {
            let config = config(&[("BIND", bind)]).unwrap_or_else(|e| panic!("{bind}: {e}"));
            assert_eq!(config.issuer, IssuerConfig::Development, "{bind}");
        }
        for bind in [
            "0.0.0.0:3000",
            "[::]:3000",
            "192.0.2.10:3000",
            "10.0.0.1:3000",
            "[2001:db8::1]:3000",
            "[::ffff:127.0.0.1]:3000",
        ] {
            let error = config(&[("BIND", bind)]).unwrap_err().to_string();
            let shown: SocketAddr = bind.parse().unwrap();
            assert_eq!(
                error,
                format!(
                    "invalid BIND: {shown} is not a loopback address, and without ISSUER the development issuer would be reachable from other machines: set ISSUER to your issuer, or bind to 127.0.0.1"
                ),
                "{bind}"
            );
        }
        // With ISSUER the development issuer never starts, so any address will do.
        let config = config(&[("BIND", "0.0.0.0:3000"), ("ISSUER", "https://tenant.example/")]).unwrap();
        assert_eq!(config.bind, "0.0.0.0:3000".parse().unwrap());
    }

    #[test]
    fn introspection_needs_both_credentials_and_keeps_the_secret_out_of_debug() {
        assert_eq!(config(&[]).unwrap().introspection, None);
        let config = config(&[
            ("INTROSPECTION_CLIENT_ID", "api-introspector"),
            ("INTROSPECTION_CLIENT_SECRET", "hidden-secret"),
            ("INTROSPECTION_CACHE_TTL_SECS", "2"),
        ])
        .unwrap();
        let introspection = config.introspection.unwrap();
        assert_eq!(introspection.client_id, "api-introspector");
        assert_eq!(introspection.cache_ttl, Some(Duration::from_secs(2)));
        assert!(!introspection.accepts_missing_audience);
        assert!(!format!("{introspection:?}").contains("hidden-secret"));
    }

    #[test]
    fn dpop_nonces_are_off_by_default_and_keep_the_secret_out_of_debug() {
        assert_eq!(config(&[]).unwrap().dpop_nonces, DpopNonces::Off);
        assert_eq!(config(&[("DPOP_NONCE", "off")]).unwrap().dpop_nonces, DpopNonces::Off);
        assert_eq!(config(&[("DPOP_NONCE", "on")]).unwrap().dpop_nonces, DpopNonces::Random);
        let secret = "a-secret-every-replica-is-given-0123";
        let shared = config(&[("DPOP_NONCE", "on"), ("DPOP_NONCE_SECRET", secret)]).unwrap();
        assert_eq!(shared.dpop_nonces, DpopNonces::Shared(secret.to_owned()));
        assert!(!format!("{shared:?}").contains(secret));
    }

    #[test]
    fn each_error_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("BIND", "localhost")], "invalid BIND: `localhost` is not an IP address and port"),
            (&[("BIND", "127.0.0.1:99999")], "invalid BIND"),
            (&[("TOKEN_PROFILE", "strict")], "invalid TOKEN_PROFILE: `strict` is not a token profile"),
            (&[("JWKS_REFRESH_COOLDOWN_SECS", "0")], "invalid JWKS_REFRESH_COOLDOWN_SECS"),
            (&[("JWKS_REFRESH_COOLDOWN_SECS", "soon")], "invalid JWKS_REFRESH_COOLDOWN_SECS"),
            (&[("AUDIENCE", "")], "invalid AUDIENCE"),
            (&[("AUDIENCE", "my api")], "invalid AUDIENCE"),
            (&[("ISSUER", "")], "invalid ISSUER: is set but empty"),
            (&[("ISSUER", "tenant.example")], "invalid ISSUER: `tenant.example` is not an issuer URL"),
            (&[("JWKS_URI", "https://tenant.example/keys")], "invalid JWKS_URI: needs ISSUER"),
            (&[("DATABASE_PATH", "")], "invalid DATABASE_PATH"),
            (&[("INTROSPECTION_CLIENT_ID", "api")], "invalid INTROSPECTION_CLIENT_SECRET: is needed"),
            (&[("DPOP_NONCE", "yes")], "invalid DPOP_NONCE: `yes` is neither `off` (the default) nor `on`"),
            (&[("DPOP_NONCE_SECRET", &"s".repeat(32))], "invalid DPOP_NONCE_SECRET: needs DPOP_NONCE=on"),
            (
                &[("DPOP_NONCE", "on"), ("DPOP_NONCE_SECRET", &"s".repeat(31))],
                "invalid DPOP_NONCE_SECRET: is shorter than 32 bytes",
            ),
            (
                &[("DPOP_NONCE", "on"), ("AUDIENCE", "api://appointments")],
                "invalid DPOP_NONCE: DPoP is off: the AUDIENCE",
            ),
            (
                &[("INTROSPECTION_ACCEPTS_MISSING_AUDIENCE", "true")],
                "invalid INTROSPECTION_ACCEPTS_MISSING_AUDIENCE: needs",
            ),
            (
                &[
                    ("INTROSPECTION_CLIENT_ID", "api"),
                    ("INTROSPECTION_CLIENT_SECRET", "s"),
                    ("INTROSPECTION_ACCEPTS_MISSING_AUDIENCE", "yes"),
                ],
                "invalid INTROSPECTION_ACCEPTS_MISSING_AUDIENCE: `yes` is not `true` or `false`",
            ),
            (&[("INTROSPECTION_CLIENT_SECRET", "s")], "invalid INTROSPECTION_CLIENT_ID: is needed"),
            (&[("INTROSPECTION_URI", "https://i.example/introspect")], "invalid INTROSPECTION_URI: needs"),
            (
                &[
                    ("INTROSPECTION_CLIENT_ID", "api"),
                    ("INTROSPECTION_CLIENT_SECRET", "s"),
                    ("INTROSPECTION_CACHE_TTL_SECS", "0"),
                ],
                "invalid INTROSPECTION_CACHE_TTL_SECS",
            ),
            (&[("INTROSPECTION_CLIENT_ID", " ")], "invalid INTROSPECTION_CLIENT_ID: is set but empty"),
            (&[("TOKEN_CACHE", "no")], "invalid TOKEN_CACHE: `no` is neither `on`"),
        ];
        for (vars, expected) in cases {
            let error = config(vars).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{vars:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
