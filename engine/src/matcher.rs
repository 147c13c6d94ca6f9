//! Query documents compiled once into a [`Matcher`], then evaluated against documents.
//!
//! Semantics follow MongoDB: fields are ANDed; a predicate on an array field matches if it matches the
//! whole array or any element; `null` matches missing fields; `$ne`/`$nin`/`$not` are complements and so
//! match missing fields; range operators only compare values of the same type class.

use crate::ejson;
use crate::error::{DbError, DbResult};
use crate::expr::{truthy, Expr};
use crate::geo::{self, Geometry, Polygon, Position, EARTH_RADIUS_M};
use crate::value::{compare_values, path_candidates, type_class, values_equal, TypeClass};
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// Longest accepted `$regex` pattern, in bytes.
pub const MAX_REGEX_PATTERN_BYTES: usize = 1024;
/// Compiled-size limit handed to the regex crate (its automata are linear-time regardless).
pub const MAX_REGEX_COMPILED_BYTES: usize = 1 << 20;

/// A compiled query.
#[derive(Debug, Clone)]
pub struct Matcher {
    root: Vec<Node>,
    near: Option<NearQuery>,
}

/// The `$nearSphere` part of a query: a distance filter plus the sort key of the query layer.
#[derive(Debug, Clone)]
pub struct NearQuery {
    /// Dotted path of the geo field.
    pub path: Vec<String>,
    /// The reference point `(lng, lat)`.
    pub center: Position,
    /// Lower bound in metres (inclusive).
    pub min_distance_m: Option<f64>,
    /// Upper bound in metres (inclusive).
    pub max_distance_m: Option<f64>,
}

impl NearQuery {
    /// Spherical distance in metres from the reference point to the nearest geometry at the path.
    pub fn distance_m(&self, doc: &Value) -> Option<f64> {
        path_candidates(doc, &self.path)
            .into_iter()
            .flatten()
            .flat_map(geometries_of)
            .filter_map(|g| geo::min_distance_m(&g, self.center))
            .reduce(f64::min)
    }

    fn accepts(&self, distance: f64) -> bool {
        self.min_distance_m.is_none_or(|min| distance >= min)
            && self.max_distance_m.is_none_or(|max| distance <= max)
    }
}

