//! A strict JSON reader for JOSE headers, claim sets and the documents scopegate fetches.
//!
//! serde_json alone is not strict enough for tokens: it keeps the last of duplicate
//! members (a parser differential attackers use, CVE-2022-39227) and nests up to depth
//! 128. This reader rejects any duplicate member name at any depth, any nesting deeper
//! than [`MAX_DEPTH`], a UTF-8 byte-order mark, and any top-level value other than an
//! object.
//!
//! There is one reader ([`read`]): it walks the document once, and each check lives in
//! one place (member names in [`members`], depth in [`Read`]). What it keeps is the
//! caller's choice: a [`Receiver`] takes the members of an object, and a [`Build`] says
//! what to make of each value: [`Member`]s borrowed from the document ([`read_object`],
//! for the verifier's claim sets and headers), whole [`Value`]s ([`parse_object`], for
//! documents read as maps), or nothing (values nobody asked for, skipped but checked).

use std::{borrow::Cow, collections::HashSet, fmt, marker::PhantomData};

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

/// Parses `bytes` as one JSON object with unique member names at every level, into a map.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let mut object = Object::default();
    read(bytes, &mut object)?;
    Ok(object.0)
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
pub(crate) fn read_object<'de, S: Sink<'de>>(bytes: &'de [u8], sink: &mut S) -> Result<(), StrictJsonError> {
    read(bytes, sink)
}

/// [`read_object`] of text already known to be UTF-8 (a token's decoded claim set): the
/// same strictness, without checking each string's UTF-8 again.
pub(crate) fn read_text_object<'de, S: Sink<'de>>(text: &'de str, sink: &mut S) -> Result<(), StrictJsonError> {
    read_with(text.as_bytes(), serde_json::Deserializer::from_str(text), sink)
}

/// The reader. Depth is counted while reading: it stops at the first container deeper
/// than [`MAX_DEPTH`], so a deeply nested document costs no deep recursion.
fn read<'de, R: Receiver<'de>>(bytes: &'de [u8], receiver: &mut R) -> Result<(), StrictJsonError> {
    read_with(bytes, serde_json::Deserializer::from_slice(bytes), receiver)
}

/// Reads the document `bytes` through `de` (serde_json's reader of those same bytes, as
/// bytes or as text).
fn read_with<'de, J: serde_json::de::Read<'de>, R: Receiver<'de>>(
    bytes: &[u8],
    mut de: serde_json::Deserializer<J>,
    receiver: &mut R,
) -> Result<(), StrictJsonError> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(StrictJsonError);
    }
    Deserializer::deserialize_map(&mut de, TopLevel { receiver }).map_err(|_| StrictJsonError)?;
    de.end().map_err(|_| StrictJsonError)
}

/// Receives the members of an object, each name at most once: a [`Sink`] at the top
/// level, or the object a [`Build`] is making.
trait Receiver<'de> {
    /// What the values of wanted members are read into.
    type Build: Build<'de>;
    /// Whether the value of the member `name` should be read (otherwise it is skipped,
    /// and checked all the same).
    fn wants(&self, name: &str) -> bool;
    /// One member, with its value when wanted.
    fn member(&mut self, name: &str, value: Option<<Self::Build as Build<'de>>::Out>);
}

impl<'de, S: Sink<'de>> Receiver<'de> for S {
    type Build = AsMember;
    fn wants(&self, name: &str) -> bool {
        Sink::wants(self, name)
    }
    fn member(&mut self, name: &str, value: Option<Member<'de>>) {
        Sink::member(self, name, value);
    }
}

