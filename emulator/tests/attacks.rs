//! The attack suite (issue 9): what a hostile client tries against the emulator, each refused with a clear
//! error and the data left as it was. Operator injection in where / update / aggregate, `_openid` spoofing
//! on add / update / set, another user's document by id under every preset and a custom rule, `$lookup`
//! into a collection the caller may not read, catastrophic regexes, oversize and deeply nested bodies,
//! Range abuse, DNS-rebinding Host headers and cross-origin requests. (Signed-URL tampering and expiry are
//! in storage_download.rs; more rule cases in database_http.rs.)

mod common;

use std::time::{Duration, Instant};

use common::DbClient;
use serde_json::{json, Value};

const ENV: &str = "attack-env";

type Db = DbClient;

impl DbClient {
    async fn collection(&self, name: &str, rules: Value) {
        let response = self.admin_collection(name, rules, json!([])).await;
        assert!(response.status().is_success(), "{}", response.status());
    }

    async fn add(&self, token: &str, collection: &str, data: Value) -> Value {
        self.call(
            token,
            json!({"action": "database.addDocument", "collectionName": collection, "data": data}),
        )
        .await
    }

    /// Every document of `collection`, as the admin sees it.
    async fn all(&self, collection: &str) -> Value {
        self.call(
            &self.admin,
            json!({"action": "database.queryDocument", "collectionName": collection, "queryType": "WHERE",
                   "query": {}, "limit": 1000}),
        )
        .await["data"]["list"]
            .clone()
    }
}

/// A refusal: an error code, no data.
fn refused(answer: &Value) -> String {
    let code = answer["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a refusal, got {answer}"));
    assert!(
        !answer["message"].as_str().unwrap_or("").is_empty(),
        "a refusal says why: {answer}"
    );
    code.to_owned()
}

#[tokio::test]
async fn operator_injection_in_where_update_and_aggregate_is_refused() {
    let db = Db::start(ENV).await;
    let alice = db.server.access_token(ENV).await;
    db.collection("notes", json!("PRIVATE")).await;
    db.add(&alice, "notes", json!({"_id": "n1", "text": "mine"}))
        .await;
    let before = db.all("notes").await;
    for query in [
        json!({"$where": "sleep(5000) || true"}),
        json!({"text": {"$function": {"body": "function() { return true }", "args": [], "lang": "js"}}}),
        json!({"$expr": {"$function": {"body": "return 1", "args": [], "lang": "js"}}}),
        json!({"$jsonSchema": {}}),
    ] {
        let answer = db
            .call(
                &alice,
                json!({"action": "database.queryDocument", "collectionName": "notes",
                                 "queryType": "WHERE", "query": query}),
            )
            .await;
        // INVALID_PARAM or DATABASE_INVALID_OPERRATOR (CloudBase's spelling).
        assert!(answer.get("code").is_some(), "{query} → {answer}");
        refused(&answer);
    }
    for data in [
        json!({"$where": "1"}),
        json!({"$set": {"text": "x"}, "$function": {}}),
        json!({"$rename": {"text": "_openid"}}),
        json!({"$set": {"$where": "1"}}),
    ] {
        let answer = db
            .call(&alice, json!({"action": "database.updateDocument", "collectionName": "notes",
                                 "queryType": "DOC", "query": {"_id": "n1"}, "data": data, "merge": true}))
            .await;
        assert!(answer.get("code").is_some(), "{data} → {answer}");
    }
    for stage in [
        json!({"stageKey": "$out", "stageValue": "\"stolen\""}),
        json!({"stageKey": "$merge", "stageValue": "{\"into\":\"stolen\"}"}),
        json!({"stageKey": "$function", "stageValue": "{}"}),
        json!({"stageKey": "$match", "stageValue": "{\"$where\":\"1\"}"}),
    ] {
        let answer = db
            .call(&alice, json!({"action": "database.aggregate", "collectionName": "notes", "stages": [stage]}))
            .await;
        refused(&answer);
    }
    assert_eq!(db.all("notes").await, before, "data unchanged");
    db.server.stop().await;
}

