//! An in-memory issuer for tests (feature `testing`).
//!
//! [`TestIssuer`] holds an RSA-2048 key (`kid` `rsa-1`, for RS256/384/512 and
//! PS256/384/512), a P-256 key (`ec-1`, ES256), a P-384 key (`ec-384`, ES384) and an
//! Ed25519 key (`ed-1`, EdDSA). It mints
//! access tokens and ID tokens through [`TokenBuilder`], where every header member and
//! claim can be set, replaced or removed, and hands out an [`Authority`] that trusts it.
//!
//! ```
//! use scopegate::testing::TestIssuer;
//!
//! let issuer = TestIssuer::new();
//! let authority = issuer.authority("https://api.example.test");
//! let token = issuer.access_token().scope("read:appointments").sign();
//! assert_eq!(token.split('.').count(), 3);
//! # let _ = authority;
//! ```
//!
//! Never enable this feature in production builds: the issuer's private keys live in
//! process memory and anything can be signed with them.

#![allow(clippy::expect_used, clippy::missing_panics_doc)]

use std::{
    fmt,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    encoding::{AsBigEndian, AsDer},
    hmac, rand,
    rsa::KeySize,
    signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair},
};
use serde_json::{Map, Value, json};

#[doc(hidden)]
pub use crate::authority::crypto_self_test_result;
pub use crate::clock::TestClock;
use crate::{
    algorithm::Algorithm,
    authority::{Authority, AuthorityBuilder},
    b64::b64url_encode,
};

/// The issuer identifier [`TestIssuer::new`] uses.
pub const DEFAULT_ISSUER: &str = "https://issuer.scopegate.test/";
/// The audience minted access tokens carry unless told otherwise.
pub const DEFAULT_AUDIENCE: &str = "https://api.example.test";
/// The `client_id` minted access tokens carry unless told otherwise.
pub const DEFAULT_CLIENT_ID: &str = "test-client";
/// The `sub` minted tokens carry unless told otherwise.
pub const DEFAULT_SUBJECT: &str = "user-123";

/// The issuer's private keys, one per key type, that its tokens are signed with.
struct SigningKeys {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    ec384: EcdsaKeyPair,
    ed: Ed25519KeyPair,
}

impl SigningKeys {
    fn generate() -> Self {
        Self {
            rsa: RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation"),
            ec: EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key generation"),
            ec384: EcdsaKeyPair::generate(&sig::ECDSA_P384_SHA384_FIXED_SIGNING).expect("P-384 key generation"),
            ed: Ed25519KeyPair::generate().expect("Ed25519 key generation"),
        }
    }
}

/// An issuer that lives in the test process.
#[derive(Clone)]
pub struct TestIssuer {
    issuer: String,
    keys: Arc<SigningKeys>,
}

