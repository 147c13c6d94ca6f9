//! The admin protocol on `/admin` at the wire: the TC3 canonical request rebuilt exactly as in the
//! capture of the real wx-server-sdk 4.0.2 (tests/fixtures/admin/admin-capture.jsonl, run A of
//! shared/reference/captures/admin-capture.jsonl), the captured database requests replayed (re-signed
//! with this run's credentials) and answered in the captured shapes, forged and unsigned requests
//! refused, and how functions find wx-server-sdk (their own copy first, else the emulator's pinned one).

mod common;

use std::collections::HashMap;

use cloud_emulator::admin::signature::{self, Credentials, SignedRequest};
use common::{config_in, start_in, write_function, TestServer};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

fn capture() -> Vec<Value> {
    let text = include_str!("fixtures/admin/admin-capture.jsonl");
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn canonical_requests_are_rebuilt_exactly_as_captured() {
    let mut checked = 0;
    for record in capture() {
        let Some(expected) = record["canonicalRequest"].as_str() else {
            continue;
        };
        let headers = record["headers"].as_object().unwrap().clone();
        let lookup = move |name: &str| {
            headers
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let authorization = lookup("authorization").unwrap();
        let signed_headers = authorization
            .split(", ")
            .find_map(|part| part.strip_prefix("SignedHeaders="))
            .unwrap();
        let url = record["url"].as_str().unwrap();
        let (path, query) = url.split_once('?').unwrap();
        let host = lookup("host").unwrap();
        // The payload hash covers the redacted tokens, so it is taken from the capture.
        let payload_hash = expected.rsplit('\n').next().unwrap();
        let request = SignedRequest {
            method: record["method"].as_str().unwrap(),
            host: &host,
            path,
            query,
            header: &lookup,
            params: &[],
            now_secs: 0,
        };
        let block = signature::canonical_headers(signed_headers, &lookup).unwrap();
        let canonical =
            signature::canonical_request(&request, &block, signed_headers, payload_hash);
        assert_eq!(canonical, expected, "seq {}", record["seq"]);
        let timestamp: i64 = lookup("x-timestamp").unwrap().parse().unwrap();
        let to_sign =
            signature::string_to_sign(timestamp, &signature::utc_date(timestamp), &canonical);
        assert_eq!(to_sign, record["stringToSign"], "seq {}", record["seq"]);
        checked += 1;
    }
    assert_eq!(
        checked, 68,
        "every signed request of run A, the multipart openapi ones included"
    );
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Signs like @cloudbase/signature-nodejs 2.2.0 (admin-protocol.md §3), written here from the document so
/// the emulator's verifier is checked against an independent signer; `secret_key` may be wrong on purpose.
fn signed_post(
    server: &TestServer,
    secret_id: &str,
    secret_key: &str,
    query: &str,
    body: &Map<String, Value>,
    timestamp: i64,
) -> reqwest::RequestBuilder {
    let host = server.url.trim_start_matches("http://").to_string();
    let mut names: Vec<&String> = body
        .keys()
        .filter(|k| body[k.as_str()] != json!(""))
        .collect();
    names.sort_by_key(|k| k.to_ascii_lowercase());
    let mut payload = String::new();
    for name in &names {
        let value = match &body[name.as_str()] {
            Value::String(text) => text.trim().to_string(),
            other => other.to_string(),
        };
        payload.push_str(&format!("&{}={value}\r\n", name.to_ascii_lowercase()));
    }
    let signed_headers = "content-type;host;user-agent";
    let canonical = format!(
        "post\n//{host}/admin\n{query}\ncontent-type:application/json\nhost:{host}\nuser-agent:tcb-node-sdk/3.17.2\n\n{signed_headers}\n{}",
        hex_sha256(payload.as_bytes())
    );
    let date = signature::utc_date(timestamp);
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/tcb/tc3_request\n{}",
        hex_sha256(canonical.as_bytes())
    );
    let key = hmac(
        &hmac(
            &hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes()),
            b"tcb",
        ),
        b"tc3_request",
    );
    let params: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let authorization = format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{date}/tcb/tc3_request, SignedParams={}, SignedHeaders={signed_headers}, Signature={}",
        params.join(";"),
        hex::encode(hmac(&key, to_sign.as_bytes()))
    );
    server
        .post(&format!("/admin?{query}"))
        .header("content-type", "application/json")
        .header("user-agent", "tcb-node-sdk/3.17.2")
        .header("x-timestamp", timestamp.to_string())
        .header("x-signature-expires", "600")
        .header("authorization", authorization)
        .body(Value::Object(body.clone()).to_string())
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 1
}

