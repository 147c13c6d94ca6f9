//! The aggregation-expression subset `$expr` needs to compare fields with each other:
//! `$eq $ne $gt $gte $lt $lte $cmp $and $or $not $add $subtract $multiply $divide $ifNull $size $literal`,
//! field paths `"$a.b"`, `"$$ROOT"`/`"$$CURRENT"`, and literals (arrays and objects evaluated inside).

use crate::ejson;
use crate::error::{DbError, DbResult};
use crate::value::compare_values;
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// A compiled aggregation expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A constant.
    Literal(Value),
    /// `"$a.b"` (empty path = the whole document).
    Field(Vec<String>),
    /// `[e1, e2]`.
    Array(Vec<Expr>),
    /// `{k: e}`.
    Object(Vec<(String, Expr)>),
    /// `{$op: [args]}`.
    Op(Operator, Vec<Expr>),
}

/// The supported expression operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `$eq`
    Eq,
    /// `$ne`
    Ne,
    /// `$gt`
    Gt,
    /// `$gte`
    Gte,
    /// `$lt`
    Lt,
    /// `$lte`
    Lte,
    /// `$cmp`
    Cmp,
    /// `$and`
    And,
    /// `$or`
    Or,
    /// `$not`
    Not,
    /// `$add`
    Add,
    /// `$subtract`
    Subtract,
    /// `$multiply`
    Multiply,
    /// `$divide`
    Divide,
    /// `$ifNull`
    IfNull,
    /// `$size`
    Size,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "$eq" => Operator::Eq,
            "$ne" => Operator::Ne,
            "$gt" => Operator::Gt,
            "$gte" => Operator::Gte,
            "$lt" => Operator::Lt,
            "$lte" => Operator::Lte,
            "$cmp" => Operator::Cmp,
            "$and" => Operator::And,
            "$or" => Operator::Or,
            "$not" => Operator::Not,
            "$add" => Operator::Add,
            "$subtract" => Operator::Subtract,
            "$multiply" => Operator::Multiply,
            "$divide" => Operator::Divide,
            "$ifNull" => Operator::IfNull,
            "$size" => Operator::Size,
            _ => return None,
        })
    }

    /// Allowed argument counts (min, max).
    fn arity(self) -> (usize, usize) {
        use Operator::*;
        match self {
            Eq | Ne | Gt | Gte | Lt | Lte | Cmp | Subtract | Divide => (2, 2),
            Not | Size => (1, 1),
            And | Or | Add | Multiply => (0, usize::MAX),
            IfNull => (2, usize::MAX),
        }
    }
}

impl Expr {
    /// Compiles an expression; unknown operators are `DATABASE_INVALID_OPERRATOR`.
    pub fn compile(value: &Value) -> DbResult<Expr> {
        match value {
            Value::String(s) if s.starts_with("$$") => {
                let mut parts = s[2..].split('.');
                match parts.next() {
                    Some("ROOT") | Some("CURRENT") => {
                        Ok(Expr::Field(parts.map(str::to_owned).collect()))
                    }
                    _ => Err(DbError::invalid_param(format!(
                        "unknown variable in $expr: {s}"
                    ))),
                }
            }
            Value::String(s) if s.starts_with('$') => {
                let path: Vec<String> = s[1..].split('.').map(str::to_owned).collect();
                if path.iter().any(String::is_empty) {
                    return Err(DbError::invalid_param(format!(
                        "invalid field path in $expr: {s}"
                    )));
                }
                Ok(Expr::Field(path))
            }
            Value::Array(items) => Ok(Expr::Array(
                items.iter().map(Expr::compile).collect::<DbResult<_>>()?,
            )),
            Value::Object(map) if ejson::is_literal_object(value) => {
                let _ = map;
                Ok(Expr::Literal(value.clone()))
            }
            Value::Object(map) => match map.iter().next() {
                Some((key, operand)) if key.starts_with('$') => {
                    if map.len() != 1 {
                        return Err(DbError::invalid_param(format!(
                            "an expression object with operator {key} must have exactly one field"
                        )));
                    }
                    if key == "$literal" {
                        return Ok(Expr::Literal(operand.clone()));
                    }
                    let op = Operator::parse(key).ok_or_else(|| {
                        DbError::invalid_operator(format!(
                            "unknown or unsupported expression operator: {key}"
                        ))
                    })?;
                    let args: Vec<Expr> = match operand {
                        Value::Array(items) => {
                            items.iter().map(Expr::compile).collect::<DbResult<_>>()?
                        }
                        single => vec![Expr::compile(single)?],
                    };
                    let (min, max) = op.arity();
                    if args.len() < min || args.len() > max {
                        return Err(DbError::invalid_param(format!(
                            "expression {key} takes {} argument(s), got {}",
                            if min == max {
                                min.to_string()
                            } else {
                                format!("at least {min}")
                            },
                            args.len()
                        )));
                    }
                    Ok(Expr::Op(op, args))
                }
                _ => Ok(Expr::Object(
                    map.iter()
                        .map(|(k, v)| Ok((k.clone(), Expr::compile(v)?)))
                        .collect::<DbResult<_>>()?,
                )),
            },
            other => Ok(Expr::Literal(other.clone())),
        }
    }

