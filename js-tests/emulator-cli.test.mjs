// The shared CLI contract the JS side relies on: `start` prints exactly one `listening on` line on stdout and
// exits 0 on SIGTERM; `exec` exports CLOUD_EMULATOR_URL to its command and exits with the command's code.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TEST_FUNCTIONS_DIR, emulatorBinary, runProcess, startEmulator } from './helpers/emulator.mjs';

const run = (args, options) => runProcess(emulatorBinary(), args, options);

test('start: one "listening on" line on stdout, exit 0 on SIGTERM', async () => {
  const emulator = await startEmulator();
  const response = await fetch(`${emulator.url}/web?env=cli-env`, { method: 'POST', body: '{"action":"nope"}' });
  assert.equal(response.status, 200, '/web answers 200 even for errors');
  assert.equal((await response.json()).code !== undefined, true);
  assert.equal(await emulator.stop(), 0);
});

test('exec: runs the command with CLOUD_EMULATOR_URL and exits with its code', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cloud-emulator-exec-'));
  try {
    const script = `
      const { cloud } = require('taro-cloud-wasm');
      cloud.init({ env: 'exec-env', endpoint: process.env.CLOUD_EMULATOR_URL });
      cloud.callFunction({ name: 'echo', data: { via: 'exec' } }).then((res) => {
        console.log('RESULT ' + JSON.stringify(res.result.data));
        process.exit(7);
      }, (error) => { console.log('ERROR ' + error.errMsg); process.exit(1); });`;
    const result = await run([
      'exec', '--data-dir', dataDir, '--functions', TEST_FUNCTIONS_DIR, '--', process.execPath, '-e', script,
    ]);
    assert.match(result.stdout, /RESULT \{"via":"exec"\}/, result.stderr);
    assert.equal(result.code, 7, 'the command exit code is passed through');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
