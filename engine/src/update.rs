//! Update documents (`merge: true`) and whole-document replacement (`merge: false`).
//!
//! Operators: `$set $unset $inc $mul $min $max $rename $currentDate $push ($each $position $sort $slice)
//! $pop $pull $pullAll $addToSet ($each) $bit $setOnInsert`. Dotted paths create intermediate objects,
//! numeric components index arrays (padding with null), `_id` is immutable, two operations on the same
//! path or on a path and its prefix are rejected, and any error leaves the document unchanged (the
//! functions return a new document).

use crate::ejson;
use crate::error::{DbError, DbResult};
use crate::matcher::ElementCondition;
use crate::sort::SortSpec;
use crate::value::{array_index, compare_values, get_path, values_equal};
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// True when `update` is an operator document (`{"$set": …}`), false for a plain document.
pub fn is_operator_update(update: &Value) -> bool {
    update
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k.starts_with('$')))
}

/// Applies an update document to `doc` and returns the updated copy. A plain document (no `$` keys) is
/// merged as `$set` of each field, which is what `merge: true` means for the CloudBase service.
pub fn apply_update(doc: &Value, update: &Value, now_ms: i64) -> DbResult<Value> {
    apply(doc, update, now_ms, false)
}

/// Applies an upsert's update to the new document built from the query: like [`apply_update`], and
/// `$setOnInsert` takes effect.
pub fn apply_upsert_insert(seed: &Value, update: &Value, now_ms: i64) -> DbResult<Value> {
    apply(seed, update, now_ms, true)
}

/// Every update operator [`apply_update`] knows.
const UPDATE_OPERATORS: &[&str] = &[
    "$set",
    "$setOnInsert",
    "$unset",
    "$inc",
    "$mul",
    "$min",
    "$max",
    "$currentDate",
    "$rename",
    "$push",
    "$addToSet",
    "$pop",
    "$pull",
    "$pullAll",
    "$bit",
];

