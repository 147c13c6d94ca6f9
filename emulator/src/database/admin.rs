//! The loopback admin endpoint, protected by the per-run admin token (printed at start as
//! `admin token: …` on stderr, also given to cloud functions as `CLOUD_EMULATOR_ADMIN_TOKEN`).
//! Send it as `Authorization: Bearer <token>` or `x-admin-token: <token>`.
//!
//! * `POST /admin/v1/database/collections` `{"env"?, "name", "rules"?, "indexes"?}`: creates the
//!   collection if missing, then sets the rules (preset name or custom rules) and declared indexes that
//!   are given → `{"env","name","rules","indexes"}`.
//! * `GET /admin/v1/database/collections?env=E` → `{"collections":[{"env","name","rules","indexes"}]}`.
//! * `POST /admin/v1/functions/{name}` `{"env"?, "data"?, "openid"?, "appid"?}` → `{"result": <return
//!   value>}`: what `cloud.callFunction` inside a function uses (the caller's openid passes through).
//!
//! The database itself is reached with the admin token as the `access_token` of ordinary `/web`
//! `database.*` actions, which then bypass the collection rules.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use cloud_protocol::codes;
use serde_json::{json, Value};

use super::service::ensure_collection;
use crate::auth::{appid_for, bearer_token};
use crate::body::{parse_json, read_limited};
use crate::config::MAX_REQUEST_BYTES;
use crate::error::{json_response, new_request_id, ApiError};
use crate::functions::InvokeContext;
use crate::server::AppState;

/// The admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/database/collections",
            post(create_collection).get(list_collections),
        )
        .route("/admin/v1/functions/{name}", post(call_function))
}

fn check_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get("x-admin-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| bearer_token(headers));
    match token {
        Some(token) if state.database().is_admin_token(token) => Ok(()),
        _ => Err(ApiError::new(
            codes::PERMISSION_DENIED,
            "admin endpoint: missing or wrong admin token",
        )),
    }
}

fn answer(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(err) => json_response(err.http_status(), &err.body(&new_request_id())),
    }
}

async fn read_object(body: Body) -> Result<serde_json::Map<String, Value>, ApiError> {
    let bytes = read_limited(body, MAX_REQUEST_BYTES).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match parse_json(&bytes, "request body")? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid_param(
            "request body must be a JSON object",
        )),
    }
}

/// An admin POST: the admin token checked, the JSON object body, and the env it names.
async fn admin_request(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(serde_json::Map<String, Value>, String), ApiError> {
    check_admin(state, headers)?;
    let body = read_object(body).await?;
    let env = state.check_env(body.get("env").and_then(Value::as_str))?;
    Ok((body, env))
}

fn meta_json(meta: &super::store::CollectionMeta) -> Value {
    json!({ "env": meta.env, "name": meta.name, "rules": meta.rules, "indexes": meta.indexes })
}

async fn create_collection(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(
        async {
            let (body, env) = admin_request(&state, &headers, body).await?;
            let name = body
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid_param("name must be a string"))?
                .to_string();
            let rules = body.get("rules").cloned();
            let indexes: Option<Vec<String>> = match body.get("indexes") {
                None | Some(Value::Null) => None,
                Some(value) => Some(serde_json::from_value(value.clone()).map_err(|_| {
                    ApiError::invalid_param("indexes must be an array of field paths")
                })?),
            };
            let meta = state
                .database()
                .run(move |store| {
                    ensure_collection(store, &env, &name, rules.as_ref(), indexes.as_deref())
                })
                .await?;
            Ok(meta_json(&meta))
        }
        .await,
    )
}

async fn list_collections(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    answer(
        async {
            check_admin(&state, &headers)?;
            let env = query.get("env").cloned();
            let list = state
                .database()
                .run(move |store| store.read(|t| t.collections(env.as_deref())))
                .await?;
            Ok(json!({ "collections": list.iter().map(meta_json).collect::<Vec<_>>() }))
        }
        .await,
    )
}

async fn call_function(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(
        async {
            let (body, env) = admin_request(&state, &headers, body).await?;
            let text = |key: &str| {
                body.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let appid = match text("appid") {
                appid if appid.is_empty() => appid_for(&env),
                appid => appid,
            };
            let context = InvokeContext {
                request_id: new_request_id(),
                env,
                openid: text("openid"),
                appid,
            };
            let data = body.get("data").cloned().unwrap_or_else(|| json!({}));
            let data = if data.is_null() { json!({}) } else { data };
            let result = state
                .functions()
                .invoke(&name, data, &context)
                .await
                .map_err(|err| ApiError::new(err.code(), err.message()))?;
            let result: Value = serde_json::from_str(&result).unwrap_or(Value::Null);
            Ok(json!({ "result": result, "requestId": context.request_id }))
        }
        .await,
    )
}
