// The SDK under faults (issue 9), through a fault-injecting proxy (helpers/fault-proxy.mjs) in front of a real
// cloud-emulator: connection resets, 5xx and 429, truncated and non-JSON answers, stalled and slow bodies,
// uploads the server stops reading, token expiry mid-flight, clock skew. Every call ends within its
// timeout with a clear errCode / errMsg, callbacks run exactly once, nothing rejects unhandled; reads,
// temp URLs, downloads and sign-in are retried (each retry visible in the proxy's log), writes and
// callFunction never are.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';
import { addCollections, closedPort, startEmulator } from './helpers/emulator.mjs';
import { assertCloudError, rejection } from './helpers/expect.mjs';
import { startFaultProxy } from './helpers/fault-proxy.mjs';

const ENV = 'faults-env';
const TIMEOUT = 3000; // the SDK's per-request timeout in this file
let emulator;
let proxy;
let cloud;
let db;
const unhandled = [];
const onUnhandled = (reason) => unhandled.push(reason);

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  emulator = await startEmulator({ tokenTtl: 3600 });
  proxy = await startFaultProxy(emulator.url);
  ({ cloud } = await import('taro-cloud-wasm'));
  cloud.init({ env: ENV, endpoint: proxy.url, timeout: TIMEOUT, persistence: 'none' });
  db = cloud.database();
  await addCollections(emulator.url, ENV, ['items']);
  await db.collection('items').add({ data: { kind: 'seed', n: 1 } }); // signed in from here on
});
afterEach(() => proxy.reset());
after(async () => {
  await proxy?.close();
  await emulator?.stop();
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, [], 'no unhandled rejections');
});

/** Awaits `promise`, asserting it settles within `ms`; its outcome and how long it took. */
async function within(ms, promise) {
  const started = Date.now();
  let timer;
  const outcome = await Promise.race([
    promise.then((value) => ({ value }), (error) => ({ error })),
    new Promise((resolve) => (timer = setTimeout(() => resolve({ hung: true }), ms))),
  ]);
  clearTimeout(timer);
  assert.ok(!outcome.hung, `the call was still pending after ${ms} ms`);
  return { ...outcome, ms: Date.now() - started };
}

/** Runs a callback-style call; resolves 300 ms after `complete` with every callback invocation. */
function callbacks(call) {
  return new Promise((resolve) => {
    const events = [];
    call({
      success: (res) => events.push(['success', res]),
      fail: (err) => events.push(['fail', err]),
      complete: () => {
        events.push(['complete']);
        setTimeout(() => resolve(events), 300);
      },
    });
  });
}

const items = () => db.collection('items');

