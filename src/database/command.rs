//! `db.command` (api-surface.md §3.4): query, logic and update commands, their chaining, and the other
//! SDK values (`serverDate`, `db.RegExp`, Geo, aggregate operators) as one [`Internal`] type.
//!
//! The structure follows @cloudbase/database (`src/command.ts`, `src/commands/*.ts`): a query command is
//! one operator with operands; chaining (`_.gt(1).lt(5)`) makes a logic `and` of the two; the field name
//! is given when the command is encoded under a key.

use std::rc::Rc;

use super::geo::Geometry;
use super::value::{EncodeError, Number, Obj, Value};

/// Field-level query operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    Nin,
    All,
    ElemMatch,
    Exists,
    Size,
    Mod,
    GeoNear,
    GeoWithin,
    GeoIntersects,
}

impl QueryOp {
    fn parse(name: &str) -> Option<Self> {
        use QueryOp::*;
        Some(match name {
            "eq" => Eq,
            "neq" => Neq,
            "lt" => Lt,
            "lte" => Lte,
            "gt" => Gt,
            "gte" => Gte,
            "in" => In,
            "nin" => Nin,
            "all" => All,
            "elemMatch" => ElemMatch,
            "exists" => Exists,
            "size" => Size,
            "mod" => Mod,
            "geoNear" => GeoNear,
            "geoWithin" => GeoWithin,
            "geoIntersects" => GeoIntersects,
            _ => return None,
        })
    }

    /// The wire operator.
    pub fn wire(self) -> &'static str {
        use QueryOp::*;
        match self {
            Eq => "$eq",
            Neq => "$ne",
            Lt => "$lt",
            Lte => "$lte",
            Gt => "$gt",
            Gte => "$gte",
            In => "$in",
            Nin => "$nin",
            All => "$all",
            ElemMatch => "$elemMatch",
            Exists => "$exists",
            Size => "$size",
            Mod => "$mod",
            GeoNear => "$nearSphere",
            GeoWithin => "$geoWithin",
            GeoIntersects => "$geoIntersects",
        }
    }
}

/// Logic operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogicOp {
    And,
    Or,
    Nor,
    Not,
}

impl LogicOp {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "and" => LogicOp::And,
            "or" => LogicOp::Or,
            "nor" => LogicOp::Nor,
            "not" => LogicOp::Not,
            _ => return None,
        })
    }

    /// The wire operator.
    pub fn wire(self) -> &'static str {
        match self {
            LogicOp::And => "$and",
            LogicOp::Or => "$or",
            LogicOp::Nor => "$nor",
            LogicOp::Not => "$not",
        }
    }
}

/// Update operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateOp {
    Set,
    Remove,
    Inc,
    Mul,
    Min,
    Max,
    Rename,
    Bit,
    Push,
    Pop,
    Shift,
    Unshift,
    Pull,
    PullAll,
    AddToSet,
}

impl UpdateOp {
    fn parse(name: &str) -> Option<Self> {
        use UpdateOp::*;
        Some(match name {
            "set" => Set,
            "remove" => Remove,
            "inc" => Inc,
            "mul" => Mul,
            "min" => Min,
            "max" => Max,
            "rename" => Rename,
            "bit" => Bit,
            "push" => Push,
            "pop" => Pop,
            "shift" => Shift,
            "unshift" => Unshift,
            "pull" => Pull,
            "pullAll" => PullAll,
            "addToSet" => AddToSet,
            _ => return None,
        })
    }

    /// The wire operator.
    pub fn wire(self) -> &'static str {
        use UpdateOp::*;
        match self {
            Set => "$set",
            Remove => "$unset",
            Inc => "$inc",
            Mul => "$mul",
            Min => "$min",
            Max => "$max",
            Rename => "$rename",
            Bit => "$bit",
            Push | Unshift => "$push",
            Pop | Shift => "$pop",
            Pull => "$pull",
            PullAll => "$pullAll",
            AddToSet => "$addToSet",
        }
    }
}

