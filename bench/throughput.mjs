#!/usr/bin/env node
// Warm callFunction throughput: 32 concurrent keep-alive clients (Node fetch/undici, this process) against
// cloud-emulator (its own process), each posting functions.invokeFunction envelopes for a bounded time.
// Baselines measured in the same run with the same load generator:
//   A. the emulator answering auth.getUserInfo (HTTP + envelope + token check, no function), and
//   B. a canned-response node:http server in another process (the loopback/load-generator ceiling).
//   C. the same callFunction load with the dashboard closed and open in headless Chromium on its Requests page
//      (live over SSE), alternating segments in one run: the median per-round "open / closed" must stay
//      within 5 %.
// Usage: node bench/throughput.mjs [seconds=10] [clients=32]
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { launchChromium } from '../js-tests/helpers/chromium.mjs';
import { startEmulator } from '../js-tests/helpers/emulator.mjs';
import { loadavg } from 'node:os';
import { BENCH_DIR, median, pickEmulatorBinary, quantile, writeResults } from './lib.mjs';

const SECONDS = Math.min(60, Math.max(1, Number(process.argv[2] ?? 10)));
const CLIENTS = Math.min(256, Math.max(1, Number(process.argv[3] ?? 32)));
const BASELINE_SECONDS = Math.max(1, Math.min(5, SECONDS));
const ENV = 'bench-env';

async function signIn(base) {
  const response = await fetch(`${base}/auth/v1/signin/anonymously?client_id=${ENV}`, {
    method: 'POST',
    headers: { 'x-device-id': randomUUID().replaceAll('-', '') },
    body: '{}',
  });
  if (response.status !== 200) throw new Error(`sign-in failed: ${response.status} ${await response.text()}`);
  return (await response.json()).access_token;
}

function envelope(action, token, extra) {
  const seqId = Math.random().toString(16).slice(2);
  return {
    seqId,
    body: JSON.stringify({ action, dataVersion: '2020-01-10', env: ENV, ...extra, access_token: token, seqId }),
  };
}

/** Runs `clients` loops for `seconds`; each loop awaits one request at a time. */
async function load({ url, seconds, clients, makeRequest, check }) {
  const latencies = [];
  let errors = 0;
  let firstError = null;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      let n = 0;
      while (performance.now() < deadline) {
        const { seqId, body } = makeRequest(client, n);
        const t0 = performance.now();
        try {
          const response = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json;charset=UTF-8', 'x-seqid': seqId },
            body,
          });
          const json = await response.json();
          check(json, client, n);
          latencies.push(performance.now() - t0);
        } catch (error) {
          errors += 1;
          firstError ??= error;
        }
        n += 1;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  return {
    calls: sorted.length,
    errors,
    firstError: firstError ? String(firstError.message ?? firstError) : null,
    seconds: elapsed,
    callsPerSecond: sorted.length / elapsed,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
  };
}

