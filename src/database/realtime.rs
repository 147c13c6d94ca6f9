//! Realtime `watch()` over one WebSocket per session (protocol.md §5.6): `auth.wsWebSign`, LOGIN once
//! per socket, INIT_WATCH / REBUILD_WATCH / CLOSE_WATCH per watcher, PING and CHECK_LAST when idle, and
//! reconnect with jittered backoff that resumes every watcher from its last applied event. The pure
//! parts (frames, event ids, the window) are `super::watch`; the socket is `transport::websocket`.
//!
//! Everything runs on JS's single thread. User callbacks are called with no `RefCell` borrowed, so an
//! `onChange` may close its watcher or start another.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::convert;
use super::watch::{
    frame, is_sign_error, reconnect_delay_ms, Event, Fault, QueueType, Spec, Window, MAX_RECONNECTS,
};
use crate::error::Failure;
use crate::js;
use crate::transport::auth::Session;
use crate::transport::call_action;
use crate::transport::envelope::Param;
use crate::transport::websocket::{self, Socket};

/// Idle time after which the connection sends PING and every watcher CHECK_LAST; a second idle period
/// without any frame from the server means the socket is dead.
const IDLE_MS: u32 = 10_000;

const INIT_WATCH_FAIL: i32 = -402002;
const REBUILD_WATCH_FAIL: i32 = -402004;
const SERVER_ERROR: i32 = -402006;
const INVALID_SERVER_DATA: i32 = -402007;
const CONNECTION_CLOSED: i32 = -402009;
const UNEXPECTED: i32 = -402011;
const INIT_SOCKET_FAIL: i32 = -402012;

// Small JS helpers: a deep copy of parsed JSON, a partial update applied to a copy (dotted paths, as
// lodash `set` / `unset` in the official client), and the orderBy comparison of two raw documents in
// BSON type order ({$date} as dates).
#[wasm_bindgen(
    inline_js = "export function requestId() { return Date.now() + '_' + Math.random(); }
export function copyJson(v) { return v === undefined ? v : JSON.parse(JSON.stringify(v)); }
export function patchDoc(doc, updated, removed) {
  const out = JSON.parse(JSON.stringify(doc));
  const walk = (path, make) => {
    const keys = path.split('.');
    let at = out;
    for (let i = 0; i < keys.length - 1; i++) {
      if (at[keys[i]] === null || typeof at[keys[i]] !== 'object') { if (!make) return [undefined]; at[keys[i]] = {}; }
      at = at[keys[i]];
    }
    return [at, keys[keys.length - 1]];
  };
  for (const path of Object.keys(updated || {})) { const [at, key] = walk(path, true); at[key] = updated[path]; }
  for (const path of removed || []) {
    const [at, key] = walk(path, false);
    if (at && Array.isArray(at) && /^[0-9]+$/.test(key)) at[key] = null; else if (at) delete at[key];
  }
  return out;
}
export function compareDocs(a, b, orders) {
  const rank = (v) => v === null || v === undefined ? 0 : typeof v === 'number' ? 1 : typeof v === 'string' ? 2
    : typeof v === 'boolean' ? 5 : Array.isArray(v) ? 4 : v.$date !== undefined ? 6 : 3;
  const scalar = (v) => { const r = rank(v); return r === 6 ? Number(v.$date.$numberLong ?? v.$date) : r === 3 || r === 4 ? JSON.stringify(v) : v; };
  for (const [path, desc] of orders) {
    let x = a, y = b;
    for (const key of path.split('.')) { x = x == null ? undefined : x[key]; y = y == null ? undefined : y[key]; }
    let c = rank(x) - rank(y);
    if (!c) { const p = scalar(x), q = scalar(y); c = p < q ? -1 : p > q ? 1 : 0; }
    if (c) return desc ? -c : c;
  }
  return 0;
}"
)]
extern "C" {
    /// `"<ms>_<Math.random()>"`, the official client's id format (formatted by JS: Rust's float
    /// formatting would add ~20 KB to the wasm).
    #[wasm_bindgen(js_name = requestId)]
    fn request_id() -> String;
    #[wasm_bindgen(js_name = copyJson)]
    fn copy_json(value: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = patchDoc)]
    fn patch_doc(doc: &JsValue, updated: &JsValue, removed: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = compareDocs)]
    fn compare_docs(a: &JsValue, b: &JsValue, orders: &JsValue) -> i32;
}

