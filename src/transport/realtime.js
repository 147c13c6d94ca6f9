// The event loop of realtime watch() (imported by database/realtime.rs; protocol.md §5.6, docs/realtime.md): one
// WebSocket per session shared by its watchers, LOGIN once per socket, INIT_WATCH / REBUILD_WATCH /
// CLOSE_WATCH per watcher, PING and CHECK_LAST when idle, event ids checked for gaps, and reconnect with
// jittered backoff that resumes every watcher from its last applied event.
// This part is JS on purpose, like transport/transfer.js: it only drives a socket and timers, keeps the
// documents it received and calls listeners. The same loop in Rust cost 12 KB of gzipped wasm (JsValue
// plumbing and closures; docs/dependencies.md). Validation, the query encoding, the sign (session and
// token refresh), the errors and the decoding of values stay in Rust, reached through one `hook`.

const IDLE_MS = 10000; // PING + CHECK_LAST after this long without traffic; twice means the socket is dead
const MAX_RECONNECTS = 5; // wx: max reconnect 5
const [IDLE, CONNECTING, LOGGING_IN, OPEN, BACKOFF] = [0, 1, 2, 3, 4];
const INIT_WATCH_FAIL = -402002;
const REBUILD_WATCH_FAIL = -402004;
const SERVER_ERROR = -402006;
const INVALID_SERVER_DATA = -402007;
const CONNECTION_CLOSED = -402009;
const UNEXPECTED = -402011;
const INIT_SOCKET_FAIL = -402012;
const SIGN_ERRORS = ['CHECK_LOGIN_FAILED', 'SIGN_EXPIRED_ERROR', 'SIGN_INVALID_ERROR', 'SIGN_PARAM_INVALID'];

/** `"<ms>_<Math.random()>"`, the official client's id format. */
const requestId = () => Date.now() + '_' + Math.random();

let givenConstructor;

/** `init({ WebSocket })` / `new Cloud({ WebSocket })`: the constructor for runtimes without a global one. */
export function setSocketConstructor(constructor) {
  if (typeof constructor === 'function') givenConstructor = constructor;
}

// The given constructor, else the global (browsers, Node ≥ 22), else the `ws` package resolved from this
// module or the working directory (Node 18/20; through process.getBuiltinModule so no bundler sees it).
function socketConstructor() {
  let found = givenConstructor || globalThis.WebSocket;
  const proc = globalThis.process;
  if (!found && proc && typeof proc.getBuiltinModule === 'function') {
    const { createRequire } = proc.getBuiltinModule('module');
    for (const base of [import.meta.url, proc.cwd() + '/']) {
      try {
        if (base) found = createRequire(base)('ws');
        if (found) break;
      } catch (_) {}
    }
  }
  if (!found) throw new Error('no WebSocket in this runtime: pass one to init({ WebSocket }) or install the ws package');
  return found;
}

/** Reconnect attempt `attempt` (1-based) waits 250 ms doubling to 4 s, between half and all of it. */
export function reconnectDelay(attempt, random) {
  const ceiling = 250 * 2 ** Math.min(attempt - 1, 4);
  return ceiling / 2 + (ceiling / 2) * random;
}

const copy = (value) => (value === undefined ? value : JSON.parse(JSON.stringify(value)));
const parsed = (text) => (typeof text === 'string' && text !== '' && text !== '{}' ? JSON.parse(text) : undefined);

/** A copy of `doc` with a partial update applied (dotted paths, as lodash set / unset in the official SDK). */
export function patch(doc, updated, removed) {
  const out = copy(doc);
  const walk = (path, make) => {
    const keys = path.split('.');
    let at = out;
    for (const key of keys.slice(0, -1)) {
      if (at[key] === null || typeof at[key] !== 'object') {
        if (!make) return [];
        at[key] = {};
      }
      at = at[key];
    }
    return [at, keys[keys.length - 1]];
  };
  for (const path of Object.keys(updated || {})) {
    const [at, key] = walk(path, true);
    at[key] = updated[path];
  }
  for (const path of removed || []) {
    const [at, key] = walk(path, false);
    if (at) delete at[key];
  }
  return out;
}

// BSON type order for the window's sort ({$date} as dates), as the server orders the result.
const rank = (v) =>
  v == null ? 0 : typeof v === 'number' ? 1 : typeof v === 'string' ? 2 : typeof v === 'boolean' ? 5
    : Array.isArray(v) ? 4 : v.$date !== undefined ? 6 : 3;
