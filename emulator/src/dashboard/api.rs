//! The dashboard's JSON API (`/_/api/*`, behind [`super::require_access`]): a thin layer over the same
//! services the protocol routes use — the document store through `database::service::execute` with the
//! admin caller, the object store, the functions runtime, the sessions, the request log.
//!
//! Errors answer `{"code","message"}` with the HTTP status of [`ApiError::http_status`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cloud_protocol::codes;
use serde_json::{json, Map, Value};

use super::requests::Changes;
use crate::auth::Identity;
use crate::body::{parse_json, read_limited};
use crate::config::MAX_REQUEST_BYTES;
use crate::database::import_export::relax;
use crate::database::rules::{Caller, Rules};
use crate::database::service::{execute, now_ms, Action};
use crate::error::{json_response, new_request_id, ApiError};
use crate::functions::InvokeContext;
use crate::server::AppState;
use crate::storage::ops::{blocking, check_path};
use crate::storage::store::{new_blob_id, DeleteOutcome, ObjectMeta};

/// Changes closer together than this are pushed as one event (a burst of writes, one reload).
const COALESCE: Duration = Duration::from_millis(100);
/// At most one event per this interval: under a steady load the page reloads once a second, which keeps
/// it live without taking CPU from the API it watches (see `bench/throughput.mjs`).
const MIN_EVENT_INTERVAL: Duration = Duration::from_secs(1);
/// Largest page of documents.
const MAX_PAGE: u64 = 200;
/// Largest file listing.
const MAX_FILES: usize = 1000;

type Params = Query<HashMap<String, String>>;

/// The API routes (mounted under the access check by [`super::routes`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_/api/overview", get(overview))
        .route("/_/api/events", get(events))
        .route(
            "/_/api/database/collections",
            get(list_collections)
                .post(create_collection)
                .delete(delete_collection),
        )
        .route("/_/api/database/rules", post(set_rules))
        .route(
            "/_/api/database/documents",
            get(list_documents)
                .post(add_document)
                .put(replace_document)
                .delete(delete_document),
        )
        .route("/_/api/database/export", get(export_collection))
        .route("/_/api/database/import", post(import_collection))
        .route("/_/api/storage/files", get(list_files))
        .route(
            "/_/api/storage/file",
            get(get_file).post(put_file).delete(delete_file),
        )
        .route("/_/api/functions", get(list_functions))
        .route("/_/api/functions/invocations", get(list_invocations))
        .route("/_/api/functions/run", post(run_function))
        .route("/_/api/users", get(list_users))
        .route("/_/api/users/sign-out", post(sign_out_user))
        .route("/_/api/requests", get(list_requests))
}

fn answer(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(err) => json_response(err.http_status(), &err.body(&new_request_id())),
    }
}

fn db_error(err: crate::database::DbError) -> ApiError {
    ApiError::new(err.code, err.message)
}

async fn read_object(body: Body) -> Result<Map<String, Value>, ApiError> {
    let bytes = read_limited(body, MAX_REQUEST_BYTES).await?;
    match parse_json(&bytes, "request body")? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid_param(
            "request body must be a JSON object",
        )),
    }
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ApiError::invalid_param(format!("{key} must be a non-empty string")))
}

fn param<'a>(params: &'a HashMap<String, String>, key: &str) -> Result<&'a str, ApiError> {
    params
        .get(key)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ApiError::invalid_param(format!("?{key}= is required")))
}

fn env_of(state: &AppState, env: Option<&str>) -> Result<String, ApiError> {
    state.check_env(env)
}

/// Runs a database action as the admin (no rules), on a blocking thread.
async fn run_action(
    state: &AppState,
    env: String,
    action: Action,
    body: Value,
) -> Result<Value, ApiError> {
    let Value::Object(body) = body else {
        return Err(ApiError::invalid_param("body must be an object"));
    };
    state
        .database()
        .run(move |store| execute(store, &Caller::Admin, &env, action, &body, now_ms()))
        .await
}

