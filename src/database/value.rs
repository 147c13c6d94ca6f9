//! The small value model the encoders work on, and its JSON writer.
//!
//! Objects keep insertion order and are written with JavaScript's own-key order (array-index keys first,
//! ascending, then the rest in insertion order), so the text equals `JSON.stringify` of the object the
//! official SDK builds. Numbers carry their JSON text (made by JS at the edge) so the wasm needs no float
//! formatting.

use std::rc::Rc;

use super::command::Internal;
use crate::transport::envelope::write_json_string;

/// A number: its value (for range checks) and its JSON text (`JSON.stringify(n)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Number {
    /// The value.
    pub value: f64,
    /// Its JSON text.
    pub text: Rc<str>,
}

impl Number {
    /// A number whose text is Rust's formatting (exact for integers; tests and constants only).
    pub fn int(value: i64) -> Self {
        Number {
            value: value as f64,
            text: value.to_string().into(),
        }
    }
}

/// A JS value as the encoders see it.
#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Num(Number),
    Str(Rc<str>),
    Array(Vec<Value>),
    Object(Obj),
    /// A JS `Date` (milliseconds since the epoch).
    Date(Number),
    /// A native JS `RegExp` (source, flags).
    Regex(Rc<str>, Rc<str>),
    /// An SDK value: command, Geo object, server date, `db.RegExp`, aggregate operator.
    Internal(Rc<Internal>),
}

/// An object: keys in insertion order.
pub type Obj = Vec<(Rc<str>, Value)>;

impl Value {
    /// A string value.
    pub fn str(text: &str) -> Value {
        Value::Str(text.into())
    }

    /// A one-key object.
    pub fn object1(key: &str, value: Value) -> Value {
        Value::Object(vec![(key.into(), value)])
    }

    /// Whether JS would consider the value truthy (`if (query[key])`).
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Num(n) => n.value != 0.0 && !n.value.is_nan(),
            Value::Str(s) => !s.is_empty(),
            _ => true,
        }
    }

    /// `getType(x) === 'object'` in the official SDK: plain objects and class instances (SDK values).
    pub fn is_object_like(&self) -> bool {
        matches!(self, Value::Object(_) | Value::Internal(_))
    }

    /// The internal SDK value, if this is one.
    pub fn internal(&self) -> Option<&Internal> {
        match self {
            Value::Internal(internal) => Some(internal),
            _ => None,
        }
    }
}

/// How many levels of objects and arrays `value` nests (`0` for a scalar); SDK values count theirs.
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(obj) => 1 + obj.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        Value::Date(_) | Value::Regex(..) => 1,
        Value::Internal(internal) => internal.depth(),
        _ => 0,
    }
}

/// `obj[key]`.
pub fn get<'a>(obj: &'a Obj, key: &str) -> Option<&'a Value> {
    obj.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
}

/// `obj[key] = value`: replaces in place, or appends a new key.
pub fn set(obj: &mut Obj, key: &str, value: Value) {
    match obj.iter_mut().find(|(k, _)| &**k == key) {
        Some(slot) => slot.1 = value,
        None => obj.push((key.into(), value)),
    }
}

/// `delete obj[key]`.
pub fn remove(obj: &mut Obj, key: &str) {
    obj.retain(|(k, _)| &**k != key);
}

/// A value that cannot be written as JSON (an update command inside a query, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl EncodeError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        EncodeError(message.into())
    }
}

/// The JSON text of `value`.
pub fn to_json(value: &Value) -> Result<String, EncodeError> {
    let mut out = String::new();
    write(&mut out, value)?;
    Ok(out)
}

/// Whether `key` is an array index, which JS orders before every other own key.
fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return None;
    }
    key.parse::<u64>()
        .ok()
        .filter(|n| *n < u32::MAX as u64)
        .map(|n| n as u32)
}

/// Writes an object's entries in JS own-key order.
pub fn write_object(out: &mut String, obj: &Obj) -> Result<(), EncodeError> {
    out.push('{');
    let mut first = true;
    let mut entry = |out: &mut String, key: &str, value: &Value| -> Result<(), EncodeError> {
        if !first {
            out.push(',');
        }
        first = false;
        write_json_string(out, key);
        out.push(':');
        write(out, value)
    };
    if obj.iter().any(|(k, _)| array_index(k).is_some()) {
        let mut indexed: Vec<(u32, usize)> = obj
            .iter()
            .enumerate()
            .filter_map(|(i, (k, _))| array_index(k).map(|n| (n, i)))
            .collect();
        // Insertion sort: index keys are few, and slice::sort would add kilobytes to the wasm.
        for i in 1..indexed.len() {
            let mut j = i;
            while j > 0 && indexed[j - 1] > indexed[j] {
                indexed.swap(j - 1, j);
                j -= 1;
            }
        }
        for (_, i) in &indexed {
            entry(out, &obj[*i].0, &obj[*i].1)?;
        }
        for (k, v) in obj.iter().filter(|(k, _)| array_index(k).is_none()) {
            entry(out, k, v)?;
        }
    } else {
        for (k, v) in obj {
            entry(out, k, v)?;
        }
    }
    out.push('}');
    Ok(())
}

/// Writes `value` as JSON; SDK values are written in their wire form (`toJSON` / `parse` in the official SDK).
pub fn write(out: &mut String, value: &Value) -> Result<(), EncodeError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Num(n) => out.push_str(&n.text),
        Value::Str(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, item)?;
            }
            out.push(']');
        }
        Value::Object(obj) => write_object(out, obj)?,
        Value::Date(ms) => {
            out.push_str("{\"$date\":");
            out.push_str(&ms.text);
            out.push('}');
        }
        Value::Regex(source, flags) => write_regex(out, source, flags),
        Value::Internal(internal) => write(out, &internal.wire_value()?)?,
    }
    Ok(())
}

/// `{"$regex":source,"$options":flags}`.
pub fn write_regex(out: &mut String, source: &str, flags: &str) {
    out.push_str("{\"$regex\":");
    write_json_string(out, source);
    out.push_str(",\"$options\":");
    write_json_string(out, flags);
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_come_first_like_js() {
        let obj: Obj = vec![
            ("b".into(), Value::Num(Number::int(1))),
            ("10".into(), Value::Bool(true)),
            ("2".into(), Value::Null),
            ("01".into(), Value::str("x")),
        ];
        assert_eq!(
            to_json(&Value::Object(obj)).unwrap(),
            r#"{"2":null,"10":true,"b":1,"01":"x"}"#
        );
    }

    #[test]
    fn truthiness_matches_js() {
        assert!(!Value::Num(Number::int(0)).truthy());
        assert!(!Value::str("").truthy());
        assert!(Value::Array(vec![]).truthy());
        assert!(Value::Object(vec![]).truthy());
    }
}
