//! The admin protocol on `POST /admin?env=E&seqId=S`: what the real `wx-server-sdk` 4.0.2 (through
//! `@cloudbase/node-sdk` 3.17.2) sends from inside a cloud function (shared/reference/admin-protocol.md).
//!
//! * Function workers get the environment of a WeChat cloud function ([`worker_env`]): `TCB_CONTEXT_CNFG`
//!   points the SDK here, and per-run credentials (`TENCENTCLOUD_SECRETID/SECRETKEY/SESSIONTOKEN`,
//!   derived from the admin token) sign every request. Each request's TC3 signature is verified
//!   ([`signature`]) and its `sessionToken` checked, so only this run's functions have admin rights.
//! * Actions: `database.*` with canonical EJSON (see [`database`]), transactions, `functions.invokeFunction`
//!   (the caller's openid passes through: `seqId` starts with the calling invocation's `TCB_SEQID`),
//!   `storage.getUploadMetadata` / `batchGetDownloadUrl` / `batchDeleteFile` as the admin (the upload
//!   `PUT` goes to the ordinary object URL). `wx.openApi` and the other WeChat server APIs fail with a
//!   clear "not available in cloud-emulator" error.
//! * Answers are HTTP 200 JSON: `{"requestId", "data": …}` or `{"code","message","requestId"}`.

pub mod database;
pub mod signature;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use cloud_protocol::codes;
use serde_json::{json, Map, Value};

use crate::body::{parse_json, read_limited};
use crate::config::{Config, MAX_REQUEST_BYTES};
use crate::error::{json_response, new_request_id, ApiError};
use crate::functions::InvokeContext;
use crate::server::AppState;
use crate::storage::actions as storage_actions;
use crate::storage::ops::Caller as StorageCaller;
use crate::web::WebRequest;
use signature::{Credentials, SignedRequest, SignedValue};

/// The region workers are told they run in (`TENCENTCLOUD_REGION`, signed as `X-TCB-Region`).
pub const REGION: &str = cloud_protocol::DEFAULT_REGION;
/// The pinned `wx-server-sdk` version the emulator provides to functions without their own copy.
pub const WX_SERVER_SDK_VERSION: &str = "4.0.2";
/// Environment variable naming the `wx-server-sdk` package folder to give functions without their own.
pub const WX_SERVER_SDK_ENV: &str = "CLOUD_EMULATOR_WX_SERVER_SDK_DIR";

/// The admin protocol route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/admin", post(admin))
}

/// The `wx-server-sdk` package folder functions without their own copy get: `--wx-server-sdk`, else
/// `$CLOUD_EMULATOR_WX_SERVER_SDK_DIR`, else the copy `scripts/setup.sh` installs next to the
/// emulator's sources (`emulator/wx-server-sdk/node_modules/wx-server-sdk`).
pub fn pinned_sdk_dir(config: &Config) -> PathBuf {
    config
        .wx_server_sdk
        .clone()
        .or_else(|| std::env::var_os(WX_SERVER_SDK_ENV).map(PathBuf::from))
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("wx-server-sdk/node_modules/wx-server-sdk")
        })
}

/// The variables every function worker gets, besides the per-call ones (see the functions runtime):
/// what `wx-server-sdk` needs to reach this emulator and sign its requests, plus `CLOUD_EMULATOR_URL`,
/// `CLOUD_EMULATOR_ADMIN_TOKEN` and `CLOUD_EMULATOR_WX_SERVER_SDK` (the pinned package folder).
pub fn worker_env(config: &Config, port: u16) -> std::io::Result<Vec<(String, String)>> {
    let host = match config.host.trim_start_matches('[').trim_end_matches(']') {
        "0.0.0.0" | "" => "127.0.0.1".to_string(),
        "::" => "[::1]".to_string(),
        host if host.contains(':') => format!("[{host}]"),
        host => host.to_string(),
    };
    let base = format!("http://{host}:{port}");
    let credentials = Credentials::derive(&config.admin_token);
    let sdk = std::path::absolute(pinned_sdk_dir(config))?;
    Ok(vec![
        ("CLOUD_EMULATOR_URL".into(), base.clone()),
        (
            "CLOUD_EMULATOR_ADMIN_TOKEN".into(),
            config.admin_token.clone(),
        ),
        (
            "CLOUD_EMULATOR_WX_SERVER_SDK".into(),
            sdk.to_string_lossy().into_owned(),
        ),
        (
            "TCB_CONTEXT_CNFG".into(),
            json!({ "URL": format!("{base}/admin") }).to_string(),
        ),
        ("TENCENTCLOUD_RUNENV".into(), "SCF".into()),
        ("TENCENTCLOUD_REGION".into(), REGION.into()),
        ("TENCENTCLOUD_SECRETID".into(), credentials.secret_id),
        ("TENCENTCLOUD_SECRETKEY".into(), credentials.secret_key),
        (
            "TENCENTCLOUD_SESSIONTOKEN".into(),
            credentials.session_token,
        ),
    ])
}

