//! OpenAPI from the attributes (feature `openapi`): the `security` of every operation,
//! generated from its handler's `#[requires_scope]`, through [`utoipa`].
//!
//! [`Policy::openapi`] writes the route table into a [`utoipa::openapi::OpenApi`]
//! document: the document an application already has (from utoipa's derives, with its
//! schemas and descriptions) or a new one. For each route it adds the operation if the
//! document lacks it, and sets the operation's security:
//!
//! | requirement | `security` of the operation |
//! |---|---|
//! | `"a", "b"` or `all("a", "b")` | `[{"oauth2": ["a", "b"]}]`: one requirement with every scope |
//! | `any("admin", all("a", "b"))` | `[{"oauth2": ["admin"]}, {"oauth2": ["a", "b"]}]`: alternatives |
//! | a handler taking `AccessToken` | `[{"oauth2": []}]`: any valid token |
//! | `public(…)` | `[]`: none |
//!
//! Nested requirements are put in disjunctive normal form: each alternative is a set of
//! scopes that satisfies the requirement when granted together, and a token satisfies
//! it exactly when it holds every scope of at least one alternative. Protected operations
//! get documented `401` and (with scopes) `403` responses, and the document's components
//! get the security scheme ([`OpenApiSecurity`]). A route left unprotected is written
//! without `security`. The user writes no scope twice.
//!
//! ```
//! use axum::http::Method;
//! use scopegate::{openapi::OpenApiSecurity, policy::Policy, requires_scope};
//! use utoipa::openapi::{Info, OpenApi, Paths};
//!
//! #[requires_scope(any("admin", all("write:appointments", "delete:appointments")))]
//! async fn remove() {}
//!
//! let policy = Policy::new("https://api.example.test").route(Method::DELETE, "/appointments/{id}", remove);
//! let document = policy.openapi(
//!     OpenApi::new(Info::new("Appointments API", "1.0.0"), Paths::new()),
//!     &OpenApiSecurity::openid_connect("https://issuer.example.test/"),
//! );
//! let json: serde_json::Value = serde_json::from_str(&document.to_json()?)?;
//! assert_eq!(json["openapi"], "3.1.0");
//! assert_eq!(
//!     json["paths"]["/appointments/{id}"]["delete"]["security"],
//!     serde_json::json!([{"oauth2": ["admin"]}, {"oauth2": ["write:appointments", "delete:appointments"]}])
//! );
//! assert_eq!(
//!     json["components"]["securitySchemes"]["oauth2"]["openIdConnectUrl"],
//!     "https://issuer.example.test/.well-known/openid-configuration"
//! );
//! # Ok::<(), serde_json::Error>(())
//! ```

use axum::http::Method;
/// The utoipa this module builds on, for naming its types without a dependency of your own.
pub use utoipa;
use utoipa::openapi::{
    Components, OpenApi, PathItem, Required,
    path::{Operation, Parameter, ParameterIn},
    response::Response,
    schema::{Object, Type},
    security::{
        AuthorizationCode, ClientCredentials, Flow, Http, HttpAuthScheme, OAuth2, OpenIdConnect, Scopes,
        SecurityRequirement, SecurityScheme,
    },
};

use crate::{
    policy::{Policy, Requirement, Route},
    scope::ScopeExpr,
};

/// The name the security scheme is registered under unless [`OpenApiSecurity::name`]
/// says otherwise.
pub const DEFAULT_SCHEME_NAME: &str = "oauth2";

/// The security scheme of the document: how a client gets a token for this API.
#[derive(Debug, Clone)]
#[must_use]
pub struct OpenApiSecurity {
    name: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    OpenIdConnect { issuer: String },
    OAuth2 { authorization_url: String, token_url: String },
    Bearer,
}

impl OpenApiSecurity {
    /// An `openIdConnect` scheme pointing at the issuer's discovery document
    /// (`{issuer}/.well-known/openid-configuration`, the document scopegate itself
    /// discovers), which names the authorization and token endpoints.
    pub fn openid_connect(issuer: impl Into<String>) -> Self {
        Self { name: DEFAULT_SCHEME_NAME.to_owned(), kind: Kind::OpenIdConnect { issuer: issuer.into() } }
    }

    /// An `oauth2` scheme with the issuer's authorization and token endpoints: the
    /// authorization-code and client-credentials flows, each listing every scope of the
    /// route table.
    pub fn oauth2(authorization_url: impl Into<String>, token_url: impl Into<String>) -> Self {
        Self {
            name: DEFAULT_SCHEME_NAME.to_owned(),
            kind: Kind::OAuth2 { authorization_url: authorization_url.into(), token_url: token_url.into() },
        }
    }

