//! [`RequireAccessToken`]: a tower [`Layer`] that requires a valid access token on every
//! route of a router (a floor, like Spring's `anyRequest().authenticated()`), which the
//! handlers' `#[requires_scope]` guards refine, with public routes named explicitly.
//!
//! It sits above the extractors: it verifies through the same code as [`AccessToken`]
//! and keeps its result in the request exactly as a guard does, so a guard of the same
//! [`Authority`] and audience check reuses it (one signature check per request).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    extract::MatchedPath,
    http::{Request, request::Parts},
    response::{IntoResponse, Response},
};
use tower::{Layer, Service};

use crate::{
    authority::Authority,
    config::{ConfigError, check_audience},
    extract::required_token,
};

#[cfg(doc)]
use crate::AccessToken;

/// A tower [`Layer`] that refuses every request without a valid access token for the
/// API, except on the routes named with [`except`](Self::except).
///
/// Add it to a router with [`Router::route_layer`](axum::Router::route_layer) (or
/// [`Router::layer`](axum::Router::layer), which also covers the fallback: a request for
/// an unknown path without a token then gets 401, not 404). Like every axum layer it
/// covers the routes added **before** it; routes added after it are not covered (put the
/// layer last, and name public routes with `except`, so that a route forgotten is a
/// protected one).
///
/// - **Refinement.** A `#[requires_scope]` handler behind the layer still checks its
///   scopes; it reuses the layer's verification when both check the same audience (the
///   layer without [`audience`](Self::audience) and a guard without `aud = "…"`, or both
///   naming the same one), and an [`AccessToken`] argument always reuses it. Give the
///   layer the same [`Authority`] as the router state (a clone of it): a result of
///   another authority is never reused.
/// - **The same refusals** as the extractors: the same status, `WWW-Authenticate`
///   challenge (with `resource_metadata` when the metadata is on), body, counters and
///   logs, and the authority's [`on_rejection`](crate::AuthorityBuilder::on_rejection)
///   hook. The layer knows no route's scopes, so its 401s carry no `scope` (as
///   `AccessToken`'s); a guard's 403 names them.
/// - **Exceptions** are route paths exactly as written in `.route(path, …)` (with the
///   prefix of an enclosing `nest`), compared with the route axum matched
///   ([`MatchedPath`]), never with the request's path: a request is excepted only when
///   the router dispatches it to an excepted route, so `/health/../admin`,
///   `/health%2F..%2Fadmin` or `/health/` never reach another route without a token. A
///   request that matches no route (the fallback) is never excepted. Used outside a
///   router (no `MatchedPath`), the layer excepts nothing.
///
/// ```
/// use axum::{Router, routing::get};
/// use scopegate::{AccessToken, Authority, layer::RequireAccessToken, requires_scope};
///
/// #[requires_scope("admin")]
/// async fn admin() -> &'static str { "admin" }
/// async fn me(token: AccessToken) -> String { token.subject().to_owned() }
/// async fn reports() -> &'static str { "any valid token" }
/// async fn health() -> &'static str { "ok" }
///
/// fn app(authority: Authority) -> Result<Router, scopegate::ConfigError> {
///     let floor = RequireAccessToken::new(authority.clone()).except(["/health"])?;
///     Ok(Router::new()
///         .route("/admin", get(admin))     // a token with `admin`
///         .route("/me", get(me))           // any valid token
///         .route("/reports", get(reports)) // any valid token, from the layer alone
///         .route("/health", get(health))   // public: excepted
///         .route_layer(floor)
///         .with_state(authority))
/// }
/// # let _ = app;
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequireAccessToken {
    authority: Authority,
    audience: Option<&'static str>,
    except: Vec<String>,
}

impl fmt::Debug for RequireAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireAccessToken")
            .field("authority", &self.authority)
            .field("audience", &self.audience)
            .field("except", &self.except)
            .finish()
    }
}

