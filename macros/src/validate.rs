//! Step 2: syntax trees to a checked requirement.
//!
//! Every problem is reported, not just the first: errors are accumulated in
//! [`Errors`](crate::errors::Errors) and each is spanned at the smallest token that is wrong (the
//! scope literal, the option's value, the `fn` keyword), so three bad scopes give three
//! squiggles. What comes out of here is known to be valid, which is why
//! [`crate::expand`] cannot fail.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{FnArg, Lit, LitStr};

use crate::errors::Errors;
use crate::parse::{Args, Expr, GroupExpr, Handler, Op, OptionValue};

/// How many arguments axum's `Handler` accepts (`axum::handler::Handler` is implemented
/// for functions of up to 16 extractors).
const AXUM_MAX_ARGS: usize = 16;

/// The most arguments a guarded handler may declare: the guard takes one of axum's slots.
pub(crate) const MAX_USER_ARGS: usize = AXUM_MAX_ARGS - 1;

/// A requirement known to be valid.
pub(crate) struct Requirement {
    /// The top-level expressions; all of them are required.
    pub(crate) exprs: Vec<Node>,
    /// The audience override, non-empty and without whitespace.
    pub(crate) audience: Option<LitStr>,
    /// The issuer the handler requires: an absolute http(s) URL with a host.
    pub(crate) issuer: Option<LitStr>,
    /// The path to the scopegate crate, when overridden.
    pub(crate) krate: Option<syn::Path>,
    /// `introspect`: the handler's tokens go to the introspection endpoint, JWTs too.
    pub(crate) introspect: bool,
    /// `dpop = "required"`: the handler refuses bearer tokens.
    pub(crate) dpop_required: bool,
}

/// A valid scope expression.
pub(crate) enum Node {
    /// An RFC 6749 scope token.
    Scope(LitStr),
    /// A non-empty `any(…)`/`all(…)`.
    Group(Op, Vec<Node>),
}

/// Checks the attribute's arguments.
pub(crate) fn requirement(args: Args) -> syn::Result<Requirement> {
    let mut errors = Errors::new();
    for error in args.errors {
        errors.push(error);
    }
    if args.exprs.is_empty() && !args.attempted_scope {
        errors.push(syn::Error::new(
            Span::call_site(),
            "`#[requires_scope]` needs at least one scope, e.g. `#[requires_scope(\"read:items\")]`; \
             to accept any valid access token without a scope, take `scopegate::AccessToken` \
             as an argument instead of using this attribute",
        ));
    }
    let mut seen = Vec::new();
    let exprs: Vec<Node> = args.exprs.iter().filter_map(|expr| node(expr, &mut seen, &mut errors)).collect();
    let audience = args.aud.and_then(|aud| errors.check(audience(&aud)));
    let issuer = args.iss.and_then(|iss| errors.check(issuer(&iss)));
    let krate = args.krate.and_then(|krate| errors.check(crate_path(&krate)));
    let dpop_required = args.dpop.and_then(|dpop| errors.check(dpop_policy(&dpop))).unwrap_or(false);
    errors.finish()?;
    Ok(Requirement { exprs, audience, issuer, krate, introspect: args.introspect.is_some(), dpop_required })
}

/// Checks one expression; `seen` holds the scopes met so far, to find duplicates.
fn node(expr: &Expr, seen: &mut Vec<String>, errors: &mut Errors) -> Option<Node> {
    match expr {
        Expr::Scope(Lit::Str(lit)) => {
            let value = lit.value();
            if let Some(problem) = scope_problem(&value) {
                errors.push(syn::Error::new(lit.span(), problem));
                return None;
            }
            if seen.contains(&value) {
                errors.push(syn::Error::new(
                    lit.span(),
                    format!("duplicate scope `\"{value}\"`: each scope appears once in a requirement; remove this one"),
                ));
                return None;
            }
            seen.push(value);
            Some(Node::Scope(lit.clone()))
        }
        Expr::Scope(lit) => {
            errors.push(not_a_string(lit));
            None
        }
        Expr::Group(group) => self::group(group, seen, errors),
    }
}

/// Checks `any(…)`/`all(…)` and its members.
fn group(group: &GroupExpr, seen: &mut Vec<String>, errors: &mut Errors) -> Option<Node> {
    if group.written == 0 {
        let message = match group.op {
            Op::Any => {
                "empty `any()` can never be satisfied: list the alternatives, e.g. `any(\"admin\", \"write:items\")`"
            }
            Op::All => {
                "empty `all()` requires nothing: list the scopes it requires, e.g. `all(\"read:items\", \"write:items\")`, or remove it"
            }
        };
        errors.push(syn::Error::new_spanned(&group.tokens, message));
        return None;
    }
    let members: Vec<Node> = group.members.iter().filter_map(|member| node(member, seen, errors)).collect();
    // A member that failed was reported already; only a complete group is of any use.
    (members.len() == group.written).then_some(Node::Group(group.op, members))
}

