// kill -9 of the emulator under write load loses no acknowledged write (issue 9). 40 users add documents
// and increment a counter of their own as fast as the emulator answers; after 2 s the emulator gets SIGKILL
// mid-stream; a new emulator on the same data dir must hold every acknowledged document, and every counter
// must be at least its acknowledged increments (and at most one more: the increment in flight may have
// committed before its answer was lost). Bounded: 40 users, 2 s of load, 30 s per step at most.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TEST_FUNCTIONS_DIR, emulatorBinary, listeningUrl } from './helpers/emulator.mjs';

const ENV = 'crash-env';
const USERS = 40;
const LOAD_MS = 2000;
const dataDir = mkdtempSync(join(tmpdir(), 'crash-under-load-'));
const children = [];

after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

async function start() {
  const child = spawn(emulatorBinary(), ['start', '--port', '0', '--data-dir', dataDir, '--functions', TEST_FUNCTIONS_DIR], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const url = await listeningUrl(child, { name: 'cloud-emulator', timeoutMs: 30_000, stderr: () => stderr });
  for (let i = 0; i < 200 && !/admin token: (\w+)/.test(stderr); i++) await new Promise((r) => setTimeout(r, 25));
  const admin = /admin token: (\w+)/.exec(stderr)?.[1];
  return { child, url, admin, exited: new Promise((r) => child.once('exit', (code, signal) => r({ code, signal }))) };
}

async function web(url, token, body) {
  const res = await fetch(`${url}/web?env=${ENV}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, env: ENV, dataVersion: '2020-01-10', access_token: token }),
    signal: AbortSignal.timeout(30_000),
  });
  const json = await res.json();
  if (json.code) throw new Error(`${body.action}: ${json.code} ${json.message}`);
  return json;
}

test('kill -9 under write load loses no acknowledged write', async (t) => {
  const first = await start();
  const users = [];
  for (let i = 0; i < USERS; i++) {
    const res = await fetch(`${first.url}/auth/v1/signin/anonymously?client_id=${ENV}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-device-id': randomUUID().replaceAll('-', '') },
      body: '{}',
    });
    users.push({ writer: i, token: (await res.json()).access_token, acked: [], increments: 0 });
  }
  await web(first.url, users[0].token, { action: 'database.addCollection', collectionName: 'acked' });
  for (const user of users) {
    const answer = await web(first.url, user.token, { action: 'database.addDocument', collectionName: 'acked', data: { writer: user.writer, counter: true, n: 0 } });
    user.counter = answer.data._id;
  }

  let running = true;
  const loops = users.map(async (user) => {
    for (let i = 0; running; i++) {
      try {
        if (i % 2 === 0) {
          const answer = await web(first.url, user.token, { action: 'database.addDocument', collectionName: 'acked', data: { writer: user.writer, seq: i } });
          user.acked.push(answer.data._id);
        } else {
          await web(first.url, user.token, { action: 'database.updateDocument', collectionName: 'acked', query: { _id: user.counter }, queryType: 'DOC', data: { $inc: { n: 1 } }, merge: true });
          user.increments += 1;
        }
      } catch {
        return; // the emulator is gone: what was acknowledged so far is what must survive
      }
    }
  });
  await new Promise((r) => setTimeout(r, LOAD_MS));
  first.child.kill('SIGKILL');
  const { signal } = await first.exited;
  running = false;
  await Promise.all(loops);
  assert.equal(signal, 'SIGKILL');
  const acknowledged = users.reduce((n, u) => n + u.acked.length, 0);
  assert.ok(acknowledged > USERS, `load reached the emulator (${acknowledged} acknowledged adds)`);
  const increments = users.reduce((n, u) => n + u.increments, 0);
  t.diagnostic(`${acknowledged} acknowledged adds and ${increments} acknowledged increments before kill -9`);

  const second = await start();
  try {
    for (const user of users) {
      const answer = await web(second.url, second.admin, { action: 'database.queryDocument', collectionName: 'acked', queryType: 'WHERE', query: { writer: user.writer }, limit: 1000 });
      const stored = new Map(answer.data.list.map((doc) => [doc._id, doc]));
      const lost = user.acked.filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `writer ${user.writer}: acknowledged adds missing after kill -9`);
      const counter = stored.get(user.counter);
      assert.ok(counter, `writer ${user.writer}: counter document survives`);
      assert.ok(counter.n >= user.increments && counter.n <= user.increments + 1,
        `writer ${user.writer}: counter ${counter.n} vs ${user.increments} acknowledged increments`);
    }
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
});
