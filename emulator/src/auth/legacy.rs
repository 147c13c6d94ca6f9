//! The legacy P1 `auth.*` actions of js-sdk 1.x / tcb-js-sdk, answered with top-level fields.

use cloud_protocol::codes;
use serde_json::{json, Map, Value};

use super::tokens::{TokenError, TokenKind};
use super::{new_uid, start_session, use_refresh_token, Identity, SCOPE_ANONYMOUS};
use crate::error::ApiError;
use crate::server::AppState;

fn string_field<'a>(body: &'a Map<String, Value>, name: &str) -> &'a str {
    body.get(name).and_then(Value::as_str).unwrap_or("")
}

/// `auth.signInAnonymously`: keeps the user of a still-valid refresh token, else makes a new one; a new
/// session either way. Answers `{uuid, refresh_token}`.
pub async fn sign_in_anonymously(
    state: &AppState,
    env: &str,
    body: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let previous = state
        .signer()
        .verify(string_field(body, "refresh_token"), TokenKind::Refresh)
        .ok()
        .filter(|claims| {
            claims.env == env
                && claims.scope == SCOPE_ANONYMOUS
                && !state.sessions().is_revoked(&claims.sid)
        });
    let uid = previous.map(|claims| claims.uid).unwrap_or_else(new_uid);
    let credentials = start_session(state, env, &uid, SCOPE_ANONYMOUS, "").await?;
    let refresh_token = credentials["refresh_token"].clone();
    Ok(json!({ "uuid": uid, "refresh_token": refresh_token }))
}

/// `auth.fetchAccessTokenWithRefreshToken`: answers `{access_token, access_token_expire}` (lifetime in
/// ms). The legacy protocol has no rotation: the refresh token stays the session's current one.
pub async fn fetch_access_token(
    state: &AppState,
    env: &str,
    body: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let refresh_token = string_field(body, "refresh_token");
    if refresh_token.is_empty() {
        return Err(ApiError::invalid_param("refresh_token is required"));
    }
    let claims = state
        .signer()
        .verify(refresh_token, TokenKind::Refresh)
        .map_err(|err| match err {
            TokenError::Expired => {
                ApiError::new(codes::REFRESH_TOKEN_EXPIRED, "refresh_token expired")
            }
            TokenError::Invalid => {
                ApiError::new(codes::INVALID_REFRESH_TOKEN, "invalid refresh_token")
            }
        })?;
    if claims.env != env {
        return Err(ApiError::new(
            codes::INVALID_REFRESH_TOKEN,
            format!("refresh_token was issued for env {}, not {env}", claims.env),
        ));
    }
    use_refresh_token(state, &claims.sid, &claims.jti, None)
        .await
        .map_err(|_| {
            ApiError::new(
                codes::INVALID_REFRESH_TOKEN,
                "refresh_token revoked (the session was signed out)",
            )
        })?;
    let ttl = state.config().token_ttl_secs;
    let (access_token, _) = state.signer().issue(
        TokenKind::Access,
        env,
        &claims.uid,
        &claims.scope,
        &claims.sid,
        ttl,
    );
    Ok(json!({ "access_token": access_token, "access_token_expire": ttl.saturating_mul(1000) }))
}

/// `auth.getUserInfo`: answers `{data: {uid, loginType, …}}` for the caller.
pub fn get_user_info(state: &AppState, identity: &Identity) -> Value {
    let login_type = if identity.scope == SCOPE_ANONYMOUS {
        "ANONYMOUS"
    } else {
        "CUSTOM"
    };
    json!({
        "data": {
            "uid": identity.uid,
            "loginType": login_type,
            "openid": identity.openid(state.signer()),
            "wxOpenId": "",
            "wxPublicId": "",
            "wxUnionId": "",
            "qqMiniOpenId": "",
            "customUserId": "",
            "nickName": "",
            "gender": "",
            "avatarUrl": "",
            "email": "",
            "hasPassword": false,
            "phone": "",
            "username": "",
            "country": "",
            "province": "",
            "city": "",
        }
    })
}
