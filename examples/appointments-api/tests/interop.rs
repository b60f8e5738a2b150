//! Interoperability: the built `appointments-api` binary against a real, certified OpenID
//! provider (panva's `oidc-provider`, set up in `tests/idp` at the repository root), over
//! real HTTP.
//!
//! Tokens minted by scopegate's own test kit prove that scopegate agrees with itself;
//! these tests prove it agrees with an issuer it did not write: real RFC 9068 access
//! tokens, a real ID token from the authorization-code flow, real key rotation, a real
//! outage and restart.
//!
//! The suite prepares the provider itself, once per test process: it copies `tests/idp`
//! into a temporary directory and runs `npm ci` there. It needs Node 20 or newer with npm;
//! without them every test that needs the provider fails, saying so.
//!
//! Settings (environment):
//! - `SCOPEGATE_SKIP_INTEROP=1`: opt out. The tests that need the provider print
//!   `SKIPPED: …` and pass. Ignored when `CI` is set: CI always runs them.
//! - `SCOPEGATE_IDP_DIR`: an already prepared copy of `tests/idp` (with `node_modules`)
//!   to use instead of preparing one.
//! - `SCOPEGATE_NODE`, `SCOPEGATE_NPM`: the `node` and `npm` binaries (default: from the
//!   `PATH`).
//! - Your own issuer, for the `any_issuer_*` tests (the `fixture_*` tests need the fixture's
//!   admin endpoints and clients, so they keep using `tests/idp`):
//!   `SCOPEGATE_INTEROP_ISSUER` (the exact `iss`), `SCOPEGATE_INTEROP_CLIENT_ID` and
//!   `SCOPEGATE_INTEROP_CLIENT_SECRET` (a client-credentials client, HTTP Basic),
//!   `SCOPEGATE_INTEROP_AUDIENCE` (default `https://api.example.test`),
//!   `SCOPEGATE_INTEROP_OTHER_AUDIENCE` (another API of the same issuer; without it the
//!   wrong-audience test is skipped), `SCOPEGATE_INTEROP_AUDIENCE_PARAM` (`resource`, the
//!   default (RFC 8707), `audience` (Auth0) or `none` (the issuer decides)),
//!   `SCOPEGATE_INTEROP_TOKEN_ENDPOINT` (default: from discovery) and
//!   `SCOPEGATE_INTEROP_TOKEN_PROFILE` (`rfc9068` or `compatible`, passed to the service).
//!
//! Every test runs its own provider (on a free port, keys in a fresh temporary directory)
//! and its own service, so the tests run in parallel; every wait is bounded, each test has
//! an overall deadline (the one-time preparation is bounded on its own), and every child
//! process is killed when its guard drops (on success, failure, panic or deadline). The
//! provider also exits when this process dies: it is started with `EXIT_WITH_STDIN=1` and
//! ends when its stdin closes.

// Test helpers fail loudly: an unwrap is an assertion here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test helpers fail loudly")]

use std::{
    future::Future,
    io::Write as _,
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

mod support;

use support::{REQUEST_TIMEOUT, Reply, client, jwt_part, read_lines, send};

const BIN: &str = env!("CARGO_BIN_EXE_appointments-api");
/// The fixture's API and the other API it issues tokens for.
const AUDIENCE: &str = "https://api.example.test";
const OTHER_AUDIENCE: &str = "https://other-api.example.test";
/// The provider's resource whose access tokens are opaque (introspection only).
const OPAQUE_AUDIENCE: &str = "https://opaque-api.example.test";
/// The fixture's clients.
const M2M_CLIENT: (&str, &str) = ("m2m-client", "m2m-secret");
const WEB_CLIENT: (&str, &str) = ("web-client", "web-secret");
/// The fixture's resource-server client, allowed to introspect any token.
const INTROSPECTOR: (&str, &str) = ("api-introspector", "api-introspector-secret");
const BOTH_SCOPES: &str = "read:appointments write:appointments";

/// The service's JWKS refresh cooldown, set through `JWKS_REFRESH_COOLDOWN_SECS` (the
/// default is 30 s). A kid that appears within a cooldown of the last fetch is accepted
/// once the cooldown has passed.
const SERVICE_COOLDOWN: Duration = Duration::from_secs(3);
/// Each test's deadline: one cooldown plus generous room for a loaded 2-core machine.
const TEST_DEADLINE: Duration = Duration::from_secs(120);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Concurrent requests with a newly published kid: they must share one JWKS refresh.
const BURST: usize = 8;

// ---------------------------------------------------------------------------------------
// Settings and skipping
// ---------------------------------------------------------------------------------------

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

/// A line on the real stderr, not libtest's captured one: a skip stays visible without
/// `--nocapture`.
fn notice(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// The provider's sources: `tests/idp` at the repository root.
fn idp_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/idp")
}

/// The files of `tests/idp` a prepared copy needs (never a `node_modules` or `keys` left
/// there by hand).
const IDP_FILES: [&str; 4] = ["provider.mjs", "dpop-client.mjs", "package.json", "package-lock.json"];
/// The bound on `npm ci` (a hung registry must not hang the suite).
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);
const NEEDS: &str = "the interoperability tests need Node 20 or newer with npm on the PATH \
    (or SCOPEGATE_NODE / SCOPEGATE_NPM); install them, or opt out with SCOPEGATE_SKIP_INTEROP=1";

/// True when the user opted out of the interoperability tests (never under CI).
fn interop_skipped() -> bool {
    env("SCOPEGATE_SKIP_INTEROP").as_deref() == Some("1") && env("CI").is_none()
}

/// The prepared provider directory, or `None` when the user opted out (the test then says
/// it is skipped). Prepared once per test process; every test after the first waits for
/// that one preparation and shares its outcome.
fn fixture_dir(test: &str) -> Option<PathBuf> {
    if interop_skipped() {
        notice(&format!("SKIPPED {test}: SCOPEGATE_SKIP_INTEROP=1 (opted out of the interoperability tests)"));
        return None;
    }
    static PREPARED: OnceLock<Result<PreparedIdp, String>> = OnceLock::new();
    match PREPARED.get_or_init(prepare_idp) {
        Ok(prepared) => Some(prepared.path().to_owned()),
        Err(why) => panic!("{test}: {why}"),
    }
}

/// The provider's directory: one given in `SCOPEGATE_IDP_DIR`, or a copy this process made.
enum PreparedIdp {
    Given(PathBuf),
    /// Kept for the whole process (a static is never dropped); removed by a later run.
    Copy(PathBuf),
}

impl PreparedIdp {
    fn path(&self) -> &Path {
        match self {
            Self::Given(path) | Self::Copy(path) => path,
        }
    }
}

