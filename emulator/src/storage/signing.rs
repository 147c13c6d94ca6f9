//! Upload authorizations and temp-URL signatures, HMAC-SHA256 with the data dir's secret.
//!
//! An upload authorization (what `getUploadMetadata` returns as `authorization`) reads like COS's:
//! `q-sign-algorithm=hmac-sha256&q-ak=cloud-emulator&q-sign-time=<from s>;<to s>&q-expires=<ms>&q-openid=…
//! &q-nonce=…&q-header-list=<names;…>&q-signature=<hex>`. The signature covers the env, the path, the
//! uploader's openid, the expiry, the nonce and the signed headers' names and values, so it is good for
//! that one path, that user and those header values until it expires. `token` and `cosFileId` are
//! derived from it and must come back with the upload (`x-cos-security-token`, `x-cos-meta-fileid`).
//!
//! A temp URL carries `?sign=<hex>&t=<expiry ms>`, the signature covering env, path and expiry.

use std::fmt;

use crate::auth::tokens::{now_ms, TokenSigner};

/// The `q-ak` of our authorizations.
const ACCESS_KEY: &str = "cloud-emulator";
/// Most headers one upload may sign.
const MAX_SIGNED_HEADERS: usize = 16;

/// Why an upload or a download was refused (answered as a COS XML error with HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// Missing or malformed credentials, or expired ones: COS `AccessDenied`.
    AccessDenied(String),
    /// Well-formed but not matching this request: COS `SignatureDoesNotMatch`.
    Mismatch(String),
}

impl SignatureError {
    /// The COS error code.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::AccessDenied(_) => "AccessDenied",
            SignatureError::Mismatch(_) => "SignatureDoesNotMatch",
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            SignatureError::AccessDenied(message) | SignatureError::Mismatch(message) => message,
        }
    }
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

/// A permission to upload one path, as issued by `getUploadMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadGrant {
    /// The uploader.
    pub openid: String,
    /// Expiry, ms since the epoch.
    pub expires_ms: u64,
    /// Random, makes every grant distinct.
    pub nonce: String,
    /// Headers the upload must carry with these values (lowercase names, sorted).
    pub signed_headers: Vec<(String, String)>,
}

/// What the client gets for an upload: the three values it sends back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedUpload {
    /// `authorization` (PUT header) / `signature` (POST field).
    pub authorization: String,
    /// `token` → `x-cos-security-token`.
    pub token: String,
    /// `cosFileId` → `x-cos-meta-fileid`.
    pub cos_file_id: String,
}

fn hex_mac(signer: &TokenSigner, parts: &[&str]) -> String {
    hex::encode(signer.derive(parts))
}

fn canonical_headers(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect()
}

/// Normalises headers to sign: lowercase valid names, canonical values, sorted; an error for names or
/// values that cannot be headers, or too many of them.
pub fn normalize_signed_headers(
    headers: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, String> {
    let mut normalized: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        let value = canonical_value(&name, &value);
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let value_ok = value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
        if !name_ok || !value_ok {
            return Err(format!("header {name:?} cannot be signed"));
        }
        // Authorization values are ours to set.
        if matches!(
            name.as_str(),
            "authorization" | "x-cos-security-token" | "x-cos-meta-fileid"
        ) {
            continue;
        }
        normalized.retain(|(existing, _)| *existing != name);
        normalized.push((name, value));
    }
    if normalized.len() > MAX_SIGNED_HEADERS {
        return Err(format!(
            "at most {MAX_SIGNED_HEADERS} headers can be signed"
        ));
    }
    normalized.sort();
    Ok(normalized)
}

impl UploadGrant {
    /// A new grant for `openid`, valid `ttl_secs` from now, binding `signed_headers` (normalised).
    pub fn new(openid: &str, ttl_secs: u64, signed_headers: Vec<(String, String)>) -> UploadGrant {
        UploadGrant {
            openid: openid.to_string(),
            expires_ms: now_ms().saturating_add(ttl_secs.saturating_mul(1000)),
            nonce: hex::encode(rand::random::<[u8; 12]>()),
            signed_headers,
        }
    }

