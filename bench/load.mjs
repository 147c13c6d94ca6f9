#!/usr/bin/env node
// Load: USERS simulated users (default 1000), each signed in anonymously with its own device, loop for SECONDS
// (default 60) over a mix of callFunction (30%), reads (30%: a query of their own documents), writes (30%:
// add, or update one of their documents) and uploads (10%: upload metadata + a 4 KiB PUT), with 0-100 ms
// of think time between operations. A share of the users (WATCH_SHARE, 10%) also holds a watch of its own
// documents on a WebSocket of its own; the report counts the events received and the commit-to-event
// latency (write request sent → NEXT_EVENT) as the op `watch event`. Bounded: loopback only, a fixed user
// count and duration, every request has a 30 s timeout, and it stops by itself. Reports ops/s, p50/p99 per operation, errors (goal 0) and
// the emulator's peak RSS (VmHWM) → bench/results/load.{json,md}.
// Usage: node bench/load.mjs [users=1000] [seconds=60]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { JS_TESTS_DIR, pickEmulatorBinary, quantile, writeResults } from './lib.mjs';
import { loadClient, openWatch, runUsers, signInUsers } from './load-users.mjs';

const USERS = Math.max(1, Number(process.argv[2] ?? 1000));
const SECONDS = Math.max(1, Number(process.argv[3] ?? 60));
const ENV = 'load-env';
const WATCH_SHARE = 0.1;

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
  const cleanup = [];
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, memory(emulator.pid).peak);
    } catch {}
  }, 500);
  try {
    const client = loadClient(base, ENV);
    cleanup.push(() => client.destroy());
    // Users sign in (in batches of 100) and every tenth opens its watch; neither is timed as load.
    const users = await signInUsers(client, USERS);
    await client.web(users[0].token, { action: 'database.addCollection', collectionName: 'load' });
    const watchers = users.filter((user) => user.index % Math.round(1 / WATCH_SHARE) === 0);
    for (let start = 0; start < watchers.length; start += 50) {
      await Promise.all(watchers.slice(start, start + 50).map((user) => openWatch(client, user, 'load', record)));
    }
    cleanup.push(() => watchers.forEach((user) => user.watch?.socket.terminate()));
    const loadAverage = loadavg()[0]; // the machine's load before ours: a shared machine inflates latencies
    const started = performance.now();
    const until = started + SECONDS * 1000;
    await runUsers(client, users, { collection: 'load', running: () => performance.now() < until, record });
    const elapsed = (performance.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 500)); // the last writes' events
    const watchEvents = watchers.reduce((n, user) => n + user.watch.events, 0);
    const watchesDropped = watchers.filter((user) => user.watch.closed).length;
    clearInterval(sampler);
    peak = Math.max(peak, memory(emulator.pid).peak);
    const rows = [...stats.entries()].map(([op, s]) => {
      s.times.sort((a, b) => a - b);
      return { op, ok: s.times.length, errors: s.errors, ops_per_s: s.times.length / elapsed, p50_ms: quantile(s.times, 0.5), p99_ms: quantile(s.times, 0.99), first_error: s.firstError };
    });
    rows.sort((a, b) => a.op.localeCompare(b.op));
    const total = rows.filter((r) => r.op !== 'watch event').reduce((n, r) => n + r.ok, 0);
    const errors = rows.reduce((n, r) => n + r.errors, 0);
    for (const r of rows) console.log(`${r.op}: ${r.ok} ok, ${r.errors} errors, ${r.ops_per_s.toFixed(1)}/s, p50 ${r.p50_ms.toFixed(1)} ms, p99 ${r.p99_ms.toFixed(1)} ms${r.first_error ? ` (first error: ${r.first_error})` : ''}`);
    console.log(`total: ${(total / elapsed).toFixed(1)} ops/s, ${errors} errors, emulator peak RSS ${(peak / 2 ** 20).toFixed(1)} MiB`);
    // Same-run baseline for the watch: the write's own round trip (durable commit + HTTP answer).
    const row = (op) => rows.find((r) => r.op === op) ?? { p50_ms: NaN, p99_ms: NaN };
    const eventVsWrite = { p50: row('watch event').p50_ms / row('write').p50_ms, p99: row('watch event').p99_ms / row('write').p99_ms };
    console.log(`watch: ${watchers.length} watches, ${watchEvents} events received, ${watchesDropped} dropped; event / write round trip: p50 ${eventVsWrite.p50.toFixed(2)}x, p99 ${eventVsWrite.p99.toFixed(2)}x`);
    const json = { users: USERS, seconds: SECONDS, elapsed_s: elapsed, binary, ops_per_s: total / elapsed, errors, peak_rss_bytes: peak, watches: watchers.length, watch_events: watchEvents, watches_dropped: watchesDropped, watch_event_vs_write: eventVsWrite, load_average_before: loadAverage, cpus: cpus().length, rows };
    const md = [
      `# Load: ${USERS.toLocaleString('en')} simulated users for ${SECONDS} s`,
      '',
      `\`node bench/load.mjs ${USERS} ${SECONDS}\`, ${new Date().toISOString()}, ${binary.includes('release') ? 'release' : 'debug'} emulator, Node ${process.version},`,
      `loopback, 512 keep-alive sockets, ${cpus().length} CPUs, load average ${loadAverage.toFixed(1)} before the timed load. Each user signed in anonymously on its own device, then loops:`,
      'callFunction `echo` 30%, read (query of its own documents) 30%, write (add, or `$inc` one of its documents) 30%,',
      'upload (metadata + 4 KiB PUT) 10%, with 0-100 ms think time. Latency per operation from the client side.',
      `${watchers.length} of the users (every tenth) also hold a watch of their own documents, each on its own WebSocket;`,
      '`watch event` is the commit-to-event latency: the write request sent → its NEXT_EVENT on the watcher\'s socket',
      '(not counted in the ops/s total).',
      '',
      '| operation | ok | errors | ops/s | p50 | p99 |',
      '|---|---:|---:|---:|---:|---:|',
      ...rows.map((r) => `| ${r.op} | ${r.ok} | ${r.errors} | ${r.ops_per_s.toFixed(1)} | ${r.p50_ms.toFixed(1)} ms | ${r.p99_ms.toFixed(1)} ms |`),
      `| **all** | ${total} | ${errors} | ${(total / elapsed).toFixed(1)} | | |`,
      '',
      `Watches: ${watchers.length}, events received: **${watchEvents}**, watches dropped: ${watchesDropped}. Commit-to-event`,
      `latency against the same run's write round trip (request → durable commit → answer): p50 **${eventVsWrite.p50.toFixed(2)}×**, p99 **${eventVsWrite.p99.toFixed(2)}×**.`,
      `Emulator peak RSS (VmHWM): **${(peak / 2 ** 20).toFixed(1)} MiB**. Errors: **${errors}**${errors ? ` (first: ${rows.find((r) => r.first_error)?.first_error})` : ''}.`,
    ].join('\n');
    writeResults('load', json, md);
    if (errors || watchesDropped) process.exitCode = 1;
  } finally {
    clearInterval(sampler);
    for (const step of cleanup) step();
    await emulator.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