#[derive(Debug, Clone)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Nor(Vec<Node>),
    Field {
        path: Vec<String>,
        ops: Vec<FieldOp>,
    },
    Expr(Expr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
enum Item {
    Value(Value),
    Regex(Regex),
}

#[derive(Debug, Clone)]
enum FieldOp {
    Eq(Value),
    Cmp(CmpOp, Value),
    In(Vec<Item>),
    All(Vec<Item>),
    AllElemMatch(Vec<FieldOp>),
    ElemMatchValue(Vec<FieldOp>),
    ElemMatchDoc(Vec<Node>),
    Exists(bool),
    Size(usize),
    Mod(i64, i64),
    Regex(Regex),
    Type(Vec<TypeTest>),
    Not(Vec<FieldOp>),
    GeoWithin(GeoArea),
    GeoIntersects(Geometry),
    Near,
}

#[derive(Debug, Clone)]
enum GeoArea {
    Polygons(Vec<Polygon>),
    Circle(Position, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeTest {
    Class(TypeClass),
    Int,
    Double,
}

/// Compile-time context: `$nearSphere` is only allowed at the top level (and inside a top-level `$and`).
struct Ctx {
    near_allowed: bool,
    near: Option<NearQuery>,
}

impl Matcher {
    /// Compiles a query document (`null` or `{}` match everything). Unknown operators are
    /// `DATABASE_INVALID_OPERRATOR`, malformed operands `INVALID_PARAM`. Server-date placeholders must
    /// have been resolved first ([`ejson::resolve_server_dates`]).
    pub fn new(query: &Value) -> DbResult<Matcher> {
        let mut ctx = Ctx {
            near_allowed: true,
            near: None,
        };
        let root = match query {
            Value::Null => Vec::new(),
            Value::Object(map) => compile_query(map, &mut ctx)?,
            _ => return Err(DbError::invalid_param("query must be an object")),
        };
        Ok(Matcher {
            root,
            near: ctx.near,
        })
    }

    /// True when `doc` satisfies the query. Errors only come from `$expr` evaluation (e.g. `$divide` by 0).
    pub fn matches(&self, doc: &Value) -> DbResult<bool> {
        if !all_match(&self.root, doc)? {
            return Ok(false);
        }
        match &self.near {
            Some(near) => Ok(near.distance_m(doc).is_some_and(|d| near.accepts(d))),
            None => Ok(true),
        }
    }

    /// The query's `$nearSphere`, if any: results should be ordered by [`NearQuery::distance_m`] ascending.
    pub fn near(&self) -> Option<&NearQuery> {
        self.near.as_ref()
    }
}

/// A condition on one array element, as `$pull` and the `$elemMatch` projection use it: an operator
/// object applies to the element as a value (`{$gte: 6}`), any other object is a query on an object
/// element (`{score: 8}`), a regex matches strings, anything else means equality.
#[derive(Debug, Clone)]
pub struct ElementCondition(ElementTest);

#[derive(Debug, Clone)]
enum ElementTest {
    Ops(Vec<FieldOp>),
    Query(Vec<Node>),
    Equal(Value),
}

impl ElementCondition {
    /// Compiles the condition (same errors as [`Matcher::new`]).
    pub fn new(condition: &Value) -> DbResult<ElementCondition> {
        check_resolved(condition)?;
        let mut ctx = Ctx {
            near_allowed: false,
            near: None,
        };
        let test = match condition {
            v if ejson::regex_literal(v).is_some() => {
                ElementTest::Ops(vec![FieldOp::Regex(compile_regex_literal(v)?)])
            }
            Value::Object(map) if is_operator_object(condition) => {
                let logical = ["$and", "$or", "$nor", "$expr"];
                if map
                    .keys()
                    .next()
                    .is_some_and(|k| logical.contains(&k.as_str()))
                {
                    ElementTest::Query(compile_query(map, &mut ctx)?)
                } else {
                    ElementTest::Ops(compile_operators(&[], map, &mut ctx)?)
                }
            }
            Value::Object(map) if !ejson::is_literal_object(condition) => {
                ElementTest::Query(compile_query(map, &mut ctx)?)
            }
            other => ElementTest::Equal(other.clone()),
        };
        Ok(ElementCondition(test))
    }

    /// True when the array element satisfies the condition.
    pub fn matches(&self, element: &Value) -> DbResult<bool> {
        match &self.0 {
            ElementTest::Ops(ops) => ops_match(ops, &[Some(element)], true),
            ElementTest::Query(nodes) => Ok(element.is_object() && all_match(nodes, element)?),
            ElementTest::Equal(v) => Ok(values_equal(element, v)),
        }
    }
}

fn all_match(nodes: &[Node], doc: &Value) -> DbResult<bool> {
    for node in nodes {
        if !node.matches(doc)? {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Node {
    fn matches(&self, doc: &Value) -> DbResult<bool> {
        match self {
            Node::And(nodes) => all_match(nodes, doc),
            Node::Or(nodes) => {
                for n in nodes {
                    if n.matches(doc)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Node::Nor(nodes) => {
                for n in nodes {
                    if n.matches(doc)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Node::Field { path, ops } => {
                let candidates = path_candidates(doc, path);
                ops_match(ops, &candidates, true)
            }
            Node::Expr(e) => Ok(truthy(&e.eval(doc)?)),
        }
    }
}

fn ops_match(ops: &[FieldOp], candidates: &[Option<&Value>], expand: bool) -> DbResult<bool> {
    for op in ops {
        if !op.matches(candidates, expand)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// True when `test` holds for some candidate or (if `expand`) some element of an array candidate.
fn any_value(
    candidates: &[Option<&Value>],
    expand: bool,
    test: impl Fn(Option<&Value>) -> bool,
) -> bool {
    candidates.iter().any(|c| {
        test(*c)
            || (expand
                && matches!(c, Some(Value::Array(items)) if items.iter().any(|e| test(Some(e)))))
    })
}

fn eq_matches(candidate: Option<&Value>, operand: &Value) -> bool {
    match candidate {
        None => operand.is_null(),
        Some(v) => values_equal(v, operand),
    }
}

fn item_matches(candidate: Option<&Value>, item: &Item) -> bool {
    match item {
        Item::Value(v) => eq_matches(candidate, v),
        Item::Regex(re) => regex_matches(candidate, re),
    }
}

fn regex_matches(candidate: Option<&Value>, re: &Regex) -> bool {
    matches!(candidate, Some(Value::String(s)) if re.is_match(s))
}

fn cmp_matches(candidate: Option<&Value>, op: CmpOp, operand: &Value) -> bool {
    // A missing field compares as null (so `$gte: null` matches it, as in MongoDB).
    let value = candidate.unwrap_or(&Value::Null);
    if type_class(value) != type_class(operand) {
        return false;
    }
    let ord = compare_values(value, operand);
    match op {
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Gte => ord != Ordering::Less,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Lte => ord != Ordering::Greater,
    }
}

fn type_matches(candidate: Option<&Value>, tests: &[TypeTest]) -> bool {
    let Some(v) = candidate else { return false };
    tests.iter().any(|t| match t {
        TypeTest::Class(c) => type_class(v) == *c,
        TypeTest::Int => v.as_i64().is_some() || v.as_u64().is_some(),
        TypeTest::Double => v.is_f64(),
    })
}

fn geometries_of(value: &Value) -> Vec<Geometry> {
    if let Some(g) = geo::stored_geometry(value) {
        return vec![g];
    }
    match value {
        Value::Array(items) => items.iter().filter_map(geo::stored_geometry).collect(),
        _ => Vec::new(),
    }
}

impl FieldOp {
    fn matches(&self, candidates: &[Option<&Value>], expand: bool) -> DbResult<bool> {
        Ok(match self {
            FieldOp::Eq(v) => any_value(candidates, expand, |c| eq_matches(c, v)),
            FieldOp::Cmp(op, v) => any_value(candidates, expand, |c| cmp_matches(c, *op, v)),
            FieldOp::In(items) => any_value(candidates, expand, |c| {
                items.iter().any(|i| item_matches(c, i))
            }),
            FieldOp::All(items) => {
                !items.is_empty()
                    && items
                        .iter()
                        .all(|i| any_value(candidates, expand, |c| item_matches(c, i)))
            }
            FieldOp::AllElemMatch(elem_matches) => {
                for m in elem_matches {
                    if !m.matches(candidates, expand)? {
                        return Ok(false);
                    }
                }
                !elem_matches.is_empty()
            }
            FieldOp::ElemMatchValue(ops) => {
                for items in candidates
                    .iter()
                    .filter_map(|c| c.and_then(Value::as_array))
                {
                    for item in items {
                        if ops_match(ops, &[Some(item)], false)? {
                            return Ok(true);
                        }
                    }
                }
                false
            }
            FieldOp::ElemMatchDoc(nodes) => {
                for items in candidates
                    .iter()
                    .filter_map(|c| c.and_then(Value::as_array))
                {
                    for item in items.iter().filter(|i| i.is_object()) {
                        if all_match(nodes, item)? {
                            return Ok(true);
                        }
                    }
                }
                false
            }
            FieldOp::Exists(wanted) => candidates.iter().any(Option::is_some) == *wanted,
            FieldOp::Size(n) => candidates
                .iter()
                .any(|c| matches!(c, Some(Value::Array(a)) if a.len() == *n)),
            FieldOp::Mod(divisor, remainder) => any_value(candidates, expand, |c| {
                c.and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f.trunc() as i64)))
                    .is_some_and(|n| n.wrapping_rem(*divisor) == *remainder)
            }),
            FieldOp::Regex(re) => any_value(candidates, expand, |c| regex_matches(c, re)),
            FieldOp::Type(tests) => any_value(candidates, expand, |c| type_matches(c, tests)),
            FieldOp::Not(ops) => !ops_match(ops, candidates, expand)?,
            FieldOp::GeoWithin(area) => candidates
                .iter()
                .flatten()
                .flat_map(|v| geometries_of(v))
                .any(|g| match area {
                    GeoArea::Polygons(polys) => geo::within_polygons(&g, polys),
                    GeoArea::Circle(center, radius) => geo::within_circle(&g, *center, *radius),
                }),
            FieldOp::GeoIntersects(shape) => candidates
                .iter()
                .flatten()
                .flat_map(|v| geometries_of(v))
                .any(|g| geo::intersects(&g, shape)),
            // The distance filter is applied by `Matcher::matches` (one per query).
            FieldOp::Near => true,
        })
    }
}

fn is_operator_object(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            !ejson::is_literal_object(value)
                && map.keys().next().is_some_and(|k| k.starts_with('$'))
        }
        _ => false,
    }
}

fn compile_query(map: &Map<String, Value>, ctx: &mut Ctx) -> DbResult<Vec<Node>> {
    let mut nodes = Vec::new();
    for (key, value) in map {
        let node = match key.as_str() {
            "$and" | "$or" | "$nor" => {
                let branches = value.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                    DbError::invalid_param(format!("{key} must be a nonempty array"))
                })?;
                let saved = ctx.near_allowed;
                ctx.near_allowed = saved && key == "$and";
                let mut compiled = Vec::new();
                for branch in branches {
                    let branch = branch.as_object().ok_or_else(|| {
                        DbError::invalid_param(format!("{key} argument's entries must be objects"))
                    })?;
                    compiled.push(Node::And(compile_query(branch, ctx)?));
                }
                ctx.near_allowed = saved;
                match key.as_str() {
                    "$and" => Node::And(compiled),
                    "$or" => Node::Or(compiled),
                    _ => Node::Nor(compiled),
                }
            }
            "$expr" => Node::Expr(Expr::compile(value)?),
            "$comment" => continue,
            "$where" | "$text" | "$jsonSchema" | "$sampleRate" => {
                return Err(DbError::invalid_operator(format!("{key} is not supported")))
            }
            k if k.starts_with('$') => {
                return Err(DbError::invalid_operator(format!(
                    "unknown top level operator: {k}"
                )))
            }
            path => {
                let path = parse_path(path)?;
                let ops = compile_field(&path, value, ctx)?;
                Node::Field { path, ops }
            }
        };
        nodes.push(node);
    }
    Ok(nodes)
}

fn parse_path(path: &str) -> DbResult<Vec<String>> {
    let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(DbError::invalid_param(format!(
            "invalid field path: '{path}'"
        )));
    }
    Ok(parts)
}

fn check_resolved(value: &Value) -> DbResult<()> {
    if ejson::server_date_offset(value).is_some() {
        return Err(DbError::invalid_param(
            "serverDate placeholder was not resolved",
        ));
    }
    Ok(())
}

fn compile_field(path: &[String], value: &Value, ctx: &mut Ctx) -> DbResult<Vec<FieldOp>> {
    check_resolved(value)?;
    if ejson::regex_literal(value).is_some() && !is_operator_object(value) {
        return Ok(vec![FieldOp::Regex(compile_regex_literal(value)?)]);
    }
    if !is_operator_object(value) {
        return Ok(vec![FieldOp::Eq(value.clone())]);
    }
    compile_operators(path, value.as_object().expect("operator object"), ctx)
}

fn compile_operators(
    path: &[String],
    map: &Map<String, Value>,
    ctx: &mut Ctx,
) -> DbResult<Vec<FieldOp>> {
    let mut ops = Vec::new();
    for (key, operand) in map {
        check_resolved(operand)?;
        let op = match key.as_str() {
            "$eq" => FieldOp::Eq(operand.clone()),
            "$ne" => FieldOp::Not(vec![FieldOp::Eq(operand.clone())]),
            "$gt" => FieldOp::Cmp(CmpOp::Gt, operand.clone()),
            "$gte" => FieldOp::Cmp(CmpOp::Gte, operand.clone()),
            "$lt" => FieldOp::Cmp(CmpOp::Lt, operand.clone()),
            "$lte" => FieldOp::Cmp(CmpOp::Lte, operand.clone()),
            "$in" => FieldOp::In(compile_items(key, operand)?),
            "$nin" => FieldOp::Not(vec![FieldOp::In(compile_items(key, operand)?)]),
            "$all" => compile_all(operand, ctx)?,
            "$elemMatch" => compile_elem_match(operand, ctx)?,
            "$exists" => FieldOp::Exists(match operand {
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::Null => false,
                _ => return Err(DbError::invalid_param("$exists needs a boolean")),
            }),
            "$size" => FieldOp::Size(
                operand
                    .as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                    .map(|f| f as usize)
                    .ok_or_else(|| DbError::invalid_param("$size needs a non-negative integer"))?,
            ),
            "$mod" => compile_mod(operand)?,
            "$regex" => {
                let options = match map.get("$options") {
                    None => None,
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(_) => return Err(DbError::invalid_param("$options has to be a string")),
                };
                FieldOp::Regex(match (operand, ejson::regex_literal(operand)) {
                    (Value::String(pattern), _) => compile_regex(pattern, options.unwrap_or(""))?,
                    (_, Some((pattern, own))) => compile_regex(pattern, options.unwrap_or(own))?,
                    _ => return Err(DbError::invalid_param("$regex has to be a string")),
                })
            }
            "$options" => {
                if !map.contains_key("$regex") {
                    return Err(DbError::invalid_param("$options needs a $regex"));
                }
                continue;
            }
            "$not" => {
                let inner = if ejson::regex_literal(operand).is_some()
                    && !operand_has_operator_keys(operand)
                {
                    vec![FieldOp::Regex(compile_regex_literal(operand)?)]
                } else {
                    match operand {
                        Value::Object(inner)
                            if !inner.is_empty() && is_operator_object(operand) =>
                        {
                            let saved = ctx.near_allowed;
                            ctx.near_allowed = false;
                            let inner = compile_operators(path, inner, ctx);
                            ctx.near_allowed = saved;
                            inner?
                        }
                        Value::Object(inner) if inner.is_empty() => {
                            return Err(DbError::invalid_param("$not cannot be empty"))
                        }
                        _ => {
                            return Err(DbError::invalid_param(
                                "$not needs a regex or a document of operators",
                            ))
                        }
                    }
                };
                FieldOp::Not(inner)
            }
            "$type" => compile_type(operand)?,
            "$geoWithin" => compile_geo_within(operand)?,
            "$geoIntersects" => FieldOp::GeoIntersects(geometry_operand(key, operand)?),
            "$nearSphere" | "$near" => compile_near(path, key, operand, map, ctx)?,
            "$maxDistance" | "$minDistance" => {
                if !map.contains_key("$nearSphere") && !map.contains_key("$near") {
                    return Err(DbError::invalid_param(format!("{key} needs $nearSphere")));
                }
                continue;
            }
            other => {
                return Err(DbError::invalid_operator(format!(
                    "unknown operator: {other}"
                )))
            }
        };
        ops.push(op);
    }
    Ok(ops)
}

fn operand_has_operator_keys(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k != "$regex" && k != "$options"))
}

fn compile_items(key: &str, operand: &Value) -> DbResult<Vec<Item>> {
    let items = operand
        .as_array()
        .ok_or_else(|| DbError::invalid_param(format!("{key} needs an array")))?;
    items
        .iter()
        .map(|item| {
            check_resolved(item)?;
            if ejson::regex_literal(item).is_some() {
                Ok(Item::Regex(compile_regex_literal(item)?))
            } else {
                Ok(Item::Value(item.clone()))
            }
        })
        .collect()
}

fn compile_all(operand: &Value, ctx: &mut Ctx) -> DbResult<FieldOp> {
    let items = operand
        .as_array()
        .ok_or_else(|| DbError::invalid_param("$all needs an array"))?;
    let is_elem_match = |v: &Value| {
        v.as_object()
            .is_some_and(|m| m.len() == 1 && m.contains_key("$elemMatch"))
    };
    if !items.is_empty() && items.iter().all(is_elem_match) {
        let compiled = items
            .iter()
            .map(|i| compile_elem_match(&i["$elemMatch"], ctx))
            .collect::<DbResult<Vec<_>>>()?;
        return Ok(FieldOp::AllElemMatch(compiled));
    }
    if items
        .iter()
        .any(|i| is_operator_object(i) && !ejson::is_literal_object(i))
    {
        return Err(DbError::invalid_param(
            "no $ expressions in $all other than $elemMatch",
        ));
    }
    Ok(FieldOp::All(compile_items("$all", operand)?))
}

fn compile_elem_match(operand: &Value, ctx: &mut Ctx) -> DbResult<FieldOp> {
    let map = operand
        .as_object()
        .ok_or_else(|| DbError::invalid_param("$elemMatch needs an object"))?;
    let saved = ctx.near_allowed;
    ctx.near_allowed = false;
    // Value form when the first key is a field operator ({$gt: 1}); document form otherwise
    // ({a: 1}, or logical operators such as {$or: […]}).
    let logical = [
        "$and", "$or", "$nor", "$expr", "$where", "$text", "$comment",
    ];
    let value_form = map
        .keys()
        .next()
        .is_some_and(|k| k.starts_with('$') && !logical.contains(&k.as_str()));
    let result = if value_form {
        compile_operators(&[], map, ctx).map(FieldOp::ElemMatchValue)
    } else {
        compile_query(map, ctx).map(FieldOp::ElemMatchDoc)
    };
    ctx.near_allowed = saved;
    result
}

fn compile_mod(operand: &Value) -> DbResult<FieldOp> {
    let bad =
        || DbError::invalid_param("malformed mod, needs to be an array of [divisor, remainder]");
    let items = operand
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(bad)?;
    let int = |v: &Value| {
        v.as_i64().or_else(|| {
            v.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.trunc() as i64)
        })
    };
    let (divisor, remainder) = (
        int(&items[0]).ok_or_else(bad)?,
        int(&items[1]).ok_or_else(bad)?,
    );
    if divisor == 0 {
        return Err(DbError::invalid_param("divisor cannot be 0"));
    }
    Ok(FieldOp::Mod(divisor, remainder))
}

fn compile_type(operand: &Value) -> DbResult<FieldOp> {
    let one = |v: &Value| -> DbResult<Vec<TypeTest>> {
        use TypeClass as C;
        use TypeTest::*;
        let name = match v {
            Value::String(s) => s.as_str(),
            Value::Number(n) => match n.as_i64() {
                Some(1) => "double",
                Some(2) => "string",
                Some(3) => "object",
                Some(4) => "array",
                Some(8) => "bool",
                Some(9) => "date",
                Some(10) => "null",
                Some(11) => "regex",
                Some(16) => "int",
                Some(18) => "long",
                Some(-1) => "minKey",
                Some(127) => "maxKey",
                _ => return Err(DbError::invalid_param(format!("unknown $type code {n}"))),
            },
            _ => return Err(DbError::invalid_param("$type needs a type name or code")),
        };
        Ok(match name {
            "double" => vec![Double],
            "int" | "long" => vec![Int],
            "number" => vec![Class(C::Number)],
            "string" => vec![Class(C::String)],
            "object" => vec![Class(C::Object)],
            "array" => vec![Class(C::Array)],
            "bool" => vec![Class(C::Boolean)],
            "date" => vec![Class(C::Date)],
            "null" => vec![Class(C::Null)],
            "regex" => vec![Class(C::Regex)],
            "minKey" => vec![Class(C::MinKey)],
            "maxKey" => vec![Class(C::MaxKey)],
            other => {
                return Err(DbError::invalid_param(format!(
                    "unknown $type name {other}"
                )))
            }
        })
    };
    let tests = match operand {
        Value::Array(items) => items
            .iter()
            .map(one)
            .collect::<DbResult<Vec<_>>>()?
            .concat(),
        single => one(single)?,
    };
    Ok(FieldOp::Type(tests))
}

fn geometry_operand(key: &str, operand: &Value) -> DbResult<Geometry> {
    let geometry = operand
        .as_object()
        .and_then(|m| m.get("$geometry"))
        .ok_or_else(|| DbError::invalid_param(format!("{key} needs {{$geometry: <GeoJSON>}}")))?;
    geo::parse_geojson(geometry)
}

fn compile_geo_within(operand: &Value) -> DbResult<FieldOp> {
    let map = operand
        .as_object()
        .ok_or_else(|| DbError::invalid_param("$geoWithin needs an object"))?;
    if let Some(center) = map.get("$centerSphere") {
        let bad = || DbError::invalid_param("$centerSphere needs [[lng, lat], radius in radians]");
        let parts = center.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
        let point =
            geo::parse_geojson(&serde_json::json!({"type": "Point", "coordinates": parts[0]}))
                .map_err(|_| bad())?
                .points[0];
        let radius = parts[1].as_f64().filter(|r| *r >= 0.0).ok_or_else(bad)?;
        return Ok(FieldOp::GeoWithin(GeoArea::Circle(
            point,
            radius * EARTH_RADIUS_M,
        )));
    }
    if let Some(key) = map
        .keys()
        .find(|k| matches!(k.as_str(), "$box" | "$polygon" | "$center"))
    {
        return Err(DbError::invalid_operator(format!(
            "{key} (legacy flat geometry) is not supported"
        )));
    }
    let geometry = geometry_operand("$geoWithin", operand)?;
    if geometry.polygons.is_empty() || !geometry.points.is_empty() || !geometry.lines.is_empty() {
        return Err(DbError::invalid_param(
            "$geoWithin $geometry must be a Polygon or MultiPolygon",
        ));
    }
    Ok(FieldOp::GeoWithin(GeoArea::Polygons(geometry.polygons)))
}

fn compile_near(
    path: &[String],
    key: &str,
    operand: &Value,
    siblings: &Map<String, Value>,
    ctx: &mut Ctx,
) -> DbResult<FieldOp> {
    if !ctx.near_allowed {
        return Err(DbError::invalid_param(format!(
            "{key} is not allowed inside $or, $nor, $not or $elemMatch"
        )));
    }
    if ctx.near.is_some() {
        return Err(DbError::invalid_param("too many geoNear expressions"));
    }
    let distance = |v: Option<&Value>, name: &str, scale: f64| -> DbResult<Option<f64>> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|d| *d >= 0.0)
                .map(|d| Some(d * scale))
                .ok_or_else(|| {
                    DbError::invalid_param(format!("{name} must be a non-negative number"))
                }),
        }
    };
    let (center, min, max) = match operand {
        Value::Object(map) if map.contains_key("$geometry") => {
            let geometry = geo::parse_geojson(&map["$geometry"])?;
            if geometry.points.len() != 1
                || !geometry.lines.is_empty()
                || !geometry.polygons.is_empty()
            {
                return Err(DbError::invalid_param(format!(
                    "{key} $geometry must be a Point"
                )));
            }
            let min = distance(
                map.get("$minDistance").or(siblings.get("$minDistance")),
                "$minDistance",
                1.0,
            )?;
            let max = distance(
                map.get("$maxDistance").or(siblings.get("$maxDistance")),
                "$maxDistance",
                1.0,
            )?;
            (geometry.points[0], min, max)
        }
        // Legacy `[lng, lat]` with sibling distances in radians.
        Value::Array(_) => {
            let point = geo::stored_geometry(operand)
                .filter(|g| g.points.len() == 1)
                .ok_or_else(|| DbError::invalid_param(format!("{key} needs a point")))?
                .points[0];
            let min = distance(siblings.get("$minDistance"), "$minDistance", EARTH_RADIUS_M)?;
            let max = distance(siblings.get("$maxDistance"), "$maxDistance", EARTH_RADIUS_M)?;
            (point, min, max)
        }
        _ => {
            return Err(DbError::invalid_param(format!(
                "{key} needs {{$geometry: Point}}"
            )))
        }
    };
    ctx.near = Some(NearQuery {
        path: path.to_vec(),
        center,
        min_distance_m: min,
        max_distance_m: max,
    });
    Ok(FieldOp::Near)
}

