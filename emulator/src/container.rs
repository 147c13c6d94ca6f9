//! `callContainer`'s gateway: `{METHOD} /v1/cloudrun/{service}{path}` reverse-proxied to the user's own
//! HTTP service (`--container NAME=URL`), as CloudBase's HTTP API gateway forwards to a Cloud Run
//! service (protocol.md §9).
//!
//! Bodies stream both ways (hyper's client; nothing is buffered whole), hop-by-hop headers are dropped,
//! and the identity headers WeChat cloud hosting gives a container (`X-WX-OPENID`, `X-WX-APPID`,
//! `X-WX-ENV`, `X-WX-SOURCE`) come from the verified access token, after every `X-WX-*` header the client
//! sent has been removed: a client can never spoof an openid. Gateway failures answer as the CloudBase
//! gateway does (docs.cloudbase.net/http-api/cloudrun): an HTTP error status with
//! `{code, message, requestId}`:
//!
//! | situation | status | code |
//! |---|---|---|
//! | missing / invalid / expired token | 401 | `CHECK_LOGIN_FAILED` / `ACCESS_TOKEN_EXPIRED` |
//! | no `--container` of that name | 404 | `SERVICE_NOT_FOUND` |
//! | body over 20 MiB | 413 | `EXCEED_REQUEST_SIZE_LIMIT` |
//! | connection refused, reset, not HTTP | 502 | `BAD_GATEWAY` |
//! | no response headers within `--container-timeout` | 504 | `SERVICE_TIMEOUT` |

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use cloud_protocol::{codes, limits};
use futures_util::StreamExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;

use crate::auth::{appid_for, authenticate_token, bearer_token};
use crate::error::{json_response, ApiError};
use crate::functions_api::gateway_request_id;
use crate::server::AppState;

/// The path prefix of the gateway route.
pub const ROUTE_PREFIX: &str = "/v1/cloudrun/";

/// `X-WX-SOURCE` of calls through the emulator's gateway (WeChat sets it to what triggered the call).
pub const SOURCE: &str = "web";

/// Where one `--container NAME=URL` service listens: `http://host:port` and an optional base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerTarget {
    /// `host:port`.
    pub authority: String,
    /// The URL's path without its trailing `/` (`""` for `http://127.0.0.1:3000`).
    pub base_path: String,
}

impl ContainerTarget {
    /// The URL as given back to people (`http://127.0.0.1:3000/api`).
    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.base_path)
    }
}

/// Whether `name` can be a service name (letters, digits, `-`, `_`; 1–64 characters).
pub fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses a `--container NAME=URL` value; the URL must be `http://host:port[/base]`.
pub fn parse_container_arg(arg: &str) -> Result<(String, ContainerTarget), String> {
    let usage =
        || format!("--container {arg:?}: expected NAME=URL, e.g. api=http://127.0.0.1:3000");
    let (name, url) = arg.split_once('=').ok_or_else(usage)?;
    if !valid_service_name(name) {
        return Err(format!(
            "--container {arg:?}: the service name must be 1-64 letters, digits, '-' or '_'"
        ));
    }
    let uri: Uri = url.parse().map_err(|_| usage())?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "--container {arg:?}: only http:// services can be proxied (a local service, e.g. http://127.0.0.1:3000)"
        ));
    }
    let authority = uri.authority().ok_or_else(usage)?;
    if authority.as_str().contains('@') || authority.port_u16().is_none() {
        return Err(format!(
            "--container {arg:?}: give the service's host and port, e.g. http://127.0.0.1:3000"
        ));
    }
    if uri.query().is_some() {
        return Err(format!("--container {arg:?}: the URL cannot have a query"));
    }
    Ok((
        name.to_string(),
        ContainerTarget {
            authority: authority.to_string(),
            base_path: uri.path().trim_end_matches('/').to_string(),
        },
    ))
}

/// The gateway's state: the configured services and one pooled HTTP/1 client for all of them.
#[derive(Clone)]
struct Gateway {
    app: AppState,
    services: Arc<BTreeMap<String, ContainerTarget>>,
    client: Client<HttpConnector, Body>,
    timeout: Duration,
}

