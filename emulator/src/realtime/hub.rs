//! The realtime hub: one dispatcher thread owns every watch session and consumes, in one ordered
//! stream, the store's commit batches and the sockets' watch commands. Because an `INIT_WATCH` reads
//! its first window on that same thread, every commit is either in the window it read or delivered
//! after it as an event — never both, never neither.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use cloud_protocol::codes;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};

use super::session::{Change, FieldChanges, Resume, Session, Versions, WatchSpec, Window};
use crate::database::feed::{CommitBatch, DocChange};
use crate::database::rules::{self, Decision, Operation, Rules, UserCtx};
use crate::database::service::{valid_collection_name, Database, MAX_QUERY_DEPTH};
use crate::database::store::plan_query;
use crate::database::{resolve_server_dates, DbError, DbResult, Matcher};

/// How long a watch whose socket went away is kept for `REBUILD_WATCH`.
pub const DETACHED_TTL: Duration = Duration::from_secs(60);
/// Most watches on one socket.
pub const MAX_WATCHES_PER_CONNECTION: usize = 5000;
/// Most watch sessions on the server (attached or waiting for a resume).
pub const MAX_SESSIONS: usize = 50_000;
/// Largest `limit` of a watch (as `get()`'s largest page).
pub const MAX_WATCH_LIMIT: u64 = 1000;

/// Why the server closes a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client does not read fast enough: close code 1013 "Try Again Later"; the SDKs reconnect
    /// and resume every watch with `REBUILD_WATCH`.
    Overflow,
    /// The test hook dropped the socket: the TCP connection just ends (the client sees 1006).
    Dropped,
}

/// A connected socket, as the hub sees it: a send queue bounded in bytes, and a close switch.
pub struct Conn {
    /// Unique per server run.
    pub id: u64,
    out: mpsc::UnboundedSender<Vec<String>>,
    queued: AtomicUsize,
    limit: usize,
    close: watch::Sender<Option<CloseReason>>,
}

impl Conn {
    /// A connection with a send queue of at most `limit` bytes; returns the queue's receiving end and
    /// the close signal.
    pub fn new(
        id: u64,
        limit: usize,
    ) -> (
        Arc<Conn>,
        mpsc::UnboundedReceiver<Vec<String>>,
        watch::Receiver<Option<CloseReason>>,
    ) {
        let (out, out_rx) = mpsc::unbounded_channel();
        let (close, close_rx) = watch::channel(None);
        let conn = Arc::new(Conn {
            id,
            out,
            queued: AtomicUsize::new(0),
            limit,
            close,
        });
        (conn, out_rx, close_rx)
    }

    /// Queues a text frame; a frame that would take a non-empty queue past its bound closes the connection
    /// instead (a slow consumer cannot make the emulator's memory grow).
    pub fn send(&self, frame: String) -> bool {
        self.send_all(vec![frame])
    }

    /// Queues several frames at once (one wake-up of the socket's writer).
    pub fn send_all(&self, frames: Vec<String>) -> bool {
        let len: usize = frames.iter().map(String::len).sum();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        // A single frame larger than the bound still goes out on an idle queue (else it never could).
        if before > 0 && before + len > self.limit {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.close(CloseReason::Overflow);
            return false;
        }
        if self.out.send(frames).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Whether the socket task has ended (nothing will read this connection's queue any more).
    pub fn is_closed(&self) -> bool {
        self.out.is_closed()
    }

    /// Called by the writer once a frame of `len` bytes left the queue.
    pub fn sent(&self, len: usize) {
        self.queued.fetch_sub(len, Ordering::AcqRel);
    }

    /// Asks the socket task to close (the first reason wins).
    pub fn close(&self, reason: CloseReason) {
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }
}

/// The signed-in user of a socket (from `LOGIN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUser {
    /// The env the sign was issued for.
    pub env: String,
    /// The user id.
    pub uid: String,
    /// The user's openid.
    pub openid: String,
}

/// A watch request from a socket.
pub struct WatchRequest {
    /// The socket.
    pub conn: Arc<Conn>,
    /// Who is asking.
    pub user: WsUser,
    /// The client's `watchId`.
    pub watch_id: String,
    /// The client's `requestId` (echoed).
    pub request_id: String,
    /// The frame's `msgData`.
    pub data: Value,
}

/// What the dispatcher thread is asked to do.
pub enum Command {
    /// A committed write transaction.
    Batch(Arc<CommitBatch>),
    /// `INIT_WATCH`.
    Init(WatchRequest),
    /// `REBUILD_WATCH`.
    Rebuild(WatchRequest),
    /// `CHECK_LAST`.
    CheckLast(WatchRequest),
    /// `CLOSE_WATCH` of `watch_id` on connection `conn_id`.
    CloseWatch {
        /// The connection.
        conn_id: u64,
        /// The client's watch id.
        watch_id: String,
    },
    /// The socket `conn_id` went away: its watches wait for a `REBUILD_WATCH`.
    Detach(u64),
    /// Reply with the number of live sessions (for tests and benchmarks).
    Stats(std::sync::mpsc::Sender<usize>),
    /// The server stopped: end the thread (dropping every session and its handle on the store).
    Shutdown,
}

/// A protocol error answered as an `ERROR` frame.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchError {
    /// The realtime error code (`SYS_ERR`, `QUERYID_INVALID_ERROR`, … or a database code).
    pub code: String,
    /// Detail.
    pub message: String,
}

