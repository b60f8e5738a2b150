//! A development issuer, started in the same process when `ISSUER` is unset, so that
//! `cargo run` gives a working API and a way to get tokens for it with no setup.
//!
//! COPY: delete this file (and `jsonwebtoken`, `aws-lc-rs`, `base64` from Cargo.toml) if
//! your copy should always use a real issuer; or keep it for local runs. It never runs
//! when `ISSUER` is set.
//!
//! What it is: an OAuth 2.0 authorization server for the client-credentials grant only,
//! with OpenID Connect discovery, a JWK set, and a token endpoint issuing RFC 9068 access
//! tokens (`typ: at+jwt`, ES256, signed by a key generated at startup and never stored).
//! One client, with an id and secret generated at startup and printed in the banner.
//! It also serves an OpenID Connect `/userinfo` (advertised as `userinfo_endpoint`): a
//! token requested with the `openid` scope carries both the API and that URL in `aud`
//! (like the article's example token), and `/userinfo` accepts only tokens it issued
//! whose `aud` contains its URL, answering `{"sub": …, "preferred_username": …}`.
//!
//! With `INTROSPECTION_CLIENT_ID`/`INTROSPECTION_CLIENT_SECRET` set, it also hands out
//! opaque access tokens (`-d token_format=opaque`, kept in memory, at most
//! [`MAX_OPAQUE_TOKENS`]) and answers RFC 7662 introspection for them at the
//! `introspection_endpoint` it advertises, to the API authenticated with those credentials
//! (HTTP Basic). An opaque token requested with `openid` has the same two audiences in its
//! introspection answer, and `/userinfo` takes it too.
//!
//! Where it listens: always `127.0.0.1`, on a port the OS picks, on a listener of its
//! own. Not on the API's listener: `BIND` may be a public address (`0.0.0.0:3000` in a
//! container), and an issuer that hands out tokens to whoever knows a printed secret must
//! stay unreachable from other machines whatever `BIND` says. One rule, one code path.
//!
//! How the API trusts it: exactly as it would trust any issuer, through discovery and the
//! JWK set over HTTP (loopback `http://` is allowed for development). Nothing is shared in
//! memory, so `cargo run` exercises the same path as production.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    constant_time, rand,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use axum::{
    Form, Json, Router,
    extract::{State, rejection::FormRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::routes::api_scopes;

/// How long issued access tokens live.
const TOKEN_LIFETIME_SECS: u64 = 3600;
/// The most opaque tokens kept at once (expired ones are dropped first).
const MAX_OPAQUE_TOKENS: usize = 10_000;

/// The scopes the banner's curl line asks for.
const BANNER_SCOPES: &str = "openid read:appointments write:appointments";
/// The OpenID Connect scope: the token's `aud` then also names this issuer's `/userinfo`.
const OPENID: &str = "openid";

/// A running development issuer.
#[derive(Debug)]
pub(crate) struct DevIssuer {
    issuer: String,
    client_id: String,
    client_secret: String,
    /// Whether it hands out opaque tokens (the API has introspection credentials).
    opaque_tokens: bool,
}

/// What the issuer's handlers share.
struct Issuer {
    issuer: String,
    audience: String,
    client_id: String,
    client_secret: String,
    kid: String,
    signing_key: EncodingKey,
    verifying_key: DecodingKey,
    jwks: Value,
    /// The API's introspection credentials, when opaque tokens are enabled.
    introspector: Option<(String, String)>,
    /// Issued opaque tokens and their introspection answers.
    opaque: Mutex<HashMap<String, Value>>,
}

impl Issuer {
    fn userinfo_url(&self) -> String {
        format!("{}/userinfo", self.issuer)
    }
}

impl DevIssuer {
    /// Generates a key and a client, and starts serving on `127.0.0.1` (port chosen by the
    /// OS). Tokens are issued for `audience` unless a request names another.
    pub(crate) async fn start(audience: &str, introspector: Option<(String, String)>) -> Result<Self, String> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| format!("the development issuer cannot listen on 127.0.0.1: {e}"))?;
        let address = listener.local_addr().map_err(|e| format!("the development issuer has no address: {e}"))?;
        let issuer = format!("http://{address}");

        const KEY_ERROR: &str = "the development issuer could not generate its signing key";
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| KEY_ERROR)?;
        let pkcs8 = key.to_pkcs8v1().map_err(|_| KEY_ERROR)?;
        // An uncompressed P-256 point: 0x04, then x and y (32 bytes each).
        let point = key.public_key().as_ref();
        let (x, y) = point.get(1..).filter(|xy| xy.len() == 64).ok_or(KEY_ERROR)?.split_at(32);
        let kid = format!("dev-{}", random_b64url::<6>()?);
        let verifying_key = DecodingKey::from_ec_components(&URL_SAFE_NO_PAD.encode(x), &URL_SAFE_NO_PAD.encode(y))
            .map_err(|_| KEY_ERROR)?;
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]});

        let state = Arc::new(Issuer {
            issuer: issuer.clone(),
            audience: audience.to_owned(),
            client_id: format!("dev-client-{}", random_b64url::<6>()?),
            client_secret: random_b64url::<32>()?,
            kid,
            signing_key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            verifying_key,
            jwks,
            introspector,
            opaque: Mutex::new(HashMap::new()),
        });
        let running = Self {
            issuer,
            client_id: state.client_id.clone(),
            client_secret: state.client_secret.clone(),
            opaque_tokens: state.introspector.is_some(),
        };

        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/.well-known/oauth-authorization-server", get(discovery))
            .route("/jwks", get(jwk_set))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/introspect", post(introspect))
            .with_state(state);
        // Serves until the process exits; the API's graceful shutdown ends the process.
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the development issuer stopped");
            }
        });
        Ok(running)
    }

    /// The issuer identifier (`iss`) and discovery base URL.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Logs a warning and prints, once, the banner: what this is, the client's
    /// credentials, and curl lines (get a token, or an opaque one when introspection is on;
    /// call the API; the profile) with the real addresses.
    #[allow(clippy::print_stdout, reason = "the banner is for the person at the terminal, not for the log")]
    pub(crate) fn print_banner(&self, api: SocketAddr) {
        tracing::warn!(
            issuer = %self.issuer,
            "DEVELOPMENT ISSUER running because ISSUER is unset: never use it in production (set ISSUER and AUDIENCE)"
        );
        if !api.ip().is_loopback() {
            let warning = "the API is reachable from other machines and trusts the development issuer";
            tracing::warn!(address = %api, "{warning}");
        }
        let api = loopback_if_unspecified(api);
        let rule = "=".repeat(78);
        let Self { issuer, client_id, client_secret, opaque_tokens } = self;
        println!("{rule}");
        println!("  DEVELOPMENT ISSUER: for local development only, never for production.");
        println!("  It runs because ISSUER is unset. Set ISSUER (and AUDIENCE) to use a real issuer.");
        println!("  issuer:        {issuer}  (listens on 127.0.0.1 only)");
        println!("  client_id:     {client_id}");
        println!("  client_secret: {client_secret}");
        println!("  scopes:        {OPENID} {}", api_scopes().join(" "));
        println!("  Get a token (add  -d subject=alice  to act as a user):");
        println!(
            "    TOKEN=$(curl -sS -u '{client_id}:{client_secret}' -d grant_type=client_credentials --data-urlencode 'scope={BANNER_SCOPES}' {issuer}/token | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')"
        );
        if *opaque_tokens {
            println!("  Or an opaque token, which the API introspects at the issuer:");
            println!(
                "    TOKEN=$(curl -sS -u '{client_id}:{client_secret}' -d grant_type=client_credentials -d token_format=opaque --data-urlencode 'scope={BANNER_SCOPES}' {issuer}/token | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')"
            );
        }
        println!("  Call the API:");
        println!("    curl -sS -H \"Authorization: Bearer $TOKEN\" http://{api}/api/appointments");
        println!("  Your profile, from the issuer's /userinfo (the token needs the openid scope):");
        println!("    curl -sS -H \"Authorization: Bearer $TOKEN\" http://{api}/api/profile");
        println!("{rule}");
    }
}

