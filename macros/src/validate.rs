//! Step 2: syntax trees to a checked requirement.
//!
//! Every problem is reported, not just the first: errors are accumulated in
//! [`Errors`](crate::errors::Errors) and each is spanned at the smallest token that is wrong (the
//! scope literal, the option's value, the `fn` keyword), so three bad scopes give three
//! squiggles. What comes out of here is known to be valid, which is why
//! [`crate::expand`] cannot fail.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt as _;
use syn::{FnArg, Ident, Lit, LitStr};

use crate::errors::Errors;
use crate::parse::{Args, Expr, GroupExpr, Handler, Item, Key, Op, OptionValue};

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

/// The attribute's top-level items sorted into scopes and options, each option once; what
/// did not fit was reported.
struct Sorted<'a> {
    /// The top-level scope expressions, in source order.
    exprs: Vec<&'a Expr>,
    /// Whether a scope was meant at the top level (even a malformed one, already reported),
    /// so that "no scope at all" is not reported on top of that error.
    meant_a_scope: bool,
    /// `aud = …`, the first one written.
    aud: Option<&'a OptionValue>,
    /// `iss = …`, the first one written.
    iss: Option<&'a OptionValue>,
    /// `crate = …`, the first one written.
    krate: Option<&'a OptionValue>,
    /// `dpop = …`, the first one written.
    dpop: Option<&'a OptionValue>,
    /// Whether `introspect` was given.
    introspect: bool,
}

/// Checks the attribute's arguments.
///
/// First the shape, item by item in source order (a malformed item, an option inside a
/// group or after which a scope comes, an option given twice), then the values (the scopes
/// in order, then `aud`, `iss`, `crate` and `dpop`).
pub(crate) fn requirement(args: &Args) -> syn::Result<Requirement> {
    let mut errors = Errors::new();
    let sorted = sort(&args.items, &mut errors);
    if sorted.exprs.is_empty() && !sorted.meant_a_scope {
        errors.push(syn::Error::new(
            Span::call_site(),
            "`#[requires_scope]` needs at least one scope, e.g. `#[requires_scope(\"read:items\")]`; \
             to accept any valid access token without a scope, take `scopegate::AccessToken` \
             as an argument instead of using this attribute",
        ));
    }
    let mut seen = Vec::new();
    let exprs: Vec<Node> = sorted.exprs.iter().filter_map(|expr| node(expr, &mut seen, &mut errors)).collect();
    let audience = sorted.aud.and_then(|aud| errors.check(audience(aud)));
    let issuer = sorted.iss.and_then(|iss| errors.check(issuer(iss)));
    let krate = sorted.krate.and_then(|krate| errors.check(crate_path(krate)));
    let dpop_required = sorted.dpop.and_then(|dpop| errors.check(dpop_policy(dpop))).unwrap_or(false);
    errors.finish()?;
    Ok(Requirement { exprs, audience, issuer, krate, introspect: sorted.introspect, dpop_required })
}

/// Sorts the top-level items, reporting each malformed one (and those inside its groups)
/// where it stands, a scope written after an option, and an option given twice.
fn sort<'a>(items: &'a [Item], errors: &mut Errors) -> Sorted<'a> {
    let mut sorted = Sorted {
        exprs: Vec::new(),
        meant_a_scope: false,
        aud: None,
        iss: None,
        krate: None,
        dpop: None,
        introspect: false,
    };
    // The first option's key, to point out a scope written after the options.
    let mut first_option: Option<&'static str> = None;
    for item in items {
        shape(item, 0, errors);
        match item {
            Item::Expr(expr) => {
                sorted.meant_a_scope = true;
                if let Some(option) = first_option {
                    errors.push(syn::Error::new_spanned(
                        expr_tokens(expr),
                        format!("scopes come before the options: move this scope in front of `{option} = …`"),
                    ));
                }
                sorted.exprs.push(expr);
            }
            Item::Option(option) => {
                first_option.get_or_insert(option.key.name());
                let slot = match option.key {
                    Key::Aud => &mut sorted.aud,
                    Key::Iss => &mut sorted.iss,
                    Key::Crate => &mut sorted.krate,
                    Key::Dpop => &mut sorted.dpop,
                };
                set_once(slot, option, errors);
            }
            Item::Introspect { key, value: None } => {
                first_option.get_or_insert("introspect");
                if sorted.introspect {
                    errors.push(syn::Error::new(key.span, "duplicate option `introspect`: give it only once"));
                }
                sorted.introspect = true;
            }
            other => sorted.meant_a_scope |= meant_as_a_scope(other),
        }
    }
    sorted
}

