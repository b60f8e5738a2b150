//! # scopegate
//!
//! Protect axum APIs with OAuth 2.0 access tokens: one compile-checked line per handler.
//!
//! ```
//! use axum::{Json, Router, routing::get};
//! use scopegate::{AccessToken, Authority, requires_scope};
//!
//! #[requires_scope("read:appointments")]
//! async fn list_appointments(token: AccessToken) -> Json<Vec<String>> {
//!     Json(vec![format!("appointments of {}", token.subject())])
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let authority = Authority::builder()
//!     .issuer("https://issuer.example.test/") // exactly the `iss` of your tokens
//!     .audience("https://api.example.test")   // your API's identifier (`aud`)
//!     .connect()                              // discovery + JWKS, now
//!     .await?;
//! let app: Router = Router::new().route("/appointments", get(list_appointments)).with_state(authority);
//! # let _ = app; Ok(()) }
//! ```
//!
//! An API must accept only *access tokens* meant for it (`aud` = the API's identifier,
//! `scope` = what the caller may do), verified against the issuer's keys, and never *ID
//! tokens* (`aud` = a client's id, meant for that client). scopegate accepts exactly
//! that: RFC 9068 access tokens whose signature, type, issuer, audience, times and
//! required claims all check out, and answers everything else with the RFC 6750 status
//! and `WWW-Authenticate` challenge.
//!
//! ## A tour
//! - [`Authority`]: the trusted issuer and the verification policy, built once with
//!   [`Authority::builder`] (or a preset, see [Issuers and presets](#issuers-and-presets)),
//!   trusting several issuers with [`AuthorityBuilder::also_trust`]. Put it in your router
//!   state and give the state a `FromRef` for it.
//! - [`requires_scope`]: the attribute that guards a handler with a scope requirement.
//!   The guard runs before every other extractor, so an unauthorized request never has
//!   its body read.
//! - [`AccessToken`]: the verified token (subject, client, scopes, claims); also the
//!   extractor for "any valid access token". `Option<AccessToken>` for optional
//!   authentication (no credentials → `None`; a bad token is still refused).
//! - [`UserInfo`]: the issuer's `/userinfo` answer for the request's token (the user's
//!   profile), fetched on demand and cached.
//! - [`Rejection`]: the one error type, with the RFC 6750 response and a stable reason
//!   code ([`RejectionKind::code`]); [`AuthorityBuilder::on_rejection`] renders it with
//!   your own error body (see "Your own error body").
//! - [`layer::RequireAccessToken`]: a tower layer that requires a valid token on every
//!   route of a router, which `#[requires_scope]` refines, with public routes excepted
//!   by name (see "A token floor for a whole router").
//! - `metrics` (feature): the counters of [`Authority::stats`] through the `metrics`
//!   facade (see "Metrics").
//! - `testing` (feature): [`testing::TestIssuer`], an in-memory issuer that mints access
//!   tokens and ID tokens for your own tests.
//! - [`policy`]: policy as data. Every `#[requires_scope]` handler is known at run time;
//!   [`policy::Policy`] is the route table (`unprotected()` finds routes open by accident)
//!   and [`policy::ProtectedResource`] serves the RFC 9728 metadata.
//! - [`routing`]: `get`, `post`, `put`, `patch`, `delete` in place of axum's, under which
//!   a handler that is neither `#[requires_scope]`, nor takes [`AccessToken`] or
//!   [`UserInfo`] first, nor wrapped in [`routing::public`] **does not compile**, and a
//!   state without an [`Authority`] is named at the `.route(…)` call.
//! - `openapi` (feature): `Policy::openapi` writes each operation's `security`, generated
//!   from its attribute, into a utoipa OpenAPI 3.1 document.
//!
//! ## An MCP-style resource server
//! A Model Context Protocol client discovers how to get a token from the resource server
//! itself: its first request gets a 401 whose challenge names the RFC 9728 metadata
//! (`resource_metadata`) and the scopes the route needs (`scope`); the metadata names the
//! authorization server (`authorization_servers`) and every scope (`scopes_supported`,
//! derived from the attributes). scopegate serves both from the declarations:
//!
//! ```
//! use axum::{Router, http::Method, routing::post};
//! use scopegate::{Authority, policy::{Policy, ProtectedResource}, requires_scope};
//!
//! const RESOURCE: &str = "https://mcp.example.test/mcp";
//!
//! #[requires_scope("mcp:tools")]
//! async fn mcp(body: String) -> String {
//!     body // a JSON-RPC endpoint
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let authority = Authority::builder()
//!     .issuer("https://issuer.example.test/")
//!     .audience(RESOURCE)
//!     .protected_resource_metadata(true) // every 401 names the metadata URL
//!     .connect()
//!     .await?;
//! let policy = Policy::new(RESOURCE).route(Method::POST, "/mcp", mcp);
//! assert!(policy.unprotected().is_empty());
//! let metadata = ProtectedResource::new(RESOURCE, authority.issuers()).scopes(policy.scopes());
//! // GET /.well-known/oauth-protected-resource/mcp (RFC 9728 §3.1) and the root form;
//! // a 401 says: Bearer realm="https://mcp.example.test/mcp", scope="mcp:tools",
//! //   resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/mcp"
//! let app: Router = Router::new().route("/mcp", post(mcp)).merge(metadata.router()).with_state(authority);
//! # let _ = app; Ok(()) }
//! ```
//!
//! ## What is refused, and how
//! | outcome | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no credentials, or another scheme | 401 | `Bearer realm="…"` |
//! | malformed header, two `Authorization` headers, a token in the query as well | 400 | `Bearer realm="…", error="invalid_request", error_description="…"` |
//! | any token failure (signature, type, issuer, audience, time, claims, ID token) | 401 | `Bearer realm="…", error="invalid_token", error_description="…"` |
//! | valid token, missing scope | 403 | `Bearer realm="…", error="insufficient_scope", scope="…"` |
//! | the issuer's keys cannot be obtained | 503 | none; `Retry-After` |
//!
//! Descriptions come from a fixed table and never echo token content; every rejection
//! is logged once, as one `tracing` event (target `scopegate`, mostly DEBUG; see "Logging")
//! with its reason code, never the token, and counted ([`Authority::rejections_by_reason`], [`Authority::stats`]). The
//! JSON body carries `error`, `error_description` and the `reason` code (for example
//! `empty_claim` for a `sub`, `client_id` or `jti` that is an empty string); with
//! [`AuthorityBuilder::error_descriptions`]`(false)` an `invalid_token` body is only
//! `{"error":"invalid_token"}` and no body carries a `reason`, so a client cannot tell
//! an unknown key from a bad signature (the logs and counters still can).
//!
//! ### Reason codes and descriptions
//! Every refusal has a stable `reason` (in the JSON body, the logs and
//! [`Authority::rejections_by_reason`]) and a fixed `error_description`:
//!
//! | `reason` | status and `error` | `error_description` |
//! |---|---|---|
//! | `missing_credentials` | 401, no `error` | The request carries no bearer access token (body only; the challenge has no description) |
//! | `empty_token` | 400 `invalid_request` | The Authorization header names the Bearer scheme but carries no token |
//! | `malformed_credentials` | 400 `invalid_request` | The Authorization header is not of the form: Bearer &lt;token&gt; |
//! | `non_ascii_header` | 400 `invalid_request` | The Authorization header contains bytes that are not visible ASCII |
//! | `multiple_authorization_headers` | 400 `invalid_request` | The request carries more than one Authorization header |
//! | `multiple_methods` | 400 `invalid_request` | The request carries an access token in more than one place |
//! | `token_too_large` | 401 `invalid_token` | The access token is too large |
//! | `malformed_token` | 401 `invalid_token` | The access token is malformed |
//! | `algorithm_not_allowed` | 401 `invalid_token` | The access token is signed with an algorithm this API does not accept |
//! | `not_an_access_token` | 401 `invalid_token` | The token is not an access token (typ must be at+jwt) |
//! | `id_token` | 401 `invalid_token` | An ID token was presented; this API accepts access tokens only |
//! | `unsupported_header` | 401 `invalid_token` | The access token uses a header parameter this API does not accept |
//! | `unknown_key` | 401 `invalid_token` | The access token is signed with an unknown key |
//! | `invalid_signature` | 401 `invalid_token` | The access token signature is invalid |
//! | `invalid_issuer` | 401 `invalid_token` | The access token was not issued by the trusted issuer |
//! | `invalid_audience` | 401 `invalid_token` | The access token is not meant for this API |
//! | `token_expired` | 401 `invalid_token` | The access token expired |
//! | `token_not_yet_valid` | 401 `invalid_token` | The access token is not valid yet |
//! | `issued_in_future` | 401 `invalid_token` | The access token is issued in the future |
//! | `lifetime_exceeded` | 401 `invalid_token` | The access token lifetime exceeds the allowed maximum |
//! | `invalid_claim` | 401 `invalid_token` | The access token lacks a required claim or has a malformed one |
//! | `invalid_scope_claim` | 401 `invalid_token` | The access token scope claim is malformed |
//! | `client_not_allowed` | 401 `invalid_token` | The access token was issued to a client this API does not accept |
//! | `issuer_not_allowed_here` | 401 `invalid_token` | The access token was issued by an issuer this resource does not accept |
//! | `sender_constrained` | 401 `invalid_token` | The access token is sender-constrained and cannot be used as a bearer token |
//! | `empty_claim` | 401 `invalid_token` | The access token has an empty sub, client_id or jti claim |
//! | `inactive_token` | 401 `invalid_token` | The access token is not active (introspection answered `active` other than `true`) |
//! | `refresh_token` | 401 `invalid_token` | A refresh token was presented; this API accepts access tokens only (introspection's `token_type`) |
//! | `insufficient_scope` | 403 `insufficient_scope` | The access token lacks a scope this route requires (body only) |
//! | `keys_unavailable` | 503, no challenge | The issuer's signing keys are unavailable; retry later (body only) |
//! | `introspection_unavailable` | 503, no challenge | The issuer's introspection endpoint is unavailable; retry later (body only) |
//! | `userinfo_refused` | 401 `invalid_token` | The issuer's userinfo endpoint refused the access token |
//! | `userinfo_subject_mismatch` | 401 `invalid_token` | The issuer's userinfo answer is about another subject than the access token |
//! | `userinfo_invalid` | 502, no challenge | The issuer's signed userinfo answer failed verification (body only) |
//! | `userinfo_unavailable` | 503, no challenge | The issuer's userinfo endpoint is unavailable; retry later (body only; `Retry-After`) |
//! | `not_dpop_bound` | 401 `invalid_token` | The access token is not bound to a DPoP key (sent with the `DPoP` scheme) |
//! | `dpop_proof_missing` | 401 `invalid_dpop_proof` | The request uses the DPoP scheme but carries no DPoP proof |
//! | `dpop_multiple_proofs` | 401 `invalid_dpop_proof` | The request carries more than one DPoP proof |
//! | `dpop_malformed_proof` | 401 `invalid_dpop_proof` | The DPoP proof is malformed |
//! | `dpop_wrong_type` | 401 `invalid_dpop_proof` | The DPoP proof is not typed dpop+jwt |
//! | `dpop_algorithm_not_allowed` | 401 `invalid_dpop_proof` | The DPoP proof is signed with an algorithm this API does not accept |
//! | `dpop_invalid_key` | 401 `invalid_dpop_proof` | The DPoP proof does not carry a usable public key |
//! | `dpop_private_key` | 401 `invalid_dpop_proof` | The DPoP proof carries private key material |
//! | `dpop_invalid_signature` | 401 `invalid_dpop_proof` | The DPoP proof signature is invalid |
//! | `dpop_htm_mismatch` | 401 `invalid_dpop_proof` | The DPoP proof is for another HTTP method |
//! | `dpop_htu_mismatch` | 401 `invalid_dpop_proof` | The DPoP proof is for another URL |
//! | `dpop_stale_proof` | 401 `invalid_dpop_proof` | The DPoP proof is not fresh |
//! | `dpop_missing_jti` | 401 `invalid_dpop_proof` | The DPoP proof has no usable jti |
//! | `dpop_ath_mismatch` | 401 `invalid_dpop_proof` | The DPoP proof is not for this access token |
//! | `dpop_key_mismatch` | 401 `invalid_dpop_proof` | The DPoP proof key is not the key the access token is bound to |
//! | `dpop_replayed` | 401 `invalid_dpop_proof` | The DPoP proof was already used |
//! | `dpop_replay_store_unavailable` | 503, no challenge | The DPoP replay store is unavailable; retry later (body only; `Retry-After`) |
//! | `dpop_nonce_missing` | 401 `use_dpop_nonce` | The DPoP proof has no nonce; retry with the one in the DPoP-Nonce header (with `DPoP-Nonce`) |
//! | `dpop_nonce_invalid` | 401 `use_dpop_nonce` | The DPoP proof nonce is not current; retry with the one in the DPoP-Nonce header (with `DPoP-Nonce`) |
//! | `userinfo_dpop_bound` | 401 `invalid_token` | The access token is DPoP-bound; this API cannot present it to the issuer's userinfo endpoint (only for `UserInfo`) |
//! | `misconfigured` | 500, no challenge | The API's token verifier is not configured (body only; the log event says what to configure) |
//!
//! ## Your own error body
//! An API with a JSON error envelope of its own renders scopegate's refusals with
//! [`AuthorityBuilder::on_rejection`]: the guards', [`AccessToken`]'s, [`UserInfo`]'s and
//! the layer's refusals all go through it. The hook chooses the body (and may add
//! headers); the status, the `WWW-Authenticate` challenge, `Retry-After` and
//! `Cache-Control: no-store` stay scopegate's, so clients still get the RFC 6750 answer.
//!
//! ```
//! use axum::{Json, Router, body::Body, http::{Request, StatusCode, header}, routing::get};
//! use scopegate::{Rejection, requires_scope};
//! use serde_json::{Value, json};
//! use tower::ServiceExt as _;
//!
//! /// The app's envelope for every error: `{"error": {"code", "message", "details"}}`.
//! fn envelope(rejection: &Rejection) -> Json<Value> {
//!     Json(json!({
//!         "error": {
//!             // With `error_descriptions(false)`, keep the reason code out of bodies.
//!             "code": if rejection.describes() { rejection.reason() } else { "unauthorized" },
//!             "message": rejection.description(),
//!             "details": { "required_scope": rejection.required_scope() },
//!         }
//!     }))
//! }
//!
//! #[requires_scope("write:appointments")]
//! async fn book() -> &'static str { "booked" }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let issuer = scopegate::testing::TestIssuer::new();
//! # let builder = issuer.authority_builder("https://api.example.test");
//! // let builder = Authority::builder().issuer(…).audience("https://api.example.test");
//! let authority = builder.on_rejection(envelope).build().unwrap();
//! let app = Router::new().route("/appointments", get(book)).with_state(authority);
//!
//! # let token = issuer.access_token().scope("read:appointments").sign();
//! let request = Request::get("/appointments").header(header::AUTHORIZATION, format!("Bearer {token}"));
//! let response = app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! assert_eq!(
//!     response.headers()[header::WWW_AUTHENTICATE],
//!     r#"Bearer realm="https://api.example.test", error="insufficient_scope", scope="write:appointments""#
//! );
//! let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
//! assert_eq!(
//!     serde_json::from_slice::<Value>(&body).unwrap(),
//!     json!({"error": {"code": "insufficient_scope",
//!                      "message": "The access token lacks a scope this route requires",
//!                      "details": {"required_scope": "write:appointments"}}})
//! );
//! # }
//! ```
//!
//! ## A token floor for a whole router
//! [`layer::RequireAccessToken`] requires a valid access token on every route it covers,
//! like Spring's `anyRequest().authenticated()`; a `#[requires_scope]` handler behind it
//! still checks its scopes and reuses the layer's verification (one signature check per
//! request). Public routes are named with [`except`](layer::RequireAccessToken::except),
//! compared with the route axum matched, never with the request path, so `..` or `%2F`
//! cannot reach another route without a token:
//!
//! ```
//! use axum::{Router, routing::get};
//! use scopegate::{Authority, layer::RequireAccessToken, requires_scope};
//!
//! #[requires_scope("admin")]
//! async fn admin() -> &'static str { "admin" }
//! async fn dashboard() -> &'static str { "any valid token" }
//! async fn health() -> &'static str { "ok" }
//!
//! fn app(authority: Authority) -> Result<Router, scopegate::ConfigError> {
//!     Ok(Router::new()
//!         .route("/admin", get(admin))
//!         .route("/dashboard", get(dashboard))
//!         .route("/health", get(health))
//!         // Last, so that it covers every route above; routes added after it are public.
//!         .route_layer(RequireAccessToken::new(authority.clone()).except(["/health"])?)
//!         .with_state(authority))
//! }
//! # let _ = app;
//! ```
//!
//! Its refusals are the extractors' (status, challenge with `resource_metadata`, body,
//! counters, the rejection hook). [`Router::layer`](axum::Router::layer) instead of
//! `route_layer` also covers the fallback, so an unknown path without a token gets 401.
//! [`RequireAccessToken::audience`](layer::RequireAccessToken::audience) makes it
//! require another audience than the authority's.
//!
//! ## Metrics
//! With the `metrics` feature, scopegate counts through the
//! [`metrics`](https://docs.rs/metrics) facade, for the exporter your application
//! installs (Prometheus, StatsD, OpenTelemetry, …). The names are stable (constants in
//! [`metrics`](mod@metrics)); they count the events of [`Authority::stats`] (and
//! userinfo calls), added up over every `Authority` of the process:
//!
//! | counter | labels | counts |
//! |---|---|---|
//! | `scopegate_tokens_accepted_total` | `issuer` | tokens that passed every check (verified-token cache hits and introspected tokens included) |
//! | `scopegate_tokens_rejected_total` | `reason`: a code of the reason table; `issuer` once the token reached an issuer's checks | refused requests |
//! | `scopegate_signatures_checked_total` | `issuer` | signature verifications performed |
//! | `scopegate_token_cache_hits_total` | `issuer` | tokens accepted from the verified-token cache |
//! | `scopegate_jwks_fetches_total` | `outcome`: `success`, `failure` | JWKS fetches finished (discovery included) |
//! | `scopegate_key_set_changes_total` | | fetches that changed the set of key ids (the first load counts) |
//! | `scopegate_introspection_requests_total` | | requests sent to the introspection endpoint |
//! | `scopegate_userinfo_requests_total` | | requests sent to the userinfo endpoint |
//!
//! `issuer` is the identifier of the trusted issuer whose keys and policy checked the
//! token, as configured ([`AuthorityBuilder::issuer`], or an
//! [`also_trust`](AuthorityBuilder::also_trust) builder's; for the Entra ID multi-tenant
//! preset, its `{tenantid}` template), never a string read from a token: its values are
//! the issuers you configured. A refusal carries it once the token reached an issuer: with
//! one issuer every token past the size cap does; with several, a token whose `iss` cannot
//! be read or is not trusted is refused before any issuer and has no `issuer` label. A
//! refusal of the guard after verification (`insufficient_scope`,
//! `issuer_not_allowed_here`), of `/userinfo` (`userinfo_dpop_bound` included) and of a
//! token sent with DPoP (its own checks, then the proof's: `not_dpop_bound`,
//! `dpop_replayed`, …) carries the issuer that verified the token; a request without a
//! token, or with the `DPoP` scheme but no proof, carries none.
//!
//! Every `Authority` build registers the counters' descriptions with the recorder
//! installed then: install it first. Without the feature nothing is recorded and the
//! `metrics` crate is not a dependency.
//!
//! ## Logging
//! scopegate logs through `tracing`, never a token or a header value:
//!
//! | level | target | event |
//! |---|---|---|
//! | ERROR | `scopegate` | the issuer publishes private key material in its JWKS; a request refused `misconfigured` (the verifier, the handler's options or the userinfo endpoint not configured: one event, saying what to configure) |
//! | WARN | `scopegate` | a JWKS fetch failed (the last good keys are kept), a JWK was not admitted, the compatible profile is on; a request refused because the keys, the introspection endpoint or the DPoP replay store (with its `error`) are unavailable (its one event) |
//! | INFO | `scopegate` | a key set was loaded or changed |
//! | DEBUG | `scopegate` | **one event per other refused request**: `reason` (the code of the table above) and `status`; for a refused token (`access token refused`, or `access token refused by introspection` when the introspection endpoint's answer refused it) what may be said of it too: its `kid` and, once its signature has verified, `iss` and `jti`, escaped and cut to 64 characters |
//!
//! Each refused request is one event, at one of these levels. At the usual `info` level
//! refusals of tokens are silent; `RUST_LOG=info,scopegate=debug` shows one line per
//! refusal (the example service's default).
//!
//! ## Configuration from the environment
//! [`Authority::from_env`] (or [`AuthorityBuilder::from_env`], to add settings before
//! building) reads the settings of most deployments. An error about a value read from a
//! variable names the variable ([`ConfigError::setting`]), also when it is the builder's
//! own check at `build` or `connect` (an `ISSUER` whose keys would come over plain http,
//! an unreachable one); a setting given again in code is named as the builder names it:
//!
//! | variable | required | meaning |
//! |---|---|---|
//! | `ISSUER` | yes | the exact `iss` of your tokens; keys are found through discovery. Several separated by commas (`https://a/,https://b/`): each with its own discovery and keys and the settings below, a token verified only with its own issuer's keys |
//! | `AUDIENCE` | yes | your API's identifier (`aud`); several separated by commas |
//! | `JWKS_URI` | no | the issuer's JWK set URL, to skip discovery (one issuer only) |
//! | `TOKEN_PROFILE` | no | `rfc9068` (default) or `compatible` |
//! | `SCOPE_CLAIMS` | no | the scope claims to read, in order: `scope`, `scp`, `permissions` (comma-separated) |
//! | `ALLOWED_CLIENTS` | no | the client ids whose tokens are accepted (comma-separated) |
//! | `ALGORITHMS` | no | the accepted signature algorithms, e.g. `RS256,ES256` (comma-separated) |
//! | `LEEWAY_SECS` | no | the clock-skew allowance in seconds (default 60, at most 300) |
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // ISSUER=https://your-tenant.example/ AUDIENCE=https://api.example.test
//! let authority = scopegate::Authority::from_env().await?;
//! # let _ = authority; Ok(()) }
//! ```
//!
//! ## HEAD, OPTIONS and CORS
//! axum answers `HEAD` with the `GET` handler, so a `HEAD` to a guarded route is guarded
//! exactly like the `GET` (401/403 with the same challenge, no body). A CORS preflight
//! (`OPTIONS` with `Access-Control-Request-Method`) is answered by a CORS layer such as
//! tower-http's `CorsLayer` before routing, so it never reaches the guard and needs no
//! token; the request that follows it is guarded as usual. Without such a layer an
//! `OPTIONS` request gets axum's 405 for routes without an `OPTIONS` handler.
//!
//! ## Key rotation and outages
//! With keys over HTTP (discovery from the issuer, or [`AuthorityBuilder::jwks_uri`]),
//! scopegate keeps a cache of the issuer's JWK set. Exactly what happens:
//! - **At startup**, [`AuthorityBuilder::connect`] runs discovery and the first JWKS fetch
//!   and fails if they fail. [`AuthorityBuilder::build`] starts without waiting: the
//!   first fetch runs in the background (retried after 1 s, 2 s, 4 s … up to the
//!   cooldown), and until it succeeds requests get **503** with `Retry-After`, never an
//!   accept.
//! - **A token with a known `kid`** is verified from an in-memory snapshot; it never waits
//!   for a fetch, even while the issuer hangs.
//! - **A token with an unknown `kid`** (the issuer rotated) triggers one refresh, shared by
//!   every concurrent request with that kid, and at most one per cooldown (default 30 s,
//!   1 s to 1 h, [`AuthorityBuilder::jwks_refresh_cooldown`]); if the kid is still unknown
//!   the token gets 401 `unknown_key`, and that kid is answered from a bounded negative
//!   cache until the cooldown passes. New keys are therefore accepted as soon as the
//!   issuer publishes them, at most one cooldown after the previous fetch (while the
//!   budget below lasts).
//! - **The fetch budget**: fetches triggered by requests (unknown kids, and requests that
//!   found no usable keys) also draw on a token bucket per issuer: a burst of 5, refilled
//!   at 60 an hour ([`AuthorityBuilder::jwks_fetch_budget`]), so over any `h` hours at
//!   most `burst + per_hour × h` of them run, however many tokens with invented kids
//!   arrive. When it is spent, such tokens get 401 `unknown_key` at once, without a fetch.
//!   The scheduled fetches (the first load and its retries, the refresh before expiry)
//!   never draw on it.
//! - **The longest a new key goes unseen under a flood**: every fetch loads the whole
//!   set, so a key is seen by the first fetch that starts after the issuer publishes it.
//!   The scheduled refresh starts at 80 % of the TTL of the last fetched set, counted
//!   from the end of the last successful fetch, whatever the flood did to the budget. A
//!   fetch that began just before the key was published can end up to one request
//!   timeout after it and restart that schedule, and the scheduled fetch itself takes up
//!   to one more. So while the issuer answers, a newly published key is accepted at most
//!   **0.8 × TTL + 2 × the total request timeout** after it is published (TTL of the last
//!   fetched set; the timeout is 10 s by default): 48 min 20 s for an issuer that sends no
//!   `Cache-Control`, and at most 19 h 12 min 20 s with the default bounds (0.8 × 24 h,
//!   for an issuer that asks for a day or more). While tokens with unknown kids keep
//!   arriving (the flood itself, or tokens signed with the new key), a spent budget still
//!   allows one fetch every `max(cooldown, 3600 s / per_hour)`, one a minute by default,
//!   which picks the key up sooner.
//! - **Freshness**: each fetched set lives for its `Cache-Control: max-age`, clamped to
//!   [5 min, 24 h] (1 h when absent, 5 min for `no-store`/`no-cache`, the upper bound
//!   for a value too large to represent; [`AuthorityBuilder::jwks_ttl_bounds`], the
//!   upper bound at most 7 days); a background task refetches at 80 % of that after the
//!   last successful fetch.
//! - **A removed key** stops working at the next successful fetch: the new set replaces
//!   the old one whole, with no grace period.
//! - **Outages**: a failed fetch (timeout — connect 5 s, total 10 s —, HTTP error, a body
//!   over 256 KiB, HTML, JSON without usable keys) keeps the last good set and is logged
//!   and counted; retries back off from the cooldown up to 5 min. The last good set is
//!   used for up to 24 h past its expiry ([`AuthorityBuilder::jwks_max_stale`], at most
//!   7 days); after that requests get **503** with `Retry-After` until a fetch succeeds. A
//!   fetch whose task panics or is cancelled (its runtime shut down) counts as a failed
//!   fetch: it never blocks the next one.
//! - **Safety**: only https URLs. Plain http is allowed for development only to a
//!   loopback host named in the configuration (the issuer or `jwks_uri`); a `jwks_uri`
//!   discovered from an https issuer must be https. At most one redirect, to https on
//!   the same host and port. No address outside the public internet unless
//!   [`AuthorityBuilder::allow_private_networks`]: every range of the IANA IPv4 and IPv6
//!   special-purpose registries that is not globally reachable (private, shared, link
//!   local and cloud metadata, benchmarking, documentation, reserved, `192.0.0.0/24`,
//!   `2001::/23`, unique local, …), multicast, and the translation prefixes that carry an
//!   IPv4 address (NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, IPv4-compatible `::/96`;
//!   an IPv4-mapped address is judged by its IPv4 address), checked on URL literals and on
//!   every DNS answer; loopback is allowed. Nothing from a token (`jku`, `x5u`, `kid`) ever
//!   reaches a URL.
//!
//! ## Issuers and presets
//! A preset is a builder with the issuer URL form, token profile, scope claims and client
//! claim an issuer's access tokens need; every setting can still be changed on it.
//!
//! | preset | issuer (`iss`) | profile | scopes from | client from | refuses besides the defaults |
//! |---|---|---|---|---|---|
//! | [`Authority::auth0`] | `https://{domain}/` (tenant or custom domain) | compatible (`JWT` default profile, `at+jwt` RFC 9068 profile) | `scope`; RBAC: `.scope_claims([ScopeClaim::Permissions])` | `client_id`, `azp` | ID tokens (`aud` = the client, `nonce`) |
//! | [`Authority::okta`] | `https://{domain}/oauth2/default` or `…/oauth2/{id}` | compatible (untyped) | `scp` (array) | `cid` | another authorization server's tokens |
//! | [`Authority::okta_org`] | `https://{domain}` | compatible | `scp` | `cid` | custom servers' tokens |
//! | [`Authority::entra`] | `https://login.microsoftonline.com/{tid}/v2.0` | compatible (`JWT`) | `scp` (delegated), then `roles` (app-only) | `azp` | v1.0 tokens (other `iss`) |
//! | [`Authority::entra_v1`] | `https://sts.windows.net/{tid}/` | compatible | `scp`, then `roles` | `appid` | v2.0 tokens; a token naming no client |
//! | [`Authority::entra_multi_tenant`] | `https://login.microsoftonline.com/{tenantid}/v2.0`, keys of `common` | compatible | `scp`, then `roles` | `azp` | a tenant not in the allowlist; a `tid` other than `iss`'s tenant |
//! | [`Authority::keycloak`] | `{base_url}/realms/{realm}` | compatible (`JWT`) | `scope`; roles: `ScopeClaim::RealmRoles` or `ClientRoles` | `azp` | `typ` claim `ID` (ID token), `Refresh`, `Logout` |
//! | [`Authority::cognito`] | `https://cognito-idp.{region}.amazonaws.com/{pool}` | compatible (untyped) | `scope` | `client_id`, checked against the allowlist (no `aud` in Cognito's access tokens) | `token_use: id` (ID token), any `token_use` but `access`, an `aud` |
//!
//! The `*_at` forms ([`Authority::entra_at`], [`Authority::entra_v1_at`],
//! [`Authority::entra_multi_tenant_at`], [`Authority::cognito_at`]) take another host (a
//! national cloud, or a test's loopback server); `auth0` and `okta` take the domain, with
//! `http://` kept for loopback.
//!
//! **Several issuers** (a customer tenant and a workforce one, a migration): one
//! `Authority` trusts them all with [`AuthorityBuilder::also_trust`], each configured by
//! its own builder (keys, audience, profile, scope claims, allowed clients). A token is
//! routed by its `iss`, read before any key work, to exactly that issuer's keys and policy;
//! a key of one issuer never verifies another's token; an `iss` no issuer trusts is
//! refused `invalid_issuer` without a key lookup or a fetch. [`AccessToken::issuer`] says
//! which issuer a token came from; [`Authority::issuer`] is the first, and
//! [`Authority::issuers`] lists all (RFC 9728's `authorization_servers`). Each issuer
//! keeps its own key and verified-token caches; results kept in a request are bound to
//! the `Authority` as a whole. A builder's `also_trust` keeps the one-issuer form exactly
//! as it was: an authority with one issuer reads nothing before the signature check.
//!
//! ## The verified-token cache
//! A token seen before is accepted without a second signature check
//! ([`AuthorityBuilder::token_cache_capacity`], on by default with 10 000 entries;
//! `0` turns it off). It is safe because an entry is found by a keyed hash and then
//! compared with the whole token string, so a different token never hits another's
//! entry; only tokens that passed every check are stored (failures never are); a hit
//! needs `now < exp` (no leeway), an entry younger than
//! [`AuthorityBuilder::token_cache_max_age`] (default 5 min) and the same key-set
//! generation (every successful JWKS fetch starts a new one, so a rotation or a removed
//! key empties it); the audience is re-checked on every hit; and the cache is bounded in
//! entries and in bytes ([`AuthorityBuilder::token_cache_max_bytes`], default 32 MiB).
//!
//! ## Opaque tokens
//! An issuer that hands out opaque access tokens (not JWTs) is asked about each of them
//! through RFC 7662 introspection: [`AuthorityBuilder::introspection`] with the API's own
//! client id and secret at the issuer, and the endpoint from the issuer's discovery
//! document (`introspection_endpoint`, read only from a document whose `issuer` matches
//! byte for byte) or [`AuthorityBuilder::introspection_endpoint`]. The same
//! `#[requires_scope]` line and [`AccessToken`] serve both kinds;
//! [`AccessToken::verified_by`] says which way a token was verified.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let authority = scopegate::Authority::builder()
//!     .issuer("https://issuer.example.test/")
//!     .audience("https://api.example.test")
//!     .introspection("api-introspector", "its-secret") // client_secret_basic by default
//!     .connect()
//!     .await?;
//! # let _ = authority; Ok(()) }
//! ```
//!
//! - **Which path**: a compact JWS (three dot-separated segments) is verified locally as
//!   always; every other token is introspected. Without introspection such a token is
//!   refused `malformed_token`. [`AuthorityBuilder::introspect_jwts`] sends JWTs to the
//!   endpoint too, *instead of* verifying them locally, for APIs that must see a
//!   revocation at once (a signature stays valid until `exp`; only the issuer knows of a
//!   revocation).
//! - **Client authentication**: [`ClientAuth::ClientSecretBasic`] (HTTP Basic with the
//!   form-urlencoded id and secret, RFC 6749 §2.3.1) or [`ClientAuth::ClientSecretPost`]
//!   ([`AuthorityBuilder::introspection_client_auth`]), or `private_key_jwt` (RFC 7523
//!   §2.2, OpenID Connect Core §9) with the API's own private key instead of a secret
//!   ([`AuthorityBuilder::introspection_private_key_pem`] or
//!   [`…_jwk`](AuthorityBuilder::introspection_private_key_jwk): RSA for RS256, P-256 for
//!   ES256, read at build): each request carries a fresh assertion (`iss` = `sub` = the
//!   client id, `aud` = the issuer identifier, a random `jti`, `iat`, `exp` a minute
//!   later, the key's `kid`). The requests obey the same URL policy, timeouts and body
//!   cap as key fetches.
//! - **Signed answers** (RFC 9701): [`AuthorityBuilder::introspection_jwt_response`] asks
//!   for a JWT answer signed with the issuer's keys and accepts nothing else (its `typ`,
//!   `iss`, `aud` = the API's client id and `iat` are checked, then the answer inside).
//! - **The answer is checked as strictly as a JWT**: one strict JSON object; `active`
//!   the boolean `true` (otherwise `inactive_token`); `iss`, when present, the issuer;
//!   `aud` containing the audience, and an answer without `aud` refused unless
//!   [`AuthorityBuilder::introspection_accepts_missing_audience`] (an issuer serving
//!   several APIs says `active` for a token minted for any of them: only `aud` tells this
//!   API's tokens apart); `exp` required, `exp`/`nbf`/`iat` with the same leeway and
//!   maximum lifetime; `token_type` not `refresh_token` (`refresh_token`); `scope` the
//!   space-delimited string. `sub`, `client_id`, `jti` are read like a JWT's claims, and
//!   every member (`username` included) is in [`AccessToken::raw_claims`]. An answer
//!   without `sub` (a client-credentials token at many providers) has its `client_id` as
//!   [`AccessToken::subject`], so [`AccessToken::is_client_token`] is true; one without
//!   either is refused `invalid_claim`. Without `iss`, [`AccessToken::issuer`] is the
//!   configured issuer; without `iat`, [`AccessToken::issued_at`] is the time of the
//!   answer.
//! - **The cache**: positive answers are reused for
//!   [`AuthorityBuilder::introspection_cache_ttl`] (default 60 s, at most 1 h, never past
//!   `exp`: a revoked token keeps working for at most this long), negative ones (inactive
//!   or refused) for [`AuthorityBuilder::introspection_negative_cache_ttl`] (default
//!   10 s). Entries are found by a keyed hash of the token and compared with the whole
//!   token; the cache is bounded in entries and bytes
//!   ([`AuthorityBuilder::introspection_cache_size`], default 10 000 and 16 MiB). The
//!   audience is checked per request, on hits too.
//! - **Single flight**: concurrent requests with the same unknown token share one call;
//!   the others wait for its answer (a waiter whose leader was cancelled calls itself).
//! - **The endpoint failing** (down, a timeout, a 5xx, a 4xx — the API's own credentials
//!   refused, logged as a configuration error —, a body over the cap, anything but a
//!   JSON object) gives **503** with `Retry-After` (`introspection_unavailable`), never an
//!   accept and never a 500; failures are not cached.
//!
//! ## The user's profile: /userinfo
//! The same access token the API verified may be sent to the issuer's OpenID Connect
//! `/userinfo`, which answers with the user's profile. Take [`UserInfo`] in a handler
//! (or call [`Authority::userinfo`]) to get that answer; exactly what happens:
//! - **After the token.** The token is verified first, exactly as for [`AccessToken`]
//!   (a verification already made for the request is reused); a refused token never
//!   reaches `/userinfo`.
//! - **On demand only.** The endpoint is called only for requests whose handler asks for
//!   `UserInfo`, with the presented token (`Authorization: Bearer …`, `Accept:
//!   application/json, application/jwt`).
//! - **Where.** [`AuthorityBuilder::userinfo_endpoint`], or the `userinfo_endpoint` of
//!   the issuer's discovery document when keys are discovered; the same URL policy, the
//!   same timeouts and body cap as key fetches. With neither, `UserInfo` answers 500
//!   `misconfigured` (and logs why).
//! - **Checked.** The answer's `sub` must equal the token's (OpenID Connect Core §5.3.2),
//!   otherwise 401 `userinfo_subject_mismatch`. `application/json` is read with the
//!   strict JSON reader (an object, no duplicate members). `application/jwt` must verify
//!   with the authority's keys and algorithms (the same key source as tokens), be typed
//!   `JWT` or untyped, and its `iss` must be the issuer and its `aud` contain the token's
//!   `client_id` when they are present; otherwise 502 `userinfo_invalid`: the issuer (or
//!   something in between) sent an answer that cannot be trusted, which a retry does not
//!   fix and which is not the client's fault.
//! - **Refused.** An endpoint answering 401 or 403 (typically: the token's audience does
//!   not include the userinfo endpoint, or it lacks the `openid` scope) gives 401
//!   `userinfo_refused`, `error="invalid_token"`: this token cannot fetch the profile.
//! - **Unavailable.** The endpoint down, slower than the total timeout, answering another
//!   status, another media type, something that is not a JSON object, or a body over the
//!   cap (256 KiB by default): 503 `userinfo_unavailable` with `Retry-After: 5`, never an
//!   accept and never a 500.
//! - **Cached.** A successful answer is reused for the same token (the whole token string
//!   is the key) until the token's `exp` or [`AuthorityBuilder::userinfo_cache_ttl`]
//!   (default 60 s), whichever comes first; at most
//!   [`AuthorityBuilder::userinfo_cache_capacity`] answers (default 1 000; `0` turns the
//!   cache off) and [`AuthorityBuilder::userinfo_cache_max_bytes`] (default 4 MiB).
//!   Failures are not cached.
//! - **Single flight.** Concurrent requests with the same token share one call and its
//!   outcome: 100 at once make one request to the issuer.
//!
//! ## DPoP: tokens bound to the client's key
//! A leaked bearer token works for whoever holds it; a DPoP-bound token (RFC 9449, `cnf.jkt`)
//! works only with a fresh proof signed by the client's key. Turn it on per authority:
//!
//! ```
//! # use std::sync::Arc;
//! use scopegate::{Authority, dpop::{DpopPolicy, MemoryReplayStore}};
//! # fn run(jwks: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let authority = Authority::builder()
//!     .issuer("https://issuer.example.test/")
//!     .audience("https://api.example.test")       // also the base of each proof's `htu`…
//!     .public_url("https://gateway.example.test") // …unless the API is reached at another URL
//!     .dpop(DpopPolicy::Allowed)                   // bearer tokens too; `Required`: DPoP only
//!     .dpop_replay_store(Arc::new(MemoryReplayStore::default())) // or RedisReplayStore (`redis`)
//!     .static_jwks(jwks)
//!     .build()?;
//! # let _ = authority; Ok(()) }
//! # run(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#).unwrap();
//! ```
//!
//! A request then sends `Authorization: DPoP <token>` and one `DPoP: <proof>` header; the
//! extractors check the token as usual, then the proof (see [`dpop`] for the rules, in
//! order) and its `jti` against the [`dpop::ReplayStore`]. Behind several replicas, share
//! one store: [`dpop::RedisReplayStore`] (feature `redis`) writes each proof with Redis's
//! atomic `SET NX PX`, so a proof replayed on another replica is refused. A bound token sent
//! as `Bearer` is `invalid_token` (`sender_constrained`), with or without DPoP on.
//!
//! Challenges offer both schemes (RFC 9449 §7.1), the error on the one the request used:
//!
//! ```text
//! WWW-Authenticate: Bearer realm="https://api.example.test", DPoP realm="https://api.example.test", error="invalid_dpop_proof", error_description="The DPoP proof was already used", algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519"
//! ```
//!
//! One handler can refuse bearer tokens while the others accept them:
//! `#[requires_scope("payments:write", dpop = "required")]` answers a bearer token with
//! 401 and the `DPoP` challenge alone, as `DpopPolicy::Required` does for every handler.
//!
//! Server-provided nonces (RFC 9449 §9) are optional:
//! `.dpop_nonce(DpopNonce::shared_secret(secret))` (one secret for every replica) or
//! `DpopNonce::random()`. A proof must then carry a recent `nonce`; one without is refused
//! with `error="use_dpop_nonce"` and the nonce to use in the `DPoP-Nonce` header, which
//! every 401 carries (see [`dpop::DpopNonce`]).
//!
//! [`UserInfo`] refuses a DPoP-bound token (401 `invalid_token`, `userinfo_dpop_bound`)
//! without calling the issuer: `/userinfo` would need a proof signed with the client's
//! key, which the API does not hold.
//!
//! Clients learn the policy from the RFC 9728 metadata:
//! [`ProtectedResource::dpop_from`](policy::ProtectedResource::dpop_from) lists the proof
//! algorithms (`dpop_signing_alg_values_supported`) and, under `DpopPolicy::Required`,
//! `dpop_bound_access_tokens_required: true`. In the OpenAPI document a
//! `dpop = "required"` operation's 401 says that bearer tokens are refused there.
//!
//! ## Feature flags
//! | feature | default | what it adds |
//! |---|---|---|
//! | `redis` | no | [`dpop::RedisReplayStore`]: the DPoP replay store shared by every replica of an API, in Redis (the `redis` crate with tokio). |
//! | `testing` | no | [`testing::TestIssuer`], an in-memory issuer for tests, and [`testing::TestClock`] with [`AuthorityBuilder::clock`]. Never enable it in production. |
//! | `metrics` | no | counters through the `metrics` facade (see "Metrics"); adds the `metrics` crate |
//! | `openapi` | no | `scopegate::openapi`: `Policy::openapi` and `OpenApiSecurity`, with utoipa 6 (its document model and, because utoipa does not build without them, its derive macros). |
//!
//! ## Crypto backend
//! Signatures are verified with `aws-lc-rs` (the backend of jsonwebtoken's `aws_lc_rs`
//! feature), with each key parsed once when its key set is loaded. A self-test runs
//! when the first `Authority` is built.
//!
//! The minimum supported Rust version is 1.88.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod access_token;
mod algorithm;
mod authority;
mod b64;
mod cache;
mod claims;
mod client_assertion;
mod clock;
mod config;
mod credentials;
mod discovery;
pub mod dpop;
mod env;
mod extract;
mod http;
mod introspection;
mod json;
mod jwks;
mod jws;
mod keys;
pub mod layer;
pub mod metrics;
#[cfg(test)]
mod network_input_tests;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod policy;
mod rejection;
mod resource;
pub mod routing;
mod scope;
mod source;
mod userinfo;
mod userinfo_client;
mod verify;

