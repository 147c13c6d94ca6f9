//! `database.aggregate`: the pipeline stages `$match $project $group $sort $skip $limit $count $unwind
//! $addFields/$set $lookup` (`from/localField/foreignField/as`), in memory over the collection.
//!
//! Wire: `stages: [{stageKey: "$match", stageValue: "<JSON text>"}, …]`; the answer's `data.list` is the
//! JSON text of an array of canonical-EJSON strings (`{"$numberInt":"5"}`, `{"$date":{"$numberLong":…}}`),
//! which is what the official SDK parses with `JSON.parse(list).map(EJSON.parse)`.
//!
//! Permissions: a client's pipeline runs with the collection's read rule applied like a query whose
//! condition is the first `$match` (presets add their filter in front; custom rules must be proved by
//! it); a `$lookup` reads the foreign collection under its own read rule, with an empty condition.

use std::collections::HashMap;

use serde_json::{json, Map, Number, Value};

use crate::ejson;
use crate::error::{DbError, DbResult};
use crate::expr::Expr;
use crate::rules::Caller;
use crate::rules::{self, Decision, Operation, Rules};
use crate::store::{plan_query, Txn};
use crate::value::{compare_values, path_candidates, split_path, values_equal};
use crate::{resolve_server_dates, Matcher, Projection, SortSpec};

/// Most stages in one pipeline.
pub const MAX_STAGES: usize = 64;

struct Stage {
    key: String,
    value: Value,
}

fn parse_stages(body: &Map<String, Value>, now: i64) -> DbResult<Vec<Stage>> {
    let stages = body
        .get("stages")
        .and_then(Value::as_array)
        .ok_or_else(|| DbError::invalid_param("stages must be an array"))?;
    if stages.len() > MAX_STAGES {
        return Err(DbError::invalid_param(format!(
            "at most {MAX_STAGES} stages"
        )));
    }
    stages
        .iter()
        .map(|stage| {
            let key = stage
                .get("stageKey")
                .and_then(Value::as_str)
                .ok_or_else(|| DbError::invalid_param("each stage needs a stageKey string"))?;
            let mut value = match stage.get("stageValue") {
                Some(Value::String(text)) => serde_json::from_str(text).map_err(|err| {
                    DbError::invalid_param(format!("stageValue of {key} is not valid JSON: {err}"))
                })?,
                Some(other) => other.clone(),
                None => {
                    return Err(DbError::invalid_param(format!(
                        "stage {key} has no stageValue"
                    )))
                }
            };
            resolve_server_dates(&mut value, now);
            Ok(Stage {
                key: key.to_string(),
                value,
            })
        })
        .collect()
}

/// The read condition a client must run under on `meta`'s collection for `query`.
fn read_filter(rules_value: &Value, caller: &Caller, query: &Value) -> DbResult<Option<Value>> {
    let Caller::User(user) = caller else {
        return Ok(None);
    };
    match Rules::parse(rules_value)?.decide(Operation::Read, user, query, false) {
        Decision::Allow => Ok(None),
        Decision::Filter(filter) => Ok(Some(filter)),
        Decision::CheckEach | Decision::Deny => Err(rules::denied()),
    }
}

/// Runs the pipeline.
pub fn run(
    t: &Txn<'_>,
    caller: &Caller,
    env: &str,
    name: &str,
    body: &Map<String, Value>,
    now: i64,
) -> DbResult<Value> {
    let meta = t.collection(env, name)?;
    let mut stages = parse_stages(body, now)?;
    if let Caller::User(user) = caller {
        for stage in &mut stages {
            if stage.key == "$match" {
                rules::substitute_openid(&mut stage.value, &user.openid);
            }
        }
    }
    let first_match = stages
        .first()
        .filter(|s| s.key == "$match")
        .map(|s| s.value.clone())
        .unwrap_or_else(|| json!({}));
    let filter = read_filter(&meta.rules, caller, &first_match)?;
    // The first $match (with the permission filter) chooses the candidates, so indexes serve it.
    let base_query = match filter {
        Some(filter) => json!({ "$and": [first_match, filter] }),
        None => first_match,
    };
    let matcher = Matcher::new(&base_query)?;
    let mut docs = Vec::new();
    t.scan(
        meta.cid,
        &plan_query(&base_query, &meta.indexes),
        &mut |stored| {
            if matcher.matches(&stored.doc)? {
                docs.push(stored.doc);
            }
            Ok(true)
        },
    )?;
    let skip_first = usize::from(stages.first().is_some_and(|s| s.key == "$match"));
    for stage in &stages[skip_first..] {
        docs = apply_stage(t, caller, env, stage, docs)?;
    }
    let strings: Vec<Value> = docs
        .iter()
        .map(|doc| Value::String(canonical(doc).to_string()))
        .collect();
    Ok(json!({ "data": { "list": Value::Array(strings).to_string() } }))
}

