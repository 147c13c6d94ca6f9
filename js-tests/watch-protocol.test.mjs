// The SDK's side of the realtime protocol (protocol.md §5.6, captures/ws-capture.jsonl), frame by frame,
// against a scripted server (helpers/realtime-server.mjs): one socket and one LOGIN shared by the watchers
// of a Cloud, INIT_WATCH with the query spec, snapshots in wx's shape, partial updates, event-id gaps
// answered by REBUILD_WATCH, resume after a dropped socket with nothing lost or repeated, close(), and
// onError after the retries. The Node runtime has no global WebSocket here: the `ws` package is found.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { cloud } from 'taro-cloud-wasm';
import { JS_TESTS_DIR, REPO_ROOT, lastJsonLine } from './helpers/emulator.mjs';
import { ev, startRealtimeServer } from './helpers/realtime-server.mjs';
import { collect } from './helpers/watch-collector.mjs';

const ENV = 'rt-env';
let server;
let db;

before(async () => {
  server = await startRealtimeServer();
  cloud.init({ env: ENV, endpoint: server.url, persistence: 'none' });
  db = cloud.database();
});
after(async () => {
  await server?.close();
});

async function initWatch(from = 0) {
  const { msg } = await server.frame((f) => f.msg.msgType === 'INIT_WATCH', { from });
  return msg;
}

function answerInit(init, queryID, currEvent, events) {
  server.push({ watchId: init.watchId, requestId: init.requestId, msgType: 'INIT_EVENT', msgData: { queryID, currEvent, events } });
}

test('two watchers share one socket and one LOGIN; INIT_WATCH carries where/orderBy/limit; init snapshot decodes values', async () => {
  const _ = db.command;
  const first = collect(db.collection('todos').where({ done: false, n: _.gt(0) }).orderBy('n', 'asc').limit(10));
  const init1 = await initWatch();
  assert.deepEqual(init1.msgData, {
    envId: ENV,
    collName: 'todos',
    query: JSON.stringify({ done: false, n: { $gt: 0 } }),
    limit: 10,
    orderBy: { n: 'asc' },
  });
  assert.match(init1.watchId, /^watchid_\d+_0\.\d+$/);
  const login = server.frames.find((f) => f.msg.msgType === 'LOGIN').msg;
  assert.deepEqual(login.msgData, { envId: ENV, accessToken: '', referrer: 'web', sdkVersion: '', dataVersion: '' });
  assert.deepEqual(login.exMsgData, { runtime: 'web', signStr: 'sig-1', secretVersion: 1 });

  const due = { $date: Date.UTC(2026, 0, 2) };
  answerInit(init1, 'q-1', 1, [
    ev(0, 'init', 'init', 'b', { _id: 'b', done: false, n: 2, due }),
    ev(0, 'init', 'init', 'a', { _id: 'a', done: false, n: 1 }),
  ]);
  await first.until(() => first.snapshots.length === 1);
  const [snapshot] = first.snapshots;
  assert.equal(snapshot.type, 'init');
  assert.equal(snapshot.id, 1);
  assert.deepEqual(snapshot.docs.map((d) => d._id), ['a', 'b'], 'docs ordered by n asc');
  assert.ok(snapshot.docs[1].due instanceof Date, 'dates decoded as get() decodes them');
  assert.equal(snapshot.docs[1].due.getTime(), due.$date);
  assert.deepEqual(
    snapshot.docChanges.map((c) => [c.id, c.dataType, c.queueType, c.docId]),
    [
      [1, 'init', 'init', 'b'],
      [1, 'init', 'init', 'a'],
    ],
  );

  const second = collect(db.collection('notes').doc('n1'));
  const init2 = await initWatch(server.frames.indexOf(server.frames.find((f) => f.msg === init1)) + 1);
  assert.equal(init2.msgData.query, '{"_id":"n1"}');
  assert.equal(server.sockets.length, 1, 'one socket');
  assert.equal(server.frames.filter((f) => f.msg.msgType === 'LOGIN').length, 1, 'one LOGIN');
  answerInit(init2, 'q-2', 5, []);
  await second.until(() => second.snapshots.length === 1);
  assert.deepEqual(second.snapshots[0], { id: 5, docChanges: [], docs: [], type: 'init' });

  const beforeClose = server.frames.length;
  await first.listener.close();
  await second.listener.close();
  await server.frame((f) => f.msg.msgType === 'CLOSE_WATCH' && f.msg.watchId === init2.watchId, { from: beforeClose });
  const closes = server.frames.filter((f) => f.msg.msgType === 'CLOSE_WATCH').map((f) => f.msg.watchId);
  assert.deepEqual(closes, [init1.watchId, init2.watchId]);
  assert.equal(await first.listener.close(), undefined, 'close() on a closed watcher is a no-op');
  assert.equal(server.frames.filter((f) => f.msg.msgType === 'CLOSE_WATCH').length, 2);
});

