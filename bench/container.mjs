#!/usr/bin/env node
// callContainer overhead: N sequential `cloud.callContainer` round trips through taro-cloud-wasm vs a raw `fetch`
// of the same gateway route (`POST /v1/cloudrun/svc/ping` with the same Bearer token and JSON body, then
// `response.json()`), to the same emulator proxying to the same local HTTP service, in the same process,
// interleaved (the order alternates every iteration). Prints both medians and their ratio; budget ≤ 1.10.
// Usage: node bench/container.mjs [iterations=300]   (release emulator used when built: cargo build --release -p cloud-emulator)
import { createServer } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { startEmulator } from '../js-tests/helpers/emulator.mjs';
import { PKG_DIR, median, ms, pickEmulatorBinary, quantile, writeResults, installMemoryLocalStorage } from './lib.mjs';

const ITERATIONS = Math.max(200, Number(process.argv[2] ?? 300));
const WARMUP = 30;
const BUDGET = 1.1;
const ENV = 'bench-container';

// The SDK persists credentials in localStorage; a Map-backed one lets the raw client reuse the same token.
const store = installMemoryLocalStorage();

// The container service: answers {pong: n} for a POSTed {n}.
const service = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    const { n } = JSON.parse(body || '{}');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ pong: n }));
  });
});
await new Promise((resolve) => service.listen(0, '127.0.0.1', resolve));
const serviceUrl = `http://127.0.0.1:${service.address().port}`;

const binary = pickEmulatorBinary();
process.env.CLOUD_EMULATOR_BIN = binary;
const emulator = await startEmulator({ extraArgs: ['--container', `svc=${serviceUrl}`] });
try {
  const { cloud } = await import(pathToFileURL(join(PKG_DIR, 'index.mjs')).href);
  cloud.init({ env: ENV, endpoint: emulator.url, persistence: 'local' });
  const header = { 'X-WX-SERVICE': 'svc' };
  await cloud.callContainer({ path: '/ping', method: 'POST', header, data: { n: 0 } }); // signs in
  const credentials = JSON.parse(store.get(`credentials_${ENV}`) ?? 'null');
  if (!credentials?.access_token) throw new Error(`the SDK stored no credentials_${ENV}; keys: ${[...store.keys()]}`);

  const viaSdk = async (n) => {
    const res = await cloud.callContainer({ path: '/ping', method: 'POST', header, data: { n } });
    if (res.statusCode !== 200 || res.data.pong !== n) throw new Error(`sdk: wrong result ${JSON.stringify(res.data)}`);
  };
  const url = `${emulator.url}/v1/cloudrun/svc/ping`;
  const authorization = `Bearer ${credentials.access_token}`;
  const viaFetch = async (n) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ n }),
    });
    const body = await response.json();
    if (response.status !== 200 || body.pong !== n) throw new Error(`raw: wrong result ${JSON.stringify(body)}`);
  };
  const time = async (fn, n) => {
    const started = performance.now();
    await fn(n);
    return performance.now() - started;
  };

  for (let i = 0; i < WARMUP; i += 1) {
    await viaSdk(i);
    await viaFetch(i);
  }
  const sdk = [];
  const raw = [];
  for (let i = 0; i < ITERATIONS; i += 1) {
    if (i % 2) {
      raw.push(await time(viaFetch, i));
      sdk.push(await time(viaSdk, i));
    } else {
      sdk.push(await time(viaSdk, i));
      raw.push(await time(viaFetch, i));
    }
  }

  const sdkMedian = median(sdk);
  const rawMedian = median(raw);
  const ratio = sdkMedian / rawMedian;
  const pairedRatio = median(sdk.map((value, i) => value / raw[i]));
  const sorted = (values) => [...values].sort((a, b) => a - b);
  const within = ratio <= BUDGET;

  console.log(`emulator: ${binary}`);
  console.log(`${ITERATIONS} sequential round trips each, interleaved (order alternating), after ${WARMUP} warm-up pairs`);
  console.log(`  raw fetch of the route (baseline)  median ${ms(rawMedian)}  p99 ${ms(quantile(sorted(raw), 0.99))}`);
  console.log(`  cloud.callContainer               median ${ms(sdkMedian)}  p99 ${ms(quantile(sorted(sdk), 0.99))}`);
  console.log(`  ratio of medians SDK/raw: ${ratio.toFixed(3)}   median of paired ratios: ${pairedRatio.toFixed(3)}`);
  console.log(`budget: ratio ≤ ${BUDGET} → ${within ? 'PASS' : 'FAIL'}`);

  const markdown = `# callContainer overhead: SDK vs raw fetch

\`node bench/container.mjs ${ITERATIONS}\`, ${new Date().toISOString()}, emulator \`${binary.replace(/.*\/target\//, 'target/')}\`,
Node ${process.version}. ${ITERATIONS} sequential round trips each, interleaved (order alternating), after ${WARMUP} warm-up
pairs; same process, same emulator (\`--container svc=…\`), same local \`node:http\` service, same access token.
Baseline: \`fetch\` of \`POST /v1/cloudrun/svc/ping\` with the Bearer token and the JSON body, then \`response.json()\`.

| Client | median | p99 |
| --- | ---: | ---: |
| raw \`fetch\` of the gateway route (baseline) | ${ms(rawMedian)} | ${ms(quantile(sorted(raw), 0.99))} |
| taro-cloud-wasm \`cloud.callContainer\` | ${ms(sdkMedian)} | ${ms(quantile(sorted(sdk), 0.99))} |

Ratio of medians SDK / raw: **${ratio.toFixed(3)}** (median of paired ratios ${pairedRatio.toFixed(3)}); budget ≤ ${BUDGET}: **${within ? 'PASS' : 'FAIL'}**.
`;
  writeResults(
    'container',
    {
      date: new Date().toISOString(),
      node: process.version,
      emulator: binary,
      iterations: ITERATIONS,
      warmup: WARMUP,
      rawMedianMs: rawMedian,
      sdkMedianMs: sdkMedian,
      ratio,
      pairedRatio,
      budget: BUDGET,
      withinBudget: within,
    },
    markdown,
  );
  if (!within) process.exitCode = 1;
} finally {
  await emulator.stop();
  await new Promise((resolve) => service.close(resolve));
}
