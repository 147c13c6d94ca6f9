//! Session revocation (`POST /auth/v1/revoke`) and refresh-token rotation: a revoked session's access
//! tokens (before and after refreshes) and refresh token stop working, other sessions keep working, and
//! revocations survive a restart.

mod common;

use common::*;
use serde_json::{json, Value};

async fn post_json(server: &Api, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut request = server.post(path).body(body.to_string());
    if let Some(token) = token {
        request = request.header("authorization", bearer(token));
    }
    send_json(request).await
}

async fn refresh(server: &Api, refresh_token: &Value) -> (u16, Value) {
    post_json(
        server,
        "/auth/v1/token",
        json!({"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "envx"}),
        None,
    )
    .await
}

/// The errCode string of a `/web` call made with `token` (`None` when it succeeded).
async fn call_code(server: &Api, token: &Value) -> Option<String> {
    let answer = server
        .web(
            "envx",
            json!({"action": "auth.getUserInfo", "access_token": token}),
        )
        .await;
    answer["code"].as_str().map(str::to_string)
}

async fn user_me_status(server: &Api, token: &Value) -> u16 {
    let request = server
        .get("/auth/v1/user/me")
        .header("authorization", bearer(token.as_str().unwrap()));
    send_json(request).await.0
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let server = start_default().await;
    let first = server.sign_in("envx", "rotating-device-1").await;
    let (status, second) = refresh(&server, &first["refresh_token"]).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    // The used refresh token is spent; the new one works once, and so on.
    let (status, reused) = refresh(&server, &first["refresh_token"]).await;
    assert_eq!(status, 400);
    assert_eq!(reused["error"], "invalid_grant");
    assert!(reused["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
    let (status, third) = refresh(&server, &second["refresh_token"]).await;
    assert_eq!(status, 200, "{third}");
    // Rotation does not end the session: every access token it issued still works.
    for credentials in [&first, &second, &third] {
        assert_eq!(call_code(&server, &credentials["access_token"]).await, None);
    }
    server.stop().await;
}

#[tokio::test]
async fn revoking_any_token_ends_its_whole_session_only() {
    let server = start_default().await;
    let session = server.sign_in("envx", "revoked-device-01").await;
    let other_session_same_user = server.sign_in("envx", "revoked-device-01").await;
    let other_user = server.sign_in("envx", "bystander-device-1").await;
    let (_, refreshed) = refresh(&server, &session["refresh_token"]).await;
    let (_, refreshed_again) = refresh(&server, &refreshed["refresh_token"]).await;

    // Revoke with the middle access token, as the SDK's signOut does (Bearer + {token}).
    let (status, answer) = post_json(
        &server,
        "/auth/v1/revoke",
        json!({"token": refreshed["access_token"]}),
        refreshed["access_token"].as_str(),
    )
    .await;
    assert_eq!((status, answer), (200, json!({})));

    for credentials in [&session, &refreshed, &refreshed_again] {
        let token = &credentials["access_token"];
        assert_eq!(
            call_code(&server, token).await.as_deref(),
            Some("CHECK_LOGIN_FAILED"),
            "every access token of the session is refused on /web"
        );
        assert_eq!(user_me_status(&server, token).await, 401);
    }
    let (status, refused) = refresh(&server, &refreshed_again["refresh_token"]).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"], "invalid_grant");
    // The gateway routes refuse it too.
    let gateway = server
        .post("/v1/functions/anything")
        .header(
            "authorization",
            bearer(session["access_token"].as_str().unwrap()),
        )
        .body("{}");
    assert_eq!(send_json(gateway).await.0, 401);

    // Other sessions, of this user and of others, keep working.
    for credentials in [&other_session_same_user, &other_user] {
        assert_eq!(call_code(&server, &credentials["access_token"]).await, None);
        assert_eq!(refresh(&server, &credentials["refresh_token"]).await.0, 200);
    }
    // Signing in again gives a working session for the same user.
    let again = server.sign_in("envx", "revoked-device-01").await;
    assert_eq!(again["sub"], session["sub"]);
    assert_eq!(call_code(&server, &again["access_token"]).await, None);
    server.stop().await;
}

#[tokio::test]
async fn a_refresh_token_revokes_its_session_and_revocations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(&dir);
    let server = start_in(dir, config.clone()).await;
    let session = server.sign_in("envx", "restart-device-0001").await;
    let kept = server.sign_in("envx", "restart-device-0002").await;
    let (status, _) = post_json(
        &server,
        "/auth/v1/revoke",
        json!({"token": session["refresh_token"]}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let dir = server.stop().await;

    let server = start_in(dir, config).await;
    assert_eq!(
        call_code(&server, &session["access_token"])
            .await
            .as_deref(),
        Some("CHECK_LOGIN_FAILED")
    );
    assert_eq!(refresh(&server, &session["refresh_token"]).await.0, 400);
    assert_eq!(call_code(&server, &kept["access_token"]).await, None);
    server.stop().await;
}

#[tokio::test]
async fn revoke_refuses_what_is_not_a_token_of_ours() {
    let server = start_default().await;
    for body in [
        json!({}),
        json!({"token": ""}),
        json!({"token": "forged.token"}),
    ] {
        let (status, answer) = post_json(&server, "/auth/v1/revoke", body, None).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"], "invalid_argument");
    }
    server.stop().await;
}

#[tokio::test]
async fn legacy_refresh_tokens_stop_working_once_revoked() {
    let server = start_default().await;
    let signed_in = server
        .web("envx", json!({"action": "auth.signInAnonymously"}))
        .await;
    let refresh_token = signed_in["refresh_token"].clone();
    let fetch =
        json!({"action": "auth.fetchAccessTokenWithRefreshToken", "refresh_token": refresh_token});
    let first = server.web("envx", fetch.clone()).await;
    assert!(first["access_token"].is_string(), "{first}");
    // The legacy protocol never rotates: the same refresh token buys access tokens again.
    let second = server.web("envx", fetch.clone()).await;
    assert!(second["access_token"].is_string(), "{second}");

    let (status, _) = post_json(
        &server,
        "/auth/v1/revoke",
        json!({"token": first["access_token"]}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        call_code(&server, &second["access_token"]).await.as_deref(),
        Some("CHECK_LOGIN_FAILED")
    );
    let refused = server.web("envx", fetch).await;
    assert_eq!(refused["code"], "INVALID_REFRESH_TOKEN");
    server.stop().await;
}
