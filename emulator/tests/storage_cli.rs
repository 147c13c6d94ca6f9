//! The built binary: `--max-upload-bytes` and `--storage-rule` reach the server, and a kill in the middle
//! of an upload leaves the previous object whole (the partial blob is swept on the next start).

mod common;
mod storage_common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{emulator, listening_url, signal, wait_with_deadline, Api};
use serde_json::{json, Value};
use storage_common::{action, fetch, temp_url, upload_meta, user};

/// Starts the binary in `dir` with `args` after `start --port 0 --data-dir data`; the child and its API.
fn spawn(dir: &tempfile::TempDir, args: &[&str]) -> (std::process::Child, Api) {
    let mut child = emulator(dir)
        .args(["start", "--port", "0", "--data-dir", "data"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = listening_url(&mut child);
    (child, Api::new(url))
}

fn blobs(dir: &tempfile::TempDir) -> usize {
    std::fs::read_dir(dir.path().join("data/blobs"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// A PUT to the metadata's URL with only the signature headers, to add a body to.
fn signed_put(api: &Api, meta: &Value) -> reqwest::RequestBuilder {
    api.client
        .put(meta["url"].as_str().unwrap())
        .header("authorization", meta["authorization"].as_str().unwrap())
        .header("x-cos-security-token", meta["token"].as_str().unwrap())
}

#[tokio::test]
async fn a_kill_mid_upload_keeps_the_old_object_and_sweeps_the_partial_blob() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, api) = spawn(&dir, &[]);
    let owner = user(&api, "envx").await;
    let meta = upload_meta(&api, &owner, "k/v.txt", "put").await;
    let response = signed_put(&api, &meta)
        .body("version 1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let file_id = meta["fileId"].as_str().unwrap().to_string();

    // Version 2 trickles in; the process dies while it is being written.
    let meta = upload_meta(&api, &owner, "k/v.txt", "put").await;
    let slow = futures_util::stream::unfold(0u32, |sent| async move {
        if sent > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (sent < 400).then(|| (Ok::<_, std::io::Error>(vec![b'2'; 4096]), sent + 1))
    });
    let request = signed_put(&api, &meta)
        .body(reqwest::Body::wrap_stream(slow))
        .send();
    let upload = tokio::spawn(request);
    let deadline = Instant::now() + Duration::from_secs(10);
    while blobs(&dir) < 2 {
        assert!(Instant::now() < deadline, "the second blob never appeared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        upload.await.unwrap().is_err(),
        "the upload did not complete"
    );
    assert_eq!(blobs(&dir), 2, "the partial blob is on disk after the kill");

    let (mut child, api) = spawn(&dir, &[]);
    assert_eq!(blobs(&dir), 1, "swept on start");
    // Tokens survive (the secret is in the data dir); the object is version 1, whole.
    let url = temp_url(&api, &owner, &file_id).await;
    assert_eq!(fetch(&api, &url).await, (200, b"version 1".to_vec()));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn upload_limit_and_rules_come_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, api) = spawn(
        &dir,
        &[
            "--max-upload-bytes",
            "10",
            "--storage-rule",
            "envro=read_only",
        ],
    );

    let writer = user(&api, "envx").await;
    let meta = upload_meta(&api, &writer, "a.bin", "put").await;
    let put = |body: &'static [u8]| signed_put(&api, &meta).body(body).send();
    let response = put(b"01234567890").await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("<Code>EntityTooLarge</Code>"));
    assert_eq!(put(b"0123456789").await.unwrap().status(), 200);
    assert!(dir.path().join("data/blobs").is_dir());
    assert!(dir.path().join("data/storage.sqlite3").is_file());

    let reader = user(&api, "envro").await;
    let answer = action(
        &api,
        &reader,
        "storage.getUploadMetadata",
        json!({"path": "a.bin"}),
    )
    .await;
    assert_eq!(answer["code"], "STORAGE_EXCEED_AUTHORITY");

    signal(&child, libc::SIGTERM);
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    assert!(status.success());
}
