//! Verification keys: admission of JWKs and PEM keys, and the immutable key set the
//! verifier reads.
//!
//! Admission runs once per key set (not per request) and enforces section 4 of the
//! security spec: `use` must be `sig`, `key_ops` must include `verify`, no symmetric or
//! private key material, RSA moduli of 2048 to 8192 bits with a sane exponent, EC curves
//! that match their coordinates with the point on the curve, Ed25519 only for OKP and
//! never a small-order point, and a declared `alg` that fits the key. One bad key is skipped and reported; the rest of the set is still used.
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
    b64::b64url_decode,
    config::MAX_KID_LEN,
};

/// The most keys one key set may hold.
pub(crate) const MAX_KEYS: usize = 100;

/// Why no key set can be offered right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unavailable {
    /// Seconds the client should wait.
    pub(crate) retry_after_secs: u32,
}

/// A key the verifier may use, with one ready verifier per permitted algorithm.
pub(crate) struct VerifyingKey {
    kid: Option<Box<str>>,
    verifiers: Vec<(Algorithm, SignatureChecker)>,
}

/// One key's signature check for one algorithm, the key parsed once (the verifier is
/// `Authority`; this only says whether a signature is the key's).
// The public-key variant is the one on every hot path; boxing it would add an indirection
// per verification to save a few bytes per key.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SignatureChecker {
    Public(ParsedPublicKey),
    Hmac(hmac::Key),
}

impl SignatureChecker {
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

    pub(crate) fn verifier(&self, alg: Algorithm) -> Option<&SignatureChecker> {
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

/// Why a key was not admitted. Logged by the key source; never sent to clients. Its
/// `Display` is its [`code`](Self::code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.code())]
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
    /// The key material could not be parsed, or is an Ed25519 key that is a small-order
    /// point or non-canonically encoded (such a key verifies forged signatures).
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

/// Why a whole key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    /// Not a JSON object with a `keys` array.
    #[error("the document is not a JWK set (a JSON object with a \"keys\" array)")]
    NotAJwks,
    /// More than 100 keys.
    #[error("the JWK set holds more than {MAX_KEYS} keys")]
    TooManyKeys,
    /// No key could be admitted; each rejected key's position and reason.
    #[error("the JWK set has no usable signing key{}", Rejected(.0))]
    NoUsableKeys(Vec<(usize, KeyRejection)>),
}

/// The rejected keys of a set, each as `; key {position}: {reason}`.
struct Rejected<'a>(&'a [(usize, KeyRejection)]);

impl fmt::Display for Rejected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|(i, why)| write!(f, "; key {i}: {why}"))
    }
}

/// An immutable set of admitted keys. Readers hold an `Arc` to it; a new set replaces it
/// whole.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<VerifyingKey>,
    /// Keys that were skipped, with their position in the source document.
    pub(crate) rejected: Vec<(usize, KeyRejection)>,
}

/// Which keys of a set match a token's `kid` and `alg`: the candidates to check its
/// signature with, or why there are none.
pub(crate) enum KeyMatch<'a> {
    /// One or two candidate verifiers (two only for a duplicated `kid`).
    Found([Option<&'a SignatureChecker>; 2]),
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
    pub(crate) fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyMatch<'_> {
        let mut found: [Option<&SignatureChecker>; 2] = [None, None];
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
            (Some(_), 0) if !kid_seen => KeyMatch::UnknownKid,
            (Some(_), 1 | 2) | (None, 1) => KeyMatch::Found(found),
            _ => KeyMatch::NoUsableKey,
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
            PublicKeyBytes::rsa(&n, &e)?
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
            PublicKeyBytes { family: Family::Ec(size), bytes: point }
        }
        Some("OKP") => {
            if get_str(jwk, "crv")? != Some("Ed25519") {
                return Err(KeyRejection::InvalidCurve);
            }
            PublicKeyBytes::ed25519(required_bytes(jwk, "x")?)?
        }
        _ => return Err(KeyRejection::UnsupportedKeyType),
    };
    material.into_key(kid.map(Box::from), declared, allowed)
}

/// Public key bytes in the form `aws_lc_rs` parses, with their family.
pub(crate) struct PublicKeyBytes {
    family: Family,
    /// PKCS#1 `RSAPublicKey` DER, an uncompressed EC point, or a raw Ed25519 key.
    bytes: Vec<u8>,
}

impl PublicKeyBytes {
    /// RSA from big-endian modulus and exponent, checked for size (case 65-67).
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Result<Self, KeyRejection> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        // The bit length of a magnitude without leading zeros; 0 for an empty (or
        // all-zero) modulus, with no arithmetic that can underflow.
        let bits = match n.first() {
            None => 0,
            Some(top) => (n.len() - 1).saturating_mul(8).saturating_add(8 - top.leading_zeros() as usize),
        };
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

