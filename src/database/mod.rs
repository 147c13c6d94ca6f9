//! The database API (api-surface.md §3): `cloud.database()`, collections, queries, documents, commands,
//! Geo values and aggregation, over the `database.*` actions of the `/web` protocol (protocol.md §5).
//!
//! Pure core (native `cargo test`): [`value`] (the value model and its JSON writer), [`command`],
//! [`geo`], [`encode`] (query/update encoding as the official SDK does it), [`request`] (action
//! parameters in the SDK's key order). Edge: `convert` (JsValue ↔ model, result decoding), `registry`
//! (finding the Rust value behind an SDK object passed back from JS), `bindings` (the exported classes) and
//! [`realtime`] (`watch()`: the Rust edge of transport/realtime.js).

pub mod command;
pub mod encode;
pub mod geo;
pub mod request;
pub mod value;

pub mod bindings;
mod convert;
pub mod realtime;
mod registry;
