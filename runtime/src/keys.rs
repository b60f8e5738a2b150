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
}
