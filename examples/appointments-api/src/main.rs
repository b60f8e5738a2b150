//! # appointments-api: an API protected by scopegate, made to be copied
//!
//! Run it with no setup (a development issuer starts in the same process and prints how
//! to get a token):
//!
//! ```sh
//! cargo run -p appointments-api
//! ```
//!
//! Run it against a real issuer (Auth0, Okta, Entra ID, Keycloak, any OIDC issuer):
//!
//! ```sh
//! ISSUER=https://your-tenant.example/ AUDIENCE=https://api.example.test cargo run -p appointments-api
//! ```
//!
//! Settings are in `config.rs`; routes and their scopes in `routes.rs`; the SQLite store
//! in `store.rs`; the development issuer in `dev_issuer.rs`. Lines marked `COPY:` are the
//! ones a copy usually changes.

mod config;
mod dev_issuer;
mod error;
mod routes;
mod store;

use std::{process::ExitCode, sync::Arc};

use scopegate::{
    Authority, AuthorityBuilder, Profile, ScopeClaim,
    dpop::{DpopNonce, DpopPolicy, RedisReplayStore, ReplayStoreError},
};
use tokio::net::TcpListener;

use crate::{
    config::{Config, DpopNonces, DpopReplayStore, IssuerConfig},
    dev_issuer::DevIssuer,
    routes::AppState,
    store::{Store, StoreError},
};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, no backtrace: the error names the setting to fix.
            eprintln!("appointments-api: {}", error.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// Why the service did not start (or stopped serving). Each message is the one line
/// `main` prints: it names the setting to fix and says why, its cause included; the cause
/// is also kept as the error's `source`.
#[derive(Debug, thiserror::Error)]
enum StartError {
    /// A variable has a value that cannot be used.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// `RUST_LOG` is not a tracing filter.
    #[error("invalid RUST_LOG: `{filter}`: {source}")]
    LogFilter { filter: String, source: tracing_subscriber::filter::ParseError },
    /// Another subscriber was installed first.
    #[error("cannot start logging: {0}")]
    Logging(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// `DATABASE_PATH` cannot be opened as a database.
    #[error("invalid DATABASE_PATH: cannot open the database: {0}")]
    Database(#[source] StoreError),
    /// `BIND` cannot be listened on.
    #[error("cannot listen on {bind} (BIND): {}", bind_reason(source))]
    Bind { bind: std::net::SocketAddr, source: std::io::Error },
    /// The bound socket has no local address.
    #[error("invalid BIND: {0}")]
    LocalAddress(#[source] std::io::Error),
    /// The development issuer did not start.
    #[error("{0}")]
    DevIssuer(String),
    /// `DPOP_REPLAY_STORE` names a Redis that cannot be used.
    #[error("cannot use DPOP_REPLAY_STORE: {}", with_cause(source))]
    ReplayStore {
        #[source]
        source: ReplayStoreError,
    },
    /// One of the further issuers of `ISSUER` cannot be used.
    #[error("cannot use an issuer of ISSUER: {0}")]
    AddedIssuer(#[source] scopegate::ConfigError),
    /// The issuer (`ISSUER`, `JWKS_URI` or the development issuer) cannot be used.
    #[error("cannot use the issuer {issuer} ({setting}): {source}")]
    Issuer { issuer: String, setting: &'static str, source: scopegate::ConfigError },
    /// The server stopped with an error.
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}

/// Configuration → state → router → serve.
async fn run() -> Result<(), StartError> {
    if std::env::args().nth(1).as_deref() == Some("--routes") {
        let audience = std::env::var("AUDIENCE").unwrap_or_else(|_| config::DEFAULT_AUDIENCE.to_owned());
        print_routes(&routes::policy(&audience));
        return Ok(());
    }
    let config = Config::from_env()?;
    // A failed start is reported as one error line, so by default the log starts once the
    // service is configured; an explicit RUST_LOG logs the start too (to debug discovery).
    let mut logging = Logging::parse(config.log_filter.as_deref())?;
    if config.log_filter.is_some() {
        logging.start()?;
    }

    let store = Store::open(config.database_path.as_deref()).map_err(StartError::Database)?;
    let listener =
        TcpListener::bind(config.bind).await.map_err(|source| StartError::Bind { bind: config.bind, source })?;
    let address = listener.local_addr().map_err(StartError::LocalAddress)?;

    // No ISSUER: start the development issuer, then trust it like any other issuer.
    let dev_issuer = match &config.issuer {
        IssuerConfig::Development => {
            let introspection = config.introspection.as_ref().map(|i| (i.client_id.clone(), i.client_secret.clone()));
            Some(DevIssuer::start(&config.audience, introspection).await.map_err(StartError::DevIssuer)?)
        }
        IssuerConfig::External { .. } => None,
    };
    let authority = authority(&config, dev_issuer.as_ref()).await?;

    logging.start()?;
    let (issuers, audience, profile) = (authority.issuers().join(", "), &config.audience, config.profile);
    tracing::info!(issuers, audience, ?profile, "verifying access tokens");
    if let Some(dev_issuer) = &dev_issuer {
        dev_issuer.print_banner(address);
    }
    announce(address);

    let app = routes::router(AppState { authority, store });
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.map_err(StartError::Serve)?;
    tracing::info!("shut down");
    Ok(())
}

/// The verifier: discovery and keys over HTTP from `ISSUER` (or the development issuer),
/// fetched now so that an unreachable issuer stops the start with a clear error.
async fn authority(config: &Config, dev_issuer: Option<&DevIssuer>) -> Result<Authority, StartError> {
    let no_others = Vec::new();
    let (issuer, others, jwks_uri, setting) = match (&config.issuer, dev_issuer) {
        (IssuerConfig::External { issuer, also, jwks_uri: Some(uri) }, _) => {
            (issuer.as_str(), also, Some(uri.as_str()), "JWKS_URI")
        }
        (IssuerConfig::External { issuer, also, jwks_uri: None }, _) => (issuer.as_str(), also, None, "ISSUER"),
        (IssuerConfig::Development, Some(dev_issuer)) => {
            (dev_issuer.issuer(), &no_others, None, "the development issuer")
        }
        (IssuerConfig::Development, None) => {
            return Err(StartError::DevIssuer("the development issuer did not start".to_owned()));
        }
    };
    let mut builder = issuer_policy(Authority::builder().issuer(issuer), config);
    // RFC 9728: every challenge names the metadata URL formed from the audience (when it is
    // an https or http URL), never from the request's `Host`.
    if scopegate::policy::metadata_url(&config.audience).is_some() {
        builder = builder.protected_resource_metadata(true);
    }
    if let Some(jwks_uri) = jwks_uri {
        builder = builder.jwks_uri(jwks_uri);
    }
    // `ISSUER=https://a/,https://b/`: each further issuer with its own discovery and keys,
    // and the same policy; a token is verified only with its own issuer's keys.
    for other in others {
        builder = builder.also_trust(issuer_policy(Authority::builder().issuer(other), config));
    }
    if let Some(introspection) = &config.introspection {
        // Opaque tokens: introspected at the issuer with this API's own credentials.
        builder = builder.introspection(&introspection.client_id, &introspection.client_secret);
        if let Some(uri) = &introspection.uri {
            builder = builder.introspection_endpoint(uri);
        }
        builder = builder.introspection_accepts_missing_audience(introspection.accepts_missing_audience);
        if let Some(ttl) = introspection.cache_ttl {
            builder = builder.introspection_cache_ttl(ttl);
        }
    }
    // DPoP (RFC 9449): `Authorization: DPoP` with a proof, next to bearer tokens. A proof's
    // `htu` is compared with the audience as the external URL (set `.public_url(...)` when
    // the API is reached at another one), so DPoP needs an http(s) audience.
    if scopegate::policy::metadata_url(&config.audience).is_some() {
        builder = builder.dpop(DpopPolicy::Allowed);
        if let DpopReplayStore::Redis(url) = &config.dpop_replay_store {
            let store = RedisReplayStore::connect(url).await.map_err(|source| StartError::ReplayStore { source })?;
            builder = builder.dpop_replay_store(Arc::new(store));
        }
        match &config.dpop_nonces {
            DpopNonces::Off => {}
            DpopNonces::Random => builder = builder.dpop_nonce(DpopNonce::random()),
            DpopNonces::Shared(secret) => builder = builder.dpop_nonce(DpopNonce::shared_secret(secret.as_bytes())),
        }
    } else {
        tracing::warn!(audience = %config.audience, "DPoP is off: the audience is not an http(s) URL to compare proofs' htu with");
    }
    // COPY: other policies go here, e.g. `.allowed_clients([...])` or `.leeway(...)`.
    // `.build()` instead of `.connect()` would start at once, without waiting for the
    // issuer, and answer 503 until its keys arrive.
    builder.connect().await.map_err(|source| match source.setting() {
        // The error names which of the listed issuers it is about.
        "also_trust" => StartError::AddedIssuer(source),
        _ => StartError::Issuer { issuer: issuer.to_owned(), setting, source },
    })
}

/// What every trusted issuer's tokens are held to: the audience, the token profile and
/// its scope claims, the key refresh cooldown, the verified-token cache (each issuer has
/// its own).
fn issuer_policy(mut builder: AuthorityBuilder, config: &Config) -> AuthorityBuilder {
    builder = builder.audience(&config.audience).profile(config.profile);
    if config.profile == Profile::Compatible {
        // Okta and Entra ID put the scopes in `scp`; Auth0 and Keycloak in `scope`.
        builder = builder.scope_claims([ScopeClaim::Scope, ScopeClaim::Scp]);
    }
    if let Some(cooldown) = config.refresh_cooldown {
        builder = builder.jwks_refresh_cooldown(cooldown);
    }
    if !config.token_cache {
        builder = builder.token_cache_capacity(0);
    }
    builder
}

/// Why `BIND` could not be listened on: a value that parsed is a valid address, so the
/// usual causes are the machine's, said as such.
fn bind_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "the address is already in use by another process; stop it, or set BIND to another port".to_owned()
        }
        std::io::ErrorKind::AddrNotAvailable => "no network interface of this machine has that address".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".to_owned(),
        _ => error.to_string(),
    }
}

/// An error and, when it has one, its cause: `{error}: {cause}`.
fn with_cause(error: &dyn std::error::Error) -> String {
    match error.source() {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// The log, on stderr (stdout carries the banner and the `listening on` line).
struct Logging(Option<tracing_subscriber::EnvFilter>);

impl Logging {
    /// Checks `RUST_LOG` (default `info,scopegate=debug`).
    fn parse(filter: Option<&str>) -> Result<Self, StartError> {
        // One line per refused request (scopegate's DEBUG event, never the token) besides
        // the request log.
        let filter = filter.unwrap_or("info,scopegate=debug");
        let parsed = tracing_subscriber::EnvFilter::builder().parse(filter);
        parsed
            .map(|filter| Self(Some(filter)))
            .map_err(|source| StartError::LogFilter { filter: filter.to_owned(), source })
    }

    /// Starts logging; once started, does nothing.
    fn start(&mut self) -> Result<(), StartError> {
        let Some(filter) = self.0.take() else { return Ok(()) };
        let subscriber = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        subscriber.try_init().map_err(StartError::Logging)
    }
}

/// `--routes`: the route table, printed to stdout.
#[allow(clippy::print_stdout, reason = "the route table is the output of `--routes`")]
fn print_routes(policy: &scopegate::policy::Policy) {
    print!("{policy}");
}

/// The one line tests and scripts wait for: the address actually bound (`BIND=…:0` picks
/// a free port).
#[allow(clippy::print_stdout, reason = "a machine-readable line on stdout, independent of RUST_LOG")]
fn announce(address: std::net::SocketAddr) {
    println!("listening on http://{address}");
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (`docker stop`, Kubernetes): in-flight requests
/// finish, new connections are refused.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_start_error_names_the_setting_and_its_cause_and_keeps_the_cause_as_its_source() {
        let bind: std::net::SocketAddr = ([127, 0, 0, 1], 8080).into();
        let error = StartError::Bind { bind, source: std::io::ErrorKind::AddrInUse.into() };
        assert_eq!(
            error.to_string(),
            "cannot listen on 127.0.0.1:8080 (BIND): the address is already in use by another process; stop it, or set BIND to another port"
        );
        let source = error.source().and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(source.map(std::io::Error::kind), Some(std::io::ErrorKind::AddrInUse));

        let error = StartError::Database(StoreError::Database(rusqlite::Error::QueryReturnedNoRows));
        assert_eq!(
            error.to_string(),
            "invalid DATABASE_PATH: cannot open the database: database error: Query returned no rows"
        );
        let source = error.source().and_then(|s| s.downcast_ref::<StoreError>());
        assert!(matches!(source, Some(StoreError::Database(rusqlite::Error::QueryReturnedNoRows))), "{source:?}");
    }
}
