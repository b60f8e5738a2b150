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
