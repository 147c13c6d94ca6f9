//! The storage operations behind both the P1 actions and the P3 routes: upload grants, temp URLs,
//! delete and copy, each checked against the env's rule. Item-level failures are [`ApiError`]s whose
//! code goes into the item (`STORAGE_FILE_NONEXIST`, `STORAGE_EXCEED_AUTHORITY`, `INVALID_PARAM`, …).

use cloud_protocol::codes;
use cloud_protocol::storage::{parse_file_id, validate_cloud_path};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::rules::ADMIN_OWNER;
use super::signing::{download_query, normalize_signed_headers, IssuedUpload, UploadGrant};
use super::store::{DeleteOutcome, ObjectMeta, StoreError, WriteOutcome};
use super::{file_id, DEFAULT_TEMP_URL_MAX_AGE_SECS, MAX_TEMP_URL_MAX_AGE_SECS};
use crate::auth::tokens::now_ms;
use crate::auth::Identity;
use crate::error::ApiError;
use crate::server::AppState;

/// Who a storage operation runs for: the env it is on and the openid the rules see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The env the request is on.
    pub env: String,
    /// The user's openid, or [`ADMIN_OWNER`] for the admin.
    pub openid: String,
}

impl Caller {
    /// A signed-in user: the rules apply.
    pub fn user(state: &AppState, identity: &Identity) -> Caller {
        Caller {
            env: identity.env.clone(),
            openid: identity.openid(state.signer()),
        }
    }

    /// The admin (the per-run admin token, or `wx-server-sdk` in a function over `/admin`): passes every rule and
    /// owns what it creates.
    pub fn admin(env: &str) -> Caller {
        Caller {
            env: env.to_string(),
            openid: ADMIN_OWNER.to_string(),
        }
    }
}

/// Characters kept as they are in an object URL's path segments: the unreserved ones.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a cloudPath for a URL path, segment by segment (everything but unreserved
/// characters and the `/` separators is encoded, so `?`, `#`, `%` and `\` stay part of the key).
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| utf8_percent_encode(segment, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// The object URL of `path` on `env`: `{base}/cos/{env}/{encoded path}`.
pub fn object_url(base: &str, env: &str, path: &str) -> String {
    format!("{base}/cos/{env}/{}", encode_path(path))
}

/// Splits a request path `/cos/{env}/{rest}` into the env and the still-encoded rest.
pub fn split_object_path(uri_path: &str) -> Option<(&str, &str)> {
    let rest = uri_path.strip_prefix("/cos/")?;
    let (env, path) = rest.split_once('/')?;
    (!env.is_empty() && !path.is_empty()).then_some((env, path))
}

/// The keys an encoded object path may stand for: decoded once, and decoded twice when that differs
/// (clients such as js-sdk's `downloadFile` run `encodeURI` over an already encoded URL). The caller
/// takes the one its signature verifies for, so the extra reading never widens access.
pub fn key_candidates(encoded: &str) -> Vec<String> {
    let mut keys = Vec::with_capacity(2);
    if let Ok(once) = percent_decode_str(encoded).decode_utf8() {
        let once = once.into_owned();
        if let Ok(twice) = percent_decode_str(&once).decode_utf8() {
            if twice != once {
                keys.push(once.clone());
                keys.push(twice.into_owned());
                return keys;
            }
        }
        keys.push(once);
    }
    keys
}

/// A store failure as an item/request error.
pub fn store_error(err: StoreError) -> ApiError {
    eprintln!("cloud-emulator: {err}");
    ApiError::new(codes::STORAGE_REQUEST_FAIL, err.to_string())
}

/// Runs a blocking store operation off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(store_error),
        Err(err) => Err(ApiError::new(
            codes::SYS_ERR,
            format!("storage task failed: {err}"),
        )),
    }
}

/// Validates a cloudPath, as `INVALID_PARAM`.
pub fn check_path(path: &str) -> Result<(), ApiError> {
    validate_cloud_path(path).map_err(|err| ApiError::invalid_param(format!("{err}: {path:?}")))
}

/// The cloudPath a fileID names on `env`: `INVALID_PARAM` for something that is not a fileID (a plain
/// cloudPath is accepted too), `STORAGE_FILE_NONEXIST` for another env's file.
pub fn path_of(env: &str, file_id_or_path: &str) -> Result<String, ApiError> {
    let path = if file_id_or_path.starts_with(cloud_protocol::storage::FILE_ID_SCHEME) {
        let parsed = parse_file_id(file_id_or_path).ok_or_else(|| {
            ApiError::invalid_param(format!("invalid fileID {file_id_or_path:?}"))
        })?;
        if parsed.env != env {
            return Err(ApiError::new(
                codes::STORAGE_FILE_NONEXIST,
                format!("{file_id_or_path} belongs to env {}, not {env}", parsed.env),
            ));
        }
        parsed.path
    } else {
        file_id_or_path
    };
    check_path(path)?;
    Ok(path.to_string())
}

fn not_found(file_id: &str) -> ApiError {
    ApiError::new(
        codes::STORAGE_FILE_NONEXIST,
        format!("storage file not exists: {file_id}"),
    )
}