#[cfg(feature = "testing")]
pub mod testing;

pub use access_token::AccessToken;
pub use algorithm::Algorithm;
pub use authority::{Authority, AuthorityBuilder, Stats};
pub use cache::{DEFAULT_TOKEN_CACHE_CAPACITY, DEFAULT_TOKEN_CACHE_MAX_AGE, DEFAULT_TOKEN_CACHE_MAX_BYTES};
pub use claims::Verification;
pub use config::{
    ConfigError, DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME, DEFAULT_MAX_TOKEN_SIZE, MAX_LEEWAY, MAX_TOKEN_SIZE_LIMIT,
    Profile, ScopeClaim,
};
pub use env::issuer_list;
pub use extract::AuthorityState;
pub use http::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_DOCUMENT_SIZE, DEFAULT_TOTAL_TIMEOUT, FetchError};
pub use introspection::{
    ClientAuth, DEFAULT_INTROSPECTION_CACHE_CAPACITY, DEFAULT_INTROSPECTION_CACHE_MAX_BYTES,
    DEFAULT_INTROSPECTION_CACHE_TTL, DEFAULT_INTROSPECTION_NEGATIVE_TTL, MAX_INTROSPECTION_CACHE_TTL,
};
pub use jwks::{
    DEFAULT_FETCH_BUDGET_BURST, DEFAULT_FETCH_BUDGET_PER_HOUR, DEFAULT_MAX_STALE, DEFAULT_MAX_TTL, DEFAULT_MIN_TTL,
    DEFAULT_REFRESH_COOLDOWN, DEFAULT_TTL, MAX_FETCH_BUDGET_BURST, MAX_FETCH_BUDGET_PER_HOUR, MAX_JWKS_DURATION,
    MAX_REFRESH_COOLDOWN,
};
pub use keys::{KeyRejection, KeySetError};
pub use rejection::{DpopError, Rejection, RejectionKind, RequestError, TokenError};
pub use scope::{ScopeExpr, Scopes};
pub use userinfo::UserInfo;
pub use userinfo_client::{
    DEFAULT_USERINFO_CACHE_CAPACITY, DEFAULT_USERINFO_CACHE_MAX_BYTES, DEFAULT_USERINFO_CACHE_TTL,
    MAX_USERINFO_CACHE_TTL, USERINFO_RETRY_AFTER_SECS,
};

