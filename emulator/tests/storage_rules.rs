//! Permissions (wx's default: everyone reads, the creator overwrites and deletes; other rules per env
//! from the CLI config or the rules file), delete's per-item codes, and path traversal attempts.

mod common;
mod storage_common;

use std::collections::HashMap;

use cloud_emulator::storage::StorageRule;
use common::*;
use serde_json::json;
use storage_common::*;

#[tokio::test]
async fn by_default_others_read_but_cannot_overwrite_or_delete() {
    let server = start_default().await;
    let alice = user(&server, ENV).await;
    let bob = user(&server, ENV).await;
    let file_id = upload(&server, &alice, "shared/a.txt", b"alice's").await;

    // Bob reads.
    let url = temp_url(&server, &bob, &file_id).await;
    assert_eq!(fetch(&server, &url).await, (200, b"alice's".to_vec()));

    // Bob cannot get an upload grant for Alice's path…
    let answer = action(
        &server,
        &bob,
        "storage.getUploadMetadata",
        json!({"path": "shared/a.txt"}),
    )
    .await;
    assert_eq!(answer["code"], "STORAGE_EXCEED_AUTHORITY", "{answer}");
    // …nor delete it.
    let list = delete(&server, &bob, &[&file_id]).await;
    assert_eq!(list[0]["code"], "STORAGE_EXCEED_AUTHORITY");
    assert_eq!(list[0]["fileID"], file_id);

    // A grant for a new path does not let Bob overwrite it once Alice took it.
    let bob_meta = upload_meta(&server, &bob, "shared/race.txt", "put").await;
    upload(&server, &alice, "shared/race.txt", b"alice first").await;
    let response = put(&server, &bob_meta, "bob second", "text/plain").await;
    assert_xml_error(response, 403, "AccessDenied").await;
    let url = temp_url(&server, &bob, bob_meta["fileId"].as_str().unwrap()).await;
    assert_eq!(fetch(&server, &url).await, (200, b"alice first".to_vec()));

    // Alice overwrites and deletes her own files.
    upload(&server, &alice, "shared/a.txt", b"alice v2").await;
    let url = temp_url(&server, &alice, &file_id).await;
    assert_eq!(fetch(&server, &url).await, (200, b"alice v2".to_vec()));
    assert_eq!(
        delete(&server, &alice, &[&file_id]).await[0]["code"],
        "SUCCESS"
    );
    server.stop().await;
}

#[tokio::test]
async fn delete_answers_per_item() {
    let server = start_default().await;
    let alice = user(&server, ENV).await;
    let bob = user(&server, ENV).await;
    let mine = upload(&server, &bob, "d/mine.txt", b"1").await;
    let theirs = upload(&server, &alice, "d/theirs.txt", b"2").await;
    let missing = "cloud://envx.656e-envx-1250000000/d/missing.txt";
    let list = delete(
        &server,
        &bob,
        &[&mine, missing, &theirs, "cloud://broken", &mine],
    )
    .await;
    let codes: Vec<&str> = list
        .iter()
        .map(|item| item["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "SUCCESS",
            "STORAGE_FILE_NONEXIST",
            "STORAGE_EXCEED_AUTHORITY",
            "INVALID_PARAM",
            "STORAGE_FILE_NONEXIST"
        ]
    );
    let fids: Vec<&str> = list
        .iter()
        .map(|item| item["fileID"].as_str().unwrap())
        .collect();
    assert_eq!(
        fids,
        [
            mine.as_str(),
            missing,
            theirs.as_str(),
            "cloud://broken",
            mine.as_str()
        ]
    );
    assert!(list[1]["message"].as_str().unwrap().contains("missing.txt"));
    assert_eq!(blob_count(&server), 1, "only Alice's blob is left");
    server.stop().await;
}