impl fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestIssuer").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestIssuer {
    /// An issuer named [`DEFAULT_ISSUER`]. Its keys are generated once per process and
    /// shared by every `TestIssuer::new()` (RSA key generation is slow); use
    /// [`with_fresh_keys`](Self::with_fresh_keys) for an issuer with keys of its own.
    #[must_use]
    pub fn new() -> Self {
        static SHARED: OnceLock<Arc<SigningKeys>> = OnceLock::new();
        Self {
            issuer: DEFAULT_ISSUER.to_owned(),
            keys: Arc::clone(SHARED.get_or_init(|| Arc::new(SigningKeys::generate()))),
        }
    }

    /// An issuer with its own newly generated keys.
    #[must_use]
    pub fn with_fresh_keys(issuer: impl Into<String>) -> Self {
        Self { issuer: issuer.into(), keys: Arc::new(SigningKeys::generate()) }
    }

    /// The same keys under another issuer identifier.
    #[must_use]
    pub fn with_issuer(&self, issuer: impl Into<String>) -> Self {
        Self { issuer: issuer.into(), keys: Arc::clone(&self.keys) }
    }

    /// The issuer identifier (`iss`).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public key of `kid` (`rsa-1`, `ec-1`, `ec-384` or `ed-1`) as a JWK, with `use: sig`.
    #[must_use]
    pub fn jwk(&self, kid: &str) -> Value {
        let mut jwk = match kid {
            "ec-1" => {
                let point = self.keys.ec.public_key().as_ref();
                let (x, y) = point.get(1..).unwrap_or_default().split_at(32);
                json!({"kty": "EC", "crv": "P-256", "x": b64url_encode(x), "y": b64url_encode(y)})
            }
            "ec-384" => {
                let point = self.keys.ec384.public_key().as_ref();
                let (x, y) = point.get(1..).unwrap_or_default().split_at(48);
                json!({"kty": "EC", "crv": "P-384", "x": b64url_encode(x), "y": b64url_encode(y)})
            }
            "ed-1" => json!({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(self.keys.ed.public_key().as_ref())}),
            _ => {
                let public = self.keys.rsa.public_key();
                let n = public.modulus().big_endian_without_leading_zero();
                let e = public.exponent().big_endian_without_leading_zero();
                json!({"kty": "RSA", "n": b64url_encode(n), "e": b64url_encode(e)})
            }
        };
        if let Value::Object(map) = &mut jwk {
            map.insert("kid".into(), kid.into());
            map.insert("use".into(), "sig".into());
        }
        jwk
    }

    /// The public JWK set with all four keys.
    #[must_use]
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk("rsa-1"), self.jwk("ec-1"), self.jwk("ec-384"), self.jwk("ed-1")]})
    }

    /// The public key of `kid` as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    #[must_use]
    pub fn public_key_pem(&self, kid: &str) -> String {
        let der: Vec<u8> = match kid {
            "ec-1" => self.keys.ec.public_key().as_der().expect("EC SPKI").as_ref().to_vec(),
            "ec-384" => self.keys.ec384.public_key().as_der().expect("EC SPKI").as_ref().to_vec(),
            "ed-1" => self.keys.ed.public_key().as_der().expect("Ed25519 SPKI").as_ref().to_vec(),
            _ => self.keys.rsa.public_key().as_der().expect("RSA SPKI").as_ref().to_vec(),
        };
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    /// A builder for an [`Authority`] that trusts this issuer's JWK set, with `audience`.
    pub fn authority_builder(&self, audience: impl Into<String>) -> AuthorityBuilder {
        Authority::builder().issuer(self.issuer.clone()).audience(audience).static_jwks(self.jwks().to_string())
    }

    /// An [`Authority`] that trusts this issuer, with `audience` and default settings.
    ///
    /// # Panics
    /// If the authority cannot be built (it always can with a valid audience).
    #[must_use]
    pub fn authority(&self, audience: impl Into<String>) -> Authority {
        self.authority_builder(audience).build().expect("the test issuer's authority builds")
    }

    /// An RFC 9068 access token: `typ: at+jwt`, RS256 with `kid: rsa-1`, and the claims
    /// `iss`, `sub`, `aud` ([`DEFAULT_AUDIENCE`]), `client_id`, `iat` (now), `exp` (in 5
    /// minutes) and a unique `jti`. No `scope` until you set one.
    pub fn access_token(&self) -> TokenBuilder {
        let now = unix_now();
        let mut claims = Map::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("sub".into(), DEFAULT_SUBJECT.into());
        claims.insert("aud".into(), DEFAULT_AUDIENCE.into());
        claims.insert("client_id".into(), DEFAULT_CLIENT_ID.into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + 300).into());
        claims.insert("jti".into(), unique_jti().into());
        TokenBuilder::new(self.clone(), "at+jwt", claims)
    }

    /// A new DPoP key for a client (P-256): see [`DpopKey`].
    #[must_use]
    pub fn dpop_key(&self) -> DpopKey {
        DpopKey::generate()
    }

    /// An OpenID Connect ID token for `client_id`: `typ: JWT`, `aud` = the client,
    /// `nonce`, `at_hash`, `auth_time`, `azp`, and no `scope`, `client_id` or `jti`.
    pub fn id_token(&self, client_id: &str) -> TokenBuilder {
        let now = unix_now();
        let mut claims = Map::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("sub".into(), DEFAULT_SUBJECT.into());
        claims.insert("aud".into(), client_id.into());
        claims.insert("azp".into(), client_id.into());
        claims.insert("iat".into(), now.into());
        claims.insert("auth_time".into(), now.into());
        claims.insert("exp".into(), (now + 300).into());
        claims.insert("nonce".into(), "n-0S6_WzA2Mj".into());
        claims.insert("at_hash".into(), "77QmUPtjPfzWtF2AnpK9RQ".into());
        TokenBuilder::new(self.clone(), "JWT", claims)
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn unique_jti() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut random = [0u8; 8];
    rand::fill(&mut random).expect("system randomness");
    format!("jti-{}-{}", COUNTER.fetch_add(1, Ordering::Relaxed), b64url_encode(&random))
}

