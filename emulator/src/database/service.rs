//! The P1 `database.*` actions over the [`DocStore`]: validation, permissions, and the engine.
//!
//! Every handler is synchronous and runs inside one store transaction (a write transaction for writes,
//! committed before the answer is built), on a blocking thread ([`Database::run`]).
//!
//! Decisions worth knowing:
//! * `limit` defaults to 100 and is clamped to 1000 (a `limit` of 0 means the default); `offset` ≥ 0.
//! * `total`/`TotalCount` of a query is the number of matching documents, not the page size.
//! * `updated` counts documents whose content changed (MongoDB's `nModified`); `matched` is also sent.
//! * Projection: MongoDB refuses mixing inclusion and exclusion, but the SDK sends
//!   `field({a:true, b:false})` as `{"a":1,"b":0}`. CloudBase answers such a query with the included
//!   fields, so when any field is included the exclusions (other than `_id`) are dropped — they are
//!   implied by the inclusion anyway.
//! * `_openid` is set from the caller on add (a client-supplied one is overwritten) and cannot be
//!   changed by a client update; admin writes leave it as given.
//! * `database.addCollection` is open to any signed-in caller (the web SDK has no other way to create
//!   one); new collections get the `PRIVATE` preset (仅创建者可读写).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cloud_protocol::{codes, limits};
use serde_json::{json, Map, Value};

use super::aggregate;
use super::error::{DbError, DbResult};
use super::rules::{self, Caller, Decision, Operation, Rules, UserCtx};
use super::store::{id_key, new_id, plan_query, with_id_first, CollectionMeta, DocStore, Txn};
use super::{
    apply_update, apply_upsert_insert, is_operator_update, prepare_document, replace_document,
    resolve_server_dates, sort_by_distance, Matcher, Projection, SortSpec,
};
use crate::config::Config;
use crate::error::ApiError;
use crate::server::AppState;
use crate::web::WebRequest;
use cloud_engine::transaction::Transactions;

/// Default page size of `queryDocument`.
pub const DEFAULT_LIMIT: u64 = 100;
/// Largest page size of `queryDocument`.
pub const MAX_LIMIT: u64 = 1000;
/// Deepest nesting accepted in a query, document or update: the documented limit the SDK enforces too
/// (MongoDB's BSON depth, which CloudBase inherits).
pub const MAX_QUERY_DEPTH: usize = cloud_protocol::limits::MAX_NESTING_DEPTH;

/// The database actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `database.queryDocument`
    Query,
    /// `database.countDocument`
    Count,
    /// `database.addDocument`
    Add,
    /// `database.updateDocument`
    Update,
    /// `database.deleteDocument`
    Delete,
    /// `database.aggregate`
    Aggregate,
    /// `database.addCollection`
    AddCollection,
}

/// The database service: the store, the per-run admin token, the export directory; cheap to clone.
#[derive(Clone)]
pub struct Database {
    inner: Arc<DbInner>,
}

struct DbInner {
    store: DocStore,
    transactions: Arc<Transactions>,
    admin_token: String,
    export_dir: Option<PathBuf>,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Database {
    /// Opens the store in the data dir and loads `--import` if configured.
    pub fn open(config: &Config) -> std::io::Result<Database> {
        let store = DocStore::open(&config.data_dir)?;
        if let Some(dir) = &config.import_dir {
            super::import_export::import(&store, dir, config.env.as_deref())?;
        }
        Ok(Database {
            inner: Arc::new(DbInner {
                store,
                transactions: Arc::new(Transactions::new()),
                admin_token: config.admin_token.clone(),
                export_dir: config.export_on_exit.clone(),
            }),
        })
    }

    /// The document store.
    pub fn store(&self) -> &DocStore {
        &self.inner.store
    }

    /// The open transactions of the admin protocol.
    pub fn transactions(&self) -> Arc<Transactions> {
        Arc::clone(&self.inner.transactions)
    }

    /// Whether `token` is this run's admin token (compared in constant time).
    pub fn is_admin_token(&self, token: &str) -> bool {
        let expected = self.inner.admin_token.as_bytes();
        !expected.is_empty()
            && token.len() == expected.len()
            && token
                .bytes()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// Writes `--export-on-exit` (called on clean shutdown).
    pub fn export_on_exit(&self) -> std::io::Result<()> {
        match &self.inner.export_dir {
            Some(dir) => super::import_export::export(&self.inner.store, dir),
            None => Ok(()),
        }
    }

    /// Runs `f` on a blocking thread with the store.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&DocStore) -> DbResult<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            db.inner.transactions.expire_stale(&db.inner.store);
            f(&db.inner.store)
        })
        .await
        .map_err(|err| ApiError::new(codes::SYS_ERR, format!("database task failed: {err}")))?
        .map_err(|err| ApiError::new(err.code, err.message))
    }
}