const scalar = (v, r) => (r === 6 ? Number(v.$date.$numberLong ?? v.$date) : r === 3 || r === 4 ? JSON.stringify(v) : v);

/** Compares two raw documents by `orders` (`[[path, descending], …]`). */
export function compare(a, b, orders) {
  for (const [path, descending] of orders) {
    let x = a;
    let y = b;
    for (const key of path.split('.')) {
      x = x == null ? undefined : x[key];
      y = y == null ? undefined : y[key];
    }
    const rx = rank(x);
    const ry = rank(y);
    let c = rx - ry;
    if (!c) {
      const p = scalar(x, rx);
      const q = scalar(y, ry);
      c = p < q ? -1 : p > q ? 1 : 0;
    }
    if (c) return descending ? -c : c;
  }
  return 0;
}

const QUEUE_TYPES = ['init', 'update', 'enqueue', 'dequeue'];
const DATA_TYPES = ['init', 'update', 'replace', 'add', 'remove', 'limit'];

/** A server event as the user's change object (`doc` still raw); `null` when it cannot be read. */
function readEvent(event, initId) {
  const id = initId ?? event.ID;
  const { DataType: dataType, QueueType: queueType, DocID: docId } = event;
  if (typeof id !== 'number' || !DATA_TYPES.includes(dataType) || !QUEUE_TYPES.includes(queueType)) return null;
  if (typeof docId !== 'string' && typeof docId !== 'number') return null;
  const change = { id, dataType, queueType, docId: String(docId), doc: parsed(event.Doc) };
  if (dataType === 'update') {
    const updated = parsed(event.UpdatedFields);
    const removed = parsed(event.removedFields ?? event.RemovedFields);
    if (updated) change.updatedFields = updated;
    if (removed) change.removedFields = removed;
  }
  return change;
}

/**
 * Applies a batch of changes to a window `{ last, docs: [[docId, doc], …] }`: ids at or below `last` are
 * duplicates and skipped, `last + 1` is applied, anything beyond is a gap. Changes without their document get
 * the window's copy (a partial update is applied to it). Returns one snapshot `{ id, changes, docs }` per id
 * and the fault that stopped the batch: `'gap'`, or a message for a change that adds no document.
 */
export function applyChanges(window, changes, orders) {
  const snapshots = [];
  let initSeen = false;
  for (let index = 0; index < changes.length; ) {
    const id = changes[index].id;
    if (id <= window.last) {
      index++;
      continue;
    }
    if (id !== window.last + 1) return { snapshots, fault: 'gap' };
    const batch = [];
    for (; index < changes.length && changes[index].id === id; index++) {
      const change = changes[index];
      const at = window.docs.findIndex(([docId]) => docId === change.docId);
      if (change.doc === undefined && at >= 0) {
        const local = window.docs[at][1];
        change.doc = change.dataType === 'update' ? patch(local, change.updatedFields, change.removedFields) : local;
      }
      if (change.queueType === 'init' || change.queueType === 'enqueue') {
        if (change.doc === undefined) return { snapshots, fault: `no document sent for the added document ${change.docId}` };
        if (change.queueType === 'init' && !initSeen) {
          initSeen = true;
          window.docs = [];
        }
        const present = window.docs.findIndex(([docId]) => docId === change.docId);
        if (present >= 0) window.docs[present][1] = change.doc;
        else window.docs.push([change.docId, change.doc]);
      } else if (at >= 0) {
        if (change.queueType === 'dequeue') window.docs.splice(at, 1);
        else window.docs[at][1] = change.doc;
      }
      batch.push(change);
    }
    // Insertion sort: the window was sorted before this event, so it is nearly sorted.
    const docs = window.docs;
    for (let i = 1; i < docs.length; i++) {
      for (let j = i; j > 0 && compare(docs[j - 1][1], docs[j][1], orders) > 0; j--) [docs[j - 1], docs[j]] = [docs[j], docs[j - 1]];
    }
    window.last = id;
    snapshots.push({ id, changes: batch, docs: docs.map(([, doc]) => doc) });
  }
  return { snapshots, fault: null };
}

/** What `onChange` receives: a copy the user may keep and change, values decoded as get() decodes them. */
function userSnapshot({ id, changes, docs }, init, decode) {
  const snapshot = decode(copy({ id, docChanges: changes, docs }));
  if (init) snapshot.type = 'init';
  return snapshot;
}