/// Builds one token. Every header member and claim can be set or removed; the raw JSON
/// of either part can be replaced to test what a JSON object cannot express (duplicate
/// members, arrays, deep nesting).
#[derive(Debug, Clone)]
#[must_use]
pub struct TokenBuilder {
    issuer: TestIssuer,
    alg: Algorithm,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    raw_header: Option<String>,
    raw_claims: Option<String>,
    secret: Option<Vec<u8>>,
}

impl TokenBuilder {
    fn new(issuer: TestIssuer, typ: &str, claims: Map<String, Value>) -> Self {
        let mut header = Map::new();
        header.insert("alg".into(), "RS256".into());
        header.insert("typ".into(), typ.into());
        header.insert("kid".into(), "rsa-1".into());
        Self { issuer, alg: Algorithm::RS256, header, claims, raw_header: None, raw_claims: None, secret: None }
    }

    /// Signs with `alg` and the matching key of the issuer (RS*/PS* → `rsa-1`, ES256 →
    /// `ec-1`, ES384 → `ec-384`, EdDSA → `ed-1`; HS* needs
    /// [`hmac_secret`](Self::hmac_secret)). Sets the header's `alg` and `kid` accordingly.
    pub fn algorithm(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self.header.insert("alg".into(), alg.as_str().into());
        let kid = match alg {
            Algorithm::ES256 => Some("ec-1"),
            Algorithm::ES384 => Some("ec-384"),
            Algorithm::EdDSA | Algorithm::Ed25519 => Some("ed-1"),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => None,
            _ => Some("rsa-1"),
        };
        match kid {
            Some(kid) => self.header.insert("kid".into(), kid.into()),
            None => self.header.remove("kid"),
        };
        self
    }

    /// Signs HS256/384/512 tokens with this secret.
    pub fn hmac_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Sets a header member (the signature still uses [`algorithm`](Self::algorithm), so
    /// setting `alg` here only changes what the header claims).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.into(), value.into());
        self
    }

    /// Removes a header member.
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Sets a claim.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets `scope` (a space-delimited string).
    pub fn scope(self, scope: &str) -> Self {
        self.claim("scope", scope)
    }

    /// Sets `sub`.
    pub fn subject(self, subject: &str) -> Self {
        self.claim("sub", subject)
    }

    /// Sets `client_id`.
    pub fn client_id(self, client_id: &str) -> Self {
        self.claim("client_id", client_id)
    }

    /// Sets `aud` (a string or an array).
    pub fn audience(self, audience: impl Into<Value>) -> Self {
        self.claim("aud", audience)
    }

    /// Sets `typ` in the header.
    pub fn typ(self, typ: &str) -> Self {
        self.header("typ", typ)
    }

