//! Durability: the built binary is killed with SIGKILL during a stream of acknowledged adds and updates;
//! after a restart on the same data dir every acknowledged write is there.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{emulator, listening_url, signal, wait_with_deadline};
use serde_json::{json, Value};

const ENV: &str = "envc";

struct Running {
    child: Child,
    url: String,
    admin: String,
}

fn spawn(dir: &tempfile::TempDir) -> Running {
    let mut child = emulator(dir)
        .args([
            "start",
            "--port",
            "0",
            "--data-dir",
            "data",
            "--functions",
            "fns",
            "--env",
            ENV,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let url = listening_url(&mut child);
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut admin = String::new();
    let mut lines = stderr.lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(token) = line.strip_prefix("admin token: ") {
            admin = token.to_string();
            break;
        }
    }
    assert_eq!(admin.len(), 48, "admin token printed on stderr");
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running { child, url, admin }
}

async fn call(client: &reqwest::Client, run_url: &str, admin: &str, body: Value) -> Option<Value> {
    let mut body = body;
    body["access_token"] = json!(admin);
    let response = client
        .post(format!("{run_url}/web?env={ENV}"))
        .json(&body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let answer: Value = response.json().await.ok()?;
    answer.get("code").is_none().then_some(answer)
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = spawn(&dir);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    call(
        &client,
        &running.url,
        &running.admin,
        json!({"action": "database.addCollection", "collectionName": "crash"}),
    )
    .await
    .expect("collection created");
    // Four writers: each adds w<k>-<i>, and updates its previous document to n = 1.
    let acked_adds = Arc::new(Mutex::new(Vec::new()));
    let acked_updates = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (client, url, admin) = (client.clone(), running.url.clone(), running.admin.clone());
        let (adds, updates) = (Arc::clone(&acked_adds), Arc::clone(&acked_updates));
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            loop {
                let id = format!("w{writer}-{i}");
                let add = json!({"action": "database.addDocument", "collectionName": "crash",
                                 "data": {"_id": id, "n": 0, "payload": "x".repeat(200)}});
                match call(&client, &url, &admin, add).await {
                    Some(_) => adds.lock().unwrap().push(id.clone()),
                    None => break,
                }
                if i > 0 {
                    let previous = format!("w{writer}-{}", i - 1);
                    let update = json!({"action": "database.updateDocument", "collectionName": "crash",
                                        "queryType": "DOC", "query": {"_id": previous},
                                        "data": {"$set": {"n": 1}}, "merge": true});
                    match call(&client, &url, &admin, update).await {
                        Some(answer) if answer["data"]["updated"] == 1 => {
                            updates.lock().unwrap().push(previous)
                        }
                        Some(answer) => panic!("update not applied: {answer}"),
                        None => break,
                    }
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep_until(deadline.into()).await;
    running.child.kill().unwrap(); // SIGKILL, mid-stream.
    running.child.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let adds = acked_adds.lock().unwrap().clone();
    let updates = acked_updates.lock().unwrap().clone();
    assert!(
        adds.len() > 50,
        "enough writes were acknowledged: {}",
        adds.len()
    );

    let restarted = spawn(&dir);
    let mut stored = std::collections::HashMap::new();
    let mut offset = 0;
    loop {
        let page = call(
            &client,
            &restarted.url,
            &restarted.admin,
            json!({"action": "database.queryDocument", "collectionName": "crash", "query": {},
                   "offset": offset, "limit": 1000}),
        )
        .await
        .expect("query after restart");
        let list = page["data"]["list"].as_array().unwrap().clone();
        if list.is_empty() {
            break;
        }
        offset += list.len();
        for doc in list {
            stored.insert(
                doc["_id"].as_str().unwrap().to_string(),
                doc["n"].as_i64().unwrap(),
            );
        }
    }
    for id in &adds {
        assert!(stored.contains_key(id), "acknowledged add {id} lost");
    }
    for id in &updates {
        assert_eq!(stored[id], 1, "acknowledged update of {id} lost");
    }
    eprintln!(
        "{} acknowledged adds and {} updates survived kill -9 ({} documents stored)",
        adds.len(),
        updates.len(),
        stored.len()
    );
    let mut restarted = restarted;
    signal(&restarted.child, libc::SIGTERM);
    assert!(wait_with_deadline(&mut restarted.child, Duration::from_secs(20)).success());
}
