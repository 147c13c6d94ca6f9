//! COS-style XML answers of the object URL: `<Error><Code>…</Code><Message>…</Message>…</Error>`.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use super::signing::SignatureError;
use crate::error::new_request_id;

/// Escapes text for XML element content.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// An XML response with `status`, carrying a fresh `x-cos-request-id`.
pub fn xml_response(status: StatusCode, body: String) -> Response {
    let request_id = new_request_id();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-cos-request-id", value);
    }
    response
}

/// A COS error: `status` with `<Error><Code>code</Code><Message>message</Message><Resource>…`.
pub fn error(status: StatusCode, code: &str, message: &str, resource: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource></Error>",
        escape(code),
        escape(message),
        escape(resource),
    );
    xml_response(status, body)
}

/// 403 for a refused signature.
pub fn signature_error(err: &SignatureError, resource: &str) -> Response {
    error(StatusCode::FORBIDDEN, err.code(), err.message(), resource)
}

/// 403 `AccessDenied` (permission rules).
pub fn access_denied(message: &str, resource: &str) -> Response {
    error(StatusCode::FORBIDDEN, "AccessDenied", message, resource)
}

/// 404 `NoSuchKey`.
pub fn no_such_key(resource: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NoSuchKey",
        "The specified key does not exist.",
        resource,
    )
}

/// 400 with `code` (`InvalidArgument`, `EntityTooLarge`, `MalformedPOSTRequest`, …).
pub fn bad_request(code: &str, message: &str, resource: &str) -> Response {
    error(StatusCode::BAD_REQUEST, code, message, resource)
}

/// 500 `InternalError`.
pub fn internal(message: &str, resource: &str) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        message,
        resource,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
