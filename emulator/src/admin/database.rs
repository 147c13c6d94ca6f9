//! The `database.*` actions of the admin protocol (admin-protocol.md §6, §7, §9), over the engine.
//!
//! Queries, updates, documents, orders and projections arrive as canonical EJSON text; they are turned
//! into the engine's wire form ([`cloud_engine::extended_json`]) and run as the admin (collection rules
//! do not apply; no `_openid` is added) by the same code as the `/web` actions. Documents go back as
//! EJSON text. With a `transactionId`, reads and writes go to the open transaction
//! ([`cloud_engine::transaction`]): single documents by `_id` only, as CloudBase allows.

use cloud_engine::extended_json::{from_canonical, parse_canonical, to_canonical_text};
use cloud_engine::{Caller, DbError, DbResult};
use serde_json::{json, Map, Value};

use super::AdminRequest;
use crate::database::service::{execute, now_ms, Action};
use crate::error::ApiError;
use crate::server::AppState;

/// Runs `database.<action>`.
pub async fn handle(
    state: &AppState,
    request: &AdminRequest,
    action: &str,
) -> Result<Value, ApiError> {
    let env = request.env.clone();
    let body = request.body.clone();
    let action = action.to_string();
    let transactions = state.database().transactions();
    state
        .database()
        .run(move |store| {
            let now = now_ms();
            match action.as_str() {
                "startTransaction" => {
                    let id = transactions.start(store, &env)?;
                    Ok(json!({ "transactionId": id }))
                }
                "commitTransaction" => {
                    transactions.commit(store, transaction_id(&body)?.unwrap_or(""), &env)?;
                    Ok(json!({}))
                }
                "abortTransaction" => {
                    transactions.abort(store, transaction_id(&body)?.unwrap_or(""), &env)?;
                    Ok(json!({}))
                }
                _ => match transaction_id(&body)? {
                    Some(id) => in_transaction(store, &transactions, id, &env, &action, &body, now),
                    None => outside_transaction(store, &env, &action, &body, now),
                },
            }
        })
        .await
}

fn transaction_id(body: &Map<String, Value>) -> DbResult<Option<&str>> {
    match body.get("transactionId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if id.is_empty() => Ok(None),
        Some(Value::String(id)) => Ok(Some(id)),
        Some(_) => Err(DbError::invalid_param("transactionId must be a string")),
    }
}

/// A body field holding EJSON text (or, leniently, an already parsed value), in wire form.
fn ejson_field(body: &Map<String, Value>, name: &str) -> DbResult<Option<Value>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => parse_canonical(text, name).map(Some),
        Some(other) => from_canonical(other.clone()).map(Some),
    }
}

fn collection_name(body: &Map<String, Value>) -> DbResult<&str> {
    body.get("collectionName")
        .and_then(Value::as_str)
        .ok_or_else(|| DbError::invalid_param("collectionName must be provided"))
}

/// `order` as EJSON `{"field": 1 | -1, …}` → the `/web` form `[{field, direction}]`.
fn order(body: &Map<String, Value>) -> DbResult<Option<Value>> {
    let Some(order) = ejson_field(body, "order")? else {
        return Ok(None);
    };
    let Value::Object(fields) = order else {
        return Err(DbError::invalid_param("order must be an object"));
    };
    let keys = fields
        .into_iter()
        .map(|(field, direction)| {
            let direction = match direction.as_f64() {
                Some(d) if d > 0.0 => "asc",
                Some(d) if d < 0.0 => "desc",
                _ => {
                    return Err(DbError::invalid_param(format!(
                        "order of {field} must be 1 or -1"
                    )))
                }
            };
            Ok(json!({ "field": field, "direction": direction }))
        })
        .collect::<DbResult<Vec<_>>>()?;
    Ok(Some(Value::Array(keys)))
}

