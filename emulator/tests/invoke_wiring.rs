//! Cloud functions through HTTP: P1 `functions.invokeFunction` and the P3 `/v1/functions/{name}` route,
//! against real Node.js workers.

mod common;

use common::*;
use serde_json::{json, Value};

const ECHO: &str = "exports.main = async (event, context) => ({ event, context });\n";
const THROWS: &str = "exports.main = async () => { throw new Error('boom from user code'); };\n";
const UNDEF: &str = "exports.main = async () => {};\n";

async fn server_with_functions() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    write_function(&dir, "echo", ECHO);
    write_function(&dir, "throws", THROWS);
    write_function(&dir, "undef", UNDEF);
    let config = config_in(&dir);
    start_in(dir, config).await
}

#[tokio::test]
async fn invoke_function_returns_response_data_text() {
    let server = server_with_functions().await;
    let credentials = server.sign_in("envx", "device-invoke-1").await;
    let token = credentials["access_token"].as_str().unwrap();
    let answer = server
        .invoke("envx", token, "echo", json!({"a": 1, "d": "x"}))
        .await;
    let text = answer["data"]["response_data"]
        .as_str()
        .expect("response_data is JSON text");
    let result: Value = serde_json::from_str(text).unwrap();
    assert_eq!(result["event"]["a"], 1);
    assert_eq!(result["event"]["d"], "x");
    let open_id = result["event"]["userInfo"]["openId"].as_str().unwrap();
    assert!(open_id.starts_with('o') && open_id.len() == 28);
    assert!(result["event"]["userInfo"]["appId"]
        .as_str()
        .unwrap()
        .starts_with("wx"));
    assert_eq!(result["context"]["namespace"], "envx");
    assert_eq!(result["context"]["function_name"], "echo");
    assert_eq!(result["context"]["request_id"], answer["requestId"]);

    // The same user gets the same openid on every call.
    let again = server.invoke("envx", token, "echo", json!({})).await;
    let again: Value =
        serde_json::from_str(again["data"]["response_data"].as_str().unwrap()).unwrap();
    assert_eq!(again["event"]["userInfo"]["openId"], open_id);

    // Empty request_data means {}; undefined comes back as "null".
    let empty = server
        .web("envx", json!({"action": "functions.invokeFunction", "function_name": "echo", "request_data": "", "access_token": token}))
        .await;
    let empty: Value =
        serde_json::from_str(empty["data"]["response_data"].as_str().unwrap()).unwrap();
    assert_eq!(empty["event"]["userInfo"]["openId"], open_id);
    let undef = server.invoke("envx", token, "undef", json!({})).await;
    assert_eq!(undef["data"]["response_data"], "null");
    server.stop().await;
}

#[tokio::test]
async fn parse_true_returns_the_value_itself() {
    let server = server_with_functions().await;
    let token = server.access_token("envx").await;
    let body = json!({"action": "functions.invokeFunction", "function_name": "echo",
                      "request_data": "{\"k\":[1,2]}", "access_token": token});
    let answer = server
        .web_raw("?env=envx&parse=true", body.to_string())
        .await;
    assert_eq!(answer["data"]["response_data"]["event"]["k"], json!([1, 2]));
    server.stop().await;
}

