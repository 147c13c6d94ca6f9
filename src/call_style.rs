//! The OQ/RQ rule (api-surface.md §4.2): options with a truthy `success`, `fail` or `complete` are
//! served through callbacks (the call returns `undefined`), otherwise the call returns a Promise.

use std::future::Future;
use std::pin::Pin;

use js_sys::{Function, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};

use crate::error::CloudError;
use crate::js;

/// The callbacks of callback-style options (any of them may be a non-function).
pub struct Callbacks {
    /// `success(result)`.
    pub success: JsValue,
    /// `fail(error)`.
    pub fail: JsValue,
    /// `complete(result or error)`.
    pub complete: JsValue,
}

impl Callbacks {
    /// The callbacks of `options`, or `None` when none of them is truthy (Promise style).
    pub fn of(options: &JsValue) -> Option<Self> {
        let callbacks = Callbacks {
            success: js::get(options, "success"),
            fail: js::get(options, "fail"),
            complete: js::get(options, "complete"),
        };
        callbacks.selected().then_some(callbacks)
    }

    /// Whether these callbacks select callback style.
    pub fn selected(&self) -> bool {
        self.success.is_truthy() || self.fail.is_truthy() || self.complete.is_truthy()
    }

    fn deliver(self, api: &str, outcome: Result<JsValue, JsValue>) {
        let (callback, name, value) = match outcome {
            Ok(result) => (self.success, "success", result),
            Err(error) => (self.fail, "fail", error),
        };
        invoke(api, name, &callback, &value);
        invoke(api, "complete", &self.complete, &value);
    }
}

/// Whether `options` selects callback style.
#[cfg_attr(not(feature = "storage"), allow(dead_code))]
pub fn has_callbacks(options: &JsValue) -> bool {
    Callbacks::of(options).is_some()
}

/// Runs `call` and delivers its outcome in the style `options` asks for. Callbacks always run
/// asynchronously (from the microtask queue), `success`→`complete` or `fail`→`complete`; an exception
/// thrown by a callback is logged and goes nowhere else.
#[cfg_attr(not(any(feature = "storage", feature = "database")), allow(dead_code))]
pub fn dispatch(
    api: &'static str,
    options: &JsValue,
    call: impl Future<Output = Result<JsValue, CloudError>> + 'static,
) -> JsValue {
    dispatch_with(api, Callbacks::of(options), call)
}

/// [`dispatch`] with the callbacks already read.
pub fn dispatch_with(
    api: &'static str,
    callbacks: Option<Callbacks>,
    call: impl Future<Output = Result<JsValue, CloudError>> + 'static,
) -> JsValue {
    dispatch_boxed(api, callbacks, Box::pin(call))
}

/// The Promise of `call`, rejected with its error as a JS value: for internal steps (a sign-in, a slow path)
/// that are futures too, through the same one instance of the machinery.
pub fn promise(call: impl Future<Output = Result<JsValue, CloudError>> + 'static) -> Promise {
    dispatch_boxed("", None, Box::pin(call)).unchecked_into()
}

/// The one instance of the Promise / callback machinery: boxing each API's future here (one allocation per
/// call) keeps `future_to_promise`, `spawn_local` and their task code from being compiled once per API
/// (bench/size.mjs: they were six copies).
fn dispatch_boxed(
    api: &'static str,
    callbacks: Option<Callbacks>,
    call: Pin<Box<dyn Future<Output = Result<JsValue, CloudError>>>>,
) -> JsValue {
    let call = async move { call.await.map_err(|error| error.to_js()) };
    match callbacks {
        None => future_to_promise(call).into(),
        Some(callbacks) => {
            spawn_local(async move { callbacks.deliver(api, call.await) });
            JsValue::UNDEFINED
        }
    }
}

/// [`dispatch_with`] for a call that already is a Promise (rejected with the API's JS error):
/// returned as it is, or its outcome delivered to the callbacks under the same rules.
pub fn dispatch_promise(api: &'static str, callbacks: Option<Callbacks>, call: Promise) -> JsValue {
    match callbacks {
        None => call.into(),
        Some(callbacks) => {
            spawn_local(async move { callbacks.deliver(api, JsFuture::from(call).await) });
            JsValue::UNDEFINED
        }
    }
}

/// Calls a user callback if it is a function; non-functions select callback mode but are not called.
fn invoke(api: &str, name: &str, callback: &JsValue, value: &JsValue) {
    if let Some(callback) = callback.dyn_ref::<Function>() {
        if let Err(thrown) = callback.call1(&JsValue::UNDEFINED, value) {
            js::console_error(&format!("at api {api} {name} callback function"), &thrown);
        }
    }
}
