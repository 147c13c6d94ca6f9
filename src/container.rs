//! `callContainer` (api-surface.md §2.6, protocol.md §9): `{METHOD} {gateway}/v1/cloudrun/{service}{path}`
//! with the session's Bearer token, as the CloudBase HTTP API gateway (and @cloudbase/js-sdk 3.x
//! `callContainer`) expects.
//!
//! wx's parameters are checked before any I/O, in the JS helper below: they are JS values that only
//! pass through to `fetch` (header names and values, the body as a string or bytes, the query), and
//! checking them in Rust cost ~7 KB of wasm for what is ~1 KB of JS (bench/size.mjs). Rust keeps the
//! flow: env and session, token renewal, and every outcome but a plain answer: timeout, abort and
//! network failures, and telling a gateway failure from the service's own answer. Any HTTP answer of
//! the service is a success whatever its status (as `wx.request`); the gateway's failures
//! ([`is_gateway_code`]) and local ones (timeout, abort, network) fail with `cloud.callContainer:fail …`.
//!
//! Each session has a [`Lane`]: its route, timeout and the token Rust last gave it. Once Rust has sent a
//! call through it, a Promise-style call that needs nothing from Rust (no callbacks, no `config`, a token
//! not yet due for refresh, valid parameters) runs on the lane alone, without entering the wasm: the
//! crossings, allocations and cold code of the full path were most of the SDK's cost over a raw
//! `fetch` (bench/container.mjs). Whatever is not a plain answer still comes back to Rust ([`settle`]).

use std::cell::RefCell;
use std::rc::Rc;

