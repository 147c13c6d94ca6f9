//! P2 anonymous authentication (protocol.md §2.2): lazy sign-in, refresh ahead of expiry, credentials
//! persisted as `credentials_<env>` like @cloudbase/js-sdk 3.x, and one sign-in/refresh in flight at a time.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use super::envelope::JsonObject;
use super::http;
use super::storage::{Persistence, Store};
use super::SDK_VERSION_HEADER;
use crate::error::Failure;
use crate::js;

/// Seconds taken off `expires_in` so a token is refreshed before the server considers it expired
/// (the same margin as @cloudbase/js-sdk's `LocalCredentials`; at most half the lifetime for short ones).
const EXPIRY_MARGIN_SECS: f64 = 30.0;

/// When credentials issued at `now_ms` with `expires_in` seconds should be refreshed.
pub fn refresh_at(now_ms: f64, expires_in: f64) -> f64 {
    let lifetime = expires_in.max(0.0);
    now_ms + (lifetime - EXPIRY_MARGIN_SECS.min(lifetime / 2.0)) * 1000.0
}

/// An OAuth2 credentials object as the server returns it, plus its absolute expiry.
#[derive(Clone, Debug, PartialEq)]
pub struct Credentials {
    pub token_type: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: f64,
    pub scope: String,
    pub sub: String,
    /// Milliseconds since the epoch after which the access token is refreshed.
    pub expires_at_ms: f64,
}

impl Credentials {
    /// The stored JSON form; `expires_at_iso` is `expires_at_ms` as an ISO date string.
    pub fn to_json(&self, expires_at_iso: &str) -> String {
        JsonObject::new()
            .string("token_type", &self.token_type)
            .string("access_token", &self.access_token)
            .string("refresh_token", &self.refresh_token)
            .raw("expires_in", &format_number(self.expires_in))
            .string("scope", &self.scope)
            .string("sub", &self.sub)
            .string("expires_at", expires_at_iso)
            .finish()
    }

    /// Reads a credentials object (a server answer when `now_ms` is given, else the stored form).
    fn from_js(value: &JsValue, now_ms: Option<f64>) -> Option<Self> {
        let access_token = js::get_string(value, "access_token").filter(|t| !t.is_empty())?;
        let expires_in = js::get(value, "expires_in").as_f64().unwrap_or(7200.0);
        let expires_at_ms = match now_ms {
            Some(now) => refresh_at(now, expires_in),
            None => js_sys::Date::parse(&js::get_string(value, "expires_at")?),
        };
        Some(Credentials {
            token_type: js::get_string(value, "token_type").unwrap_or_else(|| "Bearer".to_owned()),
            access_token,
            refresh_token: js::get_string(value, "refresh_token").unwrap_or_default(),
            expires_in,
            scope: js::get_string(value, "scope").unwrap_or_default(),
            sub: js::get_string(value, "sub").unwrap_or_default(),
            expires_at_ms: if expires_at_ms.is_nan() {
                0.0
            } else {
                expires_at_ms
            },
        })
    }
}

/// `expires_in` as JSON: whole seconds (integer formatting only; float formatting would cost ~20 KB of wasm).
fn format_number(value: f64) -> String {
    (value.max(0.0).round() as u64).to_string()
}

type Outcome = Rc<RefCell<Option<Result<String, Failure>>>>;

/// The authenticated connection to one env at one endpoint.
pub struct Session {
    /// Base URL without trailing slash, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    /// The env id (also the OAuth `client_id`).
    pub env: String,
    /// Sent as `X-TCB-Region` when set.
    pub region: Option<String>,
    /// Per-request timeout in milliseconds.
    pub timeout_ms: u32,
    // `<base_url>/web?env=<env>`, made once: building it (and converting it) per call showed up in
    // bench/overhead.mjs.
    web_url: JsValue,
    store: Store,
    credentials: RefCell<Option<Credentials>>,
    // The sign-in or refresh in flight, shared by every caller that needs a token meanwhile.
    pending: RefCell<Option<(Promise, Outcome)>>,
}

thread_local! {
    static SESSIONS: RefCell<Vec<(String, Rc<Session>)>> = const { RefCell::new(Vec::new()) };
}

