// The Taro drop-in, end to end: the real Taro 4.2.1 React app in taro-app/ (pages that use only `Taro.cloud.*`,
// wired by `import 'taro-cloud-wasm/register'`) is built with BOTH runners — @tarojs/webpack5-runner 4.2.1 and
// @tarojs/vite-runner 4.2.0 — as a production build and as the dev server, and each is driven in headless
// Chromium against cloud-emulator: callFunction (Promise and callbacks), chooseImage + uploadFile with its
// progress bar, getTempFileURL (the bytes read back), database add/where/orderBy/get, `new Taro.cloud.Cloud({
// resourceEnv })` + init(), and callContainer to a small HTTP service this test starts.
// The app installs the PACKED package (`npm pack` of pkg/, then `npm install <tarball>`); its ~450 MB of Taro
// dependencies are cached per hash of taro-app/package.json + lockfile (helpers/cached-install.mjs), so only the
// first run on a machine installs them (~3 min). Each build takes 15-60 s; the file runs them one after another.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makePng } from './helpers/png.mjs';
import { packPackage } from './helpers/bundler-apps.mjs';
import { cachedInstall, linkNodeModules, run } from './helpers/cached-install.mjs';
import { launchChromium } from './helpers/chromium.mjs';
import { REPO_ROOT, addCollections, closedPort, emulatorBinary, startEmulator, terminate } from './helpers/emulator.mjs';
import { serveStatic } from './helpers/static-server.mjs';

const TARO_APP = join(REPO_ROOT, 'taro-app');
const ENV = 'taro-e2e';
const SHARED_ENV = 'taro-e2e-shared';
// TARO_E2E_RUNNERS=webpack5 (or vite, or empty for the register checks only) narrows a run while debugging.
const RUNNERS = (process.env.TARO_E2E_RUNNERS ?? 'webpack5,vite').split(',').filter(Boolean);

// callContainer comes with the emulator's `--container NAME=URL` (branch `container`); without it that one
// check is skipped and says so.
const emulatorHelp = spawnSync(emulatorBinary(), ['start', '--help'], { encoding: 'utf8' }).stdout ?? '';
const CONTAINER_SUPPORTED = emulatorHelp.includes('--container');

let workDir;
let appDir;
let emulator;
let service;
let browser;

/** The container service: answers what it was asked, with the identity the gateway injected. */
async function startGreeter() {
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const url = new URL(request.url, 'http://greeter');
      const name = body ? JSON.parse(body).name : 'nobody';
      response.writeHead(200, { 'content-type': 'application/json', 'x-greeter': 'yes' });
      response.end(
        JSON.stringify({
          greeting: `Hello, ${name}!`,
          method: request.method,
          path: url.pathname,
          lang: url.searchParams.get('lang'),
          openid: request.headers['x-wx-openid'] ?? '',
          env: request.headers['x-wx-env'] ?? '',
        }),
      );
    });
  });
  await new Promise((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'taro-app-e2e-'));
  appDir = join(workDir, 'app');
  for (const entry of ['package.json', 'package-lock.json', 'babel.config.js', 'config', 'src']) {
    cpSync(join(TARO_APP, entry), join(appDir, entry), { recursive: true });
  }
  const [cache, tarball] = await Promise.all([cachedInstall(TARO_APP, 'taro-app'), packPackage(workDir)]);
  await linkNodeModules(cache, appDir);
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--offline', '--no-save', tarball], {
    cwd: appDir,
    timeoutMs: 180_000,
  });

  service = await startGreeter();
  emulator = await startEmulator({
    functions: join(TARO_APP, 'cloudfunctions'),
    extraArgs: CONTAINER_SUPPORTED ? ['--container', `greeter=${service.url}`] : [],
  });
  await addCollections(emulator.url, ENV, ['todos']);
  browser = await launchChromium();
}, { timeout: 900_000 });

