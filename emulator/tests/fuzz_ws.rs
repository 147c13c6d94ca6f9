//! Fuzzing the realtime WebSocket (`/ws`, the frames `handle_frame` reads) on stable Rust with the driver
//! of engine/tests/fuzzing: P4 frames (LOGIN, INIT_WATCH, REBUILD_WATCH, CHECK_LAST, CLOSE_WATCH, PING)
//! with mutated fields, random JSON, mutated bytes, deep nesting, frames near and over the 1 MiB limit,
//! and binary frames, sent on a socket signed in with `auth.wsWebSign` + LOGIN and on one that never
//! logged in. After every input the socket must still answer a PING with its PONG (only a frame over the
//! size limit may end it), every non-object text frame and every binary frame gets an ERROR frame, and
//! after the run the server still serves HTTP. `FUZZ_SECONDS` sets the budget.

mod common;
#[path = "../../engine/tests/fuzzing/mod.rs"]
mod fuzzing;

use std::cell::RefCell;
use std::time::Duration;

use cloud_emulator::realtime::MAX_CLIENT_FRAME_BYTES;
use common::{start_default, TestServer};
use futures_util::{SinkExt, StreamExt};
use fuzzing::{bytes_from, fuzz, json_value, text};
use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const ENV: &str = "e";
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, Clone)]
enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Input {
    signed_in: bool,
    frame: Frame,
}

/// The frames the SDK sends, as templates for mutation.
fn templates(sign: &str) -> Vec<Value> {
    let watch = json!({"envId": ENV, "collName": "c", "query": "{\"a\":{\"$gt\":1}}", "limit": 5,
                       "orderBy": {"a": "asc"}});
    vec![
        json!({"msgType": "LOGIN", "requestId": "1", "msgData": {"envId": ENV, "accessToken": "", "referrer": "web"},
               "exMsgData": {"runtime": "web", "signStr": sign, "secretVersion": 1}}),
        json!({"msgType": "INIT_WATCH", "requestId": "2", "watchId": "w1", "msgData": watch}),
        json!({"msgType": "REBUILD_WATCH", "requestId": "3", "watchId": "w1",
               "msgData": {"envId": ENV, "collName": "c", "queryID": "q", "eventID": 3}}),
        json!({"msgType": "CHECK_LAST", "requestId": "4", "watchId": "w1",
               "msgData": {"queryID": "q", "eventID": 0}}),
        json!({"msgType": "CLOSE_WATCH", "requestId": "5", "watchId": "w1", "msgData": null}),
        json!({"msgType": "PING", "requestId": "6"}),
    ]
}

/// Fields a mutation replaces: top-level keys and the ones `handle_frame` and the watch code read.
const PATHS: &[&[&str]] = &[
    &["msgType"],
    &["requestId"],
    &["watchId"],
    &["msgData"],
    &["exMsgData"],
    &["exMsgData", "signStr"],
    &["msgData", "envId"],
    &["msgData", "collName"],
    &["msgData", "query"],
    &["msgData", "limit"],
    &["msgData", "orderBy"],
    &["msgData", "queryID"],
    &["msgData", "eventID"],
];

fn set_path(value: &mut Value, path: &[&str], new: Value) {
    let (last, parents) = path.split_last().unwrap();
    let mut at = value;
    for key in parents {
        if !at.get(*key).is_some_and(Value::is_object) {
            at[*key] = json!({});
        }
        at = &mut at[*key];
    }
    at[*last] = new;
}