/// An SDK value that user code passes back into `where` / `update` / `add`.
#[derive(Clone, Debug)]
pub enum Internal {
    /// `_.gt(1)`, `_.in([…])`, `_.geoNear({…})`: for `in`/`nin`/`all` the operands are the list.
    Query { op: QueryOp, operands: Vec<Value> },
    /// `_.or(…)`, `_.gt(1).lt(5)` (an `and`), `_.not(_.gt(1))`.
    Logic { op: LogicOp, operands: Vec<Value> },
    /// `_.inc(1)`, `_.push(…)`: `operand` is the single argument (the `$each` list or modifiers for push).
    Update { op: UpdateOp, operand: Value },
    /// `db.Geo.*`.
    Geo(Geometry),
    /// `db.serverDate({ offset })`.
    ServerDate { offset: Number },
    /// `db.RegExp({ regexp, options })`.
    RegExp { regexp: Rc<str>, options: Rc<str> },
    /// `db.command.aggregate.<name>(param)`, written `{"$<name>": param}`.
    AggregateOp { name: Rc<str>, param: Value },
}

/// A user error in a command's arguments (-401003 type, -401002 value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError {
    /// Whether it is a type error (-401003) rather than a value error (-401002).
    pub type_error: bool,
    /// The message.
    pub message: String,
}

impl ArgError {
    /// A type error.
    pub fn type_error(message: impl Into<String>) -> Self {
        ArgError {
            type_error: true,
            message: message.into(),
        }
    }
}

fn first(args: Vec<Value>) -> Value {
    args.into_iter().next().unwrap_or(Value::Null)
}

/// `and(a, b)` and `and([a, b])` both give `[a, b]`.
fn spread(args: Vec<Value>) -> Vec<Value> {
    match args.as_slice() {
        [Value::Array(_), ..] => match args.into_iter().next() {
            Some(Value::Array(items)) => items,
            _ => unreachable!(),
        },
        _ => args,
    }
}

fn list_operand(name: &str, args: Vec<Value>) -> Result<Vec<Value>, ArgError> {
    match first(args) {
        Value::Array(items) => Ok(items),
        _ => Err(ArgError::type_error(format!(
            "{name} requires an array argument"
        ))),
    }
}

fn geometry_of(value: &Value) -> Option<&Geometry> {
    match value.internal() {
        Some(Internal::Geo(geometry)) => Some(geometry),
        _ => None,
    }
}

/// Checks the options of `geoNear` / `geoWithin` / `geoIntersects` as the official SDK does.
fn check_geo_options(op: QueryOp, options: &Value) -> Result<(), ArgError> {
    let Value::Object(obj) = options else {
        return Err(ArgError::type_error(format!(
            "{} requires an options object",
            op.wire()
        )));
    };
    let geometry = super::value::get(obj, "geometry").and_then(geometry_of);
    let ok = matches!(
        (op, geometry),
        (QueryOp::GeoNear, Some(Geometry::Point(_)))
            | (
                QueryOp::GeoWithin,
                Some(Geometry::Polygon(_) | Geometry::MultiPolygon(_))
            )
            | (QueryOp::GeoIntersects, Some(_))
    );
    if !ok {
        let expected = match op {
            QueryOp::GeoNear => "Point",
            QueryOp::GeoWithin => "Polygon or MultiPolygon",
            _ => "Point, LineString, Polygon, MultiPoint, MultiLineString or MultiPolygon",
        };
        return Err(ArgError::type_error(format!(
            "\"geometry\" must be of type {expected}"
        )));
    }
    if op == QueryOp::GeoNear {
        for key in ["maxDistance", "minDistance"] {
            match super::value::get(obj, key) {
                None | Some(Value::Num(_)) => {}
                Some(_) => {
                    return Err(ArgError::type_error(format!(
                        "\"{key}\" must be of type Number"
                    )))
                }
            }
        }
    }
    Ok(())
}

