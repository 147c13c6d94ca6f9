//! P2: the OAuth2-style `/auth/v1` routes used by `@cloudbase/js-sdk` 2.x/3.x.
//!
//! Errors are OAuth bodies `{"error","error_description"}` with HTTP 400/401, as the SDK expects.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::sessions::RefreshRefusal;
use super::tokens::{TokenError, TokenKind};
use super::{
    bearer_token, issue_credentials, start_session, uid_for_device, use_refresh_token,
    SCOPE_ANONYMOUS,
};
use crate::body::{parse_json, read_limited};
use crate::config::MAX_AUTH_REQUEST_BYTES;
use crate::error::json_response;
use crate::server::AppState;

/// Longest device id accepted (the SDK makes 32 hex digits; CloudBase allows 16–48 characters).
const MAX_DEVICE_ID_LEN: usize = 128;

/// An OAuth error answer.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }

    fn invalid_argument(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_argument", description)
    }

    fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    fn unauthenticated(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::UNAUTHORIZED, "unauthenticated", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        json_response(
            self.status,
            &json!({ "error": self.error, "error_description": self.description }),
        )
    }
}

/// The `/auth/v1` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/v1/signin/anonymously", post(signin_anonymously))
        .route("/auth/v1/token", post(refresh_token_grant))
        .route("/auth/v1/user/me", get(user_me))
        .route("/auth/v1/revoke", post(revoke))
}

/// Reads a small JSON body; an empty body counts as `{}`. Any content-type is accepted.
async fn read_json_object(body: Body) -> Result<serde_json::Map<String, Value>, OAuthError> {
    let bytes = read_limited(body, MAX_AUTH_REQUEST_BYTES)
        .await
        .map_err(|err| OAuthError::invalid_argument(err.message))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match parse_json(&bytes, "request body")
        .map_err(|err| OAuthError::invalid_argument(err.message))?
    {
        Value::Object(map) => Ok(map),
        _ => Err(OAuthError::invalid_argument(
            "request body must be a JSON object",
        )),
    }
}

fn valid_device_id(device_id: &str) -> bool {
    !device_id.is_empty()
        && device_id.len() <= MAX_DEVICE_ID_LEN
        && device_id.bytes().all(|b| b.is_ascii_graphic())
}

async fn signin_anonymously(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let env = state
        .check_env(query.get("client_id").map(String::as_str))
        .map_err(|err| OAuthError::invalid_argument(err.message))?;
    let device_id = headers
        .get("x-device-id")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if !valid_device_id(device_id) {
        return Err(OAuthError::invalid_argument(
            "header x-device-id is required (1 to 128 visible ASCII characters)",
        ));
    }
    read_json_object(body).await?;
    let uid = uid_for_device(state.signer(), &env, device_id);
    let credentials = start_session(&state, &env, &uid, SCOPE_ANONYMOUS, device_id)
        .await
        .map_err(|err| {
            OAuthError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", err.message)
        })?;
    Ok(json_response(StatusCode::OK, &credentials))
}

async fn refresh_token_grant(
    State(state): State<AppState>,
    body: Body,
) -> Result<Response, OAuthError> {
    // client_id / client_secret may be present; the emulator has no clients to check them against.
    let fields = read_json_object(body).await?;
    match fields.get("grant_type").and_then(Value::as_str) {
        Some("refresh_token") => {}
        Some(other) => {
            return Err(OAuthError::invalid_argument(format!(
                "unsupported grant_type {other}"
            )))
        }
        None => return Err(OAuthError::invalid_argument("grant_type is required")),
    }
    let refresh_token = fields
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| OAuthError::invalid_argument("refresh_token is required"))?;
    let claims = state
        .signer()
        .verify(refresh_token, TokenKind::Refresh)
        .map_err(|err| match err {
            TokenError::Expired => OAuthError::invalid_grant("refresh token expired"),
            TokenError::Invalid => OAuthError::invalid_grant("invalid refresh token"),
        })?;
    if state.check_env(Some(&claims.env)).is_err() {
        return Err(OAuthError::invalid_grant(
            "refresh token was issued for another env",
        ));
    }
    // Rotation: the answer carries a new refresh token and this one stops working.
    let (credentials, next_jti) =
        issue_credentials(&state, &claims.env, &claims.uid, &claims.scope, &claims.sid);
    match use_refresh_token(&state, &claims.sid, &claims.jti, Some(next_jti)).await {
        Ok(()) => Ok(json_response(StatusCode::OK, &credentials)),
        Err(RefreshRefusal::Revoked) => Err(OAuthError::invalid_grant(
            "refresh token revoked (the session was signed out)",
        )),
        Err(RefreshRefusal::Superseded) => Err(OAuthError::invalid_grant(
            "refresh token already used: refresh tokens rotate, use the latest one",
        )),
    }
}

async fn user_me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let token = bearer_token(&headers)
        .ok_or_else(|| OAuthError::unauthenticated("missing bearer token"))?;
    let claims = state
        .signer()
        .verify(token, TokenKind::Access)
        .map_err(|err| match err {
            TokenError::Expired => OAuthError::unauthenticated("access token expired"),
            TokenError::Invalid => OAuthError::unauthenticated("invalid access token"),
        })?;
    if state.check_env(Some(&claims.env)).is_err() {
        return Err(OAuthError::unauthenticated(
            "access token was issued for another env",
        ));
    }
    if state.sessions().is_revoked(&claims.sid) {
        return Err(OAuthError::unauthenticated(
            "access token revoked (the session was signed out)",
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "sub": claims.uid,
            "name": "",
            "picture": "",
            "username": "",
            "email": "",
            "phone_number": "",
            "gender": "",
            "groups": [{ "id": claims.scope }],
            "providers": [],
            "status": "ACTIVE",
            "created_from": claims.scope,
        }),
    ))
}

/// `POST /auth/v1/revoke` `{"token"}` (the SDK's `signOut`): revokes the session of `token`, which may be
/// any access or refresh token it issued, expired or not. Answers `{}`.
async fn revoke(State(state): State<AppState>, body: Body) -> Result<Response, OAuthError> {
    let fields = read_json_object(body).await?;
    let token = fields
        .get("token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| OAuthError::invalid_argument("token is required"))?;
    let claims = state
        .signer()
        .inspect(token)
        .map_err(|_| OAuthError::invalid_argument("invalid token"))?;
    if claims.sid.is_empty() {
        return Err(OAuthError::invalid_argument("invalid token"));
    }
    let sessions = state.sessions().clone();
    tokio::task::spawn_blocking(move || sessions.revoke_session(&claims.sid))
        .await
        .map_err(|err| {
            OAuthError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                err.to_string(),
            )
        })?
        .map_err(|err| {
            OAuthError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                err.to_string(),
            )
        })?;
    Ok(json_response(StatusCode::OK, &json!({})))
}