/** A node:http server in a child process that answers every POST with a canned /web success body. */
async function startCannedServer() {
  const source = `
    const http = require('node:http');
    const reply = JSON.stringify({ requestId: 'canned', data: { response_data: '{"pong":0}' } });
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(reply); });
    });
    server.keepAliveTimeout = 60000;
    server.listen(0, '127.0.0.1', () => console.log('listening on http://127.0.0.1:' + server.address().port));
    process.on('SIGTERM', () => server.close(() => process.exit(0)));`;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`canned server exited ${code}`)));
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** The emulator's one-time dashboard link, from its start banner. */
async function dashboardLink(emulator) {
  for (let i = 0; i < 100; i++) {
    const match = /one-time link to sign in: (\S+)/.exec(emulator.stderr());
    if (match) return match[1];
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no dashboard link in the start banner');
}

/** callFunction throughput with the dashboard closed and open (live), in alternating segments. */
async function dashboardCost({ emulator, url, makeRequest, check, rounds, seconds }) {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(await dashboardLink(emulator));
    const sum = { closed: { calls: 0, seconds: 0, p50: [] }, open: { calls: 0, seconds: 0, p50: [] } };
    const roundRatios = [];
    for (let round = 0; round < rounds; round++) {
      const rate = {};
      for (const state of round % 2 ? ['open', 'closed'] : ['closed', 'open']) {
        if (state === 'open') {
          await page.goto(`${emulator.url}/_/#/requests`);
          await page.waitForSelector('#live.on');
        } else {
          await page.goto('about:blank');
        }
        const result = await load({ url, seconds, clients: CLIENTS, makeRequest, check });
        if (result.errors) throw new Error(`dashboard ${state}: ${result.firstError}`);
        sum[state].calls += result.calls;
        sum[state].seconds += result.seconds;
        sum[state].p50.push(result.p50Ms);
        rate[state] = result.callsPerSecond;
      }
      roundRatios.push(rate.open / rate.closed);
    }
    // The open page really was live: it shows requests of the load.
    await page.goto(`${emulator.url}/_/#/requests`);
    await page.locator('tr', { hasText: 'functions.invokeFunction' }).first().waitFor({ timeout: 10_000 });
    const rate = (s) => s.calls / s.seconds;
    return {
      rounds,
      segmentSeconds: seconds,
      closedCallsPerSecond: rate(sum.closed),
      openCallsPerSecond: rate(sum.open),
      ratioOpenVsClosed: rate(sum.open) / rate(sum.closed),
      // Each round's two segments are adjacent in time; the median of their ratios shrugs off a burst of
      // load from elsewhere on a shared machine that hits one segment.
      roundRatios,
      medianRoundRatio: median(roundRatios),
      closedP50Ms: sum.closed.p50,
      openP50Ms: sum.open.p50,
    };
  } finally {
    await browser.close();
  }
}

