//! The TC3-HMAC-SHA256 signature of the admin protocol, in its "tcb" form (admin-protocol.md §3):
//! the per-run credentials the emulator gives its workers, and the verification of a request.
//!
//! The canonical request is `post` (lowercase, as the SDK signs it), `//host/path`, the raw query, the
//! signed headers (trimmed, lowercased; a multipart content-type reduced to `multipart/form-data`),
//! the `SignedHeaders` list, and the SHA-256 of `&name=value\r\n` per signed body parameter. Every
//! non-empty body parameter must be signed, so nothing can be slipped into a signed request.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Longest accepted `X-Signature-Expires`, in seconds (the SDK sends 600).
pub const MAX_SIGNATURE_AGE_SECS: i64 = 600;

/// The credentials the emulator gives its function workers (`TENCENTCLOUD_SECRETID`,
/// `TENCENTCLOUD_SECRETKEY`, `TENCENTCLOUD_SESSIONTOKEN`), derived from the per-run admin token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `TENCENTCLOUD_SECRETID`, named in the `Credential` of every request.
    pub secret_id: String,
    /// `TENCENTCLOUD_SECRETKEY`, the signing key (never sent).
    pub secret_key: String,
    /// `TENCENTCLOUD_SESSIONTOKEN`, sent as the signed body parameter `sessionToken`.
    pub session_token: String,
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Credentials {
    /// The credentials of the run whose admin token is `admin_token`.
    pub fn derive(admin_token: &str) -> Credentials {
        let part = |label: &str| hex::encode(hmac(admin_token.as_bytes(), label.as_bytes()));
        Credentials {
            secret_id: format!("AKIDcloudemulator{}", &part("secret-id")[..20]),
            secret_key: part("secret-key")[..40].to_string(),
            session_token: part("session-token"),
        }
    }
}

/// One body parameter as signed: text (trimmed), JSON (its compact text) or raw bytes (a file part).
#[derive(Debug, Clone)]
pub enum SignedValue<'a> {
    /// A string parameter.
    Text(&'a str),
    /// A number, boolean, array or object, signed as `JSON.stringify` writes it.
    Json(&'a serde_json::Value),
    /// A multipart file part.
    Bytes(&'a [u8]),
}

/// What verification needs from the request.
pub struct SignedRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The `Host` header.
    pub host: &'a str,
    /// The URL path.
    pub path: &'a str,
    /// The raw query string.
    pub query: &'a str,
    /// Looks up a request header by lowercase name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The body parameters by name.
    pub params: &'a [(String, SignedValue<'a>)],
    /// Unix seconds now.
    pub now_secs: i64,
}

/// UTC `YYYY-MM-DD` of unix seconds `secs`.
pub fn utc_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn field<'a>(authorization: &'a str, name: &str) -> Option<&'a str> {
    authorization
        .split([',', ' '])
        .filter_map(|part| part.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn param_text(value: &SignedValue<'_>) -> Vec<u8> {
    match value {
        SignedValue::Text(text) => text.trim().as_bytes().to_vec(),
        SignedValue::Json(value) => value.to_string().trim().as_bytes().to_vec(),
        SignedValue::Bytes(bytes) => bytes.to_vec(),
    }
}

fn is_empty_param(value: &SignedValue<'_>) -> bool {
    matches!(value, SignedValue::Text(text) if text.is_empty())
}

/// The canonical header block: `name:value\n` per signed header, values trimmed and lowercased, a
/// multipart content-type reduced to `multipart/form-data`.
pub fn canonical_headers(
    signed_headers: &str,
    header: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut block = String::new();
    for name in signed_headers.split(';').filter(|n| !n.is_empty()) {
        let mut value = header(name)
            .ok_or_else(|| format!("signed header {name} is missing"))?
            .trim()
            .to_ascii_lowercase();
        if name == "content-type" && value.starts_with("multipart/form-data") {
            value = "multipart/form-data".to_string();
        }
        block.push_str(&format!("{name}:{value}\n"));
    }
    Ok(block)
}

/// The canonical request: method (lowercase), `//host/path`, raw query, header block, signed header
/// names, payload hash — joined by newlines.
pub fn canonical_request(
    request: &SignedRequest<'_>,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!(
        "{}\n//{}{}\n{}\n{}\n{}\n{}",
        request.method.to_ascii_lowercase(),
        request.host,
        request.path,
        request.query,
        canonical_headers,
        signed_headers,
        payload_hash
    )
}

