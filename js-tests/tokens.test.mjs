// Access tokens: calls keep working across expiry (--token-ttl 2), an access token the server already
// considers expired is refreshed and the call retried once, and credentials are persisted under
// `credentials_<env>` / `device_id` as the shared contract says.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { lastJsonLine, runNode, startEmulator } from './helpers/emulator.mjs';

const TTL_SECONDS = 2;
let emulator;
before(async () => {
  emulator = await startEmulator({ tokenTtl: TTL_SECONDS });
});
after(async () => {
  await emulator?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A child with a Map-backed localStorage and a fetch that records every URL, both installed before import.
const SHIM = `
const store = new Map(Object.entries(JSON.parse(process.env.SEED || '{}')));
globalThis.localStorage = {
  getItem: (k) => (store.has(k) ? store.get(k) : null), setItem: (k, v) => void store.set(k, String(v)),
  removeItem: (k) => void store.delete(k), clear: () => store.clear(),
  key: (i) => [...store.keys()][i] ?? null, get length() { return store.size; },
};
const requests = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  requests.push(new URL(typeof input === 'string' ? input : input.url).pathname);
  return realFetch(input, init);
};
const show = (e) => e instanceof Error ? { errCode: e.errCode, errMsg: e.errMsg } : e;
const { cloud } = await import('taro-cloud-wasm');
`;

async function signInRaw(env) {
  const deviceId = randomUUID().replaceAll('-', '');
  const response = await fetch(`${emulator.url}/auth/v1/signin/anonymously?client_id=${env}`, {
    method: 'POST',
    headers: { 'x-device-id': deviceId },
    body: '{}',
  });
  assert.equal(response.status, 200);
  return { deviceId, credentials: await response.json() };
}

test('calls keep working across access-token expiry', async () => {
  const { cloud } = await import('taro-cloud-wasm');
  cloud.init({ env: 'ttl-env', endpoint: emulator.url, persistence: 'none' });
  const first = await cloud.callFunction({ name: 'echo', data: { n: 1 } });
  const openId = first.result.userInfo.openId;
  for (let round = 2; round <= 3; round += 1) {
    await sleep(TTL_SECONDS * 1000 + 500);
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) => cloud.callFunction({ name: 'echo', data: { round, i } })),
    );
    results.forEach((res, i) => assert.deepEqual(res.result.data, { round, i }));
    assert.equal(results[0].result.userInfo.openId, openId, 'still the same user after refresh');
  }
});

test('ACCESS_TOKEN_EXPIRED from the server: the SDK refreshes and retries once, transparently', async () => {
  const env = 'expired-env';
  const { deviceId, credentials } = await signInRaw(env);
  await sleep(TTL_SECONDS * 1000 + 500); // now expired server-side
  const stale = { ...credentials, expires_at: new Date(Date.now() + 3600_000).toISOString() };
  const seed = { [`credentials_${env}`]: JSON.stringify(stale), device_id: deviceId };
  const run = await runNode(
    `${SHIM}
    cloud.init({ env: '${env}', endpoint: process.env.EMU, persistence: 'local' });
    let res, error = null;
    try { res = await cloud.callFunction({ name: 'echo', data: { after: 'refresh' } }); } catch (e) { error = show(e); }
    console.log(JSON.stringify({ error, data: res?.result?.data, requests,
      stored: JSON.parse(store.get('credentials_${env}') ?? 'null') }));`,
    { env: { EMU: emulator.url, SEED: JSON.stringify(seed) } },
  );
  const out = lastJsonLine(run);
  assert.equal(out.error, null, `the call succeeded: ${JSON.stringify(out.error)}`);
  assert.deepEqual(out.data, { after: 'refresh' });
  assert.deepEqual(
    out.requests.filter((p) => p === '/web' || p.startsWith('/auth/')),
    ['/web', '/auth/v1/token', '/web'],
    'expired call, refresh, one retry (no new anonymous sign-in)',
  );
  assert.ok(out.stored, 'credentials are persisted');
  assert.notEqual(out.stored.access_token, credentials.access_token, 'the new access token was stored');
  assert.equal(out.stored.sub, credentials.sub, 'same user');
});

test('a revoked-looking refresh token: the SDK signs in anonymously again', async () => {
  const env = 'bad-refresh-env';
  const { deviceId, credentials } = await signInRaw(env);
  await sleep(TTL_SECONDS * 1000 + 500);
  const broken = {
    ...credentials,
    refresh_token: 'not-a-refresh-token',
    expires_at: new Date(Date.now() + 3600_000).toISOString(),
  };
  const seed = { [`credentials_${env}`]: JSON.stringify(broken), device_id: deviceId };
  const run = await runNode(
    `${SHIM}
    cloud.init({ env: '${env}', endpoint: process.env.EMU });
    let res, error = null;
    try { res = await cloud.callFunction({ name: 'echo', data: { x: 1 } }); } catch (e) { error = show(e); }
    console.log(JSON.stringify({ error, data: res?.result?.data, requests }));`,
    { env: { EMU: emulator.url, SEED: JSON.stringify(seed) } },
  );
  const out = lastJsonLine(run);
  assert.equal(out.error, null, `the call succeeded: ${JSON.stringify(out.error)}`);
  assert.deepEqual(out.data, { x: 1 });
  assert.ok(out.requests.includes('/auth/v1/signin/anonymously'), `signed in again: ${out.requests}`);
});

test("persistence 'local' stores credentials_<env> and device_id in the contract's shape", async () => {
  const env = 'persist-env';
  const run = await runNode(
    `${SHIM}
    cloud.init({ env: '${env}', endpoint: process.env.EMU, persistence: 'local' });
    await cloud.callFunction({ name: 'echo' });
    console.log(JSON.stringify(Object.fromEntries(store)));`,
    { env: { EMU: emulator.url } },
  );
  const stored = lastJsonLine(run);
  assert.equal(typeof stored.device_id, 'string');
  assert.ok(stored.device_id.length >= 16 && stored.device_id.length <= 48);
  const credentials = JSON.parse(stored[`credentials_${env}`]);
  for (const key of ['token_type', 'access_token', 'refresh_token', 'expires_in', 'scope', 'sub', 'expires_at']) {
    assert.ok(key in credentials, `credentials has ${key}`);
  }
  assert.equal(credentials.token_type, 'Bearer');
  assert.equal(credentials.scope, 'anonymous');
  assert.equal(credentials.expires_in, TTL_SECONDS);
  assert.ok(!Number.isNaN(Date.parse(credentials.expires_at)), 'expires_at is a date string');
  assert.match(credentials.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'ISO form');
});

test("persistence 'none' writes nothing to localStorage, and credentials are reused across calls", async () => {
  const run = await runNode(
    `${SHIM}
    cloud.init({ env: 'none-env', endpoint: process.env.EMU, persistence: 'none' });
    await cloud.callFunction({ name: 'echo' });
    await cloud.callFunction({ name: 'echo' });
    console.log(JSON.stringify({ keys: [...store.keys()], requests }));`,
    { env: { EMU: emulator.url } },
  );
  const out = lastJsonLine(run);
  assert.deepEqual(out.keys, []);
  assert.equal(out.requests.filter((p) => p === '/auth/v1/signin/anonymously').length, 1, 'one sign-in');
  assert.equal(out.requests.filter((p) => p === '/web').length, 2);
});