/// The one place that enforces "each option at most once".
///
/// A duplicate is reported at its key and the first value is kept, so that the rest of the
/// arguments are still validated.
fn set_once<'a>(slot: &mut Option<&'a OptionValue>, option: &'a OptionValue, errors: &mut Errors) {
    if slot.is_some() {
        let key = option.key.name();
        errors.push(syn::Error::new(option.key_span, format!("duplicate option `{key}`: give `{key} = …` only once")));
    } else {
        *slot = Some(option);
    }
}

/// Reports what is wrong with the form of an item `depth` groups deep, and of the items of
/// its groups, in source order.
fn shape(item: &Item, depth: usize, errors: &mut Errors) {
    const TOP_LEVEL: &str =
        "options go at the top level of `#[requires_scope(…)]`, after the scopes, not inside `any(…)`/`all(…)`";
    match item {
        Item::Expr(Expr::Scope(_)) => {}
        Item::Expr(Expr::Group(group)) => group.items.iter().for_each(|member| shape(member, depth + 1, errors)),
        Item::Option(option) => {
            if depth > 0 {
                errors.push(syn::Error::new(option.key_span, TOP_LEVEL));
            }
        }
        Item::Introspect { key, value: Some(value) } => errors.push(syn::Error::new_spanned(
            quote::quote!(#key #value),
            "`introspect` is a flag and takes no value: write `introspect` to introspect this handler's \
             tokens, or leave it out",
        )),
        Item::Introspect { key, value: None } => {
            if depth > 0 {
                errors.push(syn::Error::new(key.span, TOP_LEVEL));
            }
        }
        Item::BareDpop { key, rest } => errors.push(syn::Error::new_spanned(
            quote::quote!(#key #rest),
            "`dpop` takes a value: `dpop = \"required\"` (this handler accepts only DPoP-bound tokens \
             with their proof) or `dpop = \"allowed\"` (the default: the `Authority`'s DPoP policy)",
        )),
        Item::BareCombinator(keyword) => errors.push(syn::Error::new(
            keyword.span(),
            format!("`{keyword}` takes a parenthesized list of scopes: `{keyword}(\"a\", \"b\")`"),
        )),
        Item::UnknownKey(word) => errors.push(unknown_option(word)),
        Item::UnknownCall(word) => errors.push(syn::Error::new(
            word.span(),
            format!("unknown combinator `{word}`: use `any(…)` (one of) or `all(…)` (every one of)"),
        )),
        Item::Word { word, rest } if misspelled_option(word, rest) => errors.push(unknown_option(word)),
        Item::Word { word, rest } => errors.push(unquoted_scope(word, rest)),
    }
}

/// Whether a malformed item was meant as a scope, rather than as an option.
fn meant_as_a_scope(item: &Item) -> bool {
    match item {
        Item::Expr(_) | Item::BareCombinator(_) | Item::UnknownCall(_) => true,
        // `scope = "…"` was meant as a scope: do not also report that there is none.
        Item::UnknownKey(word) => {
            let name = word.unraw().to_string();
            name == "scope" || name == "scopes"
        }
        Item::Word { word, rest } => !misspelled_option(word, rest),
        Item::Option(_) | Item::Introspect { .. } | Item::BareDpop { .. } => false,
    }
}

/// Whether a lone word is a misspelled option (`introspekt`, `dpop_required`) rather than a
/// scope without quotes.
fn misspelled_option(word: &Ident, rest: &TokenStream) -> bool {
    let name = word.unraw().to_string();
    rest.is_empty()
        && (edit_distance(&name.to_ascii_lowercase(), "introspect") <= 3 || suggest_option(&name) == Some("dpop"))
}

/// The error for a word where a scope goes: a scope without quotes, or a constant.
fn unquoted_scope(word: &Ident, rest: &TokenStream) -> syn::Error {
    let mut tokens = word.to_token_stream();
    tokens.extend(rest.clone());
    // `read:appointments` arrives as `read` `:` `appointments`: glue words and punctuation
    // back together to suggest the quoted scope.
    let glued: Option<String> = tokens
        .clone()
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Ident(ident) => Some(ident.to_string()),
            TokenTree::Punct(punct) => Some(punct.as_char().to_string()),
            TokenTree::Group(_) | TokenTree::Literal(_) => None,
        })
        .collect();
    let message = match glued {
        Some(name) if looks_like_a_constant(&name) => format!(
            "expected a scope as a string literal, found `{name}`, which looks like a constant: \
             constants and macros are not supported, write the scope inline, e.g. `\"read:items\"`"
        ),
        Some(scope) => format!(
            "expected a scope as a string literal, found `{scope}`: write `\"{scope}\"` \
             (constants and macros are not supported; scopes are written inline)"
        ),
        None => "expected a scope as a string literal such as `\"read:appointments\"` \
                 (constants and macros are not supported; scopes are written inline)"
            .to_owned(),
    };
    syn::Error::new_spanned(tokens, message)
}

