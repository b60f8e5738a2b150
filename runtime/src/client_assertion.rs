//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the
//! API proves who it is to the issuer's introspection endpoint with a JWT signed by its
//! own private key instead of a shared secret.
//!
//! The key is read once, when the `Authority` is built (a PEM or a JWK, RSA for RS256 or
//! P-256 for ES256); each request carries a fresh assertion: `iss` = `sub` = the client
//! id, `aud` = the issuer identifier (one string: what the OAuth working group's update of
//! RFC 7523 recommends against audience injection, and what every provider accepts), a
//! random `jti`, `iat` now and `exp` [`ASSERTION_LIFETIME_SECS`] later.

use std::fmt;

use aws_lc_rs::{
    rand::{SecureRandom as _, SystemRandom},
    rsa::{KeyPairComponents, PublicKeyComponents},
    signature::{self as sig, EcdsaKeyPair, RsaKeyPair},
};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::b64::{b64url_decode, b64url_encode};

/// How long an assertion is valid: the issuer sees it within a request's timeout.
pub(crate) const ASSERTION_LIFETIME_SECS: u64 = 60;

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The private key as the builder was given it, read at build.
#[derive(Clone)]
pub(crate) enum KeyText {
    Pem(String),
    Jwk(String),
}

/// A signing key and the `kid` its assertions name.
pub(crate) struct AssertionSigner {
    key: SigningKey,
    kid: Box<str>,
    rng: SystemRandom,
}

enum SigningKey {
    Rs256(RsaKeyPair),
    Es256(EcdsaKeyPair),
}

impl fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("AssertionSigner").field("alg", &self.alg()).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl AssertionSigner {
    /// Reads `key`: a PEM (`PRIVATE KEY`, PKCS#8; `RSA PRIVATE KEY`, PKCS#1; or `EC PRIVATE
    /// KEY`, SEC 1) or a private JWK (`kty` `RSA`, or `EC` with `crv` `P-256`).
    ///
    /// # Errors
    /// What is wrong with the key, said for a configuration error.
    pub(crate) fn new(kid: &str, key: &KeyText) -> Result<Self, String> {
        if kid.is_empty() || !kid.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the kid must be non-empty printable ASCII without spaces".to_owned());
        }
        let key = match key {
            KeyText::Pem(pem) => from_pem(pem)?,
            KeyText::Jwk(jwk) => from_jwk(jwk)?,
        };
        Ok(Self { key, kid: kid.into(), rng: SystemRandom::new() })
    }

    fn alg(&self) -> &'static str {
        match self.key {
            SigningKey::Rs256(_) => "RS256",
            SigningKey::Es256(_) => "ES256",
        }
    }

    /// A fresh assertion of `client_id` for `audience`, issued at `now` (seconds since
    /// the epoch). `None` if the system's randomness or the signature failed.
    pub(crate) fn assertion(&self, client_id: &str, audience: &str, now: u64) -> Option<String> {
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti).ok()?;
        let header = json!({"alg": self.alg(), "kid": &*self.kid});
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": b64url_encode(&jti),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let input = format!(
            "{}.{}",
            b64url_encode(header.to_string().as_bytes()),
            b64url_encode(claims.to_string().as_bytes())
        );
        let signature = match &self.key {
            SigningKey::Rs256(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&sig::RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut signature).ok()?;
                signature
            }
            SigningKey::Es256(pair) => pair.sign(&self.rng, input.as_bytes()).ok()?.as_ref().to_vec(),
        };
        Some(format!("{input}.{}", b64url_encode(&signature)))
    }
}

/// An RSA or P-256 key from its PEM.
fn from_pem(pem: &str) -> Result<SigningKey, String> {
    let pem = pem.trim();
    let label = pem
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.split_once("-----"))
        .map(|(label, _)| label)
        .ok_or("not a PEM: it does not start with a `-----BEGIN …-----` line")?;
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).map(str::trim).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| format!("the `{label}` PEM's body is not base64"))?;
    let rsa = || RsaKeyPair::from_pkcs8(&der).map(SigningKey::Rs256);
    let ec = || EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &der).map(SigningKey::Es256);
    let key = match label {
        "PRIVATE KEY" => rsa().or_else(|_| ec()).ok(),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der).map(SigningKey::Rs256).ok(),
        "EC PRIVATE KEY" => {
            EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &der).map(SigningKey::Es256).ok()
        }
        other => {
            return Err(format!(
                "a `{other}` PEM is not an unencrypted private key: give a `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` or `EC PRIVATE KEY`"
            ));
        }
    };
    key.ok_or_else(|| {
        format!("the `{label}` PEM holds no usable key: an RSA key of 2048 to 8192 bits (RS256) or a P-256 key (ES256)")
    })
}

