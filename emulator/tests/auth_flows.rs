//! Sign-in flows: P2 `/auth/v1` (js-sdk 3.x) and the legacy P1 `auth.*` actions (js-sdk 1.x),
//! expiry and refresh, env binding, persistence of the token secret.

mod common;

use common::*;
use serde_json::{json, Value};

async fn post_json(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    send_json(server.post(path).body(body.to_string())).await
}

async fn user_me(server: &TestServer, token: &str) -> (u16, Value) {
    let request = server
        .get("/auth/v1/user/me")
        .header("authorization", bearer(token))
        .header("x-device-id", "d1");
    send_json(request).await
}

#[tokio::test]
async fn p2_anonymous_sign_in_user_me_and_refresh() {
    let server = start_with(|config| config.token_ttl_secs = 600).await;
    let credentials = server
        .sign_in("envx", "018433f715c249e881d73bcf5c133de4")
        .await;
    assert_eq!(credentials["token_type"], "Bearer");
    assert_eq!(credentials["expires_in"], 600);
    assert_eq!(credentials["scope"], "anonymous");
    assert_eq!(credentials["groups"], json!(["anonymous"]));
    let sub = credentials["sub"].as_str().unwrap();
    assert_eq!(sub.len(), 22);

    // The same device gets the same user; another device another one.
    let again = server
        .sign_in("envx", "018433f715c249e881d73bcf5c133de4")
        .await;
    assert_eq!(again["sub"], sub);
    assert_ne!(again["access_token"], credentials["access_token"]);
    assert_ne!(
        server.sign_in("envx", "another-device-id-000").await["sub"],
        sub
    );

    let (status, me) = user_me(&server, credentials["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(me["sub"], sub);
    assert_eq!(me["status"], "ACTIVE");
    assert!(me["name"].is_string() && me["groups"].is_array());

    // Refresh, with the client_id/client_secret fields the SDK may add.
    let (status, refreshed) = post_json(
        &server,
        "/auth/v1/token",
        json!({"client_id": "envx", "client_secret": "", "grant_type": "refresh_token",
               "refresh_token": credentials["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["sub"], sub);
    let fresh_token = refreshed["access_token"].as_str().unwrap();
    assert_eq!(user_me(&server, fresh_token).await.1["sub"], sub);

    // The P2 token works on /web, in the body or as a bearer header.
    let info = server
        .web(
            "envx",
            json!({"action": "auth.getUserInfo", "access_token": fresh_token}),
        )
        .await;
    assert_eq!(info["data"]["uid"], sub);
    let response = server
        .post("/web?env=envx")
        .header("authorization", bearer(fresh_token))
        .body(json!({"action": "auth.getUserInfo"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["data"]["uid"], sub);
    server.stop().await;
}

#[tokio::test]
async fn p2_errors_are_oauth_shaped() {
    let server = start_default().await;
    // No x-device-id.
    let (status, body) = send_json(
        server
            .post("/auth/v1/signin/anonymously?client_id=envx")
            .body("{}"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_argument");

    let (status, body) = post_json(
        &server,
        "/auth/v1/token",
        json!({"grant_type": "refresh_token", "refresh_token": "nope"}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(body["error_description"].is_string());
    // An access token is not a refresh token.
    let access = server.access_token("envx").await;
    let (status, body) = post_json(
        &server,
        "/auth/v1/token",
        json!({"grant_type": "refresh_token", "refresh_token": access}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) =
        post_json(&server, "/auth/v1/token", json!({"grant_type": "password"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_argument"))
    );

    let (status, body) = user_me(&server, "garbage").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthenticated"))
    );
    let response = server.get("/auth/v1/user/me").send().await.unwrap();
    assert_eq!(response.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn legacy_anonymous_flow() {
    let server = start_default().await;
    let signed_in = server
        .web(
            "envx",
            json!({"action": "auth.signInAnonymously", "dataVersion": "2020-01-10", "env": "envx",
                   "anonymous_uuid": "", "refresh_token": "", "seqId": "727887fdaeaf1"}),
        )
        .await;
    let uuid = signed_in["uuid"].as_str().unwrap().to_string();
    let refresh_token = signed_in["refresh_token"].as_str().unwrap().to_string();

    let fetched = server
        .web("envx", json!({"action": "auth.fetchAccessTokenWithRefreshToken", "refresh_token": refresh_token}))
        .await;
    assert_eq!(fetched["access_token_expire"], 7_200_000);
    let access_token = fetched["access_token"].as_str().unwrap();

    let info = server
        .web(
            "envx",
            json!({"action": "auth.getUserInfo", "access_token": access_token}),
        )
        .await;
    assert_eq!(info["data"]["uid"], uuid.as_str());
    assert_eq!(info["data"]["loginType"], "ANONYMOUS");

    // Signing in again with the stored refresh token keeps the user.
    let again = server
        .web("envx", json!({"action": "auth.signInAnonymously", "anonymous_uuid": uuid, "refresh_token": refresh_token}))
        .await;
    assert_eq!(again["uuid"], uuid.as_str());

    let bad = server
        .web(
            "envx",
            json!({"action": "auth.fetchAccessTokenWithRefreshToken", "refresh_token": "x"}),
        )
        .await;
    assert_eq!(bad["code"], "INVALID_REFRESH_TOKEN");
    let other_env = server
        .web("other", json!({"action": "auth.fetchAccessTokenWithRefreshToken", "refresh_token": refresh_token}))
        .await;
    assert_eq!(other_env["code"], "INVALID_REFRESH_TOKEN");
    server.stop().await;
}

#[tokio::test]
async fn expired_access_tokens_are_reported_and_refresh_recovers() {
    let server = start_with(|config| config.token_ttl_secs = 1).await;
    let credentials = server.sign_in("envx", "device-expiry-test").await;
    assert_eq!(credentials["expires_in"], 1);
    let access = credentials["access_token"].as_str().unwrap();
    let fresh = server
        .web(
            "envx",
            json!({"action": "auth.getUserInfo", "access_token": access}),
        )
        .await;
    assert!(fresh["data"]["uid"].is_string(), "{fresh}");

    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let expired = server
        .web(
            "envx",
            json!({"action": "auth.getUserInfo", "access_token": access}),
        )
        .await;
    assert_eq!(expired["code"], "ACCESS_TOKEN_EXPIRED");
    let invoke = server.invoke("envx", access, "any", json!({})).await;
    assert_eq!(invoke["code"], "ACCESS_TOKEN_EXPIRED");

    let (status, refreshed) = post_json(
        &server,
        "/auth/v1/token",
        json!({"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 200);
    let renewed = server
        .web(
            "envx",
            json!({"action": "auth.getUserInfo", "access_token": refreshed["access_token"]}),
        )
        .await;
    assert_eq!(renewed["data"]["uid"], credentials["sub"]);
    server.stop().await;
}

#[tokio::test]
async fn tokens_are_bound_to_their_env() {
    let server = start_default().await;
    let token = server.access_token("env-a").await;
    let answer = server
        .web(
            "env-b",
            json!({"action": "auth.getUserInfo", "access_token": token}),
        )
        .await;
    assert_eq!(answer["code"], "CHECK_LOGIN_FAILED");
    assert!(answer["message"].as_str().unwrap().contains("env-a"));
    let same = server
        .web(
            "env-a",
            json!({"action": "auth.getUserInfo", "access_token": token}),
        )
        .await;
    assert!(same["data"]["uid"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn pinned_env_refuses_sign_in_elsewhere() {
    let server = start_with(|config| config.env = Some("only-env".into())).await;
    let response = server
        .post("/auth/v1/signin/anonymously?client_id=other")
        .header("x-device-id", "d-1234567890")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        server.sign_in("only-env", "d-1234567890").await["scope"],
        "anonymous"
    );
    server.stop().await;
}

#[tokio::test]
async fn tokens_and_users_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(&dir);
    let server = start_in(dir, config.clone()).await;
    let credentials = server.sign_in("envx", "persistent-device").await;
    let dir = server.stop().await;

    let server = start_in(dir, config).await;
    let info = server
        .web(
            "envx",
            json!({"action": "auth.getUserInfo", "access_token": credentials["access_token"]}),
        )
        .await;
    assert_eq!(info["data"]["uid"], credentials["sub"]);
    assert_eq!(
        server.sign_in("envx", "persistent-device").await["sub"],
        credentials["sub"]
    );
    let secret = server
        .dir
        .path()
        .join("data")
        .join(cloud_emulator::secret::SECRET_FILE);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    server.stop().await;
}
