#!/usr/bin/env node
// SDK overhead: N sequential callFunction round trips through taro-cloud-wasm vs raw fetch of the same
// /web envelope (same access token, same function) to the same emulator, in the same process, interleaved
// (the order rotates every iteration). Prints both medians and their ratio; budget ≤ 1.10.
// Usage: node bench/overhead.mjs [iterations=300]   (release emulator used when built: cargo build --release -p cloud-emulator)
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startEmulator } from '../js-tests/helpers/emulator.mjs';
import { BENCH_DIR, PKG_DIR, median, ms, pickEmulatorBinary, quantile, writeResults, installMemoryLocalStorage } from './lib.mjs';

const ITERATIONS = Math.max(200, Number(process.argv[2] ?? 300));
const WARMUP = 30;
const BUDGET = 1.1;
const ENV = 'bench-env';

// The SDK persists credentials in localStorage; a Map-backed one lets the raw client reuse the same token.
const store = installMemoryLocalStorage();

const binary = pickEmulatorBinary();
process.env.CLOUD_EMULATOR_BIN = binary;
const emulator = await startEmulator({ functions: join(BENCH_DIR, 'functions') });
try {
  const { cloud } = await import(pathToFileURL(join(PKG_DIR, 'index.mjs')).href);
  cloud.init({ env: ENV, endpoint: emulator.url, persistence: 'local' });
  await cloud.callFunction({ name: 'ping', data: { n: 0 } }); // signs in
  const credentials = JSON.parse(store.get(`credentials_${ENV}`) ?? 'null');
  if (!credentials?.access_token) throw new Error(`the SDK stored no credentials_${ENV}; keys: ${[...store.keys()]}`);

  const url = `${emulator.url}/web?env=${ENV}`;
  const viaSdk = async (n) => {
    const res = await cloud.callFunction({ name: 'ping', data: { n } });
    if (res.result.pong !== n) throw new Error(`sdk: wrong result ${JSON.stringify(res.result)}`);
  };
  // What the SDK has to do at minimum: build the envelope, POST it, check for an error, decode response_data.
  // withGuard: the same plus what any client with a request timeout does (AbortController + timer per
  // request). Reported for reference only, to show how much of the gap that alone costs in this runtime.
  const rawFetch = async (n, withGuard) => {
    const seqId = Math.random().toString(16).slice(2);
    const controller = withGuard ? new AbortController() : null;
    const timer = withGuard ? setTimeout(() => controller.abort(), 15_000) : null;
    const response = await fetch(url, {
      signal: controller?.signal,
      method: 'POST',
      headers: { 'content-type': 'application/json;charset=UTF-8', 'x-seqid': seqId },
      body: JSON.stringify({
        action: 'functions.invokeFunction',
        dataVersion: '2020-01-10',
        env: ENV,
        function_name: 'ping',
        request_data: JSON.stringify({ n }),
        access_token: credentials.access_token,
        seqId,
      }),
    });
    const body = await response.json();
    if (withGuard) {
      clearTimeout(timer);
      controller.abort();
    }
    if (body.code) throw new Error(`raw: ${body.code} ${body.message}`);
    const result = JSON.parse(body.data.response_data);
    if (result.pong !== n) throw new Error(`raw: wrong result ${JSON.stringify(result)}`);
  };
  const viaFetch = (n) => rawFetch(n, false);
  const viaGuardedFetch = (n) => rawFetch(n, true);

  const time = async (fn, n) => {
    const started = performance.now();
    await fn(n);
    return performance.now() - started;
  };

  for (let i = 0; i < WARMUP; i += 1) {
    await viaSdk(i);
    await viaFetch(i);
    await viaGuardedFetch(i);
  }
  const sdk = [];
  const raw = [];
  const guarded = [];
  // Rotate the order every iteration so no client always runs first (or right after another one).
  const clients = [
    [viaSdk, sdk],
    [viaFetch, raw],
    [viaGuardedFetch, guarded],
  ];
  for (let i = 0; i < ITERATIONS; i += 1) {
    for (let k = 0; k < clients.length; k += 1) {
      const [fn, samples] = clients[(i + k) % clients.length];
      samples.push(await time(fn, i));
    }
  }

  const sdkMedian = median(sdk);
  const rawMedian = median(raw);
  const guardedMedian = median(guarded);
  const ratio = sdkMedian / rawMedian;
  const pairedRatio = median(sdk.map((value, i) => value / raw[i]));
  const sorted = (values) => [...values].sort((a, b) => a - b);
  const within = ratio <= BUDGET;

  console.log(`emulator: ${binary}`);
  console.log(`${ITERATIONS} sequential round trips each, interleaved (order rotating), after ${WARMUP} warm-up pairs`);
  console.log(`  raw fetch (baseline)  median ${ms(rawMedian)}  p99 ${ms(quantile(sorted(raw), 0.99))}`);
  console.log(`  taro-cloud-wasm SDK   median ${ms(sdkMedian)}  p99 ${ms(quantile(sorted(sdk), 0.99))}`);
  console.log(`  (reference) raw fetch + AbortController/timer  median ${ms(guardedMedian)}  ratio to raw ${(guardedMedian / rawMedian).toFixed(3)}`);
  console.log(`  ratio of medians SDK/raw: ${ratio.toFixed(3)}   median of paired ratios: ${pairedRatio.toFixed(3)}`);
  console.log(`budget: ratio ≤ ${BUDGET} → ${within ? 'PASS' : 'FAIL'}`);

  const markdown = `# callFunction overhead: SDK vs raw fetch

\`node bench/overhead.mjs ${ITERATIONS}\`, ${new Date().toISOString()}, emulator \`${binary.replace(/.*\/target\//, 'target/')}\`,
Node ${process.version}. ${ITERATIONS} sequential round trips each, interleaved (order rotating), after ${WARMUP} warm-up pairs;
same process, same emulator, same access token, same function (\`ping\`).

| Client | median | p99 |
| --- | ---: | ---: |
| raw \`fetch\` of the /web envelope (baseline) | ${ms(rawMedian)} | ${ms(quantile(sorted(raw), 0.99))} |
| taro-cloud-wasm \`cloud.callFunction\` | ${ms(sdkMedian)} | ${ms(quantile(sorted(sdk), 0.99))} |
| (reference) raw \`fetch\` + AbortController and timer per request | ${ms(guardedMedian)} | ${ms(quantile(sorted(guarded), 0.99))} |

Ratio of medians SDK / raw: **${ratio.toFixed(3)}** (median of paired ratios ${pairedRatio.toFixed(3)}); budget ≤ ${BUDGET}: **${within ? 'PASS' : 'FAIL'}**.
`;
  writeResults('overhead', {
    date: new Date().toISOString(),
    node: process.version,
    emulator: binary,
    iterations: ITERATIONS,
    warmup: WARMUP,
    rawMedianMs: rawMedian,
    sdkMedianMs: sdkMedian,
    guardedFetchMedianMs: guardedMedian,
    ratio,
    pairedRatio,
    budget: BUDGET,
    withinBudget: within,
  }, markdown);
  if (!within) process.exitCode = 1;
} finally {
  await emulator.stop();
}