/// Why `scope` is not an RFC 6749 §3.3 scope token (`1*( %x21 / %x23-5B / %x5D-7E )`).
pub(crate) fn scope_problem(scope: &str) -> Option<String> {
    const RULE: &str = "RFC 6749 §3.3 allows only printable ASCII from `!` to `~` except `\"` and `\\`";
    let shown = scope.escape_debug();
    if scope.is_empty() {
        return Some(
            "empty scope: a scope is one or more printable ASCII characters such as `\"read:items\"`; \
             remove the empty literal"
                .to_owned(),
        );
    }
    let bad = scope.chars().find(|c| !matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E'))?;
    Some(match bad {
        ' ' => {
            let parts: Vec<String> = scope
                .split(' ')
                .filter(|part| !part.is_empty())
                .map(|part| format!("\"{}\"", part.escape_debug()))
                .collect();
            if parts.len() > 1 {
                format!(
                    "scope `\"{shown}\"` contains a space, but a scope is a single token ({RULE}); \
                     to require several scopes, list each as its own literal: `{}`",
                    parts.join(", ")
                )
            } else {
                format!("scope `\"{shown}\"` contains a space ({RULE}); remove the space")
            }
        }
        '"' => format!("scope `\"{shown}\"` contains `\"` ({RULE}); remove it"),
        '\\' => format!("scope `\"{shown}\"` contains a backslash ({RULE}); remove it"),
        c if c.is_ascii_control() => {
            format!("scope `\"{shown}\"` contains the control character U+{:04X} ({RULE}); remove it", u32::from(c))
        }
        c => format!(
            "scope `\"{shown}\"` contains the non-ASCII character `{c}` (U+{:04X}); {RULE}: spell the scope in ASCII",
            u32::from(c)
        ),
    })
}

/// The error for a literal other than a string where a scope goes.
fn not_a_string(lit: &Lit) -> syn::Error {
    let suggestion = match lit {
        Lit::ByteStr(b) => Some(String::from_utf8_lossy(&b.value()).into_owned()),
        Lit::CStr(c) => Some(c.value().to_string_lossy().into_owned()),
        Lit::Char(c) => Some(c.value().to_string()),
        Lit::Int(i) => Some(i.base10_digits().to_owned()),
        Lit::Float(f) => Some(f.base10_digits().to_owned()),
        Lit::Bool(b) => Some(b.value.to_string()),
        _ => None,
    };
    let message = match suggestion {
        Some(text) => format!(
            "expected a scope as a string literal, found `{}`: write `\"{}\"`",
            lit.to_token_stream(),
            text.escape_debug()
        ),
        None => "expected a scope as a string literal such as `\"read:items\"`".to_owned(),
    };
    syn::Error::new(lit.span(), message)
}

/// The string literal of an option's value, looking through the invisible groups that
/// `macro_rules!` puts around an `$x:expr`.
fn string_literal(mut value: &syn::Expr) -> Option<&LitStr> {
    loop {
        match value {
            syn::Expr::Group(group) => value = &group.expr,
            syn::Expr::Lit(syn::ExprLit { lit: Lit::Str(lit), attrs }) if attrs.is_empty() => {
                return Some(lit);
            }
            _ => return None,
        }
    }
}

/// Checks `aud = "…"`: a non-empty string literal without whitespace.
fn audience(option: &OptionValue) -> syn::Result<LitStr> {
    let Some(lit) = string_literal(&option.value) else {
        return Err(syn::Error::new_spanned(
            &option.value,
            "`aud` takes a string literal with the audience this handler requires, \
             e.g. `aud = \"https://api.example.test\"` (constants and macros are not supported)",
        ));
    };
    let value = lit.value();
    let trimmed = value.trim();
    let problem = if value.is_empty() {
        "`aud` is empty: write the identifier the token's `aud` claim must contain, \
         or remove `aud = …` to use the `Authority`'s audience"
            .to_owned()
    } else if trimmed.is_empty() {
        "`aud` is blank: write the identifier the token's `aud` claim must contain, \
         or remove `aud = …` to use the `Authority`'s audience"
            .to_owned()
    } else if trimmed.contains(char::is_whitespace) {
        format!(
            "`aud` contains whitespace: an audience is a single identifier such as \
             `\"https://api.example.test\"`; remove the whitespace from `\"{}\"`",
            value.escape_debug()
        )
    } else if let Some(control) = trimmed.chars().find(|c| c.is_control()) {
        format!(
            "`aud` contains the control character U+{:04X}: an audience is a single identifier such as \
             `\"https://api.example.test\"`; remove it",
            u32::from(control)
        )
    } else if trimmed.len() != value.len() {
        let place = if value.starts_with(trimmed) { "trailing" } else { "leading" };
        format!("`aud` has {place} whitespace: write `aud = \"{}\"`", trimmed.escape_debug())
    } else {
        return Ok(lit.clone());
    };
    Err(syn::Error::new(lit.span(), problem))
}

/// Checks `iss = "…"`: a string literal with an issuer identifier, which OAuth and OpenID
/// Connect make an absolute `https` URL (`http` is allowed too, for loopback development
/// issuers) with a host and no query or fragment. It is compared byte for byte with the
/// token's `iss`, so nothing is normalised.
fn issuer(option: &OptionValue) -> syn::Result<LitStr> {
    let Some(lit) = string_literal(&option.value) else {
        return Err(syn::Error::new_spanned(
            &option.value,
            "`iss` takes a string literal with the issuer this handler requires, \
             e.g. `iss = \"https://issuer.example.test/\"` (constants and macros are not supported)",
        ));
    };
    let value = lit.value();
    let rest = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://"));
    let host = rest.map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    let problem = if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        format!(
            "`iss` contains whitespace or a control character: the issuer is compared byte for byte with the token's `iss`; remove it from `\"{}\"`",
            value.escape_debug()
        )
    } else if rest.is_none() {
        format!(
            "`iss` must be the issuer's identifier, an absolute URL such as `\"https://issuer.example.test/\"`; `\"{}\"` is not one",
            value.escape_debug()
        )
    } else if host.is_none_or(|host| host.is_empty() || host.starts_with(':') || host.contains('@')) {
        format!(
            "`iss` has no host: write the issuer's URL with its host, such as `\"https://issuer.example.test/\"`, not `\"{value}\"`"
        )
    } else if value.contains(['?', '#']) {
        format!("`iss` has a query or fragment, which an issuer identifier never has: remove it from `\"{value}\"`")
    } else {
        return Ok(lit.clone());
    };
    Err(syn::Error::new(lit.span(), problem))
}

