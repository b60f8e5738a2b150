//! The `#[requires_scope]` attribute of [scopegate](https://docs.rs/scopegate).
//!
//! This crate is an implementation detail: depend on `scopegate`, which re-exports the
//! attribute as `scopegate::requires_scope`. Its expansions name items of
//! `scopegate::__private`, which is not public API, so `scopegate` pins this crate to the
//! exact same version.
//!
//! The macro works in three steps, one module each: `parse` reads the attribute and the
//! handler, `validate` checks them and reports every problem at its own token, and
//! `expand` (which cannot fail) writes the guarded handler. `errors` accumulates the
//! problems so that all of them are reported together.

mod errors;
mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

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
/// (`AuthorityBuilder::also_trust`): a token of another trusted issuer is refused with
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
/// handlers keep verifying JWTs locally. It is what `AuthorityBuilder::introspect_jwts`
/// does for every handler. A verification of the same request that did not come from the
/// endpoint (a middleware's `AccessToken`) is not reused by this guard.
///
/// The `Authority` must have introspection configured (`.introspection(client_id,
/// client_secret)`); under one without, the handler answers `500` with the reason
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
/// authority's policy; behind an authority built with `DpopPolicy::Required` the option
/// changes nothing. The route table ([`Policy`]) shows it as written.
///
/// The `Authority` must have DPoP on (`.dpop(DpopPolicy::Allowed)`); under one without,
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
/// `scopegate::routing::get` (and `post`, …) it is reported at the `.route(…)` call with
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
/// state that holds the `Authority`, and the error says so. Above `#[requires_scope]` it
/// checks the handler before the guard is added, and rustc reports "this function takes
/// N arguments but N-1 arguments were supplied", naming a missing
/// `scopegate::__private::Guard<…>` argument.
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
/// [`Authority`]: https://docs.rs/scopegate/latest/scopegate/struct.Authority.html
/// [`AccessToken`]: https://docs.rs/scopegate/latest/scopegate/struct.AccessToken.html
/// [`Policy`]: https://docs.rs/scopegate/latest/scopegate/policy/struct.Policy.html
#[proc_macro_attribute]
pub fn requires_scope(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_or_keep(attr.into(), item.into()).into()
}

/// The guarded handler, or on error the handler unchanged followed by the errors.
fn expand_or_keep(attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    expand(attr, item.clone()).unwrap_or_else(|error| {
        let mut output = item;
        output.extend(error.into_compile_error());
        output
    })
}

/// Parses, validates and expands; every error of the attribute and of the handler is
/// reported together.
fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let requirement = syn::parse2::<parse::Args>(attr).and_then(|args| validate::requirement(&args));
    let handler = syn::parse2::<parse::Handler>(item).and_then(|handler| validate::handler(&handler).map(|()| handler));
    let (requirement, handler) = errors::both(requirement, handler)?;
    Ok(expand::guarded_handler(&requirement, handler))
}

#[cfg(test)]
mod tests;
