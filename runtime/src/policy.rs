//! Policy as data: the requirements the `#[requires_scope]` attributes declare, the route
//! table an application builds from them, and the RFC 9728 protected resource metadata.
//!
//! Every `#[requires_scope]` handler registers a [`Declaration`] (its path, scope
//! expression, audience and source location) in a link-time inventory, so the program
//! knows every guarded handler without a list kept by hand ([`declarations`]). The
//! application names its routes once more, next to its router, in a [`Policy`]: each
//! binding is looked up by the handler itself, so the table shows what the attribute
//! says, and a route that is neither guarded nor marked is reported by
//! [`Policy::unprotected`].
//!
//! ```
//! use axum::{Router, http::Method, routing::get};
//! use scopegate::{AccessToken, Authority, policy::Policy, requires_scope};
//!
//! #[requires_scope("read:appointments")]
//! async fn list() -> &'static str { "[]" }
//! async fn me(token: AccessToken) -> String { token.subject().to_owned() }
//! async fn health() -> &'static str { "ok" }
//!
//! fn policy() -> Policy {
//!     Policy::new("https://api.example.test")
//!         .route(Method::GET, "/appointments", list)
//!         .authenticated(Method::GET, "/me", me)
//!         .public(Method::GET, "/health", health)
//! }
//!
//! fn app(authority: Authority) -> Router {
//!     Router::new()
//!         .route("/appointments", get(list))
//!         .route("/me", get(me))
//!         .route("/health", get(health))
//!         .with_state(authority)
//! }
//! # let _ = app;
//!
//! let policy = policy();
//! assert!(policy.unprotected().is_empty());
//! assert_eq!(policy.scopes(), ["read:appointments"]);
//! println!("{policy}");
//! ```

use std::fmt;

use axum::{
    Router,
    http::{Method, header},
    routing::get,
};
use serde_json::{Map, Value};

use crate::{Authority, algorithm::Algorithm, dpop::DpopPolicy, scope::ScopeExpr};

use crate::resource::split_resource;
pub use crate::resource::{WELL_KNOWN_PATH, metadata_url};

/// One `#[requires_scope]` handler, as the attribute declared it.
///
/// The attribute registers one for every handler it guards; [`declarations`] lists them.
#[derive(Debug, Clone, Copy)]
pub struct Declaration {
    #[doc(hidden)]
    pub handler: &'static str,
    #[doc(hidden)]
    pub name: &'static str,
    #[doc(hidden)]
    pub scopes: ScopeExpr,
    #[doc(hidden)]
    pub audience: Option<&'static str>,
    #[doc(hidden)]
    pub dpop_required: bool,
    #[doc(hidden)]
    pub file: &'static str,
    #[doc(hidden)]
    pub line: u32,
    #[doc(hidden)]
    pub issuer: Option<&'static str>,
    #[doc(hidden)]
    pub introspect: bool,
    /// The type name of the requirement type the attribute declares beside the handler.
    #[doc(hidden)]
    pub requirement_type: fn() -> &'static str,
}

inventory::collect!(Declaration);

impl Declaration {
    /// The handler's path, `module::path::fn` (from `module_path!()` and the fn's name).
    #[must_use]
    pub fn handler(&self) -> &'static str {
        self.handler
    }

    /// The scope requirement.
    #[must_use]
    pub fn scopes(&self) -> ScopeExpr {
        self.scopes
    }

    /// The audience named with `aud = "…"`, or `None` for the authority's.
    #[must_use]
    pub fn audience(&self) -> Option<&'static str> {
        self.audience
    }

    /// Whether the handler accepts only DPoP-bound tokens with their proof
    /// (`dpop = "required"`), whatever the authority's DPoP policy.
    #[must_use]
    pub fn dpop_required(&self) -> bool {
        self.dpop_required
    }

    /// The source file of the attribute.
    #[must_use]
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// The line of the attribute.
    #[must_use]
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The issuer named with `iss = "…"`, or `None` for any issuer the authority trusts.
    #[must_use]
    pub fn issuer(&self) -> Option<&'static str> {
        self.issuer
    }

    /// Whether the handler has `introspect`: its tokens, JWTs too, go to the issuer's
    /// introspection endpoint.
    #[must_use]
    pub fn introspects(&self) -> bool {
        self.introspect
    }

    /// Whether `path` (a fn item's type name) is this declaration's handler: the scope of
    /// the requirement type, then the handler's name.
    fn is_handler(&self, path: &str) -> bool {
        (self.requirement_type)().rsplit_once("::").is_some_and(|(scope, _)| {
            path.strip_prefix(scope).and_then(|rest| rest.strip_prefix("::")) == Some(self.name)
        })
    }
}

