//! A strict JSON reader for JOSE headers and claim sets.
//!
//! serde_json alone is not strict enough for tokens: it keeps the last of duplicate
//! members (a parser differential attackers use, CVE-2022-39227) and nests up to depth
//! 128. This reader rejects any duplicate member name at any depth, any nesting deeper
//! than [`MAX_DEPTH`], a UTF-8 byte-order mark, and any top-level value other than an
//! object.

use std::{borrow::Cow, collections::HashSet, fmt};

use serde::{
    Deserialize,
    de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Map, Value};

/// Deepest nesting of arrays and objects accepted (the top-level object is depth 1).
pub(crate) const MAX_DEPTH: usize = 16;

/// Why a JSON document was refused. Deliberately carries no detail: serde's messages
/// quote the input, and the input is attacker-controlled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StrictJsonError;

/// Parses `bytes` as one JSON object with unique member names at every level.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) || nesting_depth(bytes) > MAX_DEPTH {
        return Err(StrictJsonError);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed.deserialize(&mut de).map_err(|_| StrictJsonError)?;
    de.end().map_err(|_| StrictJsonError)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError),
    }
}

/// The maximum bracket depth outside string literals. Cheap, and run before any
/// recursion so that a deeply nested document costs one linear scan.
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(StrictSeed)?;
            if map.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate member"));
            }
        }
        Ok(Value::Object(map))
    }
}

/// A member value as the verifier reads it: strings are borrowed from the document when
/// they have no escapes, so reading a claim set allocates almost nothing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Member<'de> {
    /// A JSON string.
    Str(Cow<'de, str>),
    /// A JSON number.
    Num(f64),
    /// An array whose elements are all strings (possibly empty).
    StrList(Vec<Cow<'de, str>>),
    /// Anything else: an object, a boolean, null, or an array with a non-string element.
    Other,
}

impl<'de> Member<'de> {
    /// The string, if this is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Receives the top-level members of an object read by [`read_object`].
pub(crate) trait Sink<'de> {
    /// Whether the value of the member `name` should be read into a [`Member`].
    fn wants(&self, name: &str) -> bool;
    /// One top-level member (each name at most once), with its value when wanted.
    fn member(&mut self, name: &str, value: Option<Member<'de>>);
}

/// Reads one JSON object with the same strictness as [`parse_object`] (unique names at
/// every depth, depth ≤ [`MAX_DEPTH`], no BOM, an object and nothing after it), handing
/// its top-level members to `sink` without building a map.
///
/// Depth is counted while reading (no separate pass): the reader stops at the first
/// container deeper than [`MAX_DEPTH`].
pub(crate) fn read_object<'de, S: Sink<'de>>(bytes: &'de [u8], sink: &mut S) -> Result<(), StrictJsonError> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(StrictJsonError);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Deserializer::deserialize_map(&mut de, TopVisitor { sink }).map_err(|_| StrictJsonError)?;
    de.end().map_err(|_| StrictJsonError)
}

/// Member names seen so far in one object: a short list, or a set once it grows.
#[derive(Default)]
struct SeenNames<'de> {
    list: Vec<Cow<'de, str>>,
    set: HashSet<Cow<'de, str>>,
}

impl<'de> SeenNames<'de> {
    /// Records `name`; `false` if it was already there.
    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if !self.set.is_empty() {
            return self.set.insert(name);
        }
        if self.list.contains(&name) {
            return false;
        }
        self.list.push(name);
        if self.list.len() > 16 {
            self.set.extend(self.list.drain(..));
        }
        true
    }
}

/// A member name, borrowed when it has no escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

struct TopVisitor<'s, S> {
    sink: &'s mut S,
}

impl<'de, S: Sink<'de>> Visitor<'de> for TopVisitor<'_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        let mut seen = SeenNames::default();
        while let Some(Name(name)) = access.next_key::<Name<'de>>()? {
            // The object itself is at depth 1: a container value would be at depth 2.
            let value = if self.sink.wants(&name) {
                Some(access.next_value_seed(MemberSeed { depth: 2 })?)
            } else {
                access.next_value_seed(SkipSeed { depth: 2 })?;
                None
            };
            self.sink.member(&name, value);
            if !seen.insert(name) {
                return Err(de::Error::custom("duplicate member"));
            }
        }
        Ok(())
    }
}

