//! BSON-style value order, equality and dotted-path lookup over `serde_json::Value` documents.
//!
//! Type order (MongoDB's): MinKey < null < numbers < strings < objects < arrays < booleans < dates < regex
//! < MaxKey. Numbers compare numerically whatever their representation (1 == 1.0), strings by bytes,
//! objects pair by pair in key order, arrays element by element.

use crate::ejson;
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// The canonical BSON type class of a value, in sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TypeClass {
    /// `{"$minKey": 1}`.
    MinKey,
    /// `null` (and, for queries and sorting, a missing field).
    Null,
    /// Any JSON number.
    Number,
    /// A string.
    String,
    /// A plain object (sub-document), including GeoJSON.
    Object,
    /// An array.
    Array,
    /// `true` / `false`.
    Boolean,
    /// `{"$date": ms}`.
    Date,
    /// `{"$regex", "$options"}`.
    Regex,
    /// `{"$maxKey": 1}`.
    MaxKey,
}

/// The type class of `value`, recognising the EJSON literal forms.
pub fn type_class(value: &Value) -> TypeClass {
    match value {
        Value::Null => TypeClass::Null,
        Value::Bool(_) => TypeClass::Boolean,
        Value::Number(_) => TypeClass::Number,
        Value::String(_) => TypeClass::String,
        Value::Array(_) => TypeClass::Array,
        Value::Object(_) if ejson::date_number(value).is_some() => TypeClass::Date,
        Value::Object(_) if ejson::regex_literal(value).is_some() => TypeClass::Regex,
        Value::Object(_) if ejson::is_min_key(value) => TypeClass::MinKey,
        Value::Object(_) if ejson::is_max_key(value) => TypeClass::MaxKey,
        Value::Object(_) => TypeClass::Object,
    }
}

/// Compares two numbers by value: exact for integers, exact for integer-valued floats against integers.
pub fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    match (as_int(a), as_int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(x), None) => compare_int_float(x, b.as_f64().unwrap_or(0.0)),
        (None, Some(y)) => compare_int_float(y, a.as_f64().unwrap_or(0.0)).reverse(),
        (None, None) => total_f64(a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0)),
    }
}

fn as_int(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn compare_int_float(int: i128, float: f64) -> Ordering {
    // Floats of magnitude ≥ 2^64 are beyond every JSON integer; below that an integral float is exact.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    if float >= LIMIT {
        return Ordering::Less;
    }
    if float <= -LIMIT {
        return Ordering::Greater;
    }
    let floor = float.floor();
    match int.cmp(&(floor as i128)) {
        Ordering::Equal if float > floor => Ordering::Less,
        other => other,
    }
}

fn total_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b)
        .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()).reverse())
}

/// The numeric value as f64 (for arithmetic and geo).
pub fn number_f64(value: &Value) -> Option<f64> {
    value.as_f64()
}

/// The total order used for sorting and range operators.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    let (ta, tb) = (type_class(a), type_class(b));
    if ta != tb {
        return ta.cmp(&tb);
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => compare_sequences(x.iter(), y.iter(), compare_values),
        _ => match ta {
            TypeClass::Date => compare_numbers(
                ejson::date_number(a).expect("date class"),
                ejson::date_number(b).expect("date class"),
            ),
            TypeClass::Regex => {
                let (pa, oa) = ejson::regex_literal(a).expect("regex class");
                let (pb, ob) = ejson::regex_literal(b).expect("regex class");
                pa.cmp(pb).then_with(|| oa.cmp(ob))
            }
            TypeClass::Object => compare_objects(a, b),
            // Null, MinKey and MaxKey each have a single value.
            _ => Ordering::Equal,
        },
    }
}

fn compare_objects(a: &Value, b: &Value) -> Ordering {
    let (Some(x), Some(y)) = (a.as_object(), b.as_object()) else {
        return Ordering::Equal;
    };
    // MongoDB: pair by pair in document order — field type, then field name, then field value.
    compare_sequences(x.iter(), y.iter(), |(ka, va), (kb, vb)| {
        type_class(va)
            .cmp(&type_class(vb))
            .then_with(|| ka.as_bytes().cmp(kb.as_bytes()))
            .then_with(|| compare_values(va, vb))
    })
}

fn compare_sequences<T>(
    mut a: impl Iterator<Item = T>,
    mut b: impl Iterator<Item = T>,
    mut cmp: impl FnMut(T, T) -> Ordering,
) -> Ordering {
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match cmp(x, y) {
                Ordering::Equal => continue,
                other => return other,
            },
        }
    }
}

/// MongoDB equality: numbers by value (1 == 1.0), documents field by field in order, arrays element-wise.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    compare_values(a, b) == Ordering::Equal
}

/// Splits a dotted field path into its components.
pub fn split_path(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

/// Parses a path component as an array index (`"0"`, `"12"`; not `"-1"` or `"01"`).
pub fn array_index(component: &str) -> Option<usize> {
    if component.is_empty() || (component.len() > 1 && component.starts_with('0')) {
        return None;
    }
    if !component.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    component.parse().ok()
}

/// Every value a query on `path` considers, with MongoDB's array traversal: a non-numeric component
/// applies to each object element of an array, a numeric component indexes the array (and also names a
/// field of object elements). `None` stands for "missing" on one branch (it matches `null`).
///
/// Arrays at the end of the path are returned whole; matchers also try their elements.
pub fn path_candidates<'a>(doc: &'a Value, path: &[String]) -> Vec<Option<&'a Value>> {
    let mut out = Vec::new();
    collect_candidates(doc, path, &mut out);
    out
}

