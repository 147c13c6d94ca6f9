//! `callContainer` (api-surface.md §2.6, protocol.md §9): `{METHOD} {gateway}/v1/cloudrun/{service}{path}`
//! with the session's Bearer token, as the CloudBase HTTP API gateway (and @cloudbase/js-sdk 3.x
//! `callContainer`) expects.
//!
//! wx's parameters are checked before any I/O, in the JS helper below: they are JS values that only
//! pass through to `fetch` (header names and values, the body as a string or bytes, the query), and
//! checking them in Rust cost ~7 KB of wasm for what is ~1 KB of JS (bench/size.mjs). Rust keeps the
//! flow: env and session, token renewal, timeout and abort, and telling a gateway failure from the
//! service's own answer. Any HTTP answer of the service is a success whatever its status (as
//! `wx.request`); the gateway's failures ([`is_gateway_code`]) and local ones (timeout, abort,
//! network) fail with `cloud.callContainer:fail …`.

use std::cell::RefCell;
use std::rc::Rc;

use cloud_protocol::{codes, default_gateway_endpoint, limits, DEFAULT_ENDPOINT_SUFFIX};
use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::call_style;
use crate::cloud::{CloudCore, Service};
use crate::error::{CloudError, Failure};
use crate::functions::{type_error, Arg, CallOptions};
use crate::js::{self, AbortController, AbortSignal};
use crate::transport::auth::Session;
use crate::transport::http::AbortGuard;

/// The API name in `errMsg`.
pub const API: &str = "cloud.callContainer";

/// Whether an error body's `code` is the gateway's own (the call never reached the service) rather
/// than something the service answered: the cloudrun codes (`SERVICE_*`, `BAD_GATEWAY`,
/// docs.cloudbase.net/http-api/cloudrun) and the gateway's token, env and size checks.
pub fn is_gateway_code(code: &str) -> bool {
    code.starts_with("SERVICE_")
        || [
            codes::BAD_GATEWAY,
            codes::CHECK_LOGIN_FAILED,
            codes::ACCESS_TOKEN_EXPIRED,
            codes::INVALID_ENV,
            codes::EXCEED_REQUEST_SIZE_LIMIT,
            codes::INVALID_REQUEST_SOURCE,
            codes::PERMISSION_DENIED,
        ]
        .contains(&code)
}

/// The gateway of the session's endpoint: the configured `endpoint` (a cloud-emulator serves every
/// protocol on one port) or, for the default CloudBase endpoint, `https://{env}.api.tcloudbasegateway.com`.
fn gateway_base(session: &Session) -> String {
    if session.base_url.ends_with(DEFAULT_ENDPOINT_SUFFIX) {
        default_gateway_endpoint(&session.env)
    } else {
        session.base_url.clone()
    }
}

// `prepareContainerCall(options, textLimit, binaryLimit, sdkVersion)` checks wx's parameters and returns
// `[errCode, detail]` for the first bad one, else `[service + path + query, method, headers, body,
// timeout, responseType is arraybuffer, dataType is json]`:
// - `path` a string starting with '/'; `method` GET (default), POST, PUT, DELETE, HEAD, OPTIONS or PATCH
//   (TRACE and CONNECT: fetch cannot send them); `header` a plain object without Referer (wx) or
//   Authorization (the gateway's), the service from `X-WX-SERVICE` (any case) or the web SDK's
//   `service`, `content-type: application/json` unless given; `timeout` > 0 ms; `dataType` 'json'
//   (default; anything else gives the text); `responseType` 'text' or 'arraybuffer'.
// - `data` as wx.request sends it: for GET and HEAD the query (an object as `k=v&…`, a string as it
//   is); otherwise bytes (ArrayBuffer or a view) as they are, a string as it is, an object as JSON, or
//   as `k=v&…` under a form content-type; text at most `textLimit` UTF-8 bytes, bytes `binaryLimit`.
// `fetchContainer` sends it with the Bearer token and the controller's signal (aborted too by the
// caller's `signal`), and resolves to `[{ data, statusCode, header, errMsg }, error body]`,
// the error body being the parsed JSON of a >= 400 JSON answer (the gateway's errors look like that).
#[wasm_bindgen(
    inline_js = r#"const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'];