/// Every `#[requires_scope]` handler linked into the program, in no particular order.
pub fn declarations() -> impl Iterator<Item = &'static Declaration> {
    inventory::iter::<Declaration>.into_iter()
}

/// The declaration of `handler` (a handler fn item), if it is guarded by `#[requires_scope]`.
///
/// A fn item's type names its path (`crate::module::fn`, and `crate::module::outer::fn`
/// for one declared inside the function `outer`). The attribute declares its requirement
/// type in the same scope as the handler, so that type's path is the handler's but for
/// its last segment: the handler is found by its exact path, wherever it is declared. A
/// generic handler (`list::<T>`) has its arguments in its path and is not found: it is
/// listed as unprotected.
pub fn declaration_of<H>(handler: &H) -> Option<&'static Declaration> {
    let path = std::any::type_name_of_val(handler);
    declarations().find(|d| d.is_handler(path))
}

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requirement {
    /// A `#[requires_scope]` handler: a valid token with these scopes.
    Scopes(ScopeExpr),
    /// Any valid access token (the handler takes `AccessToken`).
    AnyToken,
    /// Open on purpose.
    Public,
    /// Neither guarded nor marked: open by accident, or marked wrongly.
    Unprotected,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scopes(ScopeExpr::All([only])) => write!(f, "{only}"),
            Self::Scopes(expr) => write!(f, "{expr}"),
            Self::AnyToken => f.write_str("any valid access token"),
            Self::Public => f.write_str("public"),
            Self::Unprotected => f.write_str("UNPROTECTED"),
        }
    }
}

/// One route of the table.
#[derive(Debug, Clone)]
pub struct Route {
    method: Method,
    path: String,
    handler: &'static str,
    requirement: Requirement,
    audience: Option<String>,
    issuer: Option<&'static str>,
    introspect: bool,
    dpop_required: bool,
}

impl Route {
    /// The HTTP method.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path, as given to the router.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The handler's path (`module::fn`).
    #[must_use]
    pub fn handler(&self) -> &'static str {
        self.handler
    }

    /// What the route requires.
    #[must_use]
    pub fn requirement(&self) -> Requirement {
        self.requirement
    }

    /// The audience a token must carry (`None` for a public or unprotected route).
    #[must_use]
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The issuer a token must come from (the handler's `iss = "…"`), or `None` for any
    /// issuer the authority trusts.
    #[must_use]
    pub fn issuer(&self) -> Option<&'static str> {
        self.issuer
    }

    /// Whether the route's tokens, JWTs too, are introspected (the handler's `introspect`).
    #[must_use]
    pub fn introspects(&self) -> bool {
        self.introspect
    }

    /// The table's REQUIREMENT cell: the requirement, then the handler's `iss = "…"`,
    /// `introspect` and `dpop = "required"` as the attribute writes them.
    fn requirement_cell(&self) -> String {
        let mut cell = self.requirement.to_string();
        if let Some(issuer) = self.issuer {
            cell.push_str(&format!(", iss = \"{issuer}\""));
        }
        if self.introspect {
            cell.push_str(", introspect");
        }
        if self.dpop_required {
            cell.push_str(", dpop = \"required\"");
        }
        cell
    }

    /// Whether the route's handler accepts only DPoP (`dpop = "required"`); the table
    /// shows it as the attribute writes it.
    #[must_use]
    pub fn dpop_required(&self) -> bool {
        self.dpop_required
    }
}

