//! P1 `/web` storage actions: `storage.getUploadMetadata`, `storage.batchGetDownloadUrl`,
//! `storage.batchDeleteFile`, `storage.batchCopyFile`. Batch actions answer per item; a failed item
//! does not fail the call. The caller is a signed-in user, or the admin when the `access_token` (or
//! Bearer token) is the per-run admin token: see [`caller`]. (`wx-server-sdk` in a function reaches the same
//! handlers as the admin through the admin protocol, `crate::admin`.)

use serde_json::{json, Map, Value};

use super::ops::{self, Caller, CopyRequest};
use super::{base_url, MAX_BATCH_ITEMS};
use crate::error::ApiError;
use crate::server::AppState;
use crate::web::WebRequest;

fn items<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a Vec<Value>, ApiError> {
    let list = body
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid_param(format!("{field} must be an array")))?;
    if list.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::invalid_param(format!(
            "{field} has {} items; at most {MAX_BATCH_ITEMS}",
            list.len()
        )));
    }
    Ok(list)
}

/// The caller of a `/web` storage action: the admin for the per-run admin token (as `access_token` or
/// Bearer), else the signed-in user the token belongs to.
pub fn caller(state: &AppState, request: &WebRequest<'_>) -> Result<Caller, ApiError> {
    let token = match request.body.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => Some(token.as_str()),
        _ => crate::auth::bearer_token(request.headers),
    };
    if token.is_some_and(|token| state.database().is_admin_token(token)) {
        return Ok(Caller::admin(&request.env));
    }
    let identity = request.authenticate(state)?;
    Ok(Caller::user(state, &identity))
}

fn failed_item(file_id: &str, err: &ApiError) -> Value {
    json!({ "code": err.code, "message": err.message, "fileID": file_id })
}

/// `storage.getUploadMetadata`: `{path, method?, headers?}` → `data.{url, token, authorization, fileId,
/// cosFileId, download_url}` (and the `fileID` / `cosFileID` spellings).
pub async fn get_upload_metadata(
    state: &AppState,
    caller: &Caller,
    request: &WebRequest<'_>,
) -> Result<Value, ApiError> {
    let body = &request.body;
    let path = body
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_param("path must be a string"))?;
    let method = match body.get("method") {
        None | Some(Value::Null) => "post".to_string(),
        Some(Value::String(method))
            if matches!(method.to_ascii_lowercase().as_str(), "put" | "post") =>
        {
            method.to_ascii_lowercase()
        }
        Some(other) => {
            return Err(ApiError::invalid_param(format!(
                "method must be put or post, not {other}"
            )))
        }
    };
    let signed_headers = match (method.as_str(), body.get("headers")) {
        ("put", Some(Value::Object(headers))) => headers
            .iter()
            .map(|(name, value)| match value {
                Value::String(text) => Ok((name.clone(), text.clone())),
                Value::Number(number) => Ok((name.clone(), number.to_string())),
                other => Err(ApiError::invalid_param(format!(
                    "header {name} must be a string, not {other}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        ("put", Some(other)) if !other.is_null() => {
            return Err(ApiError::invalid_param(format!(
                "headers must be an object, not {other}"
            )))
        }
        _ => Vec::new(),
    };
    let base = base_url(state, request.headers);
    let info = ops::upload_info(state, caller, &base, path, signed_headers).await?;
    Ok(json!({
        "data": {
            "url": info.url,
            "token": info.issued.token,
            "authorization": info.issued.authorization,
            "fileId": info.file_id,
            "fileID": info.file_id,
            "cosFileId": info.issued.cos_file_id,
            "cosFileID": info.issued.cos_file_id,
            "download_url": info.download_url,
        }
    }))
}

/// `storage.batchGetDownloadUrl`: `{file_list: [{fileid, max_age?} | "<fileID>"]}` →
/// `data.download_list[]` (a success carries the lifetime granted, `max_age` in seconds).
pub async fn batch_get_download_url(
    state: &AppState,
    caller: &Caller,
    request: &WebRequest<'_>,
) -> Result<Value, ApiError> {
    let base = base_url(state, request.headers);
    let mut list = Vec::new();
    for item in items(&request.body, "file_list")? {
        let (file_id, max_age) = match item {
            Value::String(file_id) => (file_id.as_str(), None),
            Value::Object(fields) => (
                fields
                    .get("fileid")
                    .or_else(|| fields.get("fileID"))
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                fields.get("max_age").or_else(|| fields.get("maxAge")),
            ),
            _ => ("", None),
        };
        let result = async {
            if file_id.is_empty() {
                return Err(ApiError::invalid_param("each item needs a fileid string"));
            }
            let max_age = ops::max_age(max_age)?;
            let url = ops::download_url(state, caller, &base, file_id, max_age).await?;
            Ok((url, max_age))
        }
        .await;
        list.push(match result {
            Ok((url, max_age)) => json!({
                "code": "SUCCESS",
                "fileID": file_id,
                "fileid": file_id,
                "tempFileURL": url,
                "download_url": url,
                "max_age": max_age,
            }),
            Err(err) => failed_item(file_id, &err),
        });
    }
    Ok(json!({ "data": { "download_list": list } }))
}

/// `storage.batchDeleteFile`: `{fileid_list: ["<fileID>"]}` → `data.delete_list[]`.
pub async fn batch_delete_file(
    state: &AppState,
    caller: &Caller,
    request: &WebRequest<'_>,
) -> Result<Value, ApiError> {
    let mut list = Vec::new();
    for item in items(&request.body, "fileid_list")? {
        let file_id = item.as_str().unwrap_or("");
        let result = if file_id.is_empty() {
            Err(ApiError::invalid_param("each item must be a fileID string"))
        } else {
            ops::delete(state, caller, file_id).await
        };
        list.push(match result {
            Ok(()) => json!({ "fileID": file_id, "code": "SUCCESS" }),
            Err(err) => failed_item(file_id, &err),
        });
    }
    Ok(json!({ "data": { "delete_list": list } }))
}

/// `storage.batchCopyFile` (js-sdk 3.x): `{file_list: [{src_path, dst_path, overwrite?,
/// remove_original?}]}` → `data.copy_list[]`.
pub async fn batch_copy_file(
    state: &AppState,
    caller: &Caller,
    request: &WebRequest<'_>,
) -> Result<Value, ApiError> {
    let mut list = Vec::new();
    for item in items(&request.body, "file_list")? {
        let text = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or("");
        let flag = |name: &str| item.get(name).and_then(Value::as_bool).unwrap_or(false);
        let request = CopyRequest {
            src: text("src_path").to_string(),
            dst: text("dst_path").to_string(),
            overwrite: flag("overwrite"),
            remove_original: flag("remove_original"),
        };
        let dst = request.dst.clone();
        let result = if request.src.is_empty() || request.dst.is_empty() {
            Err(ApiError::invalid_param(
                "each item needs src_path and dst_path strings",
            ))
        } else {
            ops::copy(state, caller, request).await
        };
        list.push(match result {
            Ok(file_id) => json!({ "fileID": file_id, "code": "SUCCESS" }),
            Err(err) => json!({ "fileID": dst, "code": err.code, "message": err.message }),
        });
    }
    Ok(json!({ "data": { "copy_list": list } }))
}