impl RequireAccessToken {
    /// Requires a valid access token of `authority` for its configured audiences on every
    /// route the layer covers.
    pub fn new(authority: Authority) -> Self {
        Self { authority, audience: None, except: Vec::new() }
    }

    /// Requires tokens for exactly this audience instead of the authority's configured
    /// ones (as a guard's `aud = "…"`; a guard naming the same audience reuses the
    /// layer's verification).
    ///
    /// # Errors
    /// A [`ConfigError`] for the setting `audience` when `audience` is empty or contains
    /// whitespace: no token's `aud` could match it, so every request would be refused.
    pub fn audience(mut self, audience: &'static str) -> Result<Self, ConfigError> {
        check_audience("audience", audience)?;
        self.audience = Some(audience);
        Ok(self)
    }

    /// Routes that need no token: route paths exactly as written in `.route(path, …)`
    /// (`/health`, `/users/{id}`), matched against the route axum dispatched to.
    ///
    /// # Errors
    /// A [`ConfigError`] for the setting `except` when a path cannot be a route's: it must
    /// start with `/` and contain no `?`, `#`, `%`, whitespace or control characters, no
    /// empty segment (`//`) and no `.` or `..` segment.
    pub fn except<I, P>(mut self, paths: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        for path in paths {
            let path = path.into();
            check_route_path(&path)?;
            self.except.push(path);
        }
        Ok(self)
    }
}

struct Settings {
    authority: Authority,
    audience: Option<&'static str>,
    except: Vec<String>,
}

fn check_route_path(path: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        Err(ConfigError::new(
            "except",
            format!("{path:?} is not a route path ({why}): name the route exactly as in .route(\"/health\", …)"),
        ))
    };
    let Some(rest) = path.strip_prefix('/') else {
        return bad("it must start with `/`");
    };
    if path.chars().any(|c| matches!(c, '?' | '#' | '%') || c.is_whitespace() || c.is_control()) {
        return bad("no `?`, `#`, `%`, whitespace or control characters");
    }
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        if matches!(segment, "." | "..") {
            return bad("no `.` or `..` segment");
        }
        // An empty last segment is a trailing slash (`/health/`), a route of its own; the
        // root `/` is one empty segment.
        if segment.is_empty() && segments.peek().is_some() {
            return bad("no empty segment");
        }
    }
    Ok(())
}

impl Settings {
    /// Whether the request was routed to an excepted route.
    fn excepts(&self, parts: &Parts) -> bool {
        parts.extensions.get::<MatchedPath>().is_some_and(|matched| self.except.iter().any(|p| p == matched.as_str()))
    }
}

impl<S> Layer<S> for RequireAccessToken {
    type Service = RequireAccessTokenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let settings =
            Settings { authority: self.authority.clone(), audience: self.audience, except: self.except.clone() };
        RequireAccessTokenService { inner, settings: Arc::new(settings) }
    }
}

/// The service [`RequireAccessToken`] wraps around each route.
#[derive(Clone)]
pub struct RequireAccessTokenService<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S> fmt::Debug for RequireAccessTokenService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireAccessTokenService").finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for RequireAccessTokenService<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service driven to readiness handles this request; a clone takes its place
        // (tower's pattern for a service that calls its inner one from a future).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = Arc::clone(&self.settings);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            if !settings.excepts(&parts)
                && let Err(rejection) = required_token(&mut parts, &settings.authority, settings.audience).await
            {
                return Ok(rejection.into_response());
            }
            inner.call(Request::from_parts(parts, body)).await.map(IntoResponse::into_response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exception_must_be_a_route_path() {
        for path in ["health", "/a//b", "/a/../b", "/a/./b", "/..", "/a%2Fb", "/a?b", "/a#b", "/a b", "", "/a\tb"] {
            let error = check_route_path(path).expect_err(path);
            assert_eq!(error.setting(), "except", "{path}");
        }
        for path in ["/", "/health", "/health/", "/users/{id}", "/assets/{*rest}", "/a.b/c..d"] {
            assert!(check_route_path(path).is_ok(), "{path}");
        }
    }
}