fn inputs(sign: &str) -> impl Strategy<Value = Input> {
    let seeds = templates(sign);
    let seed_bytes = seeds.iter().map(|v| v.to_string().into_bytes()).collect();
    // json_value() is mostly nested; the fields that want a string also get plain scalars of every type.
    let field = prop_oneof![
        json_value(),
        text().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool)],
    ];
    let mutated = (
        prop::sample::select(seeds),
        prop::collection::vec((prop::sample::select(PATHS), field), 1..4),
    )
        .prop_map(|(mut frame, edits)| {
            for (path, value) in edits {
                set_path(&mut frame, path, value);
            }
            Frame::Text(frame.to_string())
        });
    // Deep nesting and long strings, up to a little over the frame limit.
    let huge = prop_oneof![
        (1usize..50_000).prop_map(|depth| Frame::Text(format!(
            "{{\"msgType\":\"INIT_WATCH\",\"watchId\":\"w\",\"msgData\":{}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        ))),
        (1usize..(MAX_CLIENT_FRAME_BYTES + 4096)).prop_map(|len| Frame::Text(
            json!({"msgType": "INIT_WATCH", "watchId": "w", "requestId": "h",
                   "msgData": {"envId": ENV, "collName": "c", "query": "x".repeat(len.saturating_sub(90))}})
            .to_string()
        )),
    ];
    let frame = prop_oneof![
        4 => mutated,
        2 => json_value().prop_map(|v| Frame::Text(v.to_string())),
        2 => bytes_from(seed_bytes).prop_map(|b| Frame::Text(String::from_utf8_lossy(&b).into_owned())),
        1 => huge,
        1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(Frame::Binary),
    ];
    (any::<bool>(), frame).prop_map(|(signed_in, frame)| Input { signed_in, frame })
}

async fn sign(server: &TestServer) -> Value {
    let token = server.access_token(ENV).await;
    let answer = server
        .web(
            ENV,
            json!({"action": "auth.wsWebSign", "runtime": "web", "access_token": token, "env": ENV}),
        )
        .await;
    assert!(answer.get("code").is_none(), "{answer}");
    answer["data"].clone()
}

/// A socket of its own, signed in with a fresh `auth.wsWebSign` + LOGIN when `signed_in`.
async fn connect(server: &TestServer, signed_in: bool) -> Socket {
    let sign = sign(server).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(sign["wsUrl"].as_str().unwrap())
        .await
        .expect("the emulator accepts a socket");
    if signed_in {
        let login = json!({"msgType": "LOGIN", "requestId": "login", "msgData": {"envId": ENV},
                           "exMsgData": {"runtime": "web", "signStr": sign["signStr"], "secretVersion": 1}});
        socket.send(Message::text(login.to_string())).await.unwrap();
        let answer = next_frame(&mut socket).await.expect("LOGIN is answered");
        assert_eq!(answer["msgType"], "LOGIN_RES", "{answer}");
    }
    socket
}

/// The next text frame as JSON; `None` once the socket is closed.
async fn next_frame(socket: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
            Err(_) => panic!("no frame from the emulator in 5 s"),
            Ok(Some(Ok(Message::Text(text)))) => {
                return Some(serde_json::from_str(text.as_str()).expect("frames are JSON"))
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

#[test]
fn fuzz_ws_frames() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(start_default());
    let sign_str = runtime.block_on(sign(&server))["signStr"]
        .as_str()
        .unwrap()
        .to_owned();
    // One socket per kind, reopened only after a frame over the limit ends it.
    let sockets: [RefCell<Option<Socket>>; 2] = Default::default();
    let ping = json!({"msgType": "PING", "requestId": "fuzz-ping"}).to_string();
    fuzz("ws_frames", inputs(&sign_str), |input| {
        runtime.block_on(async {
            let slot = &sockets[usize::from(input.signed_in)];
            let kept = slot.borrow_mut().take();
            let mut socket = match kept {
                Some(socket) => socket,
                None => connect(&server, input.signed_in).await,
            };
            let (message, len, wants_error) = match &input.frame {
                Frame::Text(text) => (
                    Message::text(text.clone()),
                    text.len(),
                    !matches!(serde_json::from_str::<Value>(text), Ok(Value::Object(_))),
                ),
                Frame::Binary(bytes) => (Message::binary(bytes.clone()), bytes.len(), true),
            };
            let sent = socket.send(message).await.is_ok()
                && socket.send(Message::text(ping.clone())).await.is_ok();
            let mut saw_error = false;
            let mut ponged = false;
            // Everything the frame caused comes before the PONG: the socket answers in order.
            if sent {
                while let Some(frame) = next_frame(&mut socket).await {
                    if frame["msgType"] == "PONG" && frame["requestId"] == "fuzz-ping" {
                        ponged = true;
                        break;
                    }
                    saw_error |= frame["msgType"] == "ERROR";
                }
            }
            if len > MAX_CLIENT_FRAME_BYTES {
                return; // the emulator may end the socket; the next input opens a new one
            }
            assert!(ponged, "the socket answers PING after a {len}-byte frame");
            assert!(
                !wants_error || saw_error,
                "an ERROR frame for a frame that is not a JSON object"
            );
            *slot.borrow_mut() = Some(socket);
        });
    });
    let answer = runtime.block_on(server.web(ENV, json!({"action": "nope"})));
    assert_eq!(answer["code"], "INVALID_ACTION", "the server still serves");
    drop(sockets);
    runtime.block_on(server.stop());
}