impl WatchError {
    fn new(code: &str, message: impl Into<String>) -> WatchError {
        WatchError {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl From<DbError> for WatchError {
    fn from(err: DbError) -> WatchError {
        let code = if err.code == codes::PERMISSION_DENIED
            || err.code == codes::DATABASE_PERMISSION_DENIED
        {
            "COLLECTION_PERMISSION_DENIED"
        } else {
            err.code
        };
        WatchError::new(code, err.message)
    }
}

/// A response or push frame.
pub fn frame(watch_id: Option<&str>, request_id: &str, msg_type: &str, data: Value) -> String {
    let mut out = Map::new();
    if let Some(watch_id) = watch_id {
        out.insert("watchId".into(), watch_id.into());
    }
    out.insert("requestId".into(), request_id.into());
    out.insert("msgType".into(), msg_type.into());
    out.insert("msgData".into(), data);
    Value::Object(out).to_string()
}

/// An `ERROR` frame.
pub fn error_frame(watch_id: Option<&str>, request_id: &str, err: &WatchError) -> String {
    frame(
        watch_id,
        request_id,
        "ERROR",
        json!({ "code": err.code, "message": err.message }),
    )
}

/// A string as a JSON string literal.
fn json_string(text: &str) -> String {
    Value::from(text).to_string()
}

/// Appends `text` as a JSON string literal (ids are plain ASCII as a rule: no copy through serde then).
fn push_json_str(out: &mut String, text: &str) {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(&json_string(text));
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
}

/// An event frame (`INIT_EVENT` / `NEXT_EVENT`) around already-serialised events, written directly
/// into one string: one commit makes one frame per watch. `watch_id_json` is the watch id as a JSON
/// string literal.
fn event_frame(
    watch_id_json: &str,
    request_id: &str,
    msg_type: &str,
    query_id: &str,
    current: u64,
    events: &[Arc<str>],
) -> String {
    let mut out = String::with_capacity(
        128 + watch_id_json.len()
            + request_id.len()
            + msg_type.len()
            + query_id.len()
            + events.iter().map(|e| e.len() + 1).sum::<usize>(),
    );
    out.push_str("{\"watchId\":");
    out.push_str(watch_id_json);
    out.push_str(",\"requestId\":");
    push_json_str(&mut out, request_id);
    out.push_str(",\"msgType\":");
    push_json_str(&mut out, msg_type);
    out.push_str(",\"msgData\":{\"queryID\":");
    push_json_str(&mut out, query_id);
    out.push_str(",\"currEvent\":");
    out.push_str(itoa::Buffer::new().format(current));
    out.push_str(",\"events\":[");
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(event);
    }
    out.push_str("]}}");
    out
}

struct Attached {
    conn: Arc<Conn>,
    watch_id: String,
    /// `watch_id` as a JSON string literal, made once: it starts every frame of the watch.
    watch_id_json: String,
}

struct Entry {
    session: Session,
    owner: WsUser,
    /// The `INIT_WATCH` `msgData`, to authorise the watch again when the collection's rules change.
    request: Value,
    attached: Option<Attached>,
    detached_at: Option<Instant>,
}

/// The dispatcher's state (owned by its thread).
struct Dispatcher {
    database: Database,
    sessions: HashMap<String, Entry>,
    /// `(env, collection)` → query ids watching it.
    by_collection: HashMap<(String, String), Vec<String>>,
    /// `(connection, watchId)` → query id.
    by_watch: HashMap<(u64, String), String>,
    /// [`WatchSpec::share_key`] → the query id of the latest watch started with that spec: a new
    /// watch of the same query shares its spec and, when it holds the same documents, its window.
    peers: HashMap<String, String>,
    next_query: u64,
    next_push: u64,
    /// One shared copy of each document version the watches of a collection hold.
    interned: Interned,
}

/// `(env, collection)` → `_id` text → the latest shared copy of that document.
#[derive(Default)]
struct Interned {
    docs: HashMap<(String, String), HashMap<String, Weak<Value>>>,
    entries: usize,
    prune_at: usize,
}

impl Interned {
    /// `docs` with every document replaced by an equal copy already held by some watch, if any (so
    /// 1,000 watches of one collection hold its documents once, not 1,000 times).
    fn share(&mut self, env: &str, collection: &str, docs: Vec<Arc<Value>>) -> Vec<Arc<Value>> {
        let table = self
            .docs
            .entry((env.to_string(), collection.to_string()))
            .or_default();
        let shared = docs
            .into_iter()
            .map(|doc| {
                let id = doc.get("_id").map(Value::to_string).unwrap_or_default();
                match table.get(&id).and_then(Weak::upgrade) {
                    Some(existing) if *existing == *doc => existing,
                    _ => {
                        if table.insert(id, Arc::downgrade(&doc)).is_none() {
                            self.entries += 1;
                        }
                        doc
                    }
                }
            })
            .collect();
        self.prune();
        shared
    }

    /// Remembers a new version (from a commit) as the one to share.
    fn remember(&mut self, env: &str, collection: &str, doc: &Arc<Value>) {
        if let Some(table) = self
            .docs
            .get_mut(&(env.to_string(), collection.to_string()))
        {
            let id = doc.get("_id").map(Value::to_string).unwrap_or_default();
            if table.insert(id, Arc::downgrade(doc)).is_none() {
                self.entries += 1;
            }
            self.prune();
        }
    }

    /// Drops entries no watch holds any more, whenever the table has doubled.
    fn prune(&mut self) {
        if self.entries < self.prune_at.max(1024) {
            return;
        }
        for table in self.docs.values_mut() {
            table.retain(|_, doc| doc.strong_count() > 0);
        }
        self.docs.retain(|_, table| !table.is_empty());
        self.entries = self.docs.values().map(HashMap::len).sum();
        self.prune_at = self.entries * 2;
    }
}

/// Starts the dispatcher thread; returns the command sender.
pub fn spawn(database: Database) -> Sender<Command> {
    let (tx, rx) = std::sync::mpsc::channel();
    let listener_tx = tx.clone();
    database.store().set_change_listener(Arc::new(move |batch| {
        let _ = listener_tx.send(Command::Batch(batch));
    }));
    std::thread::Builder::new()
        .name("realtime-dispatcher".into())
        .spawn(move || Dispatcher::new(database).run(rx))
        .expect("spawn the realtime dispatcher");
    tx
}

impl Dispatcher {
    fn new(database: Database) -> Dispatcher {
        Dispatcher {
            database,
            sessions: HashMap::new(),
            by_collection: HashMap::new(),
            by_watch: HashMap::new(),
            peers: HashMap::new(),
            next_query: 0,
            next_push: 0,
            interned: Interned::default(),
        }
    }

    fn run(mut self, rx: Receiver<Command>) {
        let mut last_sweep = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(Command::Shutdown) => return,
                Ok(command) => {
                    // A bug met by one command must not end realtime for everyone.
                    let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.handle(command)
                    }));
                    if handled.is_err() {
                        eprintln!("cloud-emulator: realtime dispatcher recovered from a panic");
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if last_sweep.elapsed() >= Duration::from_secs(1) {
                self.expire_detached();
                last_sweep = Instant::now();
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Batch(batch) => self.publish(&batch),
            Command::Init(request) => {
                let result = self.init(&request);
                self.answer_error(&request, result);
            }
            Command::Rebuild(request) => {
                let result = self.rebuild(&request);
                self.answer_error(&request, result);
            }
            Command::CheckLast(request) => {
                let result = self.check_last(&request);
                self.answer_error(&request, result);
            }
            Command::CloseWatch { conn_id, watch_id } => {
                if let Some(query_id) = self.by_watch.remove(&(conn_id, watch_id)) {
                    self.remove(&query_id);
                }
            }
            Command::Detach(conn_id) => {
                let now = Instant::now();
                self.by_watch.retain(|(conn, _), _| *conn != conn_id);
                for entry in self.sessions.values_mut() {
                    if entry
                        .attached
                        .as_ref()
                        .is_some_and(|a| a.conn.id == conn_id)
                    {
                        entry.attached = None;
                        entry.detached_at = Some(now);
                    }
                }
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.sessions.len());
            }
            Command::Shutdown => {}
        }
    }

