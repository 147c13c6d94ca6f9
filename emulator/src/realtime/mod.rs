//! Realtime `watch()` (protocol P4, docs/realtime.md): `auth.wsWebSign` hands out a short-lived sign
//! and the socket URL; `GET /ws` on the same port upgrades to a WebSocket (behind the same Host and
//! Origin checks as HTTP) that speaks the JSON frames of the official realtime server.
//!
//! * [`session`]: one watch's window and the events a committed change makes for it (pure).
//! * [`hub`]: the dispatcher thread owning every session, fed by the store's change feed.
//! * this module: the socket tasks, the sign, and the test hook that drops every socket.

pub mod hub;
pub mod session;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use cloud_protocol::codes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

use crate::auth::tokens::{TokenError, TokenKind};
use crate::auth::{self, Identity};
use crate::database::Database;
use crate::error::{json_response, new_request_id, ApiError};
use crate::server::AppState;
use crate::web::WebRequest;
use hub::{error_frame, frame, CloseReason, Command, Conn, WatchError, WatchRequest, WsUser};

/// Lifetime of a sign from `auth.wsWebSign` (the SDKs cache one for 60 s).
pub const WS_SIGN_TTL_SECS: u64 = 600;
/// Largest frame a client may send.
pub const MAX_CLIENT_FRAME_BYTES: usize = 1024 * 1024;
/// Default bound of a socket's send queue (`--ws-send-queue-bytes`).
pub const DEFAULT_SEND_QUEUE_BYTES: usize = 8 * 1024 * 1024;
/// Most frames written to a socket before one flush.
const WRITE_BATCH: usize = 256;
/// How long a closing socket may take to send its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The realtime service: the dispatcher's command channel and the open sockets; cheap to clone.
#[derive(Clone)]
pub struct Realtime {
    inner: Arc<RealtimeInner>,
}

struct RealtimeInner {
    commands: Mutex<Sender<Command>>,
    connections: Mutex<HashMap<u64, Arc<Conn>>>,
    send_queue_bytes: usize,
}

impl Realtime {
    /// Starts the dispatcher on `database`'s change feed.
    pub fn start(database: Database, send_queue_bytes: usize) -> Realtime {
        Realtime {
            inner: Arc::new(RealtimeInner {
                commands: Mutex::new(hub::spawn(database)),
                connections: Mutex::new(HashMap::new()),
                send_queue_bytes,
            }),
        }
    }

    fn command(&self, command: Command) {
        let _ = self
            .inner
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(command);
    }

    /// Closes every open socket abruptly (no close frame), as a network failure would; the watches
    /// stay on the server for `REBUILD_WATCH`. Returns how many sockets were dropped.
    pub fn drop_connections(&self) -> usize {
        let connections = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for conn in connections.values() {
            conn.close(CloseReason::Dropped);
        }
        connections.len()
    }

    /// Drops every socket and stops the dispatcher (when the server stops).
    pub fn shutdown(&self) {
        self.drop_connections();
        self.command(Command::Shutdown);
    }

    /// Open sockets and live watch sessions (attached or waiting for a resume).
    pub fn stats(&self) -> (usize, usize) {
        let sockets = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        let (tx, rx) = std::sync::mpsc::channel();
        self.command(Command::Stats(tx));
        let sessions = rx.recv_timeout(Duration::from_secs(5)).unwrap_or(0);
        (sockets, sessions)
    }
}

/// The realtime routes: the socket and the admin hooks.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ws", get(upgrade))
        .route(
            "/admin/v1/realtime/drop-connections",
            post(drop_connections),
        )
        .route("/admin/v1/realtime/stats", get(stats))
}

/// `auth.wsWebSign`: a sign for the socket's `LOGIN` (a short-lived token of the caller) and the
/// socket URL on the host the client reached.
pub fn ws_web_sign(state: &AppState, request: &WebRequest<'_>) -> Result<Value, ApiError> {
    let identity = request.authenticate(state)?;
    let (sign, _) = state.signer().issue(
        TokenKind::WsSign,
        &identity.env,
        &identity.uid,
        &identity.scope,
        &identity.sid,
        WS_SIGN_TTL_SECS,
    );
    let host = request
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| format!("127.0.0.1:{}", state.port()));
    Ok(json!({
        "data": {
            "signStr": sign,
            "wsUrl": format!("ws://{host}/ws"),
            "secretVersion": 1,
            "envId": identity.env,
        }
    }))
}