async fn answer(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The keys of an answer (and of its `data`), the part of its shape the SDK reads.
fn shape(answer: &Value) -> (Vec<String>, Vec<String>) {
    let keys = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    (keys(answer), keys(&answer["data"]))
}

#[tokio::test]
async fn captured_database_requests_replay_with_the_captured_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(&dir);
    let credentials = Credentials::derive(&config.admin_token);
    let server = start_in(dir, config).await;
    let mut renamed: HashMap<String, String> = HashMap::new();
    let mut replayed = 0;
    for record in capture() {
        let seq = record["seq"].as_i64().unwrap();
        // The database part of the capture, before its simulated failures.
        let action = record["action"].as_str().unwrap_or("");
        if seq > 34 || !action.starts_with("database.") {
            continue;
        }
        let mut body = record["body"].as_object().unwrap().clone();
        body.insert("sessionToken".into(), json!(credentials.session_token));
        body.insert("tcb_sessionToken".into(), json!(""));
        body.insert("wxCloudApiToken".into(), json!(""));
        if seq == 2 {
            // The capture's recorder had no collections to create; the emulator needs `todos`.
            let mut create = body.clone();
            create.retain(|k, _| !matches!(k.as_str(), "data"));
            create.insert("action".into(), json!("database.addCollection"));
            let created = answer(signed_post(
                &server,
                &credentials.secret_id,
                &credentials.secret_key,
                "env=envx&seqId=s-1",
                &create,
                now_secs(),
            ))
            .await;
            assert!(created.get("code").is_none(), "{created}");
        }
        // Ids the recorder generated (transactions, documents) stand for the ones the emulator generated.
        let mut text = Value::Object(body).to_string();
        for (captured, ours) in &renamed {
            text = text.replace(captured.as_str(), ours);
        }
        let body: Map<String, Value> = serde_json::from_str(&text).unwrap();
        let got = answer(signed_post(
            &server,
            &credentials.secret_id,
            &credentials.secret_key,
            "env=envx&seqId=seqid-from-platform-1a2268c81f5_1",
            &body,
            now_secs(),
        ))
        .await;
        let expected = &record["response"]["body"];
        if seq == 8 {
            // `field({title, n, loc: false})` mixes inclusion and exclusion: MongoDB 4.4, which CloudBase
            // runs, refuses it ("Cannot do exclusion on field loc in inclusion projection"); the recorder
            // that made the capture answered every request with success.
            assert_eq!(got["code"], "INVALID_PARAM", "seq 8: {got}");
            replayed += 1;
            continue;
        }
        assert!(got.get("code").is_none(), "seq {seq} {action}: {got}");
        let (mut top, data) = shape(&got);
        let (mut expected_top, expected_data) = shape(expected);
        top.retain(|k| k != "requestId");
        expected_top.retain(|k| k != "requestId");
        assert_eq!(top, expected_top, "seq {seq} {action}: {got}");
        let extra: Vec<&String> = data
            .iter()
            .filter(|k| {
                !expected_data.contains(k) && !matches!(k.as_str(), "total" | "limit" | "offset")
            })
            .collect();
        assert!(
            extra.is_empty() && expected_data.iter().all(|k| data.contains(k)),
            "seq {seq} {action}: {got} vs {expected}"
        );
        if let Some(list) = got["data"]["list"].as_array() {
            for item in list {
                let text = item.as_str().expect("documents go back as EJSON text");
                let doc: Value = serde_json::from_str(text).unwrap();
                assert!(doc.is_object(), "{text}");
            }
        }
        if action == "database.startTransaction" {
            let captured = expected["transactionId"].as_str().unwrap().to_string();
            renamed.insert(captured, got["transactionId"].as_str().unwrap().to_string());
        }
        if let (Some(captured), Some(ours)) = (
            expected["data"]["insertedIds"].as_array(),
            got["data"]["insertedIds"].as_array(),
        ) {
            for (captured, ours) in captured.iter().zip(ours) {
                renamed.insert(
                    captured.as_str().unwrap().to_string(),
                    ours.as_str().unwrap().to_string(),
                );
            }
        }
        if seq == 5 {
            // The document added at seq 2, in canonical EJSON with the SDK's types.
            let doc: Value =
                serde_json::from_str(got["data"]["list"][0].as_str().unwrap()).unwrap();
            assert_eq!(doc["n"], json!({"$numberInt": "1"}));
            assert_eq!(doc["price"], json!({"$numberDouble": "1.5"}));
            assert_eq!(doc["big"], json!({"$numberLong": "1099511627776"}));
            assert_eq!(
                doc["createdAt"],
                json!({"$date": {"$numberLong": "1704164645678"}})
            );
            assert_eq!(
                doc["jsPattern"],
                json!({"$regularExpression": {"pattern": "xy+z", "options": "i"}}),
                "JavaScript's g flag is not echoed back (the SDK could not read the document)"
            );
            let updated: i64 = doc["updatedAt"]["$date"]["$numberLong"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let due: i64 = doc["dueAt"]["$date"]["$numberLong"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                due - updated,
                3_600_000,
                "serverDate({{offset}}) resolved on the server: {doc}"
            );
        }
        replayed += 1;
    }
    assert_eq!(replayed, 34);
    // What the replay left: the rolled-back transactions (seq 29-34) changed nothing after seq 28.
    let list = answer(signed_post(
        &server,
        &credentials.secret_id,
        &credentials.secret_key,
        "env=envx&seqId=x-1",
        json!({"action": "database.getDocument", "envName": "envx", "collectionName": "todos",
               "queryType": "DOC", "query": "{\"_id\":\"fixed-id-1\"}", "multi": false,
               "sessionToken": credentials.session_token})
        .as_object()
        .unwrap(),
        now_secs(),
    ))
    .await;
    let doc: Value = serde_json::from_str(list["data"]["list"][0].as_str().unwrap()).unwrap();
    assert_eq!(
        doc["n"],
        json!({"$numberInt": "5"}),
        "set n:2 then inc 3 committed; set 3 rolled back"
    );
    server.stop().await;
}

#[tokio::test]
async fn unsigned_forged_and_stale_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(&dir);
    let credentials = Credentials::derive(&config.admin_token);
    let server = start_in(dir, config).await;
    let body = json!({"action": "database.addCollection", "envName": "e1", "collectionName": "c",
                      "sessionToken": credentials.session_token});
    let body = body.as_object().unwrap();
    let query = "env=e1&seqId=s-1";
    let cases = [
        (
            "unsigned",
            server
                .post(&format!("/admin?{query}"))
                .body(Value::Object(body.clone()).to_string()),
        ),
        (
            "another key",
            signed_post(
                &server,
                &credentials.secret_id,
                &"0".repeat(40),
                query,
                body,
                now_secs(),
            ),
        ),
        (
            "another id",
            signed_post(
                &server,
                "AKIDsomeoneelse",
                &credentials.secret_key,
                query,
                body,
                now_secs(),
            ),
        ),
        (
            "stale",
            signed_post(
                &server,
                &credentials.secret_id,
                &credentials.secret_key,
                query,
                body,
                now_secs() - 3600,
            ),
        ),
    ];
    for (name, request) in cases {
        let got = answer(request).await;
        assert_eq!(got["code"], "SIGN_PARAM_INVALID", "{name}: {got}");
    }
    let mut wrong_session = body.clone();
    wrong_session.insert("sessionToken".into(), json!("stolen"));
    let got = answer(signed_post(
        &server,
        &credentials.secret_id,
        &credentials.secret_key,
        query,
        &wrong_session,
        now_secs(),
    ))
    .await;
    assert_eq!(got["code"], "SIGN_PARAM_INVALID", "{got}");
    let got = answer(signed_post(
        &server,
        &credentials.secret_id,
        &credentials.secret_key,
        "env=e2&seqId=s-1",
        body,
        now_secs(),
    ))
    .await;
    assert_eq!(
        got["code"], "INVALID_ENV",
        "?env= and envName must agree: {got}"
    );
    // Signed properly, the same request works, and nothing above had created the collection.
    let got = answer(signed_post(
        &server,
        &credentials.secret_id,
        &credentials.secret_key,
        query,
        body,
        now_secs(),
    ))
    .await;
    assert!(
        got.get("code").is_none() && got["requestId"].is_string(),
        "{got}"
    );
    let mut transaction = Map::new();
    transaction.insert("action".into(), json!("database.startTransaction"));
    transaction.insert("envName".into(), json!("e1"));
    transaction.insert("sessionToken".into(), json!(credentials.session_token));
    let got = answer(signed_post(
        &server,
        &credentials.secret_id,
        &credentials.secret_key,
        query,
        &transaction,
        now_secs(),
    ))
    .await;
    assert!(
        got["transactionId"].as_str().unwrap().starts_with("txn-"),
        "at the top level: {got}"
    );
    server.stop().await;
}

