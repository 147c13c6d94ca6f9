// Realtime watch() in headless Chromium against cloud-emulator: the browser's own WebSocket, two users (two
// browser contexts). B's watchers see A's writes (add / update / remove, orderBy + limit window, Dates
// decoded), survive the emulator dropping every socket mid-stream with exactly the committed sequence, and
// stop on close(). The page is http://localhost:PORT and the SDK talks to http://127.0.0.1:PORT, so the
// socket is cross-origin too (the emulator's Origin check admits loopback origins).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchChromium } from './helpers/chromium.mjs';
import { makeSdkSite } from './helpers/sdk-site.mjs';
import { startEmulator } from './helpers/emulator.mjs';

const ENV = 'watch-browser';
let siteDir;
let emulator;
let adminToken;
let browser;
let pageA;
let pageB;
const problems = [];

async function admin(method, path, body) {
  const res = await fetch(`${emulator.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', 'x-admin-token': adminToken },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, path);
  return res.json();
}

async function openUser() {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console.error: ${message.text()}`);
  });
  page.setDefaultTimeout(30_000);
  await page.goto(`http://localhost:${emulator.port}/`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  await page.evaluate(([env, endpoint]) => {
    window.cloud.init({ env, endpoint });
    window.db = window.cloud.database();
    window.watches = {};
    // Starts a named watcher that records its snapshots (with Date checks done here, in the page).
    window.startWatch = (name, build) => {
      const record = { snapshots: [], errors: [] };
      record.listener = build(window.db).watch({
        onChange: (s) =>
          record.snapshots.push({
            id: s.id,
            type: s.type,
            docs: s.docs,
            changes: s.docChanges.map((c) => ({ ...c, docIsDate: c.doc && c.doc.at instanceof Date })),
          }),
        onError: (e) => record.errors.push(e.errMsg),
      });
      window.watches[name] = record;
    };
  }, [ENV, emulator.url]);
  return page;
}

/** Waits (in the page) until watcher `name` satisfies `predicate(record)` (a function source). */
async function waitFor(page, name, predicate) {
  await page.waitForFunction(
    ([name, source]) => {
      const record = window.watches[name];
      if (record.errors.length) throw new Error(record.errors.join('; '));
      return new Function('record', `return (${source})(record)`)(record);
    },
    [name, predicate.toString()],
  );
  return page.evaluate((name) => {
    const { snapshots, errors } = window.watches[name];
    return { snapshots, errors };
  }, name);
}

before(async () => {
  siteDir = makeSdkSite('watch-browser');
  emulator = await startEmulator({ hosting: siteDir });
  for (let i = 0; i < 100 && !/admin token: \S+/.test(emulator.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  adminToken = /admin token: (\S+)/.exec(emulator.stderr())[1];
  for (const name of ['notes', 'counters']) {
    await admin('POST', '/admin/v1/database/collections', { env: ENV, name, rules: 'READONLY' });
  }
  browser = await launchChromium();
  pageA = await openUser();
  pageB = await openUser();
});

after(async () => {
  await browser?.close();
  await emulator?.stop();
  if (siteDir) rmSync(siteDir, { recursive: true, force: true });
});

test('B\'s orderBy + limit watcher follows A\'s adds, updates and removes, Dates decoded', async () => {
  await pageB.evaluate(() => window.startWatch('top2', (db) => db.collection('notes').orderBy('n', 'asc').limit(2)));
  await waitFor(pageB, 'top2', (r) => r.snapshots.length === 1);
  const ids = await pageA.evaluate(async () => {
    const notes = window.db.collection('notes');
    const out = {};
    for (const n of [3, 1, 2]) out[n] = (await notes.add({ data: { n, at: new Date(Date.UTC(2026, 0, n)) } }))._id;
    return out;
  });
  let seen = await waitFor(pageB, 'top2', (r) => r.snapshots.at(-1).docs.map((d) => d.n).join() === '1,2');
  const added = seen.snapshots.flatMap((s) => s.changes).find((c) => c.docId === ids[1]);
  assert.deepEqual([added.dataType, added.queueType, added.docIsDate], ['add', 'enqueue', true]);

  await pageA.evaluate(async (id) => window.db.collection('notes').doc(id).update({ data: { n: 0, tag: 'first' } }), ids[2]);
  seen = await waitFor(pageB, 'top2', (r) => r.snapshots.at(-1).docs.map((d) => d.n).join() === '0,1');
  const update = seen.snapshots.at(-1).changes.find((c) => c.docId === ids[2]);
  assert.deepEqual([update.dataType, update.queueType, update.updatedFields], ['update', 'update', { n: 0, tag: 'first' }]);

  await pageA.evaluate(async (id) => window.db.collection('notes').doc(id).remove(), ids[1]);
  seen = await waitFor(pageB, 'top2', (r) => r.snapshots.at(-1).docs.map((d) => d.n).join() === '0,3');
  const kinds = seen.snapshots.at(-1).changes.map((c) => `${c.dataType}/${c.queueType}`).sort();
  assert.deepEqual(kinds, ['limit/enqueue', 'remove/dequeue']);
  const snapshotIds = seen.snapshots.map((s) => s.id);
  assert.deepEqual(snapshotIds, snapshotIds.map((_, i) => snapshotIds[0] + i), 'consecutive ids');
});

test('every socket dropped mid-stream while A keeps writing: B sees each write exactly once, in order', async () => {
  const id = await pageA.evaluate(async () => (await window.db.collection('counters').add({ data: { n: 0 } }))._id);
  await pageB.evaluate((id) => window.startWatch('counter', (db) => db.collection('counters').doc(id)), id);
  await waitFor(pageB, 'counter', (r) => r.snapshots.length === 1);
  const WRITES = 30;
  let dropped = 0;
  for (let n = 1; n <= WRITES; n++) {
    await pageA.evaluate(async ([id, n]) => window.db.collection('counters').doc(id).update({ data: { n } }), [id, n]);
    if (n % 10 === 5) {
      for (let i = 0; i < 200 && (await admin('GET', '/admin/v1/realtime/stats')).sockets < 1; i++) await new Promise((r) => setTimeout(r, 25));
      dropped += (await admin('POST', '/admin/v1/realtime/drop-connections')).dropped;
    }
  }
  assert.ok(dropped >= 3, `sockets dropped: ${dropped}`);
  const seen = await waitFor(pageB, 'counter', (r) => r.snapshots.at(-1).docs[0]?.n === 30);
  const values = seen.snapshots.slice(1).flatMap((s) => s.changes).map((c) => c.doc.n);
  assert.deepEqual(values, Array.from({ length: WRITES }, (_, i) => i + 1));
});

test('close() stops B\'s events', async () => {
  await pageB.evaluate(() => Promise.all(Object.values(window.watches).map((w) => w.listener.close())));
  const counts = await pageB.evaluate(() => Object.values(window.watches).map((w) => w.snapshots.length));
  await pageA.evaluate(async () => window.db.collection('notes').add({ data: { n: -1 } }));
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual(await pageB.evaluate(() => Object.values(window.watches).map((w) => w.snapshots.length)), counts);
  assert.equal((await admin('GET', '/admin/v1/realtime/stats')).sessions, 0);
  assert.deepEqual(problems, []);
});
