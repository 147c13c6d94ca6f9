//! Everything between an API and the network: the `/web` action envelope, fetch with timeouts and
//! aborts, the auth session and where its credentials are kept.

pub mod abort;
pub mod auth;
pub mod deadline;
pub mod envelope;
pub mod http;
pub mod storage;
#[cfg(feature = "storage")]
pub mod transfer;

use std::rc::Rc;

use cloud_protocol::codes;
use wasm_bindgen::JsValue;

use self::auth::Session;
use self::envelope::{envelope, Param};
use crate::error::Failure;
use crate::js;

/// `X-SDK-Version` on every request.
pub const SDK_VERSION_HEADER: (&str, &str) = (
    "X-SDK-Version",
    concat!("taro-cloud-wasm/", env!("CARGO_PKG_VERSION")),
);

/// Sends one `/web` action and returns the parsed success body (`{requestId, data, …}`).
///
/// Always-200 error bodies `{code, message, requestId}` become `Failure::Server`. A rejected token
/// (`ACCESS_TOKEN_EXPIRED`, `CHECK_LOGIN_FAILED`) is renewed and the action retried once.
pub async fn call_action(
    session: &Rc<Session>,
    action: &str,
    params: &[Param<'_>],
) -> Result<JsValue, Failure> {
    let env_query: String = js_sys::encode_uri_component(&session.env).into();
    let url = format!("{}/web?env={env_query}", session.base_url);
    let mut retried = false;
    loop {
        let token = session.access_token().await?;
        let seq_id = js::random_hex(13);
        let body = envelope(action, &session.env, params, &token, &seq_id);
        let mut headers = vec![
            ("content-type", "application/json;charset=UTF-8"),
            ("x-seqid", seq_id.as_str()),
            SDK_VERSION_HEADER,
        ];
        if let Some(region) = &session.region {
            headers.push(("X-TCB-Region", region.as_str()));
        }
        let response = http::send("POST", &url, &headers, Some(&body), session.timeout_ms).await?;
        let parsed = Some(response.json).filter(JsValue::is_object);
        let Some(parsed) = parsed else {
            return Err(Failure::Network(format!(
                "invalid response (HTTP {})",
                response.status
            )));
        };
        if let Some(code) = js::get_string(&parsed, "code").filter(|code| !code.is_empty()) {
            let expired = code == codes::ACCESS_TOKEN_EXPIRED;
            if !retried && (expired || code == codes::CHECK_LOGIN_FAILED) {
                session.invalidate(&token, expired);
                retried = true;
                continue;
            }
            return Err(Failure::Server {
                code,
                message: js::get_string(&parsed, "message").unwrap_or_default(),
                request_id: js::get_string(&parsed, "requestId"),
            });
        }
        if response.status != 200 {
            return Err(Failure::Network(format!(
                "network request error (HTTP {})",
                response.status
            )));
        }
        return Ok(parsed);
    }
}