/// `0.0.0.0:3000` is where the API listens, but not an address to send a request to.
fn loopback_if_unspecified(address: SocketAddr) -> SocketAddr {
    match address {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, v4.port())),
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v6.port())),
        other => other,
    }
}

fn random_b64url<const N: usize>() -> Result<String, String> {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes).map_err(|_| "the system random number generator failed".to_owned())?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// OpenID Connect Discovery 1.0 / RFC 8414 metadata, limited to what this issuer does.
async fn discovery(State(issuer): State<Arc<Issuer>>) -> Json<Value> {
    let base = &issuer.issuer;
    let scopes: Vec<&str> = [OPENID].into_iter().chain(api_scopes()).collect();
    let mut doc = json!({
        "issuer": base,
        "jwks_uri": format!("{base}/jwks"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": issuer.userinfo_url(),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes,
    });
    if let (Some(_), Some(map)) = (&issuer.introspector, doc.as_object_mut()) {
        map.insert("introspection_endpoint".to_owned(), format!("{base}/introspect").into());
        map.insert("introspection_endpoint_auth_methods_supported".to_owned(), json!(["client_secret_basic"]));
    }
    Json(doc)
}

async fn jwk_set(State(issuer): State<Arc<Issuer>>) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "public, max-age=3600")], Json(issuer.jwks.clone()))
}

