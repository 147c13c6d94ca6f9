//! One HTTP exchange over the global `fetch`, with a timeout and an abort guard: dropping the future
//! (or the timer firing) aborts the fetch, as reqwest's wasm backend does.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::error::Failure;
use crate::js::{self, AbortController, Response};

/// A response read to the end.
pub struct HttpResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// Aborts the fetch when dropped and clears the timer; records whether the timer fired.
struct AbortGuard {
    controller: AbortController,
    timer: JsValue,
    timed_out: Rc<Cell<bool>>,
    // Kept alive until the guard drops, then freed with it.
    _on_timeout: Closure<dyn FnMut()>,
}

impl AbortGuard {
    fn new(timeout_ms: u32) -> Self {
        let controller = AbortController::new();
        let timed_out = Rc::new(Cell::new(false));
        let on_timeout = {
            let controller: AbortController = controller.clone().unchecked_into();
            let timed_out = timed_out.clone();
            Closure::<dyn FnMut()>::new(move || {
                timed_out.set(true);
                controller.abort();
            })
        };
        let timer = js::set_timeout(on_timeout.as_ref().unchecked_ref(), timeout_ms);
        AbortGuard {
            controller,
            timer,
            timed_out,
            _on_timeout: on_timeout,
        }
    }

    fn failure(&self, error: &JsValue) -> Failure {
        if self.timed_out.get() {
            Failure::Timeout
        } else {
            Failure::Network(describe_js_error(error))
        }
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        js::clear_timeout(&self.timer);
        // Aborting a finished fetch is a no-op; aborting a pending one cancels it.
        self.controller.abort();
    }
}

/// Sends one request and reads the whole body, failing with `Timeout` after `timeout_ms`.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout_ms: u32,
) -> Result<HttpResponse, Failure> {
    let guard = AbortGuard::new(timeout_ms);
    let init = Object::new();
    js::set(&init, "method", &JsValue::from_str(method));
    let header_list = Array::new();
    for (name, value) in headers {
        header_list.push(&Array::of2(
            &JsValue::from_str(name),
            &JsValue::from_str(value),
        ));
    }
    js::set(&init, "headers", &header_list);
    if let Some(body) = body {
        js::set(&init, "body", &JsValue::from_str(body));
    }
    js::set(&init, "signal", &guard.controller.signal());

    let promise = js::fetch(url, &init).map_err(|error| guard.failure(&error))?;
    let response: Response = JsFuture::from(promise)
        .await
        .map_err(|error| guard.failure(&error))?
        .unchecked_into();
    let status = response.status();
    let text = response.text().map_err(|error| guard.failure(&error))?;
    let body = JsFuture::from(text)
        .await
        .map_err(|error| guard.failure(&error))?;
    Ok(HttpResponse {
        status,
        body: body.as_string().unwrap_or_default(),
    })
}

/// `error.message` of a thrown JS value, or its string form.
pub fn describe_js_error(error: &JsValue) -> String {
    js::get_string(error, "message")
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "network request failed".to_owned())
}
