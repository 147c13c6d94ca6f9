//! Canonical MongoDB Extended JSON v2, the encoding of the admin protocol (`wx-server-sdk` /
//! `@cloudbase/node-sdk`): every query, update, document, order and projection travels as EJSON text,
//! and documents come back as EJSON text.
//!
//! [`from_canonical`] turns a parsed EJSON value into the engine's wire form (plain JSON numbers,
//! `{"$date": ms}`, `{"$regex","$options"}`, the `{"$date":{"offset":N}}` server-date placeholder);
//! [`to_canonical`] goes back. Relaxed EJSON (plain numbers) is accepted on input too.
//!
//! Decisions worth knowing:
//! * Regex options keep only the letters MongoDB knows (`imxlsu`): the SDK passes JavaScript's `g` and
//!   `y` through, and a `g` echoed back makes every later read of the document fail in the SDK.
//! * `$oid` becomes its 24-hex-digit string (CloudBase `_id`s are strings); `$numberDecimal` is read as a
//!   double; `$undefined` as null. Types the engine cannot hold (`$binary`, `$timestamp`, `$code`, …)
//!   and non-finite doubles are refused with `INVALID_PARAM`.
//! * Numbers go out as `$numberInt` (int32 range), `$numberLong` (other integers) or `$numberDouble`.

use serde_json::{Map, Number, Value};

use crate::ejson;
use crate::error::{DbError, DbResult};

/// Regex option letters MongoDB accepts (and the SDK's BSON decoder reads back without failing).
pub const REGEX_OPTIONS: &str = "imxlsu";

/// Parses EJSON `text` into the engine's wire form.
pub fn parse_canonical(text: &str, what: &str) -> DbResult<Value> {
    let value: Value = serde_json::from_str(text)
        .map_err(|err| DbError::invalid_param(format!("{what} is not valid EJSON: {err}")))?;
    from_canonical(value)
}

/// Converts a parsed EJSON value into the engine's wire form.
pub fn from_canonical(value: Value) -> DbResult<Value> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(from_canonical)
            .collect::<DbResult<Vec<_>>>()
            .map(Value::Array),
        Value::Object(map) => {
            if let Some(converted) = wrapped_value(&map)? {
                return Ok(converted);
            }
            map.into_iter()
                .map(|(key, value)| Ok((key, from_canonical(value)?)))
                .collect::<DbResult<Map<_, _>>>()
                .map(Value::Object)
        }
        other => Ok(other),
    }
}

fn number_text<'a>(value: &'a Value, kind: &str) -> DbResult<&'a str> {
    value
        .as_str()
        .ok_or_else(|| DbError::invalid_param(format!("{kind} must hold a string")))
}

fn parse_integer(text: &str, kind: &str) -> DbResult<Value> {
    text.trim()
        .parse::<i64>()
        .map(Value::from)
        .map_err(|_| DbError::invalid_param(format!("{kind} {text:?} is not an integer")))
}

fn parse_double(text: &str, kind: &str) -> DbResult<Value> {
    let parsed: f64 = text
        .trim()
        .parse()
        .map_err(|_| DbError::invalid_param(format!("{kind} {text:?} is not a number")))?;
    Number::from_f64(parsed).map(Value::Number).ok_or_else(|| {
        DbError::invalid_param(format!(
            "{kind} {text:?}: NaN and infinities cannot be stored"
        ))
    })
}

/// The engine value of a one-key EJSON wrapper (`{"$numberInt": "1"}`, …), `None` for other objects.
fn wrapped_value(map: &Map<String, Value>) -> DbResult<Option<Value>> {
    if map.len() != 1 {
        return Ok(None);
    }
    let Some((key, inner)) = map.iter().next() else {
        return Ok(None);
    };
    let converted = match key.as_str() {
        "$numberInt" | "$numberLong" => parse_integer(number_text(inner, key)?, key)?,
        "$numberDouble" | "$numberDecimal" => parse_double(number_text(inner, key)?, key)?,
        "$date" => match inner {
            Value::Object(fields) if fields.len() == 1 && fields.contains_key("$numberLong") => {
                let ms = parse_integer(number_text(&fields["$numberLong"], "$date")?, "$date")?;
                ejson::date_value(ms.as_i64().unwrap_or_default())
            }
            Value::Number(n) => match n.as_i64() {
                Some(ms) => ejson::date_value(ms),
                None => return Err(DbError::invalid_param("$date must be whole milliseconds")),
            },
            _ => {
                return Err(DbError::invalid_param(
                    "$date must be {\"$numberLong\": \"<ms>\"} or a number of milliseconds",
                ))
            }
        },
        "$regularExpression" => {
            let pattern = inner
                .get("pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    DbError::invalid_param("$regularExpression needs a string pattern")
                })?;
            let options = inner.get("options").and_then(Value::as_str).unwrap_or("");
            let mut out = Map::new();
            out.insert("$regex".into(), Value::String(pattern.to_string()));
            out.insert("$options".into(), Value::String(regex_options(options)));
            Value::Object(out)
        }
        "$tcb_server_date" => {
            let offset = match inner.get("offset") {
                None | Some(Value::Null) => Value::from(0),
                Some(offset) => from_canonical(offset.clone())?,
            };
            if !offset.is_number() {
                return Err(DbError::invalid_param(
                    "$tcb_server_date offset must be a number",
                ));
            }
            let mut placeholder = Map::new();
            placeholder.insert("offset".into(), offset);
            let mut out = Map::new();
            out.insert("$date".into(), Value::Object(placeholder));
            Value::Object(out)
        }
        "$oid" => match inner {
            Value::String(hex) if hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Value::String(hex.to_ascii_lowercase())
            }
            _ => return Err(DbError::invalid_param("$oid must be 24 hex digits")),
        },
        "$undefined" => Value::Null,
        "$binary" | "$timestamp" | "$code" | "$symbol" | "$dbPointer" | "$uuid" => {
            return Err(DbError::invalid_param(format!(
                "the BSON type of {key} is not supported by cloud-emulator"
            )))
        }
        _ => return Ok(None),
    };
    Ok(Some(converted))
}

