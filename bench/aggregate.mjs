#!/usr/bin/env node
// Aggregation on N documents (default 100 000) over loopback HTTP (keep-alive), P1 `database.aggregate` with the
// admin token, one request at a time:
//   indexed     aggregate().match({k: v}).group({_id: '$k', total: $.sum('$u')})     (declared index on k, 10 matches)
//   unindexed   aggregate().match({g: v}).group({_id: '$t', total: $.sum('$u')}).sort({total: -1})
//               (no index on g: every document is read and matched; 1000 matches, 7 groups)
// The unindexed pipeline is the baseline of the same run; the indexed one must be ≥ 50× faster at p50.
// Usage: node bench/aggregate.mjs [documents=100000] [samples=300]
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pickEmulatorBinary, quantile, writeResults, startBenchEmulator, postJson } from './lib.mjs';

const DOCS = Math.max(10_000, Number(process.argv[2] ?? 100_000));
const SAMPLES = Math.max(20, Number(process.argv[3] ?? 300));
const SCAN_SAMPLES = Math.min(SAMPLES, 30);
const TARGET_RATIO = 50;
const ENV = 'bench-aggregate';

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const post = (url, path, body, headers) => postJson(agent, url, path, body, headers);

const stages = (pipeline) => pipeline.map((stage) => {
  const [[key, value]] = Object.entries(stage);
  return { stageKey: key, stageValue: JSON.stringify(value) };
});

async function main() {
  const binary = pickEmulatorBinary();
  const { url, admin, stop } = await startBenchEmulator(binary, ENV, 'bench-aggregate-');
  const web = (body) => post(url, `/web?env=${ENV}`, { ...body, env: ENV, access_token: admin });
  try {
    await post(url, '/admin/v1/database/collections', { env: ENV, name: 'bench', rules: 'ADMINWRITE', indexes: ['k'] },
      { 'x-admin-token': admin });
    const t0 = performance.now();
    for (let start = 0; start < DOCS; start += 1000) {
      const data = [];
      for (let i = start; i < Math.min(DOCS, start + 1000); i++) {
        data.push({ _id: `d${i}`, k: i % (DOCS / 10), g: i % (DOCS / 1000), t: `t${i % 7}`, u: i, title: `document ${i}` });
      }
      await web({ action: 'database.addDocument', collectionName: 'bench', data });
    }
    const loadSeconds = (performance.now() - t0) / 1000;
    const rand = (n) => Math.floor(Math.random() * n);
    const cases = [
      ['indexed match(k) + group(sum)', SAMPLES, () => [{ $match: { k: rand(DOCS / 10) } }, { $group: { _id: '$k', total: { $sum: '$u' } } }], 1],
      ['unindexed match(g) + group(sum) + sort', SCAN_SAMPLES, () => [{ $match: { g: rand(DOCS / 1000) } }, { $group: { _id: '$t', total: { $sum: '$u' } } }, { $sort: { total: -1 } }], 7],
    ];
    const rows = [];
    for (const [name, samples, pipeline, expected] of cases) {
      for (let i = 0; i < Math.min(10, samples); i++) await web({ action: 'database.aggregate', collectionName: 'bench', stages: stages(pipeline()) });
      const times = [];
      for (let i = 0; i < samples; i++) {
        const request = { action: 'database.aggregate', collectionName: 'bench', stages: stages(pipeline()) };
        const start = performance.now();
        const answer = await web(request);
        times.push(performance.now() - start);
        const groups = JSON.parse(answer.data.list).length;
        if (groups !== expected) throw new Error(`${name}: ${groups} groups, expected ${expected}`);
      }
      times.sort((a, b) => a - b);
      rows.push({ name, samples, p50_ms: quantile(times, 0.5), p99_ms: quantile(times, 0.99) });
      console.log(`${name}: p50 ${quantile(times, 0.5).toFixed(3)} ms, p99 ${quantile(times, 0.99).toFixed(3)} ms (${samples} samples)`);
    }
    const ratio = rows[1].p50_ms / rows[0].p50_ms;
    const pass = ratio >= TARGET_RATIO;
    console.log(`unindexed / indexed p50: ${ratio.toFixed(1)}x — ${pass ? 'PASS' : 'FAIL'} (target ≥ ${TARGET_RATIO}x)`);
    const json = { documents: DOCS, binary, load_seconds: loadSeconds, rows, ratio_p50: ratio, target_ratio: TARGET_RATIO, pass };
    const md = [
      `# Aggregation with and without an index (${DOCS.toLocaleString('en')} documents)`,
      '',
      `\`node bench/aggregate.mjs ${DOCS} ${SAMPLES}\` — ${binary.includes('release') ? 'release' : 'debug'} emulator, loopback HTTP with keep-alive,`,
      'one request at a time, P1 `database.aggregate` with the admin token. `k` has a declared index (10 documents per',
      'value); `g` has none (1000 documents per value), so the second pipeline reads and matches every document.',
      `Loading ${DOCS.toLocaleString('en')} documents in batches of 1000 took ${loadSeconds.toFixed(1)} s.`,
      '',
      '| pipeline | samples | p50 | p99 |',
      '|---|---:|---:|---:|',
      ...rows.map((r) => `| ${r.name} | ${r.samples} | ${r.p50_ms.toFixed(3)} ms | ${r.p99_ms.toFixed(3)} ms |`),
      '',
      `Unindexed / indexed at p50: **${ratio.toFixed(1)}×** — target ≥ ${TARGET_RATIO}× ${pass ? 'met' : 'NOT met'}.`,
    ].join('\n');
    writeResults('aggregate', json, md);
    if (!pass) process.exitCode = 1;
  } finally {
    await stop();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