#[tokio::test]
async fn openid_spoofing_on_add_update_and_set_is_refused_or_overwritten() {
    let db = Db::start(ENV).await;
    let alice = db.server.access_token(ENV).await;
    let bob = db.server.access_token(ENV).await;
    db.collection("notes", json!("READONLY")).await;
    let added = db
        .add(
            &bob,
            "notes",
            json!({"_id": "b1", "_openid": "alice-openid", "text": "bob's"}),
        )
        .await;
    assert!(added.get("code").is_none(), "{added}");
    let stored = db.all("notes").await;
    let bob_openid = stored[0]["_openid"].clone();
    assert_ne!(
        bob_openid, "alice-openid",
        "a forged _openid on add is replaced by the caller's"
    );
    db.add(&alice, "notes", json!({"_id": "a1", "text": "alice's"}))
        .await;
    let alice_openid = db.all("notes").await[1]["_openid"].clone();
    let before = db.all("notes").await;
    // Update: Bob claims Alice's document as his, or rewrites his own _openid to Alice's.
    for (query, data) in [
        (
            json!({"_id": "b1"}),
            json!({"$set": {"_openid": alice_openid}}),
        ),
        (
            json!({"_id": "a1"}),
            json!({"$set": {"_openid": bob_openid, "text": "stolen"}}),
        ),
        (json!({"_id": "b1"}), json!({"$unset": {"_openid": ""}})),
    ] {
        let answer = db
            .call(&bob, json!({"action": "database.updateDocument", "collectionName": "notes", "queryType": "DOC",
                               "query": query, "data": data, "merge": true}))
            .await;
        assert!(
            answer.get("code").is_some() || answer["data"]["updated"] == 0,
            "{answer}"
        );
    }
    // Set (replace): Bob replaces Alice's document, or his own with Alice's _openid.
    for (id, data) in [
        ("a1", json!({"text": "replaced", "_openid": bob_openid})),
        ("b1", json!({"text": "mine now", "_openid": alice_openid})),
    ] {
        let answer = db
            .call(&bob, json!({"action": "database.updateDocument", "collectionName": "notes", "queryType": "DOC",
                               "query": {"_id": id}, "data": data, "merge": false}))
            .await;
        let after = db.all("notes").await;
        let doc = after
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["_id"] == id)
            .unwrap()
            .clone();
        assert_ne!(
            doc["_openid"],
            if id == "a1" {
                bob_openid.clone()
            } else {
                alice_openid.clone()
            },
            "{answer}"
        );
    }
    let after = db.all("notes").await;
    assert_eq!(after[1], before[1], "Alice's document unchanged");
    db.server.stop().await;
}

#[tokio::test]
async fn another_users_document_by_id_under_each_preset_and_a_custom_rule() {
    let db = Db::start(ENV).await;
    let alice = db.server.access_token(ENV).await;
    let bob = db.server.access_token(ENV).await;
    let custom =
        json!({"read": "doc._openid == auth.openid", "write": "doc._openid == auth.openid"});
    for (name, rules, bob_may_read) in [
        ("private", json!("PRIVATE"), false),
        ("readonly", json!("READONLY"), true),
        ("adminwrite", json!("ADMINWRITE"), true),
        ("adminonly", json!("ADMINONLY"), false),
        ("custom", custom.clone(), false),
    ] {
        db.collection(name, rules).await;
        // Alice's document: by the admin where clients cannot write.
        let owner = if matches!(name, "adminwrite" | "adminonly") {
            &db.admin
        } else {
            &alice
        };
        let added = db
            .add(
                owner,
                name,
                json!({"_id": "secret", "text": "alice's", "n": 1}),
            )
            .await;
        assert!(added.get("code").is_none(), "{name}: {added}");
        let before = db.all(name).await;
        let read = db
            .call(&bob, json!({"action": "database.queryDocument", "collectionName": name, "queryType": "DOC",
                               "query": {"_id": "secret"}}))
            .await;
        let got = read["data"]["list"].as_array().map_or(0, Vec::len);
        assert_eq!(got == 1, bob_may_read, "{name}: read → {read}");
        for body in [
            json!({"action": "database.updateDocument", "collectionName": name, "queryType": "DOC",
                   "query": {"_id": "secret"}, "data": {"$set": {"text": "bob was here"}}, "merge": true}),
            json!({"action": "database.updateDocument", "collectionName": name, "queryType": "DOC",
                   "query": {"_id": "secret"}, "data": {"text": "replaced"}, "merge": false}),
            json!({"action": "database.updateDocument", "collectionName": name, "queryType": "WHERE",
                   "query": {"_id": "secret"}, "data": {"$inc": {"n": 1}}, "multi": true}),
            json!({"action": "database.deleteDocument", "collectionName": name, "queryType": "DOC",
                   "query": {"_id": "secret"}}),
            json!({"action": "database.deleteDocument", "collectionName": name, "queryType": "WHERE",
                   "query": {"_id": {"$exists": true}}, "multi": true}),
        ] {
            let answer = db.call(&bob, body.clone()).await;
            let changed = answer["data"]["updated"].as_u64().unwrap_or(0)
                + answer["data"]["deleted"].as_u64().unwrap_or(0);
            assert!(
                answer.get("code").is_some() || changed == 0,
                "{name}: {body} → {answer}"
            );
        }
        assert_eq!(
            db.all(name).await,
            before,
            "{name}: Alice's document unchanged"
        );
    }
    db.server.stop().await;
}

