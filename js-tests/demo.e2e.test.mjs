// Browser E2E of www-demo: headless Chromium drives all three cards of the page — the cloud function, the todos
// (database) and the files (storage) — against the emulator started by www-demo/run.sh itself (same flags as
// `make demo`; only the port, data dir and site dir differ, through its documented variables).
// A screenshot is saved to a temp dir (path printed as a test diagnostic) for a person to look at.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchChromium } from './helpers/chromium.mjs';
import { REPO_ROOT, emulatorBinary, listeningUrl, terminate } from './helpers/emulator.mjs';
import { makePng } from './helpers/png.mjs';

/** Runs `www-demo/run.sh 0` (it execs the emulator, so the child is the server) and waits for its URL. */
async function startDemo(workDir) {
  const child = spawn('bash', [join(REPO_ROOT, 'www-demo', 'run.sh'), '0'], {
    env: {
      ...process.env,
      CLOUD_EMULATOR_BIN: emulatorBinary(),
      DEMO_DATA_DIR: join(workDir, 'data'),
      DEMO_DIST: join(workDir, 'site'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-100_000)));
  const exited = new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const url = await listeningUrl(child, { name: 'run.sh', timeoutMs: 30_000, stderr: () => stderr });
  return { url, stderr: () => stderr, stop: () => terminate(child, exited) };
}

let workDir;
let demo;
let browser;
let page;
let uploaded; // what the files card showed after the upload, for the delete test
const problems = [];

/** Opens the page in a fresh context (a fresh anonymous user) and records every error it shows. */
async function openDemo(context) {
  const opened = await context.newPage();
  opened.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  opened.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console.error: ${message.text()}`);
  });
  opened.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
  opened.setDefaultTimeout(15_000);
  const response = await opened.goto(`${demo.url}/`);
  assert.equal(response.status(), 200, 'the emulator serves the page at /');
  await opened.waitForSelector('body[data-ready="true"]');
  return opened;
}

/** What the todos card shows: the count badge and each item's title and done state, top to bottom. */
async function shownTodos(target = page) {
  return target.evaluate(() => ({
    count: document.getElementById('todo-count').textContent,
    items: [...document.querySelectorAll('#todo-list li')].map((li) => ({
      title: li.querySelector('.title').textContent,
      done: li.querySelector('input[type=checkbox]').checked && li.classList.contains('done'),
    })),
    error: document.getElementById('todo-error').textContent,
  }));
}

/** Waits until the card has settled (no write in flight) with `count` on the badge. */
async function waitForCount(count, target = page) {
  await target.waitForFunction(
    (expected) =>
      !document.getElementById('todos-card').hasAttribute('aria-busy') &&
      document.getElementById('todo-count').textContent === expected,
    count,
  );
}

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'www-demo-e2e-'));
  demo = await startDemo(workDir);
  browser = await launchChromium();
  page = await openDemo(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
});

after(async () => {
  await browser?.close();
  const code = demo ? await demo.stop() : null;
  // The screenshot stays for a person to look at; the site and the emulator's data do not.
  if (workDir) {
    rmSync(join(workDir, 'site'), { recursive: true, force: true });
    rmSync(join(workDir, 'data'), { recursive: true, force: true });
  }
  if (demo) assert.equal(code, 0, `the emulator exits 0 on SIGTERM; stderr:\n${demo.stderr()}`);
});

test('cloud function card: the greeting from hello shows on screen', async () => {
  await page.fill('#hello-name', '二号');
  await page.click('#hello-call');
  await page.waitForFunction(() => !['', 'Calling…'].includes(document.getElementById('hello-result').textContent));
  assert.equal(await page.textContent('#hello-result'), 'Hello, 二号!', problems.join('; '));
  assert.match(await page.textContent('#hello-details'), /cloud\.callFunction:ok · requestID \S+/);

  // A second call from the same page reuses the session and still works (Latin text last: the screenshot's
  // Chromium may have no CJK font).
  await page.fill('#hello-name', 'Web Tester');
  await page.click('#hello-call');
  await page.waitForFunction(() => document.getElementById('hello-result').textContent === 'Hello, Web Tester!');
});

test('todos card: add two, toggle one, delete one; the list and count match the database', async () => {
  assert.deepEqual(await shownTodos(), { count: '0 todos', items: [], error: '' }, 'a new user starts empty');
  assert.ok(await page.isVisible('#todo-empty'));

  // Typed while the first add is still in flight: the page must neither lose nor duplicate it.
  await page.fill('#todo-title', 'Buy milk');
  await page.click('#todo-add');
  await page.fill('#todo-title', 'Write the demo');
  await page.press('#todo-title', 'Enter');
  await waitForCount('2 todos');
  assert.deepEqual(
    (await shownTodos()).items,
    [
      { title: 'Write the demo', done: false },
      { title: 'Buy milk', done: false },
    ],
    'newest first (orderBy created desc)',
  );
  assert.equal(await page.inputValue('#todo-title'), '', 'the input is cleared after an add');

  await page.check('#todo-list li:has-text("Buy milk") input[type=checkbox]');
  await page.waitForSelector('#todo-list li.done:has-text("Buy milk")');
  await page.click('#todo-list li:has-text("Write the demo") button[aria-label^="Delete"]');
  await waitForCount('1 todo');
  assert.deepEqual(await shownTodos(), { count: '1 todo', items: [{ title: 'Buy milk', done: true }], error: '' });

  // A reload keeps the anonymous session (localStorage), so the same user reads the same documents back.
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  assert.deepEqual(await shownTodos(), { count: '1 todo', items: [{ title: 'Buy milk', done: true }], error: '' });

  // Toggling back flips `done` on the server too (the watch re-renders the list after every write).
  await page.uncheck('#todo-list li:has-text("Buy milk") input[type=checkbox]');
  await page.waitForSelector('#todo-list li:not(.done):has-text("Buy milk")');
  await page.check('#todo-list li:has-text("Buy milk") input[type=checkbox]');
  await page.waitForSelector('#todo-list li.done:has-text("Buy milk")');

  // wx's default rule: another user (a fresh browser context, so a fresh anonymous sign-in) sees none of them.
  const stranger = await openDemo(await browser.newContext());
  assert.deepEqual(await shownTodos(stranger), { count: '0 todos', items: [], error: '' });
  await stranger.context().close();

  // One more, so the screenshot shows an open and a finished todo.
  await page.fill('#todo-title', 'Ship it');
  await page.click('#todo-add');
  await waitForCount('2 todos');
  assert.deepEqual((await shownTodos()).items, [
    { title: 'Ship it', done: false },
    { title: 'Buy milk', done: true },
  ]);
  assert.ok(await page.isHidden('#todo-empty'));
});

test('todos card: a failed write shows errCode and errMsg and keeps the typed title', async (t) => {
  // One add is answered with the emulator's own error envelope for a rule refusal; everything else passes.
  let refused = 0;
  await page.route('**/web?**', (route) => {
    const body = route.request().postDataJSON?.() ?? {};
    if (body.action !== 'database.addDocument' || refused++) return route.continue();
    return route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ code: 'DATABASE_PERMISSION_DENIED', message: 'Permission denied', requestId: 'e2e' }),
    });
  });
  try {
    await page.fill('#todo-title', 'Not allowed');
    await page.click('#todo-add');
    await page.waitForFunction(() => document.getElementById('todo-error').textContent !== '');
    const shown = await shownTodos();
    t.diagnostic(`error shown: ${shown.error}`);
    assert.match(shown.error, /^(-\d+) collection\.add:fail \1 \S.*Permission denied/, shown.error);
    assert.equal(shown.count, '2 todos', 'nothing was added');
    assert.equal(await page.inputValue('#todo-title'), 'Not allowed', 'the title is given back to retry');
  } finally {
    await page.unroute('**/web?**');
  }
  assert.equal(refused, 1);
  // The retry goes through and clears the error.
  await page.click('#todo-add');
  await waitForCount('3 todos');
  assert.equal((await shownTodos()).error, '');
  await page.click('#todo-list li:has-text("Not allowed") button[aria-label^="Delete"]');
  await waitForCount('2 todos');
});

test('todos card is live: two pages of the same user see each other\'s adds, checks and deletes without reload', async () => {
  // A second page in the same browser context: same localStorage, so the same anonymous user.
  const other = await openDemo(page.context());
  await other.waitForSelector('#todo-live:not([hidden])');
  await page.waitForSelector('#todo-live:not([hidden])');
  const before = await shownTodos();
  assert.deepEqual(await shownTodos(other), before, 'both pages start with the same list');
  const count = (n) => `${n} ${n === 1 ? 'todo' : 'todos'}`;
  const n = before.items.length;

  await other.fill('#todo-title', 'From the other tab');
  await other.click('#todo-add');
  await waitForCount(count(n + 1)); // on the first page, which did nothing
  assert.deepEqual((await shownTodos()).items[0], { title: 'From the other tab', done: false });

  await page.check('#todo-list li:has-text("From the other tab") input[type=checkbox]');
  await other.waitForSelector('#todo-list li.done:has-text("From the other tab")');

  await other.click('#todo-list li:has-text("From the other tab") button[aria-label^="Delete"]');
  await waitForCount(count(n));
  assert.deepEqual(await shownTodos(), before, 'the delete reached the first page');
  assert.deepEqual(await shownTodos(other), before);
  await other.close();
  assert.deepEqual(problems, [], 'no page errors');
});

test('files card: upload with progress, then the thumbnail from the temp URL', async () => {
  const png = makePng(96, 64);
  await page.setInputFiles('#file-input', { name: 'demo image.png', mimeType: 'image/png', buffer: png });
  await page.waitForFunction(
    () => {
      const img = document.getElementById('file-thumb');
      return (img.complete && img.naturalWidth > 0) || document.getElementById('file-error').textContent;
    },
    undefined,
    { timeout: 20_000 },
  );
  const shown = await page.evaluate(() => ({
    error: document.getElementById('file-error').textContent,
    naturalWidth: document.getElementById('file-thumb').naturalWidth,
    naturalHeight: document.getElementById('file-thumb').naturalHeight,
    src: document.getElementById('file-thumb').src,
    fileID: document.getElementById('file-id').textContent,
    progress: document.getElementById('upload-progress').value,
    percent: document.getElementById('upload-percent').textContent,
    deleteEnabled: !document.getElementById('file-delete').disabled,
  }));
  assert.equal(shown.error, '', 'no storage error');
  assert.deepEqual([shown.naturalWidth, shown.naturalHeight], [96, 64], 'the thumbnail decodes to the uploaded PNG');
  assert.equal(shown.progress, 100, 'the progress bar reached 100% (fed only by task.onProgressUpdate)');
  assert.equal(shown.percent, '100%');
  assert.match(shown.fileID, /^cloud:\/\/demo-env\.[^/]+\/demo\/\d+-demo_image\.png$/);
  assert.ok(shown.src.startsWith(`${demo.url}/`), `the temp URL is served by the emulator: ${shown.src}`);
  assert.ok(shown.deleteEnabled);
  const served = await fetch(shown.src);
  assert.equal(served.status, 200);
  assert.deepEqual(Buffer.from(await served.arrayBuffer()), png, 'the stored bytes are the uploaded bytes');

  uploaded = shown;
});

test('screenshot: all three cards filled in', async (t) => {
  // The todos test reloaded the page, so call hello once more for a complete picture.
  await page.fill('#hello-name', 'Web Tester');
  await page.click('#hello-call');
  await page.waitForFunction(() => document.getElementById('hello-result').textContent === 'Hello, Web Tester!');
  const screenshot = join(workDir, 'www-demo.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  t.diagnostic(`screenshot: ${screenshot}`);
  assert.ok(existsSync(screenshot));
});

test('files card: delete removes the object and the thumbnail', async () => {
  assert.ok(uploaded, 'the upload test passed');
  await page.click('#file-delete');
  await page.waitForSelector('#file-preview', { state: 'hidden' });
  assert.equal(await page.textContent('#file-error'), '');
  assert.equal(await page.evaluate(() => document.getElementById('upload-progress').value), 0);
  assert.equal(await page.isDisabled('#file-delete'), true);
  assert.ok((await fetch(uploaded.src)).status >= 400, 'after deleteFile the object is gone');
});

test('no page errors, console errors or failed responses along the way', () => {
  assert.deepEqual(problems, []);
});