describe('reads are retried after transient failures, within the timeout', () => {
  for (const [name, fault] of [
    ['503', { fault: 'status', status: 503 }],
    ['429', { fault: 'status', status: 429 }],
    ['a reset connection', { fault: 'reset' }],
    ['a connection reset mid-body', { fault: 'reset-body' }],
    ['a truncated body', { fault: 'truncate' }],
    ['a non-JSON body', { fault: 'non-json' }],
  ]) {
    test(`get() and count() succeed after ${name} twice`, async () => {
      proxy.plan({ action: 'database.queryDocument' }, fault, { times: 2 });
      proxy.plan({ action: 'database.countDocument' }, fault, { times: 2 });
      const got = await within(TIMEOUT + 1000, items().where({ kind: 'seed' }).get());
      assert.ifError(got.error);
      assert.equal(got.value.data.length, 1);
      const counted = await within(TIMEOUT + 1000, items().where({ kind: 'seed' }).count());
      assert.ifError(counted.error);
      assert.equal(counted.value.total, 1);
      assert.equal(proxy.count('database.queryDocument'), 3, 'two failures, then the answer');
      assert.equal(proxy.count('database.countDocument'), 3);
    });
  }

  test('a read that keeps failing ends within its timeout with -601003 and the HTTP status', async () => {
    proxy.plan({ action: 'database.queryDocument' }, { fault: 'status', status: 503 }, { times: 100 });
    const { error, ms } = await within(TIMEOUT + 1000, items().get());
    assertCloudError(error, -601003, { errMsgStartsWith: 'collection.get:fail -601003', errMsgIncludes: 'HTTP 503' });
    const attempts = proxy.count('database.queryDocument');
    assert.ok(attempts >= 2 && attempts <= 4, `${attempts} attempts (1 + at most 3 retries)`);
    assert.ok(ms < TIMEOUT + 500, `${ms} ms`);
  });

  test('a 4xx without a CloudBase code is not retried', async () => {
    proxy.plan({ action: 'database.queryDocument' }, { fault: 'status', status: 404 }, { times: 5 });
    assertCloudError(await rejection(items().get()), -601003, { errMsgIncludes: 'HTTP 404' });
    assert.equal(proxy.count('database.queryDocument'), 1);
  });

  test('a stalled answer to a read ends at the timeout with -501002 (a timeout is not retried)', async () => {
    proxy.plan({ action: 'database.queryDocument' }, { fault: 'stall', bytes: 5 });
    const { error, ms } = await within(TIMEOUT + 1500, items().get());
    assertCloudError(error, -501002, { errMsgStartsWith: 'collection.get:fail -501002' });
    assert.ok(ms >= TIMEOUT - 100 && ms < TIMEOUT + 1000, `${ms} ms`);
    assert.equal(proxy.count('database.queryDocument'), 1);
  });

  test('getTempFileURL is retried after 502 and 429', async () => {
    const { fileID } = await cloud.uploadFile({ cloudPath: `faults/${Date.now()}-url.txt`, file: Buffer.from('hello') });
    proxy.reset();
    proxy.plan({ action: 'storage.batchGetDownloadUrl' }, { fault: 'status', status: 502 });
    proxy.plan({ action: 'storage.batchGetDownloadUrl' }, { fault: 'status', status: 429 });
    const { fileList } = await cloud.getTempFileURL({ fileList: [fileID] });
    assert.equal(fileList[0].status, 0);
    assert.equal(proxy.count('storage.batchGetDownloadUrl'), 3);
  });
});

describe('writes and callFunction are never retried', () => {
  for (const [name, fault, code] of [
    ['503', { fault: 'status', status: 503 }, -601003],
    ['a reset connection', { fault: 'reset' }, -601003],
    ['a truncated answer', { fault: 'truncate' }, -601003],
  ]) {
    test(`add(), update(), remove() and callFunction fail once on ${name}`, async () => {
      const before = (await items().count()).total;
      for (const action of ['database.addDocument', 'database.updateDocument', 'database.deleteDocument', 'functions.invokeFunction']) {
        proxy.plan({ action }, fault, { times: 5 });
      }
      const calls = [
        ['database.addDocument', 'collection.add', () => items().add({ data: { kind: 'write', at: Date.now() } })],
        ['database.updateDocument', 'collection.update', () => items().where({ kind: 'seed' }).update({ data: { touched: true } })],
        ['database.deleteDocument', 'collection.remove', () => items().where({ kind: 'nothing' }).remove()],
        ['functions.invokeFunction', 'cloud.callFunction', () => cloud.callFunction({ name: 'echo', data: { n: 1 } })],
      ];
      for (const [action, api, call] of calls) {
        const { error } = await within(TIMEOUT + 1000, call());
        assertCloudError(error, code, { errMsgStartsWith: `${api}:fail` });
        assert.equal(proxy.count(action), 1, `${action} was sent once`);
      }
      proxy.reset();
      // A truncated answer means the emulator did the write (the answer was lost on the way back);
      // otherwise nothing reached it.
      const after = (await items().count()).total;
      assert.equal(after - before, fault.fault === 'truncate' ? 1 : 0);
    });
  }

  test('a stalled answer to callFunction ends at the timeout with -501002, sent once', async () => {
    proxy.plan({ action: 'functions.invokeFunction' }, { fault: 'stall' });
    const { error, ms } = await within(TIMEOUT + 1500, cloud.callFunction({ name: 'echo' }));
    assertCloudError(error, -501002, { errMsgStartsWith: 'cloud.callFunction:fail -501002' });
    assert.ok(ms >= TIMEOUT - 100, `${ms} ms`);
    assert.equal(proxy.count('functions.invokeFunction'), 1);
  });

  test('token expiry mid-flight: an add answered ACCESS_TOKEN_EXPIRED is renewed and sent once more, one document', async () => {
    const marker = randomUUID();
    proxy.plan({ action: 'database.addDocument' }, { fault: 'json', body: { code: 'ACCESS_TOKEN_EXPIRED', message: 'expired', requestId: 'r' } });
    await items().add({ data: { kind: 'expiry', marker } });
    assert.equal(proxy.count('database.addDocument'), 2);
    assert.equal(proxy.count('/auth/v1/token') + proxy.count('/auth/v1/signin/anonymously'), 1, 'one renewal');
    assert.equal((await items().where({ marker }).count()).total, 1);
  });
});