fn bump(state: &AppState, area: fn(&mut Changes) -> &mut u64) {
    state.dashboard().requests().changed(area);
}

// ---- live updates ------------------------------------------------------------------------------

/// Resolves once the dashboard is closing (never holding the non-Send watch guard across an await).
async fn until_closed(closing: &mut tokio::sync::watch::Receiver<bool>) {
    if closing.wait_for(|closed| *closed).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `GET /_/api/events`: SSE, one `change` event with the [`Changes`] counters at once and after every
/// change (coalesced over [`COALESCE`], at most one per [`MIN_EVENT_INTERVAL`]); ends when the server
/// stops.
async fn events(
    State(state): State<AppState>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let changes = state.dashboard().requests().subscribe();
    let closing = state.dashboard().closing();
    let stream = futures_util::stream::unfold(
        (changes, closing, None::<tokio::time::Instant>),
        |(mut changes, mut closing, last_sent)| async move {
            if let Some(last_sent) = last_sent {
                tokio::select! {
                    changed = changes.changed() => changed.ok()?,
                    _ = until_closed(&mut closing) => return None,
                }
                let due =
                    (last_sent + MIN_EVENT_INTERVAL).max(tokio::time::Instant::now() + COALESCE);
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = until_closed(&mut closing) => return None,
                }
            }
            let snapshot = *changes.borrow_and_update();
            let event = Event::default().event("change").json_data(snapshot).ok()?;
            Some((
                Ok(event),
                (changes, closing, Some(tokio::time::Instant::now())),
            ))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

// ---- overview ----------------------------------------------------------------------------------

fn function_names(state: &AppState) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(state.functions().functions_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
        .filter(|name| crate::functions::is_valid_name(name))
        .collect();
    names.sort();
    names
}

async fn overview(State(state): State<AppState>) -> Response {
    answer(
        async {
            let (collections, documents, mut envs) = state
                .database()
                .run(|store| {
                    store.read(|t| {
                        let metas = t.collections(None)?;
                        let mut documents = 0;
                        for meta in &metas {
                            documents += t.document_count(meta)?;
                        }
                        let envs: Vec<String> = metas.iter().map(|m| m.env.clone()).collect();
                        Ok((metas.len(), documents, envs))
                    })
                })
                .await?;
            let storage = state.storage().clone();
            let (files, bytes) = blocking(move || storage.store().totals()).await?;
            let users = list_users_of(&state, None).await?;
            envs.extend(users.iter().map(|u| u.env.clone()));
            envs.extend(state.config().env.clone());
            envs.sort();
            envs.dedup();
            let errors: Vec<super::requests::RequestEntry> = state
                .dashboard()
                .requests()
                .recent(0, 10, |entry| !entry.code.is_empty())
                .iter()
                .map(|entry| (**entry).clone())
                .collect();
            Ok(json!({
                "url": format!("http://127.0.0.1:{}", state.port()),
                "port": state.port(),
                "dataDir": std::path::absolute(&state.config().data_dir)
                    .unwrap_or_else(|_| state.config().data_dir.clone()),
                "functionsDir": state.functions().functions_dir(),
                "pinnedEnv": state.config().env,
                "envs": envs,
                "uptimeSecs": state.dashboard().uptime_secs(),
                "counts": {
                    "collections": collections,
                    "documents": documents,
                    "files": files,
                    "fileBytes": bytes,
                    "users": users.len(),
                    "functions": function_names(&state).len(),
                },
                "recentErrors": errors,
            }))
        }
        .await,
    )
}

// ---- database ----------------------------------------------------------------------------------

async fn list_collections(State(state): State<AppState>, Query(params): Params) -> Response {
    answer(
        async {
            let env = env_of(&state, params.get("env").map(String::as_str))?;
            let list = state
                .database()
                .run(move |store| {
                    store.read(|t| {
                        let mut out = Vec::new();
                        for meta in t.collections(Some(&env))? {
                            out.push(json!({
                                "name": meta.name,
                                "rules": meta.rules,
                                "indexes": meta.indexes,
                                "count": t.document_count(&meta)?,
                            }));
                        }
                        Ok(out)
                    })
                })
                .await?;
            Ok(json!({ "collections": list }))
        }
        .await,
    )
}

/// Parses rules the way stored rules are parsed: a preset name or a custom rules object.
fn checked_rules(value: Option<&Value>) -> Result<Option<Value>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(rules) => {
            Rules::parse(rules).map_err(db_error)?;
            Ok(Some(rules.clone()))
        }
    }
}

async fn create_collection(State(state): State<AppState>, body: Body) -> Response {
    answer(
        async {
            let body = read_object(body).await?;
            let env = env_of(&state, body.get("env").and_then(Value::as_str))?;
            let name = text(&body, "name")?.to_string();
            let rules = checked_rules(body.get("rules"))?;
            let answer = run_action(
                &state,
                env.clone(),
                Action::AddCollection,
                json!({ "collectionName": name }),
            )
            .await?;
            if let Some(rules) = rules {
                state
                    .database()
                    .run(move |store| {
                        crate::database::service::ensure_collection(
                            store,
                            &env,
                            &name,
                            Some(&rules),
                            None,
                        )
                    })
                    .await?;
            }
            bump(&state, |c| &mut c.database);
            Ok(answer)
        }
        .await,
    )
}

async fn delete_collection(State(state): State<AppState>, Query(params): Params) -> Response {
    answer(
        async {
            let env = env_of(&state, params.get("env").map(String::as_str))?;
            let name = param(&params, "name")?.to_string();
            state
                .database()
                .run(move |store| {
                    store.write(|t| {
                        let meta = t.collection(&env, &name)?;
                        t.drop_collection(&meta)
                    })
                })
                .await?;
            bump(&state, |c| &mut c.database);
            Ok(json!({}))
        }
        .await,
    )
}

async fn set_rules(State(state): State<AppState>, body: Body) -> Response {
    answer(
        async {
            let body = read_object(body).await?;
            let env = env_of(&state, body.get("env").and_then(Value::as_str))?;
            let name = text(&body, "name")?.to_string();
            let rules = checked_rules(body.get("rules"))?
                .ok_or_else(|| ApiError::invalid_param("rules are required"))?;
            let meta = state
                .database()
                .run(move |store| {
                    store.read(|t| t.collection(&env, &name))?;
                    crate::database::service::ensure_collection(
                        store,
                        &env,
                        &name,
                        Some(&rules),
                        None,
                    )
                })
                .await?;
            bump(&state, |c| &mut c.database);
            Ok(json!({ "name": meta.name, "rules": meta.rules }))
        }
        .await,
    )
}

/// A JSON document or query typed by a person: extended JSON (`{"$date": "2026-01-01T00:00:00Z"}`,
/// `{"$numberLong": "5"}`, `{"$oid": …}`) becomes the wire form.
fn from_editor(mut value: Value) -> Value {
    relax(&mut value);
    value
}

async fn list_documents(State(state): State<AppState>, Query(params): Params) -> Response {
    answer(
        async {
            let env = env_of(&state, params.get("env").map(String::as_str))?;
            let collection = param(&params, "collection")?.to_string();
            let query = match params.get("where").map(|w| w.trim()).filter(|w| !w.is_empty()) {
                None => json!({}),
                Some(text) => match serde_json::from_str::<Value>(text) {
                    Ok(value @ Value::Object(_)) => from_editor(value),
                    Ok(_) => return Err(ApiError::invalid_param("where must be a JSON object")),
                    Err(err) => {
                        return Err(ApiError::invalid_param(format!(
                            "where is not valid JSON: {err}"
                        )))
                    }
                },
            };
            let number = |key: &str, default: u64| {
                params
                    .get(key)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(default)
            };
            let offset = number("offset", 0);
            let limit = number("limit", 20).clamp(1, MAX_PAGE);
            let page = run_action(
                &state,
                env.clone(),
                Action::Query,
                json!({ "collectionName": collection, "query": query, "offset": offset, "limit": limit }),
            )
            .await?;
            let total = run_action(
                &state,
                env,
                Action::Count,
                json!({ "collectionName": collection, "query": query }),
            )
            .await?;
            Ok(json!({
                "documents": page["data"]["list"],
                "total": total["data"]["total"],
                "offset": offset,
                "limit": limit,
            }))
        }
        .await,
    )
}

/// The `document` field of an editor request, as the wire form, without `_id` when `drop_id`.
fn edited_document(body: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    match body.get("document").cloned().map(from_editor) {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::invalid_param("document must be a JSON object")),
    }
}

