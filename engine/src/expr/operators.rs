//! The expression operator table: one entry per operator of the SDK's `db.command.aggregate` list
//! (MongoDB 4.4 semantics), with its argument shape and evaluator.

use super::accumulator::{Accumulator, AccumulatorKind};
use super::date;
use super::{
    check_variable_name, compare_optional, eval_bound, truthy, type_name, Args, Binding, Expr,
    Scope,
};
use crate::ejson;
use crate::error::{DbError, DbResult};
use crate::value::values_equal;
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// How an operator takes its arguments.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A positional list with `min..=max` arguments (a non-array operand is one argument).
    List(usize, usize),
    /// An object of named arguments: all allowed names, then the required ones.
    Named(&'static [&'static str], &'static [&'static str]),
    /// Either form: a list with exactly the named arguments' count, or the named object.
    ListOrNamed(&'static [&'static str]),
    /// A date expression, or `{date, timezone}`.
    DatePart,
    /// `$let`: `{vars: {…}, in}`.
    Let,
    /// `$switch`: `{branches: [{case, then}], default}`.
    Switch,
}

type Eval = fn(&Args, &Scope<'_>) -> DbResult<Option<Value>>;

/// One operator: its name, argument shape and evaluator.
#[derive(Debug)]
pub struct OpSpec {
    /// `$name`.
    pub name: &'static str,
    /// The argument shape checked at compile time.
    pub shape: Shape,
    pub(super) eval: Eval,
}

const ANY: usize = usize::MAX;
/// Longest string an expression may build (MongoDB's 16 MiB document limit): `$reduce` over `$concat` could
/// otherwise double a string until the emulator runs out of memory.
pub const MAX_STRING_BYTES: usize = 16 << 20;
/// Most elements an expression may build into one array (`$range`, `$concatArrays`), for the same reason.
pub const MAX_ARRAY_ELEMENTS: usize = 1_000_000;

fn too_large(name: &str) -> DbError {
    DbError::invalid_param(format!(
        "{name} would build a value larger than the 16 MiB document limit"
    ))
}
const DATE_PART: &[&str] = &["date", "timezone"];

macro_rules! op {
    ($name:literal, $shape:expr, $eval:expr) => {
        OpSpec {
            name: $name,
            shape: $shape,
            eval: $eval,
        }
    };
}

use Shape::*;

/// Every supported expression operator.
pub static OPERATORS: &[OpSpec] = &[
    // Arithmetic.
    op!("$abs", List(1, 1), |a, s| unary_number(a, s, "$abs", abs)),
    op!("$add", List(0, ANY), |a, s| add(values(a, s)?)),
    op!("$ceil", List(1, 1), |a, s| unary_number(
        a,
        s,
        "$ceil",
        |n| round_with(n, f64::ceil)
    )),
    op!("$divide", List(2, 2), |a, s| divide(values(a, s)?)),
    op!("$exp", List(1, 1), |a, s| unary_float(
        a,
        s,
        "$exp",
        |x| Ok(x.exp())
    )),
    op!("$floor", List(1, 1), |a, s| unary_number(
        a,
        s,
        "$floor",
        |n| round_with(n, f64::floor)
    )),
    op!("$ln", List(1, 1), |a, s| unary_float(a, s, "$ln", |x| {
        positive_log(x, "$ln", f64::ln)
    })),
    op!("$log", List(2, 2), |a, s| log(values(a, s)?)),
    op!("$log10", List(1, 1), |a, s| unary_float(
        a,
        s,
        "$log10",
        |x| positive_log(x, "$log10", f64::log10)
    )),
    op!("$mod", List(2, 2), |a, s| modulo(values(a, s)?)),
    op!("$multiply", List(0, ANY), |a, s| multiply(values(a, s)?)),
    op!("$pow", List(2, 2), |a, s| pow(values(a, s)?)),
    op!("$sqrt", List(1, 1), |a, s| unary_float(a, s, "$sqrt", sqrt)),
    op!("$subtract", List(2, 2), |a, s| subtract(values(a, s)?)),
    op!("$trunc", List(1, 2), |a, s| trunc(values(a, s)?)),
    // Comparison.
    op!("$cmp", List(2, 2), |a, s| compare(a, s, |o| Value::from(
        o as i8
    ))),
    op!("$eq", List(2, 2), |a, s| compare(a, s, |o| Value::Bool(
        o == Ordering::Equal
    ))),
    op!("$gt", List(2, 2), |a, s| compare(a, s, |o| Value::Bool(
        o == Ordering::Greater
    ))),
    op!("$gte", List(2, 2), |a, s| compare(a, s, |o| Value::Bool(
        o != Ordering::Less
    ))),
    op!("$lt", List(2, 2), |a, s| compare(a, s, |o| Value::Bool(
        o == Ordering::Less
    ))),
    op!("$lte", List(2, 2), |a, s| compare(a, s, |o| Value::Bool(
        o != Ordering::Greater
    ))),
    op!("$ne", List(2, 2), |a, s| compare(a, s, |o| Value::Bool(
        o != Ordering::Equal
    ))),
    // Boolean.
    op!("$and", List(0, ANY), and),
    op!("$not", List(1, 1), |a, s| Ok(Some(Value::Bool(!truthy(
        &arg(a, 0, s)?
    ))))),
    op!("$or", List(0, ANY), or),
    // Conditional.
    op!("$cond", ListOrNamed(&["if", "then", "else"]), cond),
    op!("$ifNull", List(2, 2), if_null),
    op!("$switch", Switch, switch),
    // Literal and variables.
    op!("$let", Let, let_in),
    op!("$meta", List(1, 1), |_, _| Err(DbError::invalid_operator(
        "$meta is not available: cloud-emulator has no text or geo search metadata"
    ))),
    // Arrays.
    op!("$arrayElemAt", List(2, 2), array_elem_at),
    op!("$arrayToObject", List(1, 1), array_to_object),
    op!("$concatArrays", List(0, ANY), concat_arrays),
    op!(
        "$filter",
        Named(&["input", "as", "cond"], &["input", "cond"]),
        filter
    ),
    op!("$first", List(1, 1), |a, s| array_end(
        a,
        s,
        "$first",
        |items| items.first()
    )),
    op!("$in", List(2, 2), in_array),
    op!("$indexOfArray", List(2, 4), index_of_array),
    op!("$isArray", List(1, 1), |a, s| Ok(Some(Value::Bool(
        matches!(arg(a, 0, s)?, Some(Value::Array(_)))
    )))),
    op!("$last", List(1, 1), |a, s| array_end(
        a,
        s,
        "$last",
        |items| items.last()
    )),
    op!("$map", Named(&["input", "as", "in"], &["input", "in"]), map),
    op!("$objectToArray", List(1, 1), object_to_array),
    op!("$range", List(2, 3), range),
    op!(
        "$reduce",
        Named(
            &["input", "initialValue", "in"],
            &["input", "initialValue", "in"]
        ),
        reduce
    ),
    op!("$reverseArray", List(1, 1), reverse_array),
    op!("$size", List(1, 1), size),
    op!("$slice", List(2, 3), slice),
    op!(
        "$zip",
        Named(&["inputs", "useLongestLength", "defaults"], &["inputs"]),
        zip
    ),
    // Sets.
    op!("$allElementsTrue", List(1, 1), |a, s| elements_truth(
        a,
        s,
        "$allElementsTrue",
        true
    )),
    op!("$anyElementTrue", List(1, 1), |a, s| elements_truth(
        a,
        s,
        "$anyElementTrue",
        false
    )),
    op!("$setDifference", List(2, 2), set_difference),
    op!("$setEquals", List(2, ANY), set_equals),
    op!("$setIntersection", List(0, ANY), set_intersection),
    op!("$setIsSubset", List(2, 2), set_is_subset),
    op!("$setUnion", List(0, ANY), set_union),
    // Strings.
    op!("$concat", List(0, ANY), concat),
    op!("$indexOfBytes", List(2, 4), |a, s| index_of_str(
        a,
        s,
        "$indexOfBytes",
        false
    )),
    op!("$indexOfCP", List(2, 4), |a, s| index_of_str(
        a,
        s,
        "$indexOfCP",
        true
    )),
    op!("$ltrim", Named(&["input", "chars"], &["input"]), |a, s| {
        trim(a, s, "$ltrim", true, false)
    }),
    op!("$rtrim", Named(&["input", "chars"], &["input"]), |a, s| {
        trim(a, s, "$rtrim", false, true)
    }),
    op!("$split", List(2, 2), split),
    op!("$strcasecmp", List(2, 2), strcasecmp),
    op!("$strLenBytes", List(1, 1), |a, s| str_len(
        a,
        s,
        "$strLenBytes",
        |t| t.len()
    )),
    op!("$strLenCP", List(1, 1), |a, s| str_len(
        a,
        s,
        "$strLenCP",
        |t| t.chars().count()
    )),
    op!("$substr", List(3, 3), |a, s| substr(a, s, "$substr", false)),
    op!("$substrBytes", List(3, 3), |a, s| substr(
        a,
        s,
        "$substrBytes",
        false
    )),
    op!("$substrCP", List(3, 3), |a, s| substr(
        a,
        s,
        "$substrCP",
        true
    )),
    op!("$toLower", List(1, 1), |a, s| change_case(
        a,
        s,
        "$toLower",
        str::to_ascii_lowercase
    )),
    op!("$toUpper", List(1, 1), |a, s| change_case(
        a,
        s,
        "$toUpper",
        str::to_ascii_uppercase
    )),
    op!(
        "$trim",
        Named(&["input", "chars"], &["input"]),
        |a, s| trim(a, s, "$trim", true, true)
    ),
    // Objects.
    op!("$mergeObjects", List(0, ANY), merge_objects),
    // Types.
    op!(
        "$convert",
        Named(&["input", "to", "onError", "onNull"], &["input", "to"]),
        convert
    ),
    op!("$toBool", List(1, 1), |a, s| convert_to(a, s, "bool")),
    op!("$toDate", List(1, 1), |a, s| convert_to(a, s, "date")),
    op!("$toDecimal", List(1, 1), |a, s| convert_to(a, s, "decimal")),
    op!("$toDouble", List(1, 1), |a, s| convert_to(a, s, "double")),
    op!("$toInt", List(1, 1), |a, s| convert_to(a, s, "int")),
    op!("$toLong", List(1, 1), |a, s| convert_to(a, s, "long")),
    op!("$toObjectId", List(1, 1), |a, s| convert_to(
        a, s, "objectId"
    )),
    op!("$toString", List(1, 1), |a, s| convert_to(a, s, "string")),
    op!("$type", List(1, 1), |a, s| Ok(Some(Value::from(
        type_name(&arg(a, 0, s)?)
    )))),
    // Accumulators as expressions: one array operand, or several operands.
    op!("$avg", List(1, ANY), |a, s| accumulate(
        a,
        s,
        AccumulatorKind::Avg
    )),
    op!("$max", List(1, ANY), |a, s| accumulate(
        a,
        s,
        AccumulatorKind::Max
    )),
    op!("$min", List(1, ANY), |a, s| accumulate(
        a,
        s,
        AccumulatorKind::Min
    )),
    op!("$stdDevPop", List(1, ANY), |a, s| accumulate(
        a,
        s,
        AccumulatorKind::StdDevPop
    )),
    op!("$stdDevSamp", List(1, ANY), |a, s| accumulate(
        a,
        s,
        AccumulatorKind::StdDevSamp
    )),
    op!("$sum", List(1, ANY), |a, s| accumulate(
        a,
        s,
        AccumulatorKind::Sum
    )),
    op!("$addToSet", List(1, 1), |_, _| Err(group_only("$addToSet"))),
    op!("$push", List(1, 1), |_, _| Err(group_only("$push"))),
    // Dates.
    op!(
        "$dateFromParts",
        Named(date::FROM_PARTS_FIELDS, &[]),
        date::from_parts
    ),
    op!(
        "$dateFromString",
        Named(
            &["dateString", "format", "timezone", "onError", "onNull"],
            &["dateString"]
        ),
        date::from_string
    ),
    op!(
        "$dateToParts",
        Named(&["date", "timezone", "iso8601"], &["date"]),
        date::to_parts
    ),
    op!(
        "$dateToString",
        Named(&["date", "format", "timezone", "onNull"], &["date"]),
        date::to_string
    ),
    op!("$dayOfMonth", DatePart, |a, s| date::part(
        a,
        s,
        "$dayOfMonth",
        date::Part::DayOfMonth
    )),
    op!("$dayOfWeek", DatePart, |a, s| date::part(
        a,
        s,
        "$dayOfWeek",
        date::Part::DayOfWeek
    )),
    op!("$dayOfYear", DatePart, |a, s| date::part(
        a,
        s,
        "$dayOfYear",
        date::Part::DayOfYear
    )),
    op!("$hour", DatePart, |a, s| date::part(
        a,
        s,
        "$hour",
        date::Part::Hour
    )),
    op!("$isoDayOfWeek", DatePart, |a, s| date::part(
        a,
        s,
        "$isoDayOfWeek",
        date::Part::IsoDayOfWeek
    )),
    op!("$isoWeek", DatePart, |a, s| date::part(
        a,
        s,
        "$isoWeek",
        date::Part::IsoWeek
    )),
    op!("$isoWeekYear", DatePart, |a, s| date::part(
        a,
        s,
        "$isoWeekYear",
        date::Part::IsoWeekYear
    )),
    op!("$millisecond", DatePart, |a, s| date::part(
        a,
        s,
        "$millisecond",
        date::Part::Millisecond
    )),
    op!("$minute", DatePart, |a, s| date::part(
        a,
        s,
        "$minute",
        date::Part::Minute
    )),
    op!("$month", DatePart, |a, s| date::part(
        a,
        s,
        "$month",
        date::Part::Month
    )),
    op!("$second", DatePart, |a, s| date::part(
        a,
        s,
        "$second",
        date::Part::Second
    )),
    op!("$week", DatePart, |a, s| date::part(
        a,
        s,
        "$week",
        date::Part::Week
    )),
    op!("$year", DatePart, |a, s| date::part(
        a,
        s,
        "$year",
        date::Part::Year
    )),
];

/// The table entry of `name`.
pub fn find(name: &str) -> Option<&'static OpSpec> {
    OPERATORS.iter().find(|spec| spec.name == name)
}

