//! `private_key_jwt` client authentication at the introspection endpoint (RFC 7523 §2.2,
//! OpenID Connect Core §9), against an introspection server each test starts on
//! 127.0.0.1 that does what an issuer does: it verifies the client assertion's signature
//! with the client's registered public key (by `kid`), its claims and its `jti`'s
//! freshness, and answers `401 invalid_client` to anything else.

// Test helpers fail loudly: a panic is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    encoding::AsDer as _,
    rsa::KeySize,
    signature::{self as sig, EcdsaKeyPair, KeyPair as _, RsaKeyPair, UnparsedPublicKey},
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine as _;
use scopegate::{
    Authority, AuthorityBuilder, ClientAuth,
    testing::{DpopKey, TestIssuer},
};
use serde_json::{Value, json};

const AUD: &str = "https://api.example.test";
const CLIENT: &str = "api-introspector";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// A registered public key: the verification algorithm and the key's bytes.
#[derive(Clone)]
struct Registered(&'static dyn sig::VerificationAlgorithm, Vec<u8>);

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    form: HashMap<String, String>,
    header: Value,
    claims: Value,
}

struct Server {
    issuer: String,
    keys: HashMap<&'static str, Registered>,
    seen: Mutex<Vec<Seen>>,
}

impl Server {
    async fn start(keys: HashMap<&'static str, Registered>) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let server = Arc::new(Self { issuer, keys, seen: Mutex::new(Vec::new()) });
        let app = Router::new().route("/introspect", post(introspect)).with_state(Arc::clone(&server));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    fn builder(&self) -> AuthorityBuilder {
        TestIssuer::new()
            .with_issuer(self.issuer.clone())
            .authority_builder(AUD)
            .introspection_endpoint(format!("{}/introspect", self.issuer))
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// `application/x-www-form-urlencoded`, decoded.
fn form(body: &str) -> HashMap<String, String> {
    let decode = |text: &str| {
        let bytes = text.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

/// Why the assertion is refused, or `None` when an issuer would accept it.
fn check(server: &Server, seen: &Seen, compact: &str) -> Option<String> {
    if seen.form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return Some("client_assertion_type".into());
    }
    let (input, signature) = compact.rsplit_once('.')?;
    let kid = seen.header["kid"].as_str()?;
    let Registered(algorithm, key) = server.keys.get(kid)?.clone();
    let expected_alg = if key.len() == 65 { "ES256" } else { "RS256" };
    if seen.header["alg"] != expected_alg {
        return Some("alg".into());
    }
    if UnparsedPublicKey::new(algorithm, &key).verify(input.as_bytes(), &unb64(signature)).is_err() {
        return Some("signature".into());
    }
    let c = &seen.claims;
    let (iat, exp) = (c["iat"].as_u64()?, c["exp"].as_u64()?);
    if c["iss"] != CLIENT || c["sub"] != CLIENT || c["aud"] != server.issuer.as_str() {
        return Some("iss/sub/aud".into());
    }
    if iat.abs_diff(now()) > 5 || exp <= now() || exp - iat > 300 {
        return Some("iat/exp".into());
    }
    let jti = c["jti"].as_str()?;
    let used = server.seen.lock().unwrap().iter().filter(|s| s.claims["jti"] == jti).count();
    (jti.len() < 16 || used > 1).then(|| "jti".into())
}

async fn introspect(State(server): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form(std::str::from_utf8(&body).unwrap());
    let compact = form.get("client_assertion").cloned().unwrap_or_default();
    let part = |i: usize| -> Value {
        compact.split('.').nth(i).and_then(|p| serde_json::from_slice(&unb64(p)).ok()).unwrap_or(Value::Null)
    };
    let seen = Seen {
        authorization: headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned()),
        form,
        header: part(0),
        claims: part(1),
    };
    server.seen.lock().unwrap().push(seen.clone());
    if let Some(why) = check(&server, &seen, &compact).or_else(|| (seen.header.is_null()).then(|| "form".into())) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "error_description": why})))
            .into_response();
    }
    let t = now();
    Json(json!({
        "active": true, "iss": server.issuer, "sub": "user-7", "client_id": "web-app", "aud": AUD,
        "scope": "read", "exp": t + 300, "iat": t, "token_type": "Bearer"
    }))
    .into_response()
}

fn rsa_key() -> (RsaKeyPair, Registered) {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    (pair, Registered(&sig::RSA_PKCS1_2048_8192_SHA256, public))
}

async fn outcome(authority: &Authority, token: &str) -> Result<String, (u16, &'static str)> {
    authority.verify(token).await.map(|t| t.subject().to_owned()).map_err(|r| (r.status().as_u16(), r.reason()))
}