    /// An `http` `bearer` scheme (`bearerFormat: JWT`), for an issuer the document does
    /// not name. The requirements still list the scopes (OpenAPI 3.1 allows them for any
    /// scheme).
    pub fn bearer() -> Self {
        Self { name: DEFAULT_SCHEME_NAME.to_owned(), kind: Kind::Bearer }
    }

    /// The name of the scheme in `components.securitySchemes` and in every requirement
    /// (default [`DEFAULT_SCHEME_NAME`]).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn scheme(&self, scopes: &[&'static str]) -> SecurityScheme {
        const DESCRIPTION: &str = "An OAuth 2.0 access token for this API, sent as `Authorization: Bearer …`";
        match &self.kind {
            Kind::OpenIdConnect { issuer } => SecurityScheme::OpenIdConnect(OpenIdConnect::with_description(
                format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
                DESCRIPTION.to_owned(),
            )),
            Kind::OAuth2 { authorization_url, token_url } => {
                let scopes = || scopes.iter().map(|scope| (*scope, *scope)).collect::<Scopes>();
                SecurityScheme::OAuth2(OAuth2::with_description(
                    [
                        Flow::AuthorizationCode(AuthorizationCode::new(authorization_url, token_url, scopes())),
                        Flow::ClientCredentials(ClientCredentials::new(token_url.as_str(), scopes())),
                    ],
                    DESCRIPTION,
                ))
            }
            Kind::Bearer => SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(DESCRIPTION))
                    .build(),
            ),
        }
    }
}

impl Policy {
    /// Writes the route table into `document`: each route's operation (added when the
    /// document lacks it, with its path parameters and a `default` response), its
    /// `security` from the handler's attribute, `401`/`403` responses for protected
    /// operations, and the security scheme in the components. What the document already
    /// says about an operation (summary, schemas, its own responses) is kept; its
    /// `security` is replaced by the attribute's.
    pub fn openapi(&self, mut document: OpenApi, security: &OpenApiSecurity) -> OpenApi {
        for route in self.routes() {
            let path = openapi_path(route.path());
            let item = document.paths.paths.entry(path.clone()).or_default();
            let Some(slot) = operation_slot(item, route.method()) else { continue };
            let operation = slot.get_or_insert_with(|| new_operation(route, &path));
            apply_security(operation, route, &security.name);
        }
        document
            .components
            .get_or_insert_with(Components::new)
            .add_security_scheme(security.name.clone(), security.scheme(&self.scopes()));
        document
    }
}

/// axum's path syntax to OpenAPI's: `{id}` stays, a wildcard `{*rest}` becomes `{rest}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The names of a path's `{parameters}`.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name)).collect()
}

/// The operation field of `item` for `method`; `None` for a method OpenAPI 3.1 has no
/// field for (it is left out of the document).
fn operation_slot<'a>(item: &'a mut PathItem, method: &Method) -> Option<&'a mut Option<Operation>> {
    Some(match *method {
        Method::GET => &mut item.get,
        Method::POST => &mut item.post,
        Method::PUT => &mut item.put,
        Method::DELETE => &mut item.delete,
        Method::PATCH => &mut item.patch,
        Method::HEAD => &mut item.head,
        Method::OPTIONS => &mut item.options,
        Method::TRACE => &mut item.trace,
        _ => return None,
    })
}

/// An operation for a route the document did not describe.
fn new_operation(route: &Route, path: &str) -> Operation {
    let name = route.handler().rsplit("::").next().unwrap_or(route.handler());
    let mut operation = Operation::new();
    operation.operation_id = Some(name.to_owned());
    for parameter in path_parameters(path) {
        let mut parameter = Parameter::new(parameter);
        parameter.parameter_in = ParameterIn::Path;
        parameter.required = Required::True;
        parameter.schema = Some(Object::with_type(Type::String).into());
        operation.parameters.get_or_insert_with(Vec::new).push(parameter.into());
    }
    operation.responses.responses.insert("default".to_owned(), Response::new("The handler's answer").into());
    operation
}

