//! Browser-facing safety: a Host header check (against DNS rebinding) and CORS for loopback origins
//! plus `--allow-origin`.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use cloud_protocol::codes;

use crate::error::{json_response, new_request_id, ApiError};
use crate::server::AppState;

/// Request headers always allowed by preflight answers.
const ALLOWED_HEADERS: &[&str] = &[
    "content-type",
    "x-seqid",
    "x-sdk-version",
    "x-tcb-region",
    "x-tcb-trace",
    "x-request-id",
    "x-device-id",
    "authorization",
];
// PATCH and HEAD: callContainer passes any method through to a service.
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
/// Response headers a page may read.
// Storage responses add ETag, Content-Range and friends: a page on another loopback port must be able
// to read them from fetch() (Range requests, cache validation).
const EXPOSED_HEADERS: &str =
    "x-request-id, x-tcb-trace, etag, content-range, accept-ranges, content-length, x-cos-request-id";

const LOOPBACK_NAMES: &[&str] = &["127.0.0.1", "localhost", "::1"];

/// Splits `host[:port]` / `[v6]:port`; the host is lowercased and unbracketed, a missing port is `None`.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim().to_ascii_lowercase();
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?.parse().ok()?),
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Some((host.to_string(), Some(port.parse().ok()?)))
        }
        Some(_) => None,
        None => Some((authority, None)),
    }
}

fn unbracket(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn is_unspecified(host: &str) -> bool {
    unbracket(host)
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}

impl AppState {
    /// Whether a request's `Host` may be served: loopback names or the `--host` value, on our port.
    /// When bound to all interfaces, any IP literal is fine too (DNS rebinding needs a host name).
    pub fn host_allowed(&self, host_header: &str) -> bool {
        let Some((host, port)) = split_host_port(host_header) else {
            return false;
        };
        if port.unwrap_or(80) != self.port() {
            return false;
        }
        let configured = unbracket(&self.config().host);
        LOOPBACK_NAMES.contains(&host.as_str())
            || host == configured
            || (is_unspecified(&configured) && host.parse::<IpAddr>().is_ok())
    }

    /// Whether CORS lets `origin` call the emulator.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let normalized = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.config().allow_origins.iter().any(|allowed| {
            allowed == "*"
                || allowed
                    .trim()
                    .trim_end_matches('/')
                    .eq_ignore_ascii_case(&normalized)
        }) {
            return true;
        }
        let Some(authority) = normalized
            .strip_prefix("http://")
            .or_else(|| normalized.strip_prefix("https://"))
        else {
            return false;
        };
        if authority.contains('/') || authority.contains('@') {
            return false;
        }
        let Some((host, _)) = split_host_port(authority) else {
            return false;
        };
        let configured = unbracket(&self.config().host);
        LOOPBACK_NAMES.contains(&host.as_str())
            || (host == configured && !is_unspecified(&configured))
    }
}

/// Checks an `--allow-origin` value: `*` or `scheme://host[:port]`.
pub fn validate_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let rest = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match rest {
        Some(authority)
            if !authority.is_empty()
                && !authority.contains('/')
                && split_host_port(authority).is_some() =>
        {
            Ok(())
        }
        _ => Err(format!(
            "--allow-origin {origin:?} is not an origin like https://example.com:8080 or *"
        )),
    }
}

fn forbidden(code: &'static str, message: String) -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        &ApiError::new(code, message).body(&new_request_id()),
    )
}

/// Middleware: refuses requests whose `Host` is not ours (DNS rebinding protection).
pub async fn check_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.to_string())
        });
    match host {
        Some(host) if state.host_allowed(&host) => next.run(request).await,
        Some(host) => forbidden(
            codes::PERMISSION_DENIED,
            format!("Host {host:?} is not served by this emulator"),
        ),
        None => forbidden(
            codes::PERMISSION_DENIED,
            "a Host header is required".to_string(),
        ),
    }
}

