#!/usr/bin/env node
// Load: USERS simulated users (default 1000), each signed in anonymously with its own device, loop for SECONDS
// (default 60) over a mix of callFunction (30%), reads (30%: a query of their own documents), writes (30%:
// add, or update one of their documents) and uploads (10%: upload metadata + a 4 KiB PUT), with 0-100 ms
// of think time between operations. Bounded: loopback only, a fixed user count and duration, every request
// has a 30 s timeout, and it stops by itself. Reports ops/s, p50/p99 per operation, errors (goal 0) and
// the emulator's peak RSS (VmHWM) → bench/results/load.{json,md}.
// Usage: node bench/load.mjs [users=1000] [seconds=60]
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { JS_TESTS_DIR, pickEmulatorBinary, quantile, writeResults } from './lib.mjs';

const USERS = Math.max(1, Number(process.argv[2] ?? 1000));
const SECONDS = Math.max(1, Number(process.argv[3] ?? 60));
const ENV = 'load-env';
const REQUEST_TIMEOUT_MS = 30_000;

function startEmulator(binary) {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-load-'));
  const child = spawn(binary, ['start', '--port', '0', '--data-dir', dataDir, '--functions', join(JS_TESTS_DIR, 'functions')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('no "listening on" line in 20 s')), 20_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({
          url: match[1],
          pid: child.pid,
          stderr: () => stderr,
          stop: async () => {
            const exited = new Promise((r) => child.once('exit', r));
            child.kill('SIGTERM');
            await exited;
            rmSync(dataDir, { recursive: true, force: true });
          },
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`emulator exited (${code}): ${stderr}`)));
  });
}

/** The process's RSS and peak RSS in bytes (Linux /proc). */
function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

function request(url, { method = 'POST', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: { ...headers, 'content-length': body ? Buffer.byteLength(body) : 0 }, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

async function web(base, token, body) {
  const answer = await request(`${base}/web?env=${ENV}`, {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, env: ENV, dataVersion: '2020-01-10', access_token: token }),
  });
  const json = JSON.parse(answer.text);
  if (answer.status !== 200 || json.code) throw new Error(`${body.action}: HTTP ${answer.status} ${json.code ?? ''} ${json.message ?? ''}`);
  return json;
}

