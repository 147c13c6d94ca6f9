//! The real `require('wx-server-sdk')` (4.0.2, over the admin protocol) inside an emulated function:
//! admin database access, getWXContext, callFunction; plus `--import` / `--export-on-exit` round trips and the planner's counted scans.

mod common;

use common::{config_in, start_in, write_function};
use serde_json::{json, Value};

const ENV: &str = "envf";

const WRITER: &str = r#"
const cloud = require('wx-server-sdk');
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });
exports.main = async (event) => {
  const db = cloud.database();
  const _ = db.command;
  await db.createCollection('fn_items').catch((e) => { if (e.errCode !== -502006) throw e; });
  const ctx = cloud.getWXContext();
  const added = await db.collection('fn_items').add({ data: { n: event.n, at: new Date(1700000000000), by: ctx.OPENID, when: db.serverDate() } });
  await db.collection('fn_items').doc(added._id).update({ data: { n: _.inc(10), tags: _.push(['a']) } });
  const one = await db.collection('fn_items').doc(added._id).get();
  const big = await db.collection('fn_items').where({ n: _.gte(10) }).orderBy('n', 'desc').get();
  const count = await db.collection('fn_items').where({ by: ctx.OPENID }).count();
  const set = await db.collection('fn_items').doc('fixed').set({ data: { n: 99 } });
  let missing = null;
  try { await db.collection('fn_items').doc('nope').get(); } catch (e) { missing = e.errMsg; }
  const agg = await db.collection('fn_items').aggregate().match({ n: _.gt(0) }).group({ _id: null, total: _.aggregate.sum('$n') }).end();
  const echoed = await cloud.callFunction({ name: 'echo', data: { hello: 1 } });
  return {
    ctx, id: added._id, one: one.data, isDate: one.data.at instanceof Date, listed: big.data.map((d) => d.n),
    count: count.total, set: set.stats, missing, agg: agg.list, echoed: echoed.result,
  };
};
"#;

const ECHO: &str = r#"
const cloud = require('wx-server-sdk');
exports.main = async (event) => ({ event, openid: cloud.getWXContext().OPENID });
"#;

