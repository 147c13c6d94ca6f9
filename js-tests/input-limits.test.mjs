// Hostile input to the SDK (issue 9): nesting deeper than the documented limit (100 levels), cycles and
// oversize arguments fail that one call with the parameter errCode before any request is sent, never with
// a wasm trap; and should a trap ever happen (forced here through a corrupted object pointer), the shim
// restarts the wasm: that call fails with errCode -1 / INTERNAL_ERROR and every later call works.
// The same checks run in headless Chromium at the end.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { launchChromium } from './helpers/chromium.mjs';
import { makeSdkSite } from './helpers/sdk-site.mjs';
import { addCollections, lastJsonLine, runNode, startEmulator } from './helpers/emulator.mjs';
import { assertCloudError, rejection, syncThrow } from './helpers/expect.mjs';

const ENV = 'input-limits';
const LIMIT = 100; // cloud_protocol::limits::MAX_NESTING_DEPTH
let emulator;
let cloud;
let db;
let _;
let webRequests = 0;

function nested(levels, leaf = 1) {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = { a: value };
  return value;
}

before(async () => {
  emulator = await startEmulator();
  ({ cloud } = await import('taro-cloud-wasm'));
  // Count the /web requests this process sends, to show refused input never reaches the network.
  const realFetch = globalThis.fetch;
  globalThis.fetch = (url, init) => {
    if (String(url).includes('/web')) webRequests += 1;
    return realFetch(url, init);
  };
  cloud.init({ env: ENV, endpoint: emulator.url, persistence: 'none' });
  db = cloud.database();
  _ = db.command;
  await addCollections(emulator.url, ENV, ['deep']);
  await db.collection('deep').add({ data: { warm: true } }); // signs in
});
after(async () => {
  await emulator?.stop();
});

/** Runs `call` (which must fail with -401002 before any I/O) and checks no /web request went out. */
async function refusedBeforeIo(call, errMsgIncludes) {
  const before = webRequests;
  let error;
  try {
    const result = call();
    error = result && typeof result.then === 'function' ? await rejection(result) : assert.fail('expected a failure');
  } catch (thrown) {
    if (thrown instanceof assert.AssertionError) throw thrown;
    error = thrown;
  }
  assertCloudError(error, -401002, { errMsgIncludes });
  assert.equal(webRequests, before, 'no request was sent');
  return error;
}