/// Requires an OAuth 2.0 access token with the given scopes before an axum handler runs.
///
/// ```text
/// #[requires_scope(EXPR [, aud = "audience"] [, iss = "issuer"] [, introspect] [, dpop = "required"] [, crate = "path"])]
///
/// EXPR := "scope" | "scope", "scope", …      every listed scope is required
///       | any(EXPR, …) | all(EXPR, …)        one of / every one of; they nest
/// ```
///
/// The attribute adds a hidden first argument to the handler: a guard extractor that reads
/// the bearer token, verifies it with the router state's [`Authority`], and checks the
/// audience and the scopes. Because it is the first argument it runs before every other
/// extractor, so an unauthorized request is answered before anything else is extracted
/// and before its body is read:
///
/// | request | response |
/// |---|---|
/// | no token | `401`, `WWW-Authenticate: Bearer realm="…"` |
/// | malformed `Authorization` header | `400`, `Bearer realm="…", error="invalid_request", …` |
/// | token invalid, expired, or for another audience | `401`, `Bearer realm="…", error="invalid_token", …` |
/// | valid token without the required scopes | `403`, `Bearer realm="…", error="insufficient_scope", scope="…"` |
/// | the issuer's keys are unavailable | `503`, `Retry-After` |
///
/// The `scope` attribute of the 403 challenge names a set of scopes that satisfies the
/// requirement when granted, in the order written, each once: every scope of an `all(…)`
/// (and of the top-level list), and the *first* alternative of an `any(…)`. RFC 6750 reads
/// that attribute as "all of these", so a client that asks for exactly them gets a token
/// that passes; put the alternative clients should ask for first. The JSON body carries
/// the whole requirement as `requirement` (for example
/// `any("admin", all("write:appointments", "delete:appointments"))`) and the challenge's
/// set as `scope`.
///
/// The token is verified once per request and authority: a handler that also takes
/// [`AccessToken`] gets the token the guard verified. The guard itself reuses only a
/// verification of its own `Authority` for its own audience; one made by a middleware
/// with another authority, or for another audience, is not trusted (see [`AccessToken`]).
///
/// # Scopes
///
/// Each scope is a string literal obeying RFC 6749 §3.3: one or more printable ASCII
/// characters (`!` to `~`) other than `"` and `\`. Scopes compare byte for byte. Listing
/// several requires all of them:
///
/// ```
/// use scopegate::{requires_scope, AccessToken};
///
/// #[requires_scope("read:appointments")]
/// async fn list(token: AccessToken) -> String {
///     # let _ = token;
///     "one scope".to_owned()
/// }
///
/// #[requires_scope("read:appointments", "read:patients")]
/// async fn list_with_patients() -> &'static str {
///     "both scopes"
/// }
/// # let _ = (list, list_with_patients);
/// ```
///
/// `any(…)` accepts a token with at least one of its members, `all(…)` one with every
/// member; they nest:
///
/// ```
/// use axum::{extract::Path, http::StatusCode};
/// use scopegate::requires_scope;
///
/// #[requires_scope(any("admin", all("write:appointments", "delete:appointments")))]
/// async fn remove(Path(id): Path<u32>) -> StatusCode {
///     # let _ = id;
///     StatusCode::NO_CONTENT
/// }
/// # let _ = remove;
/// ```
///
/// # `aud = "…"`
///
/// The audience the token must be issued for (its `aud` claim must contain it), instead
/// of the audience the [`Authority`] was built with. It is a non-empty string without
/// whitespace:
///
/// ```
/// use scopegate::requires_scope;
///
/// #[requires_scope("reports:read", aud = "https://reports.example.test")]
/// async fn reports() -> &'static str {
///     "for the reports API only"
/// }
/// # let _ = reports;
/// ```
///
/// # `iss = "…"`
///
/// The issuer the token must come from, for an [`Authority`] that trusts several
/// ([`AuthorityBuilder::also_trust`]): a token of another trusted issuer is refused with
/// `401`, `error="invalid_token"` and the reason `issuer_not_allowed_here`. The value is an
/// absolute `https` (or, for a loopback development issuer, `http`) URL with a host and no
/// query or fragment, compared byte for byte with the token's `iss`:
///
/// ```
/// use scopegate::requires_scope;
///
/// #[requires_scope("staff:read", iss = "https://login.microsoftonline.com/7d1a9b62-0d54-4a4c-9b1e-3f5c2a8e6b10/v2.0")]
/// async fn staff_directory() -> &'static str {
///     "for the workforce tenant's tokens only"
/// }
/// # let _ = staff_directory;
/// ```
///
/// # `introspect`
///
/// Sends this handler's tokens to the issuer's RFC 7662 introspection endpoint, JWTs
/// too, instead of verifying JWTs locally: for a route that must see a revocation at once
/// (within the introspection cache's TTL) rather than at the token's `exp`. The other
/// handlers keep verifying JWTs locally. It is what [`AuthorityBuilder::introspect_jwts`]
/// does for every handler. A verification of the same request that did not come from the
/// endpoint (a middleware's `AccessToken`) is not reused by this guard.
///
/// The `Authority` must have introspection configured ([`.introspection(client_id,
/// client_secret)`](AuthorityBuilder::introspection)); under one without, the handler answers `500` with the reason
/// `misconfigured` (and logs why) for every request, never an accept.
///
/// ```
/// use scopegate::requires_scope;
///
/// #[requires_scope("payments:write", introspect)]
/// async fn pay() -> &'static str {
///     "paid: the issuer said the token is active"
/// }
/// # let _ = pay;
/// ```
///
/// `introspect` is a flag: `introspect = true` is a compile error, and so is a misspelling
/// (`introspekt`), with a suggestion.
///
/// # `dpop = "…"`
///
/// `dpop = "required"` makes this handler accept only DPoP-bound tokens (RFC 9449), sent
/// as `Authorization: DPoP <token>` with their `DPoP` proof, whatever the [`Authority`]'s
/// own policy: a bearer token is answered like a request without credentials, `401` with
/// the `DPoP` challenge alone (RFC 9449 §7.1), `WWW-Authenticate: DPoP realm="…",
/// algs="…"` (reason `missing_credentials`), and every other refusal of the handler offers
/// only that challenge too. For a route whose tokens must not work when stolen, next to
/// routes that still take bearer tokens. `dpop = "allowed"` is the default, the
/// authority's policy; behind an authority built with [`DpopPolicy::Required`] the option
/// changes nothing. The route table ([`Policy`]) shows it as written.
///
/// The `Authority` must have DPoP on ([`.dpop(DpopPolicy::Allowed)`](AuthorityBuilder::dpop)); under one without,
/// the handler answers `500` with the reason `misconfigured` (and logs why) for every
/// request, never an accept.
///
/// ```
/// use scopegate::requires_scope;
///
/// #[requires_scope("payments:write", dpop = "required")]
/// async fn pay() -> &'static str {
///     "paid with a sender-constrained token"
/// }
/// # let _ = pay;
/// ```
///
/// Any other value, a bare `dpop` and a second `dpop = …` are compile errors.
///
/// # `crate = "…"`
///
/// The path to the `scopegate` crate, for when it is renamed or re-exported (the default
/// is `::scopegate`):
///
/// ```
/// extern crate scopegate as gate;
///
/// #[gate::requires_scope("read:appointments", crate = "gate")]
/// async fn list() -> &'static str {
///     "scopegate under another name"
/// }
/// # fn main() { let _ = list; }
/// ```
///
/// # Router state
///
/// The guard takes the [`Authority`] from the router state through axum's `FromRef`: use
/// the `Authority` as the state, or implement `FromRef<YourState> for Authority`:
///
/// ```
/// use axum::{extract::FromRef, routing::get, Router};
/// use scopegate::{requires_scope, Authority};
///
/// #[derive(Clone)]
/// struct AppState {
///     authority: Authority,
/// }
///
/// impl FromRef<AppState> for Authority {
///     fn from_ref(state: &AppState) -> Self {
///         state.authority.clone()
///     }
/// }
///
/// #[requires_scope("read:appointments")]
/// async fn list() -> &'static str {
///     "[]"
/// }
///
/// fn app(state: AppState) -> Router {
///     Router::new().route("/appointments", get(list)).with_state(state)
/// }
/// # let _ = app;
/// ```
///
/// A state that cannot supply the `Authority` is a compile error. Routed with
/// [`scopegate::routing::get`](crate::routing::get) (and `post`, …) it is reported at the `.route(…)` call with
/// scopegate's message, "the router state `AppState` does not provide a
/// `scopegate::Authority`", which names the `FromRef` impl to write (axum's own "not a
/// `Handler`" may come next to it). With axum's own `get`, axum reports only "the trait bound
/// `fn(…) {list}: Handler<_, _>` is not satisfied" (as it does for any extractor the
/// state cannot serve); adding `#[axum::debug_handler(state = AppState)]` *below*
/// `#[requires_scope]` (axum's `macros` feature) turns it into scopegate's message.
///
/// With `#[axum::debug_handler]`, put it *below* `#[requires_scope]` and name the router's
/// state (`#[axum::debug_handler(state = AppState)]`): without `state = …` it infers the
/// state from a `State<T>` argument, which for a substate (`State<Store>`) is not the
/// state that holds the `Authority` (and is `()` without such an argument), and the error
/// says so. Above `#[requires_scope]` it would check the handler before the guard is
/// added: the attribute sees `debug_handler` on the lines above it and refuses with
/// "put it below".
///
/// # Compile-time checks
///
/// Mistakes in the declaration are compile errors at the offending token: a scope that is
/// empty or contains a space, a tab, `"`, `\`, a control or a non-ASCII character; no
/// scope at all; an empty `any()` or `all()`; a scope named twice; an option given twice
/// or unknown (with a suggestion, e.g. `audience` → `aud`); an empty or blank `aud`, or
/// one containing whitespace; an `iss` that is not an absolute http(s) URL with a host; a
/// `dpop` other than `"required"` or `"allowed"`; a handler that is not `async`, that takes `self`, or that
/// takes more than 15 arguments (axum handlers take at most 16 and the guard is one).
///
/// ```compile_fail
/// use scopegate::requires_scope;
///
/// // error: scope `"read appointments"` contains a space, but a scope is a single token
/// // (…); to require several scopes, list each as its own literal: `"read", "appointments"`
/// #[requires_scope("read appointments")]
/// async fn list() -> &'static str {
///     "[]"
/// }
/// # fn main() {}
/// ```
///
/// On an error the handler is still emitted, unchanged, next to the error, so the rest of
/// the crate keeps type-checking and IDE completion keeps working.
///
/// # Limitations
///
/// - The attribute goes on a free `async fn`, not on a fn inside an `impl` block: it emits
///   a requirement type next to the handler, and types cannot be declared in an `impl`.
///   An associated fn is not detected and fails to compile with rustc's own error.
/// - Scopes, `aud` and `iss` are string literals; constants and macros are not accepted.
/// - The attribute declares a hidden type `__scopegate_requirement_<handler>` (the
///   requirement) in the handler's module, with the handler's visibility and `#[cfg]`s.
///
/// [`Policy`]: crate::policy::Policy
/// [`DpopPolicy::Required`]: crate::dpop::DpopPolicy::Required
#[doc(inline)]
pub use scopegate_macros::requires_scope;