thread_local! {
    static CONNECTIONS: RefCell<Vec<Rc<Connection>>> = const { RefCell::new(Vec::new()) };
    /// The `WebSocket` constructor given to `init` / `new Cloud` (for Node without a global one).
    static SOCKET_CONSTRUCTOR: RefCell<JsValue> = const { RefCell::new(JsValue::UNDEFINED) };
}

/// Remembers `options.WebSocket` when it is a constructor (`init` and `new cloud.Cloud` options).
pub fn remember_socket_constructor(options: &JsValue) {
    let constructor = js::get(options, "WebSocket");
    if constructor.is_function() {
        SOCKET_CONSTRUCTOR.with(|c| *c.borrow_mut() = constructor);
    }
}

fn failure(err_code: i32, detail: impl Into<String>) -> Failure {
    Failure::Local {
        err_code,
        detail: detail.into(),
    }
}

fn msg_data(message: &JsValue, key: &str) -> JsValue {
    js::get(&js::get(message, "msgData"), key)
}

// ------------------------------------------------------------------------------------------ Watcher

#[derive(Default)]
struct WatchState {
    closed: bool,
    /// Set by INIT_EVENT; REBUILD_WATCH resumes with it after a reconnect.
    query_id: Option<String>,
    window: Window<JsValue>,
    /// The requestId of the INIT_WATCH / REBUILD_WATCH awaiting its answer.
    pending: Option<String>,
    /// CHECK_EVENT reported this later event id; if it has not arrived by the next idle tick, rebuild.
    behind: Option<u64>,
}

/// What a watcher asks its connection to do after a message.
#[derive(Default)]
struct Effects {
    frames: Vec<String>,
    snapshots: Vec<JsValue>,
    error: Option<Failure>,
    relogin: bool,
}

/// One `watch()`: its spec, callbacks and view of the result.
pub struct Watcher {
    connection: Rc<Connection>,
    api: &'static str,
    watch_id: String,
    spec: Spec,
    /// `[[path, descending], …]` for `compareDocs`.
    orders: JsValue,
    on_change: Function,
    on_error: Function,
    state: RefCell<WatchState>,
}

impl Watcher {
    /// The frame that (re)starts this watcher on a logged-in socket.
    fn start_frame(&self, env: &str) -> Option<String> {
        let mut state = self.state.borrow_mut();
        if state.closed {
            return None;
        }
        let id = request_id();
        let text = match &state.query_id {
            Some(query_id) => frame::rebuild_watch(
                &self.watch_id,
                &id,
                env,
                &self.spec.collection,
                query_id,
                state.window.last_applied,
            ),
            None => frame::init_watch(
                &self.watch_id,
                &id,
                env,
                &self.spec.collection,
                &self.spec.query,
                self.spec.limit,
                &self.spec.orders,
            ),
        };
        state.pending = Some(id);
        state.behind = None;
        Some(text)
    }

    /// The frames of an idle tick: CHECK_LAST, or REBUILD_WATCH when an announced event never came.
    fn idle_frame(&self, env: &str) -> Option<String> {
        let state = self.state.borrow();
        if state.closed || state.pending.is_some() {
            return None;
        }
        let query_id = state.query_id.as_deref()?;
        let last = state.window.last_applied;
        if state.behind.is_some_and(|expected| expected > last) {
            drop(state);
            return self.start_frame(env);
        }
        Some(frame::check_last(
            &self.watch_id,
            &request_id(),
            query_id,
            last,
        ))
    }

