// Realtime watch() end to end against cloud-emulator (docs/realtime.md): two clients (two anonymous users)
// — A writes through the SDK and through wx-server-sdk in a function, B watches. B sees add / update /
// remove with the right dataType / queueType / updatedFields / removedFields and `docs`, set() as a replace
// with the whole new document; orderBy + limit
// windows; doc watch; B never sees A's documents of a PRIVATE collection; the emulator drops every socket
// mid-stream while writes continue and the watcher still ends with exactly the committed sequence;
// close() stops events.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cloud } from 'taro-cloud-wasm';
import { memoryStorage } from './helpers/browser-globals.mjs';
import { startEmulator } from './helpers/emulator.mjs';
import { collect } from './helpers/watch-collector.mjs';

const collectWatch = (target) => collect(target, { noErrors: true });

const ENV = 'watch-env';
let emulator;
let adminToken;
let functionsDir;
let dbA;
let dbB;

async function admin(method, path, body, target = { url: emulator?.url, token: adminToken }) {
  const res = await fetch(`${target.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', 'x-admin-token': target.token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${path}: ${JSON.stringify(json)}`);
  return json;
}

before(async () => {
  // A function that writes with wx-server-sdk (admin rights), as a second writer.
  functionsDir = mkdtempSync(join(tmpdir(), 'watch-functions-'));
  mkdirSync(join(functionsDir, 'writeTodo'));
  writeFileSync(
    join(functionsDir, 'writeTodo', 'index.js'),
    `const cloud = require('wx-server-sdk');
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });
exports.main = async (event) => {
  const db = cloud.database();
  await db.collection(event.collection).doc(event.id).update({ data: event.data });
  return { ok: true };
};`,
  );
  emulator = await startEmulator({ functions: functionsDir });
  adminToken = await adminTokenOf(emulator);
  for (const [name, rules] of [
    ['todos', 'READONLY'],
    ['ranked', 'READONLY'],
    ['counters', 'READONLY'],
    ['diaries', 'PRIVATE'],
  ]) {
    await admin('POST', '/admin/v1/database/collections', { env: ENV, name, rules });
  }
  cloud.init({ env: ENV, endpoint: emulator.url, persistence: 'none' });
  dbA = cloud.database();
  // Another Cloud whose credentials live elsewhere (a Web Storage, not A's memory store) is another
  // anonymous user with its own session and socket.
  globalThis.localStorage = memoryStorage();
  const other = new cloud.Cloud({ resourceEnv: ENV, endpoint: emulator.url, persistence: 'local' });
  await other.init();
  dbB = other.database();
});

after(async () => {
  await emulator?.stop();
  if (functionsDir) rmSync(functionsDir, { recursive: true, force: true });
});

