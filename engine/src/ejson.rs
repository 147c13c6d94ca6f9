//! The EJSON-ish literal forms of the CloudBase P1 wire (`{"$date": ms}`, `{"$regex","$options"}`,
//! `{"$minKey":1}`, `{"$maxKey":1}`) and the server-date placeholder `{"$date":{"offset":N}}`.

use serde_json::{Map, Number, Value};

/// The epoch milliseconds of a date literal `{"$date": <number>}` (also canonical `{"$numberLong": "…"}`).
pub fn date_number(value: &Value) -> Option<&Number> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    match map.get("$date")? {
        Value::Number(n) => Some(n),
        _ => None,
    }
}

/// Pattern and options of a regex literal `{"$regex": "…", "$options": "…"}` (`$options` optional).
pub fn regex_literal(value: &Value) -> Option<(&str, &str)> {
    let map = value.as_object()?;
    let pattern = map.get("$regex")?.as_str()?;
    let options = match map.get("$options") {
        None => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return None,
    };
    let expected = if map.contains_key("$options") { 2 } else { 1 };
    (map.len() == expected).then_some((pattern, options))
}

/// `{"$minKey": 1}`.
pub fn is_min_key(value: &Value) -> bool {
    single_key(value, "$minKey")
}

/// `{"$maxKey": 1}`.
pub fn is_max_key(value: &Value) -> bool {
    single_key(value, "$maxKey")
}

fn single_key(value: &Value, key: &str) -> bool {
    value
        .as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key(key))
}

/// True for objects that are values in EJSON form rather than documents or operator objects.
pub fn is_literal_object(value: &Value) -> bool {
    date_number(value).is_some()
        || regex_literal(value).is_some()
        || is_min_key(value)
        || is_max_key(value)
}

/// A `{"$date":{"offset":N}}` placeholder (`db.serverDate()`), returning N (ms; `{}` means 0).
pub fn server_date_offset(value: &Value) -> Option<i64> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let inner = map.get("$date")?.as_object()?;
    if inner.is_empty() {
        return Some(0);
    }
    if inner.len() != 1 {
        return None;
    }
    let offset = inner.get("offset")?;
    offset.as_i64().or_else(|| {
        offset
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.round() as i64)
    })
}

/// Replaces every `{"$date":{"offset":N}}` in `value` by `{"$date": now_ms + N}` and normalises canonical
/// dates `{"$date":{"$numberLong":"ms"}}` to `{"$date": ms}`, so stored documents hold one date form.
pub fn resolve_server_dates(value: &mut Value, now_ms: i64) {
    if let Some(offset) = server_date_offset(value) {
        *value = date_value(now_ms.saturating_add(offset));
        return;
    }
    if let Some(ms) = canonical_date_ms(value) {
        *value = date_value(ms);
        return;
    }
    match value {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| resolve_server_dates(v, now_ms)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| resolve_server_dates(v, now_ms)),
        _ => {}
    }
}

fn canonical_date_ms(value: &Value) -> Option<i64> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let inner = map.get("$date")?.as_object()?;
    if inner.len() != 1 {
        return None;
    }
    inner.get("$numberLong")?.as_str()?.parse().ok()
}

/// `{"$date": ms}`.
pub fn date_value(ms: i64) -> Value {
    let mut map = Map::new();
    map.insert("$date".to_owned(), Value::from(ms));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_dates_are_resolved_everywhere() {
        let mut v = json!({"a": {"$date": {"offset": 1000}}, "b": [{"$date": {"offset": -5}}], "c": {"$date": 7},
                           "d": {"$date": {"$numberLong": "42"}}, "e": {"$date": {}}});
        resolve_server_dates(&mut v, 1_000_000);
        assert_eq!(
            v,
            json!({"a": {"$date": 1_001_000}, "b": [{"$date": 999_995}], "c": {"$date": 7}, "d": {"$date": 42},
                   "e": {"$date": 1_000_000}})
        );
    }

    #[test]
    fn literal_forms() {
        assert!(date_number(&json!({"$date": 5})).is_some());
        assert!(date_number(&json!({"$date": 5, "x": 1})).is_none());
        assert_eq!(
            regex_literal(&json!({"$regex": "^a", "$options": "i"})),
            Some(("^a", "i"))
        );
        assert_eq!(regex_literal(&json!({"$regex": "^a"})), Some(("^a", "")));
        assert!(regex_literal(&json!({"$regex": "^a", "$gt": 1})).is_none());
        assert!(is_literal_object(&json!({"$maxKey": 1})));
        assert!(!is_literal_object(&json!({"$gt": 1})));
    }
}
