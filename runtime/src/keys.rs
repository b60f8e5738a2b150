//! Verification keys: admission of JWKs and PEM keys, and the immutable key set the
//! verifier reads.
//!
//! Admission runs once per key set (not per request) and enforces section 4 of the
//! security spec: `use` must be `sig`, `key_ops` must include `verify`, no symmetric or
//! private key material, RSA moduli of 2048 to 8192 bits with a sane exponent, EC curves
//! that match their coordinates, Ed25519 only for OKP, and a declared `alg` that fits the
//! key. One bad key is skipped and reported; the rest of the set is still used.
//!
//! Every admitted key is parsed into an `aws_lc_rs` verifier once per algorithm it may be
//! used with, so a request pays only for the signature check itself.

use std::fmt;

use aws_lc_rs::{
    hmac,
    signature::{self as sig, ParsedPublicKey, VerificationAlgorithm},
};
use serde_json::{Map, Value};

use crate::{
    algorithm::{Algorithm, Family},
    jws::b64url_decode,
};

/// The most keys one key set may hold.
pub(crate) const MAX_KEYS: usize = 100;
/// The longest `kid` accepted, in bytes (in a key set and in a token header).
pub(crate) const MAX_KID_LEN: usize = 256;

/// A key the verifier may use, with one ready verifier per permitted algorithm.
pub(crate) struct VerifyingKey {
    kid: Option<Box<str>>,
    verifiers: Vec<(Algorithm, Verifier)>,
}

// The public-key variant is the one on every hot path; boxing it would add an indirection
// per verification to save a few bytes per key.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Verifier {
    Public(ParsedPublicKey),
    Hmac(hmac::Key),
}

impl Verifier {
    /// Checks `signature` over `message`; constant-time for HMAC.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Public(key) => key.verify_sig(message, signature).is_ok(),
            Self::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }
}

impl VerifyingKey {
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub(crate) fn verifier(&self, alg: Algorithm) -> Option<&Verifier> {
        self.verifiers.iter().find(|(a, _)| *a == alg).map(|(_, v)| v)
    }

    /// The algorithms this key may verify.
    pub(crate) fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.verifiers.iter().map(|(a, _)| *a)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a key was not admitted. Logged by the key source; never sent to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyRejection {
    /// The JWK is not a JSON object, or a member has the wrong JSON type.
    Malformed,
    /// `kty` is missing or not one of `RSA`, `EC`, `OKP`.
    UnsupportedKeyType,
    /// A symmetric (`oct`) key: never admitted from a key set.
    SymmetricKey,
    /// The key carries private members (`d`, `p`, `q`, …): the issuer is leaking keys.
    PrivateKeyMaterial,
    /// `use` is not `sig`.
    NotForSignatures,
    /// `key_ops` does not include `verify`.
    NotForVerification,
    /// The declared `alg` is unknown, not allowed, or does not fit the key type.
    AlgorithmMismatch,
    /// The RSA modulus is outside 2048..=8192 bits, or the exponent is even, 1, or larger
    /// than 2^32.
    WeakRsaKey,
    /// The curve is unsupported or disagrees with the coordinates, or the point is not on
    /// the curve.
    InvalidCurve,
    /// The key material could not be parsed.
    InvalidKeyMaterial,
    /// The `kid` is longer than 256 bytes.
    KidTooLong,
    /// The key set holds more than 100 keys.
    TooManyKeys,
}

impl KeyRejection {
    /// A stable code for logs and metrics.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed_jwk",
            Self::UnsupportedKeyType => "unsupported_kty",
            Self::SymmetricKey => "symmetric_key",
            Self::PrivateKeyMaterial => "private_key_material",
            Self::NotForSignatures => "use_not_sig",
            Self::NotForVerification => "key_ops_without_verify",
            Self::AlgorithmMismatch => "alg_mismatch",
            Self::WeakRsaKey => "weak_rsa_key",
            Self::InvalidCurve => "invalid_curve",
            Self::InvalidKeyMaterial => "invalid_key_material",
            Self::KidTooLong => "kid_too_long",
            Self::TooManyKeys => "too_many_keys",
        }
    }
}