/// `merge: false`: the replacement's fields, with the existing document's `_id` kept (first) and its
/// system field `_openid` (right after it) unless the replacement names one: `set()` replaces the data,
/// not the document's owner (a client cannot change `_openid` at all: the caller checks that).
pub fn replace_document(existing: &Value, replacement: &Value, now_ms: i64) -> DbResult<Value> {
    let map = replacement
        .as_object()
        .ok_or_else(|| DbError::invalid_param("replacement document must be an object"))?;
    if let Some(key) = map.keys().find(|k| k.starts_with('$')) {
        return Err(DbError::invalid_param(format!(
            "update operator complicit: replacement document must not contain operators ({key})"
        )));
    }
    let mut replacement = replacement.clone();
    ejson::resolve_server_dates(&mut replacement, now_ms);
    validate_storable(&replacement, "")?;
    let existing_id = existing.get("_id");
    if let (Some(new_id), Some(old_id)) = (replacement.get("_id"), existing_id) {
        if !values_equal(new_id, old_id) {
            return Err(immutable_id());
        }
    }
    let mut out = Map::new();
    if let Some(id) = existing_id.or_else(|| replacement.get("_id")) {
        out.insert("_id".to_owned(), id.clone());
    }
    if let (Some(openid), None) = (existing.get("_openid"), replacement.get("_openid")) {
        out.insert("_openid".to_owned(), openid.clone());
    }
    for (k, v) in replacement.as_object().expect("object") {
        if k != "_id" {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(Value::Object(out))
}

/// Prepares a document for insertion: an object, server dates resolved, no `$`-prefixed field names.
pub fn prepare_document(doc: &Value, now_ms: i64) -> DbResult<Value> {
    if !doc.is_object() {
        return Err(DbError::invalid_param("document must be an object"));
    }
    let mut doc = doc.clone();
    ejson::resolve_server_dates(&mut doc, now_ms);
    validate_storable(&doc, "")?;
    Ok(doc)
}

/// Rejects field names starting with `$` (other than the EJSON literal forms) anywhere in a value.
fn validate_storable(value: &Value, at: &str) -> DbResult<()> {
    match value {
        Value::Object(_) if ejson::is_literal_object(value) => Ok(()),
        Value::Object(map) => {
            for (k, v) in map {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                if k.starts_with('$') {
                    return Err(DbError::invalid_param(format!(
                        "the dollar ($) prefixed field '{k}' in '{path}' is not valid for storage"
                    )));
                }
                validate_storable(v, &path)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| validate_storable(v, at)),
        _ => Ok(()),
    }
}

fn immutable_id() -> DbError {
    DbError::invalid_param(
        "Performing an update on the path '_id' would modify the immutable field '_id'",
    )
}

#[derive(Debug)]
enum Op {
    Set(Value),
    Unset,
    Inc(Number),
    Mul(Number),
    Min(Value),
    Max(Value),
    Rename(Vec<String>),
    Push {
        each: Vec<Value>,
        position: Option<i64>,
        sort: Option<PushSort>,
        slice: Option<i64>,
    },
    AddToSet(Vec<Value>),
    Pop(bool),
    Pull(ElementCondition),
    PullAll(Vec<Value>),
    Bit(Vec<(BitOp, i64)>),
}

#[derive(Debug)]
enum PushSort {
    Whole(bool),
    Fields(SortSpec),
}

#[derive(Debug, Clone, Copy)]
enum BitOp {
    And,
    Or,
    Xor,
}

fn apply(doc: &Value, update: &Value, now_ms: i64, inserting: bool) -> DbResult<Value> {
    let map = update
        .as_object()
        .ok_or_else(|| DbError::invalid_param("update document must be an object"))?;
    let mut update = if is_operator_update(update) {
        if let Some(k) = map.keys().find(|k| !k.starts_with('$')) {
            return Err(DbError::invalid_param(format!(
                "update document mixes operators and plain fields ('{k}')"
            )));
        }
        update.clone()
    } else {
        let mut wrapped = Map::new();
        wrapped.insert("$set".to_owned(), update.clone());
        Value::Object(wrapped)
    };
    ejson::resolve_server_dates(&mut update, now_ms);

    let mut ops: Vec<(Vec<String>, Op)> = Vec::new();
    for (operator, fields) in update.as_object().expect("object") {
        // Checked before its fields: `{"$set": …, "$function": {}}` must not pass as a no-op.
        if !UPDATE_OPERATORS.contains(&operator.as_str()) {
            return Err(DbError::invalid_operator(format!(
                "unknown update operator: {operator}"
            )));
        }
        let fields = fields.as_object().ok_or_else(|| {
            DbError::invalid_param(format!(
                "modifiers for {operator} must be an object, got {fields}"
            ))
        })?;
        for (path, operand) in fields {
            let parsed = parse_path(path)?;
            let op = match operator.as_str() {
                "$setOnInsert" if !inserting => continue,
                "$set" | "$setOnInsert" => {
                    validate_storable(operand, path)?;
                    Op::Set(operand.clone())
                }
                "$unset" => Op::Unset,
                "$inc" | "$mul" => {
                    let n = operand.as_number().cloned().ok_or_else(|| {
                        DbError::invalid_param(format!(
                            "cannot {operator} with non-numeric argument: {{{path}: {operand}}}"
                        ))
                    })?;
                    if operator == "$inc" {
                        Op::Inc(n)
                    } else {
                        Op::Mul(n)
                    }
                }
                "$min" => Op::Min(operand.clone()),
                "$max" => Op::Max(operand.clone()),
                "$currentDate" => match operand {
                    Value::Bool(true) => Op::Set(ejson::date_value(now_ms)),
                    Value::Object(m)
                        if matches!(
                            m.get("$type").and_then(Value::as_str),
                            Some("date" | "timestamp")
                        ) =>
                    {
                        Op::Set(ejson::date_value(now_ms))
                    }
                    _ => {
                        return Err(DbError::invalid_param(
                            "$currentDate needs true or {$type: 'date'}",
                        ))
                    }
                },
                "$rename" => {
                    let target = operand.as_str().ok_or_else(|| {
                        DbError::invalid_param("the 'to' field for $rename must be a string")
                    })?;
                    let target = parse_path(target)?;
                    if is_prefix(&parsed, &target) || is_prefix(&target, &parsed) {
                        return Err(DbError::invalid_param(format!(
                            "the source and target field for $rename must differ and not be on the same path: {path}"
                        )));
                    }
                    Op::Rename(target)
                }
                "$push" => compile_push(operand, path)?,
                "$addToSet" => {
                    let values = match operand {
                        Value::Object(m) if m.contains_key("$each") => {
                            if m.len() != 1 {
                                return Err(DbError::invalid_param(
                                    "$addToSet only supports the $each modifier",
                                ));
                            }
                            m["$each"].as_array().cloned().ok_or_else(|| {
                                DbError::invalid_param("the argument to $each must be an array")
                            })?
                        }
                        single => vec![single.clone()],
                    };
                    values.iter().try_for_each(|v| validate_storable(v, path))?;
                    Op::AddToSet(values)
                }
                "$pop" => match operand.as_f64() {
                    Some(1.0) => Op::Pop(true),
                    Some(-1.0) => Op::Pop(false),
                    _ => return Err(DbError::invalid_param("$pop expects 1 or -1")),
                },
                "$pull" => Op::Pull(ElementCondition::new(operand)?),
                "$pullAll" => Op::PullAll(operand.as_array().cloned().ok_or_else(|| {
                    DbError::invalid_param("$pullAll requires an array argument")
                })?),
                "$bit" => compile_bit(operand)?,
                other => {
                    return Err(DbError::invalid_operator(format!(
                        "unknown update operator: {other}"
                    )))
                }
            };
            check_conflict(&ops, &parsed)?;
            if let Op::Rename(target) = &op {
                check_conflict(&ops, target)?;
            }
            ops.push((parsed, op));
        }
    }

    let mut out = doc.clone();
    for (path, op) in ops {
        if path[0] == "_id" {
            check_id_change(&out, &path, &op)?;
        }
        if matches!(&op, Op::Rename(target) if target[0] == "_id") {
            return Err(immutable_id());
        }
        apply_op(&mut out, &path, op)?;
    }
    Ok(out)
}

fn is_prefix(prefix: &[String], path: &[String]) -> bool {
    prefix.len() <= path.len() && prefix.iter().zip(path).all(|(a, b)| a == b)
}

fn conflict(path: &[String]) -> DbError {
    DbError::invalid_param(format!(
        "Updating the path '{}' would create a conflict",
        path.join(".")
    ))
}

fn check_conflict(ops: &[(Vec<String>, Op)], path: &[String]) -> DbResult<()> {
    for (existing, op) in ops {
        if is_prefix(existing, path) || is_prefix(path, existing) {
            return Err(DbError::invalid_param(format!(
                "Updating the path '{}' would create a conflict at '{}'",
                path.join("."),
                existing.join(".")
            )));
        }
        if let Op::Rename(target) = op {
            if is_prefix(target, path) || is_prefix(path, target) {
                return Err(conflict(path));
            }
        }
    }
    Ok(())
}

fn check_id_change(doc: &Value, path: &[String], op: &Op) -> DbResult<()> {
    // Setting `_id` to its current value is allowed (MongoDB); anything else touching it is not.
    match op {
        Op::Set(v) if path.len() == 1 && doc.get("_id").is_some_and(|id| values_equal(id, v)) => {
            Ok(())
        }
        _ => Err(immutable_id()),
    }
}

fn parse_path(path: &str) -> DbResult<Vec<String>> {
    let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
    if parts.iter().any(String::is_empty) {
        return Err(DbError::invalid_param(format!(
            "empty field name in path '{path}'"
        )));
    }
    if let Some(p) = parts.iter().find(|p| p.starts_with('$')) {
        return Err(DbError::invalid_operator(format!(
            "positional and '$'-prefixed path components are not supported ('{p}' in '{path}')"
        )));
    }
    Ok(parts)
}

fn int_operand(v: &Value, what: &str) -> DbResult<i64> {
    v.as_i64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        })
        .ok_or_else(|| DbError::invalid_param(format!("{what} must be an integer, got {v}")))
}

fn compile_push(operand: &Value, path: &str) -> DbResult<Op> {
    let Some(map) = operand.as_object().filter(|m| m.contains_key("$each")) else {
        if operand
            .as_object()
            .is_some_and(|m| m.keys().any(|k| k.starts_with('$')))
            && !ejson::is_literal_object(operand)
        {
            return Err(DbError::invalid_param(
                "$push modifiers ($position, $sort, $slice) require $each",
            ));
        }
        validate_storable(operand, path)?;
        return Ok(Op::Push {
            each: vec![operand.clone()],
            position: None,
            sort: None,
            slice: None,
        });
    };
    let mut each = Vec::new();
    let (mut position, mut sort, mut slice) = (None, None, None);
    for (key, value) in map {
        match key.as_str() {
            "$each" => {
                each = value.as_array().cloned().ok_or_else(|| {
                    DbError::invalid_param("the argument to $each in $push must be an array")
                })?;
                each.iter().try_for_each(|v| validate_storable(v, path))?;
            }
            "$position" => position = Some(int_operand(value, "$position")?),
            "$slice" => slice = Some(int_operand(value, "$slice")?),
            "$sort" => {
                sort = Some(match value {
                    Value::Object(_) => PushSort::Fields(SortSpec::from_document(value)?),
                    v => match int_operand(v, "$sort")? {
                        1 => PushSort::Whole(false),
                        -1 => PushSort::Whole(true),
                        _ => {
                            return Err(DbError::invalid_param(
                                "$sort must be 1, -1 or a sort document",
                            ))
                        }
                    },
                })
            }
            other => {
                return Err(DbError::invalid_param(format!(
                    "unrecognized clause in $push: {other}"
                )))
            }
        }
    }
    Ok(Op::Push {
        each,
        position,
        sort,
        slice,
    })
}

fn compile_bit(operand: &Value) -> DbResult<Op> {
    let map = operand
        .as_object()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| DbError::invalid_param("$bit needs {and|or|xor: <int>}"))?;
    let ops = map
        .iter()
        .map(|(k, v)| {
            let op = match k.as_str() {
                "and" => BitOp::And,
                "or" => BitOp::Or,
                "xor" => BitOp::Xor,
                other => {
                    return Err(DbError::invalid_param(format!(
                        "the $bit modifier must be and, or or xor, not {other}"
                    )))
                }
            };
            let n = v.as_i64().ok_or_else(|| {
                DbError::invalid_param(format!(
                    "the $bit modifier field must be an integer, got {v}"
                ))
            })?;
            Ok((op, n))
        })
        .collect::<DbResult<_>>()?;
    Ok(Op::Bit(ops))
}