/// Checks `dpop = "…"`: `"required"` (true) or `"allowed"` (false, the default), exactly.
fn dpop_policy(option: &OptionValue) -> syn::Result<bool> {
    const VALUES: &str = "`\"required\"` (this handler accepts only DPoP-bound tokens with their proof) or \
                          `\"allowed\"` (the default: the `Authority`'s DPoP policy)";
    let Some(lit) = string_literal(&option.value) else {
        return Err(syn::Error::new_spanned(
            &option.value,
            format!("`dpop` takes a string literal: {VALUES} (constants and macros are not supported)"),
        ));
    };
    match lit.value().as_str() {
        "required" => Ok(true),
        "allowed" => Ok(false),
        other => Err(syn::Error::new(
            lit.span(),
            format!("unknown DPoP policy `\"{}\"`: `dpop` is {VALUES}", other.escape_debug()),
        )),
    }
}

/// Checks `crate = "path"`: a string literal holding a path without generics.
fn crate_path(option: &OptionValue) -> syn::Result<syn::Path> {
    const HELP: &str = "`crate` takes the path to the scopegate crate as a string, \
                        e.g. `crate = \"::scopegate\"`, or `crate = \"sg\"` after `extern crate scopegate as sg;`";
    let Some(lit) = string_literal(&option.value) else {
        if let syn::Expr::Path(path) = &option.value {
            return Err(syn::Error::new_spanned(
                path,
                format!(
                    "`crate` takes the path as a string: write `crate = \"{}\"`",
                    path.to_token_stream().to_string().replace(' ', "")
                ),
            ));
        }
        return Err(syn::Error::new_spanned(&option.value, HELP));
    };
    // Spans of the parsed path are the literal's, so errors about it point at the literal.
    lit.parse_with(syn::Path::parse_mod_style).map_err(|_| syn::Error::new(lit.span(), HELP))
}

/// Checks the annotated fn: `async`, no receiver, and room for the guard among axum's
/// arguments.
pub(crate) fn handler(handler: &Handler) -> syn::Result<()> {
    let mut errors = Errors::new();
    let sig = &handler.sig;
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span,
            format!("`#[requires_scope]` guards axum handlers, which are async: write `async fn {}`", sig.ident),
        ));
    }
    for input in &sig.inputs {
        if let FnArg::Receiver(receiver) = input {
            errors.push(syn::Error::new_spanned(
                receiver,
                "`#[requires_scope]` cannot guard a method: axum handlers are free functions and \
                 `self` cannot be extracted from a request; make this a free `async fn` and take \
                 what it needs as extractors (e.g. `State<…>`)",
            ));
        }
    }
    // A second `#[requires_scope]` would expand into a second requirement type of the same
    // name; point at it instead of at the resulting "defined multiple times".
    for attr in &handler.attrs {
        if attr.path().segments.last().is_some_and(|segment| segment.ident == "requires_scope") {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[requires_scope]` is given twice: combine the requirements in one attribute, \
                 e.g. `#[requires_scope(\"a\", \"b\")]` or `#[requires_scope(any(\"a\", \"b\"))]`",
            ));
        }
    }
    let count = sig.inputs.len();
    if count > MAX_USER_ARGS {
        let extra: TokenStream = sig.inputs.iter().skip(MAX_USER_ARGS).flat_map(ToTokens::into_token_stream).collect();
        errors.push(syn::Error::new_spanned(
            extra,
            format!(
                "too many arguments: axum handlers take at most {AXUM_MAX_ARGS} extractors and \
                 `#[requires_scope]` adds its guard as the first, so this handler can take at most \
                 {MAX_USER_ARGS} (it takes {count}); combine some extractors into a tuple, which axum \
                 extracts as one, e.g. `(Path(id), Query(q)): (Path<u32>, Query<Params>)`"
            ),
        ));
    }
    errors.finish()
}