    fn answer_error(&self, request: &WatchRequest, result: Result<(), WatchError>) {
        if let Err(err) = result {
            request.conn.send(error_frame(
                Some(&request.watch_id),
                &request.request_id,
                &err,
            ));
        }
    }

    fn remove(&mut self, query_id: &str) {
        if let Some(entry) = self.sessions.remove(query_id) {
            if let Some(key) = entry.session.spec.share_key() {
                if self.peers.get(&key).is_some_and(|peer| peer == query_id) {
                    self.peers.remove(&key);
                }
            }
            let key = (
                entry.session.spec.env.clone(),
                entry.session.spec.collection.clone(),
            );
            if let Some(ids) = self.by_collection.get_mut(&key) {
                ids.retain(|id| id != query_id);
                if ids.is_empty() {
                    self.by_collection.remove(&key);
                }
            }
        }
    }

    fn expire_detached(&mut self) {
        // A watch started just as its socket went away (the INIT_WATCH was queued behind the
        // Detach) is detached here, so it expires like the others.
        let now = Instant::now();
        for entry in self.sessions.values_mut() {
            if entry.attached.as_ref().is_some_and(|a| a.conn.is_closed()) {
                entry.attached = None;
                entry.detached_at = Some(now);
            }
        }
        let sessions = &self.sessions;
        self.by_watch.retain(|(conn_id, _), query_id| {
            sessions
                .get(query_id)
                .and_then(|e| e.attached.as_ref())
                .is_some_and(|a| a.conn.id == *conn_id)
        });
        let expired: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.detached_at.is_some_and(|t| t.elapsed() >= DETACHED_TTL))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
    }

    /// The window of `spec` as the store has it now, and the commit it reflects.
    fn read_window(database: &Database, spec: &WatchSpec) -> DbResult<(Vec<Arc<Value>>, u64)> {
        database.store().read_consistent(|t| {
            let meta = t.collection(&spec.env, &spec.collection)?;
            let plan = plan_query(&spec.query, &meta.indexes);
            let mut found = Vec::new();
            t.scan(meta.cid, &plan, &mut |stored| {
                if spec.admits(&stored.doc) {
                    found.push(Arc::new(stored.doc));
                }
                Ok(true)
            })?;
            Ok((spec.window_of(found), t.commit_seq()))
        })
    }

    fn init(&mut self, request: &WatchRequest) -> Result<(), WatchError> {
        let conn_id = request.conn.id;
        if self.by_watch.keys().filter(|(c, _)| *c == conn_id).count() >= MAX_WATCHES_PER_CONNECTION
        {
            return Err(WatchError::new(
                "SYS_ERR",
                format!("at most {MAX_WATCHES_PER_CONNECTION} watches per connection"),
            ));
        }
        if self.sessions.len() >= MAX_SESSIONS {
            return Err(WatchError::new(
                "SYS_ERR",
                format!("at most {MAX_SESSIONS} watches on this emulator"),
            ));
        }
        let spec = self.spec(&request.user, &request.data)?;
        let (window, seen) = Self::read_window(&self.database, &spec)?;
        let window = self.interned.share(&spec.env, &spec.collection, window);
        self.next_query += 1;
        let query_id = format!("q-{}", self.next_query);
        let share_key = spec.share_key();
        let (spec, window) = self.share_with_peer(share_key.as_deref(), spec, window);
        if let Some(key) = share_key {
            self.peers.insert(key, query_id.clone());
        }
        let session = Session::new(spec, window, seen);
        let events: Vec<Arc<str>> = session
            .init_changes()
            .iter()
            .map(|c| Arc::from(c.to_event(session.current_event).to_string()))
            .collect();
        request.conn.send(event_frame(
            &json_string(&request.watch_id),
            &request.request_id,
            "INIT_EVENT",
            &query_id,
            session.current_event,
            &events,
        ));
        self.attach(query_id, session, request.data.clone(), request);
        Ok(())
    }

    /// `spec` and `window`, as the ones of the latest watch of the same query when they are equal (see
    /// `peers`), else as new ones.
    fn share_with_peer(
        &self,
        share_key: Option<&str>,
        spec: WatchSpec,
        window: Vec<Arc<Value>>,
    ) -> (Arc<WatchSpec>, Window) {
        let peer = share_key
            .and_then(|key| self.peers.get(key))
            .and_then(|query_id| self.sessions.get(query_id))
            .map(|entry| &entry.session);
        let Some(peer) = peer else {
            return (Arc::new(spec), Arc::new(window));
        };
        // The documents are interned, so the same documents are the same copies.
        let same_documents = peer.window.len() == window.len()
            && peer
                .window
                .iter()
                .zip(&window)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        let window = if same_documents {
            peer.window.clone()
        } else {
            Arc::new(window)
        };
        (peer.spec.clone(), window)
    }

    fn attach(
        &mut self,
        query_id: String,
        session: Session,
        init_data: Value,
        request: &WatchRequest,
    ) {
        let key = (session.spec.env.clone(), session.spec.collection.clone());
        let ids = self.by_collection.entry(key).or_default();
        if !ids.contains(&query_id) {
            ids.push(query_id.clone());
        }
        self.by_watch.insert(
            (request.conn.id, request.watch_id.clone()),
            query_id.clone(),
        );
        self.sessions.insert(
            query_id,
            Entry {
                session,
                owner: request.user.clone(),
                request: init_data,
                attached: Some(Attached {
                    conn: request.conn.clone(),
                    watch_id: request.watch_id.clone(),
                    watch_id_json: json_string(&request.watch_id),
                }),
                detached_at: None,
            },
        );
    }

    fn rebuild(&mut self, request: &WatchRequest) -> Result<(), WatchError> {
        let query_id = string_field(&request.data, "queryID")?;
        let client_event = request
            .data
            .get("eventID")
            .and_then(Value::as_u64)
            .ok_or_else(|| WatchError::new("SYS_ERR", "REBUILD_WATCH needs a numeric eventID"))?;
        let entry = self
            .sessions
            .remove(&query_id)
            .filter(|entry| entry.owner == request.user);
        let Some(entry) = entry else {
            return Err(query_id_invalid(&query_id));
        };
        if let Some(old) = &entry.attached {
            self.by_watch.remove(&(old.conn.id, old.watch_id.clone()));
        }
        let mut session = entry.session;
        let init_data = entry.request;
        let events = match session.resume_from(client_event) {
            Resume::Events(events) => events,
            Resume::TooOld => {
                // Start the client over: its next event is a fresh snapshot of `init` changes,
                // which replace whatever documents it holds.
                let (window, seen) = Self::read_window(&self.database, &session.spec)?;
                let window =
                    self.interned
                        .share(&session.spec.env, &session.spec.collection, window);
                if window.is_empty() {
                    // `init` changes cannot express an empty result: the client must INIT_WATCH anew.
                    self.remove(&query_id);
                    return Err(query_id_invalid(&query_id));
                }
                session.window = Arc::new(window);
                session.seen_commit = seen;
                session.restart_at(client_event + 1);
                let events: Vec<Arc<str>> = session
                    .init_changes()
                    .iter()
                    .map(|c| Arc::from(c.to_event(session.current_event).to_string()))
                    .collect();
                session.log_events(session.current_event, &events);
                events
            }
        };
        request.conn.send(event_frame(
            &json_string(&request.watch_id),
            &request.request_id,
            "NEXT_EVENT",
            &query_id,
            session.current_event,
            &events,
        ));
        self.attach(query_id, session, init_data, request);
        Ok(())
    }

    fn check_last(&mut self, request: &WatchRequest) -> Result<(), WatchError> {
        let query_id = string_field(&request.data, "queryID")?;
        let entry = self
            .sessions
            .get(&query_id)
            .filter(|entry| entry.owner == request.user)
            .ok_or_else(|| query_id_invalid(&query_id))?;
        request.conn.send(frame(
            Some(&request.watch_id),
            &request.request_id,
            "CHECK_EVENT",
            json!({ "queryID": query_id, "currEvent": entry.session.current_event }),
        ));
        Ok(())
    }

    /// Parses and authorises an `INIT_WATCH`'s `msgData`.
    fn spec(&self, user: &WsUser, data: &Value) -> Result<WatchSpec, WatchError> {
        let env = match data.get("envId").and_then(Value::as_str) {
            None | Some("") => user.env.clone(),
            Some(env) if env == user.env => env.to_string(),
            Some(env) => {
                return Err(WatchError::new(
                    "INVALID_ENV",
                    format!("signed in on env {}, not {env}", user.env),
                ))
            }
        };
        let collection = string_field(data, "collName")?;
        if !valid_collection_name(&collection) {
            return Err(WatchError::new(
                codes::INVALID_PARAM,
                format!("invalid collName {collection:?}"),
            ));
        }
        let mut query = match data.get("query") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(text)) if text.trim().is_empty() => json!({}),
            Some(Value::String(text)) => serde_json::from_str(text).map_err(|err| {
                WatchError::new(
                    codes::INVALID_PARAM,
                    format!("query is not valid JSON: {err}"),
                )
            })?,
            Some(other) => other.clone(),
        };
        if !query.is_object() {
            return Err(WatchError::new(
                codes::INVALID_PARAM,
                "query must be an object",
            ));
        }
        if depth(&query) > MAX_QUERY_DEPTH {
            return Err(WatchError::new(
                codes::INVALID_PARAM,
                format!("query nests deeper than {MAX_QUERY_DEPTH} levels"),
            ));
        }
        resolve_server_dates(&mut query, crate::database::service::now_ms());
        rules::substitute_openid(&mut query, &user.openid);
        let limit = match data.get("limit") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_u64() {
                Some(n) if (1..=MAX_WATCH_LIMIT).contains(&n) => Some(n as usize),
                _ => {
                    return Err(WatchError::new(
                        codes::INVALID_PARAM,
                        format!(
                            "limit must be an integer from 1 to {MAX_WATCH_LIMIT}, not {value}"
                        ),
                    ))
                }
            },
        };
        let order_by = match data.get("orderBy") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(field, direction)| match direction.as_str() {
                    Some("asc") => Ok((field.clone(), false)),
                    Some("desc") => Ok((field.clone(), true)),
                    _ => Err(WatchError::new(
                        codes::INVALID_PARAM,
                        format!("orderBy direction of {field} must be asc or desc"),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(WatchError::new(
                    codes::INVALID_PARAM,
                    "orderBy must be an object {field: 'asc' | 'desc'}",
                ))
            }
        };
        let meta = self
            .database
            .store()
            .read(|t| t.collection(&env, &collection))?;
        let user_ctx = UserCtx {
            openid: user.openid.clone(),
            uid: user.uid.clone(),
        };
        let rules = Rules::parse(&meta.rules)?;
        let by_id = query
            .as_object()
            .is_some_and(|q| q.len() == 1 && q.get("_id").is_some_and(|id| !id.is_object()));
        let (query, check_each) = match rules.decide(Operation::Read, &user_ctx, &query, by_id) {
            Decision::Allow => (query, None),
            Decision::Filter(filter) => (json!({ "$and": [query, filter] }), None),
            // A watch never fails because of one document: it only sees the ones the rules admit.
            Decision::CheckEach => (query, Some((rules, user_ctx))),
            Decision::Deny => {
                return Err(WatchError::new(
                    "COLLECTION_PERMISSION_DENIED",
                    format!("the rules of {collection} do not let this user read it"),
                ))
            }
        };
        Ok(WatchSpec {
            env,
            collection,
            matcher: Matcher::new(&query)?,
            query,
            order: WatchSpec::order_from(&order_by),
            limit,
            check_each,
        })
    }

    /// The rules of a collection were set: every watch of it is authorised again with the new rules;
    /// documents it may no longer read leave its result (`update`/`dequeue`), newly readable ones
    /// enter it, and a watch that may no longer read the collection ends with an `ERROR`.
    fn reauthorize(&mut self, env: &str, collection: &str) {
        let key = (env.to_string(), collection.to_string());
        let Some(query_ids) = self.by_collection.get(&key).cloned() else {
            return;
        };
        for query_id in query_ids {
            let Some(entry) = self.sessions.get(&query_id) else {
                continue;
            };
            let fresh = self.spec(&entry.owner, &entry.request).and_then(|spec| {
                let (window, seen) = Self::read_window(&self.database, &spec)?;
                Ok((spec, window, seen))
            });
            let (spec, window, seen) = match fresh {
                Ok(fresh) => fresh,
                Err(err) => {
                    if let Some(attached) = &entry.attached {
                        attached
                            .conn
                            .send(error_frame(Some(&attached.watch_id), "", &err));
                    }
                    self.remove(&query_id);
                    continue;
                }
            };
            let window = self.interned.share(env, collection, window);
            let share_key = spec.share_key();
            let (spec, window) = self.share_with_peer(share_key.as_deref(), spec, window);
            if let Some(key) = share_key {
                self.peers.insert(key, query_id.clone());
            }
            let Some(entry) = self.sessions.get_mut(&query_id) else {
                continue;
            };
            let session = &mut entry.session;
            let old = std::mem::take(&mut session.window);
            let id_of = |doc: &Value| doc.get("_id").cloned().unwrap_or(Value::Null);
            let mut changes = Vec::new();
            for doc in old.iter() {
                if !window.iter().any(|d| id_of(d) == id_of(doc)) {
                    changes.push(Change {
                        data_type: "update",
                        queue_type: "dequeue",
                        doc_id: id_of(doc),
                        doc: None,
                        fields: Some(FieldChanges::between(doc, doc)),
                    });
                }
            }
            for doc in window.iter() {
                match old.iter().find(|d| id_of(d) == id_of(doc)) {
                    None => changes.push(Change {
                        data_type: "update",
                        queue_type: "enqueue",
                        doc_id: id_of(doc),
                        doc: Some(doc.clone()),
                        fields: None,
                    }),
                    Some(before) if **before != **doc => changes.push(Change {
                        data_type: "update",
                        queue_type: "update",
                        doc_id: id_of(doc),
                        doc: None,
                        fields: Some(FieldChanges::between(before, doc)),
                    }),
                    Some(_) => {}
                }
            }
            session.spec = spec;
            session.window = window;
            session.seen_commit = session.seen_commit.max(seen);
            if changes.is_empty() {
                continue;
            }
            session.current_event += 1;
            let id = session.current_event;
            let events: Vec<Arc<str>> = changes
                .iter()
                .map(|change| Arc::from(change.to_event(id).to_string()))
                .collect();
            session.log_events(id, &events);
            if let Some(attached) = &entry.attached {
                self.next_push += 1;
                attached.conn.send(event_frame(
                    &attached.watch_id_json,
                    &format!("srv-{}", self.next_push),
                    "NEXT_EVENT",
                    &query_id,
                    id,
                    &events,
                ));
            }
        }
    }

    /// Delivers one commit to every watch of the collections it touched.
    fn publish(&mut self, batch: &CommitBatch) {
        if self.by_collection.is_empty() {
            return;
        }
        for (env, collection) in &batch.reconfigured {
            self.reauthorize(env, collection);
        }
        let mut touched: Vec<(String, String)> = Vec::new();
        for change in &batch.changes {
            let key = (change.env.clone(), change.collection.clone());
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        let afters: Vec<Option<Arc<Value>>> = batch
            .changes
            .iter()
            .map(|c| c.after.clone().map(Arc::new))
            .collect();
        for (change, after) in batch.changes.iter().zip(&afters) {
            if let Some(after) = after {
                self.interned
                    .remember(&change.env, &change.collection, after);
            }
        }
        let mut versions = Versions::default();
        let mut updates = SharedUpdates::default();
        let mut texts = EventTexts::default();
        let mut request_id = String::new();
        // Frames per socket, sent together once the whole commit is processed.
        let mut outbox: HashMap<u64, (Arc<Conn>, Vec<String>)> = HashMap::new();
        for key in touched {
            let Some(query_ids) = self.by_collection.get(&key) else {
                continue;
            };
            let changes: Vec<(&DocChange, Option<&Arc<Value>>)> = batch
                .changes
                .iter()
                .zip(&afters)
                .filter(|(c, _)| c.env == key.0 && c.collection == key.1)
                .map(|(c, a)| (c, a.as_ref()))
                .collect();
            for query_id in query_ids {
                let Some(entry) = self.sessions.get_mut(query_id) else {
                    continue;
                };
                let session = &mut entry.session;
                if batch.seq <= session.seen_commit {
                    continue;
                }
                session.seen_commit = batch.seq;
                let found = updates.apply(session, |session| {
                    let database = &self.database;
                    let mut refill =
                        |spec: &WatchSpec| Self::read_window(database, spec).map(|w| w.0);
                    let mut found: Vec<Change> = Vec::new();
                    for (change, after) in &changes {
                        found.extend(session.apply(
                            &change.id,
                            change.before.is_some(),
                            *after,
                            change.replaced,
                            &mut refill,
                            &mut versions,
                        ));
                    }
                    found
                });
                if found.is_empty() {
                    continue;
                }
                session.current_event += 1;
                let id = session.current_event;
                let events = texts.events(found, id);
                if let Some(attached) = &entry.attached {
                    self.next_push += 1;
                    request_id.clear();
                    request_id.push_str("srv-");
                    request_id.push_str(itoa::Buffer::new().format(self.next_push));
                    let frame = event_frame(
                        &attached.watch_id_json,
                        &request_id,
                        "NEXT_EVENT",
                        query_id,
                        id,
                        events,
                    );
                    outbox
                        .entry(attached.conn.id)
                        .or_insert_with(|| (attached.conn.clone(), Vec::new()))
                        .1
                        .push(frame);
                }
                session.log_events(id, events);
            }
        }
        for (conn, frames) in outbox.into_values() {
            conn.send_all(frames);
        }
    }
}