/// The `/v1/cloudrun/*` routes, with their own state (the services and the client) next to `app`'s.
pub fn routes(app: &AppState) -> Router<AppState> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    let gateway = Gateway {
        services: Arc::new(app.config().containers.clone()),
        client: Client::builder(TokioExecutor::new()).build(connector),
        timeout: Duration::from_secs(app.config().container_timeout_secs.max(1)),
        app: app.clone(),
    };
    Router::new()
        .route("/v1/cloudrun/{*rest}", any(proxy))
        .with_state(gateway)
}

/// Headers meaningful for one connection only (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including the ones a `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// The headers a service receives: the client's end-to-end headers minus the ones only the gateway may
/// set (every `X-WX-*`, forwarding info, the gateway's own `Authorization`, `Host`), plus the identity.
fn upstream_headers(mut headers: HeaderMap, identity: &[(&'static str, String)]) -> HeaderMap {
    strip_hop_by_hop(&mut headers);
    let spoofable: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            name.starts_with("x-wx-")
                || name == "x-forwarded-for"
                || name == "x-original-forwarded-for"
        })
        .cloned()
        .collect();
    for name in spoofable {
        headers.remove(name);
    }
    headers.remove(header::HOST);
    headers.remove(header::AUTHORIZATION);
    for (name, value) in identity {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(*name, value);
        }
    }
    headers
}

fn error_response(error: ApiError, request_id: &str) -> Response {
    let mut response = json_response(error.http_status(), &error.body(request_id));
    *response.status_mut() = match error.code {
        codes::SERVICE_NOT_FOUND => axum::http::StatusCode::NOT_FOUND,
        codes::SERVICE_TIMEOUT => axum::http::StatusCode::GATEWAY_TIMEOUT,
        codes::BAD_GATEWAY => axum::http::StatusCode::BAD_GATEWAY,
        _ => response.status(),
    };
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Splits `/v1/cloudrun/{service}{path}` into the service and the path (`/` when empty).
fn split_route(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(ROUTE_PREFIX)?;
    Some(match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    })
}

async fn proxy(State(gateway): State<Gateway>, request: Request) -> Response {
    let request_id = gateway_request_id(request.headers());
    match forward(&gateway, request, &request_id).await {
        Ok(response) => response,
        Err(error) => error_response(error, &request_id),
    }
}

async fn forward(
    gateway: &Gateway,
    request: Request,
    request_id: &str,
) -> Result<Response, ApiError> {
    let identity = authenticate_token(&gateway.app, bearer_token(request.headers()))?;
    gateway.app.check_env(Some(&identity.env))?;
    let (parts, body) = request.into_parts();
    let (service, path) = split_route(parts.uri.path())
        .ok_or_else(|| ApiError::new(codes::SERVICE_NOT_FOUND, "no service in the path"))?;
    let target = gateway.services.get(service).ok_or_else(|| {
        ApiError::new(
            codes::SERVICE_NOT_FOUND,
            format!(
                "service {service:?} not found: start cloud-emulator with --container {service}=http://127.0.0.1:PORT"
            ),
        )
    })?;
    let max = limits::CONTAINER_MAX_REQUEST_BYTES;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let too_large = || {
        ApiError::new(
            codes::EXCEED_REQUEST_SIZE_LIMIT,
            format!("request body exceeds the limit of {max} bytes"),
        )
    };
    if declared.is_some_and(|length| length > max as u64) {
        return Err(too_large());
    }
    let uri = format!(
        "http://{}{}{}{}",
        target.authority,
        target.base_path,
        path,
        parts
            .uri
            .query()
            .map(|query| format!("?{query}"))
            .unwrap_or_default()
    );
    let uri: Uri = uri
        .parse()
        .map_err(|_| ApiError::invalid_param(format!("invalid path {path:?}")))?;
    let identity_headers = [
        ("x-wx-openid", identity.openid(gateway.app.signer())),
        ("x-wx-appid", appid_for(&identity.env)),
        ("x-wx-env", identity.env.clone()),
        ("x-wx-source", SOURCE.to_string()),
        ("x-request-id", request_id.to_string()),
    ];
    let exceeded = Arc::new(Notify::new());
    let mut upstream = Request::new(limited_body(body, max, exceeded.clone()));
    *upstream.method_mut() = parts.method;
    *upstream.uri_mut() = uri;
    *upstream.headers_mut() = upstream_headers(parts.headers, &identity_headers);
    // A body found too large while streaming ends the call at once, whatever the service does then.
    // `biased`: the limit is noted before the client sees its body fail, so it wins over that error.
    let response = tokio::select! {
        biased;
        () = exceeded.notified() => return Err(too_large()),
        answer = tokio::time::timeout(gateway.timeout, gateway.client.request(upstream)) => answer,
    };
    let response = match response {
        Err(_) => {
            return Err(ApiError::new(
                codes::SERVICE_TIMEOUT,
                format!(
                    "service {service:?} did not answer within {} s",
                    gateway.timeout.as_secs()
                ),
            ))
        }
        Ok(Err(error)) => {
            return Err(ApiError::new(
                codes::BAD_GATEWAY,
                format!(
                    "service {service:?} at {} is unreachable: {}",
                    target.url(),
                    describe_client_error(&error)
                ),
            ))
        }
        Ok(Ok(response)) => response,
    };
    let (mut parts, incoming) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Body::new(incoming)))
}

