// Moving file bytes for storage (imported by transfer.rs). This part is JS on purpose: it only drives
// XMLHttpRequest / fetch / stream readers and calls listeners, which in Rust cost ~30 KB of gzipped wasm in
// glue and closures for what is ~1.5 KB here. Bytes stay in Blobs and ArrayBuffers; they never enter wasm.
// Validation, envelopes, errors and result shapes stay in Rust.

const NAMES = [
  ['totalBytesSent', 'totalBytesExpectedToSend'],
  ['totalBytesWritten', 'totalBytesExpectedToWrite'],
];

function notify(listeners, event, name) {
  for (const listener of listeners.slice()) {
    try {
      listener(event);
    } catch (error) {
      console.error('at ' + name + ' listener', error);
    }
  }
}

/** A transfer's state; `state.task` is the UploadTask / DownloadTask users see. */
export function createTask(isDownload) {
  const [sentName, totalName] = NAMES[isDownload ? 1 : 0];
  const controller = new AbortController();
  let onProgress = [];
  let onHeaders = [];
  let reported = false;
  let lastLoaded = 0;
  let lastTotal = 0;
  const off = (list, fn) => (typeof fn === 'function' ? list.filter((l) => l !== fn) : []);
  const task = {
    onProgressUpdate(fn) {
      if (typeof fn === 'function') onProgress.push(fn);
    },
    offProgressUpdate(fn) {
      onProgress = off(onProgress, fn);
    },
    onHeadersReceived(fn) {
      if (typeof fn === 'function') onHeaders.push(fn);
    },
    offHeadersReceived(fn) {
      onHeaders = off(onHeaders, fn);
    },
    abort() {
      controller.abort();
    },
  };
  const state = {
    task,
    signal: controller.signal,
    get listening() {
      return onProgress.length > 0;
    },
    // Monotone: a repeated or smaller count (XHR repeats the last one on `load`) is not news.
    progress(loaded, total) {
      if (reported && loaded <= lastLoaded && total === lastTotal) return;
      reported = true;
      lastLoaded = Math.max(loaded, lastLoaded);
      lastTotal = total;
      const percent = total > 0 ? Math.min(100, Math.floor((lastLoaded / total) * 100)) : lastLoaded > 0 ? 0 : 100;
      notify(onProgress, { progress: percent, [sentName]: lastLoaded, [totalName]: total }, 'onProgressUpdate');
    },
    headers(header) {
      notify(onHeaders, { header }, 'onHeadersReceived');
    },
    // The end of a successful transfer: one last event at the total unless one was sent.
    finish(fallbackTotal) {
      const total = reported ? Math.max(lastTotal, lastLoaded) : fallbackTotal;
      if (!reported || lastLoaded < total || lastTotal !== total) state.progress(total, total);
    },
  };
  return state;
}

/** `value` as a typed Blob: a Blob/File as is (retyped when untyped), an ArrayBuffer or view copied; else undefined. */
export function toBlob(value, type) {
  if (typeof Blob === 'function' && value instanceof Blob) return value.type ? value : new Blob([value], { type });
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return new Blob([value], { type });
  return undefined;
}

/** Reads a `filePath` (a blob: / object URL, or any URL the page may fetch) into a Blob. */
export async function readFilePath(url, signal) {
  const response = await fetch(url, { signal });
  if (response.status >= 300) throw new Error('HTTP ' + response.status);
  return response.blob();
}

function headerObject(headers) {
  const out = {};
  headers.forEach((value, name) => (out[name] = value));
  return out;
}

function parseHeaderLines(text) {
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    out[name] = name in out ? out[name] + ', ' + value : value;
  }
  return out;
}

/**
 * Sends `blob` raw (fields null) or as a multipart form (`fields` in order, then `file`), with `headers`
 * ([name, value] pairs) plus the caller's `extra` header object. Resolves with `{status, text}` whatever
 * the status; rejects on network failure or abort. XHR where it exists (byte-level upload progress), else fetch.
 */
export function upload(method, url, headers, extra, blob, fields, state, signal) {
  let body = blob;
  if (fields) {
    body = new FormData();
    for (const [name, value] of fields) body.append(name, value);
    body.append('file', blob);
  }
  if (extra && typeof extra === 'object') {
    for (const name of Object.keys(extra)) {
      const lower = name.toLowerCase();
      if (extra[name] == null || (fields && lower === 'content-type')) continue;
      headers = headers.filter(([existing]) => existing !== lower);
      headers.push([lower, String(extra[name])]);
    }
  }
  if (typeof XMLHttpRequest !== 'function') {
    return fetch(url, { method, headers, body, signal }).then(async (response) => {
      state.headers(headerObject(response.headers));
      return { status: response.status, text: await response.text() };
    });
  }
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const stop = () => xhr.abort();
    let headersSeen = false;
    signal.addEventListener('abort', stop);
    xhr.open(method, url);
    for (const [name, value] of headers) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => state.progress(event.loaded, event.total);
    xhr.onreadystatechange = () => {
      // HEADERS_RECEIVED (2); some XHR shims jump straight to DONE (4).
      if (xhr.readyState >= 2 && !headersSeen && xhr.status) {
        headersSeen = true;
        state.headers(parseHeaderLines(xhr.getAllResponseHeaders()));
      }
      if (xhr.readyState !== 4) return;
      signal.removeEventListener('abort', stop);
      if (xhr.status) resolve({ status: xhr.status, text: xhr.responseText });
      else reject(new Error(signal.aborted ? 'abort' : 'upload failed: network error'));
    };
    if (signal.aborted) return reject(new Error('abort'));
    xhr.send(body);
  });
}

/**
 * GETs `url` with no extra headers (protocol.md §4.5), reporting progress per body chunk against
 * Content-Length. Resolves with `{statusCode, header, data: ArrayBuffer, tempFilePath?}`.
 */
export async function download(url, state, signal) {
  const response = await fetch(url, { signal });
  const header = headerObject(response.headers);
  state.headers(header);
  const expected = Number(response.headers.get('content-length')) || 0;
  let data;
  // Chunk by chunk only for a progress listener; otherwise arrayBuffer() (no copies in JS).
  if (state.listening && response.body && typeof response.body.getReader === 'function') {
    const reader = response.body.getReader();
    let bytes = new Uint8Array(expected);
    let loaded = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (loaded + value.byteLength > bytes.length) {
        const grown = new Uint8Array(Math.max(bytes.length * 2, loaded + value.byteLength));
        grown.set(bytes.subarray(0, loaded));
        bytes = grown;
      }
      bytes.set(value, loaded);
      loaded += value.byteLength;
      state.progress(loaded, expected);
    }
    data = loaded === bytes.length ? bytes.buffer : bytes.slice(0, loaded).buffer;
  } else {
    data = await response.arrayBuffer();
  }
  state.finish(data.byteLength);
  const result = { statusCode: response.status, header, data };
  if (typeof URL.createObjectURL === 'function') {
    // Made on first read: a Blob of the bytes is a copy, which most callers (who use `data`) never need.
    let objectUrl;
    Object.defineProperty(result, 'tempFilePath', {
      enumerable: true,
      configurable: true,
      get: () => (objectUrl ??= URL.createObjectURL(new Blob([data], { type: header['content-type'] || '' }))),
    });
  }
  return result;
}
