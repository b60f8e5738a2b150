//! A strict JSON reader for JOSE headers and claim sets.
//!
//! serde_json alone is not strict enough for tokens: it keeps the last of duplicate
//! members (a parser differential attackers use, CVE-2022-39227) and nests up to depth
//! 128. This reader rejects any duplicate member name at any depth, any nesting deeper
//! than [`MAX_DEPTH`], a UTF-8 byte-order mark, and any top-level value other than an
//! object.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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