fn query_command(op: QueryOp, args: Vec<Value>) -> Result<Internal, ArgError> {
    let operands = match op {
        QueryOp::In | QueryOp::Nin | QueryOp::All => list_operand(op.wire(), args)?,
        // `_.mod(4, 1)` (wx typings) and `_.mod([4, 1])` (CloudBase) both give `[4, 1]`.
        QueryOp::Mod if args.len() >= 2 => vec![Value::Array(args.into_iter().take(2).collect())],
        QueryOp::GeoNear | QueryOp::GeoWithin | QueryOp::GeoIntersects => {
            let options = first(args);
            check_geo_options(op, &options)?;
            vec![options]
        }
        _ => vec![first(args)],
    };
    Ok(Internal::Query { op, operands })
}

fn update_command(op: UpdateOp, args: Vec<Value>) -> Result<Internal, ArgError> {
    let operand = match op {
        UpdateOp::Remove | UpdateOp::Pop | UpdateOp::Shift => Value::Null,
        UpdateOp::Push => match args.first() {
            // `push({ each, position, sort, slice })`: modifiers.
            Some(Value::Object(obj)) if super::value::get(obj, "each").is_some() => {
                let mut modifiers: Obj = Vec::new();
                for (from, to) in [
                    ("each", "$each"),
                    ("position", "$position"),
                    ("sort", "$sort"),
                    ("slice", "$slice"),
                ] {
                    if let Some(value) = super::value::get(obj, from) {
                        modifiers.push((to.into(), value.clone()));
                    }
                }
                Value::Object(modifiers)
            }
            Some(Value::Array(_)) => first(args),
            _ => Value::Array(args),
        },
        UpdateOp::Unshift => Value::Array(spread(args)),
        UpdateOp::Inc | UpdateOp::Mul => {
            let value = first(args);
            if !matches!(value, Value::Num(_)) {
                return Err(ArgError::type_error(format!(
                    "{} requires a number",
                    op.wire()
                )));
            }
            value
        }
        UpdateOp::Rename => {
            let value = first(args);
            if !matches!(value, Value::Str(_)) {
                return Err(ArgError::type_error("$rename requires a string"));
            }
            value
        }
        _ => first(args),
    };
    Ok(Internal::Update { op, operand })
}

/// `db.command.<name>(...args)`; `None` when there is no such command.
pub fn make(name: &str, args: Vec<Value>) -> Option<Result<Internal, ArgError>> {
    if let Some(op) = QueryOp::parse(name) {
        return Some(query_command(op, args));
    }
    if let Some(op) = LogicOp::parse(name) {
        return Some(Ok(Internal::Logic {
            op,
            operands: spread(args),
        }));
    }
    if let Some(op) = UpdateOp::parse(name) {
        return Some(update_command(op, args));
    }
    None
}

/// The official SDK maps `neq` to `$ne`; every other aggregate operator is `$<name>`.
pub fn aggregate_op(name: &str, param: Value) -> Internal {
    let name = if name == "neq" { "ne" } else { name };
    Internal::AggregateOp {
        name: name.into(),
        param,
    }
}

/// `command.<name>(...args)` on a query or logic command: `and`/`or`/`nor` combine with the receiver,
/// query operators AND-combine (`_.gt(1).lt(5)`).
pub fn chain(this: &Rc<Internal>, name: &str, args: Vec<Value>) -> Result<Internal, ArgError> {
    if matches!(**this, Internal::Update { .. }) {
        return Err(ArgError::type_error(format!(
            "update commands cannot be chained with {name}"
        )));
    }
    if !matches!(**this, Internal::Query { .. } | Internal::Logic { .. }) {
        return Err(ArgError::type_error(format!("{name} is not a function")));
    }
    let receiver = Value::Internal(this.clone());
    if let Some(op @ (LogicOp::And | LogicOp::Or | LogicOp::Nor)) = LogicOp::parse(name) {
        let mut operands = vec![receiver];
        operands.extend(spread(args));
        return Ok(Internal::Logic { op, operands });
    }
    if let Some(op) = QueryOp::parse(name) {
        let next = query_command(op, args)?;
        return Ok(Internal::Logic {
            op: LogicOp::And,
            operands: vec![receiver, Value::Internal(Rc::new(next))],
        });
    }
    Err(ArgError::type_error(format!("{name} is not a function")))
}

