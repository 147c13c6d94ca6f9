//! A function worker's child processes die with it (issue 9): a process a function spawns — detached, in
//! its own session-less background, ignoring its parent's exit — is killed when the worker is killed
//! (time limit) and when the runtime shuts down.

use std::path::Path;
use std::time::{Duration, Instant};

use cloud_emulator::functions::{FunctionsRuntime, InvokeContext, InvokeError};
use serde_json::{json, Value};

const SPAWNER: &str = r#"
const { spawn } = require('child_process');
exports.main = async (event) => {
  // Unref'd and ignoring its parent: it would outlive this worker without a process-group kill.
  const child = spawn('sleep', ['300'], { detached: false, stdio: 'ignore' });
  child.unref();
  if (event.hang) {
    globalThis.__pid = child.pid;
    await new Promise(() => {}); // runs into the time limit
  }
  return { pid: child.pid };
};
"#;

fn ctx() -> InvokeContext {
    InvokeContext {
        request_id: "req".to_owned(),
        env: "env".to_owned(),
        openid: "openid".to_owned(),
        appid: "app".to_owned(),
    }
}

fn alive(pid: u64) -> bool {
    // A zombie (state Z) has exited: only its parent has not reaped it yet.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn gone_within(pid: u64, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn functions_dir(dir: &Path) -> std::path::PathBuf {
    let function = dir.join("spawner");
    std::fs::create_dir_all(&function).unwrap();
    std::fs::write(function.join("index.js"), SPAWNER).unwrap();
    std::fs::write(function.join("config.json"), r#"{"timeout": 1}"#).unwrap();
    dir.to_path_buf()
}

#[tokio::test]
async fn children_die_with_their_worker_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = FunctionsRuntime::new(functions_dir(dir.path()));
    let text = runtime.invoke("spawner", json!({}), &ctx()).await.unwrap();
    let pid = serde_json::from_str::<Value>(&text).unwrap()["pid"]
        .as_u64()
        .unwrap();
    assert!(
        alive(pid),
        "the function's child runs while its worker is warm"
    );
    runtime.shutdown().await;
    assert!(
        gone_within(pid, Duration::from_secs(5)).await,
        "child {pid} outlived the runtime"
    );
}

#[tokio::test]
async fn children_die_when_the_time_limit_kills_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = FunctionsRuntime::new(functions_dir(dir.path()));
    // A first call tells us the pid layout: the next child is spawned by the same warm worker.
    let text = runtime.invoke("spawner", json!({}), &ctx()).await.unwrap();
    let first = serde_json::from_str::<Value>(&text).unwrap()["pid"]
        .as_u64()
        .unwrap();
    let err = runtime
        .invoke("spawner", json!({"hang": true}), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::Timeout(_)), "{err:?}");
    assert!(
        gone_within(first, Duration::from_secs(5)).await,
        "child {first} of the timed-out worker still runs"
    );
    runtime.shutdown().await;
}
