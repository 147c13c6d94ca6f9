// callContainer through the built package, in Node, against a real cloud-emulator proxying to a real local
// HTTP service (`--container svc=…`): both call styles on the default cloud and on `new cloud.Cloud(…)`,
// request encoding as wx.request does it, the result shape, identity headers from the token (never the
// client's), service answers of any status as successes, gateway and local failures with their errCodes,
// and parameter errors before any I/O (protocol.md §9, api-surface.md §2.6).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startContainerService } from './helpers/container-service.mjs';
import { closedPort, lastJsonLine, runNode, startEmulator } from './helpers/emulator.mjs';
import { assertCloudError, rejection, syncThrow } from './helpers/expect.mjs';

const ENV = 'container-env';
let service;
let emulator;
let cloud;

before(async () => {
  service = await startContainerService();
  const down = `http://127.0.0.1:${await closedPort()}`;
  emulator = await startEmulator({
    extraArgs: ['--container', `svc=${service.url}`, '--container', `down=${down}`, '--container-timeout', '1'],
  });
  ({ cloud } = await import('taro-cloud-wasm'));
  cloud.init({ env: ENV, endpoint: emulator.url });
});
after(async () => {
  await emulator?.stop();
  await service?.stop();
});

const SVC = { 'X-WX-SERVICE': 'svc' };

/** Runs a callback-style call; resolves with the events in order once `complete` ran. */
function callbackCall(options) {
  return new Promise((resolve) => {
    const events = [];
    const returned = cloud.callContainer({
      ...options,
      success: (res) => events.push(['success', res]),
      fail: (err) => events.push(['fail', err]),
      complete: (value) => {
        events.push(['complete', value]);
        setTimeout(() => resolve({ events, returned }), 20);
      },
    });
    events.push(['returned']);
  });
}

