// The minimal browser surface the official @cloudbase/js-sdk browser build needs under Node (protocol.md §0.3:
// the reference captures were made the same way): window, storages, location, document, WebSocket, and an
// XMLHttpRequest built on Node's fetch (the SDK's web adapter posts `/web` envelopes with XHR).

export function memoryStorage() {
  const store = new Map();
  return {
    getItem: (key) => (store.has(key) ? store.get(key) : null),
    setItem: (key, value) => void store.set(key, String(value)),
    removeItem: (key) => void store.delete(key),
    clear: () => store.clear(),
    key: (index) => [...store.keys()][index] ?? null,
    get length() {
      return store.size;
    },
    dump: () => Object.fromEntries(store),
  };
}

class FetchXMLHttpRequest {
  constructor() {
    this.readyState = 0;
    this.status = 0;
    this.responseType = '';
    this.response = null;
    this.responseText = '';
    this.withCredentials = false;
    this.onreadystatechange = null;
    this.upload = { addEventListener() {} };
    this._headers = {};
    this._responseHeaders = '';
    this._controller = new AbortController();
  }
  open(method, url) {
    this._method = method;
    this._url = url;
    this.readyState = 1;
  }
  setRequestHeader(name, value) {
    this._headers[name] = value;
  }
  getAllResponseHeaders() {
    return this._responseHeaders;
  }
  abort() {
    this._controller.abort();
  }
  _finish() {
    this.readyState = 4;
    this.onreadystatechange?.();
  }
  send(body) {
    fetch(this._url, { method: this._method, headers: this._headers, body, signal: this._controller.signal })
      .then(async (res) => {
        this.status = res.status;
        this._responseHeaders = [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\r\n');
        if (this.responseType === 'blob') this.response = await res.blob();
        else this.response = this.responseText = await res.text();
        this._finish();
      })
      .catch(() => {
        this.status = 0;
        this._finish();
      });
  }
}

/** Installs the globals once; returns the storage so tests can look at what the SDK persisted. */
export function installBrowserGlobals({ origin = 'http://127.0.0.1/' } = {}) {
  const storage = memoryStorage();
  globalThis.window = globalThis;
  globalThis.self = globalThis;
  globalThis.localStorage = storage;
  globalThis.sessionStorage = memoryStorage();
  globalThis.location = new URL(origin);
  globalThis.document = { cookie: '', addEventListener() {}, removeEventListener() {} };
  globalThis.addEventListener ??= () => {};
  globalThis.removeEventListener ??= () => {};
  globalThis.XMLHttpRequest = FetchXMLHttpRequest;
  globalThis.WebSocket ??= class WebSocket {
    constructor() {
      throw new Error('WebSocket is not available in this test');
    }
  };
  return storage;
}
