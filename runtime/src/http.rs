//! Fetching issuer documents over HTTP: the URL policy (https only, http for loopback,
//! no private or link-local targets unless allowed), timeouts, redirects and a streamed
//! body cap.
//!
//! Every URL fetched comes from the configuration or from the configured issuer's
//! discovery document, never from a token (`jku`, `x5u` and `iss` are never followed).

use std::{
    fmt,
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    time::Duration,
};

use reqwest::{
    Client, StatusCode, Url,
    dns::{Addrs, Name, Resolve},
    header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH},
    redirect,
};

use crate::authority::ConfigError;

/// Limits on every request to the issuer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimits {
    pub(crate) connect_timeout: Duration,
    pub(crate) total_timeout: Duration,
    pub(crate) max_body: usize,
    pub(crate) allow_private_networks: bool,
}

/// The longest JWKS or discovery document accepted by default.
pub const DEFAULT_MAX_DOCUMENT_SIZE: usize = 256 * 1024;
/// The default TCP (and TLS) connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default timeout for a whole request, body included.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            total_timeout: DEFAULT_TOTAL_TIMEOUT,
            max_body: DEFAULT_MAX_DOCUMENT_SIZE,
            allow_private_networks: false,
        }
    }
}

/// Why a fetch failed. Logged with its code; the last good keys are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// Connecting or the whole request took longer than its timeout.
    Timeout,
    /// The connection failed (refused, reset, TLS handshake or certificate failure, DNS).
    Connect,
    /// The server answered with a non-success status.
    Status(u16),
    /// A redirect to another host, to `http:`, or more than one.
    Redirect,
    /// The body exceeded the size cap.
    TooLarge,
    /// The body is not the expected JSON document.
    NotJson,
    /// The JWK set holds no usable key, or too many.
    BadKeySet(String),
    /// The discovery document's `issuer` is not the configured issuer, byte for byte.
    IssuerMismatch,
    /// The discovery document's `jwks_uri` is missing or violates the URL policy.
    BadJwksUri(String),
}

impl FetchError {
    /// A stable code for logs and metrics.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Status(_) => "http_status",
            Self::Redirect => "redirect",
            Self::TooLarge => "too_large",
            Self::NotJson => "not_json",
            Self::BadKeySet(_) => "bad_key_set",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::BadJwksUri(_) => "bad_jwks_uri",
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("the request timed out"),
            Self::Connect => f.write_str("the connection failed"),
            Self::Status(code) => write!(f, "the server answered HTTP {code}"),
            Self::Redirect => f.write_str("the server redirected to another host, to http, or more than once"),
            Self::TooLarge => f.write_str("the document exceeds the size limit"),
            Self::NotJson => f.write_str("the response is not the expected JSON document"),
            Self::BadKeySet(why) => write!(f, "the key set is unusable: {why}"),
            Self::IssuerMismatch => f.write_str("the discovery document names another issuer"),
            Self::BadJwksUri(why) => write!(f, "the discovery document's jwks_uri is unusable: {why}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// A successfully fetched document.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) body: Vec<u8>,
    pub(crate) cache_control: Option<String>,
}

/// The HTTP client for one issuer.
#[derive(Debug, Clone)]
pub(crate) struct IssuerClient {
    client: Client,
    limits: HttpLimits,
}

impl IssuerClient {
    /// The client, trusting the system's CAs, or only `roots` (DER certificates) when
    /// given (settable with the `testing` feature only, for TLS servers a test starts).
    pub(crate) fn new(limits: HttpLimits, roots: &[Vec<u8>]) -> Result<Self, ConfigError> {
        let mut builder = Client::builder()
            .user_agent(concat!("scopegate/", env!("CARGO_PKG_VERSION"), " (JWKS fetcher)"))
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.total_timeout)
            .redirect(redirect::Policy::custom(same_host_https_once))
            .no_proxy()
            .dns_resolver(FilteringResolver { allow_private: limits.allow_private_networks });
        if !roots.is_empty() {
            let certificates =
                roots.iter().map(|der| reqwest::Certificate::from_der(der)).collect::<Result<Vec<_>, _>>();
            let certificates = certificates
                .map_err(|e| ConfigError::new("tls_root_certificate", format!("not a DER certificate: {e}")))?;
            builder = builder.tls_certs_only(certificates);
        }
        let client = builder
            .build()
            .map_err(|e| ConfigError::new("http", format!("the HTTP client could not be built: {e}")))?;
        Ok(Self { client, limits })
    }