async fn add_document(State(state): State<AppState>, body: Body) -> Response {
    answer(
        async {
            let body = read_object(body).await?;
            let env = env_of(&state, body.get("env").and_then(Value::as_str))?;
            let collection = text(&body, "collection")?.to_string();
            let document = edited_document(&body)?;
            let answer = run_action(
                &state,
                env,
                Action::Add,
                json!({ "collectionName": collection, "data": document }),
            )
            .await?;
            bump(&state, |c| &mut c.database);
            Ok(answer["data"].clone())
        }
        .await,
    )
}

async fn replace_document(State(state): State<AppState>, body: Body) -> Response {
    answer(
        async {
            let body = read_object(body).await?;
            let env = env_of(&state, body.get("env").and_then(Value::as_str))?;
            let collection = text(&body, "collection")?.to_string();
            let id = body
                .get("id")
                .cloned()
                .filter(|id| !id.is_null())
                .ok_or_else(|| ApiError::invalid_param("id is required"))?;
            let mut document = edited_document(&body)?;
            if document.get("_id").is_some_and(|given| *given != id) {
                return Err(ApiError::invalid_param("_id cannot be changed"));
            }
            document.remove("_id");
            let answer = run_action(
                &state,
                env,
                Action::Update,
                json!({ "collectionName": collection, "queryType": "DOC", "query": { "_id": id },
                        "data": document, "merge": false }),
            )
            .await?;
            if answer["data"]["matched"] == 0 {
                return Err(ApiError::new(
                    codes::RESOURCE_NOT_FOUND,
                    "no document with this _id (deleted meanwhile?)",
                ));
            }
            bump(&state, |c| &mut c.database);
            Ok(answer["data"].clone())
        }
        .await,
    )
}

