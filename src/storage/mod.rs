//! Cloud storage (api-surface.md §2.6, protocol.md §4): `uploadFile`, `downloadFile`, `getTempFileURL`,
//! `deleteFile`. Arguments are checked at the door (cloudPath naming rules, list lengths, types); the
//! `/web` actions go through `transport::call_action`, the bytes through `transport::transfer`.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use cloud_protocol::storage::validate_cloud_path;
use cloud_protocol::{codes, err_code_for, fail_message, limits, ok_message};
use js_sys::{Array, Object};
use wasm_bindgen::{JsCast, JsValue};

use crate::call_style;
use crate::cloud::{CloudCore, Service};
use crate::error::{CloudError, Failure};
use crate::functions::Arg;
use crate::js::{self, AbortSignal};
use crate::transport::abort::Abortable;
use crate::transport::auth::Session;
use crate::transport::envelope::{write_json_string, JsonObject, Param};
use crate::transport::transfer::{self, TransferState};
use crate::transport::{call_action, call_idempotent_action};

/// API names in `errMsg`.
pub const UPLOAD_API: &str = "cloud.uploadFile";
/// See [`UPLOAD_API`].
pub const DOWNLOAD_API: &str = "cloud.downloadFile";
/// See [`UPLOAD_API`].
pub const TEMP_URL_API: &str = "cloud.getTempFileURL";
/// See [`UPLOAD_API`].
pub const DELETE_API: &str = "cloud.deleteFile";
/// `downloadFile` passes the platform result through, so its success `errMsg` has no `cloud.` prefix.
pub const DOWNLOAD_OK: &str = "downloadFile:ok";

const UPLOAD_ACTION: &str = "storage.getUploadMetadata";
const TEMP_URL_ACTION: &str = "storage.batchGetDownloadUrl";
const DELETE_ACTION: &str = "storage.batchDeleteFile";
/// The temp-URL lifetime `downloadFile` asks for (protocol.md §4.5), in seconds.
const DOWNLOAD_MAX_AGE_SECS: u32 = 600;
/// The lifetime reported when neither the request nor the server names one: wx's 10 minutes.
const DEFAULT_MAX_AGE_SECS: u32 = 600;

/// How the bytes reach the upload URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadMethod {
    /// Presigned `PUT` of the raw bytes (@cloudbase/js-sdk 3.x default; exact byte progress).
    Put,
    /// COS `POST` form (wx / js-sdk 1.x), fields in the order of protocol.md §4.2.
    Post,
}

impl UploadMethod {
    /// The option's value and the `method` action parameter.
    pub fn name(self) -> &'static str {
        match self {
            UploadMethod::Put => "put",
            UploadMethod::Post => "post",
        }
    }

    /// Parses the `method` option (case-insensitive); absent means PUT.
    pub fn parse(value: &Arg) -> Result<Self, Failure> {
        match value {
            Arg::Undefined => Ok(UploadMethod::Put),
            Arg::Str(text) if text.eq_ignore_ascii_case("put") => Ok(UploadMethod::Put),
            Arg::Str(text) if text.eq_ignore_ascii_case("post") => Ok(UploadMethod::Post),
            Arg::Str(text) => Err(Failure::parameter_error(format!(
                "parameter.method should be 'put' or 'post' instead of {text};"
            ))),
            other => Err(type_error("method", "string", other)),
        }
    }
}

/// `storage.getUploadMetadata` parameters, as @cloudbase/js-sdk 3.7.0 sends them (protocol.md A.2, A.3).
pub fn upload_metadata_params(path: &str, method: UploadMethod) -> Vec<Param<'_>> {
    let mut params = vec![
        Param::Str("path", path),
        Param::Str("method", method.name()),
    ];
    if method == UploadMethod::Put {
        params.push(Param::Raw("headers", "{}"));
    }
    params
}

/// The COS POST form fields before `file`, in the exact order of protocol.md §4.2 (duplicate `key` included).
pub fn form_fields<'a>(
    path: &'a str,
    authorization: &'a str,
    cos_file_id: &'a str,
    token: &'a str,
    seq_id: &'a str,
) -> [(&'static str, &'a str); 7] {
    [
        ("key", path),
        ("signature", authorization),
        ("x-cos-meta-fileid", cos_file_id),
        ("success_action_status", "201"),
        ("x-cos-security-token", token),
        ("seqId", seq_id),
        ("key", path),
    ]
}