const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const bad = (detail) => [-401002, detail];
const type = (field, expected, v) => [-401003, 'parameter.' + field + ' should be ' + expected + ' instead of ' + kind(v) + ';'];
// Made once: a regex literal inside a function is a new object on every call.
const HEADER_NAME = /^[-!#$%&'*+.^_`|~0-9a-z]+$/;
const HEADER_VALUE = /[\r\n\0]/;
const SERVICE_NAME = /^[-\w]{1,64}$/;
const FORM = /^application\/x-www-form-urlencoded/i;
const JSON_TYPE = /json/i;
const form = (data) => Object.keys(data).map((k) => {
  const v = data[k];
  return encodeURIComponent(k) + '=' + encodeURIComponent(v !== null && typeof v === 'object' ? JSON.stringify(v) : v);
}).join('&');
export function prepareContainerCall(o, textLimit, binaryLimit, sdkVersion) {
  const path = o.path;
  if (typeof path !== 'string') return type('path', 'string', path);
  if (path[0] !== '/' || path.includes('#')) return bad("parameter.path should start with '/' and have no '#';");
  let method = o.method == null ? 'GET' : o.method;
  if (typeof method !== 'string') return type('method', 'string', method);
  method = method.toUpperCase();
  if (!METHODS.includes(method)) return bad('parameter.method should be one of ' + METHODS + ';');
  const header = o.header == null ? {} : o.header;
  if (typeof header !== 'object' || Array.isArray(header)) return type('header', 'object', header);
  let service = typeof o.service === 'string' ? o.service : '';
  let contentType = '';
  const headers = { 'x-sdk-version': sdkVersion };
  for (const name of Object.keys(header)) {
    if (header[name] == null) continue;
    const value = String(header[name]);
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(lower) || HEADER_VALUE.test(value)) return bad("parameter.header '" + name + "' is not a valid header;");
    // Referer: refused by wx. Authorization: the CloudBase gateway's own.
    if (lower === 'referer' || lower === 'authorization') return bad('parameter.header cannot set ' + name + ';');
    if (lower === 'x-wx-service') {
      service = service || value;
      continue;
    }
    if (lower === 'content-type') contentType = value;
    headers[name] = value;
  }
  if (!SERVICE_NAME.test(service)) return bad("parameter.header['X-WX-SERVICE'] should name the service (letters, digits, '-', '_');");
  if (!contentType) headers['content-type'] = contentType = 'application/json';
  const timeout = o.timeout;
  if (timeout != null && typeof timeout !== 'number') return type('timeout', 'number', timeout);
  if (timeout != null && !(timeout >= 1)) return bad('parameter.timeout should be a positive number of milliseconds;');
  const responseType = o.responseType == null ? 'text' : o.responseType;
  if (responseType !== 'text' && responseType !== 'arraybuffer') return bad("parameter.responseType should be 'text' or 'arraybuffer';");
  let data = o.data;
  let query = '';
  const binary = data instanceof ArrayBuffer || ArrayBuffer.isView(data);
  if (data == null) data = undefined;
  else if (method === 'GET' || method === 'HEAD') {
    if (typeof data === 'string') query = data;
    else if (typeof data === 'object' && !binary && !Array.isArray(data)) query = form(data);
    else return type('data', 'an object or a string for GET and HEAD', data);
    data = undefined;
  } else if (binary) {
    if (data.byteLength > binaryLimit) return bad('callContainer binary data size must be less than ' + binaryLimit / 1024 + ' KB');
  } else {
    if (typeof data !== 'string') {
      data = typeof data === 'object' && FORM.test(contentType) ? form(data) : JSON.stringify(data);
      if (typeof data !== 'string') return type('data', 'an object, a string or an ArrayBuffer', o.data);
    }
    // UTF-8 takes 1-3 bytes per UTF-16 unit: encode only when the length alone cannot tell.
    if (data.length > textLimit || (data.length * 3 > textLimit && new TextEncoder().encode(data).length > textLimit)) {
      return bad('callContainer text data size must be less than ' + textLimit / 1024 + ' KB');
    }
  }
  const url = service + path + (query ? (path.includes('?') ? '&' : '?') + query : '');
  return [url, method, headers, data, timeout, responseType === 'arraybuffer', o.dataType == null || o.dataType === 'json'];
}
export function fetchContainer(base, call, token, controller, signal, handler, id) {
  const headers = call[2];
  headers.authorization = 'Bearer ' + token;
  const arraybuffer = call[5];
  const sent = fetch(base + '/v1/cloudrun/' + call[0], { method: call[1], headers, body: call[3], signal: controller.signal }).then((r) => {
    const header = {};
    r.headers.forEach((value, name) => { header[name] = value; });
    return (arraybuffer ? r.arrayBuffer() : r.text()).then((data) => {
      let error;
      if (r.status >= 400 && JSON_TYPE.test(r.headers.get('content-type') || '')) {
        try { error = JSON.parse(arraybuffer ? new TextDecoder().decode(data) : data); } catch (_) {}
      }
      if (call[6] && !arraybuffer && data !== '') {
        try { data = JSON.parse(data); } catch (_) {}
      }
      return [{ data, statusCode: r.status, header, errMsg: 'cloud.callContainer:ok' }, error];
    });
  });
  let done;
  if (signal) {
    const abort = () => controller.abort();
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort);
    done = () => signal.removeEventListener('abort', abort);
  }
  return sent.then((outcome) => {
    if (done) done();
    return handler(id, outcome, false);
  }, (error) => {
    if (done) done();
    return handler(id, error, true);
  });
}"#
)]
extern "C" {
    #[wasm_bindgen(catch, js_name = prepareContainerCall)]
    fn prepare_container_call(
        options: &JsValue,
        text_limit: u32,
        binary_limit: u32,
        sdk_version: &str,
    ) -> Result<Array, JsValue>;

    #[wasm_bindgen(catch, js_name = fetchContainer)]
    fn fetch_container(
        base: &str,
        call: &Array,
        token: &str,
        controller: &AbortController,
        signal: &JsValue,
        handler: &js_sys::Function,
        id: u32,
    ) -> Result<Promise, JsValue>;
}

