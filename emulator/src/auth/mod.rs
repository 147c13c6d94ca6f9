//! Users and tokens: anonymous sign-in (P2 `/auth/v1` and the legacy P1 `auth.*` actions), token checks
//! for every other call, and the ids derived from a user id (openid, appid).

pub mod legacy;
pub mod oauth;
pub mod sessions;
pub mod tokens;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cloud_protocol::codes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::server::AppState;
use sessions::{RefreshRefusal, Sessions};
use tokens::{TokenError, TokenKind, TokenSigner};

/// The only login scope the emulator issues for now.
pub const SCOPE_ANONYMOUS: &str = "anonymous";

/// The caller of an authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id (`sub`, legacy `uid`).
    pub uid: String,
    /// The env the token was issued for (and the request is on).
    pub env: String,
    /// Login scope.
    pub scope: String,
    /// The session the token belongs to (revoked as a whole by `/auth/v1/revoke`).
    pub sid: String,
}

impl Identity {
    /// The WeChat-style openid of this user: stable for a uid and a data dir.
    pub fn openid(&self, signer: &TokenSigner) -> String {
        let digest = signer.derive(&["openid", &self.env, &self.uid]);
        format!("o{}", &URL_SAFE_NO_PAD.encode(&digest[..21])[..27])
    }
}

/// The WeChat-style app id reported for `env` (`wx` + 16 hex digits, stable per env).
pub fn appid_for(env: &str) -> String {
    let digest = Sha256::digest(format!("cloud-emulator appid\0{env}").as_bytes());
    format!("wx{}", &hex::encode(digest)[..16])
}

/// A new random user id, in the shape CloudBase uses (22 base64url characters).
pub fn new_uid() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// The anonymous user id of a device on an env: the same device always gets the same user.
pub fn uid_for_device(signer: &TokenSigner, env: &str, device_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(&signer.derive(&["anonymous-device", env, device_id])[..16])
}

/// The bearer token of an `Authorization` header, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks an access token, whatever env it was issued for.
pub fn authenticate_token(state: &AppState, token: Option<&str>) -> Result<Identity, ApiError> {
    let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::new(
            codes::CHECK_LOGIN_FAILED,
            "missing access_token: sign in first",
        )
    })?;
    let claims = state
        .signer()
        .verify(token, TokenKind::Access)
        .map_err(|err| match err {
            TokenError::Expired => {
                ApiError::new(codes::ACCESS_TOKEN_EXPIRED, "access_token expired")
            }
            TokenError::Invalid => ApiError::new(codes::CHECK_LOGIN_FAILED, "invalid access_token"),
        })?;
    if state.sessions().is_revoked(&claims.sid) {
        return Err(ApiError::new(
            codes::CHECK_LOGIN_FAILED,
            "access_token revoked (the session was signed out): sign in again",
        ));
    }
    state.sessions().touch(&claims.sid);
    Ok(Identity {
        uid: claims.uid,
        env: claims.env,
        scope: claims.scope,
        sid: claims.sid,
    })
}

/// Checks an access token for a request on `env`: tokens are valid on the env they were issued for only.
pub fn authenticate(
    state: &AppState,
    token: Option<&str>,
    env: &str,
) -> Result<Identity, ApiError> {
    let identity = authenticate_token(state, token)?;
    if identity.env != env {
        return Err(ApiError::new(
            codes::CHECK_LOGIN_FAILED,
            format!(
                "access_token was issued for env {}, not {env}",
                identity.env
            ),
        ));
    }
    Ok(identity)
}

/// A fresh access/refresh token pair for `uid` on `env` in session `sid`, as the P2 credentials
/// object, and the id (`jti`) of the refresh token.
pub fn issue_credentials(
    state: &AppState,
    env: &str,
    uid: &str,
    scope: &str,
    sid: &str,
) -> (Value, String) {
    let ttl = state.config().token_ttl_secs;
    let (access_token, _) = state
        .signer()
        .issue(TokenKind::Access, env, uid, scope, sid, ttl);
    let (refresh_token, refresh_claims) = state.signer().issue(
        TokenKind::Refresh,
        env,
        uid,
        scope,
        sid,
        crate::config::REFRESH_TOKEN_TTL_SECS,
    );
    let credentials = json!({
        "token_type": "Bearer",
        "access_token": access_token,
        "refresh_token": refresh_token,
        "expires_in": ttl,
        "scope": scope,
        "sub": uid,
        "groups": [scope],
    });
    (credentials, refresh_claims.jti)
}

/// Signs `uid` in on `env`: a new session (recorded on disk) and its P2 credentials.
pub async fn start_session(
    state: &AppState,
    env: &str,
    uid: &str,
    scope: &str,
    device_id: &str,
) -> Result<Value, ApiError> {
    let sid = Sessions::new_sid();
    let (credentials, refresh_jti) = issue_credentials(state, env, uid, scope, &sid);
    let sessions = state.sessions().clone();
    let (env, uid, scope, device_id) = (
        env.to_string(),
        uid.to_string(),
        scope.to_string(),
        device_id.to_string(),
    );
    tokio::task::spawn_blocking(move || {
        sessions.begin(&sid, &env, &uid, &scope, &device_id, &refresh_jti)
    })
    .await
    .map_err(|err| ApiError::new(codes::SYS_ERR, format!("sign-in failed: {err}")))?
    .map_err(|err| ApiError::new(codes::SYS_ERR, format!("sign-in failed: {err}")))?;
    Ok(credentials)
}

/// Checks that `jti` is the current refresh token of session `sid` and, with `rotate_to`, replaces it.
pub async fn use_refresh_token(
    state: &AppState,
    sid: &str,
    jti: &str,
    rotate_to: Option<String>,
) -> Result<(), RefreshRefusal> {
    let sessions = state.sessions().clone();
    let (sid, jti) = (sid.to_string(), jti.to_string());
    tokio::task::spawn_blocking(move || {
        sessions.use_refresh_token(&sid, &jti, rotate_to.as_deref())
    })
    .await
    .unwrap_or(Err(RefreshRefusal::Revoked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_shaped_like_wechat_ones() {
        let signer = TokenSigner::new(b"0123456789abcdef".to_vec());
        let identity = Identity {
            uid: "u1".into(),
            env: "e1".into(),
            scope: SCOPE_ANONYMOUS.into(),
            sid: "s1".into(),
        };
        let openid = identity.openid(&signer);
        assert_eq!(openid, identity.openid(&signer));
        assert_eq!(openid.len(), 28);
        assert!(openid.starts_with('o'));
        let other = Identity {
            uid: "u2".into(),
            ..identity.clone()
        };
        assert_ne!(openid, other.openid(&signer));
        assert_eq!(appid_for("e1"), appid_for("e1"));
        assert_eq!(appid_for("e1").len(), 18);
        assert_eq!(
            uid_for_device(&signer, "e1", "d1"),
            uid_for_device(&signer, "e1", "d1")
        );
        assert_ne!(
            uid_for_device(&signer, "e1", "d1"),
            uid_for_device(&signer, "e1", "d2")
        );
        assert_eq!(new_uid().len(), 22);
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }
}
