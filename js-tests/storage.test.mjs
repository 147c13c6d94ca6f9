// Storage through the built package against a real cloud-emulator (Node: no XMLHttpRequest, so uploads go
// through fetch): uploadFile (PUT and POST form), downloadFile, getTempFileURL, deleteFile — sizes 0 B / 1 B /
// 5 MB / over the limit, sha256 round trips, per-item codes, 50 concurrent uploads, cloudPath rules, both call
// styles, abort, list limits (api-surface.md §2.6, §4, §6; protocol.md §4).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { closedPort, startEmulator } from './helpers/emulator.mjs';
import { assertCloudError, rejection } from './helpers/expect.mjs';

const ENV = 'storage-env';
// Small enough that an over-limit upload is cheap, large enough for the 5 MB case.
const MAX_UPLOAD_BYTES = 6 * 1024 * 1024;
let emulator;
let cloud;

before(async () => {
  emulator = await startEmulator({ extraArgs: ['--max-upload-bytes', String(MAX_UPLOAD_BYTES)] });
  ({ cloud } = await import('taro-cloud-wasm'));
  cloud.init({ env: ENV, endpoint: emulator.url });
});
after(async () => {
  await emulator?.stop();
});

const sha256 = (bytes) => createHash('sha256').update(new Uint8Array(bytes)).digest('hex');
const unique = (name) => `t/${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}/${name}`;

/** Whether the object behind `fileID` exists, asked through getTempFileURL's per-item status. */
async function exists(fileID) {
  const { fileList } = await cloud.getTempFileURL({ fileList: [fileID] });
  if (fileList[0].status === 0) return true;
  assert.equal(fileList[0].status, -503003, `status of ${fileID}: ${JSON.stringify(fileList[0])}`);
  return false;
}

/** Runs a callback-style call; resolves with the events in order and what the call returned. */
function callbackCall(api, options) {
  return new Promise((resolve) => {
    const events = [];
    const returned = cloud[api]({
      ...options,
      success: (res) => events.push(['success', res]),
      fail: (err) => events.push(['fail', err]),
      complete: (value) => {
        events.push(['complete', value]);
        setTimeout(() => resolve({ events, returned }), 20);
      },
    });
  });
}

