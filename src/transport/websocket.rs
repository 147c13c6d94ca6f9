//! The realtime socket: a `web_sys::WebSocket` whose four events go to one handler function as
//! `handler(generation, kind, data)`, so a connection needs one closure for every socket it ever opens
//! and can ignore the late events of a socket it already replaced.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// `handler` kinds: the socket opened.
pub const OPEN: u8 = 0;
/// A text frame (`data` is the string).
pub const MESSAGE: u8 = 1;
/// The socket closed (`data` is the close code).
pub const CLOSE: u8 = 2;

// The constructor: the one given to `init({ WebSocket })`, else the global (browsers, Node ≥ 22), else the
// `ws` package resolved from this module or the working directory (Node 18/20; through
// process.getBuiltinModule so no bundler sees a `require`).
#[wasm_bindgen(
    inline_js = "export function openSocket(url, Given, handler, generation) {
  let Ctor = typeof Given === 'function' ? Given : globalThis.WebSocket;
  const proc = globalThis.process;
  if (!Ctor && proc && typeof proc.getBuiltinModule === 'function') {
    const { createRequire } = proc.getBuiltinModule('module');
    for (const base of [import.meta.url, proc.cwd() + '/']) {
      try { if (base) { Ctor = createRequire(base)('ws'); break; } } catch (_) {}
    }
  }
  if (!Ctor) throw new Error('no WebSocket in this runtime: pass one to init({ WebSocket }) or install the ws package');
  const socket = new Ctor(url);
  socket.onopen = () => handler(generation, 0);
  socket.onmessage = (event) => handler(generation, 1, event.data);
  socket.onclose = (event) => handler(generation, 2, event.code);
  socket.onerror = () => handler(generation, 3);
  return socket;
}"
)]
extern "C" {
    #[wasm_bindgen(catch, js_name = openSocket)]
    fn open_socket(
        url: &str,
        constructor: &JsValue,
        handler: &js_sys::Function,
        generation: u32,
    ) -> Result<JsValue, JsValue>;
}

/// An open (or opening) socket.
pub struct Socket(web_sys::WebSocket);

/// Opens a socket to `url`; `Err` (with the reason) when this runtime has no WebSocket.
pub fn open(
    url: &str,
    constructor: &JsValue,
    handler: &js_sys::Function,
    generation: u32,
) -> Result<Socket, String> {
    open_socket(url, constructor, handler, generation)
        .map(|socket| Socket(socket.unchecked_into()))
        .map_err(|error| super::http::describe_js_error(&error))
}

impl Socket {
    /// Sends a text frame; frames sent on a socket that is no longer open are dropped (the
    /// reconnect resends what matters).
    pub fn send(&self, text: &str) {
        let _ = self.0.send_with_str(text);
    }

    /// Closes with 1000 (normal closure).
    pub fn close(&self) {
        let _ = self.0.close_with_code(1000);
    }
}
