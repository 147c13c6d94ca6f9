//! Multi-field, stable sorting of documents across mixed types (MongoDB's sort order).
//!
//! An array field sorts by its smallest element ascending and its largest descending; an empty array
//! sorts before null; a missing field sorts as null.

use crate::error::{DbError, DbResult};
use crate::matcher::NearQuery;
use crate::value::{compare_values, path_candidates};
use serde_json::Value;
use std::cmp::Ordering;

/// One sort field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// Dotted path components.
    pub path: Vec<String>,
    /// `true` for descending.
    pub descending: bool,
}

/// A compiled sort specification (fields in priority order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortSpec {
    /// The fields, most significant first.
    pub keys: Vec<SortKey>,
}

/// The value a document sorts by for one key.
#[derive(Debug, Clone, PartialEq)]
enum SortValue {
    EmptyArray,
    Value(Value),
}

fn compare_sort_values(a: &SortValue, b: &SortValue) -> Ordering {
    match (a, b) {
        (SortValue::EmptyArray, SortValue::EmptyArray) => Ordering::Equal,
        (SortValue::EmptyArray, _) => Ordering::Less,
        (_, SortValue::EmptyArray) => Ordering::Greater,
        (SortValue::Value(x), SortValue::Value(y)) => compare_values(x, y),
    }
}

impl SortSpec {
    /// From the P1 wire `order`: `[{"field": "age", "direction": "asc" | "desc"}, …]` (`null` = no sort).
    pub fn from_order(order: &Value) -> DbResult<SortSpec> {
        let items = match order {
            Value::Null => return Ok(SortSpec::default()),
            Value::Array(items) => items,
            _ => {
                return Err(DbError::invalid_param(
                    "order must be an array of {field, direction}",
                ))
            }
        };
        let keys = items
            .iter()
            .map(|item| {
                let field = item
                    .get("field")
                    .and_then(Value::as_str)
                    .ok_or_else(|| DbError::invalid_param("order entries need a string field"))?;
                let descending = match item.get("direction").and_then(Value::as_str) {
                    Some("asc") | None => false,
                    Some("desc") => true,
                    Some(other) => {
                        return Err(DbError::invalid_param(format!(
                            "order direction must be asc or desc, not {other}"
                        )))
                    }
                };
                Ok(SortKey {
                    path: parse_path(field)?,
                    descending,
                })
            })
            .collect::<DbResult<_>>()?;
        Ok(SortSpec { keys })
    }

    /// From a MongoDB sort document `{"field": 1 | -1, …}` (used by `$push $sort` and `$sort` stages).
    pub fn from_document(spec: &Value) -> DbResult<SortSpec> {
        let map = spec
            .as_object()
            .ok_or_else(|| DbError::invalid_param("sort specification must be an object"))?;
        if map.is_empty() {
            return Err(DbError::invalid_param(
                "sort specification must not be empty",
            ));
        }
        let keys = map
            .iter()
            .map(|(field, direction)| {
                let descending = match direction.as_f64() {
                    Some(1.0) => false,
                    Some(-1.0) => true,
                    _ => {
                        return Err(DbError::invalid_param(format!(
                            "sort direction of {field} must be 1 or -1"
                        )))
                    }
                };
                Ok(SortKey {
                    path: parse_path(field)?,
                    descending,
                })
            })
            .collect::<DbResult<_>>()?;
        Ok(SortSpec { keys })
    }

    fn extract(&self, doc: &Value) -> Vec<SortValue> {
        self.keys.iter().map(|k| sort_value(doc, k)).collect()
    }