/// The window updates of one commit. Watches of one query that share a window (see
/// `Dispatcher::peers`) come to the same new window and changes: the first of them computes them, the
/// others take them. Keyed by the addresses of the spec and the window the update starts from; the table
/// holds both, so an address cannot be reused while it lives (one commit). It holds the window weakly: a
/// window only one watch holds is still changed without copying it.
#[derive(Default)]
struct SharedUpdates {
    updates: HashMap<(usize, usize), SharedUpdate>,
}

struct SharedUpdate {
    _from: (Arc<WatchSpec>, Weak<Vec<Arc<Value>>>),
    window: Window,
    changes: Vec<Change>,
}

impl SharedUpdates {
    /// The changes of this commit for `session` (its window updated), made by `compute` unless a
    /// watch with the same spec and window made them already.
    fn apply(
        &mut self,
        session: &mut Session,
        compute: impl FnOnce(&mut Session) -> Vec<Change>,
    ) -> &[Change] {
        let key = (
            Arc::as_ptr(&session.spec) as usize,
            Arc::as_ptr(&session.window) as usize,
        );
        let update = self.updates.entry(key).or_insert_with(|| {
            let from = (session.spec.clone(), Arc::downgrade(&session.window));
            let changes = compute(session);
            SharedUpdate {
                _from: from,
                window: session.window.clone(),
                changes,
            }
        });
        session.window = update.window.clone();
        &update.changes
    }
}