impl fmt::Display for KeyRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a whole key set was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySetError {
    /// Not a JSON object with a `keys` array.
    NotAJwks,
    /// More than 100 keys.
    TooManyKeys,
    /// No key could be admitted; each rejected key's position and reason.
    NoUsableKeys(Vec<(usize, KeyRejection)>),
}

impl fmt::Display for KeySetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAJwks => f.write_str("the document is not a JWK set (a JSON object with a \"keys\" array)"),
            Self::TooManyKeys => write!(f, "the JWK set holds more than {MAX_KEYS} keys"),
            Self::NoUsableKeys(rejected) => {
                f.write_str("the JWK set has no usable signing key")?;
                for (i, why) in rejected {
                    write!(f, "; key {i}: {why}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for KeySetError {}

/// An immutable set of admitted keys. Readers hold an `Arc` to it; a new set replaces it
/// whole.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<VerifyingKey>,
    /// Keys that were skipped, with their position in the source document.
    pub(crate) rejected: Vec<(usize, KeyRejection)>,
}

/// The outcome of looking up the key for a token.
pub(crate) enum KeyLookup<'a> {
    /// One or two candidate verifiers (two only for a duplicated `kid`).
    Found([Option<&'a Verifier>; 2]),
    /// No key has this `kid` (a refresh may help).
    UnknownKid,
    /// No usable key: wrong algorithm for the kid, no kid with several candidates, or
    /// more than two keys sharing a kid.
    NoUsableKey,
}

impl KeySet {
    /// Admits the keys of a JWK set document, skipping the bad ones.
    pub(crate) fn from_jwks(json: &[u8], allowed: &[Algorithm]) -> Result<Self, KeySetError> {
        let doc = crate::json::parse_object(json).map_err(|_| KeySetError::NotAJwks)?;
        let Some(Value::Array(keys)) = doc.get("keys") else {
            return Err(KeySetError::NotAJwks);
        };
        if keys.len() > MAX_KEYS {
            return Err(KeySetError::TooManyKeys);
        }
        let mut set = KeySet::default();
        for (i, jwk) in keys.iter().enumerate() {
            match admit_jwk(jwk, allowed) {
                Ok(key) => set.keys.push(key),
                Err(why) => set.rejected.push((i, why)),
            }
        }
        if set.keys.is_empty() {
            return Err(KeySetError::NoUsableKeys(set.rejected));
        }
        Ok(set)
    }

    pub(crate) fn from_keys(keys: Vec<VerifyingKey>) -> Self {
        Self { keys, rejected: Vec::new() }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }

    /// The kids of the set, sorted (keys without a kid are left out).
    pub(crate) fn kid_list(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.iter().filter_map(VerifyingKey::kid).collect();
        kids.sort_unstable();
        kids
    }

    /// Whether both sets hold keys with the same kids.
    pub(crate) fn same_kids(&self, other: &KeySet) -> bool {
        self.len() == other.len() && self.kid_list() == other.kid_list()
    }

    pub(crate) fn into_keys(self) -> Vec<VerifyingKey> {
        self.keys
    }

    /// Finds the verifier for a token's `kid` and `alg` (security spec cases 55-60, 71).
    pub(crate) fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup<'_> {
        let mut found: [Option<&Verifier>; 2] = [None, None];
        let mut count = 0usize;
        let mut kid_seen = false;
        for key in &self.keys {
            if let Some(kid) = kid {
                if key.kid() != Some(kid) {
                    continue;
                }
                kid_seen = true;
            }
            if let Some(verifier) = key.verifier(alg) {
                if let Some(slot) = found.get_mut(count) {
                    *slot = Some(verifier);
                }
                count += 1;
            }
        }
        match (kid, count) {
            (Some(_), 0) if !kid_seen => KeyLookup::UnknownKid,
            (Some(_), 1 | 2) | (None, 1) => KeyLookup::Found(found),
            _ => KeyLookup::NoUsableKey,
        }
    }
}

fn get_str<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, KeyRejection> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(KeyRejection::Malformed),
    }
}

