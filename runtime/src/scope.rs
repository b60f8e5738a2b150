//! Scopes: the granted set read from a verified token, and the requirement a handler
//! declares with `#[requires_scope]`.
//!
//! Scope tokens compare byte for byte (RFC 6749 §3.3): case-sensitive, no prefix, substring
//! or wildcard matching, and a `scope` string is split on the space character only.

use std::fmt;

/// A scope requirement, as `#[requires_scope]` declares it.
///
/// The macro builds these as constants; applications rarely name this type, but it is
/// public so that requirements can be evaluated and printed (for example in a policy
/// inventory or a test).
///
/// ```
/// use scopegate::ScopeExpr;
///
/// const DELETE: ScopeExpr = ScopeExpr::Any(&[
///     ScopeExpr::Scope("admin"),
///     ScopeExpr::All(&[ScopeExpr::Scope("write:appointments"), ScopeExpr::Scope("delete:appointments")]),
/// ]);
/// assert_eq!(DELETE.to_string(), r#"any("admin", all("write:appointments", "delete:appointments"))"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeExpr {
    /// One scope token that must be granted.
    Scope(&'static str),
    /// Every member must be satisfied (an empty list is satisfied).
    All(&'static [ScopeExpr]),
    /// At least one member must be satisfied (an empty list is never satisfied).
    Any(&'static [ScopeExpr]),
}

impl ScopeExpr {
    /// Whether `granted` satisfies this requirement.
    ///
    /// Each scope lookup is a binary search in the token's sorted scope list, so the cost
    /// is `O(k log n)` for `k` required and `n` granted scopes; nothing is re-split.
    #[must_use]
    pub fn is_satisfied_by(&self, granted: &Scopes) -> bool {
        match self {
            Self::Scope(scope) => granted.contains(scope),
            Self::All(members) => members.iter().all(|m| m.is_satisfied_by(granted)),
            Self::Any(members) => members.iter().any(|m| m.is_satisfied_by(granted)),
        }
    }

    /// Every scope the expression names, in declaration order, each once (for example
    /// the scopes an API advertises).
    #[must_use]
    pub fn scopes(&self) -> Vec<&'static str> {
        self.walk(false)
    }

    /// A set of scopes that satisfies the requirement when granted, in declaration order,
    /// each once: every member of an `all(…)`, and the first alternative of an `any(…)`.
    ///
    /// This is the value of the `scope` attribute of a 403 challenge. RFC 6750 §3.1 reads
    /// that attribute as the scopes needed, all of them, so a client that asks its issuer
    /// for exactly these gets a token that passes; the whole expression is in the JSON body
    /// of the response.
    ///
    /// ```
    /// use scopegate::ScopeExpr;
    ///
    /// const DELETE: ScopeExpr = ScopeExpr::Any(&[
    ///     ScopeExpr::Scope("admin"),
    ///     ScopeExpr::All(&[ScopeExpr::Scope("write:appointments"), ScopeExpr::Scope("delete:appointments")]),
    /// ]);
    /// assert_eq!(DELETE.satisfying_scopes(), ["admin"]);
    /// assert_eq!(DELETE.scopes(), ["admin", "write:appointments", "delete:appointments"]);
    /// ```
    #[must_use]
    pub fn satisfying_scopes(&self) -> Vec<&'static str> {
        self.walk(true)
    }

    /// [`collect`](Self::collect) into a vector.
    fn walk(&self, first_alternative: bool) -> Vec<&'static str> {
        let mut out = vec![""; self.occurrences()];
        let len = self.collect(first_alternative, &mut out, 0);
        out.truncate(len);
        out
    }

    /// How many scopes the expression names, repeats included: room for any walk.
    const fn occurrences(&self) -> usize {
        match self {
            Self::Scope(_) => 1,
            Self::All(members) | Self::Any(members) => {
                let (mut count, mut i) = (0, 0);
                while i < members.len() {
                    count += members[i].occurrences();
                    i += 1;
                }
                count
            }
        }
    }

    /// The one walk over a requirement: appends its scopes to `out[..len]` in declaration
    /// order, each once, and returns the new length; with `first_alternative`, only the
    /// first member of each `any(…)` is walked. `out` has room for
    /// [`occurrences`](Self::occurrences). A `const fn`, so that `#[requires_scope]`'s
    /// challenge is this walk too, run at compile time ([`Challenge`]).
    const fn collect(&self, first_alternative: bool, out: &mut [&'static str], mut len: usize) -> usize {
        match self {
            Self::Scope(scope) => {
                let mut i = 0;
                // `i` counts up to `len`, so `!=` is `<` here; `<` has a neighbour, `<=`,
                // that would also read the unused slot `out[len]` (its `""` matches no
                // real scope), a change no test could see.
                while i != len {
                    if same(out[i], scope) {
                        return len;
                    }
                    i += 1;
                }
                out[len] = *scope;
                len + 1
            }
            Self::All(members) | Self::Any(members) => {
                let take = if first_alternative && matches!(self, Self::Any(_)) && !members.is_empty() {
                    1
                } else {
                    members.len()
                };
                let mut i = 0;
                while i < take {
                    len = members[i].collect(first_alternative, out, len);
                    i += 1;
                }
                len
            }
        }
    }
}