/// The headers of a presigned PUT, in the captured order (protocol.md §4.2 step 2b, A.2); the caller's
/// own `header` object is added after them (replacing same-named ones) by `transfer.js`.
pub fn put_headers<'a>(
    authorization: &'a str,
    cos_file_id: &'a str,
    token: &'a str,
    content_type: &'a str,
) -> [(&'static str, &'a str); 4] {
    [
        ("authorization", authorization),
        ("x-cos-meta-fileid", cos_file_id),
        ("x-cos-security-token", token),
        ("content-type", content_type),
    ]
}

/// The Content-Type for bytes that carry none (an `ArrayBuffer`, an untyped `Blob`), from the extension.
pub fn content_type_for(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = match name.rsplit_once('.') {
        Some((_, extension)) => extension.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "bmp" => "image/bmp",
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "wasm" => "application/wasm",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// The text between `<tag>` and `</tag>` of a COS XML error body (byte search, no panicking slices: this
/// runs in the wasm, where `str::find` with a string pattern and slice panics add kilobytes).
fn xml_field<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let bytes = body.as_bytes();
    let find = |from: usize, open: bool| {
        let tag = tag.as_bytes();
        (from..bytes.len()).find(|&at| {
            let rest = &bytes[at..];
            let prefix: &[u8] = if open { b"<" } else { b"</" };
            rest.starts_with(prefix)
                && rest[prefix.len()..].starts_with(tag)
                && rest.get(prefix.len() + tag.len()) == Some(&b'>')
        })
    };
    let start = find(0, true)? + tag.len() + 2;
    let end = find(start, false)?;
    body.get(start..end).map(str::trim)
}

/// The error of an upload the storage server refused (non-2xx): wx's `status <code>, error: <body>;`, the
/// COS `<Code>` as `code`; too large → −403001, access refused → −503002, anything else → −503001.
pub fn upload_failure(status: u16, body: &str) -> CloudError {
    let cos_code = xml_field(body, "Code").map(str::to_owned);
    let err_code = match (status, cos_code.as_deref()) {
        (_, Some("EntityTooLarge")) | (413, _) => -403001,
        (_, Some("AccessDenied" | "SignatureDoesNotMatch" | "RequestTimeTooSkewed")) | (403, _) => {
            err_code_for(codes::STORAGE_EXCEED_AUTHORITY)
        }
        _ => err_code_for(codes::STORAGE_REQUEST_FAIL),
    };
    CloudError {
        err_code,
        err_msg: fail_message(
            UPLOAD_API,
            err_code,
            &format!("status {status}, error: {};", body.trim()),
        ),
        code: cos_code,
        request_id: xml_field(body, "RequestId").map(str::to_owned),
    }
}

/// One `getTempFileURL` entry: a fileID and an optional lifetime in seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempUrlRequest {
    /// The fileID.
    pub file_id: String,
    /// `maxAge`, in seconds.
    pub max_age: Option<u32>,
}

/// The `file_list` parameter of `storage.batchGetDownloadUrl`: `[{fileid, max_age?}]` (protocol.md §4.3).
pub fn file_list_json(items: &[TempUrlRequest]) -> String {
    let mut out = String::from("[");
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let mut object = JsonObject::new().string("fileid", &item.file_id);
        if let Some(max_age) = item.max_age {
            object = object.raw("max_age", &max_age.to_string());
        }
        out.push_str(&object.finish());
    }
    out.push(']');
    out
}

/// The `fileid_list` parameter of `storage.batchDeleteFile`: a JSON array of strings.
pub fn fileid_list_json(file_ids: &[String]) -> String {
    let mut out = String::from("[");
    for (index, file_id) in file_ids.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_json_string(&mut out, file_id);
    }
    out.push(']');
    out
}

/// At most 50 entries per call (api-surface.md §6), checked before any I/O.
pub fn check_list_length(length: usize) -> Result<(), Failure> {
    if length > limits::MAX_FILES_PER_CALL {
        return Err(Failure::parameter_error(format!(
            "parameter.fileList exceed max length {}",
            limits::MAX_FILES_PER_CALL
        )));
    }
    Ok(())
}

/// What the server said about one file of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemOutcome {
    /// `SUCCESS` or a storage code (`STORAGE_FILE_NONEXIST`, …).
    pub code: String,
    /// The server's message for a failed item.
    pub message: Option<String>,
}

impl ItemOutcome {
    /// wx's item `status` (0 on success, else the errCode of the code) and item `errMsg` (`ok` or the reason).
    pub fn status_and_message(&self) -> (i32, String) {
        if self.code == "SUCCESS" {
            return (0, "ok".to_owned());
        }
        let status = err_code_for(&self.code);
        let message = self
            .message
            .clone()
            .filter(|message| !message.is_empty())
            .unwrap_or_else(|| self.code.clone());
        (status, message)
    }
}

