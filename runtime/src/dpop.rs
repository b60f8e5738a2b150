//! DPoP (RFC 9449): access tokens bound to a key the client proves it holds.
//!
//! A request sends `Authorization: DPoP <token>` and one `DPoP: <proof>` header. The
//! token is verified as any other (signature, claims, the verified-token cache), must be
//! bound (`cnf.jkt`, for a JWT or an introspection answer), and the proof must pass every
//! check of RFC 9449 §4.3, cheapest first and the claims only after the signature:
//!
//! 1. exactly one `DPoP` header, at most 8 KiB, a compact JWS;
//! 2. header `typ` `dpop+jwt`, `alg` in the DPoP allowlist (asymmetric only), no `crit`,
//!    and a public `jwk` admitted like an issuer key (no private members, RSA ≥ 2048
//!    bits, points on the curve);
//! 3. the signature, verified with that `jwk`;
//! 4. `htm` = the request method, `htu` = the request URL without query and fragment
//!    (after RFC 3986 normalization of scheme, host, default port and percent-encoding),
//!    `iat` within [`AuthorityBuilder::dpop_proof_max_age`](crate::AuthorityBuilder::dpop_proof_max_age) plus the leeway, a `jti`,
//!    `ath` = base64url(SHA-256(token));
//! 5. the RFC 7638 thumbprint of the `jwk` = the token's `cnf.jkt`;
//! 6. with [`DpopNonce`] on, a `nonce` this API handed out recently (see [`DpopNonce`]);
//! 7. the `jti` never seen before for this key ([`ReplayStore`]).
//!
//! The request's URL is never taken from its `Host` header: the base is
//! [`AuthorityBuilder::public_url`](crate::AuthorityBuilder::public_url) when set (behind a proxy), otherwise the first
//! audience when it is an http(s) URL; the path is the request's (before `nest` strips a
//! prefix).

mod nonce;
mod replay;

use std::{sync::Arc, time::Duration};

use aws_lc_rs::digest;
use axum::http::{HeaderMap, Method, Uri};
use serde_json::{Map, Value};

pub(crate) use self::nonce::Nonces;
pub use self::nonce::{DEFAULT_NONCE_ROTATION, DpopNonce, MAX_NONCE_ROTATION, MIN_NONCE_SECRET_LEN};
#[cfg(feature = "redis")]
pub use self::replay::RedisReplayStore;
pub use self::replay::{
    DEFAULT_REPLAY_CAPACITY, Freshness, MemoryReplayStore, ReplayFuture, ReplayStore, ReplayStoreError,
};
use crate::{
    algorithm::Algorithm,
    b64::{b64url_decode, b64url_encode},
    config::{Allowlist, ConfigError},
    jws::{self, MAX_SIGNATURE_BYTES},
    keys::{self, KeyRejection},
    rejection::{DpopChallenge, DpopError, RejectionKind},
};

/// Whether an [`Authority`](crate::Authority) accepts bearer tokens next to DPoP-bound ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DpopPolicy {
    /// Both schemes (the default once DPoP is on): a DPoP-bound token needs a proof, an
    /// unbound token is still accepted as a `Bearer` token. Challenges offer both.
    #[default]
    Allowed,
    /// DPoP only: a `Bearer` request is answered like one without credentials, with a
    /// `DPoP` challenge alone.
    Required,
}

/// How old a proof's `iat` may be by default (the leeway is added).
pub const DEFAULT_PROOF_MAX_AGE: Duration = Duration::from_secs(60);
/// The largest [`AuthorityBuilder::dpop_proof_max_age`](crate::AuthorityBuilder::dpop_proof_max_age).
pub const MAX_PROOF_MAX_AGE: Duration = Duration::from_secs(300);
/// The longest proof accepted, in bytes.
const MAX_PROOF_SIZE: usize = 8 * 1024;
/// JWK members that only a private or secret key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/// The longest `jti` accepted, in bytes.
const MAX_JTI_LEN: usize = 256;