test('partial updates, enqueue/dequeue, gaps answered by REBUILD_WATCH, nothing applied twice', async () => {
  const from = server.frames.length;
  const w = collect(db.collection('todos'));
  const init = await initWatch(from);
  answerInit(init, 'q-3', 1, [ev(0, 'init', 'init', 'a', { _id: 'a', n: 1, tags: { x: 1, y: 2 } })]);
  await w.until(() => w.snapshots.length === 1);
  const next = (currEvent, events, requestId = `srv-${currEvent}`) =>
    server.push({ watchId: init.watchId, requestId, msgType: 'NEXT_EVENT', msgData: { queryID: 'q-3', currEvent, events } });

  next(2, [ev(2, 'update', 'update', 'a', undefined, { UpdatedFields: '{"n":2,"tags.z":3}', removedFields: '["tags.x"]' })]);
  next(3, [ev(3, 'add', 'enqueue', 'b', { _id: 'b', n: 5 })]);
  await w.until(() => w.snapshots.length === 3);
  const update = w.snapshots[1];
  assert.equal(update.type, undefined);
  assert.deepEqual(update.docChanges[0], {
    id: 2,
    dataType: 'update',
    queueType: 'update',
    docId: 'a',
    doc: { _id: 'a', n: 2, tags: { y: 2, z: 3 } },
    updatedFields: { n: 2, 'tags.z': 3 },
    removedFields: ['tags.x'],
  });
  assert.deepEqual(w.snapshots[2].docs, [
    { _id: 'b', n: 5 },
    { _id: 'a', n: 2, tags: { y: 2, z: 3 } },
  ], 'without orderBy: _id descending, as the server orders');

  // Event 4 is lost on the way: 5 arrives, the client asks again from 3.
  const before = server.frames.length;
  next(5, [ev(5, 'remove', 'dequeue', 'a')]);
  const rebuild = (await server.frame((f) => f.msg.msgType === 'REBUILD_WATCH', { from: before })).msg;
  assert.deepEqual(rebuild.msgData, { envId: ENV, collName: 'todos', queryID: 'q-3', eventID: 3 });
  assert.equal(rebuild.watchId, init.watchId);
  next(5, [ev(3, 'add', 'enqueue', 'b', { _id: 'b', n: 5 }), ev(4, 'replace', 'update', 'b', { _id: 'b', n: 6 }), ev(5, 'remove', 'dequeue', 'a')], rebuild.requestId);
  await w.until(() => w.snapshots.length === 5);
  assert.deepEqual(w.snapshots.map((s) => s.id), [1, 2, 3, 4, 5]);
  assert.deepEqual(w.snapshots[4].docs, [{ _id: 'b', n: 6 }]);
  assert.equal(w.snapshots[4].docChanges[0].doc.n, 2, 'a removed document is reported as it was');
  await w.listener.close();
});