/// The request body, streamed, failing once more than `max` bytes went through (and notifying `exceeded`).
fn limited_body(body: Body, max: usize, exceeded: Arc<Notify>) -> Body {
    let mut seen = 0usize;
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen = seen.saturating_add(chunk.len());
        if seen > max {
            exceeded.notify_one();
            return Err(std::io::Error::other("request body too large"));
        }
        Ok(chunk)
    });
    Body::from_stream(stream)
}

/// The root cause of a client error in a few words ("connection refused").
fn describe_client_error(error: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    let mut text = error.to_string();
    while let Some(cause) = source {
        text = cause.to_string();
        source = cause.source();
    }
    text
}

/// The lines `cloud-emulator start` prints about the configured services.
pub fn describe(services: &BTreeMap<String, ContainerTarget>) -> Vec<String> {
    services
        .iter()
        .map(|(name, target)| {
            format!(
                "cloud-emulator: callContainer service {name} -> {} (at /v1/cloudrun/{name}/)",
                target.url()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_args_are_checked() {
        let (name, target) = parse_container_arg("api=http://127.0.0.1:3000").unwrap();
        assert_eq!(name, "api");
        assert_eq!(target.authority, "127.0.0.1:3000");
        assert_eq!(target.base_path, "");
        let (_, target) = parse_container_arg("svc_2=http://localhost:8080/base/").unwrap();
        assert_eq!(target.base_path, "/base");
        assert_eq!(target.url(), "http://localhost:8080/base");
        for bad in [
            "api",
            "=http://127.0.0.1:3000",
            "a b=http://127.0.0.1:3000",
            "api=https://127.0.0.1:3000",
            "api=http://127.0.0.1",
            "api=127.0.0.1:3000",
            "api=http://u@127.0.0.1:3000",
            "api=http://127.0.0.1:3000/?x=1",
        ] {
            assert!(parse_container_arg(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn routes_split_into_service_and_path() {
        assert_eq!(
            split_route("/v1/cloudrun/svc/api/x"),
            Some(("svc", "/api/x"))
        );
        assert_eq!(split_route("/v1/cloudrun/svc"), Some(("svc", "/")));
        assert_eq!(split_route("/v1/cloudrun/svc/"), Some(("svc", "/")));
        assert_eq!(split_route("/v1/functions/x"), None);
    }

    #[test]
    fn spoofed_and_hop_by_hop_headers_never_reach_the_service() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-wx-openid", "spoofed"),
            ("X-WX-UNIONID", "spoofed"),
            ("x-wx-from-openid", "spoofed"),
            ("x-wx-source", "spoofed"),
            ("x-forwarded-for", "1.2.3.4"),
            ("authorization", "Bearer secret"),
            ("host", "127.0.0.1:1"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "hop"),
            ("te", "trailers"),
            ("x-custom", "kept"),
            ("content-type", "application/json"),
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let out = upstream_headers(headers, &[("x-wx-openid", "oReal".to_string())]);
        let names: Vec<&str> = out.keys().map(|name| name.as_str()).collect();
        assert_eq!(out["x-wx-openid"], "oReal");
        assert_eq!(out.get_all("x-wx-openid").iter().count(), 1);
        for gone in [
            "x-wx-unionid",
            "x-wx-from-openid",
            "x-wx-source",
            "x-forwarded-for",
            "authorization",
            "host",
            "connection",
            "x-private",
            "te",
        ] {
            assert!(!names.contains(&gone), "{gone} forwarded: {names:?}");
        }
        assert_eq!(out["x-custom"], "kept");
        assert_eq!(out["content-type"], "application/json");
    }
}
