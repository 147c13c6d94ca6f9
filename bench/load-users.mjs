// The simulated users of bench/load.mjs, shared with js-tests/crash-under-load.test.mjs (which kills the
// emulator under this same load). Raw HTTP and WebSocket over loopback, no SDK: each user signs in
// anonymously on its own device and loops over the operation mix until told to stop. Every user remembers
// what the emulator acknowledged (`acked` document ids, `increments` per id) so a test can check it later.
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { requireFromJsTests } from './lib.mjs';

const REQUEST_TIMEOUT_MS = 30_000;

/** A keep-alive HTTP client: `request`, and `web` for the /web envelope of one env. */
export function loadClient(base, env, { maxSockets = 512 } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const request = (url, { method = 'POST', headers = {}, body } = {}) =>
    new Promise((resolve, reject) => {
      const req = http.request(url, { method, agent, headers: { ...headers, 'content-length': body ? Buffer.byteLength(body) : 0 }, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(body);
    });
  const web = async (token, body) => {
    const answer = await request(`${base}/web?env=${env}`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, env, dataVersion: '2020-01-10', access_token: token }),
    });
    const json = JSON.parse(answer.text);
    if (answer.status !== 200 || json.code) throw new Error(`${body.action}: HTTP ${answer.status} ${json.code ?? ''} ${json.message ?? ''}`);
    return json;
  };
  return { base, env, request, web, destroy: () => agent.destroy() };
}

/** Signs in `count` users (in batches of 100); each starts with no acknowledged writes. */
export async function signInUsers(client, count) {
  const users = [];
  for (let start = 0; start < count; start += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, count - start) }, async (_, i) => {
        const res = await client.request(`${client.base}/auth/v1/signin/anonymously?client_id=${client.env}`, {
          headers: { 'content-type': 'application/json', 'x-device-id': randomUUID().replaceAll('-', '') },
          body: '{}',
        });
        const token = JSON.parse(res.text).access_token;
        if (!token) throw new Error(`sign-in: HTTP ${res.status} ${res.text.slice(0, 200)}`);
        return { index: start + i, token, ids: [], acked: [], increments: new Map(), watch: null };
      }),
    );
    users.push(...batch);
  }
  return users;
}

/**
 * Opens a watch of the user's own documents in `collection` (a WebSocket of its own: wsWebSign, LOGIN,
 * INIT_WATCH on `{ owner: index }`). Each NEXT_EVENT that follows one of the user's writes records the
 * commit-to-event latency (write request sent → event received) as op `watch event`.
 */
export async function openWatch(client, user, collection, record) {
  const { WebSocket } = requireFromJsTests('ws');
  const sign = (await client.web(user.token, { action: 'auth.wsWebSign', runtime: 'web' })).data;
  const socket = new WebSocket(sign.wsUrl);
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const watch = { socket, events: 0, writeSentAt: 0, closed: false };
  const pending = new Map();
  socket.on('error', () => {}); // a dropped socket ends the watch; the load goes on
  socket.on('close', () => {
    watch.closed = true;
    for (const reject of pending.values()) reject(new Error('watch socket closed'));
    pending.clear();
  });
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    const waiter = pending.get(frame.requestId);
    if (waiter && frame.msgType !== 'NEXT_EVENT') {
      pending.delete(frame.requestId);
      waiter(frame);
    } else if (frame.msgType === 'NEXT_EVENT') {
      watch.events += frame.msgData?.events?.length ?? 1;
      if (watch.writeSentAt) {
        record('watch event', performance.now() - watch.writeSentAt);
        watch.writeSentAt = 0;
      }
    }
  });
  let next = 0;
  const request = (frame) =>
    new Promise((resolve, reject) => {
      const requestId = `r${++next}`;
      pending.set(requestId, (answer) => (answer.msgType === 'ERROR' ? reject(new Error(`${frame.msgType}: ${JSON.stringify(answer.msgData)}`)) : resolve(answer)));
      socket.send(JSON.stringify({ ...frame, requestId }));
    });
  await request({ msgType: 'LOGIN', msgData: { envId: client.env }, exMsgData: { runtime: 'web', signStr: sign.signStr, secretVersion: 1 } });
  await request({ watchId: `u${user.index}`, msgType: 'INIT_WATCH', msgData: { envId: client.env, collName: collection, query: JSON.stringify({ owner: user.index }) } });
  user.watch = watch;
  return watch;
}

/**
 * The operation mix: callFunction `echo` 30%, read (a query of the user's own documents) 30%, write 30%
 * (add, or `$inc` one of its documents), upload (metadata + 4 KiB PUT) 10%.
 */
export function loadOps(client, collection) {
  const payload = randomBytes(4096);
  const ops = {
    async callFunction(user) {
      const answer = await client.web(user.token, { action: 'functions.invokeFunction', function_name: 'echo', request_data: JSON.stringify({ n: user.index }) });
      if (JSON.parse(answer.data.response_data).data.n !== user.index) throw new Error('callFunction: wrong echo');
    },
    async read(user) {
      await client.web(user.token, { action: 'database.queryDocument', collectionName: collection, queryType: 'WHERE', query: { owner: user.index }, limit: 10 });
    },
    async write(user) {
      if (user.watch && !user.watch.closed) user.watch.writeSentAt = performance.now();
      if (user.ids.length && Math.random() < 0.5) {
        const id = user.ids[Math.floor(Math.random() * user.ids.length)];
        await client.web(user.token, { action: 'database.updateDocument', collectionName: collection, query: { _id: id }, queryType: 'DOC', data: { $inc: { n: 1 } }, merge: true });
        user.increments.set(id, (user.increments.get(id) ?? 0) + 1);
      } else {
        const answer = await client.web(user.token, { action: 'database.addDocument', collectionName: collection, data: { owner: user.index, n: 0, at: { $date: Date.now() } } });
        user.acked.push(answer.data._id);
        if (user.ids.length < 20) user.ids.push(answer.data._id);
      }
    },
    async upload(user) {
      const path = `load/${user.index}/${randomUUID()}.bin`;
      const meta = (await client.web(user.token, { action: 'storage.getUploadMetadata', path, method: 'put' })).data;
      const res = await client.request(meta.url, {
        method: 'PUT',
        headers: { authorization: meta.authorization, 'x-cos-meta-fileid': meta.cosFileId, 'x-cos-security-token': meta.token, 'content-type': 'application/octet-stream' },
        body: payload,
      });
      if (res.status >= 300) throw new Error(`upload PUT: HTTP ${res.status}`);
    },
  };
  const pick = () => {
    const r = Math.random();
    return r < 0.3 ? 'callFunction' : r < 0.6 ? 'read' : r < 0.9 ? 'write' : 'upload';
  };
  return { ops, pick };
}

/**
 * Runs every user's loop (staggered start over `staggerMs`, 0-100 ms think time) while `running()` is true;
 * `record(op, ms, error)` gets each operation's client-side latency or error.
 */
export async function runUsers(client, users, { collection, running, record, staggerMs = 1000 }) {
  const { ops, pick } = loadOps(client, collection);
  await Promise.all(
    users.map(async (user) => {
      await new Promise((r) => setTimeout(r, Math.random() * staggerMs));
      while (running()) {
        const op = pick();
        const t0 = performance.now();
        try {
          await ops[op](user);
          record(op, performance.now() - t0);
        } catch (error) {
          record(op, 0, error);
        }
        await new Promise((r) => setTimeout(r, Math.random() * 100));
      }
    }),
  );
}
