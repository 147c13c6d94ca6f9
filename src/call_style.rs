//! The OQ/RQ rule (api-surface.md §4.2): options with a truthy `success`, `fail` or `complete` are
//! served through callbacks (the call returns `undefined`), otherwise the call returns a Promise.

use std::future::Future;

use js_sys::Function;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use crate::error::CloudError;
use crate::js;

/// Whether `options` selects callback style.
pub fn has_callbacks(options: &JsValue) -> bool {
    ["success", "fail", "complete"]
        .iter()
        .any(|key| js::get(options, key).is_truthy())
}

/// Runs `call` and delivers its outcome in the style `options` asks for. Callbacks always run
/// asynchronously (from the microtask queue), `success`→`complete` or `fail`→`complete`; an exception
/// thrown by a callback is logged and goes nowhere else.
pub fn dispatch(
    api: &'static str,
    options: &JsValue,
    call: impl Future<Output = Result<JsValue, CloudError>> + 'static,
) -> JsValue {
    if !has_callbacks(options) {
        return future_to_promise(async move { call.await.map_err(|error| error.to_js()) }).into();
    }
    let success = js::get(options, "success");
    let fail = js::get(options, "fail");
    let complete = js::get(options, "complete");
    spawn_local(async move {
        let (callback, name, value) = match call.await {
            Ok(result) => (success, "success", result),
            Err(error) => (fail, "fail", error.to_js()),
        };
        invoke(api, name, &callback, &value);
        invoke(api, "complete", &complete, &value);
    });
    JsValue::UNDEFINED
}

/// Calls a user callback if it is a function; non-functions select callback mode but are not called.
fn invoke(api: &str, name: &str, callback: &JsValue, value: &JsValue) {
    if let Some(callback) = callback.dyn_ref::<Function>() {
        if let Err(thrown) = callback.call1(&JsValue::UNDEFINED, value) {
            js::console_error(&format!("at api {api} {name} callback function"), &thrown);
        }
    }
}