    /// Evaluates against a document; `None` is MongoDB's "missing".
    pub fn eval(&self, doc: &Value) -> DbResult<Option<Value>> {
        match self {
            Expr::Literal(v) => Ok(Some(v.clone())),
            Expr::Field(path) => Ok(field_value(doc, path)),
            Expr::Array(items) => {
                // Missing elements become null inside an array literal.
                let values = items
                    .iter()
                    .map(|e| Ok(e.eval(doc)?.unwrap_or(Value::Null)))
                    .collect::<DbResult<_>>()?;
                Ok(Some(Value::Array(values)))
            }
            Expr::Object(fields) => {
                let mut map = Map::new();
                for (key, e) in fields {
                    if let Some(v) = e.eval(doc)? {
                        map.insert(key.clone(), v);
                    }
                }
                Ok(Some(Value::Object(map)))
            }
            Expr::Op(op, args) => eval_op(*op, args, doc),
        }
    }
}

/// Aggregation truthiness: false, null, missing and zero are false; everything else is true.
pub fn truthy(value: &Option<Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => true,
    }
}

/// `"$a.b"`: objects by key; arrays map the rest of the path over their object elements.
fn field_value(value: &Value, path: &[String]) -> Option<Value> {
    let Some((head, rest)) = path.split_first() else {
        return Some(value.clone());
    };
    match value {
        Value::Object(map) => field_value(map.get(head)?, rest),
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter(|v| v.is_object())
                .filter_map(|v| field_value(v, path))
                .collect(),
        )),
        _ => None,
    }
}

/// Missing sorts below everything in aggregation comparisons.
fn compare_optional(a: &Option<Value>, b: &Option<Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => compare_values(x, y),
    }
}

fn eval_op(op: Operator, args: &[Expr], doc: &Value) -> DbResult<Option<Value>> {
    use Operator::*;
    let values = || {
        args.iter()
            .map(|a| a.eval(doc))
            .collect::<DbResult<Vec<_>>>()
    };
    let boolean = |b: bool| Ok(Some(Value::Bool(b)));
    match op {
        Eq | Ne | Gt | Gte | Lt | Lte | Cmp => {
            let v = values()?;
            let ord = compare_optional(&v[0], &v[1]);
            match op {
                Eq => boolean(ord == Ordering::Equal),
                Ne => boolean(ord != Ordering::Equal),
                Gt => boolean(ord == Ordering::Greater),
                Gte => boolean(ord != Ordering::Less),
                Lt => boolean(ord == Ordering::Less),
                Lte => boolean(ord != Ordering::Greater),
                _ => Ok(Some(Value::from(ord as i8))),
            }
        }
        And => {
            for a in args {
                if !truthy(&a.eval(doc)?) {
                    return boolean(false);
                }
            }
            boolean(true)
        }
        Or => {
            for a in args {
                if truthy(&a.eval(doc)?) {
                    return boolean(true);
                }
            }
            boolean(false)
        }
        Not => boolean(!truthy(&args[0].eval(doc)?)),
        IfNull => {
            let (last, candidates) = args.split_last().expect("arity ≥ 2");
            for a in candidates {
                match a.eval(doc)? {
                    None | Some(Value::Null) => continue,
                    found => return Ok(found),
                }
            }
            last.eval(doc)
        }
        Size => match args[0].eval(doc)? {
            Some(Value::Array(items)) => Ok(Some(Value::from(items.len()))),
            other => Err(DbError::invalid_param(format!(
                "the argument to $size must be an array, but was of type: {}",
                type_name(&other)
            ))),
        },
        Add | Multiply => arithmetic_fold(op, values()?),
        Subtract => subtract(values()?),
        Divide => divide(values()?),
    }
}