describe('nesting, cycles and size are refused before any I/O', () => {
  const tooDeep = `nested deeper than ${LIMIT} levels`;

  for (const depth of [LIMIT + 1, 10_000, 200_000]) {
    test(`depth ${depth}: add, where, update, set, aggregate, commands and callFunction each fail with -401002`, async () => {
      const value = nested(depth);
      const deep = db.collection('deep');
      await refusedBeforeIo(() => deep.add({ data: { value } }), tooDeep);
      await refusedBeforeIo(() => deep.where({ value }), tooDeep);
      await refusedBeforeIo(() => deep.where({ warm: true }).update({ data: { value } }), tooDeep);
      await refusedBeforeIo(() => deep.doc('x').set({ data: { value } }), tooDeep);
      await refusedBeforeIo(() => deep.doc('x').update({ data: { value } }), tooDeep);
      await refusedBeforeIo(() => deep.aggregate().match({ value }), tooDeep);
      await refusedBeforeIo(() => _.eq(value), tooDeep);
      await refusedBeforeIo(() => _.push([value]), tooDeep);
      await refusedBeforeIo(() => _.gt(0).and(value), tooDeep);
      await refusedBeforeIo(() => cloud.callFunction({ name: 'echo', data: { value } }), 'parameter.data');
    });
  }

  test('SDK values count their own depth: commands nested or chained past the limit are refused', async () => {
    let command = _.eq(1);
    let refused;
    for (let i = 0; i < 10_000 && !refused; i++) {
      try {
        command = _.and(command, { x: 1 });
      } catch (error) {
        refused = error;
      }
    }
    assertCloudError(refused, -401002, { errMsgIncludes: tooDeep });
    let chained = _.gt(0);
    refused = undefined;
    for (let i = 0; i < 10_000 && !refused; i++) {
      try {
        chained = chained.lt(i);
      } catch (error) {
        refused = error;
      }
    }
    assertCloudError(refused, -401002, { errMsgIncludes: tooDeep });
    // The deepest command that was accepted still fits inside a where() only as deep as the limit allows.
    await refusedBeforeIo(() => db.collection('deep').where({ a: { b: nested(LIMIT - 3, chained) } }), tooDeep);
  });

  test('a cycle fails that call: -402001 in the database, -401003 in callFunction', async () => {
    const cyclic = { name: 'loop' };
    cyclic.self = { back: cyclic };
    const before = webRequests;
    assertCloudError(await rejection(db.collection('deep').add({ data: cyclic })), -402001);
    assertCloudError(syncThrow(() => db.collection('deep').where(cyclic)), -402001);
    assertCloudError(await rejection(cloud.callFunction({ name: 'echo', data: cyclic })), -401003);
    assert.equal(webRequests, before);
  });

  test('oversize: a 20 MB where() argument, a 600 KB record and 6 MB of callFunction data fail with -401002', async () => {
    await refusedBeforeIo(() => db.collection('deep').where({ name: 'x'.repeat(20 * 1024 * 1024) }), 'larger than 16 MB');
    await refusedBeforeIo(() => db.collection('deep').where({ tags: _.in(new Array(3_000_000).fill(1)) }), 'larger than 16 MB');
    await refusedBeforeIo(() => db.collection('deep').add({ data: { blob: 'y'.repeat(600 * 1024) } }), '512 KB');
    await refusedBeforeIo(() => cloud.callFunction({ name: 'echo', data: { blob: 'z'.repeat(6 * 1024 * 1024) } }), '5120 KB');
  });

  test('exactly the limit still works end to end, and the SDK is healthy after every refusal', async () => {
    const value = nested(LIMIT - 1); // `data` is the first level
    const { _id } = await db.collection('deep').add({ data: { value } });
    const { data } = await db.collection('deep').doc(_id).get();
    assert.deepEqual(data.value, value);
    const echoed = await cloud.callFunction({ name: 'echo', data: { value: nested(LIMIT - 2) } });
    assert.deepEqual(echoed.result.data.value, nested(LIMIT - 2));
    const { total } = await db.collection('deep').where({ warm: true }).count();
    assert.equal(total, 1);
  });
});

// A trap cannot be provoked through the public API any more, so these runs corrupt an object's pointer
// (`__wbg_ptr`, where wasm-bindgen keeps the Rust address) to make the wasm read out of bounds: a real
// WebAssembly.RuntimeError inside the SDK, as a bug would cause.
const TRAP_SCRIPT = (url) => `
import { cloud } from 'taro-cloud-wasm';
const events = [];
process.on('unhandledRejection', (reason) => events.push('unhandledRejection: ' + (reason && reason.message)));
process.on('uncaughtException', (error) => events.push('uncaughtException: ' + error.message));
const out = {};
cloud.init({ env: ${JSON.stringify(ENV)}, endpoint: ${JSON.stringify(url)}, persistence: 'none' });
const db = cloud.database();
await db.collection('deep').add({ data: { mine: true } });
const query = db.collection('deep').where({ mine: true });
const oldCommand = db.command.eq(true);
out.before = (await query.count()).total;
const broken = db.collection('deep');
broken.__wbg_ptr = 0x7ffffff0;
try { await broken.where({ mine: true }).count(); out.trap = 'no error'; }
catch (error) { out.trap = { errCode: error.errCode, code: error.code, errMsg: error.errMsg, isRuntimeError: error instanceof WebAssembly.RuntimeError }; }
try { query.count(); out.stale = 'no error'; } catch (error) { out.stale = { errCode: error.errCode, errMsg: error.errMsg }; }
const fresh = cloud.database();
out.after = (await fresh.collection('deep').where({ mine: true }).count()).total;
out.command = (await fresh.collection('deep').where({ mine: fresh.command.eq(true) }).count()).total;
try { await fresh.collection('deep').where({ mine: oldCommand }).count(); out.oldCommand = 'no error'; }
catch (error) { out.oldCommand = { errCode: error.errCode, errMsg: error.errMsg }; }
out.call = (await cloud.callFunction({ name: 'echo', data: { n: 1 } })).errMsg;
global.gc?.();
await new Promise((r) => setTimeout(r, 200));
out.events = events;
console.log(JSON.stringify(out));
`;