/// `cloud.callContainer(options)`: throws synchronously when not initialised or when `options` is not
/// an object; everything else is delivered through the callbacks or the returned Promise.
pub fn call_container(cloud: &CloudCore, options: JsValue) -> Result<JsValue, CloudError> {
    let fields = CallOptions::read(&options);
    let config_env = Arg::of(&fields.config_env);
    let per_call_env = match (&config_env, cloud.is_default()) {
        (Arg::Str(env), true) => Some(env.as_str()),
        _ => None,
    };
    let session = cloud.session(Service::Container, per_call_env)?;
    if !options.is_object() || Array::is_array(&options) {
        return Err(type_error("options", "object", &Arg::of(&options)).into_error(API));
    }
    let prepared = match config_env {
        Arg::Undefined | Arg::Null | Arg::Str(_) => prepare(&options),
        other => Err(type_error("config.env", "string", &other)),
    };
    let promise = match prepared.and_then(|call| Ok((session?, call))) {
        Ok((session, call)) => {
            let signal = fields.signal.dyn_into::<AbortSignal>().ok();
            with_token(session, Rc::new(Request { call, signal }), false)
        }
        Err(failure) => Promise::reject(&failure.into_error(API).to_js()),
    };
    Ok(call_style::dispatch_promise(API, fields.callbacks, promise))
}

/// The checked call, or the first parameter error (see `prepareContainerCall`).
fn prepare(options: &JsValue) -> Result<Array, Failure> {
    let call = prepare_container_call(
        options,
        limits::CONTAINER_MAX_TEXT_REQUEST_BYTES as u32,
        limits::CONTAINER_MAX_REQUEST_BYTES as u32,
        crate::transport::SDK_VERSION_HEADER.1,
    )
    .map_err(|error| Failure::type_error(crate::transport::http::describe_js_error(&error)))?;
    match call.get(0).as_f64() {
        Some(err_code) => Err(Failure::Local {
            err_code: err_code as i32,
            detail: call.get(1).as_string().unwrap_or_default(),
        }),
        None => Ok(call),
    }
}

/// A checked call and the caller's `signal`, kept for a send again with a renewed token.
struct Request {
    call: Array,
    signal: Option<AbortSignal>,
}

/// A call whose fetch is in flight (see [`start`]).
struct InFlight {
    session: Rc<Session>,
    request: Rc<Request>,
    token: String,
    guard: AbortGuard,
    retried: bool,
}