#[tokio::test]
async fn wx_server_sdk_reads_and_writes_with_admin_rights() {
    let dir = tempfile::tempdir().unwrap();
    write_function(&dir, "writer", WRITER);
    write_function(&dir, "echo", ECHO);
    let config = config_in(&dir);
    let server = start_in(dir, config).await;
    let token = server.access_token(ENV).await;
    let answer = server.invoke(ENV, &token, "writer", json!({"n": 5})).await;
    assert!(answer.get("code").is_none(), "{answer}");
    let result: Value =
        serde_json::from_str(answer["data"]["response_data"].as_str().unwrap()).unwrap();
    let openid = result["ctx"]["OPENID"].as_str().unwrap().to_string();
    assert!(openid.starts_with('o') && openid.len() == 28, "{result}");
    assert_eq!(result["ctx"]["ENV"], ENV);
    assert!(result["ctx"]["APPID"].as_str().unwrap().starts_with("wx"));
    assert_eq!(result["ctx"]["UNIONID"], "");
    assert_eq!(result["one"]["n"], 15);
    assert_eq!(result["one"]["tags"], json!(["a"]));
    assert_eq!(result["isDate"], true);
    assert_eq!(result["listed"], json!([15]));
    assert_eq!(result["count"], 1);
    assert_eq!(result["set"], json!({"updated": 0, "created": 1}));
    assert_eq!(
        result["missing"], "document.get:fail document with _id nope does not exist",
        "wx-server-sdk's own message for an empty list"
    );
    assert_eq!(result["agg"], json!([{"_id": null, "total": 114}]));
    assert_eq!(result["echoed"]["event"]["hello"], 1);
    assert_eq!(result["echoed"]["openid"], openid);
    // Admin writes carry no _openid: under the default preset a client does not see them.
    let list = server
        .web(
            ENV,
            json!({"action": "database.queryDocument", "env": ENV, "collectionName": "fn_items",
                   "queryType": "WHERE", "query": {}, "access_token": token}),
        )
        .await;
    assert_eq!(list["data"]["list"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn import_then_export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("seed");
    std::fs::create_dir_all(import.join("database")).unwrap();
    std::fs::write(
        import.join("database/books.json"),
        concat!(
            r#"{"_id":"b1","title":"One","n":{"$numberInt":"1"},"at":{"$date":"2023-11-14T22:13:20.000Z"}}"#,
            "\n",
            r#"{"_id":"b2","title":"Two","n":2,"at":{"$date":1700000000000},"_openid":"oX"}"#,
            "\n\n",
            r#"{"title":"no id"}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(import.join("database/books.rules.json"), r#""ADMINWRITE""#).unwrap();
    std::fs::write(import.join("database/books.indexes.json"), r#"["n"]"#).unwrap();
    std::fs::write(
        import.join("database/empty.rules.json"),
        r#"{"read": true, "write": false}"#,
    )
    .unwrap();
    let export = dir.path().join("out");
    let mut config = config_in(&dir);
    config.env = Some(ENV.to_string());
    config.import_dir = Some(import.clone());
    config.export_on_exit = Some(export.clone());
    let data_dir = config.data_dir.clone();
    let server = start_in(dir, config).await;
    let token = server.access_token(ENV).await;
    let answer = server
        .web(
            ENV,
            json!({"action": "database.queryDocument", "env": ENV, "collectionName": "books",
                   "queryType": "WHERE", "query": {"n": {"$lte": 2}}, "access_token": token,
                   "order": [{"field": "n", "direction": "asc"}]}),
        )
        .await;
    assert_eq!(
        answer["data"]["list"],
        json!([{"_id": "b1", "title": "One", "n": 1, "at": {"$date": 1_700_000_000_000i64}},
               {"_id": "b2", "title": "Two", "n": 2, "at": {"$date": 1_700_000_000_000i64}, "_openid": "oX"}])
    );
    let empty = server
        .web(
            ENV,
            json!({"action": "database.countDocument", "env": ENV, "collectionName": "empty",
                   "access_token": token}),
        )
        .await;
    assert_eq!(empty["data"]["total"], 0);
    let dir = server.stop().await;
    let lines = std::fs::read_to_string(export.join("database/books.json")).unwrap();
    let docs: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    assert_eq!(
        docs[0],
        json!({"_id": "b1", "title": "One", "n": 1, "at": {"$date": 1_700_000_000_000i64}})
    );
    assert_eq!(docs[2]["title"], "no id");
    let rules: Value = serde_json::from_str(
        &std::fs::read_to_string(export.join("database/books.rules.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rules, json!("ADMINWRITE"));
    assert_eq!(
        std::fs::read_to_string(export.join("database/books.indexes.json")).unwrap(),
        r#"["n"]"#
    );
    assert!(export.join("database/empty.json").is_file());
    // The export imports again into a fresh data dir with the same content.
    let mut config = config_in(&dir);
    config.data_dir = dir.path().join("data2");
    config.env = Some(ENV.to_string());
    config.import_dir = Some(export.clone());
    let server = start_in(dir, config).await;
    let token = server.access_token(ENV).await;
    let answer = server
        .web(
            ENV,
            json!({"action": "database.queryDocument", "env": ENV, "collectionName": "books",
                   "queryType": "WHERE", "query": {}, "access_token": token}),
        )
        .await;
    let again: Vec<Value> = answer["data"]["list"].as_array().unwrap().clone();
    assert_eq!(again, docs);
    let dir = server.stop().await;
    assert!(data_dir.starts_with(dir.path()));
    assert!(data_dir.join("database.sqlite3").is_file());
}

#[test]
fn index_plans_examine_only_candidates() {
    use cloud_emulator::database::service::{ensure_collection, execute, Action};
    use cloud_emulator::database::store::DocStore;
    use cloud_emulator::database::Caller;
    let dir = tempfile::tempdir().unwrap();
    let store = DocStore::open(dir.path()).unwrap();
    ensure_collection(
        &store,
        "e",
        "big",
        Some(&json!("ADMINWRITE")),
        Some(&["k".to_string()]),
    )
    .unwrap();
    // An admin action in env "e"; its answer.
    let admin = |action: Action, body: Value| {
        execute(
            &store,
            &Caller::Admin,
            "e",
            action,
            body.as_object().unwrap(),
            0,
        )
        .unwrap()
    };
    for chunk in 0..5 {
        let docs: Vec<Value> = (0..1000)
            .map(|i| json!({"k": (chunk * 1000 + i) % 500, "u": chunk * 1000 + i}))
            .collect();
        admin(Action::Add, json!({"collectionName": "big", "data": docs}));
    }
    let run = |query: Value| {
        let before = store.documents_examined();
        let answer = admin(
            Action::Query,
            json!({"collectionName": "big", "query": query, "limit": 1000}),
        );
        (
            answer["total"].as_u64().unwrap(),
            store.documents_examined() - before,
        )
    };
    assert_eq!(
        run(json!({"k": 7})),
        (10, 10),
        "indexed equality reads its 10 documents"
    );
    assert_eq!(
        run(json!({"k": {"$gte": 10, "$lt": 12}})),
        (20, 20),
        "indexed range"
    );
    assert_eq!(
        run(json!({"k": {"$in": [1, 2, 3]}, "u": {"$lt": 1000}})),
        (6, 30)
    );
    let (total, examined) = run(json!({"u": 4321}));
    assert_eq!(
        (total, examined),
        (1, 5000),
        "an unindexed field scans the collection"
    );
    let answer = admin(
        Action::Query,
        json!({"collectionName": "big", "query": {"u": 4321}, "limit": 1}),
    );
    let id = answer["data"]["list"][0]["_id"].clone();
    assert_eq!(run(json!({"_id": id})), (1, 1), "_id reads one document");
}
