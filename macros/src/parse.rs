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
//! Parsing is syntax only: it records what was written, item by item in source order with
//! the tokens' spans, and judges none of it. It is deliberately lenient, so that
//! [`crate::validate`] can report every problem at once, each at its own token: any literal
//! is read where a scope goes, any expression after a known key, and a word that fits no
//! rule (`audience = …`, `one(…)`, `read:items`) is kept as an item of its own with the
//! tokens after it up to the next comma. Only input that cannot be read at all (a missing
//! comma, `aud` without `=`, groups nested deeper than [`MAX_DEPTH`]) fails the parse.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned as _;
use syn::{Attribute, Ident, Lit, LitStr, Signature, Token, Visibility, token};

/// Custom keywords of the attribute.
pub(crate) mod kw {
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
    /// The comma-separated items, in source order.
    pub(crate) items: Vec<Item>,
}

/// One comma-separated item of an argument list, as written.
pub(crate) enum Item {
    /// A scope expression: a literal or `any(…)`/`all(…)`.
    Expr(Expr),
    /// `aud = …`, `iss = …`, `crate = …` or `dpop = …`.
    Option(OptionValue),
    /// `introspect`, and the tokens after it up to the next comma when they start with `=`.
    Introspect {
        /// The keyword.
        key: kw::introspect,
        /// `= …`, when written.
        value: Option<TokenStream>,
    },
    /// `dpop` not followed by `=`, and the tokens after it up to the next comma.
    BareDpop {
        /// The keyword.
        key: kw::dpop,
        /// What follows the keyword (usually nothing).
        rest: TokenStream,
    },
    /// `any` or `all` not followed by parentheses (the tokens after it are skipped).
    BareCombinator(Ident),
    /// `word = …` with a word that is no option's key (the value is skipped).
    UnknownKey(Ident),
    /// `word(…)` with a word that is no combinator (the arguments are skipped).
    UnknownCall(Ident),
    /// Any other word, and the tokens after it up to the next comma (`read:items` arrives
    /// as `read` followed by `:` `items`).
    Word {
        /// The word.
        word: Ident,
        /// What follows the word.
        rest: TokenStream,
    },
}

/// The key of a `key = value` option.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Key {
    /// `aud`.
    Aud,
    /// `iss`.
    Iss,
    /// `crate`.
    Crate,
    /// `dpop`.
    Dpop,
}

impl Key {
    /// The key as written.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Key::Aud => "aud",
            Key::Iss => "iss",
            Key::Crate => "crate",
            Key::Dpop => "dpop",
        }
    }
}

/// A `key = value` option.
pub(crate) struct OptionValue {
    /// Which option.
    pub(crate) key: Key,
    /// The span of the option's key.
    pub(crate) key_span: Span,
    /// The value as written.
    pub(crate) value: syn::Expr,
}

/// One scope expression.
pub(crate) enum Expr {
    /// A literal where a scope goes.
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
    /// The items between the parentheses, in source order.
    pub(crate) items: Vec<Item>,
}

/// A combinator.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    /// `all(…)`: every member is required.
    All,
    /// `any(…)`: one member suffices.
    Any,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        parse_items(input, 0).map(|items| Args { items })
    }
}

/// The comma-separated items of an argument list `depth` groups deep.
fn parse_items(input: ParseStream<'_>, depth: usize) -> syn::Result<Vec<Item>> {
    let mut items = Vec::new();
    while !input.is_empty() {
        items.push(parse_item(input, depth)?);
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(items)
}

/// Parses one item up to (not including) the next comma at this level.
fn parse_item(input: ParseStream<'_>, depth: usize) -> syn::Result<Item> {
    let lookahead = input.lookahead1();
    if lookahead.peek(LitStr) {
        return Ok(Item::Expr(Expr::Scope(input.parse()?)));
    }
    if lookahead.peek(kw::any) || lookahead.peek(kw::all) {
        if input.peek2(token::Paren) {
            return parse_group(input, depth).map(|group| Item::Expr(Expr::Group(group)));
        }
        let keyword: Ident = input.parse()?;
        skip_rest_of_item(input)?;
        return Ok(Item::BareCombinator(keyword));
    }
    if lookahead.peek(kw::aud) {
        let key: kw::aud = input.parse()?;
        return parse_option_value(input, Key::Aud, key.span);
    }
    if lookahead.peek(kw::iss) {
        let key: kw::iss = input.parse()?;
        return parse_option_value(input, Key::Iss, key.span);
    }
    if lookahead.peek(kw::introspect) {
        let key: kw::introspect = input.parse()?;
        let value = if input.peek(Token![=]) { Some(skip_rest_of_item(input)?) } else { None };
        return Ok(Item::Introspect { key, value });
    }
    if lookahead.peek(kw::dpop) {
        let key: kw::dpop = input.parse()?;
        if !input.peek(Token![=]) {
            let rest = skip_rest_of_item(input)?;
            return Ok(Item::BareDpop { key, rest });
        }
        return parse_option_value(input, Key::Dpop, key.span);
    }
    if lookahead.peek(Token![crate]) {
        let key: Token![crate] = input.parse()?;
        return parse_option_value(input, Key::Crate, key.span);
    }
    if input.peek(Lit) {
        // `1`, `'a'`, `b"x"`, `true`: not scopes, which validation says.
        return Ok(Item::Expr(Expr::Scope(input.parse()?)));
    }
    if input.peek(Ident::peek_any) {
        return parse_word(input);
    }
    Err(lookahead.error())
}

/// `= value` after a known option key.
fn parse_option_value(input: ParseStream<'_>, key: Key, key_span: Span) -> syn::Result<Item> {
    input.parse::<Token![=]>()?;
    let value: syn::Expr = input.parse()?;
    Ok(Item::Option(OptionValue { key, key_span, value }))
}

/// An identifier that is neither a combinator nor an option's key: `x = …`, `x(…)`, or a
/// word with whatever follows it.
fn parse_word(input: ParseStream<'_>) -> syn::Result<Item> {
    let word = input.call(Ident::parse_any)?;
    if input.peek(Token![=]) && !input.peek(Token![==]) {
        skip_rest_of_item(input)?;
        return Ok(Item::UnknownKey(word));
    }
    if input.peek(token::Paren) {
        skip_rest_of_item(input)?;
        return Ok(Item::UnknownCall(word));
    }
    let rest = skip_rest_of_item(input)?;
    Ok(Item::Word { word, rest })
}

/// `any(…)` / `all(…)`; the keyword is next in `input` and parentheses follow it.
fn parse_group(input: ParseStream<'_>, depth: usize) -> syn::Result<GroupExpr> {
    let keyword = input.call(Ident::parse_any)?;
    let op = if keyword == "any" { Op::Any } else { Op::All };
    let content;
    let paren = syn::parenthesized!(content in input);
    let mut tokens = keyword.to_token_stream();
    let mut parens = Group::new(Delimiter::Parenthesis, TokenStream::new());
    parens.set_span(paren.span.join());
    tokens.extend([TokenTree::Group(parens)]);
    if depth + 1 >= MAX_DEPTH {
        return Err(syn::Error::new(
            keyword.span(),
            format!("`any(…)`/`all(…)` nest at most {MAX_DEPTH} levels deep: flatten this requirement"),
        ));
    }
    let items = parse_items(&content, depth + 1)?;
    Ok(GroupExpr { op, tokens, items })
}

/// Consumes the tokens of an item up to the next comma at this level.
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