thread_local! {
    static IN_FLIGHT: RefCell<(Vec<Option<InFlight>>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    static OUTCOME_HANDLER: Closure<dyn FnMut(u32, JsValue, bool) -> Result<JsValue, JsValue>> =
        Closure::new(on_outcome);
}

/// Sends the call with the session's token (after signing in when there is none yet). With a token at
/// hand no Rust future is involved: the fetch promise goes straight to one shared handler that looks
/// the call up by id, as `transport::action_promise` does (futures and their promise adapters were a
/// measurable share of a loopback call, bench/container.mjs). The caller's `signal` aborts the fetch;
/// a call aborted during sign-in stops as soon as its fetch would start.
fn with_token(session: Rc<Session>, request: Rc<Request>, retried: bool) -> Promise {
    match session.current_token() {
        Some(token) => start(session, request, token, retried),
        None => future_to_promise(async move {
            let token = session
                .access_token()
                .await
                .map_err(|failure| failure.into_error(API).to_js())?;
            Ok(start(session, request, token, retried).into())
        }),
    }
}

fn start(session: Rc<Session>, request: Rc<Request>, token: String, retried: bool) -> Promise {
    let timeout_ms = request
        .call
        .get(4)
        .as_f64()
        .map_or(session.timeout_ms, |ms| ms.min(f64::from(u32::MAX)) as u32);
    let guard = AbortGuard::new(timeout_ms);
    let id = IN_FLIGHT.with(|in_flight| {
        let (slots, free) = &mut *in_flight.borrow_mut();
        free.pop().unwrap_or_else(|| {
            slots.push(None);
            (slots.len() - 1) as u32
        })
    });
    let signal = request
        .signal
        .as_ref()
        .map_or(JsValue::UNDEFINED, |signal| signal.into());
    // The handler runs from a promise reaction, so never before the entry is stored below.
    let started = OUTCOME_HANDLER.with(|handler| {
        fetch_container(
            &gateway_base(&session),
            &request.call,
            &token,
            guard.controller(),
            &signal,
            handler.as_ref().unchecked_ref(),
            id,
        )
    });
    let entry = InFlight {
        session,
        request,
        token,
        guard,
        retried,
    };
    IN_FLIGHT.with(|in_flight| {
        let (slots, free) = &mut *in_flight.borrow_mut();
        match started {
            Ok(promise) => {
                slots[id as usize] = Some(entry);
                promise
            }
            Err(error) => {
                // fetch threw synchronously: the handler will never run.
                free.push(id);
                Promise::reject(&entry.failure(&error).into_error(API).to_js())
            }
        }
    })
}

impl InFlight {
    /// The failure of a fetch that rejected: aborted by the caller, timed out, or a network error.
    fn failure(&self, error: &JsValue) -> Failure {
        match &self.request.signal {
            Some(signal) if signal.aborted() => Failure::Aborted,
            _ => self.guard.failure(error),
        }
    }
}

/// The shared outcome handler of [`start`]: the result, a gateway failure, or a send again with a
/// renewed token (once) when the gateway refused the token.
fn on_outcome(id: u32, value: JsValue, failed: bool) -> Result<JsValue, JsValue> {
    let mut entry = IN_FLIGHT.with(|in_flight| {
        let (slots, free) = &mut *in_flight.borrow_mut();
        free.push(id);
        slots[id as usize].take().expect("a call in flight")
    });
    if failed {
        return Err(entry.failure(&value).into_error(API).to_js());
    }
    entry.guard.finish();
    let outcome: Array = value.unchecked_into();
    let error = outcome.get(1);
    let Some(code) = js::get_string(&error, "code").filter(|code| is_gateway_code(code)) else {
        return Ok(outcome.get(0));
    };
    let expired = code == codes::ACCESS_TOKEN_EXPIRED;
    if !entry.retried && (expired || code == codes::CHECK_LOGIN_FAILED) {
        entry.session.invalidate(&entry.token, expired);
        return Ok(with_token(entry.session, entry.request, true).into());
    }
    Err(Failure::Server {
        code,
        message: js::get_string(&error, "message").unwrap_or_default(),
        request_id: js::get_string(&error, "requestId"),
    }
    .into_error(API)
    .to_js())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_codes_are_told_apart_from_service_answers() {
        for code in [
            "SERVICE_NOT_FOUND",
            "SERVICE_TIMEOUT",
            "BAD_GATEWAY",
            "ACCESS_TOKEN_EXPIRED",
        ] {
            assert!(is_gateway_code(code), "{code}");
        }
        for code in ["NOT_FOUND", "INVALID_PARAM", "", "service_timeout"] {
            assert!(!is_gateway_code(code), "{code}");
        }
    }

    #[test]
    fn gateway_failures_render_as_wx_errors() {
        let cases = [
            (
                "SERVICE_NOT_FOUND",
                -501000,
                "cloud.callContainer:fail -501000 service \"x\" not found",
            ),
            (
                "SERVICE_TIMEOUT",
                -501002,
                "cloud.callContainer:fail -501002 resource server timeout. service \"x\" not found",
            ),
            (
                "BAD_GATEWAY",
                -501001,
                "cloud.callContainer:fail -501001 resource system error. service \"x\" not found",
            ),
        ];
        for (code, err_code, err_msg) in cases {
            let error = Failure::Server {
                code: code.into(),
                message: "service \"x\" not found".into(),
                request_id: Some("r".into()),
            }
            .into_error(API);
            assert_eq!(
                (error.err_code, error.err_msg.as_str()),
                (err_code, err_msg)
            );
            assert_eq!(error.request_id.as_deref(), Some("r"));
        }
    }
}