/// Byte-for-byte equality, in a `const fn`.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The 403 challenge's `scope` value of a `#[requires_scope]` requirement, built at compile
/// time by the walk of [`ScopeExpr::satisfying_scopes`]. Not public API.
///
/// The expansion evaluates it in constants, since an array's length must itself be a
/// constant: the set ([`Challenge::new`], with `N` = [`challenge_room`]), its text as bytes
/// ([`Challenge::text`], with `M` = [`Challenge::text_len`]), and [`challenge_str`] of them.
#[doc(hidden)]
#[derive(Debug)]
pub struct Challenge<const N: usize> {
    /// The set, in `scopes[..len]`.
    scopes: [&'static str; N],
    /// How many scopes the set has.
    len: usize,
}

/// The room the challenge set of `expr` needs: `N` of [`Challenge`]. Not public API.
#[doc(hidden)]
#[must_use]
pub const fn challenge_room(expr: &ScopeExpr) -> usize {
    expr.occurrences()
}

impl<const N: usize> Challenge<N> {
    /// The set of `expr`; `N` is [`challenge_room`] of it.
    #[must_use]
    pub const fn new(expr: &ScopeExpr) -> Self {
        let mut scopes = [""; N];
        let len = expr.collect(true, &mut scopes, 0);
        Self { scopes, len }
    }

    /// The length of the set's text: its scopes separated by single spaces.
    #[must_use]
    pub const fn text_len(&self) -> usize {
        let (mut total, mut i) = (0, 0);
        while i < self.len {
            total += self.scopes[i].len() + if i > 0 { 1 } else { 0 };
            i += 1;
        }
        total
    }

    /// The set's text as bytes; `M` is [`text_len`](Self::text_len).
    #[must_use]
    pub const fn text<const M: usize>(&self) -> [u8; M] {
        let mut text = [b' '; M];
        let (mut at, mut i) = (0, 0);
        while i < self.len {
            if i > 0 {
                at += 1;
            }
            let scope = self.scopes[i].as_bytes();
            let mut j = 0;
            while j < scope.len() {
                text[at] = scope[j];
                at += 1;
                j += 1;
            }
            i += 1;
        }
        text
    }
}

/// The challenge text of [`Challenge::text`]. Not public API.
///
/// The bytes are `&str`s joined by spaces, so they are UTF-8; were they not, the constant
/// the expansion evaluates this in would fail to compile rather than hold a wrong value.
#[doc(hidden)]
#[must_use]
#[allow(clippy::panic, reason = "evaluated in a constant: a compile error, never a run-time panic")]
pub const fn challenge_str(text: &'static [u8]) -> &'static str {
    match core::str::from_utf8(text) {
        Ok(text) => text,
        Err(_) => panic!("a `#[requires_scope]` challenge is not UTF-8"),
    }
}

impl fmt::Display for ScopeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, members) = match self {
            Self::Scope(s) => return write!(f, "{s:?}"),
            Self::All(m) => ("all", m),
            Self::Any(m) => ("any", m),
        };
        write!(f, "{name}(")?;
        for (i, m) in members.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str(")")
    }
}