/// The body of a field-level query command, `{"$op": …}` (what the command means under its field).
pub fn query_body(op: QueryOp, operands: &[Value]) -> Value {
    let first = operands.first().cloned().unwrap_or(Value::Null);
    match op {
        QueryOp::In | QueryOp::Nin | QueryOp::All => {
            Value::object1(op.wire(), Value::Array(operands.to_vec()))
        }
        QueryOp::GeoNear => {
            let Value::Object(options) = first else {
                return Value::Null;
            };
            let mut near: Obj = Vec::new();
            if let Some(geometry) = super::value::get(&options, "geometry") {
                near.push(("$geometry".into(), geometry.clone()));
            }
            for (from, to) in [
                ("maxDistance", "$maxDistance"),
                ("minDistance", "$minDistance"),
            ] {
                if let Some(value) = super::value::get(&options, from) {
                    near.push((to.into(), value.clone()));
                }
            }
            Value::object1(op.wire(), Value::Object(near))
        }
        QueryOp::GeoWithin | QueryOp::GeoIntersects => {
            let geometry = match &first {
                Value::Object(options) => super::value::get(options, "geometry").cloned(),
                _ => None,
            };
            Value::object1(
                op.wire(),
                Value::object1("$geometry", geometry.unwrap_or(Value::Null)),
            )
        }
        _ => Value::object1(op.wire(), first),
    }
}

impl Internal {
    /// What the value is on the wire when it appears as a plain value (a `data` field, an operand):
    /// the official SDK's `toJSON()` / `parse()`. An `and` of field commands merges their bodies
    /// (`{"$gt":1,"$lt":5}`); other logic and update commands have no such form.
    pub fn wire_value(&self) -> Result<Value, EncodeError> {
        Ok(match self {
            Internal::Query { op, operands } => query_body(*op, operands),
            Internal::Logic {
                op: LogicOp::And,
                operands,
            } => {
                let mut merged: Obj = Vec::new();
                for operand in operands {
                    match operand.internal().map(Internal::wire_value) {
                        Some(Ok(Value::Object(body))) => merged.extend(body),
                        _ => return Err(EncodeError::new(
                            "a logic command can only be used as the value of a field in where()",
                        )),
                    }
                }
                Value::Object(merged)
            }
            Internal::Logic { .. } => {
                return Err(EncodeError::new(
                    "a logic command can only be used as the value of a field in where()",
                ))
            }
            Internal::Update { op, .. } => {
                return Err(EncodeError::new(format!(
                    "update command {} can only be used in update()",
                    op.wire()
                )))
            }
            Internal::Geo(geometry) => geometry.to_value(),
            Internal::ServerDate { offset } => Value::object1(
                "$date",
                Value::object1("offset", Value::Num(offset.clone())),
            ),
            Internal::RegExp { regexp, options } => Value::Object(vec![
                ("$regex".into(), Value::Str(regexp.clone())),
                ("$options".into(), Value::Str(options.clone())),
            ]),
            Internal::AggregateOp { name, param } => {
                Value::object1(&format!("${name}"), param.clone())
            }
        })
    }

    /// How many levels of objects and arrays the value adds where it is used (its wire form, about):
    /// one for the command object plus its deepest operand. Bounded by construction, since every SDK value
    /// is checked against `limits::MAX_NESTING_DEPTH` when it is made.
    pub fn depth(&self) -> usize {
        let deepest = |values: &[Value]| values.iter().map(super::value::depth).max().unwrap_or(0);
        1 + match self {
            Internal::Query { operands, .. } | Internal::Logic { operands, .. } => {
                1 + deepest(operands)
            }
            Internal::Update { operand, .. } => 1 + super::value::depth(operand),
            Internal::Geo(_) => 4,
            Internal::ServerDate { .. } => 1,
            Internal::RegExp { .. } => 0,
            Internal::AggregateOp { param, .. } => super::value::depth(param),
        }
    }

    /// Whether this is an update command.
    pub fn is_update(&self) -> bool {
        matches!(self, Internal::Update { .. })
    }
}