    fn signature(&self, signer: &TokenSigner, env: &str, path: &str) -> String {
        let expires = self.expires_ms.to_string();
        let headers = canonical_headers(&self.signed_headers);
        hex_mac(
            signer,
            &[
                "upload",
                env,
                path,
                &self.openid,
                &expires,
                &self.nonce,
                &headers,
            ],
        )
    }

    fn token_for(signer: &TokenSigner, signature: &str) -> String {
        hex_mac(signer, &["upload-token", signature])[..40].to_string()
    }

    fn cos_file_id(&self, env: &str) -> String {
        format!("emu-{env}-{}", self.nonce)
    }

    /// The authorization, token and cosFileId of this grant for `path` on `env`.
    pub fn issue(&self, signer: &TokenSigner, env: &str, path: &str) -> IssuedUpload {
        let signature = self.signature(signer, env, path);
        let header_list = self
            .signed_headers
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let from = now_ms() / 1000;
        let to = self.expires_ms / 1000;
        let authorization = format!(
            "q-sign-algorithm=hmac-sha256&q-ak={ACCESS_KEY}&q-sign-time={from};{to}&q-key-time={from};{to}\
             &q-expires={}&q-openid={}&q-nonce={}&q-header-list={header_list}&q-url-param-list=&q-signature={signature}",
            self.expires_ms, self.openid, self.nonce
        );
        IssuedUpload {
            token: UploadGrant::token_for(signer, &signature),
            cos_file_id: self.cos_file_id(env),
            authorization,
        }
    }
}

/// What an upload presents: its authorization, token, cosFileId and a way to read its headers.
pub struct UploadCredentials<'a> {
    /// `authorization` header or `signature` / `Signature` form field.
    pub authorization: Option<&'a str>,
    /// `x-cos-security-token`.
    pub token: Option<&'a str>,
    /// `x-cos-meta-fileid`.
    pub cos_file_id: Option<&'a str>,
}

/// A parsed, not yet verified authorization.
struct ParsedAuthorization {
    grant: UploadGrant,
    signature: String,
}

fn parse_authorization(text: &str) -> Option<ParsedAuthorization> {
    let mut expires_ms = None;
    let mut openid = None;
    let mut nonce = None;
    let mut header_list = None;
    let mut signature = None;
    let mut algorithm_ok = false;
    for pair in text.trim().split('&') {
        let (key, value) = pair.split_once('=')?;
        match key {
            "q-sign-algorithm" => algorithm_ok = value == "hmac-sha256",
            "q-expires" => expires_ms = value.parse::<u64>().ok(),
            "q-openid" => openid = Some(value.to_string()),
            "q-nonce" => nonce = Some(value.to_string()),
            "q-header-list" => header_list = Some(value.to_string()),
            "q-signature" => signature = Some(value.to_string()),
            _ => {}
        }
    }
    if !algorithm_ok {
        return None;
    }
    let header_names: Vec<String> = header_list?
        .split(';')
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    Some(ParsedAuthorization {
        grant: UploadGrant {
            openid: openid?,
            expires_ms: expires_ms?,
            nonce: nonce?,
            // Values are filled in from the request before checking.
            signed_headers: header_names
                .into_iter()
                .map(|n| (n, String::new()))
                .collect(),
        },
        signature: signature?,
    })
}

/// The form a header value is signed in: media types by their lowercase essence (browsers may add
/// parameters such as `charset`), other values trimmed.
fn canonical_value(name: &str, value: &str) -> String {
    if name == "content-type" {
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    } else {
        value.trim().to_string()
    }
}

