//! The storage options of the built binary: `--max-upload-bytes` and `--storage-rule` reach the server.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_cloud-emulator");

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

#[tokio::test]
async fn upload_limit_and_rules_come_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "start",
            "--port",
            "0",
            "--data-dir",
            "data",
            "--max-upload-bytes",
            "10",
            "--storage-rule",
            "envro=read_only",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
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

    // SAFETY: kill(2) on our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cloud-emulator did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}
