// The pure parts of the SDK's realtime loop (src/transport/realtime.js), without a socket: the snapshot
// window (init, partial updates, enqueue / dequeue, re-init), event ids (duplicates skipped, gaps reported),
// the server's order, dotted-path patches, the reconnect backoff — and the frames the loop writes, byte for
// byte against the official client's (shared captures, tests/fixtures/ws-capture.jsonl).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/emulator.mjs';
import { applyChanges, compare, patch, reconnectDelay } from '../src/transport/realtime.js';

const change = (id, queueType, docId, doc, extra = {}) => ({ id, dataType: extra.dataType ?? queueType, queueType, docId, doc, ...extra });
const byIdDesc = [['_id', true]];

test('init, partial update, enqueue and dequeue build the window; each id is one snapshot', () => {
  const window = { last: 0, docs: [] };
  let result = applyChanges(window, [change(1, 'init', 'a', { _id: 'a', n: 1, t: { x: 1, y: 2 } }), change(1, 'init', 'b', { _id: 'b' })], byIdDesc);
  assert.equal(result.fault, null);
  assert.deepEqual(result.snapshots.map((s) => [s.id, s.changes.length, s.docs.map((d) => d._id)]), [[1, 2, ['b', 'a']]]);

  const update = change(2, 'update', 'a', undefined, { updatedFields: { n: 2, 't.z': 3 }, removedFields: ['t.x'] });
  result = applyChanges(window, [update, change(3, 'enqueue', 'c', { _id: 'c' }, { dataType: 'add' }), change(4, 'dequeue', 'b', undefined, { dataType: 'remove' })], byIdDesc);
  assert.equal(result.fault, null);
  assert.deepEqual(update.doc, { _id: 'a', n: 2, t: { y: 2, z: 3 } }, 'the partial update got its full document');
  assert.deepEqual(result.snapshots.map((s) => s.docs.map((d) => d._id).join()), ['b,a', 'c,b,a', 'c,a']);
  assert.deepEqual(result.snapshots[2].changes[0].doc, { _id: 'b' }, 'a dequeue reports the document it removed');
  assert.equal(window.last, 4);

  // A re-init (the server's answer to a rebuild it could not serve): init events replace the window.
  result = applyChanges(window, [change(5, 'init', 'z', { _id: 'z' })], byIdDesc);
  assert.deepEqual(result.snapshots[0].docs, [{ _id: 'z' }]);
});

test('duplicates are skipped, a gap stops the batch, and the resent events apply exactly once', () => {
  const window = { last: 2, docs: [['a', { _id: 'a', n: 2 }]] };
  const replace = (id, n) => change(id, 'update', 'a', { _id: 'a', n }, { dataType: 'replace' });
  let result = applyChanges(window, [replace(2, 0), replace(3, 3), replace(5, 5)], byIdDesc);
  assert.deepEqual(result.snapshots.map((s) => s.id), [3]);
  assert.equal(result.fault, 'gap');
  assert.equal(window.last, 3);
  result = applyChanges(window, [replace(3, 3), replace(4, 4), replace(5, 5)], byIdDesc);
  assert.equal(result.fault, null);
  assert.deepEqual(result.snapshots.map((s) => [s.id, s.docs[0].n]), [[4, 4], [5, 5]]);
});

test('an enqueue without its document is a fault, not a silent hole', () => {
  const result = applyChanges({ last: 0, docs: [] }, [change(1, 'enqueue', 'x', undefined)], byIdDesc);
  assert.match(result.fault, /no document sent for the added document x/);
});

test('the window keeps the server order: orderBy fields in BSON type order, then _id', () => {
  const docs = [
    { _id: 'd', n: 'text' },
    { _id: 'c', n: { $date: 5 } },
    { _id: 'b', n: 2 },
    { _id: 'a', n: 2 },
    { _id: 'e' },
  ];
  const orders = [['n', false], ['_id', false]];
  assert.deepEqual(docs.slice().sort((x, y) => compare(x, y, orders)).map((d) => d._id), ['e', 'a', 'b', 'd', 'c']);
  assert.deepEqual(docs.slice().sort((x, y) => compare(x, y, [['n', true], ['_id', false]])).map((d) => d._id), ['c', 'd', 'a', 'b', 'e']);
  assert.equal(compare({ a: { b: 1 } }, { a: { b: 2 } }, [['a.b', false]]), -1, 'dotted paths');
});

test('patch: dotted paths set and unset on a copy', () => {
  const doc = { a: { b: 1 }, list: [1, 2] };
  const out = patch(doc, { 'a.c': 2, 'x.y': 3, list: [3] }, ['a.b', 'missing.path']);
  assert.deepEqual(out, { a: { c: 2 }, list: [3], x: { y: 3 } });
  assert.deepEqual(doc, { a: { b: 1 }, list: [1, 2] }, 'the original is untouched');
});

test('reconnect backoff doubles from 250 ms to 4 s with jitter between half and all of it', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 9].map((n) => reconnectDelay(n, 1)), [250, 500, 1000, 2000, 4000, 4000]);
  assert.equal(reconnectDelay(1, 0), 125);
  assert.equal(reconnectDelay(3, 0.5), 750);
});

test('frames: the loop writes LOGIN, INIT_WATCH and CLOSE_WATCH exactly as the official client did', async () => {
  const capture = readFileSync(join(REPO_ROOT, 'tests', 'fixtures', 'ws-capture.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
    .filter((record) => record.dir === 'c2s')
    .map((record) => record.msg);
  const [login, init, close] = capture;
  // A connection whose socket records what is sent; ids are replaced by the captured ones for comparison.
  const { createConnection, startWatch, setSocketConstructor } = await import('../src/transport/realtime.js');
  const sent = [];
  class RecordingSocket {
    constructor(url) {
      this.url = url;
      setTimeout(() => this.onopen(), 0);
    }
    send(text) {
      sent.push(text);
      const msg = JSON.parse(text);
      if (msg.msgType === 'LOGIN') setTimeout(() => this.onmessage({ data: JSON.stringify({ requestId: msg.requestId, msgType: 'LOGIN_RES', msgData: {} }) }), 0);
    }
    close() {}
  }
  setSocketConstructor(RecordingSocket);
  const hook = (kind) => (kind === 0 ? Promise.resolve({ signStr: 'sig', wsUrl: 'ws://x/ws', secretVersion: 1, envId: 'envx' }) : undefined);
  const connection = createConnection('envx', hook);
  const listener = startWatch(connection, 'collection.watch', JSON.stringify(init.msgData).replace('"envId":"envx",', ''), () => {}, () => {});
  for (let i = 0; i < 100 && sent.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  await listener.close();
  const withIds = (text, msg) => {
    const ours = JSON.parse(text);
    return text.replace(ours.requestId, msg.requestId).replace(ours.watchId, msg.watchId);
  };
  assert.equal(sent.length, 3, sent.join('\n'));
  assert.equal(withIds(sent[0], login), JSON.stringify(login));
  assert.equal(withIds(sent[1], init), JSON.stringify(init));
  assert.equal(withIds(sent[2], close), JSON.stringify(close));
  assert.match(JSON.parse(sent[1]).watchId, /^watchid_\d+_0\.\d+$/);
});