/// The event texts of one commit. Watches that report the same change under the same event id share
/// one text (and one copy in their resume logs); each document's text is made once, whatever the number
/// of watches it goes to. Documents and field changes are keyed by address: the table holds them, so
/// an address cannot be reused while it lives (one commit).
#[derive(Default)]
struct EventTexts {
    docs: HashMap<usize, (Arc<Value>, String)>,
    events: HashMap<EventKey, (Change, Arc<str>)>,
    /// The last watch's changes and their texts: watches of one query, the usual case, come one after
    /// the other with the same changes, found here without hashing anything.
    previous: Option<PreviousEvents>,
}

struct PreviousEvents {
    id: u64,
    changes: Vec<Change>,
    texts: Vec<Arc<str>>,
}

#[derive(PartialEq, Eq, Hash)]
struct EventKey {
    id: u64,
    data_type: &'static str,
    queue_type: &'static str,
    doc: usize,
    fields: usize,
    doc_id: String,
}

/// Whether two changes make the same event text (the same versions by address, as [`EventKey`]).
fn same_event(a: &Change, b: &Change) -> bool {
    a.data_type == b.data_type
        && a.queue_type == b.queue_type
        && a.doc_id == b.doc_id
        && a.doc.as_ref().map(Arc::as_ptr) == b.doc.as_ref().map(Arc::as_ptr)
        && a.fields.as_ref().map(Arc::as_ptr) == b.fields.as_ref().map(Arc::as_ptr)
}

