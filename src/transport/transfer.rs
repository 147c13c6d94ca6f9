//! Moving file bytes for storage: uploads through `XMLHttpRequest` where it exists (byte-level upload
//! progress), else `fetch` (Node: one final progress event), and downloads through `fetch` with progress
//! read from the body stream against `Content-Length`.
//!
//! The byte-moving code is the small JS module `transfer.js` next to this file: driving XHR, streams and
//! listeners from Rust cost about 30 KB of gzipped wasm (glue, closures, string crossings) for what is
//! ~1.5 KB of JS. Bytes stay in `Blob`s and `ArrayBuffer`s; they never enter wasm memory or a string.
//! Dropping a transfer future aborts the request, like `http::send`.

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::Failure;
use crate::js::{self, AbortController, AbortSignal};

#[wasm_bindgen(module = "/src/transport/transfer.js")]
extern "C" {
    /// A transfer's listeners, progress bookkeeping and abort switch; `task` is what users see.
    pub type TransferState;
    #[wasm_bindgen(js_name = createTask)]
    fn create_task(is_download: bool) -> TransferState;
    /// The `UploadTask` / `DownloadTask` object.
    #[wasm_bindgen(method, getter)]
    pub fn task(this: &TransferState) -> JsValue;
    /// Fires when `task.abort()` is called.
    #[wasm_bindgen(method, getter)]
    pub fn signal(this: &TransferState) -> AbortSignal;
    /// Reports the end of a successful transfer (a last event at the total unless one was sent).
    #[wasm_bindgen(method)]
    pub fn finish(this: &TransferState, fallback_total: f64);

    /// `value` as a typed `Blob`, or `undefined` when it is not a Blob, ArrayBuffer or typed array.
    #[wasm_bindgen(js_name = toBlob)]
    pub fn to_blob(value: &JsValue, content_type: &str) -> JsValue;

    #[wasm_bindgen(catch, js_name = readFilePath)]
    fn read_file_path_js(url: &str, signal: &AbortSignal) -> Result<Promise, JsValue>;

    #[wasm_bindgen(catch, js_name = upload)]
    #[allow(clippy::too_many_arguments)]
    fn upload_js(
        method: &str,
        url: &str,
        headers: &Array,
        extra: &JsValue,
        blob: &JsValue,
        fields: &JsValue,
        state: &TransferState,
        signal: &AbortSignal,
        stall_ms: u32,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(catch, js_name = download)]
    fn download_js(
        url: &str,
        state: &TransferState,
        signal: &AbortSignal,
        stall_ms: u32,
    ) -> Result<Promise, JsValue>;
}

impl TransferState {
    /// A fresh state for an upload (`totalBytesSent`…) or a download (`totalBytesWritten`…).
    pub fn new(is_download: bool) -> TransferState {
        create_task(is_download)
    }
}

/// Aborts the JS side of a transfer when its future is dropped before it settled.
struct AbortOnDrop {
    controller: AbortController,
    settled: bool,
}

impl AbortOnDrop {
    fn new() -> Self {
        AbortOnDrop {
            controller: AbortController::new(),
            settled: false,
        }
    }

    async fn run(
        &mut self,
        start: impl FnOnce(&AbortSignal) -> Result<Promise, JsValue>,
    ) -> Result<JsValue, Failure> {
        let promise = start(&self.controller.signal()).map_err(network)?;
        let result = JsFuture::from(promise).await.map_err(network);
        self.settled = true;
        result
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.settled {
            self.controller.abort();
        }
    }
}

/// A transfer fails after this long without progress unless the call says otherwise (`stallTimeout`).
pub const DEFAULT_STALL_TIMEOUT_MS: u32 = 30_000;

/// A rejected transfer: a stall (transfer.js names it `TimeoutError`) is a timeout, the rest network.
fn network(error: JsValue) -> Failure {
    let detail = super::http::describe_js_error(&error);
    if js::get_string(&error, "name").as_deref() == Some("TimeoutError") {
        return Failure::Local {
            err_code: cloud_protocol::errcode::SERVER_TIMEOUT,
            detail,
        };
    }
    Failure::Network(detail)
}

/// Pairs as a JS array of `[name, value]` arrays.
fn pairs(list: &[(&str, &str)]) -> Array {
    list.iter()
        .map(|(name, value)| Array::of2(&JsValue::from_str(name), &JsValue::from_str(value)))
        .collect()
}

/// What the server answered to an upload.
pub struct Answer {
    /// The HTTP status (2xx or not).
    pub status: u16,
    /// The response body as text (COS XML on errors).
    pub body: String,
}

/// Sends `blob` to `url`: raw when `fields` is `None` (presigned PUT), else as a multipart form with
/// `fields` in order and then `file`. `extra` is the caller's `header` object, added last.
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    extra: &JsValue,
    blob: &JsValue,
    fields: Option<&[(&str, &str)]>,
    state: &TransferState,
    stall_ms: u32,
) -> Result<Answer, Failure> {
    let headers = pairs(headers);
    let fields = fields.map_or(JsValue::NULL, |fields| pairs(fields).into());
    let answer = AbortOnDrop::new()
        .run(|signal| {
            upload_js(
                method, url, &headers, extra, blob, &fields, state, signal, stall_ms,
            )
        })
        .await?;
    Ok(Answer {
        status: js::get(&answer, "status").as_f64().unwrap_or(0.0) as u16,
        body: js::get_string(&answer, "text").unwrap_or_default(),
    })
}

/// GETs `url`; resolves with `{statusCode, header, data: ArrayBuffer, tempFilePath?}`; fails after
/// `stall_ms` without a byte.
pub async fn download(url: &str, state: &TransferState, stall_ms: u32) -> Result<JsValue, Failure> {
    AbortOnDrop::new()
        .run(|signal| download_js(url, state, signal, stall_ms))
        .await
}

/// Reads a `filePath` URL (`blob:` / object URL) into a `Blob`.
pub async fn read_file_path(url: &str) -> Result<JsValue, Failure> {
    AbortOnDrop::new()
        .run(|signal| read_file_path_js(url, signal))
        .await
}
