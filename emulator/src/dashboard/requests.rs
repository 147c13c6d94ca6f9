//! The request log: the last [`MAX_REQUESTS`] requests the emulator answered (its own dashboard's
//! excluded), and the change counters the dashboard's live stream pushes.
//!
//! Handlers that know more than the URL (the `/web` action, its env, user and errCode, a collection or
//! function name) put a [`RequestNote`] in the response extensions; the [`record`] middleware adds
//! method, path, status and duration. Recording costs one short lock and a counter bump per request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use crate::auth::tokens::TokenKind;
use crate::server::AppState;

/// How many requests are kept.
pub const MAX_REQUESTS: usize = 1000;
/// Largest error body read back to find its code (error bodies are small; bigger ones are skipped).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What a handler adds about a request (as a response extension).
#[derive(Debug, Clone, Default)]
pub struct RequestNote {
    /// The `/web` action, e.g. `database.queryDocument`.
    pub action: Option<String>,
    /// The env.
    pub env: Option<String>,
    /// The caller's uid.
    pub uid: Option<String>,
    /// The errCode string of a failed request.
    pub code: Option<String>,
    /// The collection, function or cloudPath the request is about.
    pub target: Option<String>,
}

/// One answered request.
#[derive(Debug, Clone, Serialize)]
pub struct RequestEntry {
    /// Increasing id.
    pub id: u64,
    /// Arrival, ms since the epoch.
    pub time: u64,
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// `/web` action, else the path.
    pub action: String,
    /// The env, when known.
    pub env: String,
    /// The caller's uid, when known.
    pub uid: String,
    /// HTTP status.
    pub status: u16,
    /// Time to the response head, in ms.
    pub duration_ms: f64,
    /// The error code (`/web` bodies, JSON error bodies), empty on success.
    pub code: String,
    /// The collection, function or file the request is about.
    pub target: String,
    /// For a database permission denial: which rule said no.
    pub rule: Option<String>,
}

/// What changed, by area: the dashboard reloads the page showing an area whose counter moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// Any request was answered.
    pub requests: u64,
    /// A database write (documents, collections, rules).
    pub database: u64,
    /// A function ran.
    pub functions: u64,
    /// A storage write.
    pub storage: u64,
    /// A sign-in, refresh or sign-out.
    pub users: u64,
}

/// The request log and the change counters.
pub struct RequestLog {
    entries: Mutex<VecDeque<Arc<RequestEntry>>>,
    next_id: std::sync::atomic::AtomicU64,
    changes: watch::Sender<Changes>,
}

impl Default for RequestLog {
    fn default() -> Self {
        RequestLog {
            entries: Mutex::new(VecDeque::with_capacity(MAX_REQUESTS)),
            next_id: std::sync::atomic::AtomicU64::new(0),
            changes: watch::channel(Changes::default()).0,
        }
    }
}

/// The area a request writes to, from its action or path (reads change nothing).
fn area_written(action: &str, method: &str) -> Option<fn(&mut Changes) -> &mut u64> {
    match action {
        "database.addDocument"
        | "database.updateDocument"
        | "database.deleteDocument"
        | "database.addCollection" => Some(|c| &mut c.database),
        "functions.invokeFunction" => Some(|c| &mut c.functions),
        "storage.batchDeleteFile" | "storage.getUploadMetadata" => Some(|c| &mut c.storage),
        action if action.starts_with("auth.") => Some(|c| &mut c.users),
        path if path.starts_with("/auth/v1/") && method == "POST" => Some(|c| &mut c.users),
        path if path.starts_with("/v1/functions/") || path.starts_with("/admin/v1/functions/") => {
            Some(|c| &mut c.functions)
        }
        path if path.starts_with("/admin/v1/database/") && method == "POST" => {
            Some(|c| &mut c.database)
        }
        // Uploads (PUT/POST to objects) and the P3 storage gateway (uploads, deletes).
        path if (path.starts_with("/cos/") && (method == "PUT" || method == "POST"))
            || path.starts_with("/v1/storages/") =>
        {
            Some(|c| &mut c.storage)
        }
        _ => None,
    }
}

