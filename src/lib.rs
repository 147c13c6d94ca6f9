//! taro-cloud-wasm: the `wx.cloud` surface for the web, compiled to WebAssembly.