const WHICH_SDK: &str = r#"
const cloud = require('wx-server-sdk');
exports.main = async () => ({ marker: cloud.marker || null, version: require('wx-server-sdk/package.json').version });
"#;

#[tokio::test]
async fn functions_use_their_own_wx_server_sdk_first_then_the_pinned_one() {
    let dir = tempfile::tempdir().unwrap();
    let own = write_function(&dir, "own", WHICH_SDK);
    let sdk = own.join("node_modules/wx-server-sdk");
    std::fs::create_dir_all(&sdk).unwrap();
    std::fs::write(sdk.join("index.js"), "exports.marker = 'own copy';").unwrap();
    std::fs::write(
        sdk.join("package.json"),
        r#"{"name":"wx-server-sdk","version":"0.0.1-own"}"#,
    )
    .unwrap();
    write_function(&dir, "pinned", WHICH_SDK);
    let config = config_in(&dir);
    let server = start_in(dir, config).await;
    let token = server.access_token("e1").await;
    let result = |answer: Value| -> Value {
        assert!(answer.get("code").is_none(), "{answer}");
        serde_json::from_str(answer["data"]["response_data"].as_str().unwrap()).unwrap()
    };
    let got = result(server.invoke("e1", &token, "own", json!({})).await);
    assert_eq!(got, json!({"marker": "own copy", "version": "0.0.1-own"}));
    let got = result(server.invoke("e1", &token, "pinned", json!({})).await);
    assert_eq!(got, json!({"marker": null, "version": "4.0.2"}));
    server.stop().await;

    // No pinned copy where the emulator was told to look: the call fails and says what to install.
    let dir = tempfile::tempdir().unwrap();
    write_function(&dir, "pinned", WHICH_SDK);
    let mut config = config_in(&dir);
    config.wx_server_sdk = Some(dir.path().join("nowhere"));
    let server = start_in(dir, config).await;
    let token = server.access_token("e1").await;
    let answer = server.invoke("e1", &token, "pinned", json!({})).await;
    assert_eq!(answer["code"], "FUNCTIONS_EXECUTE_FAIL", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("npm install wx-server-sdk") && message.contains("nowhere"),
        "{message}"
    );
    server.stop().await;
}

