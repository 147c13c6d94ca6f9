//! Query and update encoding exactly as @cloudbase/database's `QuerySerializer` / `UpdateSerializer`
//! (protocol.md §5.3, §5.4), key order included: nested plain objects are flattened to dot paths, field
//! commands become `{field: {$op: …}}`, chained logic is hoisted to a top-level `$and`/`$or`, plain update
//! values go to `$set`.

use super::command::{query_body, Internal, LogicOp, UpdateOp};
use super::value::{self, EncodeError, Number, Obj, Value};

/// `flatten(query)`: `{a: {b: 1}}` → `{"a.b": 1}`; `$` keys are left alone; a child that keeps `$` keys
/// stays under its key (`{a: {$gt: 1}}`); an empty child disappears.
pub fn flatten(obj: &Obj) -> Obj {
    let mut cloned = obj.clone();
    for (key, child) in obj {
        if key.starts_with('$') || !child.truthy() {
            continue;
        }
        let Value::Object(child) = child else {
            continue;
        };
        let flattened = flatten(child);
        let mut kept: Obj = Vec::new();
        for (child_key, child_value) in flattened {
            if child_key.starts_with('$') {
                kept.push((child_key, child_value));
            } else {
                value::set(&mut cloned, &format!("{key}.{child_key}"), child_value);
            }
        }
        if kept.is_empty() {
            value::remove(&mut cloned, key);
        } else {
            value::set(&mut cloned, key, Value::Object(kept));
        }
    }
    cloned
}

/// Encodes a `where()` argument.
pub fn encode_query(query: &Value) -> Result<Value, EncodeError> {
    encode_query_at(query, None)
}

fn encode_query_at(query: &Value, field: Option<&str>) -> Result<Value, EncodeError> {
    match query {
        Value::Internal(internal) => match &**internal {
            Internal::Logic { op, operands } => encode_logic(*op, operands, field),
            Internal::Query { .. } => encode_comparison(internal, field),
            _ => Err(EncodeError::new(
                "query condition must be an object or a command",
            )),
        },
        Value::Object(obj) => Ok(Value::Object(encode_query_object(obj)?)),
        other => Ok(other.clone()),
    }
}

