//! Realtime `watch()` over a real WebSocket on a real server (127.0.0.1:0): `auth.wsWebSign`, LOGIN,
//! INIT_WATCH and the events of writes from clients, the admin token and functions; `set()` as `replace`;
//! permissions;
//! `limit` windows; resume with REBUILD_WATCH after the drop-every-socket hook while writes continue;
//! the slow-consumer bound; the Host/Origin checks of the upgrade.

mod common;

use std::time::Duration;

use common::{config_in, start_in, write_function, TestServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const ENV: &str = "envw";
const STEP: Duration = Duration::from_secs(10);

struct Emu {
    server: TestServer,
    admin: String,
}

impl Emu {
    async fn start_with(configure: impl FnOnce(&mut cloud_emulator::Config)) -> Emu {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(&dir);
        configure(&mut config);
        let admin = config.admin_token.clone();
        Emu {
            server: start_in(dir, config).await,
            admin,
        }
    }

    async fn start() -> Emu {
        Emu::start_with(|_| {}).await
    }

    async fn collection(&self, name: &str, rules: Value) {
        let response = self
            .server
            .post("/admin/v1/database/collections")
            .header("x-admin-token", &self.admin)
            .json(&json!({"env": ENV, "name": name, "rules": rules}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    async fn db(&self, token: &str, mut body: Value) -> Value {
        body["access_token"] = json!(token);
        body["env"] = json!(ENV);
        let answer = self.server.web(ENV, body.clone()).await;
        assert!(answer.get("code").is_none(), "{body} → {answer}");
        answer
    }

    async fn add(&self, token: &str, collection: &str, data: Value) -> String {
        self.db(
            token,
            json!({"action": "database.addDocument", "collectionName": collection, "data": data}),
        )
        .await["data"]["_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn update(&self, token: &str, collection: &str, id: &str, data: Value) {
        self.db(
            token,
            json!({"action": "database.updateDocument", "collectionName": collection, "queryType": "DOC",
                   "query": {"_id": id}, "data": data, "merge": true}),
        )
        .await;
    }

    async fn remove(&self, token: &str, collection: &str, id: &str) {
        self.db(
            token,
            json!({"action": "database.deleteDocument", "collectionName": collection, "queryType": "DOC",
                   "query": {"_id": id}}),
        )
        .await;
    }

    async fn sign(&self, token: &str) -> Value {
        let answer = self
            .server
            .web(
                ENV,
                json!({"action": "auth.wsWebSign", "runtime": "web", "access_token": token, "env": ENV}),
            )
            .await;
        assert!(answer.get("code").is_none(), "{answer}");
        answer["data"].clone()
    }

    async fn drop_sockets(&self) -> u64 {
        let response = self
            .server
            .post("/admin/v1/realtime/drop-connections")
            .header("x-admin-token", &self.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["dropped"]
            .as_u64()
            .unwrap()
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A signed-in socket of one user.
struct Client {
    socket: Socket,
    next: u64,
}

impl Client {
    async fn connect(emu: &Emu, token: &str) -> Client {
        let sign = emu.sign(token).await;
        let url = sign["wsUrl"].as_str().unwrap();
        let port = emu.server.server.addr().port();
        assert_eq!(url, format!("ws://127.0.0.1:{port}/ws"));
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut client = Client { socket, next: 0 };
        let request_id = client
            .send(json!({"msgType": "LOGIN", "msgData": {"envId": ENV, "accessToken": "", "referrer": "web",
                "sdkVersion": "", "dataVersion": ""},
                "exMsgData": {"runtime": "web", "signStr": sign["signStr"], "secretVersion": 1}}))
            .await;
        let answer = client.recv().await;
        assert_eq!(answer["msgType"], "LOGIN_RES", "{answer}");
        assert_eq!(answer["requestId"], request_id);
        assert_eq!(answer["msgData"]["envId"], ENV);
        client
    }

    /// Sends a frame with a fresh requestId; returns it.
    async fn send(&mut self, mut frame: Value) -> String {
        self.next += 1;
        let request_id = format!("req-{}", self.next);
        frame["requestId"] = json!(request_id);
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
        request_id
    }

    async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(STEP, self.socket.next())
                .await
                .expect("a frame within 10 s")
                .expect("socket open")
                .expect("no socket error");
            if let Message::Text(text) = message {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    }

    /// No frame arrives within `wait`.
    async fn silent(&mut self, wait: Duration) {
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(wait, self.socket.next()).await
        {
            panic!("unexpected frame {text}");
        }
    }

    async fn init(&mut self, watch_id: &str, msg_data: Value) -> Value {
        let request_id = self
            .send(json!({"watchId": watch_id, "msgType": "INIT_WATCH", "msgData": msg_data}))
            .await;
        let answer = self.recv().await;
        assert_eq!(answer["requestId"], request_id, "{answer}");
        assert_eq!(answer["watchId"], watch_id);
        answer
    }
}

fn events(frame: &Value) -> Vec<Value> {
    frame["msgData"]["events"].as_array().unwrap().clone()
}

/// `(DataType, QueueType, DocID)` of each event.
fn kinds(frame: &Value) -> Vec<(String, String, String)> {
    events(frame)
        .iter()
        .map(|e| {
            (
                e["DataType"].as_str().unwrap().to_string(),
                e["QueueType"].as_str().unwrap().to_string(),
                e["DocID"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn kind(data_type: &str, queue_type: &str, id: &str) -> (String, String, String) {
    (data_type.into(), queue_type.into(), id.into())
}

fn doc_of(event: &Value) -> Value {
    serde_json::from_str(event["Doc"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn watch_sees_adds_updates_and_removes_from_every_writer() {
    let dir = tempfile::tempdir().unwrap();
    write_function(
        &dir,
        "addTodo",
        r#"const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = async (event) => {
  const db = cloud.database()
  const res = await db.collection('todos').add({ data: { title: event.title, done: false, from: 'function' } })
  return res._id
}"#,
    );
    let config = config_in(&dir);
    let admin = config.admin_token.clone();
    let emu = Emu {
        server: start_in(dir, config).await,
        admin,
    };
    emu.collection("todos", json!("READONLY")).await;
    let alice = emu.server.access_token(ENV).await;
    let bob = emu.server.access_token(ENV).await;
    let first = emu
        .add(
            &alice,
            "todos",
            json!({"title": "a", "done": false, "n": 1}),
        )
        .await;
    emu.add(
        &alice,
        "todos",
        json!({"title": "done already", "done": true}),
    )
    .await;

    let mut watcher = Client::connect(&emu, &bob).await;
    let init = watcher
        .init(
            "w1",
            json!({"envId": ENV, "collName": "todos", "query": "{\"done\":false}", "orderBy": {}}),
        )
        .await;
    assert_eq!(init["msgType"], "INIT_EVENT");
    assert_eq!(init["msgData"]["currEvent"], 1);
    assert_eq!(kinds(&init), vec![kind("init", "init", &first)]);
    let init_event = &events(&init)[0];
    assert_eq!(init_event["ID"], 1);
    assert_eq!(doc_of(init_event)["title"], "a");

    // An update by the SDK: fields only.
    emu.update(
        &alice,
        "todos",
        &first,
        json!({"$set": {"n": 2, "sub": {"x": 1}}}),
    )
    .await;
    let next = watcher.recv().await;
    assert_eq!(next["msgType"], "NEXT_EVENT");
    assert_eq!(next["watchId"], "w1");
    assert_eq!(next["msgData"]["currEvent"], 2);
    assert_eq!(kinds(&next), vec![kind("update", "update", &first)]);
    let event = &events(&next)[0];
    assert_eq!(event["ID"], 2);
    assert_eq!(event["Doc"], "");
    let updated: Value = serde_json::from_str(event["UpdatedFields"].as_str().unwrap()).unwrap();
    assert_eq!(updated, json!({"n": 2, "sub": {"x": 1}}));
    assert_eq!(event["removedFields"], "[]");

    // Removing a field and a nested change.
    emu.update(
        &alice,
        "todos",
        &first,
        json!({"$set": {"sub.x": 5}, "$unset": {"n": ""}}),
    )
    .await;
    let next = watcher.recv().await;
    let event = &events(&next)[0];
    assert_eq!(event["ID"], 3);
    let updated: Value = serde_json::from_str(event["UpdatedFields"].as_str().unwrap()).unwrap();
    assert_eq!(updated, json!({"sub.x": 5}));
    assert_eq!(event["removedFields"], "[\"n\"]");

    // A write from a cloud function (wx-server-sdk, admin rights) reaches the watcher.
    let answer = emu
        .server
        .invoke(ENV, &alice, "addTodo", json!({"title": "from fn"}))
        .await;
    assert!(answer.get("code").is_none(), "{answer}");
    let next = watcher.recv().await;
    let (data_type, queue_type, id) = kinds(&next).remove(0);
    assert_eq!(
        (data_type.as_str(), queue_type.as_str()),
        ("add", "enqueue")
    );
    let doc = doc_of(&events(&next)[0]);
    assert_eq!(doc["_id"], id);
    assert_eq!(doc["from"], "function");
    assert_eq!(next["msgData"]["currEvent"], 4);

    // An admin-token write (the admin endpoint's way into the database).
    let admin_add = emu
        .add(
            &emu.admin.clone(),
            "todos",
            json!({"title": "by admin", "done": false}),
        )
        .await;
    let next = watcher.recv().await;
    assert_eq!(kinds(&next), vec![kind("add", "enqueue", &admin_add)]);

    // Leaving the query is a dequeue, coming back an enqueue with the full document.
    emu.update(&alice, "todos", &first, json!({"$set": {"done": true}}))
        .await;
    let next = watcher.recv().await;
    assert_eq!(kinds(&next), vec![kind("update", "dequeue", &first)]);
    emu.update(&alice, "todos", &first, json!({"$set": {"done": false}}))
        .await;
    let next = watcher.recv().await;
    assert_eq!(kinds(&next), vec![kind("update", "enqueue", &first)]);
    assert_eq!(doc_of(&events(&next)[0])["sub"], json!({"x": 5}));

    // A delete.
    emu.remove(&alice, "todos", &first).await;
    let next = watcher.recv().await;
    assert_eq!(kinds(&next), vec![kind("remove", "dequeue", &first)]);
    assert_eq!(next["msgData"]["currEvent"], 8);

    // A write outside the query, and a no-op write, send nothing.
    emu.add(&alice, "todos", json!({"title": "x", "done": true}))
        .await;
    emu.update(
        &alice,
        "todos",
        &admin_add,
        json!({"$set": {"title": "by admin"}}),
    )
    .await;
    watcher.silent(Duration::from_millis(300)).await;

    // CHECK_LAST reports the current id; PING gets PONG.
    let request_id = watcher
        .send(json!({"watchId": "w1", "msgType": "CHECK_LAST", "msgData": {"queryID": init["msgData"]["queryID"], "eventID": 8}}))
        .await;
    let answer = watcher.recv().await;
    assert_eq!(answer["msgType"], "CHECK_EVENT");
    assert_eq!(answer["requestId"], request_id);
    assert_eq!(answer["msgData"]["currEvent"], 8);
    let request_id = watcher
        .send(json!({"msgType": "PING", "msgData": null}))
        .await;
    let answer = watcher.recv().await;
    assert_eq!(
        (answer["msgType"].as_str(), answer["requestId"].as_str()),
        (Some("PONG"), Some(request_id.as_str()))
    );

    // CLOSE_WATCH stops the events.
    watcher
        .send(json!({"watchId": "w1", "msgType": "CLOSE_WATCH", "msgData": null}))
        .await;
    emu.add(
        &alice,
        "todos",
        json!({"title": "after close", "done": false}),
    )
    .await;
    watcher.silent(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn one_commit_is_one_event_id_and_doc_watches_see_only_their_document() {
    let emu = Emu::start().await;
    emu.collection("items", json!("READONLY")).await;
    let user = emu.server.access_token(ENV).await;
    let a = emu.add(&user, "items", json!({"tag": "x", "n": 1})).await;
    let b = emu.add(&user, "items", json!({"tag": "x", "n": 2})).await;
    let mut client = Client::connect(&emu, &user).await;
    client
        .init(
            "all",
            json!({"envId": ENV, "collName": "items", "query": "{\"tag\":\"x\"}"}),
        )
        .await;
    let doc_init = client
        .init(
            "doc",
            json!({"envId": ENV, "collName": "items", "query": format!("{{\"_id\":\"{b}\"}}")}),
        )
        .await;
    assert_eq!(kinds(&doc_init), vec![kind("init", "init", &b)]);
    // One multi-document update: one event id with both changes on "all", one change on "doc".
    emu.db(
        &user,
        json!({"action": "database.updateDocument", "collectionName": "items", "queryType": "WHERE",
               "query": {"tag": "x"}, "data": {"$inc": {"n": 10}}, "multi": true, "merge": true}),
    )
    .await;
    let mut frames = [client.recv().await, client.recv().await];
    frames.sort_by_key(|f| f["watchId"].as_str().unwrap().to_string());
    let (all, doc) = (&frames[0], &frames[1]);
    assert_eq!(all["watchId"], "all");
    let all_events = events(all);
    assert_eq!(all_events.len(), 2);
    assert!(all_events.iter().all(|e| e["ID"] == 2));
    let mut ids: Vec<&str> = all_events
        .iter()
        .map(|e| e["DocID"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![a.as_str(), b.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(kinds(doc), vec![kind("update", "update", &b)]);
}

#[tokio::test]
async fn private_documents_never_reach_other_users() {
    let emu = Emu::start().await;
    emu.collection("notes", json!("PRIVATE")).await;
    let alice = emu.server.access_token(ENV).await;
    let bob = emu.server.access_token(ENV).await;
    emu.add(&alice, "notes", json!({"text": "alice 1", "public": true}))
        .await;
    let mut bob_socket = Client::connect(&emu, &bob).await;
    // Even a query that names every document only returns Bob's own.
    let init = bob_socket
        .init(
            "b",
            json!({"envId": ENV, "collName": "notes", "query": "{\"public\":true}"}),
        )
        .await;
    assert!(events(&init).is_empty(), "{init}");
    let mut alice_socket = Client::connect(&emu, &alice).await;
    let init = alice_socket
        .init(
            "a",
            json!({"envId": ENV, "collName": "notes", "query": "{}"}),
        )
        .await;
    assert_eq!(events(&init).len(), 1);
    let alice_doc = emu
        .add(&alice, "notes", json!({"text": "alice 2", "public": true}))
        .await;
    let bob_doc = emu
        .add(&bob, "notes", json!({"text": "bob 1", "public": true}))
        .await;
    // Alice sees her add; Bob only his.
    assert_eq!(
        kinds(&alice_socket.recv().await),
        vec![kind("add", "enqueue", &alice_doc)]
    );
    assert_eq!(
        kinds(&bob_socket.recv().await),
        vec![kind("add", "enqueue", &bob_doc)]
    );
    bob_socket.silent(Duration::from_millis(300)).await;
    alice_socket.silent(Duration::from_millis(100)).await;

    // A collection nobody may read from a client refuses the watch.
    emu.collection("secrets", json!("ADMINONLY")).await;
    let answer = bob_socket
        .init(
            "s",
            json!({"envId": ENV, "collName": "secrets", "query": "{}"}),
        )
        .await;
    assert_eq!(answer["msgType"], "ERROR");
    assert_eq!(answer["msgData"]["code"], "COLLECTION_PERMISSION_DENIED");
    let answer = bob_socket
        .init(
            "m",
            json!({"envId": ENV, "collName": "missing", "query": "{}"}),
        )
        .await;
    assert_eq!(answer["msgData"]["code"], "DATABASE_COLLECTION_NOT_EXIST");
    let answer = bob_socket
        .init(
            "q",
            json!({"envId": ENV, "collName": "notes", "query": "{not json"}),
        )
        .await;
    assert_eq!(answer["msgData"]["code"], "INVALID_PARAM");
}

#[tokio::test]
async fn limit_windows_enqueue_and_dequeue() {
    let emu = Emu::start().await;
    emu.collection("scores", json!("READONLY")).await;
    let user = emu.server.access_token(ENV).await;
    let mut ids = Vec::new();
    for n in [5, 3, 9, 7] {
        ids.push(emu.add(&user, "scores", json!({"n": n})).await);
    }
    let (five, three, nine, seven) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let mut client = Client::connect(&emu, &user).await;
    let init = client
        .init("top", json!({"envId": ENV, "collName": "scores", "query": "{}", "limit": 2, "orderBy": {"n": "desc"}}))
        .await;
    assert_eq!(
        kinds(&init),
        vec![kind("init", "init", nine), kind("init", "init", seven)]
    );
    // A new top score pushes 7 out.
    let ten = emu.add(&user, "scores", json!({"n": 10})).await;
    let next = client.recv().await;
    assert_eq!(
        kinds(&next),
        vec![
            kind("limit", "dequeue", seven),
            kind("add", "enqueue", &ten)
        ]
    );
    assert!(events(&next).iter().all(|e| e["ID"] == 2));
    // Deleting a member pulls 7 back in from the store.
    emu.remove(&user, "scores", nine).await;
    let next = client.recv().await;
    assert_eq!(
        kinds(&next),
        vec![
            kind("remove", "dequeue", nine),
            kind("limit", "enqueue", seven)
        ]
    );
    assert_eq!(doc_of(&events(&next)[1])["n"], 7);
    // A member dropping below the window swaps with the next one.
    emu.update(&user, "scores", &ten, json!({"$set": {"n": 1}}))
        .await;
    let next = client.recv().await;
    assert_eq!(
        kinds(&next),
        vec![
            kind("update", "dequeue", &ten),
            kind("limit", "enqueue", five)
        ]
    );
    // Changes below the window are silent.
    emu.update(&user, "scores", three, json!({"$set": {"n": 4}}))
        .await;
    client.silent(Duration::from_millis(300)).await;
}

/// Collects one watch's events from `frames` into `(id, DocID, n)` and checks ids are consecutive.
fn absorb(seen: &mut Vec<(u64, String, i64)>, frame: &Value) {
    for event in events(frame) {
        let id = event["ID"].as_u64().unwrap();
        if let Some((last, _, _)) = seen.last() {
            assert!(id == *last || id == *last + 1, "id {id} after {last}");
        }
        let n = if event["Doc"].as_str().unwrap().is_empty() {
            let fields: Value =
                serde_json::from_str(event["UpdatedFields"].as_str().unwrap()).unwrap();
            fields["n"].as_i64().unwrap()
        } else {
            doc_of(&event)["n"].as_i64().unwrap()
        };
        seen.push((id, event["DocID"].as_str().unwrap().to_string(), n));
    }
}

#[tokio::test]
async fn dropped_sockets_resume_with_every_event_exactly_once() {
    let emu = Emu::start().await;
    emu.collection("counter", json!("READONLY")).await;
    let user = emu.server.access_token(ENV).await;
    let id = emu.add(&user, "counter", json!({"n": 0})).await;
    let mut client = Client::connect(&emu, &user).await;
    let init = client
        .init(
            "c",
            json!({"envId": ENV, "collName": "counter", "query": "{}"}),
        )
        .await;
    let query_id = init["msgData"]["queryID"].as_str().unwrap().to_string();
    let mut seen: Vec<(u64, String, i64)> = Vec::new();
    absorb(&mut seen, &init);

    // Writes continue in the background while every socket is dropped twice.
    let writer = {
        let url = emu.server.url.clone();
        let user = user.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let api = common::Api::new(url);
            for n in 1..=60 {
                let answer = api
                    .web(ENV, json!({"action": "database.updateDocument", "collectionName": "counter",
                        "queryType": "DOC", "query": {"_id": id}, "data": {"$set": {"n": n}}, "merge": true,
                        "access_token": user, "env": ENV}))
                    .await;
                assert!(answer.get("code").is_none(), "{answer}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    for _ in 0..2 {
        // Read a few events, then lose the socket.
        for _ in 0..5 {
            let frame = client.recv().await;
            absorb(&mut seen, &frame);
        }
        assert!(emu.drop_sockets().await >= 1);
        // The old socket ends without a close frame.
        let ended = tokio::time::timeout(STEP, async {
            loop {
                match client.socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        absorb(&mut seen, &serde_json::from_str(text.as_str()).unwrap())
                    }
                    Some(Ok(Message::Close(_))) => panic!("a dropped socket sends no close frame"),
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => break,
                }
            }
        })
        .await;
        assert!(ended.is_ok());
        client = Client::connect(&emu, &user).await;
        let last = seen.last().unwrap().0;
        let request_id = client
            .send(json!({"watchId": "c", "msgType": "REBUILD_WATCH",
                "msgData": {"envId": ENV, "collName": "counter", "queryID": query_id, "eventID": last}}))
            .await;
        let answer = client.recv().await;
        assert_eq!(answer["msgType"], "NEXT_EVENT", "{answer}");
        assert_eq!(answer["requestId"], request_id);
        absorb(&mut seen, &answer);
    }
    writer.await.unwrap();
    while seen.last().unwrap().2 < 60 {
        let frame = client.recv().await;
        absorb(&mut seen, &frame);
    }
    // Exactly the committed sequence: init 0, then every n once, in order.
    let values: Vec<i64> = seen.iter().map(|(_, _, n)| *n).collect();
    assert_eq!(values, (0..=60).collect::<Vec<_>>());
    client.silent(Duration::from_millis(200)).await;

    // Another user cannot take the watch over; an unknown id is refused.
    let other = emu.server.access_token(ENV).await;
    let mut intruder = Client::connect(&emu, &other).await;
    intruder
        .send(json!({"watchId": "x", "msgType": "REBUILD_WATCH",
            "msgData": {"envId": ENV, "collName": "counter", "queryID": query_id, "eventID": 1}}))
        .await;
    let answer = intruder.recv().await;
    assert_eq!(answer["msgData"]["code"], "QUERYID_INVALID_ERROR");
}

#[tokio::test]
async fn a_client_too_far_behind_gets_a_fresh_snapshot() {
    let emu = Emu::start().await;
    emu.collection("log", json!("READONLY")).await;
    let user = emu.server.access_token(ENV).await;
    let id = emu.add(&user, "log", json!({"n": 0})).await;
    let mut client = Client::connect(&emu, &user).await;
    let init = client
        .init("l", json!({"envId": ENV, "collName": "log", "query": "{}"}))
        .await;
    let query_id = init["msgData"]["queryID"].as_str().unwrap().to_string();
    // More events than the resume log keeps (1024 ids), each consumed off the socket.
    let commits = 1100;
    for n in 1..=commits {
        emu.update(&user, "log", &id, json!({"$set": {"n": n}}))
            .await;
    }
    for _ in 0..commits {
        client.recv().await;
    }
    let request_id = client
        .send(json!({"watchId": "l", "msgType": "REBUILD_WATCH",
            "msgData": {"envId": ENV, "collName": "log", "queryID": query_id, "eventID": 1}}))
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["requestId"], request_id);
    assert_eq!(answer["msgType"], "NEXT_EVENT");
    assert_eq!(kinds(&answer), vec![kind("init", "init", &id)]);
    assert_eq!(answer["msgData"]["currEvent"], 2);
    assert_eq!(events(&answer)[0]["ID"], 2);
    assert_eq!(doc_of(&events(&answer)[0])["n"], commits as i64);
    // The watch continues from there.
    emu.update(&user, "log", &id, json!({"$set": {"n": -1}}))
        .await;
    let next = client.recv().await;
    assert_eq!(events(&next)[0]["ID"], 3);
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_and_resumes() {
    let emu = Emu::start_with(|config| config.ws_send_queue_bytes = 64 * 1024).await;
    emu.collection("blobs", json!("READONLY")).await;
    let user = emu.server.access_token(ENV).await;
    let mut client = Client::connect(&emu, &user).await;
    let init = client
        .init(
            "b",
            json!({"envId": ENV, "collName": "blobs", "query": "{}"}),
        )
        .await;
    let query_id = init["msgData"]["queryID"].as_str().unwrap().to_string();
    // The client stops reading; 400 documents of 32 KB (12.8 MB) overflow the loopback socket buffers
    // and then the 64 KB send queue.
    let payload = "x".repeat(32 * 1024);
    let docs = 400;
    for n in 0..docs {
        emu.add(&user, "blobs", json!({"n": n, "payload": payload}))
            .await;
    }
    // Reading now: some events, then close 1013 (Try Again Later).
    let mut seen = 1u64;
    let code = loop {
        match tokio::time::timeout(STEP, client.socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                seen = frame["msgData"]["currEvent"].as_u64().unwrap();
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            // The server gives an unread close frame a bounded grace; a client that reads nothing for
            // longer (this one waits for 400 adds: seconds on a loaded machine) is cut off without it.
            None | Some(Err(_)) => break None,
        }
    };
    assert!(code.is_none() || code == Some(1013), "closed with {code:?}");
    assert!(seen < docs + 1, "the queue was cut short at {seen}");
    // Resuming brings the client up to date: the missed events are more than the 4 MiB the watch
    // keeps, so the answer is a fresh snapshot of all documents.
    let mut client = Client::connect(&emu, &user).await;
    client
        .send(json!({"watchId": "b", "msgType": "REBUILD_WATCH",
            "msgData": {"envId": ENV, "collName": "blobs", "queryID": query_id, "eventID": seen}}))
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["msgType"], "NEXT_EVENT");
    let events = events(&answer);
    assert_eq!(events.len() as u64, docs);
    assert!(events
        .iter()
        .all(|e| e["DataType"] == "init" && e["ID"] == seen + 1));
    assert_eq!(answer["msgData"]["currEvent"], seen + 1);
    // And it stays live.
    emu.add(&user, "blobs", json!({"n": -1})).await;
    let next = client.recv().await;
    assert_eq!(next["msgData"]["currEvent"], seen + 2);
}

#[tokio::test]
async fn sockets_need_our_host_origin_and_sign() {
    let emu = Emu::start().await;
    let port = emu.server.server.addr().port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let mut request = url.clone().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await;
    assert!(refused.is_err(), "a foreign origin gets no socket");
    let mut request = url.clone().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("host", "rebind.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
    let mut request = url.clone().into_client_request().unwrap();
    request.headers_mut().insert(
        "origin",
        format!("http://localhost:{port}").parse().unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut client = Client { socket, next: 0 };
    // Watch frames before LOGIN, a forged sign, an access token as the sign.
    let answer = client
        .init("w", json!({"envId": ENV, "collName": "c", "query": "{}"}))
        .await;
    assert_eq!(answer["msgData"]["code"], "CHECK_LOGIN_FAILED");
    let token = emu.server.access_token(ENV).await;
    for (sign, code) in [
        (json!("forged.sign"), "SIGN_INVALID_ERROR"),
        (json!(token), "SIGN_INVALID_ERROR"),
        (json!(""), "SIGN_PARAM_INVALID"),
    ] {
        client
            .send(json!({"msgType": "LOGIN", "msgData": {"envId": ENV}, "exMsgData": {"signStr": sign}}))
            .await;
        let answer = client.recv().await;
        assert_eq!(answer["msgType"], "ERROR");
        assert_eq!(answer["msgData"]["code"], code);
    }
    // wsWebSign itself needs a valid access token.
    let answer = emu
        .server
        .web(
            ENV,
            json!({"action": "auth.wsWebSign", "runtime": "web", "access_token": "nope"}),
        )
        .await;
    assert_eq!(answer["code"], "CHECK_LOGIN_FAILED");
    // Garbage frames get an ERROR and the socket stays usable.
    client.socket.send(Message::text("not json")).await.unwrap();
    assert_eq!(client.recv().await["msgType"], "ERROR");
    client
        .send(json!({"msgType": "PING", "msgData": null}))
        .await;
    assert_eq!(client.recv().await["msgType"], "PONG");
}

#[tokio::test]
async fn closed_watches_are_gone_and_a_lost_socket_keeps_its_watches_for_a_resume() {
    let emu = Emu::start().await;
    emu.collection("c", json!("READONLY")).await;
    let user = emu.server.access_token(ENV).await;
    let stats = || async {
        let response = emu
            .server
            .get("/admin/v1/realtime/stats")
            .header("x-admin-token", &emu.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        (
            body["sockets"].as_u64().unwrap(),
            body["sessions"].as_u64().unwrap(),
        )
    };
    let denied = emu
        .server
        .get("/admin/v1/realtime/stats")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let mut client = Client::connect(&emu, &user).await;
    client
        .init("a", json!({"envId": ENV, "collName": "c", "query": "{}"}))
        .await;
    client
        .init("b", json!({"envId": ENV, "collName": "c", "query": "{}"}))
        .await;
    assert_eq!(stats().await, (1, 2));
    client
        .send(json!({"watchId": "a", "msgType": "CLOSE_WATCH", "msgData": null}))
        .await;
    // PING/PONG orders the CLOSE_WATCH before the stats read.
    client
        .send(json!({"msgType": "PING", "msgData": null}))
        .await;
    client.recv().await;
    assert_eq!(stats().await, (1, 1));
    client.socket.close(None).await.unwrap();
    drop(client);
    let deadline = std::time::Instant::now() + STEP;
    while stats().await != (0, 1) {
        assert!(std::time::Instant::now() < deadline, "socket not released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_rules_change_applies_to_live_watches() {
    let emu = Emu::start().await;
    emu.collection("board", json!("READONLY")).await;
    let alice = emu.server.access_token(ENV).await;
    let bob = emu.server.access_token(ENV).await;
    let alices = emu.add(&alice, "board", json!({"text": "alice"})).await;
    let bobs = emu.add(&bob, "board", json!({"text": "bob"})).await;
    let mut client = Client::connect(&emu, &bob).await;
    let init = client
        .init(
            "w",
            json!({"envId": ENV, "collName": "board", "query": "{}"}),
        )
        .await;
    assert_eq!(events(&init).len(), 2);
    // Everyone-reads becomes creator-only: Alice's document leaves Bob's result.
    emu.collection("board", json!("PRIVATE")).await;
    let next = client.recv().await;
    assert_eq!(kinds(&next), vec![kind("update", "dequeue", &alices)]);
    assert_eq!(next["msgData"]["currEvent"], 2);
    emu.add(&alice, "board", json!({"text": "alice 2"})).await;
    client.silent(Duration::from_millis(200)).await;
    // And back: both of Alice's documents enter it.
    emu.collection("board", json!("READONLY")).await;
    let next = client.recv().await;
    let entered = kinds(&next);
    assert_eq!(entered.len(), 2);
    assert!(entered
        .iter()
        .all(|(d, q, id)| d == "update" && q == "enqueue" && id != &bobs));
    // A rule that denies reading ends the watch.
    emu.collection("board", json!("ADMINONLY")).await;
    let answer = client.recv().await;
    assert_eq!(answer["msgType"], "ERROR");
    assert_eq!(answer["watchId"], "w");
    assert_eq!(answer["msgData"]["code"], "COLLECTION_PERMISSION_DENIED");
    emu.add(&emu.admin.clone(), "board", json!({"text": "admin"}))
        .await;
    client.silent(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_set_document_is_a_replace_with_the_whole_new_document() {
    let dir = tempfile::tempdir().unwrap();
    write_function(
        &dir,
        "setNote",
        r#"const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = async (event) => {
  const db = cloud.database()
  if (event.inTransaction) {
    await db.runTransaction(async (t) => {
      await t.collection('notes').doc(event.id).set({ data: event.data })
    })
  } else {
    await db.collection('notes').doc(event.id).set({ data: event.data })
  }
  return true
}"#,
    );
    let config = config_in(&dir);
    let admin = config.admin_token.clone();
    let emu = Emu {
        server: start_in(dir, config).await,
        admin,
    };
    emu.collection("notes", json!("READONLY")).await;
    let alice = emu.server.access_token(ENV).await;
    let bob = emu.server.access_token(ENV).await;
    let id = emu
        .add(
            &alice,
            "notes",
            json!({"title": "a", "done": false, "n": 1, "sub": {"x": 1}}),
        )
        .await;
    let mut watcher = Client::connect(&emu, &bob).await;
    let init = watcher
        .init(
            "w1",
            json!({"envId": ENV, "collName": "notes", "query": "{\"done\":false}", "orderBy": {}}),
        )
        .await;
    assert_eq!(kinds(&init), vec![kind("init", "init", &id)]);
    let openid = doc_of(&events(&init)[0])["_openid"].clone();

    // `doc(id).set({data})` by the client SDK: one `replace` carrying the whole new document.
    let set = |data: Value| {
        json!({"action": "database.updateDocument", "collectionName": "notes", "queryType": "DOC",
               "query": {"_id": id}, "data": data, "merge": false})
    };
    emu.db(
        &alice,
        set(json!({"title": "b", "done": false, "tags": ["t"]})),
    )
    .await;
    let next = watcher.recv().await;
    assert_eq!(next["msgData"]["currEvent"], 2);
    assert_eq!(kinds(&next), vec![kind("replace", "update", &id)]);
    let event = &events(&next)[0];
    assert_eq!(
        doc_of(event),
        json!({"_id": id, "title": "b", "done": false, "tags": ["t"], "_openid": openid})
    );
    assert!(event.get("UpdatedFields").is_none(), "{event}");
    assert!(event.get("removedFields").is_none(), "{event}");

    // Update operators are still an `update` with the changed fields only.
    emu.update(&alice, "notes", &id, json!({"$set": {"n": 2}}))
        .await;
    let next = watcher.recv().await;
    assert_eq!(kinds(&next), vec![kind("update", "update", &id)]);
    let event = &events(&next)[0];
    assert_eq!(event["Doc"], "");
    let updated: Value = serde_json::from_str(event["UpdatedFields"].as_str().unwrap()).unwrap();
    assert_eq!(updated, json!({"n": 2}));

    // A set() that takes the document out of the query leaves it as any change does; a set() that
    // brings it back enters it with the full document.
    emu.db(&alice, set(json!({"title": "c", "done": true})))
        .await;
    let next = watcher.recv().await;
    assert_eq!(kinds(&next), vec![kind("update", "dequeue", &id)]);
    emu.db(&alice, set(json!({"title": "d", "done": false})))
        .await;
    let next = watcher.recv().await;
    assert_eq!(kinds(&next), vec![kind("update", "enqueue", &id)]);
    assert_eq!(doc_of(&events(&next)[0])["title"], "d");
    // A set() that changes nothing sends nothing.
    emu.db(&alice, set(json!({"title": "d", "done": false})))
        .await;
    watcher.silent(Duration::from_millis(300)).await;

    // set() from a cloud function (the admin protocol), outside and inside a transaction (last: the
    // transaction's set drops `_openid`, so alice could no longer write the document).
    for in_transaction in [false, true] {
        let title = format!("fn {in_transaction}");
        let answer = emu
            .server
            .invoke(
                ENV,
                &alice,
                "setNote",
                json!({"id": id, "inTransaction": in_transaction, "data": {"title": title, "done": false}}),
            )
            .await;
        assert!(answer.get("code").is_none(), "{answer}");
        let next = watcher.recv().await;
        assert_eq!(
            kinds(&next),
            vec![kind("replace", "update", &id)],
            "{in_transaction}"
        );
        let doc = doc_of(&events(&next)[0]);
        assert_eq!(doc["_id"], id);
        assert_eq!(doc["title"], title);
        assert!(doc.get("n").is_none() && doc.get("tags").is_none(), "{doc}");
    }
}