/// Checks an upload of `path` on `env`; `header` reads the request's headers (POST forms have none to
/// check, pass `|_| None` with no signed headers). Returns the verified grant.
pub fn verify_upload(
    signer: &TokenSigner,
    env: &str,
    path: &str,
    credentials: &UploadCredentials<'_>,
    header: impl Fn(&str) -> Option<String>,
) -> Result<UploadGrant, SignatureError> {
    let text = credentials
        .authorization
        .filter(|text| !text.trim().is_empty())
        .ok_or_else(|| {
            SignatureError::AccessDenied(
                "the upload carries no authorization (from storage.getUploadMetadata)".into(),
            )
        })?;
    let ParsedAuthorization {
        mut grant,
        signature,
    } = parse_authorization(text).ok_or_else(|| {
        SignatureError::AccessDenied("the authorization is malformed".to_string())
    })?;
    for (name, value) in grant.signed_headers.iter_mut() {
        *value = canonical_value(name, &header(name).unwrap_or_default());
    }
    let expected = grant.signature(signer, env, path);
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(SignatureError::Mismatch(
            "the signature does not match this path, uploader or signed headers".to_string(),
        ));
    }
    if now_ms() >= grant.expires_ms {
        return Err(SignatureError::AccessDenied(
            "Request has expired: get a new authorization from storage.getUploadMetadata".into(),
        ));
    }
    let token = UploadGrant::token_for(signer, &signature);
    if credentials.token.map(str::trim) != Some(token.as_str()) {
        return Err(SignatureError::AccessDenied(
            "x-cos-security-token is missing or does not belong to this authorization".into(),
        ));
    }
    if let Some(cos_file_id) = credentials.cos_file_id.map(str::trim) {
        if !cos_file_id.is_empty() && cos_file_id != grant.cos_file_id(env) {
            return Err(SignatureError::Mismatch(
                "x-cos-meta-fileid does not belong to this authorization".into(),
            ));
        }
    }
    Ok(grant)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `?sign=…&t=…` query of a temp URL for `path` on `env` that expires at `expires_ms`.
pub fn download_query(signer: &TokenSigner, env: &str, path: &str, expires_ms: u64) -> String {
    let sign = download_signature(signer, env, path, expires_ms);
    format!("sign={sign}&t={expires_ms}")
}

fn download_signature(signer: &TokenSigner, env: &str, path: &str, expires_ms: u64) -> String {
    hex_mac(signer, &["download", env, path, &expires_ms.to_string()])[..32].to_string()
}

