// Conformance of realtime watch: the OFFICIAL @cloudbase/js-sdk 3.7.0 browser build (CLOUD_API mode), unmodified,
// runs `collection.where(…).watch()`, `orderBy().limit().watch()` and `doc(id).watch()` against cloud-emulator over
// a real WebSocket (the `ws` package stands in for the browser's WebSocket on Node 20). User B watches; user A
// writes over the /web protocol and through wx-server-sdk in a cloud function. Checks: dataType / queueType /
// updatedFields / removedFields / docs of every snapshot, set() as `replace` with the new document, permissions
// (B never sees A's private documents), every socket dropped mid-stream while writes continue (the watcher ends
// with exactly the committed sequence), and `close()` stopping the events.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket as NodeWebSocket } from 'ws';
import { installBrowserGlobals } from './helpers/browser-globals.mjs';
import { JS_TESTS_DIR, startEmulator } from './helpers/emulator.mjs';

const ENV = 'watch-conformance-env';
let emulator;
let adminToken;
let db; // user B: the official SDK
let alice; // user A: an access token for raw /web calls
const sdkLogs = [];

/** The official realtime client logs every step (and its reconnect attempts once the emulator has stopped): keep
 * its output out of the test report for the whole file. */
function quietConsole() {
  const original = { log: console.log, warn: console.warn, error: console.error };
  for (const level of Object.keys(original)) {
    console[level] = (...args) => {
      sdkLogs.push([level, ...args]);
      if (sdkLogs.length > 2000) sdkLogs.splice(0, 1000);
    };
  }
}

async function web(body, token = alice) {
  const response = await fetch(`${emulator.url}/web?env=${ENV}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ dataVersion: '2020-01-10', env: ENV, access_token: token, ...body }),
  });
  const answer = await response.json();
  assert.equal(answer.code, undefined, `${body.action}: ${JSON.stringify(answer)}`);
  return answer;
}

async function signIn(device) {
  const response = await fetch(`${emulator.url}/auth/v1/signin/anonymously?client_id=${ENV}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-device-id': device },
    body: '{}',
  });
  return (await response.json()).access_token;
}

async function admin(path, body) {
  const response = await fetch(`${emulator.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
    body: JSON.stringify(body ?? {}),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return response.json();
}

const createCollection = (name, rules) => admin('/admin/v1/database/collections', { env: ENV, name, rules });
const add = async (collectionName, data) => (await web({ action: 'database.addDocument', collectionName, data })).data._id;
const update = (collectionName, id, data) =>
  web({ action: 'database.updateDocument', collectionName, queryType: 'DOC', query: { _id: id }, data, merge: true });
const remove = (collectionName, id) =>
  web({ action: 'database.deleteDocument', collectionName, queryType: 'DOC', query: { _id: id } });
async function inFunction(event) {
  const answer = await web({
    action: 'functions.invokeFunction',
    function_name: 'watchWrite',
    request_data: JSON.stringify(event),
  });
  return JSON.parse(answer.data.response_data);
}

/** Starts a watch; `snapshots` fills as they arrive; `next(n)` waits for the n-th (0-based). */
function watch(query) {
  const snapshots = [];
  const errors = [];
  const waiters = [];
  const listener = query.watch({
    onChange: (snapshot) => {
      snapshots.push({
        id: snapshot.id,
        type: snapshot.type,
        docs: snapshot.docs,
        docChanges: snapshot.docChanges,
      });
      for (const waiter of [...waiters]) waiter();
    },
    onError: (error) => {
      errors.push(error);
      for (const waiter of [...waiters]) waiter();
    },
  });
  const until = (predicate, what, timeoutMs = 15_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (errors.length) {
          cleanup();
          reject(new Error(`watch failed: ${errors.map((e) => e.errMsg ?? e.message ?? JSON.stringify(e)).join('; ')}`));
        } else if (predicate()) {
          cleanup();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; snapshots: ${JSON.stringify(snapshots)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.splice(waiters.indexOf(check), 1);
      };
      waiters.push(check);
      check();
    });
  return {
    listener,
    snapshots,
    errors,
    until,
    next: async (index) => {
      await until(() => snapshots.length > index, `snapshot #${index}`);
      return snapshots[index];
    },
  };
}

const changeKinds = (snapshot) => snapshot.docChanges.map((c) => [c.dataType, c.queueType, c.docId]);
const strip = (doc) => {
  const { _openid, ...rest } = doc;
  return rest;
};

