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
 * Fails a transfer that moved no byte for `ms` (a stall timeout, not a total-duration one): `touch()` on
 * every sign of progress; on expiry `onStall(error)` runs once. The timer never keeps Node alive.
 */
function watchdog(ms, onStall) {
  let timer;
  const dog = {
    touch() {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const error = new Error('transfer stalled: no progress for ' + ms + ' ms');
        error.name = 'TimeoutError';
        onStall(error);
      }, ms);
      if (typeof timer === 'object' && timer !== null && typeof timer.unref === 'function') timer.unref();
    },
    stop: () => clearTimeout(timer),
  };
  dog.touch();
  return dog;
}

/** The jittered wait before retry `n` (full jitter below min(2 s, 100 ms * 2^n)); not a stall. */
function pause(n, dog) {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2000, 100 << n))).then(dog.touch);
}

/** Runs `run(signal)` under a watchdog: a stall aborts it and rejects with the stall error. */
async function guarded(stallMs, signal, run) {
  const inner = new AbortController();
  const abort = () => inner.abort();
  signal.addEventListener('abort', abort);
  if (signal.aborted) inner.abort();
  let stalled;
  const dog = watchdog(stallMs, (error) => {
    stalled = error;
    inner.abort();
  });
  try {
    return await run(inner.signal, dog);
  } catch (error) {
    throw stalled || error;
  } finally {
    dog.stop();
    signal.removeEventListener('abort', abort);
  }
}

/**
 * Sends `blob` raw (fields null) or as a multipart form (`fields` in order, then `file`), with `headers`
 * ([name, value] pairs) plus the caller's `extra` header object. Resolves with `{status, text}` whatever
 * the status; rejects on network failure, abort, or no progress for `stallMs`. XHR where it exists
 * (byte-level upload progress), else fetch with the body streamed (progress as the connection takes it).
 */
export function upload(method, url, headers, extra, blob, fields, state, signal, stallMs) {
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
    return guarded(stallMs, signal, async (inner, dog) => {
      if (body instanceof FormData) {
        // The form's bytes and boundary, so it can be streamed like a Blob.
        const form = new Response(body);
        headers = headers.concat([['content-type', form.headers.get('content-type')]]);
        body = await form.blob();
      }
      const total = body.size;
      const reader = body.stream().getReader();
      let sent = 0;
      const stream = new ReadableStream({
        async pull(controller) {
          const { done, value } = await reader.read();
          if (done) return controller.close();
          sent += value.byteLength;
          dog.touch();
          state.progress(sent, total);
          controller.enqueue(value);
        },
        cancel: (reason) => reader.cancel(reason),
      });
      headers = headers.filter(([name]) => name !== 'content-length').concat([['content-length', String(total)]]);
      const response = await fetch(url, { method, headers, body: stream, duplex: 'half', signal: inner });
      dog.touch();
      state.headers(headerObject(response.headers));
      return { status: response.status, text: await response.text() };
    });
  }
  return guarded(
    stallMs,
    signal,
    (inner, dog) =>
      new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        const stop = () => xhr.abort();
        let headersSeen = false;
        inner.addEventListener('abort', stop);
        xhr.open(method, url);
        for (const [name, value] of headers) xhr.setRequestHeader(name, value);
        xhr.upload.onprogress = (event) => {
          dog.touch();
          state.progress(event.loaded, event.total);
        };
        xhr.onprogress = dog.touch;
        xhr.onreadystatechange = () => {
          dog.touch();
          // HEADERS_RECEIVED (2); some XHR shims jump straight to DONE (4).
          if (xhr.readyState >= 2 && !headersSeen && xhr.status) {
            headersSeen = true;
            state.headers(parseHeaderLines(xhr.getAllResponseHeaders()));
          }
          if (xhr.readyState !== 4) return;
          inner.removeEventListener('abort', stop);
          if (xhr.status) resolve({ status: xhr.status, text: xhr.responseText });
          else reject(new Error(inner.aborted ? 'abort' : 'upload failed: network error'));
        };
        if (inner.aborted) return reject(new Error('abort'));
        xhr.send(body);
      }),
  );
}

/**
 * GETs `url` with no extra headers (protocol.md §4.5), reporting progress per body chunk against
 * Content-Length. Resolves with `{statusCode, header, data: ArrayBuffer, tempFilePath?}`; rejects when no
 * byte arrives for `stallMs`.
 */
export function download(url, state, signal, stallMs) {
  return guarded(stallMs, signal, async (inner, dog) => {
    let response;
    // Nothing was delivered yet, so a failed connection or a 408/429/5xx answer is retried (transport/retry.rs).
    for (let n = 0; ; n++) {
      const transient = n < 3 && !inner.aborted;
      try {
        response = await fetch(url, { signal: inner });
      } catch (error) {
        if (!transient) throw error;
        await pause(n, dog);
        continue;
      }
      const status = response.status;
      if (!transient || !(status === 408 || status === 429 || status >= 500)) break;
      await response.arrayBuffer().catch(() => {});
      await pause(n, dog);
    }
    dog.touch();
    const header = headerObject(response.headers);
    state.headers(header);
    const expected = Number(response.headers.get('content-length')) || 0;
    let data;
    // Chunk by chunk, so a stall is seen (and progress reported); arrayBuffer() where there is no stream.
    if (response.body && typeof response.body.getReader === 'function') {
      const reader = response.body.getReader();
      let bytes = new Uint8Array(expected);
      let loaded = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        dog.touch();
        if (loaded + value.byteLength > bytes.length) {
          const grown = new Uint8Array(Math.max(bytes.length * 2, loaded + value.byteLength));
          grown.set(bytes.subarray(0, loaded));
          bytes = grown;
        }
        bytes.set(value, loaded);
        loaded += value.byteLength;
        if (state.listening) state.progress(loaded, expected);
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
  });
}
