// Browser E2E: the emulator hosts www-demo (assembled with the built package into a temp dir), headless
// Chromium opens it, types a name, clicks, and the greeting from cloud function `hello` shows on screen.
// A screenshot is saved to a temp dir (path printed as a test diagnostic).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { buildDemo } from '../www-demo/build.mjs';
import { REPO_ROOT, startEmulator } from './helpers/emulator.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let workDir;
let emulator;
let browser;

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'www-demo-e2e-'));
  const hosted = buildDemo(join(workDir, 'site'));
  emulator = await startEmulator({ functions: join(REPO_ROOT, 'www-demo', 'cloudfunctions'), hosting: hosted });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
});
after(async () => {
  await browser?.close();
  await emulator?.stop();
  // The screenshot stays for a person to look at; the assembled site does not.
  if (workDir) rmSync(join(workDir, 'site'), { recursive: true, force: true });
});

test('the demo page calls cloud function hello and shows its answer', async (t) => {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console.error: ${message.text()}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
  page.setDefaultTimeout(15_000);

  const response = await page.goto(`${emulator.url}/`);
  assert.equal(response.status(), 200, 'the emulator serves the page at /');
  await page.waitForSelector('body[data-ready="true"]');
  await page.fill('#name', 'Web Tester');
  await page.click('#call');
  await page.waitForFunction(() => {
    const text = document.getElementById('result').textContent;
    return text && text !== 'Calling…';
  });

  const shown = await page.textContent('#result');
  const details = await page.textContent('#details');
  const screenshot = join(workDir, 'www-demo.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  t.diagnostic(`screenshot: ${screenshot}`);

  assert.equal(shown, 'Hello, Web Tester!', `page shows the greeting (details: ${details}; ${problems.join('; ')})`);
  assert.match(details, /cloud\.callFunction:ok/);
  assert.ok(existsSync(screenshot));
  assert.deepEqual(problems, [], 'no page errors');

  // A second call from the same page reuses the session and still works.
  await page.fill('#name', '二号');
  await page.click('#call');
  await page.waitForFunction(() => document.getElementById('result').textContent === 'Hello, 二号!');
  await page.close();
});