    /// A raw Ed25519 public key: 32 bytes, canonically encoded, not a small-order point.
    ///
    /// A small-order public key verifies forged signatures (with the identity point as the
    /// key, `R` = identity and `S` = 0 is a valid signature of every message under the
    /// cofactorless equation), so such keys are refused like libsodium's
    /// `ge25519_has_small_order` does. The sign bit is ignored in the comparison, which
    /// also catches `x = 0` encoded with the sign bit set; a `y` of `p` or more (the
    /// non-canonical encodings of 0 and 1 among them) is refused as non-canonical.
    pub(crate) fn ed25519(x: Vec<u8>) -> Result<Self, KeyRejection> {
        let Ok(encoding) = <[u8; 32]>::try_from(x.as_slice()) else {
            return Err(KeyRejection::InvalidKeyMaterial);
        };
        let y = |bytes: &[u8; 32]| {
            let mut y = *bytes;
            y[31] &= 0x7f;
            y
        };
        if SMALL_ORDER_POINTS.iter().any(|point| y(point) == y(&encoding)) || !is_canonical_y(&y(&encoding)) {
            return Err(KeyRejection::InvalidKeyMaterial);
        }
        Ok(Self { family: Family::Ed25519, bytes: x })
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
            verifiers.push((alg, SignatureChecker::Public(parsed)));
        }
        if verifiers.is_empty() {
            return Err(KeyRejection::AlgorithmMismatch);
        }
        Ok(VerifyingKey { kid, verifiers })
    }
}

/// The eight Ed25519 points of small order (1, 2, 4 and 8: the torsion subgroup of
/// edwards25519), canonically encoded (RFC 8032 §5.1.2: little-endian `y`, the top bit
/// the sign of `x`). They are the `ge25519_has_small_order` blocklist of libsodium
/// (`crypto_core/ed25519/ref10/ed25519_ref10.c`) and the `EIGHT_TORSION` table of
/// curve25519-dalek; each satisfies `[8]P = identity`.
const SMALL_ORDER_POINTS: [[u8; 32]; 8] = [
    // The identity (0, 1), order 1.
    [
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ],
    // (0, -1), order 2: y = p - 1.
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    // (±sqrt(-1), 0), order 4: y = 0, both signs of x.
    [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ],
    [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
    ],
    // Order 8: two values of y, both signs of x each.
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x85,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0xfa,
    ],
];

/// Whether a little-endian `y` (sign bit cleared) is below p = 2^255 - 19.
fn is_canonical_y(y: &[u8; 32]) -> bool {
    // y >= p exactly when the top byte is 0x7f, bytes 1..=30 are 0xff and the low byte is
    // at least 0xed.
    let (low, rest) = (y[0], &y[1..]);
    let top_and_middle = rest.last() == Some(&0x7f) && rest.iter().rev().skip(1).all(|&b| b == 0xff);
    !(top_and_middle && low >= 0xed)
}