fn type_error(op: &str, path: &[String], value: &Value, wanted: &str) -> DbError {
    DbError::invalid_param(format!(
        "Cannot apply {op} to a value of non-{wanted} type: the field '{}' is {}",
        path.join("."),
        describe(value)
    ))
}

fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

fn apply_op(doc: &mut Value, path: &[String], op: Op) -> DbResult<()> {
    let current = get_path(doc, path).cloned();
    let array = |name: &str| -> DbResult<Option<Vec<Value>>> {
        match &current {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.clone())),
            Some(other) => Err(DbError::invalid_param(format!(
                "{name}: the field '{}' must be an array but is {}",
                path.join("."),
                describe(other)
            ))),
        }
    };
    let new_value = match op {
        Op::Set(v) => v,
        Op::Unset => return unset_path(doc, path),
        Op::Inc(n) => match &current {
            None => Value::Number(n),
            Some(Value::Number(c)) => arithmetic(c, &n, i64::checked_add, |a, b| a + b)?,
            Some(other) => return Err(type_error("$inc", path, other, "numeric")),
        },
        Op::Mul(n) => match &current {
            None => {
                if n.is_f64() {
                    Value::from(0.0)
                } else {
                    Value::from(0)
                }
            }
            Some(Value::Number(c)) => arithmetic(c, &n, i64::checked_mul, |a, b| a * b)?,
            Some(other) => return Err(type_error("$mul", path, other, "numeric")),
        },
        Op::Min(v) => match &current {
            Some(c) if compare_values(&v, c) != Ordering::Less => return Ok(()),
            _ => v,
        },
        Op::Max(v) => match &current {
            Some(c) if compare_values(&v, c) != Ordering::Greater => return Ok(()),
            _ => v,
        },
        Op::Rename(target) => {
            let Some(value) = current else { return Ok(()) };
            check_no_array_on_path(doc, path, "source")?;
            check_no_array_on_path(doc, &target, "destination")?;
            unset_path(doc, path)?;
            return set_path(doc, &target, value);
        }
        Op::Push {
            each,
            position,
            sort,
            slice,
        } => {
            let mut items = array("$push")?.unwrap_or_default();
            let len = items.len() as i64;
            let at = match position {
                None => len,
                Some(p) if p < 0 => len.saturating_add(p).max(0),
                Some(p) => p.min(len),
            } as usize;
            items.splice(at..at, each);
            match sort {
                Some(PushSort::Whole(descending)) => items.sort_by(|a, b| {
                    let ord = compare_values(a, b);
                    if descending {
                        ord.reverse()
                    } else {
                        ord
                    }
                }),
                Some(PushSort::Fields(spec)) => spec.sort(&mut items),
                None => {}
            }
            if let Some(n) = slice {
                let len = items.len();
                if n >= 0 {
                    items.truncate(n as usize);
                } else {
                    let keep = (n.unsigned_abs() as usize).min(len);
                    items.drain(..len - keep);
                }
            }
            Value::Array(items)
        }
        Op::AddToSet(values) => {
            let mut items = array("$addToSet")?.unwrap_or_default();
            for v in values {
                if !items.iter().any(|i| values_equal(i, &v)) {
                    items.push(v);
                }
            }
            Value::Array(items)
        }
        Op::Pop(last) => {
            let Some(mut items) = array("$pop")? else {
                return Ok(());
            };
            if last {
                items.pop();
            } else if !items.is_empty() {
                items.remove(0);
            }
            Value::Array(items)
        }
        Op::Pull(condition) => {
            let Some(items) = array("$pull")? else {
                return Ok(());
            };
            let mut kept = Vec::with_capacity(items.len());
            for item in items {
                if !condition.matches(&item)? {
                    kept.push(item);
                }
            }
            Value::Array(kept)
        }
        Op::PullAll(values) => {
            let Some(items) = array("$pullAll")? else {
                return Ok(());
            };
            Value::Array(
                items
                    .into_iter()
                    .filter(|i| !values.iter().any(|v| values_equal(i, v)))
                    .collect(),
            )
        }
        Op::Bit(ops) => {
            let mut n = match &current {
                None => 0,
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| type_error("$bit", path, v, "integral"))?,
            };
            for (op, operand) in ops {
                n = match op {
                    BitOp::And => n & operand,
                    BitOp::Or => n | operand,
                    BitOp::Xor => n ^ operand,
                };
            }
            Value::from(n)
        }
    };
    set_path(doc, path, new_value)
}