#[tokio::test]
async fn each_introspection_request_carries_a_fresh_rs256_assertion_the_issuer_verifies() {
    let (pair, public) = rsa_key();
    let server = Server::start(HashMap::from([("rsa-2026", public)])).await;
    let pkcs8 = pair.as_der().unwrap();
    let authority = server
        .builder()
        .introspection_private_key_pem(CLIENT, "rsa-2026", pem("PRIVATE KEY", pkcs8.as_ref()))
        .build()
        .unwrap();

    assert_eq!(outcome(&authority, "opaque-1").await, Ok("user-7".to_owned()));
    assert_eq!(outcome(&authority, "opaque-2").await, Ok("user-7".to_owned()));
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "one introspection per token");
    for s in &seen {
        assert_eq!(s.authorization, None, "no secret, no Basic header");
        assert_eq!(s.header, json!({"alg": "RS256", "kid": "rsa-2026"}));
        assert_eq!(s.form.get("client_id").map(String::as_str), Some(CLIENT));
        assert!(!s.form.contains_key("client_secret"));
        assert_eq!(s.claims["exp"].as_u64().unwrap() - s.claims["iat"].as_u64().unwrap(), 60);
        let mut names: Vec<_> = s.claims.as_object().unwrap().keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["aud", "exp", "iat", "iss", "jti", "sub"]);
    }
    assert_ne!(seen[0].claims["jti"], seen[1].claims["jti"], "a fresh jti for each request");
}

#[tokio::test]
async fn an_es256_key_given_as_a_jwk_or_as_an_ec_pem_signs_es256_assertions() {
    let jwk_key = DpopKey::generate();
    let jwk = jwk_key.public_jwk();
    let point = [vec![4u8], unb64(jwk["x"].as_str().unwrap()), unb64(jwk["y"].as_str().unwrap())].concat();
    let ec = EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let keys = HashMap::from([
        ("ec-jwk", Registered(&sig::ECDSA_P256_SHA256_FIXED, point)),
        ("ec-pem", Registered(&sig::ECDSA_P256_SHA256_FIXED, ec.public_key().as_ref().to_vec())),
    ]);
    let server = Server::start(keys).await;
    let from_jwk = server
        .builder()
        .introspection_private_key_jwk(CLIENT, "ec-jwk", jwk_key.private_jwk().to_string())
        .build()
        .unwrap();
    let sec1 = ec.private_key().as_der().unwrap();
    let from_pem = server
        .builder()
        .introspection_private_key_pem(CLIENT, "ec-pem", pem("EC PRIVATE KEY", sec1.as_ref()))
        .build()
        .unwrap();
    assert_eq!(outcome(&from_jwk, "opaque-jwk").await, Ok("user-7".to_owned()));
    assert_eq!(outcome(&from_pem, "opaque-pem").await, Ok("user-7".to_owned()));
    let headers: Vec<_> = server.seen().into_iter().map(|s| s.header).collect();
    assert_eq!(headers, [json!({"alg": "ES256", "kid": "ec-jwk"}), json!({"alg": "ES256", "kid": "ec-pem"})]);
}

#[tokio::test]
async fn an_assertion_the_issuer_refuses_gives_503_never_an_accept() {
    let (_, registered) = rsa_key();
    let (other, _) = rsa_key();
    let server = Server::start(HashMap::from([("rsa-2026", registered)])).await;
    let pkcs8 = other.as_der().unwrap();
    // Signed with a key the issuer does not know under that kid.
    let authority = server
        .builder()
        .introspection_private_key_pem(CLIENT, "rsa-2026", pem("PRIVATE KEY", pkcs8.as_ref()))
        .build()
        .unwrap();
    assert_eq!(outcome(&authority, "opaque-1").await, Err((503, "introspection_unavailable")));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn an_unusable_private_key_or_a_missing_one_is_a_configuration_error_naming_the_setting() {
    let server = Server::start(HashMap::new()).await;
    let error = server
        .builder()
        .introspection_private_key_pem(CLIENT, "k1", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
        .build()
        .unwrap_err();
    assert_eq!(error.setting(), "introspection_private_key");
    assert!(error.to_string().contains("a `PUBLIC KEY` PEM is not an unencrypted private key"), "{error}");
    let error = server
        .builder()
        .introspection(CLIENT, "secret")
        .introspection_client_auth(ClientAuth::PrivateKeyJwt)
        .build()
        .unwrap_err();
    assert_eq!(error.setting(), "introspection_client_auth");
    assert!(error.to_string().contains("private_key_jwt needs the API's private key"), "{error}");
}