#[tokio::test]
async fn lookup_into_a_collection_the_caller_may_not_read_is_refused() {
    let db = Db::start(ENV).await;
    let alice = db.server.access_token(ENV).await;
    db.collection("orders", json!("PRIVATE")).await;
    db.collection("secrets", json!("ADMINONLY")).await;
    db.collection("others", json!("PRIVATE")).await;
    db.add(&alice, "orders", json!({"_id": "o1", "key": "k"}))
        .await;
    db.add(
        &db.admin,
        "secrets",
        json!({"_id": "s1", "key": "k", "password": "hunter2"}),
    )
    .await;
    let bob = db.server.access_token(ENV).await;
    db.add(
        &bob,
        "others",
        json!({"_id": "x1", "key": "k", "private": "bob's"}),
    )
    .await;
    for from in ["secrets", "others"] {
        let lookup =
            json!({"from": from, "localField": "key", "foreignField": "key", "as": "joined"});
        let answer = db
            .call(&alice, json!({"action": "database.aggregate", "collectionName": "orders",
                                 "stages": [{"stageKey": "$lookup", "stageValue": lookup.to_string()}]}))
            .await;
        let text = answer.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("bob's"),
            "{from}: leaked {answer}"
        );
        if answer.get("code").is_none() {
            // Allowed only as a filtered join: nothing of another user's or the admin's documents.
            let rows = answer["data"]["list"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                rows.iter()
                    .all(|row| row["joined"].as_array().is_none_or(Vec::is_empty)),
                "{answer}"
            );
        }
    }
    db.server.stop().await;
}

#[tokio::test]
async fn catastrophic_regexes_run_in_linear_time() {
    let db = Db::start(ENV).await;
    let alice = db.server.access_token(ENV).await;
    db.collection("texts", json!("PRIVATE")).await;
    let long = format!("{}b", "a".repeat(50_000));
    for i in 0..20 {
        db.add(&alice, "texts", json!({"s": long, "i": i})).await;
    }
    for pattern in [
        "(a+)+$",
        "(a|aa)*c",
        "^(a?){25}a{25}$",
        "(.*a){20}c",
        "((a+)+)+b$",
    ] {
        let started = Instant::now();
        let answer = db
            .call(&alice, json!({"action": "database.queryDocument", "collectionName": "texts", "queryType": "WHERE",
                                 "query": {"s": {"$regex": pattern, "$options": ""}}}))
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{pattern}: {:?}",
            started.elapsed()
        );
        assert!(
            answer.get("code").is_none() || answer["code"] == "INVALID_PARAM",
            "{pattern}: {answer}"
        );
    }
    db.server.stop().await;
}

