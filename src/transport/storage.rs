//! Where credentials and the device id are kept: `localStorage`, `sessionStorage` or memory
//! (`persistence: 'none'`, or no Web Storage in this runtime, e.g. Node).

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js::{self, Storage};

/// The `persistence` option of `init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// `globalThis.localStorage` (the default).
    Local,
    /// `globalThis.sessionStorage`.
    Session,
    /// Memory only.
    None,
}

impl Persistence {
    /// Parses the option; `None` for a value that is not one of the three names.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "local" => Some(Persistence::Local),
            "session" => Some(Persistence::Session),
            "none" => Some(Persistence::None),
            _ => None,
        }
    }

    /// The option's name.
    pub fn name(self) -> &'static str {
        match self {
            Persistence::Local => "local",
            Persistence::Session => "session",
            Persistence::None => "none",
        }
    }
}

// The memory store of `persistence: 'none'` (also used when Web Storage throws) lives on the JS side, in
// this snippet module that every copy of the glue shares: the session survives the shim's restart of the
// wasm after a trap, so the user stays the same user.
#[wasm_bindgen(inline_js = "const memory = new Map();
export function memoryGet(key) { return memory.get(key); }
export function memorySet(key, value) { memory.set(key, value); }
export function memoryRemove(key) { memory.delete(key); }")]
extern "C" {
    #[wasm_bindgen(js_name = memoryGet)]
    fn memory_get(key: &str) -> Option<String>;
    #[wasm_bindgen(js_name = memorySet)]
    fn memory_set(key: &str, value: &str);
    #[wasm_bindgen(js_name = memoryRemove)]
    fn memory_remove(key: &str);
}

/// A key-value store for one persistence mode.
pub struct Store {
    web: Option<Storage>,
}

impl Store {
    /// Opens the store; Web Storage that is missing or throws on access (sandboxed frames) means memory.
    pub fn open(persistence: Persistence) -> Self {
        let name = match persistence {
            Persistence::Local => "localStorage",
            Persistence::Session => "sessionStorage",
            Persistence::None => return Store { web: None },
        };
        let storage = js::get(&js_sys::global(), name);
        let web = if storage.is_object() {
            Some(storage.unchecked_into::<Storage>())
        } else {
            None
        };
        Store { web }
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some(Ok(value)) = self.web.as_ref().map(|web| web.get_item(key)) {
            return value;
        }
        memory_get(key)
    }

    /// Stores `value` under `key` (in memory when Web Storage refuses, e.g. quota or privacy mode).
    pub fn set(&self, key: &str, value: &str) {
        if let Some(Ok(())) = self.web.as_ref().map(|web| web.set_item(key, value)) {
            return;
        }
        memory_set(key, value);
    }

    /// Removes `key`.
    pub fn remove(&self, key: &str) {
        if let Some(web) = &self.web {
            let _ = web.remove_item(key);
        }
        memory_remove(key);
    }
}
