//! The one error type of the HTTP layer: a CloudBase string code and a message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloud_protocol::codes;
use serde_json::{json, Value};

/// A failed request, answered as `{"code","message","requestId"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// CloudBase string code (`cloud_protocol::codes`).
    pub code: &'static str,
    /// Human-readable detail.
    pub message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// `INVALID_PARAM` with `message`.
    pub fn invalid_param(message: impl Into<String>) -> ApiError {
        ApiError::new(codes::INVALID_PARAM, message)
    }

    /// The body sent to the client.
    pub fn body(&self, request_id: &str) -> Value {
        json!({ "code": self.code, "message": self.message, "requestId": request_id })
    }

    /// The HTTP status used where errors are not always 200 (the P3 gateway).
    pub fn http_status(&self) -> StatusCode {
        match self.code {
            codes::CHECK_LOGIN_FAILED | codes::ACCESS_TOKEN_EXPIRED => StatusCode::UNAUTHORIZED,
            codes::PERMISSION_DENIED | codes::INVALID_REQUEST_SOURCE => StatusCode::FORBIDDEN,
            codes::FUNCTION_NOT_FOUND | codes::RESOURCE_NOT_FOUND => StatusCode::NOT_FOUND,
            codes::EXCEED_REQUEST_SIZE_LIMIT => StatusCode::PAYLOAD_TOO_LARGE,
            codes::INVALID_PARAM | codes::INVALID_ENV | codes::INVALID_ACTION => {
                StatusCode::BAD_REQUEST
            }
            codes::FUNCTIONS_REQUEST_FAIL => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A fresh request id: 16 random bytes as hex.
pub fn new_request_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )],
        body.to_string(),
    )
        .into_response()
}