async function main() {
  const binary = pickEmulatorBinary();
  const emulator = await startEmulator(binary);
  const base = emulator.url;
  const stats = new Map(); // op → { times: [], errors: 0, firstError }
  const record = (op, ms, error) => {
    let s = stats.get(op);
    if (!s) stats.set(op, (s = { times: [], errors: 0, firstError: undefined }));
    if (error) {
      s.errors += 1;
      s.firstError ??= String(error.message ?? error);
    } else s.times.push(ms);
  };
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, memory(emulator.pid).peak);
    } catch {}
  }, 500);
  try {
    // Users sign in (in batches of 100, not timed as load).
    const users = [];
    for (let start = 0; start < USERS; start += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, USERS - start) }, async (_, i) => {
          const res = await request(`${base}/auth/v1/signin/anonymously?client_id=${ENV}`, {
            headers: { 'content-type': 'application/json', 'x-device-id': randomUUID().replaceAll('-', '') },
            body: '{}',
          });
          return { index: start + i, token: JSON.parse(res.text).access_token, ids: [] };
        }),
      );
      users.push(...batch);
    }
    await web(base, users[0].token, { action: 'database.addCollection', collectionName: 'load' });
    const payload = randomBytes(4096);
    const ops = {
      async callFunction(user) {
        const answer = await web(base, user.token, { action: 'functions.invokeFunction', function_name: 'echo', request_data: JSON.stringify({ n: user.index }) });
        if (JSON.parse(answer.data.response_data).data.n !== user.index) throw new Error('callFunction: wrong echo');
      },
      async read(user) {
        await web(base, user.token, { action: 'database.queryDocument', collectionName: 'load', queryType: 'WHERE', query: { owner: user.index }, limit: 10 });
      },
      async write(user) {
        if (user.ids.length && Math.random() < 0.5) {
          const id = user.ids[Math.floor(Math.random() * user.ids.length)];
          await web(base, user.token, { action: 'database.updateDocument', collectionName: 'load', query: { _id: id }, queryType: 'DOC', data: { $inc: { n: 1 } }, merge: true });
        } else {
          const answer = await web(base, user.token, { action: 'database.addDocument', collectionName: 'load', data: { owner: user.index, n: 0, at: { $date: Date.now() } } });
          if (user.ids.length < 20) user.ids.push(answer.data._id);
        }
      },
      async upload(user) {
        const path = `load/${user.index}/${randomUUID()}.bin`;
        const meta = (await web(base, user.token, { action: 'storage.getUploadMetadata', path, method: 'put' })).data;
        const res = await request(meta.url, {
          method: 'PUT',
          headers: { authorization: meta.authorization, 'x-cos-meta-fileid': meta.cosFileId, 'x-cos-security-token': meta.token, 'content-type': 'application/octet-stream' },
          body: payload,
        });
        if (res.status >= 300) throw new Error(`upload PUT: HTTP ${res.status}`);
      },
    };
    const pick = () => {
      const r = Math.random();
      return r < 0.3 ? 'callFunction' : r < 0.6 ? 'read' : r < 0.9 ? 'write' : 'upload';
    };
    const started = performance.now();
    const until = started + SECONDS * 1000;
    await Promise.all(
      users.map(async (user) => {
        await new Promise((r) => setTimeout(r, Math.random() * 1000)); // staggered start
        while (performance.now() < until) {
          const op = pick();
          const t0 = performance.now();
          try {
            await ops[op](user);
            record(op, performance.now() - t0);
          } catch (error) {
            record(op, 0, error);
          }
          await new Promise((r) => setTimeout(r, Math.random() * 100));
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    clearInterval(sampler);
    peak = Math.max(peak, memory(emulator.pid).peak);
    const rows = [...stats.entries()].map(([op, s]) => {
      s.times.sort((a, b) => a - b);
      return { op, ok: s.times.length, errors: s.errors, ops_per_s: s.times.length / elapsed, p50_ms: quantile(s.times, 0.5), p99_ms: quantile(s.times, 0.99), first_error: s.firstError };
    });
    rows.sort((a, b) => a.op.localeCompare(b.op));
    const total = rows.reduce((n, r) => n + r.ok, 0);
    const errors = rows.reduce((n, r) => n + r.errors, 0);
    for (const r of rows) console.log(`${r.op}: ${r.ok} ok, ${r.errors} errors, ${r.ops_per_s.toFixed(1)}/s, p50 ${r.p50_ms.toFixed(1)} ms, p99 ${r.p99_ms.toFixed(1)} ms${r.first_error ? ` (first error: ${r.first_error})` : ''}`);
    console.log(`total: ${(total / elapsed).toFixed(1)} ops/s, ${errors} errors, emulator peak RSS ${(peak / 2 ** 20).toFixed(1)} MiB`);
    const json = { users: USERS, seconds: SECONDS, elapsed_s: elapsed, binary, ops_per_s: total / elapsed, errors, peak_rss_bytes: peak, rows };
    const md = [
      `# Load: ${USERS.toLocaleString('en')} simulated users for ${SECONDS} s`,
      '',
      `\`node bench/load.mjs ${USERS} ${SECONDS}\`, ${new Date().toISOString()}, ${binary.includes('release') ? 'release' : 'debug'} emulator, Node ${process.version},`,
      'loopback, 512 keep-alive sockets. Each user signed in anonymously on its own device, then loops:',
      'callFunction `echo` 30%, read (query of its own documents) 30%, write (add, or `$inc` one of its documents) 30%,',
      'upload (metadata + 4 KiB PUT) 10%, with 0-100 ms think time. Latency per operation from the client side.',
      '',
      '| operation | ok | errors | ops/s | p50 | p99 |',
      '|---|---:|---:|---:|---:|---:|',
      ...rows.map((r) => `| ${r.op} | ${r.ok} | ${r.errors} | ${r.ops_per_s.toFixed(1)} | ${r.p50_ms.toFixed(1)} ms | ${r.p99_ms.toFixed(1)} ms |`),
      `| **all** | ${total} | ${errors} | ${(total / elapsed).toFixed(1)} | | |`,
      '',
      `Emulator peak RSS (VmHWM): **${(peak / 2 ** 20).toFixed(1)} MiB**. Errors: **${errors}**${errors ? ` (first: ${rows.find((r) => r.first_error)?.first_error})` : ''}.`,
    ].join('\n');
    writeResults('load', json, md);
    if (errors) process.exitCode = 1;
  } finally {
    clearInterval(sampler);
    await emulator.stop();
    agent.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
