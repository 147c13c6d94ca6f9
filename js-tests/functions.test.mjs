// callFunction through the built package against a real cloud-emulator: both call styles, result shape,
// every failure path, concurrency and cancellation (api-surface.md §2.6, §4; protocol.md §3).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEmulator } from './helpers/emulator.mjs';
import { assertCloudError, rejection, syncThrow } from './helpers/expect.mjs';

const ENV = 'functions-env';
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

/** Runs a callback-style call and resolves with what happened, in order, once `complete` ran. */
function callbackCall(options) {
  return new Promise((resolve) => {
    const events = [];
    const returned = cloud.callFunction({
      ...options,
      success: (res) => {
        events.push(['success', res]);
        options.success?.(res);
      },
      fail: (err) => {
        events.push(['fail', err]);
        options.fail?.(err);
      },
      complete: (value) => {
        events.push(['complete', value]);
        // Let anything queued after `complete` run before reporting.
        setTimeout(() => resolve({ events, returned }), 20);
      },
    });
    events.push(['returned', returned]);
  });
}

describe('promise style', () => {
  test('resolves {result, requestID, errMsg} with what the function returned', async () => {
    const data = { a: 1, nested: { list: [1, 'two', null, true], text: '中文 ✓' } };
    const res = await cloud.callFunction({ name: 'echo', data });
    assert.deepEqual(Object.keys(res).sort(), ['errMsg', 'requestID', 'result']);
    assert.equal(res.errMsg, 'cloud.callFunction:ok');
    assert.deepEqual(res.result.data, data);
    assert.equal(res.result.env, ENV);
    assert.equal(res.result.functionName, 'echo');
    assert.equal(typeof res.requestID, 'string');
    assert.ok(res.requestID.length > 0);
    assert.equal(res.requestID, res.result.requestId, 'requestID is the id the function saw');
    assert.equal(typeof res.result.userInfo?.openId, 'string');
    assert.ok(res.result.userInfo.openId.length > 0, 'the caller has an openId');
    assert.ok('appId' in res.result.userInfo);
  });

  test('data defaults to an empty object', async () => {
    const res = await cloud.callFunction({ name: 'echo' });
    assert.deepEqual(res.result.data, {});
  });

  test('a string result stays a string', async () => {
    const res = await cloud.callFunction({ name: 'text', data: { name: 'taro' } });
    assert.equal(res.result, 'hello, taro');
  });

  test('a function returning undefined gives result null', async () => {
    const res = await cloud.callFunction({ name: 'undef' });
    assert.equal(res.errMsg, 'cloud.callFunction:ok');
    assert.equal(res.result, null);
  });

  test('a large result arrives intact', async () => {
    const size = 800 * 1024;
    const res = await cloud.callFunction({ name: 'big', data: { size } });
    assert.equal(res.result.size, size);
    assert.equal(res.result.text.length, size);
    assert.equal(res.result.text, 'abcdefghij'.repeat(size / 10 + 1).slice(0, size));
  });

  test('data just under the 5 MB limit reaches the function', async () => {
    const payload = 'x'.repeat(4.5 * 1024 * 1024);
    const res = await cloud.callFunction({ name: 'measure', data: { payload } });
    assert.equal(res.result.length, payload.length);
  });

  test('per-call config.env overrides the init env', async () => {
    const res = await cloud.callFunction({ name: 'echo', data: { x: 1 }, config: { env: 'other-env' } });
    assert.equal(res.result.env, 'other-env');
    const back = await cloud.callFunction({ name: 'echo', data: { x: 2 } });
    assert.equal(back.result.env, ENV, 'the override does not stick');
  });

  test('100 concurrent calls all succeed with their own data', async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => cloud.callFunction({ name: 'echo', data: { i } })),
    );
    results.forEach((res, i) => {
      assert.equal(res.errMsg, 'cloud.callFunction:ok');
      assert.deepEqual(res.result.data, { i });
    });
    assert.equal(new Set(results.map((r) => r.requestID)).size, 100, 'every call has its own requestID');
  });
});

describe('callback style', () => {
  test('success then complete, asynchronously, with the same object; returns undefined', async () => {
    const { events, returned } = await callbackCall({ name: 'echo', data: { cb: 1 } });
    assert.equal(returned, undefined);
    assert.deepEqual(
      events.map(([name]) => name),
      ['returned', 'success', 'complete'],
    );
    const [, res] = events[1];
    assert.equal(res.errMsg, 'cloud.callFunction:ok');
    assert.deepEqual(res.result.data, { cb: 1 });
    assert.equal(events[2][1], res, 'complete gets the very object success got');
  });

  test('fail then complete with the same Error', async () => {
    const { events } = await callbackCall({ name: 'no-such-function' });
    assert.deepEqual(
      events.map(([name]) => name),
      ['returned', 'fail', 'complete'],
    );
    assertCloudError(events[1][1], -501000);
    assert.equal(events[2][1], events[1][1]);
  });

  test('only complete given still selects callback style', async () => {
    const result = await new Promise((resolve) => {
      const returned = cloud.callFunction({ name: 'echo', data: { only: 'complete' }, complete: (value) => resolve({ returned, value }) });
    });
    assert.equal(result.returned, undefined);
    assert.deepEqual(result.value.result.data, { only: 'complete' });
  });

  test('an exception thrown in success reaches neither fail nor the process', async () => {
    const stray = [];
    const onStray = (error) => stray.push(error);
    process.on('uncaughtException', onStray);
    process.on('unhandledRejection', onStray);
    const originalConsoleError = console.error;
    console.error = () => {}; // wx.cloud logs the callback's exception; keep the test output clean
    try {
      const { events } = await callbackCall({
        name: 'echo',
        success: () => {
          throw new Error('thrown inside success');
        },
      });
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(
        events.map(([name]) => name),
        ['returned', 'success', 'complete'],
      );
      assert.deepEqual(stray, []);
    } finally {
      console.error = originalConsoleError;
      process.off('uncaughtException', onStray);
      process.off('unhandledRejection', onStray);
    }
  });

  test('an exception thrown in fail does not stop complete', async () => {
    const stray = [];
    const onStray = (error) => stray.push(error);
    process.on('uncaughtException', onStray);
    process.on('unhandledRejection', onStray);
    const originalConsoleError = console.error;
    console.error = () => {};
    try {
      const { events } = await callbackCall({
        name: 'throws',
        fail: () => {
          throw new Error('thrown inside fail');
        },
      });
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(
        events.map(([name]) => name),
        ['returned', 'fail', 'complete'],
      );
      assert.deepEqual(stray, []);
    } finally {
      console.error = originalConsoleError;
      process.off('uncaughtException', onStray);
      process.off('unhandledRejection', onStray);
    }
  });
});

