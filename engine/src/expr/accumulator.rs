//! Accumulators, shared by `$group` (and `$bucket`, `$bucketAuto`) and by their expression forms in
//! `$project` (`{$sum: "$array"}`, `{$max: [a, b]}`): one implementation, two callers.

use super::operators::{float_value, Num};
use crate::error::{DbError, DbResult};
use crate::value::{compare_values, values_equal};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// Which accumulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccumulatorKind {
    /// `$sum`: numeric values added (others ignored); 0 when none.
    Sum,
    /// `$avg`: mean of the numeric values; null when none.
    Avg,
    /// `$min`: smallest non-null value in BSON order.
    Min,
    /// `$max`: largest non-null value in BSON order.
    Max,
    /// `$first`: the first value (missing → null).
    First,
    /// `$last`: the last value (missing → null).
    Last,
    /// `$push`: every value (missing skipped).
    Push,
    /// `$addToSet`: distinct values (missing skipped).
    AddToSet,
    /// `$stdDevPop`: population standard deviation of the numeric values.
    StdDevPop,
    /// `$stdDevSamp`: sample standard deviation of the numeric values (null below two values).
    StdDevSamp,
    /// `$mergeObjects`: documents merged in order (null and missing ignored).
    MergeObjects,
}

impl AccumulatorKind {
    /// The accumulator named `$name` in a `$group` field.
    pub fn parse(name: &str) -> DbResult<AccumulatorKind> {
        use AccumulatorKind::*;
        Ok(match name {
            "$sum" => Sum,
            "$avg" => Avg,
            "$min" => Min,
            "$max" => Max,
            "$first" => First,
            "$last" => Last,
            "$push" => Push,
            "$addToSet" => AddToSet,
            "$stdDevPop" => StdDevPop,
            "$stdDevSamp" => StdDevSamp,
            "$mergeObjects" => MergeObjects,
            other => {
                return Err(DbError::invalid_operator(format!(
                    "unknown group accumulator {other}"
                )))
            }
        })
    }
}

/// The running state of one accumulator.
#[derive(Debug, Clone)]
pub struct Accumulator {
    kind: AccumulatorKind,
    sum: Num,
    count: u64,
    // Welford's running mean and squared deviations, for the standard deviations.
    mean: f64,
    m2: f64,
    value: Option<Value>,
    seen: bool,
    items: Vec<Value>,
    merged: Map<String, Value>,
}

impl Accumulator {
    /// A fresh accumulator.
    pub fn new(kind: AccumulatorKind) -> Accumulator {
        Accumulator {
            kind,
            sum: Num::Int(0),
            count: 0,
            mean: 0.0,
            m2: 0.0,
            value: None,
            seen: false,
            items: Vec::new(),
            merged: Map::new(),
        }
    }

    /// Feeds one value (`None` = missing).
    pub fn add(&mut self, value: Option<Value>) -> DbResult<()> {
        use AccumulatorKind::*;
        match self.kind {
            Sum | Avg | StdDevPop | StdDevSamp => {
                if let Some(Value::Number(n)) = &value {
                    let n = Num::of(n);
                    self.sum = match (self.sum, n) {
                        (Num::Int(a), Num::Int(b)) => a
                            .checked_add(b)
                            .map_or(Num::Float(a as f64 + b as f64), Num::Int),
                        (a, b) => Num::Float(a.f() + b.f()),
                    };
                    self.count += 1;
                    let x = n.f();
                    let delta = x - self.mean;
                    self.mean += delta / self.count as f64;
                    self.m2 += delta * (x - self.mean);
                }
            }
            Min | Max => {
                if let Some(v) = value.filter(|v| !v.is_null()) {
                    let wanted = if self.kind == Min {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    };
                    if self
                        .value
                        .as_ref()
                        .is_none_or(|c| compare_values(&v, c) == wanted)
                    {
                        self.value = Some(v);
                    }
                }
            }
            First => {
                if !self.seen {
                    self.seen = true;
                    self.value = Some(value.unwrap_or(Value::Null));
                }
            }
            Last => self.value = Some(value.unwrap_or(Value::Null)),
            Push => self.items.extend(value),
            AddToSet => {
                if let Some(v) = value {
                    if !self.items.iter().any(|x| values_equal(x, &v)) {
                        self.items.push(v);
                    }
                }
            }
            MergeObjects => match value {
                None | Some(Value::Null) => {}
                Some(Value::Object(map)) => self.merged.extend(map),
                Some(_) => {
                    return Err(DbError::invalid_param(
                        "$mergeObjects requires object inputs",
                    ))
                }
            },
        }
        Ok(())
    }

    /// The accumulated result.
    pub fn finish(self) -> Value {
        use AccumulatorKind::*;
        match self.kind {
            Sum => self.sum.into_value().unwrap_or(Value::Null),
            Avg if self.count == 0 => Value::Null,
            Avg => float_value(self.sum.f() / self.count as f64).unwrap_or(Value::Null),
            StdDevPop if self.count == 0 => Value::Null,
            StdDevPop => float_value((self.m2 / self.count as f64).sqrt()).unwrap_or(Value::Null),
            StdDevSamp if self.count < 2 => Value::Null,
            StdDevSamp => {
                float_value((self.m2 / (self.count - 1) as f64).sqrt()).unwrap_or(Value::Null)
            }
            Min | Max | First | Last => self.value.unwrap_or(Value::Null),
            Push | AddToSet => Value::Array(self.items),
            MergeObjects => Value::Object(self.merged),
        }
    }
}
