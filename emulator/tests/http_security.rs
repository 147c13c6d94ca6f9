//! CORS, the Host check against DNS rebinding, and static hosting.

mod common;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn port(server: &TestServer) -> u16 {
    server.server.addr().port()
}

async fn preflight(server: &TestServer, origin: &str) -> reqwest::Response {
    server
        .request(reqwest::Method::OPTIONS, "/web?env=envx")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-seqid,x-sdk-version,x-custom-thing",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn loopback_origins_pass_preflight() {
    let server = start_default().await;
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:8080",
        "https://localhost",
        "http://[::1]:3000",
    ] {
        let response = preflight(&server, origin).await;
        assert_eq!(response.status(), 204, "{origin}");
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], origin);
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        for method in ["GET", "POST", "PUT", "DELETE", "OPTIONS"] {
            assert!(methods.contains(method));
        }
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        for name in [
            "content-type",
            "x-seqid",
            "x-sdk-version",
            "x-tcb-region",
            "x-tcb-trace",
            "x-request-id",
            "x-device-id",
            "authorization",
            "x-custom-thing",
        ] {
            assert!(allowed.contains(name), "{name} missing from {allowed}");
        }
    }
    // Preflight of the auth routes too.
    let response = server
        .request(
            reqwest::Method::OPTIONS,
            "/auth/v1/signin/anonymously?client_id=envx",
        )
        .header("origin", "http://localhost:10086")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    server.stop().await;
}

#[tokio::test]
async fn actual_requests_carry_cors_headers() {
    let server = start_default().await;
    let response = server
        .post("/web?env=envx")
        .header("origin", "http://localhost:5173")
        .body(json!({"action": "nope"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert!(response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("x-request-id"));
    server.stop().await;
}

#[tokio::test]
async fn foreign_origins_are_refused_unless_allowed() {
    let server =
        start_with(|config| config.allow_origins = vec!["https://app.example.com".into()]).await;
    let response = preflight(&server, "https://evil.example.com").await;
    assert_eq!(response.status(), 403);
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    for origin in [
        "null",
        "http://localhost.evil.com",
        "http://127.0.0.1.evil.com:80",
        "file://",
    ] {
        assert_eq!(preflight(&server, origin).await.status(), 403, "{origin}");
    }
    // /web keeps its always-200 envelope.
    let response = server
        .post("/web?env=envx")
        .header("origin", "https://evil.example.com")
        .body(json!({"action": "auth.signInAnonymously"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "INVALID_REQUEST_SOURCE"
    );

    let response = preflight(&server, "https://app.example.com").await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    server.stop().await;

    let server = start_with(|config| config.allow_origins = vec!["*".into()]).await;
    assert_eq!(
        preflight(&server, "https://anything.example")
            .await
            .status(),
        204
    );
    server.stop().await;
}

#[tokio::test]
async fn foreign_host_headers_are_refused() {
    let server = start_default().await;
    let port = port(&server);
    for (host, status) in [
        (format!("127.0.0.1:{port}"), 200),
        (format!("localhost:{port}"), 200),
        (format!("[::1]:{port}"), 200),
        (format!("evil.example.com:{port}"), 403),
        ("localhost:1".to_string(), 403),
        (format!("127.0.0.2:{port}"), 403),
        ("localhost".to_string(), 403),
    ] {
        let response = server
            .post("/web?env=envx")
            .header("host", &host)
            .body(json!({"action": "nope"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{host}");
    }
    server.stop().await;
}

/// Sends a raw HTTP/1.1 request (so the path is not normalised by a client) and returns the answer.
async fn raw_get(server: &TestServer, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.server.addr())
        .await
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        port(server)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn hosting_serves_files_with_content_types_and_stays_inside() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("assets")).unwrap();
    std::fs::write(site.join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(site.join("assets/app.js"), "console.log(1)").unwrap();
    std::fs::write(site.join("assets/app.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "secret outside the site").unwrap();
    let mut config = config_in(&dir);
    config.hosting_dir = Some(site);
    let server = start_in(dir, config).await;

    let index = server.get("/").send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(index.text().await.unwrap(), "<h1>demo</h1>");
    let script = server.get("/assets/app.js").send().await.unwrap();
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    let wasm = server.get("/assets/app.wasm").send().await.unwrap();
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    let missing = server.get("/nope.html").send().await.unwrap();
    assert_eq!(missing.status(), 404);

    for path in [
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/assets/..%2f..%2foutside.txt",
        "/..%5coutside.txt",
    ] {
        let answer = raw_get(&server, path).await;
        assert!(
            !answer.contains("secret outside the site"),
            "{path} escaped: {answer}"
        );
        assert!(!answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
    }
    // The API routes still win over hosting.
    let api = server.web("envx", json!({"action": "nope"})).await;
    assert_eq!(api["code"], "INVALID_ACTION");
    server.stop().await;
}

#[tokio::test]
async fn without_hosting_unknown_paths_are_json_404s() {
    let server = start_default().await;
    let (status, body) = send_json(server.get("/index.html")).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "RESOURCE_NOT_FOUND");
    server.stop().await;
}
