//! Step 1: tokens to syntax trees.
//!
//! The attribute grammar is
//!
//! ```text
//! ARGS   := EXPR,* [, aud = "audience"] [, iss = "issuer"] [, introspect] [, dpop = "required"|"allowed"]
//!           [, crate = "path"] [,]
//! EXPR   := "scope" | any(EXPR, …) | all(EXPR, …)
//! ```
//!
//! Parsing is deliberately lenient about *values*: any literal is accepted where a scope
//! goes and any expression after `aud =` / `crate =`, so that [`crate::validate`] can report
//! every bad value at once, each at its own token. Problems that are about the *shape* of the
//! arguments but do not stop parsing (an unknown or duplicate option, a bare word where a
//! scope goes) are recorded in [`Args::errors`] and parsing carries on at the next comma.
//! Only input that cannot be read at all (a missing comma, `aud` without `=`) fails the parse.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned as _;
use syn::{Attribute, Ident, Lit, LitStr, Signature, Token, Visibility, token};

/// Custom keywords of the attribute.
mod kw {
    syn::custom_keyword!(aud);
    syn::custom_keyword!(iss);
    syn::custom_keyword!(any);
    syn::custom_keyword!(all);
    syn::custom_keyword!(introspect);
    syn::custom_keyword!(dpop);
}

/// How deep `any(…)`/`all(…)` may nest. Real requirements nest two or three levels; the
/// limit only exists so that no input can make the macro recurse without bound.
const MAX_DEPTH: usize = 16;

/// The attribute's arguments, as written.
pub(crate) struct Args {
    /// The top-level scope expressions (all of them are required).
    pub(crate) exprs: Vec<Expr>,
    /// Whether a scope was attempted at the top level (even one already reported as
    /// malformed), so that "no scope at all" is not reported on top of that error.
    pub(crate) attempted_scope: bool,
    /// `aud = <value>`.
    pub(crate) aud: Option<OptionValue>,
    /// `iss = <value>`.
    pub(crate) iss: Option<OptionValue>,
    /// `crate = <value>`.
    pub(crate) krate: Option<OptionValue>,
    /// The span of the `introspect` flag, when given.
    pub(crate) introspect: Option<Span>,
    /// `dpop = <value>`.
    pub(crate) dpop: Option<OptionValue>,
    /// Recoverable problems found while parsing, in source order.
    pub(crate) errors: Vec<syn::Error>,
}

/// The value of a `key = value` option, with the key's span for error messages.
pub(crate) struct OptionValue {
    /// The span of the option's key.
    pub(crate) key_span: Span,
    /// The value as written (validated later: it must be a string literal).
    pub(crate) value: syn::Expr,
}

/// One scope expression.
pub(crate) enum Expr {
    /// A literal where a scope goes (validated later: it must be a string literal).
    Scope(Lit),
    /// `any(…)` or `all(…)`.
    Group(GroupExpr),
}

/// `any(…)` or `all(…)`.
pub(crate) struct GroupExpr {
    /// Which combinator.
    pub(crate) op: Op,
    /// The keyword (`any`/`all`) followed by the parentheses, for spanning errors.
    pub(crate) tokens: TokenStream,
    /// The members that parsed.
    pub(crate) members: Vec<Expr>,
    /// How many members were written, including ones already reported as malformed.
    pub(crate) written: usize,
}

/// A combinator.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    /// `all(…)`: every member is required.
    All,
    /// `any(…)`: one member suffices.
    Any,
}

/// One comma-separated item of an argument list.
enum Item {
    Expr(Expr),
    Aud(OptionValue),
    Iss(OptionValue),
    Crate(OptionValue),
    /// The `introspect` flag, at its span.
    Introspect(Span),
    /// `dpop = <value>`.
    Dpop(OptionValue),
    /// A malformed item, already reported; `in_scope_position` when it was meant as a scope.
    Skipped {
        in_scope_position: bool,
    },
}