impl Session {
    /// The session for these settings; instances with the same settings share one.
    pub fn get(
        base_url: &str,
        env: &str,
        region: Option<&str>,
        timeout_ms: u32,
        persistence: Persistence,
    ) -> Rc<Session> {
        // Joined by hand: `[..].join("\n")` adds a copy of std's join to the wasm (bench/size.mjs).
        let timeout = timeout_ms.to_string();
        let mut key = String::new();
        for part in [
            base_url,
            env,
            region.unwrap_or("\u{0}"),
            &timeout,
            persistence.name(),
        ] {
            key.extend([part, "\n"]);
        }
        SESSIONS.with(|sessions| {
            if let Some((_, session)) = sessions.borrow().iter().find(|(k, _)| *k == key) {
                return session.clone();
            }
            let store = Store::open(persistence);
            let stored = store
                .get(&credentials_key(env))
                .and_then(|text| js_sys::JSON::parse(&text).ok())
                .and_then(|value| Credentials::from_js(&value, None));
            let base_url = base_url.trim_end_matches('/');
            let env_query: String = js_sys::encode_uri_component(env).into();
            let web_url = JsValue::from_str(&format!("{base_url}/web?env={env_query}"));
            let session = Rc::new(Session {
                base_url: base_url.to_owned(),
                web_url,
                env: env.to_owned(),
                region: region.map(str::to_owned),
                timeout_ms,
                store,
                credentials: RefCell::new(stored),
                pending: RefCell::new(None),
            });
            sessions.borrow_mut().push((key, session.clone()));
            session
        })
    }

    /// The `/web` action URL of this session.
    pub fn web_url(&self) -> &JsValue {
        &self.web_url
    }

    /// The access token when one is held and not yet due for refresh.
    pub fn current_token(&self) -> Option<String> {
        self.current_token_until().map(|(token, _)| token)
    }

    /// [`Self::current_token`] and when it becomes due for refresh (ms since the epoch).
    pub fn current_token_until(&self) -> Option<(String, f64)> {
        let credentials = self.credentials.borrow();
        let credentials = credentials.as_ref()?;
        (js_sys::Date::now() < credentials.expires_at_ms)
            .then(|| (credentials.access_token.clone(), credentials.expires_at_ms))
    }

    /// A valid access token: the current one, or one from a (shared) refresh or anonymous sign-in.
    pub async fn access_token(self: &Rc<Self>) -> Result<String, Failure> {
        if let Some(token) = self.current_token() {
            return Ok(token);
        }
        let (promise, outcome) = self.pending_or_start();
        // The promise always resolves; the outcome cell holds the result.
        let _ = JsFuture::from(promise).await;
        let result = outcome.borrow().clone();
        result.unwrap_or_else(|| Err(Failure::Network("sign-in did not complete".to_owned())))
    }

    /// Called when the server rejected `token`: expired → refresh next time; otherwise sign in again.
    pub fn invalidate(&self, token: &str, expired: bool) {
        let mut credentials = self.credentials.borrow_mut();
        let Some(current) = credentials.as_mut() else {
            return;
        };
        if current.access_token != token {
            return; // somebody already replaced it
        }
        if expired {
            current.expires_at_ms = 0.0;
        } else {
            *credentials = None;
            self.store.remove(&credentials_key(&self.env));
        }
    }

    fn pending_or_start(self: &Rc<Self>) -> (Promise, Outcome) {
        if let Some((promise, outcome)) = self.pending.borrow().as_ref() {
            return (promise.clone(), outcome.clone());
        }
        let outcome: Outcome = Rc::new(RefCell::new(None));
        let session = self.clone();
        let result_cell = outcome.clone();
        // The future runs from the microtask queue, after `pending` is set below.
        let promise = crate::call_style::promise(async move {
            let result = session.obtain().await;
            *result_cell.borrow_mut() = Some(result);
            *session.pending.borrow_mut() = None;
            Ok(JsValue::UNDEFINED)
        });
        *self.pending.borrow_mut() = Some((promise.clone(), outcome.clone()));
        (promise, outcome)
    }