/// The headers a preflight may ask for: ours plus any requested ones that are valid header names.
fn allowed_request_headers(headers: &HeaderMap) -> String {
    let mut names: Vec<String> = ALLOWED_HEADERS
        .iter()
        .map(|name| name.to_string())
        .collect();
    if let Some(requested) = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
    {
        for name in requested
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
        {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if valid && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names.join(", ")
}

/// Middleware: CORS. Disallowed origins are refused (`/web` keeps its 200 envelope with
/// `INVALID_REQUEST_SOURCE`, as CloudBase does for origins outside the env's security domains).
pub async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let origin_text = origin.to_str().unwrap_or("");
    // A container service's response headers are the service's business: a page may read them all
    // (`*` works for the credential-less fetches the SDK makes).
    let exposed = if request
        .uri()
        .path()
        .starts_with(crate::container::ROUTE_PREFIX)
    {
        "*"
    } else {
        EXPOSED_HEADERS
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if !state.origin_allowed(origin_text) {
        let message = format!(
            "origin {origin_text:?} is not allowed: use a loopback origin or start the emulator with --allow-origin"
        );
        if request.uri().path() == "/web" && !preflight {
            let body =
                ApiError::new(codes::INVALID_REQUEST_SOURCE, message).body(&new_request_id());
            return json_response(StatusCode::OK, &body);
        }
        return forbidden(codes::INVALID_REQUEST_SOURCE, message);
    }
    let mut response = if preflight {
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        if let Ok(value) = HeaderValue::from_str(&allowed_request_headers(request.headers())) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(exposed),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_split() {
        assert_eq!(
            split_host_port("127.0.0.1:80"),
            Some(("127.0.0.1".into(), Some(80)))
        );
        assert_eq!(split_host_port("[::1]:9"), Some(("::1".into(), Some(9))));
        assert_eq!(
            split_host_port("LocalHost"),
            Some(("localhost".into(), None))
        );
        assert_eq!(split_host_port("a:b"), None);
        assert_eq!(split_host_port("[::1"), None);
        assert_eq!(split_host_port("::1"), None);
    }

    fn state_with_host(host: &str) -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::new(dir.path().join("data"), dir.path().join("functions"));
        config.host = host.to_string();
        config.allow_origins = vec!["https://app.example.com/".to_string()];
        let state = AppState::new(config, 8080).unwrap();
        (dir, state)
    }

    #[test]
    fn host_rules_follow_the_bind_address() {
        let (_dir, state) = state_with_host("127.0.0.1");
        assert!(state.host_allowed("127.0.0.1:8080"));
        assert!(state.host_allowed("LOCALHOST:8080"));
        assert!(state.host_allowed("[::1]:8080"));
        assert!(!state.host_allowed("192.168.1.5:8080"));
        assert!(!state.host_allowed("127.0.0.1:8081"));
        assert!(!state.host_allowed("rebind.example:8080"));

        let (_dir, state) = state_with_host("0.0.0.0");
        assert!(state.host_allowed("192.168.1.5:8080"));
        assert!(state.host_allowed("[fe80::1]:8080"));
        assert!(!state.host_allowed("rebind.example:8080"));
        assert!(!state.origin_allowed("http://0.0.0.0:8080"));

        let (_dir, state) = state_with_host("192.168.1.5");
        assert!(state.host_allowed("192.168.1.5:8080"));
        assert!(state.origin_allowed("http://192.168.1.5:8080"));
        assert!(!state.host_allowed("10.0.0.1:8080"));
    }

    #[test]
    fn origin_rules() {
        let (_dir, state) = state_with_host("127.0.0.1");
        assert!(state.origin_allowed("http://localhost:5173"));
        assert!(state.origin_allowed("https://127.0.0.1"));
        assert!(state.origin_allowed("http://[::1]:1"));
        assert!(state.origin_allowed("https://app.example.com"));
        assert!(state.origin_allowed("HTTPS://APP.example.com/"));
        assert!(!state.origin_allowed("https://app.example.com:444"));
        assert!(!state.origin_allowed("http://localhost.evil.com"));
        assert!(!state.origin_allowed("http://user@localhost"));
        assert!(!state.origin_allowed("ftp://localhost"));
        assert!(!state.origin_allowed("null"));
    }

    #[test]
    fn origins_are_validated() {
        assert!(validate_origin("*").is_ok());
        assert!(validate_origin("https://example.com").is_ok());
        assert!(validate_origin("http://example.com:8080/").is_ok());
        assert!(validate_origin("example.com").is_err());
        assert!(validate_origin("https://example.com/path").is_err());
    }
}
