//! Storage through the real `require('wx-server-sdk')` (4.0.2, admin protocol) inside an emulated function: uploadFile (Buffer and
//! ReadStream), getTempFileURL, downloadFile, deleteFile and their failures, run as the admin (rules
//! bypassed, admin-owned files), checked against what clients see afterwards.

mod common;
mod storage_common;

use cloud_emulator::storage::StorageRule;
use common::*;
use serde_json::{json, Value};
use storage_common::{delete, fetch, sha256_hex, temp_url_item, upload, User};

/// Everything in one call, so the assertions see each step's result.
const FILES: &str = r#"
const cloud = require('wx-server-sdk');
const fs = require('fs');
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });
const failure = async (promise) => {
  try { await promise; return null; } catch (e) {
    return { isError: e instanceof Error, errCode: e.errCode, errMsg: e.errMsg, message: e.message, code: e.code };
  }
};
exports.main = async (event) => {
  const missing = event.missing;
  const bytes = Buffer.from(Array.from({ length: 70000 }, (_, i) => (i * 31 + 7) & 255));
  const up = await cloud.uploadFile({ cloudPath: 'fn/bytes.bin', fileContent: bytes });
  const streamed = await cloud.uploadFile({ cloudPath: 'fn/source.js', fileContent: fs.createReadStream(__filename) });
  const urls = await cloud.getTempFileURL({ fileList: [up.fileID, { fileID: streamed.fileID, maxAge: 120 }, missing] });
  const viaUrl = Buffer.from(await (await fetch(urls.fileList[0].tempFileURL)).arrayBuffer());
  const down = await cloud.downloadFile({ fileID: up.fileID });
  const downStreamed = await cloud.downloadFile({ fileID: streamed.fileID });
  const removed = await cloud.deleteFile({ fileList: [streamed.fileID, missing] });
  const empty = await cloud.getTempFileURL({ fileList: [] });
  return {
    up, streamed: streamed.fileID,
    urls: urls.fileList, urlErrMsg: urls.errMsg,
    viaUrlSame: viaUrl.equals(bytes),
    down: { same: Buffer.isBuffer(down.fileContent) && down.fileContent.equals(bytes), statusCode: down.statusCode, errMsg: down.errMsg },
    downStreamedSame: downStreamed.fileContent.equals(fs.readFileSync(__filename)),
    removed,
    empty: empty.fileList,
    failures: {
      download: await failure(cloud.downloadFile({ fileID: missing })),
      downloadDeleted: await failure(cloud.downloadFile({ fileID: streamed.fileID })),
      noPath: await failure(cloud.uploadFile({ cloudPath: '', fileContent: bytes })),
      badPath: await failure(cloud.uploadFile({ cloudPath: '../up.txt', fileContent: bytes })),
      noContent: await failure(cloud.uploadFile({ cloudPath: 'fn/x.txt', fileContent: 42 })),
      notList: await failure(cloud.deleteFile({ fileList: up.fileID })),
      badItem: await failure(cloud.deleteFile({ fileList: [up.fileID, 7] })),
    },
  };
};
"#;

/// What the admin may do to `event.fileID` (a user's file) whatever the rule, and a file of its own.
const ADMIN_OPS: &str = r#"
const cloud = require('wx-server-sdk');
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });
exports.main = async (event) => {
  const own = await cloud.uploadFile({ cloudPath: 'fn/admin.txt', fileContent: Buffer.from('admin only') });
  const read = await cloud.downloadFile({ fileID: event.fileID });
  const path = event.fileID.split('/').slice(3).join('/');
  const overwritten = await cloud.uploadFile({ cloudPath: path, fileContent: Buffer.from('admin was here') });
  const after = await cloud.downloadFile({ fileID: event.fileID });
  const removed = event.remove ? await cloud.deleteFile({ fileList: [event.fileID] }) : null;
  return {
    read: read.fileContent.toString(), sameId: overwritten.fileID === event.fileID,
    after: after.fileContent.toString(), own: own.fileID, removed: removed && removed.fileList,
  };
};
"#;

