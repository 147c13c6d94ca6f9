#!/usr/bin/env node
// Do point reads queue behind scans? Point-read latency (database.queryDocument by _id, one at a time) on a
// collection of N documents, in two phases of the same run against the same emulator:
//   baseline  SCANNERS busy-loop Node processes load the CPU (no database work at all)
//   scans     SCANNERS clients run unindexed scans back to back (each reads every document)
// Budget (issue 9): p99 under scans ≤ 2 × p99 under the same CPU load from a non-database process. With one
// SQLite connection for every request the scans serialize the point reads (p99 ~ a scan's duration); with
// the pool of WAL read connections a point read only shares the CPU. Exit code 1 when over budget.
// Usage: node bench/db-concurrency.mjs [documents=20000] [seconds-per-phase=8] [scanners=2]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pickEmulatorBinary, quantile, writeResults, startBenchEmulator, postJson } from './lib.mjs';

const DOCS = Math.max(1000, Number(process.argv[2] ?? 20_000));
const SECONDS = Math.max(2, Number(process.argv[3] ?? 8));
const SCANNERS = Math.max(1, Number(process.argv[4] ?? 2));
const BUDGET = 2;
const ENV = 'bench-concurrency';


/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Point reads one at a time until `until`; their latencies in ms, sorted. */
async function pointReads(web, until) {
  const times = [];
  while (performance.now() < until) {
    const id = `d${Math.floor(Math.random() * DOCS)}`;
    const start = performance.now();
    const answer = await web({ action: 'database.queryDocument', collectionName: 'bench', queryType: 'DOC', query: { _id: id } });
    times.push(performance.now() - start);
    if (answer.data.list.length !== 1) throw new Error(`point read of ${id}: ${answer.data.list.length} results`);
  }
  return times.sort((a, b) => a - b);
}

function summary(name, times, extra) {
  const row = { phase: name, samples: times.length, p50_ms: quantile(times, 0.5), p99_ms: quantile(times, 0.99), max_ms: times.at(-1), ...extra };
  console.log(`${name}: ${row.samples} point reads, p50 ${row.p50_ms.toFixed(2)} ms, p99 ${row.p99_ms.toFixed(2)} ms, max ${row.max_ms.toFixed(2)} ms`);
  return row;
}

async function main() {
  const binary = pickEmulatorBinary();
  const emulator = await startBenchEmulator(binary, ENV, 'bench-concurrency-');
  const pointAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const web = (body, agent = pointAgent) =>
    postJson(agent, emulator.url, `/web?env=${ENV}`, { ...body, env: ENV, access_token: emulator.admin });
  const burners = [];
  try {
    await postJson(pointAgent, emulator.url, '/admin/v1/database/collections', { env: ENV, name: 'bench', rules: 'ADMINWRITE' },
      { 'x-admin-token': emulator.admin });
    for (let start = 0; start < DOCS; start += 1000) {
      const data = [];
      for (let i = start; i < Math.min(DOCS, start + 1000); i++) {
        data.push({ _id: `d${i}`, u: i, title: `document ${i}`, tags: ['a', 'b'], at: { $date: 1_700_000_000_000 + i } });
      }
      await web({ action: 'database.addDocument', collectionName: 'bench', data });
    }
    await pointReads(web, performance.now() + 500); // warm-up

    // Phase 1: the same number of CPU-bound processes that do no database work.
    const burnMs = SECONDS * 1000 + 1000;
    for (let i = 0; i < SCANNERS; i++) {
      burners.push(spawn(process.execPath, ['-e', `const end = Date.now() + ${burnMs}; let x = 0; while (Date.now() < end) x += Math.sqrt(x + 1);`], { stdio: 'ignore' }));
    }
    await new Promise((r) => setTimeout(r, 300));
    const burnerCpu0 = burners.map((b) => cpuSeconds(b.pid));
    const baseline = await pointReads(web, performance.now() + SECONDS * 1000);
    const burnerCpu = burners.reduce((sum, b, i) => sum + cpuSeconds(b.pid) - burnerCpu0[i], 0);
    await Promise.all(burners.map((b) => new Promise((r) => (b.exitCode !== null ? r() : b.once('exit', r)))));

    // Phase 2: SCANNERS clients scanning the whole collection back to back.
    let scanning = true;
    let scans = 0;
    const scanTimes = [];
    const scanners = Array.from({ length: SCANNERS }, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      while (scanning) {
        const start = performance.now();
        const answer = await web({ action: 'database.queryDocument', collectionName: 'bench', queryType: 'WHERE', query: { u: -1 } }, agent);
        scanTimes.push(performance.now() - start);
        if (answer.data.list.length !== 0) throw new Error('the scan matched a document');
        scans += 1;
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    const emulatorCpu0 = cpuSeconds(emulator.pid);
    const underScans = await pointReads(web, performance.now() + SECONDS * 1000);
    const emulatorCpu = cpuSeconds(emulator.pid) - emulatorCpu0;
    scanning = false;
    await Promise.all(scanners);
    scanTimes.sort((a, b) => a - b);

    const rows = [
      summary(`baseline: ${SCANNERS} busy-loop processes`, baseline, { load_cpu_seconds: burnerCpu }),
      summary(`${SCANNERS} clients scanning`, underScans, { load_cpu_seconds: emulatorCpu, scans, scan_p50_ms: quantile(scanTimes, 0.5) }),
    ];
    const ratio = rows[1].p99_ms / rows[0].p99_ms;
    const within = ratio <= BUDGET;
    console.log(`p99 ratio scans / baseline: ${ratio.toFixed(2)} (budget ≤ ${BUDGET}) → ${within ? 'PASS' : 'FAIL'}`);
    const json = { documents: DOCS, seconds_per_phase: SECONDS, scanners: SCANNERS, binary, rows, ratio, budget: BUDGET, pass: within };
    const md = [
      `# Point reads beside scans (${DOCS.toLocaleString('en')} documents)`,
      '',
      `\`node bench/db-concurrency.mjs ${DOCS} ${SECONDS} ${SCANNERS}\`, ${new Date().toISOString()}, ${binary.includes('release') ? 'release' : 'debug'} emulator,`,
      `Node ${process.version}. Point reads (\`database.queryDocument\` by \`_id\`, admin token, keep-alive) one at a time`,
      `for ${SECONDS} s per phase, in the same run against the same emulator: first beside ${SCANNERS} busy-loop Node`,
      `processes (CPU load without database work), then beside ${SCANNERS} clients running unindexed scans back to back`,
      `(${scans} scans, p50 ${quantile(scanTimes, 0.5).toFixed(1)} ms each). CPU seconds spent by the load during the phase are shown.`,
      '',
      '| phase | point reads | p50 | p99 | max | load CPU s |',
      '|---|---:|---:|---:|---:|---:|',
      ...rows.map((r) => `| ${r.phase} | ${r.samples} | ${r.p50_ms.toFixed(2)} ms | ${r.p99_ms.toFixed(2)} ms | ${r.max_ms.toFixed(2)} ms | ${r.load_cpu_seconds.toFixed(1)} |`),
      '',
      `p99 under scans / p99 under the same CPU load: **${ratio.toFixed(2)}**; budget ≤ ${BUDGET}: **${within ? 'PASS' : 'FAIL'}**.`,
    ].join('\n');
    writeResults('db-concurrency', json, md);
    if (!within) process.exitCode = 1;
  } finally {
    for (const burner of burners) if (burner.exitCode === null) burner.kill('SIGKILL');
    await emulator.stop();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