/// An RSA or P-256 key from its private JWK.
fn from_jwk(jwk: &str) -> Result<SigningKey, String> {
    let jwk: Value = serde_json::from_str(jwk).map_err(|e| format!("the JWK is not JSON: {e}"))?;
    let member = |name: &str| -> Result<Vec<u8>, String> {
        let text = jwk.get(name).and_then(Value::as_str).ok_or_else(|| format!("the JWK has no `{name}`"))?;
        b64url_decode(text.as_bytes()).ok_or_else(|| format!("the JWK's `{name}` is not base64url"))
    };
    match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            let (n, e, d) = (member("n")?, member("e")?, member("d")?);
            let (p, q, dp, dq, qi) = (member("p")?, member("q")?, member("dp")?, member("dq")?, member("qi")?);
            let components = KeyPairComponents {
                public_key: PublicKeyComponents { n: strip_zeros(&n), e: strip_zeros(&e) },
                d: &d[..],
                p: &p[..],
                q: &q[..],
                dP: &dp[..],
                dQ: &dq[..],
                qInv: &qi[..],
            };
            RsaKeyPair::from_components(&components)
                .map(SigningKey::Rs256)
                .map_err(|_| "the RSA JWK is not a usable key (2048 to 8192 bits, consistent members)".to_owned())
        }
        Some("EC") => {
            if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
                return Err("an EC JWK must have `crv` `P-256` (ES256)".to_owned());
            }
            let (d, x, y) = (member("d")?, member("x")?, member("y")?);
            let point: Vec<u8> = [&[4u8][..], &x, &y].concat();
            EcdsaKeyPair::from_private_key_and_public_key(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &d, &point)
                .map(SigningKey::Es256)
                .map_err(|_| "the EC JWK is not a usable P-256 key (`d`, `x` and `y` must match)".to_owned())
        }
        _ => Err("the JWK's `kty` must be `RSA` (RS256) or `EC` (ES256)".to_owned()),
    }
}

/// A big-endian integer without its leading zero bytes (the form aws-lc-rs wants for the
/// public components).
fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_a_private_key_is_refused_with_what_is_wrong() {
        let refused = |key: KeyText| AssertionSigner::new("k1", &key).err().unwrap_or_default();
        assert_eq!(
            refused(KeyText::Pem("MIIB".into())),
            "not a PEM: it does not start with a `-----BEGIN …-----` line"
        );
        assert!(
            refused(KeyText::Pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into()))
                .starts_with("a `PUBLIC KEY` PEM is not an unencrypted private key")
        );
        assert!(
            refused(KeyText::Pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into()))
                .starts_with("the `PRIVATE KEY` PEM holds no usable key")
        );
        assert_eq!(
            refused(KeyText::Jwk(r#"{"kty":"oct","k":"AA"}"#.into())),
            "the JWK's `kty` must be `RSA` (RS256) or `EC` (ES256)"
        );
        assert_eq!(
            refused(KeyText::Jwk(r#"{"kty":"EC","crv":"P-384","d":"AA","x":"AA","y":"AA"}"#.into())),
            "an EC JWK must have `crv` `P-256` (ES256)"
        );
        assert_eq!(
            refused(KeyText::Jwk(r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#.into())),
            "the JWK has no `d`"
        );
        let jwk = crate::testing::DpopKey::generate().private_jwk().to_string();
        assert_eq!(
            AssertionSigner::new("", &KeyText::Jwk(jwk)).err().as_deref(),
            Some("the kid must be non-empty printable ASCII without spaces")
        );
    }

    #[test]
    fn the_test_kits_rsa_private_jwk_is_a_consistent_signing_key() {
        // Its members come from the key's PKCS#8 DER: aws-lc-rs checks they belong together.
        let jwk = crate::testing::DpopKey::rsa().private_jwk().to_string();
        assert!(AssertionSigner::new("rsa-1", &KeyText::Jwk(jwk)).is_ok());
    }
}
