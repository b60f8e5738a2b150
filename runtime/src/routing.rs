//! A router under which nothing is unprotected by accident.
//!
//! [`get`], [`post`], [`put`], [`patch`] and [`delete`] are axum's method-router
//! functions with two more bounds, both checked at compile time:
//!
//! - **The handler is protected** ([`Protected`]): it is guarded by
//!   `#[requires_scope(…)]`, or takes [`AccessToken`] or [`UserInfo`] as its *first*
//!   argument (any valid access token), or is wrapped in [`public`] (open on purpose).
//!   Anything else does not compile, and the error names the three fixes.
//! - **The router state can supply the [`Authority`](crate::Authority)** ([`ProvidesAuthority`]): a
//!   guarded handler under a state without `FromRef<State> for Authority` fails at the
//!   `.route(…)` call with scopegate's message, which names the `FromRef` to write,
//!   without `#[axum::debug_handler]`.
//!
//! They return axum's own [`MethodRouter`], so they go into `axum::Router::route` as
//! usual. Chain several methods of one path with `.merge(…)`, not with axum's
//! `.post(…)` (which is axum's method and checks nothing):
//!
//! ```
//! use axum::Router;
//! use scopegate::{AccessToken, Authority, requires_scope, routing::{get, post, public}};
//!
//! #[requires_scope("read:appointments")]
//! async fn list() -> &'static str { "[]" }
//! #[requires_scope("write:appointments")]
//! async fn create(body: String) -> String { body }
//! async fn me(token: AccessToken) -> String { token.subject().to_owned() }
//! async fn health() -> &'static str { "ok" }
//!
//! fn app(authority: Authority) -> Router {
//!     Router::new()
//!         .route("/appointments", get(list).merge(post(create)))
//!         .route("/me", get(me))
//!         .route("/health", get(public(health)))
//!         .with_state(authority)
//! }
//! # let _ = app;
//! ```
//!
//! A handler left unprotected:
//!
//! ```compile_fail
//! use axum::Router;
//! use scopegate::{Authority, routing::get};
//!
//! async fn export() -> &'static str { "everything" }
//!
//! // error: `fn() -> … {export}` is not protected by scopegate
//! fn app(authority: Authority) -> Router {
//!     Router::new().route("/export", get(export)).with_state(authority)
//! }
//! # fn main() {}
//! ```
//!
//! Why only the *first* argument: the bound is a trait with one impl per shape of
//! handler, and the marker `M` it infers names the shape. An impl for "`AccessToken` in
//! position 2" (`FnOnce(T1, AccessToken, …)`) cannot say "and `T1` is not the guard, nor
//! another `AccessToken` or `UserInfo`" (that is negative reasoning, which stable Rust's
//! trait system does not have, and specialization is unstable). So a guarded handler that
//! also takes `AccessToken`, which is the common case (`fn list(_: Guard, token:
//! AccessToken)` after the attribute's expansion), and `fn profile(token: AccessToken,
//! info: UserInfo)` would each match two impls, and rustc refuses an ambiguous `M`
//! ("type annotations needed") instead of picking one: today's valid handlers would stop
//! compiling. Checking the first argument only is unambiguous; the compile error for a
//! token in another position says to move it first, which changes nothing at run time
//! (the token extractors are `FromRequestParts` and read no body):
//!
//! ```compile_fail
//! use axum::{Router, extract::Path};
//! use scopegate::{AccessToken, Authority, routing::get};
//!
//! // error: … is not protected by scopegate (note: … move it first)
//! async fn show(Path(id): Path<u32>, token: AccessToken) -> String { format!("{id} {}", token.subject()) }
//!
//! fn app(authority: Authority) -> Router {
//!     Router::new().route("/items/{id}", get(show)).with_state(authority)
//! }
//! # fn main() {}
//! ```
//!
//! Why a bound and not a check at start-up: a route table ([`crate::policy::Policy`])
//! finds an unprotected route when someone runs it (a test, `--routes`); the bound finds
//! it before the program exists. The table is still there to print and test.

use std::fmt;

use axum::{
    extract::Request,
    handler::Handler,
    routing::{self, MethodRouter},
};

use crate::{
    AccessToken, UserInfo,
    extract::{AuthorityState, Guard, Requirement},
};

/// Keeps [`Protected`] and [`ProvidesAuthority`] scopegate's own: only the attribute's
/// guard, the token extractors and [`public`] implement them.
mod sealed {
    pub trait Handler<M> {}
    pub trait Marker<S> {}
}

/// A handler scopegate considers protected: `#[requires_scope(…)]`, a first argument of
/// [`AccessToken`] or [`UserInfo`], or [`public`]. Sealed; `M` is inferred.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not protected by scopegate",
    label = "this handler has no `#[requires_scope(…)]` and is not marked `public(…)`",
    note = "fix it one of three ways: add `#[requires_scope(\"…\")]` to the handler (a token with these scopes is required); wrap it as `public(handler)` (`scopegate::routing::public`) if it is open on purpose; or route it with axum's own `axum::routing::get`/`post`/…, which scopegate does not check",
    note = "a handler that takes `scopegate::AccessToken` or `scopegate::UserInfo` counts as protected too (any valid access token), but only as its first argument: if it takes one in another position, move it first"
)]
pub trait Protected<M>: sealed::Handler<M> {}

/// A handler that verifies a token itself: `#[requires_scope(…)]`, or a first argument of
/// [`AccessToken`] or [`UserInfo`]. [`Protected`] without [`public`]; the bound of
/// [`Policy::authenticated`](crate::policy::Policy::authenticated), so that the route
/// table never lists an open handler as one that needs a token. Sealed; `M` is inferred.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not take an access token",
    label = "`Policy::authenticated` is for handlers that take `AccessToken` or `UserInfo` as their first argument",
    note = "list a handler that is open on purpose with `Policy::public`, and any other with `Policy::route` (the table reports it as unprotected)"
)]
pub trait TakesToken<M>: sealed::Handler<M> {}

