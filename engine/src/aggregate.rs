//! `database.aggregate`: the 16 stages wx documents — `$addFields` (and `$set`), `$bucket`,
//! `$bucketAuto`, `$count`, `$geoNear`, `$group`, `$limit`, `$lookup` (equality and `let`/`pipeline`),
//! `$match`, `$project`, `$replaceRoot`, `$sample`, `$skip`, `$sort`, `$sortByCount`, `$unwind` — with
//! MongoDB 4.4 semantics, in memory over the candidates of the first stage.
//!
//! Wire: `stages: [{stageKey: "$match", stageValue: "<JSON text>"}, …]`; the answer's `data.list` is the
//! JSON text of an array of canonical-EJSON strings (`{"$numberInt":"5"}`, `{"$date":{"$numberLong":…}}`),
//! which is what the official SDK parses with `JSON.parse(list).map(EJSON.parse)`.
//!
//! Candidates: a leading `$match` (or `$geoNear`'s `query`) is planned like a query, so declared indexes
//! serve it. Permissions: a client's pipeline runs with the collection's read rule applied like a query
//! whose condition is that first `$match` (presets add their filter in front; custom rules must be
//! proved by it); a `$lookup` reads the foreign collection under its own read rule, with an empty
//! condition.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::ejson;
use crate::error::{DbError, DbResult};
use crate::expr::{field_value, Accumulator, AccumulatorKind, Expr, Scope};
use crate::rules::Caller;
use crate::rules::{self, Decision, Operation, Rules};
use crate::store::{plan_query, Txn};
use crate::value::{compare_values, path_candidates, split_path, type_class, values_equal};
use crate::{resolve_server_dates, Matcher, Projection, SortSpec};

/// Most stages in one pipeline.
pub const MAX_STAGES: usize = 64;

/// Variables in force (`$lookup`'s `let`).
type Vars = [(String, Value)];

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

