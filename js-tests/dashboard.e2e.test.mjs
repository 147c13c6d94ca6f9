// Browser E2E of the cloud-emulator dashboard (/_/): headless Chromium signs in with the one-time link the
// emulator printed, and the built SDK (taro-cloud-wasm, in this process) plays the app. Every change the SDK
// makes must show on the open page without a reload (server push), and what the page changes must be read
// back through the SDK. Screenshots of every page go to $DASHBOARD_SCREENSHOTS (docs/dashboard/ when
// refreshing the committed ones: `DASHBOARD_SCREENSHOTS=../docs/dashboard node --test dashboard.e2e.test.mjs`),
// else to a temp dir.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { launchChromium } from './helpers/chromium.mjs';
import { startEmulator } from './helpers/emulator.mjs';
import { makePng } from './helpers/png.mjs';

const ENV = 'dash-env';
const LOGGER = `exports.main = async (event) => {
  console.log('logger got', event.n);
  console.warn('twice is', event.n * 2);
  return { doubled: event.n * 2, openid: event.userInfo.openId };
};`;
const OWNER_RULES = { read: 'doc._openid == auth.openid', write: 'doc._openid == auth.openid' };

let workDir;
let shotsDir;
let emulator;
let browser;
let page;
let cloud;
let db;
let adminToken;
let documentId;
let openid;
const problems = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A line of the emulator's stderr, waited for (the banner comes right after the `listening on` line). */
async function bannerLine(pattern) {
  for (let i = 0; i < 100; i++) {
    const match = pattern.exec(emulator.stderr());
    if (match) return match[1];
    await sleep(50);
  }
  throw new Error(`no ${pattern} in stderr:\n${emulator.stderr()}`);
}

/** The dashboard API with the admin token (for assertions the page does not show). */
async function adminApi(path) {
  const response = await fetch(`${emulator.url}/_/api/${path}`, { headers: { authorization: `Bearer ${adminToken}` } });
  assert.equal(response.status, 200, path);
  return response.json();
}

async function go(name) {
  await page.click(`header nav a[href="#/${name}"]`);
  await page.waitForFunction((n) => document.querySelector(`header nav a[href="#/${n}"]`).getAttribute('aria-current') === 'page', name);
}

/** Every form control on the page has an accessible name (a <label>, or aria-label). */
async function assertLabelled(where) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
      .map((el) => el.outerHTML.slice(0, 80)));
  assert.deepEqual(unlabelled, [], `unlabelled controls on ${where}`);
}

async function screenshot(name) {
  await page.screenshot({ path: join(shotsDir, `${name}.png`), fullPage: true });
}

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'dashboard-e2e-'));
  shotsDir = process.env.DASHBOARD_SCREENSHOTS ? resolve(process.env.DASHBOARD_SCREENSHOTS) : join(workDir, 'shots');
  mkdirSync(shotsDir, { recursive: true });
  mkdirSync(join(workDir, 'functions', 'logger'), { recursive: true });
  writeFileSync(join(workDir, 'functions', 'logger', 'index.js'), LOGGER);
  emulator = await startEmulator({ functions: join(workDir, 'functions'), env: ENV });
  adminToken = await bannerLine(/admin token: (\S+)/);

  ({ cloud } = await import('taro-cloud-wasm'));
  cloud.init({ env: ENV, endpoint: emulator.url, persistence: 'none' });
  db = cloud.database();

  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    // Failed loads are checked by URL below (the broken rules are refused with a 400 on purpose).
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      problems.push(`console.error: ${message.text()}`);
    }
  });
  page.on('response', (response) => {
    const expected = response.status() === 400 && response.url().endsWith('/_/api/database/rules');
    if (response.status() >= 400 && !expected) problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
});

after(async () => {
  // Stopped while the page still holds its live stream: the stream must not hold the shutdown.
  const started = Date.now();
  const code = await emulator?.stop();
  const stopMs = Date.now() - started;
  await browser?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
  if (emulator) {
    assert.equal(code, 0, 'the emulator stops cleanly with the dashboard open');
    assert.ok(stopMs < 4_000, `it stops without waiting out the 5 s drain (${stopMs} ms)`);
  }
});