fn exceed_authority(action: &str, file_id: &str) -> ApiError {
    ApiError::new(
        codes::STORAGE_EXCEED_AUTHORITY,
        format!("permission denied: the storage rule does not let you {action} {file_id}"),
    )
}

/// An upload permission and where to use it.
#[derive(Debug, Clone)]
pub struct UploadInfo {
    /// The object URL to PUT or POST to.
    pub url: String,
    /// The authorization, token and cosFileId.
    pub issued: IssuedUpload,
    /// The fileID the object will have.
    pub file_id: String,
    /// A temp URL for the object (valid once uploaded; default lifetime).
    pub download_url: String,
}

/// `getUploadMetadata` / `get-objects-upload-info`: checks the path and the rule, then issues a grant
/// binding `signed_headers`.
pub async fn upload_info(
    state: &AppState,
    caller: &Caller,
    base: &str,
    path: &str,
    signed_headers: Vec<(String, String)>,
) -> Result<UploadInfo, ApiError> {
    check_path(path)?;
    let signed_headers =
        normalize_signed_headers(signed_headers).map_err(ApiError::invalid_param)?;
    let env = caller.env.clone();
    let openid = caller.openid.clone();
    let storage = state.storage().clone();
    let rule = storage.rules().rule_for(&env);
    let existing = {
        let (env, path) = (env.clone(), path.to_string());
        blocking(move || storage.store().get(&env, &path)).await?
    };
    let fid = file_id(&env, path);
    if !rule.may_write(
        existing.as_ref().map(|meta| meta.owner_openid.as_str()),
        &openid,
    ) {
        return Err(exceed_authority("write", &fid));
    }
    let ttl = state.storage().upload_grant_ttl_secs();
    let issued = UploadGrant::new(&openid, ttl, signed_headers).issue(state.signer(), &env, path);
    Ok(UploadInfo {
        url: object_url(base, &env, path),
        issued,
        download_url: temp_url(state, base, &env, path, DEFAULT_TEMP_URL_MAX_AGE_SECS),
        file_id: fid,
    })
}

/// A signed temp URL for `path` valid `max_age_secs`.
pub fn temp_url(state: &AppState, base: &str, env: &str, path: &str, max_age_secs: u64) -> String {
    let expires = now_ms().saturating_add(max_age_secs.saturating_mul(1000));
    format!(
        "{}?{}",
        object_url(base, env, path),
        download_query(state.signer(), env, path, expires)
    )
}

/// The lifetime asked for: absent → 600 s; a positive number of seconds, capped at one day.
pub fn max_age(value: Option<&serde_json::Value>) -> Result<u64, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(DEFAULT_TEMP_URL_MAX_AGE_SECS),
        Some(value) => match value.as_f64() {
            Some(seconds) if seconds >= 1.0 => Ok((seconds as u64).min(MAX_TEMP_URL_MAX_AGE_SECS)),
            _ => Err(ApiError::invalid_param(format!(
                "max_age must be a positive number of seconds, not {value}"
            ))),
        },
    }
}

/// `batchGetDownloadUrl` / `get-objects-download-info` for one fileID: a temp URL, if the file exists
/// and the rule lets the caller read it.
pub async fn download_url(
    state: &AppState,
    caller: &Caller,
    base: &str,
    file_id: &str,
    max_age_secs: u64,
) -> Result<String, ApiError> {
    let env = caller.env.clone();
    let path = path_of(&env, file_id)?;
    let storage = state.storage().clone();
    let meta = {
        let (env, path) = (env.clone(), path.clone());
        blocking(move || storage.store().get(&env, &path)).await?
    }
    .ok_or_else(|| not_found(file_id))?;
    let rule = state.storage().rules().rule_for(&env);
    if !rule.may_read(&meta.owner_openid, &caller.openid) {
        return Err(exceed_authority("read", file_id));
    }
    Ok(temp_url(state, base, &env, &path, max_age_secs))
}

/// `batchDeleteFile` / `delete-objects` for one fileID.
pub async fn delete(state: &AppState, caller: &Caller, file_id: &str) -> Result<(), ApiError> {
    let env = caller.env.clone();
    let path = path_of(&env, file_id)?;
    let storage = state.storage().clone();
    let rule = storage.rules().rule_for(&env);
    let openid = caller.openid.clone();
    let outcome = blocking(move || {
        storage.store().delete(&env, &path, |meta| {
            rule.may_delete(&meta.owner_openid, &openid)
        })
    })
    .await?;
    match outcome {
        DeleteOutcome::Deleted => Ok(()),
        DeleteOutcome::Missing => Err(not_found(file_id)),
        DeleteOutcome::Denied => Err(exceed_authority("delete", file_id)),
    }
}

/// One copy request.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    /// Source fileID (or cloudPath).
    pub src: String,
    /// Destination fileID (or cloudPath).
    pub dst: String,
    /// Replace an existing destination.
    pub overwrite: bool,
    /// Delete the source afterwards (a move).
    pub remove_original: bool,
}

