// Golden test: the requests the built package sends are compared with what the official @cloudbase/js-sdk
// 3.7.0 sent (fixtures/capture-cloudapi-3.7.0.jsonl), field by field and in key order, where the protocol
// allows only one encoding. Only the values of access_token and seqId may differ (they are per session).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startRecordingServer } from './helpers/recording-server.mjs';

const captured = readFileSync(new URL('./fixtures/capture-cloudapi-3.7.0.jsonl', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line));
const capturedInvoke = captured.find((r) => r.url.startsWith('/web'));
const capturedSignIn = captured.find((r) => r.url.startsWith('/auth/v1/signin/anonymously'));

let recorder;
let cloud;
before(async () => {
  recorder = await startRecordingServer();
  ({ cloud } = await import('taro-cloud-wasm'));
  cloud.init({ env: 'envx', endpoint: recorder.url });
});
after(async () => {
  await recorder?.close();
});

/** Entries of a parsed JSON object in their order: [key, value] pairs, for order-sensitive comparison. */
const entries = (object) => Object.entries(object);

test('functions.invokeFunction envelope matches the official capture field by field', async () => {
  const capturedBody = JSON.parse(capturedInvoke.body);
  const data = JSON.parse(capturedBody.request_data); // {a:1, d:'x'}
  const res = await cloud.callFunction({ name: capturedBody.function_name, data });
  assert.deepEqual(res.result, { echo: data, ok: true }, 'the SDK decoded response_data');

  const ours = recorder.requests.filter((r) => r.url.startsWith('/web'));
  assert.equal(ours.length, 1, `one /web request, got ${ours.map((r) => r.body).join(' | ')}`);
  const request = ours[0];
  assert.equal(request.method, capturedInvoke.method);
  assert.equal(request.url, capturedInvoke.url, 'path and query (?env=envx)');
  assert.match(request.headers['content-type'] ?? '', /^application\/json/i, 'content-type is JSON');

  const body = JSON.parse(request.body);
  const expectedKeys = Object.keys(capturedBody);
  assert.deepEqual(Object.keys(body), expectedKeys, 'same keys in the same order');
  for (const [key, expected] of entries(capturedBody)) {
    if (key === 'access_token' || key === 'seqId') {
      assert.equal(typeof body[key], 'string', `${key} is a string`);
      assert.ok(body[key].length > 0, `${key} is not empty`);
      continue;
    }
    assert.deepEqual(body[key], expected, `field ${key}`);
  }
  // request_data is the JSON text of the data; its own key order must survive too.
  assert.equal(body.request_data, capturedBody.request_data);

  // The token in the envelope is the one the server issued at sign-in.
  const issued = recorder.requests.find((r) => r.url.startsWith('/auth/v1/signin/anonymously'));
  assert.ok(issued, 'the SDK signed in anonymously before calling');
  assert.equal(body.access_token, 'AT-rec-1');

  assert.equal(request.headers['x-seqid'], body.seqId, 'x-seqid header equals body seqId');
});

test('every envelope gets a fresh seqId, mirrored in x-seqid', async () => {
  await Promise.all([1, 2, 3].map((n) => cloud.callFunction({ name: 'echo', data: { n } })));
  const envelopes = recorder.requests.filter((r) => r.url.startsWith('/web'));
  const seqIds = envelopes.map((r) => JSON.parse(r.body).seqId);
  assert.equal(new Set(seqIds).size, seqIds.length, 'seqIds are unique');
  for (const r of envelopes) assert.equal(r.headers['x-seqid'], JSON.parse(r.body).seqId);
});

test('anonymous sign-in request matches the official capture', () => {
  const ours = recorder.requests.filter((r) => r.url.startsWith('/auth/v1/signin/anonymously'));
  assert.equal(ours.length, 1, 'signed in once for all calls');
  const [request] = ours;
  assert.equal(request.method, capturedSignIn.method);
  assert.equal(request.url, capturedSignIn.url, 'path and ?client_id=envx');
  assert.deepEqual(JSON.parse(request.body || 'null'), JSON.parse(capturedSignIn.body));
  const deviceId = request.headers['x-device-id'];
  assert.equal(typeof deviceId, 'string', 'x-device-id header sent');
  assert.ok(deviceId.length >= 16 && deviceId.length <= 48, `device id length 16..48 (${deviceId})`);
});
