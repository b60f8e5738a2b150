//! Configuration from the environment: the twelve-factor way to point an API at its issuer.
//!
//! [`AuthorityBuilder::from_env`] reads the variables into a builder (which the
//! application can refine before building it); [`Authority::from_env`] also connects.
//! Each error names the variable to fix. The variables are listed in the crate docs
//! ("Configuration from the environment").

use std::time::Duration;

use crate::{
    algorithm::Algorithm,
    authority::{Authority, AuthorityBuilder},
    config::{ConfigError, Profile, ScopeClaim},
};

impl AuthorityBuilder {
    /// A builder configured from the process environment (see the table in the crate docs'
    /// "Configuration from the environment"): `ISSUER` and `AUDIENCE` are required,
    /// `JWKS_URI`, `TOKEN_PROFILE`, `SCOPE_CLAIMS`, `ALLOWED_CLIENTS`, `ALGORITHMS` and
    /// `LEEWAY_SECS` optional. Further settings can be chained before building.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), scopegate::ConfigError> {
    /// use std::time::Duration;
    /// use scopegate::AuthorityBuilder;
    ///
    /// let authority = AuthorityBuilder::from_env()?.max_token_age(Duration::from_secs(600)).connect().await?;
    /// # let _ = authority; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`ConfigError`] whose [`setting`](ConfigError::setting) is the variable's name
    /// when a required variable is missing or a value cannot be used.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables read through `lookup`.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str, what: &str| match lookup(name) {
            Some(value) if !value.trim().is_empty() => Ok(value),
            Some(_) => Err(ConfigError::new(name, format!("is set but empty: set it to {what}"))),
            None => Err(ConfigError::new(name, format!("is not set: set it to {what}"))),
        };
        let issuer = required("ISSUER", "the exact `iss` of your tokens, such as https://your-tenant.example/")?;
        let audiences = required("AUDIENCE", "your API's identifier, the `aud` your issuer puts in its access tokens")?;
        let mut builder = Authority::builder().issuer(issuer);
        for audience in list(&audiences) {
            builder = builder.audience(audience);
        }
        if let Some(uri) = lookup("JWKS_URI") {
            if uri.trim().is_empty() {
                return Err(ConfigError::new("JWKS_URI", "is set but empty: unset it to use discovery"));
            }
            builder = builder.jwks_uri(uri);
        }
        match lookup("TOKEN_PROFILE").as_deref().map(str::trim) {
            None | Some("rfc9068") => {}
            Some("compatible") => builder = builder.profile(Profile::Compatible),
            Some(other) => {
                return Err(ConfigError::new(
                    "TOKEN_PROFILE",
                    format!("`{other}` is not a token profile: use `rfc9068` (the default) or `compatible`"),
                ));
            }
        }
        if let Some(value) = lookup("SCOPE_CLAIMS") {
            let claims = list(&value)
                .map(|name| match name {
                    "scope" => Ok(ScopeClaim::Scope),
                    "scp" => Ok(ScopeClaim::Scp),
                    "permissions" => Ok(ScopeClaim::Permissions),
                    other => Err(ConfigError::new(
                        "SCOPE_CLAIMS",
                        format!("`{other}` is not a scope claim: use scope, scp or permissions"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.scope_claims(claims);
        }
        if let Some(value) = lookup("ALLOWED_CLIENTS") {
            builder = builder.allowed_clients(list(&value));
        }
        if let Some(value) = lookup("ALGORITHMS") {
            let algorithms = list(&value)
                .map(|name| {
                    Algorithm::from_name(name).ok_or_else(|| {
                        ConfigError::new(
                            "ALGORITHMS",
                            format!(
                                "`{name}` is not a supported algorithm: use names such as RS256, PS256, ES256, EdDSA"
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.algorithms(algorithms);
        }
        if let Some(value) = lookup("LEEWAY_SECS") {
            let secs = value.trim().parse::<u64>().ok().filter(|secs| *secs <= 300).ok_or_else(|| {
                ConfigError::new("LEEWAY_SECS", format!("`{value}` is not a number of seconds from 0 to 300"))
            })?;
            builder = builder.leeway(Duration::from_secs(secs));
        }
        Ok(builder)
    }
}

impl Authority {
    /// Configures from the environment ([`AuthorityBuilder::from_env`]) and
    /// [`connect`](AuthorityBuilder::connect)s: discovery and the first key fetch run now.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), scopegate::ConfigError> {
    /// // ISSUER=https://your-tenant.example/ AUDIENCE=https://api.example.test
    /// let authority = scopegate::Authority::from_env().await?;
    /// # let _ = authority; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`AuthorityBuilder::from_env`] and [`AuthorityBuilder::connect`].
    pub async fn from_env() -> Result<Self, ConfigError> {
        AuthorityBuilder::from_env()?.connect().await
    }
}

/// The non-empty items of a comma-separated value, trimmed.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    fn builder(vars: &[(&str, &str)]) -> Result<AuthorityBuilder, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        AuthorityBuilder::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn issuer_and_audience_are_read_and_several_audiences_are_accepted() {
        let authority = builder(&[("ISSUER", "https://issuer.example/"), ("AUDIENCE", "https://a.example, b-api")])
            .unwrap()
            .static_jwks(JWKS)
            .build()
            .unwrap();
        assert_eq!(authority.issuer(), "https://issuer.example/");
        assert_eq!(authority.audiences().collect::<Vec<_>>(), ["https://a.example", "b-api"]);
    }

    #[test]
    fn each_error_names_its_variable() {
        const ISS: (&str, &str) = ("ISSUER", "https://issuer.example/");
        const AUD: (&str, &str) = ("AUDIENCE", "api");
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            (&[AUD], "ISSUER", "is not set"),
            (&[("ISSUER", " "), AUD], "ISSUER", "is set but empty"),
            (&[ISS], "AUDIENCE", "is not set"),
            (&[ISS, AUD, ("JWKS_URI", "")], "JWKS_URI", "is set but empty"),
            (&[ISS, AUD, ("TOKEN_PROFILE", "strict")], "TOKEN_PROFILE", "`strict` is not a token profile"),
            (&[ISS, AUD, ("SCOPE_CLAIMS", "scope,roles")], "SCOPE_CLAIMS", "`roles` is not a scope claim"),
            (&[ISS, AUD, ("ALGORITHMS", "RS256,none")], "ALGORITHMS", "`none` is not a supported algorithm"),
            (&[ISS, AUD, ("LEEWAY_SECS", "301")], "LEEWAY_SECS", "`301` is not a number of seconds"),
            (&[ISS, AUD, ("LEEWAY_SECS", "soon")], "LEEWAY_SECS", "`soon` is not a number of seconds"),
        ];
        for (vars, variable, message) in cases {
            let Err(error) = builder(vars) else { panic!("{vars:?} was accepted") };
            assert_eq!(error.setting(), *variable, "{vars:?}");
            assert!(error.to_string().contains(message), "{vars:?}: {error}");
        }
    }

    #[test]
    fn optional_settings_reach_the_policy() {
        let authority = builder(&[
            ("ISSUER", "https://issuer.example/"),
            ("AUDIENCE", "api"),
            ("TOKEN_PROFILE", "compatible"),
            ("SCOPE_CLAIMS", "scp, scope"),
            ("ALLOWED_CLIENTS", "web, cli"),
            ("ALGORITHMS", "EdDSA"),
            ("LEEWAY_SECS", "0"),
        ])
        .unwrap()
        .static_jwks(JWKS)
        .build()
        .unwrap();
        let config = &authority.inner.config;
        assert_eq!(config.profile, Profile::Compatible);
        assert_eq!(config.scope_claims, [ScopeClaim::Scp, ScopeClaim::Scope]);
        assert_eq!(config.allowed_clients.as_deref().map(<[Box<str>]>::len), Some(2));
        assert_eq!(config.algorithms, [Algorithm::EdDSA]);
        assert_eq!(config.leeway, Duration::ZERO);
    }

    #[test]
    fn a_jwks_uri_skips_discovery_and_is_checked_like_any_other() {
        let error = builder(&[
            ("ISSUER", "https://issuer.example/"),
            ("AUDIENCE", "api"),
            ("JWKS_URI", "http://issuer.example/keys"),
        ])
        .unwrap()
        .build()
        .unwrap_err();
        assert_eq!(error.setting(), "jwks_uri");
    }
}