    /// Sets `kid` in the header.
    pub fn kid(self, kid: &str) -> Self {
        self.header("kid", kid)
    }

    /// Sets `exp` to now plus `seconds` (negative for the past).
    pub fn expires_in(self, seconds: i64) -> Self {
        let exp = unix_now().cast_signed() + seconds;
        self.claim("exp", exp)
    }

    /// Binds the token to a DPoP key: `cnf` = `{"jkt": <the key's RFC 7638 thumbprint>}`
    /// (RFC 9449 §6.1).
    pub fn dpop_bound(self, key: &DpopKey) -> Self {
        self.claim("cnf", json!({"jkt": key.thumbprint()}))
    }

    /// Replaces the header JSON with this exact text.
    pub fn raw_header(mut self, json: &str) -> Self {
        self.raw_header = Some(json.to_owned());
        self
    }

    /// Replaces the claims JSON with this exact text.
    pub fn raw_claims(mut self, json: &str) -> Self {
        self.raw_claims = Some(json.to_owned());
        self
    }

    /// The compact JWS: `header.payload.signature`.
    ///
    /// # Panics
    /// If an HMAC algorithm was chosen without [`hmac_secret`](Self::hmac_secret).
    #[must_use]
    pub fn sign(&self) -> String {
        let header = self.raw_header.clone().unwrap_or_else(|| Value::Object(self.header.clone()).to_string());
        let claims = self.raw_claims.clone().unwrap_or_else(|| Value::Object(self.claims.clone()).to_string());
        let signing_input = format!("{}.{}", b64url_encode(header.as_bytes()), b64url_encode(claims.as_bytes()));
        let signature = self.signature(signing_input.as_bytes());
        format!("{signing_input}.{}", b64url_encode(&signature))
    }

    /// The signing input (`header.payload`) and the raw signature bytes, for tests that
    /// tamper with the signature.
    #[must_use]
    pub fn sign_parts(&self) -> (String, Vec<u8>) {
        let token = self.sign();
        let (input, signature) = token.rsplit_once('.').unwrap_or_default();
        (input.to_owned(), crate::b64::b64url_decode(signature.as_bytes()).unwrap_or_default())
    }

    fn signature(&self, message: &[u8]) -> Vec<u8> {
        let keys = &self.issuer.keys;
        let rng = rand::SystemRandom::new();
        match self.alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                let encoding = rsa_encoding(self.alg).expect("an RSA encoding for RS* and PS*");
                let mut out = vec![0; keys.rsa.public_modulus_len()];
                keys.rsa.sign(encoding, &rng, message, &mut out).expect("RSA signing");
                out
            }
            Algorithm::ES256 => keys.ec.sign(&rng, message).expect("ECDSA signing").as_ref().to_vec(),
            Algorithm::ES384 => keys.ec384.sign(&rng, message).expect("ECDSA signing").as_ref().to_vec(),
            Algorithm::EdDSA | Algorithm::Ed25519 => keys.ed.sign(message).as_ref().to_vec(),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let algorithm = match self.alg {
                    Algorithm::HS384 => hmac::HMAC_SHA384,
                    Algorithm::HS512 => hmac::HMAC_SHA512,
                    _ => hmac::HMAC_SHA256,
                };
                let secret = self.secret.as_deref().expect("HS* tokens need .hmac_secret(...)");
                hmac::sign(&hmac::Key::new(algorithm, secret), message).as_ref().to_vec()
            }
        }
    }
}