/// A shared-secret key for one HMAC algorithm.
pub(crate) fn hmac_key(secret: &[u8], alg: Algorithm, kid: Option<Box<str>>) -> VerifyingKey {
    let algorithm = match alg {
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    };
    VerifyingKey { kid, verifiers: vec![(alg, SignatureChecker::Hmac(hmac::Key::new(algorithm, secret)))] }
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
        Algorithm::EdDSA | Algorithm::Ed25519 => &sig::ED25519,
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
        PublicKeyBytes::rsa(n, e)?
    } else if let Some(point) = contents(DecodingKey::from_ec_pem(bytes)) {
        let size = match point.len() {
            65 => 32,
            97 => 48,
            _ => return Err(KeyRejection::InvalidCurve),
        };
        PublicKeyBytes { family: Family::Ec(size), bytes: point }
    } else if let Some(raw) = contents(DecodingKey::from_ed_pem(bytes)) {
        PublicKeyBytes::ed25519(raw)?
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

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    use serde_json::json;

    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa_jwk(n: &str) -> Value {
        json!({"kty": "RSA", "kid": "r", "n": n, "e": "AQAB"})
    }

    #[test]
    fn an_empty_or_all_zero_rsa_modulus_is_a_weak_key_not_a_panic() {
        for n in ["", "AA", "AAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            let admitted = admit_jwk(&rsa_jwk(n), &Algorithm::ASYMMETRIC);
            assert_eq!(admitted.err(), Some(KeyRejection::WeakRsaKey), "n = {n:?}");
        }
        assert_eq!(PublicKeyBytes::rsa(&[], &[1, 0, 1]).err(), Some(KeyRejection::WeakRsaKey));
        assert_eq!(PublicKeyBytes::rsa(&[0; 300], &[1, 0, 1]).err(), Some(KeyRejection::WeakRsaKey));
        // One bit short of 2048 and exactly 2048: the bit count is exact.
        let mut n = vec![0xff; 256];
        n[0] = 0x7f;
        assert_eq!(PublicKeyBytes::rsa(&n, &[1, 0, 1]).err(), Some(KeyRejection::WeakRsaKey));
        n[0] = 0x80;
        assert!(PublicKeyBytes::rsa(&n, &[1, 0, 1]).is_ok());
    }

    #[test]
    fn ed25519_small_order_points_are_refused() {
        // The eight points of order 1, 2, 4 and 8, canonically encoded (computed
        // independently of `SMALL_ORDER_POINTS`: [8]P is the identity for each).
        let small_order = [
            "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "7P_______________________________________38",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA",
            "JuiVj8KyJ7BFw_SJ8u-Y8NXfrAXTxjM5sTgCiG1T_AU",
            "JuiVj8KyJ7BFw_SJ8u-Y8NXfrAXTxjM5sTgCiG1T_IU",
            "xxdqcD1N2E-6PAt2DRBnDyogU_osOczGTsf9d5KsA3o",
            "xxdqcD1N2E-6PAt2DRBnDyogU_osOczGTsf9d5KsA_o",
            // Non-canonical encodings of small-order points: y = p, y = p + 1 (with and
            // without the sign bit), and x = 0 with the sign bit set.
            "7f_______________________________________38",
            "7f________________________________________8",
            "7v_______________________________________38",
            "7v________________________________________8",
            "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA",
            "7P________________________________________8",
        ];
        for x in small_order {
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "e", "x": x});
            assert_eq!(admit_jwk(&jwk, &Algorithm::ASYMMETRIC).err(), Some(KeyRejection::InvalidKeyMaterial), "{x}");
        }
        // The identity as a PEM key is refused the same way.
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n-----END PUBLIC KEY-----\n";
        assert_eq!(admit_pem(pem, None, &Algorithm::ASYMMETRIC).err(), Some(KeyRejection::InvalidKeyMaterial));
        // RFC 8032 §7.1 test 1: a real key is admitted.
        let good = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert!(admit_jwk(&good, &Algorithm::ASYMMETRIC).is_ok());
    }

    fn ec_jwk(crv: &str, x: &[u8], y: &[u8]) -> Value {
        json!({"kty": "EC", "crv": crv, "kid": "c", "x": b64(x), "y": b64(y)})
    }

    #[test]
    fn ec_points_off_the_curve_are_refused() {
        use aws_lc_rs::{
            rand::SystemRandom,
            signature::{ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
        };
        let rng = SystemRandom::new();
        for (crv, signing, size) in
            [("P-256", &ECDSA_P256_SHA256_FIXED_SIGNING, 32), ("P-384", &ECDSA_P384_SHA384_FIXED_SIGNING, 48)]
        {
            let pair = EcdsaKeyPair::from_pkcs8(signing, EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap().as_ref())
                .unwrap();
            let point = pair.public_key().as_ref();
            let (x, y) = (&point[1..=size], &point[size + 1..]);
            assert!(admit_jwk(&ec_jwk(crv, x, y), &Algorithm::ASYMMETRIC).is_ok(), "{crv}: the real point");
            let mut off = y.to_vec();
            off[size - 1] ^= 1;
            let mut one = vec![0u8; size];
            one[size - 1] = 1;
            let zero = vec![0u8; size];
            for (what, x, y) in [
                ("y + 1", x, off.as_slice()),
                ("(1, 1)", one.as_slice(), one.as_slice()),
                ("(0, 0)", zero.as_slice(), zero.as_slice()),
                ("x and y swapped", y, x),
            ] {
                let admitted = admit_jwk(&ec_jwk(crv, x, y), &Algorithm::ASYMMETRIC);
                assert_eq!(admitted.err(), Some(KeyRejection::InvalidCurve), "{crv}: {what}");
            }
        }
    }

    // A key set's bookkeeping, lookups and admission rules one by one (cargo-mutants over
    // keys.rs: the cases below each fail with one of its mutants).

    fn issuer() -> crate::testing::TestIssuer {
        crate::testing::TestIssuer::new()
    }

    /// The issuer's key `kid` (`rsa-1`, `ec-1`, `ec-384`, `ed-1`) under another kid, or none.
    fn jwk_as(kid: &str, as_kid: Option<&str>) -> Value {
        let mut jwk = issuer().jwk(kid);
        let map = jwk.as_object_mut().unwrap();
        match as_kid {
            Some(k) => map.insert("kid".into(), k.into()),
            None => map.remove("kid"),
        };
        jwk
    }

    fn with(mut jwk: Value, name: &str, value: Value) -> Value {
        jwk.as_object_mut().unwrap().insert(name.into(), value);
        jwk
    }

    fn set_of(jwks: &[Value]) -> KeySet {
        KeySet::from_jwks(json!({ "keys": jwks }).to_string().as_bytes(), &Algorithm::ASYMMETRIC).unwrap()
    }

    /// The signing input and signature of a token the issuer signs with `alg`.
    fn signed(alg: Algorithm) -> (String, Vec<u8>) {
        issuer().access_token().algorithm(alg).sign_parts()
    }

    #[test]
    fn a_key_verifies_its_own_signature_for_the_algorithm_asked_and_nothing_else() {
        let key = admit_jwk(&jwk_as("rsa-1", Some("r")), &Algorithm::ASYMMETRIC).unwrap();
        let rsa: Vec<Algorithm> = Algorithm::ASYMMETRIC.into_iter().take(6).collect();
        assert_eq!(key.algorithms().collect::<Vec<_>>(), rsa);
        assert_eq!(key.kid(), Some("r"));
        assert_eq!(
            format!("{key:?}"),
            "VerifyingKey { kid: Some(\"r\"), algorithms: [RS256, RS384, RS512, PS256, PS384, PS512] }"
        );
        for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::PS512] {
            let (input, mut signature) = signed(alg);
            assert!(key.verifier(alg).unwrap().verify(input.as_bytes(), &signature), "{alg:?}");
            signature[10] ^= 1;
            assert!(!key.verifier(alg).unwrap().verify(input.as_bytes(), &signature), "{alg:?} tampered");
        }
        // A PKCS#1 v1.5 signature is not a PSS one: the verifier asked for is the one used.
        let (input, signature) = signed(Algorithm::RS256);
        assert!(!key.verifier(Algorithm::PS256).unwrap().verify(input.as_bytes(), &signature));
        assert!(key.verifier(Algorithm::ES256).is_none());
        // A key without a kid has none.
        assert_eq!(admit_jwk(&jwk_as("ed-1", None), &Algorithm::ASYMMETRIC).unwrap().kid(), None);
    }

    #[test]
    fn an_hmac_key_verifies_with_the_hash_of_its_algorithm() {
        let secret = b"a shared secret of at least sixty-four bytes for every HS algorithm....";
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let key = hmac_key(secret, alg, Some("h".into()));
            assert_eq!(key.kid(), Some("h"));
            assert_eq!(key.algorithms().collect::<Vec<_>>(), [alg]);
            let (input, mut signature) =
                issuer().access_token().algorithm(alg).hmac_secret(secret.to_vec()).sign_parts();
            assert!(key.verifier(alg).unwrap().verify(input.as_bytes(), &signature), "{alg:?}");
            signature[0] ^= 1;
            assert!(!key.verifier(alg).unwrap().verify(input.as_bytes(), &signature), "{alg:?} tampered");
        }
    }

    #[test]
    fn rejection_codes_and_the_no_usable_key_message_name_each_key() {
        assert_eq!(KeyRejection::WeakRsaKey.code(), "weak_rsa_key");
        assert_eq!(KeyRejection::Malformed.to_string(), "malformed_jwk");
        let error = KeySetError::NoUsableKeys(vec![(0, KeyRejection::WeakRsaKey), (2, KeyRejection::SymmetricKey)]);
        assert_eq!(
            error.to_string(),
            "the JWK set has no usable signing key; key 0: weak_rsa_key; key 2: symmetric_key"
        );
    }

    #[test]
    fn a_key_set_holds_at_most_a_hundred_keys_and_must_be_an_object_with_keys() {
        let keys = |n: usize| (0..n).map(|i| jwk_as("ed-1", Some(&format!("k{i}")))).collect::<Vec<_>>();
        let parse =
            |n: usize| KeySet::from_jwks(json!({ "keys": keys(n) }).to_string().as_bytes(), &Algorithm::ASYMMETRIC);
        assert_eq!(parse(MAX_KEYS).unwrap().len(), MAX_KEYS);
        assert_eq!(parse(MAX_KEYS + 1).err(), Some(KeySetError::TooManyKeys));
        assert_eq!(parse(2).unwrap().len(), 2);
        for doc in ["[]", "{}", r#"{"keys": {}}"#, "not json"] {
            let parsed = KeySet::from_jwks(doc.as_bytes(), &Algorithm::ASYMMETRIC);
            assert_eq!(parsed.err(), Some(KeySetError::NotAJwks), "{doc}");
        }
        let set = set_of(&[jwk_as("ed-1", Some("a")), json!({"kty": "oct", "k": "AAAA"})]);
        assert_eq!((set.len(), set.rejected.as_slice()), (1, [(1, KeyRejection::SymmetricKey)].as_slice()));
    }

    #[test]
    fn a_key_set_knows_its_kids() {
        let set = set_of(&[jwk_as("ed-1", Some("b")), jwk_as("ec-1", None), jwk_as("rsa-1", Some("a"))]);
        assert_eq!(set.len(), 3);
        assert!(set.has_kid("a") && set.has_kid("b"));
        assert!(!set.has_kid("c"));
        assert_eq!(set.kid_list(), ["a", "b"]);
        let same = set_of(&[jwk_as("rsa-1", Some("a")), jwk_as("ec-1", None), jwk_as("ed-1", Some("b"))]);
        assert!(set.same_kids(&same));
        let other = set_of(&[jwk_as("rsa-1", Some("a")), jwk_as("ec-1", None), jwk_as("ed-1", Some("c"))]);
        assert!(!set.same_kids(&other));
        let shorter = set_of(&[jwk_as("rsa-1", Some("a")), jwk_as("ed-1", Some("b"))]);
        assert!(!set.same_kids(&shorter));
        let keys = set.into_keys();
        assert_eq!(keys.iter().map(VerifyingKey::kid).collect::<Vec<_>>(), [Some("b"), None, Some("a")]);
        let rebuilt = KeySet::from_keys(keys);
        assert_eq!((rebuilt.len(), rebuilt.kid_list()), (3, vec!["a", "b"]));
    }

    #[test]
    fn lookup_finds_the_keys_of_the_kid_and_alg_or_says_why_not() {
        let found = |m: KeyMatch<'_>| match m {
            KeyMatch::Found(slots) => slots.iter().filter(|s| s.is_some()).count(),
            KeyMatch::UnknownKid => 100,
            KeyMatch::NoUsableKey => 200,
        };
        let set = set_of(&[jwk_as("rsa-1", Some("r")), jwk_as("ec-1", Some("e")), jwk_as("ed-1", Some("d"))]);
        assert_eq!(found(set.lookup(Some("r"), Algorithm::PS256)), 1);
        assert_eq!(found(set.lookup(Some("e"), Algorithm::ES256)), 1);
        // A known kid with another algorithm's key, and an unknown kid.
        assert_eq!(found(set.lookup(Some("r"), Algorithm::ES256)), 200);
        assert_eq!(found(set.lookup(Some("x"), Algorithm::ES256)), 100);
        // Without a kid: the one key of the algorithm, or none.
        assert_eq!(found(set.lookup(None, Algorithm::EdDSA)), 1);
        assert_eq!(found(set.lookup(None, Algorithm::ES384)), 200);
        // The found verifier is the kid's key.
        let (input, signature) = signed(Algorithm::ES256);
        let KeyMatch::Found([Some(verifier), None]) = set.lookup(Some("e"), Algorithm::ES256) else { panic!() };
        assert!(verifier.verify(input.as_bytes(), &signature));
        // Two keys under one kid are both candidates; three are none, and two without a
        // kid are ambiguous.
        let two = set_of(&[jwk_as("rsa-1", Some("r")), jwk_as("rsa-1", Some("r")), jwk_as("ed-1", None)]);
        assert_eq!(found(two.lookup(Some("r"), Algorithm::RS256)), 2);
        assert_eq!(found(two.lookup(None, Algorithm::RS256)), 200);
        let three = set_of(&[jwk_as("rsa-1", Some("r")), jwk_as("rsa-1", Some("r")), jwk_as("rsa-1", Some("r"))]);
        assert_eq!(found(three.lookup(Some("r"), Algorithm::RS256)), 200);
    }

    #[test]
    fn each_jwk_admission_rule_refuses_with_its_reason() {
        let rsa = || jwk_as("rsa-1", Some("r"));
        let admit = |jwk: &Value| admit_jwk(jwk, &Algorithm::ASYMMETRIC).map(|key| key.algorithms().count());
        let cases: Vec<(&str, Value, Result<usize, KeyRejection>)> = vec![
            ("the RSA key", rsa(), Ok(6)),
            ("the P-256 key", jwk_as("ec-1", Some("e")), Ok(1)),
            ("the P-384 key", jwk_as("ec-384", Some("e")), Ok(1)),
            ("the Ed25519 key", jwk_as("ed-1", Some("e")), Ok(1)),
            ("not an object", json!([1]), Err(KeyRejection::Malformed)),
            ("kty not a string", with(rsa(), "kty", json!(1)), Err(KeyRejection::Malformed)),
            ("an oct key", json!({"kty": "oct", "k": "AAAA"}), Err(KeyRejection::SymmetricKey)),
            ("an oct key without k", json!({"kty": "oct"}), Err(KeyRejection::SymmetricKey)),
            ("no kty", json!({"n": "AQAB", "e": "AQAB"}), Err(KeyRejection::UnsupportedKeyType)),
            ("kty unknown", with(rsa(), "kty", json!("RSA-X")), Err(KeyRejection::UnsupportedKeyType)),
            ("a private member", with(rsa(), "qi", json!("AQAB")), Err(KeyRejection::PrivateKeyMaterial)),
            ("kid of 256 bytes", with(rsa(), "kid", json!("k".repeat(MAX_KID_LEN))), Ok(6)),
            ("kid of 257 bytes", with(rsa(), "kid", json!("k".repeat(MAX_KID_LEN + 1))), Err(KeyRejection::KidTooLong)),
            ("kid not a string", with(rsa(), "kid", json!(7)), Err(KeyRejection::Malformed)),
            ("use enc", with(rsa(), "use", json!("enc")), Err(KeyRejection::NotForSignatures)),
            ("use not a string", with(rsa(), "use", json!(true)), Err(KeyRejection::Malformed)),
            ("key_ops verify", with(rsa(), "key_ops", json!(["sign", "verify"])), Ok(6)),
            ("key_ops sign", with(rsa(), "key_ops", json!(["sign"])), Err(KeyRejection::NotForVerification)),
            ("key_ops empty", with(rsa(), "key_ops", json!([])), Err(KeyRejection::NotForVerification)),
            ("key_ops a string", with(rsa(), "key_ops", json!("verify")), Err(KeyRejection::Malformed)),
            ("key_ops with a number", with(rsa(), "key_ops", json!(["verify", 1])), Err(KeyRejection::Malformed)),
            ("alg PS384", with(rsa(), "alg", json!("PS384")), Ok(1)),
            ("alg unknown", with(rsa(), "alg", json!("RS1024")), Err(KeyRejection::AlgorithmMismatch)),
            ("alg of another family", with(rsa(), "alg", json!("ES256")), Err(KeyRejection::AlgorithmMismatch)),
            ("n missing", json!({"kty": "RSA", "e": "AQAB"}), Err(KeyRejection::Malformed)),
            ("n a number", with(rsa(), "n", json!(5)), Err(KeyRejection::Malformed)),
            ("n not base64url", with(rsa(), "n", json!("n+/=")), Err(KeyRejection::InvalidKeyMaterial)),
            ("e missing", json!({"kty": "RSA", "n": rsa()["n"]}), Err(KeyRejection::Malformed)),
            ("EC crv missing", with(jwk_as("ec-1", None), "crv", json!(null)), Err(KeyRejection::Malformed)),
            ("EC crv P-521", with(jwk_as("ec-1", None), "crv", json!("P-521")), Err(KeyRejection::InvalidCurve)),
            (
                "P-256 point as P-384",
                with(jwk_as("ec-1", None), "crv", json!("P-384")),
                Err(KeyRejection::InvalidCurve),
            ),
            (
                "P-384 point as P-256",
                with(jwk_as("ec-384", None), "crv", json!("P-256")),
                Err(KeyRejection::InvalidCurve),
            ),
            ("OKP crv X25519", with(jwk_as("ed-1", None), "crv", json!("X25519")), Err(KeyRejection::InvalidCurve)),
            (
                "OKP x of 31 bytes",
                with(jwk_as("ed-1", None), "x", json!(b64(&[9; 31]))),
                Err(KeyRejection::InvalidKeyMaterial),
            ),
        ];
        for (what, jwk, expected) in cases {
            assert_eq!(admit(&jwk), expected, "{what}");
        }
        // An EC x or y of the wrong length, each alone.
        let ec = jwk_as("ec-1", None);
        let x = crate::b64::b64url_decode(ec["x"].as_str().unwrap().as_bytes()).unwrap();
        let y = crate::b64::b64url_decode(ec["y"].as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(admit(&ec_jwk("P-256", &x, &y)), Ok(1));
        assert_eq!(admit(&ec_jwk("P-256", &x[1..], &y)), Err(KeyRejection::InvalidCurve));
        assert_eq!(admit(&ec_jwk("P-256", &x, &y[1..])), Err(KeyRejection::InvalidCurve));
    }

    #[test]
    fn a_declared_or_allowed_algorithm_narrows_the_verifiers() {
        let rsa = jwk_as("rsa-1", Some("r"));
        let ps256_only = admit_jwk(&rsa, &[Algorithm::PS256, Algorithm::ES256]).unwrap();
        assert_eq!(ps256_only.algorithms().collect::<Vec<_>>(), [Algorithm::PS256]);
        // Declared RS256, which the allowlist does not hold; or none of the key's family allowed.
        assert_eq!(
            admit_jwk(&with(rsa.clone(), "alg", json!("RS256")), &[Algorithm::PS256]).err(),
            Some(KeyRejection::AlgorithmMismatch)
        );
        assert_eq!(admit_jwk(&rsa, &[Algorithm::ES256]).err(), Some(KeyRejection::AlgorithmMismatch));
        let declared = admit_jwk(&with(rsa, "alg", json!("RS384")), &Algorithm::ASYMMETRIC).unwrap();
        assert_eq!(declared.algorithms().collect::<Vec<_>>(), [Algorithm::RS384]);
    }

    #[test]
    fn rsa_exponents_must_be_odd_above_one_and_at_most_four_bytes() {
        let mut n = vec![0xff; 256];
        n[0] = 0xc1;
        for (e, ok) in [
            (&[1, 0, 1][..], true),
            (&[3], true),
            (&[0, 0, 1, 0, 1], true),
            (&[0xff, 0xff, 0xff, 0xff], true),
            (&[1, 0, 0, 0, 1], false),
            (&[1], false),
            (&[0, 1], false),
            (&[1, 0, 0], false),
            (&[2], false),
            (&[], false),
        ] {
            let admitted = PublicKeyBytes::rsa(&n, e).map(|_| ());
            assert_eq!(admitted, if ok { Ok(()) } else { Err(KeyRejection::WeakRsaKey) }, "e = {e:?}");
        }
        // A modulus with leading zero bytes counts its bits without them; 8192 bits is the most.
        let mut padded = vec![0, 0];
        padded.extend_from_slice(&n);
        assert!(PublicKeyBytes::rsa(&padded, &[3]).is_ok());
        assert!(PublicKeyBytes::rsa(&[0xff; 1024], &[3]).is_ok());
        let mut over = vec![0xff; 1025];
        over[0] = 1;
        assert_eq!(PublicKeyBytes::rsa(&over, &[3]).err(), Some(KeyRejection::WeakRsaKey));
    }

    #[test]
    fn only_a_y_of_p_or_more_is_non_canonical() {
        let p_minus_1 = {
            let mut y = [0xff; 32];
            y[0] = 0xec;
            y[31] = 0x7f;
            y
        };
        assert!(is_canonical_y(&p_minus_1));
        let mut y = p_minus_1;
        y[0] = 0xed;
        assert!(!is_canonical_y(&y), "p");
        y[0] = 0xff;
        assert!(!is_canonical_y(&y), "p + 18");
        y[31] = 0x7e;
        assert!(is_canonical_y(&y), "top byte below 0x7f");
        y[31] = 0x7f;
        y[15] = 0xfe;
        assert!(is_canonical_y(&y), "a middle byte below 0xff");
        y[15] = 0xff;
        y[1] = 0xfe;
        assert!(is_canonical_y(&y), "the second byte below 0xff");
        assert!(is_canonical_y(&[0; 32]));
    }

    #[test]
    fn der_lengths_and_integers_are_minimal_and_positive() {
        assert_eq!(der_len(0), [0]);
        assert_eq!(der_len(0x7f), [0x7f]);
        assert_eq!(der_len(0x80), [0x81, 0x80]);
        assert_eq!(der_len(0xff), [0x81, 0xff]);
        assert_eq!(der_len(0x100), [0x82, 1, 0]);
        assert_eq!(der_len(0x1234), [0x82, 0x12, 0x34]);
        assert_eq!(der_tlv(0x30, &[5, 6]), [0x30, 2, 5, 6]);
        assert_eq!(der_integer(&[0x7f]), [2, 1, 0x7f]);
        assert_eq!(der_integer(&[0x80, 1]), [2, 3, 0, 0x80, 1]);
        assert_eq!(der_integer(&[]), [2, 1, 0]);
        assert_eq!(strip_leading_zeros(&[0, 0, 5, 0]), [5, 0]);
        assert_eq!(strip_leading_zeros(&[0, 0]), [] as [u8; 0]);
    }

    #[test]
    fn an_rsa_public_key_document_is_read_with_each_length_form_and_nothing_after_it() {
        // SEQUENCE (0x81 long form) { INTEGER (0x81) 129 bytes, INTEGER 3 bytes }.
        let mut n = vec![0u8];
        n.extend([0xab; 128]);
        let mut body = vec![0x02, 0x81, 129];
        body.extend(&n);
        body.extend([0x02, 0x03, 1, 0, 1]);
        let mut der = vec![0x30, 0x81, body.len() as u8];
        der.extend(&body);
        assert_eq!(parse_rsa_public_key(&der), Some((n.as_slice(), &[1u8, 0, 1][..])));
        // The same with a two-byte length (0x82) for the sequence.
        let mut long = vec![0x30, 0x82, 0x00, body.len() as u8];
        long.extend(&body);
        assert_eq!(parse_rsa_public_key(&long), Some((n.as_slice(), &[1u8, 0, 1][..])));
        let mut big = vec![0x30, 0x82, 0x01, 0x0a];
        big.extend(vec![0x02, 0x82, 0x01, 0x01]);
        big.extend([0x5a; 0x101]);
        big.extend([0x02, 0x03, 1, 0, 1]);
        let parsed = parse_rsa_public_key(&big).unwrap();
        assert_eq!((parsed.0.len(), parsed.1), (0x101, &[1u8, 0, 1][..]));
        // Trailing bytes after the sequence or inside it, a wrong tag, a length too long.
        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(parse_rsa_public_key(&trailing), None);
        let mut inner = vec![0x30, 0x81, body.len() as u8 + 1];
        inner.extend(&body);
        inner.push(0);
        assert_eq!(parse_rsa_public_key(&inner), None);
        let mut tag = der.clone();
        tag[0] = 0x31;
        assert_eq!(parse_rsa_public_key(&tag), None);
        assert_eq!(parse_rsa_public_key(&[0x30, 0x83, 0, 0, 0]), None);
        assert_eq!(parse_rsa_public_key(&[0x30, 0x05, 0x02, 0x01, 5]), None);
    }

    #[test]
    fn pem_keys_of_each_type_are_admitted_and_other_pem_documents_refused() {
        let issuer = issuer();
        for (kid, count) in [("rsa-1", 6), ("ec-1", 1), ("ec-384", 1), ("ed-1", 1)] {
            let key = admit_pem(&issuer.public_key_pem(kid), Some("p"), &Algorithm::ASYMMETRIC).unwrap();
            assert_eq!((key.kid(), key.algorithms().count()), (Some("p"), count), "{kid}");
        }
        let (input, signature) = signed(Algorithm::ES384);
        let key = admit_pem(&issuer.public_key_pem("ec-384"), None, &Algorithm::ASYMMETRIC).unwrap();
        assert!(key.verifier(Algorithm::ES384).unwrap().verify(input.as_bytes(), &signature));
        // The RSA key as PKCS#1 `RSA PUBLIC KEY`: the SubjectPublicKeyInfo of a 2048-bit
        // key is a 24-byte prefix and then the PKCS#1 document.
        let spki_b64: String = issuer.public_key_pem("rsa-1").lines().filter(|l| !l.starts_with("-----")).collect();
        let spki = base64::engine::general_purpose::STANDARD.decode(spki_b64).unwrap();
        let pkcs1 = base64::engine::general_purpose::STANDARD.encode(&spki[24..]);
        let pem = format!("-----BEGIN RSA PUBLIC KEY-----\n{pkcs1}\n-----END RSA PUBLIC KEY-----\n");
        let key = admit_pem(&pem, None, &Algorithm::ASYMMETRIC).unwrap();
        let (input, signature) = signed(Algorithm::RS512);
        assert!(key.verifier(Algorithm::RS512).unwrap().verify(input.as_bytes(), &signature));
        let rsa = issuer.public_key_pem("rsa-1");
        assert!(admit_pem(&rsa, Some(&"k".repeat(MAX_KID_LEN)), &Algorithm::ASYMMETRIC).is_ok());
        assert_eq!(
            admit_pem(&rsa, Some(&"k".repeat(MAX_KID_LEN + 1)), &Algorithm::ASYMMETRIC).err(),
            Some(KeyRejection::KidTooLong)
        );
        for (pem, why) in [
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", KeyRejection::PrivateKeyMaterial),
            ("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n", KeyRejection::PrivateKeyMaterial),
            ("-----BEGIN CERTIFICATE-----\nAAAA\n", KeyRejection::InvalidKeyMaterial),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", KeyRejection::InvalidKeyMaterial),
        ] {
            assert_eq!(admit_pem(pem, None, &Algorithm::ASYMMETRIC).err(), Some(why), "{pem}");
        }
    }

    #[test]
    fn ec_coordinates_of_the_wrong_lengths_are_refused_even_when_their_bytes_make_a_point() {
        // The real P-256 point split 31 + 33 instead of 32 + 32: the same 64 bytes, so only
        // the length check of each coordinate refuses it.
        let ec = jwk_as("ec-1", None);
        let x = crate::b64::b64url_decode(ec["x"].as_str().unwrap().as_bytes()).unwrap();
        let y = crate::b64::b64url_decode(ec["y"].as_str().unwrap().as_bytes()).unwrap();
        let mut longer_y = x[31..].to_vec();
        longer_y.extend_from_slice(&y);
        let admitted = admit_jwk(&ec_jwk("P-256", &x[..31], &longer_y), &Algorithm::ASYMMETRIC);
        assert_eq!(admitted.err(), Some(KeyRejection::InvalidCurve));
        let mut longer_x = x;
        longer_x.push(y[0]);
        let admitted = admit_jwk(&ec_jwk("P-256", &longer_x, &y[1..]), &Algorithm::ASYMMETRIC);
        assert_eq!(admitted.err(), Some(KeyRejection::InvalidCurve));
    }
}
