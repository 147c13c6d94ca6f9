//! The `/web` action envelope: dispatch, error codes, limits — always HTTP 200 with a requestId.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn unknown_and_missing_actions_are_invalid_action() {
    let server = start_default().await;
    let answer = server
        .web(
            "envx",
            json!({"action": "storage.nope", "dataVersion": "2020-01-10"}),
        )
        .await;
    assert_eq!(answer["code"], "INVALID_ACTION");
    assert!(answer["message"].as_str().unwrap().contains("storage.nope"));
    let answer = server
        .web("envx", json!({"dataVersion": "2020-01-10"}))
        .await;
    assert_eq!(answer["code"], "INVALID_ACTION");
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_invalid_param() {
    let server = start_default().await;
    for body in ["{\"action\":", "", "[1,2]", "\"text\"", "not json"] {
        let answer = server.web_raw("?env=envx", body.to_string()).await;
        assert_eq!(
            answer["code"], "INVALID_PARAM",
            "body {body:?} gave {answer}"
        );
        assert!(answer["message"].is_string());
    }
    server.stop().await;
}

#[tokio::test]
async fn body_is_json_whatever_the_content_type() {
    let server = start_default().await;
    let response = server
        .post("/web?env=envx")
        .header("content-type", "text/plain;charset=UTF-8")
        .body(
            json!({"action": "auth.signInAnonymously", "anonymous_uuid": "", "refresh_token": ""})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert!(
        answer["uuid"].is_string() && answer["refresh_token"].is_string(),
        "{answer}"
    );
    server.stop().await;
}

#[tokio::test]
async fn env_comes_from_the_query_or_the_body_and_the_pin_is_enforced() {
    let server = start_with(|config| config.env = Some("pinned-1".into())).await;
    let other = server
        .web("other", json!({"action": "auth.signInAnonymously"}))
        .await;
    assert_eq!(other["code"], "INVALID_ENV");
    let ok = server
        .web("pinned-1", json!({"action": "auth.signInAnonymously"}))
        .await;
    assert!(ok["uuid"].is_string(), "{ok}");
    // Without ?env= the body's env counts; without either the pinned env is used.
    let body_env = server
        .web_raw(
            "",
            json!({"action": "auth.signInAnonymously", "env": "other"}).to_string(),
        )
        .await;
    assert_eq!(body_env["code"], "INVALID_ENV");
    let implicit = server
        .web_raw("", json!({"action": "auth.signInAnonymously"}).to_string())
        .await;
    assert!(implicit["uuid"].is_string(), "{implicit}");
    server.stop().await;

    let server = start_default().await;
    let missing = server
        .web_raw("", json!({"action": "auth.signInAnonymously"}).to_string())
        .await;
    assert_eq!(missing["code"], "INVALID_ENV");
    let bad = server
        .web("bad%20env", json!({"action": "auth.signInAnonymously"}))
        .await;
    assert_eq!(bad["code"], "INVALID_ENV");
    server.stop().await;
}

#[tokio::test]
async fn actions_needing_a_login_check_the_token() {
    let server = start_default().await;
    let call = |token: serde_json::Value| json!({"action": "functions.invokeFunction", "function_name": "f", "request_data": "{}", "access_token": token});
    let missing = server
        .web(
            "envx",
            json!({"action": "functions.invokeFunction", "function_name": "f"}),
        )
        .await;
    assert_eq!(missing["code"], "CHECK_LOGIN_FAILED");
    let garbage = server.web("envx", call(json!("AT-not-ours"))).await;
    assert_eq!(garbage["code"], "CHECK_LOGIN_FAILED");
    let user = server
        .web(
            "envx",
            json!({"action": "auth.getUserInfo", "access_token": "x.y"}),
        )
        .await;
    assert_eq!(user["code"], "CHECK_LOGIN_FAILED");
    server.stop().await;
}

#[tokio::test]
async fn oversized_requests_are_refused_with_200() {
    let server = start_default().await;
    let filler = "x".repeat(8 * 1024 * 1024 + 10);
    let body = json!({"action": "functions.invokeFunction", "request_data": filler}).to_string();
    let answer = server.web_raw("?env=envx", body).await;
    assert_eq!(answer["code"], "EXCEED_REQUEST_SIZE_LIMIT");
    // The connection pool still works afterwards.
    let answer = server.web("envx", json!({"action": "nope"})).await;
    assert_eq!(answer["code"], "INVALID_ACTION");
    server.stop().await;
}

#[tokio::test]
async fn deeply_nested_json_is_invalid_param() {
    let server = start_default().await;
    let deep = format!(
        "{{\"action\":\"functions.invokeFunction\",\"x\":{}1{}}}",
        "[".repeat(cloud_emulator::config::MAX_JSON_DEPTH),
        "]".repeat(cloud_emulator::config::MAX_JSON_DEPTH)
    );
    let answer = server.web_raw("?env=envx", deep).await;
    assert_eq!(answer["code"], "INVALID_PARAM");
    assert!(answer["message"].as_str().unwrap().contains("deeper"));
    // Far deeper than serde's own recursion limit: still a clean answer, no crash.
    let deeper = "[".repeat(200_000);
    let answer = server.web_raw("?env=envx", deeper).await;
    assert_eq!(answer["code"], "INVALID_PARAM");
    server.stop().await;
}

#[tokio::test]
async fn request_ids_differ_between_answers() {
    let server = start_default().await;
    let first = server.web("envx", json!({"action": "nope"})).await;
    let second = server.web("envx", json!({"action": "nope"})).await;
    assert_ne!(first["requestId"], second["requestId"]);
    server.stop().await;
}