/// A client's DPoP key, which signs proofs (RFC 9449 §4): P-256 (ES256, [`DpopKey::generate`]),
/// P-384 (ES384, [`DpopKey::p384`]), RSA-2048 (RS256, or any RS*/PS* with
/// [`ProofBuilder::algorithm`], [`DpopKey::rsa`]) or Ed25519 (EdDSA, [`DpopKey::ed25519`]).
///
/// ```
/// use scopegate::testing::{DpopKey, TestIssuer};
///
/// let issuer = TestIssuer::new();
/// let key = DpopKey::generate();
/// let token = issuer.access_token().dpop_bound(&key).sign();
/// let proof = key.proof("GET", "https://api.example.test/me").access_token(&token).sign();
/// // Send `Authorization: DPoP {token}` and `DPoP: {proof}`.
/// # let _ = proof;
/// ```
#[derive(Clone)]
pub struct DpopKey {
    pair: ProofKeyPair,
}

#[derive(Clone)]
enum ProofKeyPair {
    P256(Arc<EcdsaKeyPair>),
    P384(Arc<EcdsaKeyPair>),
    Rsa(Arc<RsaKeyPair>),
    Ed25519(Arc<Ed25519KeyPair>),
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey").field("thumbprint", &self.thumbprint()).finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A new P-256 key.
    #[must_use]
    pub fn generate() -> Self {
        let pair = EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key generation");
        Self { pair: ProofKeyPair::P256(Arc::new(pair)) }
    }

    /// A new P-384 key: its proofs are signed `alg: ES384`.
    #[must_use]
    pub fn p384() -> Self {
        let pair = EcdsaKeyPair::generate(&sig::ECDSA_P384_SHA384_FIXED_SIGNING).expect("P-384 key generation");
        Self { pair: ProofKeyPair::P384(Arc::new(pair)) }
    }

    /// A new RSA-2048 key: its proofs are signed `alg: RS256` unless
    /// [`ProofBuilder::algorithm`] picks another RS* or PS* algorithm. Slower to make
    /// than the others (RSA key generation).
    #[must_use]
    pub fn rsa() -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        Self { pair: ProofKeyPair::Rsa(Arc::new(pair)) }
    }

    /// A new Ed25519 key: its proofs are signed `alg: EdDSA` (set the header's `alg` to
    /// `Ed25519` for RFC 9864's fully-specified name).
    #[must_use]
    pub fn ed25519() -> Self {
        let pair = Ed25519KeyPair::generate().expect("Ed25519 key generation");
        Self { pair: ProofKeyPair::Ed25519(Arc::new(pair)) }
    }

    /// The public key as a JWK, as a proof's header carries it: `kty`, `crv`, `x`, `y`
    /// for EC keys, `kty`, `n`, `e` for RSA, `kty`, `crv`, `x` for Ed25519.
    #[must_use]
    pub fn public_jwk(&self) -> Value {
        let ec = |crv: &str, point: &[u8], size: usize| {
            let (x, y) = point.get(1..).unwrap_or_default().split_at(size);
            json!({"kty": "EC", "crv": crv, "x": b64url_encode(x), "y": b64url_encode(y)})
        };
        match &self.pair {
            ProofKeyPair::P256(pair) => ec("P-256", pair.public_key().as_ref(), 32),
            ProofKeyPair::P384(pair) => ec("P-384", pair.public_key().as_ref(), 48),
            ProofKeyPair::Rsa(pair) => {
                let public = pair.public_key();
                let n = public.modulus().big_endian_without_leading_zero();
                let e = public.exponent().big_endian_without_leading_zero();
                json!({"kty": "RSA", "n": b64url_encode(n), "e": b64url_encode(e)})
            }
            ProofKeyPair::Ed25519(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(pair.public_key().as_ref())})
            }
        }
    }

    /// The key pair as a JWK with its private members (`d`; for RSA also `p`, `q`, `dp`,
    /// `dq`, `qi`): what a proof must never carry.
    #[must_use]
    pub fn private_jwk(&self) -> Value {
        let private: Vec<(&str, Vec<u8>)> = match &self.pair {
            ProofKeyPair::P256(pair) | ProofKeyPair::P384(pair) => {
                let d = pair.private_key().as_be_bytes().expect("EC private key bytes");
                vec![("d", d.as_ref().to_vec())]
            }
            ProofKeyPair::Rsa(pair) => rsa_private_members(pair),
            ProofKeyPair::Ed25519(pair) => {
                let seed = pair.seed().expect("Ed25519 seed");
                let bytes: aws_lc_rs::encoding::Curve25519SeedBin<'_> = seed.as_be_bytes().expect("Ed25519 seed bytes");
                vec![("d", bytes.as_ref().to_vec())]
            }
        };
        let mut jwk = self.public_jwk();
        if let Value::Object(map) = &mut jwk {
            for (name, value) in private {
                map.insert(name.into(), b64url_encode(&value).into());
            }
        }
        jwk
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key: a bound token's `cnf.jkt`.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        match self.public_jwk() {
            Value::Object(jwk) => crate::dpop::thumbprint(&jwk).unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// The algorithm this key's proofs are signed with unless told otherwise.
    fn default_algorithm(&self) -> Algorithm {
        match self.pair {
            ProofKeyPair::P256(_) => Algorithm::ES256,
            ProofKeyPair::P384(_) => Algorithm::ES384,
            ProofKeyPair::Rsa(_) => Algorithm::RS256,
            ProofKeyPair::Ed25519(_) => Algorithm::EdDSA,
        }
    }

    /// A proof for a request with `method` to `htu`: header `typ: dpop+jwt`, the key's
    /// `alg` (ES256, ES384, RS256 or EdDSA) and the public `jwk`; claims `htm`, `htu`,
    /// `iat` (now) and a unique `jti`. Add the token's hash with
    /// [`ProofBuilder::access_token`].
    pub fn proof(&self, method: &str, htu: &str) -> ProofBuilder {
        let alg = self.default_algorithm();
        let mut header = Map::new();
        header.insert("typ".into(), "dpop+jwt".into());
        header.insert("alg".into(), alg.as_str().into());
        header.insert("jwk".into(), self.public_jwk());
        let mut claims = Map::new();
        claims.insert("jti".into(), unique_jti().into());
        claims.insert("htm".into(), method.into());
        claims.insert("htu".into(), htu.into());
        claims.insert("iat".into(), unix_now().into());
        ProofBuilder { key: self.clone(), alg, header, claims, hmac_secret: None }
    }
}