fn type_error(field: &str, expected: &str, got: &Arg) -> Failure {
    let got = match got {
        Arg::Undefined => "undefined",
        Arg::Null => "null",
        Arg::Str(_) => "string",
        Arg::Object => "object",
        Arg::Array => "array",
        Arg::Other(name) => name,
    };
    Failure::type_error(format!(
        "parameter.{field} should be {expected} instead of {got};"
    ))
}

/// Checks a `cloudPath` (−401003 when not a string, −401002 when it breaks the naming rules).
pub fn check_cloud_path(value: &Arg) -> Result<String, Failure> {
    let Arg::Str(path) = value else {
        return Err(type_error("cloudPath", "string", value));
    };
    validate_cloud_path(path).map_err(|reason| {
        Failure::parameter_error(format!("parameter.cloudPath is invalid: {reason};"))
    })?;
    Ok(path.clone())
}

/// What every storage API does first: the session (or the synchronous not-initialised throw), the options
/// object check, `config.env`, and the caller's `signal`.
struct Start {
    session: Result<Rc<Session>, Failure>,
    signal: Option<AbortSignal>,
}

fn start(cloud: &CloudCore, options: &JsValue, api: &str) -> Result<Start, CloudError> {
    let config_env = Arg::of(&js::get(&js::get(options, "config"), "env"));
    let per_call_env = match (&config_env, cloud.is_default()) {
        (Arg::Str(env), true) => Some(env.as_str()),
        _ => None,
    };
    let session = cloud.session(Service::Storage, per_call_env)?;
    if !options.is_object() || Array::is_array(options) {
        return Err(type_error("options", "object", &Arg::of(options)).into_error(api));
    }
    let session = match config_env {
        Arg::Undefined | Arg::Str(_) => session,
        other => Err(type_error("config.env", "string", &other)),
    };
    let signal = js::get(options, "signal");
    let signal = signal
        .is_object()
        .then(|| signal.unchecked_into::<AbortSignal>());
    Ok(Start { session, signal })
}

/// Where the bytes of an upload come from.
enum Source {
    /// A typed `Blob` (from `file`, or a Blob passed as `filePath`).
    Blob(JsValue),
    /// `filePath`: a `blob:` / object URL (Taro H5's chooseImage) or any URL the page may fetch.
    Url(String),
}

struct UploadInput {
    path: String,
    method: UploadMethod,
    source: Source,
    header: JsValue,
    stall_ms: u32,
}

/// `options.stallTimeout`: how long a transfer may go without moving a byte before it fails with
/// -501002 (default 30 s). It bounds stalls, not the total duration, so large files on slow links finish.
fn stall_timeout(options: &JsValue) -> Result<u32, Failure> {
    let value = js::get(options, "stallTimeout");
    if value.is_undefined() {
        return Ok(transfer::DEFAULT_STALL_TIMEOUT_MS);
    }
    match value.as_f64() {
        Some(ms) if ms >= 1.0 && ms <= f64::from(u32::MAX) => Ok(ms as u32),
        Some(_) => Err(Failure::parameter_error(
            "parameter.stallTimeout should be a positive number of milliseconds;",
        )),
        None => Err(type_error("stallTimeout", "number", &Arg::of(&value))),
    }
}

/// A typed `Blob` for a `file` / `filePath` value, when it is a Blob, File, ArrayBuffer or typed array.
fn blob_from(value: &JsValue, path: &str) -> Option<JsValue> {
    Some(transfer::to_blob(value, content_type_for(path))).filter(|blob| !blob.is_undefined())
}

fn prepare_upload(options: &JsValue) -> Result<UploadInput, Failure> {
    let path = check_cloud_path(&Arg::of(&js::get(options, "cloudPath")))?;
    let method = UploadMethod::parse(&Arg::of(&js::get(options, "method")))?;
    let file = js::get(options, "file");
    let file_path = js::get(options, "filePath");
    const FILE_TYPES: &str = "File, Blob, ArrayBuffer or a typed array";
    let source = if !file.is_undefined() && !file.is_null() {
        match blob_from(&file, &path) {
            Some(blob) => Source::Blob(blob),
            None => return Err(type_error("file", FILE_TYPES, &Arg::of(&file))),
        }
    } else if let Some(blob) = blob_from(&file_path, &path) {
        Source::Blob(blob)
    } else {
        match Arg::of(&file_path) {
            Arg::Str(url) if !url.is_empty() => Source::Url(url),
            Arg::Str(_) => {
                return Err(Failure::parameter_error(
                    "parameter.filePath should not be empty;",
                ))
            }
            Arg::Undefined | Arg::Null => {
                return Err(type_error("file", FILE_TYPES, &Arg::Undefined))
            }
            other => return Err(type_error("filePath", "string", &other)),
        }
    };
    Ok(UploadInput {
        path,
        method,
        source,
        header: js::get(options, "header"),
        stall_ms: stall_timeout(options)?,
    })
}