/// RFC 6749 §5.2 error response.
fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> Response {
    let mut response = (status, Json(json!({ "error": error, "error_description": description }))).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"development issuer\""));
    }
    response
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// The client's credentials from `Authorization: Basic` (RFC 6749 §2.3.1), if present.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    let malformed = "the Authorization header is not Basic base64(client_id:client_secret)";
    let (scheme, encoded) = value.to_str().ok().and_then(|v| v.split_once(' ')).ok_or(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed);
    }
    let decoded = STANDARD.decode(encoded.trim()).ok().and_then(|d| String::from_utf8(d).ok()).ok_or(malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or(malformed)?;
    Ok(Some((id.to_owned(), secret.to_owned())))
}

/// The issued token's claims (RFC 9068 §2.2).
#[derive(Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    /// The API; with the `openid` scope, the API and this issuer's `/userinfo`.
    aud: Value,
    client_id: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// The token endpoint: `grant_type=client_credentials`, the client authenticated with
/// HTTP Basic or `client_id`/`client_secret` form fields; optional `scope` (API scopes,
/// space-delimited), `audience` (default: the API's) and `subject` (default: the client;
/// a development convenience to act as different users).
async fn token(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let Ok(Form(pairs)) = form else {
        return invalid_request("send an application/x-www-form-urlencoded body");
    };
    // RFC 6749 §3.2: parameters must not be repeated.
    let mut seen: Vec<&str> = Vec::with_capacity(pairs.len());
    for (name, _) in &pairs {
        if seen.contains(&name.as_str()) {
            return invalid_request("a parameter is repeated");
        }
        seen.push(name);
    }
    let param = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());

    match param("grant_type") {
        None => return invalid_request("grant_type is missing"),
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "this development issuer supports grant_type=client_credentials only",
            );
        }
    }

    let basic = match basic_credentials(&headers) {
        Ok(basic) => basic,
        Err(description) => return invalid_request(description),
    };
    let (client_id, client_secret) = match (basic, param("client_id"), param("client_secret")) {
        (Some(_), _, Some(_)) => {
            return invalid_request("authenticate the client one way only: Basic or form fields");
        }
        // A `client_id` field next to Basic authentication is allowed if it names the same client.
        (Some((id, _)), Some(posted_id), None) if posted_id != id => {
            return invalid_request("client_id differs from the Basic credentials");
        }
        (Some(credentials), _, None) => credentials,
        (None, Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
        (None, None, None) => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication is required");
        }
        (None, _, _) => return invalid_request("send client_id and client_secret together"),
    };
    let id_ok = constant_time::verify_slices_are_equal(client_id.as_bytes(), issuer.client_id.as_bytes()).is_ok();
    let secret_ok =
        constant_time::verify_slices_are_equal(client_secret.as_bytes(), issuer.client_secret.as_bytes()).is_ok();
    if !(id_ok && secret_ok) {
        tracing::warn!("development issuer: client authentication failed");
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong secret");
    }

    let mut scopes: Vec<&str> = Vec::new();
    for scope in param("scope").unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
        if scope != OPENID && !api_scopes().contains(&scope) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                &format!("request only these scopes: {OPENID} {}", api_scopes().join(" ")),
            );
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let audience = param("audience").unwrap_or(&issuer.audience);
    if audience.is_empty() || audience.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", "audience must be non-empty, without spaces");
    }
    let subject = param("subject").unwrap_or(&client_id);
    if subject.is_empty() || subject.chars().count() > 255 || subject.chars().any(char::is_control) {
        return invalid_request("subject must be 1 to 255 characters, without control characters");
    }

    let jti = match random_b64url::<16>() {
        Ok(jti) => jti,
        Err(error) => return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &error),
    };
    let now = unix_now();
    let scope = (!scopes.is_empty()).then(|| scopes.join(" "));
    // With `openid`, the token is for the API and for this issuer's `/userinfo` too.
    let aud = if scopes.contains(&OPENID) { json!([audience, issuer.userinfo_url()]) } else { json!(audience) };
    match param("token_format") {
        None | Some("jwt") => {}
        Some("opaque") if issuer.introspector.is_some() => {
            let answer = json!({
                "active": true, "iss": issuer.issuer, "sub": subject, "aud": aud, "client_id": client_id,
                "iat": now, "exp": now + TOKEN_LIFETIME_SECS, "jti": jti, "scope": scope.clone().unwrap_or_default(),
                "token_type": "Bearer",
            });
            let access_token = match random_b64url::<32>() {
                Ok(token) => token,
                Err(error) => return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &error),
            };
            {
                let mut opaque = issuer.opaque.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if opaque.len() >= MAX_OPAQUE_TOKENS {
                    opaque.retain(|_, answer| answer["exp"].as_u64().is_some_and(|exp| exp > now));
                }
                if opaque.len() >= MAX_OPAQUE_TOKENS {
                    return oauth_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "temporarily_unavailable",
                        "too many opaque tokens",
                    );
                }
                opaque.insert(access_token.clone(), answer);
            }
            tracing::info!(client_id, subject, audience, "development issuer: opaque access token issued");
            return token_response(&access_token, scope);
        }
        Some("opaque") => {
            return invalid_request(
                "opaque tokens need INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET set for the API",
            );
        }
        Some(_) => return invalid_request("token_format must be jwt or opaque"),
    }
    let claims = AccessTokenClaims {
        iss: &issuer.issuer,
        sub: subject,
        aud,
        client_id: &client_id,
        iat: now,
        exp: now + TOKEN_LIFETIME_SECS,
        jti,
        scope: scope.clone(),
    };
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(issuer.kid.clone());
    let access_token = match jsonwebtoken::encode(&header, &claims, &issuer.signing_key) {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(%error, "development issuer: signing failed");
            return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the token could not be signed");
        }
    };
    let granted = scope.as_deref().unwrap_or("");
    tracing::info!(client_id, subject, audience, scope = granted, "development issuer: access token issued");
    token_response(&access_token, scope)
}