/// The caller of a `/web` database request: the admin token as `access_token` (or Bearer), else a user.
pub fn caller(state: &AppState, request: &WebRequest<'_>) -> Result<Caller, ApiError> {
    let token = match request.body.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => Some(token.as_str()),
        _ => crate::auth::bearer_token(request.headers),
    };
    if token.is_some_and(|t| state.database().is_admin_token(t)) {
        return Ok(Caller::Admin);
    }
    let identity = request.authenticate(state)?;
    Ok(Caller::User(UserCtx {
        openid: identity.openid(state.signer()),
        uid: identity.uid,
    }))
}

/// Runs one database action of a `/web` request.
pub async fn handle(
    state: &AppState,
    request: &WebRequest<'_>,
    action: Action,
) -> Result<Value, ApiError> {
    let caller = caller(state, request)?;
    let env = request.env.clone();
    let body = request.body.clone();
    state
        .database()
        .run(move |store| execute(store, &caller, &env, action, &body, now_ms()))
        .await
}

/// Runs one action synchronously (what [`handle`] does on a blocking thread).
pub fn execute(
    store: &DocStore,
    caller: &Caller,
    env: &str,
    action: Action,
    body: &Map<String, Value>,
    now: i64,
) -> DbResult<Value> {
    let name = collection_name(body)?;
    match action {
        Action::Query => store.read(|t| query(t, caller, env, name, body, now)),
        Action::Count => store.read(|t| count(t, caller, env, name, body, now)),
        Action::Add => store.write(|t| add(t, caller, env, name, body, now)),
        Action::Update => store.write(|t| update(t, caller, env, name, body, now)),
        Action::Delete => store.write(|t| delete(t, caller, env, name, body, now)),
        Action::Aggregate => store.read(|t| aggregate::run(t, caller, env, name, body, now)),
        Action::AddCollection => store.write(|t| {
            t.create_collection(env, name, &rules::default_rules(), &[], now)?;
            Ok(json!({ "data": {} }))
        }),
    }
}

/// Whether `name` is a valid collection name: 1–64 of letters, digits, `_`, `-`, `.`, starting with a
/// letter, digit or `_`.
pub fn valid_collection_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn collection_name(body: &Map<String, Value>) -> DbResult<&str> {
    match body.get("collectionName") {
        Some(Value::String(name)) if valid_collection_name(name) => Ok(name),
        Some(Value::String(name)) => Err(DbError::invalid_param(format!(
            "invalid collectionName {name:?}: 1-64 letters, digits, _ - ."
        ))),
        _ => Err(DbError::invalid_param("collectionName must be provided")),
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The request's `query` (server dates resolved, `'{openid}'` substituted for clients).
fn read_query(body: &Map<String, Value>, caller: &Caller, now: i64) -> DbResult<Value> {
    let mut query = match body.get("query") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(map)) => Value::Object(map.clone()),
        // Some SDK builds send the query as JSON text.
        Some(Value::String(text)) if !text.trim().is_empty() => {
            let parsed: Value = serde_json::from_str(text)
                .map_err(|err| DbError::invalid_param(format!("query is not valid JSON: {err}")))?;
            if !parsed.is_object() {
                return Err(DbError::invalid_param("query must be an object"));
            }
            parsed
        }
        Some(Value::String(_)) => json!({}),
        Some(_) => return Err(DbError::invalid_param("query must be an object")),
    };
    if depth(&query) > MAX_QUERY_DEPTH {
        return Err(DbError::invalid_param(format!(
            "query nests deeper than {MAX_QUERY_DEPTH} levels"
        )));
    }
    resolve_server_dates(&mut query, now);
    if let Caller::User(user) = caller {
        rules::substitute_openid(&mut query, &user.openid);
    }
    Ok(query)
}

fn is_doc_query(body: &Map<String, Value>) -> DbResult<bool> {
    match body.get("queryType") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(kind)) if kind == "WHERE" => Ok(false),
        Some(Value::String(kind)) if kind == "DOC" => Ok(true),
        Some(other) => Err(DbError::invalid_param(format!(
            "queryType must be WHERE or DOC, not {other}"
        ))),
    }
}

fn flag(body: &Map<String, Value>, name: &str, default: bool) -> DbResult<bool> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(DbError::invalid_param(format!(
            "{name} must be a boolean, not {other}"
        ))),
    }
}