function call(api, name, callback, value) {
  try {
    callback(value);
  } catch (error) {
    console.error('at api ' + api + ' ' + name + ' callback function', error);
  }
}

class Watcher {
  constructor(connection, api, spec, onChange, onError) {
    Object.assign(this, { connection, api, spec, onChange, onError });
    this.watchId = 'watchid_' + requestId();
    const orders = Object.entries(spec.orderBy || {}).map(([field, direction]) => [field, direction === 'desc']);
    // The server's order (docs/realtime.md §2): orderBy then _id ascending, or _id descending.
    this.orders = orders.some(([field]) => field === '_id') ? orders : orders.concat([['_id', !orders.length]]);
    this.window = { last: 0, docs: [] };
    this.queryId = undefined; // set by INIT_EVENT; REBUILD_WATCH resumes with it
    this.pending = undefined; // requestId of the INIT_WATCH / REBUILD_WATCH awaiting its answer
    this.behind = 0; // CHECK_EVENT's currEvent when the server was ahead
    this.waited = 0; // idle ticks without an answer to `pending`
    this.retries = 0; // INIT_WATCH / REBUILD_WATCH resent for lack of an answer
    this.closed = false;
  }

  startFrame() {
    const requestId_ = requestId();
    this.pending = requestId_;
    this.behind = 0;
    this.waited = 0;
    const { env } = this.connection;
    const msgData = this.queryId
      ? { envId: env, collName: this.spec.collName, queryID: this.queryId, eventID: this.window.last }
      : { envId: env, ...this.spec };
    return { watchId: this.watchId, requestId: requestId_, msgType: this.queryId ? 'REBUILD_WATCH' : 'INIT_WATCH', msgData };
  }

  /** The frame of an idle tick, or `{ fail }` when INIT_WATCH / REBUILD_WATCH got no answer, even resent. */
  idleFrame() {
    if (this.pending) {
      if (++this.waited < 2) return null; // not yet a whole idle period without an answer
      if (this.retries++ < 2) return this.startFrame();
      const fail = this.queryId ? REBUILD_WATCH_FAIL : INIT_WATCH_FAIL;
      return { fail: [fail, 'no answer from the server'] };
    }
    if (!this.queryId) return null;
    if (this.behind > this.window.last) return this.startFrame();
    const msgData = { queryID: this.queryId, eventID: this.window.last };
    return { watchId: this.watchId, requestId: requestId(), msgType: 'CHECK_LAST', msgData };
  }

  /** Handles one frame; returns `[frames to send, snapshots, error?, relogin?]`. */
  handle(msg) {
    const out = [[], [], null, false];
    const data = msg.msgData || {};
    const answered = this.pending !== undefined && msg.requestId === this.pending;
    const rebuilding = answered && this.queryId !== undefined;
    if (answered) this.pending = undefined;
    if (answered) this.retries = 0;
    if (msg.msgType === 'INIT_EVENT') {
      // A late answer to an INIT_WATCH sent again since (or no longer waited for): the answer to the latest
      // request is the one that counts, and taking both would deliver the init snapshot twice.
      if (!answered) return out;
      // A fresh start: the whole result again, as one `init` snapshot with id currEvent.
      this.queryId = data.queryID;
      this.window = { last: data.currEvent - 1, docs: [] };
      this.apply(data, data.currEvent, out);
      if (!out[1].length && !out[2]) {
        this.window.last = data.currEvent;
        out[1].push({ id: data.currEvent, docChanges: [], docs: [], type: 'init' });
      }
    } else if (msg.msgType === 'NEXT_EVENT') {
      this.apply(data, undefined, out);
    } else if (msg.msgType === 'CHECK_EVENT') {
      if (data.currEvent > this.window.last) this.behind = data.currEvent;
    } else if (msg.msgType === 'ERROR') {
      if (SIGN_ERRORS.includes(data.code)) out[3] = true;
      else if (data.code === 'QUERYID_INVALID_ERROR' && this.queryId !== undefined) {
        // The server no longer knows the query: start again with a fresh init snapshot.
        this.queryId = undefined;
        out[0].push(this.startFrame());
      } else {
        const code = rebuilding ? REBUILD_WATCH_FAIL : answered ? INIT_WATCH_FAIL : SERVER_ERROR;
        out[2] = [code, data.code + ' - ' + data.message];
      }
    }
    return out;
  }

