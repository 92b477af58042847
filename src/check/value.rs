//! Keys and values as the checkers see them: opaque bytes.
//!
//! Workloads mostly write readable strings, so JSON shows a UTF-8 value as
//! a plain string and falls back to `{"hex": "..."}` only for bytes that
//! are not UTF-8. A string can never be mistaken for the hex form: one is
//! a JSON string, the other a JSON object.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A key or a value: cheap to clone, compared and hashed by its bytes.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Value(Bytes);

impl Value {
    pub fn new(bytes: impl Into<Bytes>) -> Value {
        Value(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The canonical decimal form an increment writes.
    pub fn from_i64(n: i64) -> Value {
        Value(Bytes::from(n.to_string()))
    }

    /// The value read as a decimal i64, the way an increment reads it
    /// (Rust's `str::parse::<i64>`: an optional sign, then digits).
    pub fn parse_i64(&self) -> Option<i64> {
        self.as_str()?.parse::<i64>().ok()
    }

    /// Some(n) only when the bytes are exactly what `from_i64(n)` writes,
    /// so that "007" and "7" stay different values.
    pub fn canonical_i64(&self) -> Option<i64> {
        let n = self.parse_i64()?;
        let canonical = n.to_string();
        (canonical.as_bytes() == self.as_bytes()).then_some(n)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn readable(&self) -> Option<&str> {
        self.as_str().filter(|s| !s.chars().any(char::is_control))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value(Bytes::from(s))
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value(Bytes::copy_from_slice(b))
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value(Bytes::from(b))
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Value {
        Value(b)
    }
}

/// Readable text as is; anything else (control characters, invalid
/// UTF-8) as `0x` followed by hex, so a witness never prints raw bytes.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.readable() {
            Some(s) => f.write_str(s),
            None => write!(f, "0x{}", hex_encode(&self.0)),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.readable() {
            Some(s) => write!(f, "Value({s:?})"),
            None => write!(f, "Value(0x{})", hex_encode(&self.0)),
        }
    }
}

/// Describes an optional value the way witnesses talk about it.
pub fn show(value: Option<&Value>) -> String {
    match value {
        Some(v) => v.to_string(),
        None => "absent".to_string(),
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.as_str() {
            Some(s) => serializer.serialize_str(s),
            None => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("hex", &hex_encode(&self.0))?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a string or {"hex": "..."}"#)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::from(s))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::from(s))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut hex: Option<String> = None;
        while let Some(field) = map.next_key::<String>()? {
            if field != "hex" {
                return Err(de::Error::unknown_field(&field, &["hex"]));
            }
            if hex.is_some() {
                return Err(de::Error::duplicate_field("hex"));
            }
            hex = Some(map.next_value()?);
        }
        let hex = hex.ok_or_else(|| de::Error::missing_field("hex"))?;
        hex_decode(&hex).map(Value::from).map_err(de::Error::custom)
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

fn hex_decode(hex: &str) -> Result<Vec<u8>, String> {
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("hex value has an odd number of digits ({})", digits.len()));
    }
    let nibble = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("{:?} is not a hex digit", c as char)),
        }
    };
    digits.chunks_exact(2).map(|pair| Ok((nibble(pair[0])? << 4) | nibble(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_decode(&hex_encode(&all)).unwrap(), all);
        assert!(hex_decode("abc").is_err());
        assert!(hex_decode("zz").is_err());
    }

    #[test]
    fn canonical_integers_are_exact() {
        assert_eq!(Value::from("42").canonical_i64(), Some(42));
        assert_eq!(Value::from("-3").canonical_i64(), Some(-3));
        assert_eq!(Value::from("007").canonical_i64(), None);
        assert_eq!(Value::from("007").parse_i64(), Some(7));
        assert_eq!(Value::from("+7").canonical_i64(), None);
        assert_eq!(Value::from("x").parse_i64(), None);
    }
}