fn admin_only(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get("x-admin-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| auth::bearer_token(headers));
    match token {
        Some(token) if state.database().is_admin_token(token) => Ok(()),
        _ => Err(ApiError::new(
            codes::PERMISSION_DENIED,
            "admin endpoint: missing or wrong admin token",
        )),
    }
}

/// `POST /admin/v1/realtime/drop-connections` (admin token): the test hook that drops every socket.
async fn drop_connections(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(denied) = admin_only(&state, &headers) {
        return json_response(StatusCode::FORBIDDEN, &denied.body(&new_request_id()));
    }
    let dropped = state.realtime().drop_connections();
    json_response(StatusCode::OK, &json!({ "dropped": dropped }))
}

/// `GET /admin/v1/realtime/stats` (admin token): open sockets and live watch sessions.
async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(denied) = admin_only(&state, &headers) {
        return json_response(StatusCode::FORBIDDEN, &denied.body(&new_request_id()));
    }
    let realtime = state.realtime().clone();
    let (sockets, sessions) = tokio::task::spawn_blocking(move || realtime.stats())
        .await
        .unwrap_or((0, 0));
    json_response(
        StatusCode::OK,
        &json!({ "sockets": sockets, "sessions": sessions }),
    )
}

async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_CLIENT_FRAME_BYTES)
        .on_upgrade(move |socket| serve_socket(state, socket))
}

async fn serve_socket(state: AppState, socket: WebSocket) {
    let realtime = state.realtime().clone();
    let id = hub::NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let (conn, mut out_rx, mut close_rx) = Conn::new(id, realtime.inner.send_queue_bytes);
    realtime
        .inner
        .connections
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, conn.clone());
    let (mut sink, mut stream) = socket.split();

    let writer_conn = conn.clone();
    let mut writer_close = close_rx.clone();
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                _ = writer_close.changed() => break,
                frames = out_rx.recv() => {
                    let Some(mut batch) = frames else { break };
                    // Write every frame already queued, then flush once: one commit seen by many
                    // watches on this socket costs one write, not one per watch.
                    while batch.len() < WRITE_BATCH {
                        match out_rx.try_recv() {
                            Ok(frames) => batch.extend(frames),
                            Err(_) => break,
                        }
                    }
                    let len: usize = batch.iter().map(String::len).sum();
                    let write = async {
                        for frame in batch {
                            sink.feed(Message::Text(frame.into())).await?;
                        }
                        sink.flush().await
                    };
                    let sent = tokio::select! {
                        sent = write => sent.is_ok(),
                        _ = writer_close.changed() => false,
                    };
                    writer_conn.sent(len);
                    if !sent {
                        break;
                    }
                }
            }
        }
        if *writer_close.borrow() == Some(CloseReason::Overflow) {
            let close = Message::Close(Some(CloseFrame {
                code: 1013,
                reason: "send queue full: the client reads too slowly".into(),
            }));
            let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close)).await;
        }
        // Dropping the sink (with the stream) ends the TCP connection.
        sink
    });

    let mut user: Option<WsUser> = None;
    loop {
        let message = tokio::select! {
            _ = close_rx.changed() => break,
            message = stream.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                conn.send(error_frame(
                    None,
                    "",
                    &WatchError {
                        code: codes::INVALID_PARAM.into(),
                        message: "frames must be JSON text".into(),
                    },
                ));
                continue;
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        handle_frame(&state, &realtime, &conn, &mut user, text.as_str());
    }

    realtime
        .inner
        .connections
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    realtime.command(Command::Detach(id));
    // Let an overflow close frame go out, then drop both halves.
    conn.close(CloseReason::Dropped);
    if let Ok(sink) = writer.await {
        drop(sink);
    }
    drop(stream);
}