/// The builder's DPoP settings.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    pub(crate) policy: Option<DpopPolicy>,
    pub(crate) store: Option<Arc<dyn ReplayStore>>,
    pub(crate) max_age: Option<Duration>,
    pub(crate) algorithms: Option<Vec<Algorithm>>,
    pub(crate) nonce: Option<DpopNonce>,
}

/// DPoP as an [`Authority`](crate::Authority) applies it, fixed at build time.
#[derive(Debug)]
pub(crate) struct Dpop {
    pub(crate) policy: DpopPolicy,
    algorithms: Vec<Algorithm>,
    /// `iat` may be this many seconds old (the proof max age plus the leeway)…
    max_past: f64,
    /// …and this many in the future (the leeway).
    max_future: f64,
    /// The normalized external URL's `scheme://host[:port]` and path prefix, without a
    /// trailing `/`.
    base: String,
    pub(crate) store: Arc<dyn ReplayStore>,
    /// Server-provided nonces, when on.
    pub(crate) nonces: Option<Nonces>,
}

impl Settings {
    /// Checks the settings: `None` when DPoP is off.
    pub(crate) fn build(
        self,
        leeway: Duration,
        public_url: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Option<(Dpop, DpopChallenge)>, ConfigError> {
        let Some(policy) = self.policy else {
            if self.store.is_some() || self.max_age.is_some() || self.algorithms.is_some() || self.nonce.is_some() {
                return Err(ConfigError::new(
                    "dpop",
                    "DPoP settings are given but DPoP is not on: call .dpop(DpopPolicy::Allowed) or .dpop(DpopPolicy::Required)",
                ));
            }
            return Ok(None);
        };
        let max_age = self.max_age.unwrap_or(DEFAULT_PROOF_MAX_AGE);
        if max_age.is_zero() || max_age > MAX_PROOF_MAX_AGE {
            return Err(ConfigError::new(
                "dpop_proof_max_age",
                "the proof age must be positive and at most 300 seconds",
            ));
        }
        let algorithms = self.algorithms.unwrap_or_else(|| Algorithm::PROOF.to_vec());
        Allowlist::DpopProofs.check(&algorithms)?;
        let base = match public_url {
            Some(url) => base_url(url).ok_or_else(|| {
                ConfigError::new("public_url", format!("`{url}` is not an http(s) URL with a host, as DPoP needs"))
            })?,
            None => audience.and_then(base_url).ok_or_else(|| {
                ConfigError::new(
                    "public_url",
                    "DPoP compares each proof's htu with this API's external URL, and the audience is not an http(s) URL: set .public_url(\"https://api.example.com\")",
                )
            })?,
        };
        let nonces = self.nonce.map(DpopNonce::build).transpose()?;
        let algs: Vec<&str> = algorithms.iter().map(|a| a.as_str()).collect();
        let challenge = DpopChallenge { algs: algs.join(" ").into(), bearer: policy == DpopPolicy::Allowed };
        let dpop = Dpop {
            policy,
            algorithms,
            max_past: (max_age + leeway).as_secs_f64(),
            max_future: leeway.as_secs_f64(),
            base,
            store: self.store.unwrap_or_else(|| Arc::new(MemoryReplayStore::default())),
            nonces,
        };
        Ok(Some((dpop, challenge)))
    }
}

/// A proof that passed every check but the replay check.
#[derive(Debug, PartialEq)]
pub(crate) struct Checked {
    /// base64url(SHA-256(thumbprint "." jti)).
    pub(crate) replay_key: String,
    /// How long the proof could still be accepted, so how long its `jti` is kept.
    pub(crate) ttl: Duration,
}

impl Dpop {
    /// The algorithms a proof may be signed with.
    pub(crate) fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// Checks `proof` for a request with `method` to `path`, presenting `token` bound to
    /// `jkt`, at `now` (seconds since the epoch). Everything but the replay check.
    pub(crate) fn check(
        &self,
        proof: &str,
        token: &str,
        method: &Method,
        path: &str,
        jkt: &str,
        now: f64,
    ) -> Result<Checked, DpopError> {
        if proof.len() > MAX_PROOF_SIZE {
            return Err(DpopError::MalformedProof);
        }
        let compact = jws::split(proof).map_err(|_| DpopError::MalformedProof)?;
        let header = decode_object(compact.header)?;
        match header.get("typ") {
            Some(Value::String(typ)) if is_dpop_typ(typ) => {}
            _ => return Err(DpopError::WrongType),
        }
        let alg = match header.get("alg") {
            Some(Value::String(name)) => Algorithm::from_name(name).filter(|alg| self.algorithms.contains(alg)),
            _ => None,
        }
        .ok_or(DpopError::AlgorithmNotAllowed)?;
        if header.contains_key("crit") {
            return Err(DpopError::MalformedProof);
        }
        let jwk = header.get("jwk").ok_or(DpopError::InvalidKey)?;
        // Any private or secret member, whatever the key type (an `oct` key's `k` too).
        if let Value::Object(members) = jwk
            && PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m))
        {
            return Err(DpopError::PrivateKey);
        }
        let key = keys::admit_jwk(jwk, &[alg]).map_err(|why| match why {
            KeyRejection::PrivateKeyMaterial => DpopError::PrivateKey,
            _ => DpopError::InvalidKey,
        })?;
        let verifier = key.verifier(alg).ok_or(DpopError::InvalidKey)?;
        let mut signature_buffer = [0u8; MAX_SIGNATURE_BYTES];
        let signature =
            jws::decode_signature(compact.signature, &mut signature_buffer).ok_or(DpopError::MalformedProof)?;
        if !verifier.verify(compact.signing_input.as_bytes(), signature) {
            return Err(DpopError::InvalidSignature);
        }

