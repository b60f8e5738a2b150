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

    /// Every scope the expression names, in declaration order, each once.
    ///
    /// This is the value of the `scope` attribute of a 403 challenge: for `any(...)` it
    /// lists the alternatives too, so a client learns every scope that can satisfy the
    /// route.
    #[must_use]
    pub fn scopes(&self) -> Vec<&'static str> {
        fn walk(expr: &ScopeExpr, out: &mut Vec<&'static str>) {
            match expr {
                ScopeExpr::Scope(s) => {
                    if !out.contains(s) {
                        out.push(s);
                    }
                }
                ScopeExpr::All(members) | ScopeExpr::Any(members) => {
                    for m in *members {
                        walk(m, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
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
/// Built once per token from the configured scope claim. Lookups are binary searches over
/// a sorted list of the token's scope strings.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    /// Sorted, de-duplicated scope tokens.
    sorted: Vec<Box<str>>,
}

impl Scopes {
    /// Splits an RFC 6749 `scope` string on SP (U+0020) only; empty segments (from
    /// repeated, leading or trailing spaces) are ignored. Tabs and other whitespace stay
    /// part of the token, so `"a\tb"` is the single scope `a\tb`.
    #[must_use]
    pub fn from_space_delimited(scope: &str) -> Self {
        Self::from_iter(scope.split(' ').filter(|s| !s.is_empty()))
    }

    /// Whether `scope` was granted (byte-exact comparison).
    #[must_use]
    pub fn contains(&self, scope: &str) -> bool {
        self.sorted.binary_search_by(|s| (**s).cmp(scope)).is_ok()
    }

    /// The granted scopes in ascending byte order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.sorted.iter().map(|s| &**s)
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

impl<'a> FromIterator<&'a str> for Scopes {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut sorted: Vec<Box<str>> = iter.into_iter().map(Box::from).collect();
        sorted.sort_unstable();
        sorted.dedup();
        Self { sorted }
    }
}

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
    fn challenge_lists_every_alternative_once() {
        assert_eq!(NESTED.scopes(), ["admin", "write", "delete"]);
    }
}