    fn handle(&self, message: &JsValue, kind: &str, env: &str) -> Effects {
        let mut effects = Effects::default();
        if self.state.borrow().closed {
            return effects;
        }
        let answers_pending = {
            let state = self.state.borrow();
            state.pending.is_some() && state.pending == js::get_string(message, "requestId")
        };
        if answers_pending {
            self.state.borrow_mut().pending = None;
        }
        match kind {
            "INIT_EVENT" => {
                let current = msg_data(message, "currEvent").as_f64().unwrap_or(0.0) as u64;
                {
                    let mut state = self.state.borrow_mut();
                    state.query_id = msg_data(message, "queryID").as_string();
                    // A fresh start (also after a rebuild the server could not serve): the whole
                    // result again, as one `init` snapshot with id currEvent.
                    state.window = Window {
                        last_applied: current.saturating_sub(1),
                        docs: Vec::new(),
                    };
                }
                self.apply(message, Some(current), &mut effects, env);
                if effects.snapshots.is_empty() && effects.error.is_none() {
                    self.state.borrow_mut().window.last_applied = current;
                    effects
                        .snapshots
                        .push(snapshot(current, &Array::new(), &Array::new(), true));
                }
            }
            "NEXT_EVENT" => self.apply(message, None, &mut effects, env),
            "CHECK_EVENT" => {
                let current = msg_data(message, "currEvent").as_f64().unwrap_or(0.0) as u64;
                let mut state = self.state.borrow_mut();
                if current > state.window.last_applied {
                    state.behind = Some(current);
                }
            }
            "ERROR" => {
                let code = js::get_string(&js::get(message, "msgData"), "code").unwrap_or_default();
                let text =
                    js::get_string(&js::get(message, "msgData"), "message").unwrap_or_default();
                let rebuilding = answers_pending && self.state.borrow().query_id.is_some();
                if is_sign_error(&code) {
                    effects.relogin = true;
                } else if code == "QUERYID_INVALID_ERROR" && self.state.borrow().query_id.is_some()
                {
                    // The server no longer knows the query: start again with a fresh init snapshot.
                    self.state.borrow_mut().query_id = None;
                    effects.frames.extend(self.start_frame(env));
                } else {
                    let err_code = match (answers_pending, rebuilding) {
                        (true, true) => REBUILD_WATCH_FAIL,
                        (true, false) => INIT_WATCH_FAIL,
                        _ => SERVER_ERROR,
                    };
                    effects.error = Some(failure(err_code, format!("{code} - {text}")));
                }
            }
            _ => {}
        }
        effects
    }

    /// Applies the events of an INIT_EVENT (`init_id`: every event gets currEvent) or NEXT_EVENT.
    fn apply(&self, message: &JsValue, init_id: Option<u64>, effects: &mut Effects, env: &str) {
        let raw_events = msg_data(message, "events");
        let raw_events: Array = if Array::is_array(&raw_events) {
            raw_events.unchecked_into()
        } else {
            Array::new()
        };
        let mut events = Vec::with_capacity(raw_events.length() as usize);
        let mut extras = Vec::with_capacity(events.capacity());
        for raw in raw_events.iter() {
            match parse_event(&raw, init_id) {
                Some((event, extra)) => {
                    events.push(event);
                    extras.push(extra);
                }
                None => {
                    effects.error = Some(failure(
                        INVALID_SERVER_DATA,
                        "an event of the server could not be read",
                    ));
                    return;
                }
            }
        }
        let orders = &self.orders;
        let (snapshots, fault) = self.state.borrow_mut().window.apply(
            &mut events,
            |doc, index| patch_doc(doc, &extras[index].updated, &extras[index].removed),
            |docs| {
                // Insertion sort: the window was sorted before this event, so it is nearly sorted (one
                // crossing per document, and none of std's sort code in the wasm).
                for i in 1..docs.len() {
                    let mut at = i;
                    while at > 0 && compare_docs(&docs[at - 1].1, &docs[at].1, orders) > 0 {
                        docs.swap(at - 1, at);
                        at -= 1;
                    }
                }
            },
        );
        for (position, built) in snapshots.iter().enumerate() {
            let changes = Array::new();
            for &index in &built.changes {
                changes.push(&change(&events[index], &extras[index]));
            }
            let docs: Array = built.docs.iter().map(decoded).collect();
            // `type: 'init'` on the first snapshot and on a server re-init (a batch of init events).
            let init = (init_id.is_some() && position == 0)
                || built
                    .changes
                    .iter()
                    .all(|&index| events[index].queue_type == QueueType::Init);
            effects
                .snapshots
                .push(snapshot(built.id, &changes, &docs, init));
        }
        match fault {
            None => {}
            Some(Fault::Gap { .. }) => {
                let pending = self.state.borrow().pending.is_some();
                if !pending {
                    effects.frames.extend(self.start_frame(env));
                }
            }
            Some(Fault::MissingDocument(detail)) => {
                effects.error = Some(failure(UNEXPECTED, detail));
            }
        }
    }
}

