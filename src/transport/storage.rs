//! Where credentials and the device id are kept: `localStorage`, `sessionStorage` or memory
//! (`persistence: 'none'`, or no Web Storage in this runtime, e.g. Node).

use std::cell::RefCell;

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

thread_local! {
    // The memory store of `persistence: 'none'`; also used when Web Storage throws.
    static MEMORY: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
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
        MEMORY.with(|memory| {
            memory
                .borrow()
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        })
    }

    /// Stores `value` under `key` (in memory when Web Storage refuses, e.g. quota or privacy mode).
    pub fn set(&self, key: &str, value: &str) {
        if let Some(Ok(())) = self.web.as_ref().map(|web| web.set_item(key, value)) {
            return;
        }
        MEMORY.with(|memory| {
            let mut memory = memory.borrow_mut();
            memory.retain(|(k, _)| k != key);
            memory.push((key.to_owned(), value.to_owned()));
        });
    }

    /// Removes `key`.
    pub fn remove(&self, key: &str) {
        if let Some(web) = &self.web {
            let _ = web.remove_item(key);
        }
        MEMORY.with(|memory| memory.borrow_mut().retain(|(k, _)| k != key));
    }
}