async fn delete_document(State(state): State<AppState>, Query(params): Params) -> Response {
    answer(
        async {
            let env = env_of(&state, params.get("env").map(String::as_str))?;
            let collection = param(&params, "collection")?.to_string();
            let id: Value = serde_json::from_str(param(&params, "id")?)
                .map_err(|_| ApiError::invalid_param("id must be JSON (a quoted string)"))?;
            let answer = run_action(
                &state,
                env,
                Action::Delete,
                json!({ "collectionName": collection, "queryType": "DOC", "query": { "_id": id } }),
            )
            .await?;
            bump(&state, |c| &mut c.database);
            Ok(answer["data"].clone())
        }
        .await,
    )
}

fn attachment(content_type: &'static str, file_name: &str, body: Vec<u8>) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        file_name.replace(['"', '\\', '\r', '\n'], "_")
    )) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `GET /_/api/database/export?env&collection[&rules=1]`: `<collection>.json` (JSON Lines, the
/// `--import` layout) or `<collection>.rules.json`.
async fn export_collection(State(state): State<AppState>, Query(params): Params) -> Response {
    let result = async {
        let env = env_of(&state, params.get("env").map(String::as_str))?;
        let name = param(&params, "collection")?.to_string();
        let rules_only = params.get("rules").is_some_and(|v| v == "1");
        let lookup = name.clone();
        let (meta, documents) = state
            .database()
            .run(move |store| {
                store.read(|t| {
                    let meta = t.collection(&env, &lookup)?;
                    let documents = if rules_only {
                        Vec::new()
                    } else {
                        t.documents(&meta)?
                    };
                    Ok((meta, documents))
                })
            })
            .await?;
        if rules_only {
            let mut text = serde_json::to_vec_pretty(&meta.rules).unwrap_or_default();
            text.push(b'\n');
            return Ok(attachment(
                "application/json",
                &format!("{name}.rules.json"),
                text,
            ));
        }
        let mut lines = Vec::new();
        for document in documents {
            let _ = writeln!(lines, "{document}");
        }
        Ok(attachment(
            "application/x-ndjson",
            &format!("{name}.json"),
            lines,
        ))
    }
    .await;
    result.unwrap_or_else(|err: ApiError| answer(Err(err)))
}

/// `POST /_/api/database/import?env&collection`, body JSON Lines (the `--import` layout): creates the
/// collection if missing and upserts every document by `_id` (one without gets a new id).
async fn import_collection(
    State(state): State<AppState>,
    Query(params): Params,
    body: Body,
) -> Response {
    answer(
        async {
            let env = env_of(&state, params.get("env").map(String::as_str))?;
            let name = param(&params, "collection")?.to_string();
            let bytes = read_limited(body, MAX_REQUEST_BYTES).await?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::invalid_param("the file is not UTF-8 text"))?;
            let mut documents = Vec::new();
            for (number, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match parse_json(line.as_bytes(), "line") {
                    Ok(Value::Object(map)) => documents.push(from_editor(Value::Object(map))),
                    _ => {
                        return Err(ApiError::invalid_param(format!(
                            "line {} is not a JSON object",
                            number + 1
                        )))
                    }
                }
            }
            let collection = name.clone();
            let target = env.clone();
            state
                .database()
                .run(move |store| {
                    crate::database::service::ensure_collection(
                        store,
                        &target,
                        &collection,
                        None,
                        None,
                    )
                })
                .await?;
            let count = documents.len();
            for document in documents {
                let Value::Object(mut map) = document else {
                    continue;
                };
                let body = match map.remove("_id") {
                    Some(id) => json!({ "collectionName": name, "queryType": "DOC",
                        "query": { "_id": id }, "data": map, "merge": false, "upsert": true }),
                    None => json!({ "collectionName": name, "data": map }),
                };
                let action = if body.get("upsert").is_some() {
                    Action::Update
                } else {
                    Action::Add
                };
                run_action(&state, env.clone(), action, body).await?;
            }
            bump(&state, |c| &mut c.database);
            Ok(json!({ "imported": count }))
        }
        .await,
    )
}