use cloud_protocol::{codes, default_gateway_endpoint, limits, DEFAULT_ENDPOINT_SUFFIX};
use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::call_style;
use crate::cloud::{CloudCore, Service};
use crate::error::{CloudError, Failure};
use crate::functions::{type_error, Arg, CallOptions};
use crate::js::{self, AbortSignal};
use crate::transport::auth::Session;
use crate::transport::http::describe_js_error;

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
// A `Lane` (made by `makeLane`) is one session's way to the gateway: `{gateway}/v1/cloudrun/` (`route`),
// the session's timeout, and the `Bearer …` authorization Rust last gave it, used `until` the token's
// refresh time. `send(call, signal, retried, authorization?, until?)` (Rust gives the lane a token this
// way) runs one checked call: its own timer, an AbortController
// (reused while never aborted, up to 16 calls as the other APIs do: a fresh signal per request is a
// measurable share of a call), the caller's `signal`, the body read as text or bytes. A plain answer
// resolves to `{ data, statusCode, header, errMsg }` right here; anything else is `settle(kind, value,
// error body, [call, signal, retried, authorization])`'s to judge, in Rust: kind 0 an answer with an
// error body (the parsed JSON of a >= 400 JSON answer: the gateway's errors look like that), 1 timed
// out, 2 aborted by the caller, 3 a network error. `call(options)` is callContainer's fast path: the
// Promise of a Promise-style call that needs nothing from Rust (see the module doc), else undefined.
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
class Lane {
  constructor(route, timeout, settle, textLimit, binaryLimit, sdkVersion) {
    Object.assign(this, { route, timeout, settle, textLimit, binaryLimit, sdkVersion, authorization: '', until: 0, spare: null });
  }
  call(o) {
    let call, signal;
    try {
      if (!(Date.now() < this.until) || o === null || typeof o !== 'object' || Array.isArray(o) ||
        o.success || o.fail || o.complete || o.config != null) return;
      call = prepareContainerCall(o, this.textLimit, this.binaryLimit, this.sdkVersion);
      if (typeof call[0] === 'number') return;
      signal = o.signal instanceof AbortSignal ? o.signal : undefined;
    } catch (_) {
      return; // a throwing getter: Rust reads it as undefined
    }
    return this.send(call, signal, false);
  }
  send(call, signal, retried, authorization, until) {
    if (authorization) Object.assign(this, { authorization, until });
    else authorization = this.authorization;
    const [controller, uses] = this.spare && this.spare[1] < 16 ? this.spare : [new AbortController(), 0];
    this.spare = null;
    call[2].authorization = authorization;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, Math.min(call[4] || this.timeout, 2147483647));
    const abort = () => controller.abort();
    if (signal) {
      if (signal.aborted) abort();
      signal.addEventListener('abort', abort);
    }
    const end = () => {
      clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', abort);
    };
    const settle = (kind, value, error) => this.settle(kind, value, error, [call, signal, retried, authorization]);
    const failed = (error) => {
      end();
      return settle(signal && signal.aborted ? 2 : timedOut ? 1 : 3, error);
    };
    let sent;
    try {
      sent = fetch(this.route + call[0], { method: call[1], headers: call[2], body: call[3], signal: controller.signal });
    } catch (error) {
      sent = Promise.reject(error); // never a synchronous throw into Rust
    }
    return sent.then((r) => {
      const header = {};
      r.headers.forEach((value, name) => { header[name] = value; });
      return (call[5] ? r.arrayBuffer() : r.text()).then((data) => {
        end();
        if (!controller.signal.aborted) this.spare = [controller, uses + 1];
        let error;
        if (r.status >= 400 && JSON_TYPE.test(r.headers.get('content-type') || '')) {
          try { error = JSON.parse(call[5] ? new TextDecoder().decode(data) : data); } catch (_) {}
        }
        if (call[6] && !call[5] && data !== '') {
          try { data = JSON.parse(data); } catch (_) {}
        }
        const result = { data, statusCode: r.status, header, errMsg: 'cloud.callContainer:ok' };
        return error === undefined ? result : settle(0, result, error);
      }, failed);
    }, failed);
  }
}
export function makeLane(route, timeout, settle, textLimit, binaryLimit, sdkVersion) {
  return new Lane(route, timeout, settle, textLimit, binaryLimit, sdkVersion);
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

    /// A session's lane to the gateway (see `Lane` above).
    #[derive(Clone)]
    type Lane;

    #[wasm_bindgen(js_name = makeLane)]
    fn make_lane(
        route: &str,
        timeout_ms: u32,
        settle: &js_sys::Function,
        text_limit: u32,
        binary_limit: u32,
        sdk_version: &str,
    ) -> Lane;

    #[wasm_bindgen(method)]
    fn send(
        this: &Lane,
        call: &Array,
        signal: &JsValue,
        retried: bool,
        authorization: &str,
        until: f64,
    ) -> Promise;
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
            let signal = fields
                .signal
                .dyn_into::<AbortSignal>()
                .map_or(JsValue::UNDEFINED, Into::into);
            with_token(session, call, signal, false)
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
    .map_err(|error| Failure::type_error(describe_js_error(&error)))?;
    match call.get(0).as_f64() {
        Some(err_code) => Err(Failure::Local {
            err_code: err_code as i32,
            detail: call.get(1).as_string().unwrap_or_default(),
        }),
        None => Ok(call),
    }
}

/// `cloud`'s lane for its own env (see `Lane`), for the JS face's fast path; undefined before `init` or
/// without an env (every call then needs `config.env`, which the lane leaves to Rust).
pub fn container_lane(cloud: &CloudCore) -> JsValue {
    match cloud.session(Service::Container, None) {
        Ok(Ok(session)) => lane(&session).into(),
        _ => JsValue::UNDEFINED,
    }
}

/// `settle(kind, value, error body, [call, signal, retried, authorization])`, see `Lane`.
type Settle = dyn FnMut(u32, JsValue, JsValue, Array) -> Result<JsValue, JsValue>;

/// A session, its lane, and the closure that settles the lane's calls.
type SessionLane = (Rc<Session>, Lane, Closure<Settle>);

thread_local! {
    // Each session's lane and the closure that settles its calls (sessions live as long as the
    // instance: see `Session::get`).
    static LANES: RefCell<Vec<SessionLane>> = const { RefCell::new(Vec::new()) };
}