fn group_only(name: &str) -> DbError {
    DbError::invalid_operator(format!(
        "{name} is an accumulator of $group only, not an expression"
    ))
}

/// Compiles `{key: operand}` against the table.
pub(super) fn compile(key: &str, operand: &Value) -> DbResult<Expr> {
    if key == "$literal" {
        return Ok(Expr::Literal(operand.clone()));
    }
    let spec = find(key).ok_or_else(|| {
        DbError::invalid_operator(format!("unknown or unsupported expression operator: {key}"))
    })?;
    let args = match spec.shape {
        List(min, max) => compile_list(key, operand, min, max)?,
        Named(fields, required) => compile_named(key, operand, fields, required)?,
        ListOrNamed(fields) if is_plain_object(operand) => {
            compile_named(key, operand, fields, fields)?
        }
        ListOrNamed(fields) => compile_list(key, operand, fields.len(), fields.len())?,
        DatePart if is_plain_object(operand) && operand.get("date").is_some() => {
            compile_named(key, operand, DATE_PART, &["date"])?
        }
        DatePart => Args::Named(vec![Some(Expr::compile(operand)?), None]),
        Let => compile_let(operand)?,
        Switch => compile_switch(operand)?,
    };
    Ok(Expr::Op(spec, args))
}

fn is_plain_object(value: &Value) -> bool {
    value.as_object().is_some_and(|map| {
        !ejson::is_literal_object(value) && !map.keys().any(|k| k.starts_with('$'))
    })
}

