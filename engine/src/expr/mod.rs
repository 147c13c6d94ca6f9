//! Aggregation expressions (MongoDB 4.4): field paths `"$a.b"`, variables (`$$ROOT`, `$$CURRENT`,
//! `$$REMOVE`, `$$NOW`, `$let`/`$map`/`$filter`/`$reduce`/`$lookup` bindings), literals, and every
//! operator of the SDK's `db.command.aggregate` list.
//!
//! Operators are ONE data-driven table ([`operators::OPERATORS`]): each entry names the operator, the
//! shape of its arguments (a positional list with an arity, named fields, or a date-part operand) and
//! its evaluator. Compilation checks the shape once; evaluation dispatches through the entry. `$expr` in
//! queries, `$project`/`$addFields`/`$group`/… in pipelines all compile through [`Expr::compile`].

mod accumulator;
mod date;
mod operators;

pub use accumulator::{Accumulator, AccumulatorKind};
pub use operators::{OpSpec, Shape, OPERATORS};

use crate::ejson;
use crate::error::{DbError, DbResult};
use crate::value::compare_values;
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// A compiled aggregation expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A constant.
    Literal(Value),
    /// `"$a.b"` relative to `$$CURRENT` (an empty path is the current document).
    Field(Vec<String>),
    /// `"$$name.a.b"`.
    Var(String, Vec<String>),
    /// `[e1, e2]`.
    Array(Vec<Expr>),
    /// `{k: e}`.
    Object(Vec<(String, Expr)>),
    /// `{$op: …}`, checked against its table entry.
    Op(&'static OpSpec, Args),
}

/// The compiled arguments of an operator, in the form its [`Shape`] asks for.
#[derive(Debug, Clone)]
pub enum Args {
    /// Positional arguments.
    List(Vec<Expr>),
    /// Named arguments, aligned with the shape's field list (`None` = not given).
    Named(Vec<Option<Expr>>),
    /// `$let`: variable bindings and the `in` expression.
    Let(Vec<(String, Expr)>, Box<Expr>),
    /// `$switch`: `(case, then)` branches and the optional default.
    Switch(Vec<(Expr, Expr)>, Option<Box<Expr>>),
}

/// A variable bound by `$let`, `$map`, `$filter`, `$reduce`: a frame of a linked list of scopes.
#[derive(Debug)]
pub struct Binding<'a> {
    name: &'a str,
    value: Value,
    parent: Option<&'a Binding<'a>>,
}

/// What an expression evaluates against: `$$ROOT`, `$$CURRENT` and the bound variables.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    root: &'a Value,
    current: &'a Value,
    frame: Option<&'a Binding<'a>>,
    /// Variables bound outside the expression (`$lookup`'s `let`).
    outer: &'a [(String, Value)],
}

impl<'a> Scope<'a> {
    /// A scope where `$$ROOT` and `$$CURRENT` are `doc` and `outer` are the variables in force.
    pub fn new(doc: &'a Value, outer: &'a [(String, Value)]) -> Scope<'a> {
        Scope {
            root: doc,
            current: doc,
            frame: None,
            outer,
        }
    }

    fn lookup(&self, name: &str) -> Option<&Value> {
        let mut frame = self.frame;
        while let Some(binding) = frame {
            if binding.name == name {
                return Some(&binding.value);
            }
            frame = binding.parent;
        }
        self.outer.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl<'a> Binding<'a> {
    fn new(name: &'a str, value: Value, scope: &Scope<'a>) -> Binding<'a> {
        Binding {
            name,
            value,
            parent: scope.frame,
        }
    }
}

/// Evaluates `expr` with `binding` in force on top of `scope`.
fn eval_bound<'a>(
    expr: &Expr,
    scope: &Scope<'a>,
    binding: &Binding<'_>,
) -> DbResult<Option<Value>> {
    // A frame borrowed for this call only: rebuild the scope with the shorter lifetime.
    let inner = Scope {
        root: scope.root,
        current: scope.current,
        frame: Some(binding),
        outer: scope.outer,
    };
    expr.eval_in(&inner)
}

/// Checks a user variable name as MongoDB does: a lowercase letter or non-ASCII first, then word chars.
pub fn check_variable_name(name: &str) -> DbResult<()> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || !c.is_ascii())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii());
    if ok {
        Ok(())
    } else {
        Err(DbError::invalid_param(format!(
            "'{name}' starts with an invalid character for a user variable name"
        )))
    }
}