test('a dropped socket is reopened (new sign, one LOGIN) and every watcher resumes from its last event', async () => {
  const from = server.frames.length;
  const a = collect(db.collection('todos'));
  const b = collect(db.collection('notes'));
  const initA = await initWatch(from);
  const initB = await server.frame((f) => f.msg.msgType === 'INIT_WATCH' && f.msg.watchId !== initA.watchId, { from });
  answerInit(initA, 'qa', 7, []);
  answerInit(initB.msg, 'qb', 2, [ev(0, 'init', 'init', 'x', { _id: 'x' })]);
  await a.until(() => a.snapshots.length === 1 && b.snapshots.length === 1);

  const socketsBefore = server.sockets.length;
  const signsBefore = server.signs;
  server.dropAll();
  const rebuildA = await server.frame((f) => f.msg.msgType === 'REBUILD_WATCH' && f.msg.watchId === initA.watchId, { from });
  const rebuildB = await server.frame((f) => f.msg.msgType === 'REBUILD_WATCH' && f.msg.watchId === initB.msg.watchId, { from });
  assert.equal(server.sockets.length, socketsBefore + 1, 'one new socket');
  assert.equal(server.signs, signsBefore + 1, 'a fresh sign');
  assert.equal(rebuildA.socket, socketsBefore);
  assert.equal(rebuildA.msg.msgData.eventID, 7);
  assert.equal(rebuildB.msg.msgData.eventID, 2);
  const logins = server.frames.filter((f) => f.msg.msgType === 'LOGIN' && f.socket === socketsBefore);
  assert.equal(logins.length, 1);

  server.push({ watchId: initA.watchId, requestId: rebuildA.msg.requestId, msgType: 'NEXT_EVENT', msgData: { queryID: 'qa', currEvent: 8, events: [ev(8, 'add', 'enqueue', 'n', { _id: 'n' })] } });
  server.push({ watchId: initB.msg.watchId, requestId: rebuildB.msg.requestId, msgType: 'NEXT_EVENT', msgData: { queryID: 'qb', currEvent: 2, events: [] } });
  await a.until(() => a.snapshots.length === 2);
  assert.deepEqual(a.snapshots[1].docs, [{ _id: 'n' }]);
  assert.equal(b.snapshots.length, 1, 'nothing new for b, nothing repeated');
  await a.listener.close();
  await b.listener.close();
});

test('a server ERROR ends the watcher with -402006; refused reconnects end it with -402009 after the retries', async () => {
  let from = server.frames.length;
  const failing = collect(db.collection('secret'));
  const init = await initWatch(from);
  server.push({ watchId: init.watchId, requestId: init.requestId, msgType: 'ERROR', msgData: { code: 'COLLECTION_PERMISSION_DENIED', message: 'denied' } });
  await failing.until(() => failing.errors.length === 1);
  assert.equal(failing.errors[0].errCode, -402002, 'the INIT_WATCH answer was an error');
  assert.match(failing.errors[0].errMsg, /^collection\.watch:fail -402002 .*COLLECTION_PERMISSION_DENIED - denied/);

  from = server.frames.length;
  const w = collect(db.collection('todos'));
  const init2 = await initWatch(from);
  answerInit(init2, 'q-9', 1, []);
  await w.until(() => w.snapshots.length === 1);
  server.push({ watchId: init2.watchId, requestId: 'srv', msgType: 'ERROR', msgData: { code: 'SYS_ERR', message: 'boom' } });
  await w.until(() => w.errors.length === 1);
  assert.equal(w.errors[0].errCode, -402006);

  from = server.frames.length;
  const lost = collect(db.collection('todos'));
  const init3 = await initWatch(from);
  answerInit(init3, 'q-10', 1, []);
  await lost.until(() => lost.snapshots.length === 1);
  server.refuse(true);
  server.dropAll();
  await lost.until(() => lost.errors.length === 1, 'the error', 20000);
  server.refuse(false);
  assert.equal(lost.errors[0].errCode, -402009);
  assert.match(lost.errors[0].errMsg, /^collection\.watch:fail -402009 /);
  await lost.listener.close(); // already closed: a no-op
});