/// The session's lane, made on first use: `{gateway}/v1/cloudrun/` where the gateway is the configured
/// `endpoint` (a cloud-emulator serves every protocol on one port) or, for the default CloudBase
/// endpoint, `https://{env}.api.tcloudbasegateway.com`.
fn lane(session: &Rc<Session>) -> Lane {
    LANES.with(|lanes| {
        if let Some((_, lane, _)) = lanes.borrow().iter().find(|(s, ..)| Rc::ptr_eq(s, session)) {
            return lane.clone();
        }
        let gateway = if session.base_url.ends_with(DEFAULT_ENDPOINT_SUFFIX) {
            default_gateway_endpoint(&session.env)
        } else {
            session.base_url.clone()
        };
        let owner = session.clone();
        let settle = Closure::<Settle>::new(move |kind, value, error, context| {
            settle(&owner, kind, value, error, context)
        });
        let lane = make_lane(
            &(gateway + "/v1/cloudrun/"),
            session.timeout_ms,
            settle.as_ref().unchecked_ref(),
            limits::CONTAINER_MAX_TEXT_REQUEST_BYTES as u32,
            limits::CONTAINER_MAX_REQUEST_BYTES as u32,
            crate::transport::SDK_VERSION_HEADER.1,
        );
        lanes
            .borrow_mut()
            .push((session.clone(), lane.clone(), settle));
        lane
    })
}

/// Sends the checked call on the session's lane with the session's token (after signing in when there
/// is none yet), and gives the lane that token for the calls that follow. The caller's `signal` aborts
/// the fetch; a call aborted during sign-in stops as soon as its fetch would start.
fn with_token(session: Rc<Session>, call: Array, signal: JsValue, retried: bool) -> Promise {
    let Some((token, until)) = session.current_token_until() else {
        return call_style::promise(async move {
            let token = session
                .access_token()
                .await
                .map_err(|failure| failure.into_error(API))?;
            // A token already due for refresh (a lifetime shorter than the margin) serves this call only.
            let (token, until) = session.current_token_until().unwrap_or((token, 0.0));
            Ok(send(&session, &token, until, &call, &signal, retried).into())
        });
    };
    send(&session, &token, until, &call, &signal, retried)
}

fn send(
    session: &Rc<Session>,
    token: &str,
    until: f64,
    call: &Array,
    signal: &JsValue,
    retried: bool,
) -> Promise {
    // Not `[..].concat()`: that adds a copy of std's join to the wasm (bench/size.mjs).
    let mut authorization = String::from("Bearer ");
    authorization.push_str(token);
    lane(session).send(call, signal, retried, &authorization, until)
}

/// Judges what a lane could not: an answer with an error body (the service's own answer, a gateway
/// failure, or a refused token: renewed and the call sent again, once), a timeout, an abort by the
/// caller, or a network failure.
fn settle(
    session: &Rc<Session>,
    kind: u32,
    value: JsValue,
    error: JsValue,
    context: Array,
) -> Result<JsValue, JsValue> {
    let failure = match kind {
        0 => {
            let Some(code) = js::get_string(&error, "code").filter(|code| is_gateway_code(code))
            else {
                return Ok(value);
            };
            let expired = code == codes::ACCESS_TOKEN_EXPIRED;
            if !context.get(2).is_truthy() && (expired || code == codes::CHECK_LOGIN_FAILED) {
                let authorization = context.get(3).as_string().unwrap_or_default();
                let token = authorization.strip_prefix("Bearer ").unwrap_or_default();
                session.invalidate(token, expired);
                let call = context.get(0).unchecked_into();
                return Ok(with_token(session.clone(), call, context.get(1), true).into());
            }
            Failure::Server {
                code,
                message: js::get_string(&error, "message").unwrap_or_default(),
                request_id: js::get_string(&error, "requestId"),
            }
        }
        1 => Failure::Timeout,
        2 => Failure::Aborted,
        _ => Failure::Network(describe_js_error(&value)),
    };
    Err(failure.into_error(API).to_js())
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