/// Resolves an upload or download URL the server gave relative to the endpoint.
fn absolute_url(session: &Session, url: &str) -> String {
    if url.starts_with('/') {
        format!("{}{url}", session.base_url)
    } else {
        url.to_owned()
    }
}

/// A storage call, boxed so every API shares one instantiation of the abort and call-style layers.
type Call = Pin<Box<dyn Future<Output = Result<JsValue, CloudError>>>>;

/// Runs a task-returning API: aborted by the caller's `signal` or `task.abort()`; the Promise in
/// Promise style, the task with callbacks.
fn run_task(
    api: &'static str,
    options: &JsValue,
    state: &TransferState,
    signal: Option<AbortSignal>,
    call: Call,
) -> JsValue {
    let task_signal = state.signal();
    let call: Call = Box::pin(async move {
        let with_signal = Abortable::new(async move { Ok::<_, Failure>(call.await) }, signal);
        match Abortable::new(with_signal, Some(task_signal)).await {
            Ok(result) => result,
            Err(failure) => Err(failure.into_error(api)),
        }
    });
    let returned = call_style::dispatch(api, options, call);
    if call_style::has_callbacks(options) {
        state.task()
    } else {
        returned
    }
}

/// `cloud.uploadFile(options)`.
pub fn upload_file(cloud: &CloudCore, options: JsValue) -> Result<JsValue, CloudError> {
    let Start { session, signal } = start(cloud, &options, UPLOAD_API)?;
    let prepared = prepare_upload(&options).and_then(|input| Ok((session?, input)));
    let state = TransferState::new(false);
    let events: TransferState = state.clone().unchecked_into();
    let call = Box::pin(async move {
        let (session, input) = prepared.map_err(|failure| failure.into_error(UPLOAD_API))?;
        upload(session, input, events).await
    });
    Ok(run_task(UPLOAD_API, &options, &state, signal, call))
}

async fn upload(
    session: Rc<Session>,
    input: UploadInput,
    state: TransferState,
) -> Result<JsValue, CloudError> {
    let fail = |failure: Failure| failure.into_error(UPLOAD_API);
    let blob = match input.source {
        Source::Blob(blob) => blob,
        Source::Url(url) => {
            let read = transfer::read_file_path(&url).await.map_err(|failure| {
                let detail = match failure {
                    Failure::Network(detail) => detail,
                    _ => "unreadable".to_owned(),
                };
                fail(Failure::parameter_error(format!(
                    "parameter.filePath could not be read: {detail};"
                )))
            })?;
            blob_from(&read, &input.path).unwrap_or(read)
        }
    };
    let params = upload_metadata_params(&input.path, input.method);
    let body = call_action(&session, UPLOAD_ACTION, &params)
        .await
        .map_err(fail)?;
    let data = js::get(&body, "data");
    let field = |name: &str| js::get_string(&data, name).unwrap_or_default();
    let url = field("url");
    if url.is_empty() {
        return Err(fail(Failure::Local {
            err_code: -403002,
            detail: "the server returned no upload url".to_owned(),
        }));
    }
    let url = absolute_url(&session, &url);
    let (authorization, token, cos_file_id) =
        (field("authorization"), field("token"), field("cosFileId"));
    let content_type = js::get_string(&blob, "type").unwrap_or_default();
    let seq_id = js::random_hex(13);
    let answer = match input.method {
        UploadMethod::Put => {
            let headers = put_headers(&authorization, &cos_file_id, &token, &content_type);
            let stall_ms = input.stall_ms;
            transfer::upload(
                "PUT",
                &url,
                &headers,
                &input.header,
                &blob,
                None,
                &state,
                stall_ms,
            )
            .await
        }
        UploadMethod::Post => {
            let fields = form_fields(&input.path, &authorization, &cos_file_id, &token, &seq_id);
            let upload = transfer::upload(
                "POST",
                &url,
                &[],
                &input.header,
                &blob,
                Some(&fields),
                &state,
                input.stall_ms,
            );
            upload.await
        }
    }
    .map_err(fail)?;
    if !(200..300).contains(&answer.status) {
        return Err(upload_failure(answer.status, &answer.body));
    }
    state.finish(js::get(&blob, "size").as_f64().unwrap_or(0.0));
    let file_id = js::get(&data, "fileId");
    let out = Object::new();
    js::set(&out, "fileID", &file_id);
    js::set(&out, "statusCode", &JsValue::from(answer.status));
    js::set(&out, "errMsg", &JsValue::from_str(&ok_message(UPLOAD_API)));
    Ok(out.into())
}

