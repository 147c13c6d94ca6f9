//! The database service: the `/web` database actions, the admin endpoint and import/export, over the
//! document engine of the `cloud-engine` crate (re-exported here under its module names).

pub use cloud_engine::{
    aggregate, ejson, error, expr, feed, geo, matcher, projection, rules, sort, store, update,
    value,
};
pub use cloud_engine::{
    apply_update, apply_upsert_insert, compare_values, is_operator_update, prepare_document,
    replace_document, resolve_server_dates, sort_by_distance, values_equal, DbError, DbResult,
    ElementCondition, Matcher, NearQuery, Projection, SortSpec,
};

pub mod admin;
pub mod import_export;
pub mod service;

pub use cloud_engine::Caller;
pub use service::Database;