fn encode_logic(
    op: LogicOp,
    operands: &[Value],
    field: Option<&str>,
) -> Result<Value, EncodeError> {
    match op {
        LogicOp::And | LogicOp::Or | LogicOp::Nor => {
            let subqueries = operands
                .iter()
                .map(|operand| {
                    let condition = matches!(operand, Value::Object(_))
                        || matches!(
                            operand.internal(),
                            Some(Internal::Logic { .. } | Internal::Query { .. })
                        );
                    match field {
                        // A plain value, native RegExp or db.RegExp at field level is an equality
                        // on that field (`{name: _.or([/^a/i, 'x'])}`); the official SDK leaves it
                        // bare, which the server reads as a stray top-level `$regex`.
                        Some(field) if !condition => Ok(Value::object1(field, operand.clone())),
                        _ => encode_query_at(operand, field),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::object1(op.wire(), Value::Array(subqueries)))
        }
        LogicOp::Not => {
            let Some(field) = field else {
                return Err(EncodeError::new(
                    "not() can only be used as the value of a field",
                ));
            };
            let operand = operands.first().cloned().unwrap_or(Value::Null);
            let inner = match &operand {
                Value::Regex(..) => operand.clone(),
                _ => match encode_query_at(&operand, Some(field))? {
                    Value::Object(encoded) => value::get(&encoded, field)
                        .cloned()
                        .ok_or_else(|| EncodeError::new("not() requires a field command"))?,
                    _ => return Err(EncodeError::new("not() requires a field command")),
                },
            };
            Ok(Value::object1(field, Value::object1("$not", inner)))
        }
    }
}

fn encode_comparison(command: &Internal, field: Option<&str>) -> Result<Value, EncodeError> {
    let Internal::Query { op, operands } = command else {
        unreachable!()
    };
    let Some(field) = field else {
        return Err(EncodeError::new(
            "Cannot encode a comparison command with unset field name",
        ));
    };
    Ok(Value::object1(field, query_body(*op, operands)))
}

/// `encodeQueryObject`: flatten, then encode each field command in place (or hoist chained logic), in the
/// keys' original order; keys added while encoding are not revisited (as with `for…in`).
fn encode_query_object(query: &Obj) -> Result<Obj, EncodeError> {
    let mut flattened = flatten(query);
    let keys: Vec<_> = flattened.iter().map(|(k, _)| k.clone()).collect();
    for key in keys {
        let Some(val) = value::get(&flattened, &key).cloned() else {
            continue;
        };
        let condition = match val.internal() {
            Some(Internal::Logic { op, operands }) => encode_logic(*op, operands, Some(&key))?,
            Some(command @ Internal::Query { .. }) => encode_comparison(command, Some(&key))?,
            Some(Internal::Update { op, .. }) => {
                return Err(EncodeError::new(format!(
                    "update command {} cannot be used in a query",
                    op.wire()
                )))
            }
            _ => continue,
        };
        let Value::Object(condition) = condition else {
            unreachable!()
        };
        merge_query_condition(&mut flattened, condition, &key);
    }
    Ok(flattened)
}

/// `QueryEncoder.mergeConditionAfterEncode`: arrays concatenate, objects are `Object.assign`ed onto the
/// query (the whole condition), anything else is overwritten.
fn merge_query_condition(query: &mut Obj, condition: Obj, key: &str) {
    if value::get(&condition, key).is_none() {
        value::remove(query, key);
    }
    for (condition_key, condition_value) in condition.iter() {
        match value::get(query, condition_key) {
            Some(existing) if existing.truthy() => match (existing, condition_value) {
                (Value::Array(items), _) => {
                    let mut items = items.clone();
                    match condition_value {
                        Value::Array(more) => items.extend(more.iter().cloned()),
                        other => items.push(other.clone()),
                    }
                    value::set(query, condition_key, Value::Array(items));
                }
                (existing, new) if existing.is_object_like() && new.is_object_like() => {
                    for (k, v) in condition.iter() {
                        value::set(query, k, v.clone());
                    }
                }
                _ => value::set(query, condition_key, condition_value.clone()),
            },
            _ => value::set(query, condition_key, condition_value.clone()),
        }
    }
}

/// `mergeConditionAfterEncode` of the update serializer: arrays get the value pushed, objects get the
/// condition's fields assigned into them, anything else is overwritten.
fn merge_update_condition(query: &mut Obj, condition: Obj, key: &str) {
    if value::get(&condition, key).is_none() {
        value::remove(query, key);
    }
    for (condition_key, condition_value) in condition {
        let merged = match value::get(query, &condition_key) {
            Some(existing) if existing.truthy() => match (existing, condition_value) {
                (Value::Array(items), new) => {
                    let mut items = items.clone();
                    items.push(new);
                    Value::Array(items)
                }
                (Value::Object(fields), Value::Object(new)) => {
                    let mut fields = fields.clone();
                    for (k, v) in new {
                        value::set(&mut fields, &k, v);
                    }
                    Value::Object(fields)
                }
                (_, new) => new,
            },
            _ => condition_value,
        };
        value::set(query, &condition_key, merged);
    }
}

fn update_condition(op: UpdateOp, operand: &Value, field: &str) -> Value {
    let field_value = match op {
        UpdateOp::Remove => Value::str(""),
        UpdateOp::Pop => Value::Num(Number::int(1)),
        UpdateOp::Shift => Value::Num(Number::int(-1)),
        UpdateOp::Push => match operand {
            Value::Array(_) => Value::object1("$each", operand.clone()),
            _ => operand.clone(),
        },
        UpdateOp::Unshift => Value::Object(vec![
            ("$each".into(), operand.clone()),
            ("$position".into(), Value::Num(Number::int(0))),
        ]),
        _ => operand.clone(),
    };
    Value::object1(op.wire(), Value::object1(field, field_value))
}

/// Encodes an `update()` argument (a Mongo update document).
pub fn encode_update(data: &Obj) -> Result<Obj, EncodeError> {
    let mut flattened = flatten(data);
    let keys: Vec<_> = flattened.iter().map(|(k, _)| k.clone()).collect();
    for key in keys {
        if key.starts_with('$') {
            continue;
        }
        let Some(val) = value::get(&flattened, &key).cloned() else {
            continue;
        };
        let condition = match val.internal() {
            Some(Internal::Update { op, operand }) => update_condition(*op, operand, &key),
            Some(Internal::Query { .. } | Internal::Logic { .. }) => {
                return Err(EncodeError::new(format!(
                    "query command at {key} cannot be used in update(); use an update command"
                )))
            }
            _ => update_condition(UpdateOp::Set, &val, &key),
        };
        let Value::Object(condition) = condition else {
            unreachable!()
        };
        merge_update_condition(&mut flattened, condition, &key);
    }
    Ok(flattened)
}

/// Whether `data` contains an update command anywhere (`set()` refuses them: "update operator complicit").
pub fn contains_update_command(value: &Value) -> bool {
    match value {
        Value::Internal(internal) => internal.is_update(),
        Value::Object(obj) => obj.iter().any(|(_, v)| contains_update_command(v)),
        Value::Array(items) => items.iter().any(contains_update_command),
        _ => false,
    }
}

/// `field({a: true, b: false, c: _.project.slice(…)})` → `{"a":1,"b":0,"c":{…}}`.
pub fn encode_projection(projection: &Obj) -> Obj {
    projection
        .iter()
        .map(|(key, value)| {
            let mapped = if !value.truthy() {
                Value::Num(Number::int(0))
            } else if value.is_object_like() {
                value.clone()
            } else {
                Value::Num(Number::int(1))
            };
            (key.clone(), mapped)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::command::{make, Internal};
    use crate::database::geo::{position, Geometry};
    use crate::database::value::to_json;
    use std::rc::Rc;

    fn n(v: i64) -> Value {
        Value::Num(Number::int(v))
    }
    fn s(t: &str) -> Value {
        Value::str(t)
    }
    fn obj(entries: Vec<(&str, Value)>) -> Value {
        Value::Object(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
    fn cmd(name: &str, args: Vec<Value>) -> Value {
        Value::Internal(Rc::new(make(name, args).unwrap().unwrap()))
    }
    fn chain(receiver: &Value, name: &str, args: Vec<Value>) -> Value {
        let Value::Internal(this) = receiver else {
            panic!()
        };
        Value::Internal(Rc::new(
            crate::database::command::chain(this, name, args).unwrap(),
        ))
    }
    fn q(query: Value) -> String {
        to_json(&encode_query(&query).unwrap()).unwrap()
    }
    fn u(data: Value) -> String {
        let Value::Object(data) = data else { panic!() };
        to_json(&Value::Object(encode_update(&data).unwrap())).unwrap()
    }

    #[test]
    fn flattening_and_hoisting_match_the_capture() {
        let age = chain(&cmd("gt", vec![n(18)]), "and", vec![cmd("lt", vec![n(60)])]);
        let query = obj(vec![
            ("done", Value::Bool(false)),
            ("age", age),
            ("tags", cmd("in", vec![Value::Array(vec![s("a"), s("b")])])),
            ("prop.mem", cmd("gte", vec![n(4)])),
            (
                "name",
                Value::Internal(Rc::new(Internal::RegExp {
                    regexp: "^ab".into(),
                    options: "i".into(),
                })),
            ),
            (
                "when",
                cmd("lt", vec![Value::Date(Number::int(1700000000000))]),
            ),
        ]);
        assert_eq!(
            q(query),
            r#"{"done":false,"tags":{"$in":["a","b"]},"prop.mem":{"$gte":4},"name":{"$regex":"^ab","$options":"i"},"when":{"$lt":{"$date":1700000000000}},"$and":[{"age":{"$gt":18}},{"age":{"$lt":60}}]}"#
        );
    }

    #[test]
    fn nested_objects_flatten_to_dot_paths() {
        let query = obj(vec![
            ("nested", obj(vec![("deep", obj(vec![("x", n(1))]))])),
            ("arr", Value::Array(vec![n(1), n(2)])),
        ]);
        assert_eq!(q(query), r#"{"arr":[1,2],"nested.deep.x":1}"#);
        let query = obj(vec![("a", obj(vec![("$gt", n(1)), ("b", n(2))]))]);
        assert_eq!(q(query), r#"{"a":{"$gt":1},"a.b":2}"#);
        assert_eq!(q(obj(vec![("e", obj(vec![]))])), "{}");
    }

    #[test]
    fn logic_and_not() {
        let or = cmd(
            "or",
            vec![Value::Array(vec![
                obj(vec![("a", n(1))]),
                obj(vec![("b", cmd("exists", vec![Value::Bool(true)]))]),
            ])],
        );
        assert_eq!(q(or), r#"{"$or":[{"a":1},{"b":{"$exists":true}}]}"#);
        let not = obj(vec![
            ("a", cmd("not", vec![cmd("gt", vec![n(5)])])),
            ("b", cmd("exists", vec![Value::Bool(false)])),
        ]);
        assert_eq!(q(not), r#"{"a":{"$not":{"$gt":5}},"b":{"$exists":false}}"#);
        let chained = obj(vec![(
            "a",
            chain(&cmd("gt", vec![n(1)]), "or", vec![cmd("lt", vec![n(-1)])]),
        )]);
        assert_eq!(q(chained), r#"{"$or":[{"a":{"$gt":1}},{"a":{"$lt":-1}}]}"#);
        // Two hoisted `$and`s concatenate.
        let two = obj(vec![
            ("a", chain(&cmd("gt", vec![n(1)]), "lt", vec![n(5)])),
            ("b", chain(&cmd("gt", vec![n(2)]), "lt", vec![n(6)])),
        ]);
        assert_eq!(
            q(two),
            r#"{"$and":[{"a":{"$gt":1}},{"a":{"$lt":5}},{"b":{"$gt":2}},{"b":{"$lt":6}}]}"#
        );
        let regex_or = obj(vec![(
            "name",
            cmd(
                "or",
                vec![Value::Array(vec![
                    Value::Regex("^a".into(), "i".into()),
                    Value::str("x"),
                    cmd("eq", vec![Value::str("y")]),
                ])],
            ),
        )]);
        assert_eq!(
            q(regex_or),
            r#"{"$or":[{"name":{"$regex":"^a","$options":"i"}},{"name":"x"},{"name":{"$eq":"y"}}]}"#
        );
        let regex_not = obj(vec![(
            "a",
            cmd("not", vec![Value::Regex("^x".into(), "i".into())]),
        )]);
        assert_eq!(
            q(regex_not),
            r#"{"a":{"$not":{"$regex":"^x","$options":"i"}}}"#
        );
    }

    #[test]
    fn array_and_element_operators() {
        let query = obj(vec![
            ("a", cmd("neq", vec![n(1)])),
            ("b", cmd("nin", vec![Value::Array(vec![n(1), n(2)])])),
            ("c", cmd("all", vec![Value::Array(vec![s("x"), s("y")])])),
            (
                "d",
                cmd("elemMatch", vec![obj(vec![("k", cmd("gt", vec![n(1)]))])]),
            ),
            ("e", cmd("size", vec![n(3)])),
            ("f", cmd("mod", vec![Value::Array(vec![n(4), n(1)])])),
            ("g", cmd("mod", vec![n(4), n(1)])),
        ]);
        assert_eq!(
            q(query),
            r#"{"a":{"$ne":1},"b":{"$nin":[1,2]},"c":{"$all":["x","y"]},"d":{"$elemMatch":{"k":{"$gt":1}}},"e":{"$size":3},"f":{"$mod":[4,1]},"g":{"$mod":[4,1]}}"#
        );
    }

    #[test]
    fn geo_queries() {
        let point = Value::Internal(Rc::new(Internal::Geo(Geometry::Point(
            position(&n(113), &n(23)).unwrap(),
        ))));
        let near = obj(vec![(
            "loc",
            cmd(
                "geoNear",
                vec![obj(vec![
                    ("geometry", point.clone()),
                    ("maxDistance", n(1000)),
                    ("minDistance", n(0)),
                ])],
            ),
        )]);
        assert_eq!(
            q(near),
            r#"{"loc":{"$nearSphere":{"$geometry":{"type":"Point","coordinates":[113,23]},"$maxDistance":1000,"$minDistance":0}}}"#
        );
        // geoWithin wants a polygon.
        let error = make("geoWithin", vec![obj(vec![("geometry", point)])])
            .unwrap()
            .unwrap_err();
        assert!(error.type_error);
    }

    #[test]
    fn update_operators_match_the_capture() {
        let data = obj(vec![
            ("n", cmd("inc", vec![n(1)])),
            ("arr", cmd("push", vec![Value::Array(vec![s("x"), s("y")])])),
            ("obj", obj(vec![("k", s("v"))])),
            ("gone", cmd("remove", vec![])),
            (
                "ts",
                Value::Internal(Rc::new(Internal::ServerDate {
                    offset: Number::int(1000),
                })),
            ),
        ]);
        assert_eq!(
            u(data),
            r#"{"$inc":{"n":1},"$push":{"arr":{"$each":["x","y"]}},"$unset":{"gone":""},"$set":{"ts":{"$date":{"offset":1000}},"obj.k":"v"}}"#
        );
        let data = obj(vec![
            (
                "a",
                cmd(
                    "push",
                    vec![obj(vec![
                        ("each", Value::Array(vec![n(1), n(2)])),
                        ("position", n(0)),
                        ("sort", n(-1)),
                        ("slice", n(5)),
                    ])],
                ),
            ),
            ("b", cmd("pull", vec![n(3)])),
            ("cc", cmd("pullAll", vec![Value::Array(vec![n(1), n(2)])])),
            ("d", cmd("addToSet", vec![n(4)])),
            ("e", cmd("pop", vec![])),
            ("f", cmd("shift", vec![])),
            ("g", cmd("unshift", vec![n(7), n(8)])),
        ]);
        assert_eq!(
            u(data),
            r#"{"$push":{"a":{"$each":[1,2],"$position":0,"$sort":-1,"$slice":5},"g":{"$each":[7,8],"$position":0}},"$pull":{"b":3},"$pullAll":{"cc":[1,2]},"$addToSet":{"d":4},"$pop":{"e":1,"f":-1}}"#
        );
        let data = obj(vec![
            ("h", cmd("mul", vec![n(2)])),
            ("i", cmd("min", vec![n(1)])),
            ("j", cmd("max", vec![n(9)])),
            ("k", cmd("rename", vec![s("k2")])),
            ("l", cmd("set", vec![obj(vec![("whole", s("object"))])])),
            ("m", Value::Date(Number::int(1700000000000))),
            ("n", Value::Null),
        ]);
        assert_eq!(
            u(data),
            r#"{"$mul":{"h":2},"$min":{"i":1},"$max":{"j":9},"$rename":{"k":"k2"},"$set":{"l":{"whole":"object"},"m":{"$date":1700000000000},"n":null}}"#
        );
        let data = obj(vec![
            ("done", Value::Bool(true)),
            ("stats", obj(vec![("views", cmd("inc", vec![n(2)]))])),
        ]);
        assert_eq!(
            u(data),
            r#"{"$set":{"done":true},"$inc":{"stats.views":2}}"#
        );
    }

    #[test]
    fn misuse_is_an_error() {
        let data = obj(vec![("a", cmd("gt", vec![n(1)]))]);
        let Value::Object(data) = data else { panic!() };
        assert!(encode_update(&data).is_err());
        let query = obj(vec![("a", cmd("inc", vec![n(1)]))]);
        assert!(encode_query(&query).is_err());
        assert!(encode_query(&cmd("gt", vec![n(1)])).is_err());
        assert!(make("inc", vec![s("x")]).unwrap().is_err());
        assert!(contains_update_command(&obj(vec![(
            "x",
            Value::Array(vec![obj(vec![("y", cmd("inc", vec![n(1)]))])])
        )])));
    }

    #[test]
    fn projection_maps_to_ones_and_zeros() {
        let projection = vec![
            ("a".into(), Value::Bool(true)),
            ("b".into(), Value::Bool(false)),
            ("c".into(), n(-1)),
            ("d".into(), obj(vec![("$slice", n(2))])),
        ];
        assert_eq!(
            to_json(&Value::Object(encode_projection(&projection))).unwrap(),
            r#"{"a":1,"b":0,"c":1,"d":{"$slice":2}}"#
        );
    }
}