describe('callContainer: requests and results', () => {
  test('Promise style: POST with an object body, the result wx returns', async () => {
    const res = await cloud.callContainer({
      path: '/api/items?x=1',
      method: 'POST',
      header: { ...SVC, 'X-Trace': 'abc' },
      data: { name: 'taro', list: [1, 2] },
    });
    assert.equal(res.errMsg, 'cloud.callContainer:ok');
    assert.equal(res.statusCode, 200);
    assert.equal(res.header['x-service'], 'echo');
    assert.equal(res.header['content-type'], 'application/json; charset=utf-8');
    assert.equal(res.cookies, undefined, 'cookies exist on mini-programs only (wx docs)');
    const seen = res.data; // dataType 'json' by default: parsed
    assert.equal(seen.method, 'POST');
    assert.equal(seen.path, '/api/items');
    assert.equal(seen.query, '?x=1');
    assert.deepEqual(JSON.parse(seen.body), { name: 'taro', list: [1, 2] });
    assert.equal(seen.headers['content-type'], 'application/json');
    assert.equal(seen.headers['x-trace'], 'abc');
    assert.equal(seen.headers['x-wx-service'], undefined, 'the service name routes; it is not forwarded');
    assert.equal(seen.headers.authorization, undefined, "the gateway's token never reaches the service");
  });

  test('callback style: success then complete, asynchronously, with the same result; undefined returned', async () => {
    const { events, returned } = await callbackCall({ path: '/cb', header: SVC });
    assert.equal(returned, undefined);
    assert.deepEqual(events.map(([name]) => name), ['returned', 'success', 'complete']);
    assert.equal(events[1][1], events[2][1]);
    assert.equal(events[1][1].data.method, 'GET', 'method defaults to GET');
    assert.equal(events[1][1].errMsg, 'cloud.callContainer:ok');
  });

  test('callback style failure: fail then complete with the error', async () => {
    const { events } = await callbackCall({ path: '/x', header: { 'X-WX-SERVICE': 'nope' } });
    assert.deepEqual(events.map(([name]) => name), ['returned', 'fail', 'complete']);
    assertCloudError(events[1][1], -501000, { errMsgStartsWith: 'cloud.callContainer:fail -501000' });
  });

  test('GET data becomes the query string (objects k=v&…, strings as they are)', async () => {
    const res = await cloud.callContainer({
      path: '/q?a=1',
      header: SVC,
      data: { b: 'x y', c: { d: 1 }, n: 5 },
    });
    assert.equal(res.data.query, '?a=1&b=x%20y&c=%7B%22d%22%3A1%7D&n=5');
    assert.equal(res.data.length, 0);
    const raw = await cloud.callContainer({ path: '/q', method: 'get', header: SVC, data: 'p=1&q=2' });
    assert.equal(raw.data.query, '?p=1&q=2');
    assert.equal(raw.data.method, 'GET');
  });

  test('string bodies as they are, form content-type encodes objects, bytes as bytes', async () => {
    const text = await cloud.callContainer({
      path: '/t',
      method: 'PUT',
      header: { ...SVC, 'content-type': 'text/plain' },
      data: 'hello 世界',
    });
    assert.equal(text.data.body, 'hello 世界');
    assert.equal(text.data.headers['content-type'], 'text/plain');
    const form = await cloud.callContainer({
      path: '/f',
      method: 'POST',
      header: { ...SVC, 'Content-Type': 'application/x-www-form-urlencoded' },
      data: { a: 'b c', d: 2 },
    });
    assert.equal(form.data.body, 'a=b%20c&d=2');
    const bytes = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => (i * 7) & 255);
    const binary = await cloud.callContainer({
      path: '/b',
      method: 'POST',
      header: { ...SVC, 'content-type': 'application/octet-stream' },
      data: bytes.buffer,
    });
    assert.equal(binary.data.length, bytes.length);
    assert.equal(binary.data.sha256, createHash('sha256').update(bytes).digest('hex'));
    const view = await cloud.callContainer({ path: '/v', method: 'PATCH', header: SVC, data: bytes.subarray(1, 4) });
    assert.equal(view.data.length, 3);
    assert.equal(view.data.method, 'PATCH');
  });

  test("dataType 'json' parses JSON bodies only; other dataTypes give text; responseType 'arraybuffer' gives bytes", async () => {
    const plain = await cloud.callContainer({ path: '/text', header: SVC });
    assert.equal(plain.data, 'plain words');
    const asText = await cloud.callContainer({ path: '/echo', header: SVC, dataType: 'text' });
    assert.equal(typeof asText.data, 'string');
    assert.equal(JSON.parse(asText.data).path, '/echo');
    const res = await cloud.callContainer({ path: '/bytes?n=70000', header: SVC, responseType: 'arraybuffer' });
    assert.ok(res.data instanceof ArrayBuffer);
    const got = new Uint8Array(res.data);
    assert.equal(got.length, 70000);
    assert.ok(got.every((b, i) => b === (i & 255)));
    assert.equal(res.header['content-type'], 'application/octet-stream');
  });

  test("a service's error status is a success, even with a body shaped like a gateway error", async () => {
    const res = await cloud.callContainer({ path: '/status?code=404', header: SVC });
    assert.equal(res.statusCode, 404);
    assert.equal(res.errMsg, 'cloud.callContainer:ok');
    assert.deepEqual(res.data, { code: 'NOT_FOUND', message: 'no such item', requestId: 'svc-1' });
    const failing = await cloud.callContainer({ path: '/status?code=503', method: 'DELETE', header: SVC });
    assert.equal(failing.statusCode, 503);
  });

  test('HEAD and OPTIONS pass through', async () => {
    const head = await cloud.callContainer({ path: '/h', method: 'HEAD', header: SVC });
    assert.equal(head.statusCode, 200);
    assert.equal(head.data, '');
    const options = await cloud.callContainer({ path: '/o', method: 'OPTIONS', header: SVC });
    assert.equal(options.data.method, 'OPTIONS');
  });
});