/// `cloud.downloadFile(options)`.
pub fn download_file(cloud: &CloudCore, options: JsValue) -> Result<JsValue, CloudError> {
    let Start { session, signal } = start(cloud, &options, DOWNLOAD_API)?;
    let file_id = match Arg::of(&js::get(&options, "fileID")) {
        Arg::Str(id) if id.is_empty() => Err(Failure::parameter_error(
            "parameter.fileID should not be empty;",
        )),
        Arg::Str(id) => Ok(id),
        other => Err(type_error("fileID", "string", &other)),
    };
    let prepared = file_id
        .and_then(|id| Ok((id, stall_timeout(&options)?)))
        .and_then(|input| Ok((session?, input)));
    let state = TransferState::new(true);
    let events: TransferState = state.clone().unchecked_into();
    let call = Box::pin(async move {
        let (session, (file_id, stall_ms)) =
            prepared.map_err(|failure| failure.into_error(DOWNLOAD_API))?;
        download(session, file_id, stall_ms, events)
            .await
            .map_err(|failure| failure.into_error(DOWNLOAD_API))
    });
    Ok(run_task(DOWNLOAD_API, &options, &state, signal, call))
}

async fn download(
    session: Rc<Session>,
    file_id: String,
    stall_ms: u32,
    state: TransferState,
) -> Result<JsValue, Failure> {
    let request = [TempUrlRequest {
        file_id,
        max_age: Some(DOWNLOAD_MAX_AGE_SECS),
    }];
    let list = file_list_json(&request);
    let body = call_idempotent_action(&session, TEMP_URL_ACTION, &[Param::Raw("file_list", &list)])
        .await?;
    let item = js::get(&js::get(&js::get(&body, "data"), "download_list"), "0");
    let code = js::get_string(&item, "code").unwrap_or_default();
    if code != "SUCCESS" {
        return Err(Failure::Server {
            code: if code.is_empty() {
                codes::STORAGE_REQUEST_FAIL.to_owned()
            } else {
                code
            },
            message: js::get_string(&item, "message").unwrap_or_default(),
            request_id: js::get_string(&body, "requestId"),
        });
    }
    let url = js::get_string(&item, "download_url")
        .or_else(|| js::get_string(&item, "tempFileURL"))
        .unwrap_or_default();
    if url.is_empty() {
        return Err(Failure::Local {
            err_code: -403003,
            detail: "the server returned no download url".to_owned(),
        });
    }
    // A download changes nothing: transfer.js retries a failed connection or a 408/429/5xx answer
    // (transport::retry) before any byte arrived; a stall is final.
    let result = transfer::download(&absolute_url(&session, &url), &state, stall_ms).await?;
    let status = js::get(&result, "statusCode").as_f64().unwrap_or(0.0) as u16;
    if !(200..300).contains(&status) {
        return Err(Failure::Local {
            err_code: err_code_for(codes::STORAGE_REQUEST_FAIL),
            detail: format!("download failed with HTTP status {status}"),
        });
    }
    js::set(&result, "errMsg", &JsValue::from_str(DOWNLOAD_OK));
    Ok(result)
}

/// Reads `fileList` (an array, at most 50 entries) item by item.
fn read_file_list<T>(
    options: &JsValue,
    mut item: impl FnMut(usize, JsValue) -> Result<T, Failure>,
) -> Result<Vec<T>, Failure> {
    let list = js::get(options, "fileList");
    if !Array::is_array(&list) {
        return Err(type_error("fileList", "array", &Arg::of(&list)));
    }
    let list: Array = list.unchecked_into();
    check_list_length(list.length() as usize)?;
    list.iter()
        .enumerate()
        .map(|(index, value)| item(index, value))
        .collect()
}