/// An RSA key pair's private JWK members (RFC 7518 §6.3.2), read from its PKCS#8 DER:
/// RFC 5208's `PrivateKeyInfo` around RFC 8017's `RSAPrivateKey` (version, `n`, `e`,
/// `d`, `p`, `q`, `dp`, `dq`, `qi`), aws-lc-rs exposing no other way to them.
fn rsa_private_members(pair: &RsaKeyPair) -> Vec<(&'static str, Vec<u8>)> {
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(pair).expect("RSA PKCS#8");
    let (_, info, _) = der_element(pkcs8.as_ref()).expect("PrivateKeyInfo");
    let (_, _version, rest) = der_element(info).expect("PrivateKeyInfo version");
    let (_, _algorithm, rest) = der_element(rest).expect("PrivateKeyInfo algorithm");
    let (_, octets, _) = der_element(rest).expect("PrivateKeyInfo privateKey");
    let (_, mut fields, _) = der_element(octets).expect("RSAPrivateKey");
    let mut integers = Vec::new();
    while let Some((_, integer, rest)) = der_element(fields) {
        let start = integer.iter().position(|&b| b != 0).unwrap_or(integer.len());
        integers.push(integer.get(start..).unwrap_or_default().to_vec());
        fields = rest;
    }
    ["d", "p", "q", "dp", "dq", "qi"].into_iter().zip(integers.into_iter().skip(3)).collect()
}