fn non_negative(body: &Map<String, Value>, name: &str) -> DbResult<Option<u64>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_u64().or_else(|| {
            value
                .as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 9e15)
                .map(|f| f as u64)
        }) {
            Some(n) => Ok(Some(n)),
            None => Err(DbError::invalid_param(format!(
                "{name} must be a non-negative integer, not {value}"
            ))),
        },
    }
}

/// The effective query and whether each match must be checked, after the permission decision.
struct Authorized {
    query: Value,
    check_each: Option<(Rules, UserCtx, Operation)>,
}

fn authorize(
    meta: &CollectionMeta,
    caller: &Caller,
    op: Operation,
    query: Value,
    by_id: bool,
) -> DbResult<Authorized> {
    let Caller::User(user) = caller else {
        return Ok(Authorized {
            query,
            check_each: None,
        });
    };
    let rules = Rules::parse(&meta.rules)?;
    match rules.decide(op, user, &query, by_id) {
        Decision::Allow => Ok(Authorized {
            query,
            check_each: None,
        }),
        Decision::Filter(filter) => Ok(Authorized {
            query: json!({ "$and": [query, filter] }),
            check_each: None,
        }),
        Decision::CheckEach => Ok(Authorized {
            query,
            check_each: Some((rules, user.clone(), op)),
        }),
        Decision::Deny => Err(rules::denied()),
    }
}

/// Documents matching `query` (insertion order), at most `cap` when given.
fn matching(
    t: &Txn<'_>,
    meta: &CollectionMeta,
    matcher: &Matcher,
    query: &Value,
    cap: Option<usize>,
) -> DbResult<Vec<(i64, Value)>> {
    let plan = plan_query(query, &meta.indexes);
    let mut out = Vec::new();
    t.scan(meta.cid, &plan, &mut |stored| {
        if matcher.matches(&stored.doc)? {
            out.push((stored.seq, stored.doc));
        }
        Ok(cap.is_none_or(|cap| out.len() < cap))
    })?;
    Ok(out)
}

fn check_each(authorized: &Authorized, docs: &[(i64, Value)]) -> DbResult<()> {
    if let Some((rules, user, op)) = &authorized.check_each {
        if docs
            .iter()
            .any(|(_, doc)| !rules.allows_document(*op, user, doc))
        {
            return Err(rules::denied());
        }
    }
    Ok(())
}

/// The stored documents `query` selects (at most `cap`), once `caller`'s rules allow `op` on them.
fn select(
    t: &Txn<'_>,
    meta: &CollectionMeta,
    caller: &Caller,
    op: Operation,
    query: Value,
    by_id: bool,
    cap: Option<usize>,
) -> DbResult<Vec<(i64, Value)>> {
    let authorized = authorize(meta, caller, op, query, by_id)?;
    let matcher = Matcher::new(&authorized.query)?;
    let found = matching(t, meta, &matcher, &authorized.query, cap)?;
    check_each(&authorized, &found)?;
    Ok(found)
}

fn query(
    t: &Txn<'_>,
    caller: &Caller,
    env: &str,
    name: &str,
    body: &Map<String, Value>,
    now: i64,
) -> DbResult<Value> {
    let meta = t.collection(env, name)?;
    let by_id = is_doc_query(body)?;
    let query = read_query(body, caller, now)?;
    let order = SortSpec::from_order(body.get("order").unwrap_or(&Value::Null))?;
    let has_order = body
        .get("order")
        .is_some_and(|o| o.as_array().is_some_and(|a| !a.is_empty()));
    let offset = non_negative(body, "offset")?.unwrap_or(0);
    let limit = match non_negative(body, "limit")? {
        None | Some(0) => DEFAULT_LIMIT,
        Some(n) => n.min(MAX_LIMIT),
    };
    // `{a: 1, b: 0}` fails as it does on MongoDB (the official SDK sends it for `field({a: true, b: false})`).
    let projection = Projection::new(body.get("projection").unwrap_or(&Value::Null))?;
    let authorized = authorize(&meta, caller, Operation::Read, query, by_id)?;
    let matcher = Matcher::new(&authorized.query)?;
    let cap = (by_id && !flag(body, "multi", false)?).then_some(1);
    let found = matching(t, &meta, &matcher, &authorized.query, cap)?;
    check_each(&authorized, &found)?;
    let total = found.len();
    let mut docs: Vec<Value> = found.into_iter().map(|(_, doc)| doc).collect();
    if has_order {
        order.sort(&mut docs);
    } else if let Some(near) = matcher.near() {
        sort_by_distance(&mut docs, near);
    }
    let list = docs
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|doc| projection.apply(&doc))
        .collect::<DbResult<Vec<_>>>()?;
    Ok(json!({
        "data": { "list": list },
        "total": total, "limit": limit, "offset": offset,
        "TotalCount": total, "Limit": limit, "Offset": offset,
    }))
}

