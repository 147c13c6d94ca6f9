// The two request paths of callFunction (src/transport/mod.rs): with a valid token and no signal the fetch
// promise is chained to one shared outcome handler (requests looked up in a table by id); sign-in, token
// retry and calls with a signal go through a Rust future. Request AbortControllers are reused only after
// their request finished unaborted, and the shared deadline timer stays armed (unref'd) between calls.
// These tests pin what those optimisations must not change.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { startEmulator } from './helpers/emulator.mjs';
import { assertCloudError, rejection } from './helpers/expect.mjs';

let emulator;
let cloud;

before(async () => {
  emulator = await startEmulator();
  ({ cloud } = await import('taro-cloud-wasm'));
  cloud.init({ env: 'paths-env', endpoint: emulator.url, persistence: 'none' });
});
after(async () => {
  await emulator?.stop();
});

const echo = async (client, n) => {
  const res = await client.callFunction({ name: 'echo', data: { n } });
  assert.equal(res.result.data.n, n);
};

test('a client timeout fails only its call; reused controllers and the idle timer keep working', async () => {
  const client = new cloud.Cloud({ resourceEnv: 'paths-timeout', endpoint: emulator.url, timeout: 500 });
  await client.init();
  for (let round = 0; round < 2; round += 1) {
    // Enough sequential calls to pass through several reused controllers.
    for (let n = 0; n < 40; n += 1) await echo(client, n);
    const started = Date.now();
    const error = await rejection(client.callFunction({ name: 'slow', data: { ms: 1000 } }));
    assertCloudError(error, -501002);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 450 && elapsed < 950, `timed out after ${elapsed} ms`);
    // Let the function finish on the emulator, idle longer than the timeout (the timer armed earlier
    // fires with nothing to do), then the aborted controller must not have been reused.
    await new Promise((resolve) => setTimeout(resolve, 900));
    await echo(client, 1000 + round);
  }
});

test('aborting one call through its signal leaves concurrent calls alone', async () => {
  await echo(cloud, 0); // signed in: the others take the chained-promise path
  const controller = new AbortController();
  const aborted = cloud.callFunction({ name: 'slow', data: { ms: 600 }, signal: controller.signal });
  const others = Array.from({ length: 10 }, (_, n) => echo(cloud, n));
  setTimeout(() => controller.abort(), 50);
  assertCloudError(await rejection(aborted), -1, { errMsgIncludes: 'abort' });
  await Promise.all(others);
  for (let n = 0; n < 20; n += 1) await echo(cloud, n);
});

test('concurrent promise and callback calls each get their own outcome', async () => {
  const calls = Array.from({ length: 60 }, (_, n) => {
    if (n % 3 === 0) {
      return new Promise((resolve, reject) => {
        cloud.callFunction({
          name: 'echo',
          data: { n },
          success: (res) => (res.result.data.n === n ? resolve() : reject(new Error(`callback ${n} got ${res.result.data.n}`))),
          fail: reject,
        });
      });
    }
    if (n % 7 === 0) {
      return rejection(cloud.callFunction({ name: 'missing-fn', data: { n } })).then((error) => assertCloudError(error, -501000));
    }
    return echo(cloud, n);
  });
  await Promise.all(calls);
});

test('a process exits right after its last call (no timer keeps Node alive)', () => {
  const entry = createRequire(import.meta.url).resolve('taro-cloud-wasm');
  const script = `const { cloud } = require(${JSON.stringify(entry)});
cloud.init({ env: 'paths-exit', endpoint: ${JSON.stringify(emulator.url)}, persistence: 'none', timeout: 60000 });
cloud.callFunction({ name: 'echo', data: { n: 7 } }).then((res) => console.log(res.result.data.n));`;
  const started = Date.now();
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), '7');
  assert.ok(Date.now() - started < 15_000, 'exited long before the 60 s request timeout');
});