describe('callContainer: identity', () => {
  test("the service sees the caller's openid (the one its cloud functions see), appid, env and source", async () => {
    const res = await cloud.callContainer({ path: '/who', header: SVC });
    const fn = await cloud.callFunction({ name: 'echo', data: {} });
    const headers = res.data.headers;
    assert.equal(headers['x-wx-openid'], fn.result.userInfo.openId);
    assert.equal(headers['x-wx-appid'], fn.result.userInfo.appId);
    assert.equal(headers['x-wx-env'], ENV);
    assert.equal(headers['x-wx-source'], 'web');
  });

  test('client-sent identity headers never reach the service', async () => {
    const res = await cloud.callContainer({
      path: '/spoof',
      header: {
        ...SVC,
        'X-WX-OPENID': 'oSPOOFED',
        'x-wx-unionid': 'uSPOOFED',
        'X-WX-FROM-OPENID': 'oSPOOFED',
        'X-WX-APPID': 'wxSPOOFED',
        'x-wx-env': 'other-env',
        'X-WX-SOURCE': 'wx_client',
        'X-Forwarded-For': '6.6.6.6',
      },
    });
    const headers = res.data.headers;
    assert.notEqual(headers['x-wx-openid'], 'oSPOOFED');
    assert.match(headers['x-wx-openid'], /^o[\w-]{27}$/);
    assert.notEqual(headers['x-wx-appid'], 'wxSPOOFED');
    assert.equal(headers['x-wx-env'], ENV);
    assert.equal(headers['x-wx-source'], 'web');
    for (const name of ['x-wx-unionid', 'x-wx-from-openid', 'x-forwarded-for']) {
      assert.equal(headers[name], undefined, `${name} reached the service`);
    }
  });
});

