//! End-to-end tests: the built `appointments-api` binary, started on a free port and
//! driven over real HTTP, with its development issuer or with a key server started here.
//!
//! Every wait is bounded, and every child process is killed when its guard drops.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test helpers fail loudly")]

use std::{
    io::Write as _,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, routing::get};
use reqwest::{Method, StatusCode};
use scopegate::testing::TestIssuer;
use serde_json::{Value, json};

mod support;

use support::{Reply, client, jwt_part, read_lines, send};

const BIN: &str = env!("CARGO_BIN_EXE_appointments-api");
/// Generous for a loaded 2-core machine; a healthy start takes well under a second.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
const REALM: &str = "Bearer realm=\"https://api.example.test\"";
/// RFC 9728 §5.1: every challenge names the metadata URL formed from the audience.
const META: &str = "resource_metadata=\"https://api.example.test/.well-known/oauth-protected-resource\"";
/// RFC 9449 §7.1: a 401 offers the DPoP scheme too, with the accepted proof algorithms.
const DPOP: &str =
    "DPoP realm=\"https://api.example.test\", algs=\"RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519\"";

// ---------------------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------------------

/// A running `appointments-api`, killed on drop.
struct Service {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns the binary with exactly `env` (plus `BIND=127.0.0.1:0` unless given).
fn spawn(env: &[(&str, &str)]) -> Service {
    let mut command = Command::new(BIN);
    command.env_clear().env("BIND", "127.0.0.1:0");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let readers = vec![
        read_lines(child.stdout.take().unwrap(), Arc::clone(&stdout)),
        read_lines(child.stderr.take().unwrap(), Arc::clone(&stderr)),
    ];
    Service { child, stdout, stderr, readers, base: String::new() }
}

impl Service {
    /// Starts the service and waits for its `listening on http://ADDR` line.
    async fn start(env: &[(&str, &str)]) -> Self {
        let mut service = spawn(env);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let found = service.stdout().iter().find_map(|l| l.strip_prefix("listening on ").map(str::to_owned));
            if let Some(base) = found {
                service.base = base;
                return service;
            }
            if let Some(status) = service.child.try_wait().unwrap() {
                panic!("the service exited ({status}) before listening; stderr:\n{}", service.stderr().join("\n"));
            }
            assert!(Instant::now() < deadline, "no `listening on` line within {STARTUP_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits (bounded) for the process to exit, then for its output to be read.
    fn wait_for_exit(mut self) -> (ExitStatus, Vec<String>, Vec<String>) {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the service did not exit within {EXIT_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        (status, self.stdout(), self.stderr())
    }

    /// The development issuer's URL and client, from the banner.
    fn dev_client(&self) -> DevClient {
        let stdout = self.stdout();
        let field = |name: &str| {
            stdout
                .iter()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.split_whitespace().next().unwrap().to_owned()))
                .unwrap_or_else(|| panic!("no `{name}` line in the banner:\n{}", stdout.join("\n")))
        };
        DevClient { issuer: field("issuer:"), id: field("client_id:"), secret: field("client_secret:") }
    }
}

/// The development issuer's printed client.
struct DevClient {
    issuer: String,
    id: String,
    secret: String,
}

async fn call(service: &Service, method: Method, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
    let mut request = client().request(method, service.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    send(request).await
}

/// `application/x-www-form-urlencoded`, for the values these tests use.
fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| s.replace('%', "%25").replace(' ', "%20").replace('&', "%26").replace('+', "%2B");
    pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

impl DevClient {
    /// Asks the development issuer's token endpoint, authenticating with HTTP Basic.
    async fn request_token(&self, fields: &[(&str, &str)]) -> Reply {
        let mut pairs = vec![("grant_type", "client_credentials")];
        pairs.extend_from_slice(fields);
        let request = client()
            .post(format!("{}/token", self.issuer))
            .basic_auth(&self.id, Some(&self.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&pairs));
        send(request).await
    }

    /// A token with these scopes (and optionally another subject).
    async fn token(&self, scope: &str, subject: Option<&str>) -> String {
        let mut fields = vec![("scope", scope)];
        if let Some(subject) = subject {
            fields.push(("subject", subject));
        }
        let reply = self.request_token(&fields).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json()["access_token"].as_str().unwrap().to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// With the development issuer (no ISSUER)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn banner_prints_once_and_its_curl_lines_work() {
    let service = Service::start(&[]).await;
    let stdout = service.stdout();
    assert_eq!(stdout.iter().filter(|l| l.contains("DEVELOPMENT ISSUER")).count(), 1, "{stdout:#?}");
    assert_eq!(stdout.iter().filter(|l| l.starts_with("listening on http://127.0.0.1:")).count(), 1);
    let dev = service.dev_client();
    assert!(dev.issuer.starts_with("http://127.0.0.1:"), "loopback only: {}", dev.issuer);

    let token_line = stdout.iter().find(|l| l.trim_start().starts_with("TOKEN=$(curl")).unwrap().trim().to_owned();
    let call_line = stdout.iter().find(|l| l.trim_start().starts_with("curl -sS -H")).unwrap().trim().to_owned();
    assert!(token_line.contains(&format!("-u '{}:{}'", dev.id, dev.secret)), "{token_line}");
    assert!(token_line.contains(&format!("{}/token", dev.issuer)), "{token_line}");
    assert!(call_line.ends_with(&service.url("/api/appointments")), "{call_line}");

    // Copy, paste, run: the two lines, as printed, in a shell.
    let profile_line = stdout.iter().find(|l| l.trim().ends_with("/api/profile")).unwrap().trim().to_owned();
    assert!(profile_line.starts_with("curl -sS -H \"Authorization: Bearer $TOKEN\""), "{profile_line}");
    let script = format!("set -e\n{token_line}\ntest -n \"$TOKEN\"\n{call_line}\necho\n{profile_line}\n");
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(script).env("no_proxy", "*").env("NO_PROXY", "*");
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || run_bounded(shell)).await.unwrap();
    assert!(status.success(), "{stderr}");
    // The banner's token is the client's own (sub = client_id), with the openid scope.
    let profile = json!({"sub": dev.id, "preferred_username": dev.id}).to_string();
    assert_eq!(stdout, format!("[]\n{profile}"));
}

#[tokio::test]
async fn with_introspection_credentials_the_banners_opaque_token_line_works() {
    let service = Service::start(&[
        ("INTROSPECTION_CLIENT_ID", "api-introspector"),
        ("INTROSPECTION_CLIENT_SECRET", "intro-secret"),
    ])
    .await;
    let stdout = service.stdout();
    let token_lines: Vec<_> =
        stdout.iter().filter(|l| l.trim_start().starts_with("TOKEN=$(curl")).map(|l| l.trim().to_owned()).collect();
    assert_eq!(token_lines.len(), 2, "{stdout:#?}");
    let opaque_line = &token_lines[1];
    assert!(opaque_line.contains("-d token_format=opaque"), "{opaque_line}");
    let call_line = stdout.iter().find(|l| l.trim_start().starts_with("curl -sS -H")).unwrap().trim().to_owned();
    let profile_line = stdout.iter().find(|l| l.trim().ends_with("/api/profile")).unwrap().trim().to_owned();
    // The opaque line, then the same two calls: the token is opaque (no dot) and works.
    let script =
        format!("set -e\n{opaque_line}\ncase \"$TOKEN\" in *.*|'') exit 3;; esac\n{call_line}\necho\n{profile_line}\n");
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(script).env("no_proxy", "*").env("NO_PROXY", "*");
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || run_bounded(shell)).await.unwrap();
    assert!(status.success(), "{status}: {stderr}");
    let dev = service.dev_client();
    let profile = json!({"sub": dev.id, "preferred_username": dev.id}).to_string();
    assert_eq!(stdout, format!("[]\n{profile}"));
}

/// Runs a command to completion within [`EXIT_TIMEOUT`] (killed after that).
fn run_bounded(mut command: Command) -> (ExitStatus, String, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`sh` and `curl` are needed to run the banner's lines");
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`{command:?}` did not finish within {EXIT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (output.status, text(output.stdout), text(output.stderr))
}

#[tokio::test]
async fn dev_issuer_publishes_discovery_and_issues_rfc9068_tokens() {
    let service = Service::start(&[]).await;
    let dev = service.dev_client();

    let discovery = send(client().get(format!("{}/.well-known/openid-configuration", dev.issuer))).await.json();
    assert_eq!(discovery["issuer"], dev.issuer.as_str());
    assert_eq!(discovery["jwks_uri"], format!("{}/jwks", dev.issuer));
    assert_eq!(discovery["token_endpoint"], format!("{}/token", dev.issuer));
    assert_eq!(discovery["userinfo_endpoint"], format!("{}/userinfo", dev.issuer));
    let jwks = send(client().get(format!("{}/jwks", dev.issuer))).await.json();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert!(jwks["keys"][0].get("d").is_none(), "no private key material");

    let reply = dev.request_token(&[("scope", "read:appointments write:appointments")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["cache-control"], "no-store");
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read:appointments write:appointments");
    let token = body["access_token"].as_str().unwrap();
    let header = jwt_part(token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
    let claims = jwt_part(token, 1);
    assert_eq!(claims["iss"], dev.issuer.as_str());
    assert_eq!(claims["aud"], "https://api.example.test");
    assert_eq!(claims["sub"], dev.id.as_str());
    assert_eq!(claims["client_id"], dev.id.as_str());
    assert_eq!(claims["scope"], "read:appointments write:appointments");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

    // Client authentication with form fields instead of Basic.
    let request =
        client().post(format!("{}/token", dev.issuer)).header("content-type", "application/x-www-form-urlencoded");
    let posted = form(&[("grant_type", "client_credentials"), ("client_id", &dev.id), ("client_secret", &dev.secret)]);
    let reply = send(request.body(posted)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(jwt_part(reply.json()["access_token"].as_str().unwrap(), 1).get("scope").is_none());
}

#[tokio::test]
async fn dev_issuer_refuses_bad_token_requests() {
    let service = Service::start(&[]).await;
    let dev = service.dev_client();
    let wrong_secret = DevClient { issuer: dev.issuer.clone(), id: dev.id.clone(), secret: "wrong".to_owned() };
    let reply = wrong_secret.request_token(&[]).await;
    assert_eq!((reply.status, reply.json()["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));

    let reply = dev.request_token(&[("scope", "read:appointments email")]).await;
    assert_eq!((reply.status, reply.json()["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")));

    let request = client().post(format!("{}/token", dev.issuer)).basic_auth(&dev.id, Some(&dev.secret));
    let reply =
        send(request.header("content-type", "application/x-www-form-urlencoded").body("grant_type=password")).await;
    assert_eq!(reply.json()["error"], "unsupported_grant_type");

    let reply = dev.request_token(&[("scope", "admin"), ("scope", "admin")]).await;
    assert_eq!((reply.status, reply.json()["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
}

#[tokio::test]
async fn token_then_list_create_and_list_again() {
    let service = Service::start(&[]).await;
    let token = service.dev_client().token("read:appointments write:appointments", None).await;

    let reply = call(&service, Method::GET, "/api/appointments", Some(&token), None).await;
    assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!([])));

    let body = r#"{"title":"Dentist","starts_at":"2030-01-31T09:30:00+01:00","notes":"bring the forms"}"#;
    let reply = call(&service, Method::POST, "/api/appointments", Some(&token), Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let created = reply.json();
    assert_eq!(created["title"], "Dentist");
    assert_eq!(created["starts_at"], "2030-01-31T08:30:00Z");
    assert_eq!(created["notes"], "bring the forms");
    assert!(created["id"].is_i64());
    let location = reply.headers.get("location").and_then(|v| v.to_str().ok());
    assert_eq!(location, Some(format!("/api/appointments/{}", created["id"])).as_deref(), "201 names what it created");

    let reply = call(&service, Method::GET, "/api/appointments", Some(&token), None).await;
    assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!([created])));
}

#[tokio::test]
async fn missing_token_and_missing_scope_get_the_rfc6750_challenges() {
    let service = Service::start(&[]).await;
    // A guarded route's 401 names its scopes as well (the MCP authorization specification).
    let reply = call(&service, Method::GET, "/api/appointments", None, None).await;
    let challenge = format!("{REALM}, scope=\"read:appointments\", {META}, {DPOP}");
    assert_eq!((reply.status, reply.challenge()), (StatusCode::UNAUTHORIZED, challenge.as_str()));
    let reply = call(&service, Method::GET, "/api/me", None, None).await;
    assert_eq!(
        (reply.status, reply.challenge()),
        (StatusCode::UNAUTHORIZED, format!("{REALM}, {META}, {DPOP}").as_str())
    );
    // Unauthenticated before the body is even looked at.
    let reply = call(&service, Method::POST, "/api/appointments", None, Some("not json")).await;
    let challenge = format!("{REALM}, scope=\"write:appointments\", {META}, {DPOP}");
    assert_eq!((reply.status, reply.challenge()), (StatusCode::UNAUTHORIZED, challenge.as_str()));

    let write_only = service.dev_client().token("write:appointments", None).await;
    let reply = call(&service, Method::GET, "/api/appointments", Some(&write_only), None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge(),
        format!("{REALM}, error=\"insufficient_scope\", scope=\"read:appointments\", {META}")
    );
    assert_eq!(reply.json()["error"], "insufficient_scope");

    let read_only = service.dev_client().token("read:appointments", None).await;
    let reply = call(&service, Method::POST, "/api/appointments", Some(&read_only), Some("{}")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge(),
        format!("{REALM}, error=\"insufficient_scope\", scope=\"write:appointments\", {META}")
    );

    let mut tampered = write_only.clone();
    tampered.pop();
    tampered.push(if write_only.ends_with('A') { 'B' } else { 'A' });
    let reply = call(&service, Method::GET, "/api/me", Some(&tampered), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.challenge().starts_with(&format!("{REALM}, error=\"invalid_token\"")), "{}", reply.challenge());

    let health = call(&service, Method::GET, "/health", None, None).await;
    assert_eq!((health.status, health.json()), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn delete_needs_admin_or_write_and_delete_and_owns_its_rows() {
    let service = Service::start(&[]).await;
    let dev = service.dev_client();
    let alice_write = dev.token("write:appointments read:appointments", Some("alice")).await;
    let body = r#"{"title":"Checkup","starts_at":"2030-02-01T10:00:00Z"}"#;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let reply = call(&service, Method::POST, "/api/appointments", Some(&alice_write), Some(body)).await;
        ids.push(reply.json()["id"].as_i64().unwrap());
    }
    let path = |id: i64| format!("/api/appointments/{id}");

    let reply = call(&service, Method::DELETE, &path(ids[0]), Some(&alice_write), None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.challenge(), format!("{REALM}, error=\"insufficient_scope\", scope=\"admin\", {META}"));

    let alice_delete = dev.token("write:appointments delete:appointments", Some("alice")).await;
    let reply = call(&service, Method::DELETE, &path(ids[0]), Some(&alice_delete), None).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::NO_CONTENT, ""));
    let reply = call(&service, Method::DELETE, &path(ids[0]), Some(&alice_delete), None).await;
    assert_eq!((reply.status, reply.json()["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    let alice_admin = dev.token("admin", Some("alice")).await;
    let reply = call(&service, Method::DELETE, &path(ids[1]), Some(&alice_admin), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);

    // Bob cannot see or delete Alice's appointment: it does not exist for him.
    let bob = dev.token("read:appointments write:appointments delete:appointments", Some("bob")).await;
    let reply = call(&service, Method::DELETE, &path(ids[2]), Some(&bob), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = call(&service, Method::GET, "/api/appointments", Some(&bob), None).await;
    assert_eq!(reply.json(), json!([]));
    let reply = call(&service, Method::GET, "/api/appointments", Some(&alice_write), None).await;
    assert_eq!(
        reply.json().as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect::<Vec<_>>(),
        [ids[2]]
    );
}

#[tokio::test]
async fn me_shows_subject_client_and_scopes() {
    let service = Service::start(&[]).await;
    let dev = service.dev_client();
    let token = dev.token("write:appointments read:appointments", Some("alice")).await;
    let reply = call(&service, Method::GET, "/api/me", Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"subject": "alice", "client_id": dev.id, "scopes": ["read:appointments", "write:appointments"]})
    );
    // Any valid token will do, even one without scopes.
    let token = dev.token("", None).await;
    let reply = call(&service, Method::GET, "/api/me", Some(&token), None).await;
    assert_eq!(reply.json(), json!({"subject": dev.id, "client_id": dev.id, "scopes": []}));
}

#[tokio::test]
async fn profile_returns_the_callers_userinfo_for_an_openid_token() {
    let service = Service::start(&[]).await;
    let dev = service.dev_client();
    let token = dev.token("openid read:appointments", Some("alice")).await;
    // The token names both the API and the issuer's /userinfo.
    assert_eq!(jwt_part(&token, 1)["aud"], json!(["https://api.example.test", format!("{}/userinfo", dev.issuer)]));
    let reply = call(&service, Method::GET, "/api/profile", Some(&token), None).await;
    assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!({"sub": "alice", "preferred_username": "alice"})));

    let reply = call(&service, Method::GET, "/api/profile", None, None).await;
    assert_eq!(
        (reply.status, reply.challenge()),
        (StatusCode::UNAUTHORIZED, format!("{REALM}, {META}, {DPOP}").as_str())
    );

    // Without `openid` the token is for the API alone: the issuer's /userinfo refuses it.
    let token = dev.token("read:appointments", Some("alice")).await;
    let reply = call(&service, Method::GET, "/api/profile", Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["reason"], "userinfo_refused");
    assert_eq!(
        reply.challenge(),
        format!(
            "{REALM}, error=\"invalid_token\", error_description=\"The issuer's userinfo endpoint refused the access token\", {META}, {DPOP}"
        )
    );
}

#[tokio::test]
async fn with_introspection_credentials_an_opaque_token_is_introspected() {
    let service = Service::start(&[
        ("INTROSPECTION_CLIENT_ID", "api-introspector"),
        ("INTROSPECTION_CLIENT_SECRET", "intro-secret"),
    ])
    .await;
    let dev = service.dev_client();
    let discovery = send(client().get(format!("{}/.well-known/openid-configuration", dev.issuer))).await.json();
    assert_eq!(discovery["introspection_endpoint"], json!(format!("{}/introspect", dev.issuer)));
    let reply =
        dev.request_token(&[("scope", "read:appointments"), ("subject", "alice"), ("token_format", "opaque")]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let opaque = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(opaque.split('.').count(), 1, "{opaque}");
    let reply = call(&service, Method::GET, "/api/appointments", Some(&opaque), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = call(&service, Method::GET, "/api/me", Some(&opaque), None).await;
    assert_eq!(reply.json(), json!({"subject": "alice", "client_id": dev.id, "scopes": ["read:appointments"]}));
    // The same route still takes a JWT, verified locally.
    let jwt = dev.token("read:appointments", None).await;
    assert_eq!(call(&service, Method::GET, "/api/appointments", Some(&jwt), None).await.status, StatusCode::OK);
    // An opaque token the issuer never issued is inactive.
    let reply = call(&service, Method::GET, "/api/appointments", Some("not-issued-by-anyone"), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["reason"], json!("inactive_token"));
    // Requested with `openid`, an opaque token opens `/api/profile` too: its introspection
    // answer names the API and the issuer's `/userinfo`, which takes it.
    let reply = dev
        .request_token(&[("scope", "openid read:appointments"), ("subject", "alice"), ("token_format", "opaque")])
        .await;
    let opaque = reply.json()["access_token"].as_str().unwrap().to_owned();
    let reply = call(&service, Method::GET, "/api/profile", Some(&opaque), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), json!({"sub": "alice", "preferred_username": "alice"}));
    // Without `openid`, the issuer's `/userinfo` refuses it.
    let reply =
        dev.request_token(&[("scope", "read:appointments"), ("subject", "alice"), ("token_format", "opaque")]).await;
    let opaque = reply.json()["access_token"].as_str().unwrap().to_owned();
    let reply = call(&service, Method::GET, "/api/profile", Some(&opaque), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(reply.json()["reason"], json!("userinfo_refused"));
}

#[tokio::test]
async fn without_introspection_credentials_opaque_tokens_are_not_issued() {
    let service = Service::start(&[]).await;
    let dev = service.dev_client();
    let reply = dev.request_token(&[("token_format", "opaque")]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], json!("invalid_request"));
    let reply = call(&service, Method::GET, "/api/appointments", Some("opaque-token"), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["reason"], json!("malformed_token"));
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx() {
    let service = Service::start(&[]).await;
    let token = service.dev_client().token("write:appointments delete:appointments", None).await;
    let ok_time = "2030-01-31T09:30:00Z";
    let long_title = "x".repeat(201);
    let cases: Vec<(String, u16, &str)> = vec![
        ("{\"title\":".to_owned(), 400, "malformed_json"),
        ("[]".to_owned(), 422, "invalid_body"),
        (format!(r#"{{"title":"a","starts_at":"{ok_time}","colour":"red"}}"#), 422, "invalid_body"),
        (format!(r#"{{"starts_at":"{ok_time}"}}"#), 422, "invalid_body"),
        (format!(r#"{{"title":42,"starts_at":"{ok_time}"}}"#), 422, "invalid_body"),
        (format!(r#"{{"title":"  ","starts_at":"{ok_time}"}}"#), 422, "invalid_field"),
        (format!(r#"{{"title":"{long_title}","starts_at":"{ok_time}"}}"#), 422, "invalid_field"),
        (r#"{"title":"a","starts_at":"next tuesday"}"#.to_owned(), 422, "invalid_field"),
        (r#"{"title":"a","starts_at":"2030-01-31T09:30:00"}"#.to_owned(), 422, "invalid_field"),
    ];
    for (body, status, error) in &cases {
        let reply = call(&service, Method::POST, "/api/appointments", Some(&token), Some(body)).await;
        assert_eq!(reply.status.as_u16(), *status, "{body}: {}", reply.body);
        let json = reply.json();
        assert_eq!(json["error"], *error, "{body}");
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}: {json}");
    }

    let no_content_type = client().post(service.url("/api/appointments")).bearer_auth(&token).body("{}");
    let reply = send(no_content_type).await;
    assert_eq!(
        (reply.status, reply.json()["error"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );

    let huge = format!(r#"{{"title":"{}","starts_at":"{ok_time}"}}"#, "x".repeat(20_000));
    let reply = call(&service, Method::POST, "/api/appointments", Some(&token), Some(&huge)).await;
    assert_eq!((reply.status, reply.json()["error"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")));

    let reply = call(&service, Method::DELETE, "/api/appointments/abc", Some(&token), None).await;
    assert_eq!((reply.status, reply.json()["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_path")));
    let reply = call(&service, Method::DELETE, "/api/appointments/999", Some(&token), None).await;
    assert_eq!((reply.status, reply.json()["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[tokio::test]
async fn the_log_never_contains_a_token() {
    let service = Service::start(&[("RUST_LOG", "trace")]).await;
    let dev = service.dev_client();
    let token = dev.token("read:appointments", None).await;
    let signature = token.rsplit('.').next().unwrap().to_owned();
    let mut tampered = token.clone();
    tampered.insert(tampered.len() - 5, 'x');

    for (path, auth) in [
        ("/api/appointments", Some(token.as_str())),
        ("/api/me", Some(tampered.as_str())),
        (&*format!("/api/appointments?access_token={token}"), None),
        (&*format!("/api/appointments?access_token={token}"), Some(token.as_str())),
    ] {
        let mut request = client().get(service.url(path));
        if let Some(auth) = auth {
            request = request.bearer_auth(auth);
        }
        send(request).await;
    }
    // Each response is logged before it is sent; wait (bounded) for the reader thread.
    let deadline = Instant::now() + Duration::from_secs(5);
    while service.stderr().iter().filter(|l| l.contains("status=")).count() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = service.stderr().join("\n");
    assert!(log.contains("/api/appointments") && log.contains("status=200"), "requests are logged:\n{log}");
    for secret in [&token, &tampered, &signature, &dev.secret] {
        assert!(!log.contains(secret.as_str()), "the log contains a secret:\n{log}");
    }
    assert!(!log.to_ascii_lowercase().contains("bearer"), "the log mentions an Authorization value:\n{log}");
}

#[tokio::test]
async fn at_the_default_log_filter_each_refusal_is_one_line_with_its_reason() {
    let service = Service::start(&[]).await;
    let token = service.dev_client().token("read:appointments", None).await;
    let mut tampered = token.clone();
    tampered.insert(tampered.len() - 5, 'x');
    for (path, auth) in [("/api/me", Some(tampered.as_str())), ("/api/me", None), ("/api/appointments", Some(&*token))]
    {
        let mut request = client().get(service.url(path));
        if let Some(auth) = auth {
            request = request.bearer_auth(auth);
        }
        send(request).await;
    }
    let refusals = || service.stderr().into_iter().filter(|l| l.contains("request refused")).collect::<Vec<_>>();
    let deadline = Instant::now() + Duration::from_secs(5);
    while refusals().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines = refusals();
    assert_eq!(lines.len(), 2, "one line per refused request:\n{lines:#?}");
    assert!(lines[0].contains("reason=\"invalid_signature\"") && lines[0].contains("status=401"), "{}", lines[0]);
    assert!(lines[1].contains("reason=\"missing_credentials\""), "{}", lines[1]);
    let log = service.stderr().join("\n");
    assert!(!log.contains(&token) && !log.contains(&tampered), "the log contains a token:\n{log}");
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let service = Service::start(&[]).await;
    let pid = service.child.id().to_string();
    let status = Command::new("sh").args(["-c", &format!("kill -TERM {pid}")]).status().unwrap();
    assert!(status.success());
    let (status, _, stderr) = service.wait_for_exit();
    assert!(status.success(), "exit status {status}; stderr:\n{}", stderr.join("\n"));
    assert!(stderr.iter().any(|l| l.contains("SIGTERM received")), "{stderr:#?}");
}

#[tokio::test]
async fn database_path_keeps_appointments_across_restarts() {
    let dir = std::env::temp_dir().join(format!("appointments-api-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("appointments.sqlite");
    let db = db.to_str().unwrap();
    let keys = KeyServer::start().await;
    let body = r#"{"title":"Persisted","starts_at":"2030-03-01T08:00:00Z"}"#;
    {
        let service = Service::start(&[("DATABASE_PATH", db), ("ISSUER", &keys.url)]).await;
        let token = keys.issuer.access_token().scope("write:appointments").subject("alice").sign();
        let reply = call(&service, Method::POST, "/api/appointments", Some(&token), Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    // A new process trusting the same issuer: the same subject sees the same rows.
    let service = Service::start(&[("DATABASE_PATH", db), ("ISSUER", &keys.url)]).await;
    let token = keys.issuer.access_token().scope("read:appointments").subject("alice").sign();
    let reply = call(&service, Method::GET, "/api/appointments", Some(&token), None).await;
    assert_eq!(reply.json()[0]["title"], "Persisted");
    drop(service);
    // Appointments belong to (`iss`, `sub`): an `alice` of the development issuer (another
    // `iss`) owns none of them.
    let service = Service::start(&[("DATABASE_PATH", db)]).await;
    let token = service.dev_client().token("read:appointments", Some("alice")).await;
    let reply = call(&service, Method::GET, "/api/appointments", Some(&token), None).await;
    assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!([])));
    drop(service);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// With ISSUER: a key server started by the test
// ---------------------------------------------------------------------------------------

/// An issuer's discovery document and JWK set, served on 127.0.0.1 by this test process.
struct KeyServer {
    url: String,
    issuer: TestIssuer,
    discovery_hits: Arc<AtomicUsize>,
    jwks_hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct KeyServerState {
    url: String,
    jwks: Value,
    discovery_hits: Arc<AtomicUsize>,
    jwks_hits: Arc<AtomicUsize>,
}

impl KeyServer {
    async fn start() -> Self {
        Self::start_with(|url| TestIssuer::new().with_issuer(url)).await
    }

    /// A key server for an issuer with keys of its own (none shared with another server).
    async fn start_with_fresh_keys() -> Self {
        Self::start_with(TestIssuer::with_fresh_keys).await
    }

    async fn start_with(keys: impl FnOnce(String) -> TestIssuer) -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let issuer = keys(url.clone());
        let state = KeyServerState {
            url: url.clone(),
            jwks: issuer.jwks(),
            discovery_hits: Arc::default(),
            jwks_hits: Arc::default(),
        };
        let (discovery_hits, jwks_hits) = (Arc::clone(&state.discovery_hits), Arc::clone(&state.jwks_hits));
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(|State(s): State<KeyServerState>| async move {
                    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
                    Json(json!({"issuer": s.url, "jwks_uri": format!("{}/jwks", s.url)}))
                }),
            )
            .route(
                "/jwks",
                get(|State(s): State<KeyServerState>| async move {
                    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
                    Json(s.jwks)
                }),
            )
            .with_state(state);
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, issuer, discovery_hits, jwks_hits, task }
    }
}

#[tokio::test]
async fn an_issuer_is_trusted_through_discovery_and_the_dev_issuer_never_starts() {
    let keys = KeyServer::start().await;
    let service = Service::start(&[("ISSUER", &keys.url)]).await;

    let stdout = service.stdout().join("\n");
    assert!(!stdout.contains("DEVELOPMENT ISSUER") && !stdout.contains("client_secret"), "{stdout}");
    assert!(!service.stderr().join("\n").contains("DEVELOPMENT ISSUER"));
    assert_eq!(keys.discovery_hits.load(Ordering::SeqCst), 1, "discovery at startup");
    assert_eq!(keys.jwks_hits.load(Ordering::SeqCst), 1, "keys fetched at startup");

    let token = keys.issuer.access_token().scope("read:appointments").subject("carol").sign();
    let reply = call(&service, Method::GET, "/api/appointments", Some(&token), None).await;
    assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!([])));
    let reply = call(&service, Method::GET, "/api/me", Some(&token), None).await;
    assert_eq!(reply.json()["subject"], "carol");

    // Same issuer name, same kid, another key: refused.
    let foreign = TestIssuer::with_fresh_keys(keys.url.clone()).access_token().scope("read:appointments").sign();
    let reply = call(&service, Method::GET, "/api/appointments", Some(&foreign), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.challenge().starts_with(&format!("{REALM}, error=\"invalid_token\"")), "{}", reply.challenge());

    // The right key, but another audience or another issuer name: refused.
    let other_audience = keys.issuer.access_token().scope("read:appointments").audience("https://other.example").sign();
    let reply = call(&service, Method::GET, "/api/appointments", Some(&other_audience), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let other_issuer = keys.issuer.with_issuer("http://127.0.0.1:1").access_token().scope("read:appointments").sign();
    let reply = call(&service, Method::GET, "/api/appointments", Some(&other_issuer), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let write_only = keys.issuer.access_token().scope("write:appointments").sign();
    let reply = call(&service, Method::GET, "/api/appointments", Some(&write_only), None).await;
    assert_eq!(
        reply.challenge(),
        format!("{REALM}, error=\"insufficient_scope\", scope=\"read:appointments\", {META}")
    );
}

#[tokio::test]
async fn two_comma_separated_issuers_are_each_trusted_with_their_own_keys_only() {
    let a = KeyServer::start_with_fresh_keys().await;
    let b = KeyServer::start_with_fresh_keys().await;
    let service = Service::start(&[("ISSUER", &format!("{},{}", a.url, b.url))]).await;
    for keys in [&a, &b] {
        assert_eq!(keys.discovery_hits.load(Ordering::SeqCst), 1, "each issuer discovered at startup");
        assert_eq!(keys.jwks_hits.load(Ordering::SeqCst), 1, "each issuer's keys fetched at startup");
    }

    for (keys, subject) in [(&a, "alice"), (&b, "bob")] {
        let token = keys.issuer.access_token().scope("read:appointments").subject(subject).sign();
        let reply = call(&service, Method::GET, "/api/appointments", Some(&token), None).await;
        assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!([])));
        let reply = call(&service, Method::GET, "/api/me", Some(&token), None).await;
        assert_eq!(reply.json()["subject"], subject);
    }

    // Each issuer's name on a token signed with the other issuer's key (same `kid`).
    for (name, signer) in [(&a, &b), (&b, &a)] {
        let forged = signer.issuer.with_issuer(name.url.clone()).access_token().scope("read:appointments").sign();
        let reply = call(&service, Method::GET, "/api/appointments", Some(&forged), None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.challenge(),
            format!(
                "{REALM}, error=\"invalid_token\", error_description=\"The access token signature is invalid\", scope=\"read:appointments\", {META}, {DPOP}"
            )
        );
        assert_eq!(reply.json()["reason"], "invalid_signature");
    }

    // A third issuer is refused at once, and no issuer is asked for keys.
    let third = a.issuer.with_issuer("http://127.0.0.1:1").access_token().scope("read:appointments").kid("new").sign();
    let reply = call(&service, Method::GET, "/api/appointments", Some(&third), None).await;
    assert_eq!(reply.json()["reason"], "invalid_issuer");
    assert_eq!((a.jwks_hits.load(Ordering::SeqCst), b.jwks_hits.load(Ordering::SeqCst)), (1, 1));

    // RFC 9728 metadata names both.
    let reply = call(&service, Method::GET, "/.well-known/oauth-protected-resource", None, None).await;
    assert_eq!(reply.json()["authorization_servers"], json!([a.url, b.url]));
}

#[tokio::test]
async fn jwks_uri_skips_discovery() {
    let keys = KeyServer::start().await;
    let jwks_uri = format!("{}/jwks", keys.url);
    let service = Service::start(&[("ISSUER", &keys.url), ("JWKS_URI", &jwks_uri)]).await;
    assert_eq!(keys.discovery_hits.load(Ordering::SeqCst), 0);
    assert_eq!(keys.jwks_hits.load(Ordering::SeqCst), 1);
    let token = keys.issuer.access_token().scope("read:appointments").sign();
    let reply = call(&service, Method::GET, "/api/appointments", Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn audience_and_token_profile_are_configurable() {
    let keys = KeyServer::start().await;
    // `typ: JWT`, as Auth0, Okta and Entra ID issue access tokens.
    let jwt_typed = keys.issuer.access_token().typ("JWT").audience("my-api").scope("read:appointments").sign();

    let strict = Service::start(&[("ISSUER", &keys.url), ("AUDIENCE", "my-api")]).await;
    let reply = call(&strict, Method::GET, "/api/appointments", Some(&jwt_typed), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.challenge().starts_with("Bearer realm=\"my-api\", error=\"invalid_token\""), "{}", reply.challenge());
    drop(strict);

    let compatible =
        Service::start(&[("ISSUER", &keys.url), ("AUDIENCE", "my-api"), ("TOKEN_PROFILE", "compatible")]).await;
    let reply = call(&compatible, Method::GET, "/api/appointments", Some(&jwt_typed), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Okta's and Entra ID's scope claim.
    let scp =
        keys.issuer.access_token().typ("JWT").audience("my-api").claim("scp", json!(["read:appointments"])).sign();
    let reply = call(&compatible, Method::GET, "/api/appointments", Some(&scp), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let default_audience = keys.issuer.access_token().typ("JWT").scope("read:appointments").sign();
    let reply = call(&compatible, Method::GET, "/api/appointments", Some(&default_audience), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------
// Configuration errors
// ---------------------------------------------------------------------------------------

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn a_bad_configuration_exits_non_zero_with_one_line() {
    let unreachable = format!("http://127.0.0.1:{}", closed_port());
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let taken: SocketAddr = taken.local_addr().unwrap();
    let taken = taken.to_string();
    let in_use = format!("cannot listen on {taken} (BIND): the address is already in use");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("BIND", "localhost:3000")], "invalid BIND"),
        (&[("BIND", &taken)], &in_use),
        (&[("TOKEN_PROFILE", "strict")], "invalid TOKEN_PROFILE"),
        (&[("AUDIENCE", "")], "invalid AUDIENCE"),
        (&[("ISSUER", "")], "invalid ISSUER"),
        (&[("ISSUER", &unreachable)], "(ISSUER)"),
        (&[("ISSUER", "http://issuer.example.test/")], "(ISSUER)"),
        (&[("JWKS_URI", "https://issuer.example.test/keys")], "invalid JWKS_URI"),
        (&[("RUST_LOG", "a=b=c")], "invalid RUST_LOG"),
        (&[("DATABASE_PATH", "/nonexistent-dir/appointments.sqlite")], "invalid DATABASE_PATH"),
    ];
    for (env, expected) in cases {
        let (status, stdout, stderr) = spawn(env).wait_for_exit();
        assert_eq!(status.code(), Some(1), "{env:?}: {stderr:?}");
        assert_eq!(stderr.len(), 1, "{env:?}: one line, got {stderr:#?}");
        assert!(stderr[0].starts_with("appointments-api: "), "{env:?}: {}", stderr[0]);
        assert!(stderr[0].contains(expected), "{env:?}: expected {expected:?} in {}", stderr[0]);
        assert!(stdout.is_empty(), "{env:?}: nothing on stdout, got {stdout:#?}");
    }
}

#[test]
fn without_an_issuer_a_bind_beyond_loopback_refuses_to_start() {
    for bind in ["0.0.0.0:3000", "[::]:3000", "192.0.2.10:3000"] {
        let (status, stdout, stderr) = spawn(&[("BIND", bind)]).wait_for_exit();
        assert_eq!(status.code(), Some(1), "{bind}: {stderr:?}");
        assert_eq!(
            stderr,
            vec![format!(
                "appointments-api: invalid BIND: {bind} is not a loopback address, and without ISSUER the development issuer would be reachable from other machines: set ISSUER to your issuer, or bind to 127.0.0.1"
            )],
            "{bind}"
        );
        assert!(stdout.is_empty(), "{bind}: no banner, no `listening on`: {stdout:#?}");
    }
}

// ---------------------------------------------------------------------------------------
// Policy as data: the metadata and the route table come from the attributes
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_service_serves_rfc9728_metadata_with_the_scopes_its_attributes_name() {
    let service = Service::start(&[]).await;
    let dev = service.dev_client();
    let reply = call(&service, Method::GET, "/.well-known/oauth-protected-resource", None, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.json(),
        json!({
            "resource": "https://api.example.test",
            "authorization_servers": [dev.issuer],
            "scopes_supported": ["read:appointments", "write:appointments", "admin", "delete:appointments"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Appointments API",
        })
    );
    // The development issuer grants exactly the derived scopes, and `openid` (for /userinfo).
    let discovery = send(client().get(format!("{}/.well-known/openid-configuration", dev.issuer))).await.json();
    let mut granted = vec![json!("openid")];
    granted.extend(reply.json()["scopes_supported"].as_array().unwrap().iter().cloned());
    assert_eq!(discovery["scopes_supported"], Value::Array(granted));
}

#[test]
fn routes_prints_the_route_table_and_exits_0() {
    let output = Command::new(BIN).env_clear().arg("--routes").stdin(Stdio::null()).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let aud = "https://api.example.test";
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "METHOD  PATH                    REQUIREMENT                                                     AUDIENCE                  HANDLER\n\
             GET     /health                 public                                                          -                         appointments_api::routes::health\n\
             GET     /openapi.json           public                                                          -                         appointments_api::routes::openapi_json\n\
             GET     /api/appointments       \"read:appointments\"                                             {aud}  appointments_api::routes::list_appointments\n\
             POST    /api/appointments       \"write:appointments\"                                            {aud}  appointments_api::routes::create_appointment\n\
             DELETE  /api/appointments/{{id}}  any(\"admin\", all(\"write:appointments\", \"delete:appointments\"))  {aud}  appointments_api::routes::delete_appointment\n\
             GET     /api/me                 any valid access token                                          {aud}  appointments_api::routes::me\n\
             GET     /api/profile            any valid access token                                          {aud}  appointments_api::routes::profile\n"
        )
    );
}

// ---------------------------------------------------------------------------------------
// GET /openapi.json, validated with a real OpenAPI 3.1 validator
// ---------------------------------------------------------------------------------------

/// `tests/openapi-validator` (`@seriousme/openapi-schema-validator`, the official OpenAPI
/// 3.1 JSON schema), copied into a temporary directory and installed there with `npm ci`
/// once per test process. `None` without Node 20+ and npm, except under CI, where that
/// fails the test: a CI that skipped the validation would have checked nothing.
fn openapi_validator() -> Option<PathBuf> {
    static PREPARED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    const NEEDS: &str = "validating /openapi.json needs Node 20 or newer with npm on the PATH";
    let prepared = PREPARED.get_or_init(|| {
        let node = Command::new("node").arg("--version").stdin(Stdio::null()).output();
        let major = node.ok().filter(|o| o.status.success()).and_then(|o| {
            let version = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            version.strip_prefix('v').and_then(|v| v.split('.').next()).and_then(|m| m.parse::<u32>().ok())
        });
        if major.is_none_or(|major| major < 20) {
            return Err(format!("{NEEDS}: `node --version` failed or is older than 20"));
        }
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/openapi-validator");
        const PREFIX: &str = "scopegate-openapi-validator-";
        // Copies of earlier test processes that have exited (Linux: `/proc/<pid>` is gone).
        for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|n| n.strip_prefix(PREFIX)).and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let copy = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&copy);
        std::fs::create_dir(&copy).map_err(|e| format!("cannot create {}: {e}", copy.display()))?;
        for file in ["package.json", "package-lock.json", "validate.mjs"] {
            std::fs::copy(source.join(file), copy.join(file)).map_err(|e| format!("cannot copy {file}: {e}"))?;
        }
        let mut npm = Command::new("npm");
        npm.current_dir(&copy).args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
        let (status, stdout, stderr) = run_bounded_for(npm, Duration::from_secs(300));
        if !status.success() {
            return Err(format!("`npm ci` in {} failed ({status}): {stdout}{stderr}; {NEEDS}", copy.display()));
        }
        Ok(copy)
    });
    match prepared {
        Ok(dir) => Some(dir.clone()),
        Err(why) if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") => {
            panic!("CI must validate /openapi.json, but {why}")
        }
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "SKIPPED the OpenAPI 3.1 validation: {why}");
            None
        }
    }
}

/// Runs `command` to its end within `timeout` (killed after it): status, stdout, stderr.
fn run_bounded_for(mut command: Command, timeout: Duration) -> (ExitStatus, String, String) {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (stdout, stderr) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let readers = [
        read_lines(child.stdout.take().unwrap(), Arc::clone(&stdout)),
        read_lines(child.stderr.take().unwrap(), Arc::clone(&stderr)),
    ];
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{command:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for reader in readers {
        reader.join().unwrap();
    }
    let text = |lines: &Arc<Mutex<Vec<String>>>| lines.lock().unwrap().join("\n");
    (status, text(&stdout), text(&stderr))
}

#[tokio::test]
async fn openapi_json_is_valid_openapi_3_1_and_every_operations_security_is_its_routes_requirement() {
    let service = Service::start(&[]).await;
    let issuer = service.dev_client().issuer;
    let reply = send(client().get(service.url("/openapi.json"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let document = reply.json();
    assert_eq!(document["openapi"], "3.1.0");

    // Every operation of the document, with its `security`: exactly the route table's.
    let mut operations = serde_json::Map::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.insert(format!("{} {path}", method.to_uppercase()), operation["security"].clone());
        }
    }
    let oauth2 = |scopes: &[&str]| json!({ "oauth2": scopes });
    assert_eq!(
        Value::Object(operations),
        json!({
            "GET /health": [],
            "GET /openapi.json": [],
            "GET /api/appointments": [oauth2(&["read:appointments"])],
            "POST /api/appointments": [oauth2(&["write:appointments"])],
            "DELETE /api/appointments/{id}": [oauth2(&["admin"]), oauth2(&["write:appointments", "delete:appointments"])],
            "GET /api/me": [oauth2(&[])],
            "GET /api/profile": [oauth2(&[])],
        })
    );
    let delete = &document["paths"]["/api/appointments/{id}"]["delete"];
    assert_eq!(
        delete["parameters"],
        json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}])
    );
    let statuses: Vec<&String> = delete["responses"].as_object().unwrap().keys().collect();
    assert_eq!(statuses, ["401", "403", "default"]);
    let scheme = &document["components"]["securitySchemes"]["oauth2"];
    assert_eq!(scheme["type"], "openIdConnect");
    let discovery = scheme["openIdConnectUrl"].as_str().unwrap();
    assert_eq!(discovery, format!("{issuer}/.well-known/openid-configuration"));
    assert_eq!(send(client().get(discovery)).await.json()["issuer"], issuer.as_str());

    let Some(validator) = openapi_validator() else { return };
    let file = validator.join("openapi.json");
    std::fs::write(&file, &reply.body).unwrap();
    let mut node = Command::new("node");
    node.current_dir(&validator).arg("validate.mjs").arg(&file);
    let (status, stdout, stderr) = run_bounded_for(node, Duration::from_secs(60));
    assert!(status.success(), "the OpenAPI 3.1 validator refused /openapi.json: {stdout}{stderr}");
    assert_eq!(stdout.trim(), "VALID OpenAPI 3.1");
}

/// `DPOP_NONCE=on`: a DPoP request whose proof has no nonce gets 401 `use_dpop_nonce`
/// with the nonce in `DPoP-Nonce` (RFC 9449 §9), and the same request with a fresh proof
/// carrying that nonce is accepted. Without the setting the first proof is accepted.
#[tokio::test]
async fn dpop_nonce_on_asks_for_the_servers_nonce_and_accepts_it() {
    let keys = KeyServer::start().await;
    let key = keys.issuer.dpop_key();
    let token = keys.issuer.access_token().dpop_bound(&key).sign();
    let htu = "https://api.example.test/api/me";
    let dpop_call = |service: &Service, proof: String| {
        let request =
            client().get(service.url("/api/me")).header("authorization", format!("DPoP {token}")).header("dpop", proof);
        send(request)
    };

    let service = Service::start(&[("ISSUER", &keys.url), ("DPOP_NONCE", "on")]).await;
    let reply = dpop_call(&service, key.proof("GET", htu).access_token(&token).sign()).await;
    let nonce = reply.headers.get("dpop-nonce").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let expected = format!(
        "{REALM}, DPoP realm=\"https://api.example.test\", error=\"use_dpop_nonce\", error_description=\"The DPoP proof has no nonce; retry with the one in the DPoP-Nonce header\", {META}, algs=\"RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519\""
    );
    assert_eq!(reply.refusal(), (StatusCode::UNAUTHORIZED, expected, json!("dpop_nonce_missing")));
    assert!(!nonce.is_empty(), "no DPoP-Nonce header: {:?}", reply.headers);
    let reply = dpop_call(&service, key.proof("GET", htu).access_token(&token).nonce(&nonce).sign()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let without = Service::start(&[("ISSUER", &keys.url)]).await;
    let reply = dpop_call(&without, key.proof("GET", htu).access_token(&token).sign()).await;
    assert_eq!((reply.status, reply.headers.get("dpop-nonce")), (StatusCode::OK, None), "{}", reply.body);
}