describe('uploadFile + downloadFile round trips', () => {
  for (const method of ['put', 'post']) {
    for (const [label, size] of [
      ['0 B', 0],
      ['1 B', 1],
      ['5 MB', 5 * 1024 * 1024],
    ]) {
      test(`${method.toUpperCase()} ${label}: downloaded bytes have the uploaded sha256`, async () => {
        const bytes = randomBytes(size);
        const cloudPath = unique(`${method}-${size}.bin`);
        const uploaded = await cloud.uploadFile({ cloudPath, file: bytes, method });
        assert.deepEqual(Object.keys(uploaded).sort(), ['errMsg', 'fileID', 'statusCode']);
        assert.equal(uploaded.errMsg, 'cloud.uploadFile:ok');
        assert.equal(uploaded.statusCode, method === 'put' ? 200 : 201);
        assert.match(uploaded.fileID, new RegExp(`^cloud://${ENV}\\.[0-9a-f]{4}-${ENV}-\\d+/`));
        assert.ok(uploaded.fileID.endsWith('/' + cloudPath), uploaded.fileID);

        const downloaded = await cloud.downloadFile({ fileID: uploaded.fileID });
        assert.equal(downloaded.errMsg, 'downloadFile:ok');
        assert.equal(downloaded.statusCode, 200);
        assert.ok(downloaded.data instanceof ArrayBuffer);
        assert.equal(downloaded.data.byteLength, size);
        assert.equal(sha256(downloaded.data), sha256(bytes));
        assert.equal(downloaded.header['content-length'], String(size));
        assert.match(downloaded.tempFilePath, /^blob:/);
        const viaObjectUrl = await (await fetch(downloaded.tempFilePath)).arrayBuffer();
        assert.equal(sha256(viaObjectUrl), sha256(bytes));
      });
    }
  }

  test('File, Blob, ArrayBuffer, typed arrays and a blob: filePath all upload; content types follow', async () => {
    const text = 'hello world';
    const sources = [
      ['file.txt', { file: new File([text], 'name.txt', { type: 'text/plain' }) }, 'text/plain'],
      ['blob.json', { file: new Blob([text], { type: 'application/json' }) }, 'application/json'],
      ['untyped.png', { file: new Blob([text]) }, 'image/png'],
      ['buffer.txt', { file: new TextEncoder().encode(text).buffer }, 'text/plain'],
      ['view.bin', { file: new DataView(new TextEncoder().encode(text).buffer) }, 'application/octet-stream'],
      ['url.txt', { filePath: URL.createObjectURL(new Blob([text], { type: 'text/plain' })) }, 'text/plain'],
    ];
    for (const [name, source, contentType] of sources) {
      const { fileID } = await cloud.uploadFile({ cloudPath: unique(name), ...source });
      const { data, header } = await cloud.downloadFile({ fileID });
      assert.equal(new TextDecoder().decode(data), text, name);
      assert.equal(header['content-type'], contentType, name);
    }
  });

  test('an upload over --max-upload-bytes fails with the status and the COS XML, and leaves no object', async () => {
    for (const method of ['put', 'post']) {
      const cloudPath = unique(`too-big-${method}.bin`);
      const error = assertCloudError(
        await rejection(cloud.uploadFile({ cloudPath, file: new Uint8Array(MAX_UPLOAD_BYTES + 1), method })),
        -403001,
        { errMsgStartsWith: 'cloud.uploadFile:fail -403001 max upload file size exceeded. status 400, error: ' },
      );
      assert.equal(error.code, 'EntityTooLarge');
      assert.match(error.errMsg, /<Error>.*<Code>EntityTooLarge<\/Code>.*<\/Error>;$/s);
      const fileID = `cloud://${ENV}.x/${cloudPath}`;
      assert.equal(await exists(fileID), false, `${method}: no partial object`);
    }
  });

  test('the same cloudPath overwrites', async () => {
    const cloudPath = unique('same.txt');
    await cloud.uploadFile({ cloudPath, file: new TextEncoder().encode('first') });
    const { fileID } = await cloud.uploadFile({ cloudPath, file: new TextEncoder().encode('second') });
    const { data } = await cloud.downloadFile({ fileID });
    assert.equal(new TextDecoder().decode(data), 'second');
  });

  test('per-call config.env picks the env', async () => {
    const { fileID } = await cloud.uploadFile({
      cloudPath: unique('other.txt'),
      file: new Uint8Array([1, 2, 3]),
      config: { env: 'storage-other' },
    });
    assert.match(fileID, /^cloud:\/\/storage-other\./);
    const { data } = await cloud.downloadFile({ fileID, config: { env: 'storage-other' } });
    assert.deepEqual([...new Uint8Array(data)], [1, 2, 3]);
  });

  test('50 concurrent uploads all land, each with its own bytes', async () => {
    const files = Array.from({ length: 50 }, (_, i) => ({ cloudPath: unique(`many/${i}.bin`), bytes: randomBytes(1000 + i) }));
    const results = await Promise.all(
      files.map(({ cloudPath, bytes }, i) => cloud.uploadFile({ cloudPath, file: bytes, method: i % 2 ? 'post' : 'put' })),
    );
    assert.equal(new Set(results.map((r) => r.fileID)).size, 50);
    const { fileList } = await cloud.getTempFileURL({ fileList: results.map((r) => r.fileID) });
    assert.equal(fileList.length, 50);
    await Promise.all(
      fileList.map(async (item, i) => {
        assert.equal(item.status, 0, JSON.stringify(item));
        const bytes = await (await fetch(item.tempFileURL)).arrayBuffer();
        assert.equal(sha256(bytes), sha256(files[i].bytes), files[i].cloudPath);
      }),
    );
  });
});