/// RFC 6749 §5.1: the token response.
fn token_response(access_token: &str, scope: Option<String>) -> Response {
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_SECS,
    });
    if let (Some(scope), Some(map)) = (scope, body.as_object_mut()) {
        map.insert("scope".to_owned(), scope.into());
    }
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The claims `/userinfo` reads from a token it issued.
#[derive(serde::Deserialize)]
struct UserinfoClaims {
    sub: String,
}

/// OpenID Connect Core §5.3: the profile of the token's subject. The token must be one
/// this issuer issued, unexpired, with this endpoint in `aud` (requested with `openid`):
/// a JWT it signed, or an opaque token it handed out.
async fn userinfo(State(issuer): State<Arc<Issuer>>, headers: HeaderMap) -> Response {
    let refuse = |error: &'static str, description: &'static str| {
        let challenge = format!("Bearer error=\"{error}\", error_description=\"{description}\"");
        let mut response =
            (StatusCode::UNAUTHORIZED, Json(json!({"error": error, "error_description": description}))).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        return refuse("invalid_request", "send the access token as Authorization: Bearer");
    };
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[&issuer.issuer]);
    validation.set_audience(&[issuer.userinfo_url()]);
    let subject = match jsonwebtoken::decode::<UserinfoClaims>(token, &issuer.verifying_key, &validation) {
        Ok(data) => Some(data.claims.sub),
        Err(error) => {
            let opaque = opaque_userinfo_subject(&issuer, token);
            if opaque.is_none() {
                tracing::info!(%error, "development issuer: userinfo refused a token");
            }
            opaque
        }
    };
    let Some(sub) = subject else {
        return refuse("invalid_token", "the token is not valid here (was it requested with the openid scope?)");
    };
    let mut response = Json(json!({"sub": sub, "preferred_username": sub})).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The subject of an opaque token this issuer handed out, unexpired, whose `aud` names