fn apply_stage(
    t: &Txn<'_>,
    caller: &Caller,
    env: &str,
    stage: &Stage,
    docs: Vec<Value>,
) -> DbResult<Vec<Value>> {
    let value = &stage.value;
    match stage.key.as_str() {
        "$match" => {
            let matcher = Matcher::new(value)?;
            let mut out = Vec::new();
            for doc in docs {
                if matcher.matches(&doc)? {
                    out.push(doc);
                }
            }
            Ok(out)
        }
        "$project" => project(value, docs),
        "$addFields" | "$set" => {
            let fields = object(value, &stage.key)?;
            let compiled = fields
                .iter()
                .map(|(k, v)| Ok((split_path(k), Expr::compile(v)?)))
                .collect::<DbResult<Vec<_>>>()?;
            docs.into_iter()
                .map(|mut doc| {
                    for (path, expr) in &compiled {
                        let v = expr.eval(&doc)?;
                        set_path(&mut doc, path, v.unwrap_or(Value::Null));
                    }
                    Ok(doc)
                })
                .collect()
        }
        "$group" => group(value, docs),
        "$sort" => {
            let spec = SortSpec::from_document(value)?;
            let mut docs = docs;
            spec.sort(&mut docs);
            Ok(docs)
        }
        "$skip" => {
            let n = count_operand(value, "$skip")?;
            Ok(docs.into_iter().skip(n).collect())
        }
        "$limit" => {
            let n = count_operand(value, "$limit")?;
            if n == 0 {
                return Err(DbError::invalid_param("the limit must be positive"));
            }
            Ok(docs.into_iter().take(n).collect())
        }
        "$count" => {
            let field = value
                .as_str()
                .filter(|f| !f.is_empty() && !f.starts_with('$') && !f.contains('.'))
                .ok_or_else(|| DbError::invalid_param("$count takes a non-empty field name"))?;
            if docs.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![json!({ field: docs.len() })])
        }
        "$unwind" => unwind(value, docs),
        "$lookup" => lookup(t, caller, env, value, docs),
        other => Err(DbError::invalid_operator(format!(
            "unsupported aggregation stage {other}"
        ))),
    }
}

fn object<'a>(value: &'a Value, stage: &str) -> DbResult<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| DbError::invalid_param(format!("{stage} takes an object")))
}

fn count_operand(value: &Value, stage: &str) -> DbResult<usize> {
    value
        .as_u64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        })
        .map(|n| n.min(usize::MAX as u64) as usize)
        .ok_or_else(|| DbError::invalid_param(format!("{stage} takes a non-negative integer")))
}

fn set_path(doc: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = doc;
    for component in parents {
        if !current.is_object() {
            return;
        }
        let map = current.as_object_mut().expect("object");
        let child = map.entry(component.clone()).or_insert_with(|| json!({}));
        if !child.is_object() {
            *child = json!({});
        }
        current = child;
    }
    if let Value::Object(map) = current {
        map.insert(last.clone(), value);
    }
}

fn is_flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        _ => None,
    }
}

fn project(spec: &Value, docs: Vec<Value>) -> DbResult<Vec<Value>> {
    let fields = object(spec, "$project")?;
    if fields.values().all(|v| is_flag(v).is_some()) {
        let projection = Projection::new(spec)?;
        return docs.iter().map(|doc| projection.apply(doc)).collect();
    }
    // Computed fields: inclusions and expressions; only `_id` may be excluded.
    let mut include_id = true;
    let mut parts = Vec::new();
    for (key, value) in fields {
        match is_flag(value) {
            Some(false) if key == "_id" => include_id = false,
            Some(false) => {
                return Err(DbError::invalid_param(format!(
                    "cannot exclude {key} in a $project with computed fields"
                )))
            }
            Some(true) => parts.push((split_path(key), None)),
            None => parts.push((split_path(key), Some(Expr::compile(value)?))),
        }
    }
    docs.into_iter()
        .map(|doc| {
            let mut out = json!({});
            if include_id {
                if let Some(id) = doc.get("_id") {
                    out["_id"] = id.clone();
                }
            }
            for (path, expr) in &parts {
                let value = match expr {
                    None => crate::value::get_path(&doc, path).cloned(),
                    Some(expr) => expr.eval(&doc)?,
                };
                if let Some(value) = value {
                    set_path(&mut out, path, value);
                }
            }
            Ok(out)
        })
        .collect()
}