#[tokio::test]
async fn rules_per_env_from_the_config_and_the_rules_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(&dir);
    std::fs::create_dir_all(&config.data_dir).unwrap();
    std::fs::write(
        config.data_dir.join("storage-rules.json"),
        r#"{"envro": "read_only", "envall": "creator_write"}"#,
    )
    .unwrap();
    config.storage_rules = HashMap::from([
        ("envpriv".to_string(), StorageRule::Private),
        ("envall".to_string(), StorageRule::AllWrite),
    ]);
    let server = start_in(dir, config).await;

    // private: only the creator reads.
    let owner = user(&server, "envpriv").await;
    let other = user(&server, "envpriv").await;
    let file_id = upload(&server, &owner, "p.txt", b"mine").await;
    assert_eq!(
        temp_url_item(&server, &other, &file_id, None).await["code"],
        "STORAGE_EXCEED_AUTHORITY"
    );
    temp_url(&server, &owner, &file_id).await;

    // all_write (the CLI overrides the file): anyone overwrites and deletes.
    let a = user(&server, "envall").await;
    let b = user(&server, "envall").await;
    let file_id = upload(&server, &a, "w.txt", b"a").await;
    upload(&server, &b, "w.txt", b"b").await;
    assert_eq!(
        fetch(&server, &temp_url(&server, &a, &file_id).await)
            .await
            .1,
        b"b"
    );
    assert_eq!(delete(&server, &b, &[&file_id]).await[0]["code"], "SUCCESS");

    // read_only (from the file): no client writes at all.
    let reader = user(&server, "envro").await;
    let answer = action(
        &server,
        &reader,
        "storage.getUploadMetadata",
        json!({"path": "x.txt"}),
    )
    .await;
    assert_eq!(answer["code"], "STORAGE_EXCEED_AUTHORITY");
    server.stop().await;
}

#[tokio::test]
async fn a_broken_rules_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(&dir);
    std::fs::create_dir_all(&config.data_dir).unwrap();
    std::fs::write(
        config.data_dir.join("storage-rules.json"),
        r#"{"envx": "everyone"}"#,
    )
    .unwrap();
    let err = cloud_emulator::start(config).await.err().expect("refused");
    assert!(err.to_string().contains("storage-rules.json"), "{err}");
}

#[tokio::test]
async fn traversal_attempts_never_touch_files_outside_blobs() {
    let server = start_default().await;
    let user = user(&server, ENV).await;
    let data = server.dir.path().join("data");
    // What the other services keep in the data dir (token secret, other databases): left alone below.
    let at_start = files_under(&data);

    // Rejected by the naming rules.
    for path in [
        "../escape.txt",
        "a/../../escape.txt",
        "/etc/passwd",
        "a//b.txt",
        "./a.txt",
        "a/..",
        "",
        "a\u{0}b",
    ] {
        let answer = action(
            &server,
            &user,
            "storage.getUploadMetadata",
            json!({"path": path}),
        )
        .await;
        assert_eq!(answer["code"], "INVALID_PARAM", "{path:?}: {answer}");
    }
    // Kept as opaque keys: percent-encoded dots and backslashes are just characters.
    for (index, path) in [
        "%2e%2e%2fescape.txt",
        "..%2F..%2Ftoken-secret",
        "..\\..\\escape.txt",
        "a\\..\\b.txt",
        "...",
    ]
    .into_iter()
    .enumerate()
    {
        let body = pattern(10 + index, index as u8);
        let file_id = upload(&server, &user, path, &body).await;
        let url = temp_url(&server, &user, &file_id).await;
        assert_eq!(fetch(&server, &url).await, (200, body), "{path}");
    }
    // Crafted object URLs: traversal in the URL itself never verifies.
    let meta = upload_meta(&server, &user, "ok.txt", "put").await;
    for raw in [
        "../../token-secret",
        "..%2F..%2Ftoken-secret",
        "%2e%2e/%2e%2e/token-secret",
        "..%5C..%5Ctoken-secret",
    ] {
        let url = format!("{}/cos/{ENV}/{raw}", server.url);
        let mut forged = meta.clone();
        forged["url"] = json!(url);
        let response = put(&server, &forged, "pwned", "text/plain").await;
        assert!(
            response.status().is_client_error(),
            "{raw}: {}",
            response.status()
        );
        let response = server
            .client
            .get(format!("{url}?sign=00&t=99999999999999"))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{raw}: {}",
            response.status()
        );
    }
    // fileIDs with traversal are invalid items.
    let item = temp_url_item(
        &server,
        &user,
        "cloud://envx.656e-envx-1250000000/../token-secret",
        None,
    )
    .await;
    assert_eq!(item["code"], "INVALID_PARAM");

    // Storage added its database and blobs named by us, nothing else.
    let secret_before = std::fs::read(data.join("token-secret")).unwrap();
    for file in files_under(&data) {
        let name = file.to_string_lossy().to_string();
        let allowed = at_start.contains(&file)
            || name.starts_with("storage.sqlite3")
            || name
                .strip_prefix("blobs/")
                .is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(allowed, "unexpected file {name}");
    }
    assert_eq!(blob_count(&server), 5);
    let dir = server.stop().await;
    assert_eq!(
        std::fs::read(data.join("token-secret")).unwrap(),
        secret_before
    );
    let top: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        top.len(),
        2,
        "only data/ and functions/ in the test dir: {top:?}"
    );
}
