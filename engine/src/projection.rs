//! Field projection (`field()` on the client, `projection` on the wire): inclusion or exclusion,
//! `_id` included unless excluded, `$slice` and `$elemMatch` on array fields.
//!
//! Not supported: the positional `arr.$` form (it needs the query's matched element) — rejected with
//! `DATABASE_INVALID_OPERRATOR`.

use crate::error::{DbError, DbResult};
use crate::matcher::ElementCondition;
use serde_json::{Map, Value};

/// A compiled projection.
#[derive(Debug, Clone)]
pub struct Projection {
    mode: Mode,
    include_id: bool,
    root: Tree,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `{}`: whole documents.
    All,
    /// Only the listed fields (plus `_id`).
    Include,
    /// Everything but the listed fields (also used when only `$slice` is given).
    Exclude,
}

#[derive(Debug, Clone, Default)]
struct Tree {
    children: Vec<(String, Tree)>,
    action: Option<Action>,
}

#[derive(Debug, Clone)]
enum Action {
    Include,
    Exclude,
    Slice { skip: i64, limit: Option<i64> },
    ElemMatch(ElementCondition),
}

impl Tree {
    fn child(&self, key: &str) -> Option<&Tree> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }
}

impl Projection {
    /// Compiles a projection (`null` or `{}` keep whole documents). Mixing inclusion and exclusion of
    /// fields other than `_id` is `INVALID_PARAM`, as is a path collision (`a` and `a.b`).
    pub fn new(spec: &Value) -> DbResult<Projection> {
        let map = match spec {
            Value::Null => {
                return Ok(Projection {
                    mode: Mode::All,
                    include_id: true,
                    root: Tree::default(),
                })
            }
            Value::Object(map) => map,
            _ => return Err(DbError::invalid_param("projection must be an object")),
        };
        let (mut includes, mut excludes, mut elem_matches) =
            (None::<String>, None::<String>, false);
        let mut include_id = true;
        let mut root = Tree::default();
        for (field, value) in map {
            let action = parse_action(field, value)?;
            if field == "_id" {
                match action {
                    Action::Include => continue,
                    Action::Exclude => {
                        include_id = false;
                        continue;
                    }
                    _ => {}
                }
            }
            if field.split('.').any(|c| c == "$") || field.ends_with(".$") {
                return Err(DbError::invalid_operator(format!(
                    "positional projection '{field}' is not supported"
                )));
            }
            match action {
                Action::Include => includes = Some(field.clone()),
                Action::Exclude => excludes = Some(field.clone()),
                Action::ElemMatch(_) => {
                    if field.contains('.') {
                        return Err(DbError::invalid_param(format!(
                            "$elemMatch projection on a dotted path: {field}"
                        )));
                    }
                    elem_matches = true
                }
                Action::Slice { .. } => {}
            }
            insert(&mut root, field, action)?;
        }
        if let (Some(inc), Some(exc)) = (&includes, &excludes) {
            return Err(DbError::invalid_param(format!(
                "Cannot do exclusion on field {exc} in inclusion projection (field {inc})"
            )));
        }
        let mode = if includes.is_some()
            || elem_matches
            || (map.len() == 1 && map.contains_key("_id") && include_id)
        {
            Mode::Include
        } else if map.is_empty() {
            Mode::All
        } else {
            Mode::Exclude
        };
        if elem_matches && excludes.is_some() {
            return Err(DbError::invalid_param(
                "Cannot use $elemMatch projection in an exclusion projection",
            ));
        }
        Ok(Projection {
            mode,
            include_id,
            root,
        })
    }

    /// Applies the projection to one document.
    pub fn apply(&self, doc: &Value) -> DbResult<Value> {
        let Value::Object(map) = doc else {
            return Ok(doc.clone());
        };
        match self.mode {
            Mode::All => Ok(doc.clone()),
            Mode::Include => {
                let mut out = Map::new();
                for (key, value) in map {
                    if key == "_id" && self.include_id && self.root.child("_id").is_none() {
                        out.insert(key.clone(), value.clone());
                    } else if let Some(tree) = self.root.child(key) {
                        if let Some(v) = include(value, tree)? {
                            out.insert(key.clone(), v);
                        }
                    }
                }
                Ok(Value::Object(out))
            }
            Mode::Exclude => {
                let mut out = Map::new();
                for (key, value) in map {
                    if key == "_id" && !self.include_id {
                        continue;
                    }
                    match self.root.child(key) {
                        None => {
                            out.insert(key.clone(), value.clone());
                        }
                        Some(tree) => {
                            if let Some(v) = exclude(value, tree) {
                                out.insert(key.clone(), v);
                            }
                        }
                    }
                }
                Ok(Value::Object(out))
            }
        }
    }
}