/// What the reader makes of the values it reads. The reader does every check; a `Build`
/// only keeps what its caller needs.
trait Build<'de> {
    /// What one value becomes.
    type Out;
    /// What the elements of an array are read with.
    type Element: Build<'de>;
    /// An array being read.
    type Array: Default;
    /// An object being read: it receives its members.
    type Object: Receiver<'de> + Default;
    /// A boolean.
    fn bool(v: bool) -> Self::Out;
    /// `null`.
    fn null() -> Self::Out;
    /// A number that is a non-negative integer.
    fn u64(v: u64) -> Self::Out;
    /// A number that is a negative integer.
    fn i64(v: i64) -> Self::Out;
    /// Any other number.
    fn f64(v: f64) -> Self::Out;
    /// A string with escapes (decoded, so not borrowed from the document).
    fn str(v: &str) -> Self::Out;
    /// A string without escapes, borrowed from the document.
    fn borrowed_str(v: &'de str) -> Self::Out {
        Self::str(v)
    }
    /// One element of an array.
    fn push(array: &mut Self::Array, element: <Self::Element as Build<'de>>::Out);
    /// A whole array.
    fn array(array: Self::Array) -> Self::Out;
    /// A whole object.
    fn object(object: Self::Object) -> Self::Out;
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

/// Reads [`Member`]s: the strings, numbers and string arrays of a claim set or header.
struct AsMember;

impl<'de> Build<'de> for AsMember {
    type Out = Member<'de>;
    type Element = Self;
    type Array = Strings<'de>;
    type Object = Skipped;

    fn bool(_: bool) -> Member<'de> {
        Member::Other
    }
    fn null() -> Member<'de> {
        Member::Other
    }
    #[allow(clippy::cast_precision_loss)] // NumericDates are checked against 2^53 later
    fn u64(v: u64) -> Member<'de> {
        Member::Num(v as f64)
    }
    #[allow(clippy::cast_precision_loss)]
    fn i64(v: i64) -> Member<'de> {
        Member::Num(v as f64)
    }
    fn f64(v: f64) -> Member<'de> {
        Member::Num(v)
    }
    fn str(v: &str) -> Member<'de> {
        Member::Str(Cow::Owned(v.to_owned()))
    }
    fn borrowed_str(v: &'de str) -> Member<'de> {
        Member::Str(Cow::Borrowed(v))
    }
    fn push(array: &mut Strings<'de>, element: Member<'de>) {
        match element {
            Member::Str(s) if !array.other => array.strings.push(s),
            _ => array.other = true,
        }
    }
    fn array(array: Strings<'de>) -> Member<'de> {
        if array.other { Member::Other } else { Member::StrList(array.strings) }
    }
    fn object(Skipped: Skipped) -> Member<'de> {
        Member::Other
    }
}

/// An array read by [`AsMember`]: its strings, until an element is not one.
#[derive(Default)]
struct Strings<'de> {
    strings: Vec<Cow<'de, str>>,
    /// An element was not a string.
    other: bool,
}

/// Reads whole [`Value`]s.
struct AsValue;

/// An object read into a map (see [`parse_object`]).
#[derive(Default)]
struct Object(Map<String, Value>);

impl<'de> Receiver<'de> for Object {
    type Build = AsValue;
    fn wants(&self, _: &str) -> bool {
        true
    }
    fn member(&mut self, name: &str, value: Option<Value>) {
        self.0.insert(name.to_owned(), value.unwrap_or_default());
    }
}

impl<'de> Build<'de> for AsValue {
    type Out = Value;
    type Element = Self;
    type Array = Vec<Value>;
    type Object = Object;

    fn bool(v: bool) -> Value {
        Value::Bool(v)
    }
    fn null() -> Value {
        Value::Null
    }
    fn u64(v: u64) -> Value {
        Value::from(v)
    }
    fn i64(v: i64) -> Value {
        Value::from(v)
    }
    fn f64(v: f64) -> Value {
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
    fn str(v: &str) -> Value {
        Value::String(v.to_owned())
    }
    fn push(array: &mut Vec<Value>, element: Value) {
        array.push(element);
    }
    fn array(array: Vec<Value>) -> Value {
        Value::Array(array)
    }
    fn object(object: Object) -> Value {
        Value::Object(object.0)
    }
}

/// Keeps nothing: values nobody asked for, read only to be checked.
struct Skip;

/// An object whose members are all skipped.
#[derive(Default)]
struct Skipped;

impl<'de> Receiver<'de> for Skipped {
    type Build = Skip;
    fn wants(&self, _: &str) -> bool {
        false
    }
    fn member(&mut self, _: &str, _: Option<()>) {}
}

impl<'de> Build<'de> for Skip {
    type Out = ();
    type Element = Self;
    type Array = ();
    type Object = Skipped;

    fn bool(_: bool) {}
    fn null() {}
    fn u64(_: u64) {}
    fn i64(_: i64) {}
    fn f64(_: f64) {}
    fn str(_: &str) {}
    fn push((): &mut (), (): ()) {}
    fn array((): ()) {}
    fn object(Skipped: Skipped) {}
}

/// The top-level value: an object whose members go to the caller's receiver. It is at
/// depth 1, so its containers are at depth 2.
struct TopLevel<'r, R> {
    receiver: &'r mut R,
}

impl<'de, R: Receiver<'de>> Visitor<'de> for TopLevel<'_, R> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<(), A::Error> {
        members(access, 2, self.receiver)
    }
}

/// Reads the members of an object into `receiver`, refusing a duplicate name: the one
/// place names are checked. `depth` is where containers among the values sit.
fn members<'de, A: MapAccess<'de>, R: Receiver<'de>>(
    mut access: A,
    depth: usize,
    receiver: &mut R,
) -> Result<(), A::Error> {
    let mut seen = SeenNames::default();
    while let Some(Name(name)) = access.next_key::<Name<'de>>()? {
        // A borrowed name (no escapes) is copied as a pointer, not as text.
        if !seen.insert(name.clone()) {
            return Err(de::Error::custom("duplicate member"));
        }
        let value = if receiver.wants(&name) {
            Some(access.next_value_seed(Read::<R::Build>::at(depth))?)
        } else {
            access.next_value_seed(Read::<Skip>::at(depth))?;
            None
        };
        receiver.member(&name, value);
    }
    Ok(())
}

