//! The `database.*` actions over HTTP on a real server (127.0.0.1:0): the request bodies the official
//! SDK sent (tests/fixtures/database/captured-requests.jsonl, from shared/reference/captures) against
//! seeded data, then collections, limits, permissions (presets and security rules) and the admin endpoint.

mod common;

use common::DbClient;
use serde_json::{json, Value};

const ENV: &str = "envx";

type Db = DbClient;

impl DbClient {
    async fn ok(&self, token: &str, body: Value) -> Value {
        let answer = self.call(token, body.clone()).await;
        assert!(answer.get("code").is_none(), "{body} → {answer}");
        answer
    }

    async fn add(&self, token: &str, collection: &str, data: Value) -> Value {
        self.ok(
            token,
            json!({"action": "database.addDocument", "collectionName": collection, "data": data}),
        )
        .await["data"]
            .clone()
    }

    async fn query(&self, token: &str, collection: &str, query: Value) -> Value {
        self.call(
            token,
            json!({"action": "database.queryDocument", "collectionName": collection,
                   "queryType": "WHERE", "query": query}),
        )
        .await
    }

    async fn get_doc(&self, token: &str, collection: &str, id: &str) -> Value {
        let answer = self
            .ok(
                token,
                json!({"action": "database.queryDocument", "collectionName": collection,
                       "query": {"_id": id}, "queryType": "DOC", "multi": false, "projection": {}}),
            )
            .await;
        answer["data"]["list"][0].clone()
    }
}

fn captured() -> Vec<(u64, Value)> {
    include_str!("fixtures/database/captured-requests.jsonl")
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            (record["i"].as_u64().unwrap(), record["body"].clone())
        })
        .collect()
}

fn fixture(source_index: u64, collection: &str) -> Value {
    captured()
        .into_iter()
        .find(|(i, body)| *i == source_index && body["collectionName"] == collection)
        .unwrap_or_else(|| panic!("fixture {source_index}"))
        .1
}