/// What a change keeps besides the pure event: its wire names and the parsed partial update.
struct EventExtra {
    data_type: JsValue,
    queue_type: JsValue,
    updated: JsValue,
    removed: JsValue,
}

fn parse_json_field(raw: &JsValue, key: &str) -> Option<JsValue> {
    let text = js::get(raw, key);
    match text.as_string() {
        Some(s) if !s.is_empty() && s != "{}" => js::json_parse(&text).ok(),
        _ => None,
    }
}

fn parse_event(raw: &JsValue, init_id: Option<u64>) -> Option<(Event<JsValue>, EventExtra)> {
    let id = init_id.or_else(|| js::get(raw, "ID").as_f64().map(|id| id as u64))?;
    let data_type = js::get(raw, "DataType");
    let queue_name = js::get(raw, "QueueType");
    let queue_type = QueueType::parse(&queue_name.as_string()?)?;
    let data_name = data_type.as_string()?;
    if !matches!(
        data_name.as_str(),
        "init" | "update" | "replace" | "add" | "remove" | "limit"
    ) {
        return None;
    }
    let doc_id = js::get(raw, "DocID");
    let doc_id = doc_id.as_string().or_else(|| {
        doc_id
            .as_f64()
            .map(|n| js_sys::JSON::stringify(&JsValue::from_f64(n)).ok())?
            .and_then(|s| s.as_string())
    })?;
    let doc = parse_json_field(raw, "Doc");
    let update = data_name == "update";
    let (updated, removed) = if update {
        (
            parse_json_field(raw, "UpdatedFields").unwrap_or(JsValue::UNDEFINED),
            parse_json_field(raw, "removedFields")
                .or_else(|| parse_json_field(raw, "RemovedFields"))
                .unwrap_or(JsValue::UNDEFINED),
        )
    } else {
        (JsValue::UNDEFINED, JsValue::UNDEFINED)
    };
    Some((
        Event {
            id,
            queue_type,
            doc_id,
            partial_update: update && doc.is_none(),
            doc,
        },
        EventExtra {
            data_type,
            queue_type: queue_name,
            updated,
            removed,
        },
    ))
}

/// A user's copy of a raw document: a deep copy with Dates and Geo values decoded as `get()` does.
fn decoded(doc: &JsValue) -> JsValue {
    convert::decode(copy_json(doc))
}

fn change(event: &Event<JsValue>, extra: &EventExtra) -> JsValue {
    let out = js_sys::Object::new();
    js::set(&out, "id", &JsValue::from_f64(event.id as f64));
    js::set(&out, "dataType", &extra.data_type);
    js::set(&out, "queueType", &extra.queue_type);
    js::set(&out, "docId", &JsValue::from_str(&event.doc_id));
    js::set(
        &out,
        "doc",
        &event.doc.as_ref().map_or(JsValue::UNDEFINED, decoded),
    );
    if !extra.updated.is_undefined() {
        js::set(&out, "updatedFields", &decoded(&extra.updated));
    }
    if !extra.removed.is_undefined() {
        js::set(&out, "removedFields", &copy_json(&extra.removed));
    }
    out.into()
}

