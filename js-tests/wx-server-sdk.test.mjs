// The server side: cloud functions using the REAL wx-server-sdk 4.0.2 (the pinned copy cloud-emulator gives
// functions without their own node_modules) against the emulator's admin protocol (/admin), called from the
// built package like an app would. CRUD with every EJSON type, aggregate, runTransaction (incl. a write
// conflict between two concurrent transactions that the SDK retries), startTransaction commit / rollback /
// snapshot reads, callFunction and storage from a function, getWXContext, openapi's clear refusal.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startEmulator } from './helpers/emulator.mjs';

const ENV = 'wxsdk-env';
let emulator;
let cloud;

before(async () => {
  emulator = await startEmulator();
  ({ cloud } = await import('taro-cloud-wasm'));
  cloud.init({ env: ENV, endpoint: emulator.url });
});
after(async () => {
  await emulator?.stop();
});

/** Runs `wxsdk` with `data`; its return value. */
async function run(data) {
  const { result } = await cloud.callFunction({ name: 'wxsdk', data });
  return result;
}

test('getWXContext: the caller, the env and the source, from the real SDK', async () => {
  const { ctx, version } = await run({ op: 'context' });
  assert.equal(version, '4.0.2', 'the pinned real wx-server-sdk, not a stand-in');
  assert.match(ctx.OPENID, /^o[\w-]{27}$/);
  assert.match(ctx.APPID, /^wx[0-9a-f]{16}$/);
  assert.equal(ctx.ENV, ENV);
  assert.equal(ctx.SOURCE, 'wx_client');
  assert.equal(ctx.UNIONID, '');
});

test('CRUD: every EJSON type round-trips; queries, commands and errors as the SDK reports them', async () => {
  const r = await run({ op: 'crud', coll: 'crud' });
  assert.equal(r.again.code, 'DATABASE_COLLECTION_ALREADY_EXIST');
  assert.deepEqual(r.added, ['_id', 'errMsg']);
  assert.deepEqual(r.many._ids, ['x2', 'x3']);
  assert.deepEqual(r.field, { _id: 'x2', title: 'second' });
  assert.equal(r.types.at, 1704164645678, 'a Date comes back as a Date');
  assert.ok(Math.abs(r.types.when - 1000) < 5000, `serverDate({offset}) resolved by the server: ${r.types.when}`);
  assert.equal(r.types.big, 2 ** 40);
  assert.equal(r.types.price, 1.5);
  assert.equal(r.types.nothing, null);
  assert.deepEqual(r.types.re, ['^fi', 'i']);
  assert.deepEqual(r.types.loc, [113.3245, 23.1064], 'a Geo.Point comes back as a Point');
  assert.deepEqual(r.query, [2, 1], '_.gt().and(_.lt()) with a JS RegExp, ordered desc');
  assert.deepEqual(r.or, [1, 3]);
  assert.deepEqual(r.near, [1, 0], '_.geoNear with maxDistance in metres');
  assert.equal(r.count, 3);
  assert.deepEqual(r.updated, { updated: 1 });
  assert.deepEqual(r.multi, { updated: 2 });
  assert.deepEqual(r.replaced, { updated: 1, created: 0 });
  assert.deepEqual(r.created, ['brand-new', { updated: 0, created: 1 }]);
  assert.deepEqual(r.afterUpdate, { n: 11, tags: ['a', 'b', 'c'], price: 3, nested: { a: { b: 2 } }, hasNothing: false });
  assert.deepEqual(r.removed, { removed: 1 });
  assert.deepEqual(r.removedMany, { removed: 2 });
  assert.equal(r.missing.errMsg, 'document.get:fail document with _id nope does not exist');
  assert.equal(r.noColl.errCode, -502005);
  assert.match(r.noColl.errMsg, /^collection\.get:fail -502005 database collection not exists\. /);
  assert.equal(r.left.length, 1);
});

test('aggregate: match + group + sort + limit, and project expressions', async () => {
  const r = await run({ op: 'aggregate', coll: 'agg' });
  assert.deepEqual(r.grouped, [{ _id: 'b', total: 5, count: 1 }, { _id: 'a', total: 3, count: 2 }]);
  assert.deepEqual(r.projected.map((d) => d.double), [1, 2, 4, 10]);
  assert.equal(r.broken.errCode, -1, 'aggregate errors lose the errCode mapping in wx-server-sdk');
  assert.equal(r.broken.code, 'DATABASE_COLLECTION_NOT_EXIST');
});