fn compile_regex_literal(value: &Value) -> DbResult<Regex> {
    let (pattern, options) =
        ejson::regex_literal(value).ok_or_else(|| DbError::invalid_param("invalid regex"))?;
    compile_regex(pattern, options)
}

/// Compiles a `$regex` with MongoDB options `i m s x`, within the pattern and compiled size limits.
pub fn compile_regex(pattern: &str, options: &str) -> DbResult<Regex> {
    if pattern.len() > MAX_REGEX_PATTERN_BYTES {
        return Err(DbError::invalid_param(format!(
            "regular expression is too long ({} bytes, limit {MAX_REGEX_PATTERN_BYTES})",
            pattern.len()
        )));
    }
    let mut builder = RegexBuilder::new(pattern);
    builder
        .size_limit(MAX_REGEX_COMPILED_BYTES)
        .dfa_size_limit(MAX_REGEX_COMPILED_BYTES);
    for flag in options.chars() {
        match flag {
            'i' => builder.case_insensitive(true),
            'm' => builder.multi_line(true),
            's' => builder.dot_matches_new_line(true),
            'x' => builder.ignore_whitespace(true),
            // `u` is implied: patterns are always Unicode-aware.
            'u' => &mut builder,
            other => {
                return Err(DbError::invalid_param(format!(
                    "invalid flag in regex options: {other}"
                )))
            }
        };
    }
    builder
        .build()
        .map_err(|e| DbError::invalid_param(format!("invalid regular expression /{pattern}/: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(query: Value, doc: Value) -> bool {
        Matcher::new(&query).unwrap().matches(&doc).unwrap()
    }

    fn err(query: Value) -> DbError {
        Matcher::new(&query).unwrap_err()
    }

    #[test]
    fn equality_and_implicit_and() {
        let doc = json!({"a": 1, "b": "x", "c": {"d": 2.0}, "arr": [1, 2, 3], "n": null});
        assert!(m(json!({}), doc.clone()));
        assert!(m(Value::Null, doc.clone()));
        assert!(m(json!({"a": 1.0, "b": "x"}), doc.clone()));
        assert!(!m(json!({"a": 1, "b": "y"}), doc.clone()));
        assert!(m(json!({"c.d": 2}), doc.clone()));
        assert!(m(json!({"c": {"d": 2}}), doc.clone()), "exact sub-document");
        assert!(!m(json!({"c": {"d": 2, "e": 1}}), doc.clone()));
        assert!(m(json!({"arr": 2}), doc.clone()), "any element");
        assert!(m(json!({"arr": [1, 2, 3]}), doc.clone()), "whole array");
        assert!(!m(json!({"arr": [1, 2]}), doc.clone()));
        assert!(m(json!({"arr.1": 2}), doc.clone()), "numeric index");
        assert!(m(json!({"arr": {"$eq": 3}}), doc));
        assert!(
            m(json!({"a": [[1, 2]]}), json!({"a": [[[1, 2]], 5]})),
            "nested array element equality"
        );
        assert!(
            !m(json!({"a": 1}), json!({"a": [[1]]})),
            "arrays are expanded one level only"
        );
    }

    #[test]
    fn null_and_missing() {
        // MongoDB docs "Query for Null or Missing Fields".
        let docs = [json!({"_id": 1, "item": null}), json!({"_id": 2})];
        assert!(docs.iter().all(|d| m(json!({"item": null}), d.clone())));
        assert!(m(json!({"item": {"$exists": false}}), docs[1].clone()));
        assert!(!m(json!({"item": {"$exists": false}}), docs[0].clone()));
        assert!(m(json!({"item": {"$type": "null"}}), docs[0].clone()));
        assert!(!m(json!({"item": {"$type": "null"}}), docs[1].clone()));
        assert!(m(json!({"item": {"$ne": null}}), json!({"item": 0})));
        assert!(!m(json!({"item": {"$ne": null}}), docs[1].clone()));
        assert!(m(json!({"item": {"$gte": null}}), docs[1].clone()));
        assert!(!m(json!({"item": {"$gt": null}}), docs[1].clone()));
        assert!(
            m(json!({"a.b": null}), json!({"a": [{"b": 1}, {"c": 2}]})),
            "missing on one branch"
        );
        assert!(m(json!({"item": {"$in": [null, 5]}}), docs[1].clone()));
    }

    #[test]
    fn null_through_an_empty_array() {
        // MongoDB 4.4 (jstests/core/dotted_path_in_null.js): only document elements lacking the field
        // are "missing"; an empty array yields no value at all.
        let empty = json!({"items": []});
        assert!(!m(json!({"items.q": null}), empty.clone()));
        assert!(!m(json!({"items.q": {"$eq": null}}), empty.clone()));
        assert!(!m(json!({"items.q": {"$in": [null]}}), empty.clone()));
        assert!(m(json!({"items.q": {"$ne": null}}), empty.clone()));
        assert!(m(json!({"items.q": {"$nin": [null]}}), empty.clone()));
        assert!(m(json!({"items.q": {"$exists": false}}), empty));
        assert!(m(json!({"a.b": null}), json!({"a": [{}, {"b": 5}]})));
        assert!(!m(json!({"a.b": null}), json!({"a": [5, {"b": 5}]})));
    }

    #[test]
    fn ne_and_nin_match_missing() {
        assert!(m(json!({"q": {"$ne": 20}}), json!({"x": 1})));
        assert!(m(json!({"q": {"$nin": [5, 15]}}), json!({"x": 1})));
        assert!(
            !m(json!({"tags": {"$ne": "b"}}), json!({"tags": ["a", "b"]})),
            "no element may equal"
        );
        assert!(!m(json!({"q": {"$nin": [5, 15]}}), json!({"q": 15})));
    }

    #[test]
    fn comparisons_bracket_types() {
        assert!(m(json!({"q": {"$gt": 20}}), json!({"q": 25})));
        assert!(!m(json!({"q": {"$gt": 20}}), json!({"q": "25"})));
        assert!(m(json!({"q": {"$gte": 20, "$lt": 30}}), json!({"q": 20.0})));
        assert!(m(json!({"q": {"$lte": "b"}}), json!({"q": "abc"})));
        assert!(
            m(json!({"q": {"$lt": 2}}), json!({"q": [5, 1]})),
            "any element"
        );
        assert!(
            m(json!({"q": {"$gt": 10, "$lt": 2}}), json!({"q": [1, 20]})),
            "different elements may satisfy each op"
        );
        assert!(!m(
            json!({"q": {"$elemMatch": {"$gt": 10, "$lt": 2}}}),
            json!({"q": [1, 20]})
        ));
        assert!(m(json!({"q": {"$gt": 10}}), json!({"q": [1, 20]})));
        // Dates compare as dates, not as numbers (protocol.md §5.3 capture).
        assert!(m(
            json!({"when": {"$lt": {"$date": 1700000000000_i64}}}),
            json!({"when": {"$date": 1600000000000_i64}})
        ));
        assert!(!m(
            json!({"when": {"$lt": {"$date": 1700000000000_i64}}}),
            json!({"when": 1})
        ));
        assert!(m(
            json!({"when": {"$date": 5}}),
            json!({"when": {"$date": 5.0}})
        ));
    }

    #[test]
    fn in_all_size_mod() {
        assert!(m(
            json!({"tags": {"$in": ["a", "z"]}}),
            json!({"tags": ["a", "b"]})
        ));
        assert!(m(
            json!({"s": {"$in": [{"$regex": "^ab"}, 3]}}),
            json!({"s": "abc"})
        ));
        assert!(m(
            json!({"tags": {"$all": ["a", "b"]}}),
            json!({"tags": ["b", "c", "a"]})
        ));
        assert!(!m(
            json!({"tags": {"$all": ["a", "d"]}}),
            json!({"tags": ["b", "c", "a"]})
        ));
        assert!(m(json!({"tags": {"$all": ["a"]}}), json!({"tags": "a"})));
        assert!(!m(json!({"tags": {"$all": []}}), json!({"tags": []})));
        assert!(m(
            json!({"tags": {"$size": 2}}),
            json!({"tags": ["x", "y"]})
        ));
        assert!(!m(json!({"tags": {"$size": 1}}), json!({"tags": "x"})));
        assert!(m(json!({"q": {"$mod": [4, 0]}}), json!({"q": 12})));
        assert!(
            m(json!({"q": {"$mod": [4, 1]}}), json!({"q": 5.7})),
            "floats truncate"
        );
        assert!(m(json!({"q": {"$mod": [4, -1]}}), json!({"q": -5})));
        assert!(!m(json!({"q": {"$mod": [4, 0]}}), json!({"q": "12"})));
    }

    #[test]
    fn elem_match_both_forms() {
        // MongoDB docs: {results: {$elemMatch: {$gte: 80, $lt: 85}}}.
        assert!(m(
            json!({"results": {"$elemMatch": {"$gte": 80, "$lt": 85}}}),
            json!({"results": [82, 85, 88]})
        ));
        assert!(!m(
            json!({"results": {"$elemMatch": {"$gte": 80, "$lt": 85}}}),
            json!({"results": [75, 88, 89]})
        ));
        let doc =
            json!({"results": [{"product": "abc", "score": 10}, {"product": "xyz", "score": 5}]});
        assert!(m(
            json!({"results": {"$elemMatch": {"product": "xyz", "score": {"$gte": 5}}}}),
            doc.clone()
        ));
        assert!(!m(
            json!({"results": {"$elemMatch": {"product": "xyz", "score": {"$gte": 8}}}}),
            doc.clone()
        ));
        assert!(m(
            json!({"results": {"$elemMatch": {"$or": [{"score": 10}, {"score": 99}]}}}),
            doc.clone()
        ));
        assert!(!m(
            json!({"results": {"$elemMatch": {"score": 10}}}),
            json!({"results": {"score": 10}})
        ));
        assert!(m(
            json!({"results": {"$all": [{"$elemMatch": {"score": 10}}, {"$elemMatch": {"score": 5}}]}}),
            doc
        ));
    }

    #[test]
    fn regex_options_and_limits() {
        let doc = json!({"name": "Abc\nxyz"});
        assert!(m(
            json!({"name": {"$regex": "^ab", "$options": "i"}}),
            doc.clone()
        ));
        assert!(!m(json!({"name": {"$regex": "^ab"}}), doc.clone()));
        assert!(m(
            json!({"name": {"$regex": "^xyz", "$options": "m"}}),
            doc.clone()
        ));
        assert!(!m(json!({"name": {"$regex": "^xyz"}}), doc.clone()));
        assert!(m(
            json!({"name": {"$regex": "c.x", "$options": "s"}}),
            doc.clone()
        ));
        assert!(m(
            json!({"name": {"$regex": "a b c # comment", "$options": "ix"}}),
            doc.clone()
        ));
        assert!(m(
            json!({"tags": {"$regex": "^b"}}),
            json!({"tags": ["a", "bc"]})
        ));
        assert!(!m(json!({"n": {"$regex": "1"}}), json!({"n": 1})));
        assert_eq!(
            err(json!({"name": {"$regex": "a", "$options": "g"}})).code,
            "INVALID_PARAM"
        );
        assert_eq!(
            err(json!({"name": {"$regex": "a".repeat(1025)}})).code,
            "INVALID_PARAM"
        );
        assert!(
            Matcher::new(&json!({"name": {"$regex": "(a+)+$"}})).is_ok(),
            "linear-time engine, no backtracking"
        );
        assert!(
            Matcher::new(&json!({"name": {"$regex": "(?=x)"}})).is_err(),
            "lookaround is rejected, not panicking"
        );
        assert!(
            Matcher::new(&json!({"name": {"$regex": "\\w{1000}{1000}"}})).is_err(),
            "compiled size limit"
        );
        assert!(Matcher::new(&json!({"name": {"$options": "i"}})).is_err());
    }

    #[test]
    fn not_and_logical_operators() {
        assert!(m(json!({"p": {"$not": {"$gt": 1.99}}}), json!({"p": 1.5})));
        assert!(
            m(json!({"p": {"$not": {"$gt": 1.99}}}), json!({"x": 1})),
            "$not matches missing"
        );
        assert!(!m(json!({"p": {"$not": {"$gt": 1.99}}}), json!({"p": 2})));
        assert!(m(
            json!({"s": {"$not": {"$regex": "^p"}}}),
            json!({"s": "q"})
        ));
        assert!(!m(
            json!({"s": {"$not": {"$regex": "^p", "$options": "i"}}}),
            json!({"s": "P"})
        ));
        let q = json!({"$or": [{"a": 1}, {"b": {"$exists": true}}]});
        assert!(m(q.clone(), json!({"b": null})));
        assert!(!m(q, json!({"a": 2})));
        assert!(m(json!({"$nor": [{"a": 1}, {"b": 2}]}), json!({"a": 2})));
        assert!(!m(json!({"$nor": [{"a": 1}, {"b": 2}]}), json!({"b": 2})));
        // protocol.md §5.3: chained commands become a top-level $and.
        let q = json!({"done": false, "$and": [{"age": {"$gt": 18}}, {"age": {"$lt": 60}}]});
        assert!(m(q.clone(), json!({"done": false, "age": 30})));
        assert!(!m(q, json!({"done": false, "age": 60})));
        assert!(err(json!({"$or": []})).code == "INVALID_PARAM");
        assert!(err(json!({"a": {"$not": 5}})).code == "INVALID_PARAM");
    }

    #[test]
    fn unknown_operators_are_typed_errors() {
        assert_eq!(
            err(json!({"a": {"$foo": 1}})).code,
            "DATABASE_INVALID_OPERRATOR"
        );
        assert_eq!(
            err(json!({"$foo": [{"a": 1}]})).code,
            "DATABASE_INVALID_OPERRATOR"
        );
        assert_eq!(
            err(json!({"$where": "true"})).code,
            "DATABASE_INVALID_OPERRATOR"
        );
        assert_eq!(
            err(json!({"a": {"$elemMatch": {"$bar": 1}}})).code,
            "DATABASE_INVALID_OPERRATOR"
        );
        assert_eq!(
            err(json!({"$expr": {"$function": {}}})).code,
            "DATABASE_INVALID_OPERRATOR"
        );
        assert_eq!(err(json!([1])).code, "INVALID_PARAM");
        assert_eq!(err(json!({"a": {"$in": 5}})).code, "INVALID_PARAM");
        assert_eq!(err(json!({"a": {"$size": -1}})).code, "INVALID_PARAM");
        assert_eq!(err(json!({"a": {"$mod": [0, 1]}})).code, "INVALID_PARAM");
        assert_eq!(err(json!({"a..b": 1})).code, "INVALID_PARAM");
        assert_eq!(
            err(json!({"a": {"$date": {"offset": 0}}})).code,
            "INVALID_PARAM"
        );
    }

    #[test]
    fn expr_compares_fields() {
        // MongoDB docs: {$expr: {$gt: ["$spent", "$budget"]}}.
        let q = json!({"$expr": {"$gt": ["$spent", "$budget"]}});
        assert!(m(q.clone(), json!({"budget": 100, "spent": 150})));
        assert!(!m(q, json!({"budget": 100, "spent": 50})));
        let q =
            json!({"$expr": {"$lt": [{"$multiply": ["$qty", {"$ifNull": ["$price", 1]}]}, 10]}});
        assert!(m(q.clone(), json!({"qty": 3})));
        assert!(!m(q, json!({"qty": 3, "price": 5})));
        let failing = Matcher::new(&json!({"$expr": {"$divide": ["$a", "$b"]}})).unwrap();
        assert_eq!(
            failing.matches(&json!({"a": 1, "b": 0})).unwrap_err().code,
            "INVALID_PARAM"
        );
    }

    #[test]
    fn type_operator() {
        assert!(m(json!({"a": {"$type": "string"}}), json!({"a": "x"})));
        assert!(m(
            json!({"a": {"$type": ["double", "bool"]}}),
            json!({"a": 1.5})
        ));
        assert!(!m(json!({"a": {"$type": "int"}}), json!({"a": 1.5})));
        assert!(m(
            json!({"a": {"$type": "date"}}),
            json!({"a": {"$date": 1}})
        ));
        assert!(m(json!({"a": {"$type": "array"}}), json!({"a": []})));
    }

    #[test]
    fn geo_within_and_intersects() {
        // protocol.md §5.3 capture: $geoWithin with a triangle.
        let within = json!({"loc": {"$geoWithin": {"$geometry": {"type": "Polygon",
            "coordinates": [[[0, 0], [3, 0], [3, 3], [0, 0]]]}}}});
        assert!(m(
            within.clone(),
            json!({"loc": {"type": "Point", "coordinates": [2, 1]}})
        ));
        assert!(!m(
            within.clone(),
            json!({"loc": {"type": "Point", "coordinates": [1, 2]}})
        ));
        assert!(m(within.clone(), json!({"loc": [2, 1]})), "legacy pair");
        assert!(!m(within, json!({"loc": "somewhere"})));
        let multi = json!({"loc": {"$geoWithin": {"$geometry": {"type": "MultiPolygon", "coordinates": [
            [[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[10, 10], [11, 10], [11, 11], [10, 10]]]]}}}});
        assert!(m(
            multi,
            json!({"loc": {"type": "Point", "coordinates": [10.8, 10.2]}})
        ));
        // $centerSphere: radius in radians (1 km ≈ 1000 / 6378100).
        let circle =
            json!({"loc": {"$geoWithin": {"$centerSphere": [[113.3, 23.1], 1000.0 / 6378100.0]}}});
        assert!(m(
            circle.clone(),
            json!({"loc": {"type": "Point", "coordinates": [113.305, 23.1]}})
        ));
        assert!(!m(
            circle,
            json!({"loc": {"type": "Point", "coordinates": [113.32, 23.1]}})
        ));
        let crossing = json!({"route": {"$geoIntersects": {"$geometry": {"type": "Polygon",
            "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}}}});
        assert!(m(
            crossing.clone(),
            json!({"route": {"type": "LineString", "coordinates": [[-1, 1], [5, 1]]}})
        ));
        assert!(!m(
            crossing.clone(),
            json!({"route": {"type": "LineString", "coordinates": [[3, 3], [5, 5]]}})
        ));
        assert!(m(
            crossing,
            json!({"route": [{"type": "Point", "coordinates": [9, 9]}, {"type": "Point", "coordinates": [1, 1]}]})
        ));
        assert_eq!(err(json!({"loc": {"$geoWithin": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}})).code, "INVALID_PARAM");
        assert_eq!(
            err(json!({"loc": {"$geoWithin": {"$box": [[0, 0], [1, 1]]}}})).code,
            "DATABASE_INVALID_OPERRATOR"
        );
    }

    #[test]
    fn near_sphere_filters_and_reports_distance() {
        // protocol.md §5.3 capture.
        let q = json!({"loc": {"$nearSphere": {"$geometry": {"type": "Point", "coordinates": [113, 23]},
            "$maxDistance": 1000, "$minDistance": 0}}});
        let matcher = Matcher::new(&q).unwrap();
        let near_doc = json!({"loc": {"type": "Point", "coordinates": [113.005, 23]}});
        let far_doc = json!({"loc": {"type": "Point", "coordinates": [113.02, 23]}});
        assert!(matcher.matches(&near_doc).unwrap());
        assert!(!matcher.matches(&far_doc).unwrap());
        assert!(!matcher.matches(&json!({"x": 1})).unwrap());
        let d = matcher.near().unwrap().distance_m(&near_doc).unwrap();
        assert!((d - geo::haversine_m((113.0, 23.0), (113.005, 23.0))).abs() < 1e-9);
        assert!((500.0..520.0).contains(&d), "{d}");
        let min_only = Matcher::new(&json!({"loc": {"$nearSphere": {"$geometry": {"type": "Point", "coordinates": [113, 23]}, "$minDistance": 1000}}})).unwrap();
        assert!(min_only.matches(&far_doc).unwrap());
        assert!(!min_only.matches(&near_doc).unwrap());
        let legacy = Matcher::new(
            &json!({"loc": {"$nearSphere": [113, 23], "$maxDistance": 1000.0 / 6378100.0}}),
        )
        .unwrap();
        assert!(legacy.matches(&near_doc).unwrap() && !legacy.matches(&far_doc).unwrap());
        assert!(Matcher::new(&json!({"$or": [{"loc": {"$nearSphere": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}}]})).is_err());
        assert!(Matcher::new(&json!({"loc": {"$nearSphere": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}, "b": {"$nearSphere": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}})).is_err());
    }

    #[test]
    fn element_condition() {
        let gte = ElementCondition::new(&json!({"$gte": 6})).unwrap();
        assert!(gte.matches(&json!(7)).unwrap() && !gte.matches(&json!(5)).unwrap());
        let doc = ElementCondition::new(&json!({"a": 1})).unwrap();
        assert!(doc.matches(&json!({"a": 1, "b": 2})).unwrap() && !doc.matches(&json!(1)).unwrap());
        let eq = ElementCondition::new(&json!([1, 2])).unwrap();
        assert!(eq.matches(&json!([1, 2])).unwrap() && !eq.matches(&json!(1)).unwrap());
    }
}
