//! The built binary: `--max-upload-bytes` and `--storage-rule` reach the server, and a kill in the middle
//! of an upload leaves the previous object whole (the partial blob is swept on the next start).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{emulator, listening_url, signal, wait_with_deadline};
use serde_json::{json, Value};

async fn web(client: &reqwest::Client, url: &str, env: &str, body: Value) -> Value {
    client
        .post(format!("{url}/web?env={env}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn token(client: &reqwest::Client, url: &str, env: &str) -> String {
    let credentials: Value = client
        .post(format!("{url}/auth/v1/signin/anonymously?client_id={env}"))
        .header("x-device-id", "storage-cli-device")
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    credentials["access_token"].as_str().unwrap().to_string()
}

/// Starts the binary in `dir` with `args` after `start --port 0 --data-dir data`; the child and its URL.
fn spawn(dir: &tempfile::TempDir, args: &[&str]) -> (std::process::Child, String) {
    let mut child = emulator(dir)
        .args(["start", "--port", "0", "--data-dir", "data"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = listening_url(&mut child);
    (child, url)
}

fn blobs(dir: &tempfile::TempDir) -> usize {
    std::fs::read_dir(dir.path().join("data/blobs"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

async fn upload_meta(client: &reqwest::Client, url: &str, token: &str, path: &str) -> Value {
    let answer = web(
        client,
        url,
        "envx",
        json!({"action": "storage.getUploadMetadata", "env": "envx", "path": path, "method": "put", "access_token": token}),
    )
    .await;
    answer["data"].clone()
}

async fn download(client: &reqwest::Client, url: &str, token: &str, file_id: &str) -> Vec<u8> {
    let answer = web(
        client,
        url,
        "envx",
        json!({"action": "storage.batchGetDownloadUrl", "env": "envx", "file_list": [{"fileid": file_id}], "access_token": token}),
    )
    .await;
    let temp_url = answer["data"]["download_list"][0]["tempFileURL"]
        .as_str()
        .unwrap_or_else(|| panic!("no temp URL in {answer}"))
        .to_string();
    client
        .get(temp_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn a_kill_mid_upload_keeps_the_old_object_and_sweeps_the_partial_blob() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn(&dir, &[]);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let access_token = token(&client, &url, "envx").await;
    let meta = upload_meta(&client, &url, &access_token, "k/v.txt").await;
    let response = client
        .put(meta["url"].as_str().unwrap())
        .header("authorization", meta["authorization"].as_str().unwrap())
        .header("x-cos-security-token", meta["token"].as_str().unwrap())
        .body("version 1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let file_id = meta["fileId"].as_str().unwrap().to_string();

    // Version 2 trickles in; the process dies while it is being written.
    let meta = upload_meta(&client, &url, &access_token, "k/v.txt").await;
    let slow = futures_util::stream::unfold(0u32, |sent| async move {
        if sent > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (sent < 400).then(|| (Ok::<_, std::io::Error>(vec![b'2'; 4096]), sent + 1))
    });
    let request = client
        .put(meta["url"].as_str().unwrap())
        .header("authorization", meta["authorization"].as_str().unwrap())
        .header("x-cos-security-token", meta["token"].as_str().unwrap())
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

    let (mut child, url) = spawn(&dir, &[]);
    assert_eq!(blobs(&dir), 1, "swept on start");
    // Tokens survive (the secret is in the data dir); the object is version 1, whole.
    assert_eq!(
        download(&client, &url, &access_token, &file_id).await,
        b"version 1"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn upload_limit_and_rules_come_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn(
        &dir,
        &[
            "--max-upload-bytes",
            "10",
            "--storage-rule",
            "envro=read_only",
        ],
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let access_token = token(&client, &url, "envx").await;
    let meta = web(
        &client,
        &url,
        "envx",
        json!({"action": "storage.getUploadMetadata", "env": "envx", "path": "a.bin", "method": "put", "access_token": access_token}),
    )
    .await["data"]
        .clone();
    let put = |body: &'static [u8]| {
        client
            .put(meta["url"].as_str().unwrap())
            .header("authorization", meta["authorization"].as_str().unwrap())
            .header("x-cos-security-token", meta["token"].as_str().unwrap())
            .body(body)
            .send()
    };
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

    let access_token = token(&client, &url, "envro").await;
    let answer = web(
        &client,
        &url,
        "envro",
        json!({"action": "storage.getUploadMetadata", "env": "envro", "path": "a.bin", "access_token": access_token}),
    )
    .await;
    assert_eq!(answer["code"], "STORAGE_EXCEED_AUTHORITY");

    signal(&child, libc::SIGTERM);
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    assert!(status.success());
}