fn snapshot(id: u64, changes: &Array, docs: &Array, init: bool) -> JsValue {
    let out = js_sys::Object::new();
    js::set(&out, "id", &JsValue::from_f64(id as f64));
    js::set(&out, "docChanges", changes);
    js::set(&out, "docs", docs);
    if init {
        js::set(&out, "type", &JsValue::from_str("init"));
    }
    out.into()
}

fn call_user(api: &str, name: &str, callback: &Function, value: &JsValue) {
    if let Err(thrown) = callback.call1(&JsValue::UNDEFINED, value) {
        js::console_error(&format!("at api {api} {name} callback function"), &thrown);
    }
}

// --------------------------------------------------------------------------------------- Connection

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// No socket and no watcher.
    Idle,
    /// Fetching the sign or opening the socket.
    Connecting,
    /// Socket open, LOGIN sent.
    LoggingIn,
    /// Logged in: watchers run.
    Open,
    /// Waiting to reconnect.
    Backoff,
}

struct Inner {
    phase: Phase,
    socket: Option<Socket>,
    /// Bumped for every socket and timer so late events of old ones are ignored.
    generation: u32,
    login_request: String,
    login_frame: String,
    env: String,
    watchers: Vec<Rc<Watcher>>,
    /// Consecutive attempts that did not reach LOGIN_RES.
    failures: u32,
    /// Whether the socket ever logged in since the last success (for the errCode after retries).
    ever_open: bool,
    timer: JsValue,
    timer_ticket: u32,
    /// No frame from the server since the last idle tick.
    quiet: bool,
}

/// The one socket of a session and its watchers.
pub struct Connection {
    session: Rc<Session>,
    inner: RefCell<Inner>,
    socket_handler: Closure<dyn FnMut(u32, u8, JsValue)>,
    timer_handler: Closure<dyn FnMut(u32)>,
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout_with(callback: &Function, ms: u32, ticket: u32) -> JsValue;
}

impl Connection {
    /// The connection of `session` (made on first use).
    fn of(session: &Rc<Session>) -> Rc<Connection> {
        CONNECTIONS.with(|all| {
            if let Some(found) = all
                .borrow()
                .iter()
                .find(|c| Rc::ptr_eq(&c.session, session))
            {
                return found.clone();
            }
            let connection = Rc::new_cyclic(|weak: &std::rc::Weak<Connection>| {
                let on_socket = weak.clone();
                let on_timer = weak.clone();
                Connection {
                    session: session.clone(),
                    inner: RefCell::new(Inner {
                        phase: Phase::Idle,
                        socket: None,
                        generation: 0,
                        login_request: String::new(),
                        login_frame: String::new(),
                        env: session.env.clone(),
                        watchers: Vec::new(),
                        failures: 0,
                        ever_open: false,
                        timer: JsValue::UNDEFINED,
                        timer_ticket: 0,
                        quiet: false,
                    }),
                    socket_handler: Closure::new(move |generation, kind, data| {
                        if let Some(connection) = on_socket.upgrade() {
                            connection.on_socket(generation, kind, data);
                        }
                    }),
                    timer_handler: Closure::new(move |ticket| {
                        if let Some(connection) = on_timer.upgrade() {
                            connection.on_timer(ticket);
                        }
                    }),
                }
            });
            all.borrow_mut().push(connection.clone());
            connection
        })
    }

    fn set_timer(&self, ms: u32) {
        let mut inner = self.inner.borrow_mut();
        js::clear_timeout(&inner.timer);
        inner.timer_ticket += 1;
        inner.timer = set_timeout_with(
            self.timer_handler.as_ref().unchecked_ref(),
            ms,
            inner.timer_ticket,
        );
    }

    fn clear_timer(&self) {
        let mut inner = self.inner.borrow_mut();
        js::clear_timeout(&inner.timer);
        inner.timer = JsValue::UNDEFINED;
        inner.timer_ticket += 1;
    }

    fn send(&self, text: &str) {
        if let Some(socket) = &self.inner.borrow().socket {
            socket.send(text);
        }
    }