fn ids(answer: &Value) -> Vec<String> {
    let mut ids: Vec<String> = answer["data"]["list"]
        .as_array()
        .unwrap_or_else(|| panic!("list in {answer}"))
        .iter()
        .map(|d| d["_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn captured_sdk_requests_against_seeded_todos() {
    let db = Db::start(ENV).await;
    let token = db.server.access_token(ENV).await;
    let add = json!({"action": "database.addCollection", "collectionName": "todos"});
    db.ok(&token, add.clone()).await;
    assert_eq!(
        db.call(&token, add).await["code"],
        "DATABASE_COLLECTION_ALREADY_EXIST"
    );
    let mut seed = Vec::new();
    for i in 0..12 {
        seed.push(json!({"_id": format!("m{i}"), "done": false, "tags": ["a", "z"], "prop": {"mem": 4 + i % 2},
                         "name": format!("ABc{i}"), "when": {"$date": 1_600_000_000_000i64}, "age": 20 + i,
                         "a": 1, "b": 2}));
    }
    for i in 0..3 {
        seed.push(json!({"_id": format!("t{i}"), "done": true}));
    }
    for (id, tag, n) in [
        ("ga1", "g1", 2),
        ("ga2", "g1", 2),
        ("ga3", "g1", 2),
        ("gb1", "g2", 5),
        ("gc", "g2", 0),
    ] {
        seed.push(json!({"_id": id, "tag": tag, "done": false, "n": n}));
    }
    seed.push(json!({"_id": "doc1", "n": 1, "arr": ["w"], "gone": 1, "tag": "g3"}));
    let inserted = db.add(&token, "todos", Value::Array(seed)).await;
    assert_eq!(inserted["insertedIds"].as_array().unwrap().len(), 21);

    // 23: the full WHERE query: regex, dates, dotted paths, $and, order desc, offset 10. Its projection
    // mixes inclusion and exclusion ({a: 1, b: 0}), which MongoDB (and so CloudBase) refuses.
    let mixed = db.call(&token, fixture(23, "todos")).await;
    assert_eq!(mixed["code"], "INVALID_PARAM", "{mixed}");
    assert!(
        mixed["message"]
            .as_str()
            .unwrap()
            .contains("Cannot do exclusion on field b"),
        "{mixed}"
    );
    let mut inclusion_only = fixture(23, "todos");
    inclusion_only["projection"] = json!({"a": 1});
    let answer = db.ok(&token, inclusion_only).await;
    assert_eq!(
        answer["data"]["list"],
        json!([{"_id": "m1", "a": 1}, {"_id": "m0", "a": 1}])
    );
    for key in ["total", "TotalCount"] {
        assert_eq!(answer[key], 12);
    }
    assert_eq!(
        (answer["limit"].clone(), answer["Limit"].clone()),
        (json!(20), json!(20))
    );
    assert_eq!(
        (answer["offset"].clone(), answer["Offset"].clone()),
        (json!(10), json!(10))
    );
    // 24: $or with $exists.
    let answer = db.ok(&token, fixture(24, "todos")).await;
    assert_eq!(answer["total"], 12);
    // 25: count.
    let answer = db.ok(&token, fixture(25, "todos")).await;
    assert_eq!(answer["data"], json!({"total": 3}));
    // 26: add with serverDate, a date, a Point.
    let answer = db.ok(&token, fixture(26, "todos")).await;
    let id = answer["data"]["_id"].as_str().unwrap().to_string();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let stored = db.get_doc(&token, "todos", &id).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let created = stored["created"]["$date"].as_i64().unwrap();
    assert!((now - created).abs() < 60_000, "{stored}");
    assert_eq!(stored["due"], json!({"$date": 1_700_000_000_000i64}));
    assert_eq!(
        stored["geo"],
        json!({"type": "Point", "coordinates": [113.3, 23.1]})
    );
    assert!(stored["_openid"].as_str().unwrap().starts_with('o'));
    // 27: doc get.
    let answer = db.ok(&token, fixture(27, "todos")).await;
    assert_eq!(answer["data"]["list"].as_array().unwrap().len(), 1);
    // 28: operator update of doc1.
    let answer = db.ok(&token, fixture(28, "todos")).await;
    assert_eq!(answer["data"]["updated"], 1);
    assert_eq!(answer["data"]["upserted_id"], Value::Null);
    let doc1 = db.get_doc(&token, "todos", "doc1").await;
    assert_eq!(doc1["n"], 2);
    assert_eq!(doc1["arr"], json!(["w", "x", "y"]));
    assert!(doc1.get("gone").is_none());
    assert_eq!(doc1["obj"], json!({"k": "v"}));
    let ts = doc1["ts"]["$date"].as_i64().unwrap();
    assert!((ts - now - 1000).abs() < 60_000);
    // 29: set (replace) keeps _id and _openid.
    let answer = db.ok(&token, fixture(29, "todos")).await;
    assert_eq!(answer["data"]["updated"], 1);
    let doc1 = db.get_doc(&token, "todos", "doc1").await;
    let keys: Vec<&str> = doc1
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["_id", "_openid", "title", "n"]);
    assert_eq!(doc1["title"], "replaced");
    // 33: aggregate; data.list is the JSON text of an array of canonical EJSON strings.
    let answer = db.ok(&token, fixture(33, "todos")).await;
    let list: Vec<String> = serde_json::from_str(answer["data"]["list"].as_str().unwrap()).unwrap();
    assert_eq!(
        list,
        [
            r#"{"_id":"g1","total":{"$numberInt":"3"}}"#,
            r#"{"_id":"g2","total":{"$numberInt":"1"}}"#
        ]
    );
    // 30: multi update of every done:false document (12 m + 5 g).
    let answer = db.ok(&token, fixture(30, "todos")).await;
    assert_eq!(answer["data"]["updated"], 17);
    assert_eq!(
        db.get_doc(&token, "todos", "m3").await["stats"],
        json!({"views": 2})
    );
    // 31, 32: deletes.
    let answer = db.ok(&token, fixture(31, "todos")).await;
    assert_eq!(answer["data"]["deleted"], 1);
    let answer = db.ok(&token, fixture(32, "todos")).await;
    assert_eq!(answer["data"]["deleted"], 20);
    db.server.stop().await;
}

#[tokio::test]
async fn captured_sdk_operators_against_seeded_t() {
    let db = Db::start(ENV).await;
    let token = db.server.access_token(ENV).await;
    db.ok(
        &token,
        json!({"action": "database.addCollection", "collectionName": "t"}),
    )
    .await;
    let point = |lng: f64, lat: f64| json!({"type": "Point", "coordinates": [lng, lat]});
    db.add(
        &token,
        "t",
        json!([
            {"_id": "x9", "a": 2, "b": 3, "c": ["x", "y", "w"], "d": [{"k": 2}], "e": [1, 2, 3], "f": 5},
            {"_id": "x10", "a": 3},
            {"_id": "x11", "a": 1, "b": 2},
            {"_id": "x12", "a": 5, "b": 1},
            {"_id": "x14", "arr": [1, 2], "nested": {"deep": {"x": 1}}},
            {"_id": "x15b", "loc": point(113.005, 23.0)},
            {"_id": "x15", "loc": point(113.001, 23.0)},
            {"_id": "far", "loc": point(114.0, 23.0)},
            {"_id": "x16", "loc": point(1.0, 1.0)},
            {"_id": "x", "a": [3], "b": [3, 4], "cc": [1, 2, 3], "d": [4], "e": [1, 2], "f": [1, 2], "g": [9],
             "h": 3, "i": 5, "j": 2, "k": "kk"}
        ]),
    )
    .await;
    let expect = [
        (9, vec!["x9"]),
        (10, vec!["x10", "x14", "x15", "x15b", "far", "x16"]),
        (
            11,
            vec!["x9", "x10", "x12", "x14", "x15", "x15b", "far", "x16", "x"],
        ),
        (12, vec!["x12"]),
        (13, vec!["x9", "x10", "x12", "x"]),
        (14, vec!["x14"]),
        (16, vec!["x16"]),
    ];
    for (index, want) in expect {
        let answer = db.ok(&token, fixture(index, "t")).await;
        assert_eq!(ids(&answer), sorted(&want), "fixture {index}: {answer}");
    }
    // $nearSphere: within 1000 m, nearest first.
    let answer = db.ok(&token, fixture(15, "t")).await;
    let order: Vec<&str> = answer["data"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["x15", "x15b"]);
    // 17, 18: every update operator the SDK encodes.
    assert_eq!(db.ok(&token, fixture(17, "t")).await["data"]["updated"], 1);
    assert_eq!(db.ok(&token, fixture(18, "t")).await["data"]["updated"], 1);
    let x = db.get_doc(&token, "t", "x").await;
    let mut x = x.as_object().unwrap().clone();
    x.remove("_openid");
    assert_eq!(
        Value::Object(x),
        json!({"_id": "x", "a": [3, 2, 1], "b": [4], "cc": [3], "d": [4], "e": [1], "f": [2], "g": [7, 8, 9],
               "h": 6, "i": 1, "j": 9, "k2": "kk", "l": {"whole": "object"},
               "m": {"$date": 1_700_000_000_000i64}, "n": null})
    );
    db.server.stop().await;
}

#[tokio::test]
async fn collections_ids_limits_and_validation() {
    let db = Db::start(ENV).await;
    let token = db.server.access_token(ENV).await;
    let missing = db.query(&token, "nope", json!({})).await;
    assert_eq!(missing["code"], "DATABASE_COLLECTION_NOT_EXIST");
    let bad_name = db
        .call(
            &token,
            json!({"action": "database.addCollection", "collectionName": "a/b"}),
        )
        .await;
    assert_eq!(bad_name["code"], "INVALID_PARAM");
    db.ok(
        &token,
        json!({"action": "database.addCollection", "collectionName": "c"}),
    )
    .await;
    let docs: Vec<Value> = (0..1005).map(|n| json!({"n": n})).collect();
    let too_many = db
        .call(
            &token,
            json!({"action": "database.addDocument", "collectionName": "c", "data": docs}),
        )
        .await;
    assert_eq!(too_many["code"], "INVALID_PARAM");
    for chunk in 0..2 {
        let docs: Vec<Value> = (0..600).map(|n| json!({"n": chunk * 600 + n})).collect();
        db.add(&token, "c", Value::Array(docs)).await;
    }
    let page = db.query(&token, "c", json!({})).await;
    assert_eq!(page["data"]["list"].as_array().unwrap().len(), 100);
    assert_eq!(
        (page["total"].clone(), page["limit"].clone()),
        (json!(1200), json!(100))
    );
    let big = db
        .ok(
            &token,
            json!({"action": "database.queryDocument", "collectionName": "c", "limit": 5000,
                           "order": [{"field": "n", "direction": "desc"}]}),
        )
        .await;
    assert_eq!(big["data"]["list"].as_array().unwrap().len(), 1000);
    assert_eq!(big["data"]["list"][0]["n"], 1199);
    // Client-supplied ids: duplicates are refused, numbers allowed.
    db.add(&token, "c", json!({"_id": "same", "v": 1})).await;
    let dup = db
        .call(&token, json!({"action": "database.addDocument", "collectionName": "c", "data": {"_id": "same"}}))
        .await;
    assert_eq!(dup["code"], "INVALID_PARAM");
    assert_eq!(db.add(&token, "c", json!({"_id": 7})).await["_id"], 7);
    // Record size, _id immutability, operators in set(), malformed input.
    let huge = "x".repeat(600 * 1024);
    let answer = db
        .call(
            &token,
            json!({"action": "database.addDocument", "collectionName": "c", "data": {"s": huge}}),
        )
        .await;
    assert_eq!(answer["code"], "INVALID_PARAM");
    let answer = db
        .call(&token, json!({"action": "database.updateDocument", "collectionName": "c", "queryType": "DOC",
                             "query": {"_id": "same"}, "data": {"$set": {"_id": "other"}}, "merge": true}))
        .await;
    assert_eq!(answer["code"], "INVALID_PARAM");
    let answer = db
        .call(&token, json!({"action": "database.updateDocument", "collectionName": "c", "queryType": "DOC",
                             "query": {"_id": "same"}, "data": {"$inc": {"v": 1}}, "merge": false, "upsert": true}))
        .await;
    assert_eq!(answer["code"], "INVALID_PARAM");
    for query in [
        json!({"a": {"$bogus": 1}}),
        json!("not an object"),
        json!({"a": {"$regex": "("}}),
    ] {
        let answer = db.query(&token, "c", query).await;
        assert!(answer["code"].is_string(), "{answer}");
    }
    // set() on a missing id creates it and reports upserted_id.
    let answer = db
        .ok(&token, json!({"action": "database.updateDocument", "collectionName": "c", "queryType": "DOC",
                           "query": {"_id": "fresh"}, "data": {"v": 9}, "multi": false, "merge": false, "upsert": true}))
        .await;
    assert_eq!(answer["data"]["upserted_id"], "fresh");
    assert_eq!(answer["data"]["upsert_id"], "fresh");
    assert_eq!(db.get_doc(&token, "c", "fresh").await["v"], 9);
    db.server.stop().await;
}

#[tokio::test]
async fn creator_only_preset_isolates_users() {
    let db = Db::start(ENV).await;
    let alice = db.server.access_token(ENV).await;
    let bob = db.server.access_token(ENV).await;
    db.ok(
        &alice,
        json!({"action": "database.addCollection", "collectionName": "notes"}),
    )
    .await;
    db.add(
        &alice,
        "notes",
        json!({"_id": "a1", "text": "alice's", "_openid": "forged"}),
    )
    .await;
    db.add(&bob, "notes", json!({"_id": "b1", "text": "bob's"}))
        .await;
    // Each sees only their own documents; a forged _openid was replaced.
    assert_eq!(ids(&db.query(&alice, "notes", json!({})).await), ["a1"]);
    assert_eq!(ids(&db.query(&bob, "notes", json!({})).await), ["b1"]);
    assert_ne!(db.get_doc(&alice, "notes", "a1").await["_openid"], "forged");
    let bob_reads_a1 = db
        .ok(
            &bob,
            json!({"action": "database.queryDocument", "collectionName": "notes",
                         "query": {"_id": "a1"}, "queryType": "DOC"}),
        )
        .await;
    assert_eq!(bob_reads_a1["data"]["list"], json!([]));
    // Bob cannot change or remove Alice's document, by id or by query.
    let update = db
        .ok(&bob, json!({"action": "database.updateDocument", "collectionName": "notes", "queryType": "DOC",
                         "query": {"_id": "a1"}, "data": {"$set": {"text": "hacked"}}, "merge": true}))
        .await;
    assert_eq!(update["data"]["updated"], 0);
    let update = db
        .ok(&bob, json!({"action": "database.updateDocument", "collectionName": "notes", "queryType": "WHERE",
                         "query": {}, "data": {"$set": {"text": "hacked"}}, "multi": true}))
        .await;
    assert_eq!(update["data"]["updated"], 1, "only Bob's own document");
    let removed = db
        .ok(&bob, json!({"action": "database.deleteDocument", "collectionName": "notes", "queryType": "WHERE",
                         "query": {"_id": "a1"}, "multi": true}))
        .await;
    assert_eq!(removed["data"]["deleted"], 0);
    assert_eq!(db.get_doc(&alice, "notes", "a1").await["text"], "alice's");
    // A client cannot rewrite _openid.
    let steal = db
        .call(&bob, json!({"action": "database.updateDocument", "collectionName": "notes", "queryType": "DOC",
                           "query": {"_id": "b1"}, "data": {"$set": {"_openid": "someone"}}, "merge": true}))
        .await;
    assert_eq!(steal["code"], "DATABASE_PERMISSION_DENIED");
    // The admin token sees everything.
    assert_eq!(
        ids(&db.query(&db.admin, "notes", json!({})).await),
        ["a1", "b1"]
    );
    db.server.stop().await;
}

#[tokio::test]
async fn other_presets_and_security_rules() {
    let db = Db::start(ENV).await;
    let alice = db.server.access_token(ENV).await;
    let bob = db.server.access_token(ENV).await;
    // 所有用户可读: everyone reads, no client writes.
    assert!(db
        .admin_collection("news", json!("ADMINWRITE"), Value::Null)
        .await
        .status()
        .is_success());
    db.add(&db.admin, "news", json!({"_id": "n1"})).await;
    assert_eq!(ids(&db.query(&bob, "news", json!({})).await), ["n1"]);
    let denied = db
        .call(
            &bob,
            json!({"action": "database.addDocument", "collectionName": "news", "data": {"x": 1}}),
        )
        .await;
    assert_eq!(denied["code"], "DATABASE_PERMISSION_DENIED");
    // 仅管理端可读写.
    db.admin_collection("secrets", json!("仅管理端可读写"), Value::Null)
        .await;
    assert_eq!(
        db.query(&bob, "secrets", json!({})).await["code"],
        "DATABASE_PERMISSION_DENIED"
    );
    // 所有用户可读，仅创建者可写.
    db.admin_collection("posts", json!("READONLY"), Value::Null)
        .await;
    db.add(&alice, "posts", json!({"_id": "p1"})).await;
    assert_eq!(ids(&db.query(&bob, "posts", json!({})).await), ["p1"]);
    let update = db
        .ok(&bob, json!({"action": "database.updateDocument", "collectionName": "posts", "queryType": "DOC",
                         "query": {"_id": "p1"}, "data": {"$set": {"x": 1}}}))
        .await;
    assert_eq!(update["data"]["updated"], 0);
    // Security rules: a query must be a subset of the rule.
    let rules =
        json!({"read": "auth.openid == doc._openid", "write": "auth.openid == doc._openid"});
    db.admin_collection("todos", rules, Value::Null).await;
    db.add(&alice, "todos", json!({"_id": "t1", "v": 1})).await;
    db.add(&bob, "todos", json!({"_id": "t2", "v": 2})).await;
    assert_eq!(
        db.query(&alice, "todos", json!({})).await["code"],
        "DATABASE_PERMISSION_DENIED"
    );
    assert_eq!(
        db.query(&alice, "todos", json!({"v": 1})).await["code"],
        "DATABASE_PERMISSION_DENIED"
    );
    assert_eq!(
        ids(&db
            .query(&alice, "todos", json!({"_openid": "{openid}"}))
            .await),
        ["t1"]
    );
    let count = db
        .ok(&bob, json!({"action": "database.countDocument", "collectionName": "todos", "queryType": "WHERE",
                         "query": {"_openid": "{openid}", "v": {"$gt": 0}}}))
        .await;
    assert_eq!(count["data"]["total"], 1);
    // doc(id): checked against the stored document.
    assert_eq!(db.get_doc(&alice, "todos", "t1").await["v"], 1);
    let other = db
        .call(
            &alice,
            json!({"action": "database.queryDocument", "collectionName": "todos",
                             "query": {"_id": "t2"}, "queryType": "DOC"}),
        )
        .await;
    assert_eq!(other["code"], "DATABASE_PERMISSION_DENIED");
    let remove = db
        .call(
            &alice,
            json!({"action": "database.deleteDocument", "collectionName": "todos",
                             "query": {"_id": "t2"}, "queryType": "DOC"}),
        )
        .await;
    assert_eq!(remove["code"], "DATABASE_PERMISSION_DENIED");
    // create rule: a document that fails it is refused.
    db.admin_collection(
        "votes",
        json!({"read": true, "create": "doc.score >= 1 && doc.score <= 5"}),
        Value::Null,
    )
    .await;
    db.add(&alice, "votes", json!({"score": 3})).await;
    let bad = db
        .call(&alice, json!({"action": "database.addDocument", "collectionName": "votes", "data": {"score": 9}}))
        .await;
    assert_eq!(bad["code"], "DATABASE_PERMISSION_DENIED");
    // The admin endpoint needs the token and validates rules.
    let response = db
        .server
        .post("/admin/v1/database/collections")
        .header("x-admin-token", "wrong")
        .json(&json!({"env": ENV, "name": "z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = db
        .admin_collection("z", json!({"read": "auth.openid =="}), Value::Null)
        .await;
    assert_eq!(response.status(), 400);
    db.server.stop().await;
}

#[tokio::test]
async fn declared_index_serves_queries_over_http() {
    let db = Db::start(ENV).await;
    let response = db
        .admin_collection("items", json!("ADMINWRITE"), json!(["n", "tag"]))
        .await;
    let meta: Value = response.json().await.unwrap();
    assert_eq!(meta["indexes"], json!(["n", "tag"]));
    for chunk in 0..4 {
        let docs: Vec<Value> = (0..500)
            .map(|i| {
                let n = chunk * 500 + i;
                json!({"n": n, "tag": format!("t{}", n % 10), "arr": [n, n + 1]})
            })
            .collect();
        db.add(&db.admin, "items", Value::Array(docs)).await;
    }
    let answer = db
        .query(&db.admin, "items", json!({"n": {"$gte": 100, "$lt": 105}}))
        .await;
    assert_eq!(answer["total"], 5);
    let answer = db
        .query(
            &db.admin,
            "items",
            json!({"tag": {"$in": ["t1", "t2"]}, "n": {"$lt": 50}}),
        )
        .await;
    assert_eq!(answer["total"], 10);
    // Reconfiguring the indexes (adding one over existing documents) keeps results identical.
    db.admin_collection("items", Value::Null, json!(["arr"]))
        .await;
    let answer = db.query(&db.admin, "items", json!({"arr": 7})).await;
    assert_eq!(ids(&answer).len(), 2);
    db.server.stop().await;
}
