// Shared bits of the benchmarks: paths, stats, result files. npm packages come from js-tests/node_modules
// (install once: npm ci --prefix js-tests).
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(BENCH_DIR, '..');
export const JS_TESTS_DIR = join(REPO_ROOT, 'js-tests');
export const PKG_DIR = join(REPO_ROOT, 'pkg');
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const requireFromJsTests = createRequire(join(JS_TESTS_DIR, 'package.json'));

/** Prefer the release emulator for timing (debug builds are ~10x slower); say which one is used. */
export function pickEmulatorBinary() {
  if (process.env.CLOUD_EMULATOR_BIN) return process.env.CLOUD_EMULATOR_BIN;
  const release = join(REPO_ROOT, 'target', 'release', 'cloud-emulator');
  const debug = join(REPO_ROOT, 'target', 'debug', 'cloud-emulator');
  return requireFromJsTests('node:fs').existsSync(release) ? release : debug;
}

export function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function writeResults(name, json, markdown) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
  writeFileSync(join(RESULTS_DIR, `${name}.md`), markdown.trimEnd() + '\n');
  console.log(`results: bench/results/${name}.json, bench/results/${name}.md`);
}

export const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
export const ms = (value) => `${value.toFixed(3)} ms`;

/**
 * Starts `binary` (a cloud-emulator) on a free loopback port with a fresh data dir pinned to `env`; resolves
 * with its URL, the per-run admin token, its pid, and `stop()` (SIGTERM, SIGKILL after 5 s, wait, remove the
 * data dir). `functions`: the functions folder (default: the empty data dir); `args`: more CLI arguments.
 */
export async function startBenchEmulator(binary, env, prefix, { functions, args = [] } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const child = spawn(
    binary,
    ['start', '--port', '0', '--data-dir', dataDir, '--functions', functions ?? dataDir, '--env', env, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('no "listening on" line in 20 s')), 20_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match) { clearTimeout(timer); resolve(match[1]); }
    });
    child.once('exit', (code) => reject(new Error(`emulator exited (${code}): ${stderr}`)));
  });
  for (let i = 0; i < 100 && !/admin token: (\w+)/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
  const admin = /admin token: (\w+)/.exec(stderr)[1];
  const stop = async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const grace = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(grace);
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { url, admin, pid: child.pid, stop };
}

/** POSTs `body` as JSON on `agent` (keep-alive); resolves with the JSON answer, rejects on a CloudBase error code. */
export function postJson(agent, url, path, body, headers = {}) {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url + path, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const answer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (answer.code) reject(new Error(`${answer.code}: ${answer.message}`)); else resolve(answer);
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Installs a Map-backed `globalThis.localStorage` (Node has none) and returns its Map: the SDK persists its
 * credentials there, so a raw client in the same process can reuse the SDK's token.
 */
export function installMemoryLocalStorage() {
  const store = new Map();
  globalThis.localStorage = {
    getItem: (k) => (store.has(k) ? store.get(k) : null),
    setItem: (k, v) => void store.set(k, String(v)),
    removeItem: (k) => void store.delete(k),
    clear: () => store.clear(),
    key: (i) => [...store.keys()][i] ?? null,
    get length() {
      return store.size;
    },
  };
  return store;
}