const binary = pickEmulatorBinary();
const startLoad = loadavg().map((v) => v.toFixed(2)).join(' / ');
process.env.CLOUD_EMULATOR_BIN = binary;
const emulator = await startEmulator({ functions: join(BENCH_DIR, 'functions') });
let canned;
try {
  const tokens = await Promise.all(Array.from({ length: CLIENTS }, () => signIn(emulator.url)));
  const webUrl = `${emulator.url}/web?env=${ENV}`;
  const invoke = (client, n) =>
    envelope('functions.invokeFunction', tokens[client], { function_name: 'ping', request_data: JSON.stringify({ n }) });
  const checkInvoke = (json, client, n) => {
    if (json.code) throw new Error(`${json.code}: ${json.message}`);
    if (JSON.parse(json.data.response_data).pong !== n) throw new Error('wrong result');
  };

  // Warm the function workers and the connection pool.
  await load({ url: webUrl, seconds: 1, clients: CLIENTS, makeRequest: invoke, check: checkInvoke });

  const functions = await load({ url: webUrl, seconds: SECONDS, clients: CLIENTS, makeRequest: invoke, check: checkInvoke });
  const userInfo = await load({
    url: webUrl,
    seconds: BASELINE_SECONDS,
    clients: CLIENTS,
    makeRequest: (client) => envelope('auth.getUserInfo', tokens[client], {}),
    check: (json) => {
      if (json.code) throw new Error(`${json.code}: ${json.message}`);
    },
  });
  canned = await startCannedServer();
  const ceiling = await load({
    url: `${canned.url}/web?env=${ENV}`,
    seconds: BASELINE_SECONDS,
    clients: CLIENTS,
    makeRequest: invoke,
    check: (json) => {
      if (json.code) throw new Error(json.code);
    },
  });

  const dashboard = await dashboardCost({
    emulator,
    url: webUrl,
    makeRequest: invoke,
    check: checkInvoke,
    rounds: 8,
    seconds: Math.max(2, Math.min(3, SECONDS / 2)),
  });

  const rows = [
    ['functions.invokeFunction (ping) on cloud-emulator', functions],
    ['baseline A: auth.getUserInfo on cloud-emulator (no function)', userInfo],
    ['baseline B: canned node:http server (loopback ceiling)', ceiling],
  ];
  const vsA = functions.callsPerSecond / userInfo.callsPerSecond;
  const vsB = functions.callsPerSecond / ceiling.callsPerSecond;
  console.log(`emulator: ${binary}; ${CLIENTS} keep-alive clients; ${SECONDS} s (baselines ${BASELINE_SECONDS} s)`);
  for (const [label, r] of rows) {
    console.log(
      `  ${label.padEnd(62)} ${r.callsPerSecond.toFixed(0).padStart(7)} calls/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  (${r.calls} calls, ${r.errors} errors)`,
    );
  }
  console.log(`ratio functions / baseline A: ${vsA.toFixed(3)}   functions / baseline B: ${vsB.toFixed(3)}`);
  const dashboardOk = dashboard.medianRoundRatio >= 0.95;
  console.log(
    `dashboard: closed ${dashboard.closedCallsPerSecond.toFixed(0)} calls/s, open and live ${dashboard.openCallsPerSecond.toFixed(0)} calls/s; ` +
      `open / closed: median of ${dashboard.rounds} rounds ${dashboard.medianRoundRatio.toFixed(3)} ${dashboardOk ? 'PASS' : 'FAIL'} (>= 0.95), ` +
      `overall ${dashboard.ratioOpenVsClosed.toFixed(3)}`,
  );
  if (functions.errors) console.log(`first error: ${functions.firstError}`);

  const markdown = `# callFunction throughput

\`node bench/throughput.mjs ${SECONDS} ${CLIENTS}\`, ${new Date().toISOString()}, emulator \`${binary.replace(/.*\/target\//, 'target/')}\`,
Node ${process.version}; ${CLIENTS} concurrent keep-alive clients (Node fetch) in a process separate from the server;
each client awaits one call at a time; 1 s warm-up first. Machine: 2 cores shared by load generator, emulator and workers.

| Target | calls/s | p50 | p99 | calls | errors |
| --- | ---: | ---: | ---: | ---: | ---: |
${rows.map(([label, r]) => `| ${label} | ${r.callsPerSecond.toFixed(0)} | ${r.p50Ms.toFixed(2)} ms | ${r.p99Ms.toFixed(2)} ms | ${r.calls} | ${r.errors} |`).join('\n')}

Ratios: functions / baseline A = **${vsA.toFixed(3)}**, functions / baseline B = **${vsB.toFixed(3)}**.

## The dashboard's cost

The same callFunction load with the dashboard closed (the browser on about:blank) and open in headless Chromium
on its Requests page (live over SSE: the page reloads the new requests after every change event), ${dashboard.rounds}
rounds of one ${dashboard.segmentSeconds} s segment each, alternating which goes first. Load average when the run
started: ${startLoad} (other work on the machine adds noise; each round's two segments are adjacent in time).

| dashboard | calls/s | p50 per segment |
| --- | ---: | --- |
| closed | ${dashboard.closedCallsPerSecond.toFixed(0)} | ${dashboard.closedP50Ms.map((v) => `${v.toFixed(2)} ms`).join(', ')} |
| open, live | ${dashboard.openCallsPerSecond.toFixed(0)} | ${dashboard.openP50Ms.map((v) => `${v.toFixed(2)} ms`).join(', ')} |

Open / closed per round: ${dashboard.roundRatios.map((r) => r.toFixed(3)).join(', ')}; median **${dashboard.medianRoundRatio.toFixed(3)}**
(${dashboardOk ? 'PASS' : 'FAIL'}: within 5 % means >= 0.95); all segments together ${dashboard.ratioOpenVsClosed.toFixed(3)}.
`;
  writeResults('throughput', { date: new Date().toISOString(), node: process.version, emulator: binary, clients: CLIENTS, seconds: SECONDS, functions, baselineUserInfo: userInfo, baselineCanned: ceiling, ratioVsUserInfo: vsA, ratioVsCanned: vsB, dashboard }, markdown);
  if (functions.errors || !dashboardOk) process.exitCode = 1;
} finally {
  await canned?.stop();
  await emulator.stop();
}