describe('a wasm trap restarts the SDK instead of leaving it broken', () => {
  test('in Node: the trapping call fails with -1 INTERNAL_ERROR, later calls work, old objects say so', async () => {
    const run = await runNode(TRAP_SCRIPT(emulator.url), { timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.stderr);
    const out = lastJsonLine(run);
    assert.equal(out.before, 1);
    assert.equal(out.trap.errCode, -1);
    assert.equal(out.trap.code, 'INTERNAL_ERROR');
    assert.equal(out.trap.isRuntimeError, false);
    assert.match(out.trap.errMsg, /^collection\.where:fail internal error \(.*\); the SDK restarted itself/);
    assert.equal(out.stale.errCode, -1);
    assert.match(out.stale.errMsg, /made before the SDK restarted/);
    assert.equal(out.after, 1);
    assert.equal(out.command, 1);
    assert.equal(out.oldCommand.errCode, -401003, JSON.stringify(out.oldCommand));
    assert.equal(out.call, 'cloud.callFunction:ok');
    assert.deepEqual(out.events, []);
  });

  test('in Node: calls in flight around a trap each settle once; callbacks keep working', async () => {
    const script = `
import { cloud } from 'taro-cloud-wasm';
const events = [];
process.on('unhandledRejection', (reason) => events.push('unhandledRejection: ' + (reason && reason.message)));
cloud.init({ env: ${JSON.stringify(ENV)}, endpoint: ${JSON.stringify(emulator.url)}, persistence: 'none' });
const db = cloud.database();
const out = {};
const victim = db.collection('deep');
victim.__wbg_ptr = 0xfffffff0;
const results = await Promise.allSettled([
  (async () => victim.count())(),
  (async () => victim.get())(),
  cloud.callFunction({ name: 'echo' }),
]);
out.settled = results.map((r) => r.status === 'fulfilled' ? 'ok' : r.reason.errCode !== -1 ? r.reason.errMsg : /made before/.test(r.reason.errMsg) ? 'stale' : r.reason.code);
let completes = 0;
await new Promise((resolve) => cloud.callFunction({ name: 'echo', data: { n: 2 }, success: (res) => { out.callback = res.result; }, complete: () => { completes++; resolve(); } }));
await new Promise((r) => setTimeout(r, 100));
out.completes = completes;
out.events = events;
console.log(JSON.stringify(out));
`;
    const run = await runNode(script, { timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.stderr);
    const out = lastJsonLine(run);
    assert.deepEqual(out.settled, ['INTERNAL_ERROR', 'stale', 'ok']);
    assert.deepEqual(out.callback.data, { n: 2 });
    assert.equal(out.completes, 1);
    assert.deepEqual(out.events, []);
  });
});

describe('in headless Chromium', () => {
  let siteDir;
  let site;
  let browser;
  before(async () => {
    siteDir = makeSdkSite('input-limits');
    site = await startEmulator({ hosting: siteDir });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await site?.stop();
    if (siteDir) rmSync(siteDir, { recursive: true, force: true });
  });

  test('deep input fails with -401002, a forced trap restarts the SDK, no page errors', async () => {
    const page = await browser.newPage();
    const problems = [];
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    await page.goto(`http://localhost:${site.port}/`);
    await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
    const out = await page.evaluate(
      async ([env, endpoint]) => {
        const { cloud } = window;
        cloud.init({ env, endpoint, persistence: 'none' });
        const db = cloud.database();
        let value = 1;
        for (let i = 0; i < 10_000; i++) value = { a: value };
        const codes = {};
        for (const [name, call] of [
          ['add', () => db.collection('deep').add({ data: { value } })],
          ['where', () => db.collection('deep').where({ value }).get()],
          ['callFunction', () => cloud.callFunction({ name: 'echo', data: value })],
        ]) {
          try {
            await call();
            codes[name] = 'ok';
          } catch (error) {
            codes[name] = error.errCode;
          }
        }
        const broken = db.collection('deep');
        broken.__wbg_ptr = 0x7ffffff0;
        let trap;
        try {
          await broken.count();
        } catch (error) {
          trap = { errCode: error.errCode, code: error.code };
        }
        const after = await cloud.callFunction({ name: 'echo', data: { n: 3 } });
        return { codes, trap, after: after.errMsg };
      },
      [ENV, site.url],
    );
    assert.deepEqual(out.codes, { add: -401002, where: -401002, callFunction: -401002 });
    assert.deepEqual(out.trap, { errCode: -1, code: 'INTERNAL_ERROR' });
    assert.equal(out.after, 'cloud.callFunction:ok');
    assert.deepEqual(problems, []);
    await page.close();
  });
});