fn arithmetic(
    current: &Number,
    operand: &Number,
    int: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> DbResult<Value> {
    if let (Some(a), Some(b)) = (current.as_i64(), operand.as_i64()) {
        if let Some(n) = int(a, b) {
            return Ok(Value::from(n));
        }
    }
    let result = float(
        current.as_f64().unwrap_or(0.0),
        operand.as_f64().unwrap_or(0.0),
    );
    Number::from_f64(result)
        .map(Value::Number)
        .ok_or_else(|| DbError::invalid_param("arithmetic result is not a finite number"))
}

/// `$rename` does not work through arrays (MongoDB: "The source field cannot be an array element").
fn check_no_array_on_path(doc: &Value, path: &[String], which: &str) -> DbResult<()> {
    let mut current = doc;
    for component in &path[..path.len() - 1] {
        match current {
            Value::Object(map) => match map.get(component) {
                Some(next) => current = next,
                None => return Ok(()),
            },
            Value::Array(_) => {
                return Err(DbError::invalid_param(format!(
                    "the {which} field for $rename may not be an array element: '{}'",
                    path.join(".")
                )))
            }
            _ => return Ok(()),
        }
    }
    if current.is_array() {
        return Err(DbError::invalid_param(format!(
            "the {which} field for $rename may not be an array element: '{}'",
            path.join(".")
        )));
    }
    Ok(())
}

fn cannot_create(component: &str, parent_path: &[String], parent: &Value) -> DbError {
    DbError::invalid_param(format!(
        "Cannot create field '{component}' in element {{{}: {}}}",
        parent_path.last().map(String::as_str).unwrap_or(""),
        describe(parent)
    ))
}

/// Sets `path` to `value`, creating intermediate objects (and padding arrays with null).
fn set_path(doc: &mut Value, path: &[String], value: Value) -> DbResult<()> {
    let mut current = doc;
    for (depth, component) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        if ejson::is_literal_object(current) {
            return Err(cannot_create(component, &path[..depth], current));
        }
        current = match current {
            Value::Object(map) => {
                if last {
                    map.insert(component.clone(), value);
                    return Ok(());
                }
                map.entry(component.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
            }
            Value::Array(items) => {
                let Some(index) = array_index(component) else {
                    let parent = Value::Array(items.clone());
                    return Err(cannot_create(component, &path[..depth], &parent));
                };
                if index > items.len() + 1_000_000 {
                    return Err(DbError::invalid_param(format!(
                        "array index {index} is too large"
                    )));
                }
                while items.len() <= index {
                    items.push(Value::Null);
                }
                if last {
                    items[index] = value;
                    return Ok(());
                }
                if items[index].is_null() {
                    items[index] = Value::Object(Map::new());
                }
                &mut items[index]
            }
            other => {
                let parent = other.clone();
                return Err(cannot_create(component, &path[..depth], &parent));
            }
        };
    }
    Ok(())
}

/// Removes `path`; a missing path is a no-op, an array element becomes null (MongoDB).
fn unset_path(doc: &mut Value, path: &[String]) -> DbResult<()> {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut current = doc;
    for component in parents {
        current = match current {
            Value::Object(map) => match map.get_mut(component) {
                Some(next) => next,
                None => return Ok(()),
            },
            Value::Array(items) => match array_index(component).and_then(|i| items.get_mut(i)) {
                Some(next) => next,
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
    }
    if ejson::is_literal_object(current) {
        return Ok(());
    }
    match current {
        Value::Object(map) => {
            // shift_remove keeps the remaining fields in document order (swap_remove would not).
            map.shift_remove(last);
        }
        Value::Array(items) => {
            if let Some(item) = array_index(last).and_then(|i| items.get_mut(i)) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn up(doc: Value, update: Value) -> DbResult<Value> {
        apply_update(&doc, &update, 1_000)
    }

    #[test]
    fn set_creates_paths_and_indexes_arrays() {
        let doc = json!({"_id": "x", "a": {"b": 1}, "arr": [1, 2]});
        let out = up(
            doc,
            json!({"$set": {"a.c.d": 5, "arr.1": 9, "arr.4": 7, "n": null}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"_id": "x", "a": {"b": 1, "c": {"d": 5}}, "arr": [1, 9, null, null, 7], "n": null})
        );
        let err = up(json!({"a": 1}), json!({"$set": {"a.b": 2}})).unwrap_err();
        assert_eq!(err.code, "INVALID_PARAM");
        assert!(
            err.message.contains("Cannot create field 'b'"),
            "{}",
            err.message
        );
        assert!(up(json!({"a": [1]}), json!({"$set": {"a.b": 2}})).is_err());
        assert!(up(json!({"d": {"$date": 5}}), json!({"$set": {"d.x": 2}})).is_err());
    }

    #[test]
    fn unset_removes_or_nulls() {
        let doc = json!({"a": {"b": 1, "c": 2}, "arr": [1, 2, 3]});
        let out = up(
            doc,
            json!({"$unset": {"a.b": "", "arr.1": "", "missing.x": ""}}),
        )
        .unwrap();
        assert_eq!(out, json!({"a": {"c": 2}, "arr": [1, null, 3]}));
    }

    #[test]
    fn numeric_operators() {
        let doc = json!({"n": 5, "f": 1.5, "s": "x", "big": i64::MAX});
        let out = up(
            doc.clone(),
            json!({"$inc": {"n": 2, "f": 1, "new": 3, "big": 1}, "$mul": {"m": 4}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"n": 7, "f": 2.5, "s": "x", "new": 3, "big": 9.223372036854776e18, "m": 0})
        );
        assert_eq!(
            up(doc.clone(), json!({"$mul": {"n": 1.5}})).unwrap()["n"],
            json!(7.5)
        );
        let err = up(doc.clone(), json!({"$inc": {"s": 1}})).unwrap_err();
        assert_eq!(err.code, "INVALID_PARAM");
        assert!(up(doc, json!({"$inc": {"n": "1"}})).is_err());
    }

    #[test]
    fn min_max_compare_across_types() {
        let doc = json!({"lo": 5, "hi": 5, "d": {"$date": 100}});
        let out = up(
            doc,
            json!({"$min": {"lo": 3, "d": {"$date": 50}}, "$max": {"hi": 3, "new": 1}}),
        )
        .unwrap();
        assert_eq!(out, json!({"lo": 3, "hi": 5, "d": {"$date": 50}, "new": 1}));
    }

    #[test]
    fn rename() {
        let out = up(
            json!({"a": 1, "o": {"x": 2}}),
            json!({"$rename": {"a": "b", "o.x": "o.y", "zz": "q"}}),
        )
        .unwrap();
        assert_eq!(out, json!({"b": 1, "o": {"y": 2}}));
        assert!(up(json!({"a": [{"b": 1}]}), json!({"$rename": {"a.0.b": "c"}})).is_err());
        assert!(up(json!({"a": 1}), json!({"$rename": {"a": "a.b"}})).is_err());
        assert!(up(
            json!({"a": 1}),
            json!({"$rename": {"a": "b"}, "$set": {"b": 2}})
        )
        .is_err());
    }

    #[test]
    fn push_with_modifiers() {
        // MongoDB docs: $push with $each, $sort on a field and $slice.
        let doc = json!({"quizzes": [{"wk": 1, "score": 10}, {"wk": 2, "score": 8}, {"wk": 3, "score": 5}, {"wk": 4, "score": 6}]});
        let out = up(
            doc,
            json!({"$push": {"quizzes": {
            "$each": [{"wk": 5, "score": 8}, {"wk": 6, "score": 7}, {"wk": 7, "score": 6}],
            "$sort": {"score": -1}, "$slice": 3}}}),
        )
        .unwrap();
        assert_eq!(
            out["quizzes"],
            json!([{"wk": 1, "score": 10}, {"wk": 2, "score": 8}, {"wk": 5, "score": 8}])
        );
        let out = up(
            json!({"a": [1, 2]}),
            json!({"$push": {"a": {"$each": [7, 8], "$position": 0}, "b": 1}}),
        )
        .unwrap();
        assert_eq!(out, json!({"a": [7, 8, 1, 2], "b": [1]}));
        let out = up(
            json!({"a": [1, 2, 3]}),
            json!({"$push": {"a": {"$each": [9], "$position": -1, "$slice": -3}}}),
        )
        .unwrap();
        assert_eq!(out["a"], json!([2, 9, 3]));
        let out = up(
            json!({"a": [3, 1]}),
            json!({"$push": {"a": {"$each": [2], "$sort": 1}}}),
        )
        .unwrap();
        assert_eq!(out["a"], json!([1, 2, 3]));
        assert!(up(json!({"a": 1}), json!({"$push": {"a": 2}})).is_err());
        assert!(up(json!({}), json!({"$push": {"a": {"$slice": 2}}})).is_err());
    }

    #[test]
    fn add_to_set_pop_pull() {
        let out = up(
            json!({"t": ["a", 1]}),
            json!({"$addToSet": {"t": {"$each": ["a", 1.0, "b", "b"]}, "u": 1}}),
        )
        .unwrap();
        assert_eq!(out, json!({"t": ["a", 1, "b"], "u": [1]}));
        let out = up(
            json!({"a": [1, 2, 3], "b": [1, 2, 3]}),
            json!({"$pop": {"a": 1, "b": -1, "c": 1}}),
        )
        .unwrap();
        assert_eq!(out, json!({"a": [1, 2], "b": [2, 3]}));
        // MongoDB docs: $pull with a condition, a value and a document query.
        let out = up(
            json!({"votes": [3, 5, 6, 7, 7, 8]}),
            json!({"$pull": {"votes": {"$gte": 6}}}),
        )
        .unwrap();
        assert_eq!(out["votes"], json!([3, 5]));
        let out = up(
            json!({"fruits": ["apples", "pears", "oranges"]}),
            json!({"$pull": {"fruits": "pears"}}),
        )
        .unwrap();
        assert_eq!(out["fruits"], json!(["apples", "oranges"]));
        let results = json!({"results": [{"item": "A", "score": 5}, {"item": "B", "score": 8, "comment": "x"}]});
        let out = up(
            results,
            json!({"$pull": {"results": {"score": 8, "item": "B"}}}),
        )
        .unwrap();
        assert_eq!(out["results"], json!([{"item": "A", "score": 5}]));
        let out = up(
            json!({"a": [1, 2, 1, 3]}),
            json!({"$pullAll": {"a": [1, 3]}}),
        )
        .unwrap();
        assert_eq!(out["a"], json!([2]));
        let out = up(
            json!({"s": ["ab", "cd"]}),
            json!({"$pull": {"s": {"$regex": "^a"}}}),
        )
        .unwrap();
        assert_eq!(out["s"], json!(["cd"]));
    }

    #[test]
    fn bit_and_current_date() {
        let out = up(
            json!({"e": 13}),
            json!({"$bit": {"e": {"and": 10}, "n": {"or": 5}}, "$currentDate": {"d": true}}),
        )
        .unwrap();
        assert_eq!(out, json!({"e": 8, "n": 5, "d": {"$date": 1000}}));
        assert!(up(json!({"e": 1.5}), json!({"$bit": {"e": {"and": 1}}})).is_err());
    }

    #[test]
    fn id_is_immutable() {
        let doc = json!({"_id": "a", "x": 1});
        assert_eq!(
            up(doc.clone(), json!({"$set": {"_id": "b"}}))
                .unwrap_err()
                .code,
            "INVALID_PARAM"
        );
        assert!(up(doc.clone(), json!({"$unset": {"_id": ""}})).is_err());
        assert!(up(doc.clone(), json!({"$rename": {"x": "_id"}})).is_err());
        assert!(up(doc.clone(), json!({"$rename": {"_id": "y"}})).is_err());
        assert!(up(doc.clone(), json!({"$set": {"_id.sub": 1}})).is_err());
        assert!(up(doc.clone(), json!({"$set": {"_id": "a", "x": 2}})).is_ok());
        assert!(replace_document(&doc, &json!({"_id": "b"}), 0).is_err());
    }

    #[test]
    fn conflicts_are_rejected() {
        let doc = json!({"a": {"b": 1}});
        assert!(up(doc.clone(), json!({"$set": {"a": 1}, "$inc": {"a": 1}})).is_err());
        assert!(up(doc.clone(), json!({"$set": {"a": {}, "a.b": 2}})).is_err());
        assert!(up(doc.clone(), json!({"$set": {"a.b": 2, "a.c": 3}})).is_ok());
        assert!(up(doc, json!({"$set": {"ab": 2, "a.c": 3}})).is_ok());
    }

    #[test]
    fn errors_leave_document_unchanged_and_unknown_operators_are_typed() {
        let doc = json!({"n": 1, "s": "x"});
        assert!(up(doc.clone(), json!({"$set": {"n": 2}, "$inc": {"s": 1}})).is_err());
        assert_eq!(doc, json!({"n": 1, "s": "x"}));
        assert_eq!(
            up(doc.clone(), json!({"$frobnicate": {"n": 1}}))
                .unwrap_err()
                .code,
            "DATABASE_INVALID_OPERRATOR"
        );
        assert_eq!(
            up(doc.clone(), json!({"$set": {"arr.$": 1}}))
                .unwrap_err()
                .code,
            "DATABASE_INVALID_OPERRATOR"
        );
        assert!(up(doc.clone(), json!({"$set": 5})).is_err());
        assert!(up(doc.clone(), json!({"$set": {"a": 1}, "b": 2})).is_err());
        assert!(up(doc, json!({"$set": {"a": {"$gt": 1}}})).is_err());
    }

    #[test]
    fn server_dates_and_plain_merge() {
        // protocol.md §5.4 capture.
        let doc = json!({"_id": "doc1", "n": 1, "arr": [], "gone": true, "obj": {"z": 0}});
        let update = json!({"$inc": {"n": 1}, "$push": {"arr": {"$each": ["x", "y"]}}, "$unset": {"gone": ""},
                            "$set": {"ts": {"$date": {"offset": 1000}}, "obj.k": "v"}});
        let out = apply_update(&doc, &update, 5_000).unwrap();
        assert_eq!(
            out,
            json!({"_id": "doc1", "n": 2, "arr": ["x", "y"], "obj": {"z": 0, "k": "v"}, "ts": {"$date": 6000}})
        );
        let out = up(json!({"a": 1}), json!({"b": {"c": 2}})).unwrap();
        assert_eq!(out, json!({"a": 1, "b": {"c": 2}}));
    }

    #[test]
    fn replacement_keeps_id() {
        let out = replace_document(
            &json!({"_id": "d", "old": 1}),
            &json!({"title": "t", "at": {"$date": {"offset": 0}}}),
            7,
        )
        .unwrap();
        assert_eq!(out, json!({"_id": "d", "title": "t", "at": {"$date": 7}}));
        assert!(replace_document(&json!({"_id": "d"}), &json!({"$set": {"a": 1}}), 0).is_err());
        // The owner stays (right after `_id`) unless the replacement names one.
        let owned = json!({"_id": "d", "_openid": "A", "old": 1});
        let out = replace_document(&owned, &json!({"title": "t"}), 0).unwrap();
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"_id":"d","_openid":"A","title":"t"}"#
        );
        let out = replace_document(&owned, &json!({"title": "t", "_openid": "B"}), 0).unwrap();
        assert_eq!(out, json!({"_id": "d", "title": "t", "_openid": "B"}));
        assert!(prepare_document(&json!({"a": {"$where": 1}}), 0).is_err());
        assert_eq!(
            prepare_document(&json!({"a": {"$date": {"offset": 1}}}), 9).unwrap(),
            json!({"a": {"$date": 10}})
        );
    }

    #[test]
    fn set_on_insert_only_when_inserting() {
        let update = json!({"$setOnInsert": {"created": 1}, "$set": {"x": 1}});
        assert_eq!(
            apply_update(&json!({}), &update, 0).unwrap(),
            json!({"x": 1})
        );
        assert_eq!(
            apply_upsert_insert(&json!({}), &update, 0).unwrap(),
            json!({"created": 1, "x": 1})
        );
    }
}
