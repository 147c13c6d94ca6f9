//! One warm Node.js worker process running one cloud function, one call at a time.
//!
//! Protocol (ours, private): the worker script (worker.js, embedded) reads one JSON request per line on
//! stdin and answers one JSON reply per line on stdout, prefixed with a random per-worker marker; user
//! output is redirected to stderr, which is forwarded to the emulator's stderr prefixed with the
//! function name and the start of the call's request id. Lines on stdout without the marker are user
//! output written straight to fd 1.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::resolve::FunctionSpec;

/// The worker script, embedded in the binary and passed to `node -e`.
const WORKER_JS: &str = include_str!("worker.js");
/// How long a fresh worker may take to boot Node and say it is ready.
const STARTUP_LIMIT: Duration = Duration::from_secs(15);
/// How long loading a function's code (its first `require`, e.g. of wx-server-sdk) may take; like the
/// platform's init phase it does not count against the function's own time limit.
const INIT_LIMIT: Duration = Duration::from_secs(30);
/// How many of the last stderr lines of a call are kept to explain a crash.
const STDERR_TAIL_LINES: usize = 20;

/// How to start workers.
#[derive(Debug, Clone)]
pub struct SpawnConfig {
    pub node: std::path::PathBuf,
    pub memory_limit_mb: u32,
    pub log_output: bool,
}

/// What came of one call.
#[derive(Debug)]
pub enum CallOutcome {
    /// JSON text of the return value.
    Ok(String),
    /// The function threw or rejected: message and stack.
    Threw(String),
    /// The return value is not JSON.
    NonJson(String),
    /// The time limit passed; the worker has been killed.
    TimedOut,
    /// The worker died during the call; the text explains how.
    Crashed(String),
}

impl CallOutcome {
    /// Whether the worker is still fit for another call afterwards.
    pub fn keeps_worker(&self) -> bool {
        matches!(
            self,
            CallOutcome::Ok(_) | CallOutcome::Threw(_) | CallOutcome::NonJson(_)
        )
    }
}

/// One line of console output of a call (`console.log` and friends; `stderr` for what a dying worker
/// wrote).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct ConsoleLine {
    /// `log`, `info`, `warn`, `error`, `debug`, or `stderr`.
    pub level: String,
    /// The formatted text.
    pub text: String,
}

