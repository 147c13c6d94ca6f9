//! The first minute of a new user: `start` without `--port` listens on the documented default (8787), a
//! port in use is an error that names `--port`, and the banner shows the dashboard link and the
//! `cloud.init` line to paste into an app.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn a_port_in_use_is_an_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut child = emulator(&dir)
        .args([
            "start",
            "--port",
            &port,
            "--data-dir",
            "data",
            "--functions",
            "fns",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("port {port} on 127.0.0.1 is already in use"))
            && stderr.contains("--port PORT"),
        "{stderr}"
    );
}

#[test]
fn start_defaults_to_8787_and_prints_the_dashboard_and_init_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = emulator(&dir)
        .args([
            "start",
            "--data-dir",
            "data",
            "--functions",
            "fns",
            "--env",
            "my-env",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    if first_line.is_empty() {
        // Another program (a `make demo`, say) holds 8787 on this machine: the default must then
        // fail loudly instead of moving elsewhere.
        let status = wait_with_deadline(&mut child, Duration::from_secs(20));
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(1));
        assert!(
            stderr.contains("port 8787") && stderr.contains("--port"),
            "{stderr}"
        );
        return;
    }
    assert_eq!(first_line.trim(), "listening on http://127.0.0.1:8787");
    signal(&child, libc::SIGTERM);
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("dashboard http://127.0.0.1:8787/_/ — open this one-time link to sign in: http://127.0.0.1:8787/_/login?nonce="),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "in your app: cloud.init({ env: 'my-env', endpoint: 'http://127.0.0.1:8787' })"
        ),
        "{stderr}"
    );
}
