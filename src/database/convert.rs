//! The thin edge between JS and the value model: JS values → [`Value`] (with cycle detection, as
//! `JSON.stringify` would refuse them), and server results → JS (`{$date}` → `Date`, GeoJSON → Geo objects,
//! EJSON number wrappers → numbers).

use std::rc::Rc;

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::geo::{self, Kind};
use super::registry;
use super::value::{Number, Obj, Value};
use crate::js;
use cloud_protocol::limits;

/// The getter every SDK object exposes with its registry token.
pub const TOKEN_KEY: &str = "__tcw";

/// Why a JS value cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConvertError {
    /// A circular structure (-402001).
    Circular,
    /// A value JSON cannot carry (BigInt, …) (-401003).
    Unsupported(String),
    /// Objects and arrays nested deeper than [`limits::MAX_NESTING_DEPTH`] (-401002).
    TooDeep,
    /// More than [`limits::MAX_ARGUMENT_BYTES`] of JSON (-401002).
    TooLarge,
}

/// What one conversion has used so far: the objects it is inside (for cycles and depth) and the
/// estimated JSON bytes (strings by their UTF-16 length, before they are copied into wasm memory).
struct Walk {
    stack: Vec<JsValue>,
    bytes: usize,
}

impl Walk {
    fn spend(&mut self, bytes: usize) -> Result<(), ConvertError> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > limits::MAX_ARGUMENT_BYTES {
            return Err(ConvertError::TooLarge);
        }
        Ok(())
    }
}

/// The JSON text of a number as `JSON.stringify` writes it (integers formatted here, others by JS).
pub fn number(value: f64) -> Number {
    let text: Rc<str> = if value.fract() == 0.0 && value.abs() < 9.0e15 {
        (value as i64).to_string().into()
    } else {
        js_sys::JSON::stringify(&JsValue::from_f64(value))
            .ok()
            .and_then(|text| text.as_string())
            .unwrap_or_else(|| "null".to_owned())
            .into()
    };
    Number { value, text }
}

/// Converts a JS value; `Ok(None)` for what `JSON.stringify` drops in objects (undefined, functions,
/// symbols).
/// Refuses cycles, nesting deeper than [`limits::MAX_NESTING_DEPTH`] (SDK values count their own depth)
/// and more than [`limits::MAX_ARGUMENT_BYTES`], before the recursion could exhaust the wasm stack.
pub fn to_value(value: &JsValue) -> Result<Option<Value>, ConvertError> {
    let mut walk = Walk {
        stack: Vec::new(),
        bytes: 0,
    };
    convert(value, &mut walk)
}

/// Converts a JS value that must be present (`undefined` → `null`).
pub fn to_value_or_null(value: &JsValue) -> Result<Value, ConvertError> {
    Ok(to_value(value)?.unwrap_or(Value::Null))
}

// One crossing to classify a value instead of a chain of `is_*` / `instanceof` probes (each a JS call).
#[wasm_bindgen(inline_js = "export function classify(v) {
  switch (typeof v) {
    case 'string': return 1;
    case 'number': return 2;
    case 'boolean': return 3;
    case 'undefined': case 'function': case 'symbol': return 0;
    case 'object':
      if (v === null) return 4;
      if (Array.isArray(v)) return 5;
      if (v.__tcw !== undefined) return 6;
      if (v instanceof Date) return 7;
      if (v instanceof RegExp) return 8;
      return 9;
    default: return 10;
  }
}")]
extern "C" {
    fn classify(value: &JsValue) -> u8;
}

