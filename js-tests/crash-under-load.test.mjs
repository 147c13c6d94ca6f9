// kill -9 of the emulator under the load generator loses no acknowledged write (issue 9). The users of
// bench/load.mjs (bench/load-users.mjs: callFunction, reads, adds and $inc updates of their own documents,
// uploads; a tenth of them watching) run at a small scale; after 3 s the emulator gets SIGKILL mid-stream;
// a new emulator on the same data dir must hold every acknowledged add, and every document at least its
// acknowledged increments (a user's one increment in flight may have committed before its answer was lost).
// Bounded: 100 users, 3 s of load (up to 20 s on a busy machine until 200 writes were acknowledged),
// loopback, 30 s per request at most.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadClient, openWatch, runUsers, signInUsers } from '../bench/load-users.mjs';
import { TEST_FUNCTIONS_DIR, emulatorBinary, listeningUrl } from './helpers/emulator.mjs';

const ENV = 'crash-env';
const COLLECTION = 'load';
const USERS = 100;
const LOAD_MS = 3000;
const MIN_ACKED = 200;
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

test('kill -9 under the load generator loses no acknowledged write', async (t) => {
  const first = await start();
  const client = loadClient(first.url, ENV);
  const users = await signInUsers(client, USERS);
  await client.web(users[0].token, { action: 'database.addCollection', collectionName: COLLECTION });
  // A tenth of the users watch, as in bench/load.mjs: the kill also drops live sockets.
  for (const user of users.filter((u) => u.index % 10 === 0)) await openWatch(client, user, COLLECTION, () => {});
  const failures = [];
  let running = true;
  const load = runUsers(client, users, {
    collection: COLLECTION,
    running: () => running,
    record: (op, ms, error) => error && failures.push(`${op}: ${error.message}`),
    staggerMs: 200,
  });
  // At least LOAD_MS, longer on a busy machine until enough writes were acknowledged (20 s at most).
  const incrementsOf = (user) => [...user.increments.values()].reduce((a, b) => a + b, 0);
  const acked = () => users.reduce((n, u) => n + u.acked.length + incrementsOf(u), 0);
  const loadStart = Date.now();
  while (Date.now() - loadStart < LOAD_MS || (acked() < MIN_ACKED && Date.now() - loadStart < 20_000)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(failures, [], 'no errors before the kill');
  first.child.kill('SIGKILL');
  const { signal } = await first.exited;
  running = false;
  await load; // every request in flight fails; what was acknowledged before is what must survive
  client.destroy();
  for (const user of users) user.watch?.socket.terminate();
  assert.equal(signal, 'SIGKILL');
  const adds = users.reduce((n, u) => n + u.acked.length, 0);
  const increments = users.reduce((n, u) => n + incrementsOf(u), 0);
  assert.ok(adds + increments >= MIN_ACKED && increments > 0, `the load reached the emulator (${adds} adds, ${increments} increments)`);
  t.diagnostic(`${USERS} users: ${adds} acknowledged adds and ${increments} acknowledged $inc before kill -9`);

  const second = await start();
  const admin = loadClient(second.url, ENV, { maxSockets: 8 });
  try {
    for (const user of users) {
      const answer = await admin.web(second.admin, { action: 'database.queryDocument', collectionName: COLLECTION, queryType: 'WHERE', query: { owner: user.index }, limit: 1000 });
      const stored = new Map(answer.data.list.map((doc) => [doc._id, doc]));
      const lost = user.acked.filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `user ${user.index}: acknowledged adds missing after kill -9`);
      // Each document holds at least its acknowledged increments; a user has one request in flight at
      // most, so all its documents together hold at most one increment more (committed, answer lost).
      let surplus = 0;
      for (const [id, acked] of user.increments) {
        const n = stored.get(id).n;
        assert.ok(n >= acked, `user ${user.index}: document ${id} has n = ${n}, ${acked} increments were acknowledged`);
        surplus += n - acked;
      }
      assert.ok(surplus <= 1, `user ${user.index}: ${surplus} unacknowledged increments stored`);
    }
  } finally {
    admin.destroy();
    second.child.kill('SIGTERM');
    await second.exited;
  }
});