/// Which rule refused a database request, for the request log: the collection's rule for the
/// operation of `action`.
pub async fn explain_denial(state: &AppState, env: &str, collection: &str, action: &str) -> String {
    let (env_owned, name) = (env.to_string(), collection.to_string());
    let meta = state
        .database()
        .run(move |store| store.read(|t| t.find_collection(&env_owned, &name)))
        .await;
    let Ok(Some(meta)) = meta else {
        return format!("collection {collection} (rules not found)");
    };
    let operation = match action {
        "database.addDocument" => "create",
        "database.updateDocument" => "update",
        "database.deleteDocument" => "delete",
        _ => "read",
    };
    describe_rule(collection, &meta.rules, operation)
}

/// `collection`'s rule for `operation`: a preset, or the custom rule that applies (`create`, `update`
/// and `delete` fall back to `write`).
pub fn describe_rule(collection: &str, rules: &Value, operation: &str) -> String {
    let preset = match rules {
        Value::Null => Some("PRIVATE"),
        Value::String(name) => Some(name.as_str()),
        Value::Object(map) if map.is_empty() => Some("PRIVATE"),
        Value::Object(map) => map
            .get("aclTag")
            .or_else(|| map.get("preset"))
            .and_then(Value::as_str),
        _ => None,
    };
    if let Some(preset) = preset {
        return format!("{collection}: preset {preset} ({operation})");
    }
    let Value::Object(map) = rules else {
        return format!("{collection}: {rules}");
    };
    let fallback = (operation != "read").then_some("write");
    match map
        .get(operation)
        .map(|rule| (operation, rule))
        .or_else(|| fallback.and_then(|key| map.get(key).map(|rule| (key, rule))))
    {
        Some((key, rule)) => format!("{collection}: \"{key}\": {rule}"),
        None => format!("{collection}: no \"{operation}\" rule (missing means denied)"),
    }
}

