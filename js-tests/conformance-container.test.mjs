// Conformance: the official @cloudbase/js-sdk 3.7.0 browser build (unmodified, in Node with minimal browser
// globals, as conformance.test.mjs) calls a container service through cloud-emulator with its cloudrun API,
// `app.callContainer({ name, method, path, header, data })` — protocol.md §9: `{method} {GATEWAY}/cloudrun/
// {name}{path}` with its Bearer token. The service is a real local HTTP server behind `--container svc=…`.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { installBrowserGlobals } from './helpers/browser-globals.mjs';
import { startContainerService } from './helpers/container-service.mjs';
import { JS_TESTS_DIR, startEmulator } from './helpers/emulator.mjs';

const ENV = 'conformance-run-env';
let service;
let emulator;
let app;

before(async () => {
  service = await startContainerService();
  emulator = await startEmulator({ extraArgs: ['--container', `svc=${service.url}`] });
  installBrowserGlobals({ origin: `${emulator.url}/` });
  const require = createRequire(join(JS_TESTS_DIR, 'package.json'));
  const sdk = require(join(JS_TESTS_DIR, 'node_modules', '@cloudbase', 'js-sdk', 'dist', 'index.cjs.js'));
  const cloudbase = sdk.default ?? sdk;
  app = cloudbase.init({ env: ENV });
  app.registerHost(`127.0.0.1:${emulator.port}`, 'http');
  await app.auth().signInAnonymously();
});
after(async () => {
  await emulator?.stop();
  await service?.stop();
});

describe('official @cloudbase/js-sdk 3.7.0 app.callContainer against cloud-emulator', () => {
  test('POST with data: the service gets the JSON body and the identity; the SDK gets the parsed answer', async () => {
    const res = await app.callContainer({ name: 'svc', method: 'POST', path: '/api/x', data: { q: 1 } });
    assert.equal(res.method, 'POST');
    assert.equal(res.path, '/api/x');
    assert.equal(res.body, '{"q":1}');
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(res.headers['x-sdk-version'], '@cloudbase/js-sdk/3.7.0');
    assert.equal(res.headers['x-wx-env'], ENV);
    assert.match(res.headers['x-wx-openid'], /^o[\w-]{27}$/);
    assert.equal(res.headers.authorization, undefined);
  });

  test('GET with data: the SDK puts it in the query', async () => {
    const res = await app.callContainer({ name: 'svc', method: 'GET', path: '/list', data: { page: 2, size: 10 } });
    assert.equal(res.method, 'GET');
    assert.equal(res.path, '/list');
    assert.equal(res.query, '?page=2&size=10');
    assert.equal(res.length, 0);
  });

  test('custom headers pass; spoofed identity headers do not', async () => {
    const res = await app.callContainer({
      name: 'svc',
      method: 'PUT',
      path: '/h',
      header: { 'x-custom': 'yes', 'X-WX-OPENID': 'oSPOOFED' },
      data: { a: 1 },
    });
    assert.equal(res.method, 'PUT');
    assert.equal(res.headers['x-custom'], 'yes');
    assert.notEqual(res.headers['x-wx-openid'], 'oSPOOFED');
  });

  test('unknown service: the gateway error reaches the official SDK as an error with its code', async () => {
    await assert.rejects(app.callContainer({ name: 'nope', method: 'POST', path: '/x', data: {} }), (error) => {
      assert.match(String(error.code ?? error.message), /SERVICE_NOT_FOUND/);
      return true;
    });
  });

  test('our SDK and the official one reach the service with the same request', async () => {
    const { cloud } = await import('taro-cloud-wasm');
    cloud.init({ env: ENV, endpoint: emulator.url, persistence: 'none' });
    const ours = await cloud.callContainer({
      path: '/same?k=v',
      method: 'POST',
      header: { 'X-WX-SERVICE': 'svc', 'content-type': 'application/json; charset=utf-8' },
      data: { q: 1, list: ['a'] },
    });
    const official = await app.callContainer({ name: 'svc', method: 'POST', path: '/same?k=v', data: { q: 1, list: ['a'] } });
    for (const field of ['method', 'path', 'query', 'body', 'sha256']) {
      assert.equal(ours.data[field], official[field], field);
    }
    for (const header of ['content-type', 'x-wx-env', 'x-wx-appid', 'x-wx-source']) {
      assert.equal(ours.data.headers[header], official.headers[header], header);
    }
  });
});
