//! Configuration from the environment: the twelve-factor way to point an API at its issuer.
//!
//! [`AuthorityBuilder::from_env`] reads the variables into a builder (which the
//! application can refine before building it); [`Authority::from_env`] also connects.
//! Each error about a value read from a variable names the variable, those the builder
//! raises at `build` or `connect` too. The variables are listed in the crate docs
//! ("Configuration from the environment").

use std::time::Duration;

use crate::{
    algorithm::Algorithm,
    authority::{Authority, AuthorityBuilder},
    config::{ConfigError, Profile, ScopeClaim, check_audience},
};

impl AuthorityBuilder {
    /// A builder configured from the process environment (see the table in the crate docs'
    /// "Configuration from the environment"): `ISSUER` and `AUDIENCE` are required,
    /// `JWKS_URI`, `TOKEN_PROFILE`, `SCOPE_CLAIMS`, `ALLOWED_CLIENTS`, `ALGORITHMS` and
    /// `LEEWAY_SECS` optional. `ISSUER` may list several issuers separated by commas
    /// (`https://a/,https://b/`): the first is this builder's, each other one is trusted
    /// with [`also_trust`](Self::also_trust), with its own discovery and keys and the same
    /// token policy. Further settings chained before building apply to the first issuer.
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
    /// when a required variable is missing or a value cannot be used. The builder's own
    /// checks of `ISSUER` and `JWKS_URI` at [`build`](Self::build) or
    /// [`connect`](Self::connect) (an issuer's keys only over https, an unreachable
    /// issuer) name the variable too, unless the setting was given again in code.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables read through `lookup`.
    ///
    /// Every variable is checked before any builder is made, and each issuer of a
    /// comma-separated `ISSUER` gets the same token policy (audiences, profile, scope
    /// claims, clients, algorithms, leeway) on a builder of its own, trusted with
    /// [`also_trust`](Self::also_trust).
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str, what: &str| match lookup(name) {
            Some(value) if !value.trim().is_empty() => Ok(value),
            Some(_) => Err(ConfigError::new(name, format!("is set but empty: set it to {what}"))),
            None => Err(ConfigError::new(name, format!("is not set: set it to {what}"))),
        };
        let issuers = issuer_list(&required(
            "ISSUER",
            "the exact `iss` of your tokens, such as https://your-tenant.example/ (several separated by commas)",
        )?)?;
        let audiences = required("AUDIENCE", "your API's identifier, the `aud` your issuer puts in its access tokens")?;
        let audiences: Vec<String> = list(&audiences).map(str::to_owned).collect();
        if audiences.is_empty() {
            return Err(ConfigError::new(
                "AUDIENCE",
                "lists no audience: set it to your API's identifier, the `aud` your issuer puts in its access tokens (several separated by commas)",
            ));
        }
        for audience in &audiences {
            check_audience("AUDIENCE", audience).map_err(|e| {
                ConfigError::new(
                    "AUDIENCE",
                    format!("`{audience}` is not an audience: {} (several are separated by commas)", e.message()),
                )
            })?;
        }
        let mut policy = EnvPolicy { audiences, ..EnvPolicy::default() };
        let jwks_uri = lookup("JWKS_URI");
        if let Some(uri) = &jwks_uri {
            if uri.trim().is_empty() {
                return Err(ConfigError::new("JWKS_URI", "is set but empty: unset it to use discovery"));
            }
            if issuers.len() > 1 {
                return Err(ConfigError::new(
                    "JWKS_URI",
                    "holds one issuer's keys, but ISSUER lists several: unset JWKS_URI, each issuer's keys are then discovered",
                ));
            }
        }
        match lookup("TOKEN_PROFILE").as_deref().map(str::trim) {
            None | Some("rfc9068") => {}
            Some("compatible") => policy.profile = Some(Profile::Compatible),
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
            if claims.is_empty() {
                return Err(ConfigError::new(
                    "SCOPE_CLAIMS",
                    "names no claim: name at least one scope claim (scope, scp or permissions), or unset it to read `scope`",
                ));
            }
            policy.scope_claims = Some(claims);
        }
        if let Some(value) = lookup("ALLOWED_CLIENTS") {
            let clients: Vec<String> = list(&value).map(str::to_owned).collect();
            if clients.is_empty() {
                return Err(ConfigError::new(
                    "ALLOWED_CLIENTS",
                    "lists no client: an empty client allowlist would refuse every token; list client ids separated by commas, or unset it to accept any client",
                ));
            }
            policy.allowed_clients = Some(clients);
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
            if algorithms.is_empty() {
                return Err(ConfigError::new(
                    "ALGORITHMS",
                    "lists no algorithm: allow at least one algorithm, such as RS256, PS256, ES256, EdDSA, or unset it for all of them",
                ));
            }
            // A shared secret is given in code only (`shared_secret`), never in a variable.
            if let Some(alg) = algorithms.iter().find(|alg| alg.is_symmetric()) {
                return Err(ConfigError::new(
                    "ALGORITHMS",
                    format!(
                        "`{alg}` needs a shared secret, which is not read from the environment: list public-key algorithms such as RS256, PS256, ES256, EdDSA"
                    ),
                ));
            }
            policy.algorithms = Some(algorithms);
        }
        if let Some(value) = lookup("LEEWAY_SECS") {
            let secs = value.trim().parse::<u64>().ok().filter(|secs| *secs <= 300).ok_or_else(|| {
                ConfigError::new("LEEWAY_SECS", format!("`{value}` is not a number of seconds from 0 to 300"))
            })?;
            policy.leeway = Some(Duration::from_secs(secs));
        }
        let mut issuers = issuers.into_iter();
        let first = issuers.next().ok_or_else(|| ConfigError::new("ISSUER", "lists no issuer"))?;
        let mut builder = policy.apply(Authority::builder().issuer(first));
        builder.from_env.issuer = true;
        if let Some(uri) = jwks_uri {
            builder = builder.jwks_uri(uri);
            builder.from_env.jwks_uri = true;
        }
        for other in issuers {
            let mut added = policy.apply(Authority::builder().issuer(other));
            added.from_env.issuer = true;
            builder = builder.also_trust(added);
        }
        Ok(builder)
    }
}

