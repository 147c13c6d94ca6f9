// How the package is loaded: ESM named and default imports give the same object, CommonJS require works,
// the SDK is usable synchronously right after import (init at module top level), and a pre-existing
// globalThis.wx.cloud is passed through untouched. Each case runs in a fresh process.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { lastJsonLine, runNode, startEmulator } from './helpers/emulator.mjs';

let emulator;
before(async () => {
  emulator = await startEmulator();
});
after(async () => {
  await emulator?.stop();
});

async function run(source, type = 'module') {
  const result = await runNode(source, { type, env: { EMU: emulator.url } });
  assert.equal(result.code, 0, `child exited ${result.code}: ${result.stderr}`);
  return lastJsonLine(result);
}

test("ESM: import { cloud } and import cloud from 'taro-cloud-wasm' are the same object", async () => {
  const out = await run(`
    import cloud, { cloud as named } from 'taro-cloud-wasm';
    console.log(JSON.stringify({ same: cloud === named, kinds: [typeof cloud.init, typeof cloud.callFunction, typeof cloud.Cloud] }));
  `);
  assert.equal(out.same, true);
  assert.deepEqual(out.kinds, ['function', 'function', 'function']);
});

test('ESM: init and callFunction at module top level, right after import', async () => {
  const out = await run(`
    import { cloud } from 'taro-cloud-wasm';
    cloud.init({ env: 'esm-env', endpoint: process.env.EMU });
    const pending = cloud.callFunction({ name: 'echo', data: { from: 'esm' } });
    pending.then((res) => console.log(JSON.stringify(res.result)));
  `);
  assert.deepEqual(out.data, { from: 'esm' });
  assert.equal(out.env, 'esm-env');
});

test('ESM default import works synchronously too', async () => {
  const out = await run(`
    import cloud from 'taro-cloud-wasm';
    cloud.init({ env: 'default-import-env', endpoint: process.env.EMU });
    cloud.callFunction({ name: 'echo', data: { from: 'default' }, success: (res) => console.log(JSON.stringify(res.result)) });
  `);
  assert.deepEqual(out.data, { from: 'default' });
});

test("CJS: require('taro-cloud-wasm') is usable synchronously", async () => {
  const out = await run(
    `
    const { cloud } = require('taro-cloud-wasm');
    cloud.init({ env: 'cjs-env', endpoint: process.env.EMU });
    cloud.callFunction({ name: 'echo', data: { from: 'cjs' } }).then((res) => console.log(JSON.stringify(res.result)));
  `,
    'commonjs',
  );
  assert.deepEqual(out.data, { from: 'cjs' });
  assert.equal(out.env, 'cjs-env');
});

test('wx passthrough (ESM): a globalThis.wx.cloud set before import is the exported cloud', async () => {
  const out = await run(`
    const stub = { marker: 'wx-stub', init() {}, callFunction() { return 'stubbed'; } };
    globalThis.wx = { cloud: stub };
    const mod = await import('taro-cloud-wasm');
    console.log(JSON.stringify({ named: mod.cloud === stub, default: mod.default === stub, call: mod.cloud.callFunction() }));
  `);
  assert.deepEqual(out, { named: true, default: true, call: 'stubbed' });
});

test('wx passthrough (CJS)', async () => {
  const out = await run(
    `
    const stub = { marker: 'wx-stub-cjs' };
    globalThis.wx = { cloud: stub };
    const mod = require('taro-cloud-wasm');
    console.log(JSON.stringify({ named: mod.cloud === stub }));
  `,
    'commonjs',
  );
  assert.deepEqual(out, { named: true });
});

test('no wx.cloud (wx present without cloud): our own implementation is exported', async () => {
  const out = await run(`
    globalThis.wx = {};
    const { cloud } = await import('taro-cloud-wasm');
    cloud.init({ env: 'nowx-env', endpoint: process.env.EMU });
    const res = await cloud.callFunction({ name: 'echo' });
    console.log(JSON.stringify({ env: res.result.env }));
  `);
  assert.deepEqual(out, { env: 'nowx-env' });
});