/// The DER element at the start of `der`: its tag, its contents and the bytes after it.
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let (bytes, rest) = rest.split_at_checked(usize::from(first & 0x7f))?;
        (bytes.iter().fold(0, |len, &b| len << 8 | usize::from(b)), rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// Builds one DPoP proof; every header member and claim can be set or removed.
#[derive(Debug, Clone)]
#[must_use]
pub struct ProofBuilder {
    key: DpopKey,
    alg: Algorithm,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    hmac_secret: Option<Vec<u8>>,
}

impl ProofBuilder {
    /// Signs with `alg` and sets the header's `alg` to it. The key must be able to: RS256,
    /// RS384, RS512, PS256, PS384 or PS512 for an RSA key, ES256 for P-256, ES384 for
    /// P-384, EdDSA or Ed25519 for Ed25519 (use [`header`](Self::header) to name another
    /// `alg` than the signature's).
    ///
    /// # Panics
    /// If the key cannot sign with `alg`.
    pub fn algorithm(mut self, alg: Algorithm) -> Self {
        let fits = match self.key.pair {
            ProofKeyPair::P256(_) => alg == Algorithm::ES256,
            ProofKeyPair::P384(_) => alg == Algorithm::ES384,
            ProofKeyPair::Rsa(_) => rsa_encoding(alg).is_some(),
            ProofKeyPair::Ed25519(_) => matches!(alg, Algorithm::EdDSA | Algorithm::Ed25519),
        };
        assert!(fits, "this DPoP key cannot sign {alg}: {:?}", self.key);
        self.alg = alg;
        self.header("alg", alg.as_str())
    }

    /// Sets `ath` to the hash of `token` (RFC 9449 §4.2).
    pub fn access_token(self, token: &str) -> Self {
        self.claim("ath", crate::dpop::token_hash(token))
    }

    /// Sets a header member.
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.into(), value.into());
        self
    }

    /// Removes a header member.
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Sets a claim.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Sets `nonce`, the value of the API's `DPoP-Nonce` header (RFC 9449 §9).
    pub fn nonce(self, nonce: &str) -> Self {
        self.claim("nonce", nonce)
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets `iat` to now plus `seconds` (negative for the past).
    pub fn issued_in(self, seconds: i64) -> Self {
        let iat = unix_now().cast_signed() + seconds;
        self.claim("iat", iat)
    }

    /// Signs with HS256 and `secret` instead of the key (`alg: HS256`): a proof no
    /// verifier may accept.
    pub fn hmac_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.hmac_secret = Some(secret.into());
        self.header("alg", "HS256")
    }

    /// The compact JWS.
    #[must_use]
    pub fn sign(&self) -> String {
        let header = Value::Object(self.header.clone()).to_string();
        let claims = Value::Object(self.claims.clone()).to_string();
        let signing_input = format!("{}.{}", b64url_encode(header.as_bytes()), b64url_encode(claims.as_bytes()));
        let signature = match &self.hmac_secret {
            Some(secret) => {
                hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), signing_input.as_bytes()).as_ref().to_vec()
            }
            None => {
                let rng = rand::SystemRandom::new();
                let message = signing_input.as_bytes();
                match &self.key.pair {
                    ProofKeyPair::P256(pair) | ProofKeyPair::P384(pair) => {
                        pair.sign(&rng, message).expect("ECDSA signing").as_ref().to_vec()
                    }
                    ProofKeyPair::Rsa(pair) => {
                        let encoding = rsa_encoding(self.alg).expect("an RS* or PS* algorithm for an RSA key");
                        let mut out = vec![0; pair.public_modulus_len()];
                        pair.sign(encoding, &rng, message, &mut out).expect("RSA signing");
                        out
                    }
                    ProofKeyPair::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
                }
            }
        };
        format!("{signing_input}.{}", b64url_encode(&signature))
    }
}

/// The RSA signature encoding of an RS* or PS* algorithm.
fn rsa_encoding(alg: Algorithm) -> Option<&'static dyn sig::RsaEncoding> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_SHA512,
        _ => return None,
    })
}