/// Checks a temp URL's `sign` and `t` for `path` on `env`.
pub fn verify_download(
    signer: &TokenSigner,
    env: &str,
    path: &str,
    sign: Option<&str>,
    t: Option<&str>,
) -> Result<(), SignatureError> {
    let (Some(sign), Some(t)) = (sign, t) else {
        return Err(SignatureError::AccessDenied(
            "the URL is not signed: get one from getTempFileURL".into(),
        ));
    };
    let expires_ms: u64 = t
        .parse()
        .map_err(|_| SignatureError::AccessDenied("the URL's t is not a time".into()))?;
    let expected = download_signature(signer, env, path, expires_ms);
    if !constant_time_eq(expected.as_bytes(), sign.as_bytes()) {
        return Err(SignatureError::Mismatch(
            "the URL's signature does not match".into(),
        ));
    }
    if now_ms() >= expires_ms {
        return Err(SignatureError::AccessDenied(
            "Request has expired: get a new URL from getTempFileURL".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::new(b"0123456789abcdef".to_vec())
    }

    fn creds(issued: &IssuedUpload) -> UploadCredentials<'_> {
        UploadCredentials {
            authorization: Some(&issued.authorization),
            token: Some(&issued.token),
            cos_file_id: Some(&issued.cos_file_id),
        }
    }

    #[test]
    fn a_grant_is_good_for_its_path_only() {
        let signer = signer();
        let grant = UploadGrant::new("o1", 60, Vec::new());
        let issued = grant.issue(&signer, "e", "a/b.png");
        let verified = verify_upload(&signer, "e", "a/b.png", &creds(&issued), |_| None).unwrap();
        assert_eq!(verified.openid, "o1");
        let err = verify_upload(&signer, "e", "a/c.png", &creds(&issued), |_| None).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch");
        let err = verify_upload(&signer, "e2", "a/b.png", &creds(&issued), |_| None).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch");
        let forged = issued.authorization.replace("q-openid=o1", "q-openid=o2");
        let forged_creds = UploadCredentials {
            authorization: Some(&forged),
            ..creds(&issued)
        };
        let err = verify_upload(&signer, "e", "a/b.png", &forged_creds, |_| None).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch");
    }

    #[test]
    fn expiry_token_and_file_id_are_checked() {
        let signer = signer();
        let issued = UploadGrant::new("o1", 0, Vec::new()).issue(&signer, "e", "p");
        let err = verify_upload(&signer, "e", "p", &creds(&issued), |_| None).unwrap_err();
        assert_eq!(err.code(), "AccessDenied");

        let issued = UploadGrant::new("o1", 60, Vec::new()).issue(&signer, "e", "p");
        let no_token = UploadCredentials {
            token: None,
            ..creds(&issued)
        };
        assert_eq!(
            verify_upload(&signer, "e", "p", &no_token, |_| None)
                .unwrap_err()
                .code(),
            "AccessDenied"
        );
        let wrong_id = UploadCredentials {
            cos_file_id: Some("other"),
            ..creds(&issued)
        };
        assert!(verify_upload(&signer, "e", "p", &wrong_id, |_| None).is_err());
        let no_auth = UploadCredentials {
            authorization: None,
            ..creds(&issued)
        };
        assert_eq!(
            verify_upload(&signer, "e", "p", &no_auth, |_| None)
                .unwrap_err()
                .code(),
            "AccessDenied"
        );
    }

    #[test]
    fn signed_headers_must_come_back_with_the_same_values() {
        let signer = signer();
        let headers = normalize_signed_headers([
            ("Content-Type".to_string(), "text/plain".to_string()),
            ("content-length".to_string(), "11".to_string()),
        ])
        .unwrap();
        let issued = UploadGrant::new("o1", 60, headers).issue(&signer, "e", "p");
        assert!(issued
            .authorization
            .contains("q-header-list=content-length;content-type&"));
        let good = |name: &str| match name {
            "content-type" => Some("Text/Plain; charset=utf-8".to_string()),
            "content-length" => Some("11".to_string()),
            _ => None,
        };
        assert!(verify_upload(&signer, "e", "p", &creds(&issued), good).is_ok());
        let longer = |name: &str| match name {
            "content-type" => Some("text/plain".to_string()),
            "content-length" => Some("12".to_string()),
            _ => None,
        };
        assert_eq!(
            verify_upload(&signer, "e", "p", &creds(&issued), longer)
                .unwrap_err()
                .code(),
            "SignatureDoesNotMatch"
        );
        assert!(normalize_signed_headers([("bad name".to_string(), "v".to_string())]).is_err());
    }

    #[test]
    fn temp_urls_expire_and_resist_tampering() {
        let signer = signer();
        let future = now_ms() + 60_000;
        let query = download_query(&signer, "e", "a.png", future);
        let (sign, t) = query.split_once('&').unwrap();
        let sign = sign.strip_prefix("sign=").unwrap();
        let t = t.strip_prefix("t=").unwrap();
        assert!(verify_download(&signer, "e", "a.png", Some(sign), Some(t)).is_ok());
        assert!(verify_download(&signer, "e", "b.png", Some(sign), Some(t)).is_err());
        let later = (future + 1).to_string();
        assert_eq!(
            verify_download(&signer, "e", "a.png", Some(sign), Some(&later))
                .unwrap_err()
                .code(),
            "SignatureDoesNotMatch"
        );
        let past = now_ms() - 1;
        let query = download_query(&signer, "e", "a.png", past);
        let sign = &query[5..37];
        assert_eq!(
            verify_download(&signer, "e", "a.png", Some(sign), Some(&past.to_string()))
                .unwrap_err()
                .code(),
            "AccessDenied"
        );
        assert!(verify_download(&signer, "e", "a.png", None, Some("1")).is_err());
    }
}
