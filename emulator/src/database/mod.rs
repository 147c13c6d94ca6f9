//! The document engine core: pure functions over `serde_json::Value` documents in the CloudBase P1 wire
//! form (dates `{"$date": ms}`, regexes `{"$regex","$options"}`, GeoJSON). No I/O: storage calls it.
//!
//! * [`value`]: BSON type order, comparison, equality, dotted-path lookup with array traversal.
//! * [`ejson`]: the literal forms and `{"$date":{"offset":N}}` server-date resolution.
//! * [`matcher`]: query documents compiled once into a [`Matcher`]; `$nearSphere` as [`NearQuery`].
//! * [`expr`]: the aggregation-expression subset `$expr` uses.
//! * [`geo`]: GeoJSON containment, intersection and spherical distance.
//! * [`update`]: update operators (`merge: true`) and replacement (`merge: false`).
//! * [`sort`] and [`projection`]: ordering and field selection of results.
//!
//! Every failure is a [`DbError`] carrying the CloudBase code to report.
//!
//! Field order: object comparison and equality walk fields in the map's iteration order, as MongoDB
//! does. With serde_json's default (sorted) map that order is alphabetical, so `{b:1, a:2}` equals
//! `{a:2, b:1}` here; enabling serde_json's `preserve_order` feature makes it document order.

pub mod ejson;
pub mod error;
pub mod expr;
pub mod geo;
pub mod matcher;
pub mod projection;
pub mod sort;
pub mod update;
pub mod value;

pub use ejson::resolve_server_dates;
pub use error::{DbError, DbResult};
pub use matcher::{ElementCondition, Matcher, NearQuery};
pub use projection::Projection;
pub use sort::{sort_by_distance, SortSpec};
pub use update::{
    apply_update, apply_upsert_insert, is_operator_update, prepare_document, replace_document,
};
pub use value::{compare_values, values_equal};

// The service around the engine: SQLite storage, permissions, the P1 actions, import/export, admin.
pub mod admin;
pub mod aggregate;
pub mod import_export;
pub mod rules;
pub mod service;
pub mod store;

pub use service::{Caller, Database};