        let claims = decode_object(compact.payload)?;
        let text = |name: &str| match claims.get(name) {
            Some(Value::String(s)) => Ok(s.as_str()),
            _ => Err(DpopError::MalformedProof),
        };
        if text("htm")? != method.as_str() {
            return Err(DpopError::MethodMismatch);
        }
        let htu = text("htu")?;
        if normalize_url(htu).is_none_or(|htu| htu != format!("{}{}", self.base, normalize_path(path))) {
            return Err(DpopError::UriMismatch);
        }
        let iat = match claims.get("iat") {
            Some(Value::Number(n)) => n.as_f64().filter(|t| t.is_finite()).ok_or(DpopError::MalformedProof)?,
            _ => return Err(DpopError::MalformedProof),
        };
        if iat < now - self.max_past || iat > now + self.max_future {
            return Err(DpopError::Stale);
        }
        let jti = match claims.get("jti") {
            Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti,
            _ => return Err(DpopError::MissingJti),
        };
        match claims.get("ath") {
            Some(Value::String(ath)) if *ath == token_hash(token) => {}
            _ => return Err(DpopError::AthMismatch),
        }
        let thumbprint = match jwk {
            Value::Object(jwk) => thumbprint(jwk),
            _ => None,
        }
        .ok_or(DpopError::InvalidKey)?;
        if thumbprint != jkt {
            return Err(DpopError::KeyMismatch);
        }
        if let Some(nonces) = &self.nonces {
            match claims.get("nonce") {
                None => return Err(DpopError::MissingNonce),
                Some(Value::String(nonce)) if nonces.accepts(nonce, now) => {}
                Some(Value::String(_)) => return Err(DpopError::InvalidNonce),
                Some(_) => return Err(DpopError::MalformedProof),
            }
        }
        let replay_key =
            b64url_encode(digest::digest(&digest::SHA256, format!("{thumbprint}.{jti}").as_bytes()).as_ref());
        // Accepted until `iat + max_past`; one more second covers the rounding.
        let ttl = Duration::from_secs_f64((iat + self.max_past - now).max(0.0) + 1.0);
        Ok(Checked { replay_key, ttl })
    }
}

