//! Shared helpers: an in-process emulator on 127.0.0.1:0 with its own temp dirs, and a client; the built
//! binary started as a child process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use cloud_emulator::{start, Config, RunningServer};
use serde_json::{json, Value};
use tempfile::TempDir;

/// An in-process emulator; derefs to its [`Api`] (`server.url`, `server.client`, `server.web(…)`).
pub struct TestServer {
    pub server: RunningServer,
    pub dir: TempDir,
    pub api: Api,
}

/// An emulator reached over HTTP (in process or the built binary): its base URL and a client.
pub struct Api {
    pub url: String,
    pub client: reqwest::Client,
}

impl Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The data and functions dirs a test server uses inside `dir`.
pub fn config_in(dir: &TempDir) -> Config {
    let functions = dir.path().join("functions");
    std::fs::create_dir_all(&functions).unwrap();
    Config::new(dir.path().join("data"), functions)
}

/// Writes `<functions>/<name>/index.js`.
pub fn write_function(dir: &TempDir, name: &str, source: &str) -> PathBuf {
    let folder = dir.path().join("functions").join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("index.js"), source).unwrap();
    folder
}

pub async fn start_in(dir: TempDir, config: Config) -> TestServer {
    let server = start(config).await.expect("server starts");
    let api = Api::new(server.url());
    TestServer { server, dir, api }
}

pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(&dir);
    configure(&mut config);
    start_in(dir, config).await
}

pub async fn start_default() -> TestServer {
    start_with(|_| {}).await
}

impl TestServer {
    pub async fn stop(self) -> TempDir {
        self.server.stop().await.expect("server stops cleanly");
        self.dir
    }
}

impl Api {
    /// The emulator at `url` (like `http://127.0.0.1:PORT`), with a client that bypasses proxies.
    pub fn new(url: impl Into<String>) -> Api {
        Api {
            url: url.into(),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// A `method` request for `path` (like `/auth/v1/user/me`) on this server, to add headers and a body to.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url))
    }

    /// A GET of `path` on this server.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    /// A POST to `path` on this server.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    /// POSTs raw text to `/web?env=<env>`; asserts HTTP 200 and returns the JSON answer.
    pub async fn web_raw(&self, query: &str, body: impl Into<reqwest::Body>) -> Value {
        let response = self
            .client
            .post(format!("{}/web{query}", self.url))
            .header("content-type", "application/json;charset=UTF-8")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "/web always answers 200");
        let answer: Value = response.json().await.unwrap();
        let request_id = answer["requestId"]
            .as_str()
            .expect("requestId on every answer");
        assert!(request_id.len() == 32 && request_id.bytes().all(|b| b.is_ascii_hexdigit()));
        answer
    }

    pub async fn web(&self, env: &str, body: Value) -> Value {
        self.web_raw(&format!("?env={env}"), body.to_string()).await
    }

    /// P2 anonymous sign-in; returns the credentials object.
    pub async fn sign_in(&self, env: &str, device_id: &str) -> Value {
        let response = self
            .client
            .post(format!(
                "{}/auth/v1/signin/anonymously?client_id={env}",
                self.url
            ))
            .header("x-device-id", device_id)
            .header("content-type", "text/plain;charset=UTF-8")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// An access token for `env` (P2 sign-in with a fresh device).
    pub async fn access_token(&self, env: &str) -> String {
        let device = format!("device-{}", rand_hex());
        self.sign_in(env, &device).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn invoke(&self, env: &str, token: &str, name: &str, data: Value) -> Value {
        self.web(
            env,
            json!({
                "action": "functions.invokeFunction", "dataVersion": "2020-01-10", "env": env,
                "function_name": name, "request_data": data.to_string(), "access_token": token,
                "seqId": "abc123",
            }),
        )
        .await
    }
}

/// Sends `request`; the HTTP status and the JSON body.
pub async fn send_json(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The `authorization` header value for an access token.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub fn rand_hex() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}")
}

/// The built `cloud-emulator` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_cloud-emulator");

/// A `cloud-emulator` command run in `dir`.
pub fn emulator(dir: &TempDir) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir.path());
    command
}

/// Reads the child's first stdout line, `listening on <url>`; the URL.
pub fn listening_url(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string()
}

/// Waits for the child to exit; kills it and panics after `limit`.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cloud-emulator did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to the child.
pub fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) on our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
}

/// A database test client: an emulator in its own temp dir, its per-run admin token, and the env every
/// call goes to (the attack suite and the HTTP database suite share it).
pub struct DbClient {
    pub server: TestServer,
    pub admin: String,
    pub env: &'static str,
}

impl DbClient {
    pub async fn start(env: &'static str) -> DbClient {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(&dir);
        let admin = config.admin_token.clone();
        DbClient {
            server: start_in(dir, config).await,
            admin,
            env,
        }
    }

    /// A `/web` action as the holder of `token`, on the client's env, in the SDK's envelope.
    pub async fn call(&self, token: &str, mut body: Value) -> Value {
        body["access_token"] = json!(token);
        body["env"] = json!(self.env);
        body["dataVersion"] = json!("2020-01-10");
        self.server.web(self.env, body).await
    }

    /// Creates (or configures) a collection through the admin endpoint.
    pub async fn admin_collection(
        &self,
        name: &str,
        rules: Value,
        indexes: Value,
    ) -> reqwest::Response {
        self.server
            .post("/admin/v1/database/collections")
            .header("x-admin-token", &self.admin)
            .json(&json!({"env": self.env, "name": name, "rules": rules, "indexes": indexes}))
            .send()
            .await
            .unwrap()
    }
}