fn compile_list(key: &str, operand: &Value, min: usize, max: usize) -> DbResult<Args> {
    let args: Vec<Expr> = match operand {
        Value::Array(items) => items.iter().map(Expr::compile).collect::<DbResult<_>>()?,
        single => vec![Expr::compile(single)?],
    };
    if args.len() < min || args.len() > max {
        let wanted = match (min, max) {
            (a, b) if a == b => a.to_string(),
            (a, ANY) => format!("at least {a}"),
            (a, b) => format!("{a} to {b}"),
        };
        return Err(DbError::invalid_param(format!(
            "expression {key} takes {wanted} argument(s), got {}",
            args.len()
        )));
    }
    Ok(Args::List(args))
}

fn compile_named(key: &str, operand: &Value, fields: &[&str], required: &[&str]) -> DbResult<Args> {
    let map = operand
        .as_object()
        .filter(|_| is_plain_object(operand))
        .ok_or_else(|| {
            DbError::invalid_param(format!("{key} takes an object of named arguments"))
        })?;
    if let Some(unknown) = map.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(DbError::invalid_param(format!(
            "{key} does not take the argument '{unknown}'"
        )));
    }
    if let Some(missing) = required.iter().find(|r| !map.contains_key(**r)) {
        return Err(DbError::invalid_param(format!(
            "{key} requires '{missing}'"
        )));
    }
    let args = fields
        .iter()
        .map(|f| map.get(*f).map(Expr::compile).transpose())
        .collect::<DbResult<_>>()?;
    // `as` names a variable: check it now.
    if let Some(Value::String(name)) = map.get("as") {
        check_variable_name(name)?;
    } else if map.contains_key("as") {
        return Err(DbError::invalid_param(format!(
            "{key}: 'as' must be a string"
        )));
    }
    Ok(Args::Named(args))
}

fn compile_let(operand: &Value) -> DbResult<Args> {
    let map = operand
        .as_object()
        .ok_or_else(|| DbError::invalid_param("$let takes {vars, in}"))?;
    if let Some(unknown) = map.keys().find(|k| *k != "vars" && *k != "in") {
        return Err(DbError::invalid_param(format!(
            "$let does not take '{unknown}'"
        )));
    }
    let vars = map
        .get("vars")
        .and_then(Value::as_object)
        .ok_or_else(|| DbError::invalid_param("$let requires an object 'vars'"))?;
    let body = map
        .get("in")
        .ok_or_else(|| DbError::invalid_param("$let requires 'in'"))?;
    let mut bindings = Vec::with_capacity(vars.len());
    for (name, value) in vars {
        check_variable_name(name)?;
        bindings.push((name.clone(), Expr::compile(value)?));
    }
    Ok(Args::Let(bindings, Box::new(Expr::compile(body)?)))
}

fn compile_switch(operand: &Value) -> DbResult<Args> {
    let map = operand
        .as_object()
        .ok_or_else(|| DbError::invalid_param("$switch takes {branches, default}"))?;
    if let Some(unknown) = map.keys().find(|k| *k != "branches" && *k != "default") {
        return Err(DbError::invalid_param(format!(
            "$switch does not take '{unknown}'"
        )));
    }
    let branches = map
        .get("branches")
        .and_then(Value::as_array)
        .ok_or_else(|| DbError::invalid_param("$switch requires an array 'branches'"))?;
    let mut compiled = Vec::with_capacity(branches.len());
    for branch in branches {
        let (Some(case), Some(then)) = (branch.get("case"), branch.get("then")) else {
            return Err(DbError::invalid_param(
                "each $switch branch needs 'case' and 'then'",
            ));
        };
        if branch.as_object().map_or(0, Map::len) != 2 {
            return Err(DbError::invalid_param(
                "a $switch branch takes only 'case' and 'then'",
            ));
        }
        compiled.push((Expr::compile(case)?, Expr::compile(then)?));
    }
    let default = map.get("default").map(Expr::compile).transpose()?;
    Ok(Args::Switch(compiled, default.map(Box::new)))
}

// ---- argument access -------------------------------------------------------------------------------

/// The `i`th argument (positional or named) if given.
pub(super) fn nth(args: &Args, i: usize) -> Option<&Expr> {
    match args {
        Args::List(items) => items.get(i),
        Args::Named(items) => items.get(i).and_then(Option::as_ref),
        _ => None,
    }
}

/// Evaluates the `i`th argument; an absent one is missing.
pub(super) fn arg(args: &Args, i: usize, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    match nth(args, i) {
        Some(e) => e.eval_in(scope),
        None => Ok(None),
    }
}

fn list(args: &Args) -> &[Expr] {
    match args {
        Args::List(items) => items,
        _ => &[],
    }
}

fn values(args: &Args, scope: &Scope<'_>) -> DbResult<Vec<Option<Value>>> {
    list(args).iter().map(|e| e.eval_in(scope)).collect()
}

pub(super) fn is_nullish(v: &Option<Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

pub(super) fn type_error(name: &str, wanted: &str, got: &Option<Value>) -> DbError {
    DbError::invalid_param(format!(
        "{name} requires {wanted}, but got {}",
        type_name(got)
    ))
}

// ---- numbers ---------------------------------------------------------------------------------------

/// A number during arithmetic: integers stay integers until they overflow or meet a float.
#[derive(Debug, Clone, Copy)]
pub(super) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub(super) fn of(n: &Number) -> Num {
        n.as_i64()
            .map(Num::Int)
            .unwrap_or_else(|| Num::Float(n.as_f64().unwrap_or(0.0)))
    }
    pub(super) fn f(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
    fn combine(
        self,
        other: Num,
        int: fn(i64, i64) -> Option<i64>,
        float: fn(f64, f64) -> f64,
    ) -> Num {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => int(a, b)
                .map(Num::Int)
                .unwrap_or(Num::Float(float(a as f64, b as f64))),
            (a, b) => Num::Float(float(a.f(), b.f())),
        }
    }
    pub(super) fn into_value(self) -> DbResult<Value> {
        match self {
            Num::Int(i) => Ok(Value::from(i)),
            Num::Float(f) => float_value(f),
        }
    }
}

/// A finite double as a JSON number (the wire has no NaN or Infinity).
pub(super) fn float_value(f: f64) -> DbResult<Value> {
    Number::from_f64(f).map(Value::Number).ok_or_else(|| {
        DbError::invalid_param("the result is not a finite number (NaN or Infinity)")
    })
}

/// The number in `v`, `Ok(None)` for null/missing, a type error otherwise.
fn number_arg(name: &str, v: &Option<Value>) -> DbResult<Option<Num>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(Num::of(n))),
        other => Err(type_error(name, "a numeric argument", other)),
    }
}

fn unary_number(
    args: &Args,
    scope: &Scope<'_>,
    name: &str,
    f: fn(Num) -> Num,
) -> DbResult<Option<Value>> {
    match number_arg(name, &arg(args, 0, scope)?)? {
        None => Ok(Some(Value::Null)),
        Some(n) => f(n).into_value().map(Some),
    }
}