/// The EJSON text of each document of a result list.
fn ejson_list(list: &Value) -> Value {
    Value::Array(
        list.as_array()
            .map(|docs| {
                docs.iter()
                    .map(|d| Value::String(to_canonical_text(d)))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

fn copy(from: &Map<String, Value>, to: &mut Map<String, Value>, names: &[&str]) {
    for name in names {
        if let Some(value) = from.get(*name) {
            to.insert((*name).to_string(), value.clone());
        }
    }
}

/// The documents of an `insertDocument` (`data: ["<EJSON>", …]`).
fn inserted_documents(body: &Map<String, Value>) -> DbResult<Vec<Value>> {
    match body.get("data") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(text) => parse_canonical(text, "data"),
                other => from_canonical(other.clone()),
            })
            .collect(),
        _ => Err(DbError::invalid_param(
            "data must be a non-empty array of EJSON documents",
        )),
    }
}

fn outside_transaction(
    store: &cloud_engine::store::DocStore,
    env: &str,
    action: &str,
    body: &Map<String, Value>,
    now: i64,
) -> DbResult<Value> {
    let name = collection_name(body)?;
    let mut web = Map::new();
    web.insert("collectionName".into(), Value::String(name.to_string()));
    copy(
        body,
        &mut web,
        &["queryType", "multi", "merge", "upsert", "offset", "limit"],
    );
    if let Some(query) = ejson_field(body, "query")? {
        web.insert("query".into(), query);
    }
    let run = |action: Action, web: &Map<String, Value>| {
        execute(store, &Caller::Admin, env, action, web, now)
    };
    match action {
        "addCollection" => run(Action::AddCollection, &web).map(|_| json!({})),
        "insertDocument" => {
            web.insert("data".into(), Value::Array(inserted_documents(body)?));
            let answer = run(Action::Add, &web)?;
            Ok(json!({ "data": { "insertedIds": answer["data"]["insertedIds"] } }))
        }
        "getDocument" => {
            if let Some(order) = order(body)? {
                web.insert("order".into(), order);
            }
            if let Some(projection) = ejson_field(body, "projection")? {
                web.insert("projection".into(), projection);
            }
            let answer = run(Action::Query, &web)?;
            Ok(json!({ "data": {
                "list": ejson_list(&answer["data"]["list"]),
                "total": answer["total"], "limit": answer["limit"], "offset": answer["offset"],
            } }))
        }
        "calculateDocument" => {
            let answer = run(Action::Count, &web)?;
            Ok(json!({ "data": { "total": answer["data"]["total"] } }))
        }
        "modifyDocument" => {
            let data = ejson_field(body, "data")?
                .ok_or_else(|| DbError::invalid_param("data must be an EJSON update"))?;
            web.insert("data".into(), data);
            let answer = run(Action::Update, &web)?;
            let mut data = json!({ "updated": answer["data"]["updated"] });
            let upserted = &answer["data"]["upsert_id"];
            if !upserted.is_null() {
                data["upsert_id"] = upserted.clone();
            }
            Ok(json!({ "data": data }))
        }
        "removeDocument" => {
            let answer = run(Action::Delete, &web)?;
            Ok(json!({ "data": { "deleted": answer["data"]["deleted"] } }))
        }
        "aggregateDocuments" => {
            let stages = body
                .get("stages")
                .and_then(Value::as_array)
                .ok_or_else(|| DbError::invalid_param("stages must be an array"))?
                .iter()
                .map(|stage| {
                    let value = match stage.get("stageValue") {
                        Some(Value::String(text)) => parse_canonical(text, "stageValue")?,
                        Some(other) => from_canonical(other.clone())?,
                        None => Value::Null,
                    };
                    Ok(json!({ "stageKey": stage.get("stageKey"), "stageValue": value }))
                })
                .collect::<DbResult<Vec<_>>>()?;
            web.insert("stages".into(), Value::Array(stages));
            let answer = run(Action::Aggregate, &web)?;
            // The `/web` answer: the JSON text of an array of EJSON texts.
            let texts: Vec<String> = match &answer["data"]["list"] {
                Value::String(text) => serde_json::from_str(text).map_err(|err| {
                    DbError::invalid_param(format!("aggregate answer is not a list: {err}"))
                })?,
                _ => Vec::new(),
            };
            let list = texts
                .iter()
                .map(|text| {
                    Ok(Value::String(to_canonical_text(&parse_canonical(
                        text, "row",
                    )?)))
                })
                .collect::<DbResult<Vec<_>>>()?;
            Ok(json!({ "data": { "list": list } }))
        }
        other => Err(DbError {
            code: cloud_protocol::codes::INVALID_ACTION,
            message: format!("action database.{other} is not supported by cloud-emulator"),
        }),
    }
}

/// The `_id` a transactional request addresses: `queryType: "DOC"` with `query: {"_id": …}`.
fn document_id(body: &Map<String, Value>) -> DbResult<Value> {
    let by_id = body.get("queryType").and_then(Value::as_str) == Some("DOC");
    let query = ejson_field(body, "query")?;
    match (by_id, query.as_ref().and_then(|q| q.get("_id"))) {
        (true, Some(id)) if query.as_ref().and_then(Value::as_object).map(Map::len) == Some(1) => {
            Ok(id.clone())
        }
        _ => Err(DbError::invalid_param(
            "inside a transaction only single documents can be read and written, by _id (doc(id))",
        )),
    }
}

fn flag(body: &Map<String, Value>, name: &str, default: bool) -> bool {
    body.get(name).and_then(Value::as_bool).unwrap_or(default)
}

fn in_transaction(
    store: &cloud_engine::store::DocStore,
    transactions: &cloud_engine::transaction::Transactions,
    id: &str,
    env: &str,
    action: &str,
    body: &Map<String, Value>,
    now: i64,
) -> DbResult<Value> {
    let name = collection_name(body)?;
    match action {
        "insertDocument" => {
            let ids = inserted_documents(body)?
                .iter()
                .map(|doc| transactions.insert(store, id, env, name, doc, now))
                .collect::<DbResult<Vec<_>>>()?;
            Ok(json!({ "data": { "insertedIds": ids } }))
        }
        "getDocument" => {
            let doc = transactions.get(store, id, env, name, &document_id(body)?)?;
            let doc = match (doc, ejson_field(body, "projection")?) {
                (Some(doc), Some(spec)) => Some(cloud_engine::Projection::new(&spec)?.apply(&doc)?),
                (doc, _) => doc,
            };
            Ok(json!({ "data": { "list": ejson_list(&Value::Array(doc.into_iter().collect())) } }))
        }
        "modifyDocument" => {
            let data = ejson_field(body, "data")?
                .ok_or_else(|| DbError::invalid_param("data must be an EJSON update"))?;
            let (updated, upserted) = transactions.update(
                store,
                id,
                env,
                name,
                &document_id(body)?,
                &data,
                flag(body, "merge", true),
                flag(body, "upsert", false),
                now,
            )?;
            let mut data = json!({ "updated": updated });
            if let Some(upserted) = upserted {
                data["upsert_id"] = upserted;
            }
            Ok(json!({ "data": data }))
        }
        "removeDocument" => {
            let deleted = transactions.remove(store, id, env, name, &document_id(body)?)?;
            Ok(json!({ "data": { "deleted": deleted } }))
        }
        other => Err(DbError::invalid_param(format!(
            "database.{other} cannot run inside a transaction"
        ))),
    }
}