before(async () => {
  emulator = await startEmulator();
  for (let tries = 0; tries < 100 && !adminToken; tries++) {
    adminToken = /admin token: (\S+)/.exec(emulator.stderr())?.[1];
    if (!adminToken) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(adminToken, 'the emulator prints its admin token');
  alice = await signIn('watch-conformance-alice-000000000001');
  quietConsole();
  // Node 20 has no WebSocket global; the SDK uses the browser one.
  globalThis.WebSocket ??= NodeWebSocket;
  installBrowserGlobals({ origin: `${emulator.url}/` });
  const require = createRequire(join(JS_TESTS_DIR, 'package.json'));
  const sdk = require(join(JS_TESTS_DIR, 'node_modules', '@cloudbase', 'js-sdk', 'dist', 'index.cjs.js'));
  const cloudbase = sdk.default ?? sdk;
  const app = cloudbase.init({ env: ENV, endPointMode: 'CLOUD_API' });
  app.registerHost(`127.0.0.1:${emulator.port}`, 'http');
  await app.auth().signInAnonymously();
  db = app.database();
});

after(async () => {
  await emulator?.stop();
  // The official client re-arms its 10 s CHECK_LAST timer forever once a watch is closed (sendACK reschedules
  // itself whenever the watch is not ACTIVE, virtual-websocket-client.ts), so this process would never exit on
  // its own. Exit (with the test runner's exit code) once the report is written.
  setTimeout(() => process.exit(), 1000).unref();
});

test('the official SDK watch sees adds, updates and removes from clients and functions', async () => {
  await createCollection('todos', 'READONLY');
  const first = await add('todos', { title: 'first', done: false, n: 1, due: { $date: 1700000000000 } });
  await add('todos', { title: 'finished', done: true, n: 0 });
  const w = watch(db.collection('todos').where({ done: false }));

  const init = await w.next(0);
  assert.equal(init.docs.length, 1);
  assert.deepEqual(changeKinds(init), [['init', 'init', first]]);
  assert.equal(init.docs[0].title, 'first');
  assert.equal(init.docs[0].due.$date ?? init.docs[0].due, 1700000000000);

  await update('todos', first, { $set: { n: 2, 'tags': ['a'] }, $unset: { due: '' } });
  const updated = await w.next(1);
  assert.deepEqual(changeKinds(updated), [['update', 'update', first]]);
  assert.deepEqual(updated.docChanges[0].updatedFields, { n: 2, tags: ['a'] });
  assert.deepEqual(updated.docChanges[0].removedFields, ['due']);
  assert.equal(updated.id, init.id + 1);
  assert.deepEqual(strip(updated.docs[0]), { _id: first, title: 'first', done: false, n: 2, tags: ['a'] });

  // A write inside a cloud function (wx-server-sdk) reaches the watcher.
  const fromFunction = await inFunction({ op: 'add', collection: 'todos', data: { title: 'from fn', done: false } });
  const added = await w.next(2);
  assert.deepEqual(changeKinds(added), [['add', 'enqueue', fromFunction]]);
  assert.equal(added.docChanges[0].doc.title, 'from fn');
  assert.deepEqual(added.docs.map((d) => d._id).sort(), [first, fromFunction].sort());

  await inFunction({ op: 'update', collection: 'todos', id: fromFunction, data: { done: true } });
  const left = await w.next(3);
  assert.deepEqual(changeKinds(left), [['update', 'dequeue', fromFunction]]);
  assert.deepEqual(left.docs.map((d) => d._id), [first]);

  await remove('todos', first);
  const removed = await w.next(4);
  assert.deepEqual(changeKinds(removed), [['remove', 'dequeue', first]]);
  assert.deepEqual(removed.docs, []);

  // close() stops the events.
  await w.listener.close();
  await add('todos', { title: 'after close', done: false });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(w.snapshots.length, 5);
  assert.deepEqual(w.errors, []);
});

test('orderBy + limit windows and doc watches', async () => {
  await createCollection('scores', 'READONLY');
  const ids = {};
  for (const n of [5, 3, 9, 7]) ids[n] = await add('scores', { n });
  const top = watch(db.collection('scores').where({}).orderBy('n', 'desc').limit(2));
  const one = watch(db.collection('scores').doc(ids[3]));

  const init = await top.next(0);
  assert.deepEqual(init.docs.map((d) => d.n), [9, 7]);
  const docInit = await one.next(0);
  assert.deepEqual(docInit.docs.map((d) => d.n), [3]);

  ids[10] = await add('scores', { n: 10 });
  const pushed = await top.next(1);
  assert.deepEqual(changeKinds(pushed), [['limit', 'dequeue', ids[7]], ['add', 'enqueue', ids[10]]]);
  assert.deepEqual(pushed.docs.map((d) => d.n).sort((a, b) => b - a), [10, 9]);

  await remove('scores', ids[9]);
  const refilled = await top.next(2);
  assert.deepEqual(changeKinds(refilled), [['remove', 'dequeue', ids[9]], ['limit', 'enqueue', ids[7]]]);
  assert.deepEqual(refilled.docs.map((d) => d.n).sort((a, b) => b - a), [10, 7]);

  // The doc watch sees its document only.
  await update('scores', ids[3], { $inc: { n: 1 } });
  const docChange = await one.next(1);
  assert.deepEqual(changeKinds(docChange), [['update', 'update', ids[3]]]);
  assert.deepEqual(docChange.docs.map((d) => d.n), [4]);
  await remove('scores', ids[3]);
  const docGone = await one.next(2);
  assert.deepEqual(changeKinds(docGone), [['remove', 'dequeue', ids[3]]]);
  assert.equal(one.snapshots.length, 3);
  assert.equal(top.snapshots.length, 3);
  await Promise.all([top.listener.close(), one.listener.close()]);
});

test("B never sees A's private documents, even through a query that matches them", async () => {
  await createCollection('notes', 'PRIVATE');
  await add('notes', { text: 'alice secret', shared: true });
  const w = watch(db.collection('notes').where({ shared: true }));
  const init = await w.next(0);
  assert.deepEqual(init.docs, []);
  await add('notes', { text: 'alice again', shared: true });
  // B's own document shows; A's never do.
  const mine = await db.collection('notes').add({ text: 'bob', shared: true });
  const snapshot = await w.next(1);
  assert.deepEqual(changeKinds(snapshot), [['add', 'enqueue', mine.id]]);
  assert.deepEqual(snapshot.docs.map((d) => d.text), ['bob']);
  await add('notes', { text: 'alice third', shared: true });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(w.snapshots.length, 2);
  assert.ok(w.snapshots.every((s) => s.docs.every((d) => d.text === 'bob')));
  await w.listener.close();
});

test('every socket dropped mid-stream while writes continue: the watcher ends with exactly the committed sequence', async () => {
  await createCollection('counter', 'READONLY');
  const id = await add('counter', { n: 0 });
  const w = watch(db.collection('counter').where({}));
  await w.next(0);
  const total = 40;
  const writes = (async () => {
    for (let n = 1; n <= total; n++) {
      await update('counter', id, { $set: { n } });
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  for (const afterSnapshots of [5, 15]) {
    await w.until(() => w.snapshots.length > afterSnapshots, `${afterSnapshots} snapshots`);
    const { dropped } = await admin('/admin/v1/realtime/drop-connections');
    assert.ok(dropped >= 1);
  }
  await writes;
  await w.until(() => w.snapshots.at(-1).docs[0]?.n === total, `n = ${total}`, 30_000);
  const seen = w.snapshots.map((s) => s.docs[0].n);
  assert.deepEqual(seen, Array.from({ length: total + 1 }, (_, n) => n), 'each committed value once, in order');
  const eventIds = w.snapshots.map((s) => s.id);
  assert.deepEqual(eventIds, Array.from({ length: total + 1 }, (_, k) => eventIds[0] + k));
  assert.deepEqual(w.errors, []);
  await w.listener.close();
});

test('set() on a watched document reaches the official SDK as a replace with the whole new document', async () => {
  await createCollection('sets', 'READONLY');
  const byAlice = await add('sets', { title: 'alice', kept: true, n: 1 });
  const w = watch(db.collection('sets').where({ kept: true }));
  const init = await w.next(0);
  assert.deepEqual(changeKinds(init), [['init', 'init', byAlice]]);

  // doc(id).set({data}) over /web: updateDocument with merge: false.
  const set = (id, data) =>
    web({ action: 'database.updateDocument', collectionName: 'sets', queryType: 'DOC', query: { _id: id }, data, merge: false });
  await set(byAlice, { title: 'alice replaced', kept: true, tags: ['x'] });
  const replaced = await w.next(1);
  assert.deepEqual(changeKinds(replaced), [['replace', 'update', byAlice]]);
  assert.deepEqual(strip(replaced.docChanges[0].doc), { _id: byAlice, title: 'alice replaced', kept: true, tags: ['x'] });
  assert.deepEqual(replaced.docs.map(strip), [{ _id: byAlice, title: 'alice replaced', kept: true, tags: ['x'] }]);

  // The official SDK's own set() on B's document.
  const { id: byBob } = await db.collection('sets').add({ title: 'bob', kept: true, n: 1 });
  const added = await w.next(2);
  assert.deepEqual(changeKinds(added), [['add', 'enqueue', byBob]]);
  await db.collection('sets').doc(byBob).set({ title: 'bob replaced', kept: true });
  const bobReplaced = await w.next(3);
  assert.deepEqual(changeKinds(bobReplaced), [['replace', 'update', byBob]]);
  assert.deepEqual(strip(bobReplaced.docChanges[0].doc), { _id: byBob, title: 'bob replaced', kept: true });
  const docs = Object.fromEntries(bobReplaced.docs.map((d) => [d._id, strip(d)]));
  assert.deepEqual(docs[byBob], { _id: byBob, title: 'bob replaced', kept: true });
  assert.equal(bobReplaced.docs.length, 2);

  // Update operators stay an update with the changed fields.
  await update('sets', byAlice, { $set: { n: 2 } });
  const updated = await w.next(4);
  assert.deepEqual(changeKinds(updated), [['update', 'update', byAlice]]);
  assert.deepEqual(updated.docChanges[0].updatedFields, { n: 2 });
  assert.deepEqual(w.errors, []);
  await w.listener.close();
});