describe('failures', () => {
  test('function not found: -501000', async () => {
    const error = await rejection(cloud.callFunction({ name: 'no-such-function' }));
    assertCloudError(error, -501000, {
      errMsgStartsWith: 'cloud.callFunction:fail -501000',
      errMsgIncludes: 'FunctionName parameter could not be found.',
    });
  });

  test('function threw: -404011 with its message and stack', async () => {
    const error = await rejection(cloud.callFunction({ name: 'throws', data: { tag: 't-404011' } }));
    assertCloudError(error, -404011, {
      errMsgStartsWith: 'cloud.callFunction:fail -404011',
      errMsgIncludes: 'boom from throws: t-404011',
    });
    assert.match(error.errMsg, /\n\s*at .*index\.js/, 'the stack of the function is in errMsg');
    assert.equal(typeof error.requestID, 'string', 'requestID is attached to the error');
    assert.ok(error.requestID.length > 0);
  });

  test('function timeout: -404011 "Task timed out after 1.00 seconds"', async () => {
    const started = Date.now();
    const error = await rejection(cloud.callFunction({ name: 'slow', data: { ms: 5000 } }));
    assertCloudError(error, -404011, { errMsgIncludes: 'Task timed out after 1.00 seconds' });
    assert.ok(Date.now() - started < 4000, 'the call ends at the function time limit, not later');
  });

  test('the function runtime survives a timeout', async () => {
    const res = await cloud.callFunction({ name: 'slow', data: { ms: 10 } });
    assert.deepEqual(res.result, { slept: 10 });
  });

  test('function crash: -404011, and the next call works', async () => {
    const error = await rejection(cloud.callFunction({ name: 'crash' }));
    assertCloudError(error, -404011, { errMsgStartsWith: 'cloud.callFunction:fail -404011' });
    const res = await cloud.callFunction({ name: 'echo', data: { after: 'crash' } });
    assert.deepEqual(res.result.data, { after: 'crash' });
  });

  test('a result JSON cannot encode: -404011', async () => {
    const error = await rejection(cloud.callFunction({ name: 'nonjson' }));
    assertCloudError(error, -404011, { errMsgStartsWith: 'cloud.callFunction:fail -404011' });
  });

  test('options that are not an object throw synchronously', () => {
    for (const bad of [undefined, null, 'echo', 42]) {
      const error = syncThrow(() => cloud.callFunction(bad));
      assertCloudError(error, -401003);
    }
  });

  test('name missing or not a string: -401003, asynchronously', async () => {
    for (const options of [{}, { name: 42 }, { name: null, data: {} }]) {
      const error = await rejection(cloud.callFunction(options));
      assertCloudError(error, -401003, { errMsgIncludes: 'name' });
    }
  });

  test('data not an object: -401003', async () => {
    for (const data of ['text', 5, true]) {
      const error = await rejection(cloud.callFunction({ name: 'echo', data }));
      assertCloudError(error, -401003, { errMsgIncludes: 'data' });
    }
  });

  test('config.env not a string: -401003', async () => {
    const error = await rejection(cloud.callFunction({ name: 'echo', config: { env: 7 } }));
    assertCloudError(error, -401003);
  });

  test('bad arguments in callback style go to fail, then complete', async () => {
    const { events } = await callbackCall({ name: 99 });
    assert.deepEqual(
      events.map(([name]) => name),
      ['returned', 'fail', 'complete'],
    );
    assertCloudError(events[1][1], -401003);
  });

  test('data over 5 MB: -401002', async () => {
    const payload = 'y'.repeat(5 * 1024 * 1024 + 1);
    const error = await rejection(cloud.callFunction({ name: 'measure', data: { payload } }));
    assertCloudError(error, -401002);
  });

  test('abort through an AbortSignal: -1 abort', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const pending = cloud.callFunction({ name: 'slow', data: { ms: 900 }, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const error = await rejection(pending);
    assertCloudError(error, -1, { errMsgStartsWith: 'cloud.callFunction:fail', errMsgIncludes: 'abort' });
    assert.ok(Date.now() - started < 700, 'the abort ends the call at once');
  });

  test('an already-aborted signal fails the call', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await rejection(cloud.callFunction({ name: 'echo', signal: controller.signal }));
    assertCloudError(error, -1, { errMsgIncludes: 'abort' });
  });

  test('abort in callback style goes to fail', async () => {
    const controller = new AbortController();
    const done = callbackCall({ name: 'slow', data: { ms: 900 }, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const { events } = await done;
    assert.deepEqual(
      events.map(([name]) => name),
      ['returned', 'fail', 'complete'],
    );
    assertCloudError(events[1][1], -1, { errMsgIncludes: 'abort' });
  });
});