/// The routing functions' second bound: the router state `S` can supply the
/// [`Authority`](crate::Authority) a protected handler verifies with. Sealed; implemented
/// by the marker [`Protected`] infers.
#[diagnostic::on_unimplemented(
    message = "the router state `{S}` does not provide a `scopegate::Authority`",
    label = "this handler verifies tokens, but the router's state `{S}` has no `Authority`",
    note = "implement `axum::extract::FromRef<{S}>` for `scopegate::Authority`: add an `Authority` field to the state and `#[derive(FromRef)]` on it, or use `.with_state(authority)`"
)]
pub trait ProvidesAuthority<S>: sealed::Marker<S> {}

/// What [`public`] returns: the handler, marked as open on purpose. It is an axum
/// [`Handler`] like the one it wraps.
#[derive(Clone, Copy)]
pub struct Public<H>(H);

impl<H> fmt::Debug for Public<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Public(…)")
    }
}

/// Marks `handler` as open on purpose: no token is asked for, and the routing
/// functions accept it (`get(public(health))`). List it as public in the route table
/// too ([`crate::policy::Policy::public`]).
pub fn public<H>(handler: H) -> Public<H> {
    Public(handler)
}

// Not offered by rustc as "`Handler` is implemented for `Public<H>`" under every axum
// `Handler` error of the program.
#[diagnostic::do_not_recommend]
impl<H, T, S> Handler<T, S> for Public<H>
where
    H: Handler<T, S>,
{
    type Future = H::Future;

    fn call(self, req: Request, state: S) -> Self::Future {
        self.0.call(req, state)
    }
}

/// The marker of a [`public`] handler.
#[doc(hidden)]
#[derive(Debug)]
pub struct PublicRoute;

impl<H> sealed::Handler<PublicRoute> for Public<H> {}
impl<H> Protected<PublicRoute> for Public<H> {}
impl<S> sealed::Marker<S> for PublicRoute {}
impl<S> ProvidesAuthority<S> for PublicRoute {}

/// The impls for handlers of 0 to 15 arguments after the guard (or token extractor).
macro_rules! protected {
    ($($arg:ident),*) => {
        impl<F, Fut, R: Requirement, $($arg,)*> sealed::Handler<(Guard<R>, $($arg,)*)> for F
        where F: FnOnce(Guard<R>, $($arg,)*) -> Fut {}
        impl<F, Fut, R: Requirement, $($arg,)*> Protected<(Guard<R>, $($arg,)*)> for F
        where F: FnOnce(Guard<R>, $($arg,)*) -> Fut {}
        impl<F, Fut, R: Requirement, $($arg,)*> TakesToken<(Guard<R>, $($arg,)*)> for F
        where F: FnOnce(Guard<R>, $($arg,)*) -> Fut {}
        impl<S: AuthorityState, R, $($arg,)*> sealed::Marker<S> for (Guard<R>, $($arg,)*) {}
        #[diagnostic::do_not_recommend]
        impl<S: AuthorityState, R, $($arg,)*> ProvidesAuthority<S> for (Guard<R>, $($arg,)*) {}

        protected!(@token AccessToken; $($arg),*);
        protected!(@token UserInfo; $($arg),*);
    };
    (@token $token:ty; $($arg:ident),*) => {
        impl<F, Fut, $($arg,)*> sealed::Handler<($token, $($arg,)*)> for F
        where F: FnOnce($token, $($arg,)*) -> Fut {}
        impl<F, Fut, $($arg,)*> Protected<($token, $($arg,)*)> for F
        where F: FnOnce($token, $($arg,)*) -> Fut {}
        impl<F, Fut, $($arg,)*> TakesToken<($token, $($arg,)*)> for F
        where F: FnOnce($token, $($arg,)*) -> Fut {}
        impl<S: AuthorityState, $($arg,)*> sealed::Marker<S> for ($token, $($arg,)*) {}
        #[diagnostic::do_not_recommend]
        impl<S: AuthorityState, $($arg,)*> ProvidesAuthority<S> for ($token, $($arg,)*) {}
    };
}

protected!();
protected!(T1);
protected!(T1, T2);
protected!(T1, T2, T3);
protected!(T1, T2, T3, T4);
protected!(T1, T2, T3, T4, T5);
protected!(T1, T2, T3, T4, T5, T6);
protected!(T1, T2, T3, T4, T5, T6, T7);
protected!(T1, T2, T3, T4, T5, T6, T7, T8);
protected!(T1, T2, T3, T4, T5, T6, T7, T8, T9);
protected!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10);
protected!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11);
protected!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12);
protected!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13);
protected!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14);
protected!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15);

/// The checked method-router functions.
macro_rules! method {
    ($($name:ident: $method:literal),* $(,)?) => {$(
        #[doc = concat!("Routes `", $method, "` requests to a protected `handler`: axum's [`axum::routing::", stringify!($name), "`] with scopegate's two compile-time checks (see the [module docs](self)).")]
        pub fn $name<H, M, T, S>(handler: H) -> MethodRouter<S>
        where
            H: Protected<M>,
            M: ProvidesAuthority<S>,
            H: Handler<T, S>,
            T: 'static,
            S: Clone + Send + Sync + 'static,
        {
            routing::$name(handler)
        }
    )*};
}

method!(get: "GET", post: "POST", put: "PUT", patch: "PATCH", delete: "DELETE");