    fn add(self: &Rc<Self>, watcher: Rc<Watcher>) {
        let phase = {
            let mut inner = self.inner.borrow_mut();
            inner.watchers.push(watcher.clone());
            inner.phase
        };
        match phase {
            Phase::Idle => self.connect(),
            Phase::Open => {
                let env = self.inner.borrow().env.clone();
                if let Some(text) = watcher.start_frame(&env) {
                    self.send(&text);
                }
            }
            _ => {} // started once the socket is logged in
        }
    }

    fn remove(&self, watcher: &Rc<Watcher>, send_close: bool) {
        let (open, empty) = {
            let mut inner = self.inner.borrow_mut();
            inner.watchers.retain(|w| !Rc::ptr_eq(w, watcher));
            (inner.phase == Phase::Open, inner.watchers.is_empty())
        };
        if open && send_close {
            self.send(&frame::close_watch(&watcher.watch_id, &request_id()));
        }
        if empty {
            // No watcher left: release the socket (code 1000; the official client uses 3001).
            self.clear_timer();
            let mut inner = self.inner.borrow_mut();
            inner.generation += 1;
            inner.phase = Phase::Idle;
            inner.failures = 0;
            if let Some(socket) = inner.socket.take() {
                socket.close();
            }
        }
    }

    /// Fetches a sign and opens a socket (a new generation).
    fn connect(self: &Rc<Self>) {
        let generation = {
            let mut inner = self.inner.borrow_mut();
            inner.generation += 1;
            inner.phase = Phase::Connecting;
            inner.generation
        };
        // Bounds the sign request, the socket opening and LOGIN together.
        self.set_timer(IDLE_MS);
        let connection = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let params = [Param::Str("runtime", "web")];
            let signed = call_action(&connection.session, "auth.wsWebSign", &params).await;
            if connection.inner.borrow().generation != generation {
                return; // every watcher closed meanwhile
            }
            let data = match signed {
                Ok(body) => js::get(&body, "data"),
                Err(error) => {
                    let detail = error.into_error("auth.wsWebSign").err_msg;
                    return connection.lost(failure(INIT_SOCKET_FAIL, detail));
                }
            };
            let url = js::get_string(&data, "wsUrl")
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| "wss://tcb-ws.tencentcloudapi.com".to_owned());
            let env = js::get_string(&data, "envId")
                .filter(|env| !env.is_empty())
                .unwrap_or_else(|| connection.session.env.clone());
            let sign = js::get_string(&data, "signStr").unwrap_or_default();
            let version = js_sys::JSON::stringify(&js::get(&data, "secretVersion"))
                .ok()
                .and_then(|text| text.as_string())
                .unwrap_or_else(|| "0".to_owned());
            let handler: &Function = connection.socket_handler.as_ref().unchecked_ref();
            let constructor = SOCKET_CONSTRUCTOR.with(|c| c.borrow().clone());
            match websocket::open(&url, &constructor, handler, generation) {
                Ok(socket) => {
                    let login_request = request_id();
                    let mut inner = connection.inner.borrow_mut();
                    inner.login_frame = frame::login(&login_request, &env, &sign, &version);
                    inner.login_request = login_request;
                    inner.env = env;
                    inner.socket = Some(socket);
                }
                // No WebSocket in this runtime: retrying cannot help.
                Err(error) => connection.fail_all(failure(INIT_SOCKET_FAIL, error)),
            }
        });
    }

    fn on_socket(self: &Rc<Self>, generation: u32, kind: u8, data: JsValue) {
        if self.inner.borrow().generation != generation {
            return;
        }
        match kind {
            websocket::OPEN => {
                let mut inner = self.inner.borrow_mut();
                inner.phase = Phase::LoggingIn;
                if let Some(socket) = &inner.socket {
                    socket.send(&inner.login_frame);
                }
            }
            websocket::MESSAGE => self.on_message(&data),
            websocket::CLOSE => {
                let code = data.as_f64().unwrap_or(0.0) as u32;
                self.inner.borrow_mut().socket = None;
                self.lost(failure(
                    CONNECTION_CLOSED,
                    format!("the realtime socket closed (code {code})"),
                ));
            }
            _ => {} // `error` is always followed by `close`
        }
    }

    fn on_message(self: &Rc<Self>, data: &JsValue) {
        let Ok(message) = js::json_parse(data) else {
            return;
        };
        let kind = js::get_string(&message, "msgType").unwrap_or_default();
        self.inner.borrow_mut().quiet = false;
        if kind == "LOGIN_RES" {
            return self.on_login(&message);
        }
        if kind == "PONG" {
            return;
        }
        let watch_id = js::get_string(&message, "watchId");
        let watcher = self
            .inner
            .borrow()
            .watchers
            .iter()
            .find(|w| Some(&w.watch_id) == watch_id.as_ref())
            .cloned();
        let Some(watcher) = watcher else {
            if kind == "ERROR" && watch_id.is_none() {
                let code = js::get_string(&js::get(&message, "msgData"), "code");
                if code.as_deref().is_some_and(is_sign_error) {
                    self.relogin();
                }
            }
            return;
        };
        let env = self.inner.borrow().env.clone();
        let effects = watcher.handle(&message, &kind, &env);
        self.run(&watcher, effects);
    }

    fn run(self: &Rc<Self>, watcher: &Rc<Watcher>, effects: Effects) {
        for text in &effects.frames {
            self.send(text);
        }
        for snapshot in &effects.snapshots {
            if watcher.state.borrow().closed {
                return;
            }
            call_user(watcher.api, "onChange", &watcher.on_change, snapshot);
        }
        if let Some(error) = effects.error {
            self.end(watcher, error);
        }
        if effects.relogin {
            self.relogin();
        }
    }

    /// Ends one watcher with `onError` (it is closed first, so the callback may call `close()`).
    fn end(&self, watcher: &Rc<Watcher>, error: Failure) {
        {
            let mut state = watcher.state.borrow_mut();
            if state.closed {
                return;
            }
            state.closed = true;
        }
        self.remove(watcher, true);
        let error = error.into_error(watcher.api).to_js();
        call_user(watcher.api, "onError", &watcher.on_error, &error);
    }

    fn on_login(self: &Rc<Self>, message: &JsValue) {
        let expected = self.inner.borrow().login_request.clone();
        if js::get_string(message, "requestId").as_deref() != Some(expected.as_str()) {
            return;
        }
        let code = js::get_string(&js::get(message, "msgData"), "code").filter(|c| !c.is_empty());
        if let Some(code) = code {
            let text = js::get_string(&js::get(message, "msgData"), "message").unwrap_or_default();
            self.drop_socket();
            return self.lost(failure(INIT_SOCKET_FAIL, format!("LOGIN {code} - {text}")));
        }
        let (env, watchers) = {
            let mut inner = self.inner.borrow_mut();
            inner.phase = Phase::Open;
            inner.failures = 0;
            inner.ever_open = true;
            inner.quiet = false;
            (inner.env.clone(), inner.watchers.clone())
        };
        for watcher in watchers {
            if let Some(text) = watcher.start_frame(&env) {
                self.send(&text);
            }
        }
        self.set_timer(IDLE_MS);
    }

    /// The sign was refused or expired: a new socket with a fresh sign (the access token behind
    /// `auth.wsWebSign` is refreshed like any HTTP call's).
    fn relogin(self: &Rc<Self>) {
        self.drop_socket();
        self.lost(failure(INIT_SOCKET_FAIL, "the realtime sign was refused"));
    }

    fn drop_socket(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.generation += 1;
        if let Some(socket) = inner.socket.take() {
            socket.close();
        }
    }

    /// The socket (or the attempt to get one) is gone: reconnect after a jittered backoff, or after
    /// [`MAX_RECONNECTS`] failed attempts end every watcher with `error`.
    fn lost(self: &Rc<Self>, error: Failure) {
        let failures = {
            let mut inner = self.inner.borrow_mut();
            inner.generation += 1;
            inner.socket = None;
            if inner.watchers.is_empty() {
                inner.phase = Phase::Idle;
                drop(inner);
                self.clear_timer();
                return;
            }
            inner.failures += 1;
            inner.phase = Phase::Backoff;
            inner.failures
        };
        if failures > MAX_RECONNECTS {
            let ever_open = self.inner.borrow().ever_open;
            let error = match error {
                Failure::Local { detail, .. } if ever_open => failure(CONNECTION_CLOSED, detail),
                other => other,
            };
            return self.fail_all(error);
        }
        self.set_timer(reconnect_delay_ms(failures, js_sys::Math::random()));
    }

    fn fail_all(self: &Rc<Self>, error: Failure) {
        let watchers = self.inner.borrow().watchers.clone();
        for watcher in &watchers {
            self.end(watcher, error.clone());
        }
    }

    fn on_timer(self: &Rc<Self>, ticket: u32) {
        let (phase, quiet) = {
            let inner = self.inner.borrow();
            if inner.timer_ticket != ticket {
                return;
            }
            (inner.phase, inner.quiet)
        };
        match phase {
            Phase::Backoff => self.connect(),
            Phase::Connecting | Phase::LoggingIn => {
                self.drop_socket();
                self.lost(failure(
                    INIT_SOCKET_FAIL,
                    "the realtime socket did not log in in time",
                ));
            }
            Phase::Open if quiet => {
                // Nothing at all from the server for two idle periods: the socket is dead.
                self.drop_socket();
                self.lost(failure(CONNECTION_CLOSED, "no answer to PING"));
            }
            Phase::Open => {
                let (env, watchers) = {
                    let mut inner = self.inner.borrow_mut();
                    inner.quiet = true;
                    (inner.env.clone(), inner.watchers.clone())
                };
                self.send(&frame::ping(&request_id()));
                for watcher in watchers {
                    if let Some(text) = watcher.idle_frame(&env) {
                        self.send(&text);
                    }
                }
                self.set_timer(IDLE_MS);
            }
            _ => {}
        }
    }
}

