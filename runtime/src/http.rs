//! Fetching issuer documents over HTTP: the URL policy (https only, http for loopback,
//! no private or link-local targets unless allowed), timeouts, redirects and a streamed
//! body cap.
//!
//! Every URL fetched comes from the configuration or from the configured issuer's
//! discovery document, never from a token (`jku`, `x5u` and `iss` are never followed).

use std::{
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    pin::Pin,
    time::Duration,
};

use reqwest::{
    Client, StatusCode, Url,
    dns::{Addrs, Name, Resolve},
    header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH},
    redirect,
};

use crate::{config::ConfigError, keys::KeySetError};

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

impl HttpLimits {
    /// Checks the limits of every request to the issuer (keys, discovery, introspection),
    /// naming the builder setting that is out of bounds.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let max_timeout = Duration::from_secs(60);
        if self.connect_timeout.is_zero()
            || self.total_timeout.is_zero()
            || self.connect_timeout > max_timeout
            || self.total_timeout > max_timeout
        {
            return Err(ConfigError::new("http_timeouts", "timeouts must be positive and at most 60 seconds"));
        }
        if !(1024..=4 * 1024 * 1024).contains(&self.max_body) {
            return Err(ConfigError::new("max_jwks_size", "the JWKS size limit must be between 1 KiB and 4 MiB"));
        }
        Ok(())
    }
}

/// Why a fetch failed. Logged with its code; the last good keys are kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Connecting or the whole request took longer than its timeout.
    #[error("the request timed out")]
    Timeout,
    /// The host name could not be resolved, or resolves only to blocked addresses.
    #[error("the host name could not be resolved to an allowed address")]
    Dns,
    /// The connection was refused or reset.
    #[error("the connection was refused or reset")]
    Connect,
    /// The TLS handshake failed: an untrusted certificate, a certificate for another
    /// name, or no common protocol.
    #[error("the TLS handshake failed (certificate not trusted, or issued for another name)")]
    Tls,
    /// The server answered with a non-success status.
    #[error("the server answered HTTP {0}")]
    Status(u16),
    /// A redirect to another host, to `http:`, or more than one.
    #[error("the server redirected to another host, to http, or more than once")]
    Redirect,
    /// The body exceeded the size cap.
    #[error("the document exceeds the size limit")]
    TooLarge,
    /// The body is not the expected JSON document.
    #[error("the response is not the expected JSON document")]
    NotJson,
    /// The JWK set holds no usable key, or too many. The message names the cause too, so
    /// that the one line a startup error prints says what is wrong with the set.
    #[error("the key set is unusable: {0}")]
    BadKeySet(#[source] KeySetError),
    /// The discovery document's `issuer` is not the configured issuer, byte for byte.
    #[error("the discovery document names another issuer")]
    IssuerMismatch,
    /// The discovery document's `jwks_uri` is missing or violates the URL policy.
    #[error("the discovery document's jwks_uri is unusable: {0}")]
    BadJwksUri(String),
}

impl FetchError {
    /// A stable code for logs and metrics.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Status(_) => "http_status",
            Self::Redirect => "redirect",
            Self::TooLarge => "too_large",
            Self::NotJson => "not_json",
            Self::BadKeySet(_) => "bad_key_set",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::BadJwksUri(_) => "bad_jwks_uri",
        }
    }

    /// Whether the issuer could not be reached at all (timeout, DNS, connection, TLS), as
    /// opposed to answering with something unusable.
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Timeout | Self::Dns | Self::Connect | Self::Tls)
    }
}

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
    /// The URL of the last request that failed, for error messages at startup.
    last_failure: std::sync::Arc<std::sync::Mutex<Option<Url>>>,
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
        Ok(Self { client, limits, last_failure: std::sync::Arc::default() })
    }

    pub(crate) fn total_timeout(&self) -> Duration {
        self.limits.total_timeout
    }

    /// The body of `response` with the size cap enforced on the declared length and while
    /// streaming (a missing or lying `Content-Length` is caught too).
    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
        let declared =
            response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.limits.max_body as u64) {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            if body.len().saturating_add(chunk.len()) > self.limits.max_body {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// GETs a JSON document with the size cap enforced while streaming.
    pub(crate) async fn get(&self, url: &Url) -> Result<Fetched, FetchError> {
        let result = self.get_unrecorded(url).await;
        if result.is_err() {
            *self.last_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(url.clone());
        }
        result
    }

    /// The URL of the last `get` that failed, if any.
    pub(crate) fn last_failed_url(&self) -> Option<Url> {
        self.last_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    async fn get_unrecorded(&self, url: &Url) -> Result<Fetched, FetchError> {
        let response = self
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
        let cache_control = response.headers().get(CACHE_CONTROL).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = self.read_capped(response).await?;
        Ok(Fetched { body, cache_control })
    }
    /// POSTs a form (`application/x-www-form-urlencoded`, already encoded) with an
    /// optional `Authorization` value, and returns the status and the body, read with the
    /// same size cap and timeouts as every other issuer request (RFC 7662 introspection).
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        form: String,
        authorization: Option<&str>,
        accept: &str,
    ) -> Result<Answered, FetchError> {
        let mut request = self
            .client
            .post(url.clone())
            .header(ACCEPT, accept)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form);
        if let Some(authorization) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let response = request.send().await.map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let media_type = media_type(&response);
        let body = self.read_capped(response).await?;
        Ok(Answered { status, media_type, body })
    }
}