/// A `getTempFileURL` entry: a fileID string, or `{fileID, maxAge?}` (maxAge in whole seconds).
fn temp_url_request(index: usize, value: JsValue) -> Result<TempUrlRequest, Failure> {
    if let Some(file_id) = value.as_string() {
        return Ok(TempUrlRequest {
            file_id,
            max_age: None,
        });
    }
    let field = format!("fileList[{index}]");
    if !value.is_object() {
        return Err(type_error(&field, "string or object", &Arg::of(&value)));
    }
    let file_id = match Arg::of(&js::get(&value, "fileID")) {
        Arg::Str(id) => id,
        other => return Err(type_error(&format!("{field}.fileID"), "string", &other)),
    };
    let max_age = js::get(&value, "maxAge");
    let max_age = if max_age.is_undefined() || max_age.is_null() {
        None
    } else {
        match max_age.as_f64() {
            Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
                Some(seconds.min(f64::from(u32::MAX)) as u32)
            }
            Some(_) => {
                return Err(Failure::parameter_error(format!(
                    "parameter.{field}.maxAge should be a non-negative number;"
                )))
            }
            None => {
                return Err(type_error(
                    &format!("{field}.maxAge"),
                    "number",
                    &Arg::of(&max_age),
                ))
            }
        }
    };
    Ok(TempUrlRequest { file_id, max_age })
}

fn outcome_of(item: &JsValue) -> ItemOutcome {
    ItemOutcome {
        code: js::get_string(item, "code").unwrap_or_else(|| codes::SYS_ERR.to_owned()),
        message: js::get_string(item, "message"),
    }
}

fn list_result(api: &str, items: Array) -> JsValue {
    let out = Object::new();
    js::set(&out, "fileList", &items);
    js::set(&out, "errMsg", &JsValue::from_str(&ok_message(api)));
    out.into()
}

/// `cloud.getTempFileURL(options)`.
pub fn get_temp_file_url(cloud: &CloudCore, options: JsValue) -> Result<JsValue, CloudError> {
    let Start { session, signal } = start(cloud, &options, TEMP_URL_API)?;
    let requests = read_file_list(&options, temp_url_request);
    let call: Call = Box::pin(async move {
        let requests = requests.map_err(|failure| failure.into_error(TEMP_URL_API))?;
        if requests.is_empty() {
            return Ok(list_result(TEMP_URL_API, Array::new()));
        }
        let session = session.map_err(|failure| failure.into_error(TEMP_URL_API))?;
        Abortable::new(temp_urls(session, requests), signal)
            .await
            .map_err(|failure| failure.into_error(TEMP_URL_API))
    });
    Ok(call_style::dispatch(TEMP_URL_API, &options, call))
}