/// A hashable key for group `_id` values (numbers normalised so 1 and 1.0 group together).
fn group_key(value: &Value) -> String {
    fn normalize(value: &Value) -> Value {
        match value {
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => json!(f as i64),
                _ => value.clone(),
            },
            Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
            }
            other => other.clone(),
        }
    }
    normalize(value).to_string()
}

enum Accumulator {
    Sum {
        int: i64,
        float: f64,
        is_float: bool,
    },
    Avg {
        total: f64,
        n: u64,
    },
    Min(Option<Value>),
    Max(Option<Value>),
    First(Option<Value>),
    Last(Value),
    Push(Vec<Value>),
    AddToSet(Vec<Value>),
}

impl Accumulator {
    fn new(op: &str) -> DbResult<Accumulator> {
        Ok(match op {
            "$sum" => Accumulator::Sum {
                int: 0,
                float: 0.0,
                is_float: false,
            },
            "$avg" => Accumulator::Avg { total: 0.0, n: 0 },
            "$min" => Accumulator::Min(None),
            "$max" => Accumulator::Max(None),
            "$first" => Accumulator::First(None),
            "$last" => Accumulator::Last(Value::Null),
            "$push" => Accumulator::Push(Vec::new()),
            "$addToSet" => Accumulator::AddToSet(Vec::new()),
            other => {
                return Err(DbError::invalid_operator(format!(
                    "unsupported $group accumulator {other}"
                )))
            }
        })
    }

    fn add(&mut self, value: Option<Value>) {
        match self {
            Accumulator::Sum {
                int,
                float,
                is_float,
            } => {
                if let Some(Value::Number(n)) = &value {
                    match n.as_i64() {
                        Some(i) if !*is_float => match int.checked_add(i) {
                            Some(sum) => *int = sum,
                            None => {
                                *is_float = true;
                                *float = *int as f64 + i as f64;
                            }
                        },
                        _ => {
                            if !*is_float {
                                *is_float = true;
                                *float = *int as f64;
                            }
                            *float += n.as_f64().unwrap_or(0.0);
                        }
                    }
                }
            }
            Accumulator::Avg { total, n } => {
                if let Some(Value::Number(x)) = &value {
                    *total += x.as_f64().unwrap_or(0.0);
                    *n += 1;
                }
            }
            Accumulator::Min(current) => keep_extreme(current, value, std::cmp::Ordering::Less),
            Accumulator::Max(current) => keep_extreme(current, value, std::cmp::Ordering::Greater),
            Accumulator::First(first) => {
                if first.is_none() {
                    *first = Some(value.unwrap_or(Value::Null));
                }
            }
            Accumulator::Last(last) => *last = value.unwrap_or(Value::Null),
            Accumulator::Push(items) => items.extend(value),
            Accumulator::AddToSet(items) => {
                if let Some(v) = value {
                    if !items.iter().any(|x| values_equal(x, &v)) {
                        items.push(v);
                    }
                }
            }
        }
    }

    fn finish(self) -> Value {
        match self {
            Accumulator::Sum {
                int,
                float,
                is_float,
            } => {
                if is_float {
                    Number::from_f64(float).map_or(Value::Null, Value::Number)
                } else {
                    json!(int)
                }
            }
            Accumulator::Avg { total, n } => {
                if n == 0 {
                    Value::Null
                } else {
                    Number::from_f64(total / n as f64).map_or(Value::Null, Value::Number)
                }
            }
            Accumulator::Min(v) | Accumulator::Max(v) => v.unwrap_or(Value::Null),
            Accumulator::First(v) => v.unwrap_or(Value::Null),
            Accumulator::Last(v) => v,
            Accumulator::Push(items) | Accumulator::AddToSet(items) => Value::Array(items),
        }
    }
}

/// `$min`/`$max`: keeps `value` when it orders `wanted` against the current one (nulls ignored).
fn keep_extreme(current: &mut Option<Value>, value: Option<Value>, wanted: std::cmp::Ordering) {
    if let Some(v) = value.filter(|v| !v.is_null()) {
        if current
            .as_ref()
            .is_none_or(|c| compare_values(&v, c) == wanted)
        {
            *current = Some(v);
        }
    }
}