// ------------------------------------------------------------------------------------------- the API

/// A running `watch()`: `close()` stops it.
#[wasm_bindgen]
pub struct RealtimeListener {
    watcher: Rc<Watcher>,
}

#[wasm_bindgen]
impl RealtimeListener {
    /// `close()`: stops the watcher (CLOSE_WATCH; the socket closes with the last one). Resolves at once;
    /// a no-op on a closed watcher.
    pub fn close(&self) -> js_sys::Promise {
        let watcher = &self.watcher;
        let was_open = !std::mem::replace(&mut watcher.state.borrow_mut().closed, true);
        if was_open {
            watcher.connection.remove(watcher, true);
        }
        js_sys::Promise::resolve(&JsValue::UNDEFINED)
    }
}

/// Starts a watcher on `session` after the caller validated `options` (`onChange` / `onError` are
/// functions).
pub fn watch(
    session: &Rc<Session>,
    api: &'static str,
    spec: Spec,
    on_change: Function,
    on_error: Function,
) -> RealtimeListener {
    // The server's order (docs/realtime.md §2): orderBy then `_id` ascending, or `_id` descending.
    let orders = Array::new();
    let by = |field: &str, descending: bool| -> JsValue {
        Array::of2(&JsValue::from_str(field), &JsValue::from_bool(descending)).into()
    };
    for order in &spec.orders {
        orders.push(&by(&order.field, order.descending));
    }
    if !spec.orders.iter().any(|order| order.field == "_id") {
        orders.push(&by("_id", spec.orders.is_empty()));
    }
    let connection = Connection::of(session);
    let watcher = Rc::new(Watcher {
        connection: connection.clone(),
        api,
        watch_id: format!("watchid_{}", request_id()),
        spec,
        orders: orders.into(),
        on_change,
        on_error,
        state: RefCell::default(),
    });
    connection.add(watcher.clone());
    RealtimeListener { watcher }
}