    pub(crate) fn total_timeout(&self) -> Duration {
        self.limits.total_timeout
    }

    /// GETs a JSON document with the size cap enforced while streaming.
    pub(crate) async fn get(&self, url: &Url) -> Result<Fetched, FetchError> {
        let mut response = self
            .client
            .get(url.clone())
            .header(ACCEPT, "application/json, application/jwk-set+json")
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let declared =
            response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.limits.max_body as u64) {
            return Err(FetchError::TooLarge);
        }
        let cache_control = response.headers().get(CACHE_CONTROL).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            if body.len() + chunk.len() > self.limits.max_body {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, cache_control })
    }
}

fn classify(error: &reqwest::Error) -> FetchError {
    if error.is_timeout() {
        FetchError::Timeout
    } else if error.is_redirect() {
        FetchError::Redirect
    } else {
        FetchError::Connect
    }
}

/// Follows at most one redirect, and only to https on the same host (security spec 163).
fn same_host_https_once(attempt: redirect::Attempt<'_>) -> redirect::Action {
    let same_host = attempt.previous().first().is_some_and(|first| first.host_str() == attempt.url().host_str());
    if attempt.previous().len() > 1 || attempt.url().scheme() != "https" || !same_host {
        attempt.error("redirect refused")
    } else {
        attempt.follow()
    }
}

/// Checks a configured or discovered URL against the policy: https, or http to a
/// loopback host; no credentials; no private, link-local or metadata addresses unless
/// allowed.
pub(crate) fn check_url(url: &str, allow_private: bool) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    let host = parsed.host_str().ok_or_else(|| format!("`{url}` has no host"))?;
    let ip: Option<IpAddr> = host.trim_start_matches('[').trim_end_matches(']').parse().ok();
    let loopback = host == "localhost" || ip.is_some_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(format!("`{url}` must use https (plain http is allowed only for loopback hosts)")),
        other => return Err(format!("`{url}` has the unsupported scheme `{other}`; use https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("`{url}` must not carry credentials"));
    }
    if let Some(ip) = ip
        && !allow_private
        && is_blocked(ip)
    {
        return Err(format!(
            "`{url}` points at a private, link-local or metadata address; allow it with .allow_private_networks(true) if intended"
        ));
    }
    Ok(parsed)
}

/// Addresses a key fetch must not reach unless private networks are allowed: private,
/// shared (CGNAT), link-local (including cloud metadata), unspecified, broadcast,
/// multicast and documentation ranges. Loopback is allowed (development issuers).
pub(crate) fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_blocked(IpAddr::V4(v4));
            }
            let first = v6.segments().first().copied().unwrap_or_default();
            v6.is_unspecified() || v6.is_multicast() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// A resolver that drops blocked addresses, so a DNS name cannot smuggle a request into
/// a private network (DNS rebinding included: the filtered addresses are the ones used).
#[derive(Debug, Clone, Copy)]
struct FilteringResolver {
    allow_private: bool,
}

impl Resolve for FilteringResolver {
    fn resolve(
        &self,
        name: Name,
    ) -> Pin<Box<dyn Future<Output = Result<Addrs, Box<dyn std::error::Error + Send + Sync>>> + Send>> {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allow_private || !is_blocked(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves only to blocked addresses").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_policy() {
        assert!(check_url("https://issuer.example/.well-known/jwks.json", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks", false).is_ok());
        assert!(check_url("http://[::1]:8080/jwks", false).is_ok());
        assert!(check_url("http://localhost/jwks", false).is_ok());
        assert!(check_url("http://issuer.example/jwks", false).unwrap_err().contains("must use https"));
        assert!(check_url("ftp://issuer.example/jwks", false).is_err());
        assert!(check_url("https://user:pw@issuer.example/jwks", false).is_err());
        assert!(check_url("https://169.254.169.254/latest", false).unwrap_err().contains("allow_private_networks"));
        assert!(check_url("https://10.0.0.1/jwks", false).is_err());
        assert!(check_url("https://10.0.0.1/jwks", true).is_ok());
        assert!(check_url("https://[fe80::1]/jwks", false).is_err());
        assert!(check_url("not a url", false).is_err());
    }
}