#[tokio::test]
async fn function_failures_map_to_cloudbase_codes() {
    let server = server_with_functions().await;
    let token = server.access_token("envx").await;
    let missing = server.invoke("envx", &token, "nope", json!({})).await;
    assert_eq!(missing["code"], "FUNCTION_NOT_FOUND");
    assert_eq!(
        missing["message"],
        "FunctionName parameter could not be found."
    );
    let traversal = server
        .invoke("envx", &token, "../functions/echo", json!({}))
        .await;
    assert_eq!(traversal["code"], "FUNCTION_NOT_FOUND");
    let thrown = server.invoke("envx", &token, "throws", json!({})).await;
    assert_eq!(thrown["code"], "FUNCTIONS_EXECUTE_FAIL");
    assert!(
        thrown["message"]
            .as_str()
            .unwrap()
            .contains("boom from user code"),
        "{thrown}"
    );

    let no_name = server
        .web("envx", json!({"action": "functions.invokeFunction", "request_data": "{}", "access_token": token}))
        .await;
    assert_eq!(no_name["code"], "INVALID_PARAM");
    let bad_data = server
        .web("envx", json!({"action": "functions.invokeFunction", "function_name": "echo", "request_data": "{", "access_token": token}))
        .await;
    assert_eq!(bad_data["code"], "INVALID_PARAM");
    let levels = cloud_emulator::config::MAX_JSON_DEPTH + 1;
    let deep_data = "[".repeat(levels) + &"]".repeat(levels);
    let deep = server
        .web("envx", json!({"action": "functions.invokeFunction", "function_name": "echo", "request_data": deep_data, "access_token": token}))
        .await;
    assert_eq!(deep["code"], "INVALID_PARAM");
    server.stop().await;
}

#[tokio::test]
async fn gateway_route_returns_the_raw_value_or_a_non_2xx_error() {
    let server = server_with_functions().await;
    let token = server.access_token("envx").await;
    let response = server
        .post("/v1/functions/echo")
        .header("authorization", bearer(&token))
        .header("x-request-id", "fd2c96ae902148ca87d1dc7c4157fe8d")
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"a":1,"d":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-request-id"],
        "fd2c96ae902148ca87d1dc7c4157fe8d"
    );
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["event"]["a"], 1);
    assert_eq!(result["context"]["namespace"], "envx");
    assert_eq!(
        result["context"]["request_id"],
        "fd2c96ae902148ca87d1dc7c4157fe8d"
    );

    let (status, body) = send_json(
        server
            .post("/v1/functions/nope")
            .header("authorization", bearer(&token))
            .body("{}"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "FUNCTION_NOT_FOUND");
    assert!(body["requestId"].is_string());

    let (status, body) = send_json(server.post("/v1/functions/echo").body("{}")).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "CHECK_LOGIN_FAILED");

    let wrong_env = server
        .post("/v1/functions/echo?env=other")
        .header("authorization", bearer(&token))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_env.status(), 401);

    let (status, body) = send_json(
        server
            .post("/v1/functions/echo")
            .header("authorization", bearer(&token))
            .body(vec![b' '; 8 * 1024 * 1024 + 1]),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "EXCEED_REQUEST_SIZE_LIMIT");

    let (status, body) = send_json(
        server
            .post("/v1/functions/throws")
            .header("authorization", bearer(&token)),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(body["code"], "FUNCTIONS_EXECUTE_FAIL");
    server.stop().await;
}

#[tokio::test]
async fn stopping_lets_calls_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_function(
        &dir,
        "slow",
        "exports.main = () => new Promise((done) => setTimeout(() => done({ late: true }), 800));\n",
    );
    std::fs::write(folder.join("config.json"), r#"{"timeout": 10}"#).unwrap();
    let config = config_in(&dir);
    let server = start_in(dir, config).await;
    let token = server.access_token("envx").await;
    let request = server.post("/web?env=envx")
        .body(
            json!({"action": "functions.invokeFunction", "function_name": "slow", "request_data": "{}",
                   "access_token": token})
            .to_string(),
        )
        .send();
    let call = tokio::spawn(async move { request.await.unwrap().json::<Value>().await.unwrap() });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let addr = server.server.addr();
    server.stop().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "stop took {:?}",
        started.elapsed()
    );
    let answer = call.await.unwrap();
    assert_eq!(
        answer["data"]["response_data"], r#"{"late":true}"#,
        "{answer}"
    );
    // After stopping, nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn gateway_reports_expired_tokens() {
    let dir = tempfile::tempdir().unwrap();
    write_function(&dir, "echo", ECHO);
    let mut config = config_in(&dir);
    config.token_ttl_secs = 1;
    let server = start_in(dir, config).await;
    let token = server.access_token("envx").await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (status, body) = send_json(
        server
            .post("/v1/functions/echo")
            .header("authorization", bearer(&token))
            .body("{}"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "ACCESS_TOKEN_EXPIRED");
    server.stop().await;
}
