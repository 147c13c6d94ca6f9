//! P1: `POST /web?env=E`, the CloudBase action envelope. Always HTTP 200; errors are
//! `{"code","message","requestId"}`, successes `{"requestId", …}` with `data` or top-level fields.
//!
//! New actions go in [`dispatch`]: one arm per action, calling into the module that implements it.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cloud_protocol::codes;
use serde_json::{Map, Value};

use crate::auth::{self, legacy};
use crate::body::{parse_json, read_limited};
use crate::config::MAX_REQUEST_BYTES;
use crate::dashboard::requests::RequestNote;
use crate::database::service::{self as database, Action as DbAction};
use crate::error::{json_response, new_request_id, ApiError};
use crate::functions_api;
use crate::server::AppState;
use crate::storage::actions as storage_actions;

/// A parsed `/web` request, handed to the action handlers.
pub struct WebRequest<'a> {
    /// The env the request is on (checked against `--env`).
    pub env: String,
    /// The action name, e.g. `functions.invokeFunction`.
    pub action: String,
    /// The whole JSON envelope.
    pub body: Map<String, Value>,
    /// The URL query (`env`, `parse`, …).
    pub query: HashMap<String, String>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The id reported back in `requestId`.
    pub request_id: &'a str,
}

impl WebRequest<'_> {
    /// The caller: body `access_token` (P1) or `Authorization: Bearer` (P3 style).
    pub fn authenticate(&self, state: &AppState) -> Result<auth::Identity, ApiError> {
        let token = match self.body.get("access_token") {
            Some(Value::String(token)) if !token.is_empty() => Some(token.as_str()),
            _ => auth::bearer_token(self.headers),
        };
        auth::authenticate(state, token, &self.env)
    }
}

/// The `/web` handler.
pub async fn web(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let mut note = RequestNote::default();
    let answer = match query {
        Ok(Query(query)) => handle(&state, query, &headers, body, &request_id, &mut note).await,
        Err(err) => Err(ApiError::invalid_param(format!(
            "malformed query string: {err}"
        ))),
    };
    let body = match answer {
        Ok(Value::Object(mut fields)) => {
            fields.insert("requestId".to_string(), Value::String(request_id));
            Value::Object(fields)
        }
        Ok(other) => serde_json::json!({ "requestId": request_id, "data": other }),
        Err(err) => {
            note.code = Some(err.code.to_string());
            err.body(&request_id)
        }
    };
    let mut response = json_response(StatusCode::OK, &body);
    response.extensions_mut().insert(note);
    response
}

async fn handle(
    state: &AppState,
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
    note: &mut RequestNote,
) -> Result<Value, ApiError> {
    let bytes = read_limited(body, MAX_REQUEST_BYTES).await?;
    let body = match parse_json(&bytes, "request body")? {
        Value::Object(fields) => fields,
        _ => {
            return Err(ApiError::invalid_param(
                "request body must be a JSON object",
            ))
        }
    };
    let env_candidate = query
        .get("env")
        .map(String::as_str)
        .filter(|env| !env.is_empty())
        .or_else(|| body.get("env").and_then(Value::as_str));
    let env = state.check_env(env_candidate)?;
    let action = match body.get("action") {
        Some(Value::String(action)) if !action.is_empty() => action.clone(),
        _ => return Err(ApiError::new(codes::INVALID_ACTION, "action is required")),
    };
    note_request(state, &mut *note, &env, &action, &body, headers);
    let request = WebRequest {
        env,
        action,
        body,
        query,
        headers,
        request_id,
    };
    dispatch(state, &request).await
}

/// What the request log shows of a `/web` request: action, env, caller and the collection or function.
fn note_request(
    state: &AppState,
    note: &mut RequestNote,
    env: &str,
    action: &str,
    body: &Map<String, Value>,
    headers: &HeaderMap,
) {
    note.env = Some(env.to_string());
    note.action = Some(action.to_string());
    note.target = ["collectionName", "function_name", "name"]
        .iter()
        .find_map(|key| body.get(*key).and_then(Value::as_str))
        .map(str::to_string);
    let token = match body.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => Some(token.as_str()),
        _ => auth::bearer_token(headers),
    };
    note.uid = token
        .and_then(|token| {
            state
                .signer()
                .verify(token, auth::tokens::TokenKind::Access)
                .ok()
        })
        .map(|claims| claims.uid)
        .or_else(|| {
            token
                .filter(|t| state.database().is_admin_token(t))
                .map(|_| "(admin)".to_string())
        });
}

/// Runs one action; its `Ok` value's fields are sent at the top level next to `requestId`.
async fn dispatch(state: &AppState, request: &WebRequest<'_>) -> Result<Value, ApiError> {
    match request.action.as_str() {
        "auth.signInAnonymously" => {
            legacy::sign_in_anonymously(state, &request.env, &request.body).await
        }
        "auth.fetchAccessTokenWithRefreshToken" => {
            legacy::fetch_access_token(state, &request.env, &request.body).await
        }
        "auth.wsWebSign" => crate::realtime::ws_web_sign(state, request),
        "auth.getUserInfo" => {
            let identity = request.authenticate(state)?;
            Ok(legacy::get_user_info(state, &identity))
        }
        "functions.invokeFunction" => {
            let identity = request.authenticate(state)?;
            let parse = request
                .query
                .get("parse")
                .is_some_and(|value| value == "true");
            functions_api::invoke_function_action(
                state,
                &identity,
                request.request_id,
                &request.body,
                parse,
            )
            .await
        }
        "storage.getUploadMetadata" => {
            let caller = storage_actions::caller(state, request)?;
            storage_actions::get_upload_metadata(state, &caller, request).await
        }
        "storage.batchGetDownloadUrl" => {
            let caller = storage_actions::caller(state, request)?;
            storage_actions::batch_get_download_url(state, &caller, request).await
        }
        "storage.batchDeleteFile" => {
            let caller = storage_actions::caller(state, request)?;
            storage_actions::batch_delete_file(state, &caller, request).await
        }
        "storage.batchCopyFile" => {
            let caller = storage_actions::caller(state, request)?;
            storage_actions::batch_copy_file(state, &caller, request).await
        }
        "database.queryDocument" => database::handle(state, request, DbAction::Query).await,
        "database.countDocument" => database::handle(state, request, DbAction::Count).await,
        "database.addDocument" => database::handle(state, request, DbAction::Add).await,
        "database.updateDocument" => database::handle(state, request, DbAction::Update).await,
        "database.deleteDocument" => database::handle(state, request, DbAction::Delete).await,
        "database.aggregate" => database::handle(state, request, DbAction::Aggregate).await,
        "database.addCollection" => database::handle(state, request, DbAction::AddCollection).await,
        other => Err(ApiError::new(
            codes::INVALID_ACTION,
            format!("action {other} is not supported by the emulator"),
        )),
    }
}