/// The string to sign of a canonical request signed at `timestamp` on UTC `date`.
pub fn string_to_sign(timestamp: i64, date: &str, canonical_request: &str) -> String {
    format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/tcb/tc3_request\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Checks the request's `Authorization` against `credentials`; the error says what does not match.
pub fn verify(request: &SignedRequest<'_>, credentials: &Credentials) -> Result<(), String> {
    let header = request.header;
    let authorization =
        header("authorization").ok_or("missing Authorization (a TC3-HMAC-SHA256 signature)")?;
    let rest = authorization
        .strip_prefix("TC3-HMAC-SHA256 ")
        .ok_or("Authorization must be TC3-HMAC-SHA256")?;
    let credential = field(rest, "Credential").ok_or("Authorization has no Credential")?;
    let signed_params = field(rest, "SignedParams").unwrap_or("");
    let signed_headers =
        field(rest, "SignedHeaders").ok_or("Authorization has no SignedHeaders")?;
    let signature = field(rest, "Signature").ok_or("Authorization has no Signature")?;
    let mut scope = credential.splitn(2, '/');
    let secret_id = scope.next().unwrap_or("");
    let scope = scope.next().unwrap_or("");
    if secret_id != credentials.secret_id {
        return Err(format!(
            "unknown SecretId {secret_id:?}: only the credentials cloud-emulator gave this function are accepted"
        ));
    }
    let (date, service) = scope
        .strip_suffix("/tc3_request")
        .and_then(|s| s.split_once('/'))
        .ok_or("Credential scope must be <date>/tcb/tc3_request")?;
    if service != "tcb" {
        return Err(format!("Credential service must be tcb, not {service}"));
    }
    let timestamp: i64 = header("x-timestamp")
        .and_then(|t| t.trim().parse().ok())
        .ok_or("missing or bad X-Timestamp")?;
    let expires: i64 = header("x-signature-expires")
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(MAX_SIGNATURE_AGE_SECS)
        .clamp(0, MAX_SIGNATURE_AGE_SECS);
    if (request.now_secs - timestamp).abs() > expires {
        return Err(format!(
            "signature expired: X-Timestamp {timestamp} is more than {expires} s from now"
        ));
    }
    if date != utc_date(timestamp) {
        return Err(format!(
            "Credential date {date} is not the date of X-Timestamp"
        ));
    }

    let canonical_headers = canonical_headers(signed_headers, header)?;
    for required in ["content-type", "host"] {
        if !signed_headers.split(';').any(|n| n == required) {
            return Err(format!("header {required} must be signed"));
        }
    }

    let signed: Vec<&str> = signed_params.split(';').filter(|n| !n.is_empty()).collect();
    for (name, value) in request.params {
        if !is_empty_param(value) && !signed.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!("body parameter {name} is not signed"));
        }
    }
    let mut payload = Vec::new();
    for name in &signed {
        let (_, value) = request
            .params
            .iter()
            .find(|(key, _)| key.to_ascii_lowercase() == *name)
            .ok_or_else(|| format!("signed parameter {name} is not in the body"))?;
        payload.extend_from_slice(b"&");
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(b"=");
        payload.extend_from_slice(&param_text(value));
        payload.extend_from_slice(b"\r\n");
    }

    let canonical_request = canonical_request(
        request,
        &canonical_headers,
        signed_headers,
        &sha256_hex(&payload),
    );
    let string_to_sign = string_to_sign(timestamp, date, &canonical_request);
    let k_date = hmac(
        format!("TC3{}", credentials.secret_key).as_bytes(),
        date.as_bytes(),
    );
    let k_service = hmac(&k_date, b"tcb");
    let k_signing = hmac(&k_service, b"tc3_request");
    let expected = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    let matches = expected.len() == signature.len()
        && expected
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if matches {
        Ok(())
    } else {
        Err(
            "signature does not match: the request was not signed with this run's secret key"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_795_942_983), "2026-11-29");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_704_067_199), "2023-12-31");
    }

    /// Signs like @cloudbase/signature-nodejs 2.2.0 does, for the round trip below.
    fn sign(
        creds: &Credentials,
        host: &str,
        query: &str,
        timestamp: i64,
        params: &[(String, SignedValue<'_>)],
    ) -> String {
        let headers = "content-type;host;user-agent";
        let canonical_headers =
            format!("content-type:application/json\nhost:{host}\nuser-agent:tcb-node-sdk/3.17.2\n");
        let names: Vec<String> = params
            .iter()
            .filter(|(_, v)| !is_empty_param(v))
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        let mut payload = Vec::new();
        for (name, value) in params.iter().filter(|(_, v)| !is_empty_param(v)) {
            payload.extend_from_slice(format!("&{}=", name.to_ascii_lowercase()).as_bytes());
            payload.extend_from_slice(&param_text(value));
            payload.extend_from_slice(b"\r\n");
        }
        let canonical = format!(
            "post\n//{host}/admin\n{query}\n{canonical_headers}\n{headers}\n{}",
            sha256_hex(&payload)
        );
        let date = utc_date(timestamp);
        let to_sign = format!(
            "TC3-HMAC-SHA256\n{timestamp}\n{date}/tcb/tc3_request\n{}",
            sha256_hex(canonical.as_bytes())
        );
        let k = hmac(
            &hmac(
                &hmac(
                    format!("TC3{}", creds.secret_key).as_bytes(),
                    date.as_bytes(),
                ),
                b"tcb",
            ),
            b"tc3_request",
        );
        format!(
            "TC3-HMAC-SHA256 Credential={}/{date}/tcb/tc3_request, SignedParams={}, SignedHeaders={headers}, Signature={}",
            creds.secret_id, names.join(";"), hex::encode(hmac(&k, to_sign.as_bytes()))
        )
    }

    #[test]
    fn verifies_what_the_secret_signed_and_nothing_else() {
        let creds = Credentials::derive("token-a");
        assert_ne!(creds, Credentials::derive("token-b"));
        let limit = json!(100);
        let params = vec![
            (
                "action".to_string(),
                SignedValue::Text("database.getDocument"),
            ),
            ("limit".to_string(), SignedValue::Json(&limit)),
            ("crossAuthorizationToken".to_string(), SignedValue::Text("")),
        ];
        let now = 1_795_942_983;
        let authorization = sign(&creds, "127.0.0.1:1", "env=e&seqId=s", now, &params);
        let check = |authorization: &str,
                     query: &str,
                     now_secs: i64,
                     params: &[(String, SignedValue<'_>)],
                     creds: &Credentials| {
            let headers = |name: &str| -> Option<String> {
                match name {
                    "authorization" => Some(authorization.to_string()),
                    "content-type" => Some("application/json".into()),
                    "host" => Some("127.0.0.1:1".into()),
                    "user-agent" => Some("tcb-node-sdk/3.17.2".into()),
                    "x-timestamp" => Some(now.to_string()),
                    _ => None,
                }
            };
            verify(
                &SignedRequest {
                    method: "POST",
                    host: "127.0.0.1:1",
                    path: "/admin",
                    query,
                    header: &headers,
                    params,
                    now_secs,
                },
                creds,
            )
        };
        assert_eq!(
            check(&authorization, "env=e&seqId=s", now + 5, &params, &creds),
            Ok(())
        );
        assert!(
            check(&authorization, "env=other&seqId=s", now, &params, &creds).is_err(),
            "query is signed"
        );
        assert!(
            check(&authorization, "env=e&seqId=s", now + 601, &params, &creds)
                .unwrap_err()
                .contains("expired")
        );
        let other = Credentials {
            secret_key: "x".repeat(40),
            ..creds.clone()
        };
        assert!(check(&authorization, "env=e&seqId=s", now, &params, &other)
            .unwrap_err()
            .contains("does not match"));
        let more = json!(1000);
        let tampered = vec![
            params[0].clone(),
            ("limit".to_string(), SignedValue::Json(&more)),
        ];
        assert!(check(&authorization, "env=e&seqId=s", now, &tampered, &creds).is_err());
        let mut added = params.clone();
        added.push(("transactionId".to_string(), SignedValue::Text("t")));
        assert!(check(&authorization, "env=e&seqId=s", now, &added, &creds)
            .unwrap_err()
            .contains("not signed"));
    }
}