#[tokio::test]
async fn malformed_signed_requests_get_clear_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(&dir);
    let credentials = Credentials::derive(&config.admin_token);
    let server = start_in(dir, config).await;
    let send = |body: Value| {
        let mut body = body.as_object().unwrap().clone();
        body.insert("envName".into(), json!("e1"));
        body.insert("sessionToken".into(), json!(credentials.session_token));
        answer(signed_post(
            &server,
            &credentials.secret_id,
            &credentials.secret_key,
            "env=e1&seqId=s-1",
            &body,
            now_secs(),
        ))
    };
    let created = send(json!({"action": "database.addCollection", "collectionName": "c"})).await;
    assert!(created.get("code").is_none(), "{created}");
    let cases = [
        (
            json!({"action": "database.getDocument", "collectionName": "c", "query": "{not json"}),
            "INVALID_PARAM",
        ),
        (
            json!({"action": "database.getDocument", "collectionName": "c", "query": "{\"n\":{\"$numberDouble\":\"NaN\"}}"}),
            "INVALID_PARAM",
        ),
        (
            json!({"action": "database.insertDocument", "collectionName": "c", "data": 5}),
            "INVALID_PARAM",
        ),
        (
            json!({"action": "database.insertDocument", "collectionName": "c", "data": ["[1,2]"]}),
            "INVALID_PARAM",
        ),
        (
            json!({"action": "database.aggregateDocuments", "collectionName": "c", "stages": "x"}),
            "INVALID_PARAM",
        ),
        (
            json!({"action": "database.getDocument", "collectionName": "c", "transactionId": 7}),
            "INVALID_PARAM",
        ),
        (
            json!({"action": "database.commitTransaction", "transactionId": "txn-0000000000000000"}),
            "DATABASE_REQUEST_FAILED",
        ),
        (
            json!({"action": "database.getDocument", "collectionName": "../x", "query": "{}"}),
            "INVALID_PARAM",
        ),
        (
            json!({"action": "database.dropEverything", "collectionName": "c"}),
            "INVALID_ACTION",
        ),
        (
            json!({"action": "functions.invokeFunction", "function_name": "", "request_data": "{}"}),
            "INVALID_PARAM",
        ),
        (
            json!({"action": "functions.invokeFunction", "function_name": "../etc", "request_data": "{}"}),
            "FUNCTION_NOT_FOUND",
        ),
        (
            json!({"action": "storage.batchDeleteFile", "fileid_list": "nope"}),
            "INVALID_PARAM",
        ),
        (
            json!({"action": "wx.api", "apiName": "wxacode.getUnlimited"}),
            "INVALID_ACTION",
        ),
        (json!({"action": ""}), "INVALID_ACTION"),
    ];
    for (body, code) in cases {
        let got = send(body.clone()).await;
        assert_eq!(got["code"], code, "{body} → {got}");
        assert!(
            got["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{got}"
        );
    }
    // Inside a transaction: single documents by _id only.
    let started = send(json!({"action": "database.startTransaction"})).await;
    let id = started["transactionId"].as_str().unwrap();
    let got = send(json!({"action": "database.modifyDocument", "collectionName": "c", "transactionId": id,
                          "queryType": "WHERE", "query": "{\"n\":1}", "data": "{\"$set\":{\"n\":2}}", "multi": true}))
        .await;
    assert_eq!(got["code"], "INVALID_PARAM", "{got}");
    assert!(got["message"].as_str().unwrap().contains("by _id"), "{got}");
    let count = send(json!({"action": "database.calculateDocument", "collectionName": "c"})).await;
    assert_eq!(count["data"]["total"], 0, "nothing was written: {count}");
    server.stop().await;
}

