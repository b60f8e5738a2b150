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

// Documented on its re-export, `scopegate::requires_scope`, where intra-doc links and
// doctests follow the version. rustdoc appends an inlined item's own docs to the
// re-export's, so this crate's pointer is written only when this crate itself is documented
// (`cfg(doc)` is set for the crate rustdoc documents, not for the dependencies it reads).
#[cfg_attr(doc, doc = "The `#[requires_scope]` attribute, documented at `scopegate::requires_scope`.")]
#[cfg_attr(not(doc), allow(missing_docs, reason = "documented on the re-export, `scopegate::requires_scope`"))]
#[proc_macro_attribute]
pub fn requires_scope(attr: TokenStream, item: TokenStream) -> TokenStream {
    if debug_handler_above() {
        return keep_with_error(item.into(), &syn::Error::new(proc_macro2::Span::call_site(), DEBUG_HANDLER_ABOVE))
            .into();
    }
    expand_or_keep(attr.into(), item.into()).into()
}

/// The error for `#[axum::debug_handler]` written above the attribute.
const DEBUG_HANDLER_ABOVE: &str = "`#[axum::debug_handler]` above `#[requires_scope]` checks the handler before the guard is added: \
put it below, `#[requires_scope(…)]` then `#[axum::debug_handler(state = YourState)]`";

/// Whether the lines just above this attribute (the item's other attributes, its doc
/// comments) hold `debug_handler`. An attribute above this one has expanded already, and
/// axum's `debug_handler` copies the handler into its checks, where the copy's guard is
/// then an argument the checks do not pass (rustc's E0061, which names no fix). Nothing in
/// the tokens tells the two orders apart, so the source is read, at the attribute's own
/// location; without one (a macro-made handler) the order is not checked.
fn debug_handler_above() -> bool {
    let span = proc_macro::Span::call_site();
    let Some(source) = span.local_file().and_then(|file| std::fs::read_to_string(file).ok()) else {
        return false;
    };
    let above: Vec<&str> = source.lines().take(span.line().saturating_sub(1)).map(str::trim).collect();
    for line in above.into_iter().rev().filter(|line| !line.is_empty() && !line.starts_with("//")) {
        if !line.starts_with("#[") {
            return false;
        }
        if line.contains("debug_handler") {
            return true;
        }
    }
    false
}

/// The guarded handler, or on error the handler unchanged followed by the errors.
fn expand_or_keep(attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    expand(attr, item.clone()).unwrap_or_else(|error| keep_with_error(item, &error))
}

/// The handler unchanged, followed by `error`: only the attribute's problems are reported,
/// not a cascade of errors at the handler's uses.
fn keep_with_error(mut item: TokenStream2, error: &syn::Error) -> TokenStream2 {
    item.extend(error.to_compile_error());
    item
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
