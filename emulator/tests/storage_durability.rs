//! Durability and atomicity: concurrent readers during overwrites see a whole old or whole new body,
//! data and URLs survive a restart, orphan blobs are swept, and many uploads at once all land.

mod common;
mod storage_common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use storage_common::*;

/// A body of `len` bytes all equal to `byte`.
fn uniform(len: usize, byte: u8) -> Vec<u8> {
    vec![byte; len]
}

#[tokio::test]
async fn readers_during_overwrites_see_whole_bodies() {
    let server = Arc::new(start_default().await);
    let owner = user(&server, ENV).await;
    let size = 512 * 1024;
    let file_id = upload(&server, &owner, "hot/file.bin", &uniform(size, 0)).await;
    let url = temp_url(&server, &owner, &file_id).await;

    let writing = Arc::new(AtomicBool::new(true));
    let reads = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (server, url, writing, reads) =
            (server.clone(), url.clone(), writing.clone(), reads.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            // Bounded: stops when the writer is done (or after 2000 reads at most).
            for _ in 0..2000 {
                if !writing.load(Ordering::SeqCst) {
                    break;
                }
                let response = server.client.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                let etag = response.headers()["etag"].to_str().unwrap().to_string();
                let body = response.bytes().await.unwrap();
                assert_eq!(body.len(), size, "a whole body");
                let first = body[0];
                assert!(body.iter().all(|b| *b == first), "one version, not a mix");
                assert_eq!(
                    etag,
                    format!("\"{}\"", sha256_hex(&body)),
                    "headers match the body"
                );
                seen.insert(first);
                reads.fetch_add(1, Ordering::SeqCst);
            }
            seen
        }));
    }
    for version in 1..=12u8 {
        upload(&server, &owner, "hot/file.bin", &uniform(size, version)).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writing.store(false, Ordering::SeqCst);
    let mut versions_seen = std::collections::BTreeSet::new();
    for reader in readers {
        versions_seen.extend(reader.await.unwrap());
    }
    assert!(reads.load(Ordering::SeqCst) > 0);
    assert!(
        versions_seen.len() > 1,
        "readers saw the overwrites: {versions_seen:?}"
    );
    assert_eq!(fetch(&server, &url).await.1, uniform(size, 12));
    assert_eq!(blob_count(&server), 1, "replaced blobs are removed");
    Arc::try_unwrap(server)
        .ok()
        .expect("sole owner")
        .stop()
        .await;
}

#[tokio::test]
async fn data_survives_a_restart_and_orphans_are_swept() {
    let server = start_default().await;
    let alice = user(&server, ENV).await;
    let body = pattern(200_000, 5);
    let file_id = upload(&server, &alice, "keep/me.bin", &body).await;
    let url = temp_url(&server, &alice, &file_id).await;
    let config = {
        let mut config = config_in(&server.dir);
        config.port = 0;
        config
    };
    let dir = server.stop().await;

    // A blob left by a crash between writing and committing.
    let orphan = dir
        .path()
        .join("data/blobs/0123456789abcdef0123456789abcdef");
    std::fs::write(&orphan, b"half an upload").unwrap();

    let server = start_in(dir, config).await;
    assert!(!orphan.exists(), "orphan swept on start");
    // The old URL still works: it is signed with the data dir's secret and names the path.
    let old_url = url.replace(&url[..url.find("/cos/").unwrap()], &server.url);
    assert_eq!(fetch(&server, &old_url).await, (200, body.clone()));
    // So do the user's token and new URLs; the owner is remembered.
    let fresh = temp_url(&server, &alice, &file_id).await;
    assert_eq!(fetch(&server, &fresh).await, (200, body));
    let bob = user(&server, ENV).await;
    assert_eq!(
        delete(&server, &bob, &[&file_id]).await[0]["code"],
        "STORAGE_EXCEED_AUTHORITY"
    );
    assert_eq!(
        delete(&server, &alice, &[&file_id]).await[0]["code"],
        "SUCCESS"
    );
    assert_eq!(blob_count(&server), 0);
    server.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_uploads_all_land() {
    let server = Arc::new(start_default().await);
    let user = Arc::new(user(&server, ENV).await);
    let mut tasks = Vec::new();
    for index in 0..50u8 {
        let (server, user) = (server.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            let body = pattern(20_000 + index as usize, index);
            let method = if index % 2 == 0 { "put" } else { "post" };
            let path = format!("many/{index}.bin");
            let meta = upload_meta(&server, &user, &path, method).await;
            let status = if method == "put" {
                put(&server, &meta, body.clone(), "application/octet-stream")
                    .await
                    .status()
            } else {
                post_form(
                    &server,
                    &meta,
                    &path,
                    body.clone(),
                    "application/octet-stream",
                    "signature",
                    Some("201"),
                )
                .await
                .status()
            };
            assert!(status == 200 || status == 201, "{status}");
            (meta["fileId"].as_str().unwrap().to_string(), body)
        }));
    }
    for task in tasks {
        let (file_id, body) = task.await.unwrap();
        let url = temp_url(&server, &user, &file_id).await;
        assert_eq!(fetch(&server, &url).await, (200, body));
    }
    assert_eq!(blob_count(&server), 50);
    Arc::try_unwrap(server)
        .ok()
        .expect("sole owner")
        .stop()
        .await;
}