after(async () => {
  await browser?.close();
  await emulator?.stop();
  await service?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

const taroEnv = (runner, extra = {}) => ({ ...process.env, TARO_APP_RUNNER: runner, BROWSERSLIST_IGNORE_OLD_DATA: '1', ...extra });

/** `taro build --type h5` (production); the folder it wrote. */
async function buildProduction(runner) {
  await run(join(appDir, 'node_modules', '.bin', 'taro'), ['build', '--type', 'h5'], {
    cwd: appDir,
    env: taroEnv(runner, { NODE_ENV: 'production' }),
    timeoutMs: 420_000,
  });
  return join(appDir, 'dist', runner);
}

/** `taro build --type h5 --watch` (the dev server) on a free port; resolves once it serves the app. */
async function startDevServer(runner) {
  const port = await closedPort();
  const child = spawn(join(appDir, 'node_modules', '.bin', 'taro'), ['build', '--type', 'h5', '--watch'], {
    cwd: appDir,
    env: taroEnv(runner, { NODE_ENV: 'development', TARO_APP_DEV_PORT: String(port) }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const keep = (chunk) => (output = (output + chunk).slice(-50_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  // Detached (its own process group, so stop() ends the runner's children too): never outlive this process.
  const killGroup = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  };
  process.once('exit', killGroup);
  exited.then(() => process.off('exit', killGroup));
  const stop = async () => {
    try {
      process.kill(-child.pid, 'SIGTERM'); // the runner's own children (esbuild, workers) too
    } catch {}
    const grace = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, 5_000);
    await exited;
    clearTimeout(grace);
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 420_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`taro dev server (${runner}) exited ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/`, { signal: AbortSignal.timeout(300_000) });
      if (res.ok && (await res.text()).includes('<div id="app">')) break;
    } catch {}
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`taro dev server (${runner}) did not serve ${url} in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
  return { url, stop, output: () => output };
}

/**
 * Loads the page once before the checked run: a dev server compiles on first request, and vite's dependency
 * optimizer may reload the page once meanwhile (its requests then fail by design).
 */
async function warmUp(url) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${url}/?endpoint=${encodeURIComponent(emulator.url)}#/pages/index/index`);
    await page.waitForSelector('#call-button', { timeout: 300_000 });
  } finally {
    await context.close();
  }
}

/** Drives every card of the page at `url`; `label` names the build in messages. */
async function drivePage(t, url, label) {
  const context = await browser.newContext();
  const problems = [];
  try {
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      // Failed loads are reported by the response handler below, with their URL.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        problems.push(`console.error: ${message.text()}`);
      }
    });
    page.on('response', (response) => {
      // A static host has no favicon; anything else missing or failing is a problem.
      if (response.status() >= 400 && !response.url().endsWith('/favicon.ico')) {
        problems.push(`HTTP ${response.status()} for ${response.url()}`);
      }
    });
    await page.goto(`${url}/?endpoint=${encodeURIComponent(emulator.url)}#/pages/index/index`);
    await page.waitForSelector('#call-button', { timeout: 120_000 });

    const runCard = async (key) => {
      await page.click(`#${key}-button`);
      const handle = await page.waitForFunction(
        (id) => document.getElementById(id)?.textContent || undefined,
        `${key}-result`,
        { timeout: 60_000 },
      );
      const text = await handle.jsonValue();
      assert.doesNotMatch(text, /^fail|^chooseImage/, `${label} ${key}: ${text}`);
      return JSON.parse(text);
    };

    const call = await runCard('call');
    assert.equal(call.errMsg, 'cloud.callFunction:ok');
    assert.equal(call.result.sum, 3);
    assert.equal(call.result.env, ENV);
    assert.match(call.result.openid, /\S/);

    const callback = await runCard('callback');
    assert.deepEqual([callback.result.sum, callback.errMsg], [42, 'cloud.callFunction:ok']);

    // chooseImage opens the browser's file chooser; the test picks a ~6 MB photo.
    const photo = makePng(1400, 1400, { noise: true, deflateLevel: 0 });
    const chooser = page.waitForEvent('filechooser', { timeout: 30_000 });
    const uploadDone = page.waitForFunction(() => document.getElementById('upload-result')?.textContent, null, { timeout: 120_000 });
    await page.click('#upload-button');
    await (await chooser).setFiles({ name: 'photo.png', mimeType: 'image/png', buffer: photo });
    const upload = JSON.parse(await (await uploadDone).jsonValue());
    assert.equal(upload.errMsg, 'cloud.uploadFile:ok', JSON.stringify(upload));
    assert.match(upload.fileID, new RegExp(`^cloud://${ENV}\\.[^/]+/photos/\\d+\\.png$`));
    const seen = (await page.textContent('#upload-progress-seen')).split(',').map(Number);
    assert.ok(seen.length >= 1 && seen.at(-1) === 100, `${label}: progress events ${seen}`);
    assert.deepEqual([...seen].sort((a, b) => a - b), seen, `${label}: progress never goes back`);
    // The <Progress> bar shows the last percent.
    assert.match(await page.textContent('#upload-progress'), /100%/);

    const temp = await runCard('tempurl');
    assert.equal(temp.errMsg, 'cloud.getTempFileURL:ok');
    assert.equal(temp.status, 0);
    const downloaded = Buffer.from(await (await fetch(temp.tempFileURL)).arrayBuffer());
    assert.ok(downloaded.equals(photo), `${label}: the temp URL serves the uploaded bytes`);

    const db = await runCard('db');
    assert.deepEqual(db, { titles: ['test it', 'write the page', 'ship it'], errMsg: 'collection.get:ok' });

    const instance = await runCard('instance');
    assert.deepEqual([instance.result.sum, instance.result.env, instance.errMsg], [5, SHARED_ENV, 'cloud.callFunction:ok']);

    if (CONTAINER_SUPPORTED) {
      const container = await runCard('container');
      assert.equal(container.errMsg, 'cloud.callContainer:ok');
      assert.equal(container.statusCode, 200);
      assert.equal(container.data.greeting, 'Hello, Taro!');
      assert.deepEqual([container.data.method, container.data.path, container.data.lang], ['POST', '/greet', 'en']);
      assert.equal(container.data.openid, call.result.openid, 'the gateway injects the caller’s openid');
    } else {
      t.diagnostic(`${label}: callContainer not checked — this cloud-emulator has no --container (branch container)`);
    }
    // Each build's page runs in a fresh context, so a fresh anonymous user whose todos are its own.
    assert.deepEqual(problems, [], `${label}: the page reported errors`);
  } finally {
    await context.close();
  }
}