/// Sets the operation's `security` and the responses a protected operation can give.
fn apply_security(operation: &mut Operation, route: &Route, scheme: &str) {
    let responses = &mut operation.responses.responses;
    let mut respond = |status: &str, description: &str| {
        responses.entry(status.to_owned()).or_insert_with(|| Response::new(description).into());
    };
    let unauthorized = if route.dpop_required() {
        "No DPoP-bound access token with a valid DPoP proof (RFC 9449: `Authorization: DPoP …` and a `DPoP` header; bearer tokens are refused), or one that is invalid, expired or for another API"
    } else {
        "No access token, or one that is invalid, expired or for another API"
    };
    match route.requirement() {
        Requirement::Scopes(expr) => {
            respond("401", unauthorized);
            respond("403", "The access token lacks the scopes this operation requires");
            operation.security =
                Some(alternatives(expr).into_iter().map(|scopes| SecurityRequirement::new(scheme, scopes)).collect());
        }
        Requirement::AnyToken => {
            respond("401", unauthorized);
            operation.security = Some(vec![SecurityRequirement::new(scheme, Vec::<String>::new())]);
        }
        Requirement::Public => operation.security = Some(Vec::new()),
        Requirement::Unprotected => operation.security = None,
    }
}

/// The disjunctive normal form of a requirement: the sets of scopes each of which
/// satisfies it when granted, in declaration order, each set duplicate-free, no set
/// listed twice. `all` multiplies the alternatives of its members, `any` concatenates
/// them; an empty `any` has none.
fn alternatives(expr: ScopeExpr) -> Vec<Vec<&'static str>> {
    match expr {
        ScopeExpr::Scope(scope) => vec![vec![scope]],
        ScopeExpr::Any(members) => {
            let mut out: Vec<Vec<&'static str>> = Vec::new();
            for member in members {
                for alternative in alternatives(*member) {
                    push_unique(&mut out, alternative);
                }
            }
            out
        }
        ScopeExpr::All(members) => {
            let mut out: Vec<Vec<&'static str>> = vec![Vec::new()];
            for member in members {
                let choices = alternatives(*member);
                let mut next = Vec::new();
                for prefix in &out {
                    for choice in &choices {
                        let mut combined = prefix.clone();
                        for scope in choice {
                            if !combined.contains(scope) {
                                combined.push(scope);
                            }
                        }
                        push_unique(&mut next, combined);
                    }
                }
                out = next;
            }
            out
        }
    }
}

fn push_unique(out: &mut Vec<Vec<&'static str>>, alternative: Vec<&'static str>) {
    let mut sorted = alternative.clone();
    sorted.sort_unstable();
    let seen = out.iter().any(|existing| {
        let mut existing = existing.clone();
        existing.sort_unstable();
        existing == sorted
    });
    if !seen {
        out.push(alternative);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ScopeExpr = ScopeExpr::Scope("a");
    const B: ScopeExpr = ScopeExpr::Scope("b");
    const C: ScopeExpr = ScopeExpr::Scope("c");

    #[test]
    fn all_is_one_alternative_and_any_is_several() {
        assert_eq!(alternatives(ScopeExpr::All(&[A, B])), [vec!["a", "b"]]);
        assert_eq!(alternatives(ScopeExpr::Any(&[A, B])), [vec!["a"], vec!["b"]]);
        assert_eq!(alternatives(ScopeExpr::Any(&[])), Vec::<Vec<&str>>::new());
        assert_eq!(alternatives(ScopeExpr::All(&[])), [Vec::<&str>::new()]);
    }

    #[test]
    fn nested_requirements_are_put_in_disjunctive_normal_form() {
        // any("admin", all("a", "b"))
        const DELETE: ScopeExpr = ScopeExpr::Any(&[ScopeExpr::Scope("admin"), ScopeExpr::All(&[A, B])]);
        assert_eq!(alternatives(DELETE), [vec!["admin"], vec!["a", "b"]]);
        // all(any("a", "b"), any("a", "c")) = a | a c | b a | b c, and `a` alone covers `a c`
        // only as a superset, which is kept: each alternative is exact.
        const CROSS: ScopeExpr = ScopeExpr::All(&[ScopeExpr::Any(&[A, B]), ScopeExpr::Any(&[A, C])]);
        assert_eq!(alternatives(CROSS), [vec!["a"], vec!["a", "c"], vec!["b", "a"], vec!["b", "c"]]);
        // A set reached twice is listed once.
        assert_eq!(alternatives(ScopeExpr::Any(&[ScopeExpr::All(&[A, B]), ScopeExpr::All(&[B, A])])), [vec!["a", "b"]]);
    }

    #[test]
    fn axum_paths_become_openapi_paths_with_their_parameters() {
        assert_eq!(openapi_path("/files/{*rest}"), "/files/{rest}");
        assert_eq!(path_parameters("/a/{id}/b/{other}"), ["id", "other"]);
        assert!(path_parameters("/health").is_empty());
    }
}
