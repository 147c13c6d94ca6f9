#!/usr/bin/env node
// Query build + encode throughput: taro-cloud-wasm vs @cloudbase/js-sdk 3.7.0's database builder
// (@cloudbase/database bundled in it), in the same Node process, the same way for both: each iteration builds
// `collection.where({...}).orderBy().limit()` with commands and calls `get()`; `globalThis.fetch` is a stub that
// records the request body and answers at once, so what is measured is building, encoding and each SDK's
// request path up to fetch — no network. Rounds alternate the order of the two SDKs; the ratio is the median
// of per-round ratios (ours ops/s ÷ official ops/s). Goal ≥ 1×, target 2×.
// Usage: node bench/db-encode.mjs [iterations-per-round=2000] [rounds=7]
//   (needs pkg/ built and `npm ci --prefix js-tests`)
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { JS_TESTS_DIR, PKG_DIR, median, requireFromJsTests, writeResults } from './lib.mjs';

const iterations = Math.max(200, Number(process.argv[2] ?? 2000));
const rounds = Math.min(21, Math.max(3, Number(process.argv[3] ?? 7)));
const ENV = 'bench-env';
const HOST = '127.0.0.1:9';

const { installBrowserGlobals } = await import(
  pathToFileURL(join(JS_TESTS_DIR, 'helpers', 'browser-globals.mjs')).href
);
installBrowserGlobals({ origin: `http://${HOST}/` });

const token = {
  token_type: 'Bearer',
  access_token: 'AT-bench',
  refresh_token: 'RT-bench',
  expires_in: 7200,
  scope: 'anonymous',
  sub: 'bench-user',
  groups: ['anonymous'],
};
const bodies = [];
const emptyList = JSON.stringify({ requestId: 'bench', data: { list: [] } });
globalThis.fetch = async (url, init = {}) => {
  const path = new URL(String(url)).pathname;
  if (path.startsWith('/auth/v1/')) {
    const answer = path.endsWith('/user/me') ? { sub: token.sub, groups: token.groups } : token;
    return new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json' } });
  }
  bodies.push(init.body);
  return new Response(emptyList, { status: 200, headers: { 'content-type': 'application/json' } });
};

// Ours.
const { cloud } = await import(pathToFileURL(join(PKG_DIR, 'index.mjs')).href);
cloud.init({ env: ENV, endpoint: `http://${HOST}`, persistence: 'none' });
const ourDb = cloud.database();

// Official (browser build, CLOUD_API mode = the /web action protocol).
const sdk = requireFromJsTests(join(JS_TESTS_DIR, 'node_modules', '@cloudbase', 'js-sdk', 'dist', 'index.cjs.js'));
const cloudbase = sdk.default ?? sdk;
const app = cloudbase.init({ env: ENV, endPointMode: 'CLOUD_API' });
app.registerHost(HOST, 'http');
await app.auth().signInAnonymously();
const officialDb = app.database();

/** The same query for both SDKs: commands, a chained range, a nested object, a Date, order and limit. */
function query(db, i) {
  const _ = db.command;
  return db
    .collection('todos')
    .where({
      done: false,
      age: _.gt(18).and(_.lt(60)),
      tags: _.in(['a', 'b', String(i)]),
      owner: { name: 'n' + i, level: _.gte(i % 7) },
      when: _.lt(new Date(1700000000000 + i)),
    })
    .orderBy('age', 'desc')
    .limit(10);
}

async function run(db, count) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await query(db, i).get();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

// Warm up both and check they send the same query.
await run(ourDb, 200);
await run(officialDb, 200);
bodies.length = 0;
await query(ourDb, 3).get();
await query(officialDb, 3).get();
const [ours, theirs] = bodies.map((text) => JSON.parse(text));
const same = JSON.stringify(ours.query) === JSON.stringify(theirs.query) && JSON.stringify(ours.order) === JSON.stringify(theirs.order);
if (!same) {
  console.error('the two SDKs encoded different queries:\n', JSON.stringify(ours.query), '\n', JSON.stringify(theirs.query));
  process.exit(1);
}

const perRound = [];
for (let round = 0; round < rounds; round++) {
  bodies.length = 0;
  const order = round % 2 ? ['official', 'ours'] : ['ours', 'official'];
  const ms = {};
  for (const who of order) ms[who] = await run(who === 'ours' ? ourDb : officialDb, iterations);
  const oursOps = (iterations / ms.ours) * 1000;
  const officialOps = (iterations / ms.official) * 1000;
  perRound.push({ oursOps, officialOps, ratio: oursOps / officialOps });
}

const ratio = median(perRound.map((r) => r.ratio));
const oursOps = median(perRound.map((r) => r.oursOps));
const officialOps = median(perRound.map((r) => r.officialOps));
const verdict = ratio >= 2 ? 'target met (≥ 2×)' : ratio >= 1 ? 'goal met (≥ 1×), target 2× not met' : 'GOAL MISSED (< 1×)';
console.log(`query build + encode + get() to a stub fetch, ${iterations} per round, ${rounds} rounds`);
console.log(`  taro-cloud-wasm        ${oursOps.toFixed(0)} queries/s (median)`);
console.log(`  @cloudbase/js-sdk 3.7.0 ${officialOps.toFixed(0)} queries/s (median)`);
console.log(`  ratio ours/official: ${ratio.toFixed(2)}× — ${verdict}`);

writeResults(
  'db-encode',
  { date: new Date().toISOString(), node: process.version, iterations, rounds, oursOps, officialOps, ratio, perRound, sameQuery: same },
  `# Database query build + encode throughput

Measured by \`node bench/db-encode.mjs ${iterations} ${rounds}\`, ${new Date().toISOString()}, Node ${process.version}.
Each iteration builds \`collection('todos').where({...5 fields with commands, a chained range, a nested object,
a Date}).orderBy('age','desc').limit(10)\` and awaits \`get()\`; \`globalThis.fetch\` is a recording stub (no
network), the same for both SDKs. Both sent the same \`query\` and \`order\`: ${same}.

| SDK | queries/s (median of ${rounds} rounds) |
| --- | ---: |
| taro-cloud-wasm | ${oursOps.toFixed(0)} |
| @cloudbase/js-sdk 3.7.0 (CLOUD_API) | ${officialOps.toFixed(0)} |

Ratio ours/official (median of per-round ratios): **${ratio.toFixed(2)}×** — ${verdict}.
`,
);
process.exit(ratio >= 1 ? 0 : 1);
