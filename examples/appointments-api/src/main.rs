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
    dpop::{DpopPolicy, RedisReplayStore},
};
use tokio::net::TcpListener;

use crate::{
    config::{Config, DpopReplayStore, IssuerConfig},
    dev_issuer::DevIssuer,
    routes::AppState,
    store::Store,
};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, no backtrace: the error names the setting to fix.
            eprintln!("appointments-api: {}", error.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// Configuration → state → router → serve.
async fn run() -> Result<(), String> {
    if std::env::args().nth(1).as_deref() == Some("--routes") {
        let audience = std::env::var("AUDIENCE").unwrap_or_else(|_| config::DEFAULT_AUDIENCE.to_owned());
        print_routes(&routes::policy(&audience));
        return Ok(());
    }
    let config = Config::from_env().map_err(|e| e.to_string())?;
    // A failed start is reported as one error line, so by default the log starts once the
    // service is configured; an explicit RUST_LOG logs the start too (to debug discovery).
    let mut logging = Logging::parse(config.log_filter.as_deref())?;
    if config.log_filter.is_some() {
        logging.start()?;
    }

    let store = Store::open(config.database_path.as_deref())
        .map_err(|e| format!("invalid DATABASE_PATH: cannot open the database: {e}"))?;
    let listener = TcpListener::bind(config.bind).await.map_err(|e| bind_error(config.bind, &e))?;
    let address = listener.local_addr().map_err(|e| format!("invalid BIND: {e}"))?;

    // No ISSUER: start the development issuer, then trust it like any other issuer.
    let dev_issuer = match &config.issuer {
        IssuerConfig::Development => {
            let introspection = config.introspection.as_ref().map(|i| (i.client_id.clone(), i.client_secret.clone()));
            Some(DevIssuer::start(&config.audience, introspection).await?)
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
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("shut down");
    Ok(())
}

/// The verifier: discovery and keys over HTTP from `ISSUER` (or the development issuer),
/// fetched now so that an unreachable issuer stops the start with a clear error.
async fn authority(config: &Config, dev_issuer: Option<&DevIssuer>) -> Result<Authority, String> {
    let no_others = Vec::new();
    let (issuer, others, jwks_uri, setting) = match (&config.issuer, dev_issuer) {
        (IssuerConfig::External { issuer, also, jwks_uri: Some(uri) }, _) => {
            (issuer.as_str(), also, Some(uri.as_str()), "JWKS_URI")
        }
        (IssuerConfig::External { issuer, also, jwks_uri: None }, _) => (issuer.as_str(), also, None, "ISSUER"),
        (IssuerConfig::Development, Some(dev_issuer)) => {
            (dev_issuer.issuer(), &no_others, None, "the development issuer")
        }
        (IssuerConfig::Development, None) => return Err("the development issuer did not start".to_owned()),
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
            let store = RedisReplayStore::connect(url).await.map_err(|e| match std::error::Error::source(&e) {
                Some(cause) => format!("cannot use DPOP_REPLAY_STORE: {e}: {cause}"),
                None => format!("cannot use DPOP_REPLAY_STORE: {e}"),
            })?;
            builder = builder.dpop_replay_store(Arc::new(store));
        }
    } else {
        tracing::warn!(audience = %config.audience, "DPoP is off: the audience is not an http(s) URL to compare proofs' htu with");
    }
    // COPY: other policies go here, e.g. `.allowed_clients([...])` or `.leeway(...)`.
    // `.build()` instead of `.connect()` would start at once, without waiting for the
    // issuer, and answer 503 until its keys arrive.
    builder.connect().await.map_err(|e| match e.setting() {
        // The error names which of the listed issuers it is about.
        "also_trust" => format!("cannot use an issuer of ISSUER: {e}"),
        _ => format!("cannot use the issuer {issuer} ({setting}): {e}"),
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
fn bind_error(bind: std::net::SocketAddr, error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "cannot listen on {bind} (BIND): the address is already in use by another process; stop it, or set BIND to another port"
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            format!("cannot listen on {bind} (BIND): no network interface of this machine has that address")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot listen on {bind} (BIND): permission denied (ports below 1024 need privileges)")
        }
        _ => format!("cannot listen on {bind} (BIND): {error}"),
    }
}

/// The log, on stderr (stdout carries the banner and the `listening on` line).
struct Logging(Option<tracing_subscriber::EnvFilter>);

impl Logging {
    /// Checks `RUST_LOG` (default `info`).
    fn parse(filter: Option<&str>) -> Result<Self, String> {
        // One line per refused request (scopegate's DEBUG event, never the token) besides
        // the request log.
        let filter = filter.unwrap_or("info,scopegate=debug");
        let parsed = tracing_subscriber::EnvFilter::builder().parse(filter);
        parsed.map(|filter| Self(Some(filter))).map_err(|e| format!("invalid RUST_LOG: `{filter}`: {e}"))
    }

    /// Starts logging; once started, does nothing.
    fn start(&mut self) -> Result<(), String> {
        let Some(filter) = self.0.take() else { return Ok(()) };
        let subscriber = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        subscriber.try_init().map_err(|e| format!("cannot start logging: {e}"))
    }
}

/// The one line tests and scripts wait for: the address actually bound (`BIND=…:0` picks
/// a free port).
#[allow(clippy::print_stdout, reason = "the route table is the output of `--routes`")]
fn print_routes(policy: &scopegate::policy::Policy) {
    print!("{policy}");
}

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
