// callContainer in headless Chromium (playwright-core): the built package runs in a page served by the
// emulator's --hosting as http://localhost:PORT while the SDK calls http://127.0.0.1:PORT, so every call is
// cross-origin (CORS preflight for Authorization and the caller's headers; the service's response headers
// readable). The emulator proxies to a real local HTTP service (`--container svc=…`).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { launchChromium } from './helpers/chromium.mjs';
import { makeSdkSite } from './helpers/sdk-site.mjs';
import { startContainerService } from './helpers/container-service.mjs';
import { startEmulator } from './helpers/emulator.mjs';

const ENV = 'container-browser';

let siteDir;
let service;
let emulator;
let browser;
let page;
const problems = [];

before(async () => {
  siteDir = makeSdkSite('container-browser');
  service = await startContainerService();
  emulator = await startEmulator({ hosting: siteDir, extraArgs: ['--container', `svc=${service.url}`] });
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.setDefaultTimeout(60_000);
  const response = await page.goto(`http://localhost:${emulator.port}/`);
  assert.equal(response.status(), 200);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  await page.evaluate(([env, endpoint]) => window.cloud.init({ env, endpoint }), [ENV, emulator.url]);
});
after(async () => {
  await browser?.close();
  await emulator?.stop();
  await service?.stop();
  if (siteDir) rmSync(siteDir, { recursive: true, force: true });
});

describe('callContainer in Chromium', () => {
  test('Promise style, cross-origin: body, status, readable service headers, identity from the token', async () => {
    const res = await page.evaluate(() =>
      window.cloud.callContainer({
        path: '/api/items',
        method: 'POST',
        header: { 'X-WX-SERVICE': 'svc', 'X-Trace': 't1', 'X-WX-OPENID': 'oSPOOFED' },
        data: { name: 'taro' },
      }),
    );
    assert.equal(res.errMsg, 'cloud.callContainer:ok');
    assert.equal(res.statusCode, 200);
    assert.equal(res.header['x-service'], 'echo', 'the service headers are exposed to the page');
    assert.equal(res.data.method, 'POST');
    assert.equal(res.data.path, '/api/items');
    assert.equal(res.data.body, '{"name":"taro"}');
    assert.equal(res.data.headers['x-trace'], 't1');
    assert.equal(res.data.headers.origin, `http://localhost:${emulator.port}`);
    assert.equal(res.data.headers['x-wx-env'], ENV);
    assert.match(res.data.headers['x-wx-openid'], /^o[\w-]{27}$/);
    assert.notEqual(res.data.headers['x-wx-openid'], 'oSPOOFED');
  });

  test('callback style: success then complete, with the same result', async () => {
    const events = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const events = [];
          const returned = window.cloud.callContainer({
            path: '/cb',
            header: { 'X-WX-SERVICE': 'svc' },
            data: { page: 1 },
            success: (res) => events.push(['success', res.data.query]),
            fail: (error) => events.push(['fail', error.errMsg]),
            complete: (res) => {
              events.push(['complete', res.errMsg]);
              resolve(events);
            },
          });
          events.push(['returned', String(returned)]);
        }),
    );
    assert.deepEqual(events, [
      ['returned', 'undefined'],
      ['success', '?page=1'],
      ['complete', 'cloud.callContainer:ok'],
    ]);
  });

  test("responseType 'arraybuffer' and a binary body round-trip", async () => {
    const outcome = await page.evaluate(async () => {
      const bytes = await window.cloud.callContainer({
        path: '/bytes?n=300000',
        header: { 'X-WX-SERVICE': 'svc' },
        responseType: 'arraybuffer',
      });
      const got = new Uint8Array(bytes.data);
      const sent = new Uint8Array(1024 * 1024).map((_, i) => (i * 13) & 255);
      const echo = await window.cloud.callContainer({
        path: '/upload',
        method: 'PUT',
        header: { 'X-WX-SERVICE': 'svc', 'content-type': 'application/octet-stream' },
        data: sent,
      });
      const digest = [...new Uint8Array(await crypto.subtle.digest('SHA-256', sent))]
        .map((b) => b.toString(16).padStart(2, '0'))
        .join('');
      return {
        isBuffer: bytes.data instanceof ArrayBuffer,
        length: got.length,
        ok: got.every((b, i) => b === (i & 255)),
        echoed: echo.data.length,
        same: echo.data.sha256 === digest,
      };
    });
    assert.deepEqual(outcome, { isBuffer: true, length: 300000, ok: true, echoed: 1024 * 1024, same: true });
  });

  test('failures: unknown service -501000, abort -1, a parameter error -401002 before any request', async () => {
    const before = service.requests.length;
    const outcome = await page.evaluate(async () => {
      const grab = (promise) => promise.then(() => null, (error) => ({ errCode: error.errCode, errMsg: error.errMsg }));
      const controller = new AbortController();
      const slow = grab(window.cloud.callContainer({ path: '/slow?ms=3000', header: { 'X-WX-SERVICE': 'svc' }, signal: controller.signal }));
      setTimeout(() => controller.abort(), 100);
      return {
        unknown: await grab(window.cloud.callContainer({ path: '/x', header: { 'X-WX-SERVICE': 'nope' } })),
        aborted: await slow,
        missing: await grab(window.cloud.callContainer({ path: '/x' })),
      };
    });
    assert.equal(outcome.unknown.errCode, -501000);
    assert.match(outcome.unknown.errMsg, /^cloud\.callContainer:fail -501000 /);
    assert.deepEqual(outcome.aborted, { errCode: -1, errMsg: 'cloud.callContainer:fail abort' });
    assert.equal(outcome.missing.errCode, -401002);
    assert.match(outcome.missing.errMsg, /X-WX-SERVICE/);
    assert.equal(service.requests.filter((r) => r.url === '/x').length, 0);
    assert.ok(service.requests.length - before <= 1, 'only the aborted call reached the service');
  });

  test('new cloud.Cloud({ resourceEnv, endpoint }) + init(): callContainer on the instance', async () => {
    const res = await page.evaluate(async (endpoint) => {
      const c1 = new window.cloud.Cloud({ resourceEnv: 'container-browser-2', endpoint });
      await c1.init();
      return c1.callContainer({ path: '/inst', method: 'POST', header: { 'X-WX-SERVICE': 'svc' } });
    }, emulator.url);
    assert.equal(res.statusCode, 200);
    assert.equal(res.data.headers['x-wx-env'], 'container-browser-2');
  });

  test('no page errors', () => {
    assert.deepEqual(problems, []);
  });
});