fn unary_float(
    args: &Args,
    scope: &Scope<'_>,
    name: &str,
    f: fn(f64) -> DbResult<f64>,
) -> DbResult<Option<Value>> {
    match number_arg(name, &arg(args, 0, scope)?)? {
        None => Ok(Some(Value::Null)),
        Some(n) => float_value(f(n.f())?).map(Some),
    }
}

fn abs(n: Num) -> Num {
    match n {
        Num::Int(i) => i
            .checked_abs()
            .map_or(Num::Float((i as f64).abs()), Num::Int),
        Num::Float(f) => Num::Float(f.abs()),
    }
}

fn round_with(n: Num, f: fn(f64) -> f64) -> Num {
    match n {
        Num::Int(i) => Num::Int(i),
        Num::Float(x) => Num::Float(f(x)),
    }
}

fn positive_log(x: f64, name: &str, f: fn(f64) -> f64) -> DbResult<f64> {
    if x <= 0.0 {
        return Err(DbError::invalid_param(format!(
            "{name}'s argument must be a positive number, but is {x}"
        )));
    }
    Ok(f(x))
}

fn sqrt(x: f64) -> DbResult<f64> {
    if x < 0.0 {
        return Err(DbError::invalid_param(
            "$sqrt's argument must be greater than or equal to 0",
        ));
    }
    Ok(x.sqrt())
}

fn log(values: Vec<Option<Value>>) -> DbResult<Option<Value>> {
    let (Some(x), Some(base)) = (
        number_arg("$log", &values[0])?,
        number_arg("$log", &values[1])?,
    ) else {
        return Ok(Some(Value::Null));
    };
    let (x, base) = (x.f(), base.f());
    if x <= 0.0 {
        return Err(DbError::invalid_param(format!(
            "$log's argument must be a positive number, but is {x}"
        )));
    }
    if base <= 0.0 || base == 1.0 {
        return Err(DbError::invalid_param(format!(
            "$log's base must be a positive number not equal to 1, but is {base}"
        )));
    }
    float_value(x.ln() / base.ln()).map(Some)
}

fn pow(values: Vec<Option<Value>>) -> DbResult<Option<Value>> {
    let (Some(base), Some(exp)) = (
        number_arg("$pow", &values[0])?,
        number_arg("$pow", &values[1])?,
    ) else {
        return Ok(Some(Value::Null));
    };
    if base.f() == 0.0 && exp.f() < 0.0 {
        return Err(DbError::invalid_param(
            "$pow cannot take a base of 0 and a negative exponent",
        ));
    }
    if let (Num::Int(b), Num::Int(e)) = (base, exp) {
        if e >= 0 {
            if let Some(r) = u32::try_from(e).ok().and_then(|e| b.checked_pow(e)) {
                return Ok(Some(Value::from(r)));
            }
        } else if b == 1 || b == -1 {
            // Integer results stay integers: 1^-n = 1, (-1)^-n = ±1 (MongoDB).
            return Ok(Some(Value::from(if e % 2 == 0 { 1 } else { b })));
        }
    }
    float_value(base.f().powf(exp.f())).map(Some)
}

fn modulo(values: Vec<Option<Value>>) -> DbResult<Option<Value>> {
    let (Some(a), Some(b)) = (
        number_arg("$mod", &values[0])?,
        number_arg("$mod", &values[1])?,
    ) else {
        return Ok(Some(Value::Null));
    };
    if b.f() == 0.0 {
        return Err(DbError::invalid_param("$mod by 0 is not allowed"));
    }
    let r = match (a, b) {
        (Num::Int(x), Num::Int(y)) => Num::Int(x.wrapping_rem(y)),
        (x, y) => Num::Float(x.f() % y.f()),
    };
    r.into_value().map(Some)
}

fn trunc(values: Vec<Option<Value>>) -> DbResult<Option<Value>> {
    let Some(n) = number_arg("$trunc", &values[0])? else {
        return Ok(Some(Value::Null));
    };
    let place = match values.get(1) {
        None => 0,
        Some(v) => match number_arg("$trunc", v)? {
            None => return Ok(Some(Value::Null)),
            Some(Num::Int(p)) if (-20..=100).contains(&p) => p,
            Some(Num::Float(p)) if p.fract() == 0.0 && (-20.0..=100.0).contains(&p) => p as i64,
            Some(_) => {
                return Err(DbError::invalid_param(
                    "$trunc's place must be an integer between -20 and 100",
                ))
            }
        },
    };
    let out = match n {
        Num::Int(i) if place >= 0 => Num::Int(i),
        Num::Int(i) => {
            let scale = 10i64.checked_pow((-place) as u32).unwrap_or(i64::MAX);
            Num::Int(i / scale * scale)
        }
        Num::Float(x) => {
            let scale = 10f64.powi(place as i32);
            let t = (x * scale).trunc() / scale;
            Num::Float(if t.is_finite() { t } else { x })
        }
    };
    out.into_value().map(Some)
}

fn add(values: Vec<Option<Value>>) -> DbResult<Option<Value>> {
    let mut acc = Num::Int(0);
    let mut date = false;
    for v in &values {
        match v {
            None | Some(Value::Null) => return Ok(Some(Value::Null)),
            Some(Value::Number(n)) => acc = acc.combine(Num::of(n), i64::checked_add, |a, b| a + b),
            Some(d) if ejson::date_number(d).is_some() => {
                if date {
                    return Err(DbError::invalid_param(
                        "only one date allowed in an $add expression",
                    ));
                }
                date = true;
                let ms = Num::of(ejson::date_number(d).expect("date"));
                acc = acc.combine(ms, i64::checked_add, |a, b| a + b);
            }
            other => return Err(type_error("$add", "numeric or date arguments", other)),
        }
    }
    if date {
        return Ok(Some(ejson::date_value(acc.f().round() as i64)));
    }
    acc.into_value().map(Some)
}

fn multiply(values: Vec<Option<Value>>) -> DbResult<Option<Value>> {
    let mut acc = Num::Int(1);
    for v in &values {
        match number_arg("$multiply", v)? {
            None => return Ok(Some(Value::Null)),
            Some(n) => acc = acc.combine(n, i64::checked_mul, |a, b| a * b),
        }
    }
    acc.into_value().map(Some)
}

fn subtract(values: Vec<Option<Value>>) -> DbResult<Option<Value>> {
    let (Some(a), Some(b)) = (&values[0], &values[1]) else {
        return Ok(Some(Value::Null));
    };
    if a.is_null() || b.is_null() {
        return Ok(Some(Value::Null));
    }
    let minus =
        |x: &Number, y: &Number| Num::of(x).combine(Num::of(y), i64::checked_sub, |p, q| p - q);
    match (a, ejson::date_number(a), b, ejson::date_number(b)) {
        (Value::Number(x), _, Value::Number(y), _) => minus(x, y).into_value().map(Some),
        (_, Some(x), _, Some(y)) => minus(x, y).into_value().map(Some),
        (_, Some(x), Value::Number(y), _) => {
            Ok(Some(ejson::date_value(minus(x, y).f().round() as i64)))
        }
        _ => Err(DbError::invalid_param(format!(
            "can't $subtract {} from {}",
            type_name(&Some(b.clone())),
            type_name(&Some(a.clone()))
        ))),
    }
}

fn divide(values: Vec<Option<Value>>) -> DbResult<Option<Value>> {
    let (Some(x), Some(y)) = (
        number_arg("$divide", &values[0])?,
        number_arg("$divide", &values[1])?,
    ) else {
        return Ok(Some(Value::Null));
    };
    if y.f() == 0.0 {
        return Err(DbError::invalid_param("can't $divide by zero"));
    }
    float_value(x.f() / y.f()).map(Some)
}