// ---- storage -----------------------------------------------------------------------------------

fn file_json(meta: &ObjectMeta) -> Value {
    json!({
        "path": meta.path,
        "fileID": crate::storage::file_id(&meta.env, &meta.path),
        "size": meta.size,
        "contentType": meta.content_type,
        "owner": meta.owner_openid,
        "updated": meta.updated_ms,
    })
}

async fn list_files(State(state): State<AppState>, Query(params): Params) -> Response {
    answer(
        async {
            let env = env_of(&state, params.get("env").map(String::as_str))?;
            let prefix = params.get("prefix").cloned().unwrap_or_default();
            let storage = state.storage().clone();
            let lookup = env.clone();
            let files = blocking(move || storage.store().list(&lookup, &prefix, MAX_FILES)).await?;
            Ok(json!({
                "files": files.iter().map(file_json).collect::<Vec<_>>(),
                "truncated": files.len() == MAX_FILES,
                "rule": state.storage().rules().rule_for(&env).name(),
            }))
        }
        .await,
    )
}

/// Types shown inline in the dashboard (images but SVG, text); everything else is a download, and
/// nothing served here may run script in the dashboard's origin (CSP sandbox, nosniff).
fn previewable(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (essence.starts_with("image/") && essence != "image/svg+xml")
        || essence == "text/plain"
        || essence == "application/json"
}

async fn get_file(State(state): State<AppState>, Query(params): Params) -> Response {
    let result = async {
        let env = env_of(&state, params.get("env").map(String::as_str))?;
        let path = param(&params, "path")?.to_string();
        let download = params.get("download").is_some_and(|v| v == "1");
        let storage = state.storage().clone();
        let found = blocking(move || {
            let Some((meta, mut file)) = storage.store().open_object(&env, &path)? else {
                return Ok(None);
            };
            let mut bytes = Vec::with_capacity(meta.size as usize);
            std::io::Read::read_to_end(&mut file, &mut bytes)?;
            Ok(Some((meta, bytes)))
        })
        .await?;
        let Some((meta, bytes)) = found else {
            return Err(ApiError::new(codes::RESOURCE_NOT_FOUND, "no such file"));
        };
        let inline = !download && previewable(&meta.content_type);
        let name = meta.path.rsplit('/').next().unwrap_or("file").to_string();
        let mut response = if inline {
            let content_type = if meta.content_type.starts_with("image/") {
                meta.content_type.clone()
            } else {
                "text/plain; charset=utf-8".to_string()
            };
            let mut response = bytes.into_response();
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        } else {
            attachment("application/octet-stream", &name, bytes)
        };
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }
    .await;
    result.unwrap_or_else(|err: ApiError| answer(Err(err)))
}