/** The per-run admin token an emulator prints on stderr. */
async function adminTokenOf(started) {
  for (let i = 0; i < 100 && !/admin token: \S+/.test(started.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  return /admin token: (\S+)/.exec(started.stderr())[1];
}

const changesOf = (snapshots) => snapshots.flatMap((s) => s.docChanges);
const strip = (doc) => {
  const { _openid, ...rest } = doc;
  return rest;
};

test('B sees A\'s add / update / remove (SDK and wx-server-sdk) with the right fields and docs', async () => {
  const todos = dbA.collection('todos');
  const seeded = await todos.add({ data: { title: 'seed', done: false, tags: { a: 1, b: 2 } } });
  const w = collectWatch(dbB.collection('todos').where({ done: false }));
  await w.until(() => w.snapshots.length === 1, 'init');
  assert.equal(w.snapshots[0].type, 'init');
  assert.deepEqual(w.snapshots[0].docs.map(strip), [{ _id: seeded._id, title: 'seed', done: false, tags: { a: 1, b: 2 } }]);

  const due = new Date(Date.UTC(2026, 4, 1));
  const added = await todos.add({ data: { title: 'second', done: false, due } });
  await w.until(() => w.snapshots.length === 2, 'add');
  const [add] = w.snapshots[1].docChanges;
  assert.deepEqual([add.dataType, add.queueType, add.docId], ['add', 'enqueue', added._id]);
  assert.ok(add.doc.due instanceof Date && add.doc.due.getTime() === due.getTime(), 'Date decoded');
  assert.equal(w.snapshots[1].docs.length, 2);

  const _ = dbA.command;
  await todos.doc(seeded._id).update({ data: { title: 'seed!', 'tags.b': _.remove(), 'tags.c': 3 } });
  await w.until(() => w.snapshots.length === 3, 'update');
  const [update] = w.snapshots[2].docChanges;
  assert.deepEqual([update.dataType, update.queueType, update.docId], ['update', 'update', seeded._id]);
  assert.deepEqual(update.updatedFields, { title: 'seed!', 'tags.c': 3 });
  assert.deepEqual(update.removedFields, ['tags.b']);
  assert.deepEqual(strip(update.doc), { _id: seeded._id, title: 'seed!', done: false, tags: { a: 1, c: 3 } });

  // wx-server-sdk inside a function is a writer too; leaving the `where` is a dequeue.
  await cloud.callFunction({ name: 'writeTodo', data: { collection: 'todos', id: added._id, data: { done: true } } });
  await w.until(() => w.snapshots.length === 4, 'update from the function');
  const [leave] = w.snapshots[3].docChanges;
  assert.deepEqual([leave.dataType, leave.queueType, leave.docId], ['update', 'dequeue', added._id]);
  assert.deepEqual(w.snapshots[3].docs.map((d) => d._id), [seeded._id]);

  await todos.doc(seeded._id).remove();
  await w.until(() => w.snapshots.length === 5, 'remove');
  const [remove] = w.snapshots[4].docChanges;
  assert.deepEqual([remove.dataType, remove.queueType, remove.docId], ['remove', 'dequeue', seeded._id]);
  assert.equal(remove.doc.title, 'seed!', 'the removed document as it was');
  assert.deepEqual(w.snapshots[4].docs, []);
  assert.deepEqual(w.snapshots.map((s) => s.id), [1, 2, 3, 4, 5]);
  await w.listener.close();
});

test('orderBy + limit: the window follows the server with enqueue / dequeue, docs always equal get()', async () => {
  const ranked = dbA.collection('ranked');
  for (const n of [5, 1, 9]) await ranked.add({ data: { n } });
  const w = collectWatch(dbB.collection('ranked').orderBy('n', 'desc').limit(3));
  await w.until(() => w.snapshots.length === 1, 'init');
  assert.deepEqual(w.last().docs.map((d) => d.n), [9, 5, 1]);
  for (const n of [7, 0, 10]) await ranked.add({ data: { n } });
  const expected = (await dbB.collection('ranked').orderBy('n', 'desc').limit(3).get()).data.map((d) => d.n);
  assert.deepEqual(expected, [10, 9, 7]);
  await w.until(() => JSON.stringify(w.last().docs.map((d) => d.n)) === JSON.stringify(expected), 'the final window');
  const kinds = new Set(changesOf(w.snapshots.slice(1)).map((c) => `${c.dataType}/${c.queueType}`));
  assert.ok(kinds.has('add/enqueue') && kinds.has('limit/dequeue'), [...kinds].join(' '));
  await w.listener.close();
});

test('doc watch sees the updates and the removal of one document', async () => {
  const { _id } = await dbA.collection('todos').add({ data: { title: 'one', n: 1 } });
  await dbA.collection('todos').add({ data: { title: 'other', n: 1 } });
  const w = collectWatch(dbB.collection('todos').doc(_id));
  await w.until(() => w.snapshots.length === 1, 'init');
  assert.deepEqual(w.last().docs.map((d) => d._id), [_id]);
  await dbA.collection('todos').doc(_id).update({ data: { n: dbA.command.inc(1) } });
  await w.until(() => w.snapshots.length === 2, 'update');
  assert.equal(w.last().docs[0].n, 2);
  assert.deepEqual(w.last().docChanges[0].updatedFields, { n: 2 });
  await dbA.collection('todos').doc(_id).remove();
  await w.until(() => w.snapshots.length === 3, 'remove');
  assert.deepEqual(w.last().docs, []);
  await w.listener.close();
});

test('set() on a watched document is a replace carrying the whole new document; update() stays an update', async () => {
  const todos = dbA.collection('todos');
  const { _id } = await todos.add({ data: { title: 'to replace', done: false, n: 1, tags: { a: 1 } } });
  const w = collectWatch(dbB.collection('todos').where({ title: dbB.command.in(['to replace', 'replaced']) }));
  await w.until(() => w.snapshots.length === 1, 'init');
  const due = new Date(Date.UTC(2026, 5, 1));
  await todos.doc(_id).set({ data: { title: 'replaced', done: false, due } });
  await w.until(() => w.snapshots.length === 2, 'replace');
  const [replace] = w.snapshots[1].docChanges;
  assert.deepEqual([replace.dataType, replace.queueType, replace.docId], ['replace', 'update', _id]);
  assert.equal(replace.updatedFields, undefined);
  assert.equal(replace.removedFields, undefined);
  assert.ok(replace.doc.due instanceof Date && replace.doc.due.getTime() === due.getTime(), 'Date decoded');
  // The fields the set() left out are gone from the document and from `docs`.
  assert.deepEqual(strip(replace.doc), { _id, title: 'replaced', done: false, due });
  assert.deepEqual(w.snapshots[1].docs.map(strip), [{ _id, title: 'replaced', done: false, due }]);
  await todos.doc(_id).update({ data: { n: 2 } });
  await w.until(() => w.snapshots.length === 3, 'update');
  const [update] = w.snapshots[2].docChanges;
  assert.deepEqual([update.dataType, update.queueType], ['update', 'update']);
  assert.deepEqual(update.updatedFields, { n: 2 });
  assert.deepEqual(w.snapshots[2].docs.map(strip), [{ _id, title: 'replaced', done: false, due, n: 2 }]);
  await w.listener.close();
});

test('permissions: B never sees A\'s documents of a PRIVATE collection, even watching all of it', async () => {
  await dbA.collection('diaries').add({ data: { text: 'A private 1' } });
  const w = collectWatch(dbB.collection('diaries'));
  await w.until(() => w.snapshots.length === 1, 'init');
  assert.deepEqual(w.last().docs, []);
  await dbA.collection('diaries').add({ data: { text: 'A private 2' } });
  const own = await dbB.collection('diaries').add({ data: { text: 'B own' } });
  await w.until(() => w.snapshots.length === 2, 'B\'s own add');
  assert.deepEqual(w.last().docs.map((d) => d._id), [own._id]);
  assert.ok(changesOf(w.snapshots).every((c) => c.doc?.text !== 'A private 2'));
  await w.listener.close();
});

test('the emulator drops every socket mid-stream while writes continue: exactly the committed sequence', async () => {
  const counters = dbA.collection('counters');
  const { _id } = await counters.add({ data: { n: 0 } });
  const docWatch = collectWatch(dbB.collection('counters').doc(_id));
  const queryWatch = collectWatch(dbB.collection('counters').where({ n: dbB.command.gte(0) }));
  await docWatch.until(() => docWatch.snapshots.length === 1 && queryWatch.snapshots.length === 1, 'init');
  const WRITES = 40;
  let dropped = 0;
  for (let n = 1; n <= WRITES; n++) {
    await counters.doc(_id).update({ data: { n } });
    if (n % 10 === 5) {
      // Drop while B is connected (not while it is still reconnecting from the last drop).
      for (let i = 0; i < 200 && (await admin('GET', '/admin/v1/realtime/stats')).sockets < 1; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      dropped += (await admin('POST', '/admin/v1/realtime/drop-connections')).dropped;
    }
  }
  assert.ok(dropped >= 4, `sockets dropped: ${dropped}`);
  for (const w of [docWatch, queryWatch]) {
    await w.until(() => w.last().docs[0]?.n === WRITES, 'the last write', 30000);
    const seen = changesOf(w.snapshots.slice(1))
      .filter((c) => c.queueType === 'update')
      .map((c) => c.doc.n);
    assert.deepEqual(seen, Array.from({ length: WRITES }, (_, i) => i + 1), 'every write once, in order');
    const ids = w.snapshots.map((s) => s.id);
    assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => ids[0] + i), 'consecutive event ids');
    await w.listener.close();
  }
});

test('close() stops the events; a second close() is a no-op', async () => {
  const w = collectWatch(dbB.collection('todos'));
  await w.until(() => w.snapshots.length === 1, 'init');
  await dbA.collection('todos').add({ data: { title: 'seen' } });
  await w.until(() => w.snapshots.length === 2, 'add');
  assert.equal(await w.listener.close(), undefined);
  await dbA.collection('todos').add({ data: { title: 'not seen' } });
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(w.snapshots.length, 2);
  assert.equal(await w.listener.close(), undefined);
  const stats = await admin('GET', '/admin/v1/realtime/stats');
  assert.equal(stats.sessions, 0, 'no watch left on the server');
});

test('an access token that expired while watching is refreshed like any call when the socket has to come back', async () => {
  const short = await startEmulator({ functions: functionsDir, tokenTtl: 2 });
  try {
    const target = { url: short.url, token: await adminTokenOf(short) };
    await admin('POST', '/admin/v1/database/collections', { env: 'watch-ttl', name: 'todos', rules: 'READONLY' }, target);
    const writer = new cloud.Cloud({ resourceEnv: 'watch-ttl', endpoint: short.url, persistence: 'none' });
    const watcher = new cloud.Cloud({ resourceEnv: 'watch-ttl', endpoint: short.url, persistence: 'local' });
    await writer.init();
    await watcher.init();
    const w = collectWatch(watcher.database().collection('todos'));
    await w.until(() => w.snapshots.length === 1, 'init');
    await new Promise((resolve) => setTimeout(resolve, 2500)); // both access tokens expire
    // The socket goes away after the expiry: its new sign needs a valid token, i.e. a refresh.
    assert.ok((await admin('POST', '/admin/v1/realtime/drop-connections', undefined, target)).dropped >= 1);
    await writer.database().collection('todos').add({ data: { title: 'after expiry' } });
    await w.until(() => w.snapshots.length === 2, 'the write after the expiry', 20000);
    assert.equal(w.last().docChanges[0].doc.title, 'after expiry');
    assert.deepEqual(w.snapshots.map((s) => s.id), [1, 2]);
    await w.listener.close();
  } finally {
    await short.stop();
  }
});
