//! JWS signature algorithms (RFC 7518 §3, RFC 8037) and their key families.

use std::fmt;

/// A JWS signature algorithm scopegate can verify.
///
/// Names compare case-sensitively (`rs256` is not `RS256`, RFC 7518 §3.1). `none` is not
/// an algorithm here at all, and ES512 is not supported (its tokens are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519, under the polymorphic name of RFC 8037.
    EdDSA,
    /// Ed25519 under its fully-specified name (RFC 9864): the same signatures as
    /// [`EdDSA`](Self::EdDSA) with an Ed25519 key. Accepted for DPoP proofs by default;
    /// for access tokens only when named in the allowlist.
    Ed25519,
    /// HMAC with SHA-256 (shared-secret mode only).
    HS256,
    /// HMAC with SHA-384 (shared-secret mode only).
    HS384,
    /// HMAC with SHA-512 (shared-secret mode only).
    HS512,
}

/// The kind of key an algorithm verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    Rsa,
    /// Elliptic curve with the coordinate length in bytes (32 for P-256, 48 for P-384).
    Ec(usize),
    Ed25519,
    Hmac,
}

impl Algorithm {
    /// The default allowlist: every asymmetric algorithm scopegate supports.
    pub const ASYMMETRIC: [Algorithm; 9] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// The shared-secret algorithms, available only in shared-secret mode.
    const HMAC: [Algorithm; 3] = [Self::HS256, Self::HS384, Self::HS512];

    /// The default allowlist of DPoP proofs: [`ASYMMETRIC`](Self::ASYMMETRIC) and
    /// `Ed25519` (RFC 9864), which clients may use instead of `EdDSA`.
    pub(crate) const PROOF: [Algorithm; 10] = {
        let mut all = [Self::Ed25519; 10];
        let mut i = 0;
        while i < Self::ASYMMETRIC.len() {
            all[i] = Self::ASYMMETRIC[i];
            i += 1;
        }
        all
    };

    /// Every algorithm scopegate knows.
    pub(crate) fn all() -> impl Iterator<Item = Algorithm> {
        Self::PROOF.into_iter().chain(Self::HMAC)
    }

    /// The JWS `alg` name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
            Self::Ed25519 => "Ed25519",
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
        }
    }

    /// Parses a JWS `alg` name, case-sensitively.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::all().find(|alg| alg.as_str() == name)
    }

    /// Whether this is a shared-secret (HMAC) algorithm.
    #[must_use]
    pub const fn is_symmetric(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    pub(crate) const fn family(self) -> Family {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => Family::Rsa,
            Self::ES256 => Family::Ec(32),
            Self::ES384 => Family::Ec(48),
            Self::EdDSA | Self::Ed25519 => Family::Ed25519,
            Self::HS256 | Self::HS384 | Self::HS512 => Family::Hmac,
        }
    }

    /// The minimum HMAC secret length for this algorithm (RFC 7518 §3.2: at least the
    /// hash output size).
    pub(crate) const fn min_secret_len(self) -> usize {
        match self {
            Self::HS384 => 48,
            Self::HS512 => 64,
            _ => 32,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_sensitively() {
        for alg in Algorithm::all() {
            assert_eq!(Algorithm::from_name(alg.as_str()), Some(alg));
        }
        assert_eq!(Algorithm::from_name("Ed25519"), Some(Algorithm::Ed25519));
        for bad in ["rs256", "none", "None", "NONE", "ES512", "ed25519", "Ed448", ""] {
            assert_eq!(Algorithm::from_name(bad), None);
        }
    }
}
