// Conformance: the official @cloudbase/js-sdk 3.7.0 browser build, run in Node with minimal browser
// globals (as the reference captures were made, protocol.md §0.2 / Appendix A), signs in anonymously
// against cloud-emulator and calls functions, in both endPointMode 'CLOUD_API' (/web) and 'GATEWAY' (/v1).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { installBrowserGlobals } from './helpers/browser-globals.mjs';
import { JS_TESTS_DIR, startEmulator } from './helpers/emulator.mjs';

let emulator;
let cloudbase;
let storage;

before(async () => {
  emulator = await startEmulator();
  storage = installBrowserGlobals({ origin: `${emulator.url}/` });
  // The browser build by path: the package's exports map sends Node to its node build, which signs
  // requests as a server would; a web page gets dist/index.cjs.js / index.esm.js.
  const require = createRequire(join(JS_TESTS_DIR, 'package.json'));
  const sdk = require(join(JS_TESTS_DIR, 'node_modules', '@cloudbase', 'js-sdk', 'dist', 'index.cjs.js'));
  cloudbase = sdk.default ?? sdk;
});
after(async () => {
  await emulator?.stop();
});

function officialApp(env, endPointMode) {
  const app = cloudbase.init({ env, endPointMode });
  app.registerHost(`127.0.0.1:${emulator.port}`, 'http');
  return app;
}

describe("endPointMode 'CLOUD_API' (/web action protocol + /auth/v1)", () => {
  const env = 'conformance-env';
  let app;
  before(async () => {
    app = officialApp(env, 'CLOUD_API');
    await app.auth().signInAnonymously();
  });

  test('anonymous sign-in stores the credentials the emulator issued', () => {
    const credentials = JSON.parse(storage.getItem(`credentials_${env}`));
    assert.equal(credentials.token_type, 'Bearer');
    assert.equal(credentials.scope, 'anonymous');
    assert.equal(typeof credentials.access_token, 'string');
    assert.equal(typeof credentials.refresh_token, 'string');
    assert.equal(typeof credentials.sub, 'string');
  });

  test('callFunction returns what the function returned', async () => {
    const data = { a: 1, d: 'x', nested: { list: [1, 2, 3] } };
    const res = await app.callFunction({ name: 'echo', data });
    assert.deepEqual(res.result.data, data);
    assert.equal(res.result.env, env);
    assert.equal(res.result.functionName, 'echo');
    assert.equal(res.requestId, res.result.requestId, 'requestId is the one the function saw');
  });

  test('a string result and an undefined result', async () => {
    assert.equal((await app.callFunction({ name: 'text', data: { name: 'cb' } })).result, 'hello, cb');
    assert.equal((await app.callFunction({ name: 'undef', data: {} })).result, null);
  });

  test('function not found: FUNCTION_NOT_FOUND reaches the official SDK', async () => {
    await assert.rejects(app.callFunction({ name: 'no-such-function', data: {} }), (error) => {
      assert.match(String(error.message ?? error), /FUNCTION_NOT_FOUND/);
      assert.match(String(error.message ?? error), /FunctionName parameter could not be found\./);
      return true;
    });
  });

  test('function threw: FUNCTIONS_EXECUTE_FAIL with the message', async () => {
    await assert.rejects(app.callFunction({ name: 'throws', data: { tag: 'official' } }), (error) => {
      assert.match(String(error.message ?? error), /FUNCTIONS_EXECUTE_FAIL/);
      assert.match(String(error.message ?? error), /boom from throws: official/);
      return true;
    });
  });
});

describe("endPointMode 'GATEWAY' (/v1/functions, the 3.x default)", () => {
  const env = 'conformance-gw-env';
  let app;
  before(async () => {
    app = officialApp(env, 'GATEWAY');
    await app.auth().signInAnonymously();
  });

  test('callFunction returns what the function returned', async () => {
    const data = { g: 1, w: ['a', 'y'] };
    const res = await app.callFunction({ name: 'echo', data });
    assert.deepEqual(res.result.data, data);
    assert.equal(res.result.env, env);
  });

  test('function not found', async () => {
    await assert.rejects(app.callFunction({ name: 'no-such-function', data: {} }), (error) => {
      assert.equal(error.code, 'FUNCTION_NOT_FOUND');
      assert.match(error.message, /FunctionName parameter could not be found\./);
      return true;
    });
  });
});