// `taro-cloud-wasm/register` against the real @tarojs/taro object in Node (the app's installed copy). Taro's runtime
// reads a few build-time constants (its bundlers define them); defined as globals here so that it loads.
const TARO_BUILD_FLAGS = ['INNER_HTML', 'ADJACENT_HTML', 'SIZE_APIS', 'TEMPLATE_CONTENT', 'CLONE_NODE', 'CONTAINS', 'MUTATION_OBSERVER']
  .map((flag) => `globalThis.ENABLE_${flag} = true;`)
  .join(' ');

/** Runs an ES module in the app folder (so '@tarojs/taro' and the installed package resolve); its JSON line. */
async function inApp(source) {
  const output = await run(process.execPath, ['--input-type=module', '-e', `${TARO_BUILD_FLAGS}\n${source}`], {
    cwd: appDir,
    timeoutMs: 60_000,
  });
  return JSON.parse(output.trim().split('\n').at(-1));
}

describe("import 'taro-cloud-wasm/register' with the real @tarojs/taro", () => {
  test('sets Taro.cloud to the package cloud, once: importing or requiring it again changes nothing', async () => {
    const out = await inApp(`
      import { createRequire } from 'node:module';
      const { default: Taro } = await import('@tarojs/taro');
      const before = 'cloud' in Taro;
      const { cloud, register } = await import('taro-cloud-wasm/register');
      const first = Taro.cloud;
      const again = register();
      createRequire(import.meta.url)('taro-cloud-wasm/register'); // the CommonJS build: another module instance
      console.log(JSON.stringify({ before, set: first === cloud, again: again === cloud, kept: Taro.cloud === cloud,
        kinds: [typeof Taro.cloud.init, typeof Taro.cloud.callFunction, typeof Taro.cloud.database, typeof Taro.cloud.Cloud] }));
    `);
    assert.deepEqual(out, { before: false, set: true, again: true, kept: true, kinds: ['function', 'function', 'function', 'function'] });
  });

  test('in a mini-program it keeps the real wx.cloud Taro already set', async () => {
    const out = await inApp(`
      const { default: Taro } = await import('@tarojs/taro');
      const wxCloud = { init() {}, callFunction() { return 'wx'; } };
      globalThis.wx = { cloud: wxCloud };
      Taro.cloud = wxCloud; // what @tarojs/plugin-platform-weapp's initNativeApi does
      const { cloud } = await import('taro-cloud-wasm/register');
      console.log(JSON.stringify({ kept: Taro.cloud === wxCloud, exported: cloud === wxCloud }));
    `);
    assert.deepEqual(out, { kept: true, exported: true });
  });

  test('with wx.cloud present but Taro.cloud unset, Taro.cloud becomes wx.cloud (no wasm cloud)', async () => {
    const out = await inApp(`
      const { default: Taro } = await import('@tarojs/taro');
      const wxCloud = { init() {}, callFunction() {} };
      globalThis.wx = { cloud: wxCloud };
      await import('taro-cloud-wasm/register');
      console.log(JSON.stringify({ wx: Taro.cloud === wxCloud }));
    `);
    assert.deepEqual(out, { wx: true });
  });

  test('a getter-only module namespace (also one nested in another namespace\'s default) is unwrapped', async () => {
    writeFileSync(join(appDir, 'nested-namespace.mjs'), "import * as taro from '@tarojs/taro';\nexport default taro;\n");
    const out = await inApp(`
      const namespace = await import('@tarojs/taro'); // after the flags: static imports would run first
      const outer = await import('./nested-namespace.mjs');
      const { cloud, register } = await import('taro-cloud-wasm/register');
      const Taro = namespace.default;
      delete Taro.cloud;
      let threw = null;
      try { namespace.cloud = 1; } catch (error) { threw = error.constructor.name; }
      const viaNamespace = register(namespace) === cloud && Taro.cloud === cloud;
      delete Taro.cloud;
      const viaNested = register(outer) === cloud && Taro.cloud === cloud;
      console.log(JSON.stringify({ threw, viaNamespace, viaNested }));
    `);
    assert.deepEqual(out, { threw: 'TypeError', viaNamespace: true, viaNested: true });
  });

  test("Taro H5's stub class and a getter-only Taro.cloud are replaced; an object that cannot take it fails clearly", async () => {
    const out = await inApp(`
      const { cloud, register } = await import('taro-cloud-wasm/register');
      const taro = { cloud: class cloud {} };
      const replaced = register(taro) === cloud && taro.cloud === cloud;
      const withGetter = Object.defineProperty({}, 'cloud', { get: () => undefined, configurable: true });
      const getterReplaced = register(withGetter) === cloud && withGetter.cloud === cloud;
      let message = null;
      try { register(Object.freeze({})); } catch (error) { message = error.message; }
      console.log(JSON.stringify({ replaced, getterReplaced, message }));
    `);
    assert.equal(out.replaced, true);
    assert.equal(out.getterReplaced, true, 'a configurable getter-only cloud is redefined');
    assert.match(out.message, /^taro-cloud-wasm\/register: cannot set Taro\.cloud on this Taro object/);
  });
});

for (const runner of RUNNERS) {
  describe(`Taro 4 app, ${runner} runner`, () => {
    test('production build, served statically', { timeout: 600_000 }, async (t) => {
      const dist = await buildProduction(runner);
      const site = await serveStatic(dist);
      try {
        await drivePage(t, site.url, `${runner} production`);
      } finally {
        await site.close();
      }
    });

    test('dev server (taro build --watch)', { timeout: 600_000 }, async (t) => {
      const dev = await startDevServer(runner);
      try {
        await warmUp(dev.url);
        await drivePage(t, dev.url, `${runner} dev server`);
      } finally {
        await dev.stop();
      }
    });
  });
}