impl EventTexts {
    /// The texts of the changes one commit makes to a watch, under its event id `id`.
    fn events(&mut self, found: &[Change], id: u64) -> &[Arc<str>] {
        let same_as_previous = self.previous.as_ref().is_some_and(|previous| {
            previous.id == id
                && previous.changes.len() == found.len()
                && previous
                    .changes
                    .iter()
                    .zip(found)
                    .all(|(a, b)| same_event(a, b))
        });
        if !same_as_previous {
            let texts = found.iter().map(|c| self.event(c, id)).collect();
            self.previous = Some(PreviousEvents {
                id,
                changes: found.to_vec(),
                texts,
            });
        }
        self.previous
            .as_ref()
            .map_or(&[], |previous| &previous.texts)
    }

    /// The text of `change` under event id `id` (the same object as [`Change::to_event`]).
    fn event(&mut self, change: &Change, id: u64) -> Arc<str> {
        let key = EventKey {
            id,
            data_type: change.data_type,
            queue_type: change.queue_type,
            doc: change.doc.as_ref().map_or(0, |d| Arc::as_ptr(d) as usize),
            fields: change
                .fields
                .as_ref()
                .map_or(0, |f| Arc::as_ptr(f) as usize),
            doc_id: change.doc_id.to_string(),
        };
        if let Some((_, text)) = self.events.get(&key) {
            return text.clone();
        }
        let doc_text = match &change.doc {
            Some(doc) => {
                &self
                    .docs
                    .entry(Arc::as_ptr(doc) as usize)
                    .or_insert_with(|| (doc.clone(), json_string(&doc.to_string())))
                    .1
            }
            None => "\"\"",
        };
        let fields = change.fields.as_ref().map_or("", |f| f.wire.as_str());
        let mut out = String::with_capacity(96 + key.doc_id.len() + doc_text.len() + fields.len());
        out.push_str("{\"ID\":");
        out.push_str(itoa::Buffer::new().format(id));
        out.push_str(",\"DataType\":\"");
        out.push_str(change.data_type);
        out.push_str("\",\"QueueType\":\"");
        out.push_str(change.queue_type);
        out.push_str("\",\"DocID\":");
        out.push_str(&key.doc_id);
        out.push_str(",\"Doc\":");
        out.push_str(doc_text);
        out.push_str(fields);
        out.push('}');
        let text: Arc<str> = Arc::from(out);
        self.events.insert(key, (change.clone(), text.clone()));
        text
    }
}