/// The scopes granted by a verified access token.
///
/// Built once per token from the configured scope claim: one copy of the scope text and
/// a list of ranges into it, sorted by content, so lookups are binary searches and
/// nothing is re-split or re-allocated per check.
#[derive(Clone, Default)]
pub struct Scopes {
    /// The scope text the ranges point into.
    source: Box<str>,
    /// `(start, end)` byte ranges of the distinct scope tokens, sorted by their text.
    sorted: Vec<(usize, usize)>,
}

impl Scopes {
    /// Splits an RFC 6749 `scope` string on SP (U+0020) only; empty segments (from
    /// repeated, leading or trailing spaces) are ignored. Tabs and other whitespace stay
    /// part of the token, so `"a\tb"` is the single scope `a\tb`.
    #[must_use]
    pub fn from_space_delimited(scope: &str) -> Self {
        let mut sorted = Vec::with_capacity(scope.bytes().filter(|b| *b == b' ').count() + 1);
        let mut start = 0;
        for part in scope.split(' ') {
            if !part.is_empty() {
                sorted.push((start, start + part.len()));
            }
            start += part.len() + 1;
        }
        Self::finish(scope.into(), sorted)
    }

    fn finish(source: Box<str>, mut sorted: Vec<(usize, usize)>) -> Self {
        let text = |&(a, b): &(usize, usize)| source.get(a..b).unwrap_or_default();
        sorted.sort_unstable_by(|x, y| text(x).cmp(text(y)));
        sorted.dedup_by(|x, y| text(x) == text(y));
        Self { source, sorted }
    }

    fn text(&self, (a, b): (usize, usize)) -> &str {
        self.source.get(a..b).unwrap_or_default()
    }

    /// Whether `scope` was granted (byte-exact comparison).
    #[must_use]
    pub fn contains(&self, scope: &str) -> bool {
        self.sorted.binary_search_by(|r| self.text(*r).cmp(scope)).is_ok()
    }

    /// The granted scopes in ascending byte order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.sorted.iter().map(|r| self.text(*r))
    }

    /// How many distinct scopes were granted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether no scope was granted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

/// A JSON array (or any serde sequence) of the granted scopes in ascending byte order, as
/// [`iter`](Scopes::iter) gives them: a handler can answer with its token's scopes
/// without collecting them first.
impl serde::Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'a> FromIterator<&'a str> for Scopes {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut source = String::new();
        let mut sorted = Vec::new();
        for scope in iter {
            sorted.push((source.len(), source.len() + scope.len()));
            source.push_str(scope);
        }
        Self::finish(source.into(), sorted)
    }
}

impl PartialEq for Scopes {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Scopes {}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NESTED: ScopeExpr = ScopeExpr::Any(&[
        ScopeExpr::Scope("admin"),
        ScopeExpr::All(&[ScopeExpr::Scope("write"), ScopeExpr::Scope("delete")]),
    ]);

    #[test]
    fn splits_on_space_only_and_ignores_empty_segments() {
        let s = Scopes::from_space_delimited("  b a\tc  b ");
        assert_eq!(s.iter().collect::<Vec<_>>(), ["a\tc", "b"]);
        assert!(!s.contains("a"));
    }

    #[test]
    fn scopes_serialize_as_an_array_of_distinct_scopes_in_ascending_order() {
        let s = Scopes::from_space_delimited("write:x read:x  admin read:x");
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["admin","read:x","write:x"]"#);
        assert_eq!(serde_json::to_string(&Scopes::default()).unwrap(), "[]");
    }

    #[test]
    fn nested_any_all_evaluation() {
        assert!(NESTED.is_satisfied_by(&Scopes::from_space_delimited("admin")));
        assert!(NESTED.is_satisfied_by(&Scopes::from_space_delimited("delete write")));
        assert!(!NESTED.is_satisfied_by(&Scopes::from_space_delimited("write")));
        assert!(!NESTED.is_satisfied_by(&Scopes::default()));
    }