fn count(
    t: &Txn<'_>,
    caller: &Caller,
    env: &str,
    name: &str,
    body: &Map<String, Value>,
    now: i64,
) -> DbResult<Value> {
    let meta = t.collection(env, name)?;
    let by_id = is_doc_query(body)?;
    let query = read_query(body, caller, now)?;
    let found = select(t, &meta, caller, Operation::Read, query, by_id, None)?;
    Ok(json!({ "data": { "total": found.len() } }))
}

fn check_size(value: &Value, what: &str) -> DbResult<()> {
    if value.to_string().len() > limits::MAX_RECORD_BYTES {
        return Err(DbError::invalid_param(format!(
            "{what} size must be less than 512 KB"
        )));
    }
    Ok(())
}

/// Builds the stored form of a new document: `_id` first (given or generated), `_openid` for clients.
fn new_document(
    meta: &CollectionMeta,
    caller: &Caller,
    data: &Value,
    fallback_id: Option<&Value>,
    now: i64,
) -> DbResult<Value> {
    if depth(data) > MAX_QUERY_DEPTH {
        return Err(DbError::invalid_param(format!(
            "document nests deeper than {MAX_QUERY_DEPTH} levels"
        )));
    }
    check_size(data, "record")?;
    let Value::Object(map) = prepare_document(data, now)? else {
        return Err(DbError::invalid_param("data must be an object"));
    };
    let id = match map.get("_id").or(fallback_id) {
        Some(id) => {
            id_key(id)?;
            id.clone()
        }
        None => Value::String(new_id()),
    };
    let mut doc = with_id_first(map, id);
    if let Caller::User(user) = caller {
        doc["_openid"] = Value::String(user.openid.clone());
        if !Rules::parse(&meta.rules)?.allows_document(Operation::Create, user, &doc) {
            return Err(rules::denied());
        }
    }
    Ok(doc)
}

fn add(
    t: &Txn<'_>,
    caller: &Caller,
    env: &str,
    name: &str,
    body: &Map<String, Value>,
    now: i64,
) -> DbResult<Value> {
    let meta = t.collection(env, name)?;
    match body.get("data") {
        Some(Value::Array(items)) => {
            if items.is_empty() || items.len() > 1000 {
                return Err(DbError::invalid_param("data must hold 1 to 1000 documents"));
            }
            let mut ids = Vec::with_capacity(items.len());
            for item in items {
                let doc = new_document(&meta, caller, item, None, now)?;
                t.insert(&meta, &doc)?;
                ids.push(doc["_id"].clone());
            }
            Ok(json!({ "data": { "insertedIds": ids } }))
        }
        Some(data @ Value::Object(_)) => {
            let doc = new_document(&meta, caller, data, body.get("_id"), now)?;
            t.insert(&meta, &doc)?;
            Ok(json!({ "data": { "_id": doc["_id"] } }))
        }
        _ => Err(DbError::invalid_param(
            "data must be an object or an array of objects",
        )),
    }
}

/// The document an upsert starts from: `_id` and the query's top-level, non-dotted equalities.
fn upsert_seed(query: &Value) -> Value {
    let mut seed = Map::new();
    for (key, value) in rules::equality_constraints(query) {
        if !key.contains('.') {
            seed.insert(key, value);
        }
    }
    Value::Object(seed)
}

