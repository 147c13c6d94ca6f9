//! The dashboard at `/_/`: a browser UI (plain ES modules embedded in the binary, see
//! `docs/dashboard.md`) over a thin JSON API at `/_/api/*`, with live updates pushed over SSE.
//!
//! Access (on top of the server-wide Host check):
//! * `GET /_/login?nonce=…`, the one-time URL printed at start, sets an HttpOnly SameSite=Strict cookie
//!   for this run; `POST /_/login` with the admin token (a form) does the same once the link is used.
//! * API requests carry that cookie or the admin token (`Authorization: Bearer`, `x-admin-token`).
//!   With the cookie, a request must come from the emulator's own origin (`Origin`, `Sec-Fetch-Site`),
//!   and a state-changing one must also send `x-cloud-emulator-dashboard: 1` — a header no cross-site
//!   form can send (CSRF).

pub mod api;
pub mod requests;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::body::read_limited;
use crate::server::AppState;
use requests::RequestLog;

/// The header a state-changing dashboard request must carry.
pub const CSRF_HEADER: &str = "x-cloud-emulator-dashboard";

const INDEX_HTML: &str = include_str!("assets/index.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// The dashboard's state: the request log, the login nonce and the cookie sessions of this run.
#[derive(Clone)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

struct Inner {
    requests: RequestLog,
    login_nonce: Mutex<Option<String>>,
    cookies: Mutex<HashSet<String>>,
    started: Instant,
    closing: watch::Sender<bool>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            inner: Arc::new(Inner {
                requests: RequestLog::default(),
                login_nonce: Mutex::new(Some(hex::encode(rand::random::<[u8; 16]>()))),
                cookies: Mutex::new(HashSet::new()),
                started: Instant::now(),
                closing: watch::channel(false).0,
            }),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Dashboard {
    /// The request log and change counters.
    pub fn requests(&self) -> &RequestLog {
        &self.inner.requests
    }

    /// The one-time login URL for a server at `base_url` (`http://127.0.0.1:PORT`), while unused.
    pub fn login_url(&self, base_url: &str) -> Option<String> {
        lock(&self.inner.login_nonce)
            .as_ref()
            .map(|nonce| format!("{base_url}/_/login?nonce={nonce}"))
    }

    /// Seconds since the server started.
    pub fn uptime_secs(&self) -> u64 {
        self.inner.started.elapsed().as_secs()
    }

    /// Ends the live streams (the server is stopping; open streams would hold the shutdown).
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    fn new_cookie_session(&self) -> String {
        let value = hex::encode(rand::random::<[u8; 24]>());
        lock(&self.inner.cookies).insert(value.clone());
        value
    }

    fn has_cookie_session(&self, value: &str) -> bool {
        lock(&self.inner.cookies).contains(value)
    }

    /// Uses up the login nonce if `nonce` is it (constant-time comparison).
    fn redeem_nonce(&self, nonce: &str) -> bool {
        let mut current = lock(&self.inner.login_nonce);
        let matches = current
            .as_deref()
            .is_some_and(|expected| constant_time_eq(expected.as_bytes(), nonce.as_bytes()));
        if matches {
            *current = None;
        }
        matches
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie_name(state: &AppState) -> String {
    // Cookies ignore ports: two emulators on one host must not share (and overwrite) one cookie.
    format!("cloud_emulator_dashboard_{}", state.port())
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn has_cookie(state: &AppState, headers: &HeaderMap) -> bool {
    cookie_value(headers, &cookie_name(state))
        .is_some_and(|value| state.dashboard().has_cookie_session(value))
}

fn has_admin_token(state: &AppState, headers: &HeaderMap) -> bool {
    headers
        .get("x-admin-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| crate::auth::bearer_token(headers))
        .is_some_and(|token| state.database().is_admin_token(token))
}

/// Whether a browser request comes from the emulator's own origin: `Origin` (when sent) is
/// `http://<Host>` and `Sec-Fetch-Site` (when sent) is `same-origin` (or `none`: typed in the address bar).
fn same_origin(headers: &HeaderMap, state_changing: bool) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let origin_ok = match (origin, host) {
        (Some(origin), Some(host)) => origin.eq_ignore_ascii_case(&format!("http://{host}")),
        (None, _) => !state_changing,
        (Some(_), None) => false,
    };
    let fetch_site_ok = match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || (site == "none" && !state_changing),
        None => true,
    };
    origin_ok && fetch_site_ok
}

fn refuse(status: StatusCode, message: &str) -> Response {
    crate::error::json_response(
        status,
        &serde_json::json!({ "code": "PERMISSION_DENIED", "message": message }),
    )
}

/// Middleware of `/_/api/*`: the cookie (same origin, CSRF header on writes) or the admin token.
async fn require_access(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if has_admin_token(&state, headers) {
        return next.run(request).await;
    }
    if !has_cookie(&state, headers) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "dashboard: sign in with the login URL printed at start (or send the admin token)",
        );
    }
    let state_changing = !matches!(*request.method(), Method::GET | Method::HEAD);
    if !same_origin(headers, state_changing) {
        return refuse(
            StatusCode::FORBIDDEN,
            "dashboard: requests must come from the dashboard's own origin",
        );
    }
    if state_changing && headers.get(CSRF_HEADER).is_none_or(|v| v != "1") {
        return refuse(
            StatusCode::FORBIDDEN,
            "dashboard: state-changing requests need the x-cloud-emulator-dashboard: 1 header",
        );
    }
    next.run(request).await
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// A page of the dashboard: no framing by other sites, scripts from this origin only.
fn page(body: &'static str) -> Response {
    let mut response = asset("text/html; charset=utf-8", body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if has_cookie(&state, &headers) {
        page(INDEX_HTML)
    } else {
        page(LOGIN_HTML)
    }
}

fn signed_in(state: &AppState) -> Response {
    let cookie = format!(
        "{}={}; Path=/_/; HttpOnly; SameSite=Strict",
        cookie_name(state),
        state.dashboard().new_cookie_session()
    );
    let mut response = Redirect::to("/_/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn login_with_nonce(
    State(state): State<AppState>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    match query.get("nonce") {
        Some(nonce) if state.dashboard().redeem_nonce(nonce) => signed_in(&state),
        _ => Redirect::to("/_/?link=used").into_response(),
    }
}

/// The login form: `token=<admin token>` (urlencoded), from the dashboard's own origin.
async fn login_with_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !same_origin(&headers, true) {
        return refuse(
            StatusCode::FORBIDDEN,
            "dashboard: sign in from the dashboard's own page",
        );
    }
    let Ok(bytes) = read_limited(body, 4096).await else {
        return refuse(StatusCode::BAD_REQUEST, "dashboard: bad login form");
    };
    let token = url_form_value(&String::from_utf8_lossy(&bytes), "token");
    if token.is_some_and(|token| state.database().is_admin_token(token.trim())) {
        signed_in(&state)
    } else {
        Redirect::to("/_/?token=wrong").into_response()
    }
}

/// The value of `name` in an `application/x-www-form-urlencoded` body.
fn url_form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| {
            percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The dashboard routes: pages and assets at `/_/`, the JSON API at `/_/api/*`.
pub fn routes(state: AppState) -> Router<AppState> {
    let api =
        api::routes().route_layer(axum::middleware::from_fn_with_state(state, require_access));
    Router::new()
        .route("/_", get(|| async { Redirect::permanent("/_/") }))
        .route("/_/", get(index))
        .route("/_/login", get(login_with_nonce).post(login_with_token))
        .route(
            "/_/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/_/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/_/icon.svg",
            get(|| async { asset("image/svg+xml", ICON_SVG) }),
        )
        .merge(api)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_checks() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8787".parse().unwrap());
        assert!(same_origin(&headers, false));
        assert!(!same_origin(&headers, true), "writes need an Origin");
        headers.insert(header::ORIGIN, "http://127.0.0.1:8787".parse().unwrap());
        assert!(same_origin(&headers, true));
        headers.insert("sec-fetch-site", "same-site".parse().unwrap());
        assert!(!same_origin(&headers, false));
        headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
        headers.insert(header::ORIGIN, "http://localhost:5173".parse().unwrap());
        assert!(!same_origin(&headers, false));
        assert_eq!(
            url_form_value("a=1&token=ab%20c+d", "token").as_deref(),
            Some("ab c d")
        );
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