  apply(data, initId, out) {
    const changes = (Array.isArray(data.events) ? data.events : []).map((event) => readEvent(event, initId));
    if (changes.includes(null)) {
      out[2] = [INVALID_SERVER_DATA, 'an event of the server could not be read'];
      return;
    }
    const { snapshots, fault } = applyChanges(this.window, changes, this.orders);
    const decode = (value) => this.connection.hook(2, value);
    for (const [i, snapshot] of snapshots.entries()) {
      // `type: 'init'` on the first snapshot and on a server re-init (a batch of init events).
      const init = (initId !== undefined && i === 0) || snapshot.changes.every((c) => c.queueType === 'init');
      out[1].push(userSnapshot(snapshot, init, decode));
    }
    if (fault === 'gap') {
      if (!this.pending) out[0].push(this.startFrame());
    } else if (fault) {
      out[2] = [UNEXPECTED, fault];
    }
  }

  close() {
    if (!this.closed) {
      this.closed = true;
      this.connection.remove(this, true);
    }
    return Promise.resolve();
  }
}

class Connection {
  /** `hook` (realtime.rs): `hook(0)` → Promise of auth.wsWebSign's data, `hook(1, api, errCode, detail)` → the
   * error for onError, `hook(2, value)` → the value decoded as get() decodes it. */
  constructor(env, hook) {
    Object.assign(this, { env, hook, watchers: [], phase: IDLE, generation: 0, failures: 0, everOpen: false, timerTicket: 0 });
  }

  send(frame) {
    try {
      this.socket?.send(JSON.stringify(frame));
    } catch (_) {} // a socket that is no longer open: the reconnect resends what matters
  }

  setTimer(ms) {
    clearTimeout(this.timer);
    const ticket = ++this.timerTicket;
    this.timer = setTimeout(() => ticket === this.timerTicket && this.onTimer(), ms);
  }

  add(watcher) {
    this.watchers.push(watcher);
    if (this.phase === IDLE) this.connect();
    else if (this.phase === OPEN) this.send(watcher.startFrame());
  }

  remove(watcher, sendClose) {
    this.watchers = this.watchers.filter((w) => w !== watcher);
    if (sendClose && this.phase === OPEN) {
      this.send({ watchId: watcher.watchId, requestId: requestId(), msgType: 'CLOSE_WATCH', msgData: null });
    }
    if (!this.watchers.length) {
      // No watcher left: release the socket (the official client closes with 3001).
      clearTimeout(this.timer);
      this.dropSocket();
      this.phase = IDLE;
      this.failures = 0;
    }
  }

  dropSocket() {
    this.generation++;
    try {
      this.socket?.close(1000);
    } catch (_) {}
    this.socket = undefined;
  }

  /** Fetches a sign (through Rust: the session refreshes its token like any call) and opens a socket. */
  connect() {
    const generation = ++this.generation;
    this.phase = CONNECTING;
    this.setTimer(IDLE_MS); // bounds the sign, the opening and LOGIN together
    const current = () => generation === this.generation;
    this.hook(0).then(
      (data) => {
        if (!current()) return;
        let socket;
        try {
          socket = new (socketConstructor())(data.wsUrl || 'wss://tcb-ws.tencentcloudapi.com');
        } catch (error) {
          return this.failAll(INIT_SOCKET_FAIL, String(error.message || error)); // retrying cannot help
        }
        this.socket = socket;
        this.env = data.envId || this.env;
        const msgData = { envId: this.env, accessToken: '', referrer: 'web', sdkVersion: '', dataVersion: '' };
        const exMsgData = { runtime: 'web', signStr: data.signStr, secretVersion: data.secretVersion };
        const login = { requestId: requestId(), msgType: 'LOGIN', msgData, exMsgData };
        this.loginRequest = login.requestId;
        socket.onopen = () => current() && ((this.phase = LOGGING_IN), this.send(login));
        socket.onmessage = (event) => current() && this.onMessage(event.data);
        socket.onclose = (event) => current() && this.lost(CONNECTION_CLOSED, 'the realtime socket closed (code ' + event.code + ')');
        socket.onerror = () => {}; // always followed by close (and unhandled in the ws package, it would throw)
      },
      (error) => current() && this.lost(INIT_SOCKET_FAIL, (error && error.errMsg) || String(error)),
    );
  }

