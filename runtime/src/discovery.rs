//! OpenID Connect Discovery 1.0 §4 and RFC 8414 §3: the issuer's metadata (`jwks_uri`,
//! and the `introspection_endpoint` and `userinfo_endpoint` when it has them).
//!
//! The OIDC location (`{issuer}/.well-known/openid-configuration`) is tried first, then
//! RFC 8414's (`/.well-known/oauth-authorization-server` inserted before the issuer's
//! path). The document's `issuer` must equal the configured issuer byte for byte
//! (RFC 8414 §3.3, OIDC Discovery §4.3); otherwise its metadata is not used.

use reqwest::Url;
use serde_json::Value;

use crate::http::{FetchError, IssuerClient, check_url};

/// The candidate discovery URLs for an issuer, in the order they are tried.
pub(crate) fn discovery_urls(issuer: &Url) -> Vec<Url> {
    let mut urls = Vec::with_capacity(2);
    let path = issuer.path().trim_end_matches('/');
    let mut oidc = issuer.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    oidc.set_query(None);
    urls.push(oidc);
    let mut oauth = issuer.clone();
    oauth.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    oauth.set_query(None);
    urls.push(oauth);
    urls
}

/// What scopegate uses of an issuer's metadata, each URL checked against the URL policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Metadata {
    /// `jwks_uri` (required).
    pub(crate) jwks_uri: Url,
    /// `introspection_endpoint` (RFC 8414 §2, RFC 7662), when advertised and allowed.
    pub(crate) introspection_endpoint: Option<Url>,
    /// `userinfo_endpoint` (OIDC Discovery §3), when advertised and allowed.
    pub(crate) userinfo_endpoint: Option<Url>,
}

/// Fetches the discovery document and returns its checked metadata.
pub(crate) async fn fetch(
    client: &IssuerClient,
    issuer: &str,
    issuer_url: &Url,
    allow_private: bool,
) -> Result<Metadata, FetchError> {
    let mut last_error = FetchError::Status(404);
    for url in discovery_urls(issuer_url) {
        match client.get(&url).await {
            Ok(fetched) => return read_document(&fetched.body, issuer, allow_private),
            Err(error) => {
                tracing::debug!(target: "scopegate", url = %url, error = error.code(), "discovery location failed");
                last_error = error;
            }
        }
    }
    Err(last_error)
}

pub(crate) fn read_document(body: &[u8], issuer: &str, allow_private: bool) -> Result<Metadata, FetchError> {
    let doc = crate::json::parse_object(body).map_err(|_| FetchError::NotJson)?;
    match doc.get("issuer") {
        Some(Value::String(found)) if found == issuer => {}
        _ => return Err(FetchError::IssuerMismatch),
    }
    let Some(Value::String(jwks_uri)) = doc.get("jwks_uri") else {
        return Err(FetchError::BadJwksUri("missing".to_owned()));
    };
    // Plain http only under a plain-http issuer (which the configuration allowed only on
    // loopback): an https issuer's document cannot move key fetches to http.
    let plain_http_issuer = Url::parse(issuer).is_ok_and(|url| url.scheme() == "http");
    let jwks_uri = check_url(jwks_uri, allow_private, plain_http_issuer).map_err(FetchError::BadJwksUri)?;
    // An optional endpoint that is malformed or breaks the URL policy is left out (and
    // logged): it must not cost the issuer its keys.
    let endpoint = |name: &str| match doc.get(name) {
        None => None,
        Some(Value::String(url)) => match check_url(url, allow_private, plain_http_issuer) {
            Ok(url) => Some(url),
            Err(why) => {
                tracing::warn!(target: "scopegate", issuer, endpoint = name, why, "discovered endpoint not used");
                None
            }
        },
        Some(_) => {
            tracing::warn!(target: "scopegate", issuer, endpoint = name, "discovered endpoint is not a string");
            None
        }
    };
    Ok(Metadata {
        jwks_uri,
        introspection_endpoint: endpoint("introspection_endpoint"),
        userinfo_endpoint: endpoint("userinfo_endpoint"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_locations() {
        let urls = discovery_urls(&Url::parse("https://login.example/tenant/v2.0/").unwrap());
        assert_eq!(urls[0].as_str(), "https://login.example/tenant/v2.0/.well-known/openid-configuration");
        assert_eq!(urls[1].as_str(), "https://login.example/.well-known/oauth-authorization-server/tenant/v2.0");
        let urls = discovery_urls(&Url::parse("http://127.0.0.1:4455").unwrap());
        assert_eq!(urls[0].as_str(), "http://127.0.0.1:4455/.well-known/openid-configuration");
        assert_eq!(urls[1].as_str(), "http://127.0.0.1:4455/.well-known/oauth-authorization-server");
    }

    #[test]
    fn issuer_must_match_byte_for_byte() {
        let doc = br#"{"issuer":"https://issuer.example/","jwks_uri":"https://issuer.example/jwks"}"#;
        assert!(read_document(doc, "https://issuer.example/", false).is_ok());
        assert_eq!(read_document(doc, "https://issuer.example", false), Err(FetchError::IssuerMismatch));
        let http = br#"{"issuer":"https://issuer.example/","jwks_uri":"http://issuer.example/jwks"}"#;
        assert!(matches!(read_document(http, "https://issuer.example/", false), Err(FetchError::BadJwksUri(_))));
    }

    #[test]
    fn a_discovered_jwks_uri_cannot_move_an_https_issuer_to_plain_http_loopback() {
        for jwks_uri in ["http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]/jwks"] {
            let doc = format!(r#"{{"issuer":"https://issuer.example/","jwks_uri":"{jwks_uri}"}}"#);
            match read_document(doc.as_bytes(), "https://issuer.example/", false) {
                Err(FetchError::BadJwksUri(why)) => assert!(why.contains("must use https"), "{why}"),
                other => panic!("{jwks_uri}: {other:?}"),
            }
        }
    }

    #[test]
    fn optional_endpoints_are_kept_when_they_pass_the_url_policy() {
        let doc = br#"{"issuer":"https://issuer.example/","jwks_uri":"https://issuer.example/jwks",
            "introspection_endpoint":"https://issuer.example/introspect","userinfo_endpoint":"http://issuer.example/me"}"#;
        let metadata = read_document(doc, "https://issuer.example/", false).unwrap();
        assert_eq!(metadata.jwks_uri.as_str(), "https://issuer.example/jwks");
        assert_eq!(
            metadata.introspection_endpoint.as_ref().map(Url::as_str),
            Some("https://issuer.example/introspect")
        );
        assert_eq!(metadata.userinfo_endpoint, None, "plain http under an https issuer is refused");
        let bare =
            br#"{"issuer":"https://issuer.example/","jwks_uri":"https://issuer.example/jwks","userinfo_endpoint":5}"#;
        let metadata = read_document(bare, "https://issuer.example/", false).unwrap();
        assert_eq!((metadata.introspection_endpoint, metadata.userinfo_endpoint), (None, None));
    }
}