describe('callbacks run exactly once under faults', () => {
  test('success+complete after retried failures, fail+complete for a write, per call', async () => {
    proxy.plan({ action: 'database.queryDocument' }, { fault: 'reset-body' });
    const read = await callbacks((options) => items().where({ kind: 'seed' }).get(options));
    assert.deepEqual(read.map(([kind]) => kind), ['success', 'complete']);
    proxy.plan({ action: 'database.addDocument' }, { fault: 'status', status: 500 });
    const write = await callbacks((options) => items().add({ data: { kind: 'cb' }, ...options }));
    assert.deepEqual(write.map(([kind]) => kind), ['fail', 'complete']);
    assertCloudError(write[0][1], -601003);
    proxy.plan({ action: 'functions.invokeFunction' }, { fault: 'stall' });
    const call = await callbacks((options) => cloud.callFunction({ name: 'echo', ...options }));
    assert.deepEqual(call.map(([kind]) => kind), ['fail', 'complete']);
    assertCloudError(call[0][1], -501002);
  });
});

describe('sign-in and refresh', () => {
  // Fresh envs: credentials are kept per env, so these clients have none yet.
  test('anonymous sign-in is retried after 503 and a reset', async () => {
    const client = new cloud.Cloud({ resourceEnv: 'faults-signin-1', endpoint: proxy.url, timeout: TIMEOUT, persistence: 'none' });
    await client.init();
    proxy.plan({ path: '/auth/v1/signin/anonymously' }, { fault: 'status', status: 503 });
    proxy.plan({ path: '/auth/v1/signin/anonymously' }, { fault: 'reset' });
    const res = await client.callFunction({ name: 'echo', data: { n: 7 } });
    assert.equal(res.result.data.n, 7);
    assert.equal(proxy.count('/auth/v1/signin/anonymously'), 3);
  });

  test('sign-in that keeps failing ends within the timeout with a clear error', async () => {
    const client = new cloud.Cloud({ resourceEnv: 'faults-signin-2', endpoint: proxy.url, timeout: TIMEOUT, persistence: 'none' });
    await client.init();
    proxy.plan({ path: '/auth/v1/signin/anonymously' }, { fault: 'status', status: 503 }, { times: 100 });
    const { error, ms } = await within(TIMEOUT + 1000, client.callFunction({ name: 'echo' }));
    assertCloudError(error, -601003, { errMsgIncludes: 'HTTP 503' });
    assert.ok(ms < TIMEOUT + 500, `${ms} ms`);
    assert.equal(proxy.count('functions.invokeFunction'), 0, 'nothing was invoked without a token');
  });

  test('clock skew: a client clock 3 h ahead refreshes its token; 3 h behind, the server says expired and it renews', async () => {
    const realNow = Date.now;
    try {
      Date.now = () => realNow() + 3 * 3600 * 1000;
      assert.equal((await items().where({ kind: 'seed' }).count()).total, 1);
      assert.equal(proxy.count('/auth/v1/token') + proxy.count('/auth/v1/signin/anonymously'), 1, 'renewed once');
      proxy.reset();
      Date.now = () => realNow() - 3 * 3600 * 1000;
      // The token looks fresh to the client; the server rejects it once (as it would after its real expiry).
      proxy.plan({ action: 'database.countDocument' }, { fault: 'json', body: { code: 'ACCESS_TOKEN_EXPIRED', message: 'expired' } });
      assert.equal((await items().where({ kind: 'seed' }).count()).total, 1);
      assert.equal(proxy.count('database.countDocument'), 2);
    } finally {
      Date.now = realNow;
    }
  });
});

