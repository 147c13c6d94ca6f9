//! The document engine of cloud-emulator, as a pure crate: no HTTP, no axum. The emulator's protocol
//! adapters (the `/web` actions, the admin endpoint, import/export) call it; so can tests and benchmarks.
//!
//! Documents are `serde_json::Value`s in the CloudBase P1 wire form (dates `{"$date": ms}`, regexes
//! `{"$regex","$options"}`, GeoJSON).
//!
//! * [`value`]: BSON type order, comparison, equality, dotted-path lookup with array traversal.
//! * [`ejson`]: the literal forms and `{"$date":{"offset":N}}` server-date resolution.
//! * [`matcher`]: query documents compiled once into a [`Matcher`]; `$nearSphere` as [`NearQuery`].
//! * [`expr`]: aggregation expressions (`$expr` and the aggregate stages).
//! * [`geo`]: GeoJSON containment, intersection and spherical distance.
//! * [`update`]: update operators (`merge: true`) and replacement (`merge: false`).
//! * [`sort`] and [`projection`]: ordering and field selection of results.
//! * [`aggregate`]: the aggregation pipeline.
//! * [`rules`]: database permission rules (the four presets and custom rule expressions).
//! * [`store`]: documents and collection metadata in SQLite (WAL), with single-field indexes.
//! * [`feed`]: the change feed of committed writes, in commit order (what realtime `watch` serves).
//! * [`extended_json`]: canonical EJSON v2 (the admin protocol of `wx-server-sdk`) to and from the wire form.
//! * [`transaction`]: admin-protocol transactions: snapshot reads, buffered writes, commit-time conflicts.
//!
//! Every failure is a [`DbError`] carrying the CloudBase code to report.
//!
//! Field order: object comparison and equality walk fields in the map's iteration order, as MongoDB
//! does; serde_json's `preserve_order` feature makes that document order.

pub mod aggregate;
pub mod ejson;
pub mod error;
pub mod expr;
pub mod extended_json;
pub mod feed;
pub mod geo;
pub mod matcher;
pub mod projection;
pub mod rules;
pub mod sort;
pub mod store;
pub mod transaction;
pub mod update;
pub mod value;

pub use ejson::resolve_server_dates;
pub use error::{DbError, DbResult};
pub use matcher::{ElementCondition, Matcher, NearQuery};
pub use projection::Projection;
pub use rules::Caller;
pub use sort::{sort_by_distance, SortSpec};
pub use update::{
    apply_update, apply_upsert_insert, is_operator_update, prepare_document, replace_document,
};
pub use value::{compare_values, values_equal};