/// The route table: each route's method, path, requirement and audience.
///
/// Built from the bindings the application declares next to its router; a guarded
/// route's requirement is read from its handler's `#[requires_scope]` declaration, never
/// written twice. `Display` prints an aligned table.
#[derive(Debug, Clone)]
#[must_use]
pub struct Policy {
    audience: String,
    routes: Vec<Route>,
}

impl Policy {
    /// An empty table for an API whose default audience is `audience` (the `aud` of the
    /// authority; a handler's `aud = "…"` overrides it).
    pub fn new(audience: impl Into<String>) -> Self {
        Self { audience: audience.into(), routes: Vec::new() }
    }

    fn push(mut self, method: Method, path: &str, handler: &'static str, requirement: Requirement) -> Self {
        let audience = match requirement {
            Requirement::Public | Requirement::Unprotected => None,
            Requirement::Scopes(_) | Requirement::AnyToken => Some(self.audience.clone()),
        };
        let route = Route {
            method,
            path: path.to_owned(),
            handler,
            requirement,
            audience,
            issuer: None,
            introspect: false,
            dpop_required: false,
        };
        self.routes.push(route);
        self
    }

    /// A route served by `handler`: guarded when `handler` has `#[requires_scope]`,
    /// otherwise listed as unprotected.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "handlers are passed by value as to axum's `get(handler)`; a fn item is zero-sized"
    )]
    pub fn route<H>(self, method: Method, path: &str, handler: H) -> Self {
        let name = std::any::type_name_of_val(&handler);
        match declaration_of(&handler) {
            Some(declaration) => {
                let audience = declaration.audience.map(str::to_owned);
                let mut policy = self.push(method, path, name, Requirement::Scopes(declaration.scopes));
                if let Some(route) = policy.routes.last_mut() {
                    if let Some(audience) = audience {
                        route.audience = Some(audience);
                    }
                    (route.issuer, route.introspect) = (declaration.issuer, declaration.introspect);
                    route.dpop_required = declaration.dpop_required;
                }
                policy
            }
            None => self.push(method, path, name, Requirement::Unprotected),
        }
    }

    /// A route whose handler takes `AccessToken` or `UserInfo` first (any valid access
    /// token); a handler that takes neither does not compile here
    /// ([`TakesToken`](crate::routing::TakesToken)). A handler with `#[requires_scope]` is
    /// listed with its scopes instead.
    pub fn authenticated<H, M>(self, method: Method, path: &str, handler: H) -> Self
    where
        H: crate::routing::TakesToken<M>,
    {
        if declaration_of(&handler).is_some() {
            return self.route(method, path, handler);
        }
        self.push(method, path, std::any::type_name_of_val(&handler), Requirement::AnyToken)
    }

    /// A route that is open on purpose. A handler with `#[requires_scope]` is listed
    /// with its scopes instead: the table says what the handler does, not what it was
    /// called.
    pub fn public<H>(self, method: Method, path: &str, handler: H) -> Self {
        if declaration_of(&handler).is_some() {
            return self.route(method, path, handler);
        }
        self.push(method, path, std::any::type_name_of_val(&handler), Requirement::Public)
    }

    /// Every route, in the order declared.
    #[must_use]
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The routes that are neither guarded nor marked public or authenticated.
    #[must_use]
    pub fn unprotected(&self) -> Vec<&Route> {
        self.routes.iter().filter(|r| r.requirement == Requirement::Unprotected).collect()
    }

    /// Every scope the guarded routes name, in route order, each once (the
    /// `scopes_supported` of the metadata).
    #[must_use]
    pub fn scopes(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for route in &self.routes {
            if let Requirement::Scopes(expr) = route.requirement {
                for scope in expr.scopes() {
                    if !out.contains(&scope) {
                        out.push(scope);
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = ["METHOD", "PATH", "REQUIREMENT", "AUDIENCE", "HANDLER"];
        let rows: Vec<[String; 5]> = self
            .routes
            .iter()
            .map(|r| {
                [
                    r.method.to_string(),
                    r.path.clone(),
                    r.requirement_cell(),
                    r.audience.clone().unwrap_or_else(|| "-".to_owned()),
                    r.handler.to_owned(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let mut line = |cells: [&str; 5]| -> fmt::Result {
            let mut text = String::new();
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    text.push_str(&format!("{cell:<width$}  "));
                }
            }
            writeln!(f, "{}", text.trim_end())
        };
        line(header)?;
        for row in &rows {
            line([&row[0], &row[1], &row[2], &row[3], &row[4]])?;
        }
        Ok(())
    }
}

/// The RFC 9728 protected resource metadata document, and the router that serves it.
///
/// ```
/// use axum::Router;
/// use scopegate::policy::{Policy, ProtectedResource};
///
/// let policy = Policy::new("https://api.example.test");
/// let metadata = ProtectedResource::new("https://api.example.test", ["https://issuer.example.test/"])
///     .scopes(policy.scopes())
///     .resource_name("Appointments API");
/// let app: Router = Router::new().merge(metadata.router());
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResource {
    resource: String,
    authorization_servers: Vec<String>,
    scopes: Vec<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    dpop_algorithms: Vec<Algorithm>,
    dpop_required: bool,
}

impl ProtectedResource {
    /// The metadata of `resource` (the API's identifier: its audience), whose tokens the
    /// `authorization_servers` issue (their issuer identifiers).
    pub fn new<I, T>(resource: impl Into<String>, authorization_servers: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Self {
            resource: resource.into(),
            authorization_servers: authorization_servers.into_iter().map(Into::into).collect(),
            scopes: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            dpop_algorithms: Vec::new(),
            dpop_required: false,
        }
    }

    /// `scopes_supported` (usually [`Policy::scopes`]).
    pub fn scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// `resource_name`: a human-readable name of the API.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// `resource_documentation`: a URL of the API's documentation for developers.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// `dpop_signing_alg_values_supported` (RFC 9728 §2): the algorithms a DPoP proof
    /// (RFC 9449) may be signed with. Listed when not empty.
    pub fn dpop_signing_alg_values_supported(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.dpop_algorithms = algorithms.into_iter().collect();
        self
    }

    /// `dpop_bound_access_tokens_required` (RFC 9728 §2): whether the API refuses every
    /// token that is not DPoP-bound. Listed when `true` (`false` is the RFC's default).
    pub fn dpop_bound_access_tokens_required(mut self, required: bool) -> Self {
        self.dpop_required = required;
        self
    }

    /// Both DPoP members as `authority` applies DPoP: its proof algorithms
    /// ([`Authority::dpop_algorithms`]), and `dpop_bound_access_tokens_required` when its
    /// policy is [`DpopPolicy::Required`]. Nothing is listed when DPoP is off. A handler
    /// with `dpop = "required"` under an [`DpopPolicy::Allowed`] authority does not make
    /// the member `true`: the API as a whole still takes bearer tokens.
    ///
    /// ```
    /// use scopegate::{Algorithm, dpop::DpopPolicy, policy::ProtectedResource, testing::TestIssuer};
    ///
    /// let authority = TestIssuer::new()
    ///     .authority_builder("https://api.example.test/")
    ///     .dpop(DpopPolicy::Required)
    ///     .dpop_algorithms([Algorithm::ES256, Algorithm::EdDSA])
    ///     .build()?;
    /// let metadata = ProtectedResource::new("https://api.example.test/", authority.issuers()).dpop_from(&authority);
    /// let document = metadata.document();
    /// assert_eq!(document["dpop_signing_alg_values_supported"], serde_json::json!(["ES256", "EdDSA"]));
    /// assert_eq!(document["dpop_bound_access_tokens_required"], true);
    /// # Ok::<(), scopegate::ConfigError>(())
    /// ```
    pub fn dpop_from(self, authority: &Authority) -> Self {
        let required = authority.dpop_policy() == Some(DpopPolicy::Required);
        self.dpop_signing_alg_values_supported(authority.dpop_algorithms().iter().copied())
            .dpop_bound_access_tokens_required(required)
    }

    /// The JSON document.
    #[must_use]
    pub fn document(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("resource".into(), self.resource.clone().into());
        doc.insert("authorization_servers".into(), self.authorization_servers.clone().into());
        if !self.scopes.is_empty() {
            doc.insert("scopes_supported".into(), self.scopes.clone().into());
        }
        doc.insert("bearer_methods_supported".into(), vec!["header"].into());
        if let Some(name) = &self.resource_name {
            doc.insert("resource_name".into(), name.clone().into());
        }
        if let Some(url) = &self.resource_documentation {
            doc.insert("resource_documentation".into(), url.clone().into());
        }
        if !self.dpop_algorithms.is_empty() {
            let names = self.dpop_algorithms.iter().map(|alg| alg.as_str()).collect::<Vec<_>>();
            doc.insert("dpop_signing_alg_values_supported".into(), names.into());
        }
        if self.dpop_required {
            doc.insert("dpop_bound_access_tokens_required".into(), true.into());
        }
        Value::Object(doc)
    }

    /// A router serving the document at `/.well-known/oauth-protected-resource`, and also
    /// at the path-suffixed form when the resource identifier has a path (RFC 9728 §3.1).
    /// Merge it into the application's router; it needs no token.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let body = self.document().to_string();
        let handler = move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        };
        let mut router = Router::new().route(WELL_KNOWN_PATH, get(handler.clone()));
        if let Some((_, path)) = split_resource(&self.resource)
            && path.starts_with('/')
            && !path.contains('?')
        {
            router = router.route(&format!("{WELL_KNOWN_PATH}{path}"), get(handler));
        }
        router
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path_between_host_and_path() {
        assert_eq!(
            metadata_url("https://api.example.test/").as_deref(),
            Some("https://api.example.test/.well-known/oauth-protected-resource")
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:3000/v1?x=1").as_deref(),
            Some("http://127.0.0.1:3000/.well-known/oauth-protected-resource/v1?x=1")
        );
        assert_eq!(metadata_url("https:///path"), None);
        assert_eq!(metadata_url("https://a.test/#frag"), None);
        assert_eq!(metadata_url("urn:api"), None);
    }

    #[test]
    fn the_document_has_the_rfc_9728_members() {
        let doc = ProtectedResource::new("https://api.example.test", ["https://issuer.example.test/"])
            .scopes(["a", "b"])
            .resource_name("API")
            .resource_documentation("https://docs.example.test")
            .document();
        assert_eq!(
            doc.to_string(),
            r#"{"authorization_servers":["https://issuer.example.test/"],"bearer_methods_supported":["header"],"resource":"https://api.example.test","resource_documentation":"https://docs.example.test","resource_name":"API","scopes_supported":["a","b"]}"#
        );
    }

    #[test]
    fn the_dpop_members_are_listed_only_when_set() {
        let plain = ProtectedResource::new("https://api.example.test", ["https://issuer.example.test/"]);
        let with_dpop = plain
            .clone()
            .dpop_signing_alg_values_supported([Algorithm::ES256, Algorithm::Ed25519])
            .dpop_bound_access_tokens_required(true);
        assert_eq!(
            with_dpop.document().to_string(),
            r#"{"authorization_servers":["https://issuer.example.test/"],"bearer_methods_supported":["header"],"dpop_bound_access_tokens_required":true,"dpop_signing_alg_values_supported":["ES256","Ed25519"],"resource":"https://api.example.test"}"#
        );
        let not_required =
            plain.dpop_signing_alg_values_supported([Algorithm::ES256]).dpop_bound_access_tokens_required(false);
        assert_eq!(
            not_required.document().to_string(),
            r#"{"authorization_servers":["https://issuer.example.test/"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["ES256"],"resource":"https://api.example.test"}"#
        );
    }
}
