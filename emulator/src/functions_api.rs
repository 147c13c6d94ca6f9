//! The HTTP side of cloud functions: P1 `functions.invokeFunction` and the P3 `POST /v1/functions/{name}`
//! route, both handing the call to [`crate::functions::FunctionsRuntime`].

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use cloud_protocol::{codes, limits};
use serde_json::{json, Map, Value};

use crate::auth::{appid_for, authenticate_token, bearer_token, Identity};
use crate::body::{parse_json, read_limited};
use crate::config::MAX_REQUEST_BYTES;
use crate::error::{json_response, new_request_id, ApiError};
use crate::functions::{InvokeContext, InvokeError};
use crate::server::AppState;

impl From<InvokeError> for ApiError {
    fn from(err: InvokeError) -> ApiError {
        ApiError::new(err.code(), err.message())
    }
}

/// Runs `name` with `data` for `identity`; the JSON text of the return value.
async fn run_function(
    state: &AppState,
    identity: &Identity,
    request_id: &str,
    name: &str,
    data: Value,
) -> Result<String, ApiError> {
    let context = InvokeContext {
        request_id: request_id.to_string(),
        env: identity.env.clone(),
        openid: identity.openid(state.signer()),
        appid: appid_for(&identity.env),
    };
    Ok(state.functions().invoke(name, data, &context).await?)
}

/// P1 `functions.invokeFunction`: `{function_name, request_data}` → `{data: {response_data}}`.
///
/// With `parse` (`?parse=true`), `response_data` is the return value itself rather than its JSON text.
pub async fn invoke_function_action(
    state: &AppState,
    identity: &Identity,
    request_id: &str,
    body: &Map<String, Value>,
    parse: bool,
) -> Result<Value, ApiError> {
    let name = match body.get("function_name") {
        Some(Value::String(name)) if !name.is_empty() => name.as_str(),
        _ => {
            return Err(ApiError::invalid_param(
                "function_name must be a non-empty string",
            ))
        }
    };
    let data = match body.get("request_data") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(text)) if text.trim().is_empty() => json!({}),
        Some(Value::String(text)) => {
            if text.len() > limits::CALL_FUNCTION_MAX_DATA_BYTES {
                return Err(ApiError::new(
                    codes::EXCEED_REQUEST_SIZE_LIMIT,
                    format!(
                        "request_data exceeds {} bytes",
                        limits::CALL_FUNCTION_MAX_DATA_BYTES
                    ),
                ));
            }
            parse_json(text.as_bytes(), "request_data")?
        }
        Some(_) => {
            return Err(ApiError::invalid_param(
                "request_data must be a JSON string",
            ))
        }
    };
    let text = run_function(state, identity, request_id, name, data).await?;
    let response_data = if parse {
        serde_json::from_str::<Value>(&text).map_err(|err| {
            ApiError::new(
                codes::FUNCTIONS_EXECUTE_FAIL,
                format!("response data must be json: {err}"),
            )
        })?
    } else {
        Value::String(text)
    };
    Ok(json!({ "data": { "response_data": response_data } }))
}

/// The P3 gateway routes for functions.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/functions/{name}", post(gateway_invoke))
}

/// The caller's `x-request-id` when it is a sane id (the 3.x SDK reports its own), else a fresh one.
pub(crate) fn gateway_request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_string)
        .unwrap_or_else(new_request_id)
}

async fn gateway_invoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = gateway_request_id(&headers);
    let result = async {
        let bytes = read_limited(body, MAX_REQUEST_BYTES).await?;
        // The gateway's env is the token's; the pin and an explicit ?env= must agree with it.
        let identity = authenticate_token(&state, bearer_token(&headers))?;
        state.check_env(Some(&identity.env))?;
        if let Some(env) = query.get("env").filter(|env| **env != identity.env) {
            return Err(ApiError::new(
                codes::CHECK_LOGIN_FAILED,
                format!(
                    "access_token was issued for env {}, not {env}",
                    identity.env
                ),
            ));
        }
        let data = if bytes.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            parse_json(&bytes, "request body")?
        };
        run_function(&state, &identity, &request_id, &name, data).await
    }
    .await;
    let mut response = match result {
        Ok(text) => Response::builder()
            .status(StatusCode::OK)
            .header(
                axum::http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(Body::from(text))
            .unwrap_or_else(|_| json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({}))),
        Err(err) => json_response(err.http_status(), &err.body(&request_id)),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
