#!/usr/bin/env node
// Emulator database latency on N documents (default 100 000) over loopback HTTP (keep-alive), P1 /web actions
// with the admin token (no rule evaluation), one request at a time:
//   point get by _id     database.queryDocument {_id}                 (primary key)
//   indexed equality     database.queryDocument {k: v}  (10 matches)   (declared single-field index on k)
//   unindexed scan       database.queryDocument {u: v}  (1 match)      (reads and matches every document)
//   durable add          database.addDocument, one document             (one transaction, synchronous=FULL)
// Usage: node bench/db.mjs [documents=100000] [samples=400]
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pickEmulatorBinary, quantile, writeResults, startBenchEmulator, postJson } from './lib.mjs';

const DOCS = Math.max(1000, Number(process.argv[2] ?? 100_000));
const SAMPLES = Math.max(20, Number(process.argv[3] ?? 400));
const SCAN_SAMPLES = Math.min(SAMPLES, 40);
const ENV = 'bench-db';

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const post = (url, path, body, headers) => postJson(agent, url, path, body, headers);

async function main() {
  const binary = pickEmulatorBinary();
  const { url, admin, stop } = await startBenchEmulator(binary, ENV, 'bench-db-');
  const web = (body) => post(url, `/web?env=${ENV}`, { ...body, env: ENV, access_token: admin });
  try {
    await post(url, '/admin/v1/database/collections', { env: ENV, name: 'bench', rules: 'ADMINWRITE', indexes: ['k'] },
      { 'x-admin-token': admin });
    const t0 = performance.now();
    for (let start = 0; start < DOCS; start += 1000) {
      const data = [];
      for (let i = start; i < Math.min(DOCS, start + 1000); i++) {
        data.push({ _id: `d${i}`, k: i % (DOCS / 10), u: i, title: `document ${i}`, tags: ['a', 'b'], at: { $date: 1_700_000_000_000 + i } });
      }
      await web({ action: 'database.addDocument', collectionName: 'bench', data });
    }
    const loadSeconds = (performance.now() - t0) / 1000;
    const rand = (n) => Math.floor(Math.random() * n);
    const cases = [
      ['point get by _id', SAMPLES, () => ({ action: 'database.queryDocument', collectionName: 'bench', queryType: 'DOC', query: { _id: `d${rand(DOCS)}` } }), 1],
      ['indexed equality (10 matches)', SAMPLES, () => ({ action: 'database.queryDocument', collectionName: 'bench', queryType: 'WHERE', query: { k: rand(DOCS / 10) } }), 10],
      ['unindexed scan (1 match)', SCAN_SAMPLES, () => ({ action: 'database.queryDocument', collectionName: 'bench', queryType: 'WHERE', query: { u: rand(DOCS) } }), 1],
      ['durable add', SAMPLES, () => ({ action: 'database.addDocument', collectionName: 'bench', data: { k: -1, u: -1, title: 'new' } }), null],
    ];
    const rows = [];
    for (const [name, samples, body, expected] of cases) {
      for (let i = 0; i < Math.min(20, samples); i++) await web(body()); // warm-up
      const times = [];
      for (let i = 0; i < samples; i++) {
        const request = body();
        const start = performance.now();
        const answer = await web(request);
        times.push(performance.now() - start);
        if (expected !== null && answer.data.list.length !== expected) throw new Error(`${name}: ${answer.data.list.length} results`);
      }
      times.sort((a, b) => a - b);
      rows.push({ name, samples, p50_ms: quantile(times, 0.5), p99_ms: quantile(times, 0.99) });
      console.log(`${name}: p50 ${quantile(times, 0.5).toFixed(3)} ms, p99 ${quantile(times, 0.99).toFixed(3)} ms (${samples} samples)`);
    }
    const json = { documents: DOCS, binary, load_seconds: loadSeconds, rows };
    const md = [
      `# Emulator database latency (${DOCS.toLocaleString('en')} documents)`,
      '',
      `\`node bench/db.mjs ${DOCS} ${SAMPLES}\` — ${binary.includes('release') ? 'release' : 'debug'} emulator, loopback HTTP with keep-alive,`,
      'one request at a time, P1 `/web` actions with the admin token. Documents ~150 bytes; `k` has a declared index',
      `(10 documents per value), \`u\` none. Loading ${DOCS.toLocaleString('en')} documents in batches of 1000 took ${loadSeconds.toFixed(1)} s.`,
      'Durable add = one SQLite transaction committed with `synchronous=FULL` (WAL fsync) before the answer.',
      '',
      '| operation | samples | p50 | p99 |',
      '|---|---:|---:|---:|',
      ...rows.map((r) => `| ${r.name} | ${r.samples} | ${r.p50_ms.toFixed(3)} ms | ${r.p99_ms.toFixed(3)} ms |`),
      '',
      `Target: point query p50 ≤ 1 ms — ${rows[0].p50_ms <= 1 ? 'met' : 'NOT met'} (${rows[0].p50_ms.toFixed(3)} ms).`,
    ].join('\n');
    writeResults('db', json, md);
  } finally {
    await stop();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