  onMessage(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (_) {
      return;
    }
    this.quiet = false;
    const data = msg.msgData || {};
    if (msg.msgType === 'LOGIN_RES') {
      if (msg.requestId !== this.loginRequest) return;
      if (data.code) return this.relogin('LOGIN ' + data.code + ' - ' + data.message);
      // `failures` is not reset here: a server that accepts LOGIN and then answers nothing would otherwise
      // be reconnected to for ever (each socket dropped for "no answer to PING" before any watcher's
      // INIT_WATCH counts as unanswered). Any later answer resets it, below.
      Object.assign(this, { phase: OPEN, everOpen: true });
      for (const watcher of this.watchers) this.send(watcher.startFrame());
      return this.setTimer(IDLE_MS);
    }
    // The server answers after LOGIN (a refused sign aside): the connection works.
    if (!(msg.msgType === 'ERROR' && SIGN_ERRORS.includes(data.code))) this.failures = 0;
    // By watchId; an ERROR answering a watcher's INIT / REBUILD might carry only its requestId.
    const watcher =
      this.watchers.find((w) => w.watchId === msg.watchId) ||
      this.watchers.find((w) => w.pending !== undefined && w.pending === msg.requestId);
    if (!watcher) {
      if (msg.msgType === 'ERROR' && SIGN_ERRORS.includes(data.code)) this.relogin('the realtime sign was refused');
      return;
    }
    const [frames, snapshots, error, relogin] = watcher.handle(msg);
    for (const frame of frames) this.send(frame);
    for (const snapshot of snapshots) if (!watcher.closed) call(watcher.api, 'onChange', watcher.onChange, snapshot);
    if (error) this.end(watcher, error[0], error[1]);
    if (relogin) this.relogin('the realtime sign was refused');
  }

  /** Ends one watcher with onError (closed first, so the callback may call close()). */
  end(watcher, code, detail) {
    if (watcher.closed) return;
    watcher.closed = true;
    this.remove(watcher, true);
    call(watcher.api, 'onError', watcher.onError, this.hook(1, watcher.api, code, detail));
  }

  failAll(code, detail) {
    for (const watcher of this.watchers.slice()) this.end(watcher, code, detail);
  }

  /** A sign refused or expired: a new socket with a fresh sign. */
  relogin(detail) {
    this.dropSocket();
    this.lost(INIT_SOCKET_FAIL, detail);
  }

  /** The socket (or the attempt) is gone: reconnect after a jittered backoff, or end every watcher. */
  lost(code, detail) {
    this.generation++;
    this.socket = undefined;
    if (!this.watchers.length) {
      this.phase = IDLE;
      return clearTimeout(this.timer);
    }
    this.phase = BACKOFF;
    if (++this.failures > MAX_RECONNECTS) return this.failAll(this.everOpen ? CONNECTION_CLOSED : code, detail);
    this.setTimer(reconnectDelay(this.failures, Math.random()));
  }

  onTimer() {
    if (this.phase === BACKOFF) return this.connect();
    if (this.phase === CONNECTING || this.phase === LOGGING_IN) {
      this.dropSocket();
      return this.lost(INIT_SOCKET_FAIL, 'the realtime socket did not log in in time');
    }
    if (this.phase !== OPEN) return;
    if (this.quiet) {
      // Nothing at all from the server for two idle periods: the socket is dead.
      this.dropSocket();
      return this.lost(CONNECTION_CLOSED, 'no answer to PING');
    }
    this.quiet = true;
    this.send({ requestId: requestId(), msgType: 'PING', msgData: null });
    for (const watcher of this.watchers.slice()) {
      const frame = watcher.idleFrame();
      if (frame && frame.fail) this.end(watcher, ...frame.fail);
      else if (frame) this.send(frame);
    }
    if (this.phase === OPEN) this.setTimer(IDLE_MS);
  }
}

/** The connection of one session (realtime.rs keeps one per session). */
export function createConnection(env, hook) {
  return new Connection(env, hook);
}

/**
 * Starts a watcher: `spec` is the JSON text of INIT_WATCH's `{ collName, query, limit?, orderBy? }` (built by
 * realtime.rs in the official key order). Returns the listener `{ close() }`.
 */
export function startWatch(connection, api, spec, onChange, onError) {
  const watcher = new Watcher(connection, api, JSON.parse(spec), onChange, onError);
  connection.add(watcher);
  return { close: () => watcher.close() };
}