fn type_name(v: &Option<Value>) -> &'static str {
    match v {
        None => "missing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(v) if ejson::date_number(v).is_some() => "date",
        Some(_) => "object",
    }
}

/// A number during arithmetic: integers stay integers until they overflow or meet a float.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn of(n: &Number) -> Num {
        n.as_i64()
            .map(Num::Int)
            .unwrap_or_else(|| Num::Float(n.as_f64().unwrap_or(0.0)))
    }
    fn f(self) -> f64 {
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
    fn into_value(self) -> DbResult<Value> {
        match self {
            Num::Int(i) => Ok(Value::from(i)),
            Num::Float(f) => Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| DbError::invalid_param("arithmetic result is not a finite number")),
        }
    }
}

fn arithmetic_fold(op: Operator, values: Vec<Option<Value>>) -> DbResult<Option<Value>> {
    let name = if op == Operator::Add {
        "$add"
    } else {
        "$multiply"
    };
    let mut acc = if op == Operator::Add {
        Num::Int(0)
    } else {
        Num::Int(1)
    };
    let mut date = false;
    for v in &values {
        match v {
            None | Some(Value::Null) => return Ok(Some(Value::Null)),
            Some(Value::Number(n)) => {
                acc = if op == Operator::Add {
                    acc.combine(Num::of(n), i64::checked_add, |a, b| a + b)
                } else {
                    acc.combine(Num::of(n), i64::checked_mul, |a, b| a * b)
                }
            }
            Some(d) if op == Operator::Add && ejson::date_number(d).is_some() => {
                if date {
                    return Err(DbError::invalid_param(
                        "only one date allowed in an $add expression",
                    ));
                }
                date = true;
                let ms = Num::of(ejson::date_number(d).expect("date"));
                acc = acc.combine(ms, i64::checked_add, |a, b| a + b);
            }
            Some(other) => {
                return Err(DbError::invalid_param(format!(
                    "{name} only supports numeric{} types, not {}",
                    if op == Operator::Add { " or date" } else { "" },
                    type_name(&Some(other.clone()))
                )))
            }
        }
    }
    if date {
        return Ok(Some(ejson::date_value(acc.f().round() as i64)));
    }
    acc.into_value().map(Some)
}

fn subtract(values: Vec<Option<Value>>) -> DbResult<Option<Value>> {
    let (a, b) = (&values[0], &values[1]);
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(Some(Value::Null));
    };
    if a.is_null() || b.is_null() {
        return Ok(Some(Value::Null));
    }
    match (a, ejson::date_number(a), b, ejson::date_number(b)) {
        (Value::Number(x), _, Value::Number(y), _) => Num::of(x)
            .combine(Num::of(y), i64::checked_sub, |p, q| p - q)
            .into_value()
            .map(Some),
        (_, Some(x), _, Some(y)) => Num::of(x)
            .combine(Num::of(y), i64::checked_sub, |p, q| p - q)
            .into_value()
            .map(Some),
        (_, Some(x), Value::Number(y), _) => {
            let ms = Num::of(x).combine(Num::of(y), i64::checked_sub, |p, q| p - q);
            Ok(Some(ejson::date_value(ms.f().round() as i64)))
        }
        _ => Err(DbError::invalid_param(format!(
            "can't $subtract {} from {}",
            type_name(&Some(b.clone())),
            type_name(&Some(a.clone()))
        ))),
    }
}

