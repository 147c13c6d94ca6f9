// Storage conformance: the official @cloudbase/js-sdk 3.7.0 browser build (in Node with the minimal browser
// globals of helpers/browser-globals.mjs, as conformance.test.mjs) against cloud-emulator — uploadFile with its
// default presigned PUT and with {method:'post'}, getTempFileURL, deleteFile — in endPointMode 'CLOUD_API'
// (/web actions) and 'GATEWAY' (/v1/storages, the 3.x default); and files cross between the official SDK and
// ours in both directions. The official downloadFile ends in a DOM download, so "downloadable through theirs"
// is done as their downloadFile does it: their getTempFileURL, then GET encodeURI(download_url).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { installBrowserGlobals } from './helpers/browser-globals.mjs';
import { JS_TESTS_DIR, startEmulator } from './helpers/emulator.mjs';

let emulator;
let cloudbase;
let cloud;

before(async () => {
  emulator = await startEmulator();
  installBrowserGlobals({ origin: `${emulator.url}/` });
  const require = createRequire(join(JS_TESTS_DIR, 'package.json'));
  const sdk = require(join(JS_TESTS_DIR, 'node_modules', '@cloudbase', 'js-sdk', 'dist', 'index.cjs.js'));
  cloudbase = sdk.default ?? sdk;
  ({ cloud } = await import('taro-cloud-wasm'));
});
after(async () => {
  await emulator?.stop();
});

const sha256 = (bytes) => createHash('sha256').update(new Uint8Array(bytes)).digest('hex');

function officialApp(env, endPointMode) {
  const app = cloudbase.init({ env, endPointMode });
  app.registerHost(`127.0.0.1:${emulator.port}`, 'http');
  return app;
}

/** Bytes of a fileID through the official SDK: getTempFileURL, then GET encodeURI(download_url). */
async function officialDownload(app, fileID) {
  const { fileList } = await app.getTempFileURL({ fileList: [{ fileID, maxAge: 600 }] });
  assert.equal(fileList[0].code, 'SUCCESS', JSON.stringify(fileList[0]));
  const response = await fetch(encodeURI(fileList[0].download_url));
  assert.equal(response.status, 200);
  return response.arrayBuffer();
}

for (const endPointMode of ['CLOUD_API', 'GATEWAY']) {
  describe(`official SDK storage, endPointMode '${endPointMode}'`, () => {
    const env = `conformance-storage-${endPointMode.toLowerCase().replace('_', '-')}`;
    let app;
    let ours;
    before(async () => {
      app = officialApp(env, endPointMode);
      await app.auth().signInAnonymously();
      ours = new cloud.Cloud({ resourceEnv: env, endpoint: emulator.url, persistence: 'none' });
      await ours.init();
    });

    for (const method of ['put', 'post']) {
      test(`uploadFile (${method === 'put' ? 'default PUT' : "{method:'post'}"}) → fileID; getTempFileURL → the bytes`, async () => {
        const bytes = randomBytes(70_000);
        const cloudPath = `official/${method}-${Date.now()}.bin`;
        const options = { cloudPath, filePath: new File([bytes], 'upload.bin', { type: 'application/octet-stream' }) };
        if (method === 'post') options.method = 'post';
        const uploaded = await app.uploadFile(options);
        assert.match(uploaded.fileID, new RegExp(`^cloud://${env}\\.[^/]+/${cloudPath}$`));
        assert.equal(sha256(await officialDownload(app, uploaded.fileID)), sha256(bytes));
        // ...and through ours.
        const { data } = await ours.downloadFile({ fileID: uploaded.fileID });
        assert.equal(sha256(data), sha256(bytes));
      });
    }

    test('getTempFileURL: a missing file is a per-item code, not a failure', async () => {
      const { fileID } = await app.uploadFile({ cloudPath: `official/temp-${Date.now()}.txt`, filePath: new Blob(['t']) });
      const missing = `cloud://${env}.x/official/none-${Date.now()}.txt`;
      const { fileList } = await app.getTempFileURL({ fileList: [fileID, missing] });
      assert.equal(fileList.length, 2);
      assert.equal(fileList[0].code, 'SUCCESS');
      assert.ok(fileList[0].tempFileURL || fileList[0].download_url);
      assert.notEqual(fileList[1].code, 'SUCCESS');
      assert.equal(fileList[1].code, 'STORAGE_FILE_NONEXIST');
    });

    test('deleteFile: deleted then gone; a missing file reports its code', async () => {
      const { fileID } = await app.uploadFile({ cloudPath: `official/del-${Date.now()}.txt`, filePath: new Blob(['d']) });
      const { fileList } = await app.deleteFile({ fileList: [fileID] });
      assert.equal(fileList[0].fileID, fileID);
      assert.equal(fileList[0].code, 'SUCCESS');
      const again = await app.deleteFile({ fileList: [fileID] });
      assert.equal(again.fileList[0].code, 'STORAGE_FILE_NONEXIST');
      const ourView = await ours.getTempFileURL({ fileList: [fileID] });
      assert.equal(ourView.fileList[0].status, -503003);
    });

    test('a file uploaded by our SDK is downloadable through the official SDK', async () => {
      for (const method of ['put', 'post']) {
        const bytes = randomBytes(123_457);
        const { fileID } = await ours.uploadFile({ cloudPath: `ours/${method}-${Date.now()}.bin`, file: bytes, method });
        assert.equal(sha256(await officialDownload(app, fileID)), sha256(bytes), method);
      }
    });
  });
}