/// The replay keys of the proofs this request's extractors accepted (request extensions).
#[derive(Debug, Clone, Default)]
pub(crate) struct AcceptedProofs(pub(crate) Vec<String>);

/// The one `DPoP` header's value.
pub(crate) fn proof_header(headers: &HeaderMap) -> Result<&str, DpopError> {
    let mut values = headers.get_all("dpop").iter();
    let value = values.next().ok_or(DpopError::MissingProof)?;
    if values.next().is_some() {
        return Err(DpopError::MultipleProofs);
    }
    value.to_str().map_err(|_| DpopError::MalformedProof)
}

impl From<DpopError> for RejectionKind {
    fn from(error: DpopError) -> Self {
        Self::InvalidDpopProof(error)
    }
}

/// A base64url segment holding a strict JSON object.
fn decode_object(segment: &str) -> Result<Map<String, Value>, DpopError> {
    let bytes = b64url_decode(segment.as_bytes()).ok_or(DpopError::MalformedProof)?;
    crate::json::parse_object(&bytes).map_err(|_| DpopError::MalformedProof)
}

/// `dpop+jwt`, in any ASCII case, with or without `application/` (RFC 7515 §4.1.9).
fn is_dpop_typ(typ: &str) -> bool {
    let short = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => typ.get(12..).unwrap_or_default(),
        _ => typ,
    };
    short.eq_ignore_ascii_case("dpop+jwt")
}

/// `ath`: base64url(SHA-256(the access token)) (RFC 9449 §4.2).
pub(crate) fn token_hash(token: &str) -> String {
    b64url_encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// The RFC 7638 JWK SHA-256 thumbprint: the hash of the required members, in
/// lexicographic order, without whitespace. `None` for a key type DPoP does not use.
pub(crate) fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str).map(|v| Value::from(v).to_string());
    let canonical = match jwk.get("kty").and_then(Value::as_str)? {
        "EC" => format!(r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#, member("crv")?, member("x")?, member("y")?),
        "RSA" => format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, member("e")?, member("n")?),
        "OKP" => format!(r#"{{"crv":{},"kty":"OKP","x":{}}}"#, member("crv")?, member("x")?),
        _ => return None,
    };
    Some(b64url_encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref()))
}

/// The normalized `scheme://host[:port]` and path prefix of an external URL, without a
/// trailing `/` (so that the request's path can be appended).
fn base_url(url: &str) -> Option<String> {
    let normalized = normalize_url(url)?;
    Some(normalized.strip_suffix('/').map(str::to_owned).unwrap_or(normalized))
}

/// An http(s) URL without query and fragment, normalized as RFC 3986 §6.2.2-6.2.3 asks:
/// scheme and host in lower case, the default port dropped, an empty path as `/`,
/// percent-encoding in upper case and unreserved characters decoded. `None` for
/// anything else (no host, user info, another scheme).
fn normalize_url(url: &str) -> Option<String> {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let uri: Uri = url.get(..end)?.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let port = match authority.port_u16() {
        Some(port) if port != default_port => format!(":{port}"),
        _ => String::new(),
    };
    Some(format!("{scheme}://{host}{port}{}", normalize_path(uri.path())))
}