/// The stages of a `$lookup` sub-pipeline: `[{"$match": {…}}, …]` as `$.pipeline()…done()` writes it.
fn parse_sub_pipeline(value: &Value) -> DbResult<Vec<Stage>> {
    let items = value
        .as_array()
        .ok_or_else(|| DbError::invalid_param("$lookup's pipeline must be an array of stages"))?;
    if items.len() > MAX_STAGES {
        return Err(DbError::invalid_param(format!(
            "at most {MAX_STAGES} stages"
        )));
    }
    items
        .iter()
        .map(|item| match item.as_object() {
            Some(map) if map.len() == 1 => {
                let (key, value) = map.iter().next().expect("one field");
                if key == "$geoNear" {
                    return Err(DbError::invalid_param(
                        "$geoNear is not allowed inside a $lookup pipeline",
                    ));
                }
                Ok(Stage {
                    key: key.clone(),
                    value: value.clone(),
                })
            }
            _ => Err(DbError::invalid_param(
                "each stage of a $lookup pipeline is an object with exactly one field",
            )),
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

/// What every stage may need: the transaction, the caller and the environment.
struct Ctx<'a, 'b> {
    t: &'a Txn<'b>,
    caller: &'a Caller,
    env: &'a str,
}

impl Ctx<'_, '_> {
    /// The documents of `collection` matching `query` under the caller's read rule (indexes serve it).
    fn load(&self, collection: &str, query: &Value) -> DbResult<Vec<Value>> {
        let meta = self.t.collection(self.env, collection)?;
        let filter = read_filter(&meta.rules, self.caller, query)?;
        let query = match filter {
            Some(filter) => json!({ "$and": [query, filter] }),
            None => query.clone(),
        };
        let matcher = Matcher::new(&query)?;
        let mut docs = Vec::new();
        self.t.scan(
            meta.cid,
            &plan_query(&query, &meta.indexes),
            &mut |stored| {
                if matcher.matches(&stored.doc)? {
                    docs.push(stored.doc);
                }
                Ok(true)
            },
        )?;
        Ok(docs)
    }
}

fn substitute_openid_in_stages(stages: &mut [Stage], openid: &str) {
    for stage in stages {
        match stage.key.as_str() {
            "$match" => rules::substitute_openid(&mut stage.value, openid),
            "$geoNear" => {
                if let Some(query) = stage.value.get_mut("query") {
                    rules::substitute_openid(query, openid);
                }
            }
            "$lookup" => {
                if let Some(Value::Array(items)) = stage.value.get_mut("pipeline") {
                    for item in items {
                        if let Some(query) = item.get_mut("$match") {
                            rules::substitute_openid(query, openid);
                        }
                    }
                }
            }
            _ => {}
        }
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
    t.collection(env, name)?;
    let mut stages = parse_stages(body, now)?;
    if let Caller::User(user) = caller {
        substitute_openid_in_stages(&mut stages, &user.openid);
    }
    if let Some(position) = stages.iter().skip(1).position(|s| s.key == "$geoNear") {
        return Err(DbError::invalid_param(format!(
            "$geoNear is only valid as the first stage in a pipeline (found at stage {})",
            position + 2
        )));
    }
    let ctx = Ctx { t, caller, env };
    // The first $match (or $geoNear's query) chooses the candidates, so indexes serve it.
    let (first_query, skip) = match stages.first() {
        Some(s) if s.key == "$match" => (s.value.clone(), 1),
        Some(s) if s.key == "$geoNear" => (
            s.value.get("query").cloned().unwrap_or_else(|| json!({})),
            0,
        ),
        _ => (json!({}), 0),
    };
    let mut docs = ctx.load(name, &first_query)?;
    for stage in &stages[skip..] {
        docs = apply_stage(&ctx, stage, docs, &[])?;
    }
    let strings: Vec<Value> = docs
        .iter()
        .map(|doc| Value::String(canonical(doc).to_string()))
        .collect();
    Ok(json!({ "data": { "list": Value::Array(strings).to_string() } }))
}

fn apply_stage(
    ctx: &Ctx<'_, '_>,
    stage: &Stage,
    docs: Vec<Value>,
    vars: &Vars,
) -> DbResult<Vec<Value>> {
    let value = &stage.value;
    match stage.key.as_str() {
        "$match" => {
            let mut query = value.clone();
            bind_match_vars(&mut query, vars);
            let matcher = Matcher::new(&query)?;
            let mut out = Vec::new();
            for doc in docs {
                if matcher.matches(&doc)? {
                    out.push(doc);
                }
            }
            Ok(out)
        }
        "$project" => project(value, docs, vars),
        "$addFields" | "$set" => add_fields(value, &stage.key, docs, vars),
        "$group" => group(value, docs, vars),
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
        "$lookup" => lookup(ctx, value, docs, vars),
        "$bucket" => bucket(value, docs, vars),
        "$bucketAuto" => bucket_auto(value, docs, vars),
        "$geoNear" => geo_near(value, docs),
        "$replaceRoot" => replace_root(value, docs, vars),
        "$sample" => sample(value, docs),
        "$sortByCount" => sort_by_count(value, docs, vars),
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

fn eval(expr: &Expr, doc: &Value, vars: &Vars) -> DbResult<Option<Value>> {
    expr.eval_in(&Scope::new(doc, vars))
}

/// Replaces `$$name` (a `$lookup` variable) inside the `$expr` parts of a query with its value, so the
/// query matcher needs no variables.
fn bind_match_vars(query: &mut Value, vars: &Vars) {
    if vars.is_empty() {
        return;
    }
    match query {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "$expr" {
                    substitute_vars(value, vars);
                } else {
                    bind_match_vars(value, vars);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| bind_match_vars(v, vars)),
        _ => {}
    }
}

fn substitute_vars(expr: &mut Value, vars: &Vars) {
    match expr {
        Value::String(s) if s.starts_with("$$") => {
            let mut parts = s[2..].split('.');
            let name = parts.next().unwrap_or_default();
            if let Some((_, value)) = vars.iter().find(|(n, _)| n == name) {
                let path: Vec<String> = parts.map(str::to_owned).collect();
                *expr = match field_value(value, &path) {
                    Some(v) => json!({ "$literal": v }),
                    None => Value::String("$$REMOVE".into()),
                };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute_vars(v, vars)),
        Value::Object(map) if !map.contains_key("$literal") => {
            map.values_mut().for_each(|v| substitute_vars(v, vars))
        }
        _ => {}
    }
}

// ---- $project and $addFields ------------------------------------------------------------------------

fn is_flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        _ => None,
    }
}

/// A nested specification (`{a: {b: 1}}`) as dotted paths (`a.b`); operator objects and EJSON
/// literals are values, not nesting.
fn flatten_spec(
    prefix: &str,
    spec: &Map<String, Value>,
    out: &mut Vec<(String, Value)>,
) -> DbResult<()> {
    for (key, value) in spec {
        if key.is_empty() || key.starts_with('$') {
            return Err(DbError::invalid_param(format!(
                "field names may not be empty or start with '$': '{key}'"
            )));
        }
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(map)
                if !map.is_empty()
                    && !ejson::is_literal_object(value)
                    && !map.keys().any(|k| k.starts_with('$')) =>
            {
                flatten_spec(&path, map, out)?
            }
            other => out.push((path, other.clone())),
        }
    }
    Ok(())
}

/// Sets (or, for a missing value, removes) a computed field the way MongoDB's projection executor
/// does: through arrays into every element, replacing non-documents on the way with documents.
fn set_computed(target: &mut Value, path: &[String], value: &Option<Value>) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    match target {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| set_computed(item, path, value)),
        // Documents have no `$` keys; an object with one is an EJSON literal (a date), not a document.
        Value::Object(map) if !map.keys().any(|k| k.starts_with('$')) => {
            if rest.is_empty() {
                match value {
                    Some(v) => {
                        map.insert(head.clone(), v.clone());
                    }
                    None => {
                        map.shift_remove(head);
                    }
                }
            } else {
                let child = map.entry(head.clone()).or_insert(Value::Null);
                set_computed(child, rest, value);
            }
        }
        other => {
            *other = json!({});
            set_computed(other, path, value);
        }
    }
}

fn compile_fields(fields: &[(String, Value)]) -> DbResult<Vec<(Vec<String>, Expr)>> {
    fields
        .iter()
        .map(|(path, value)| Ok((split_path(path), Expr::compile(value)?)))
        .collect()
}

/// Evaluates every field against the input document, then sets them all (MongoDB: fields of one
/// `$addFields` do not see each other).
fn apply_computed(
    doc: &Value,
    out: &mut Value,
    compiled: &[(Vec<String>, Expr)],
    vars: &Vars,
) -> DbResult<()> {
    let values = compiled
        .iter()
        .map(|(_, expr)| eval(expr, doc, vars))
        .collect::<DbResult<Vec<_>>>()?;
    for ((path, _), value) in compiled.iter().zip(&values) {
        set_computed(out, path, value);
    }
    Ok(())
}

fn add_fields(spec: &Value, stage: &str, docs: Vec<Value>, vars: &Vars) -> DbResult<Vec<Value>> {
    let mut fields = Vec::new();
    flatten_spec("", object(spec, stage)?, &mut fields)?;
    let compiled = compile_fields(&fields)?;
    docs.into_iter()
        .map(|doc| {
            let mut out = doc.clone();
            apply_computed(&doc, &mut out, &compiled, vars)?;
            Ok(out)
        })
        .collect()
}

fn project(spec: &Value, docs: Vec<Value>, vars: &Vars) -> DbResult<Vec<Value>> {
    let mut fields = Vec::new();
    flatten_spec("", object(spec, "$project")?, &mut fields)?;
    if fields.is_empty() {
        return Err(DbError::invalid_param(
            "$project requires at least one output field",
        ));
    }
    if fields.iter().all(|(_, v)| is_flag(v).is_some()) {
        let projection = Projection::new(&Value::Object(fields.into_iter().collect()))?;
        return docs.iter().map(|doc| projection.apply(doc)).collect();
    }
    // Computed fields: inclusions (through Projection, so dotted paths reach into arrays) plus
    // expressions; only `_id` may be excluded.
    let mut include_id = true;
    let mut inclusions = Map::new();
    let mut computed = Vec::new();
    for (path, value) in fields {
        match is_flag(&value) {
            Some(false) if path == "_id" => include_id = false,
            Some(false) => {
                return Err(DbError::invalid_param(format!(
                    "Invalid $project :: caused by :: Cannot do exclusion on field {path} in inclusion projection"
                )))
            }
            Some(true) => {
                inclusions.insert(path, json!(1));
            }
            None => computed.push((path, value)),
        }
    }
    let compiled = compile_fields(&computed)?;
    if !include_id {
        inclusions.insert("_id".into(), json!(0));
    }
    let base = if inclusions.keys().any(|k| k != "_id") {
        Some(Projection::new(&Value::Object(inclusions))?)
    } else {
        None
    };
    docs.into_iter()
        .map(|doc| {
            let mut out = match &base {
                Some(projection) => projection.apply(&doc)?,
                None => {
                    let mut out = Map::new();
                    if include_id {
                        if let Some(id) = doc.get("_id") {
                            out.insert("_id".into(), id.clone());
                        }
                    }
                    Value::Object(out)
                }
            };
            apply_computed(&doc, &mut out, &compiled, vars)?;
            Ok(out)
        })
        .collect()
}

fn replace_root(spec: &Value, docs: Vec<Value>, vars: &Vars) -> DbResult<Vec<Value>> {
    let spec = object(spec, "$replaceRoot")?;
    if spec.len() != 1 || !spec.contains_key("newRoot") {
        return Err(DbError::invalid_param(
            "$replaceRoot takes exactly {newRoot: <expression>}",
        ));
    }
    let expr = Expr::compile(&spec["newRoot"])?;
    docs.into_iter()
        .map(|doc| match eval(&expr, &doc, vars)? {
            Some(root @ Value::Object(_)) if !ejson::is_literal_object(&root) => Ok(root),
            other => Err(DbError::invalid_param(format!(
                "'newRoot' expression must evaluate to an object, but resulting value was: {}. Type of resulting value: '{}'",
                other.as_ref().map_or("MISSING".to_owned(), Value::to_string),
                crate::expr::type_name(&other)
            ))),
        })
        .collect()
}

// ---- $group, $bucket, $bucketAuto, $sortByCount -----------------------------------------------------

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

/// Output fields of a grouping stage: `name: {$accumulator: expression}`.
fn compile_accumulators<'a>(
    fields: impl Iterator<Item = (&'a String, &'a Value)>,
) -> DbResult<Vec<(String, AccumulatorKind, Expr)>> {
    let mut outputs = Vec::new();
    for (name, acc) in fields {
        if name.contains('.') || name.starts_with('$') {
            return Err(DbError::invalid_param(format!(
                "the group field name '{name}' cannot contain '.' or start with '$'"
            )));
        }
        let acc = object(acc, "a group accumulator")?;
        let (op, arg) = match acc.iter().next() {
            Some(pair) if acc.len() == 1 => pair,
            _ => {
                return Err(DbError::invalid_param(format!(
                    "the field {name} must specify one accumulator"
                )))
            }
        };
        outputs.push((
            name.clone(),
            AccumulatorKind::parse(op)?,
            Expr::compile(arg)?,
        ));
    }
    Ok(outputs)
}

/// Groups `docs` by the key `key_of` gives, accumulating `outputs`; groups keep first-seen order.
fn group_by(
    docs: &[Value],
    outputs: &[(String, AccumulatorKind, Expr)],
    vars: &Vars,
    mut key_of: impl FnMut(&Value) -> DbResult<Value>,
) -> DbResult<Vec<Value>> {
    let mut order: Vec<(Value, Vec<Accumulator>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for doc in docs {
        let id = key_of(doc)?;
        let key = group_key(&id);
        let slot = match index.get(&key) {
            Some(slot) => *slot,
            None => {
                let accumulators = outputs
                    .iter()
                    .map(|(_, kind, _)| Accumulator::new(*kind))
                    .collect();
                order.push((id, accumulators));
                index.insert(key, order.len() - 1);
                order.len() - 1
            }
        };
        for ((_, _, expr), acc) in outputs.iter().zip(order[slot].1.iter_mut()) {
            acc.add(eval(expr, doc, vars)?)?;
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

fn group(spec: &Value, docs: Vec<Value>, vars: &Vars) -> DbResult<Vec<Value>> {
    let fields = object(spec, "$group")?;
    let id_expr =
        Expr::compile(fields.get("_id").ok_or_else(|| {
            DbError::invalid_param("a $group specification must include an _id")
        })?)?;
    let outputs = compile_accumulators(fields.iter().filter(|(k, _)| *k != "_id"))?;
    group_by(&docs, &outputs, vars, |doc| {
        Ok(eval(&id_expr, doc, vars)?.unwrap_or(Value::Null))
    })
}

fn default_count_output() -> Vec<(String, AccumulatorKind, Expr)> {
    vec![(
        "count".into(),
        AccumulatorKind::Sum,
        Expr::Literal(json!(1)),
    )]
}

fn bucket_outputs(
    spec: &Map<String, Value>,
    stage: &str,
) -> DbResult<Vec<(String, AccumulatorKind, Expr)>> {
    match spec.get("output") {
        None => Ok(default_count_output()),
        Some(output) => compile_accumulators(object(output, &format!("{stage}'s output"))?.iter()),
    }
}

fn group_by_expression(spec: &Map<String, Value>, stage: &str) -> DbResult<Expr> {
    match spec.get("groupBy") {
        Some(v @ Value::String(s)) if s.starts_with('$') => Expr::compile(v),
        Some(v @ Value::Object(_)) => Expr::compile(v),
        _ => Err(DbError::invalid_param(format!(
            "{stage}'s groupBy must be a $-prefixed path or an expression object"
        ))),
    }
}

fn bucket(spec: &Value, docs: Vec<Value>, vars: &Vars) -> DbResult<Vec<Value>> {
    let spec = object(spec, "$bucket")?;
    if let Some(unknown) = spec
        .keys()
        .find(|k| !["groupBy", "boundaries", "default", "output"].contains(&k.as_str()))
    {
        return Err(DbError::invalid_param(format!(
            "unrecognized option to $bucket: {unknown}"
        )));
    }
    let group_by_expr = group_by_expression(spec, "$bucket")?;
    let boundaries = spec
        .get("boundaries")
        .and_then(Value::as_array)
        .filter(|b| b.len() >= 2)
        .ok_or_else(|| {
            DbError::invalid_param("$bucket requires an array of at least 2 boundaries")
        })?;
    let class = type_class(&boundaries[0]);
    for pair in boundaries.windows(2) {
        if type_class(&pair[1]) != class {
            return Err(DbError::invalid_param(
                "all values in the $bucket boundaries must have the same type",
            ));
        }
        if compare_values(&pair[0], &pair[1]) != std::cmp::Ordering::Less {
            return Err(DbError::invalid_param(
                "the $bucket boundaries must be sorted in ascending order",
            ));
        }
    }
    let default = spec.get("default");
    if let Some(d) = default {
        let inside = type_class(d) == class
            && compare_values(d, &boundaries[0]) != std::cmp::Ordering::Less
            && compare_values(d, boundaries.last().expect("2+")) == std::cmp::Ordering::Less;
        if inside {
            return Err(DbError::invalid_param(
                "the $bucket default must be less than the lowest boundary or greater than or equal to the highest boundary",
            ));
        }
    }
    let outputs = bucket_outputs(spec, "$bucket")?;
    let mut grouped = group_by(&docs, &outputs, vars, |doc| {
        let v = eval(&group_by_expr, doc, vars)?.unwrap_or(Value::Null);
        let lower = boundaries.windows(2).find(|pair| {
            compare_values(&v, &pair[0]) != std::cmp::Ordering::Less
                && compare_values(&v, &pair[1]) == std::cmp::Ordering::Less
        });
        match (lower, default) {
            (Some(pair), _) => Ok(pair[0].clone()),
            (None, Some(d)) => Ok(d.clone()),
            (None, None) => Err(DbError::invalid_param(
                "$switch could not find a matching branch for an input, and no default was specified",
            )),
        }
    })?;
    // $bucket is a $group followed by a sort on _id (MongoDB).
    grouped.sort_by(|a, b| compare_values(&a["_id"], &b["_id"]));
    Ok(grouped)
}

fn bucket_auto(spec: &Value, docs: Vec<Value>, vars: &Vars) -> DbResult<Vec<Value>> {
    let spec = object(spec, "$bucketAuto")?;
    if let Some(unknown) = spec
        .keys()
        .find(|k| !["groupBy", "buckets", "output", "granularity"].contains(&k.as_str()))
    {
        return Err(DbError::invalid_param(format!(
            "unrecognized option to $bucketAuto: {unknown}"
        )));
    }
    let granularity = match spec.get("granularity") {
        None => None,
        Some(Value::String(name)) => Some(Granularity::parse(name)?),
        Some(_) => {
            return Err(DbError::invalid_param(
                "$bucketAuto's granularity must be a string",
            ))
        }
    };
    let group_by_expr = group_by_expression(spec, "$bucketAuto")?;
    let buckets = spec
        .get("buckets")
        .and_then(|b| count_operand(b, "$bucketAuto").ok())
        .filter(|n| *n > 0 && *n <= i32::MAX as usize)
        .ok_or_else(|| {
            DbError::invalid_param("$bucketAuto's buckets must be a positive 32-bit integer")
        })?;
    let outputs = bucket_outputs(spec, "$bucketAuto")?;
    let mut keyed = docs
        .into_iter()
        .map(|doc| {
            Ok((
                eval(&group_by_expr, &doc, vars)?.unwrap_or(Value::Null),
                doc,
            ))
        })
        .collect::<DbResult<Vec<_>>>()?;
    keyed.sort_by(|a, b| compare_values(&a.0, &b.0));
    if granularity.is_some() {
        if let Some((key, _)) = keyed
            .iter()
            .find(|(key, _)| key.as_f64().is_none_or(|n| n.is_nan() || n < 0.0))
        {
            return Err(DbError::invalid_param(format!(
                "$bucketAuto can specify a 'granularity' with non-negative numeric boundaries only, but found {key}"
            )));
        }
    }
    // MongoDB (document_source_bucket_auto.cpp): round(n / buckets) documents per bucket (at least
    // one), the last bucket takes the rest. Without granularity a bucket absorbs values equal to its
    // last one and its max is the next bucket's min (its own last value at the end). With granularity
    // the first min is rounded down, each max is its last value rounded up (absorbing values below
    // it), and each later min is the previous max.
    let size = ((keyed.len() as f64 / buckets as f64).round() as usize).max(1);
    let mut ranges: Vec<(usize, usize, Value, Value)> = Vec::new();
    let mut start = 0;
    let mut previous_max: Option<Value> = None;
    while start < keyed.len() {
        let mut end = if ranges.len() + 1 == buckets {
            keyed.len()
        } else {
            (start + size).min(keyed.len())
        };
        let (min, max) = match &granularity {
            None => {
                while end < keyed.len() && values_equal(&keyed[end - 1].0, &keyed[end].0) {
                    end += 1;
                }
                let max = keyed.get(end).unwrap_or(&keyed[end - 1]).0.clone();
                (keyed[start].0.clone(), max)
            }
            Some(g) => {
                let min = previous_max
                    .take()
                    .unwrap_or_else(|| g.round_down(&keyed[start].0));
                let boundary = g.round_up(&keyed[end - 1].0);
                let bound = boundary.as_f64().unwrap_or(0.0);
                while end < keyed.len()
                    && (keyed[end].0.as_f64().unwrap_or(0.0) < bound
                        || values_equal(&keyed[end - 1].0, &keyed[end].0))
                {
                    end += 1;
                }
                let max = if bound == 0.0 && end < keyed.len() {
                    g.round_down(&keyed[end].0)
                } else {
                    boundary
                };
                previous_max = Some(max.clone());
                (min, max)
            }
        };
        ranges.push((start, end, min, max));
        start = end;
    }
    let mut out = Vec::with_capacity(ranges.len());
    for (start, end, min, max) in ranges {
        let mut accumulators: Vec<Accumulator> = outputs
            .iter()
            .map(|(_, kind, _)| Accumulator::new(*kind))
            .collect();
        for (_, doc) in &keyed[start..end] {
            for ((_, _, expr), acc) in outputs.iter().zip(accumulators.iter_mut()) {
                acc.add(eval(expr, doc, vars)?)?;
            }
        }
        let mut doc = Map::new();
        doc.insert("_id".into(), json!({ "min": min, "max": max }));
        for ((name, _, _), acc) in outputs.iter().zip(accumulators) {
            doc.insert(name.clone(), acc.finish());
        }
        out.push(Value::Object(doc));
    }
    Ok(out)
}

/// A `$bucketAuto` granularity: a preferred-number series (scaled by powers of ten) or powers of two.
enum Granularity {
    Series(&'static [f64]),
    PowersOf2,
}

/// The preferred-number series MongoDB rounds `$bucketAuto` boundaries to (Renard, E and 1-2-5).
const SERIES: &[(&str, &[f64])] = &[
    ("R5", &[10.0, 16.0, 25.0, 40.0, 63.0]),
    (
        "R10",
        &[
            100.0, 125.0, 160.0, 200.0, 250.0, 315.0, 400.0, 500.0, 630.0, 800.0,
        ],
    ),
    (
        "R20",
        &[
            100.0, 112.0, 125.0, 140.0, 160.0, 180.0, 200.0, 224.0, 250.0, 280.0, 315.0, 355.0,
            400.0, 450.0, 500.0, 560.0, 630.0, 710.0, 800.0, 900.0,
        ],
    ),
    (
        "R40",
        &[
            100.0, 106.0, 112.0, 118.0, 125.0, 132.0, 140.0, 150.0, 160.0, 170.0, 180.0, 190.0,
            200.0, 212.0, 224.0, 236.0, 250.0, 265.0, 280.0, 300.0, 315.0, 355.0, 375.0, 400.0,
            425.0, 450.0, 475.0, 500.0, 530.0, 560.0, 600.0, 630.0, 670.0, 710.0, 750.0, 800.0,
            850.0, 900.0, 950.0,
        ],
    ),
    (
        "R80",
        &[
            103.0, 109.0, 115.0, 122.0, 128.0, 136.0, 145.0, 155.0, 165.0, 175.0, 185.0, 195.0,
            206.0, 218.0, 230.0, 243.0, 258.0, 272.0, 290.0, 307.0, 325.0, 345.0, 365.0, 387.0,
            412.0, 437.0, 462.0, 487.0, 515.0, 545.0, 575.0, 615.0, 650.0, 690.0, 730.0, 775.0,
            825.0, 875.0, 925.0, 975.0,
        ],
    ),
    ("1-2-5", &[10.0, 20.0, 50.0]),
    ("E6", &[10.0, 15.0, 22.0, 33.0, 47.0, 68.0]),
    (
        "E12",
        &[
            10.0, 12.0, 15.0, 18.0, 22.0, 27.0, 33.0, 39.0, 47.0, 56.0, 68.0, 82.0,
        ],
    ),
    (
        "E24",
        &[
            10.0, 11.0, 12.0, 13.0, 15.0, 16.0, 18.0, 20.0, 22.0, 24.0, 27.0, 30.0, 33.0, 36.0,
            39.0, 43.0, 47.0, 51.0, 56.0, 62.0, 68.0, 75.0, 82.0, 91.0,
        ],
    ),
    (
        "E48",
        &[
            100.0, 105.0, 110.0, 115.0, 121.0, 127.0, 133.0, 140.0, 147.0, 154.0, 162.0, 169.0,
            178.0, 187.0, 196.0, 205.0, 215.0, 226.0, 237.0, 249.0, 261.0, 274.0, 287.0, 301.0,
            316.0, 332.0, 348.0, 365.0, 383.0, 402.0, 422.0, 442.0, 464.0, 487.0, 511.0, 536.0,
            562.0, 590.0, 619.0, 649.0, 681.0, 715.0, 750.0, 787.0, 825.0, 866.0, 909.0, 953.0,
        ],
    ),
];

impl Granularity {
    fn parse(name: &str) -> DbResult<Granularity> {
        if name == "POWERSOF2" {
            return Ok(Granularity::PowersOf2);
        }
        match SERIES.iter().find(|(n, _)| *n == name) {
            Some((_, series)) => Ok(Granularity::Series(series)),
            None => Err(DbError::invalid_param(format!(
                "unknown $bucketAuto granularity '{name}' (cloud-emulator knows POWERSOF2, 1-2-5, R5, R10, R20, R40, R80, E6, E12, E24, E48)"
            ))),
        }
    }

    /// The smallest boundary strictly above `value` (0 stays 0).
    fn round_up(&self, value: &Value) -> Value {
        let v = value.as_f64().unwrap_or(0.0);
        if v == 0.0 {
            return value.clone();
        }
        match self {
            Granularity::PowersOf2 => match value.as_u64() {
                Some(n) => power_of_two(64 - i32::try_from(n.leading_zeros()).unwrap_or(0)),
                None => power_of_two(v.log2().floor() as i32 + 1),
            },
            Granularity::Series(series) => {
                let (first, last) = (series[0], series[series.len() - 1]);
                let mut scale = 1.0;
                while v >= last * scale {
                    scale *= 10.0;
                }
                while v < first * scale {
                    let previous_min = first * scale;
                    scale /= 10.0;
                    if v >= last * scale {
                        return json!(previous_min);
                    }
                }
                let next = series.iter().find(|s| v < *s * scale).unwrap_or(&last);
                json!(next * scale)
            }
        }
    }

    /// The largest boundary strictly below `value` (0 stays 0).
    fn round_down(&self, value: &Value) -> Value {
        let v = value.as_f64().unwrap_or(0.0);
        if v == 0.0 {
            return value.clone();
        }
        match self {
            Granularity::PowersOf2 => match value.as_u64() {
                Some(n) => {
                    let top = 63 - i32::try_from(n.leading_zeros()).unwrap_or(0);
                    power_of_two(if n.is_power_of_two() { top - 1 } else { top })
                }
                None => power_of_two(v.log2().ceil() as i32 - 1),
            },
            Granularity::Series(series) => {
                let (first, last) = (series[0], series[series.len() - 1]);
                let mut scale = 1.0;
                while v <= first * scale {
                    scale /= 10.0;
                }
                while v > last * scale {
                    let previous_max = last * scale;
                    scale *= 10.0;
                    if v <= first * scale {
                        return json!(previous_max);
                    }
                }
                let below = series
                    .iter()
                    .rev()
                    .find(|s| *s * scale < v)
                    .unwrap_or(&first);
                json!(below * scale)
            }
        }
    }
}

/// 2^exp as `$pow` gives it: an integer for exponents 0..=62, a double otherwise.
fn power_of_two(exp: i32) -> Value {
    if (0..63).contains(&exp) {
        json!(1i64 << exp)
    } else {
        json!(2f64.powi(exp))
    }
}

fn sort_by_count(spec: &Value, docs: Vec<Value>, vars: &Vars) -> DbResult<Vec<Value>> {
    let expr = match spec {
        Value::String(s) if s.starts_with('$') && !s.starts_with("$$") => Expr::compile(spec)?,
        Value::Object(map) if map.keys().next().is_some_and(|k| k.starts_with('$')) => {
            Expr::compile(spec)?
        }
        _ => {
            return Err(DbError::invalid_param(
                "$sortByCount takes a $-prefixed field path or an expression object",
            ))
        }
    };
    let mut grouped = group_by(&docs, &default_count_output(), vars, |doc| {
        Ok(eval(&expr, doc, vars)?.unwrap_or(Value::Null))
    })?;
    // Stable: equal counts keep first-seen order.
    grouped.sort_by(|a, b| compare_values(&b["count"], &a["count"]));
    Ok(grouped)
}

// ---- $unwind, $sample, $geoNear ---------------------------------------------------------------------

fn unwind(spec: &Value, docs: Vec<Value>) -> DbResult<Vec<Value>> {
    let (path, index_field, preserve) = match spec {
        Value::String(path) => (path.as_str(), None, false),
        Value::Object(map) => {
            if let Some(unknown) = map.keys().find(|k| {
                !["path", "includeArrayIndex", "preserveNullAndEmptyArrays"].contains(&k.as_str())
            }) {
                return Err(DbError::invalid_param(format!(
                    "unrecognized option to $unwind: {unknown}"
                )));
            }
            let preserve = match map.get("preserveNullAndEmptyArrays") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(DbError::invalid_param(
                        "$unwind's preserveNullAndEmptyArrays must be a boolean",
                    ))
                }
            };
            let index_field = match map.get("includeArrayIndex") {
                None => None,
                Some(Value::String(f)) if !f.is_empty() && !f.starts_with('$') => Some(f.as_str()),
                Some(_) => {
                    return Err(DbError::invalid_param(
                        "$unwind's includeArrayIndex must be a non-empty field name not starting with $",
                    ))
                }
            };
            (
                map.get("path").and_then(Value::as_str).unwrap_or(""),
                index_field,
                preserve,
            )
        }
        _ => ("", None, false),
    };
    let path = path
        .strip_prefix('$')
        .filter(|p| !p.is_empty())
        .ok_or_else(|| DbError::invalid_param("$unwind path must start with $"))?;
    let components = split_path(path);
    let index_path = index_field.map(split_path);
    let with_index = |mut doc: Value, index: Value| {
        if let Some(path) = &index_path {
            set_computed(&mut doc, path, &Some(index));
        }
        doc
    };
    let mut out = Vec::new();
    for doc in docs {
        match crate::value::get_path(&doc, &components).cloned() {
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.into_iter().enumerate() {
                    let mut copy = doc.clone();
                    set_computed(&mut copy, &components, &Some(item));
                    out.push(with_index(copy, json!(i)));
                }
            }
            Some(Value::Array(_)) => {
                // An empty array is kept without the field (MongoDB), only when preserving.
                if preserve {
                    let mut copy = doc;
                    set_computed(&mut copy, &components, &None);
                    out.push(with_index(copy, Value::Null));
                }
            }
            Some(Value::Null) | None => {
                if preserve {
                    out.push(with_index(doc, Value::Null));
                }
            }
            // A non-array value is a one-element array.
            Some(_) => out.push(with_index(doc, Value::Null)),
        }
    }
    Ok(out)
}

fn sample(spec: &Value, docs: Vec<Value>) -> DbResult<Vec<Value>> {
    let spec = object(spec, "$sample")?;
    let size = spec
        .get("size")
        .and_then(|s| count_operand(s, "$sample").ok())
        .filter(|_| spec.len() == 1)
        .ok_or_else(|| DbError::invalid_param("$sample takes {size: <non-negative integer>}"))?;
    use rand::seq::SliceRandom;
    let mut docs = docs;
    docs.shuffle(&mut rand::rng());
    docs.truncate(size);
    Ok(docs)
}

fn geo_near(spec: &Value, docs: Vec<Value>) -> DbResult<Vec<Value>> {
    let spec = object(spec, "$geoNear")?;
    const KNOWN: &[&str] = &[
        "near",
        "distanceField",
        "spherical",
        "maxDistance",
        "minDistance",
        "query",
        "distanceMultiplier",
        "includeLocs",
        "key",
        "limit",
        "num",
    ];
    if let Some(unknown) = spec.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(DbError::invalid_param(format!(
            "unknown argument to $geoNear: {unknown}"
        )));
    }
    let distance_field = spec
        .get("distanceField")
        .and_then(Value::as_str)
        .filter(|f| !f.is_empty() && !f.starts_with('$'))
        .ok_or_else(|| {
            DbError::invalid_param("$geoNear requires a 'distanceField' option as a String")
        })?;
    let near = match spec.get("near") {
        Some(Value::Array(coords)) => json!({ "type": "Point", "coordinates": coords }),
        Some(point @ Value::Object(_)) => point.clone(),
        _ => return Err(DbError::invalid_param("$geoNear requires a 'near' point")),
    };
    let key = match spec.get("key") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        Some(_) => {
            return Err(DbError::invalid_param(
                "$geoNear's key must be a non-empty string",
            ))
        }
        // Without `key`, the first top-level GeoJSON Point field of the candidates (the field the
        // collection's one geo index would cover).
        None => match docs.iter().find_map(first_point_field) {
            Some(k) => k,
            None => return Ok(Vec::new()),
        },
    };
    let multiplier = match spec.get("distanceMultiplier") {
        None => 1.0,
        Some(v) => v.as_f64().filter(|m| *m >= 0.0).ok_or_else(|| {
            DbError::invalid_param("$geoNear's distanceMultiplier must be a non-negative number")
        })?,
    };
    let mut near_query = Map::new();
    near_query.insert("$geometry".into(), near);
    for (option, operator) in [
        ("maxDistance", "$maxDistance"),
        ("minDistance", "$minDistance"),
    ] {
        if let Some(v) = spec.get(option) {
            near_query.insert(operator.into(), v.clone());
        }
    }
    let matcher = Matcher::new(&json!({ key.clone(): { "$nearSphere": near_query } }))?;
    let near = matcher.near().expect("a $nearSphere query").clone();
    let include_locs = match spec.get("includeLocs") {
        None => None,
        Some(Value::String(f)) if !f.is_empty() => Some(split_path(f)),
        Some(_) => {
            return Err(DbError::invalid_param(
                "$geoNear's includeLocs must be a field name",
            ))
        }
    };
    let limit = match spec.get("limit").or(spec.get("num")) {
        None => usize::MAX,
        Some(v) => count_operand(v, "$geoNear's limit")?,
    };
    let mut found = Vec::new();
    for doc in docs {
        if !matcher.matches(&doc)? {
            continue;
        }
        if let Some(distance) = near.distance_m(&doc) {
            found.push((distance, doc));
        }
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let key_path = split_path(&key);
    let distance_path = split_path(distance_field);
    Ok(found
        .into_iter()
        .take(limit)
        .map(|(distance, mut doc)| {
            let location = crate::value::get_path(&doc, &key_path).cloned();
            set_computed(
                &mut doc,
                &distance_path,
                &Some(json!(distance * multiplier)),
            );
            if let (Some(path), Some(location)) = (&include_locs, location) {
                set_computed(&mut doc, path, &Some(location));
            }
            doc
        })
        .collect())
}

fn first_point_field(doc: &Value) -> Option<String> {
    doc.as_object()?.iter().find_map(|(k, v)| {
        (v.get("type").and_then(Value::as_str) == Some("Point") && v.get("coordinates").is_some())
            .then(|| k.clone())
    })
}

// ---- $lookup ----------------------------------------------------------------------------------------

fn lookup(ctx: &Ctx<'_, '_>, spec: &Value, docs: Vec<Value>, vars: &Vars) -> DbResult<Vec<Value>> {
    let fields = object(spec, "$lookup")?;
    if let Some(unknown) = fields.keys().find(|k| {
        ![
            "from",
            "localField",
            "foreignField",
            "as",
            "let",
            "pipeline",
        ]
        .contains(&k.as_str())
    }) {
        return Err(DbError::invalid_param(format!(
            "unknown argument to $lookup: {unknown}"
        )));
    }
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| DbError::invalid_param(format!("$lookup needs a string {name}")))
    };
    let (from, as_field) = (text("from")?, text("as")?);
    let as_path = split_path(as_field);
    let foreign_docs = ctx.load(from, &json!({}))?;
    if let Some(pipeline) = fields.get("pipeline") {
        if fields.contains_key("localField") || fields.contains_key("foreignField") {
            return Err(DbError::invalid_param(
                "$lookup with 'pipeline' may not specify 'localField' or 'foreignField'",
            ));
        }
        let stages = parse_sub_pipeline(pipeline)?;
        let lets = match fields.get("let") {
            None => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(name, v)| {
                    crate::expr::check_variable_name(name)?;
                    Ok((name.clone(), Expr::compile(v)?))
                })
                .collect::<DbResult<Vec<_>>>()?,
            Some(_) => return Err(DbError::invalid_param("$lookup's let must be an object")),
        };
        return docs
            .into_iter()
            .map(|mut doc| {
                let mut bound: Vec<(String, Value)> = vars.to_vec();
                for (name, expr) in &lets {
                    let value = eval(expr, &doc, vars)?.unwrap_or(Value::Null);
                    bound.retain(|(n, _)| n != name);
                    bound.push((name.clone(), value));
                }
                let mut joined = foreign_docs.clone();
                for stage in &stages {
                    joined = apply_stage(ctx, stage, joined, &bound)?;
                }
                set_computed(&mut doc, &as_path, &Some(Value::Array(joined)));
                Ok(doc)
            })
            .collect();
    }
    let (local, foreign) = (text("localField")?, text("foreignField")?);
    let local_path = split_path(local);
    let foreign_path = split_path(foreign);
    let values_at = |doc: &Value, path: &[String]| -> Vec<Value> {
        let candidates = path_candidates(doc, path);
        if candidates.is_empty() {
            // Nothing at the path (an empty array on the way) looks up null, as a missing field does.
            return vec![Value::Null];
        }
        let mut out = Vec::new();
        for candidate in candidates {
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
            set_computed(&mut doc, &as_path, &Some(Value::Array(joined)));
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
            &[],
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
            &[],
        )
        .unwrap();
        assert_eq!(projected[1], json!({"a": 2, "double": 4}));
    }

    fn run_stage(key: &str, value: Value, docs: Vec<Value>) -> DbResult<Vec<Value>> {
        let vars: &Vars = &[];
        match key {
            "$project" => project(&value, docs, vars),
            "$addFields" => add_fields(&value, key, docs, vars),
            "$unwind" => unwind(&value, docs),
            "$bucket" => bucket(&value, docs, vars),
            "$bucketAuto" => bucket_auto(&value, docs, vars),
            "$replaceRoot" => replace_root(&value, docs, vars),
            "$sortByCount" => sort_by_count(&value, docs, vars),
            "$geoNear" => geo_near(&value, docs),
            "$sample" => sample(&value, docs),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn add_fields_is_simultaneous_leaves_missing_out_and_reaches_into_arrays() {
        let out = run_stage(
            "$addFields",
            json!({"x": "$y", "z": "$x", "gone": "$nope", "items.q": 5}),
            vec![json!({"x": 1, "y": 2, "items": [{"a": 1}, {"a": 2}]})],
        )
        .unwrap();
        assert_eq!(
            out[0],
            json!({"x": 2, "y": 2, "items": [{"a": 1, "q": 5}, {"a": 2, "q": 5}], "z": 1})
        );
        let out = run_stage(
            "$addFields",
            json!({"x": "$$REMOVE"}),
            vec![json!({"x": 1, "k": 0})],
        )
        .unwrap();
        assert_eq!(out[0], json!({"k": 0}));
    }

    #[test]
    fn project_computed_keeps_dotted_inclusions() {
        let doc =
            json!({"_id": 1, "x": 7, "o": {"c": 1, "d": 2}, "items": [{"q": 1, "w": 2}, {"w": 3}]});
        let out = run_stage(
            "$project",
            json!({"o.c": 1, "items.q": 1, "r": "$x"}),
            vec![doc],
        )
        .unwrap();
        assert_eq!(
            out[0],
            json!({"_id": 1, "o": {"c": 1}, "items": [{"q": 1}, {}], "r": 7})
        );
        assert!(run_stage("$project", json!({"a": 1, "b": 0}), vec![json!({})]).is_err());
        assert!(run_stage("$project", json!({"a": "$x", "b": 0}), vec![json!({})]).is_err());
    }

    #[test]
    fn unwind_preserve_drops_an_empty_array() {
        let docs = vec![
            json!({"_id": 1, "tags": []}),
            json!({"_id": 2, "tags": null}),
            json!({"_id": 3}),
        ];
        let out = run_stage(
            "$unwind",
            json!({"path": "$tags", "preserveNullAndEmptyArrays": true, "includeArrayIndex": "i"}),
            docs,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                json!({"_id": 1, "i": null}),
                json!({"_id": 2, "tags": null, "i": null}),
                json!({"_id": 3, "i": null})
            ]
        );
    }

    #[test]
    fn buckets_sort_by_count_and_replace_root() {
        let docs: Vec<Value> = [1, 5, 5, 12, 30, 7]
            .iter()
            .map(|n| json!({"n": n, "o": {"v": n}}))
            .collect();
        let out = run_stage(
            "$bucket",
            json!({"groupBy": "$n", "boundaries": [0, 5, 10], "default": "other",
                   "output": {"count": {"$sum": 1}, "ns": {"$push": "$n"}}}),
            docs.clone(),
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                json!({"_id": 0, "count": 1, "ns": [1]}),
                json!({"_id": 5, "count": 3, "ns": [5, 5, 7]}),
                json!({"_id": "other", "count": 2, "ns": [12, 30]})
            ]
        );
        assert!(run_stage(
            "$bucket",
            json!({"groupBy": "$n", "boundaries": [0, 5]}),
            docs.clone()
        )
        .is_err());
        let out = run_stage(
            "$bucketAuto",
            json!({"groupBy": "$n", "buckets": 2}),
            docs.clone(),
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                json!({"_id": {"min": 1, "max": 7}, "count": 3}),
                json!({"_id": {"min": 7, "max": 30}, "count": 3})
            ]
        );
        // Granularity (document_source_bucket_auto.cpp): the first min rounds down, each max rounds up
        // and absorbs the values below it, the next min is the previous max.
        let ten: Vec<Value> = (1..=10).map(|n| json!({ "n": n })).collect();
        let out = run_stage(
            "$bucketAuto",
            json!({"groupBy": "$n", "buckets": 3, "granularity": "POWERSOF2"}),
            ten.clone(),
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                json!({"_id": {"min": 0.5, "max": 4}, "count": 3}),
                json!({"_id": {"min": 4, "max": 8}, "count": 4}),
                json!({"_id": {"min": 8, "max": 16}, "count": 3})
            ]
        );
        let out = run_stage(
            "$bucketAuto",
            json!({"groupBy": "$n", "buckets": 2, "granularity": "1-2-5"}),
            ten.clone(),
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                json!({"_id": {"min": 0.5, "max": 10.0}, "count": 9}),
                json!({"_id": {"min": 10.0, "max": 20.0}, "count": 1})
            ]
        );
        assert!(run_stage(
            "$bucketAuto",
            json!({"groupBy": "$n", "buckets": 2, "granularity": "R5"}),
            vec![json!({"n": -1})]
        )
        .is_err());
        let out = run_stage("$sortByCount", json!("$n"), docs.clone()).unwrap();
        assert_eq!(out[0], json!({"_id": 5, "count": 2}));
        let out = run_stage("$replaceRoot", json!({"newRoot": "$o"}), docs.clone()).unwrap();
        assert_eq!(out[0], json!({"v": 1}));
        assert!(run_stage("$replaceRoot", json!({"newRoot": "$n"}), docs.clone()).is_err());
        assert_eq!(
            run_stage("$sample", json!({"size": 4}), docs)
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn a_leading_match_reads_only_the_index_candidates() {
        use crate::store::DocStore;
        let dir = tempfile::tempdir().unwrap();
        let store = DocStore::open(dir.path()).unwrap();
        let meta = store
            .write(|t| t.create_collection("e", "c", &json!({}), &["k".to_string()], 0))
            .unwrap();
        store
            .write(|t| {
                for i in 0..1000 {
                    t.insert(
                        &meta,
                        &json!({"_id": format!("d{i}"), "k": i % 100, "u": i}),
                    )?;
                }
                Ok(())
            })
            .unwrap();
        let body = json!({"stages": [
            {"stageKey": "$match", "stageValue": "{\"k\": 7}"},
            {"stageKey": "$group", "stageValue": "{\"_id\": \"$k\", \"total\": {\"$sum\": \"$u\"}}"}
        ]});
        let before = store.documents_examined();
        let answer = store
            .read(|t| run(t, &Caller::Admin, "e", "c", body.as_object().unwrap(), 0))
            .unwrap();
        assert_eq!(
            store.documents_examined() - before,
            10,
            "only the 10 index candidates"
        );
        let list: Vec<String> =
            serde_json::from_str(answer["data"]["list"].as_str().unwrap()).unwrap();
        let total: i64 = (0..10).map(|j| 7 + 100 * j).sum();
        assert_eq!(
            serde_json::from_str::<Value>(&list[0]).unwrap(),
            json!({"_id": {"$numberInt": "7"}, "total": {"$numberInt": total.to_string()}})
        );
    }

    #[test]
    fn geo_near_sorts_by_distance_and_writes_it() {
        let point = |lng: f64| json!({"type": "Point", "coordinates": [lng, 0.0]});
        let docs = vec![
            json!({"_id": "far", "loc": point(1.0)}),
            json!({"_id": "near", "loc": point(0.1)}),
            json!({"_id": "none"}),
        ];
        let out = run_stage(
            "$geoNear",
            json!({"near": point(0.0), "distanceField": "d", "maxDistance": 50_000, "includeLocs": "at"}),
            docs,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["_id"], "near");
        let d = out[0]["d"].as_f64().unwrap();
        assert!((11_000.0..11_200.0).contains(&d), "{d}");
        assert_eq!(out[0]["at"], point(0.1));
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