/// `options` reduced to the letters MongoDB accepts, each once, in the order given.
pub fn regex_options(options: &str) -> String {
    let mut out = String::new();
    for letter in options.chars() {
        if REGEX_OPTIONS.contains(letter) && !out.contains(letter) {
            out.push(letter);
        }
    }
    out
}

fn wrap(key: &str, inner: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_string(), inner);
    Value::Object(map)
}

/// A number in canonical EJSON: `$numberInt`, `$numberLong` or `$numberDouble`.
fn canonical_number(n: &Number) -> Value {
    if let Some(i) = n.as_i64() {
        return if i32::try_from(i).is_ok() {
            wrap("$numberInt", Value::String(i.to_string()))
        } else {
            wrap("$numberLong", Value::String(i.to_string()))
        };
    }
    let f = n.as_f64().unwrap_or_default();
    let text = if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f:?}")
    };
    wrap("$numberDouble", Value::String(text))
}

/// Converts an engine value (a stored document, a result row) to canonical EJSON.
pub fn to_canonical(value: &Value) -> Value {
    match value {
        Value::Number(n) => canonical_number(n),
        Value::Array(items) => Value::Array(items.iter().map(to_canonical).collect()),
        Value::Object(map) => {
            if let Some(ms) = ejson::date_number(value).and_then(Number::as_i64) {
                return wrap("$date", wrap("$numberLong", Value::String(ms.to_string())));
            }
            if let Some((pattern, options)) = ejson::regex_literal(value) {
                let mut inner = Map::new();
                inner.insert("pattern".into(), Value::String(pattern.to_string()));
                inner.insert("options".into(), Value::String(regex_options(options)));
                return wrap("$regularExpression", Value::Object(inner));
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), to_canonical(v)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// [`to_canonical`] as text.
pub fn to_canonical_text(value: &Value) -> String {
    to_canonical(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn captured_document_round_trips() {
        // wx-server-sdk 4.0.2's encoding of collection.add (admin-capture.jsonl, seq 2), abridged.
        let text = r#"{"title":"t1","n":{"$numberInt":"1"},"price":{"$numberDouble":"1.5"},
            "big":{"$numberLong":"1099511627776"},"nothing":null,"nested":{"a":{"b":{"$numberInt":"1"}}},
            "createdAt":{"$date":{"$numberLong":"1704164645678"}},
            "at":{"$tcb_server_date":{"offset":{"$numberInt":"3600000"}}},
            "loc":{"type":"Point","coordinates":[{"$numberDouble":"113.3245"},{"$numberDouble":"23.1064"}]},
            "re":{"$regularExpression":{"pattern":"xy+z","options":"gi"}}}"#;
        let value = parse_canonical(text, "data").unwrap();
        assert_eq!(
            value,
            json!({"title": "t1", "n": 1, "price": 1.5, "big": 1_099_511_627_776i64, "nothing": null,
                   "nested": {"a": {"b": 1}}, "createdAt": {"$date": 1_704_164_645_678i64},
                   "at": {"$date": {"offset": 3_600_000}},
                   "loc": {"type": "Point", "coordinates": [113.3245, 23.1064]},
                   "re": {"$regex": "xy+z", "$options": "i"}})
        );
        let mut stored = value;
        crate::resolve_server_dates(&mut stored, 1000);
        assert_eq!(stored["at"], json!({"$date": 3_601_000}));
        let back = to_canonical(&stored);
        assert_eq!(back["n"], json!({"$numberInt": "1"}));
        assert_eq!(back["price"], json!({"$numberDouble": "1.5"}));
        assert_eq!(back["big"], json!({"$numberLong": "1099511627776"}));
        assert_eq!(
            back["createdAt"],
            json!({"$date": {"$numberLong": "1704164645678"}})
        );
        assert_eq!(
            back["re"],
            json!({"$regularExpression": {"pattern": "xy+z", "options": "i"}})
        );
        assert_eq!(
            back["loc"]["coordinates"][0],
            json!({"$numberDouble": "113.3245"})
        );
        assert_eq!(
            to_canonical(&json!(2.0)),
            json!({"$numberDouble": "2.0"}),
            "an integral double stays a double"
        );
    }

    #[test]
    fn refuses_what_the_engine_cannot_hold() {
        for bad in [
            r#"{"a":{"$numberDouble":"NaN"}}"#,
            r#"{"a":{"$numberInt":"x"}}"#,
            r#"{"a":{"$binary":{"base64":"AA==","subType":"00"}}}"#,
            r#"{"a":{"$date":"soon"}}"#,
            "not json",
        ] {
            let err = parse_canonical(bad, "data").unwrap_err();
            assert_eq!(err.code, cloud_protocol::codes::INVALID_PARAM, "{bad}");
        }
        assert_eq!(
            parse_canonical(
                r#"{"_id":{"$oid":"65A0B1C2D3E4F5A6B7C8D9E0"},"u":{"$undefined":true}}"#,
                "d"
            )
            .unwrap(),
            json!({"_id": "65a0b1c2d3e4f5a6b7c8d9e0", "u": null})
        );
        // Operators are ordinary keys: only the one-key wrappers are values.
        assert_eq!(
            parse_canonical(r#"{"n":{"$gt":{"$numberInt":"0"}}}"#, "q").unwrap(),
            json!({"n": {"$gt": 0}})
        );
    }
}