// ---- comparison, logic, conditionals ---------------------------------------------------------------

fn compare(args: &Args, scope: &Scope<'_>, out: fn(Ordering) -> Value) -> DbResult<Option<Value>> {
    let (a, b) = (arg(args, 0, scope)?, arg(args, 1, scope)?);
    Ok(Some(out(compare_optional(&a, &b))))
}

fn and(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    for e in list(args) {
        if !truthy(&e.eval_in(scope)?) {
            return Ok(Some(Value::Bool(false)));
        }
    }
    Ok(Some(Value::Bool(true)))
}

fn or(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    for e in list(args) {
        if truthy(&e.eval_in(scope)?) {
            return Ok(Some(Value::Bool(true)));
        }
    }
    Ok(Some(Value::Bool(false)))
}

fn cond(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    if truthy(&arg(args, 0, scope)?) {
        arg(args, 1, scope)
    } else {
        arg(args, 2, scope)
    }
}

fn if_null(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let v = arg(args, 0, scope)?;
    if is_nullish(&v) {
        arg(args, 1, scope)
    } else {
        Ok(v)
    }
}

fn switch(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let Args::Switch(branches, default) = args else {
        return Ok(None);
    };
    for (case, then) in branches {
        if truthy(&case.eval_in(scope)?) {
            return then.eval_in(scope);
        }
    }
    match default {
        Some(e) => e.eval_in(scope),
        None => Err(DbError::invalid_param(
            "$switch could not find a matching branch for an input, and no default was specified",
        )),
    }
}

fn let_in(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let Args::Let(vars, body) = args else {
        return Ok(None);
    };
    // All variables are evaluated in the outer scope, then bound together.
    let values = vars
        .iter()
        .map(|(name, e)| Ok((name.clone(), e.eval_in(scope)?.unwrap_or(Value::Null))))
        .collect::<DbResult<Vec<_>>>()?;
    bind_all(&values, body, scope)
}

fn bind_all(values: &[(String, Value)], body: &Expr, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    match values.split_first() {
        None => body.eval_in(scope),
        Some(((name, value), rest)) => {
            let binding = Binding::new(name, value.clone(), scope);
            let inner = Scope {
                frame: Some(&binding),
                ..*scope
            };
            bind_all(rest, body, &inner)
        }
    }
}

// ---- arrays ----------------------------------------------------------------------------------------

/// The array in `v`: `Ok(None)` for null/missing, a type error otherwise.
fn array_arg(name: &str, v: Option<Value>) -> DbResult<Option<Vec<Value>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        other => Err(type_error(name, "an array argument", &other)),
    }
}

fn integer_arg(name: &str, v: &Option<Value>) -> DbResult<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match Num::of(n) {
            Num::Int(i) => Ok(Some(i)),
            Num::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Some(f as i64)),
            _ => Err(type_error(name, "an integral numeric argument", v)),
        },
        other => Err(type_error(name, "an integral numeric argument", other)),
    }
}

fn array_elem_at(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let (array, index) = (arg(args, 0, scope)?, arg(args, 1, scope)?);
    if is_nullish(&array) || is_nullish(&index) {
        return Ok(Some(Value::Null));
    }
    let items = array_arg("$arrayElemAt", array)?.unwrap_or_default();
    let Some(i) = integer_arg("$arrayElemAt", &index)? else {
        return Ok(Some(Value::Null));
    };
    let at = if i < 0 { items.len() as i64 + i } else { i };
    Ok(usize::try_from(at)
        .ok()
        .and_then(|at| items.into_iter().nth(at)))
}

fn array_end(
    args: &Args,
    scope: &Scope<'_>,
    name: &str,
    pick: fn(&[Value]) -> Option<&Value>,
) -> DbResult<Option<Value>> {
    match array_arg(name, arg(args, 0, scope)?)? {
        None => Ok(Some(Value::Null)),
        Some(items) => Ok(pick(&items).cloned()),
    }
}

fn array_to_object(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let Some(items) = array_arg("$arrayToObject", arg(args, 0, scope)?)? else {
        return Ok(Some(Value::Null));
    };
    let mut out = Map::new();
    for item in items {
        let (k, v) =
            match &item {
                Value::Array(pair) if pair.len() == 2 => (pair[0].clone(), pair[1].clone()),
                Value::Object(map)
                    if map.len() == 2 && map.contains_key("k") && map.contains_key("v") =>
                {
                    (map["k"].clone(), map["v"].clone())
                }
                _ => return Err(DbError::invalid_param(
                    "$arrayToObject requires an array of [key, value] pairs or {k, v} documents",
                )),
            };
        let Value::String(k) = k else {
            return Err(DbError::invalid_param(
                "$arrayToObject requires string keys",
            ));
        };
        if k.contains('\0') {
            return Err(DbError::invalid_param(
                "$arrayToObject keys may not contain NUL",
            ));
        }
        out.insert(k, v);
    }
    Ok(Some(Value::Object(out)))
}

fn object_to_array(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    match arg(args, 0, scope)? {
        None | Some(Value::Null) => Ok(Some(Value::Null)),
        Some(Value::Object(map)) if !ejson::is_literal_object(&Value::Object(map.clone())) => {
            Ok(Some(Value::Array(
                map.into_iter()
                    .map(|(k, v)| {
                        let mut pair = Map::new();
                        pair.insert("k".into(), Value::String(k));
                        pair.insert("v".into(), v);
                        Value::Object(pair)
                    })
                    .collect(),
            )))
        }
        other => Err(type_error("$objectToArray", "a document argument", &other)),
    }
}

fn concat_arrays(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let mut out = Vec::new();
    for v in values(args, scope)? {
        match array_arg("$concatArrays", v)? {
            None => return Ok(Some(Value::Null)),
            Some(items) => out.extend(items),
        }
        if out.len() > MAX_ARRAY_ELEMENTS {
            return Err(too_large("$concatArrays"));
        }
    }
    Ok(Some(Value::Array(out)))
}

fn variable_name(args: &Args, index: usize, default: &'static str) -> String {
    match nth(args, index) {
        Some(Expr::Literal(Value::String(name))) => name.clone(),
        _ => default.to_owned(),
    }
}

fn filter(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let Some(items) = array_arg("$filter", arg(args, 0, scope)?)? else {
        return Ok(Some(Value::Null));
    };
    let name = variable_name(args, 1, "this");
    let cond = nth(args, 2).expect("required");
    let mut out = Vec::new();
    for item in items {
        let binding = Binding::new(&name, item, scope);
        if truthy(&eval_bound(cond, scope, &binding)?) {
            out.push(binding.value);
        }
    }
    Ok(Some(Value::Array(out)))
}

fn map(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let Some(items) = array_arg("$map", arg(args, 0, scope)?)? else {
        return Ok(Some(Value::Null));
    };
    let name = variable_name(args, 1, "this");
    let body = nth(args, 2).expect("required");
    let out = items
        .into_iter()
        .map(|item| {
            let binding = Binding::new(&name, item, scope);
            Ok(eval_bound(body, scope, &binding)?.unwrap_or(Value::Null))
        })
        .collect::<DbResult<_>>()?;
    Ok(Some(Value::Array(out)))
}

fn reduce(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let Some(items) = array_arg("$reduce", arg(args, 0, scope)?)? else {
        return Ok(Some(Value::Null));
    };
    let mut acc = arg(args, 1, scope)?;
    let body = nth(args, 2).expect("required");
    for item in items {
        let value = Binding::new("value", acc.take().unwrap_or(Value::Null), scope);
        let this = Binding {
            name: "this",
            value: item,
            parent: Some(&value),
        };
        acc = eval_bound(body, scope, &this)?;
    }
    Ok(Some(acc.unwrap_or(Value::Null)))
}