/// The token policy read from the environment, given to every issuer's builder.
#[derive(Default)]
struct EnvPolicy {
    audiences: Vec<String>,
    profile: Option<Profile>,
    scope_claims: Option<Vec<ScopeClaim>>,
    allowed_clients: Option<Vec<String>>,
    algorithms: Option<Vec<Algorithm>>,
    leeway: Option<Duration>,
}

impl EnvPolicy {
    fn apply(&self, mut builder: AuthorityBuilder) -> AuthorityBuilder {
        for audience in &self.audiences {
            builder = builder.audience(audience);
        }
        if let Some(profile) = self.profile {
            builder = builder.profile(profile);
        }
        if let Some(claims) = &self.scope_claims {
            builder = builder.scope_claims(claims.iter().copied());
        }
        if let Some(clients) = &self.allowed_clients {
            builder = builder.allowed_clients(clients);
        }
        if let Some(algorithms) = &self.algorithms {
            builder = builder.algorithms(algorithms.iter().copied());
        }
        if let Some(leeway) = self.leeway {
            builder = builder.leeway(leeway);
        }
        builder
    }
}

/// The issuers of a comma-separated `ISSUER` value, read as
/// [`AuthorityBuilder::from_env`] reads them: one, or several separated by commas (an
/// issuer identifier is a URL, which has no comma worth keeping), each an `https` or
/// `http` URL, none twice. For an application that reads its own configuration and
/// wants the same rules (the example service does).
///
/// # Errors
/// A [`ConfigError`] for `ISSUER` naming the item that is not an issuer URL or is listed
/// twice.
///
/// ```
/// let issuers = scopegate::issuer_list("https://a.example/, https://b.example/").unwrap();
/// assert_eq!(issuers, ["https://a.example/", "https://b.example/"]);
/// assert_eq!(scopegate::issuer_list("a.example").unwrap_err().setting(), "ISSUER");
/// ```
pub fn issuer_list(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut issuers: Vec<String> = Vec::new();
    for issuer in value.split(',').map(str::trim) {
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(ConfigError::new(
                "ISSUER",
                format!(
                    "`{issuer}` is not an issuer URL: use the exact `iss` of your tokens, such as https://your-tenant.example/ (several separated by commas)"
                ),
            ));
        }
        if issuers.iter().any(|i| i == issuer) {
            return Err(ConfigError::new("ISSUER", format!("`{issuer}` is listed twice")));
        }
        issuers.push(issuer.to_owned());
    }
    Ok(issuers)
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
            (
                &[ISS, AUD, ("ALGORITHMS", "HS256")],
                "ALGORITHMS",
                "`HS256` needs a shared secret, which is not read from",
            ),
            (&[ISS, AUD, ("ALGORITHMS", ",")], "ALGORITHMS", "lists no algorithm: allow at least one algorithm"),
            (&[ISS, AUD, ("ALLOWED_CLIENTS", "")], "ALLOWED_CLIENTS", "would refuse every token"),
            (&[ISS, AUD, ("SCOPE_CLAIMS", "")], "SCOPE_CLAIMS", "name at least one scope claim"),
            (&[ISS, ("AUDIENCE", ",")], "AUDIENCE", "lists no audience"),
            (
                &[ISS, ("AUDIENCE", "api, a b")],
                "AUDIENCE",
                "`a b` is not an audience: an audience must be non-empty and contain no whitespace",
            ),
            (&[ISS, AUD, ("LEEWAY_SECS", "301")], "LEEWAY_SECS", "`301` is not a number of seconds"),
            (&[ISS, AUD, ("LEEWAY_SECS", "soon")], "LEEWAY_SECS", "`soon` is not a number of seconds"),
            (&[("ISSUER", "tenant.example"), AUD], "ISSUER", "`tenant.example` is not an issuer URL"),
            (&[("ISSUER", "https://a.example/,"), AUD], "ISSUER", "`` is not an issuer URL"),
            (
                &[("ISSUER", "https://a.example/, https://a.example/"), AUD],
                "ISSUER",
                "`https://a.example/` is listed twice",
            ),
            (
                &[("ISSUER", "https://a.example/,https://b.example/"), AUD, ("JWKS_URI", "https://a.example/keys")],
                "JWKS_URI",
                "holds one issuer's keys, but ISSUER lists several",
            ),
            // Refused when building, by the builder's own checks: named all the same.
            (
                &[("ISSUER", "http://issuer.example/"), AUD],
                "ISSUER",
                "keys are discovered from the issuer URL, but `http://issuer.example/` must use https (plain http is allowed only for loopback hosts); or set JWKS_URI",
            ),
            (
                &[("ISSUER", "https://a.example/,http://b.example/"), AUD],
                "ISSUER",
                "for the issuer `http://b.example/` added with also_trust: keys are discovered from the issuer URL, but `http://b.example/` must use https",
            ),
            (&[ISS, AUD, ("JWKS_URI", "keys.json")], "JWKS_URI", "`keys.json` is not a URL"),
            (&[ISS, AUD, ("JWKS_URI", "http://issuer.example/keys")], "JWKS_URI", "must use https"),
        ];
        for (vars, variable, message) in cases {
            let Err(error) = builder(vars).and_then(AuthorityBuilder::build) else { panic!("{vars:?} was accepted") };
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

    /// Two issuers, `{base}/a/` and `{base}/b/`, each with its own keys, served on
    /// 127.0.0.1 with a discovery document and a JWKS.
    async fn two_issuers() -> (String, crate::testing::TestIssuer, crate::testing::TestIssuer) {
        use axum::{Json, Router, routing::get};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let a = crate::testing::TestIssuer::with_fresh_keys(format!("{base}/a/"));
        let b = crate::testing::TestIssuer::with_fresh_keys(format!("{base}/b/"));
        let discovery = |name: &str| {
            let doc =
                serde_json::json!({"issuer": format!("{base}/{name}/"), "jwks_uri": format!("{base}/{name}/keys")});
            move || async move { Json(doc) }
        };
        let (keys_a, keys_b) = (a.jwks(), b.jwks());
        let app = Router::new()
            .route("/a/.well-known/openid-configuration", get(discovery("a")))
            .route("/b/.well-known/openid-configuration", get(discovery("b")))
            .route("/a/keys", get(move || async move { Json(keys_a) }))
            .route("/b/keys", get(move || async move { Json(keys_b) }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, a, b)
    }

    #[tokio::test]
    async fn several_issuers_each_get_the_policy_and_only_their_own_keys() {
        let (base, a, b) = two_issuers().await;
        let issuers = format!("{base}/a/, {base}/b/");
        let authority = builder(&[("ISSUER", &issuers), ("AUDIENCE", "api"), ("TOKEN_PROFILE", "compatible")])
            .unwrap()
            .connect()
            .await
            .unwrap();
        assert_eq!(authority.issuers(), [a.issuer(), b.issuer()]);
        // Tokens typed `JWT` (the compatible profile) for `api`, of each issuer.
        let of = |issuer: &crate::testing::TestIssuer| issuer.access_token().typ("JWT").audience("api");
        for issuer in [&a, &b] {
            let token = authority.verify(&of(issuer).sign()).await.unwrap();
            assert_eq!(token.issuer(), issuer.issuer());
        }
        let outcome = |result: Result<crate::AccessToken, crate::Rejection>| result.map(|_| ()).map_err(|r| r.reason());
        // The second issuer holds the same audience: a token of b for another API is refused.
        assert_eq!(outcome(authority.verify(&of(&b).audience("other").sign()).await), Err("invalid_audience"));
        // A token naming b, signed with a's keys, is checked against b's keys only.
        let forged = a.access_token().typ("JWT").audience("api").claim("iss", b.issuer()).sign();
        assert_eq!(outcome(authority.verify(&forged).await), Err("invalid_signature"));
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
        assert_eq!(error.setting(), "JWKS_URI");
        assert_eq!(
            error.message(),
            "`http://issuer.example/keys` must use https (plain http is allowed only for loopback hosts)"
        );
    }

    #[test]
    fn a_setting_given_again_in_code_is_named_as_the_builder_names_it() {
        let vars = [("ISSUER", "https://issuer.example/"), ("AUDIENCE", "api")];
        let refused = |builder: AuthorityBuilder| builder.build().unwrap_err().setting();
        assert_eq!(refused(builder(&vars).unwrap().jwks_uri("http://issuer.example/keys")), "jwks_uri");
        assert_eq!(refused(builder(&vars).unwrap().issuer("http://issuer.example/")), "issuer");
        // The environment's JWKS_URI against static keys given in code: the variable is named.
        assert_eq!(
            refused(
                builder(&[vars[0], vars[1], ("JWKS_URI", "https://issuer.example/keys")]).unwrap().static_jwks(JWKS)
            ),
            "JWKS_URI"
        );
    }

    #[tokio::test]
    async fn an_unreachable_issuer_of_the_environment_is_named_by_its_variable() {
        // Nothing listens on port 1 of the loopback interface: the connection is refused.
        let error =
            builder(&[("ISSUER", "http://127.0.0.1:1/"), ("AUDIENCE", "api")]).unwrap().connect().await.unwrap_err();
        assert_eq!((error.setting(), error.is_unreachable()), ("ISSUER", true));
    }
}