/// Reads a [`Member`] whose arrays or objects would sit at `depth`.
#[derive(Clone, Copy)]
struct MemberSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for MemberSeed {
    type Value = Member<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Member<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Refuses a container deeper than [`MAX_DEPTH`].
fn check_depth<E: de::Error>(depth: usize) -> Result<(), E> {
    if depth > MAX_DEPTH { Err(E::custom("nested too deeply")) } else { Ok(()) }
}

impl<'de> Visitor<'de> for MemberSeed {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Owned(v)))
    }
    #[allow(clippy::cast_precision_loss)] // NumericDates are checked against 2^53 later
    fn visit_u64<E>(self, v: u64) -> Result<Member<'de>, E> {
        Ok(Member::Num(v as f64))
    }
    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E>(self, v: i64) -> Result<Member<'de>, E> {
        Ok(Member::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Member<'de>, E> {
        Ok(Member::Num(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Member<'de>, E> {
        Ok(Member::Other)
    }
    fn visit_unit<E>(self) -> Result<Member<'de>, E> {
        Ok(Member::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Member<'de>, A::Error> {
        SkipSeed { depth: self.depth }.visit_map(access).map(|()| Member::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member<'de>, A::Error> {
        check_depth(self.depth)?;
        let inner = MemberSeed { depth: self.depth + 1 };
        let mut strings = Vec::new();
        let mut all_strings = true;
        while let Some(item) = seq.next_element_seed(inner)? {
            match item {
                Member::Str(s) if all_strings => strings.push(s),
                _ => all_strings = false,
            }
        }
        Ok(if all_strings { Member::StrList(strings) } else { Member::Other })
    }
}

/// Consumes a value whose arrays or objects would sit at `depth`, still refusing
/// duplicate member names and excessive depth in nested objects.
#[derive(Clone, Copy)]
struct SkipSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for SkipSeed {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SkipSeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        check_depth(self.depth)?;
        let inner = SkipSeed { depth: self.depth + 1 };
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        check_depth(self.depth)?;
        let inner = SkipSeed { depth: self.depth + 1 };
        let mut seen = SeenNames::default();
        while let Some(Name(name)) = access.next_key::<Name<'de>>()? {
            access.next_value_seed(inner)?;
            if !seen.insert(name) {
                return Err(de::Error::custom("duplicate member"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_an_object() {
        let map = parse_object(br#"{"a":1,"b":{"c":[1,2,{"d":null}]}}"#).unwrap();
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn rejects_duplicates_at_any_depth() {
        assert!(parse_object(br#"{"scope":"a","scope":"b"}"#).is_err());
        assert!(parse_object(br#"{"cnf":{"jkt":"a","jkt":"b"}}"#).is_err());
    }

    #[test]
    fn rejects_non_objects_bom_and_trailing_data() {
        for doc in [&b"[1]"[..], b"null", b"\"x\"", b"5", b"\xEF\xBB\xBF{}", b"{} {}", b"{"] {
            assert!(parse_object(doc).is_err(), "{doc:?}");
        }
    }

    #[derive(Default)]
    struct Collect(Vec<(String, Option<String>)>);

    impl<'de> Sink<'de> for Collect {
        fn wants(&self, name: &str) -> bool {
            name.starts_with('w')
        }
        fn member(&mut self, name: &str, value: Option<Member<'de>>) {
            self.0.push((name.to_owned(), value.map(|v| format!("{v:?}"))));
        }
    }

    #[test]
    fn read_object_borrows_and_is_as_strict_as_parse_object() {
        let mut sink = Collect::default();
        read_object(br#"{"w1":"a","w2":["x","y"],"w3":[1,"x"],"w4":5,"n":{"a":[1,{"b":2}]},"w5":"A"}"#, &mut sink)
            .unwrap();
        assert_eq!(
            sink.0,
            [
                ("w1".to_owned(), Some(r#"Str("a")"#.to_owned())),
                ("w2".to_owned(), Some(r#"StrList(["x", "y"])"#.to_owned())),
                ("w3".to_owned(), Some("Other".to_owned())),
                ("w4".to_owned(), Some("Num(5.0)".to_owned())),
                ("n".to_owned(), None),
                ("w5".to_owned(), Some(r#"Str("A")"#.to_owned())),
            ]
        );
        let many: String = (0..40).map(|i| format!("\"k{i}\":{i},")).collect();
        for doc in [
            &br#"{"a":1,"a":2}"#[..],
            br#"{"n":{"x":1,"x":2}}"#,
            br#"{"w":[{"x":1,"x":2}]}"#,
            br#"{"w":{"x":1,"x":2}}"#,
            b"[1]",
            b"null",
            b"\xEF\xBB\xBF{}",
            b"{} {}",
            format!("{{{many}\"k39\":0}}").as_bytes(),
        ] {
            assert!(read_object(doc, &mut Collect::default()).is_err(), "{}", String::from_utf8_lossy(doc));
            assert!(parse_object(doc).is_err());
        }
    }

    #[test]
    fn read_object_counts_depth_while_reading() {
        for (open, close) in [("{\"a\":", "}"), ("[", "]")] {
            let ok = format!("{{\"w\":{}1{}}}", open.repeat(15), close.repeat(15));
            assert!(read_object(ok.as_bytes(), &mut Collect::default()).is_ok(), "{ok}");
            assert!(parse_object(ok.as_bytes()).is_ok());
            for name in ["w", "n"] {
                let deep = format!("{{\"{name}\":{}1{}}}", open.repeat(16), close.repeat(16));
                assert!(read_object(deep.as_bytes(), &mut Collect::default()).is_err(), "{deep}");
                assert!(parse_object(deep.as_bytes()).is_err());
            }
        }
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{}{}", "{\"a\":".repeat(15) + "{", "}".repeat(16));
        assert!(parse_object(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "{\"a\":".repeat(16) + "{", "}".repeat(17));
        assert!(parse_object(deep.as_bytes()).is_err());
        // Brackets inside strings do not count.
        assert!(parse_object(br#"{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[["}"#).is_ok());
    }
}
