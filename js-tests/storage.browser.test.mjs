// Storage in headless Chromium (playwright-core): the built package is served by the emulator's --hosting
// next to a blank page; the page is opened as http://localhost:PORT while the SDK talks to
// http://127.0.0.1:PORT, so every request is cross-origin (CORS preflight for the PUT headers included).
// Covers XHR upload progress (monotone, ending at the total), abort mid-upload leaving no object, a temp URL
// and a download's object URL rendering in an <img>, a blob: filePath, and sha256-equal downloads.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { launchChromium } from './helpers/chromium.mjs';
import { makeSdkSite } from './helpers/sdk-site.mjs';
import { startEmulator } from './helpers/emulator.mjs';

const ENV = 'storage-browser';

let siteDir;
let emulator;
let browser;
let page;
const problems = [];

before(async () => {
  siteDir = makeSdkSite('storage-browser');
  emulator = await startEmulator({ hosting: siteDir });
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console.error: ${message.text()}`);
  });
  page.setDefaultTimeout(60_000);
  const response = await page.goto(`http://localhost:${emulator.port}/`);
  assert.equal(response.status(), 200);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  await page.evaluate(([env, endpoint]) => window.cloud.init({ env, endpoint }), [ENV, emulator.url]);
});
after(async () => {
  await browser?.close();
  await emulator?.stop();
  if (siteDir) rmSync(siteDir, { recursive: true, force: true });
});

describe('storage in Chromium', () => {
  test('XHR upload progress is monotone and ends at the total (PUT and POST form); bytes round-trip', async () => {
    const outcome = await page.evaluate(async () => {
      const size = 12 * 1024 * 1024 + 3;
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
      const hex = async (buffer) =>
        [...new Uint8Array(await crypto.subtle.digest('SHA-256', buffer))].map((b) => b.toString(16).padStart(2, '0')).join('');
      const runs = {};
      for (const method of ['put', 'post']) {
        const events = [];
        const res = await new Promise((resolve, reject) => {
          const task = window.cloud.uploadFile({
            cloudPath: `progress/${method}-${Date.now()}.bin`,
            file: new Blob([bytes]),
            method,
            success: resolve,
            fail: reject,
          });
          task.onProgressUpdate((event) => events.push(event));
        });
        const downloaded = await window.cloud.downloadFile({ fileID: res.fileID });
        runs[method] = { res, events, downloadedSha: await hex(downloaded.data) };
      }
      return { size, sha: await hex(bytes), runs };
    });
    for (const method of ['put', 'post']) {
      const { res, events, downloadedSha } = outcome.runs[method];
      assert.equal(res.errMsg, 'cloud.uploadFile:ok');
      assert.equal(downloadedSha, outcome.sha, `${method}: downloaded sha256`);
      assert.ok(events.length >= 2, `${method}: byte-level events (${events.length})`);
      for (let i = 1; i < events.length; i++) {
        assert.ok(events[i].totalBytesSent >= events[i - 1].totalBytesSent, `${method}: monotone at ${i}`);
        assert.ok(events[i].progress >= events[i - 1].progress, `${method}: monotone percent at ${i}`);
      }
      const last = events.at(-1);
      assert.equal(last.progress, 100);
      assert.equal(last.totalBytesSent, last.totalBytesExpectedToSend);
      if (method === 'put') assert.equal(last.totalBytesExpectedToSend, outcome.size);
      else assert.ok(last.totalBytesExpectedToSend > outcome.size, 'POST counts the multipart body');
      assert.ok(events.some((event) => event.progress < 100), `${method}: some event before the end`);
    }
  });

  test('abort mid-upload fails with -1 and leaves no object', async () => {
    const outcome = await page.evaluate(async () => {
      const cloudPath = `abort/${Date.now()}.bin`;
      const size = 48 * 1024 * 1024;
      let abortedAt = null;
      const error = await new Promise((resolve) => {
        const task = window.cloud.uploadFile({
          cloudPath,
          file: new Blob([new Uint8Array(size)]),
          success: () => resolve(null),
          fail: resolve,
        });
        task.onProgressUpdate((event) => {
          if (abortedAt === null && event.totalBytesSent > 0 && event.totalBytesSent < size) {
            abortedAt = event.totalBytesSent;
            task.abort();
          }
        });
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const probe = await window.cloud.getTempFileURL({ fileList: [`cloud://${'storage-browser'}.x/${cloudPath}`] });
      return { size, abortedAt, errCode: error?.errCode, errMsg: error?.errMsg, probe: probe.fileList[0] };
    });
    assert.ok(outcome.abortedAt !== null && outcome.abortedAt < outcome.size, `aborted mid-way: ${JSON.stringify(outcome)}`);
    assert.equal(outcome.errCode, -1);
    assert.equal(outcome.errMsg, 'cloud.uploadFile:fail abort');
    assert.equal(outcome.probe.status, -503003, `no object: ${JSON.stringify(outcome.probe)}`);
  });

  test('an uploaded PNG renders in <img> from its temp URL and from downloadFile tempFilePath; blob: filePath works', async () => {
    const outcome = await page.evaluate(async () => {
      const canvas = document.createElement('canvas');
      canvas.width = 37;
      canvas.height = 21;
      const context = canvas.getContext('2d');
      context.fillStyle = '#c03';
      context.fillRect(0, 0, 37, 21);
      const png = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
      // What Taro H5's chooseImage hands over: an object URL.
      const filePath = URL.createObjectURL(png);
      const { fileID } = await window.cloud.uploadFile({ cloudPath: `img/${Date.now()}.png`, filePath });
      const { fileList } = await window.cloud.getTempFileURL({ fileList: [{ fileID, maxAge: 120 }] });
      const load = (src) =>
        new Promise((resolve) => {
          const img = new Image();
          img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
          img.onerror = () => resolve({ error: `could not load ${src}` });
          img.src = src;
          document.body.append(img);
        });
      const fromTempUrl = await load(fileList[0].tempFileURL);
      const downloaded = await window.cloud.downloadFile({ fileID });
      const fromDownload = await load(downloaded.tempFilePath);
      return { item: fileList[0], fromTempUrl, fromDownload, contentType: downloaded.header['content-type'] };
    });
    assert.equal(outcome.item.status, 0, JSON.stringify(outcome.item));
    assert.equal(outcome.item.maxAge, 120);
    assert.deepEqual(outcome.fromTempUrl, { width: 37, height: 21 });
    assert.deepEqual(outcome.fromDownload, { width: 37, height: 21 });
    assert.equal(outcome.contentType, 'image/png');
  });

  test('no page errors', () => {
    assert.deepEqual(problems, []);
  });
});