fn in_array(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let needle = arg(args, 0, scope)?;
    match arg(args, 1, scope)? {
        Some(Value::Array(items)) => {
            Ok(Some(Value::Bool(items.iter().any(|x| {
                compare_optional(&Some(x.clone()), &needle) == Ordering::Equal
            }))))
        }
        other => Err(type_error("$in", "an array as its second argument", &other)),
    }
}

/// `[start, end)` bounds of `$indexOf*` after the optional arguments.
fn search_bounds(name: &str, rest: &[Option<Value>], len: usize) -> DbResult<(usize, usize)> {
    let bound = |i: usize, default: usize| -> DbResult<usize> {
        match rest.get(i) {
            None => Ok(default),
            Some(v) => match integer_arg(name, v)? {
                Some(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => Err(DbError::invalid_param(format!(
                    "{name}'s start and end must be non-negative integers"
                ))),
            },
        }
    };
    Ok((bound(0, 0)?, bound(1, len)?.min(len)))
}

fn index_of_array(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let all = values(args, scope)?;
    let Some(items) = array_arg("$indexOfArray", all[0].clone())? else {
        return Ok(Some(Value::Null));
    };
    let (start, end) = search_bounds("$indexOfArray", &all[2..], items.len())?;
    let needle = &all[1];
    let found = (start..end)
        .find(|&i| compare_optional(&Some(items[i].clone()), needle) == Ordering::Equal);
    Ok(Some(Value::from(found.map_or(-1, |i| i as i64))))
}

fn range(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let all = values(args, scope)?;
    let int = |v: &Option<Value>| -> DbResult<i64> {
        match integer_arg("$range", v)? {
            Some(n) if i32::try_from(n).is_ok() => Ok(n),
            _ => Err(type_error("$range", "32-bit integer arguments", v)),
        }
    };
    let (start, end) = (int(&all[0])?, int(&all[1])?);
    let step = match all.get(2) {
        Some(v) => int(v)?,
        None => 1,
    };
    if step == 0 {
        return Err(DbError::invalid_param(
            "$range requires a non-zero step value",
        ));
    }
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < end) || (step < 0 && i > end) {
        if out.len() >= MAX_ARRAY_ELEMENTS {
            return Err(too_large("$range"));
        }
        out.push(Value::from(i));
        i += step;
    }
    Ok(Some(Value::Array(out)))
}

fn reverse_array(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    match array_arg("$reverseArray", arg(args, 0, scope)?)? {
        None => Ok(Some(Value::Null)),
        Some(mut items) => {
            items.reverse();
            Ok(Some(Value::Array(items)))
        }
    }
}

fn size(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    match arg(args, 0, scope)? {
        Some(Value::Array(items)) => Ok(Some(Value::from(items.len()))),
        other => Err(type_error("$size", "an array argument", &other)),
    }
}

fn slice(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let all = values(args, scope)?;
    if all.iter().any(is_nullish) {
        return Ok(Some(Value::Null));
    }
    let items = array_arg("$slice", all[0].clone())?.unwrap_or_default();
    let len = items.len() as i64;
    let (start, count) = if all.len() == 2 {
        let n = integer_arg("$slice", &all[1])?.unwrap_or(0);
        if n >= 0 {
            (0, n)
        } else {
            (len.saturating_add(n).max(0), n.saturating_neg())
        }
    } else {
        let pos = integer_arg("$slice", &all[1])?.unwrap_or(0);
        let n = integer_arg("$slice", &all[2])?.unwrap_or(0);
        if n <= 0 {
            return Err(DbError::invalid_param(
                "$slice's third argument must be a positive number",
            ));
        }
        let start = if pos < 0 {
            len.saturating_add(pos).max(0)
        } else {
            pos.min(len)
        };
        (start, n)
    };
    Ok(Some(Value::Array(
        items
            .into_iter()
            .skip(start as usize)
            .take(count.max(0) as usize)
            .collect(),
    )))
}

fn zip(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let inputs = match arg(args, 0, scope)? {
        Some(Value::Array(inputs)) => inputs,
        other => return Err(type_error("$zip", "an array of arrays as 'inputs'", &other)),
    };
    let mut arrays = Vec::with_capacity(inputs.len());
    for input in inputs {
        match input {
            Value::Null => return Ok(Some(Value::Null)),
            Value::Array(items) => arrays.push(items),
            other => return Err(type_error("$zip", "arrays in 'inputs'", &Some(other))),
        }
    }
    let longest = match arg(args, 1, scope)? {
        None => false,
        Some(Value::Bool(b)) => b,
        other => return Err(type_error("$zip", "a boolean 'useLongestLength'", &other)),
    };
    let defaults =
        match arg(args, 2, scope)? {
            None => None,
            Some(Value::Array(d)) if d.len() == arrays.len() && longest => Some(d),
            Some(_) => return Err(DbError::invalid_param(
                "$zip's 'defaults' must be an array as long as 'inputs' and needs useLongestLength",
            )),
        };
    let lengths = arrays.iter().map(Vec::len);
    let n = if longest {
        lengths.max()
    } else {
        lengths.min()
    }
    .unwrap_or(0);
    let out = (0..n)
        .map(|i| {
            Value::Array(
                arrays
                    .iter()
                    .enumerate()
                    .map(|(j, a)| {
                        a.get(i).cloned().unwrap_or_else(|| {
                            defaults.as_ref().map_or(Value::Null, |d| d[j].clone())
                        })
                    })
                    .collect(),
            )
        })
        .collect();
    Ok(Some(Value::Array(out)))
}

// ---- sets ------------------------------------------------------------------------------------------

fn elements_truth(
    args: &Args,
    scope: &Scope<'_>,
    name: &str,
    all: bool,
) -> DbResult<Option<Value>> {
    let items = match arg(args, 0, scope)? {
        Some(Value::Array(items)) => items,
        other => return Err(type_error(name, "an array argument", &other)),
    };
    let truth = |v: &Value| truthy(&Some(v.clone()));
    Ok(Some(Value::Bool(if all {
        items.iter().all(truth)
    } else {
        items.iter().any(truth)
    })))
}

fn distinct(items: impl IntoIterator<Item = Value>, into: &mut Vec<Value>) {
    for v in items {
        if !into.iter().any(|x| values_equal(x, &v)) {
            into.push(v);
        }
    }
}

fn contains(set: &[Value], v: &Value) -> bool {
    set.iter().any(|x| values_equal(x, v))
}

fn set_arrays(name: &str, all: Vec<Option<Value>>) -> DbResult<Option<Vec<Vec<Value>>>> {
    let mut out = Vec::with_capacity(all.len());
    for v in all {
        match array_arg(name, v)? {
            None => return Ok(None),
            Some(items) => out.push(items),
        }
    }
    Ok(Some(out))
}

fn set_union(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let Some(arrays) = set_arrays("$setUnion", values(args, scope)?)? else {
        return Ok(Some(Value::Null));
    };
    let mut out = Vec::new();
    for a in arrays {
        distinct(a, &mut out);
    }
    Ok(Some(Value::Array(out)))
}

fn set_intersection(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let Some(arrays) = set_arrays("$setIntersection", values(args, scope)?)? else {
        return Ok(Some(Value::Null));
    };
    let mut iter = arrays.into_iter();
    let mut out = Vec::new();
    distinct(iter.next().unwrap_or_default(), &mut out);
    for a in iter {
        out.retain(|v| contains(&a, v));
    }
    Ok(Some(Value::Array(out)))
}