    fn compare_extracted(&self, a: &[SortValue], b: &[SortValue]) -> Ordering {
        for ((key, x), y) in self.keys.iter().zip(a).zip(b) {
            let ord = compare_sort_values(x, y);
            let ord = if key.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }

    /// Compares two documents under this specification.
    pub fn compare(&self, a: &Value, b: &Value) -> Ordering {
        self.compare_extracted(&self.extract(a), &self.extract(b))
    }

    /// Sorts in place, stably (equal documents keep their order).
    pub fn sort(&self, docs: &mut Vec<Value>) {
        if self.keys.is_empty() {
            return;
        }
        let mut keyed: Vec<(Vec<SortValue>, Value)> =
            docs.drain(..).map(|d| (self.extract(&d), d)).collect();
        keyed.sort_by(|(a, _), (b, _)| self.compare_extracted(a, b));
        docs.extend(keyed.into_iter().map(|(_, d)| d));
    }
}

fn parse_path(field: &str) -> DbResult<Vec<String>> {
    let parts: Vec<String> = field.split('.').map(str::to_owned).collect();
    if parts.iter().any(String::is_empty) {
        return Err(DbError::invalid_param(format!(
            "invalid sort field '{field}'"
        )));
    }
    Ok(parts)
}

fn sort_value(doc: &Value, key: &SortKey) -> SortValue {
    let mut values = Vec::new();
    for candidate in path_candidates(doc, &key.path) {
        match candidate {
            None => values.push(SortValue::Value(Value::Null)),
            Some(Value::Array(items)) if items.is_empty() => values.push(SortValue::EmptyArray),
            Some(Value::Array(items)) => values.extend(items.iter().cloned().map(SortValue::Value)),
            Some(v) => values.push(SortValue::Value(v.clone())),
        }
    }
    let pick = |a: SortValue, b: SortValue| {
        let ord = compare_sort_values(&a, &b);
        let keep_a = if key.descending {
            ord != Ordering::Less
        } else {
            ord != Ordering::Greater
        };
        if keep_a {
            a
        } else {
            b
        }
    };
    values
        .into_iter()
        .reduce(pick)
        .unwrap_or(SortValue::Value(Value::Null))
}

/// Orders documents by ascending `$nearSphere` distance (stable; documents without a distance last).
pub fn sort_by_distance(docs: &mut Vec<Value>, near: &NearQuery) {
    let mut keyed: Vec<(f64, Value)> = docs
        .drain(..)
        .map(|d| (near.distance_m(&d).unwrap_or(f64::INFINITY), d))
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    docs.extend(keyed.into_iter().map(|(_, d)| d));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(docs: &[Value]) -> Vec<i64> {
        docs.iter().map(|d| d["_id"].as_i64().unwrap()).collect()
    }

    #[test]
    fn mixed_types_sort_in_bson_order() {
        let mut docs = vec![
            json!({"_id": 1, "v": "b"}),
            json!({"_id": 2, "v": 3}),
            json!({"_id": 3}),
            json!({"_id": 4, "v": true}),
            json!({"_id": 5, "v": {"$date": 5}}),
            json!({"_id": 6, "v": null}),
            json!({"_id": 7, "v": 1.5}),
            json!({"_id": 8, "v": {"x": 1}}),
        ];
        let spec = SortSpec::from_order(&json!([{"field": "v", "direction": "asc"}])).unwrap();
        spec.sort(&mut docs);
        assert_eq!(ids(&docs), vec![3, 6, 7, 2, 1, 8, 4, 5]);
    }

    #[test]
    fn multi_field_and_stable() {
        let mut docs = vec![
            json!({"_id": 1, "a": 1, "b": 2}),
            json!({"_id": 2, "a": 2, "b": 1}),
            json!({"_id": 3, "a": 1, "b": 3}),
            json!({"_id": 4, "a": 1, "b": 3}),
        ];
        let spec = SortSpec::from_order(
            &json!([{"field": "a", "direction": "asc"}, {"field": "b", "direction": "desc"}]),
        )
        .unwrap();
        spec.sort(&mut docs);
        assert_eq!(ids(&docs), vec![3, 4, 1, 2]);
    }

    #[test]
    fn arrays_sort_by_min_or_max() {
        let mut docs = vec![
            json!({"_id": 1, "a": [1, 10]}),
            json!({"_id": 2, "a": 5}),
            json!({"_id": 3, "a": []}),
        ];
        SortSpec::from_document(&json!({"a": 1}))
            .unwrap()
            .sort(&mut docs);
        assert_eq!(ids(&docs), vec![3, 1, 2]);
        SortSpec::from_document(&json!({"a": -1}))
            .unwrap()
            .sort(&mut docs);
        assert_eq!(ids(&docs), vec![1, 2, 3]);
    }

    #[test]
    fn nested_paths_and_errors() {
        let mut docs = vec![
            json!({"_id": 1, "o": {"n": 2}}),
            json!({"_id": 2, "o": {"n": 1}}),
        ];
        SortSpec::from_order(&json!([{"field": "o.n", "direction": "asc"}]))
            .unwrap()
            .sort(&mut docs);
        assert_eq!(ids(&docs), vec![2, 1]);
        assert!(SortSpec::from_order(&json!([{"field": "a", "direction": "up"}])).is_err());
        assert!(SortSpec::from_document(&json!({"a": 2})).is_err());
        assert!(SortSpec::from_order(&json!({"a": 1})).is_err());
    }
}