fn group(spec: &Value, docs: Vec<Value>) -> DbResult<Vec<Value>> {
    let fields = object(spec, "$group")?;
    let id_expr =
        Expr::compile(fields.get("_id").ok_or_else(|| {
            DbError::invalid_param("a $group specification must include an _id")
        })?)?;
    let mut outputs = Vec::new();
    for (name, acc) in fields.iter().filter(|(k, _)| *k != "_id") {
        let acc = object(acc, "a $group accumulator")?;
        let (op, arg) = match acc.iter().next() {
            Some(pair) if acc.len() == 1 => pair,
            _ => {
                return Err(DbError::invalid_param(format!(
                    "the field {name} must specify one accumulator"
                )))
            }
        };
        Accumulator::new(op)?;
        outputs.push((name.clone(), op.clone(), Expr::compile(arg)?));
    }
    let mut order: Vec<(Value, Vec<Accumulator>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for doc in &docs {
        let id = id_expr.eval(doc)?.unwrap_or(Value::Null);
        let key = group_key(&id);
        let slot = match index.get(&key) {
            Some(slot) => *slot,
            None => {
                let accumulators = outputs
                    .iter()
                    .map(|(_, op, _)| Accumulator::new(op))
                    .collect::<DbResult<Vec<_>>>()?;
                order.push((id, accumulators));
                index.insert(key, order.len() - 1);
                order.len() - 1
            }
        };
        for ((_, _, expr), acc) in outputs.iter().zip(order[slot].1.iter_mut()) {
            acc.add(expr.eval(doc)?);
        }
    }
    Ok(order
        .into_iter()
        .map(|(id, accumulators)| {
            let mut out = Map::new();
            out.insert("_id".into(), id);
            for ((name, _, _), acc) in outputs.iter().zip(accumulators) {
                out.insert(name.clone(), acc.finish());
            }
            Value::Object(out)
        })
        .collect())
}

fn unwind(spec: &Value, docs: Vec<Value>) -> DbResult<Vec<Value>> {
    let (path, index_field, preserve) = match spec {
        Value::String(path) => (path.as_str(), None, false),
        Value::Object(map) => (
            map.get("path").and_then(Value::as_str).unwrap_or(""),
            map.get("includeArrayIndex").and_then(Value::as_str),
            map.get("preserveNullAndEmptyArrays")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
        _ => ("", None, false),
    };
    let path = path
        .strip_prefix('$')
        .filter(|p| !p.is_empty())
        .ok_or_else(|| DbError::invalid_param("$unwind path must start with $"))?;
    let components = split_path(path);
    let mut out = Vec::new();
    for doc in docs {
        match crate::value::get_path(&doc, &components).cloned() {
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.into_iter().enumerate() {
                    let mut copy = doc.clone();
                    set_path(&mut copy, &components, item);
                    if let Some(field) = index_field {
                        copy[field] = json!(i);
                    }
                    out.push(copy);
                }
            }
            Some(Value::Array(_)) | Some(Value::Null) | None => {
                if preserve {
                    let mut copy = doc;
                    if let Some(field) = index_field {
                        copy[field] = Value::Null;
                    }
                    out.push(copy);
                }
            }
            Some(_) => {
                let mut copy = doc;
                if let Some(field) = index_field {
                    copy[field] = Value::Null;
                }
                out.push(copy);
            }
        }
    }
    Ok(out)
}

fn lookup(
    t: &Txn<'_>,
    caller: &Caller,
    env: &str,
    spec: &Value,
    docs: Vec<Value>,
) -> DbResult<Vec<Value>> {
    let fields = object(spec, "$lookup")?;
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| DbError::invalid_param(format!("$lookup needs a string {name}")))
    };
    let (from, local, foreign, as_field) = (
        text("from")?,
        text("localField")?,
        text("foreignField")?,
        text("as")?,
    );
    let meta = t.collection(env, from)?;
    let filter = read_filter(&meta.rules, caller, &json!({}))?;
    let matcher = Matcher::new(&filter.unwrap_or_else(|| json!({})))?;
    let mut foreign_docs = Vec::new();
    t.scan(meta.cid, &crate::store::Plan::Scan, &mut |stored| {
        if matcher.matches(&stored.doc)? {
            foreign_docs.push(stored.doc);
        }
        Ok(true)
    })?;
    let local_path = split_path(local);
    let foreign_path = split_path(foreign);
    let values_at = |doc: &Value, path: &[String]| -> Vec<Value> {
        let mut out = Vec::new();
        for candidate in path_candidates(doc, path) {
            match candidate {
                None => out.push(Value::Null),
                Some(Value::Array(items)) => out.extend(items.iter().cloned()),
                Some(v) => out.push(v.clone()),
            }
        }
        out
    };
    let foreign_values: Vec<Vec<Value>> = foreign_docs
        .iter()
        .map(|d| values_at(d, &foreign_path))
        .collect();
    Ok(docs
        .into_iter()
        .map(|mut doc| {
            let wanted = values_at(&doc, &local_path);
            let joined: Vec<Value> = foreign_docs
                .iter()
                .zip(&foreign_values)
                .filter(|(_, values)| {
                    values
                        .iter()
                        .any(|v| wanted.iter().any(|w| values_equal(v, w)))
                })
                .map(|(d, _)| d.clone())
                .collect();
            set_path(&mut doc, &split_path(as_field), Value::Array(joined));
            doc
        })
        .collect())
}