fn parse_action(field: &str, value: &Value) -> DbResult<Action> {
    match value {
        Value::Bool(b) => Ok(if *b { Action::Include } else { Action::Exclude }),
        Value::Number(n) => Ok(if n.as_f64() == Some(0.0) {
            Action::Exclude
        } else {
            Action::Include
        }),
        Value::Object(map) if map.len() == 1 && map.contains_key("$slice") => {
            let int = |v: &Value| {
                v.as_i64()
                    .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            };
            let bad = || {
                DbError::invalid_param(format!(
                    "$slice of {field} needs a number or [skip, limit > 0]"
                ))
            };
            match &map["$slice"] {
                Value::Array(pair) if pair.len() == 2 => {
                    let (skip, limit) = (
                        int(&pair[0]).ok_or_else(bad)?,
                        int(&pair[1]).ok_or_else(bad)?,
                    );
                    if limit <= 0 {
                        return Err(bad());
                    }
                    Ok(Action::Slice {
                        skip,
                        limit: Some(limit),
                    })
                }
                v => Ok(Action::Slice {
                    skip: int(v).ok_or_else(bad)?,
                    limit: None,
                }),
            }
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("$elemMatch") => Ok(
            Action::ElemMatch(ElementCondition::new(&map["$elemMatch"])?),
        ),
        Value::Object(map) => Err(DbError::invalid_operator(format!(
            "unsupported projection operator for {field}: {}",
            map.keys().next().map(String::as_str).unwrap_or("{}")
        ))),
        other => Err(DbError::invalid_param(format!(
            "projection value of {field} must be 0, 1, true or false, got {other}"
        ))),
    }
}

fn insert(root: &mut Tree, field: &str, action: Action) -> DbResult<()> {
    let collision = || DbError::invalid_param(format!("Path collision at {field}"));
    let mut node = root;
    for component in field.split('.') {
        if component.is_empty() {
            return Err(DbError::invalid_param(format!(
                "invalid projection path '{field}'"
            )));
        }
        if node.action.is_some() {
            return Err(collision());
        }
        let index = match node.children.iter().position(|(k, _)| k == component) {
            Some(i) => i,
            None => {
                node.children.push((component.to_owned(), Tree::default()));
                node.children.len() - 1
            }
        };
        node = &mut node.children[index].1;
    }
    if node.action.is_some() || !node.children.is_empty() {
        return Err(collision());
    }
    node.action = Some(action);
    Ok(())
}

fn slice(value: &Value, skip: i64, limit: Option<i64>) -> Value {
    let Value::Array(items) = value else {
        return value.clone();
    };
    let len = items.len() as i64;
    let (start, count) = match limit {
        None if skip >= 0 => (0, skip),
        None => (len.saturating_add(skip).max(0), len),
        Some(limit) => {
            let start = if skip < 0 {
                len.saturating_add(skip).max(0)
            } else {
                skip.min(len)
            };
            (start, limit)
        }
    };
    let end = start.saturating_add(count).min(len);
    Value::Array(items[start as usize..end.max(start) as usize].to_vec())
}

fn include(value: &Value, tree: &Tree) -> DbResult<Option<Value>> {
    match &tree.action {
        Some(Action::Include) => return Ok(Some(value.clone())),
        Some(Action::Slice { skip, limit }) => return Ok(Some(slice(value, *skip, *limit))),
        Some(Action::ElemMatch(condition)) => {
            let Value::Array(items) = value else {
                return Ok(None);
            };
            for item in items {
                if condition.matches(item)? {
                    return Ok(Some(Value::Array(vec![item.clone()])));
                }
            }
            return Ok(None);
        }
        Some(Action::Exclude) | None => {}
    }
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                if let Some(child) = tree.child(key) {
                    if let Some(projected) = include(v, child)? {
                        out.insert(key.clone(), projected);
                    }
                }
            }
            Ok(Some(Value::Object(out)))
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items.iter().filter(|i| i.is_object() || i.is_array()) {
                if let Some(projected) = include(item, tree)? {
                    out.push(projected);
                }
            }
            Ok(Some(Value::Array(out)))
        }
        _ => Ok(None),
    }
}

