#!/usr/bin/env node
// Transactions of the real wx-server-sdk 4.0.2 against the emulator, timed inside one cloud function (so only the
// SDK ↔ /admin path is measured), one operation at a time:
//   plain update        doc.update({n: _.inc(1)})                         1 signed /admin request, 1 durable commit
//   runTransaction      start → doc.get → doc.update → commit             4 signed /admin requests, 1 durable commit
//   update, txn open    the plain update while another transaction stays open (the store records each change's
//                       before-image for snapshot reads and conflict checks)
// Baseline: the plain update, in the same run. Usage: node bench/transactions.mjs [samples=200]
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, pickEmulatorBinary, quantile, startBenchEmulator, writeResults } from './lib.mjs';

const SAMPLES = Math.min(2000, Math.max(20, Number(process.argv[2] ?? 200)));
const ENV = 'bench-txn';

async function main() {
  const binary = pickEmulatorBinary();
  const load = loadavg()[0];
  const { url, admin, stop } = await startBenchEmulator(binary, ENV, 'bench-txn-', { functions: join(BENCH_DIR, 'functions') });
  try {
    const response = await fetch(`${url}/admin/v1/functions/txn`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-admin-token': admin },
      body: JSON.stringify({ env: ENV, data: { samples: SAMPLES } }),
      signal: AbortSignal.timeout(300_000),
    });
    const answer = await response.json();
    if (!answer.result) throw new Error(`function failed: ${JSON.stringify(answer)}`);
    const { plain, transaction, plainWhileOpen, final } = answer.result;
    const expected = 3 * (20 + SAMPLES);
    if (final !== expected) throw new Error(`counter is ${final}, expected ${expected}`);
    const stats = (times) => {
      const sorted = [...times].sort((a, b) => a - b);
      return { p50_ms: quantile(sorted, 0.5), p99_ms: quantile(sorted, 0.99) };
    };
    const base = stats(plain);
    const rows = [
      { name: 'plain update', samples: SAMPLES, ...base },
      { name: 'runTransaction (get + update)', samples: SAMPLES, ...stats(transaction) },
      { name: 'plain update, a transaction open', samples: SAMPLES, ...stats(plainWhileOpen) },
    ].map((row) => ({ ...row, ratio_p50: row.p50_ms / base.p50_ms }));
    for (const r of rows) {
      console.log(`${r.name}: p50 ${r.p50_ms.toFixed(3)} ms, p99 ${r.p99_ms.toFixed(3)} ms, ${r.ratio_p50.toFixed(2)}× plain`);
    }
    const build = binary.includes('release') ? 'release' : 'debug';
    const md = [
      '# Transactions through the real wx-server-sdk',
      '',
      `\`node bench/transactions.mjs ${SAMPLES}\` — ${build} emulator; timed inside one cloud function with`,
      'wx-server-sdk 4.0.2 (signed requests to `/admin` over loopback), one operation at a time, the three interleaved\n' +
      'sample by sample (so load on the machine slows them alike), after 20 warm-up rounds.',
      'Every commit is durable (`synchronous=FULL`). Baseline: the plain update in the same run.',
      `Load average when the run started: ${load.toFixed(1)} (2 cores); absolute times grow with it, the ratios much less.`,
      '',
      '| operation | samples | p50 | p99 | p50 vs plain update |',
      '|---|---:|---:|---:|---:|',
      ...rows.map((r) => `| ${r.name} | ${r.samples} | ${r.p50_ms.toFixed(3)} ms | ${r.p99_ms.toFixed(3)} ms | ${r.ratio_p50.toFixed(2)}× |`),
      '',
      `The counter ended at ${final} (= every increment, none lost).`,
    ].join('\n');
    writeResults('transactions', { binary, samples: SAMPLES, load_average: load, rows, final }, md);
  } finally {
    await stop();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
