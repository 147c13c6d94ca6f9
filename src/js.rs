//! Hand-written bindings to the few JS globals the SDK needs, bound on `globalThis` so they work in
//! browsers, workers and Node ≥ 18 alike (no `window`), and small `Reflect` helpers.

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch(url, init)`.
    #[wasm_bindgen(catch, js_name = fetch)]
    pub fn fetch(url: &str, init: &Object) -> Result<Promise, JsValue>;

    /// `JSON.parse(text)` on a JS string, which stays on the JS side (no copy into wasm memory).
    #[wasm_bindgen(catch, js_namespace = JSON, js_name = parse)]
    pub fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;

    /// The global `setTimeout(callback, ms)`; the handle is a number in browsers and an object in Node.
    #[wasm_bindgen(js_name = setTimeout)]
    pub fn set_timeout(callback: &js_sys::Function, ms: u32) -> JsValue;

    /// The global `clearTimeout(handle)`.
    #[wasm_bindgen(js_name = clearTimeout)]
    pub fn clear_timeout(handle: &JsValue);

    /// `console.error(message, value)`.
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub fn console_error(message: &str, value: &JsValue);

    /// A fetch `Response`.
    pub type Response;
    #[wasm_bindgen(method, getter)]
    pub fn status(this: &Response) -> u16;
    #[wasm_bindgen(method, catch)]
    pub fn text(this: &Response) -> Result<Promise, JsValue>;

    /// An `AbortController`.
    pub type AbortController;
    #[wasm_bindgen(constructor)]
    pub fn new() -> AbortController;
    #[wasm_bindgen(method, getter)]
    pub fn signal(this: &AbortController) -> AbortSignal;
    #[wasm_bindgen(method)]
    pub fn abort(this: &AbortController);

    /// An `AbortSignal` (ours, or one the caller passed as `signal`).
    pub type AbortSignal;
    #[wasm_bindgen(method, getter)]
    pub fn aborted(this: &AbortSignal) -> bool;
    #[wasm_bindgen(method, js_name = addEventListener)]
    pub fn add_event_listener(this: &AbortSignal, kind: &str, listener: &js_sys::Function);
    #[wasm_bindgen(method, js_name = removeEventListener)]
    pub fn remove_event_listener(this: &AbortSignal, kind: &str, listener: &js_sys::Function);

    /// A Web Storage object (`localStorage` / `sessionStorage`).
    pub type Storage;
    #[wasm_bindgen(method, catch, js_name = getItem)]
    pub fn get_item(this: &Storage, key: &str) -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(method, catch, js_name = setItem)]
    pub fn set_item(this: &Storage, key: &str, value: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = removeItem)]
    pub fn remove_item(this: &Storage, key: &str) -> Result<(), JsValue>;
}

/// Property names read or written on every call. Each is turned into a JS string once and reused:
/// converting a Rust string to JS on every access was a measurable share of a call (bench/overhead.mjs).
const HOT_KEYS: [&str; 16] = [
    "success",
    "fail",
    "complete",
    "config",
    "env",
    "name",
    "data",
    "signal",
    "errMsg",
    "errCode",
    "result",
    "requestID",
    "requestId",
    "code",
    "message",
    "response_data",
];

thread_local! {
    static HOT_KEY_VALUES: Vec<JsValue> = HOT_KEYS.iter().map(|key| JsValue::from_str(key)).collect();
}

/// Runs `f` with `key` as a JS string, cached for the hot keys.
fn with_key<T>(key: &str, f: impl FnOnce(&JsValue) -> T) -> T {
    match HOT_KEYS.iter().position(|hot| *hot == key) {
        Some(index) => HOT_KEY_VALUES.with(|values| f(&values[index])),
        None => f(&JsValue::from_str(key)),
    }
}

/// `target[key]`, or `undefined` when `target` is not an object or the getter throws.
pub fn get(target: &JsValue, key: &str) -> JsValue {
    if !target.is_object() && !target.is_function() {
        return JsValue::UNDEFINED;
    }
    with_key(key, |key| Reflect::get(target, key)).unwrap_or(JsValue::UNDEFINED)
}

/// `target[key]` when it is a string.
pub fn get_string(target: &JsValue, key: &str) -> Option<String> {
    get(target, key).as_string()
}

/// `target[key] = value` (on objects the SDK created itself, so it cannot fail).
pub fn set(target: &JsValue, key: &str, value: &JsValue) {
    let _ = with_key(key, |key| Reflect::set(target, key, value));
}

/// A fresh random lowercase hex string of `len` digits (ids, not secrets).
pub fn random_hex(len: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = vec![0u8; len];
    // One Math.random() gives 52 random bits: 13 hex digits per crossing of the JS boundary.
    let mut bits = 0u64;
    for (i, digit) in digits.iter_mut().enumerate() {
        if i % 13 == 0 {
            bits = (js_sys::Math::random() * (1u64 << 52) as f64) as u64;
        }
        *digit = HEX[(bits & 0xf) as usize];
        bits >>= 4;
    }
    String::from_utf8(digits).unwrap_or_default()
}