fn write_slow_function(dir: &tempfile::TempDir, name: &str, source: &str) {
    let folder = write_function(dir, name, source);
    // Worker start-up plus a dozen HTTP round trips on a loaded machine.
    std::fs::write(folder.join("config.json"), r#"{"timeout": 30}"#).unwrap();
}

async fn call(server: &TestServer, user: &User, name: &str, data: Value) -> Value {
    let answer = server.invoke(&user.env, &user.token, name, data).await;
    assert!(answer.get("code").is_none(), "{answer}");
    serde_json::from_str(answer["data"]["response_data"].as_str().unwrap()).unwrap()
}

async fn client(server: &TestServer, env: &str) -> User {
    User {
        env: env.to_string(),
        token: server.access_token(env).await,
    }
}

#[tokio::test]
async fn wx_server_sdk_uploads_downloads_and_deletes() {
    const ENV: &str = "envfs";
    let dir = tempfile::tempdir().unwrap();
    write_slow_function(&dir, "files", FILES);
    let config = config_in(&dir);
    let server = start_in(dir, config).await;
    let alice = client(&server, ENV).await;
    let missing = "cloud://envfs.656e-envfs-1250000000/fn/missing.bin";
    let r = call(&server, &alice, "files", json!({ "missing": missing })).await;

    let file_id = r["up"]["fileID"].as_str().unwrap().to_string();
    assert_eq!(
        file_id, "cloud://envfs.656e-envfs-1250000000/fn/bytes.bin",
        "{r}"
    );
    assert_eq!(
        r["up"]["statusCode"], -1,
        "wx-server-sdk 4.0.2 always reports -1 for the COS PUT"
    );
    assert_eq!(r["up"]["errMsg"], "uploadFile:ok");
    assert_eq!(r["urlErrMsg"], "getTempFileURL:ok");
    let urls = r["urls"].as_array().unwrap();
    assert_eq!(urls[0]["fileID"], file_id.as_str());
    assert_eq!(
        (urls[0]["status"].clone(), urls[0]["errMsg"].clone()),
        (json!(0), json!("ok"))
    );
    assert_eq!(urls[0]["maxAge"], 600, "the emulator's default lifetime");
    assert_eq!(urls[1]["maxAge"], 120);
    assert!(urls[1]["tempFileURL"].as_str().unwrap().contains("sign="));
    assert_eq!(urls[2]["status"], -503003);
    assert_eq!(urls[2]["tempFileURL"], "");
    assert_eq!(urls[2]["errMsg"], "storage file not exists");
    assert_eq!(r["viaUrlSame"], true);
    assert_eq!(
        r["down"],
        json!({"same": true, "statusCode": 200, "errMsg": "downloadFile:ok"})
    );
    assert_eq!(r["downStreamedSame"], true);
    assert_eq!(r["removed"]["errMsg"], "deleteFile:ok");
    let removed = r["removed"]["fileList"].as_array().unwrap();
    assert_eq!(
        removed[0],
        json!({"fileID": r["streamed"], "status": 0, "errMsg": "ok"})
    );
    assert_eq!(removed[1]["fileID"], missing);
    assert_eq!(removed[1]["status"], -503003);
    assert_eq!(r["empty"], json!([]));

    // The real SDK's reports: storage APIs lose the errCode mapping (-1, `<api>:fail <message>`) but
    // keep the string code (admin-protocol.md §5); some checks are the SDK's own, before any request.
    let failures = &r["failures"];
    let download = &failures["download"];
    assert_eq!(download["isError"], true);
    assert_eq!(
        (download["errCode"].clone(), download["code"].clone()),
        (json!(-1), json!("STORAGE_FILE_NONEXIST"))
    );
    assert_eq!(
        download["errMsg"],
        format!("downloadFile:fail storage file not exists: {missing}")
    );
    assert_eq!(download["message"], download["errMsg"]);
    assert_eq!(
        failures["downloadDeleted"]["code"], "STORAGE_FILE_NONEXIST",
        "{failures}"
    );
    for (name, message) in [
        (
            "noPath",
            "uploadFile:fail cloudPath must not be empty: \"\"",
        ),
        (
            "badPath",
            "uploadFile:fail cloudPath must not contain . or .. path segments: \"../up.txt\"",
        ),
        (
            "noContent",
            "uploadFile:fail [node-sdk] fileContent should be instance of fs.ReadStream or Buffer",
        ),
        (
            "notList",
            "parameter.fileList should be array instead of string;",
        ),
        (
            "badItem",
            "deleteFile:fail Type of fileList[1] must be string instead of number",
        ),
    ] {
        let failure = &failures[name];
        assert_eq!(failure["isError"], true, "{name}: {failure}");
        assert_eq!(failure["errCode"], -1, "{name}: {failure}");
        assert_eq!(failure["errMsg"], message, "{name}: {failure}");
    }
    assert_eq!(failures["noPath"]["code"], "INVALID_PARAM");

    // What a client sees: the admin's file is readable (creator_write) and byte-identical, but it is
    // not the client's to delete; the file the function deleted is gone.
    let item = temp_url_item(&server, &alice, &file_id, None).await;
    assert_eq!(item["code"], "SUCCESS", "{item}");
    let (status, body) = fetch(&server, item["tempFileURL"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let expected: Vec<u8> = (0..70000u32).map(|i| ((i * 31 + 7) & 255) as u8).collect();
    assert_eq!(sha256_hex(&body), sha256_hex(&expected));
    let denied = delete(&server, &alice, &[&file_id]).await;
    assert_eq!(denied[0]["code"], "STORAGE_EXCEED_AUTHORITY", "{denied:?}");
    let gone = temp_url_item(&server, &alice, r["streamed"].as_str().unwrap(), None).await;
    assert_eq!(gone["code"], "STORAGE_FILE_NONEXIST");
    server.stop().await;
}

#[tokio::test]
async fn wx_server_sdk_storage_passes_every_rule_and_owns_its_files() {
    let dir = tempfile::tempdir().unwrap();
    write_slow_function(&dir, "admin_ops", ADMIN_OPS);
    let mut config = config_in(&dir);
    config
        .storage_rules
        .insert("envpriv".into(), StorageRule::Private);
    config
        .storage_rules
        .insert("envro".into(), StorageRule::ReadOnly);
    let server = start_in(dir, config).await;

    // private: the admin reads, overwrites and deletes a user's file; its own file is hidden from users.
    let alice = client(&server, "envpriv").await;
    let file_id = upload(&server, &alice, "alice/note.txt", b"alice's secret").await;
    let r = call(
        &server,
        &alice,
        "admin_ops",
        json!({ "fileID": file_id, "remove": true }),
    )
    .await;
    assert_eq!(r["read"], "alice's secret", "{r}");
    assert_eq!(r["sameId"], true);
    assert_eq!(r["after"], "admin was here");
    assert_eq!(
        r["removed"],
        json!([{"fileID": file_id, "status": 0, "errMsg": "ok"}])
    );
    let gone = temp_url_item(&server, &alice, &file_id, None).await;
    assert_eq!(gone["code"], "STORAGE_FILE_NONEXIST");
    let own = r["own"].as_str().unwrap();
    let hidden = temp_url_item(&server, &alice, own, None).await;
    assert_eq!(hidden["code"], "STORAGE_EXCEED_AUTHORITY", "{hidden}");

    // read_only: clients write nothing, the admin still creates and overwrites (its own file here).
    let bob = client(&server, "envro").await;
    let own = "cloud://envro.656e-envro-1250000000/fn/admin.txt";
    let r = call(
        &server,
        &bob,
        "admin_ops",
        json!({ "fileID": own, "remove": false }),
    )
    .await;
    assert_eq!(
        (r["read"].clone(), r["own"].clone()),
        (json!("admin only"), json!(own)),
        "{r}"
    );
    let item = temp_url_item(&server, &bob, own, None).await;
    assert_eq!(item["code"], "SUCCESS");
    let (status, body) = fetch(&server, item["tempFileURL"].as_str().unwrap()).await;
    assert_eq!((status, body.as_slice()), (200, &b"admin was here"[..]));
    let denied = delete(&server, &bob, &[own]).await;
    assert_eq!(denied[0]["code"], "STORAGE_EXCEED_AUTHORITY");
    server.stop().await;
}

#[tokio::test]
async fn only_the_admin_token_gets_admin_rights() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(&dir);
    config
        .storage_rules
        .insert("envpriv".into(), StorageRule::Private);
    let admin_token = config.admin_token.clone();
    let server = start_in(dir, config).await;
    let alice = client(&server, "envpriv").await;
    let file_id = upload(&server, &alice, "alice/a.txt", b"alice's").await;
    let ask = |token: String| {
        json!({"action": "storage.batchGetDownloadUrl", "env": "envpriv",
               "file_list": [{"fileid": file_id}], "access_token": token})
    };
    // The admin token (as access_token) reads a private file of someone else…
    let answer = server.web("envpriv", ask(admin_token.clone())).await;
    assert_eq!(
        answer["data"]["download_list"][0]["code"], "SUCCESS",
        "{answer}"
    );
    // …a token of the same length that is not it is no login at all…
    let mut forged = admin_token.into_bytes();
    forged[0] = if forged[0] == b'a' { b'b' } else { b'a' };
    let answer = server
        .web("envpriv", ask(String::from_utf8(forged).unwrap()))
        .await;
    assert_eq!(answer["code"], "CHECK_LOGIN_FAILED", "{answer}");
    // …and another user still meets the rule.
    let bob = client(&server, "envpriv").await;
    let item = temp_url_item(&server, &bob, &file_id, None).await;
    assert_eq!(item["code"], "STORAGE_EXCEED_AUTHORITY");
    server.stop().await;
}
