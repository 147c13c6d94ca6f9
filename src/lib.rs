//! taro-cloud-wasm: the `wx.cloud` surface for the web, compiled to WebAssembly.
//!
//! This file holds the `#[wasm_bindgen]` exports only; the npm shim (pkg-template/index.js) turns a
//! [`CloudHandle`] into the `cloud` object users see.
#![deny(missing_docs)]

mod call_style;
mod cloud;
#[cfg(feature = "container")]
mod container;
#[cfg(feature = "database")]
mod database;
mod error;
mod functions;
mod js;
#[cfg(feature = "storage")]
mod storage;
#[cfg(test)]
mod test_captures;
mod transport;

use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::cloud::CloudCore;

// SAFETY: wasm32 here is single-threaded, which `TalckWasm` (talc's allocator over `memory.grow`) assumes.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };

#[cfg(feature = "database")]
pub use database::bindings as db;

/// One `Cloud`: the default `cloud` or an instance made by `new cloud.Cloud(options)`.
#[wasm_bindgen]
pub struct CloudHandle(Rc<CloudCore>);

#[wasm_bindgen]
impl CloudHandle {
    /// The default instance (`cloud.init(config)` configures it).
    #[wasm_bindgen(js_name = createDefault)]
    pub fn create_default() -> CloudHandle {
        CloudHandle(CloudCore::new_default())
    }

    /// `new cloud.Cloud({ resourceAppid?, resourceEnv, endpoint?, region?, timeout?, persistence? })`.
    #[wasm_bindgen(js_name = createInstance)]
    pub fn create_instance(options: JsValue) -> Result<CloudHandle, JsValue> {
        #[cfg(feature = "database")]
        database::realtime::remember_socket_constructor(&options);
        CloudCore::new_instance(&options)
            .map(CloudHandle)
            .map_err(|error| error.to_js())
    }

    /// `init(config?)`; resolves at once (sign-in happens lazily before the first call).
    pub fn init(&self, config: JsValue) -> js_sys::Promise {
        #[cfg(feature = "database")]
        database::realtime::remember_socket_constructor(&config);
        self.0.init(&config);
        js_sys::Promise::resolve(&JsValue::UNDEFINED)
    }

    /// `callFunction(options)`: a Promise, or `undefined` with callbacks.
    #[wasm_bindgen(js_name = callFunction)]
    pub fn call_function(&self, options: JsValue) -> Result<JsValue, JsValue> {
        functions::call_function(&self.0, options).map_err(|error| error.to_js())
    }
}

// The optional services live in their own `impl` blocks so a feature switches the whole export off;
// pkg-template/index.js exposes only the methods the handle has.
#[cfg(feature = "database")]
#[wasm_bindgen]
impl CloudHandle {
    /// `database(config?)`: the `Database` of this Cloud (`config.env` picks the env).
    pub fn database(&self, config: JsValue) -> Result<database::bindings::Database, JsValue> {
        database::bindings::open(&self.0, config)
    }
}

#[cfg(feature = "storage")]
#[wasm_bindgen]
impl CloudHandle {
    /// `uploadFile(options)`: a Promise, or an `UploadTask` with callbacks.
    #[wasm_bindgen(js_name = uploadFile)]
    pub fn upload_file(&self, options: JsValue) -> Result<JsValue, JsValue> {
        storage::upload_file(&self.0, options).map_err(|error| error.to_js())
    }

    /// `downloadFile(options)`: a Promise, or a `DownloadTask` with callbacks.
    #[wasm_bindgen(js_name = downloadFile)]
    pub fn download_file(&self, options: JsValue) -> Result<JsValue, JsValue> {
        storage::download_file(&self.0, options).map_err(|error| error.to_js())
    }

    /// `getTempFileURL(options)`: a Promise, or `undefined` with callbacks.
    #[wasm_bindgen(js_name = getTempFileURL)]
    pub fn get_temp_file_url(&self, options: JsValue) -> Result<JsValue, JsValue> {
        storage::get_temp_file_url(&self.0, options).map_err(|error| error.to_js())
    }

    /// `deleteFile(options)`: a Promise, or `undefined` with callbacks.
    #[wasm_bindgen(js_name = deleteFile)]
    pub fn delete_file(&self, options: JsValue) -> Result<JsValue, JsValue> {
        storage::delete_file(&self.0, options).map_err(|error| error.to_js())
    }
}

#[cfg(feature = "container")]
#[wasm_bindgen]
impl CloudHandle {
    /// `callContainer(options)`: a Promise, or `undefined` with callbacks.
    #[wasm_bindgen(js_name = callContainer)]
    pub fn call_container(&self, options: JsValue) -> Result<JsValue, JsValue> {
        container::call_container(&self.0, options).map_err(|error| error.to_js())
    }

    /// The lane of `callContainer`'s fast path for this cloud's own env, or `undefined`.
    #[wasm_bindgen(js_name = containerLane)]
    pub fn container_lane(&self) -> JsValue {
        container::container_lane(&self.0)
    }
}
