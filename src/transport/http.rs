//! One HTTP exchange over the global `fetch`, with a timeout and an abort guard: dropping the future
//! (or its deadline passing, see `deadline`) aborts the fetch, as reqwest's wasm backend does.

use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::deadline::{self, Deadline};
use crate::error::Failure;
use crate::js::{self, AbortController};

/// A response read to the end.
pub struct HttpResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body parsed as JSON, or `undefined` when it is not JSON. It is parsed on the JS side: the
    /// text never crosses into wasm memory and back.
    pub json: JsValue,
}

/// Aborts the fetch when dropped before it finished; knows whether the shared timer aborted it.
pub struct AbortGuard {
    controller: AbortController,
    // How many requests used `controller` (see `SPARE`).
    uses: u32,
    // Released once the request finished, so a late timer can never abort a reused controller.
    deadline: Option<Rc<Deadline>>,
}

/// Requests one `AbortController` serves at most (one at a time, see `SPARE`).
const CONTROLLER_USES: u32 = 16;

thread_local! {
    // The controller of the last request that finished without being aborted, ready for the next one.
    // A fresh signal per request was the largest single cost left in a call (Node's createAbortSignal
    // plus fetch's setMaxListeners on every new signal, bench/overhead.mjs). Sharing a never-aborted
    // signal between requests that do not overlap is harmless: aborting it later only reaches the one
    // request in flight (finished fetches ignore it). Fetch keeps one listener per request on the
    // signal until the request is garbage-collected, hence the bound on reuse.
    static SPARE: std::cell::RefCell<Option<(AbortController, u32)>> = const { std::cell::RefCell::new(None) };
}

impl AbortGuard {
    /// A controller for one request, aborted by the shared timer after `timeout_ms`.
    pub fn new(timeout_ms: u32) -> Self {
        let (controller, uses) = SPARE
            .with(|spare| spare.borrow_mut().take())
            .unwrap_or_else(|| (AbortController::new(), 0));
        let deadline = deadline::register(controller.clone().unchecked_into(), timeout_ms);
        AbortGuard {
            controller,
            uses: uses + 1,
            deadline: Some(deadline),
        }
    }

    /// Marks the request as over: dropping the guard then aborts nothing, the timer forgets it and
    /// its controller may serve the next request.
    pub fn finish(&mut self) {
        if self.deadline.take().is_some() && self.uses < CONTROLLER_USES {
            let controller: AbortController = self.controller.clone().unchecked_into();
            SPARE.with(|spare| *spare.borrow_mut() = Some((controller, self.uses)));
        }
    }

    /// The failure for a rejected fetch: `Timeout` when the shared timer aborted it.
    pub fn failure(&self, error: &JsValue) -> Failure {
        if self
            .deadline
            .as_ref()
            .is_some_and(|deadline| deadline.timed_out())
        {
            Failure::Timeout
        } else {
            Failure::Network(describe_js_error(error))
        }
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if self.deadline.is_some() {
            // The future was dropped (or failed) mid-flight: cancel the fetch. Its controller is
            // never reused.
            self.controller.abort();
        }
    }
}

/// Headers cross into JS as one "name\nvalue\n…" string: one string conversion instead of two per
/// header (header names and values cannot contain a newline).
pub fn header_lines(headers: &[(&str, &str)]) -> String {
    let mut lines = String::with_capacity(128);
    for (name, value) in headers {
        lines.extend([*name, "\n", *value, "\n"]);
    }
    lines
}

/// Sends one request that is safe to repeat (sign-in, refresh) and reads the whole body, retrying transient
/// failures (`retry`); fails with `Timeout` after `timeout_ms` for all attempts together.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout_ms: u32,
) -> Result<HttpResponse, Failure> {
    let mut guard = AbortGuard::new(timeout_ms);
    let body = body.map_or(JsValue::UNDEFINED, JsValue::from_str);
    let promise = start(
        &JsValue::from_str(url),
        method,
        &header_lines(headers),
        &body,
        &guard,
        None,
        super::retry::MAX_RETRIES,
    )
    .map_err(|error| guard.failure(&error))?;
    let outcome = JsFuture::from(promise)
        .await
        .map_err(|error| guard.failure(&error))?;
    guard.finish();
    let outcome: Array = outcome.unchecked_into();
    Ok(HttpResponse {
        status: outcome.get(0).as_f64().unwrap_or(0.0) as u16,
        json: outcome.get(1),
    })
}