const USES_DATABASE: &str = r#"
const cloud = require('wx-server-sdk');
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });
exports.main = async () => {
  const err = await cloud.database().createCollection('k').then(() => null, (e) => e.code);
  const keys = ['TENCENTCLOUD_SECRETID', 'TENCENTCLOUD_SECRETKEY', 'TENCENTCLOUD_SESSIONTOKEN', 'TENCENTCLOUD_RUNENV', 'SCF_NAMESPACE', 'TCB_CONTEXT_CNFG'];
  return { err, set: keys.filter((k) => !!process.env[k]) };
};
"#;

#[tokio::test]
async fn the_variables_the_sdk_cannot_live_without_are_always_set() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_function(&dir, "blanked", USES_DATABASE);
    // Emptied secrets would make node-sdk reject unawaited and Node 20 kill the worker (admin-protocol.md §1).
    std::fs::write(
        folder.join("config.json"),
        r#"{"timeout": 30, "envVariables": {"TENCENTCLOUD_SECRETID": "", "TENCENTCLOUD_SECRETKEY": "", "TCB_CONTEXT_CNFG": ""}}"#,
    )
    .unwrap();
    let config = config_in(&dir);
    let server = start_in(dir, config).await;
    let token = server.access_token("e1").await;
    let answer = server.invoke("e1", &token, "blanked", json!({})).await;
    assert!(answer.get("code").is_none(), "{answer}");
    let result: Value =
        serde_json::from_str(answer["data"]["response_data"].as_str().unwrap()).unwrap();
    assert_eq!(result["err"], Value::Null, "{result}");
    assert_eq!(result["set"].as_array().unwrap().len(), 6, "{result}");
    server.stop().await;
}