describe('uploads and downloads: stall timeouts, not total-duration timeouts', () => {
  test('an upload the server stops reading fails after stallTimeout with -501002; nothing is stored', async () => {
    const cloudPath = `faults/${Date.now()}-stalled.bin`;
    proxy.plan({ method: 'PUT' }, { fault: 'stall-upload', bytes: 256 * 1024 }, { times: 1 });
    const file = new Uint8Array(8 * 1024 * 1024);
    const { error, ms } = await within(5000, cloud.uploadFile({ cloudPath, file, stallTimeout: 800 }));
    assertCloudError(error, -501002, { errMsgStartsWith: 'cloud.uploadFile:fail -501002', errMsgIncludes: 'no progress for 800 ms' });
    assert.ok(ms >= 700 && ms < 4000, `${ms} ms`);
    proxy.reset();
    const { fileList } = await cloud.getTempFileURL({ fileList: [`cloud://${ENV}.${ENV.replace(/-/g, '')}/${cloudPath}`] });
    assert.notEqual(fileList[0].status, 0, 'the stalled upload stored nothing');
  });

  test('a download whose body stalls fails after stallTimeout; a slow but steady one completes', async () => {
    const bytes = Buffer.alloc(64 * 1024, 7);
    const { fileID } = await cloud.uploadFile({ cloudPath: `faults/${Date.now()}-dl.bin`, file: bytes });
    proxy.plan({ method: 'GET' }, { fault: 'stall', bytes: 1024 });
    const stalled = await within(5000, cloud.downloadFile({ fileID, stallTimeout: 600 }));
    assertCloudError(stalled.error, -501002, { errMsgStartsWith: 'cloud.downloadFile:fail -501002' });
    assert.ok(stalled.ms >= 500 && stalled.ms < 4000, `${stalled.ms} ms`);
    // 16 pieces every 150 ms: 2.4 s in total, far longer than the 600 ms stall timeout.
    proxy.plan({ method: 'GET' }, { fault: 'slow', chunk: 4096, everyMs: 150 });
    const slow = await within(10_000, cloud.downloadFile({ fileID, stallTimeout: 600 }));
    assert.ifError(slow.error);
    assert.ok(slow.ms > 1500, `${slow.ms} ms`);
    assert.ok(Buffer.from(slow.value.data).equals(bytes));
  });

  test('a download answered 503 is retried; its bytes arrive intact', async () => {
    const bytes = Buffer.from('retried download');
    const { fileID } = await cloud.uploadFile({ cloudPath: `faults/${Date.now()}-retry.txt`, file: bytes });
    proxy.plan({ method: 'GET' }, { fault: 'status', status: 503 });
    proxy.plan({ method: 'GET' }, { fault: 'reset' });
    const { data } = await cloud.downloadFile({ fileID });
    assert.equal(Buffer.from(data).toString(), 'retried download');
    assert.equal(proxy.seen.filter((r) => r.method === 'GET').length, 3);
  });

  test('stallTimeout must be a positive number', async () => {
    assertCloudError(await rejection(cloud.downloadFile({ fileID: 'cloud://x.y/z', stallTimeout: 0 })), -401002);
    assertCloudError(await rejection(cloud.uploadFile({ cloudPath: 'a.txt', file: Buffer.from('a'), stallTimeout: '5' })), -401003);
  });
});

describe('connection refused', () => {
  test('every API ends within its timeout with -601003 when nothing listens', async () => {
    const port = await closedPort();
    const client = new cloud.Cloud({ resourceEnv: ENV, endpoint: `http://127.0.0.1:${port}`, timeout: 2000, persistence: 'none' });
    await client.init();
    const clientDb = client.database();
    for (const [api, call] of [
      ['cloud.callFunction', () => client.callFunction({ name: 'echo' })],
      ['collection.get', () => clientDb.collection('items').get()],
      ['collection.add', () => clientDb.collection('items').add({ data: { a: 1 } })],
      ['cloud.getTempFileURL', () => client.getTempFileURL({ fileList: ['cloud://a.b/c'] })],
      ['cloud.uploadFile', () => client.uploadFile({ cloudPath: 'a.txt', file: Buffer.from('a') })],
      ['cloud.downloadFile', () => client.downloadFile({ fileID: 'cloud://a.b/c' })],
    ]) {
      const { error, ms } = await within(3500, call());
      assertCloudError(error, -601003, { errMsgStartsWith: `${api}:fail -601003` });
      assert.ok(ms < 3000, `${api}: ${ms} ms`);
    }
  });
});