describe('cloudPath naming rules', () => {
  test('traversal, absolute, empty, // and control characters are refused before any I/O (-401002)', async () => {
    // An instance at a closed port: a request would fail with -601003, so -401002 proves nothing was sent.
    const offline = new cloud.Cloud({ resourceEnv: ENV, endpoint: `http://127.0.0.1:${await closedPort()}` });
    await offline.init();
    const bad = ['', '/etc/passwd', '../x', 'a/../../b', './a', 'a/..', 'a//b', 'a\u001bb', 'a\nb', 'x'.repeat(851)];
    for (const cloudPath of bad) {
      for (const target of [cloud, offline]) {
        assertCloudError(await rejection(target.uploadFile({ cloudPath, file: new Uint8Array(1) })), -401002, {
          errMsgStartsWith: 'cloud.uploadFile:fail -401002 api parameter error. parameter.cloudPath is invalid: ',
        });
      }
    }
    assertCloudError(await rejection(offline.uploadFile({ cloudPath: 42, file: new Uint8Array(1) })), -401003, {
      errMsgIncludes: 'parameter.cloudPath should be string instead of number;',
    });
  });

  test('percent-encoded, backslash and non-ASCII names are opaque keys that round-trip', async () => {
    for (const name of ['%2e%2e%2fetc%2fpasswd', '..\\windows\\win.ini', 'a\\..\\b', '中文 名?#.txt', '..a', 'trailing/']) {
      const cloudPath = unique(name);
      const { fileID } = await cloud.uploadFile({ cloudPath, file: new TextEncoder().encode(name) });
      assert.ok(fileID.endsWith('/' + cloudPath), fileID);
      const { data } = await cloud.downloadFile({ fileID });
      assert.equal(new TextDecoder().decode(data), name);
    }
  });
});

describe('getTempFileURL and deleteFile', () => {
  test('items carry tempFileURL/maxAge/status/errMsg; a failed item does not fail the call', async () => {
    const { fileID } = await cloud.uploadFile({ cloudPath: unique('temp.txt'), file: new TextEncoder().encode('temp') });
    const missing = `cloud://${ENV}.x/${unique('missing.txt')}`;
    const res = await cloud.getTempFileURL({ fileList: [fileID, { fileID, maxAge: 60 }, missing] });
    assert.equal(res.errMsg, 'cloud.getTempFileURL:ok');
    assert.equal(res.fileList.length, 3);
    const [plain, custom, absent] = res.fileList;
    assert.deepEqual(Object.keys(plain).sort(), ['errMsg', 'fileID', 'maxAge', 'status', 'tempFileURL']);
    assert.deepEqual([plain.fileID, plain.status, plain.errMsg, plain.maxAge], [fileID, 0, 'ok', 600]);
    assert.deepEqual([custom.status, custom.maxAge], [0, 60]);
    assert.deepEqual([absent.fileID, absent.status, absent.tempFileURL], [missing, -503003, '']);
    assert.ok(absent.errMsg.length > 0 && absent.errMsg !== 'ok');
    const response = await fetch(plain.tempFileURL);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'temp');
  });

  test('empty lists resolve at once with []', async () => {
    assert.deepEqual(await cloud.getTempFileURL({ fileList: [] }), { fileList: [], errMsg: 'cloud.getTempFileURL:ok' });
    assert.deepEqual(await cloud.deleteFile({ fileList: [] }), { fileList: [], errMsg: 'cloud.deleteFile:ok' });
  });

  test('more than 50 entries is -401002 (client check); wrong types are -401003', async () => {
    const ids = Array.from({ length: 51 }, (_, i) => `cloud://${ENV}.x/${i}`);
    for (const api of ['getTempFileURL', 'deleteFile']) {
      assertCloudError(await rejection(cloud[api]({ fileList: ids })), -401002, {
        errMsgStartsWith: `cloud.${api}:fail -401002`,
        errMsgIncludes: 'parameter.fileList exceed max length 50',
      });
      assertCloudError(await rejection(cloud[api]({ fileList: 'x' })), -401003);
    }
    assertCloudError(await rejection(cloud.deleteFile({ fileList: [{ fileID: ids[0] }] })), -401003, {
      errMsgIncludes: 'parameter.fileList[0] should be string instead of object;',
    });
    assertCloudError(await rejection(cloud.getTempFileURL({ fileList: [{ fileID: ids[0], maxAge: 'x' }] })), -401003);
    // 50 is fine.
    const res = await cloud.getTempFileURL({ fileList: ids.slice(0, 50) });
    assert.equal(res.fileList.length, 50);
    assert.ok(res.fileList.every((item) => item.status === -503003));
  });

  test('deleteFile items: 0/ok for deleted, -503003 for missing; the object is gone afterwards', async () => {
    const { fileID } = await cloud.uploadFile({ cloudPath: unique('delete-me.txt'), file: new Uint8Array([7]) });
    const missing = `cloud://${ENV}.x/${unique('never.txt')}`;
    const res = await cloud.deleteFile({ fileList: [fileID, missing] });
    assert.equal(res.errMsg, 'cloud.deleteFile:ok');
    assert.deepEqual(res.fileList[0], { fileID, status: 0, errMsg: 'ok' });
    assert.equal(res.fileList[1].fileID, missing);
    assert.equal(res.fileList[1].status, -503003);
    assert.equal(await exists(fileID), false);
    assertCloudError(await rejection(cloud.downloadFile({ fileID })), -503003, {
      errMsgStartsWith: 'cloud.downloadFile:fail -503003 storage file not exists.',
    });
  });
});