/// `batchCopyFile` / `copy-objects` for one item; the destination's fileID.
pub async fn copy(
    state: &AppState,
    caller: &Caller,
    request: CopyRequest,
) -> Result<String, ApiError> {
    let env = caller.env.clone();
    let src = path_of(&env, &request.src)?;
    let dst = path_of(&env, &request.dst)?;
    if src == dst {
        return Err(ApiError::invalid_param("srcPath and dstPath must differ"));
    }
    let storage = state.storage().clone();
    let rule = storage.rules().rule_for(&env);
    let openid = caller.openid.clone();
    let source = {
        let (storage, env, src) = (storage.clone(), env.clone(), src.clone());
        blocking(move || storage.store().get(&env, &src)).await?
    }
    .ok_or_else(|| not_found(&request.src))?;
    if !rule.may_read(&source.owner_openid, &openid) {
        return Err(exceed_authority("read", &request.src));
    }
    if request.remove_original && !rule.may_delete(&source.owner_openid, &openid) {
        return Err(exceed_authority("delete", &request.src));
    }
    let dst_file_id = file_id(&env, &dst);
    let outcome = {
        let (storage, env, dst, openid) =
            (storage.clone(), env.clone(), dst.clone(), openid.clone());
        let overwrite = request.overwrite;
        blocking(move || {
            let blob_id = storage.store().clone_blob(&source.blob_id)?;
            let now = now_ms();
            let meta = ObjectMeta {
                env,
                path: dst,
                blob_id,
                size: source.size,
                content_type: source.content_type.clone(),
                sha256: source.sha256.clone(),
                etag: source.etag.clone(),
                owner_openid: openid.clone(),
                created_ms: now,
                updated_ms: now,
            };
            storage.store().commit(meta, |existing| match existing {
                Some(_) if !overwrite => false,
                existing => rule.may_write(existing.map(|m| m.owner_openid.as_str()), &openid),
            })
        })
        .await?
    };
    match outcome {
        WriteOutcome::Committed { .. } => {}
        WriteOutcome::Denied(Some(_)) if !request.overwrite => {
            return Err(ApiError::new(
                codes::INVALID_OPERATION,
                format!("{dst_file_id} exists and overwrite is false"),
            ))
        }
        WriteOutcome::Denied(_) => return Err(exceed_authority("write", &dst_file_id)),
    }
    if request.remove_original {
        let (storage, env) = (storage.clone(), env.clone());
        blocking(move || {
            storage.store().delete(&env, &src, |meta| {
                rule.may_delete(&meta.owner_openid, &openid)
            })
        })
        .await?;
    }
    Ok(dst_file_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_per_segment_and_decode_back() {
        assert_eq!(encode_path("a/b c.png"), "a/b%20c.png");
        assert_eq!(encode_path("中/x?y#z"), "%E4%B8%AD/x%3Fy%23z");
        assert_eq!(encode_path("%2e%2e%2fx"), "%252e%252e%252fx");
        assert_eq!(encode_path("..\\x"), "..%5Cx");
        for key in ["a/b c.png", "中/x?y#z", "%2e%2e%2fx", "..\\x", "plain"] {
            let candidates = key_candidates(&encode_path(key));
            assert_eq!(candidates[0], key);
        }
        // encodeURI over an encoded URL: %20 became %2520; the second reading finds the key.
        assert_eq!(
            key_candidates("a/b%2520c.png"),
            vec!["a/b%20c.png", "a/b c.png"]
        );
        assert!(key_candidates("%FF").is_empty());
    }

    #[test]
    fn object_paths_split() {
        assert_eq!(split_object_path("/cos/envx/a/b"), Some(("envx", "a/b")));
        assert_eq!(split_object_path("/cos/envx/"), None);
        assert_eq!(split_object_path("/cos/envx"), None);
        assert_eq!(split_object_path("/web"), None);
    }

    #[test]
    fn file_ids_resolve_on_their_env_only() {
        assert_eq!(
            path_of("envx", "cloud://envx.656e-envx-1250000000/a/b.png").unwrap(),
            "a/b.png"
        );
        assert_eq!(path_of("envx", "a/b.png").unwrap(), "a/b.png");
        assert_eq!(
            path_of("envx", "cloud://other.b/a").unwrap_err().code,
            codes::STORAGE_FILE_NONEXIST
        );
        assert_eq!(
            path_of("envx", "cloud://envx").unwrap_err().code,
            codes::INVALID_PARAM
        );
        assert_eq!(
            path_of("envx", "cloud://envx.b/../x").unwrap_err().code,
            codes::INVALID_PARAM
        );
    }

    #[test]
    fn max_age_defaults_and_caps() {
        assert_eq!(max_age(None).unwrap(), 600);
        assert_eq!(max_age(Some(&serde_json::json!(1))).unwrap(), 1);
        assert_eq!(max_age(Some(&serde_json::json!(1e9))).unwrap(), 86400);
        assert!(max_age(Some(&serde_json::json!(0))).is_err());
        assert!(max_age(Some(&serde_json::json!("600"))).is_err());
    }
}