/// A parsed admin request.
pub struct AdminRequest {
    /// The env (`?env=`, equal to `envName`).
    pub env: String,
    /// The action, e.g. `database.getDocument`.
    pub action: String,
    /// The JSON body (for multipart requests: the text parts).
    pub body: Map<String, Value>,
    /// The invocation that sent it (from `seqId`), when it is still running.
    pub caller: Option<InvokeContext>,
}

async fn admin(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let answer = match read_request(&state, query.as_deref().unwrap_or(""), &headers, body).await {
        Ok(request) => dispatch(&state, &request, &headers).await,
        Err(err) => Err(err),
    };
    let body = match answer {
        Ok(Value::Object(mut fields)) => {
            fields.insert("requestId".into(), Value::String(request_id));
            Value::Object(fields)
        }
        Ok(other) => json!({ "requestId": request_id, "data": other }),
        Err(err) => err.body(&request_id),
    };
    // node-sdk parses a JSON error of wx.openApi only under exactly this content type (§8).
    json_response(StatusCode::OK, &body)
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A multipart body: its text parts and its file parts.
async fn read_multipart(
    headers: &HeaderMap,
    bytes: Vec<u8>,
) -> Result<(Map<String, Value>, Vec<(String, Vec<u8>)>), ApiError> {
    let boundary = header_text(headers, "content-type")
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| ApiError::invalid_param("multipart body without a boundary"))?;
    let stream =
        futures_util::stream::once(
            async move { Ok::<_, std::io::Error>(bytes::Bytes::from(bytes)) },
        );
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut text = Map::new();
    let mut files = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|err| ApiError::invalid_param(format!("bad multipart body: {err}")))?
    {
        let name = field.name().unwrap_or("").to_string();
        let is_file = field
            .content_type()
            .is_some_and(|ct| ct.essence_str() == "application/octet-stream")
            || field.file_name().is_some();
        let data = field
            .bytes()
            .await
            .map_err(|err| ApiError::invalid_param(format!("bad multipart body: {err}")))?;
        if is_file {
            files.push((name, data.to_vec()));
        } else {
            text.insert(
                name,
                Value::String(String::from_utf8_lossy(&data).into_owned()),
            );
        }
    }
    Ok((text, files))
}

fn query_value<'a>(query: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_encoding::percent_decode_str(value).decode_utf8_lossy())
}

fn now_secs() -> i64 {
    crate::database::service::now_ms() / 1000
}