fn required_bytes(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, KeyRejection> {
    let text = get_str(jwk, name)?.ok_or(KeyRejection::Malformed)?;
    b64url_decode(text.as_bytes()).ok_or(KeyRejection::InvalidKeyMaterial)
}

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Admits one JWK (security spec cases 61-70).
pub(crate) fn admit_jwk(jwk: &Value, allowed: &[Algorithm]) -> Result<VerifyingKey, KeyRejection> {
    let Value::Object(jwk) = jwk else {
        return Err(KeyRejection::Malformed);
    };
    let kty = get_str(jwk, "kty")?;
    if kty == Some("oct") {
        return Err(KeyRejection::SymmetricKey);
    }
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(KeyRejection::PrivateKeyMaterial);
    }
    let kid = get_str(jwk, "kid")?;
    if kid.is_some_and(|k| k.len() > MAX_KID_LEN) {
        return Err(KeyRejection::KidTooLong);
    }
    if let Some(usage) = get_str(jwk, "use")?
        && usage != "sig"
    {
        return Err(KeyRejection::NotForSignatures);
    }
    if let Some(ops) = jwk.get("key_ops") {
        let Value::Array(ops) = ops else {
            return Err(KeyRejection::Malformed);
        };
        if !ops.iter().all(Value::is_string) {
            return Err(KeyRejection::Malformed);
        }
        if !ops.iter().any(|op| op == "verify") {
            return Err(KeyRejection::NotForVerification);
        }
    }
    let declared = match get_str(jwk, "alg")? {
        None => None,
        Some(name) => Some(Algorithm::from_name(name).ok_or(KeyRejection::AlgorithmMismatch)?),
    };
    let material = match kty {
        Some("RSA") => {
            let n = required_bytes(jwk, "n")?;
            let e = required_bytes(jwk, "e")?;
            KeyMaterial::rsa(&n, &e)?
        }
        Some("EC") => {
            let x = required_bytes(jwk, "x")?;
            let y = required_bytes(jwk, "y")?;
            let size = match get_str(jwk, "crv")? {
                Some("P-256") => 32,
                Some("P-384") => 48,
                _ => return Err(KeyRejection::InvalidCurve),
            };
            if x.len() != size || y.len() != size {
                return Err(KeyRejection::InvalidCurve);
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            KeyMaterial { family: Family::Ec(size), bytes: point }
        }
        Some("OKP") => {
            if get_str(jwk, "crv")? != Some("Ed25519") {
                return Err(KeyRejection::InvalidCurve);
            }
            let x = required_bytes(jwk, "x")?;
            if x.len() != 32 {
                return Err(KeyRejection::InvalidKeyMaterial);
            }
            KeyMaterial { family: Family::Ed25519, bytes: x }
        }
        _ => return Err(KeyRejection::UnsupportedKeyType),
    };
    material.into_key(kid.map(Box::from), declared, allowed)
}

/// Public key bytes in the form `aws_lc_rs` parses, with their family.
pub(crate) struct KeyMaterial {
    family: Family,
    /// PKCS#1 `RSAPublicKey` DER, an uncompressed EC point, or a raw Ed25519 key.
    bytes: Vec<u8>,
}

impl KeyMaterial {
    /// RSA from big-endian modulus and exponent, checked for size (case 65-67).
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Result<Self, KeyRejection> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
        if !(2048..=8192).contains(&bits) {
            return Err(KeyRejection::WeakRsaKey);
        }
        let even = e.last().is_none_or(|b| b & 1 == 0);
        if e.len() > 4 || even || e == [1] {
            return Err(KeyRejection::WeakRsaKey);
        }
        let mut body = der_integer(n);
        body.extend(der_integer(e));
        Ok(Self { family: Family::Rsa, bytes: der_tlv(0x30, &body) })
    }

    /// Parses the key once for every allowed algorithm it may be used with.
    pub(crate) fn into_key(
        self,
        kid: Option<Box<str>>,
        declared: Option<Algorithm>,
        allowed: &[Algorithm],
    ) -> Result<VerifyingKey, KeyRejection> {
        if let Some(alg) = declared
            && (alg.family() != self.family || !allowed.contains(&alg))
        {
            return Err(KeyRejection::AlgorithmMismatch);
        }
        let mut verifiers = Vec::new();
        for &alg in allowed {
            if alg.family() != self.family || declared.is_some_and(|d| d != alg) {
                continue;
            }
            let Some(algorithm) = aws_lc_algorithm(alg) else {
                continue;
            };
            let parsed = ParsedPublicKey::new(algorithm, &self.bytes).map_err(|_| match self.family {
                Family::Ec(_) => KeyRejection::InvalidCurve,
                _ => KeyRejection::InvalidKeyMaterial,
            })?;
            verifiers.push((alg, Verifier::Public(parsed)));
        }
        if verifiers.is_empty() {
            return Err(KeyRejection::AlgorithmMismatch);
        }
        Ok(VerifyingKey { kid, verifiers })
    }
}