describe('callContainer: failures', () => {
  test('unknown service: -501000 SERVICE_NOT_FOUND from the gateway', async () => {
    const error = await rejection(cloud.callContainer({ path: '/x', header: { 'X-WX-SERVICE': 'nope' } }));
    assertCloudError(error, -501000, {
      errMsgStartsWith: 'cloud.callContainer:fail -501000 ',
      errMsgIncludes: '--container nope=',
    });
    assert.equal(error.code, 'SERVICE_NOT_FOUND');
    assert.equal(typeof error.requestID, 'string');
  });

  test('service down (connection refused): -501001 BAD_GATEWAY', async () => {
    const error = await rejection(cloud.callContainer({ path: '/x', header: { 'X-WX-SERVICE': 'down' } }));
    assertCloudError(error, -501001, { errMsgStartsWith: 'cloud.callContainer:fail -501001 resource system error.' });
    assert.equal(error.code, 'BAD_GATEWAY');
  });

  test("service slower than the gateway's timeout: -501002 SERVICE_TIMEOUT", async () => {
    const error = await rejection(cloud.callContainer({ path: '/slow?ms=3000', header: SVC }));
    assertCloudError(error, -501002, { errMsgStartsWith: 'cloud.callContainer:fail -501002 resource server timeout.' });
    assert.equal(error.code, 'SERVICE_TIMEOUT');
  });

  test("the call's own timeout: -501002, and the fetch is aborted", async () => {
    const started = Date.now();
    const error = await rejection(cloud.callContainer({ path: '/slow?ms=900', header: SVC, timeout: 150 }));
    assertCloudError(error, -501002, { errMsgIncludes: 'request timed out' });
    assert.equal(error.code, 'SERVER_TIMEOUT');
    assert.ok(Date.now() - started < 850, 'gave up before the service answered');
  });

  test('abort through signal: -1 abort, before and during the call', async () => {
    const controller = new AbortController();
    const pending = cloud.callContainer({ path: '/slow?ms=900', header: SVC, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const error = await rejection(pending);
    assertCloudError(error, -1);
    assert.equal(error.errMsg, 'cloud.callContainer:fail abort');
    const early = await rejection(cloud.callContainer({ path: '/x', header: SVC, signal: AbortSignal.abort() }));
    assert.equal(early.errMsg, 'cloud.callContainer:fail abort');
  });
});

describe('callContainer: the fast path and the full path agree', () => {
  // A Promise-style call without callbacks or `config` runs on the session's lane without entering the wasm
  // once a first call went through Rust (src/container.rs); `config: {}` always takes the full path. Every
  // outcome must be the same either way.
  const outcome = async (options) => {
    try {
      const { data, statusCode, header, errMsg } = await cloud.callContainer(options);
      delete header.date;
      return { data, statusCode, header, errMsg };
    } catch (error) {
      return { errCode: error.errCode, errMsg: error.errMsg.replace(/[0-9a-f]{32}/g, 'ID'), code: error.code, name: error.name };
    }
  };
  const cases = {
    'an answer': { path: '/api/x?y=1', method: 'PUT', header: { ...SVC, 'X-A': '1' }, data: { a: [1] } },
    'an error status with a JSON body': { path: '/status?code=404', header: SVC },
    'bytes': { path: '/bytes?n=300', header: SVC, responseType: 'arraybuffer' },
    'text': { path: '/text', header: SVC, dataType: 'text' },
    'unknown service': { path: '/x', header: { 'X-WX-SERVICE': 'nope' } },
    'service down': { path: '/x', header: { 'X-WX-SERVICE': 'down' } },
    'own timeout': { path: '/slow?ms=600', header: SVC, timeout: 100 },
    'aborted': { path: '/x', header: SVC, signal: AbortSignal.abort() },
  };
  for (const [name, options] of Object.entries(cases)) {
    test(name, async () => {
      await cloud.callContainer({ path: '/warm', header: SVC }); // the lane has a token
      const fast = await outcome(options);
      const full = await outcome({ ...options, config: {} });
      if (fast.data instanceof ArrayBuffer) {
        assert.deepEqual(Buffer.from(fast.data), Buffer.from(full.data));
        fast.data = full.data = 'bytes';
      }
      if (fast.data?.headers) delete fast.data.headers['x-request-id'], delete full.data.headers['x-request-id'];
      assert.deepEqual(fast, full);
      assert.ok(fast.errMsg.startsWith('cloud.callContainer:'), fast.errMsg);
    });
  }
});

describe('callContainer: parameters are checked before any I/O', () => {
  const cases = [
    ['no X-WX-SERVICE', { path: '/x' }, -401002, "parameter.header['X-WX-SERVICE'] should name the service"],
    ['no X-WX-SERVICE (empty header)', { path: '/x', header: {} }, -401002, 'X-WX-SERVICE'],
    ['bad service name', { path: '/x', header: { 'X-WX-SERVICE': 'a/b' } }, -401002, "(letters, digits, '-', '_')"],
    ['path without a leading /', { path: 'x', header: SVC }, -401002, "parameter.path should start with '/'"],
    ['path missing', { header: SVC }, -401003, 'parameter.path should be string instead of undefined;'],
    ['Referer', { path: '/x', header: { ...SVC, Referer: 'https://a.example' } }, -401002, 'cannot set Referer'],
    ['Authorization', { path: '/x', header: { ...SVC, Authorization: 'Bearer mine' } }, -401002, 'cannot set Authorization'],
    ['TRACE', { path: '/x', method: 'TRACE', header: SVC }, -401002, 'parameter.method should be one of GET,POST,PUT,DELETE,HEAD,OPTIONS,PATCH;'],
    ['method not a string', { path: '/x', method: 1, header: SVC }, -401003, 'parameter.method should be string'],
    ['header an array', { path: '/x', header: [] }, -401003, 'parameter.header should be object instead of array;'],
    ['timeout 0', { path: '/x', header: SVC, timeout: 0 }, -401002, 'parameter.timeout'],
    ['timeout a string', { path: '/x', header: SVC, timeout: '5' }, -401003, 'parameter.timeout should be number'],
    ['responseType blob', { path: '/x', header: SVC, responseType: 'blob' }, -401002, "'text' or 'arraybuffer'"],
    ['GET with bytes', { path: '/x', header: SVC, data: new ArrayBuffer(2) }, -401003, 'parameter.data'],
    ['config.env a number', { path: '/x', header: SVC, config: { env: 5 } }, -401003, 'parameter.config.env'],
    ['text over 100 KB', { path: '/x', method: 'POST', header: SVC, data: 'x'.repeat(100 * 1024 + 1) }, -401002, 'text data size must be less than 100 KB'],
    ['bytes over 20 MB', { path: '/x', method: 'POST', header: SVC, data: new ArrayBuffer(20 * 1024 * 1024 + 1) }, -401002, 'binary data size must be less than 20480 KB'],
  ];
  for (const [name, options, errCode, detail] of cases) {
    test(name, async () => {
      const before = service.requests.length;
      const error = await rejection(cloud.callContainer(options));
      assertCloudError(error, errCode, { errMsgStartsWith: `cloud.callContainer:fail ${errCode} `, errMsgIncludes: detail });
      assert.equal(service.requests.length, before, 'nothing reached the service');
    });
  }

  test('text of exactly 100 KB goes through', async () => {
    const res = await cloud.callContainer({ path: '/x', method: 'POST', header: SVC, data: 'é'.repeat(50 * 1024) });
    assert.equal(res.data.length, 100 * 1024);
  });

  test('options that are not an object throw synchronously (-401003)', () => {
    for (const options of [undefined, 'x', 5]) {
      assertCloudError(syncThrow(() => cloud.callContainer(options)), -401003);
    }
  });
});

describe('callContainer on Cloud instances and per-call env', () => {
  test('new cloud.Cloud({ resourceEnv, endpoint }): throws before init(), works after', async () => {
    const instance = new cloud.Cloud({ resourceEnv: 'container-other', endpoint: emulator.url });
    assertCloudError(syncThrow(() => instance.callContainer({ path: '/x', header: SVC })), -1);
    await instance.init();
    const res = await instance.callContainer({ path: '/inst', header: SVC, data: { a: 1 } });
    assert.equal(res.data.headers['x-wx-env'], 'container-other');
    assert.equal(res.data.query, '?a=1');
    const { events } = await new Promise((resolve) => {
      const events = [];
      instance.callContainer({
        path: '/inst-cb',
        header: SVC,
        success: (r) => events.push(['success', r.statusCode]),
        complete: () => resolve({ events }),
      });
    });
    assert.deepEqual(events, [['success', 200]]);
  });

  test('config.env picks the env on the default cloud', async () => {
    const res = await cloud.callContainer({ path: '/env', header: SVC, config: { env: 'container-third' } });
    assert.equal(res.data.headers['x-wx-env'], 'container-third');
  });
});

describe('callContainer: token refused by the gateway', () => {
  test('a rejected token (401 CHECK_LOGIN_FAILED): the SDK signs in again and sends once more, on either path', async () => {
    const env = 'container-token-env';
    const forged = {
      token_type: 'Bearer',
      access_token: 'forged-token',
      refresh_token: 'forged-refresh',
      expires_in: 7200,
      scope: 'anonymous',
      sub: 'someone',
      expires_at: new Date(Date.now() + 3600_000).toISOString(),
    };
    const seed = { [`credentials_${env}`]: JSON.stringify(forged), device_id: 'device-container-token' };
    const run = await runNode(
      `const store = new Map(Object.entries(JSON.parse(process.env.SEED)));
      globalThis.localStorage = { getItem: (k) => (store.has(k) ? store.get(k) : null),
        setItem: (k, v) => void store.set(k, String(v)), removeItem: (k) => void store.delete(k) };
      const requests = [];
      const realFetch = globalThis.fetch;
      globalThis.fetch = (input, init) => {
        requests.push(new URL(typeof input === 'string' ? input : input.url).pathname);
        return realFetch(input, init);
      };
      const { cloud } = await import('taro-cloud-wasm');
      cloud.init({ env: '${env}', endpoint: process.env.EMU });
      const call = async () => {
        try { const res = await cloud.callContainer({ path: '/again', header: { 'X-WX-SERVICE': 'svc' } });
          return { status: res.statusCode, env: res.data.headers['x-wx-env'] }; }
        catch (e) { return { errCode: e.errCode, errMsg: e.errMsg }; }
      };
      const first = await call();
      const firstRequests = requests.splice(0);
      // The session is revoked after that: the next call (which no longer enters the wasm) meets a refused
      // token too, and the one after it uses the new token.
      const token = JSON.parse(store.get('credentials_${env}')).access_token;
      await realFetch(process.env.EMU + '/auth/v1/revoke', { method: 'POST',
        headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
      const second = await call();
      const third = await call();
      console.log(JSON.stringify({ first, firstRequests, second, third, laterRequests: requests }));`,
      { env: { EMU: emulator.url, SEED: JSON.stringify(seed) } },
    );
    const out = lastJsonLine(run);
    for (const result of [out.first, out.second, out.third]) assert.deepEqual(result, { status: 200, env });
    const again = '/v1/cloudrun/svc/again';
    assert.deepEqual(out.firstRequests, [again, '/auth/v1/signin/anonymously', again]);
    assert.deepEqual(out.laterRequests, [again, '/auth/v1/signin/anonymously', again, again]);
  });
});