/// `POST /_/api/storage/file?env&path`, the raw body: stores it as the admin (no owner), replacing
/// what is there.
async fn put_file(
    State(state): State<AppState>,
    Query(params): Params,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Response {
    answer(
        async {
            let env = env_of(&state, params.get("env").map(String::as_str))?;
            let path = param(&params, "path")?.to_string();
            check_path(&path)?;
            let limit = state.storage().max_upload_bytes() as usize;
            let bytes = read_limited(body, limit).await?;
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| {
                    mime_guess::from_path(&path)
                        .first_or_octet_stream()
                        .to_string()
                });
            let storage = state.storage().clone();
            let stored = blocking(move || {
                use sha2::Digest;
                let blob_id = new_blob_id();
                let blob_path = storage.store().blob_path(&blob_id);
                let mut file = std::fs::File::create(&blob_path)?;
                file.write_all(&bytes)?;
                file.sync_all()?;
                std::fs::File::open(storage.store().blobs_dir())?.sync_all()?;
                let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
                let now = crate::functions::invocations::now_ms();
                let meta = ObjectMeta {
                    env,
                    path,
                    blob_id,
                    size: bytes.len() as u64,
                    content_type,
                    etag: format!("\"{sha256}\""),
                    sha256,
                    owner_openid: String::new(),
                    created_ms: now,
                    updated_ms: now,
                };
                let row = meta.clone();
                storage.store().commit(meta, |_| true)?;
                Ok(row)
            })
            .await?;
            bump(&state, |c| &mut c.storage);
            Ok(file_json(&stored))
        }
        .await,
    )
}

async fn delete_file(State(state): State<AppState>, Query(params): Params) -> Response {
    answer(
        async {
            let env = env_of(&state, params.get("env").map(String::as_str))?;
            let path = param(&params, "path")?.to_string();
            let storage = state.storage().clone();
            match blocking(move || storage.store().delete(&env, &path, |_| true)).await? {
                DeleteOutcome::Deleted => {
                    bump(&state, |c| &mut c.storage);
                    Ok(json!({}))
                }
                _ => Err(ApiError::new(codes::RESOURCE_NOT_FOUND, "no such file")),
            }
        }
        .await,
    )
}

// ---- functions ---------------------------------------------------------------------------------

async fn list_functions(State(state): State<AppState>) -> Response {
    let calls = state.functions().invocations().recent(None, 0, usize::MAX);
    let functions: Vec<Value> = function_names(&state)
        .into_iter()
        .map(|name| {
            let mine: Vec<_> = calls.iter().filter(|call| call.function == name).collect();
            json!({
                "name": name,
                "calls": mine.len(),
                "errors": mine.iter().filter(|call| call.status != "ok").count(),
                "lastCall": mine.first().map(|call| call.started),
            })
        })
        .collect();
    answer(Ok(json!({
        "functionsDir": state.functions().functions_dir(),
        "functions": functions,
    })))
}

