//! Everything between an API and the network: the `/web` action envelope, fetch with timeouts and
//! aborts, the auth session and where its credentials are kept.

pub mod abort;
pub mod auth;
pub mod deadline;
pub mod envelope;
pub mod http;
pub mod retry;
pub mod storage;
#[cfg(feature = "storage")]
pub mod transfer;

use std::cell::RefCell;
use std::rc::Rc;

use cloud_protocol::codes;
use js_sys::Promise;
use wasm_bindgen::prelude::*;

use self::auth::Session;
use self::envelope::{envelope, Param};
use self::http::{AbortGuard, OutcomeHandler};
use crate::error::Failure;
use crate::js;

/// `X-SDK-Version` on every request.
pub const SDK_VERSION_HEADER: (&str, &str) = (
    "X-SDK-Version",
    concat!("taro-cloud-wasm/", env!("CARGO_PKG_VERSION")),
);

/// One `/web` request ready to send: the envelope (with a fresh seqId) and its headers.
struct ActionRequest {
    body: JsValue,
    header_lines: String,
}

impl ActionRequest {
    fn new(session: &Session, action: &str, params: &[Param<'_>], token: &str) -> Self {
        let seq_id = js::random_hex(13);
        let body = envelope(action, &session.env, params, token, &seq_id);
        let mut headers = vec![
            ("content-type", "application/json;charset=UTF-8"),
            ("x-seqid", seq_id.as_str()),
            SDK_VERSION_HEADER,
        ];
        if let Some(region) = &session.region {
            headers.push(("X-TCB-Region", region.as_str()));
        }
        ActionRequest {
            body: JsValue::from_str(&body),
            header_lines: http::header_lines(&headers),
        }
    }
}

/// What a `/web` answer means.
enum Verdict {
    /// The success body (`{requestId, data, …}`).
    Success(JsValue),
    /// The server rejected the token: renew it and send again (once).
    RetryWithNewToken,
    Failed(Failure),
}

/// Reads one `/web` answer. Always-200 error bodies `{code, message, requestId}` become
/// `Failure::Server`; a rejected token (`ACCESS_TOKEN_EXPIRED`, `CHECK_LOGIN_FAILED`) is invalidated
/// and, unless this already was the retry, asks for one.
fn judge(session: &Session, token: &str, retried: bool, status: u16, json: JsValue) -> Verdict {
    if !json.is_object() {
        // An error status (a proxy's 502 page, …) says more than the body; a 200 that is not JSON was
        // cut short or mangled on the way.
        return Verdict::Failed(if status != 200 {
            Failure::Http(status)
        } else {
            Failure::Network(format!("invalid response (HTTP {status})"))
        });
    }
    if let Some(code) = js::get_string(&json, "code").filter(|code| !code.is_empty()) {
        let expired = code == codes::ACCESS_TOKEN_EXPIRED;
        if !retried && (expired || code == codes::CHECK_LOGIN_FAILED) {
            session.invalidate(token, expired);
            return Verdict::RetryWithNewToken;
        }
        return Verdict::Failed(Failure::Server {
            code,
            message: js::get_string(&json, "message").unwrap_or_default(),
            request_id: js::get_string(&json, "requestId"),
        });
    }
    if status != 200 {
        return Verdict::Failed(Failure::Http(status));
    }
    Verdict::Success(json)
}

/// Sends one `/web` action and returns the parsed success body (`{requestId, data, …}`).
///
/// Always-200 error bodies `{code, message, requestId}` become `Failure::Server`. A rejected token
/// (`ACCESS_TOKEN_EXPIRED`, `CHECK_LOGIN_FAILED`) is renewed and the action retried once. Nothing else
/// is retried: use [`call_idempotent_action`] for reads.
pub async fn call_action(
    session: &Rc<Session>,
    action: &str,
    params: &[Param<'_>],
) -> Result<JsValue, Failure> {
    send_action(session, action, params, false, 0).await
}

/// [`call_action`] for an action that changes nothing (a query, a count, temp URLs): transient failures
/// are retried (see [`retry`]) within the call's timeout, which bounds all attempts together.
#[cfg(any(feature = "database", feature = "storage"))]
pub async fn call_idempotent_action(
    session: &Rc<Session>,
    action: &str,
    params: &[Param<'_>],
) -> Result<JsValue, Failure> {
    send_action(session, action, params, false, retry::MAX_RETRIES).await
}

async fn send_action(
    session: &Rc<Session>,
    action: &str,
    params: &[Param<'_>],
    mut retried: bool,
    retries: u32,
) -> Result<JsValue, Failure> {
    loop {
        let token = session.access_token().await?;
        let request = ActionRequest::new(session, action, params, &token);
        let mut guard = AbortGuard::new(session.timeout_ms);
        let promise = http::start(
            session.web_url(),
            "POST",
            &request.header_lines,
            &request.body,
            &guard,
            None,
            retries,
        )
        .map_err(|error| guard.failure(&error))?;
        let outcome = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(|error| guard.failure(&error))?;
        guard.finish();
        let outcome: js_sys::Array = outcome.unchecked_into();
        let status = outcome.get(0).as_f64().unwrap_or(0.0) as u16;
        match judge(session, &token, retried, status, outcome.get(1)) {
            Verdict::Success(body) => return Ok(body),
            Verdict::RetryWithNewToken => retried = true,
            Verdict::Failed(failure) => return Err(failure),
        }
    }
}

/// A string action parameter owned by an action in flight (kept for the retry with a renewed token).
pub struct OwnedParam(pub &'static str, pub String);

impl OwnedParam {
    fn borrowed(params: &[OwnedParam]) -> Vec<Param<'_>> {
        params
            .iter()
            .map(|OwnedParam(key, value)| Param::Str(key, value))
            .collect()
    }
}

/// Turns the success body of an action into the API's result.
pub type Finish = fn(JsValue) -> Result<JsValue, Failure>;

/// An action whose promise chain is in flight (see [`action_promise`]).
struct PendingAction {
    session: Rc<Session>,
    action: &'static str,
    params: Vec<OwnedParam>,
    token: String,
    guard: AbortGuard,
    api: &'static str,
    finish: Finish,
}

#[derive(Default)]
struct PendingActions {
    slots: Vec<Option<PendingAction>>,
    free: Vec<u32>,
}

thread_local! {
    static PENDING: RefCell<PendingActions> = RefCell::default();
    static OUTCOME_HANDLER: Closure<dyn FnMut(u32, i32, JsValue) -> Result<JsValue, JsValue>> =
        Closure::new(on_outcome);
}

/// Sends one `/web` action and returns the Promise of `finish(body)`, rejected with the error of
/// `api`. With a valid token at hand (the usual case) no Rust future is involved: the fetch promise
/// is chained straight to one handler shared by all requests, which looks the request up by id.
/// Promise adapters and their closures were a large share of a loopback call (bench/overhead.mjs).
/// The fetch keeps its timeout; the request cannot be dropped mid-flight (it is owned by the table
/// until the fetch settles), so callers that need cancellation use [`call_action`] in a future.
pub fn action_promise(
    session: Rc<Session>,
    action: &'static str,
    params: Vec<OwnedParam>,
    api: &'static str,
    finish: Finish,
) -> Promise {
    match session.current_token() {
        Some(token) => start_pending(session, action, params, token, api, finish),
        None => slow_promise(session, action, params, api, finish, false),
    }
}

/// The same action through a future: sign-in or refresh first, or a retry after a rejected token.
fn slow_promise(
    session: Rc<Session>,
    action: &'static str,
    params: Vec<OwnedParam>,
    api: &'static str,
    finish: Finish,
    retried: bool,
) -> Promise {
    crate::call_style::promise(async move {
        let params_ref = OwnedParam::borrowed(&params);
        send_action(&session, action, &params_ref, retried, 0)
            .await
            .and_then(finish)
            .map_err(|failure| failure.into_error(api))
    })
}

fn start_pending(
    session: Rc<Session>,
    action: &'static str,
    params: Vec<OwnedParam>,
    token: String,
    api: &'static str,
    finish: Finish,
) -> Promise {
    let request = ActionRequest::new(&session, action, &OwnedParam::borrowed(&params), &token);
    let guard = AbortGuard::new(session.timeout_ms);
    let id = PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        pending.free.pop().unwrap_or_else(|| {
            pending.slots.push(None);
            (pending.slots.len() - 1) as u32
        })
    });
    // The handler runs from a promise reaction, so never before the entry is stored below.
    let started = OUTCOME_HANDLER.with(|handler| {
        http::start(
            session.web_url(),
            "POST",
            &request.header_lines,
            &request.body,
            &guard,
            Some(OutcomeHandler {
                function: handler.as_ref().unchecked_ref(),
                id,
            }),
            0,
        )
    });
    let entry = PendingAction {
        session,
        action,
        params,
        token,
        guard,
        api,
        finish,
    };
    PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        match started {
            Ok(promise) => {
                pending.slots[id as usize] = Some(entry);
                promise
            }
            Err(error) => {
                // fetch threw synchronously: the handler will never run.
                pending.free.push(id);
                let failure = entry.guard.failure(&error);
                Promise::reject(&failure.into_error(entry.api).to_js())
            }
        }
    })
}

fn take_pending(id: u32) -> PendingAction {
    PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        let entry = pending.slots[id as usize].take().expect("pending action");
        pending.free.push(id);
        entry
    })
}

/// The shared outcome handler of [`action_promise`] requests (see `http::OutcomeHandler`).
fn on_outcome(id: u32, status: i32, value: JsValue) -> Result<JsValue, JsValue> {
    let mut entry = take_pending(id);
    if status < 0 {
        let failure = entry.guard.failure(&value);
        return Err(failure.into_error(entry.api).to_js());
    }
    entry.guard.finish();
    let PendingAction {
        session,
        action,
        params,
        token,
        api,
        finish,
        ..
    } = entry;
    match judge(&session, &token, false, status as u16, value) {
        Verdict::Success(body) => finish(body).map_err(|failure| failure.into_error(api).to_js()),
        Verdict::RetryWithNewToken => {
            Ok(slow_promise(session, action, params, api, finish, true).into())
        }
        Verdict::Failed(failure) => Err(failure.into_error(api).to_js()),
    }
}