/// The context an item is parsed in: where recoverable errors go, and how deeply nested in
/// `any(…)`/`all(…)` the item is.
struct Cx<'a> {
    errors: &'a mut Vec<syn::Error>,
    depth: usize,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args {
            exprs: Vec::new(),
            attempted_scope: false,
            aud: None,
            iss: None,
            krate: None,
            introspect: None,
            dpop: None,
            errors: Vec::new(),
        };
        // The first option's key, to point out a scope written after the options.
        let mut first_option: Option<&'static str> = None;
        while !input.is_empty() {
            let item = parse_item(input, &mut Cx { errors: &mut args.errors, depth: 0 })?;
            match item {
                Item::Expr(expr) => {
                    args.attempted_scope = true;
                    if let Some(option) = first_option {
                        args.errors.push(syn::Error::new_spanned(
                            expr_tokens(&expr),
                            format!("scopes come before the options: move this scope in front of `{option} = …`"),
                        ));
                    }
                    args.exprs.push(expr);
                }
                Item::Aud(value) => {
                    first_option.get_or_insert("aud");
                    set_once(&mut args.aud, value, "aud", &mut args.errors);
                }
                Item::Iss(value) => {
                    first_option.get_or_insert("iss");
                    set_once(&mut args.iss, value, "iss", &mut args.errors);
                }
                Item::Crate(value) => {
                    first_option.get_or_insert("crate");
                    set_once(&mut args.krate, value, "crate", &mut args.errors);
                }
                Item::Introspect(span) => {
                    first_option.get_or_insert("introspect");
                    if args.introspect.is_some() {
                        args.errors.push(syn::Error::new(span, "duplicate option `introspect`: give it only once"));
                    }
                    args.introspect = Some(span);
                }
                Item::Dpop(value) => {
                    first_option.get_or_insert("dpop");
                    set_once(&mut args.dpop, value, "dpop", &mut args.errors);
                }
                Item::Skipped { in_scope_position } => {
                    args.attempted_scope |= in_scope_position;
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// The one place that enforces "each option at most once".
///
/// A duplicate is reported at its key and the first value is kept, so that the rest of the
/// arguments are still validated.
fn set_once(slot: &mut Option<OptionValue>, value: OptionValue, key: &str, errors: &mut Vec<syn::Error>) {
    if slot.is_some() {
        errors.push(syn::Error::new(value.key_span, format!("duplicate option `{key}`: give `{key} = …` only once")));
    } else {
        *slot = Some(value);
    }
}

/// Parses one item up to (not including) the next comma at this level.
fn parse_item(input: ParseStream<'_>, cx: &mut Cx<'_>) -> syn::Result<Item> {
    let lookahead = input.lookahead1();
    if lookahead.peek(LitStr) {
        return Ok(Item::Expr(Expr::Scope(input.parse()?)));
    }
    if lookahead.peek(kw::any) || lookahead.peek(kw::all) {
        if input.peek2(token::Paren) {
            return parse_group(input, cx).map(|group| Item::Expr(Expr::Group(group)));
        }
        let keyword: Ident = input.parse()?;
        skip_rest_of_item(input)?;
        cx.errors.push(syn::Error::new(
            keyword.span(),
            format!("`{keyword}` takes a parenthesized list of scopes: `{keyword}(\"a\", \"b\")`"),
        ));
        return Ok(Item::Skipped { in_scope_position: true });
    }
    if lookahead.peek(kw::aud) {
        let key: kw::aud = input.parse()?;
        return parse_option_value(input, key.span, cx).map(|value| value.map_or(SKIPPED_OPTION, Item::Aud));
    }
    if lookahead.peek(kw::iss) {
        let key: kw::iss = input.parse()?;
        return parse_option_value(input, key.span, cx).map(|value| value.map_or(SKIPPED_OPTION, Item::Iss));
    }
    if lookahead.peek(kw::introspect) {
        return parse_introspect(input, cx);
    }
    if lookahead.peek(kw::dpop) {
        return parse_dpop(input, cx);
    }
    if lookahead.peek(Token![crate]) {
        let key: Token![crate] = input.parse()?;
        return parse_option_value(input, key.span, cx).map(|value| value.map_or(SKIPPED_OPTION, Item::Crate));
    }
    if input.peek(Lit) {
        // `1`, `'a'`, `b"x"`, `true`: reported by validation, which knows what to suggest.
        return Ok(Item::Expr(Expr::Scope(input.parse()?)));
    }
    if input.peek(Ident::peek_any) {
        return parse_unknown_word(input, cx);
    }
    Err(lookahead.error())
}

/// The `introspect` flag; it takes no value, and goes at the top level.
fn parse_introspect(input: ParseStream<'_>, cx: &mut Cx<'_>) -> syn::Result<Item> {
    let key: kw::introspect = input.parse()?;
    if input.peek(Token![=]) {
        let rest = skip_rest_of_item(input)?;
        cx.errors.push(syn::Error::new_spanned(
            quote::quote!(#key #rest),
            "`introspect` is a flag and takes no value: write `introspect` to introspect this handler's \
             tokens, or leave it out",
        ));
        return Ok(SKIPPED_OPTION);
    }
    if cx.depth > 0 {
        cx.errors.push(syn::Error::new(
            key.span,
            "options go at the top level of `#[requires_scope(…)]`, after the scopes, not inside `any(…)`/`all(…)`",
        ));
        return Ok(SKIPPED_OPTION);
    }
    Ok(Item::Introspect(key.span))
}

/// `dpop = "…"`; unlike `introspect` it is not a flag, so a bare `dpop` is reported with
/// the two values it takes.
fn parse_dpop(input: ParseStream<'_>, cx: &mut Cx<'_>) -> syn::Result<Item> {
    let key: kw::dpop = input.parse()?;
    if !input.peek(Token![=]) {
        let rest = skip_rest_of_item(input)?;
        cx.errors.push(syn::Error::new_spanned(
            quote::quote!(#key #rest),
            "`dpop` takes a value: `dpop = \"required\"` (this handler accepts only DPoP-bound tokens \
             with their proof) or `dpop = \"allowed\"` (the default: the `Authority`'s DPoP policy)",
        ));
        return Ok(SKIPPED_OPTION);
    }
    parse_option_value(input, key.span, cx).map(|value| value.map_or(SKIPPED_OPTION, Item::Dpop))
}

/// What an option that was reported during parsing becomes.
const SKIPPED_OPTION: Item = Item::Skipped { in_scope_position: false };

/// `= value` after a known option key; options are only allowed at the top level.
fn parse_option_value(input: ParseStream<'_>, key_span: Span, cx: &mut Cx<'_>) -> syn::Result<Option<OptionValue>> {
    input.parse::<Token![=]>()?;
    let value: syn::Expr = input.parse()?;
    if cx.depth > 0 {
        cx.errors.push(syn::Error::new(
            key_span,
            "options go at the top level of `#[requires_scope(…)]`, after the scopes, not inside `any(…)`/`all(…)`",
        ));
        return Ok(None);
    }
    Ok(Some(OptionValue { key_span, value }))
}

/// An identifier that is neither a combinator nor an option: an unknown option (`x = …`),
/// an unknown combinator (`x(…)`), or a scope written without quotes.
fn parse_unknown_word(input: ParseStream<'_>, cx: &mut Cx<'_>) -> syn::Result<Item> {
    let word = input.call(Ident::parse_any)?;
    if input.peek(Token![=]) && !input.peek(Token![==]) {
        skip_rest_of_item(input)?;
        cx.errors.push(unknown_option(&word));
        // `scope = "…"` was meant as a scope: do not also report that there is none.
        let name = word.unraw().to_string();
        return Ok(Item::Skipped { in_scope_position: name == "scope" || name == "scopes" });
    }
    if input.peek(token::Paren) {
        skip_rest_of_item(input)?;
        cx.errors.push(syn::Error::new(
            word.span(),
            format!("unknown combinator `{word}`: use `any(…)` (one of) or `all(…)` (every one of)"),
        ));
        return Ok(Item::Skipped { in_scope_position: true });
    }
    let rest = skip_rest_of_item(input)?;
    // `introspekt` or `dpop_required`: a misspelled option, not a scope without quotes.
    let name = word.unraw().to_string();
    if rest.is_empty()
        && (edit_distance(&name.to_ascii_lowercase(), "introspect") <= 3 || suggest_option(&name) == Some("dpop"))
    {
        cx.errors.push(unknown_option(&word));
        return Ok(SKIPPED_OPTION);
    }
    let mut tokens = word.to_token_stream();
    tokens.extend(rest);
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
    let error = syn::Error::new_spanned(tokens, message);
    cx.errors.push(error);
    Ok(Item::Skipped { in_scope_position: true })
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

/// `any(…)` / `all(…)`; the keyword is next in `input` and parentheses follow it.
fn parse_group(input: ParseStream<'_>, cx: &mut Cx<'_>) -> syn::Result<GroupExpr> {
    let keyword = input.call(Ident::parse_any)?;
    let op = if keyword == "any" { Op::Any } else { Op::All };
    let content;
    let paren = syn::parenthesized!(content in input);
    let mut tokens = keyword.to_token_stream();
    let mut parens = Group::new(Delimiter::Parenthesis, TokenStream::new());
    parens.set_span(paren.span.join());
    tokens.extend([TokenTree::Group(parens)]);
    if cx.depth + 1 >= MAX_DEPTH {
        return Err(syn::Error::new(
            keyword.span(),
            format!("`any(…)`/`all(…)` nest at most {MAX_DEPTH} levels deep: flatten this requirement"),
        ));
    }
    let mut members = Vec::new();
    let mut written = 0;
    let mut inner = Cx { errors: &mut *cx.errors, depth: cx.depth + 1 };
    while !content.is_empty() {
        written += 1;
        match parse_item(&content, &mut inner)? {
            Item::Expr(expr) => members.push(expr),
            Item::Aud(_)
            | Item::Iss(_)
            | Item::Crate(_)
            | Item::Introspect(_)
            | Item::Dpop(_)
            | Item::Skipped { .. } => {}
        }
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(GroupExpr { op, tokens, members, written })
}

/// Consumes the tokens of a malformed item up to the next comma at this level.
fn skip_rest_of_item(input: ParseStream<'_>) -> syn::Result<TokenStream> {
    input.step(|cursor| {
        let mut rest = *cursor;
        let mut skipped = TokenStream::new();
        while let Some((tree, next)) = rest.token_tree() {
            if matches!(&tree, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            skipped.extend([tree]);
            rest = next;
        }
        Ok((skipped, rest))
    })
}

/// The tokens of an expression, for spanning an error over all of it.
fn expr_tokens(expr: &Expr) -> TokenStream {
    match expr {
        Expr::Scope(lit) => lit.to_token_stream(),
        Expr::Group(group) => group.tokens.clone(),
    }
}

/// The annotated item: a fn whose body is kept as raw tokens.
///
/// The body is never parsed: it is emitted exactly as written, which keeps the expansion
/// faithful and cheap, and works for any syntax the compiler accepts.
pub(crate) struct Handler {
    /// Outer attributes, docs included.
    pub(crate) attrs: Vec<Attribute>,
    /// The fn's visibility.
    pub(crate) vis: Visibility,
    /// The signature, generics and where-clause included.
    pub(crate) sig: Signature,
    /// The brace-delimited body.
    pub(crate) body: TokenTree,
}

impl Parse for Handler {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let is_fn = input.peek(Token![fn])
            || input.peek(Token![async])
            || input.peek(Token![const])
            || input.peek(Token![unsafe])
            || input.peek(Token![extern]);
        if !is_fn {
            return Err(not_a_handler(input));
        }
        let sig: Signature = input.parse()?;
        if !input.peek(token::Brace) {
            return Err(syn::Error::new(
                sig.ident.span(),
                "`#[requires_scope]` goes on an `async fn` axum handler with a body: \
                 `async fn handler(…) -> … { … }`",
            ));
        }
        let body: TokenTree = input.parse()?;
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the handler's body"));
        }
        Ok(Handler { attrs, vis, sig, body })
    }
}

/// The error for an annotated item that is not a fn, spanned at the item's keyword
/// (`struct`, `impl`, …) where it can be found.
fn not_a_handler(input: ParseStream<'_>) -> syn::Error {
    let span = input
        .fork()
        .parse::<syn::Item>()
        .ok()
        .and_then(|item| item_keyword_span(&item))
        .unwrap_or_else(|| input.span());
    syn::Error::new(span, "`#[requires_scope]` goes on an `async fn` axum handler, not on this item")
}

/// The span of an item's introducing keyword, for the common kinds of item.
fn item_keyword_span(item: &syn::Item) -> Option<Span> {
    Some(match item {
        syn::Item::Struct(i) => i.struct_token.span,
        syn::Item::Enum(i) => i.enum_token.span,
        syn::Item::Impl(i) => i.impl_token.span,
        syn::Item::Mod(i) => i.mod_token.span,
        syn::Item::Trait(i) => i.trait_token.span,
        syn::Item::Const(i) => i.const_token.span,
        syn::Item::Static(i) => i.static_token.span,
        syn::Item::Type(i) => i.type_token.span,
        syn::Item::Use(i) => i.use_token.span,
        syn::Item::Union(i) => i.union_token.span,
        syn::Item::Macro(i) => i.mac.path.span(),
        _ => return None,
    })
}