fn handle_frame(
    state: &AppState,
    realtime: &Realtime,
    conn: &Arc<Conn>,
    user: &mut Option<WsUser>,
    text: &str,
) {
    let message: Value = match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Value::Object(map),
        _ => {
            conn.send(error_frame(
                None,
                "",
                &WatchError {
                    code: codes::INVALID_PARAM.into(),
                    message: "a frame must be a JSON object".into(),
                },
            ));
            return;
        }
    };
    let request_id = message
        .get("requestId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let watch_id = message
        .get("watchId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let msg_type = message.get("msgType").and_then(Value::as_str).unwrap_or("");
    let data = message.get("msgData").cloned().unwrap_or(Value::Null);
    let reply_error = |code: &str, text: String| {
        conn.send(error_frame(
            watch_id.as_deref(),
            &request_id,
            &WatchError {
                code: code.into(),
                message: text,
            },
        ));
    };
    match msg_type {
        "PING" => {
            conn.send(frame(watch_id.as_deref(), &request_id, "PONG", Value::Null));
        }
        "LOGIN" => match login(state, &message) {
            Ok(identity) => {
                let env = identity.env.clone();
                *user = Some(identity);
                conn.send(frame(
                    None,
                    &request_id,
                    "LOGIN_RES",
                    json!({ "envId": env }),
                ));
            }
            Err(err) => {
                conn.send(error_frame(None, &request_id, &err));
            }
        },
        "INIT_WATCH" | "REBUILD_WATCH" | "CHECK_LAST" | "CLOSE_WATCH" => {
            let Some(signed_in) = user.clone() else {
                reply_error(
                    "CHECK_LOGIN_FAILED",
                    "send LOGIN with a sign from auth.wsWebSign first".into(),
                );
                return;
            };
            let Some(watch_id) = watch_id.clone().filter(|w| !w.is_empty()) else {
                reply_error(codes::INVALID_PARAM, format!("{msg_type} needs a watchId"));
                return;
            };
            let request = |data: Value| WatchRequest {
                conn: conn.clone(),
                user: signed_in.clone(),
                watch_id: watch_id.clone(),
                request_id: request_id.clone(),
                data,
            };
            realtime.command(match msg_type {
                "INIT_WATCH" => Command::Init(request(data)),
                "REBUILD_WATCH" => Command::Rebuild(request(data)),
                "CHECK_LAST" => Command::CheckLast(request(data)),
                _ => Command::CloseWatch {
                    conn_id: conn.id,
                    watch_id,
                },
            });
        }
        other => reply_error(
            "SYS_ERR",
            format!("msgType {other:?} is not supported by the emulator"),
        ),
    }
}

/// Checks a `LOGIN` frame's sign (`exMsgData.signStr`) and env.
fn login(state: &AppState, message: &Value) -> Result<WsUser, WatchError> {
    let sign = message
        .pointer("/exMsgData/signStr")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WatchError {
            code: "SIGN_PARAM_INVALID".into(),
            message: "LOGIN needs exMsgData.signStr from auth.wsWebSign".into(),
        })?;
    let claims = state
        .signer()
        .verify(sign, TokenKind::WsSign)
        .map_err(|err| match err {
            TokenError::Expired => WatchError {
                code: "SIGN_EXPIRED_ERROR".into(),
                message: "the sign expired: call auth.wsWebSign again".into(),
            },
            TokenError::Invalid => WatchError {
                code: "SIGN_INVALID_ERROR".into(),
                message: "the sign is not one this emulator issued".into(),
            },
        })?;
    if let Some(env) = message
        .pointer("/msgData/envId")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
    {
        if env != claims.env {
            return Err(WatchError {
                code: "INVALID_ENV".into(),
                message: format!("the sign was issued for env {}, not {env}", claims.env),
            });
        }
    }
    if state.sessions().is_revoked(&claims.sid) {
        return Err(WatchError {
            code: "SIGN_INVALID_ERROR".into(),
            message: "the session was signed out: sign in again".into(),
        });
    }
    let identity = Identity {
        uid: claims.uid,
        env: claims.env,
        scope: claims.scope,
        sid: claims.sid,
    };
    Ok(WsUser {
        openid: identity.openid(state.signer()),
        env: identity.env,
        uid: identity.uid,
    })
}