#[tokio::test]
async fn oversize_and_deeply_nested_bodies_are_refused_cleanly() {
    let db = Db::start(ENV).await;
    let alice = db.server.access_token(ENV).await;
    db.collection("bulk", json!("PRIVATE")).await;
    let huge = "x".repeat(9 * 1024 * 1024);
    let answer = db
        .server
        .web_raw(&format!("?env={ENV}"), format!(r#"{{"action":"database.addDocument","env":"{ENV}","access_token":"{alice}","collectionName":"bulk","data":{{"s":"{huge}"}}}}"#))
        .await;
    refused(&answer);
    let record = "y".repeat(600 * 1024);
    let answer = db.add(&alice, "bulk", json!({"s": record})).await;
    refused(&answer);
    let mut nested = json!(1);
    for _ in 0..150 {
        nested = json!({"a": nested});
    }
    assert_eq!(
        refused(&db.add(&alice, "bulk", json!({"deep": nested})).await),
        "INVALID_PARAM"
    );
    assert_eq!(db.all("bulk").await, json!([]), "nothing stored");
    db.server.stop().await;
}

#[tokio::test]
async fn range_abuse_gets_416_or_the_whole_object() {
    let db = Db::start(ENV).await;
    let token = db.server.access_token(ENV).await;
    let meta = db
        .call(
            &token,
            json!({"action": "storage.getUploadMetadata", "path": "r.bin", "method": "put"}),
        )
        .await["data"]
        .clone();
    let body = vec![7u8; 1000];
    let put = db
        .server
        .client
        .put(meta["url"].as_str().unwrap())
        .header("authorization", meta["authorization"].as_str().unwrap())
        .header("x-cos-security-token", meta["token"].as_str().unwrap())
        .header("x-cos-meta-fileid", meta["cosFileId"].as_str().unwrap())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let url = meta["download_url"].as_str().unwrap().to_owned();
    let many = format!("bytes={}", vec!["0-0"; 2000].join(","));
    for range in [
        "bytes=5000-6000",
        "bytes=-0",
        "bytes=99999999999999999999-",
        "bytes=10-5",
        many.as_str(),
        "bytes=0-",
        "items=0-5",
    ] {
        let response = db
            .server
            .client
            .get(&url)
            .header("range", range)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        assert!(matches!(status, 200 | 206 | 416), "{range}: {status}");
        assert!(
            bytes.len() <= body.len(),
            "{range}: {} bytes for a {}-byte object",
            bytes.len(),
            body.len()
        );
    }
    db.server.stop().await;
}

#[tokio::test]
async fn dns_rebinding_hosts_and_foreign_origins_are_refused() {
    let db = Db::start(ENV).await;
    let port = reqwest::Url::parse(&db.server.url).unwrap().port().unwrap();
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "127.0.0.1.nip.io",
        &format!("localhost:{}", port + 1),
    ] {
        let response = db
            .server
            .client
            .post(format!("{}/web?env={ENV}", db.server.url))
            .header("host", host)
            .body(r#"{"action":"auth.signInAnonymously"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403, "Host {host}");
    }
    // A page on a foreign origin posting with a stolen token: /web keeps its always-200 envelope, refuses
    // with INVALID_REQUEST_SOURCE and stores nothing; other routes answer 403.
    let alice = db.server.access_token(ENV).await;
    db.collection("notes", json!("PRIVATE")).await;
    let response = db
        .server
        .client
        .post(format!("{}/web?env={ENV}", db.server.url))
        .header("origin", "https://evil.example")
        .body(
            json!({"action": "database.addDocument", "env": ENV, "access_token": alice,
                   "collectionName": "notes", "data": {"csrf": true}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "INVALID_REQUEST_SOURCE"
    );
    assert_eq!(
        db.all("notes").await,
        json!([]),
        "the cross-origin write was not executed"
    );
    let response = db
        .server
        .client
        .post(format!(
            "{}/auth/v1/signin/anonymously?client_id={ENV}",
            db.server.url
        ))
        .header("origin", "http://localhost.evil.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    db.server.stop().await;
}