fn update(
    t: &Txn<'_>,
    caller: &Caller,
    env: &str,
    name: &str,
    body: &Map<String, Value>,
    now: i64,
) -> DbResult<Value> {
    let meta = t.collection(env, name)?;
    let by_id = is_doc_query(body)?;
    let multi = flag(body, "multi", false)?;
    let merge = flag(body, "merge", true)?;
    let upsert = flag(body, "upsert", false)?;
    let data = match body.get("data") {
        Some(data @ Value::Object(_)) => data,
        _ => return Err(DbError::invalid_param("data must be an object")),
    };
    if depth(data) > MAX_QUERY_DEPTH {
        return Err(DbError::invalid_param(format!(
            "update nests deeper than {MAX_QUERY_DEPTH} levels"
        )));
    }
    check_size(data, "update expression")?;
    if !merge && is_operator_update(data) {
        return Err(DbError::invalid_param(
            "update operator complicit: set() data must not contain operators",
        ));
    }
    let query = read_query(body, caller, now)?;
    let cap = (!multi).then_some(1);
    let found = select(
        t,
        &meta,
        caller,
        Operation::Update,
        query.clone(),
        by_id,
        cap,
    )?;
    let mut updated = 0u64;
    for (seq, old) in &found {
        let new = if merge {
            apply_update(old, data, now)?
        } else {
            replace_document(old, data, now)?
        };
        check_size(&new, "record")?;
        if let Caller::User(_) = caller {
            if new.get("_openid") != old.get("_openid") {
                return Err(DbError {
                    code: codes::DATABASE_PERMISSION_DENIED,
                    message: "_openid cannot be changed by a client".to_string(),
                });
            }
        }
        if new != *old {
            if merge {
                t.replace(&meta, *seq, &new)?;
            } else {
                t.replace_whole(&meta, *seq, &new)?;
            }
            updated += 1;
        }
    }
    let matched = found.len();
    let mut upserted = Value::Null;
    if matched == 0 && upsert {
        let seed = upsert_seed(&query);
        let doc = if merge {
            apply_upsert_insert(&seed, data, now)?
        } else {
            let mut replacement = data.clone();
            if let (Some(id), Value::Object(map)) = (seed.get("_id"), &mut replacement) {
                map.entry("_id").or_insert(id.clone());
            }
            replacement
        };
        let doc = new_document(&meta, caller, &doc, None, now)?;
        t.insert(&meta, &doc)?;
        upserted = doc["_id"].clone();
    }
    Ok(json!({
        "data": { "updated": updated, "matched": matched, "upserted_id": upserted, "upsert_id": upserted }
    }))
}

fn delete(
    t: &Txn<'_>,
    caller: &Caller,
    env: &str,
    name: &str,
    body: &Map<String, Value>,
    now: i64,
) -> DbResult<Value> {
    let meta = t.collection(env, name)?;
    let by_id = is_doc_query(body)?;
    let multi = flag(body, "multi", false)?;
    let query = read_query(body, caller, now)?;
    let cap = (!multi).then_some(1);
    let found = select(t, &meta, caller, Operation::Delete, query, by_id, cap)?;
    for (seq, _) in &found {
        t.delete(&meta, *seq)?;
    }
    Ok(json!({ "data": { "deleted": found.len() } }))
}

/// Creates (or reconfigures, with `replace`) a collection with rules and indexes (admin endpoint, import).
pub fn ensure_collection(
    store: &DocStore,
    env: &str,
    name: &str,
    rules_value: Option<&Value>,
    indexes: Option<&[String]>,
) -> DbResult<CollectionMeta> {
    if !valid_collection_name(name) {
        return Err(DbError::invalid_param(format!(
            "invalid collection name {name:?}"
        )));
    }
    if let Some(rules_value) = rules_value {
        Rules::parse(rules_value)?;
    }
    if let Some(indexes) = indexes {
        if indexes.len() > super::store::MAX_INDEXES
            || indexes
                .iter()
                .any(|f| f.is_empty() || f.len() > 256 || f.starts_with('$'))
        {
            return Err(DbError::invalid_param(
                "indexes must be up to 100 field paths",
            ));
        }
    }
    store.write(|t| {
        let meta = match t.find_collection(env, name)? {
            Some(meta) => meta,
            None => t.create_collection(env, name, &rules::default_rules(), &[], now_ms())?,
        };
        let rules_value = rules_value.cloned().unwrap_or_else(|| meta.rules.clone());
        let indexes = indexes
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| meta.indexes.clone());
        t.configure_collection(&meta, &rules_value, &indexes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_mixing_fails_as_on_mongodb() {
        let err = Projection::new(&json!({"a": 1, "b": 0})).unwrap_err();
        assert_eq!(err.code, "INVALID_PARAM");
        assert!(
            err.message.contains("Cannot do exclusion on field b"),
            "{}",
            err.message
        );
        assert!(Projection::new(&json!({"a": 1, "_id": 0})).is_ok());
        assert!(Projection::new(&json!({"b": 0})).is_ok());
    }

    #[test]
    fn collection_names() {
        assert!(valid_collection_name("todos"));
        assert!(valid_collection_name("a_b-c.d"));
        assert!(!valid_collection_name(""));
        assert!(!valid_collection_name(".x"));
        assert!(!valid_collection_name("a/b"));
        assert!(!valid_collection_name(&"a".repeat(65)));
    }
}