/// Canonical extended JSON of a stored value: `{"$numberInt"}`/`{"$numberLong"}`/`{"$numberDouble"}`,
/// dates as `{"$date":{"$numberLong":"ms"}}`, regexes as `{"$regularExpression"}`.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i32::try_from(i).is_ok() {
                    json!({ "$numberInt": i.to_string() })
                } else {
                    json!({ "$numberLong": i.to_string() })
                }
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                let text = if f.fract() == 0.0 && f.abs() < 1e16 {
                    format!("{f:.1}")
                } else {
                    format!("{f}")
                };
                json!({ "$numberDouble": text })
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Object(map) => {
            if let Some(ms) = ejson::date_number(value) {
                let ms = ms
                    .as_i64()
                    .unwrap_or_else(|| ms.as_f64().unwrap_or(0.0) as i64);
                return json!({ "$date": { "$numberLong": ms.to_string() } });
            }
            if let Some((pattern, options)) = ejson::regex_literal(value) {
                return json!({ "$regularExpression": { "pattern": pattern, "options": options } });
            }
            Value::Object(map.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_accumulators() {
        let docs = vec![
            json!({"tag": "a", "n": 1}),
            json!({"tag": "b", "n": 2.5}),
            json!({"tag": "a", "n": 3}),
            json!({"tag": "a"}),
        ];
        let out = group(
            &json!({"_id": "$tag", "total": {"$sum": 1}, "s": {"$sum": "$n"}, "avg": {"$avg": "$n"},
                    "min": {"$min": "$n"}, "max": {"$max": "$n"}, "first": {"$first": "$n"},
                    "last": {"$last": "$n"}, "all": {"$push": "$n"}, "set": {"$addToSet": "$tag"}}),
            docs,
        )
        .unwrap();
        assert_eq!(
            out[0],
            json!({"_id": "a", "total": 3, "s": 4, "avg": 2.0, "min": 1, "max": 3, "first": 1,
                   "last": null, "all": [1, 3], "set": ["a"]})
        );
        assert_eq!(out[1]["s"], json!(2.5));
    }

    #[test]
    fn unwind_and_project() {
        let docs = vec![json!({"_id": 1, "a": [1, 2]}), json!({"_id": 2, "a": []})];
        let out = unwind(&json!({"path": "$a", "includeArrayIndex": "i"}), docs).unwrap();
        assert_eq!(
            out,
            vec![
                json!({"_id": 1, "a": 1, "i": 0}),
                json!({"_id": 1, "a": 2, "i": 1})
            ]
        );
        let projected = project(
            &json!({"_id": 0, "double": {"$multiply": ["$a", 2]}, "a": 1}),
            out,
        )
        .unwrap();
        assert_eq!(projected[1], json!({"double": 4, "a": 2}));
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            canonical(
                &json!({"n": 5, "big": 5_000_000_000i64, "f": 1.5, "g": 2.0, "d": {"$date": 7}})
            ),
            json!({"n": {"$numberInt": "5"}, "big": {"$numberLong": "5000000000"},
                   "f": {"$numberDouble": "1.5"}, "g": {"$numberDouble": "2.0"},
                   "d": {"$date": {"$numberLong": "7"}}})
        );
    }
}