test('the start banner gives the dashboard link and the cloud.init line; the link signs in once', async () => {
  const login = await bannerLine(/one-time link to sign in: (\S+)/);
  assert.match(emulator.stderr(), new RegExp(`cloud\\.init\\(\\{ env: '${ENV}', endpoint: '${emulator.url}' \\}\\)`));
  const response = await page.goto(login);
  assert.equal(response.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/_/');
  await page.waitForSelector('#live.on');
  assert.equal(await page.inputValue('#env'), ENV, 'the pinned env is preselected');
  await page.evaluate(() => { window.notReloaded = true; });

  // The link is one-time: a second browser gets the sign-in form, and no data.
  const stranger = await browser.newPage();
  await stranger.goto(login);
  assert.ok(await stranger.isVisible('form[action="/_/login"] input[name="token"]'));
  const probe = await stranger.evaluate(async () => (await fetch('/_/api/overview')).status);
  assert.equal(probe, 401);
  await stranger.close();
});

test('database: create a collection and a custom rule in the UI', async () => {
  await go('database');
  await page.getByLabel('Name').fill('todos');
  await page.getByRole('button', { name: 'Create collection' }).click();
  await page.getByRole('button', { name: /^todos/ }).waitFor();
  await page.getByText('Rules', { exact: true }).click();
  await page.getByLabel('Rules preset').selectOption('custom');

  // Custom rules are validated by the server; a broken one is refused with its reason.
  await page.getByRole('textbox', { name: /Custom rules/ }).fill('{"read": "doc._openid =="}');
  await page.getByRole('button', { name: 'Save rules' }).click();
  await page.waitForFunction(() => document.getElementById('toast').classList.contains('bad'));
  assert.match(await page.textContent('#toast'), /INVALID_PARAM/);

  await page.getByRole('textbox', { name: /Custom rules/ }).fill(JSON.stringify(OWNER_RULES));
  await page.getByRole('button', { name: 'Save rules' }).click();
  await page.waitForFunction(() => document.getElementById('toast').textContent === 'rules of todos saved');
  const { collections } = await adminApi(`database/collections?env=${ENV}`);
  assert.deepEqual(collections.map((c) => [c.name, c.rules]), [['todos', OWNER_RULES]]);
});

test('database: a document added through the SDK appears without reload; an edit in the UI reads back', async () => {
  const due = new Date('2026-12-24T18:00:00.000Z');
  ({ _id: documentId } = await db.collection('todos').add({ data: { title: 'from the sdk', due, done: false } }));
  const row = page.locator('tr', { hasText: 'from the sdk' });
  await row.waitFor();
  assert.match(await row.textContent(), /"\$date":"2026-12-24T18:00:00.000Z"/, 'dates are shown as ISO $date');

  await page.getByRole('button', { name: `Edit document ${documentId}` }).click();
  const editor = page.locator('#document-editor');
  const shown = JSON.parse(await editor.inputValue());
  assert.deepEqual(shown.due, { $date: '2026-12-24T18:00:00.000Z' });
  await editor.fill(JSON.stringify({ ...shown, title: 'edited in the dashboard', done: true }, null, 2));
  await page.getByRole('button', { name: 'Save document' }).click();
  await page.locator('tr', { hasText: 'edited in the dashboard' }).waitFor();

  const { data } = await db.collection('todos').doc(documentId).get();
  assert.equal(data.title, 'edited in the dashboard');
  assert.equal(data.done, true);
  assert.ok(data.due instanceof Date, 'the date stays a date through the editor');
  assert.equal(data.due.getTime(), due.getTime());

  // A second document through the SDK, while the page is open: it shows up too.
  await db.collection('todos').add({ data: { title: 'second one', done: false } });
  await page.locator('tr', { hasText: 'second one' }).waitFor();
  assert.ok(await page.evaluate(() => window.notReloaded), 'the page never reloaded');
  await assertLabelled('database');
  await screenshot('database');
});

test('storage: a PNG uploaded through the SDK appears and previews', async () => {
  await go('storage');
  const png = makePng(96, 64);
  const { fileID } = await cloud.uploadFile({ cloudPath: 'images/sdk.png', file: new Uint8Array(png) });
  assert.match(fileID, /^cloud:\/\//);
  const row = page.locator('tr', { hasText: 'images/sdk.png' });
  await row.waitFor();
  assert.match(await row.textContent(), /image\/png/);
  await page.getByRole('button', { name: 'Preview images/sdk.png' }).click();
  const image = page.getByRole('img', { name: 'Preview of images/sdk.png' });
  await image.waitFor();
  await page.waitForFunction(() => document.querySelector('.preview img')?.naturalWidth === 96);
  await assertLabelled('storage');
  await screenshot('storage');
});

test('functions: a call from the SDK shows its console output and duration, live', async () => {
  await go('functions');
  await page.getByRole('button', { name: /^logger/ }).click();
  const { result, requestID } = await cloud.callFunction({ name: 'logger', data: { n: 21 } });
  assert.equal(result.doubled, 42);
  // On the emulator's stderr too, tagged with the function and the call.
  await bannerLine(new RegExp(`(\\[fn logger ${requestID.slice(0, 8)}\\] logger got 21)`));
  openid = result.openid;
  const call = page.locator('tbody tr', { hasText: openid }).first();
  await call.waitFor();
  assert.match(await call.textContent(), /\d+\.\d ms/, 'the duration is shown');
  assert.match(await call.textContent(), /"n":21/, 'the event is shown');
  const details = page.locator('details', { hasText: 'console (2 lines)' }).first();
  await details.locator('summary').click();
  assert.match(await details.textContent(), /\[log\] logger got 21/);
  assert.match(await details.textContent(), /\[warn\] twice is 42/);

  // "Run with this event" calls it from the page.
  await page.getByLabel('Event (JSON)').fill('{"n": 5}');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.locator('pre', { hasText: '"doubled": 10' }).waitFor();
  await page.getByRole('button', { name: 'logger (2 calls)' }).waitFor();
  await page.locator('tbody tr', { hasText: '{"n":5}' }).waitFor();
  await assertLabelled('functions');
  await screenshot('functions');
});

test('users: the signed-in user is listed; signing it out makes its next call sign in again', async () => {
  await go('users');
  const row = page.locator('tr', { hasText: openid });
  await row.waitFor();
  assert.match(await row.textContent(), /1 active, 0 revoked/);
  const signIns = async () => (await adminApi('requests?q=signin/anonymously&limit=1000')).requests.length;
  const before = await signIns();

  await row.getByRole('button', { name: /^Sign out/ }).click();
  await page.locator('tr', { hasText: openid }).filter({ hasText: '0 active, 1 revoked' }).waitFor();

  const { result } = await cloud.callFunction({ name: 'logger', data: { n: 1 } });
  assert.equal(result.openid, openid, 'the same anonymous user (same device) signs in again');
  assert.equal(await signIns(), before + 1, 'the SDK signed in again after the revocation');
  await page.locator('tr', { hasText: openid }).filter({ hasText: '1 active, 1 revoked' }).waitFor();
  await assertLabelled('users');
  await screenshot('users');
});

test('requests: a denied query shows up with the rule that said no', async () => {
  await go('requests');
  // The owner-only read rule cannot be proved by a query that does not pin _openid: refused.
  await assert.rejects(db.collection('todos').where({ done: false }).get(), (error) => {
    assert.equal(error.errCode, -502003);
    return true;
  });
  await page.getByLabel('Filter').fill('PERMISSION_DENIED');
  const denied = page.locator('tr', { hasText: 'DATABASE_PERMISSION_DENIED' }).first();
  await denied.waitFor();
  await page.locator('tr', { hasText: 'todos: "read": "doc._openid == auth.openid"' }).first().waitFor();
  assert.match(await denied.textContent(), /database\.queryDocument/);
  await page.getByLabel('Filter').fill('');
  await page.locator('tr', { hasText: 'functions.invokeFunction' }).first().waitFor();
  await assertLabelled('requests');
  await screenshot('requests');
});

test('overview and keyboard: counts, recent errors, Alt+digit page keys, Tab and Shift+Tab, the skip link', async () => {
  await page.keyboard.press('Alt+1');
  await page.waitForFunction(() => location.hash === '#/overview');
  await page.locator('.card', { hasText: 'documents' }).filter({ hasText: '2' }).waitFor();
  await page.locator('tr', { hasText: 'DATABASE_PERMISSION_DENIED' }).first().waitFor();
  await assertLabelled('overview');
  await screenshot('overview');

  // Alt+2 opens the database page and moves focus to its content; Shift+Tab walks back through the header.
  await page.keyboard.press('Alt+2');
  await page.waitForFunction(() => location.hash === '#/database' && document.activeElement.id === 'main');
  await page.getByRole('button', { name: /^todos/ }).waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'todos (2)', 'Tab enters the page');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'env');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('href')), '#/requests');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash === '#/requests');
  // The skip link jumps past the header.
  await page.focus('a.skip');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement.id === 'main' && location.hash === '#/requests');
  assert.ok(await page.evaluate(() => window.notReloaded), 'the page never reloaded');
  assert.deepEqual(problems, [], 'no script errors on the page');
});
