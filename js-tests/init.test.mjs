// init and environments, each scenario in a fresh Node process (init is global and first-call-wins):
// uninitialised use, first call wins, Cloud instances, network failure, SDK timeout.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { closedPort, lastJsonLine, runNode, startEmulator } from './helpers/emulator.mjs';

let emulator;
before(async () => {
  emulator = await startEmulator();
});
after(async () => {
  await emulator?.stop();
});

// Prepended to every child: how an error is reported back to the test.
const PRELUDE = `
const show = (e) => e instanceof Error
  ? { isError: true, errCode: e.errCode, errMsg: e.errMsg, message: e.message }
  : { isError: false, value: e };
const settle = (p) => p.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error: show(error) }));
const print = (value) => console.log(JSON.stringify(value));
`;

async function child(body) {
  const run = await runNode(PRELUDE + body, { env: { EMU: emulator.url } });
  assert.equal(run.code, 0, `child failed: ${run.stderr}`);
  return lastJsonLine(run);
}

test('calling before init throws synchronously with errCode -1', async () => {
  const out = await child(`
    import { cloud } from 'taro-cloud-wasm';
    let thrown = null, returned;
    try { returned = cloud.callFunction({ name: 'echo' }); } catch (e) { thrown = show(e); }
    if (returned?.catch) returned.catch(() => {});
    print({ thrown, returnedPromise: !!returned });
  `);
  assert.equal(out.returnedPromise, false, 'no Promise comes back');
  assert.ok(out.thrown?.isError, 'an Error was thrown');
  assert.equal(out.thrown.errCode, -1);
  assert.match(out.thrown.errMsg, /init/);
});

test('callback style before init also throws synchronously', async () => {
  const out = await child(`
    import { cloud } from 'taro-cloud-wasm';
    let thrown = null, called = false;
    try { cloud.callFunction({ name: 'echo', fail: () => { called = true; } }); } catch (e) { thrown = show(e); }
    await new Promise((r) => setTimeout(r, 50));
    print({ thrown, called });
  `);
  assert.equal(out.thrown?.errCode, -1);
  assert.equal(out.called, false, 'fail is not called for an uninitialised SDK');
});

test('init: the first call wins', async () => {
  const out = await child(`
    import { cloud } from 'taro-cloud-wasm';
    cloud.init({ env: 'first-env', endpoint: process.env.EMU });
    cloud.init({ env: 'second-env', endpoint: process.env.EMU });
    const res = await settle(cloud.callFunction({ name: 'echo' }));
    print(res);
  `);
  assert.ok(out.ok, JSON.stringify(out));
  assert.equal(out.value.result.env, 'first-env');
});

test('new cloud.Cloud({resourceEnv, endpoint}): throws before init(), works after await init()', async () => {
  const out = await child(`
    import { cloud } from 'taro-cloud-wasm';
    const c = new cloud.Cloud({ resourceEnv: 'instance-env', endpoint: process.env.EMU });
    let before = null;
    try { const p = c.callFunction({ name: 'echo' }); p?.catch?.(() => {}); } catch (e) { before = show(e); }
    const initResult = c.init();
    const isPromise = typeof initResult?.then === 'function';
    await initResult;
    const res = await settle(c.callFunction({ name: 'echo', data: { via: 'instance' } }));
    // The default instance is untouched by the Cloud instance and still needs its own init.
    let defaultThrown = null;
    try { const p = cloud.callFunction({ name: 'echo' }); p?.catch?.(() => {}); } catch (e) { defaultThrown = show(e); }
    print({ before, isPromise, res, defaultThrown });
  `);
  assert.equal(out.before?.errCode, -1, 'an instance is unusable before init()');
  assert.equal(out.isPromise, true, 'instance.init() returns a Promise');
  assert.ok(out.res.ok, JSON.stringify(out.res));
  assert.equal(out.res.value.result.env, 'instance-env');
  assert.deepEqual(out.res.value.result.data, { via: 'instance' });
  assert.equal(out.defaultThrown?.errCode, -1);
});

test('two Cloud instances on different envs work side by side with the default one', async () => {
  const out = await child(`
    import { cloud } from 'taro-cloud-wasm';
    cloud.init({ env: 'default-env', endpoint: process.env.EMU });
    const a = new cloud.Cloud({ resourceEnv: 'env-a', endpoint: process.env.EMU });
    const b = new cloud.Cloud({ resourceEnv: 'env-b', endpoint: process.env.EMU });
    await Promise.all([a.init(), b.init()]);
    const [ra, rb, rd] = await Promise.all([
      a.callFunction({ name: 'echo' }), b.callFunction({ name: 'echo' }), cloud.callFunction({ name: 'echo' }),
    ]);
    print([ra.result.env, rb.result.env, rd.result.env]);
  `);
  assert.deepEqual(out, ['env-a', 'env-b', 'default-env']);
});

test('network failure (endpoint on a closed port): -601003', async () => {
  const port = await closedPort();
  const out = await child(`
    import { cloud } from 'taro-cloud-wasm';
    cloud.init({ env: 'net-env', endpoint: 'http://127.0.0.1:${port}' });
    const started = Date.now();
    const res = await settle(cloud.callFunction({ name: 'echo' }));
    print({ ...res, ms: Date.now() - started });
  `);
  assert.equal(out.ok, false);
  assert.equal(out.error.isError, true);
  assert.equal(out.error.errCode, -601003);
  assert.match(out.error.errMsg, /^cloud\.callFunction:fail -601003/);
  assert.ok(out.ms < 10_000, `fails promptly (${out.ms} ms)`);
});

test('SDK timeout (init timeout 300 ms, function takes 900 ms): -501002', async () => {
  const out = await child(`
    import { cloud } from 'taro-cloud-wasm';
    cloud.init({ env: 'timeout-env', endpoint: process.env.EMU, timeout: 300 });
    await cloud.callFunction({ name: 'echo' }); // sign in first, so only the call itself is timed
    // Two warm workers of 'slow' (their own answers may miss 300 ms on a loaded machine: only the workers
    // matter): the call after the timeout then finds an idle one instead of waiting for a Node start.
    await Promise.all([1, 2].map(() => settle(cloud.callFunction({ name: 'slow', data: { ms: 50 } }))));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const started = Date.now();
    const res = await settle(cloud.callFunction({ name: 'slow', data: { ms: 900 } }));
    const ms = Date.now() - started;
    const fast = await settle(cloud.callFunction({ name: 'slow', data: { ms: 10 } }));
    print({ ...res, ms, fastOk: fast.ok });
  `);
  assert.equal(out.ok, false);
  assert.equal(out.error.errCode, -501002);
  assert.match(out.error.errMsg, /^cloud\.callFunction:fail -501002/);
  assert.ok(out.ms >= 250 && out.ms < 900, `timed out near 300 ms (${out.ms} ms)`);
  assert.equal(out.fastOk, true, 'a call within the timeout still works');
});
