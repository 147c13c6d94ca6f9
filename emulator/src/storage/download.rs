//! Downloads from a temp URL: `GET`/`HEAD /cos/{env}/{path}?sign=…&t=…` with `Content-Type`,
//! `Content-Length`, a sha256-based `ETag`, `Last-Modified`, single `Range`s (206, 416) and
//! `If-None-Match` (304). Expired or tampered URLs get a 403 COS XML error, missing objects 404.
//!
//! Served bodies get `Content-Security-Policy: sandbox` and `nosniff`: an uploaded HTML or SVG file
//! opened from its temp URL cannot script the emulator's origin (where the demo page and its tokens live).

use std::io::SeekFrom;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::ops::blocking;
use super::signing::{verify_download, SignatureError};
use super::store::ObjectMeta;
use super::upload::target;
use super::xml;
use crate::server::AppState;

/// Read size when streaming a blob.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A `Range` request resolved against the object's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: the whole body.
    Full,
    /// Bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A range that selects nothing of a body this size.
    Unsatisfiable,
}

/// Interprets a `Range` header for a body of `size` bytes. Multiple ranges and other units are served
/// as the whole body (allowed by RFC 9110); malformed headers are ignored likewise.
pub fn parse_range(value: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |text: &str| text.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(suffix) => RangeRequest::Partial {
                start: size.saturating_sub(suffix),
                end: size - 1,
            },
            None => RangeRequest::Full,
        },
        // bytes=N-: from N to the end.
        (false, true) => match parse(first) {
            Some(start) if start >= size => RangeRequest::Unsatisfiable,
            Some(start) => RangeRequest::Partial {
                start,
                end: size - 1,
            },
            None => RangeRequest::Full,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(start), Some(end)) if start > end => RangeRequest::Full,
            (Some(start), Some(_)) if start >= size => RangeRequest::Unsatisfiable,
            (Some(start), Some(end)) => RangeRequest::Partial {
                start,
                end: end.min(size - 1),
            },
            _ => RangeRequest::Full,
        },
        (true, true) => RangeRequest::Full,
    }
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn common_headers(response: &mut Response, meta: &ObjectMeta) {
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&meta.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Ok(etag) = HeaderValue::from_str(&meta.etag) {
        headers.insert(header::ETAG, etag);
    }
    let modified = std::time::UNIX_EPOCH + std::time::Duration::from_millis(meta.updated_ms);
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Signed URLs serve whatever the path holds now: revalidate with the ETag.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// `GET` / `HEAD /cos/{env}/{path}?sign=…&t=…`.
pub async fn get_object(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let target = match target(&state, &uri) {
        Ok(target) => target,
        Err(response) => return *response,
    };
    let resource = target.resource.clone();
    let query = uri.query().unwrap_or("");
    let (sign, t) = (query_param(query, "sign"), query_param(query, "t"));
    let mut first_error = None;
    let mut verified = None;
    for key in &target.keys {
        match verify_download(state.signer(), &target.env, key, sign, t) {
            Ok(()) => {
                verified = Some(key.clone());
                break;
            }
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    let Some(key) = verified else {
        let err = first_error.unwrap_or_else(|| SignatureError::AccessDenied("no key".into()));
        return xml::signature_error(&err, &resource);
    };
    let storage = state.storage().clone();
    let env = target.env.clone();
    let opened = match blocking(move || storage.store().open_object(&env, &key)).await {
        Ok(opened) => opened,
        Err(err) => return xml::internal(&err.message, &resource),
    };
    let Some((meta, file)) = opened else {
        return xml::no_such_key(&resource);
    };
    if etag_matches(&headers, &meta.etag) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        common_headers(&mut response, &meta);
        response.headers_mut().remove(header::CONTENT_TYPE);
        return response;
    }
    let range = parse_range(
        headers
            .get(header::RANGE)
            .and_then(|value| value.to_str().ok()),
        meta.size,
    );
    let (status, start, length) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, meta.size),
        RangeRequest::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut response = xml::error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
                &resource,
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", meta.size)) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let mut file = tokio::fs::File::from_std(file);
        if start > 0 {
            if let Err(err) = file.seek(SeekFrom::Start(start)).await {
                return xml::internal(&format!("reading the blob: {err}"), &resource);
            }
        }
        Body::from_stream(ReaderStream::with_capacity(
            file.take(length),
            READ_CHUNK_BYTES,
        ))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    common_headers(&mut response, &meta);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!("bytes {start}-{}/{}", start + length - 1, meta.size);
        if let Ok(value) = HeaderValue::from_str(&range) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_rfc_9110() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 10), Full);
        assert_eq!(
            parse_range(Some("bytes=0-3"), 10),
            Partial { start: 0, end: 3 }
        );
        assert_eq!(
            parse_range(Some("bytes=5-"), 10),
            Partial { start: 5, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-3"), 10),
            Partial { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-30"), 10),
            Partial { start: 0, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=8-100"), 10),
            Partial { start: 8, end: 9 }
        );
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=10-20"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Full);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Full);
        assert_eq!(parse_range(Some("bytes=x-2"), 10), Full);
    }

    #[test]
    fn query_params_are_found_by_name() {
        assert_eq!(query_param("sign=ab&t=12", "t"), Some("12"));
        assert_eq!(query_param("sign=ab&t=12", "sign"), Some("ab"));
        assert_eq!(query_param("x=1", "t"), None);
    }
}