describe('call styles, tasks and abort', () => {
  test('callback uploadFile returns an UploadTask; progress ends at the total; success then complete', async () => {
    const bytes = randomBytes(300_000);
    const progress = [];
    const headers = [];
    let task;
    const done = new Promise((resolve) => {
      const events = [];
      task = cloud.uploadFile({
        cloudPath: unique('cb.bin'),
        file: bytes,
        success: (res) => events.push(['success', res]),
        fail: (err) => events.push(['fail', err]),
        complete: (value) => {
          events.push(['complete', value]);
          resolve(events);
        },
      });
    });
    for (const name of ['onProgressUpdate', 'offProgressUpdate', 'onHeadersReceived', 'offHeadersReceived', 'abort']) {
      assert.equal(typeof task[name], 'function', name);
    }
    const dropped = () => assert.fail('a removed listener was called');
    task.onProgressUpdate(dropped);
    task.offProgressUpdate(dropped);
    task.onProgressUpdate((event) => progress.push(event));
    task.onHeadersReceived((event) => headers.push(event));
    const events = await done;
    assert.deepEqual(
      events.map(([name]) => name),
      ['success', 'complete'],
    );
    assert.equal(events[0][1], events[1][1]);
    assert.equal(events[0][1].errMsg, 'cloud.uploadFile:ok');
    assert.ok(progress.length >= 1);
    assert.deepEqual(progress.at(-1), { progress: 100, totalBytesSent: bytes.length, totalBytesExpectedToSend: bytes.length });
    assert.equal(headers.length, 1);
    assert.ok('etag' in headers[0].header, JSON.stringify(headers[0]));
  });

  test('callback downloadFile returns a DownloadTask; progress is monotone and ends at Content-Length', async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 7);
    const { fileID } = await cloud.uploadFile({ cloudPath: unique('dl.bin'), file: bytes });
    const progress = [];
    const result = await new Promise((resolve, reject) => {
      const task = cloud.downloadFile({ fileID, success: resolve, fail: reject });
      task.onProgressUpdate((event) => progress.push(event));
    });
    assert.equal(sha256(result.data), sha256(bytes));
    assert.ok(progress.length > 1, `several chunks (${progress.length})`);
    for (let i = 1; i < progress.length; i++) {
      assert.ok(progress[i].totalBytesWritten >= progress[i - 1].totalBytesWritten);
      assert.ok(progress[i].progress >= progress[i - 1].progress);
    }
    assert.deepEqual(progress.at(-1), { progress: 100, totalBytesWritten: bytes.length, totalBytesExpectedToWrite: bytes.length });
  });

  test('callback getTempFileURL / deleteFile return undefined; failures go to fail then complete', async () => {
    const { fileID } = await cloud.uploadFile({ cloudPath: unique('cb2.txt'), file: new Uint8Array([1]) });
    const temp = await callbackCall('getTempFileURL', { fileList: [fileID] });
    assert.equal(temp.returned, undefined);
    assert.deepEqual(temp.events.map(([name]) => name), ['success', 'complete']);
    const removed = await callbackCall('deleteFile', { fileList: [fileID] });
    assert.equal(removed.returned, undefined);
    assert.equal(removed.events[0][1].fileList[0].status, 0);
    const failed = await callbackCall('downloadFile', { fileID });
    assert.equal(typeof failed.returned.abort, 'function', 'downloadFile returns its task');
    assert.deepEqual(failed.events.map(([name]) => name), ['fail', 'complete']);
    assertCloudError(failed.events[0][1], -503003);
    const bad = await callbackCall('uploadFile', { cloudPath: '/abs', file: new Uint8Array(1) });
    assert.deepEqual(bad.events.map(([name]) => name), ['fail', 'complete']);
    assertCloudError(bad.events[0][1], -401002);
  });

  test('abort: signal (Promise style) and task.abort() (callback style) fail with -1 and leave no object', async () => {
    const controller = new AbortController();
    controller.abort();
    const cloudPath = unique('aborted.bin');
    assertCloudError(await rejection(cloud.uploadFile({ cloudPath, file: randomBytes(1000), signal: controller.signal })), -1, {
      errMsgStartsWith: 'cloud.uploadFile:fail abort',
    });
    const late = new AbortController();
    const pending = cloud.uploadFile({ cloudPath, file: randomBytes(4 * 1024 * 1024), signal: late.signal });
    setTimeout(() => late.abort(), 1);
    assertCloudError(await rejection(pending), -1);

    const taskPath = unique('task-aborted.bin');
    const failure = await new Promise((resolve) => {
      const task = cloud.uploadFile({ cloudPath: taskPath, file: randomBytes(4 * 1024 * 1024), fail: resolve, success: resolve });
      task.abort();
    });
    assertCloudError(failure, -1, { errMsgStartsWith: 'cloud.uploadFile:fail abort' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await exists(`cloud://${ENV}.x/${cloudPath}`), false);
    assert.equal(await exists(`cloud://${ENV}.x/${taskPath}`), false);
  });

  test('wrong argument types', async () => {
    assertCloudError(await rejection(cloud.uploadFile({ cloudPath: 'a.txt', file: 123 })), -401003, {
      errMsgIncludes: 'parameter.file should be File, Blob, ArrayBuffer or a typed array instead of number;',
    });
    assertCloudError(await rejection(cloud.uploadFile({ cloudPath: 'a.txt' })), -401003);
    assertCloudError(await rejection(cloud.uploadFile({ cloudPath: 'a.txt', file: new Uint8Array(1), method: 'patch' })), -401002);
    assertCloudError(await rejection(cloud.downloadFile({})), -401003, {
      errMsgStartsWith: 'cloud.downloadFile:fail -401003',
    });
    assertCloudError(await rejection(cloud.uploadFile({ cloudPath: 'a.txt', file: new Uint8Array(1), config: { env: 5 } })), -401003);
  });
});