async fn temp_urls(
    session: Rc<Session>,
    requests: Vec<TempUrlRequest>,
) -> Result<JsValue, Failure> {
    let list = file_list_json(&requests);
    let body = call_idempotent_action(&session, TEMP_URL_ACTION, &[Param::Raw("file_list", &list)])
        .await?;
    let answers = js::get(&js::get(&body, "data"), "download_list");
    let items = Array::new();
    for (index, request) in requests.iter().enumerate() {
        let answer = js::get(&answers, &index.to_string());
        let (status, err_msg) = outcome_of(&answer).status_and_message();
        let server_max_age = js::get(&answer, "max_age")
            .as_f64()
            .or_else(|| js::get(&answer, "maxAge").as_f64());
        let max_age = server_max_age
            .unwrap_or_else(|| f64::from(request.max_age.unwrap_or(DEFAULT_MAX_AGE_SECS)));
        let temp_url = if status == 0 {
            js::get_string(&answer, "tempFileURL")
                .or_else(|| js::get_string(&answer, "download_url"))
                .map(|url| absolute_url(&session, &url))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let item = Object::new();
        js::set(&item, "fileID", &JsValue::from_str(&request.file_id));
        js::set(&item, "tempFileURL", &JsValue::from_str(&temp_url));
        js::set(&item, "maxAge", &JsValue::from_f64(max_age));
        js::set(&item, "status", &JsValue::from(status));
        js::set(&item, "errMsg", &JsValue::from_str(&err_msg));
        items.push(&item);
    }
    Ok(list_result(TEMP_URL_API, items))
}

/// `cloud.deleteFile(options)`.
pub fn delete_file(cloud: &CloudCore, options: JsValue) -> Result<JsValue, CloudError> {
    let Start { session, signal } = start(cloud, &options, DELETE_API)?;
    let file_ids = read_file_list(&options, |index, value| match Arg::of(&value) {
        Arg::Str(id) => Ok(id),
        other => Err(type_error(&format!("fileList[{index}]"), "string", &other)),
    });
    let call: Call = Box::pin(async move {
        let file_ids = file_ids.map_err(|failure| failure.into_error(DELETE_API))?;
        if file_ids.is_empty() {
            return Ok(list_result(DELETE_API, Array::new()));
        }
        let session = session.map_err(|failure| failure.into_error(DELETE_API))?;
        Abortable::new(delete(session, file_ids), signal)
            .await
            .map_err(|failure| failure.into_error(DELETE_API))
    });
    Ok(call_style::dispatch(DELETE_API, &options, call))
}

async fn delete(session: Rc<Session>, file_ids: Vec<String>) -> Result<JsValue, Failure> {
    let list = fileid_list_json(&file_ids);
    let body = call_action(&session, DELETE_ACTION, &[Param::Raw("fileid_list", &list)]).await?;
    let answers = js::get(&js::get(&body, "data"), "delete_list");
    let items = Array::new();
    for (index, file_id) in file_ids.iter().enumerate() {
        let (status, err_msg) =
            outcome_of(&js::get(&answers, &index.to_string())).status_and_message();
        let item = Object::new();
        js::set(&item, "fileID", &JsValue::from_str(file_id));
        js::set(&item, "status", &JsValue::from(status));
        js::set(&item, "errMsg", &JsValue::from_str(&err_msg));
        items.push(&item);
    }
    Ok(list_result(DELETE_API, items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_captures;
    use crate::transport::envelope::envelope;

    fn err_code(failure: Failure) -> i32 {
        failure.into_error(UPLOAD_API).err_code
    }

    #[test]
    fn cloud_paths_are_checked_before_any_io() {
        assert_eq!(
            check_cloud_path(&Arg::Str("a/b.png".into())),
            Ok("a/b.png".into())
        );
        for bad in ["", "/a", "a//b", "../etc/passwd", "a/../../b", "a\u{1b}b"] {
            assert_eq!(
                err_code(check_cloud_path(&Arg::Str(bad.into())).unwrap_err()),
                -401002,
                "{bad}"
            );
        }
        assert_eq!(
            err_code(check_cloud_path(&Arg::Undefined).unwrap_err()),
            -401003
        );
        let error = check_cloud_path(&Arg::Str("/x".into()))
            .unwrap_err()
            .into_error(UPLOAD_API);
        assert_eq!(
            error.err_msg,
            "cloud.uploadFile:fail -401002 api parameter error. parameter.cloudPath is invalid: cloudPath must not start with /;"
        );
    }

    #[test]
    fn form_fields_keep_the_cos_order() {
        let fields = form_fields("dir/hello.txt", "sig", "meta", "tok", "seq");
        let names: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
        // protocol.md §4.2 and capture A.3 (`file` follows).
        assert_eq!(
            names,
            [
                "key",
                "signature",
                "x-cos-meta-fileid",
                "success_action_status",
                "x-cos-security-token",
                "seqId",
                "key"
            ]
        );
        assert_eq!(fields[0].1, "dir/hello.txt");
        assert_eq!(fields[1].1, "sig");
        assert_eq!(fields[2].1, "meta");
        assert_eq!(fields[3].1, "201");
        assert_eq!(fields[4].1, "tok");
        assert_eq!(fields[5].1, "seq");
        assert_eq!(fields[6].1, "dir/hello.txt");
    }

    #[test]
    fn put_headers_match_the_capture() {
        assert_eq!(
            put_headers("auth", "meta", "tok", "text/plain"),
            [
                ("authorization", "auth"),
                ("x-cos-meta-fileid", "meta"),
                ("x-cos-security-token", "tok"),
                ("content-type", "text/plain"),
            ]
        );
    }

    #[test]
    fn content_types_come_from_the_extension() {
        assert_eq!(content_type_for("a/b.PNG"), "image/png");
        assert_eq!(content_type_for("x.jpeg"), "image/jpeg");
        assert_eq!(
            content_type_for("dir.v2/readme"),
            "application/octet-stream"
        );
        assert_eq!(content_type_for("hello.txt"), "text/plain");
    }

    #[test]
    fn upload_failures_carry_status_and_cos_text() {
        let body = "<?xml version=\"1.0\"?><Error><Code>EntityTooLarge</Code><Message>too big</Message><RequestId>r-1</RequestId></Error>";
        let error = upload_failure(400, body);
        assert_eq!(error.err_code, -403001);
        assert_eq!(error.code.as_deref(), Some("EntityTooLarge"));
        assert_eq!(error.request_id.as_deref(), Some("r-1"));
        assert!(error.err_msg.starts_with(
            "cloud.uploadFile:fail -403001 max upload file size exceeded. status 400, error: <?xml"
        ));
        assert!(error.err_msg.ends_with("</Error>;"));
        let denied = upload_failure(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>");
        assert_eq!(denied.err_code, -503002);
        assert_eq!(upload_failure(500, "boom").err_code, -503001);
        assert_eq!(upload_failure(500, "boom").code, None);
    }

    #[test]
    fn list_limits_and_item_outcomes() {
        assert!(check_list_length(50).is_ok());
        let error = check_list_length(51).unwrap_err().into_error(TEMP_URL_API);
        assert_eq!(error.err_code, -401002);
        assert!(error
            .err_msg
            .ends_with("parameter.fileList exceed max length 50"));
        let ok = ItemOutcome {
            code: "SUCCESS".into(),
            message: None,
        };
        assert_eq!(ok.status_and_message(), (0, "ok".into()));
        let missing = ItemOutcome {
            code: "STORAGE_FILE_NONEXIST".into(),
            message: Some("file not found".into()),
        };
        assert_eq!(
            missing.status_and_message(),
            (-503003, "file not found".into())
        );
        let bare = ItemOutcome {
            code: "STORAGE_EXCEED_AUTHORITY".into(),
            message: None,
        };
        assert_eq!(
            bare.status_and_message(),
            (-503002, "STORAGE_EXCEED_AUTHORITY".into())
        );
    }

    #[test]
    fn method_option() {
        assert_eq!(UploadMethod::parse(&Arg::Undefined), Ok(UploadMethod::Put));
        assert_eq!(
            UploadMethod::parse(&Arg::Str("POST".into())),
            Ok(UploadMethod::Post)
        );
        assert_eq!(
            err_code(UploadMethod::parse(&Arg::Str("patch".into())).unwrap_err()),
            -401002
        );
        assert_eq!(
            err_code(UploadMethod::parse(&Arg::Object).unwrap_err()),
            -401003
        );
    }

    /// Our storage envelopes equal the official SDK's captured bodies once its access_token and seqId
    /// are used (protocol.md A.2, A.3).
    #[test]
    fn golden_storage_envelopes() {
        let mut checked = [0; 4];
        for capture in test_captures::fixture(test_captures::STORAGE) {
            let captured = &capture.json;
            let (env, token, seq_id) = (
                capture.field("env"),
                capture.field("access_token"),
                capture.field("seqId"),
            );
            let ours = match capture.action() {
                Some(UPLOAD_ACTION) => {
                    let method = match captured["method"].as_str() {
                        Some("put") => UploadMethod::Put,
                        Some("post") => UploadMethod::Post,
                        _ => continue, // 1.x sends no method
                    };
                    checked[usize::from(method == UploadMethod::Post)] += 1;
                    let path = capture.field("path");
                    envelope(
                        UPLOAD_ACTION,
                        &env,
                        &upload_metadata_params(&path, method),
                        &token,
                        &seq_id,
                    )
                }
                Some(TEMP_URL_ACTION) => {
                    checked[2] += 1;
                    let requests: Vec<TempUrlRequest> = captured["file_list"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|item| TempUrlRequest {
                            file_id: item["fileid"].as_str().unwrap().to_owned(),
                            max_age: item["max_age"].as_u64().map(|age| age as u32),
                        })
                        .collect();
                    let list = file_list_json(&requests);
                    envelope(
                        TEMP_URL_ACTION,
                        &env,
                        &[Param::Raw("file_list", &list)],
                        &token,
                        &seq_id,
                    )
                }
                Some(DELETE_ACTION) => {
                    checked[3] += 1;
                    let ids: Vec<String> = captured["fileid_list"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|id| id.as_str().unwrap().to_owned())
                        .collect();
                    let list = fileid_list_json(&ids);
                    envelope(
                        DELETE_ACTION,
                        &env,
                        &[Param::Raw("fileid_list", &list)],
                        &token,
                        &seq_id,
                    )
                }
                _ => continue,
            };
            assert_eq!(ours, capture.body);
        }
        assert!(
            checked.iter().all(|count| *count >= 1),
            "captures missing: {checked:?}"
        );
    }

    #[test]
    fn json_lists_escape_ids() {
        assert_eq!(
            fileid_list_json(&["a\"b".into(), "c".into()]),
            r#"["a\"b","c"]"#
        );
        assert_eq!(fileid_list_json(&[]), "[]");
        let requests = [
            TempUrlRequest {
                file_id: "x".into(),
                max_age: None,
            },
            TempUrlRequest {
                file_id: "y".into(),
                max_age: Some(600),
            },
        ];
        assert_eq!(
            file_list_json(&requests),
            r#"[{"fileid":"x"},{"fileid":"y","max_age":600}]"#
        );
    }
}