impl RequestLog {
    /// Subscribes to the change counters.
    pub fn subscribe(&self) -> watch::Receiver<Changes> {
        self.changes.subscribe()
    }

    /// Bumps the counter of an area (the dashboard's own writes).
    pub fn changed(&self, area: fn(&mut Changes) -> &mut u64) {
        self.changes.send_modify(|changes| *area(changes) += 1);
    }

    fn push(&self, mut entry: RequestEntry) {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        entry.id = id;
        let area = area_written(&entry.action, &entry.method);
        {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.len() == MAX_REQUESTS {
                entries.pop_front();
            }
            entries.push_back(Arc::new(entry));
        }
        self.changes.send_modify(|changes| {
            changes.requests += 1;
            if let Some(area) = area {
                *area(changes) += 1;
            }
        });
    }

    /// Entries with an id above `after`, newest first, at most `limit`, kept by `keep`.
    pub fn recent(
        &self,
        after: u64,
        limit: usize,
        keep: impl Fn(&RequestEntry) -> bool,
    ) -> Vec<Arc<RequestEntry>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .rev()
            .take_while(|entry| entry.id > after)
            .filter(|entry| keep(entry))
            .take(limit)
            .cloned()
            .collect()
    }
}

fn now_ms() -> u64 {
    crate::functions::invocations::now_ms()
}

/// The uid of the bearer token of a request, if it has a valid one.
fn bearer_uid(state: &AppState, request: &Request) -> Option<String> {
    let token = crate::auth::bearer_token(request.headers())?;
    state
        .signer()
        .verify(token, TokenKind::Access)
        .ok()
        .map(|claims| claims.uid)
}

/// The `code` (or OAuth `error`) of a small JSON error body; the body is given back unchanged.
async fn error_code(response: Response) -> (Response, Option<String>) {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let small = axum::body::HttpBody::size_hint(response.body())
        .upper()
        .is_some_and(|size| size as usize <= MAX_ERROR_BODY);
    if !is_json || !small {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return (Response::from_parts(parts, Body::empty()), None);
    };
    let code = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
        v.get("code")
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    (Response::from_parts(parts, Body::from(bytes)), code)
}

/// Middleware: records every request but the dashboard's own (`/_/…`).
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if path == "/_" || path.starts_with("/_/") {
        return next.run(request).await;
    }
    let started = Instant::now();
    let time = now_ms();
    let method = request.method().to_string();
    // The env of routes that name it in the query (`?env=`, `/auth/v1/…?client_id=`).
    let query_env = request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| match pair.split_once('=') {
                Some(("env" | "client_id", value)) if crate::server::valid_env_id(value) => {
                    Some(value.to_string())
                }
                _ => None,
            })
    });
    let bearer = bearer_uid(&state, &request);
    let response = next.run(request).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let note = response
        .extensions()
        .get::<RequestNote>()
        .cloned()
        .unwrap_or_default();
    let status = response.status();
    let (response, code) = match note.code {
        Some(code) => (response, Some(code)),
        None if status.is_client_error() || status.is_server_error() => error_code(response).await,
        None => (response, None),
    };
    let mut entry = RequestEntry {
        id: 0,
        time,
        method,
        action: note.action.unwrap_or_else(|| path.clone()),
        path,
        env: note.env.or(query_env).unwrap_or_default(),
        uid: note.uid.or(bearer).unwrap_or_default(),
        status: status.as_u16(),
        duration_ms,
        code: code.unwrap_or_default(),
        target: note.target.unwrap_or_default(),
        rule: None,
    };
    if entry.code == cloud_protocol::codes::DATABASE_PERMISSION_DENIED && !entry.target.is_empty() {
        // Which rule said no (one indexed read, on denials only).
        entry.rule = Some(
            super::api::explain_denial(&state, &entry.env, &entry.target, &entry.action).await,
        );
    }
    state.dashboard().requests().push(entry);
    response
}