/// this issuer's `/userinfo`.
fn opaque_userinfo_subject(issuer: &Issuer, token: &str) -> Option<String> {
    let now = unix_now();
    let userinfo_url = issuer.userinfo_url();
    let opaque = issuer.opaque.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let answer = opaque.get(token).filter(|answer| answer["exp"].as_u64().is_some_and(|exp| exp > now))?;
    let for_userinfo =
        answer["aud"].as_array().is_some_and(|aud| aud.iter().any(|a| a.as_str() == Some(&userinfo_url)));
    for_userinfo.then(|| answer["sub"].as_str().map(str::to_owned)).flatten()
}

/// RFC 7662 introspection of the opaque tokens this issuer handed out, for the API
/// authenticated with its introspection credentials (HTTP Basic). Any other token, or
/// an expired one, is `{"active": false}`.
async fn introspect(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let Some((expected_id, expected_secret)) = &issuer.introspector else {
        return oauth_error(StatusCode::NOT_FOUND, "invalid_request", "introspection is not enabled");
    };
    let authenticated = match basic_credentials(&headers) {
        Ok(Some((id, secret))) => {
            let id_ok = constant_time::verify_slices_are_equal(id.as_bytes(), expected_id.as_bytes()).is_ok();
            let secret_ok =
                constant_time::verify_slices_are_equal(secret.as_bytes(), expected_secret.as_bytes()).is_ok();
            id_ok && secret_ok
        }
        _ => false,
    };
    if !authenticated {
        tracing::warn!("development issuer: introspection client authentication failed");
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong secret");
    }
    let Ok(Form(pairs)) = form else {
        return invalid_request("send an application/x-www-form-urlencoded body");
    };
    let mut tokens = pairs.iter().filter(|(name, _)| name == "token");
    let (Some((_, token)), None) = (tokens.next(), tokens.next()) else {
        return invalid_request("send exactly one token parameter");
    };
    let now = unix_now();
    let answer = issuer
        .opaque
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(token)
        .filter(|answer| answer["exp"].as_u64().is_some_and(|exp| exp > now))
        .cloned()
        .unwrap_or_else(|| json!({"active": false}));
    let mut response = Json(answer).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