/// A shared-secret key for one HMAC algorithm.
pub(crate) fn hmac_key(secret: &[u8], alg: Algorithm, kid: Option<Box<str>>) -> VerifyingKey {
    let algorithm = match alg {
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    };
    VerifyingKey { kid, verifiers: vec![(alg, Verifier::Hmac(hmac::Key::new(algorithm, secret)))] }
}

fn aws_lc_algorithm(alg: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &sig::ED25519,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => return None,
    })
}

/// Admits a PEM public key (`PUBLIC KEY` SPKI or `RSA PUBLIC KEY` PKCS#1). Private keys
/// are refused.
pub(crate) fn admit_pem(pem: &str, kid: Option<&str>, allowed: &[Algorithm]) -> Result<VerifyingKey, KeyRejection> {
    use jsonwebtoken::DecodingKey;

    let label = pem.trim_start().lines().next().unwrap_or_default();
    if !(label == "-----BEGIN PUBLIC KEY-----" || label == "-----BEGIN RSA PUBLIC KEY-----") {
        return Err(if label.contains("PRIVATE") {
            KeyRejection::PrivateKeyMaterial
        } else {
            KeyRejection::InvalidKeyMaterial
        });
    }
    if kid.is_some_and(|k| k.len() > MAX_KID_LEN) {
        return Err(KeyRejection::KidTooLong);
    }
    let bytes = pem.as_bytes();
    // jsonwebtoken tells the PEM's key type by trying each parser; the key bytes it returns
    // are PKCS#1 DER (RSA), an uncompressed point (EC) or the raw key (Ed25519).
    let contents = |parsed: jsonwebtoken::errors::Result<DecodingKey>| {
        parsed.ok().and_then(|key| key.try_get_as_bytes().ok().map(<[u8]>::to_vec))
    };
    let material = if let Some(der) = contents(DecodingKey::from_rsa_pem(bytes)) {
        let (n, e) = parse_rsa_public_key(&der).ok_or(KeyRejection::InvalidKeyMaterial)?;
        KeyMaterial::rsa(n, e)?
    } else if let Some(point) = contents(DecodingKey::from_ec_pem(bytes)) {
        let size = match point.len() {
            65 => 32,
            97 => 48,
            _ => return Err(KeyRejection::InvalidCurve),
        };
        KeyMaterial { family: Family::Ec(size), bytes: point }
    } else if let Some(raw) = contents(DecodingKey::from_ed_pem(bytes)) {
        if raw.len() != 32 {
            return Err(KeyRejection::InvalidKeyMaterial);
        }
        KeyMaterial { family: Family::Ed25519, bytes: raw }
    } else {
        return Err(KeyRejection::InvalidKeyMaterial);
    };
    material.into_key(kid.map(Box::from), None, allowed)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..=0x7f => vec![len as u8],
        0x80..=0xff => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

fn der_tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(body.len()));
    out.extend_from_slice(body);
    out
}

/// A positive DER INTEGER from big-endian magnitude bytes without leading zeros.
fn der_integer(magnitude: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(magnitude);
    der_tlv(0x02, &body)
}

/// Reads `(n, e)` from a PKCS#1 `RSAPublicKey` DER document.
fn parse_rsa_public_key(der: &[u8]) -> Option<(&[u8], &[u8])> {
    fn read_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x81 => (usize::from(*rest.first()?), rest.get(1..)?),
            0x82 => (usize::from(*rest.first()?) << 8 | usize::from(*rest.get(1)?), rest.get(2..)?),
            _ => return None,
        };
        Some((rest.get(..len)?, rest.get(len..)?))
    }
    let (seq, trailing) = read_tlv(der, 0x30)?;
    let (n, rest) = read_tlv(seq, 0x02)?;
    let (e, rest) = read_tlv(rest, 0x02)?;
    (trailing.is_empty() && rest.is_empty()).then_some((n, e))
}