test('idle: PING and CHECK_LAST after 10 s; a CHECK_EVENT ahead of the client is caught up by REBUILD_WATCH', async () => {
  const from = server.frames.length;
  const w = collect(db.collection('idle'));
  const init = await initWatch(from);
  answerInit(init, 'q-idle', 4, []);
  await w.until(() => w.snapshots.length === 1);
  const ping = await server.frame((f) => f.msg.msgType === 'PING', { from, timeoutMs: 15000 });
  assert.deepEqual(Object.keys(ping.msg), ['requestId', 'msgType', 'msgData']);
  const check = (await server.frame((f) => f.msg.msgType === 'CHECK_LAST' && f.msg.watchId === init.watchId, { from, timeoutMs: 15000 })).msg;
  assert.deepEqual(check.msgData, { queryID: 'q-idle', eventID: 4 });
  // The server says it is at 6: events 5 and 6 never arrived, so the next idle tick asks for them.
  const before = server.frames.length;
  server.push({ watchId: init.watchId, requestId: check.requestId, msgType: 'CHECK_EVENT', msgData: { queryID: 'q-idle', currEvent: 6 } });
  const rebuild = (await server.frame((f) => f.msg.msgType === 'REBUILD_WATCH', { from: before, timeoutMs: 15000 })).msg;
  assert.equal(rebuild.msgData.eventID, 4);
  const events = [ev(5, 'add', 'enqueue', 'p', { _id: 'p' }), ev(6, 'add', 'enqueue', 'q', { _id: 'q' })];
  server.push({ watchId: init.watchId, requestId: rebuild.requestId, msgType: 'NEXT_EVENT', msgData: { queryID: 'q-idle', currEvent: 6, events } });
  await w.until(() => w.snapshots.length === 3);
  assert.deepEqual(w.snapshots.map((s) => s.id), [4, 5, 6]);
  await w.listener.close();
});

test('watch() validates its options synchronously', () => {
  for (const options of [undefined, {}, { onChange() {} }, { onChange() {}, onError: 1 }]) {
    assert.throws(
      () => db.collection('todos').watch(options),
      (error) => error.errCode === -401003 && error.errMsg.startsWith('collection.watch:fail -401003'),
    );
  }
  assert.throws(() => db.collection('todos').doc('x').watch({}), (error) => error.errCode === -401003);
});

/** Runs an ES module in a fresh Node outside js-tests (where the `ws` package cannot be found). */
function runElsewhere(source) {
  const cwd = mkdtempSync(join(tmpdir(), 'watch-no-ws-'));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      rmSync(cwd, { recursive: true, force: true });
      resolve({ code, stdout, stderr });
    });
  });
}

const PKG = pathToFileURL(join(REPO_ROOT, 'pkg', 'index.mjs')).href;
const WS = pathToFileURL(join(JS_TESTS_DIR, 'node_modules', 'ws', 'wrapper.mjs')).href;

test('Node without a WebSocket: onError -402012 says how to get one; init({ WebSocket }) is used when given', async () => {
  assert.equal(typeof globalThis.WebSocket, 'undefined', 'this Node has no global WebSocket (else the test proves nothing)');
  const missing = await runElsewhere(`
    import { cloud } from ${JSON.stringify(PKG)};
    cloud.init({ env: 'e', endpoint: ${JSON.stringify(server.url)}, persistence: 'none' });
    cloud.database().collection('todos').watch({
      onChange: () => console.log(JSON.stringify({ changed: true })),
      onError: (e) => console.log(JSON.stringify({ errCode: e.errCode, errMsg: e.errMsg })),
    });
  `);
  const error = lastJsonLine({ ...missing, stdout: missing.stdout });
  assert.equal(error.errCode, -402012, missing.stderr);
  assert.match(error.errMsg, /^collection\.watch:fail -402012 .*no WebSocket in this runtime: pass one to init\(\{ WebSocket \}\) or install the ws package/);

  const from = server.frames.length;
  const given = runElsewhere(`
    import { cloud } from ${JSON.stringify(PKG)};
    import { WebSocket } from ${JSON.stringify(WS)};
    cloud.init({ env: 'e', endpoint: ${JSON.stringify(server.url)}, persistence: 'none', WebSocket });
    const listener = cloud.database().collection('todos').watch({
      onChange: async (snapshot) => {
        console.log(JSON.stringify({ type: snapshot.type, id: snapshot.id }));
        await listener.close();
        process.exit(0);
      },
      onError: (e) => console.log(JSON.stringify({ errCode: e.errCode, errMsg: e.errMsg })),
    });
  `);
  const init = await initWatch(from);
  answerInit(init, 'q-given', 3, []);
  const run = await given;
  assert.deepEqual(lastJsonLine(run), { type: 'init', id: 3 }, run.stderr);
});