    #[test]
    fn comparison_is_byte_exact() {
        let s = Scopes::from_space_delimited("read:appointments:all Read:Appointments");
        assert!(!s.contains("read:appointments"));
    }

    #[test]
    fn scopes_lists_every_alternative_once() {
        assert_eq!(NESTED.scopes(), ["admin", "write", "delete"]);
    }

    #[test]
    fn a_requirement_prints_as_its_expression() {
        assert_eq!(NESTED.to_string(), r#"any("admin", all("write", "delete"))"#);
        assert_eq!(ScopeExpr::Scope("read").to_string(), r#""read""#);
    }

    #[test]
    fn the_granted_set_counts_each_distinct_scope_once() {
        let granted = Scopes::from_space_delimited("b a b");
        assert_eq!((granted.len(), granted.is_empty()), (2, false));
        let none = Scopes::from_space_delimited("  ");
        assert_eq!((none.len(), none.is_empty()), (0, true));
    }

    #[test]
    fn granted_sets_are_equal_when_they_hold_the_same_scopes() {
        let listed: Scopes = ["write", "read", "write"].into_iter().collect();
        assert_eq!(Scopes::from_space_delimited("read write"), listed);
        assert_ne!(Scopes::from_space_delimited("read"), listed);
    }

    #[test]
    fn a_granted_set_debugs_as_a_sorted_set() {
        assert_eq!(format!("{:?}", Scopes::from_space_delimited("b a")), r#"{"a", "b"}"#);
    }

    /// What `#[requires_scope]` expands `CHALLENGE` to.
    macro_rules! challenge {
        ($expr:expr) => {{
            const EXPR: ScopeExpr = $expr;
            const SET: Challenge<{ challenge_room(&EXPR) }> = Challenge::new(&EXPR);
            const TEXT: [u8; SET.text_len()] = SET.text();
            challenge_str(&TEXT)
        }};
    }

    #[test]
    fn the_compile_time_challenge_is_the_satisfying_set_joined_by_spaces() {
        use ScopeExpr::{All, Any, Scope};
        const AUDIT: ScopeExpr = All(&[Scope("audit"), NESTED, Scope("audit")]);
        const DEEPER: ScopeExpr = Any(&[All(&[Scope("w"), Scope("d")]), NESTED]);
        const REPEATS: ScopeExpr = All(&[Scope("a"), Scope("b"), Scope("a"), Any(&[Scope("b"), Scope("c")])]);
        const LONGER: ScopeExpr = All(&[Scope("https://api.example.test/read"), Scope("read"), Scope("re")]);
        let cases = [
            (NESTED, challenge!(NESTED), "admin"),
            (AUDIT, challenge!(AUDIT), "audit admin"),
            (DEEPER, challenge!(DEEPER), "w d"),
            (REPEATS, challenge!(REPEATS), "a b"),
            (LONGER, challenge!(LONGER), "https://api.example.test/read read re"),
            (Scope("one"), challenge!(Scope("one")), "one"),
            (All(&[]), challenge!(All(&[])), ""),
            (Any(&[]), challenge!(Any(&[])), ""),
        ];
        for (expr, challenge, expected) in cases {
            assert_eq!(challenge, expected, "{expr}");
            assert_eq!(challenge, expr.satisfying_scopes().join(" "), "{expr}");
        }
    }

    #[test]
    fn the_challenge_set_satisfies_the_requirement() {
        assert_eq!(NESTED.satisfying_scopes(), ["admin"]);
        let expr = ScopeExpr::All(&[ScopeExpr::Scope("audit"), NESTED, ScopeExpr::Scope("audit")]);
        assert_eq!(expr.satisfying_scopes(), ["audit", "admin"]);
        let deeper = ScopeExpr::Any(&[ScopeExpr::All(&[ScopeExpr::Scope("w"), ScopeExpr::Scope("d")]), NESTED]);
        assert_eq!(deeper.satisfying_scopes(), ["w", "d"]);
        for expr in [NESTED, expr, deeper] {
            let granted: Scopes = expr.satisfying_scopes().into_iter().collect();
            assert!(expr.is_satisfied_by(&granted), "{expr}");
        }
    }
}