fn prepare_idp() -> Result<PreparedIdp, String> {
    let node = env("SCOPEGATE_NODE").unwrap_or_else(|| "node".to_owned());
    check_node(&node)?;
    if let Some(dir) = env("SCOPEGATE_IDP_DIR") {
        let dir = PathBuf::from(dir);
        for needed in ["provider.mjs", "node_modules/oidc-provider/package.json"] {
            if !dir.join(needed).is_file() {
                return Err(format!(
                    "SCOPEGATE_IDP_DIR={}: {needed} is missing (a copy of tests/idp after `npm ci`, or unset it)",
                    dir.display()
                ));
            }
        }
        return Ok(PreparedIdp::Given(dir));
    }
    remove_stale_copies();
    let source = idp_source();
    let started = Instant::now();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let copy = std::env::temp_dir().join(format!("scopegate-idp-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&copy).map_err(|e| format!("cannot create {}: {e}", copy.display()))?;
    for file in IDP_FILES {
        let from = source.join(file);
        std::fs::copy(&from, copy.join(file)).map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    }
    let npm = env("SCOPEGATE_NPM").unwrap_or_else(|| "npm".to_owned());
    let mut command = Command::new(&npm);
    command.current_dir(&copy).args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    let outcome =
        run_bounded(command, NPM_CI_TIMEOUT).map_err(|e| format!("`{npm} ci` in {}: {e}; {NEEDS}", copy.display()));
    if let Err(why) = outcome {
        let _ = std::fs::remove_dir_all(&copy);
        return Err(why);
    }
    notice(&format!("interop: prepared {} (npm ci) in {:.1} s", copy.display(), started.elapsed().as_secs_f64()));
    Ok(PreparedIdp::Copy(copy))
}

/// `node --version` is 20 or newer.
fn check_node(node: &str) -> Result<(), String> {
    let output = Command::new(node)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{node} --version` ({e}); {NEEDS}"))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let major = version.strip_prefix('v').and_then(|v| v.split('.').next()).and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(major) if output.status.success() && major >= 20 => Ok(()),
        _ => Err(format!("`{node} --version` says `{version}`; {NEEDS}")),
    }
}

/// Runs `command` to completion within `timeout`; its output is returned in the error.
fn run_bounded(mut command: Command, timeout: Duration) -> Result<(), String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start it ({e})"))?;
    let output = Lines::default();
    let readers = [
        read_lines(child.stdout.take().unwrap(), Arc::clone(&output)),
        read_lines(child.stderr.take().unwrap(), Arc::clone(&output)),
    ];
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not finish within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for reader in readers {
        let _ = reader.join();
    }
    if status.success() {
        return Ok(());
    }
    let output = output.lock().unwrap().join("\n");
    Err(if output.trim().is_empty() { status.to_string() } else { format!("{status}:\n{output}\n") })
}

/// Removes the copies made by earlier test processes that have exited (Linux: a process
/// is alive while `/proc/<pid>` exists; elsewhere nothing is removed).
fn remove_stale_copies() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("scopegate-idp-")).and_then(|r| r.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// How a client asks for a token meant for a given API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AudienceParam {
    /// RFC 8707 `resource=` (the fixture, Keycloak with it enabled, many others).
    Resource,
    /// Auth0's `audience=`.
    Audience,
    /// Nothing: the issuer decides the audience from its own configuration.
    None,
}

/// Your own issuer, from `SCOPEGATE_INTEROP_*`.
#[derive(Debug, Clone)]
struct ExternalIssuer {
    issuer: String,
    client_id: String,
    client_secret: String,
    audience: String,
    other_audience: Option<String>,
    audience_param: AudienceParam,
    token_endpoint: Option<String>,
    profile: Option<String>,
}

fn external_issuer() -> Option<ExternalIssuer> {
    let issuer = env("SCOPEGATE_INTEROP_ISSUER")?;
    let required =
        |name: &str| env(name).unwrap_or_else(|| panic!("SCOPEGATE_INTEROP_ISSUER is set, so {name} must be set too"));
    let audience_param = match env("SCOPEGATE_INTEROP_AUDIENCE_PARAM").as_deref() {
        None | Some("resource") => AudienceParam::Resource,
        Some("audience") => AudienceParam::Audience,
        Some("none") => AudienceParam::None,
        Some(other) => panic!("SCOPEGATE_INTEROP_AUDIENCE_PARAM=`{other}`: use resource, audience or none"),
    };
    Some(ExternalIssuer {
        issuer,
        client_id: required("SCOPEGATE_INTEROP_CLIENT_ID"),
        client_secret: required("SCOPEGATE_INTEROP_CLIENT_SECRET"),
        audience: env("SCOPEGATE_INTEROP_AUDIENCE").unwrap_or_else(|| AUDIENCE.to_owned()),
        other_audience: env("SCOPEGATE_INTEROP_OTHER_AUDIENCE"),
        audience_param,
        token_endpoint: env("SCOPEGATE_INTEROP_TOKEN_ENDPOINT"),
        profile: env("SCOPEGATE_INTEROP_TOKEN_PROFILE"),
    })
}

/// Runs a test body (which returns `false` when it skipped) under the overall deadline.
/// When the deadline passes, the body is dropped, and with it every guard: no process
/// outlives the test.
async fn bounded(test: &str, body: impl Future<Output = bool>) {
    let started = Instant::now();
    match tokio::time::timeout(TEST_DEADLINE, body).await {
        Err(_) => panic!("{test}: did not finish within {TEST_DEADLINE:?}"),
        Ok(true) => notice(&format!("{test}: passed in {:.1} s", started.elapsed().as_secs_f64())),
        Ok(false) => {}
    }
}

// ---------------------------------------------------------------------------------------
// Child processes and temporary directories
// ---------------------------------------------------------------------------------------

type Lines = Arc<Mutex<Vec<String>>>;

/// A child process, killed (and reaped) on drop. When the test is failing, its output is
/// printed (libtest shows it with the failure).
struct Process {
    name: String,
    child: Child,
    stdout: Lines,
    stderr: Lines,
    /// Held open: the provider's watchdog ends it when this closes.
    _stdin: Option<ChildStdin>,
}

impl Process {
    fn spawn(name: String, mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (stdout, stderr) = (Lines::default(), Lines::default());
        read_lines(child.stdout.take().unwrap(), Arc::clone(&stdout));
        read_lines(child.stderr.take().unwrap(), Arc::clone(&stderr));
        Self { name, _stdin: child.stdin.take(), child, stdout, stderr }
    }

    fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    fn output(&self) -> String {
        let (stdout, stderr) = (self.stdout(), self.stderr.lock().unwrap().clone());
        format!("--- {} stdout\n{}\n--- {} stderr\n{}", self.name, stdout.join("\n"), self.name, stderr.join("\n"))
    }

    /// Panics with the output if the process has exited.
    fn assert_running(&mut self, doing: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}) while {doing}\n{}", self.name, self.output());
        }
    }

    fn has_exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.output());
        }
    }
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let unique = format!(
            "scopegate-interop-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// The provider (the fixture)
// ---------------------------------------------------------------------------------------

/// A running fixture provider, killed on drop.
struct Idp {
    process: Process,
    port: u16,
    issuer: String,
    http: reqwest::Client,
    _keys: TempDir,
}

impl Idp {
    /// Starts the provider on `port` (or a free one) with new keys, and waits for its
    /// discovery document.
    async fn start(dir: &Path, port: Option<u16>) -> Self {
        // A free port can be taken by someone else before node binds it: then retry.
        for _attempt in 0..3 {
            let port = port.unwrap_or_else(free_port);
            if let Some(idp) = Self::try_start(dir, port).await {
                return idp;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the provider did not start after 3 attempts");
    }

    async fn try_start(dir: &Path, port: u16) -> Option<Self> {
        let keys = TempDir::new("idp-keys");
        let node = env("SCOPEGATE_NODE").unwrap_or_else(|| "node".to_owned());
        let mut command = Command::new(node);
        command
            .current_dir(dir)
            .arg(dir.join("provider.mjs"))
            .env("EXIT_WITH_STDIN", "1")
            .env_remove("IDP_DISABLE")
            .env("PORT", port.to_string())
            .env("ATTACKER_PORT", "0")
            .env("KEYS_DIR", &keys.0)
            .env_remove("PID_FILE");
        let mut process = Process::spawn(format!("idp :{port}"), command);
        let issuer = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).no_proxy().cookie_store(true).build().unwrap();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if process.has_exited() {
                if process.output().contains("EADDRINUSE") {
                    return None;
                }
                process.assert_running("starting");
            }
            let discovery = http.get(format!("{issuer}/.well-known/openid-configuration")).send().await;
            if let Ok(response) = discovery
                && response.status() == StatusCode::OK
            {
                let document: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
                // The provider's issuer has no trailing slash; the service must be given
                // exactly this string.
                assert_eq!(document["issuer"], issuer.as_str());
                assert_eq!(document["token_endpoint"], format!("{issuer}/token"));
                return Some(Self { process, port, issuer, http, _keys: keys });
            }
            assert!(
                Instant::now() < deadline,
                "the provider did not answer within {STARTUP_TIMEOUT:?}\n{}",
                process.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client-credentials grant for the machine-to-machine client.
    async fn client_credentials(&self, resource: Option<&str>, scope: &str) -> Reply {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
        form.extend(resource.map(|resource| ("resource", resource)));
        let request = self.http.post(format!("{}/token", self.issuer)).basic_auth(M2M_CLIENT.0, Some(M2M_CLIENT.1));
        send(request.form(&form)).await
    }

    /// A JWT access token for `resource` with `scope`.
    async fn access_token(&self, resource: &str, scope: &str) -> String {
        let reply = self.client_credentials(Some(resource), scope).await;
        assert_eq!(reply.status, StatusCode::OK, "token request: {}", reply.body);
        reply.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// `POST /__admin/rotate[?mode=…]`; returns the new active kid.
    async fn rotate(&mut self, mode: Option<&str>) -> String {
        let mode = mode.map_or_else(String::new, |mode| format!("?mode={mode}"));
        let reply = send(self.http.post(format!("{}/__admin/rotate{mode}", self.issuer))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        self.process.assert_running("rotating");
        reply.json()["active_kid"].as_str().unwrap().to_owned()
    }

    /// `GET /__admin/keys`: the active and the published kids.
    async fn kids(&self) -> (String, Vec<String>) {
        let keys = send(self.http.get(format!("{}/__admin/keys", self.issuer))).await.json();
        let published = keys["published_kids"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned());
        (keys["active_kid"].as_str().unwrap().to_owned(), published.collect())
    }

    /// How many times `/jwks` was fetched (by the service: the tests never fetch it).
    async fn jwks_fetches(&self) -> u64 {
        let stats = send(self.http.get(format!("{}/__admin/stats", self.issuer))).await.json();
        stats["jwks_fetches"].as_u64().unwrap()
    }

    /// The authorization-code flow of `web-client` with a cookie jar, as a browser would
    /// follow it (the fixture approves `test-user` without a UI), then the code exchange.
    /// Returns the token response.
    async fn code_flow(&self) -> Value {
        let redirect_uri = format!("{}/cb", self.issuer);
        let query = [
            ("client_id", WEB_CLIENT.0),
            ("response_type", "code"),
            ("scope", "openid"),
            ("redirect_uri", redirect_uri.as_str()),
            ("state", "interop-state"),
            ("nonce", "interop-nonce"),
        ];
        let mut authorize = self.http.get(format!("{}/auth", self.issuer)).build().unwrap();
        authorize.url_mut().query_pairs_mut().extend_pairs(query);
        let response = self.http.execute(authorize).await.unwrap();
        let (status, url) = (response.status(), response.url().clone());
        let body = response.text().await.unwrap();
        assert_eq!((status, url.path()), (StatusCode::OK, "/cb"), "the flow did not reach the redirect_uri: {body}");
        let callback: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(callback["state"], "interop-state", "{callback}");
        assert_eq!(callback["iss"], self.issuer.as_str(), "RFC 9207 iss: {callback}");
        let code = callback["code"].as_str().unwrap_or_else(|| panic!("no code: {callback}"));

        let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", &redirect_uri)];
        let request = self.http.post(format!("{}/token", self.issuer)).basic_auth(WEB_CLIENT.0, Some(WEB_CLIENT.1));
        let reply = send(request.form(&form)).await;
        assert_eq!(reply.status, StatusCode::OK, "code exchange: {}", reply.body);
        reply.json()
    }
}

// ---------------------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------------------

/// A running `appointments-api`, killed on drop.
struct Service {
    process: Process,
    base: String,
    audience: String,
    /// When it printed `listening on`: its first JWKS fetch happened before that.
    listening_at: Instant,
    http: reqwest::Client,
}

impl Service {
    /// Starts the service against `issuer` (discovery from it) and waits until it listens.
    async fn start(issuer: &str, audience: &str, profile: Option<&str>) -> Self {
        Self::start_with(issuer, audience, profile, &[]).await
    }

    /// As [`start`](Self::start), with more environment variables.
    async fn start_with(issuer: &str, audience: &str, profile: Option<&str>, extra: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        for name in [
            "ISSUER",
            "AUDIENCE",
            "JWKS_URI",
            "TOKEN_PROFILE",
            "BIND",
            "DATABASE_PATH",
            "RUST_LOG",
            "JWKS_REFRESH_COOLDOWN_SECS",
            "INTROSPECTION_CLIENT_ID",
            "INTROSPECTION_CLIENT_SECRET",
            "INTROSPECTION_URI",
            "INTROSPECTION_CACHE_TTL_SECS",
        ] {
            command.env_remove(name);
        }
        for (name, value) in extra {
            command.env(name, value);
        }
        command
            .env("ISSUER", issuer)
            .env("AUDIENCE", audience)
            .env("BIND", "127.0.0.1:0")
            .env("JWKS_REFRESH_COOLDOWN_SECS", SERVICE_COOLDOWN.as_secs().to_string())
            // Rejections are logged with their reason at debug: shown if a test fails.
            .env("RUST_LOG", "info,scopegate=debug");
        if let Some(profile) = profile {
            command.env("TOKEN_PROFILE", profile);
        }
        let mut process = Process::spawn("appointments-api".to_owned(), command);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let found = process.stdout().iter().find_map(|l| l.strip_prefix("listening on ").map(str::to_owned));
            if let Some(base) = found {
                let listening_at = Instant::now();
                return Self { process, base, audience: audience.to_owned(), listening_at, http: client() };
            }
            process.assert_running("starting");
            assert!(
                Instant::now() < deadline,
                "no `listening on` line within {STARTUP_TIMEOUT:?}\n{}",
                process.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        send(request).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// The challenge every refusal starts with.
    fn realm(&self) -> String {
        format!("Bearer realm=\"{}\"", self.audience)
    }

    /// `, resource_metadata="…"` (RFC 9728 §5.1), which every challenge ends with when
    /// the audience is a URL the metadata URL is formed from.
    fn metadata(&self) -> String {
        scopegate::policy::metadata_url(&self.audience)
            .map_or_else(String::new, |url| format!(", resource_metadata=\"{url}\""))
    }

    /// `, DPoP realm="…", algs="…"` (RFC 9449 §7.1), which every 401 ends with when the
    /// service has DPoP on (an audience that is an http(s) URL, as for the metadata).
    fn dpop(&self) -> String {
        if self.metadata().is_empty() {
            String::new()
        } else {
            format!(
                ", DPoP realm=\"{}\", algs=\"RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519\"",
                self.audience
            )
        }
    }

    /// The exact 401 of a guarded route (`scope`: its challenge set) without a token.
    fn missing_token(&self, scope: &str) -> String {
        let scope = if self.metadata().is_empty() { String::new() } else { format!(", scope=\"{scope}\"") };
        format!("{}{scope}{}{}", self.realm(), self.metadata(), self.dpop())
    }

    /// The exact 401 for a token that fails verification at `path` (`/api/me`, or the
    /// `GET /api/appointments` guarded by `read:appointments`).
    fn invalid_token_at(&self, path: &str, description: &str, reason: &str) -> (StatusCode, String, Value) {
        let scope = match path {
            "/api/appointments" if !self.metadata().is_empty() => ", scope=\"read:appointments\"",
            _ => "",
        };
        let challenge = format!(
            "{}, error=\"invalid_token\", error_description=\"{description}\"{scope}{}{}",
            self.realm(),
            self.metadata(),
            self.dpop()
        );
        (StatusCode::UNAUTHORIZED, challenge, json!(reason))
    }

    /// The exact 401 at `/api/me` for a token that fails verification.
    fn invalid_token(&self, description: &str, reason: &str) -> (StatusCode, String, Value) {
        self.invalid_token_at("/api/me", description, reason)
    }

    /// The exact 403 for a valid token without the route's scopes.
    fn insufficient_scope(&self, scope: &str) -> (StatusCode, String, Value) {
        let challenge = format!("{}, error=\"insufficient_scope\", scope=\"{scope}\"{}", self.realm(), self.metadata());
        (StatusCode::FORBIDDEN, challenge, json!("insufficient_scope"))
    }

    /// Sleeps until the JWKS refresh cooldown that began with the service's first fetch
    /// has passed (plus a margin): from then on an unknown kid triggers a refresh.
    ///
    async fn wait_out_cooldown(&mut self) {
        let until = self.listening_at + SERVICE_COOLDOWN + Duration::from_secs(1);
        let wait = until.saturating_duration_since(Instant::now());
        notice(&format!("  waiting {:.1} s for the service's JWKS refresh cooldown", wait.as_secs_f64()));
        tokio::time::sleep(wait).await;
        self.process.assert_running("waiting for the cooldown");
    }

    /// `BURST` concurrent `GET /api/me` with `token`; returns the statuses.
    async fn burst(&self, token: &str) -> Vec<StatusCode> {
        let requests: Vec<_> = (0..BURST)
            .map(|_| {
                let request = self.http.get(format!("{}/api/me", self.base)).bearer_auth(token);
                tokio::spawn(async move { request.send().await.map(|r| r.status()) })
            })
            .collect();
        let mut statuses = Vec::with_capacity(BURST);
        for request in requests {
            statuses.push(request.await.unwrap().unwrap());
        }
        statuses
    }
}

// ---------------------------------------------------------------------------------------
// The issuer of the `any_issuer_*` tests: the fixture, or your own
// ---------------------------------------------------------------------------------------

/// Where the `any_issuer_*` tests get their tokens.
struct TokenSource {
    issuer: String,
    token_endpoint: String,
    client: (String, String),
    audience: String,
    other_audience: Option<String>,
    audience_param: AudienceParam,
    profile: Option<String>,
    /// The fixture, when it is the issuer (killed on drop).
    fixture: Option<Idp>,
    http: reqwest::Client,
}

impl TokenSource {
    /// Your issuer if `SCOPEGATE_INTEROP_ISSUER` is set, else the fixture, else `None`
    /// (skipped).
    async fn get(test: &str) -> Option<Self> {
        if let Some(external) = external_issuer() {
            notice(&format!("{test}: against SCOPEGATE_INTEROP_ISSUER={}", external.issuer));
            let token_endpoint = match external.token_endpoint {
                Some(endpoint) => endpoint,
                None => discover_token_endpoint(&external.issuer).await,
            };
            return Some(Self {
                issuer: external.issuer,
                token_endpoint,
                client: (external.client_id, external.client_secret),
                audience: external.audience,
                other_audience: external.other_audience,
                audience_param: external.audience_param,
                profile: external.profile,
                fixture: None,
                http: client(),
            });
        }
        let idp = Idp::start(&fixture_dir(test)?, None).await;
        Some(Self {
            issuer: idp.issuer.clone(),
            token_endpoint: format!("{}/token", idp.issuer),
            client: (M2M_CLIENT.0.to_owned(), M2M_CLIENT.1.to_owned()),
            audience: AUDIENCE.to_owned(),
            other_audience: Some(OTHER_AUDIENCE.to_owned()),
            audience_param: AudienceParam::Resource,
            profile: None,
            fixture: Some(idp),
            http: client(),
        })
    }

    async fn service(&self) -> Service {
        Service::start(&self.issuer, &self.audience, self.profile.as_deref()).await
    }

    /// A client-credentials access token for `audience` with `scope`.
    async fn token(&self, audience: &str, scope: &str) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
        match self.audience_param {
            AudienceParam::Resource => form.push(("resource", audience)),
            AudienceParam::Audience => form.push(("audience", audience)),
            AudienceParam::None => {}
        }
        let request = self.http.post(&self.token_endpoint).basic_auth(&self.client.0, Some(&self.client.1));
        let reply = send(request.form(&form)).await;
        assert_eq!(reply.status, StatusCode::OK, "token request to {}: {}", self.token_endpoint, reply.body);
        let token = reply.json()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(
            token.split('.').count(),
            3,
            "{} issued an opaque access token, not a JWT: ask for one meant for {audience} \
             (SCOPEGATE_INTEROP_AUDIENCE_PARAM)",
            self.issuer
        );
        let claims = jwt_part(&token, 1);
        let aud = &claims["aud"];
        assert!(
            aud == audience || aud.as_array().is_some_and(|a| a.contains(&json!(audience))),
            "asked for a token for {audience}, got aud {aud}"
        );
        token
    }

    fn is_fixture(&self) -> bool {
        self.fixture.is_some()
    }
}

/// The token endpoint from OIDC discovery, or from RFC 8414 metadata.
async fn discover_token_endpoint(issuer: &str) -> String {
    let base = issuer.trim_end_matches('/');
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let reply = send(client().get(format!("{base}{path}"))).await;
        if reply.status == StatusCode::OK
            && let Some(endpoint) = reply.json()["token_endpoint"].as_str()
        {
            return endpoint.to_owned();
        }
    }
    panic!("no token_endpoint in {issuer}'s metadata: set SCOPEGATE_INTEROP_TOKEN_ENDPOINT");
}

// ---------------------------------------------------------------------------------------
// 1-2, 4: any issuer
// ---------------------------------------------------------------------------------------

/// A real RFC 9068 access token (client credentials, `resource=` this API) is accepted on
/// the routes its scopes allow, and gets the exact 403 challenge on the others.
#[tokio::test]
async fn any_issuer_client_credentials_token_works_where_its_scopes_allow() {
    let test = "any_issuer_client_credentials_token_works_where_its_scopes_allow";
    let Some(source) = TokenSource::get(test).await else { return };
    bounded(test, async {
        let service = source.service().await;
        let token = source.token(&source.audience, BOTH_SCOPES).await;
        if source.is_fixture() {
            // What the provider really issued: RFC 9068 §2.
            let header = jwt_part(&token, 0);
            assert_eq!((header["typ"].as_str(), header["alg"].as_str()), (Some("at+jwt"), Some("RS256")), "{header}");
            let (active, _) = source.fixture.as_ref().unwrap().kids().await;
            assert_eq!(header["kid"], active.as_str());
            let claims = jwt_part(&token, 1);
            assert_eq!(claims["iss"], source.issuer.as_str());
            assert_eq!(claims["aud"], AUDIENCE);
            assert_eq!(claims["client_id"], M2M_CLIENT.0);
            assert_eq!(claims["scope"], BOTH_SCOPES);
            for claim in ["jti", "sub", "iat", "exp"] {
                assert!(claims.get(claim).is_some(), "no {claim}: {claims}");
            }
        }

        let anonymous = service.call(Method::GET, "/api/appointments", None, None).await;
        assert_eq!((anonymous.status, anonymous.challenge()), (StatusCode::UNAUTHORIZED, service.missing_token("read:appointments").as_str()));

        let reply = service.get("/api/appointments", &token).await;
        assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!([])), "{}", reply.body);

        let body = json!({"title": "Interop check", "starts_at": "2030-01-31T09:30:00+01:00"});
        let reply = service.call(Method::POST, "/api/appointments", Some(&token), Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let created = reply.json();
        assert_eq!((created["title"].as_str(), created["starts_at"].as_str()), (Some("Interop check"), Some("2030-01-31T08:30:00Z")));
        let id = created["id"].as_i64().unwrap();

        let reply = service.get("/api/appointments", &token).await;
        assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!([created])));

        let reply = service.get("/api/me", &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let me = reply.json();
        if source.is_fixture() {
            let expected = json!({"subject": M2M_CLIENT.0, "client_id": M2M_CLIENT.0, "scopes": ["read:appointments", "write:appointments"]});
            assert_eq!(me, expected);
        } else {
            // Issuers differ in `sub` for clients and in where the client id is (Okta's
            // `cid` is not read); the scopes asked for must be there.
            assert!(me["client_id"].is_null() || me["client_id"] == source.client.0.as_str(), "{me}");
            let scopes = me["scopes"].as_array().unwrap();
            assert!(scopes.contains(&json!("read:appointments")) && scopes.contains(&json!("write:appointments")), "{me}");
        }

        // DELETE needs admin, or write and delete: refused before the handler runs.
        let reply = service.call(Method::DELETE, &format!("/api/appointments/{id}"), Some(&token), None).await;
        let expected = service.insufficient_scope("admin");
        assert_eq!(reply.refusal(), expected, "{}", reply.body);
        let reply = service.get("/api/appointments", &token).await;
        assert_eq!(reply.json().as_array().unwrap().len(), 1, "the appointment is still there");
        true
    })
    .await;
}

/// A token with `read:appointments` only may list, and gets the exact 403 on writes.
#[tokio::test]
async fn any_issuer_read_only_token_gets_the_exact_403_challenge() {
    let test = "any_issuer_read_only_token_gets_the_exact_403_challenge";
    let Some(source) = TokenSource::get(test).await else { return };
    bounded(test, async {
        let service = source.service().await;
        let token = source.token(&source.audience, "read:appointments").await;
        if source.is_fixture() {
            assert_eq!(jwt_part(&token, 1)["scope"], "read:appointments");
        }

        let reply = service.get("/api/appointments", &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

        let body = json!({"title": "Not allowed", "starts_at": "2030-01-31T09:30:00Z"});
        let reply = service.call(Method::POST, "/api/appointments", Some(&token), Some(body)).await;
        let expected = service.insufficient_scope("write:appointments");
        assert_eq!(reply.refusal(), expected, "{}", reply.body);
        assert_eq!(reply.json()["error"], "insufficient_scope");

        let reply = service.call(Method::DELETE, "/api/appointments/1", Some(&token), None).await;
        let expected = service.insufficient_scope("admin");
        assert_eq!(reply.refusal(), expected, "{}", reply.body);

        let reply = service.get("/api/appointments", &token).await;
        assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!([])), "nothing was created");
        true
    })
    .await;
}

/// A real token of the same issuer, for another API (`resource=` another resource): 401.
#[tokio::test]
async fn any_issuer_token_for_another_api_gets_401() {
    let test = "any_issuer_token_for_another_api_gets_401";
    let Some(source) = TokenSource::get(test).await else { return };
    bounded(test, async {
        let Some(other) = source.other_audience.clone() else {
            notice(&format!("SKIPPED {test}: set SCOPEGATE_INTEROP_OTHER_AUDIENCE to another API of your issuer"));
            return false;
        };
        let service = source.service().await;
        let token = source.token(&other, BOTH_SCOPES).await;
        if source.is_fixture() {
            let claims = jwt_part(&token, 1);
            assert_eq!((claims["aud"].as_str(), claims["scope"].as_str()), (Some(OTHER_AUDIENCE), Some(BOTH_SCOPES)));
            assert_eq!(jwt_part(&token, 0)["typ"], "at+jwt");
        }
        for path in ["/api/me", "/api/appointments"] {
            let expected =
                service.invalid_token_at(path, "The access token is not meant for this API", "invalid_audience");
            let reply = service.get(path, &token).await;
            assert_eq!(reply.refusal(), expected, "{path}: {}", reply.body);
        }
        // The same issuer's token for this API still works: only the audience differs.
        let token = source.token(&source.audience, BOTH_SCOPES).await;
        assert_eq!(service.get("/api/me", &token).await.status, StatusCode::OK);
        true
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 3, 5-7: the fixture (its web client and admin endpoints)
// ---------------------------------------------------------------------------------------

/// A real ID token from the authorization-code flow is refused with the ID-token error;
/// the opaque access token of the same response is refused too.
#[tokio::test]
async fn fixture_id_token_from_the_code_flow_gets_401() {
    let test = "fixture_id_token_from_the_code_flow_gets_401";
    let Some(dir) = fixture_dir(test) else { return };
    bounded(test, async {
        let idp = Idp::start(&dir, None).await;
        let service = Service::start(&idp.issuer, AUDIENCE, None).await;
        let tokens = idp.code_flow().await;

        let id_token = tokens["id_token"].as_str().unwrap_or_else(|| panic!("no id_token: {tokens}"));
        let (active, _) = idp.kids().await;
        let header = jwt_part(id_token, 0);
        assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("RS256"), Some(active.as_str())));
        let claims = jwt_part(id_token, 1);
        assert_eq!((claims["iss"].as_str(), claims["aud"].as_str()), (Some(idp.issuer.as_str()), Some(WEB_CLIENT.0)));
        assert_eq!((claims["sub"].as_str(), claims["nonce"].as_str()), (Some("test-user"), Some("interop-nonce")));

        for path in ["/api/me", "/api/appointments"] {
            let expected = service.invalid_token_at(
                path,
                "An ID token was presented; this API accepts access tokens only",
                "id_token",
            );
            let reply = service.get(path, id_token).await;
            assert_eq!(reply.refusal(), expected, "{path}: {}", reply.body);
        }

        // Without a resource the provider's access token is opaque: not a JWT at all.
        let opaque = tokens["access_token"].as_str().unwrap();
        assert_eq!(opaque.split('.').count(), 1, "{opaque}");
        let reply = service.get("/api/me", opaque).await;
        let expected = service.invalid_token("The access token is malformed", "malformed_token");
        assert_eq!(reply.refusal(), expected, "{}", reply.body);
        true
    })
    .await;
}

/// An opaque client-credentials token for the provider's opaque resource opens a guarded
/// route through introspection (the endpoint from the provider's discovery, HTTP Basic as
/// `api-introspector`), and is refused once revoked at `/token/revocation` (the service's
/// introspection cache lives 1 s here).
#[tokio::test]
async fn fixture_opaque_token_is_introspected_and_refused_once_revoked() {
    let test = "fixture_opaque_token_is_introspected_and_refused_once_revoked";
    let Some(dir) = fixture_dir(test) else { return };
    bounded(test, async {
        let idp = Idp::start(&dir, None).await;
        let introspection = [
            ("INTROSPECTION_CLIENT_ID", INTROSPECTOR.0),
            ("INTROSPECTION_CLIENT_SECRET", INTROSPECTOR.1),
            ("INTROSPECTION_CACHE_TTL_SECS", "1"),
        ];
        let service = Service::start_with(&idp.issuer, OPAQUE_AUDIENCE, None, &introspection).await;
        let reply = idp.client_credentials(Some(OPAQUE_AUDIENCE), "read:appointments").await;
        assert_eq!(reply.status, StatusCode::OK, "token request: {}", reply.body);
        let opaque = reply.json()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(opaque.split('.').count(), 1, "an opaque token: {opaque}");

        let reply = service.get("/api/appointments", &opaque).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let me = service.get("/api/me", &opaque).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
        // The provider's answer for a client-credentials token has no `sub`: the client is the subject.
        assert_eq!(
            (&me.json()["subject"], &me.json()["client_id"]),
            (&json!(M2M_CLIENT.0), &json!(M2M_CLIENT.0)),
            "{}",
            me.body
        );
        let expected = service.insufficient_scope("write:appointments");
        let reply = service.call(Method::POST, "/api/appointments", Some(&opaque), Some(json!({}))).await;
        assert_eq!(reply.refusal(), expected, "{}", reply.body);

        let revocation = idp
            .http
            .post(format!("{}/token/revocation", idp.issuer))
            .basic_auth(M2M_CLIENT.0, Some(M2M_CLIENT.1))
            .form(&[("token", opaque.as_str()), ("token_type_hint", "access_token")]);
        let reply = send(revocation).await;
        assert_eq!(reply.status, StatusCode::OK, "revocation: {}", reply.body);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let reply = service.get("/api/appointments", &opaque).await;
        let expected =
            service.invalid_token_at("/api/appointments", "The access token is not active", "inactive_token");
        assert_eq!(reply.refusal(), expected, "{}", reply.body);
        true
    })
    .await;
}

/// Grace-period rotation (`POST /__admin/rotate`): a new signer, the old key still
/// published. The new kid is fetched once, by one refresh shared by a burst of requests,
/// and both old and new tokens work.
#[tokio::test]
async fn fixture_rotation_with_grace_period_is_followed() {
    let test = "fixture_rotation_with_grace_period_is_followed";
    let Some(dir) = fixture_dir(test) else { return };
    bounded(test, async {
        let mut idp = Idp::start(&dir, None).await;
        let mut service = Service::start(&idp.issuer, AUDIENCE, None).await;
        assert_eq!(idp.jwks_fetches().await, 1, "the service fetched the keys once at startup");
        let (first_kid, _) = idp.kids().await;
        let old = idp.access_token(AUDIENCE, BOTH_SCOPES).await;
        assert_eq!(service.get("/api/me", &old).await.status, StatusCode::OK);

        let new_kid = idp.rotate(None).await;
        assert_ne!(new_kid, first_kid);
        assert_eq!(idp.kids().await.1, [new_kid.clone(), first_kid.clone()], "grace mode keeps the old signer");
        let new = idp.access_token(AUDIENCE, BOTH_SCOPES).await;
        assert_eq!(jwt_part(&new, 0)["kid"], new_kid.as_str());
        assert_eq!(service.get("/api/me", &old).await.status, StatusCode::OK);

        service.wait_out_cooldown().await;
        let statuses = service.burst(&new).await;
        assert_eq!(statuses, [StatusCode::OK; BURST], "every request with the new kid is accepted");
        assert_eq!(idp.jwks_fetches().await, 2, "one refresh for the whole burst");

        let reply = service.get("/api/me", &new).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let reply = service.get("/api/me", &old).await;
        assert_eq!(reply.status, StatusCode::OK, "the old key is still published: {}", reply.body);
        assert_eq!(service.get("/api/appointments", &new).await.status, StatusCode::OK);
        assert_eq!(idp.jwks_fetches().await, 2, "known kids need no fetch");
        true
    })
    .await;
}

/// Hard rotation (`?mode=new-drop-old`): the new token works; the old key keeps working
/// only until the service's next fetch, then its tokens get 401.
#[tokio::test]
async fn fixture_hard_rotation_drops_the_old_key() {
    let test = "fixture_hard_rotation_drops_the_old_key";
    let Some(dir) = fixture_dir(test) else { return };
    bounded(test, async {
        let mut idp = Idp::start(&dir, None).await;
        let mut service = Service::start(&idp.issuer, AUDIENCE, None).await;
        let (first_kid, _) = idp.kids().await;
        let old = idp.access_token(AUDIENCE, BOTH_SCOPES).await;
        let old_unused = idp.access_token(AUDIENCE, "read:appointments").await;
        assert_eq!(service.get("/api/me", &old).await.status, StatusCode::OK);

        let new_kid = idp.rotate(Some("new-drop-old")).await;
        assert_eq!(idp.kids().await.1, std::slice::from_ref(&new_kid), "hard mode publishes the new key only");
        assert!(!new_kid.is_empty() && new_kid != first_kid);
        let new = idp.access_token(AUDIENCE, BOTH_SCOPES).await;
        assert_eq!(jwt_part(&new, 0)["kid"], new_kid.as_str());
        // Until the service fetches again it still trusts the old key.
        assert_eq!(service.get("/api/me", &old).await.status, StatusCode::OK);
        assert_eq!(idp.jwks_fetches().await, 1);

        service.wait_out_cooldown().await;
        let statuses = service.burst(&new).await;
        assert_eq!(statuses, [StatusCode::OK; BURST]);
        assert_eq!(idp.jwks_fetches().await, 2, "one refresh for the whole burst");

        // The refresh replaced the key set whole: the dropped key is gone, for a token
        // seen before (the verified-token cache must not keep it alive) and for one never
        // presented.
        let expected = service.invalid_token("The access token is signed with an unknown key", "unknown_key");
        for token in [&old, &old_unused] {
            let reply = service.get("/api/me", token).await;
            assert_eq!(reply.refusal(), expected, "{}", reply.body);
        }
        assert_eq!(service.get("/api/me", &new).await.status, StatusCode::OK);
        assert_eq!(idp.jwks_fetches().await, 2, "a dropped kid within the cooldown starts no fetch");
        true
    })
    .await;
}

/// With the provider stopped, tokens with a known key keep working; the provider restarted
/// on the same port with new keys is followed: its tokens are accepted once the service
/// refreshes, and tokens of the old keys are refused from then on.
#[tokio::test]
async fn fixture_provider_outage_and_restart_with_new_keys() {
    let test = "fixture_provider_outage_and_restart_with_new_keys";
    let Some(dir) = fixture_dir(test) else { return };
    bounded(test, async {
        let idp = Idp::start(&dir, None).await;
        let (port, issuer) = (idp.port, idp.issuer.clone());
        let mut service = Service::start(&issuer, AUDIENCE, None).await;
        let (_, old_kids) = idp.kids().await;
        let seen = idp.access_token(AUDIENCE, BOTH_SCOPES).await;
        let unseen = idp.access_token(AUDIENCE, BOTH_SCOPES).await;
        assert_eq!(service.get("/api/me", &seen).await.status, StatusCode::OK);

        drop(idp);
        let down = client().get(format!("{issuer}/.well-known/openid-configuration")).send().await;
        assert!(down.is_err(), "the provider is stopped");
        // Verified from the cached keys, without the issuer: a token seen before and one
        // never presented (a full signature check).
        assert_eq!(service.get("/api/me", &seen).await.status, StatusCode::OK);
        let reply = service.get("/api/me", &unseen).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let body = json!({"title": "During the outage", "starts_at": "2030-01-31T09:30:00Z"});
        let reply = service.call(Method::POST, "/api/appointments", Some(&unseen), Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);

        // Restarted on the same port (same issuer) with new keys.
        let idp = Idp::start(&dir, Some(port)).await;
        assert_eq!(idp.issuer, issuer);
        let (new_kid, new_kids) = idp.kids().await;
        assert!(new_kids.iter().all(|kid| !old_kids.contains(kid)), "{old_kids:?} {new_kids:?}");
        let new = idp.access_token(AUDIENCE, BOTH_SCOPES).await;
        assert_eq!(jwt_part(&new, 0)["kid"], new_kid.as_str());

        service.wait_out_cooldown().await;
        let statuses = service.burst(&new).await;
        assert_eq!(statuses, [StatusCode::OK; BURST], "the restarted provider's keys are picked up");
        assert_eq!(idp.jwks_fetches().await, 1, "one refresh for the whole burst");
        let reply = service.get("/api/appointments", &new).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

        let expected = service.invalid_token("The access token is signed with an unknown key", "unknown_key");
        for token in [&seen, &unseen] {
            let reply = service.get("/api/me", token).await;
            assert_eq!(reply.refusal(), expected, "{}", reply.body);
        }
        true
    })
    .await;
}

/// The fixture itself offers what the introspection, DPoP and userinfo tests above use:
/// an opaque token for `https://opaque-api.example.test` that the resource-server
/// client can introspect (and no other client can), revocation, `/me` for a code-flow
/// token, and DPoP advertised in discovery.
#[tokio::test]
async fn fixture_offers_opaque_tokens_introspection_revocation_userinfo_and_dpop() {
    let test = "fixture_offers_opaque_tokens_introspection_revocation_userinfo_and_dpop";
    let Some(dir) = fixture_dir(test) else { return };
    bounded(test, async {
        let idp = Idp::start(&dir, None).await;
        let metadata = send(idp.http.get(format!("{}/.well-known/openid-configuration", idp.issuer))).await.json();
        for (field, path) in [
            ("introspection_endpoint", "/token/introspection"),
            ("revocation_endpoint", "/token/revocation"),
            ("userinfo_endpoint", "/me"),
        ] {
            assert_eq!(metadata[field], format!("{}{path}", idp.issuer), "{field}");
        }
        let dpop_algs = metadata["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap_or_else(|| panic!("DPoP is not advertised: {metadata}"));
        assert!(dpop_algs.contains(&json!("ES256")), "{metadata}");

        let reply = idp.client_credentials(Some(OPAQUE_AUDIENCE), "read:appointments").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let opaque = reply.json()["access_token"].as_str().unwrap().to_owned();
        assert!(!opaque.contains('.'), "not opaque: {opaque}");

        let introspect = |client: (&str, &str)| {
            let request =
                idp.http.post(format!("{}/token/introspection", idp.issuer)).basic_auth(client.0, Some(client.1));
            send(request.form(&[("token", opaque.as_str())]))
        };
        let active = introspect(INTROSPECTOR).await.json();
        assert_eq!(
            (&active["active"], &active["aud"], &active["client_id"], &active["scope"]),
            (&json!(true), &json!(OPAQUE_AUDIENCE), &json!(M2M_CLIENT.0), &json!("read:appointments")),
            "{active}"
        );
        assert_eq!(introspect(WEB_CLIENT).await.json(), json!({"active": false}), "another client's token");

        let revoke =
            idp.http.post(format!("{}/token/revocation", idp.issuer)).basic_auth(M2M_CLIENT.0, Some(M2M_CLIENT.1));
        assert_eq!(send(revoke.form(&[("token", opaque.as_str())])).await.status, StatusCode::OK);
        assert_eq!(introspect(INTROSPECTOR).await.json(), json!({"active": false}), "revoked");

        let tokens = idp.code_flow().await;
        let userinfo = idp.http.get(format!("{}/me", idp.issuer)).bearer_auth(tokens["access_token"].as_str().unwrap());
        let reply = send(userinfo).await;
        assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!({"sub": "test-user"})), "{}", reply.body);
        true
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// DPoP (RFC 9449): the provider's bound tokens, proofs from an independent library
// ---------------------------------------------------------------------------------------

/// A `redis-server` on a free loopback port for the DPoP replay store, stopped on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one; `None` (with a visible note) when `redis-server` is missing, which
    /// under `CI=true` fails the test instead.
    fn start(test: &str) -> Option<Self> {
        let installed = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok();
        if !installed {
            assert!(
                env("CI").as_deref() != Some("true"),
                "{test}: redis-server is not installed; `.ci/run` installs it"
            );
            notice(&format!("SKIPPED {test}: redis-server is not installed (apt-get install -y redis-server)"));
            return None;
        }
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self { child, port };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(Instant::now() < deadline, "{test}: redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `tests/idp/dpop-client.mjs` (panva's `dpop` package) made: a DPoP-bound token from
/// the provider and one `GET` proof per URL.
fn dpop_client(dir: &Path, idp: &Idp, htus: &[&str]) -> Value {
    let node = env("SCOPEGATE_NODE").unwrap_or_else(|| "node".to_owned());
    let output = Command::new(node)
        .current_dir(dir)
        .arg(dir.join("dpop-client.mjs"))
        .args([format!("{}/token", idp.issuer), AUDIENCE.to_owned(), "read:appointments".to_owned()])
        .args(htus)
        .output()
        .unwrap();
    assert!(output.status.success(), "dpop-client.mjs: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn fixture_dpop_bound_token_with_an_independent_proof_is_accepted_and_a_replay_on_a_second_instance_is_refused() {
    let test =
        "fixture_dpop_bound_token_with_an_independent_proof_is_accepted_and_a_replay_on_a_second_instance_is_refused";
    let Some(dir) = fixture_dir(test) else { return };
    let Some(redis) = RedisServer::start(test) else { return };
    bounded(test, async {
        let idp = Idp::start(&dir, None).await;
        let store = format!("redis://127.0.0.1:{}/", redis.port);
        let first = Service::start_with(&idp.issuer, AUDIENCE, None, &[("DPOP_REPLAY_STORE", store.as_str())]).await;
        let second = Service::start_with(&idp.issuer, AUDIENCE, None, &[("DPOP_REPLAY_STORE", store.as_str())]).await;
        // The service sees the audience as its external URL (it is reached at 127.0.0.1).
        let appointments = format!("{AUDIENCE}/api/appointments");
        let me = format!("{AUDIENCE}/api/me");
        let made = dpop_client(&dir, &idp, &[&appointments, &me]);
        assert_eq!(made["token_type"], "DPoP", "{made}");
        let token = made["access_token"].as_str().unwrap();
        assert_eq!(jwt_part(token, 1)["cnf"]["jkt"], made["jkt"], "the provider bound the token to the client's key");
        let proof = |i: usize| made["proofs"][i].as_str().unwrap().to_owned();
        let dpop_get = |service: &Service, path: &str, proof: String| {
            let request = service
                .http
                .get(format!("{}{path}", service.base))
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof);
            send(request)
        };

        let reply = dpop_get(&first, "/api/appointments", proof(0)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        // The same proof at the second instance: Redis has seen its jti.
        let reply = dpop_get(&second, "/api/appointments", proof(0)).await;
        let description = "The DPoP proof was already used";
        let challenge = format!(
            "{}, DPoP realm=\"{AUDIENCE}\", error=\"invalid_dpop_proof\", error_description=\"{description}\", scope=\"read:appointments\"{}, algs=\"RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519\"",
            second.realm(),
            second.metadata()
        );
        assert_eq!(reply.refusal(), (StatusCode::UNAUTHORIZED, challenge, json!("dpop_replayed")), "{}", reply.body);
        // A fresh proof opens the second instance.
        let reply = dpop_get(&second, "/api/me", proof(1)).await;
        assert_eq!((reply.status, &reply.json()["client_id"]), (StatusCode::OK, &json!(M2M_CLIENT.0)), "{}", reply.body);
        // The bound token as a bearer token: refused, a downgrade.
        let reply = second.get("/api/me", token).await;
        let expected = second.invalid_token(
            "The access token is sender-constrained and cannot be used as a bearer token",
            "sender_constrained",
        );
        assert_eq!(reply.refusal(), expected, "{}", reply.body);
        true
    })
    .await;
}

/// `GET /api/profile` answers with the real provider's `/userinfo` answer for the
/// presented token (`UserInfo` asks the discovered `userinfo_endpoint`). The token is the
/// one a browser's code flow gets (`openid`, no resource): the only kind oidc-provider
/// serves at `/userinfo`, since it refuses any token with a resource audience there. Such a
/// token is opaque, so the service reads it by introspection, and the provider's answer
/// names no audience: the service takes it only with
/// `INTROSPECTION_ACCEPTS_MISSING_AUDIENCE=true`, and refuses it otherwise.
#[tokio::test]
async fn fixture_profile_is_the_real_userinfo_answer_for_a_code_flow_token() {
    let test = "fixture_profile_is_the_real_userinfo_answer_for_a_code_flow_token";
    let Some(dir) = fixture_dir(test) else { return };
    bounded(test, async {
        let idp = Idp::start(&dir, None).await;
        let token = idp.code_flow().await["access_token"].as_str().unwrap().to_owned();
        assert_eq!(token.split('.').count(), 1, "an opaque token: {token}");
        let request = idp
            .http
            .post(format!("{}/token/introspection", idp.issuer))
            .basic_auth(INTROSPECTOR.0, Some(INTROSPECTOR.1));
        let introspected = send(request.form(&[("token", token.as_str())])).await.json();
        assert_eq!(
            (&introspected["active"], &introspected["sub"], introspected.get("aud")),
            (&json!(true), &json!("test-user"), None),
            "{introspected}"
        );

        let credentials =
            [("INTROSPECTION_CLIENT_ID", INTROSPECTOR.0), ("INTROSPECTION_CLIENT_SECRET", INTROSPECTOR.1)];
        let strict = Service::start_with(&idp.issuer, AUDIENCE, None, &credentials).await;
        let reply = strict.get("/api/profile", &token).await;
        let expected =
            strict.invalid_token_at("/api/profile", "The access token is not meant for this API", "invalid_audience");
        assert_eq!(reply.refusal(), expected, "{}", reply.body);
        drop(strict);

        let mut settings = credentials.to_vec();
        settings.push(("INTROSPECTION_ACCEPTS_MISSING_AUDIENCE", "true"));
        let service = Service::start_with(&idp.issuer, AUDIENCE, None, &settings).await;
        let reply = service.get("/api/profile", &token).await;
        assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!({"sub": "test-user"})), "{}", reply.body);
        true
    })
    .await;
}
