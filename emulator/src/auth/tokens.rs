//! Signed, stateless tokens: `base64url(claims JSON) "." base64url(HMAC-SHA256(secret, claims part))`.
//!
//! The claims carry the kind (access/refresh), the env, the user id and the expiry, so a token checks
//! itself; the secret lives in the data dir, so tokens survive restarts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Authorises API calls.
    Access,
    /// Buys new access tokens.
    Refresh,
    /// Signs a realtime socket in (`auth.wsWebSign` → `LOGIN`).
    WsSign,
}

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Access or refresh.
    pub kind: TokenKind,
    /// The env the token was issued for; it is valid there only.
    pub env: String,
    /// The user id (`sub`).
    pub uid: String,
    /// Login scope, `anonymous` for now.
    pub scope: String,
    /// Issued at, milliseconds since the epoch.
    pub iat: u64,
    /// Expires at, milliseconds since the epoch.
    pub exp: u64,
    /// Random id so two tokens issued in the same millisecond differ; a session's current refresh
    /// token is the one whose `jti` it recorded (rotation).
    pub jti: String,
    /// The sign-in session the token belongs to (see `auth::sessions`); revoking it revokes the token.
    /// Empty in tokens minted before sessions existed, which are refused.
    #[serde(default)]
    pub sid: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of ours, tampered, or of the wrong kind.
    Invalid,
    /// Well-formed and signed, but past its expiry.
    Expired,
}

/// Issues and checks tokens with one secret.
#[derive(Clone)]
pub struct TokenSigner {
    secret: Vec<u8>,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl TokenSigner {
    /// A signer keyed with `secret`.
    pub fn new(secret: Vec<u8>) -> TokenSigner {
        TokenSigner { secret }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts keys of any length")
    }

    /// A token of `kind` for `uid` on `env` in session `sid`, valid for `ttl_secs` from now.
    pub fn issue(
        &self,
        kind: TokenKind,
        env: &str,
        uid: &str,
        scope: &str,
        sid: &str,
        ttl_secs: u64,
    ) -> (String, Claims) {
        let iat = now_ms();
        let claims = Claims {
            kind,
            env: env.to_string(),
            uid: uid.to_string(),
            scope: scope.to_string(),
            iat,
            exp: iat.saturating_add(ttl_secs.saturating_mul(1000)),
            jti: hex::encode(rand::random::<[u8; 8]>()),
            sid: sid.to_string(),
        };
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        (format!("{payload}.{signature}"), claims)
    }

    /// The claims of `token` if it is ours, of `kind`, and not expired.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, TokenError> {
        let claims = self.inspect(token)?;
        if claims.kind != kind {
            return Err(TokenError::Invalid);
        }
        if now_ms() >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// The claims of `token` if we signed it, whatever its kind and even past its expiry (revocation
    /// accepts any token of a session).
    pub fn inspect(&self, token: &str) -> Result<Claims, TokenError> {
        let (payload, signature) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Invalid)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::Invalid)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Invalid)?;
        serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)
    }

    /// HMAC of `parts` joined by NUL, for deterministic ids derived from the secret.
    pub fn derive(&self, parts: &[&str]) -> [u8; 32] {
        let mut mac = self.mac();
        for (index, part) in parts.iter().enumerate() {
            if index > 0 {
                mac.update(&[0]);
            }
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_carry_their_claims() {
        let signer = TokenSigner::new(b"0123456789abcdef".to_vec());
        let (token, claims) =
            signer.issue(TokenKind::Access, "env-a", "uid1", "anonymous", "s1", 60);
        let checked = signer.verify(&token, TokenKind::Access).unwrap();
        assert_eq!(checked, claims);
        assert_eq!(checked.env, "env-a");
        assert_eq!(checked.exp - checked.iat, 60_000);
    }

    #[test]
    fn wrong_kind_tampering_and_other_secrets_are_invalid() {
        let signer = TokenSigner::new(b"0123456789abcdef".to_vec());
        let (token, _) = signer.issue(TokenKind::Refresh, "env-a", "uid1", "anonymous", "s1", 60);
        assert_eq!(
            signer.verify(&token, TokenKind::Access),
            Err(TokenError::Invalid)
        );
        let other = TokenSigner::new(b"fedcba9876543210".to_vec());
        assert_eq!(
            other.verify(&token, TokenKind::Refresh),
            Err(TokenError::Invalid)
        );
        let (payload, signature) = token.split_once('.').unwrap();
        let forged = format!("{}x.{signature}", payload);
        assert_eq!(
            signer.verify(&forged, TokenKind::Refresh),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            signer.verify("garbage", TokenKind::Refresh),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            signer.verify("", TokenKind::Refresh),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn zero_ttl_tokens_are_expired() {
        let signer = TokenSigner::new(b"0123456789abcdef".to_vec());
        let (token, _) = signer.issue(TokenKind::Access, "env-a", "uid1", "anonymous", "s1", 0);
        assert_eq!(
            signer.verify(&token, TokenKind::Access),
            Err(TokenError::Expired)
        );
    }
}