fn set_difference(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let Some(mut arrays) = set_arrays("$setDifference", values(args, scope)?)? else {
        return Ok(Some(Value::Null));
    };
    let second = arrays.pop().unwrap_or_default();
    let mut out = Vec::new();
    distinct(arrays.pop().unwrap_or_default(), &mut out);
    out.retain(|v| !contains(&second, v));
    Ok(Some(Value::Array(out)))
}

fn strict_set_arrays(name: &str, all: Vec<Option<Value>>) -> DbResult<Vec<Vec<Value>>> {
    all.into_iter()
        .map(|v| match v {
            Some(Value::Array(items)) => Ok(items),
            other => Err(type_error(name, "array arguments", &other)),
        })
        .collect()
}

fn set_equals(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let arrays = strict_set_arrays("$setEquals", values(args, scope)?)?;
    let first = &arrays[0];
    let equal = arrays[1..].iter().all(|other| {
        first.iter().all(|v| contains(other, v)) && other.iter().all(|v| contains(first, v))
    });
    Ok(Some(Value::Bool(equal)))
}

fn set_is_subset(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let arrays = strict_set_arrays("$setIsSubset", values(args, scope)?)?;
    Ok(Some(Value::Bool(
        arrays[0].iter().all(|v| contains(&arrays[1], v)),
    )))
}

// ---- strings ---------------------------------------------------------------------------------------

/// The string in `v`: `Ok(None)` for null/missing, a type error otherwise.
fn string_arg(name: &str, v: Option<Value>) -> DbResult<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        other => Err(type_error(name, "string arguments", &other)),
    }
}

fn concat(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let mut out = String::new();
    for v in values(args, scope)? {
        match string_arg("$concat", v)? {
            None => return Ok(Some(Value::Null)),
            Some(s) => out.push_str(&s),
        }
        if out.len() > MAX_STRING_BYTES {
            return Err(too_large("$concat"));
        }
    }
    Ok(Some(Value::String(out)))
}

fn index_of_str(
    args: &Args,
    scope: &Scope<'_>,
    name: &str,
    code_points: bool,
) -> DbResult<Option<Value>> {
    let all = values(args, scope)?;
    let Some(haystack) = string_arg(name, all[0].clone())? else {
        return Ok(Some(Value::Null));
    };
    let needle = match &all[1] {
        Some(Value::String(s)) => s.clone(),
        other => return Err(type_error(name, "a string as its second argument", other)),
    };
    let units: Vec<&str> = if code_points {
        haystack
            .char_indices()
            .map(|(i, c)| &haystack[i..i + c.len_utf8()])
            .collect()
    } else {
        Vec::new()
    };
    let len = if code_points {
        units.len()
    } else {
        haystack.len()
    };
    let (start, end) = search_bounds(name, &all[2..], len)?;
    if start > end {
        return Ok(Some(Value::from(-1)));
    }
    let found = if code_points {
        let needle_cp = needle.chars().count();
        (start..=end.saturating_sub(needle_cp))
            .filter(|&i| i + needle_cp <= end)
            .find(|&i| units[i..i + needle_cp].concat() == needle)
    } else {
        let bytes = haystack.as_bytes();
        let n = needle.len();
        (start..=end.saturating_sub(n))
            .filter(|&i| i + n <= end)
            .find(|&i| &bytes[i..i + n] == needle.as_bytes())
    };
    Ok(Some(Value::from(found.map_or(-1, |i| i as i64))))
}

fn trim(
    args: &Args,
    scope: &Scope<'_>,
    name: &str,
    left: bool,
    right: bool,
) -> DbResult<Option<Value>> {
    let Some(input) = string_arg(name, arg(args, 0, scope)?)? else {
        return Ok(Some(Value::Null));
    };
    let chars: Option<Vec<char>> = match nth(args, 1) {
        None => None,
        Some(_) => match string_arg(name, arg(args, 1, scope)?)? {
            None => return Ok(Some(Value::Null)),
            Some(c) => Some(c.chars().collect()),
        },
    };
    // MongoDB's default set: NUL, the ASCII whitespace and the Unicode space separators.
    let strip = |c: char| match &chars {
        Some(set) => set.contains(&c),
        None => c == '\0' || c.is_whitespace(),
    };
    let mut s = input.as_str();
    if left {
        s = s.trim_start_matches(strip);
    }
    if right {
        s = s.trim_end_matches(strip);
    }
    Ok(Some(Value::String(s.to_owned())))
}

fn split(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let all = values(args, scope)?;
    let Some(input) = string_arg("$split", all[0].clone())? else {
        return Ok(Some(Value::Null));
    };
    let delimiter = match &all[1] {
        Some(Value::String(d)) if !d.is_empty() => d.clone(),
        Some(Value::String(_)) => {
            return Err(DbError::invalid_param(
                "$split requires a non-empty separator",
            ))
        }
        None | Some(Value::Null) => return Ok(Some(Value::Null)),
        other => return Err(type_error("$split", "a string separator", other)),
    };
    Ok(Some(Value::Array(
        input
            .split(delimiter.as_str())
            .map(|p| Value::String(p.to_owned()))
            .collect(),
    )))
}

fn strcasecmp(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let text = |v: Option<Value>| -> DbResult<String> {
        // null and missing compare as the empty string (MongoDB coerces them).
        Ok(coerce_to_string("$strcasecmp", v)?
            .unwrap_or_default()
            .to_ascii_lowercase())
    };
    let (a, b) = (text(arg(args, 0, scope)?)?, text(arg(args, 1, scope)?)?);
    Ok(Some(Value::from(a.as_bytes().cmp(b.as_bytes()) as i8)))
}

fn str_len(
    args: &Args,
    scope: &Scope<'_>,
    name: &str,
    len: fn(&str) -> usize,
) -> DbResult<Option<Value>> {
    match arg(args, 0, scope)? {
        Some(Value::String(s)) => Ok(Some(Value::from(len(&s)))),
        other => Err(type_error(name, "a string argument", &other)),
    }
}

/// String coercion of `$substr*`, `$toLower`, `$strcasecmp`: numbers and dates print, null is "".
fn coerce_to_string(name: &str, v: Option<Value>) -> DbResult<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(number_to_string(&n))),
        Some(d) if ejson::date_number(&d).is_some() => Ok(Some(date::iso_string(
            ejson::date_number(&d).and_then(Number::as_i64).unwrap_or(0),
        ))),
        other => Err(type_error(
            name,
            "a string, number or date argument",
            &other,
        )),
    }
}

fn substr(
    args: &Args,
    scope: &Scope<'_>,
    name: &str,
    code_points: bool,
) -> DbResult<Option<Value>> {
    let all = values(args, scope)?;
    let input = coerce_to_string(name, all[0].clone())?.unwrap_or_default();
    let start = integer_arg(name, &all[1])?.unwrap_or(0);
    let count = integer_arg(name, &all[2])?.unwrap_or(0);
    if code_points {
        if start < 0 {
            return Err(DbError::invalid_param(format!(
                "{name}: starting index must be non-negative"
            )));
        }
        if count < 0 {
            return Err(DbError::invalid_param(format!(
                "{name}: length must be non-negative"
            )));
        }
        let out: String = input
            .chars()
            .skip(start as usize)
            .take(count as usize)
            .collect();
        return Ok(Some(Value::String(out)));
    }
    // Bytes: a negative start gives ""; a negative length means "to the end".
    if start < 0 || start as usize >= input.len() {
        return Ok(Some(Value::String(String::new())));
    }
    let start = start as usize;
    let end = if count < 0 {
        input.len()
    } else {
        start.saturating_add(count as usize).min(input.len())
    };
    match input.get(start..end) {
        Some(s) => Ok(Some(Value::String(s.to_owned()))),
        None => Err(DbError::invalid_param(format!(
            "{name}: invalid range, it splits a UTF-8 character"
        ))),
    }
}