    async fn obtain(&self) -> Result<String, Failure> {
        let refresh_token = self
            .credentials
            .borrow()
            .as_ref()
            .map(|c| c.refresh_token.clone());
        let credentials = match refresh_token.filter(|t| !t.is_empty()) {
            Some(refresh_token) => match self.refresh(&refresh_token).await {
                Ok(credentials) => credentials,
                // invalid_grant (or any refusal): the anonymous user signs in again.
                Err(Failure::Auth { .. }) => self.sign_in().await?,
                Err(other) => return Err(other),
            },
            None => self.sign_in().await?,
        };
        let token = credentials.access_token.clone();
        let expires_at = js_sys::Date::new(&JsValue::from_f64(credentials.expires_at_ms));
        let iso: String = expires_at.to_iso_string().into();
        self.store
            .set(&credentials_key(&self.env), &credentials.to_json(&iso));
        *self.credentials.borrow_mut() = Some(credentials);
        Ok(token)
    }

    async fn sign_in(&self) -> Result<Credentials, Failure> {
        let client_id: String = js_sys::encode_uri_component(&self.env).into();
        let url = format!(
            "{}/auth/v1/signin/anonymously?client_id={client_id}",
            self.base_url
        );
        self.auth_request(&url, "{}").await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Credentials, Failure> {
        let url = format!("{}/auth/v1/token", self.base_url);
        let body = JsonObject::new()
            .string("grant_type", "refresh_token")
            .string("refresh_token", refresh_token)
            .string("client_id", &self.env)
            .finish();
        self.auth_request(&url, &body).await
    }

    async fn auth_request(&self, url: &str, body: &str) -> Result<Credentials, Failure> {
        let device_id = self.device_id();
        let request_id = js::random_hex(32);
        let headers = [
            ("x-device-id", device_id.as_str()),
            ("x-request-id", request_id.as_str()),
            SDK_VERSION_HEADER,
        ];
        // Sign-in and refresh are safe to repeat: transient failures are retried (transport::retry).
        let response = http::send("POST", url, &headers, Some(body), self.timeout_ms).await?;
        let parsed = response.json;
        if let Some(error) = js::get_string(&parsed, "error") {
            let description = js::get_string(&parsed, "error_description").unwrap_or_default();
            return Err(Failure::Auth { error, description });
        }
        if let Some(code) = js::get_string(&parsed, "code").filter(|c| !c.is_empty()) {
            return Err(Failure::Server {
                code,
                message: js::get_string(&parsed, "message").unwrap_or_default(),
                request_id: js::get_string(&parsed, "requestId"),
            });
        }
        match Credentials::from_js(&parsed, Some(js_sys::Date::now())) {
            Some(credentials) if response.status < 300 => Ok(credentials),
            _ if response.status >= 300 => Err(Failure::Http(response.status)),
            _ => Err(Failure::Network(format!(
                "unexpected auth response (HTTP {})",
                response.status
            ))),
        }
    }

    /// The device id, generated once and persisted under `device_id`.
    fn device_id(&self) -> String {
        if let Some(id) = self.store.get("device_id").filter(|id| !id.is_empty()) {
            return id;
        }
        let id = js::random_hex(32);
        self.store.set("device_id", &id);
        id
    }
}

/// The storage key of an env's credentials.
pub fn credentials_key(env: &str) -> String {
    format!("credentials_{env}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_json_has_the_js_sdk_shape() {
        let credentials = Credentials {
            token_type: "Bearer".into(),
            access_token: "AT-anon-1".into(),
            refresh_token: "RT-anon-1".into(),
            expires_in: 7200.0,
            scope: "anonymous".into(),
            sub: "uid-anon-1".into(),
            expires_at_ms: 0.0,
        };
        // protocol.md §2.2, observed localStorage of @cloudbase/js-sdk 3.7.0 (less `groups`).
        assert_eq!(
            credentials.to_json("2026-11-24T13:31:41.368Z"),
            r#"{"token_type":"Bearer","access_token":"AT-anon-1","refresh_token":"RT-anon-1","expires_in":7200,"scope":"anonymous","sub":"uid-anon-1","expires_at":"2026-11-24T13:31:41.368Z"}"#
        );
        assert_eq!(credentials_key("envx"), "credentials_envx");
    }

    #[test]
    fn tokens_are_refreshed_30_s_early_or_at_half_life() {
        assert_eq!(refresh_at(1_000.0, 7200.0), 1_000.0 + 7_170_000.0);
        assert_eq!(refresh_at(0.0, 10.0), 5_000.0);
        assert_eq!(refresh_at(0.0, 0.0), 0.0);
    }

    #[test]
    fn numbers_print_like_json_stringify() {
        assert_eq!(format_number(7200.0), "7200");
        assert_eq!(format_number(7199.6), "7200");
    }
}
