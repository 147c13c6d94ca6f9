//! Realtime `watch()` (protocol.md §5.6, docs/realtime.md): the Rust edge of transport/realtime.js, which
//! drives the one WebSocket of a session, its timers and the snapshots. Rust keeps what it keeps for every
//! call: the validated spec with the query encoded like `get()`'s, the sign (`auth.wsWebSign` through the
//! session, so token refresh is the same as for HTTP calls), the errors (`<api>:fail -4020xx …` from the
//! protocol table) and the decoding of values (Dates, Geo) as `get()` decodes them.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::convert;
use super::request::Order;
use crate::error::Failure;
use crate::js;
use crate::transport::auth::Session;
use crate::transport::envelope::JsonObject;
use crate::transport::{action_promise, OwnedParam};

#[wasm_bindgen(module = "/src/transport/realtime.js")]
extern "C" {
    #[wasm_bindgen(js_name = setSocketConstructor)]
    fn set_socket_constructor(constructor: &JsValue);
    #[wasm_bindgen(js_name = createConnection)]
    fn create_connection(env: &str, hook: &Function) -> JsValue;
    #[wasm_bindgen(js_name = startWatch)]
    fn start_watch(
        connection: &JsValue,
        api: &str,
        spec: &str,
        on_change: &Function,
        on_error: &Function,
    ) -> JsValue;
}

/// What a watch selects: INIT_WATCH's `collName`, `query` (the encoded `where` as JSON text, `{}` for all),
/// `limit` and `orderBy`.
pub struct Spec {
    pub collection: String,
    pub query: String,
    pub limit: Option<u32>,
    pub orders: Vec<Order>,
}

/// What realtime.js asks of Rust, as one closure per session (one closure type keeps the glue small):
/// `hook(0)` signs (a Promise of `auth.wsWebSign`'s data), `hook(1, api, errCode, detail)` makes the error
/// `onError` gets, `hook(2, value)` decodes a value as `get()` does.
type Hook = Closure<dyn Fn(u32, JsValue, i32, JsValue) -> JsValue>;

thread_local! {
    /// One JS connection per session, with its hook.
    static CONNECTIONS: RefCell<Vec<(Rc<Session>, JsValue, Hook)>> = const { RefCell::new(Vec::new()) };
}

/// `auth.wsWebSign {runtime: 'web'}` → a Promise of its `data` (`{signStr, wsUrl, secretVersion, envId}`),
/// through the same request path (and token refresh) as every `/web` call.
fn sign(session: &Rc<Session>) -> Promise {
    let params = vec![OwnedParam("runtime", "web".to_owned())];
    action_promise(session.clone(), SIGN, params, SIGN, |body| {
        Ok(js::get(&body, "data"))
    })
}

const SIGN: &str = "auth.wsWebSign";

/// Remembers `options.WebSocket` when it is a constructor (`init` and `new cloud.Cloud` options), for Node
/// without a global WebSocket.
pub fn remember_socket_constructor(options: &JsValue) {
    set_socket_constructor(&js::get(options, "WebSocket"));
}

fn connection(session: &Rc<Session>) -> JsValue {
    CONNECTIONS.with(|all| {
        if let Some((_, found, _)) = all.borrow().iter().find(|(s, ..)| Rc::ptr_eq(s, session)) {
            return found.clone();
        }
        let owner = session.clone();
        let hook: Hook =
            Closure::new(
                move |kind, first: JsValue, err_code, second: JsValue| match kind {
                    0 => sign(&owner).into(),
                    1 => {
                        let api = first.as_string().unwrap_or_default();
                        let detail = second.as_string().unwrap_or_default();
                        Failure::Local { err_code, detail }.into_error(&api).to_js()
                    }
                    _ => convert::decode(first),
                },
            );
        let created = create_connection(&session.env, hook.as_ref().unchecked_ref());
        all.borrow_mut()
            .push((session.clone(), created.clone(), hook));
        created
    })
}

/// INIT_WATCH's `msgData` after `envId`, as JSON text in the official client's key order:
/// `collName`, `query` (a string), then `limit` and `orderBy` (`{field: "asc"|"desc"}`) when given.
pub fn init_spec(spec: &Spec) -> String {
    let mut data = JsonObject::new()
        .string("collName", &spec.collection)
        .string("query", &spec.query);
    if let Some(limit) = spec.limit {
        data = data.raw("limit", &limit.to_string());
    }
    if !spec.orders.is_empty() {
        let mut order_by = JsonObject::new();
        for order in &spec.orders {
            order_by = order_by.string(&order.field, if order.descending { "desc" } else { "asc" });
        }
        data = data.raw("orderBy", &order_by.finish());
    }
    data.finish()
}

/// Starts a watcher on `session` (the caller validated the callbacks); returns the listener
/// `{ close() }`.
pub fn watch(
    session: &Rc<Session>,
    api: &'static str,
    spec: &Spec,
    on_change: &Function,
    on_error: &Function,
) -> JsValue {
    start_watch(
        &connection(session),
        api,
        &init_spec(spec),
        on_change,
        on_error,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The INIT_WATCH the official client sent (tests/fixtures/ws-capture.jsonl), byte for byte once our
    /// spec follows its `envId`.
    #[test]
    fn init_spec_matches_the_captured_frame() {
        let capture = include_str!("../../tests/fixtures/ws-capture.jsonl");
        let line = capture
            .lines()
            .find(|line| line.contains("\"INIT_WATCH\""))
            .unwrap();
        let start = line.find("\"msgData\":{\"envId\":\"envx\",").unwrap() + 10;
        let captured = &line[start..line.len() - 2];
        let spec = Spec {
            collection: "todos".into(),
            query: "{\"done\":false}".into(),
            limit: Some(10),
            orders: vec![Order {
                field: "n".into(),
                descending: false,
            }],
        };
        let ours = init_spec(&spec);
        assert_eq!(format!("{{\"envId\":\"envx\",{}", &ours[1..]), captured);
        let plain = Spec {
            collection: "c".into(),
            query: "{}".into(),
            limit: None,
            orders: Vec::new(),
        };
        assert_eq!(init_spec(&plain), r#"{"collName":"c","query":"{}"}"#);
    }
}