fn string_field(data: &Value, name: &str) -> Result<String, WatchError> {
    match data.get(name) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value.clone()),
        _ => Err(WatchError::new(
            codes::INVALID_PARAM,
            format!("msgData.{name} must be a non-empty string"),
        )),
    }
}

fn query_id_invalid(query_id: &str) -> WatchError {
    WatchError::new(
        "QUERYID_INVALID_ERROR",
        format!("watch {query_id} is unknown or expired: start a new watch"),
    )
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Counter for connection ids.
pub static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_frames_are_the_protocol_objects() {
        let doc = Arc::new(json!({"_id": "a\"b", "n": 1, "when": {"$date": 5}}));
        let changes = [
            Change {
                data_type: "add",
                queue_type: "enqueue",
                doc_id: json!("a\"b"),
                doc: Some(doc.clone()),
                fields: None,
            },
            Change {
                data_type: "update",
                queue_type: "update",
                doc_id: json!("a\"b"),
                doc: None,
                fields: Some(FieldChanges::between(
                    &json!({"_id": "a\"b", "n": 0, "gone": 1}),
                    &doc,
                )),
            },
        ];
        let mut texts = EventTexts::default();
        let events: Vec<Arc<str>> = changes
            .iter()
            .map(|change| {
                let text = texts.event(change, 7);
                assert_eq!(
                    serde_json::from_str::<Value>(&text).unwrap(),
                    change.to_event(7)
                );
                text
            })
            .collect();
        let frame: Value = serde_json::from_str(&event_frame(
            &json_string("w\"1"),
            "srv-1",
            "NEXT_EVENT",
            "q-1",
            7,
            &events,
        ))
        .unwrap();
        assert_eq!(
            frame,
            json!({"watchId": "w\"1", "requestId": "srv-1", "msgType": "NEXT_EVENT",
                   "msgData": {"queryID": "q-1", "currEvent": 7,
                               "events": [changes[0].to_event(7), changes[1].to_event(7)]}})
        );
    }

    #[test]
    fn watches_with_the_same_changes_share_their_event_texts() {
        let doc = Arc::new(json!({"_id": "a", "n": 1}));
        let change = |doc: &Arc<Value>, doc_id: &str| Change {
            data_type: "add",
            queue_type: "enqueue",
            doc_id: json!(doc_id),
            doc: Some(doc.clone()),
            fields: None,
        };
        let mut texts = EventTexts::default();
        let first = texts.events(&[change(&doc, "a")], 3).to_vec();
        // The next watch with the same changes (the memo of the previous one) …
        let same = texts.events(&[change(&doc, "a")], 3).to_vec();
        assert!(Arc::ptr_eq(&first[0], &same[0]));
        // … and one after a watch with other changes (the table) get the same text.
        let other = texts.events(&[change(&doc, "b")], 3).to_vec();
        assert_eq!(
            serde_json::from_str::<Value>(&other[0]).unwrap()["DocID"],
            "b"
        );
        let again = texts.events(&[change(&doc, "a")], 3).to_vec();
        assert!(Arc::ptr_eq(&first[0], &again[0]));
        // Another event id, or an equal document at another address, is another text.
        let later = texts.events(&[change(&doc, "a")], 4).to_vec();
        assert_eq!(
            serde_json::from_str::<Value>(&later[0]).unwrap(),
            change(&doc, "a").to_event(4)
        );
        let copy = Arc::new((*doc).clone());
        let separate = texts.events(&[change(&copy, "a")], 3).to_vec();
        assert!(!Arc::ptr_eq(&first[0], &separate[0]));
        assert_eq!(*first[0], *separate[0]);
    }

    type Batches = Arc<std::sync::Mutex<Vec<Arc<CommitBatch>>>>;

    /// A dispatcher on a fresh store with collection `room` (`READONLY`) holding `{_id: "d<n>", n}`
    /// for n in 0..3, the commit batches the store publishes, and the documents' seqs.
    fn dispatcher() -> (tempfile::TempDir, Dispatcher, Batches, Vec<i64>) {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::open(&crate::config::Config::new(dir.path(), dir.path())).unwrap();
        let batches: Batches = Arc::default();
        let sink = batches.clone();
        database
            .store()
            .set_change_listener(Arc::new(move |b| sink.lock().unwrap().push(b)));
        let seqs = database
            .store()
            .write(|t| {
                let meta = t.create_collection("e", "room", &json!("READONLY"), &[], 0)?;
                (0..3)
                    .map(|n| t.insert(&meta, &json!({"_id": format!("d{n}"), "n": n})))
                    .collect()
            })
            .unwrap();
        let dispatcher = Dispatcher::new(database);
        (dir, dispatcher, batches, seqs)
    }

    #[test]
    fn watches_of_one_query_share_their_window_and_its_updates() {
        let (_dir, mut d, batches, seqs) = dispatcher();
        let (conn, mut frames, _close) = Conn::new(1, usize::MAX / 2);
        let user = WsUser {
            env: "e".into(),
            uid: "u".into(),
            openid: "o".into(),
        };
        let watch = |d: &mut Dispatcher, watch_id: &str, query: &str| {
            d.init(&WatchRequest {
                conn: conn.clone(),
                user: user.clone(),
                watch_id: watch_id.into(),
                request_id: "r".into(),
                data: json!({"envId": "e", "collName": "room", "query": query}),
            })
            .unwrap();
        };
        watch(&mut d, "a", "{}");
        watch(&mut d, "b", "{\"n\":{\"$gte\":1}}");
        watch(&mut d, "c", "{}");
        let session = |d: &Dispatcher, query_id: &str| {
            let session = &d.sessions[query_id].session;
            (session.spec.clone(), session.window.clone())
        };
        let shared = |d: &Dispatcher| {
            let (a, c, b) = (session(d, "q-1"), session(d, "q-3"), session(d, "q-2"));
            Arc::ptr_eq(&a.0, &c.0)
                && Arc::ptr_eq(&a.1, &c.1)
                && !Arc::ptr_eq(&a.0, &b.0)
                && !Arc::ptr_eq(&a.1, &b.1)
        };
        assert!(shared(&d));
        while frames.try_recv().is_ok() {}

        let meta = d
            .database
            .store()
            .read(|t| t.collection("e", "room"))
            .unwrap();
        d.database
            .store()
            .write(|t| t.replace(&meta, seqs[0], &json!({"_id": "d0", "n": 5})))
            .unwrap();
        for batch in batches.lock().unwrap().drain(..) {
            d.publish(&batch);
        }
        // Still one window for a and c (updated once), and every watch got its event.
        assert!(shared(&d));
        assert_eq!(session(&d, "q-1").1.len(), 3);
        assert_eq!(session(&d, "q-2").1.len(), 3);
        let mut pushed = Vec::new();
        while let Ok(batch) = frames.try_recv() {
            pushed.extend(batch);
        }
        let pushed: Vec<Value> = pushed
            .iter()
            .map(|f| serde_json::from_str(f).unwrap())
            .collect();
        let kinds: Vec<(&str, &str)> = pushed
            .iter()
            .map(|f| {
                let event = &f["msgData"]["events"][0];
                (
                    f["watchId"].as_str().unwrap(),
                    event["QueueType"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(kinds, [("a", "update"), ("b", "enqueue"), ("c", "update")]);
    }

    #[test]
    fn a_window_only_one_watch_holds_is_updated_in_place() {
        let spec = Arc::new(WatchSpec {
            env: "e".into(),
            collection: "c".into(),
            matcher: Matcher::new(&json!({})).unwrap(),
            query: json!({}),
            order: WatchSpec::order_from(&[]),
            limit: None,
            check_each: None,
        });
        let docs: Vec<Arc<Value>> = (0..100)
            .map(|n| Arc::new(json!({"_id": format!("d{n}"), "n": n})))
            .collect();
        let mut session = Session::new(spec, Arc::new(docs), 0);
        let buffer = session.window.as_ptr();
        let after = Arc::new(json!({"_id": "d7", "n": 70}));
        let mut versions = Versions::default();
        let changes = SharedUpdates::default()
            .apply(&mut session, |session| {
                session.apply(
                    &json!("d7"),
                    true,
                    Some(&after),
                    false,
                    &mut |_| unreachable!(),
                    &mut versions,
                )
            })
            .to_vec();
        assert_eq!(changes.len(), 1);
        assert!(Arc::ptr_eq(&session.window[7], &after));
        assert_eq!(session.window.as_ptr(), buffer);
    }
}