fn divide(values: Vec<Option<Value>>) -> DbResult<Option<Value>> {
    match (&values[0], &values[1]) {
        (None | Some(Value::Null), _) | (_, None | Some(Value::Null)) => Ok(Some(Value::Null)),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let divisor = y.as_f64().unwrap_or(0.0);
            if divisor == 0.0 {
                return Err(DbError::invalid_param("can't $divide by zero"));
            }
            Num::Float(x.as_f64().unwrap_or(0.0) / divisor)
                .into_value()
                .map(Some)
        }
        (a, b) => Err(DbError::invalid_param(format!(
            "$divide only supports numeric types, not {} and {}",
            type_name(a),
            type_name(b)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(e: Value, doc: Value) -> DbResult<Option<Value>> {
        Expr::compile(&e)?.eval(&doc)
    }

    #[test]
    fn compares_fields() {
        let doc = json!({"spent": 150, "budget": 100, "a": {"b": [1, 2]}});
        assert_eq!(
            eval(json!({"$gt": ["$spent", "$budget"]}), doc.clone()).unwrap(),
            Some(json!(true))
        );
        assert_eq!(
            eval(json!({"$lt": ["$spent", "$budget"]}), doc.clone()).unwrap(),
            Some(json!(false))
        );
        assert_eq!(
            eval(json!({"$size": "$a.b"}), doc.clone()).unwrap(),
            Some(json!(2))
        );
        assert_eq!(
            eval(json!({"$eq": ["$missing", null]}), doc.clone()).unwrap(),
            Some(json!(false))
        );
        assert_eq!(
            eval(json!({"$ifNull": ["$missing", "dflt"]}), doc).unwrap(),
            Some(json!("dflt"))
        );
    }

    #[test]
    fn arithmetic() {
        let doc = json!({"a": 2, "b": 0.5, "d": {"$date": 1000}});
        assert_eq!(
            eval(json!({"$add": ["$a", 3]}), doc.clone()).unwrap(),
            Some(json!(5))
        );
        assert_eq!(
            eval(json!({"$multiply": ["$a", "$b"]}), doc.clone()).unwrap(),
            Some(json!(1.0))
        );
        assert_eq!(
            eval(json!({"$subtract": ["$a", 5]}), doc.clone()).unwrap(),
            Some(json!(-3))
        );
        assert_eq!(
            eval(json!({"$divide": ["$a", 4]}), doc.clone()).unwrap(),
            Some(json!(0.5))
        );
        assert_eq!(
            eval(json!({"$add": ["$d", 500]}), doc.clone()).unwrap(),
            Some(json!({"$date": 1500}))
        );
        assert_eq!(
            eval(json!({"$subtract": ["$d", {"$date": 400}]}), doc.clone()).unwrap(),
            Some(json!(600))
        );
        assert_eq!(
            eval(json!({"$add": ["$a", "$nope"]}), doc.clone()).unwrap(),
            Some(json!(null))
        );
        assert!(eval(json!({"$divide": ["$a", 0]}), doc.clone()).is_err());
        assert!(eval(json!({"$add": ["$a", "x"]}), doc.clone()).is_err());
        assert!(eval(json!({"$size": "$a"}), doc).is_err());
        assert_eq!(
            eval(json!({"$add": [i64::MAX, 1]}), json!({})).unwrap(),
            Some(json!(9.223372036854776e18))
        );
    }

    #[test]
    fn logic_and_errors() {
        let doc = json!({"x": 0, "y": "s"});
        assert_eq!(
            eval(json!({"$and": ["$y", {"$not": "$x"}]}), doc.clone()).unwrap(),
            Some(json!(true))
        );
        assert_eq!(
            eval(json!({"$or": ["$x", "$nope"]}), doc).unwrap(),
            Some(json!(false))
        );
        assert_eq!(
            Expr::compile(&json!({"$regexMatch": {}})).unwrap_err().code,
            "DATABASE_INVALID_OPERRATOR"
        );
        assert_eq!(
            Expr::compile(&json!({"$gt": [1]})).unwrap_err().code,
            "INVALID_PARAM"
        );
        assert!(Expr::compile(&json!("$$NOW")).is_err());
    }
}
