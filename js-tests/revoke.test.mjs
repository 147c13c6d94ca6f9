// Session revocation seen from the built SDK: after `POST /auth/v1/revoke` (CloudBase's sign-out shape:
// `{ token }` with the Bearer header) the SDK's next call is refused once, signs in again by itself and
// succeeds; the revoked tokens stay refused. Also the official @cloudbase/js-sdk 3.7.0's signOut() against
// the emulator.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { installBrowserGlobals } from './helpers/browser-globals.mjs';
import { JS_TESTS_DIR, lastJsonLine, runNode, startEmulator } from './helpers/emulator.mjs';

const ENV = 'revoke-env';
let emulator;
before(async () => {
  emulator = await startEmulator({ env: ENV });
});
after(async () => {
  await emulator?.stop();
});

// A child with a Map-backed localStorage (persistence 'local') and a fetch that records every path.
const CHILD = `
const store = new Map();
globalThis.localStorage = {
  getItem: (k) => (store.has(k) ? store.get(k) : null), setItem: (k, v) => void store.set(k, String(v)),
  removeItem: (k) => void store.delete(k), clear: () => store.clear(),
  key: (i) => [...store.keys()][i] ?? null, get length() { return store.size; },
};
const paths = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  paths.push(new URL(typeof input === 'string' ? input : input.url).pathname);
  return realFetch(input, init);
};
const { cloud } = await import('taro-cloud-wasm');
const url = process.env.EMULATOR_URL;
cloud.init({ env: '${ENV}', endpoint: url });
const first = await cloud.callFunction({ name: 'echo', data: { n: 1 } });
const old = JSON.parse(localStorage.getItem('credentials_${ENV}'));
const revoked = await realFetch(url + '/auth/v1/revoke', {
  method: 'POST',
  headers: { authorization: 'Bearer ' + old.access_token, 'content-type': 'application/json' },
  body: JSON.stringify({ token: old.access_token }),
});
const before = paths.length;
const second = await cloud.callFunction({ name: 'echo', data: { n: 2 } });
const fresh = JSON.parse(localStorage.getItem('credentials_${ENV}'));
const me = (token) => realFetch(url + '/auth/v1/user/me', { headers: { authorization: 'Bearer ' + token } }).then((r) => r.status);
const refresh = await realFetch(url + '/auth/v1/token', {
  method: 'POST',
  body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: old.refresh_token }),
}).then(async (r) => [r.status, (await r.json()).error]);
console.log(JSON.stringify({
  first: first.result.data, second: second.result.data,
  revokeStatus: revoked.status, revokeBody: await revoked.json(),
  afterRevoke: paths.slice(before),
  sameUser: fresh.sub === old.sub, newToken: fresh.access_token !== old.access_token,
  oldMe: await me(old.access_token), freshMe: await me(fresh.access_token), refresh,
}));
`;

test('the SDK signs in again by itself after its session is revoked', async () => {
  const run = await runNode(CHILD, { env: { EMULATOR_URL: emulator.url } });
  const seen = lastJsonLine(run);
  assert.deepEqual(seen.first, { n: 1 });
  assert.equal(seen.revokeStatus, 200);
  assert.deepEqual(seen.revokeBody, {});
  assert.deepEqual(seen.second, { n: 2 }, 'the call after the revocation succeeds');
  assert.deepEqual(
    seen.afterRevoke,
    ['/web', '/auth/v1/signin/anonymously', '/web'],
    'refused once (CHECK_LOGIN_FAILED), one new sign-in, then the retried call',
  );
  assert.ok(seen.sameUser, 'the same device is the same anonymous user');
  assert.ok(seen.newToken);
  assert.equal(seen.oldMe, 401, 'the revoked access token stays refused');
  assert.equal(seen.freshMe, 200);
  assert.deepEqual(seen.refresh, [400, 'invalid_grant'], 'so does the revoked refresh token');
});

test('official @cloudbase/js-sdk 3.7.0: signOut() revokes the session on the emulator', async () => {
  installBrowserGlobals({ origin: `${emulator.url}/` });
  // The browser build by path, as in conformance.test.mjs.
  const require = createRequire(join(JS_TESTS_DIR, 'package.json'));
  const sdk = require(join(JS_TESTS_DIR, 'node_modules', '@cloudbase', 'js-sdk', 'dist', 'index.cjs.js'));
  const app = (sdk.default ?? sdk).init({ env: ENV, endPointMode: 'CLOUD_API' });
  app.registerHost(`127.0.0.1:${emulator.port}`, 'http');
  await app.auth().signInAnonymously();
  const credentials = JSON.parse(localStorage.getItem(`credentials_${ENV}`));
  const me = (token) => fetch(`${emulator.url}/auth/v1/user/me`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
  assert.equal(await me(credentials.access_token), 200);
  await app.auth().signOut();
  assert.equal(await me(credentials.access_token), 401, 'signOut revoked the session on the emulator');
  const refresh = await fetch(`${emulator.url}/auth/v1/token`, {
    method: 'POST',
    body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: credentials.refresh_token }),
  });
  assert.equal(refresh.status, 400);
});