async fn list_invocations(State(state): State<AppState>, Query(params): Params) -> Response {
    let after = params
        .get("after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit = params
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(50usize)
        .min(500);
    let function = params
        .get("function")
        .map(String::as_str)
        .filter(|f| !f.is_empty());
    let calls = state
        .functions()
        .invocations()
        .recent(function, after, limit);
    let calls: Vec<&crate::functions::invocations::Invocation> =
        calls.iter().map(|c| &**c).collect();
    answer(Ok(json!({ "invocations": calls })))
}

/// `POST /_/api/functions/run` `{env, name, event, openid?}`: calls the function as the admin would.
async fn run_function(State(state): State<AppState>, body: Body) -> Response {
    answer(
        async {
            let body = read_object(body).await?;
            let env = env_of(&state, body.get("env").and_then(Value::as_str))?;
            let name = text(&body, "name")?.to_string();
            let event = body.get("event").cloned().unwrap_or_else(|| json!({}));
            let openid = body
                .get("openid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let context = InvokeContext {
                request_id: new_request_id(),
                appid: crate::auth::appid_for(&env),
                env,
                openid,
            };
            let outcome = state.functions().invoke(&name, event, &context).await;
            bump(&state, |c| &mut c.functions);
            match outcome {
                Ok(text) => Ok(json!({
                    "requestId": context.request_id,
                    "result": serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
                })),
                Err(err) => Ok(json!({
                    "requestId": context.request_id,
                    "error": { "code": err.code(), "message": err.message() },
                })),
            }
        }
        .await,
    )
}

// ---- users -------------------------------------------------------------------------------------

async fn list_users_of(
    state: &AppState,
    env: Option<String>,
) -> Result<Vec<crate::auth::sessions::UserSummary>, ApiError> {
    let sessions = state.sessions().clone();
    tokio::task::spawn_blocking(move || sessions.users(env.as_deref()))
        .await
        .map_err(|err| ApiError::new(codes::SYS_ERR, err.to_string()))?
        .map_err(|err| ApiError::new(codes::SYS_ERR, err.to_string()))
}

async fn list_users(State(state): State<AppState>, Query(params): Params) -> Response {
    answer(
        async {
            let env = params.get("env").filter(|e| !e.is_empty()).cloned();
            let users = list_users_of(&state, env).await?;
            let users: Vec<Value> = users
                .into_iter()
                .map(|user| {
                    let openid = Identity {
                        uid: user.uid.clone(),
                        env: user.env.clone(),
                        scope: user.scope.clone(),
                        sid: String::new(),
                    }
                    .openid(state.signer());
                    let mut value = serde_json::to_value(&user).unwrap_or(Value::Null);
                    value["openid"] = Value::String(openid);
                    value
                })
                .collect();
            Ok(json!({ "users": users }))
        }
        .await,
    )
}

/// `POST /_/api/users/sign-out` `{env, uid}`: revokes every session of the user.
async fn sign_out_user(State(state): State<AppState>, body: Body) -> Response {
    answer(
        async {
            let body = read_object(body).await?;
            let env = text(&body, "env")?.to_string();
            let uid = text(&body, "uid")?.to_string();
            let sessions = state.sessions().clone();
            let revoked = tokio::task::spawn_blocking(move || sessions.revoke_user(&env, &uid))
                .await
                .map_err(|err| ApiError::new(codes::SYS_ERR, err.to_string()))?
                .map_err(|err| ApiError::new(codes::SYS_ERR, err.to_string()))?;
            bump(&state, |c| &mut c.users);
            Ok(json!({ "revokedSessions": revoked }))
        }
        .await,
    )
}

// ---- requests ----------------------------------------------------------------------------------

async fn list_requests(State(state): State<AppState>, Query(params): Params) -> Response {
    let after = params
        .get("after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit = params
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100usize)
        .min(super::requests::MAX_REQUESTS);
    let errors_only = params.get("errors").is_some_and(|v| v == "1");
    let needle = params
        .get("q")
        .map(|q| q.trim().to_lowercase())
        .unwrap_or_default();
    let requests = state.dashboard().requests().recent(after, limit, |entry| {
        (!errors_only || !entry.code.is_empty())
            && (needle.is_empty()
                || [
                    &entry.action,
                    &entry.path,
                    &entry.env,
                    &entry.uid,
                    &entry.code,
                    &entry.target,
                ]
                .iter()
                .any(|field| field.to_lowercase().contains(&needle)))
    });
    let requests: Vec<&super::requests::RequestEntry> = requests.iter().map(|r| &**r).collect();
    answer(Ok(json!({ "requests": requests })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_name_the_rule_that_applies() {
        assert_eq!(
            describe_rule("todos", &json!("READONLY"), "update"),
            "todos: preset READONLY (update)"
        );
        assert_eq!(
            describe_rule(
                "todos",
                &json!({"read": true, "write": "doc._openid == auth.openid"}),
                "delete"
            ),
            "todos: \"write\": \"doc._openid == auth.openid\""
        );
        assert_eq!(
            describe_rule("todos", &json!({"read": "auth != null"}), "update"),
            "todos: no \"update\" rule (missing means denied)"
        );
        assert!(
            previewable("image/png") && !previewable("image/svg+xml") && !previewable("text/html")
        );
    }
}