#[derive(Debug, Deserialize)]
struct Reply {
    #[serde(default)]
    logs: Vec<ConsoleLine>,
    #[serde(default)]
    id: Option<u64>,
    status: String,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// A running worker process.
pub struct Worker {
    function_name: String,
    /// The worker's process group (its pid): the worker and every process its function started.
    process_group: Option<u32>,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    marker: String,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// The start of the request id of the call in progress: prefixes its output on the emulator's stderr
    /// so the lines of concurrent calls can be told apart (the dashboard shows them per call).
    call_tag: Arc<Mutex<String>>,
    stderr_task: Option<JoinHandle<()>>,
    next_id: u64,
    log_output: bool,
    last_logs: Vec<ConsoleLine>,
    /// Which code version of the function this worker loaded (see the pool's generation).
    pub generation: u64,
    /// When the worker last finished a call (or started).
    pub idle_since: std::time::Instant,
}

impl Worker {
    /// Starts a worker for `spec` and waits until Node has booted.
    pub async fn spawn(
        config: &SpawnConfig,
        function_name: &str,
        spec: &FunctionSpec,
        generation: u64,
    ) -> Result<Worker, String> {
        let marker = format!("\u{1e}cloud-emulator:{:016x}:", rand::random::<u64>());
        let mut command = Command::new(&config.node);
        command
            .arg(format!("--max-old-space-size={}", config.memory_limit_mb))
            .arg("-e")
            .arg(WORKER_JS)
            .current_dir(&spec.dir)
            .envs(&spec.env_vars)
            .env("CLOUD_EMULATOR_WORKER_MARKER", &marker)
            .env("CLOUD_EMULATOR_FUNCTION_MAIN", &spec.main)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group, so whatever the function spawns can be killed with it (see
        // `kill_group`), and a parent-death signal, so the worker dies with the emulator even on SIGKILL.
        #[cfg(target_os = "linux")]
        unsafe {
            command.process_group(0).pre_exec(|| {
                // SAFETY: prctl is async-signal-safe; this runs in the child between fork and exec.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        #[cfg(all(unix, not(target_os = "linux")))]
        command.process_group(0);
        let mut child = command.spawn().map_err(|err| {
            format!(
                "could not start Node.js ({}) for function \"{function_name}\": {err}",
                config.node.display()
            )
        })?;
        let stdin = child.stdin.take().ok_or("worker stdin missing")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("worker stdout missing")?);
        let stderr = child.stderr.take().ok_or("worker stderr missing")?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let call_tag = Arc::new(Mutex::new(String::new()));
        let stderr_task = tokio::spawn(forward_stderr(
            stderr,
            function_name.to_owned(),
            Arc::clone(&stderr_tail),
            Arc::clone(&call_tag),
            config.log_output,
        ));
        let process_group = child.id();
        let mut worker = Worker {
            function_name: function_name.to_owned(),
            process_group,
            child,
            stdin,
            stdout,
            marker,
            stderr_tail,
            call_tag,
            stderr_task: Some(stderr_task),
            next_id: 1,
            log_output: config.log_output,
            last_logs: Vec::new(),
            generation,
            idle_since: std::time::Instant::now(),
        };
        match tokio::time::timeout(STARTUP_LIMIT, worker.read_reply()).await {
            Ok(Some(reply)) if reply.status == "ready" => Ok(worker),
            Ok(Some(reply)) => Err(format!(
                "worker of function \"{function_name}\" sent {:?} instead of ready",
                reply.status
            )),
            Ok(None) => {
                let why = worker.death_report().await;
                Err(format!(
                    "worker of function \"{function_name}\" failed to start: {why}"
                ))
            }
            Err(_) => {
                worker.kill().await;
                Err(format!(
                    "worker of function \"{function_name}\" did not start within {} seconds",
                    STARTUP_LIMIT.as_secs()
                ))
            }
        }
    }

    /// Whether the process has exited since its last call (a timer that threw, a late process.exit).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Runs one call; `request` is the event, context and per-call environment.
    pub async fn call(&mut self, request: serde_json::Value, limit: Duration) -> CallOutcome {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::json!({ "id": id });
        if let (Some(line), serde_json::Value::Object(fields)) = (line.as_object_mut(), request) {
            line.extend(fields);
        }
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        self.stderr_tail.lock().map(|mut t| t.clear()).ok();
        self.last_logs.clear();
        if let (Ok(mut tag), Some(request_id)) = (
            self.call_tag.lock(),
            line.pointer("/context/request_id").and_then(|v| v.as_str()),
        ) {
            *tag = request_id.chars().take(8).collect();
        }

        if self.stdin.write_all(&bytes).await.is_err() || self.stdin.flush().await.is_err() {
            return CallOutcome::Crashed(self.death_report().await);
        }
        // Two phases, as on the platform: loading the code (a cold start; bounded by INIT_LIMIT), then
        // the call itself, bounded by the function's time limit from the worker's `started` reply.
        let mut deadline = tokio::time::Instant::now() + INIT_LIMIT;
        let mut started = false;
        let mut reply = loop {
            match tokio::time::timeout_at(deadline, self.read_reply()).await {
                Err(_) => {
                    self.kill().await;
                    self.last_logs = self.stderr_lines();
                    if started {
                        return CallOutcome::TimedOut;
                    }
                    return CallOutcome::Crashed(format!(
                        "the code of function \"{}\" did not finish loading within {} seconds",
                        self.function_name,
                        INIT_LIMIT.as_secs()
                    ));
                }
                Ok(None) => {
                    let report = self.death_report().await;
                    self.last_logs = self.stderr_lines();
                    return CallOutcome::Crashed(report);
                }
                // A reply to an earlier call cannot happen (one call at a time), but never mix them up.
                Ok(Some(reply)) if reply.id == Some(id) && reply.status == "started" => {
                    started = true;
                    deadline = tokio::time::Instant::now() + limit;
                }
                Ok(Some(reply)) if reply.id == Some(id) || reply.status == "protocol" => {
                    break reply;
                }
                Ok(Some(_)) => {}
            }
        };
        self.last_logs = std::mem::take(&mut reply.logs);
        let message = reply.message.unwrap_or_default();
        match reply.status.as_str() {
            "ok" => CallOutcome::Ok(reply.result.unwrap_or_else(|| "null".to_owned())),
            "threw" => CallOutcome::Threw(message),
            "nonjson" => CallOutcome::NonJson(message),
            other => {
                self.kill().await;
                CallOutcome::Crashed(format!(
                    "worker of function \"{}\" broke the protocol ({other}): {message}",
                    self.function_name
                ))
            }
        }
    }

    /// The console output of the last call (taken: a second call answers nothing).
    pub fn take_logs(&mut self) -> Vec<ConsoleLine> {
        std::mem::take(&mut self.last_logs)
    }

    /// What the worker wrote to stderr during the call, for calls that never answered.
    fn stderr_lines(&self) -> Vec<ConsoleLine> {
        self.stderr_tail
            .lock()
            .map(|tail| {
                tail.iter()
                    .map(|text| ConsoleLine {
                        level: "stderr".to_owned(),
                        text: text.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kills the worker and every process its function started, and waits for the worker to go.
    pub async fn kill(&mut self) {
        self.kill_group();
        let _ = self.child.kill().await;
    }

    /// SIGKILL to the worker's process group: children a function spawned (even detached ones that
    /// outlive their parent's exit) go with the worker instead of running on unowned.
    fn kill_group(&mut self) {
        #[cfg(unix)]
        if let Some(group) = self.process_group.take() {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
            unsafe {
                libc::kill(-(group as libc::pid_t), libc::SIGKILL);
            }
        }
    }

    /// Next reply line from stdout; `None` at end of file (the process is gone or going).
    async fn read_reply(&mut self) -> Option<Reply> {
        let mut line = Vec::new();
        loop {
            line.clear();
            match self.stdout.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            // User output written to fd 1 without a newline ends up in front of the marker.
            let (user_output, payload) = match text.find(&self.marker) {
                Some(at) => (&text[..at], Some(&text[at + self.marker.len()..])),
                None => (text, None),
            };
            if self.log_output && !user_output.is_empty() {
                let tag = self.call_tag.lock().map(|t| t.clone()).unwrap_or_default();
                eprintln!("[fn {} {tag}] {user_output}", self.function_name);
            }
            if let Some(reply) = payload.and_then(|p| serde_json::from_str::<Reply>(p).ok()) {
                return Some(reply);
            }
        }
    }

    /// Why the process died: its exit status and the last lines it wrote to stderr.
    async fn death_report(&mut self) -> String {
        let status = match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                self.kill().await;
                None
            }
        };
        // Let the stderr forwarder drain what the dying process wrote.
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
        }
        let tail: Vec<String> = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        let mut report = format!(
            "The worker process of function \"{}\" {} during the call",
            self.function_name,
            describe_exit(status)
        );
        if !tail.is_empty() {
            report.push('\n');
            report.push_str(&tail.join("\n"));
        }
        report
    }
}

fn describe_exit(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "stopped responding".to_owned();
    };
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            return format!("was killed by signal {signal}{name}");
        }
    }
    format!("exited ({status})")
}

async fn forward_stderr(
    stderr: tokio::process::ChildStderr,
    function_name: String,
    tail: Arc<Mutex<VecDeque<String>>>,
    call_tag: Arc<Mutex<String>>,
    log_output: bool,
) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if log_output {
            let tag = call_tag.lock().map(|t| t.clone()).unwrap_or_default();
            eprintln!("[fn {function_name} {tag}] {text}");
        }
        if is_noise(text) {
            continue;
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.to_owned());
        }
    }
}

/// Lines that explain nothing in a crash report: blanks, V8's native backtrace and GC trace.
fn is_noise(line: &str) -> bool {
    let trimmed = line.trim();
    let native_frame = trimmed
        .split_once(": 0x")
        .is_some_and(|(index, _)| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()));
    trimmed.is_empty()
        || native_frame
        || trimmed.starts_with("----- Native stack trace")
        || trimmed.starts_with("<--- ")
        || (trimmed.starts_with("[") && trimmed.contains(" ms: "))
}

/// Finds `node` on PATH.
pub fn find_node() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

impl Drop for Worker {
    /// A worker dropped without `kill` (pool shutdown, a replaced generation) takes its children along.
    fn drop(&mut self) {
        self.kill_group();
    }
}