fn convert(value: &JsValue, walk: &mut Walk) -> Result<Option<Value>, ConvertError> {
    let kind = classify(value);
    walk.spend(if kind == 1 {
        // UTF-16 units, read without copying the string: up to 3 UTF-8 bytes each.
        value.unchecked_ref::<js_sys::JsString>().length() as usize * 3
    } else {
        8
    })?;
    match kind {
        0 => return Ok(None),
        1 => {
            return Ok(Some(Value::Str(
                value.as_string().unwrap_or_default().into(),
            )))
        }
        2 => return Ok(Some(Value::Num(number(value.as_f64().unwrap_or(f64::NAN))))),
        3 => return Ok(Some(Value::Bool(value.as_bool().unwrap_or(false)))),
        4 => return Ok(Some(Value::Null)),
        6 => {
            let token = js::get(value, TOKEN_KEY).as_f64().unwrap_or(0.0);
            return match registry::lookup(token as u32) {
                Some(internal)
                    if walk.stack.len() + internal.depth() > limits::MAX_NESTING_DEPTH =>
                {
                    Err(ConvertError::TooDeep)
                }
                Some(internal) => Ok(Some(Value::Internal(internal))),
                None => Err(ConvertError::Unsupported(
                    "an SDK object that was already freed".to_owned(),
                )),
            };
        }
        7 => {
            let date: &js_sys::Date = value.unchecked_ref();
            return Ok(Some(Value::Date(number(date.get_time()))));
        }
        8 => {
            let regex: &js_sys::RegExp = value.unchecked_ref();
            let source: String = regex.source().into();
            let flags: String = regex.flags().into();
            return Ok(Some(Value::Regex(source.into(), flags.into())));
        }
        5 | 9 => {}
        _ => {
            let kind = value.js_typeof().as_string().unwrap_or_default();
            return Err(ConvertError::Unsupported(format!(
                "a {kind} value cannot be stored in the database"
            )));
        }
    }
    if walk.stack.iter().any(|seen| seen == value) {
        return Err(ConvertError::Circular);
    }
    if walk.stack.len() >= limits::MAX_NESTING_DEPTH {
        return Err(ConvertError::TooDeep);
    }
    walk.stack.push(value.clone());
    let converted = if kind == 5 {
        let array: &Array = value.unchecked_ref();
        let mut items = Vec::with_capacity(array.length() as usize);
        for item in array.iter() {
            items.push(convert(&item, walk)?.unwrap_or(Value::Null));
        }
        Value::Array(items)
    } else {
        let keys = Object::keys(value.unchecked_ref::<Object>());
        let mut obj: Obj = Vec::with_capacity(keys.length() as usize);
        for key in keys.iter() {
            let child = Reflect::get(value, &key).unwrap_or(JsValue::UNDEFINED);
            walk.spend(key.unchecked_ref::<js_sys::JsString>().length() as usize * 3)?;
            if let Some(child) = convert(&child, walk)? {
                obj.push((key.as_string().unwrap_or_default().into(), child));
            }
        }
        Value::Object(obj)
    };
    walk.stack.pop();
    Ok(Some(converted))
}

/// A model value as a fresh JS value (through its JSON text).
pub fn to_js(value: &Value) -> JsValue {
    super::value::to_json(value)
        .ok()
        .and_then(|text| js_sys::JSON::parse(&text).ok())
        .unwrap_or(JsValue::NULL)
}

/// Decodes a result value in place: `{$date: ms}` → `Date`, `{$timestamp: s}` → `Date`, GeoJSON →
/// Geo objects, EJSON `{$numberInt|$numberLong|$numberDouble: "…"}` → numbers; everything else as-is.
/// Values nested deeper than [`DECODE_DEPTH`] are left as they are: a hostile or broken server must not
/// be able to exhaust the wasm stack.
pub fn decode(value: JsValue) -> JsValue {
    decode_at(value, 0)
}

/// How deep [`decode`] looks into a result (well above what the database stores).
const DECODE_DEPTH: usize = 4 * limits::MAX_NESTING_DEPTH;

fn decode_at(value: JsValue, depth: usize) -> JsValue {
    if depth > DECODE_DEPTH {
        return value;
    }
    if Array::is_array(&value) {
        let array: &Array = value.unchecked_ref();
        for i in 0..array.length() {
            array.set(i, decode_at(array.get(i), depth + 1));
        }
        return value;
    }
    if !value.is_object() {
        return value;
    }
    let keys = Object::keys(value.unchecked_ref::<Object>());
    let names: Vec<String> = keys.iter().filter_map(|k| k.as_string()).collect();
    match names.as_slice() {
        [key] if key.starts_with('$') => {
            if let Some(decoded) = decode_wrapper(key, &js::get(&value, key)) {
                return decoded;
            }
        }
        [a, b] if (a == "type" && b == "coordinates") || (a == "coordinates" && b == "type") => {
            if let Some(geo) = decode_geo(&value) {
                return geo;
            }
        }
        _ => {}
    }
    for name in &names {
        let child = js::get(&value, name);
        if child.is_object() {
            js::set(&value, name, &decode_at(child, depth + 1));
        }
    }
    value
}

fn decode_wrapper(key: &str, inner: &JsValue) -> Option<JsValue> {
    let number_of = |text: &JsValue| -> Option<f64> {
        text.as_f64()
            .or_else(|| text.as_string().map(|t| js_sys::Number::parse_float(&t)))
    };
    match key {
        "$date" => {
            let ms = inner
                .as_f64()
                .or_else(|| number_of(&js::get(inner, "$numberLong")))?;
            Some(js_sys::Date::new(&JsValue::from_f64(ms)).into())
        }
        "$timestamp" => {
            let seconds = inner.as_f64().or_else(|| number_of(&js::get(inner, "t")))?;
            Some(js_sys::Date::new(&JsValue::from_f64(seconds * 1000.0)).into())
        }
        "$numberInt" | "$numberLong" | "$numberDouble" | "$numberDecimal" => {
            number_of(inner).map(JsValue::from_f64)
        }
        _ => None,
    }
}

fn decode_geo(value: &JsValue) -> Option<JsValue> {
    let kind = Kind::parse(&js::get_string(value, "type")?)?;
    let coordinates = to_value(&js::get(value, "coordinates")).ok()??;
    let geometry = geo::from_geojson(kind, &coordinates)?;
    Some(super::bindings::geo_to_js(geometry))
}
