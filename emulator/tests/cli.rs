//! The built `cloud-emulator` binary: `start` prints its address and stops cleanly on signals; `exec`
//! runs a command against it and passes the exit code through.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{emulator, listening_url, signal, wait_with_deadline, Api};

#[test]
fn exec_passes_the_exit_code_through_and_exports_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let status = emulator(&dir)
        .args(["exec", "--", "sh", "-c", "exit 7"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
    let status = emulator(&dir)
        .args(["exec", "--", "true"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let output = emulator(&dir)
        .args([
            "exec",
            "--data-dir",
            "d",
            "--",
            "sh",
            "-c",
            "echo \"$CLOUD_EMULATOR_URL\"",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let url = String::from_utf8(output.stdout).unwrap();
    assert!(url.trim().starts_with("http://127.0.0.1:"), "{url:?}");
    assert!(dir
        .path()
        .join("d")
        .join(cloud_emulator::secret::SECRET_FILE)
        .exists());
}

#[test]
fn exec_command_reaches_the_server() {
    let dir = tempfile::tempdir().unwrap();
    // Node's fetch: exit 5 only when the emulator answered the envelope as expected.
    let script = "fetch(process.env.CLOUD_EMULATOR_URL + '/web?env=e1', {method: 'POST', body: '{\"action\":\"x\"}'})\
        .then(r => r.json()).then(j => process.exit(j.code === 'INVALID_ACTION' ? 5 : 1), () => process.exit(2))";
    let status = emulator(&dir)
        .args(["exec", "--", "node", "-e", script])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(5));
}

#[test]
fn exec_of_a_missing_command_is_127() {
    let dir = tempfile::tempdir().unwrap();
    let status = emulator(&dir)
        .args(["exec", "--", "/definitely/not/a/command"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(127));
}

#[test]
fn exec_forwards_sigterm_to_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "trap 'exit 3' TERM; touch {}; while true; do sleep 0.05; done",
        ready.display()
    );
    let mut child = emulator(&dir)
        .args(["exec", "--", "sh", "-c", &script])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, libc::SIGTERM);
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(3));
}

#[test]
fn start_prints_its_address_serves_and_exits_zero_on_signals() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = emulator(&dir)
            .args([
                "start",
                "--port",
                "0",
                "--data-dir",
                "data",
                "--functions",
                "fns",
                "--env",
                "e1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = listening_url(&mut child);
        let port: u16 = url
            .strip_prefix("http://127.0.0.1:")
            .unwrap()
            .parse()
            .unwrap();
        assert_ne!(port, 0);

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = runtime.block_on(Api::new(url).web(
            "other",
            serde_json::json!({"action": "auth.signInAnonymously"}),
        ));
        assert_eq!(answer["code"], "INVALID_ENV");

        signal(&child, sig);
        let status = wait_with_deadline(&mut child, Duration::from_secs(20));
        assert_eq!(status.code(), Some(0), "signal {sig}");
    }
}

#[test]
fn start_refuses_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let status = emulator(&dir)
        .args(["start", "--allow-origin", "example.com"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let status = emulator(&dir)
        .args(["start", "--hosting", "missing-dir"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let status = emulator(&dir)
        .args(["start", "--env", "bad env"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}
