// Starts `cloud-emulator start --port 0 …` for one test file, reads the `listening on` line, and stops it
// (SIGTERM, then SIGKILL after a grace period). Every test file owns its emulator, so files can pick their
// own --token-ttl / --hosting / functions and run in parallel without sharing state.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const JS_TESTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = resolve(JS_TESTS_DIR, '..');
export const TEST_FUNCTIONS_DIR = join(JS_TESTS_DIR, 'functions');

/** The emulator binary: $CLOUD_EMULATOR_BIN, else target/debug, else target/release. */
export function emulatorBinary() {
  const candidates = [
    process.env.CLOUD_EMULATOR_BIN,
    join(REPO_ROOT, 'target', 'debug', 'cloud-emulator'),
    join(REPO_ROOT, 'target', 'release', 'cloud-emulator'),
  ].filter(Boolean);
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(`cloud-emulator binary not found (tried ${candidates.join(', ')}); run: cargo build -p cloud-emulator`);
  }
  return found;
}

/**
 * @param {object} [options]
 * @param {string} [options.functions] functions directory (default js-tests/functions)
 * @param {number} [options.tokenTtl] --token-ttl seconds
 * @param {string} [options.hosting] --hosting directory
 * @param {string} [options.env] --env pin
 * @param {string[]} [options.extraArgs]
 * @returns {Promise<{url: string, port: number, stderr: () => string, stop: () => Promise<number|null>}>}
 */
export async function startEmulator(options = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'cloud-emulator-test-'));
  const args = ['start', '--port', '0', '--data-dir', dataDir, '--functions', options.functions ?? TEST_FUNCTIONS_DIR];
  if (options.tokenTtl !== undefined) args.push('--token-ttl', String(options.tokenTtl));
  if (options.hosting) args.push('--hosting', options.hosting);
  if (options.env) args.push('--env', options.env);
  if (options.extraArgs) args.push(...options.extraArgs);

  const child = spawn(emulatorBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const exited = new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code)));

  const url = await listeningUrl(child, { name: 'cloud-emulator', timeoutMs: 20_000, stderr: () => stderr });

  let stopped;
  const stop = () => {
    stopped ??= (async () => {
      const code = await terminate(child, exited);
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    })();
    return stopped;
  };
  return { url, port: Number(new URL(url).port), stderr: () => stderr, stop, exited };
}

/**
 * The URL of a starting server's `listening on http://127.0.0.1:PORT` stdout line. Kills the child and rejects
 * when no such line comes within `timeoutMs`; rejects when the child exits first.
 */
export function listeningUrl(child, { name, timeoutMs, stderr }) {
  return new Promise((resolveUrl, rejectUrl) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rejectUrl(new Error(`${name} printed no "listening on" line within ${timeoutMs / 1000} s; stderr:\n${stderr()}`));
    }, timeoutMs);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      rejectUrl(new Error(`${name} exited (${code}) before listening; stdout:\n${stdout}\nstderr:\n${stderr()}`));
    });
  });
}

/** Stops a server child: SIGTERM, SIGKILL after 5 s; its exit code (`exited` resolves with it). */
export async function terminate(child, exited) {
  child.kill('SIGTERM');
  const grace = setTimeout(() => child.kill('SIGKILL'), 5_000);
  const code = await exited;
  clearTimeout(grace);
  return code;
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort() {
  const net = await import('node:net');
  const server = net.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** Runs `node` on an ES module source text in a fresh process (cwd js-tests, so 'taro-cloud-wasm' resolves). */
export function runNode(source, { type = 'module', env = {}, timeoutMs = 30_000 } = {}) {
  return runProcess(process.execPath, [`--input-type=${type}`, '-e', source], {
    env: { ...process.env, ...env },
    timeoutMs,
  });
}

/** Runs `command` in js-tests to its end (SIGKILL after `timeoutMs`); its exit code, signal, stdout and stderr. */
export function runProcess(command, args, { env = process.env, timeoutMs = 30_000 } = {}) {
  return new Promise((resolveRun) => {
    const child = spawn(command, args, { cwd: JS_TESTS_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, stdout, stderr });
    });
  });
}

/** The last stdout line of a child as JSON (children print their findings as one JSON line). */
export function lastJsonLine(run) {
  const lines = run.stdout.trim().split('\n').filter(Boolean);
  if (!lines.length) throw new Error(`child printed nothing; exit ${run.code}; stderr:\n${run.stderr}`);
  try {
    return JSON.parse(lines.at(-1));
  } catch {
    throw new Error(`child's last line is not JSON: ${lines.at(-1)}; exit ${run.code}; stderr:\n${run.stderr}`);
  }
}

/**
 * Creates collections on the emulator at `url` in `env` as the web SDK cannot: `database.addCollection`, signed in
 * anonymously (as `deviceId`, else a random device). Fails on any error code; with `allowExisting`, a collection
 * that exists already is fine.
 */
export async function addCollections(url, env, names, { deviceId = randomUUID().replaceAll('-', ''), allowExisting = false } = {}) {
  const signIn = await fetch(`${url}/auth/v1/signin/anonymously?client_id=${env}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-device-id': deviceId },
    body: '{}',
  });
  const { access_token: token } = await signIn.json();
  for (const collectionName of names) {
    const res = await fetch(`${url}/web?env=${env}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'database.addCollection', dataVersion: '2020-01-10', env, collectionName, access_token: token }),
    });
    const body = await res.json();
    assert.ok(!body.code || (allowExisting && body.code === 'DATABASE_COLLECTION_ALREADY_EXIST'), JSON.stringify(body));
  }
}