test('runTransaction: reads and writes commit together; t.rollback(reason) rejects with the reason', async () => {
  const r = await run({ op: 'transfer', coll: 'bank' });
  assert.equal(r.result.before, 100);
  assert.equal(r.alice, 70, 'the -1000 of the rolled-back transaction never happened');
  assert.equal(r.bob, 30);
  assert.equal(r.log, 30, 'a document added inside the transaction exists after commit');
  assert.deepEqual(r.refused, { raw: 'insufficient balance' });
});

test('runTransaction: two concurrent transactions conflict, one commits and the SDK retries the other', async () => {
  assert.equal(await run({ op: 'prepare', coll: 'counters', docs: [{ _id: 'counter', data: { n: 0 } }] }), true);
  const both = await Promise.all([
    run({ op: 'increment', coll: 'counters', who: 'one' }),
    run({ op: 'increment', coll: 'counters', who: 'two' }),
  ]);
  const attempts = both.map((b) => b.attempts).sort();
  assert.deepEqual(attempts, [1, 2], `one committed first time, the other after one retry: ${JSON.stringify(both)}`);
  const retried = both.find((b) => b.attempts === 2);
  assert.equal(retried.saw, 1, 'the retry read the winner\'s committed value');
  const counter = await run({ op: 'read', coll: 'counters', id: 'counter' });
  assert.equal(counter.n, 2, 'no lost update');
});

test('startTransaction: own writes visible inside only; commit publishes, rollback discards; snapshot reads', async () => {
  const r = await run({ op: 'manual', coll: 'manual' });
  assert.equal(r.inside, 2);
  assert.equal(r.outsideBefore, 1, 'uncommitted writes are invisible outside');
  assert.ok(r.committed.includes('requestId'));
  assert.equal(r.outsideAfter, 2);
  assert.equal(r.afterRollback, 2, 'rolled-back update invisible');
  assert.equal(r.survivor, null, 'rolled-back remove invisible');
  assert.equal(r.never.errMsg, 'document.get:fail document with _id never does not exist', 'rolled-back add invisible');
  assert.ok(r.reuse, 'a rolled-back transaction cannot be used again');
  assert.equal(r.snapshot, 2, 'a commit made after the start is invisible to the transaction');
  assert.equal(r.conflict.code, 'DATABASE_TRANSACTION_CONFLICT');
  assert.equal(r.final, 3, 'the conflicting transaction applied nothing');
  assert.match(r.where.errMsg ?? r.where.message, /single documents/);
});

test('callFunction from a function: result, requestID, the caller passes through; errors keep their code', async () => {
  const r = await run({ op: 'call', name: 'echo', data: { hello: 'world', when: '2024-01-01T00:00:00.000Z' } });
  assert.deepEqual(r.keys, ['errMsg', 'requestID', 'result']);
  assert.deepEqual(r.result.data, { hello: 'world', when: '2024-01-01T00:00:00.000Z' });
  assert.equal(r.result.functionName, 'echo');
  assert.equal(r.result.userInfo.openId, r.ctx.OPENID, 'the callee runs for the same user');
  assert.equal(r.missing.code, 'FUNCTION_NOT_FOUND');
  assert.equal(r.missing.errCode, -1);
});

test('storage from a function: upload (metadata + PUT), temp URL, download, delete', async () => {
  const r = await run({ op: 'storage' });
  assert.equal(r.fileID, `cloud://${ENV}.7778-${ENV}-1250000000/sdk/hello world ✓.txt`);
  assert.equal(r.statusCode, -1, 'wx-server-sdk reports -1 for the PUT');
  assert.equal(r.url.status, 0);
  assert.equal(r.url.maxAge, 600);
  assert.equal(r.viaUrl, 'hello from wx-server-sdk ✓');
  assert.equal(r.down, 'hello from wx-server-sdk ✓');
  assert.deepEqual(r.removed, [{ fileID: r.fileID, status: 0, errMsg: 'ok' }]);
  assert.equal(r.gone.code, 'STORAGE_FILE_NONEXIST');
});

test('cloud.openapi fails with a clear "not available in cloud-emulator" error', async () => {
  const r = await run({ op: 'openapi' });
  assert.ok(r, 'it rejects');
  assert.match(r.errMsg ?? r.message, /not available in cloud-emulator/);
});