fn collect_candidates<'a>(value: &'a Value, path: &[String], out: &mut Vec<Option<&'a Value>>) {
    let Some((head, rest)) = path.split_first() else {
        out.push(Some(value));
        return;
    };
    match value {
        Value::Object(map) => match map.get(head) {
            Some(child) => collect_candidates(child, rest, out),
            None => out.push(None),
        },
        Value::Array(items) => {
            // MongoDB before 8.x/9.0 (CloudBase runs 4.4): only document elements lacking the field
            // count as "missing" — an empty array or an array of scalars yields nothing, so
            // `{"a.b": null}` does not match `{a: []}` (jstests/core/dotted_path_in_null.js).
            if let Some(index) = array_index(head) {
                match items.get(index) {
                    Some(item) => collect_candidates(item, rest, out),
                    None => out.push(None),
                }
            }
            for item in items {
                // Arrays nested directly in arrays are not traversed by a field name (MongoDB).
                if let Value::Object(map) = item {
                    match map.get(head) {
                        Some(child) => collect_candidates(child, rest, out),
                        None if array_index(head).is_none() => out.push(None),
                        None => {}
                    }
                }
            }
        }
        _ => out.push(None),
    }
}

/// Strict lookup (no array fan-out): objects by key, arrays by numeric index. Used by update operators.
pub fn get_path<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(doc, |current, component| match current {
            Value::Object(map) => map.get(component),
            Value::Array(items) => items.get(array_index(component)?),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Vec<String> {
        split_path(s)
    }

    #[test]
    fn type_order_is_mongodbs() {
        let ordered = [
            json!({"$minKey": 1}),
            json!(null),
            json!(-5),
            json!(3.5),
            json!(""),
            json!("a"),
            json!({}),
            json!({"a": 1}),
            json!([]),
            json!([1]),
            json!(false),
            json!(true),
            json!({"$date": 0}),
            json!({"$date": 10}),
            json!({"$regex": "a", "$options": ""}),
            json!({"$maxKey": 1}),
        ];
        for w in ordered.windows(2) {
            assert_eq!(
                compare_values(&w[0], &w[1]),
                Ordering::Less,
                "{} < {}",
                w[0],
                w[1]
            );
            assert_eq!(compare_values(&w[1], &w[0]), Ordering::Greater);
        }
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(values_equal(&json!(1), &json!(1.0)));
        assert_eq!(compare_values(&json!(2), &json!(1.5)), Ordering::Greater);
        assert_eq!(compare_values(&json!(1), &json!(1.5)), Ordering::Less);
        assert_eq!(compare_values(&json!(-2), &json!(-1.5)), Ordering::Less);
        assert_eq!(
            compare_values(&json!(u64::MAX), &json!(i64::MIN)),
            Ordering::Greater
        );
        assert_eq!(
            compare_values(&json!(9007199254740993_i64), &json!(9007199254740992.0)),
            Ordering::Greater
        );
        assert!(values_equal(
            &json!({"a": [1, {"b": 2.0}]}),
            &json!({"a": [1.0, {"b": 2}]})
        ));
    }

    #[test]
    fn strings_compare_by_bytes() {
        assert_eq!(compare_values(&json!("B"), &json!("a")), Ordering::Less);
        assert_eq!(compare_values(&json!("ab"), &json!("abc")), Ordering::Less);
    }

    #[test]
    fn arrays_and_objects_compare_elementwise() {
        assert_eq!(
            compare_values(&json!([1, 2]), &json!([1, 3])),
            Ordering::Less
        );
        assert_eq!(
            compare_values(&json!([1, 2]), &json!([1])),
            Ordering::Greater
        );
        assert_eq!(
            compare_values(&json!({"a": 1}), &json!({"a": 1, "b": 0})),
            Ordering::Less
        );
        assert_eq!(
            compare_values(&json!({"a": "x"}), &json!({"a": 5})),
            Ordering::Greater
        );
    }

    #[test]
    fn path_candidates_traverse_arrays() {
        let doc = json!({"a": [{"b": 1}, {"c": 2}, {"b": [3, 4]}, 7], "x": {"y": null}});
        let got = path_candidates(&doc, &p("a.b"));
        assert_eq!(got, vec![Some(&json!(1)), None, Some(&json!([3, 4]))]);
        assert_eq!(path_candidates(&doc, &p("a.0.b")), vec![Some(&json!(1))]);
        assert_eq!(path_candidates(&doc, &p("a.3")), vec![Some(&json!(7))]);
        assert_eq!(path_candidates(&doc, &p("a.9")), vec![None]);
        assert_eq!(path_candidates(&doc, &p("x.y")), vec![Some(&json!(null))]);
        assert_eq!(path_candidates(&doc, &p("x.y.z")), vec![None]);
        assert_eq!(path_candidates(&doc, &p("nope")), vec![None]);
        assert!(path_candidates(&json!({"a": []}), &p("a.b")).is_empty());
        assert!(path_candidates(&json!({"a": [1, 2]}), &p("a.b")).is_empty());
    }

    #[test]
    fn get_path_is_strict() {
        let doc = json!({"a": [{"b": 1}], "o": {"1": "one"}});
        assert_eq!(get_path(&doc, &p("a.0.b")), Some(&json!(1)));
        assert_eq!(get_path(&doc, &p("a.b")), None);
        assert_eq!(get_path(&doc, &p("o.1")), Some(&json!("one")));
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("10"), Some(10));
    }
}
