//! P3 gateway storage routes (js-sdk 3.x default): `POST /v1/storages/{op}` with a Bearer token and a
//! JSON array body; the answer is a JSON array with one result per item (`{code, message}` for a failed
//! item). Request-level failures are non-2xx `{"code","message","requestId"}`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use cloud_protocol::codes;
use serde_json::{json, Value};

use super::ops::{self, Caller, CopyRequest};
use super::{base_url, MAX_BATCH_ITEMS};
use crate::auth::{authenticate_token, bearer_token};
use crate::body::{parse_json, read_limited};
use crate::config::MAX_REQUEST_BYTES;
use crate::error::{json_response, new_request_id, ApiError};
use crate::server::AppState;

/// `POST /v1/storages/{op}`.
pub async fn gateway(
    State(state): State<AppState>,
    Path(op): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_string)
        .unwrap_or_else(new_request_id);
    let result = async {
        let bytes = read_limited(body, MAX_REQUEST_BYTES).await?;
        if !matches!(
            op.as_str(),
            "get-objects-upload-info"
                | "get-objects-download-info"
                | "delete-objects"
                | "copy-objects"
        ) {
            return Err(ApiError::new(
                codes::RESOURCE_NOT_FOUND,
                format!("no storage operation {op}"),
            ));
        }
        let identity = authenticate_token(&state, bearer_token(&headers))?;
        state.check_env(Some(&identity.env))?;
        let caller = Caller::user(&state, &identity);
        let items = match parse_json(&bytes, "request body")? {
            Value::Array(items) => items,
            _ => return Err(ApiError::invalid_param("the body must be a JSON array")),
        };
        if items.len() > MAX_BATCH_ITEMS {
            return Err(ApiError::invalid_param(format!(
                "{} items; at most {MAX_BATCH_ITEMS}",
                items.len()
            )));
        }
        let base = base_url(&state, &headers);
        let mut results = Vec::with_capacity(items.len());
        for item in &items {
            let result = match op.as_str() {
                "get-objects-upload-info" => upload_info(&state, &caller, &base, item).await,
                "get-objects-download-info" => download_info(&state, &caller, &base, item).await,
                "delete-objects" => delete(&state, &caller, item).await,
                _ => copy(&state, &caller, item).await,
            };
            results.push(result);
        }
        Ok(Value::Array(results))
    }
    .await;
    let mut response = match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(err) => json_response(err.http_status(), &err.body(&request_id)),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

fn text<'a>(item: &'a Value, name: &str) -> &'a str {
    item.get(name).and_then(Value::as_str).unwrap_or("")
}

fn failed(id_field: &str, id: &str, err: ApiError) -> Value {
    json!({ id_field: id, "code": err.code, "message": err.message })
}

/// `{objectId, signedHeader?: {name: [value]}}` → `{objectId, uploadUrl, authorization, token,
/// cloudObjectMeta, cloudObjectId, downloadUrl, downloadUrlEncoded}`.
async fn upload_info(state: &AppState, caller: &Caller, base: &str, item: &Value) -> Value {
    let object_id = text(item, "objectId");
    let result = async {
        if object_id.is_empty() {
            return Err(ApiError::invalid_param(
                "objectId must be a non-empty string",
            ));
        }
        let mut signed = Vec::new();
        match item.get("signedHeader") {
            None | Some(Value::Null) => {}
            Some(Value::Object(headers)) => {
                for (name, values) in headers {
                    let value = match values {
                        Value::Array(values) => values
                            .iter()
                            .map(|v| match v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join(","),
                        Value::String(value) => value.clone(),
                        other => other.to_string(),
                    };
                    signed.push((name.clone(), value));
                }
            }
            Some(other) => {
                return Err(ApiError::invalid_param(format!(
                    "signedHeader must be an object, not {other}"
                )))
            }
        }
        ops::upload_info(state, caller, base, object_id, signed).await
    }
    .await;
    match result {
        Ok(info) => json!({
            "objectId": object_id,
            "uploadUrl": info.url,
            "authorization": info.issued.authorization,
            "token": info.issued.token,
            "cloudObjectMeta": info.issued.cos_file_id,
            "cloudObjectId": info.file_id,
            "downloadUrl": info.download_url,
            "downloadUrlEncoded": info.download_url,
        }),
        Err(err) => failed("objectId", object_id, err),
    }
}

/// `{cloudObjectId, maxAge?}` → `{cloudObjectId, downloadUrl, downloadUrlEncoded}`.
async fn download_info(state: &AppState, caller: &Caller, base: &str, item: &Value) -> Value {
    let file_id = text(item, "cloudObjectId");
    let result = async {
        if file_id.is_empty() {
            return Err(ApiError::invalid_param(
                "cloudObjectId must be a non-empty string",
            ));
        }
        let max_age = ops::max_age(item.get("maxAge").or_else(|| item.get("max_age")))?;
        ops::download_url(state, caller, base, file_id, max_age).await
    }
    .await;
    match result {
        Ok(url) => {
            json!({ "cloudObjectId": file_id, "downloadUrl": url, "downloadUrlEncoded": url })
        }
        Err(err) => failed("cloudObjectId", file_id, err),
    }
}

/// `{cloudObjectId}` → `{cloudObjectId}`.
async fn delete(state: &AppState, caller: &Caller, item: &Value) -> Value {
    let file_id = text(item, "cloudObjectId");
    let result = if file_id.is_empty() {
        Err(ApiError::invalid_param(
            "cloudObjectId must be a non-empty string",
        ))
    } else {
        ops::delete(state, caller, file_id).await
    };
    match result {
        Ok(()) => json!({ "cloudObjectId": file_id }),
        Err(err) => failed("cloudObjectId", file_id, err),
    }
}

/// `{srcPath, dstPath, overwrite?, removeOriginal?}` → `{cloudObjectId}` of the destination.
async fn copy(state: &AppState, caller: &Caller, item: &Value) -> Value {
    let flag = |name: &str| item.get(name).and_then(Value::as_bool).unwrap_or(false);
    let request = CopyRequest {
        src: text(item, "srcPath").to_string(),
        dst: text(item, "dstPath").to_string(),
        overwrite: flag("overwrite"),
        remove_original: flag("removeOriginal"),
    };
    let dst = request.dst.clone();
    let result = if request.src.is_empty() || request.dst.is_empty() {
        Err(ApiError::invalid_param(
            "srcPath and dstPath must be non-empty strings",
        ))
    } else {
        ops::copy(state, caller, request).await
    };
    match result {
        Ok(file_id) => json!({ "cloudObjectId": file_id }),
        Err(err) => failed("cloudObjectId", &dst, err),
    }
}