/// Reads one value with the [`Build`] `B`; its arrays or objects would sit at `depth`,
/// refused beyond [`MAX_DEPTH`]: the one place depth is checked.
struct Read<B> {
    depth: usize,
    build: PhantomData<B>,
}

impl<B> Read<B> {
    fn at(depth: usize) -> Self {
        Self { depth, build: PhantomData }
    }

    /// Entering a container at this depth.
    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth > MAX_DEPTH { Err(E::custom("nested too deeply")) } else { Ok(self.depth + 1) }
    }
}

impl<'de, B: Build<'de>> DeserializeSeed<'de> for Read<B> {
    type Value = B::Out;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<B::Out, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, B: Build<'de>> Visitor<'de> for Read<B> {
    type Value = B::Out;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<B::Out, E> {
        Ok(B::bool(v))
    }
    fn visit_unit<E>(self) -> Result<B::Out, E> {
        Ok(B::null())
    }
    fn visit_u64<E>(self, v: u64) -> Result<B::Out, E> {
        Ok(B::u64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<B::Out, E> {
        Ok(B::i64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<B::Out, E> {
        Ok(B::f64(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<B::Out, E> {
        Ok(B::borrowed_str(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<B::Out, E> {
        Ok(B::str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<B::Out, A::Error> {
        let inner = self.enter()?;
        let mut array = B::Array::default();
        while let Some(element) = seq.next_element_seed(Read::<B::Element>::at(inner))? {
            B::push(&mut array, element);
        }
        Ok(B::array(array))
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<B::Out, A::Error> {
        let inner = self.enter()?;
        let mut object = B::Object::default();
        members(access, inner, &mut object)?;
        Ok(B::object(object))
    }
}

/// How many member names [`SeenNames`] keeps in its array before it uses its set.
const FEW_NAMES: usize = 16;

/// Member names seen so far in one object: the first [`FEW_NAMES`] names borrowed from the
/// document in an array on the stack, each with a [`tag`] compared before its text; names
/// with escapes, and any past the first few, in a set. Every name is looked up in both.
struct SeenNames<'de> {
    len: usize,
    tags: [u32; FEW_NAMES],
    names: [&'de str; FEW_NAMES],
    more: HashSet<Cow<'de, str>>,
}

impl Default for SeenNames<'_> {
    fn default() -> Self {
        Self { len: 0, tags: [0; FEW_NAMES], names: [""; FEW_NAMES], more: HashSet::new() }
    }
}

/// A name's length, first byte and last byte: equal names have equal tags, so the text of
/// a name is compared only with the names that share its tag.
fn tag(name: &str) -> u32 {
    let bytes = name.as_bytes();
    let end = |b: Option<&u8>| u32::from(b.copied().unwrap_or_default());
    (name.len() as u32) << 16 ^ end(bytes.first()) << 8 ^ end(bytes.last())
}

impl<'de> SeenNames<'de> {
    /// Records `name`; `false` if it was already there.
    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        let tag = tag(&name);
        let few = self.tags.iter().zip(&self.names).take(self.len);
        if few.into_iter().any(|(t, n)| *t == tag && **n == *name)
            || (!self.more.is_empty() && self.more.contains(&*name))
        {
            return false;
        }
        match (name, self.tags.get_mut(self.len), self.names.get_mut(self.len)) {
            (Cow::Borrowed(name), Some(t), Some(n)) => {
                *t = tag;
                *n = name;
                self.len += 1;
            }
            (name, _, _) => {
                self.more.insert(name);
            }
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

    /// What a reader made of a document: its members, or the refusal.
    fn outcome(result: Result<(), StrictJsonError>, sink: Collect) -> Option<Vec<(String, Option<String>)>> {
        result.ok().map(|()| sink.0)
    }

    fn readers_agree(doc: &str) {
        let mut bytes = Collect::default();
        let by_bytes = outcome(read_object(doc.as_bytes(), &mut bytes), bytes);
        let mut text = Collect::default();
        let by_text = outcome(read_text_object(doc, &mut text), text);
        assert_eq!(by_text, by_bytes, "{doc:?}");
    }

    #[test]
    fn the_text_reader_reads_and_refuses_exactly_what_the_byte_reader_does() {
        let many: String = (0..40).map(|i| format!("\"k{i}\":{i},")).collect();
        for doc in [
            r#"{"w1":"a","w2":["x","y"],"w3":[1,"x"],"w4":5,"n":{"a":[1,{"b":2}]},"w5":"A"}"#,
            r#"{"w":"\u00e9t\u00E9","wé":"\ud83d\ude00","w\u0041":1}"#,
            r#"{"w":"\ud800"}"#,
            r#"{"w":"a\u0000b","w2":"\/"}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"n":{"x":1,"x":2}}"#,
            "\u{FEFF}{}",
            "{} {}",
            "{\"w\":\"tab\there\"}",
            "[1]",
            "null",
            " {\"w\" : 1 } ",
            &format!("{{{many}\"k39\":0}}"),
        ] {
            readers_agree(doc);
        }
    }

    proptest::proptest! {
        // No regression files, as in `b64`'s property tests.
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, failure_persistence: None, ..Default::default() })]

        /// Any text over JSON's punctuation, escapes and some non-ASCII characters.
        #[test]
        fn the_text_reader_agrees_with_the_byte_reader_on_any_text(
            doc in "\\{(\"[wn\\\\u0-9a-f\"é😀 ]{0,6}\"[:,]?|[\\[\\]{}:, 0-9.e+-]|true|null|\\\\ud[89ab]00){0,12}\\}?"
        ) {
            readers_agree(&doc);
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

    // Each value kind and each way a name is kept (cargo-mutants over json.rs: the cases
    // below each fail with one of its mutants).

    #[test]
    fn parse_object_keeps_every_value_as_serde_json_reads_it() {
        let doc = br#"{"t":true,"f":false,"z":null,"u":18446744073709551615,"i":-3,"x":1.5,"s":"plain","e":"a\"b\u00e9","a":[1,"two",[],{}],"o":{"k":{"l":[null]}}}"#;
        let expected: Map<String, Value> = serde_json::from_slice(doc).unwrap();
        assert_eq!(parse_object(doc).unwrap(), expected);
    }

    #[test]
    fn each_kind_of_member_is_read_as_what_the_verifier_needs() {
        let mut sink = Collect::default();
        let doc =
            br#"{"wt":true,"wz":null,"wi":-3,"wx":1.5,"we":"a\"b","wo":{"k":"v"},"wa":[],"wm":["x",1,"y"],"wn":[1]}"#;
        read_object(doc, &mut sink).unwrap();
        let got: Vec<(&str, &str)> = sink.0.iter().map(|(n, v)| (n.as_str(), v.as_deref().unwrap_or("-"))).collect();
        assert_eq!(
            got,
            [
                ("wt", "Other"),
                ("wz", "Other"),
                ("wi", "Num(-3.0)"),
                ("wx", "Num(1.5)"),
                ("we", r#"Str("a\"b")"#),
                ("wo", "Other"),
                ("wa", "StrList([])"),
                ("wm", "Other"),
                ("wn", "Other"),
            ]
        );
        assert_eq!(Member::Str(Cow::Borrowed("s")).as_str(), Some("s"));
        assert_eq!(Member::Num(1.0).as_str(), None);
        assert_eq!(Member::StrList(vec![Cow::Borrowed("s")]).as_str(), None);
    }

    #[test]
    fn names_sharing_their_length_and_end_bytes_are_still_different_names() {
        let doc = br#"{"axb":1,"ayb":2,"w":{"pq":1,"pr":1,"p_q":1,"pxq":1}}"#;
        assert_eq!(parse_object(doc).unwrap().len(), 3);
        assert!(read_object(doc, &mut Collect::default()).is_ok());
    }

    #[test]
    fn a_duplicate_is_found_apart_from_its_twin_and_with_or_without_escapes() {
        let many = |n: usize| (0..n).map(|i| format!("\"k{i}\":{i},")).collect::<String>();
        let docs = [
            br#"{"a":1,"b":2,"a":3}"#.to_vec(),
            br#"{"a\u0062":1,"ab":2}"#.to_vec(),
            br#"{"ab":1,"a\u0062":2}"#.to_vec(),
            br#"{"a\u0062":1,"\u0061b":2}"#.to_vec(),
            format!("{{{}\"k3\":0}}", many(20)).into_bytes(),
            format!("{{{}\"k17\":0}}", many(20)).into_bytes(),
        ];
        for doc in &docs {
            assert!(parse_object(doc).is_err(), "{}", String::from_utf8_lossy(doc));
            assert!(read_object(doc, &mut Collect::default()).is_err(), "{}", String::from_utf8_lossy(doc));
        }
        // The same names once each are one object.
        let once = format!("{{{}\"a\\u0062\":1,\"ac\":2}}", many(20));
        assert_eq!(parse_object(once.as_bytes()).unwrap().len(), 22);
    }
}