/// Reads, authenticates and checks one admin request.
async fn read_request(
    state: &AppState,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<AdminRequest, ApiError> {
    let bytes = read_limited(body, MAX_REQUEST_BYTES).await?;
    let is_multipart = header_text(headers, "content-type")
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"));
    let (fields, files) = if is_multipart {
        read_multipart(headers, bytes).await?
    } else {
        match parse_json(&bytes, "request body")? {
            Value::Object(fields) => (fields, Vec::new()),
            _ => {
                return Err(ApiError::invalid_param(
                    "request body must be a JSON object",
                ))
            }
        }
    };

    let credentials = Credentials::derive(&state.config().admin_token);
    let mut params: Vec<(String, SignedValue<'_>)> = fields
        .iter()
        .map(|(name, value)| {
            let signed = match value {
                Value::String(text) => SignedValue::Text(text),
                other => SignedValue::Json(other),
            };
            (name.clone(), signed)
        })
        .collect();
    params.extend(
        files
            .iter()
            .map(|(name, data)| (name.clone(), SignedValue::Bytes(data))),
    );
    let host = header_text(headers, "host").unwrap_or_default();
    let lookup = |name: &str| header_text(headers, name);
    signature::verify(
        &SignedRequest {
            method: "POST",
            host: &host,
            path: "/admin",
            query,
            header: &lookup,
            params: &params,
            now_secs: now_secs(),
        },
        &credentials,
    )
    .map_err(|why| ApiError::new(codes::SIGN_PARAM_INVALID, why))?;
    match fields.get("sessionToken").and_then(Value::as_str) {
        Some(token) if token == credentials.session_token => {}
        _ => return Err(ApiError::new(
            codes::SIGN_PARAM_INVALID,
            "sessionToken is not the TENCENTCLOUD_SESSIONTOKEN cloud-emulator gave this function",
        )),
    }

    let env_name = fields.get("envName").and_then(Value::as_str);
    let env = query_value(query, "env");
    if let (Some(env), Some(env_name)) = (&env, env_name) {
        if env != env_name {
            return Err(ApiError::new(
                codes::INVALID_ENV,
                format!("?env={env} and envName {env_name} differ"),
            ));
        }
    }
    let env = state.check_env(env.as_deref().or(env_name))?;
    let action = match fields.get("action") {
        Some(Value::String(action)) if !action.is_empty() => action.clone(),
        _ => return Err(ApiError::new(codes::INVALID_ACTION, "action is required")),
    };
    let caller = query_value(query, "seqId").and_then(|seq| {
        // `<TCB_SEQID>-<hex ms>_<hex counter>`: the prefix is the invocation's request id.
        let invocation = seq.rsplit_once('-').map_or("", |(prefix, _)| prefix);
        state.functions().running_call(invocation)
    });
    Ok(AdminRequest {
        env,
        action,
        body: fields,
        caller,
    })
}

async fn dispatch(
    state: &AppState,
    request: &AdminRequest,
    headers: &HeaderMap,
) -> Result<Value, ApiError> {
    let action = request.action.as_str();
    if let Some(database_action) = action.strip_prefix("database.") {
        return database::handle(state, request, database_action).await;
    }
    match action {
        "functions.invokeFunction" => invoke_function(state, request).await,
        "storage.getUploadMetadata"
        | "storage.batchGetDownloadUrl"
        | "storage.batchDeleteFile" => storage(state, request, headers).await,
        "wx.openApi" | "wx.api" | "wx.wxPayApi" | "wx.wxCallContainerApi" | "wx.getOpenData" => {
            Err(ApiError::new(
                codes::INVALID_ACTION,
                format!(
                    "{action} (cloud.openapi, cloud.callOpenAPI, cloud.cloudPay, cloud.callContainer) is not \
                     available in cloud-emulator: it calls WeChat's own servers, which a local emulator cannot stand in for"
                ),
            ))
        }
        other => Err(ApiError::new(
            codes::INVALID_ACTION,
            format!("action {other} is not supported by cloud-emulator's admin endpoint"),
        )),
    }
}

/// `functions.invokeFunction`: `{function_name, request_data: "<JSON>"}` → `data.response_data`.
async fn invoke_function(state: &AppState, request: &AdminRequest) -> Result<Value, ApiError> {
    let body = &request.body;
    let name = match body.get("function_name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => {
            return Err(ApiError::invalid_param(
                "function_name must be a non-empty string",
            ))
        }
    };
    let data = match body.get("request_data") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(text)) if text.trim().is_empty() => json!({}),
        Some(Value::String(text)) => parse_json(text.as_bytes(), "request_data")?,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "request_data must be a JSON string",
            ))
        }
    };
    let (openid, appid) = match &request.caller {
        Some(caller) => (caller.openid.clone(), caller.appid.clone()),
        None => (String::new(), crate::auth::appid_for(&request.env)),
    };
    let context = InvokeContext {
        request_id: new_request_id(),
        env: request.env.clone(),
        openid,
        appid,
    };
    let text = state.functions().invoke(&name, data, &context).await?;
    Ok(json!({ "data": { "response_data": text } }))
}

/// The storage actions, as the admin (every rule passes; new files belong to the admin).
async fn storage(
    state: &AppState,
    request: &AdminRequest,
    headers: &HeaderMap,
) -> Result<Value, ApiError> {
    let caller = StorageCaller::admin(&request.env);
    let request_id = new_request_id();
    let web = WebRequest {
        env: request.env.clone(),
        action: request.action.clone(),
        body: request.body.clone(),
        query: HashMap::new(),
        headers,
        request_id: &request_id,
    };
    match request.action.as_str() {
        "storage.getUploadMetadata" => {
            storage_actions::get_upload_metadata(state, &caller, &web).await
        }
        "storage.batchGetDownloadUrl" => {
            let mut answer = storage_actions::batch_get_download_url(state, &caller, &web).await?;
            // node-sdk reads the lifetime as `maxAge`.
            if let Some(list) = answer["data"]["download_list"].as_array_mut() {
                for item in list {
                    if let Some(max_age) = item.get("max_age").cloned() {
                        item["maxAge"] = max_age;
                    }
                }
            }
            Ok(answer)
        }
        _ => storage_actions::batch_delete_file(state, &caller, &web).await,
    }
}