fn change_case(
    args: &Args,
    scope: &Scope<'_>,
    name: &str,
    f: fn(&str) -> String,
) -> DbResult<Option<Value>> {
    let s = coerce_to_string(name, arg(args, 0, scope)?)?.unwrap_or_default();
    Ok(Some(Value::String(f(&s))))
}

/// Shortest round-trip text of a number (`2` for 2.0, as MongoDB's `$toString` prints doubles).
pub(super) fn number_to_string(n: &Number) -> String {
    match Num::of(n) {
        Num::Int(i) => i.to_string(),
        Num::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Num::Float(f) => format!("{f}"),
    }
}

// ---- objects ---------------------------------------------------------------------------------------

fn merge_objects(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let mut out = Map::new();
    let mut merge = |v: Option<Value>| -> DbResult<()> {
        match v {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    out.insert(k, v);
                }
                Ok(())
            }
            other => Err(type_error("$mergeObjects", "document arguments", &other)),
        }
    };
    let vals = values(args, scope)?;
    if vals.len() == 1 {
        // One operand that is an array of documents merges its elements.
        if let Some(Value::Array(items)) = &vals[0] {
            for item in items.clone() {
                merge(Some(item))?;
            }
            return Ok(Some(Value::Object(out)));
        }
    }
    for v in vals {
        merge(v)?;
    }
    Ok(Some(Value::Object(out)))
}

// ---- type conversion -------------------------------------------------------------------------------

fn convert(args: &Args, scope: &Scope<'_>) -> DbResult<Option<Value>> {
    let input = arg(args, 0, scope)?;
    let to = match arg(args, 1, scope)? {
        Some(Value::String(t)) => t,
        Some(Value::Number(n)) => match n.as_f64().map(|f| f as i64) {
            Some(1) => "double".into(),
            Some(2) => "string".into(),
            Some(7) => "objectId".into(),
            Some(8) => "bool".into(),
            Some(9) => "date".into(),
            Some(16) => "int".into(),
            Some(18) => "long".into(),
            Some(19) => "decimal".into(),
            _ => {
                return Err(DbError::invalid_param(format!(
                    "$convert: unknown type code {n}"
                )))
            }
        },
        other => {
            return Err(type_error(
                "$convert",
                "a type name or code as 'to'",
                &other,
            ))
        }
    };
    if is_nullish(&input) {
        return match nth(args, 3) {
            Some(e) => e.eval_in(scope),
            None => Ok(Some(Value::Null)),
        };
    }
    match convert_value(input, &to) {
        Ok(v) => Ok(v),
        Err(err) => match nth(args, 2) {
            Some(e) => e.eval_in(scope),
            None => Err(err),
        },
    }
}

fn convert_to(args: &Args, scope: &Scope<'_>, to: &str) -> DbResult<Option<Value>> {
    let input = arg(args, 0, scope)?;
    if is_nullish(&input) {
        return Ok(Some(Value::Null));
    }
    convert_value(input, to)
}

fn conversion_error(v: &Value, to: &str) -> DbError {
    DbError::invalid_param(format!(
        "Unsupported conversion from {} to {to} in $convert with no onError value",
        type_name(&Some(v.clone()))
    ))
}

fn convert_value(input: Option<Value>, to: &str) -> DbResult<Option<Value>> {
    let v = input.unwrap_or(Value::Null);
    let date_ms = ejson::date_number(&v).map(Num::of);
    let out = match to {
        "double" | "decimal" => match &v {
            Value::Number(n) => float_value(Num::of(n).f())?,
            Value::Bool(b) => float_value(if *b { 1.0 } else { 0.0 })?,
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if !s.trim().is_empty() && s.trim() == s => float_value(f)?,
                _ => {
                    return Err(DbError::invalid_param(format!(
                        "Failed to parse number '{s}' in $convert"
                    )))
                }
            },
            _ if date_ms.is_some() => float_value(date_ms.expect("date").f())?,
            _ => return Err(conversion_error(&v, to)),
        },
        "int" | "long" => {
            let wide = match &v {
                Value::Number(n) => match Num::of(n) {
                    Num::Int(i) => i,
                    Num::Float(f) if f.is_finite() && f.trunc().abs() < 9.2e18 => f.trunc() as i64,
                    Num::Float(f) => {
                        return Err(DbError::invalid_param(format!(
                            "Conversion would overflow target type in $convert with no onError value: {f}"
                        )))
                    }
                },
                Value::Bool(b) => i64::from(*b),
                Value::String(s) => s.parse::<i64>().map_err(|_| {
                    DbError::invalid_param(format!("Failed to parse number '{s}' in $convert"))
                })?,
                _ if date_ms.is_some() && to == "long" => date_ms.expect("date").f() as i64,
                _ => return Err(conversion_error(&v, to)),
            };
            if to == "int" && i32::try_from(wide).is_err() {
                return Err(DbError::invalid_param(format!(
                    "Conversion would overflow target type in $convert with no onError value: {wide}"
                )));
            }
            Value::from(wide)
        }
        "bool" => match &v {
            Value::Bool(b) => Value::Bool(*b),
            Value::Number(n) => Value::Bool(n.as_f64() != Some(0.0)),
            _ => Value::Bool(true),
        },
        "string" => match &v {
            Value::String(s) => Value::String(s.clone()),
            Value::Number(n) => Value::String(number_to_string(n)),
            Value::Bool(b) => Value::String(b.to_string()),
            _ if date_ms.is_some() => {
                Value::String(date::iso_string(date_ms.expect("date").f() as i64))
            }
            _ => return Err(conversion_error(&v, to)),
        },
        "date" => match &v {
            _ if date_ms.is_some() => v.clone(),
            Value::Number(n) => ejson::date_value(Num::of(n).f() as i64),
            Value::String(s) => match date::parse_iso(s) {
                Some(ms) => ejson::date_value(ms),
                None => {
                    return Err(DbError::invalid_param(format!(
                        "Error parsing date string '{s}' in $convert"
                    )))
                }
            },
            _ => return Err(conversion_error(&v, to)),
        },
        "objectId" => match &v {
            // Documents keep ObjectIds as their 24-hex-digit strings (the wire has no ObjectId type).
            Value::String(s) if s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Value::String(s.to_ascii_lowercase())
            }
            Value::String(s) => {
                return Err(DbError::invalid_param(format!(
                    "Failed to parse objectId '{s}' in $convert with no onError value"
                )))
            }
            _ => return Err(conversion_error(&v, to)),
        },
        other => {
            return Err(DbError::invalid_param(format!(
                "$convert: unknown target type '{other}'"
            )))
        }
    };
    Ok(Some(out))
}

// ---- accumulators as expressions -------------------------------------------------------------------

fn accumulate(args: &Args, scope: &Scope<'_>, kind: AccumulatorKind) -> DbResult<Option<Value>> {
    let vals = values(args, scope)?;
    let mut acc = Accumulator::new(kind);
    // One operand that is an array: the accumulator runs over its elements (MongoDB 3.2+).
    if vals.len() == 1 {
        if let Some(Value::Array(items)) = &vals[0] {
            for item in items {
                acc.add(Some(item.clone()))?;
            }
            return Ok(Some(acc.finish()));
        }
    }
    for v in vals {
        // With several operands, arrays are plain (non-numeric) values.
        acc.add(v)?;
    }
    Ok(Some(acc.finish()))
}