/// A path with its percent-encoding normalized (RFC 3986 §6.2.2.1-6.2.2.2); `/` when
/// empty.
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).and_then(|&h| hex(h)), bytes.get(i + 2).and_then(|&l| hex(l)))
        {
            let decoded = hi << 4 | lo;
            if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(decoded));
            } else {
                out.push('%');
                out.push(char::from(bytes[i + 1]).to_ascii_uppercase());
                out.push(char::from(bytes[i + 2]).to_ascii_uppercase());
            }
            i += 3;
            continue;
        }
        out.push(char::from(b));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{DpopKey, ProofBuilder};

    #[test]
    fn the_rfc_7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let Value::Object(jwk) = jwk else { unreachable!() };
        assert_eq!(thumbprint(&jwk).as_deref(), Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }

    #[test]
    fn an_rsa_dpop_keys_thumbprint_hashes_e_kty_n_in_that_order() {
        // RFC 7638 §3.2: the required members in lexicographic order, without whitespace.
        let key = DpopKey::rsa();
        let jwk = key.public_jwk();
        let canonical =
            format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, jwk["e"].as_str().unwrap(), jwk["n"].as_str().unwrap());
        let want = b64url_encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref());
        assert_eq!(key.thumbprint(), want);
        let Value::Object(mut jwk) = jwk else { unreachable!() };
        jwk.insert("kid".into(), "ignored".into());
        jwk.insert("alg".into(), "PS256".into());
        assert_eq!(thumbprint(&jwk), Some(want), "members outside e, kty, n change nothing");
    }

    #[test]
    fn urls_are_normalized_before_comparison() {
        for (url, want) in [
            ("https://API.Example.TEST/a/b", Some("https://api.example.test/a/b")),
            ("HTTPS://api.example.test:443/a", Some("https://api.example.test/a")),
            ("http://api.example.test:80", Some("http://api.example.test/")),
            ("https://api.example.test:8443/a?x=1#f", Some("https://api.example.test:8443/a")),
            ("https://api.example.test/a%7eb%2fc%2Fd", Some("https://api.example.test/a~b%2Fc%2Fd")),
            ("https://user@api.example.test/a", None),
            ("ftp://api.example.test/a", None),
            ("/a/b", None),
            ("", None),
        ] {
            assert_eq!(normalize_url(url).as_deref(), want, "{url}");
        }
        assert_eq!(base_url("https://api.example.test/").as_deref(), Some("https://api.example.test"));
        assert_eq!(base_url("https://example.test/v1/").as_deref(), Some("https://example.test/v1"));
    }

    #[test]
    fn dpop_typ_is_compared_as_a_media_type() {
        for typ in ["dpop+jwt", "DPoP+JWT", "application/dpop+jwt"] {
            assert!(is_dpop_typ(typ), "{typ}");
        }
        for typ in ["jwt", "at+jwt", "dpop+jwt ", "dpop", ""] {
            assert!(!is_dpop_typ(typ), "{typ}");
        }
    }

    const API: &str = "https://api.example.test";
    const TOKEN: &str = "the.access.token";
    /// The checks' clock, a whole second as `iat` is.
    const NOW: i64 = 1_800_000_000;
    const NOW_F64: f64 = 1_800_000_000.0;

    /// A proof by `key` for `GET /me` carrying `TOKEN`'s hash, issued at `iat`.
    fn proof(key: &DpopKey, iat: i64) -> ProofBuilder {
        key.proof("GET", &format!("{API}/me")).access_token(TOKEN).claim("iat", iat)
    }

    /// `proof` checked as an authority with the default proof age (60 s) and 5 s of
    /// leeway does, at `NOW`, for a token bound to `key`.
    fn check(key: &DpopKey, proof: &str) -> Result<Checked, DpopError> {
        let settings = Settings { policy: Some(DpopPolicy::Allowed), ..Settings::default() };
        let (dpop, _) = settings.build(Duration::from_secs(5), None, Some(API)).unwrap().unwrap();
        dpop.check(proof, TOKEN, &Method::GET, "/me", &key.thumbprint(), NOW_F64)
    }

    #[test]
    fn a_proof_may_be_the_max_age_and_leeway_old_or_the_leeway_ahead_and_not_a_second_more() {
        let key = DpopKey::generate();
        for (iat, want) in
            [(NOW - 65, None), (NOW + 5, None), (NOW - 66, Some(DpopError::Stale)), (NOW + 6, Some(DpopError::Stale))]
        {
            assert_eq!(check(&key, &proof(&key, iat).sign()).err(), want, "iat {}", iat - NOW);
        }
    }

    #[test]
    fn a_proofs_jti_is_remembered_while_the_proof_could_be_accepted_and_a_second_more() {
        let key = DpopKey::generate();
        // Accepted until iat + 65 s; the second covers the rounding.
        for (iat, seconds) in [(NOW - 10, 56), (NOW - 65, 1), (NOW + 5, 71)] {
            let checked = check(&key, &proof(&key, iat).claim("jti", "j-1").sign()).unwrap();
            let key_hash = digest::digest(&digest::SHA256, format!("{}.j-1", key.thumbprint()).as_bytes());
            let want = Checked { replay_key: b64url_encode(key_hash.as_ref()), ttl: Duration::from_secs(seconds) };
            assert_eq!(checked, want, "iat {}", iat - NOW);
        }
    }

    #[test]
    fn a_jti_has_1_to_256_bytes() {
        let key = DpopKey::generate();
        for (jti, want) in [
            (String::new(), Some(DpopError::MissingJti)),
            ("j".repeat(257), Some(DpopError::MissingJti)),
            ("j".repeat(256), None),
        ] {
            assert_eq!(
                check(&key, &proof(&key, NOW).claim("jti", jti.as_str()).sign()).err(),
                want,
                "{} bytes",
                jti.len()
            );
        }
    }

    #[test]
    fn a_proof_of_8_kib_is_checked_and_a_longer_one_is_malformed() {
        let key = DpopKey::generate();
        // A padding claim of `p` bytes adds one or two characters a byte: with a second
        // padding in the header (0 to 2 bytes) every length is reached.
        let sized = |len: usize| {
            (0..3)
                .flat_map(|h| (5400..6000).map(move |p| (h, p)))
                .map(|(h, p)| proof(&key, NOW).header("pad", "h".repeat(h)).claim("pad", "p".repeat(p)).sign())
                .find(|proof| proof.len() == len)
                .unwrap()
        };
        assert_eq!(check(&key, &sized(8 * 1024)).err(), None);
        assert_eq!(check(&key, &sized(8 * 1024 + 1)).err(), Some(DpopError::MalformedProof));
    }

    #[test]
    fn the_rfc_8037_okp_thumbprint_and_the_rfc_9449_ath() {
        // RFC 8037 §A.3 and RFC 9449 §7.1.
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let Value::Object(jwk) = jwk else { unreachable!() };
        assert_eq!(thumbprint(&jwk).as_deref(), Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"));
        assert_eq!(
            token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    /// `settings` built as an authority with 5 s of leeway and the audience `API` does.
    fn built(settings: Settings) -> Result<Option<(Dpop, DpopChallenge)>, &'static str> {
        settings.build(Duration::from_secs(5), None, Some(API)).map_err(|e| e.setting())
    }

    #[test]
    fn each_dpop_setting_alone_without_dpop_on_is_refused_and_the_proof_age_has_bounds() {
        let off = || Settings { policy: None, ..Settings::default() };
        assert!(matches!(built(off()), Ok(None)), "nothing set: DPoP off");
        for (what, settings) in [
            ("a replay store", Settings { store: Some(Arc::new(MemoryReplayStore::default())), ..off() }),
            ("a proof age", Settings { max_age: Some(Duration::from_secs(30)), ..off() }),
            ("proof algorithms", Settings { algorithms: Some(vec![Algorithm::ES256]), ..off() }),
            ("nonces", Settings { nonce: Some(DpopNonce::random()), ..off() }),
        ] {
            assert_eq!(built(settings).err(), Some("dpop"), "{what}");
        }
        let aged = |age| Settings { policy: Some(DpopPolicy::Allowed), max_age: Some(age), ..Settings::default() };
        for (age, want) in [
            (Duration::ZERO, Some("dpop_proof_max_age")),
            (Duration::from_nanos(1), None),
            (MAX_PROOF_MAX_AGE, None),
            (MAX_PROOF_MAX_AGE + Duration::from_nanos(1), Some("dpop_proof_max_age")),
        ] {
            assert_eq!(built(aged(age)).err(), want, "{age:?}");
        }
    }

    #[test]
    fn the_challenge_offers_bearer_only_when_dpop_is_allowed_and_lists_the_proof_algorithms() {
        let on = |policy| Settings { policy: Some(policy), ..Settings::default() };
        let Ok(Some((dpop, allowed))) = built(on(DpopPolicy::Allowed)) else { panic!("DPoP allowed") };
        assert!(allowed.bearer);
        assert_eq!(&*allowed.algs, "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519");
        assert_eq!(dpop.algorithms(), &Algorithm::PROOF);
        let Ok(Some((_, required))) = built(on(DpopPolicy::Required)) else { panic!("DPoP required") };
        assert!(!required.bearer);
    }

    #[test]
    fn a_proof_of_another_type_or_for_another_token_is_refused() {
        let key = DpopKey::generate();
        assert_eq!(check(&key, &proof(&key, NOW).header("typ", "JWT").sign()).err(), Some(DpopError::WrongType));
        let other = proof(&key, NOW).access_token("another.access.token").sign();
        assert_eq!(check(&key, &other).err(), Some(DpopError::AthMismatch));
        assert_eq!(check(&key, &proof(&key, NOW).without_claim("ath").sign()).err(), Some(DpopError::AthMismatch));
    }

    #[test]
    fn with_nonces_on_only_a_current_nonce_string_is_accepted() {
        let key = DpopKey::generate();
        let settings = Settings {
            policy: Some(DpopPolicy::Allowed),
            nonce: Some(DpopNonce::shared_secret([7; 32])),
            ..Settings::default()
        };
        let Ok(Some((dpop, _))) = built(settings) else { panic!("DPoP with nonces") };
        let current = dpop.nonces.as_ref().map(|nonces| nonces.current(NOW_F64)).unwrap_or_default();
        let check = |proof: ProofBuilder| {
            dpop.check(&proof.sign(), TOKEN, &Method::GET, "/me", &key.thumbprint(), NOW_F64).err()
        };
        assert_eq!(check(proof(&key, NOW).nonce(&current)), None);
        assert_eq!(check(proof(&key, NOW)), Some(DpopError::MissingNonce));
        assert_eq!(check(proof(&key, NOW).nonce("not-the-nonce")), Some(DpopError::InvalidNonce));
        assert_eq!(check(proof(&key, NOW).claim("nonce", 7)), Some(DpopError::MalformedProof));
    }

    #[test]
    fn exactly_one_dpop_header_of_visible_ascii_is_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(proof_header(&headers), Err(DpopError::MissingProof));
        headers.insert("dpop", "a.b.c".parse().unwrap());
        assert_eq!(proof_header(&headers), Ok("a.b.c"));
        headers.append("dpop", "d.e.f".parse().unwrap());
        assert_eq!(proof_header(&headers), Err(DpopError::MultipleProofs));
        let mut headers = HeaderMap::new();
        headers.insert("dpop", axum::http::HeaderValue::from_bytes(b"a.b\xffc").unwrap());
        assert_eq!(proof_header(&headers), Err(DpopError::MalformedProof));
    }

    #[test]
    fn only_the_application_prefix_is_implied_in_a_dpop_typ() {
        assert!(is_dpop_typ("APPLICATION/DPoP+jwt"));
        // Twelve characters before `dpop+jwt` that are not `application/`.
        for typ in ["text/example/dpop+jwt", "text/exampledpop+jwt", "applicationxdpop+jwt"] {
            assert!(!is_dpop_typ(typ), "{typ}");
        }
    }

    #[test]
    fn a_percent_escape_anywhere_in_the_path_is_normalized() {
        // Escapes past the path's first bytes (each byte read at its own offset).
        assert_eq!(normalize_path("/abcdef%7e"), "/abcdef~");
        assert_eq!(normalize_path("/abcdef%2f%41"), "/abcdef%2FA");
        assert_eq!(normalize_path("/abcdef%zz%4"), "/abcdef%zz%4");
    }
}