/// The README's Rust snippets, compiled (and, unless marked `no_run`, run) as doctests so
/// that what a newcomer copies keeps compiling.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// Items the `#[requires_scope]` expansion uses. Not public API: no stability guarantee.
#[doc(hidden)]
pub mod __private {
    pub use crate::{
        extract::{Guard, Requirement},
        policy::Declaration,
        scope::{Challenge, ScopeExpr, challenge_room, challenge_str},
    };
    pub use inventory;
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_reason_code_is_in_the_crate_docs_table_with_its_own_status_error_and_description() {
        use std::sync::Arc;

        use crate::rejection::{ChallengeConfig, LogDetail, Rejection};
        let docs = include_str!("lib.rs");
        let header = "//! | `reason` | status and `error` | `error_description` |";
        let rows: Vec<&str> =
            docs.lines().skip_while(|l| *l != header).skip(2).take_while(|l| l.starts_with("//! | ")).collect();
        let kinds = crate::rejection::tests::every_kind();
        assert_eq!(rows.len(), kinds.len(), "the reason table has one row per code");
        let challenge = Arc::new(ChallengeConfig {
            realm: "api".into(),
            describe: true,
            resource_metadata: None,
            hook: None,
            dpop: None,
        });
        for kind in kinds {
            let code = kind.code();
            let row = rows.iter().find(|r| r.starts_with(&format!("//! | `{code}` |")));
            let Some(row) = row else { panic!("`{code}` is missing from the reason table") };
            let cells: Vec<&str> = row.trim_start_matches("//! | ").trim_end_matches(" |").split(" | ").collect();
            let [_, status, description] = cells[..] else { panic!("`{code}`'s row has three cells: {row}") };
            let rejection = Rejection::new(kind, Arc::clone(&challenge), &LogDetail::Nothing);
            // The status, then the challenge's `error`; a refusal without a challenge says so.
            let www_authenticate = rejection.challenge();
            let number = rejection.status().as_u16();
            let expected = match (&www_authenticate, rejection.error()) {
                (None, _) => format!("{number}, no challenge"),
                (Some(_), None) => format!("{number}, no `error`"),
                (Some(value), Some(error)) => {
                    assert!(value.contains(&format!("error=\"{error}\"")), "`{code}`: {value}");
                    format!("{number} `{error}`")
                }
            };
            assert_eq!(status, expected, "`{code}`'s status and error");
            // The description exactly (`<` and `>` escaped), then at most a note in
            // parentheses, which begins "body only" exactly when the challenge carries no
            // `error_description`.
            let own = rejection.kind().description().replace('<', "&lt;").replace('>', "&gt;");
            let Some(note) = description.strip_prefix(own.as_str()) else {
                panic!("`{code}`: the table says {description:?}, the code {own:?}")
            };
            let note = note.trim_start();
            assert!(note.is_empty() || (note.starts_with('(') && note.ends_with(')')), "`{code}`: {note:?}");
            let described = www_authenticate.is_some_and(|value| value.contains("error_description="));
            assert_eq!(note.starts_with("(body only"), !described, "`{code}`'s note: {note:?}");
        }
    }

    #[test]
    fn every_metric_is_in_the_crate_docs_table() {
        use crate::metrics::*;
        let docs = include_str!("lib.rs");
        let names = [
            TOKENS_ACCEPTED,
            TOKENS_REJECTED,
            SIGNATURES_CHECKED,
            TOKEN_CACHE_HITS,
            JWKS_FETCHES,
            KEY_SET_CHANGES,
            INTROSPECTION_REQUESTS,
            USERINFO_REQUESTS,
        ];
        for name in names {
            assert!(docs.contains(&format!("//! | `{name}` |")), "`{name}` is missing from the metrics table");
        }
        let rows = docs.lines().filter(|l| l.starts_with("//! | `scopegate_")).count();
        assert_eq!(rows, names.len(), "the metrics table names a counter scopegate::metrics does not");
    }
}