/// An answer to an authorized GET: any status, with the body read (capped) only for 200.
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) status: u16,
    /// The media type of `Content-Type`, lowercased, without parameters.
    pub(crate) media_type: Option<String>,
    pub(crate) body: Vec<u8>,
}

impl IssuerClient {
    /// GETs `url` presenting `token` as `Authorization: Bearer` (the `/userinfo` call),
    /// accepting `accept`. Unlike [`get`](Self::get), a non-200 status is an answer, not
    /// an error (the caller tells a refusal from an outage); the body of a 200 is read with
    /// the size cap enforced while streaming, other bodies are not read.
    pub(crate) async fn get_authorized(&self, url: &Url, token: &str, accept: &str) -> Result<Answered, FetchError> {
        let response = self
            .client
            .get(url.clone())
            .header(ACCEPT, accept)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let media_type = media_type(&response);
        if status != 200 {
            return Ok(Answered { status, media_type, body: Vec::new() });
        }
        let body = self.read_capped(response).await?;
        Ok(Answered { status, media_type, body })
    }
}

/// A response's media type, without parameters, in lower case.
fn media_type(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// Tells the cause of a failed request from the error chain: our resolver's own error
/// type for DNS, the TLS library's wording for handshake failures (reqwest does not type
/// them), a connection failure otherwise. The answer only words the error; every cause
/// fails the fetch the same way.
fn classify(error: &reqwest::Error) -> FetchError {
    if error.is_timeout() {
        return FetchError::Timeout;
    }
    if error.is_redirect() {
        return FetchError::Redirect;
    }
    // From the causes on: reqwest's own message names the URL, whose words (a host
    // `mtls.…`, a path `/certificates`) say nothing about why the request failed.
    let mut cause = std::error::Error::source(error);
    while let Some(current) = cause {
        if current.is::<ResolveFailure>() {
            return FetchError::Dns;
        }
        // An `io::Error` displays the error it wraps, and its `source` is that error's
        // source: the walk reads the wrapped error's text without visiting it.
        if names_tls(&current.to_string()) {
            return FetchError::Tls;
        }
        cause = current.source();
    }
    FetchError::Connect
}

/// Whether an error's text names the TLS layer: how rustls' certificate and handshake
/// failures read once reqwest and hyper have wrapped them.
fn names_tls(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("certificate") || text.contains("handshake") || text.contains("tls")
}

/// Why the filtering resolver gave no address (typed, so that [`classify`] can tell a DNS
/// failure from a refused connection).
#[derive(Debug, thiserror::Error)]
enum ResolveFailure {
    /// The system resolver failed.
    #[error("{host} could not be resolved")]
    Lookup {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// Every address is in a blocked range.
    #[error("{host} resolves only to blocked addresses")]
    OnlyBlocked { host: String },
}

/// Follows at most one redirect, and only to https on the same host and port
/// (security spec 163).
fn same_host_https_once(attempt: redirect::Attempt<'_>) -> redirect::Action {
    if redirect_allowed(attempt.previous(), attempt.url()) {
        attempt.follow()
    } else {
        attempt.error("redirect refused")
    }
}

/// Whether a redirect to `next` may be followed, `previous` being the URLs requested so
/// far (the original one first): only the first redirect, to https with the original's
/// scheme, host and port, and without credentials.
fn redirect_allowed(previous: &[Url], next: &Url) -> bool {
    let [original] = previous else {
        return false;
    };
    next.scheme() == "https"
        && next.scheme() == original.scheme()
        && next.host_str() == original.host_str()
        && next.port_or_known_default() == original.port_or_known_default()
        && next.username().is_empty()
        && next.password().is_none()
}

/// Checks a configured or discovered URL against the policy: https, or http to a
/// loopback host when `plain_http_loopback` allows it; no credentials; no address of
/// [`BLOCKED_RANGES`] unless private networks are allowed.
///
/// `plain_http_loopback` is true for the configured issuer and `jwks_uri`, and for a
/// discovered `jwks_uri` only when the issuer itself uses plain http (so is loopback):
/// an https issuer's discovery document cannot move key fetches to plain http.
pub(crate) fn check_url(url: &str, allow_private: bool, plain_http_loopback: bool) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    let host = parsed.host_str().ok_or_else(|| format!("`{url}` has no host"))?;
    let ip: Option<IpAddr> = host.trim_start_matches('[').trim_end_matches(']').parse().ok();
    let loopback = host == "localhost" || ip.is_some_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback && plain_http_loopback => {}
        "http" if loopback => {
            return Err(format!(
                "`{url}` must use https: plain http to a loopback host is allowed only when the issuer itself is plain http on loopback"
            ));
        }
        "http" => return Err(format!("`{url}` must use https (plain http is allowed only for loopback hosts)")),
        other => return Err(format!("`{url}` has the unsupported scheme `{other}`; use https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("`{url}` must not carry credentials"));
    }
    if let Some(ip) = ip
        && !allow_private
        && let Some(range) = blocked_range(ip)
    {
        return Err(format!(
            "`{url}` points at a private, link-local or metadata address ({range}); allow it with .allow_private_networks(true) if intended"
        ));
    }
    Ok(parsed)
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
}

/// The ranges a key fetch must not reach unless private networks are allowed: every
/// entry of the IANA IPv4 and IPv6 Special-Purpose Address Registries that is not
/// globally reachable (or is deprecated), plus multicast and the deprecated site-local
/// range. Where a registry block holds a few globally reachable sub-ranges
/// (`192.0.0.0/24`, `2001::/23`) the whole block is blocked: no issuer publishes keys
/// there. Translation prefixes that carry an IPv4 address (NAT64, 6to4) are blocked whole,
/// as the address they lead to may be private. Loopback (`127.0.0.0/8`, `::1`) is not
/// listed: it is allowed, for development issuers. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) is judged by the IPv4 address it carries.
pub(crate) const BLOCKED_RANGES: [(IpAddr, u8, &str); 29] = [
    (v4(0, 0, 0, 0), 8, "\"this network\", RFC 791"),
    (v4(10, 0, 0, 0), 8, "private use, RFC 1918"),
    (v4(100, 64, 0, 0), 10, "shared address space, RFC 6598"),
    (v4(169, 254, 0, 0), 16, "link local and cloud metadata, RFC 3927"),
    (v4(172, 16, 0, 0), 12, "private use, RFC 1918"),
    (v4(192, 0, 0, 0), 24, "IETF protocol assignments, RFC 6890"),
    (v4(192, 0, 2, 0), 24, "documentation (TEST-NET-1), RFC 5737"),
    (v4(192, 88, 99, 0), 24, "deprecated 6to4 relay anycast, RFC 7526"),
    (v4(192, 168, 0, 0), 16, "private use, RFC 1918"),
    (v4(198, 18, 0, 0), 15, "benchmarking, RFC 2544"),
    (v4(198, 51, 100, 0), 24, "documentation (TEST-NET-2), RFC 5737"),
    (v4(203, 0, 113, 0), 24, "documentation (TEST-NET-3), RFC 5737"),
    (v4(224, 0, 0, 0), 4, "multicast, RFC 5771"),
    (v4(240, 0, 0, 0), 4, "reserved and limited broadcast, RFC 1112 and RFC 919"),
    (v6(0, 0, 0, 0, 0, 0, 0, 0), 128, "unspecified, RFC 4291"),
    (v6(0, 0, 0, 0, 0, 0, 0, 0), 96, "IPv4-compatible (deprecated), RFC 4291"),
    (v6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, "IPv4/IPv6 translation (NAT64), RFC 6052"),
    (v6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "local-use IPv4/IPv6 translation, RFC 8215"),
    (v6(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard only, RFC 6666"),
    (v6(0x100, 0, 0, 1, 0, 0, 0, 0), 64, "dummy prefix, RFC 9780"),
    (v6(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, "IETF protocol assignments (Teredo included), RFC 2928"),
    (v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation, RFC 3849"),
    (v6(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, "6to4, RFC 3056"),
    (v6(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation, RFC 9637"),
    (v6(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16, "segment routing SIDs, RFC 9602"),
    (v6(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique local, RFC 4193"),
    (v6(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link local, RFC 4291"),
    (v6(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site local (deprecated), RFC 3879"),
    (v6(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast, RFC 4291"),
];

/// Whether a key fetch must not reach `ip` unless private networks are allowed.
pub(crate) fn is_blocked(ip: IpAddr) -> bool {
    blocked_range(ip).is_some()
}

/// The name of the [`BLOCKED_RANGES`] entry holding `ip`, if any.
fn blocked_range(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    if ip.is_loopback() {
        return None;
    }
    BLOCKED_RANGES.iter().find(|(network, len, _)| in_network(ip, *network, *len)).map(|(_, _, name)| *name)
}

/// Whether `ip` lies in `network/len` (addresses of the other family never do).
fn in_network(ip: IpAddr, network: IpAddr, len: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let host_bits = 32u32.saturating_sub(u32::from(len));
            (u32::from(ip) ^ u32::from(network)).checked_shr(host_bits).unwrap_or(0) == 0
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let host_bits = 128u32.saturating_sub(u32::from(len));
            (u128::from(ip) ^ u128::from(network)).checked_shr(host_bits).unwrap_or(0) == 0
        }
        _ => false,
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
                .await
                .map_err(|source| ResolveFailure::Lookup { host: host.clone(), source })?
                .filter(|addr| allow_private || !is_blocked(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(ResolveFailure::OnlyBlocked { host }.into());
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
        assert!(check_url("https://issuer.example/.well-known/jwks.json", false, true).is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks", false, true).is_ok());
        assert!(check_url("http://[::1]:8080/jwks", false, true).is_ok());
        assert!(check_url("http://localhost/jwks", false, true).is_ok());
        assert!(check_url("http://issuer.example/jwks", false, true).unwrap_err().contains("must use https"));
        assert!(check_url("ftp://issuer.example/jwks", false, true).is_err());
        assert!(check_url("https://user:pw@issuer.example/jwks", false, true).is_err());
        assert!(
            check_url("https://169.254.169.254/latest", false, true).unwrap_err().contains("allow_private_networks")
        );
        assert!(check_url("https://10.0.0.1/jwks", false, true).is_err());
        assert!(check_url("https://10.0.0.1/jwks", true, true).is_ok());
        assert!(check_url("https://[fe80::1]/jwks", false, true).is_err());
        assert!(check_url("not a url", false, true).is_err());
        // A discovered URL under an https issuer: loopback only over https.
        assert!(check_url("http://127.0.0.1:8080/jwks", false, false).unwrap_err().contains("must use https"));
        assert!(check_url("http://localhost/jwks", false, false).unwrap_err().contains("must use https"));
        assert!(check_url("https://127.0.0.1:8443/jwks", false, false).is_ok());
        assert!(check_url("https://issuer.example/jwks", false, false).is_ok());
        // The refusal names the range.
        let error = check_url("https://[64:ff9b::a9fe:a9fe]/jwks", false, true).unwrap_err();
        assert!(error.contains("(IPv4/IPv6 translation (NAT64), RFC 6052)"), "{error}");
    }

    fn urls(list: &[&str]) -> Vec<Url> {
        list.iter().map(|u| Url::parse(u).unwrap()).collect()
    }

    #[test]
    fn one_redirect_is_followed_only_to_the_same_scheme_host_and_port() {
        let original = urls(&["https://issuer.example/jwks"]);
        let allowed = |next: &str| redirect_allowed(&original, &Url::parse(next).unwrap());
        assert!(allowed("https://issuer.example/keys"));
        assert!(allowed("https://issuer.example:443/keys?v=2"), "443 is https's own port");
        assert!(!allowed("https://issuer.example:8443/keys"), "another port");
        assert!(!allowed("http://issuer.example/keys"), "plain http");
        assert!(!allowed("https://other.example/keys"), "another host");
        assert!(!allowed("https://sub.issuer.example/keys"), "a subdomain is another host");
        assert!(!allowed("https://user:pw@issuer.example/keys"), "credentials");
        // A second redirect is never followed, even to the same place.
        let twice = urls(&["https://issuer.example/jwks", "https://issuer.example/keys"]);
        assert!(!redirect_allowed(&twice, &Url::parse("https://issuer.example/jwks").unwrap()));
        assert!(!redirect_allowed(&[], &Url::parse("https://issuer.example/jwks").unwrap()));
        // With a port in the original URL, the port must stay.
        let with_port = urls(&["https://issuer.example:8443/jwks"]);
        assert!(redirect_allowed(&with_port, &Url::parse("https://issuer.example:8443/keys").unwrap()));
        assert!(!redirect_allowed(&with_port, &Url::parse("https://issuer.example/keys").unwrap()));
        // A plain-http loopback issuer is never redirected, not even to itself.
        let loopback = urls(&["http://127.0.0.1:8080/jwks"]);
        assert!(!redirect_allowed(&loopback, &Url::parse("http://127.0.0.1:8080/keys").unwrap()));
    }

    #[track_caller]
    fn blocked(address: &str) -> bool {
        is_blocked(address.parse().unwrap())
    }

    #[test]
    fn every_special_purpose_range_is_blocked_first_last_and_inside() {
        // (first, last, one inside) of every range that is not globally reachable.
        let ranges: &[(&str, &str, &str)] = &[
            ("0.0.0.0", "0.255.255.255", "0.1.2.3"),
            ("10.0.0.0", "10.255.255.255", "10.20.30.40"),
            ("100.64.0.0", "100.127.255.255", "100.100.100.100"),
            ("169.254.0.0", "169.254.255.255", "169.254.169.254"),
            ("172.16.0.0", "172.31.255.255", "172.20.1.1"),
            ("192.0.0.0", "192.0.0.255", "192.0.0.170"),
            ("192.0.2.0", "192.0.2.255", "192.0.2.10"),
            ("192.88.99.0", "192.88.99.255", "192.88.99.1"),
            ("192.168.0.0", "192.168.255.255", "192.168.1.1"),
            ("198.18.0.0", "198.19.255.255", "198.18.100.1"),
            ("198.51.100.0", "198.51.100.255", "198.51.100.7"),
            ("203.0.113.0", "203.0.113.255", "203.0.113.9"),
            ("224.0.0.0", "239.255.255.255", "239.1.2.3"),
            ("240.0.0.0", "255.255.255.255", "250.1.2.3"),
            ("::", "::", "::"),
            ("::2", "::ffff:ffff", "::10.0.0.1"),
            ("64:ff9b::", "64:ff9b::ffff:ffff", "64:ff9b::a9fe:a9fe"),
            ("64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "64:ff9b:1::1"),
            ("100::", "100::ffff:ffff:ffff:ffff", "100::1"),
            ("100:0:0:1::", "100::1:ffff:ffff:ffff:ffff", "100::1:0:0:1"),
            ("2001::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:0:4136:e378:8000:63bf:3fff:fdd2"),
            ("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::1"),
            ("2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2002:a00:1::1"),
            ("3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:abc::1"),
            ("5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "5f00:1::1"),
            ("fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fd12:3456::1"),
            ("fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::1"),
            ("fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::1"),
            ("ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ff02::1"),
        ];
        for (first, last, inside) in ranges {
            for address in [first, last, inside] {
                assert!(blocked(address), "{address} must be blocked");
            }
        }
        // An IPv4-mapped address is judged by the IPv4 address it carries.
        for address in ["::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:192.0.0.1", "::ffff:240.0.0.1"] {
            assert!(blocked(address), "{address} must be blocked");
        }
    }

    #[test]
    fn global_and_loopback_addresses_pass() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "191.255.255.255",
            "192.0.1.0",
            "192.0.3.0",
            "192.88.98.255",
            "192.88.100.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "::1",
            "::ffff:8.8.8.8",
            "::ffff:127.0.0.1",
            "1::",
            "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff",
            "64:ff9b:0:1::",
            "64:ff9b:2::",
            "100:0:0:2::",
            "2000::1",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db9::",
            "2003::1",
            "2606:4700:4700::1111",
            "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "3fff:1000::",
            "5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "5f01::",
            "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(!blocked(address), "{address} must pass");
        }
    }

    #[test]
    fn an_unusable_key_set_is_the_source_of_its_fetch_error() {
        let rejected = KeySetError::NoUsableKeys(vec![(0, crate::keys::KeyRejection::WeakRsaKey)]);
        let error = FetchError::BadKeySet(rejected.clone());
        assert_eq!(
            error.to_string(),
            "the key set is unusable: the JWK set has no usable signing key; key 0: weak_rsa_key"
        );
        let source = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<KeySetError>());
        assert_eq!(source, Some(&rejected));
        assert!(std::error::Error::source(&FetchError::Timeout).is_none());
    }

    #[test]
    fn a_failed_lookup_keeps_the_resolver_error_as_its_source() {
        let failure = ResolveFailure::Lookup {
            host: "issuer.example".to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"),
        };
        assert_eq!(failure.to_string(), "issuer.example could not be resolved");
        let source = std::error::Error::source(&failure).and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(source.map(std::io::Error::kind), Some(std::io::ErrorKind::NotFound));
    }

    // The limits' bounds, the body cap, what a fetch records and the resolver, against a
    // server on 127.0.0.1 that writes raw HTTP/1.1 answers (cargo-mutants over http.rs: the
    // cases below each fail with one of its mutants).

    #[test]
    fn the_default_limits_hold_and_each_limit_is_checked_at_its_bounds() {
        let limits = HttpLimits::default();
        assert_eq!(
            (limits.max_body, limits.connect_timeout, limits.total_timeout),
            (262_144, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT)
        );
        assert!(limits.check().is_ok());
        let minute = Duration::from_secs(60);
        let over = minute + Duration::from_nanos(1);
        let setting = |limits: HttpLimits| limits.check().err().map(|e| e.setting());
        for (what, connect, total, expected) in [
            ("connect 0", Duration::ZERO, minute, Some("http_timeouts")),
            ("total 0", minute, Duration::ZERO, Some("http_timeouts")),
            ("both 60 s", minute, minute, None),
            ("connect over 60 s", over, minute, Some("http_timeouts")),
            ("total over 60 s", minute, over, Some("http_timeouts")),
            ("both 1 ns", Duration::from_nanos(1), Duration::from_nanos(1), None),
        ] {
            assert_eq!(
                setting(HttpLimits { connect_timeout: connect, total_timeout: total, ..limits }),
                expected,
                "{what}"
            );
        }
        for (max_body, expected) in [
            (1023, Some("max_jwks_size")),
            (1024, None),
            (4 * 1024 * 1024, None),
            (4 * 1024 * 1024 + 1, Some("max_jwks_size")),
        ] {
            assert_eq!(setting(HttpLimits { max_body, ..limits }), expected, "{max_body}");
        }
    }

    #[test]
    fn fetch_error_codes_and_which_errors_mean_unreachable() {
        assert_eq!(FetchError::Status(404).code(), "http_status");
        assert_eq!(FetchError::TooLarge.code(), "too_large");
        for error in [FetchError::Timeout, FetchError::Dns, FetchError::Connect, FetchError::Tls] {
            assert!(error.is_unreachable(), "{error:?}");
        }
        for error in [FetchError::Status(503), FetchError::TooLarge, FetchError::NotJson, FetchError::Redirect] {
            assert!(!error.is_unreachable(), "{error:?}");
        }
    }

    #[test]
    fn a_url_with_only_a_user_name_or_only_a_password_is_refused() {
        for url in ["https://user@issuer.example/jwks", "https://:pw@issuer.example/jwks"] {
            assert!(check_url(url, false, true).unwrap_err().contains("must not carry credentials"), "{url}");
        }
        let original = urls(&["https://issuer.example/jwks"]);
        assert!(!redirect_allowed(&original, &Url::parse("https://:pw@issuer.example/keys").unwrap()));
        assert!(!redirect_allowed(&original, &Url::parse("https://user@issuer.example/keys").unwrap()));
    }

    /// A server on 127.0.0.1 answering each path with its raw response and closing the
    /// connection; its base URL, `http://127.0.0.1:port`.
    async fn raw_server(answers: Vec<(&'static str, Vec<u8>)>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                let answer = answers.iter().find(|(p, _)| *p == path).map_or_else(
                    || b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                    |(_, a)| a.clone(),
                );
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
            }
        });
        base
    }

    fn answer(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n{headers}\r\n").into_bytes();
        out.extend_from_slice(body);
        out
    }

    fn sized(len: usize) -> Vec<u8> {
        answer("200 OK", &format!("Content-Length: {len}\r\n"), &vec![b'x'; len])
    }

    fn chunked(len: usize) -> Vec<u8> {
        let mut body = format!("{len:x}\r\n").into_bytes();
        body.extend(vec![b'y'; len]);
        body.extend_from_slice(b"\r\n0\r\n\r\n");
        answer("200 OK", "Transfer-Encoding: chunked\r\n", &body)
    }

    fn client(max_body: usize) -> IssuerClient {
        IssuerClient::new(HttpLimits { max_body, total_timeout: Duration::from_secs(7), ..HttpLimits::default() }, &[])
            .unwrap()
    }

    #[tokio::test]
    async fn a_body_at_the_cap_is_read_and_one_byte_more_is_too_large_declared_or_streamed() {
        let base = raw_server(vec![
            ("/sized-1024", sized(1024)),
            ("/sized-1025", sized(1025)),
            ("/chunked-1024", chunked(1024)),
            ("/chunked-1025", chunked(1025)),
            ("/small", answer("200 OK", "Content-Length: 2\r\nCache-Control: max-age=60\r\n", b"{}")),
            // Declares more than the cap and sends less: refused on the declared length
            // alone, before any byte is read.
            ("/declared-2000", answer("200 OK", "Content-Length: 2000\r\n", b"0123456789")),
        ])
        .await;
        let client = client(1024);
        assert_eq!(client.total_timeout(), Duration::from_secs(7));
        let get = |path: &str| {
            let url = Url::parse(&format!("{base}{path}")).unwrap();
            let client = client.clone();
            async move { client.get(&url).await.map(|f| (f.body.len(), f.cache_control)) }
        };
        assert_eq!(get("/sized-1024").await, Ok((1024, None)));
        assert_eq!(get("/chunked-1024").await, Ok((1024, None)));
        assert_eq!(get("/small").await, Ok((2, Some("max-age=60".to_owned()))));
        for path in ["/sized-1025", "/chunked-1025", "/declared-2000"] {
            assert_eq!(get(path).await, Err(FetchError::TooLarge), "{path}");
        }
    }

    #[tokio::test]
    async fn a_failed_fetch_records_its_url_and_a_status_other_than_200_fails_it() {
        let base = raw_server(vec![
            ("/ok", answer("200 OK", "Content-Length: 2\r\n", b"{}")),
            ("/created", answer("201 Created", "Content-Length: 2\r\n", b"{}")),
        ])
        .await;
        let client = client(1024);
        assert_eq!(client.last_failed_url(), None);
        let url = |path: &str| Url::parse(&format!("{base}{path}")).unwrap();
        assert_eq!(client.get(&url("/ok")).await.map(|f| f.body), Ok(b"{}".to_vec()));
        assert_eq!(client.last_failed_url(), None);
        assert_eq!(client.get(&url("/created")).await.map(|f| f.body), Err(FetchError::Status(201)));
        assert_eq!(client.last_failed_url(), Some(url("/created")));
        assert_eq!(client.get(&url("/missing")).await.map(|f| f.body), Err(FetchError::Status(404)));
        assert_eq!(client.last_failed_url(), Some(url("/missing")));
    }

    #[tokio::test]
    async fn an_authorized_get_reads_the_body_of_a_200_only_with_its_media_type() {
        let base = raw_server(vec![
            ("/me", answer("200 OK", "Content-Type: Application/JSON ; charset=UTF-8\r\nContent-Length: 2\r\n", b"{}")),
            ("/refused", answer("401 Unauthorized", "Content-Type: text/plain\r\nContent-Length: 4\r\n", b"nope")),
        ])
        .await;
        let client = client(1024);
        let get = |path: &str| {
            let url = Url::parse(&format!("{base}{path}")).unwrap();
            let client = client.clone();
            async move {
                let answered = client.get_authorized(&url, "t0ken", "application/json").await.unwrap();
                (answered.status, answered.media_type, answered.body)
            }
        };
        assert_eq!(get("/me").await, (200, Some("application/json".to_owned()), b"{}".to_vec()));
        assert_eq!(get("/refused").await, (401, Some("text/plain".to_owned()), Vec::new()));
    }

    #[tokio::test]
    async fn a_host_name_is_resolved_through_the_filter_and_loopback_passes_it() {
        let base = raw_server(vec![("/ok", answer("200 OK", "Content-Length: 2\r\n", b"{}"))]).await;
        let port = base.rsplit(':').next().unwrap();
        let url = Url::parse(&format!("http://localhost:{port}/ok")).unwrap();
        assert_eq!(client(1024).get(&url).await.map(|f| f.body), Ok(b"{}".to_vec()));
    }

    /// Each refusal of the URL policy says which rule the URL breaks, in the words the
    /// configuration error shows (a plain-http loopback URL under an https issuer is told
    /// apart from plain http to any other host).
    #[test]
    fn each_url_policy_refusal_names_its_rule() {
        for (url, plain_http_loopback, expected) in [
            ("not a url", true, "`not a url` is not a URL (relative URL without a base)"),
            ("data:text/plain,keys", true, "`data:text/plain,keys` has no host"),
            (
                "http://issuer.example/jwks",
                true,
                "`http://issuer.example/jwks` must use https (plain http is allowed only for loopback hosts)",
            ),
            (
                "http://issuer.example/jwks",
                false,
                "`http://issuer.example/jwks` must use https (plain http is allowed only for loopback hosts)",
            ),
            (
                "http://127.0.0.1:8080/jwks",
                false,
                "`http://127.0.0.1:8080/jwks` must use https: plain http to a loopback host is allowed only when the issuer itself is plain http on loopback",
            ),
            (
                "http://localhost/jwks",
                false,
                "`http://localhost/jwks` must use https: plain http to a loopback host is allowed only when the issuer itself is plain http on loopback",
            ),
            (
                "ftp://issuer.example/jwks",
                true,
                "`ftp://issuer.example/jwks` has the unsupported scheme `ftp`; use https",
            ),
            (
                "https://user:pw@issuer.example/jwks",
                true,
                "`https://user:pw@issuer.example/jwks` must not carry credentials",
            ),
            (
                "https://10.0.0.1/jwks",
                true,
                "`https://10.0.0.1/jwks` points at a private, link-local or metadata address (private use, RFC 1918); allow it with .allow_private_networks(true) if intended",
            ),
        ] {
            assert_eq!(check_url(url, false, plain_http_loopback), Err(expected.to_owned()), "{url}");
        }
    }

    /// A refused connection is worded as one whatever the URL says: words of the TLS
    /// wording in its host or path (`mtls.…`, `/certificate`) do not make it a TLS failure.
    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure_whatever_words_its_url_holds() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = client(1024);
        for path in ["/jwks", "/tls/jwks", "/certificate/jwks", "/handshake/jwks"] {
            let url = Url::parse(&format!("http://127.0.0.1:{port}{path}")).unwrap();
            assert_eq!(client.get(&url).await.map(|f| f.body), Err(FetchError::Connect), "{path}");
        }
    }

    /// An https server on 127.0.0.1 that reads the client's first TLS record and answers
    /// `reply` (raw bytes on the wire), then closes the connection.
    async fn refusing_tls_server(reply: &'static [u8]) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("https://{}/jwks", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut hello = [0u8; 512];
                let _ = stream.read(&mut hello).await;
                let _ = stream.write_all(reply).await;
                let _ = stream.shutdown().await;
            }
        });
        url
    }

    /// A server that refuses the handshake is a TLS failure, whichever way it refuses: a
    /// fatal `handshake_failure` alert (rustls: "received fatal alert: HandshakeFailure",
    /// no word of a certificate) or a connection closed before the handshake ends ("tls
    /// handshake eof").
    #[tokio::test]
    async fn a_handshake_the_server_refuses_or_cuts_off_is_a_tls_failure() {
        // An alert record: content type 21, TLS 1.2, two bytes: fatal (2), handshake_failure (40).
        const HANDSHAKE_FAILURE_ALERT: &[u8] = &[21, 3, 3, 0, 2, 2, 40];
        let client = client(1024);
        for (case, reply) in [("alert", HANDSHAKE_FAILURE_ALERT), ("closed", &[][..])] {
            let url = refusing_tls_server(reply).await;
            assert_eq!(client.get(&url).await.map(|f| f.body), Err(FetchError::Tls), "{case}");
        }
    }

    #[test]
    fn tls_failures_are_told_by_any_of_their_three_words() {
        for text in [
            "invalid peer certificate: UnknownIssuer",
            "received fatal alert: HandshakeFailure",
            "tls handshake eof",
            "TLS error",
        ] {
            assert!(names_tls(text), "{text}");
        }
        for text in ["tcp connect error: Connection refused (os error 111)", "client error (Connect)"] {
            assert!(!names_tls(text), "{text}");
        }
    }
}