/// The JS function a request started with [`start`] hands its outcome to, with the request's `id`:
/// `handler(id, status, json)` once the body is parsed (`json` undefined when it is not JSON), or
/// `handler(id, -1, error)` when the fetch or the body read failed. What it returns (or throws)
/// settles the promise `start` returned.
pub struct OutcomeHandler<'a> {
    /// The handler.
    pub function: &'a js_sys::Function,
    /// The request's id, passed back as the first argument.
    pub id: u32,
}

/// Starts `fetch` under `guard`'s controller, repeating it up to `retries` times after a transient failure
/// (see `retry`; the guard's deadline bounds every attempt together). Without a handler the promise
/// resolves to `[status, json]` and rejects with the fetch error.
pub fn start(
    url: &JsValue,
    method: &str,
    header_lines: &str,
    body: &JsValue,
    guard: &AbortGuard,
    handler: Option<OutcomeHandler>,
    retries: u32,
) -> Result<js_sys::Promise, JsValue> {
    let (function, id) = handler.map_or((JsValue::UNDEFINED, 0), |handler| {
        (handler.function.into(), handler.id)
    });
    fetch_json(
        url,
        method,
        header_lines,
        body,
        &guard.controller,
        &function,
        id,
        retries,
    )
}

// Builds the request and runs fetch → text → JSON.parse (→ the handler) as ONE promise, reading the
// controller's signal on the JS side. Every JS object built from Rust field by field, every promise
// awaited from Rust (two closures and a trip through the executor) and every crossing is a measurable
// share of a loopback round trip (bench/overhead.mjs).
// Builds the request and runs fetch → text → JSON.parse (→ the handler) as ONE promise, reading the
// controller's signal on the JS side. Every JS object built from Rust field by field, every promise
// awaited from Rust (two closures and a trip through the executor) and every crossing is a measurable
// share of a loopback round trip (bench/overhead.mjs). Retries live here too, for the same reason: a
// failed attempt waits and fetches again without a trip through Rust (policy: transport/retry.rs).
#[wasm_bindgen(
    inline_js = "export function fetchJson(url, method, headerLines, body, controller, handler, id, retries) {
  const headers = {};
  const lines = headerLines.split('\\n');
  for (let i = 0; i + 1 < lines.length; i += 2) headers[lines[i]] = lines[i + 1];
  const signal = controller.signal;
  const fail = (error) => { if (handler) return handler(id, -1, error); throw error; };
  // Full jitter: a random wait below min(2 s, 100 ms * 2^n); the controller's deadline still bounds it all.
  const retry = (n, otherwise) => n < retries && !signal.aborted
    ? new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2000, 100 << n))).then(() => attempt(n + 1))
    : otherwise();
  const attempt = (n) => fetch(url, { method, headers, body, signal }).then((r) => r.text().then((text) => {
    let json;
    try { json = JSON.parse(text); } catch (_) {}
    const done = () => handler ? handler(id, r.status, json) : [r.status, json];
    const answer = json !== null && typeof json === 'object';
    const transient = answer ? !json.code && (r.status === 408 || r.status === 429 || r.status >= 500)
      : r.status === 200 || r.status === 408 || r.status === 429 || r.status >= 500;
    return transient ? retry(n, done) : done();
  }, (error) => retry(n, () => fail(error))), (error) => retry(n, () => fail(error)));
  return attempt(0);
}"
)]
extern "C" {
    #[wasm_bindgen(catch, js_name = fetchJson)]
    #[allow(clippy::too_many_arguments)]
    fn fetch_json(
        url: &JsValue,
        method: &str,
        header_lines: &str,
        body: &JsValue,
        controller: &AbortController,
        handler: &JsValue,
        id: u32,
        retries: u32,
    ) -> Result<js_sys::Promise, JsValue>;
}

/// `error.message` of a thrown JS value, or its string form.
pub fn describe_js_error(error: &JsValue) -> String {
    js::get_string(error, "message")
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "network request failed".to_owned())
}