fn exclude(value: &Value, tree: &Tree) -> Option<Value> {
    match &tree.action {
        Some(Action::Exclude) => return None,
        Some(Action::Slice { skip, limit }) => return Some(slice(value, *skip, *limit)),
        _ => {}
    }
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                match tree.child(key) {
                    None => {
                        out.insert(key.clone(), v.clone());
                    }
                    Some(child) => {
                        if let Some(projected) = exclude(v, child) {
                            out.insert(key.clone(), projected);
                        }
                    }
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => Some(Value::Array(
            items.iter().filter_map(|i| exclude(i, tree)).collect(),
        )),
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn project(spec: Value, doc: Value) -> DbResult<Value> {
        Projection::new(&spec)?.apply(&doc)
    }

    fn doc() -> Value {
        json!({"_id": 1, "item": "abc", "size": {"h": 14, "w": 21, "uom": "cm"}, "tags": ["a", "b", "c", "d"],
               "inv": [{"w": "A", "q": 5}, {"w": "B", "q": 15}], "n": 3})
    }

    #[test]
    fn inclusion_with_and_without_id() {
        assert_eq!(
            project(json!({"item": 1, "size.uom": true}), doc()).unwrap(),
            json!({"_id": 1, "item": "abc", "size": {"uom": "cm"}})
        );
        assert_eq!(
            project(json!({"item": 1, "_id": 0}), doc()).unwrap(),
            json!({"item": "abc"})
        );
        assert_eq!(
            project(json!({"inv.q": 1, "_id": false}), doc()).unwrap(),
            json!({"inv": [{"q": 5}, {"q": 15}]})
        );
        assert_eq!(
            project(json!({"_id": 1}), doc()).unwrap(),
            json!({"_id": 1})
        );
    }

    #[test]
    fn exclusion() {
        assert_eq!(
            project(json!({"size": 0, "tags": 0, "inv": 0}), doc()).unwrap(),
            json!({"_id": 1, "item": "abc", "n": 3})
        );
        assert_eq!(
            project(
                json!({"size.h": 0, "inv.w": 0, "_id": 0, "tags": 0, "item": 0}),
                doc()
            )
            .unwrap(),
            json!({"size": {"w": 21, "uom": "cm"}, "inv": [{"q": 5}, {"q": 15}], "n": 3})
        );
        assert_eq!(
            project(json!({"_id": 0}), json!({"_id": 1, "a": 2})).unwrap(),
            json!({"a": 2})
        );
        assert_eq!(project(json!({}), doc()).unwrap(), doc());
    }

    #[test]
    fn slice_and_elem_match() {
        assert_eq!(
            project(json!({"tags": {"$slice": 2}}), doc()).unwrap()["tags"],
            json!(["a", "b"])
        );
        assert_eq!(
            project(json!({"tags": {"$slice": -1}}), doc()).unwrap()["tags"],
            json!(["d"])
        );
        assert_eq!(
            project(json!({"tags": {"$slice": [1, 2]}}), doc()).unwrap()["tags"],
            json!(["b", "c"])
        );
        assert_eq!(
            project(json!({"tags": {"$slice": [-2, 5]}}), doc()).unwrap()["tags"],
            json!(["c", "d"])
        );
        let sliced = project(json!({"tags": {"$slice": 1}}), doc()).unwrap();
        assert_eq!(
            sliced["item"],
            json!("abc"),
            "$slice alone keeps the other fields"
        );
        let only = project(json!({"item": 1, "tags": {"$slice": 1}}), doc()).unwrap();
        assert_eq!(only, json!({"_id": 1, "item": "abc", "tags": ["a"]}));
        let em = project(json!({"inv": {"$elemMatch": {"q": {"$gt": 10}}}}), doc()).unwrap();
        assert_eq!(em, json!({"_id": 1, "inv": [{"w": "B", "q": 15}]}));
    }

    #[test]
    fn invalid_projections() {
        assert_eq!(
            project(json!({"a": 1, "b": 0}), doc()).unwrap_err().code,
            "INVALID_PARAM"
        );
        assert!(project(json!({"a": 1, "a.b": 1}), doc()).is_err());
        assert!(project(json!({"a": "yes"}), doc()).is_err());
        assert_eq!(
            project(json!({"tags.$": 1}), doc()).unwrap_err().code,
            "DATABASE_INVALID_OPERRATOR"
        );
        assert!(project(json!({"tags": {"$slice": [1, 0]}}), doc()).is_err());
    }
}