impl Expr {
    /// Compiles an expression; unknown operators are `DATABASE_INVALID_OPERRATOR`, malformed
    /// arguments `INVALID_PARAM`.
    pub fn compile(value: &Value) -> DbResult<Expr> {
        match value {
            Value::String(s) if s.starts_with("$$") => {
                let mut parts = s[2..].split('.');
                let name = parts.next().unwrap_or_default();
                let path: Vec<String> = parts.map(str::to_owned).collect();
                if path.iter().any(String::is_empty) {
                    return Err(DbError::invalid_param(format!(
                        "invalid variable path: {s}"
                    )));
                }
                match name {
                    "ROOT" | "CURRENT" | "REMOVE" | "NOW" => {}
                    _ => check_variable_name(name)?,
                }
                Ok(Expr::Var(name.to_owned(), path))
            }
            Value::String(s) if s.starts_with('$') => {
                let path: Vec<String> = s[1..].split('.').map(str::to_owned).collect();
                if path.iter().any(|p| p.is_empty() || p.starts_with('$')) {
                    return Err(DbError::invalid_param(format!("invalid field path: {s}")));
                }
                Ok(Expr::Field(path))
            }
            Value::Array(items) => Ok(Expr::Array(
                items.iter().map(Expr::compile).collect::<DbResult<_>>()?,
            )),
            Value::Object(_) if ejson::is_literal_object(value) => Ok(Expr::Literal(value.clone())),
            Value::Object(map) => match map.iter().next() {
                Some((key, operand)) if key.starts_with('$') => {
                    if map.len() != 1 {
                        return Err(DbError::invalid_param(format!(
                            "an expression object with operator {key} must have exactly one field"
                        )));
                    }
                    operators::compile(key, operand)
                }
                _ => {
                    let mut fields = Vec::with_capacity(map.len());
                    for (key, v) in map {
                        if key.starts_with('$') || key.contains('.') {
                            return Err(DbError::invalid_param(format!(
                                "field names in an expression object may not start with $ or contain '.': {key}"
                            )));
                        }
                        fields.push((key.clone(), Expr::compile(v)?));
                    }
                    Ok(Expr::Object(fields))
                }
            },
            other => Ok(Expr::Literal(other.clone())),
        }
    }

    /// Evaluates against a document; `None` is MongoDB's "missing".
    pub fn eval(&self, doc: &Value) -> DbResult<Option<Value>> {
        self.eval_in(&Scope::new(doc, &[]))
    }

    /// Evaluates in a scope (bound variables, `$$ROOT`).
    pub fn eval_in(&self, scope: &Scope<'_>) -> DbResult<Option<Value>> {
        match self {
            Expr::Literal(v) => Ok(Some(v.clone())),
            Expr::Field(path) => Ok(field_value(scope.current, path)),
            Expr::Var(name, path) => {
                let base = match name.as_str() {
                    "ROOT" => scope.root,
                    "CURRENT" => scope.current,
                    "REMOVE" => return Ok(None),
                    "NOW" => return Ok(Some(ejson::date_value(now_ms()))),
                    other => scope.lookup(other).ok_or_else(|| {
                        DbError::invalid_param(format!("use of undefined variable: {other}"))
                    })?,
                };
                Ok(field_value(base, path))
            }
            Expr::Array(items) => {
                // Missing elements become null inside an array literal.
                let values = items
                    .iter()
                    .map(|e| Ok(e.eval_in(scope)?.unwrap_or(Value::Null)))
                    .collect::<DbResult<_>>()?;
                Ok(Some(Value::Array(values)))
            }
            Expr::Object(fields) => {
                let mut map = Map::new();
                for (key, e) in fields {
                    if let Some(v) = e.eval_in(scope)? {
                        map.insert(key.clone(), v);
                    }
                }
                Ok(Some(Value::Object(map)))
            }
            Expr::Op(spec, args) => (spec.eval)(args, scope),
        }
    }

    /// True when the expression is a constant (no fields, variables or operators).
    pub fn is_constant(&self) -> bool {
        match self {
            Expr::Literal(_) => true,
            Expr::Array(items) => items.iter().all(Expr::is_constant),
            Expr::Object(fields) => fields.iter().all(|(_, e)| e.is_constant()),
            _ => false,
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Aggregation truthiness: false, null, missing and zero are false; everything else is true.
pub fn truthy(value: &Option<Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => true,
    }
}

/// `"$a.b"`: objects by key; arrays map the rest of the path over their elements (objects and nested
/// arrays; scalars and elements missing the field are dropped), as MongoDB's ExpressionFieldPath does.
pub fn field_value(value: &Value, path: &[String]) -> Option<Value> {
    let Some((head, rest)) = path.split_first() else {
        return Some(value.clone());
    };
    match value {
        Value::Object(map) if !ejson::is_literal_object(value) => field_value(map.get(head)?, rest),
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter(|v| v.is_object() || v.is_array())
                .filter_map(|v| field_value(v, path))
                .collect(),
        )),
        _ => None,
    }
}

/// Missing sorts below everything (also below null) in aggregation comparisons.
pub fn compare_optional(a: &Option<Value>, b: &Option<Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => compare_values(x, y),
    }
}

/// MongoDB's `$type` name of a value (`"missing"` for `None`).
pub fn type_name(v: &Option<Value>) -> &'static str {
    use crate::value::{type_class, TypeClass};
    let Some(v) = v else { return "missing" };
    match type_class(v) {
        TypeClass::MinKey => "minKey",
        TypeClass::Null => "null",
        TypeClass::Number => match v.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => "int",
            Some(_) => "long",
            None if v.is_u64() => "long",
            None => "double",
        },
        TypeClass::String => "string",
        TypeClass::Object => "object",
        TypeClass::Array => "array",
        TypeClass::Boolean => "bool",
        TypeClass::Date => "date",
        TypeClass::Regex => "regex",
        TypeClass::MaxKey => "maxKey",
    }
}

#[cfg(test)]
mod tests;