/// `SCREAMING_CASE` or a path ending in it.
fn looks_like_a_constant(name: &str) -> bool {
    let last = name.rsplit("::").next().unwrap_or(name);
    last.chars().any(|c| c.is_ascii_uppercase()) && !last.chars().any(|c| c.is_ascii_lowercase())
}

/// The error for an unknown option, with a suggestion for near misses.
fn unknown_option(word: &Ident) -> syn::Error {
    let name = word.unraw().to_string();
    let message = match suggest_option(&name) {
        Some(known) => format!(
            "unknown option `{name}`: did you mean `{known}`? (the options are `aud = \"…\"`, `iss = \"…\"`, `introspect`, `dpop = \"required\"` and `crate = \"…\"`)"
        ),
        None if name == "scope" || name == "scopes" => format!(
            "unknown option `{name}`: scopes are listed directly, without a key: `#[requires_scope(\"read:items\", \"write:items\")]`"
        ),
        None => format!(
            "unknown option `{name}`: the options are `aud = \"…\"` (the audience this handler requires), `iss = \"…\"` (the issuer it requires), `introspect` (introspect its tokens, JWTs too), `dpop = \"required\"` (DPoP-bound tokens only) and `crate = \"…\"` (the path to scopegate)"
        ),
    };
    syn::Error::new(word.span(), message)
}

/// The known option an unknown one was probably meant to be.
pub(crate) fn suggest_option(name: &str) -> Option<&'static str> {
    let normalized = name.to_ascii_lowercase();
    let normalized = normalized.trim_matches('_');
    ["aud", "iss", "crate", "introspect", "dpop"].into_iter().find(|known| {
        normalized == *known
            || (normalized.len() >= 2 && (normalized.starts_with(known) || known.starts_with(normalized)))
            || (normalized.len() >= 3 && edit_distance(normalized, known) <= 2)
            || (*known == "crate" && normalized.contains("krate"))
    })
}

/// Levenshtein distance between two short ASCII-ish strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous.get(j).copied().unwrap_or(usize::MAX).saturating_add(usize::from(ca != *cb));
            let delete = previous.get(j + 1).copied().unwrap_or(usize::MAX).saturating_add(1);
            let insert = current.get(j).copied().unwrap_or(usize::MAX).saturating_add(1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

/// The tokens of an expression, for spanning an error over all of it.
fn expr_tokens(expr: &Expr) -> TokenStream {
    match expr {
        Expr::Scope(lit) => lit.to_token_stream(),
        Expr::Group(group) => group.tokens.clone(),
    }
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
    if group.items.is_empty() {
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
    let members: Vec<Node> = group
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Expr(member) => node(member, seen, errors),
            // Reported by `shape`.
            _ => None,
        })
        .collect();
    // A member that failed was reported already; only a complete group is of any use.
    (members.len() == group.items.len()).then_some(Node::Group(group.op, members))
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
