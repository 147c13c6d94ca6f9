#!/usr/bin/env node
// Realtime watch latency and memory of cloud-emulator over loopback.
//   commit-to-event latency: one user writes (database.updateDocument over /web, keep-alive) while W watchers
//   (W = 1, 100, 1000; 100 watches per WebSocket, the protocol's frames parsed with JSON.parse) watch the same
//   collection; for each write, the time from sending the request until the FIRST and until the LAST watcher
//   has parsed its NEXT_EVENT. Baseline measured in the same run: the write's own round trip (request sent →
//   answer, i.e. durable commit + HTTP), so "last / write" says how many write round trips it takes to reach
//   everyone.
//   The sockets are spread over client threads (worker_threads, one per CPU at most, socket i on thread
//   i mod n), as real watchers sit in different browsers: one Node thread parsing all 1,000 frames would
//   measure its own JSON.parse queue more than the emulator. Times are process.hrtime (the same monotonic
//   clock in every thread): each thread stamps its first and last parsed frame of a write.
//   memory: the emulator's RSS (VmRSS) with no watcher, then with 1000 idle watchers (20 documents each).
// Usage: node bench/watch.mjs [samples=200]   (WATCH_CLIENT_THREADS=1: every frame parsed on one client thread)
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { pickEmulatorBinary, quantile, requireFromJsTests, writeResults, startBenchEmulator, postJson } from './lib.mjs';

const { WebSocket } = requireFromJsTests('ws');
const SAMPLES = Math.max(20, Number(process.argv[2] ?? 200));
const ENV = 'bench-watch';
const WATCHES_PER_SOCKET = 100;
const SEED_DOCS = 20;
const MAX_WATCHERS = 1000;
// WATCH_CLIENT_THREADS=1 parses every frame on one thread (the figure before the spread, for comparison).
const CLIENT_THREADS = Math.min(Math.ceil(MAX_WATCHERS / WATCHES_PER_SOCKET), Number(process.env.WATCH_CLIENT_THREADS) || availableParallelism());

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const nowNs = () => process.hrtime.bigint();

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const post = (url, path, body, headers) => postJson(agent, url, path, body, headers);

/** A signed-in socket; `onEvent(frame)` gets every NEXT_EVENT. */
async function openSocket(wsUrl, sign, onEvent) {
  const socket = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); });
  const pending = new Map();
  let next = 0;
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    const waiter = pending.get(frame.requestId);
    if (waiter) { pending.delete(frame.requestId); waiter(frame); return; }
    if (frame.msgType === 'NEXT_EVENT') onEvent(frame);
  });
  const request = (frame) => new Promise((resolve) => {
    const requestId = `r${++next}`;
    pending.set(requestId, resolve);
    socket.send(JSON.stringify({ ...frame, requestId }));
  });
  const login = await request({ msgType: 'LOGIN', msgData: { envId: ENV }, exMsgData: { runtime: 'web', signStr: sign, secretVersion: 1 } });
  if (login.msgType !== 'LOGIN_RES') throw new Error(JSON.stringify(login));
  return { socket, request };
}

/**
 * A client thread: holds some sockets and their watches. Every time all of its watches have parsed one more
 * NEXT_EVENT (one write), it posts the hrtime of the first and of the last of those frames.
 */
function clientThread() {
  const sockets = [];
  let watches = 0;
  let arrived = 0;
  let firstNs = 0n;
  const onEvent = () => {
    const at = nowNs();
    if (arrived === 0) firstNs = at;
    if (++arrived === watches) {
      arrived = 0;
      parentPort.postMessage({ type: 'arrived', firstNs, lastNs: at });
    }
  };
  parentPort.on('message', async (command) => {
    try {
      if (command.type === 'open') {
        sockets.push(await openSocket(command.wsUrl, command.sign, onEvent));
      } else if (command.type === 'watch') {
        const { request } = sockets[sockets.length - 1];
        const init = await request({ watchId: command.watchId, msgType: 'INIT_WATCH', msgData: { envId: ENV, collName: 'room', query: '{}' } });
        if (init.msgType !== 'INIT_EVENT' || init.msgData.events.length !== SEED_DOCS) throw new Error(JSON.stringify(init).slice(0, 300));
        watches++;
        arrived = 0;
      } else if (command.type === 'close') {
        for (const { socket } of sockets) socket.terminate();
      }
      parentPort.postMessage({ type: 'done' });
    } catch (err) {
      parentPort.postMessage({ type: 'error', message: String(err?.stack ?? err) });
    }
  });
}

/** The main thread's handle on a client thread: `call(command)` resolves when it is done. */
function startClientThread(onArrived) {
  const worker = new Worker(new URL(import.meta.url), { argv: process.argv.slice(2) });
  let waiting = null;
  worker.on('message', (message) => {
    if (message.type === 'arrived') { onArrived(message); return; }
    const { resolve, reject } = waiting;
    waiting = null;
    if (message.type === 'error') reject(new Error(message.message)); else resolve();
  });
  worker.on('error', (err) => {
    if (waiting) { waiting.reject(err); return; }
    console.error(err); // a client thread failed while frames were being timed: no sample can complete
    process.exit(1);
  });
  return {
    call: (command) => new Promise((resolve, reject) => { waiting = { resolve, reject }; worker.postMessage(command); }),
    stop: () => worker.terminate(),
  };
}

async function main() {
  const binary = pickEmulatorBinary();
  const { url, admin, pid, stop } = await startBenchEmulator(binary, ENV, 'bench-watch-');
  let onArrived = () => {};
  const threads = Array.from({ length: CLIENT_THREADS }, () => startClientThread((message) => onArrived(message)));
  let sockets = 0;
  try {
    await post(url, '/admin/v1/database/collections', { env: ENV, name: 'room', rules: 'READONLY' }, { 'x-admin-token': admin });
    const signIn = await post(url, `/auth/v1/signin/anonymously?client_id=${ENV}`, {}, { 'x-device-id': 'bench-watch-device-0000000000001' });
    const token = signIn.access_token;
    const web = (body) => post(url, `/web?env=${ENV}`, { ...body, env: ENV, access_token: token });
    const ids = [];
    for (let i = 0; i < SEED_DOCS; i++) {
      ids.push((await web({ action: 'database.addDocument', collectionName: 'room', data: { n: i, text: `message ${i}`, at: { $date: 1_700_000_000_000 + i } } })).data._id);
    }
    const { data: sign } = await web({ action: 'auth.wsWebSign', runtime: 'web' });
    await new Promise((r) => setTimeout(r, 300));
    const rssBaseline = rssKiB(pid);
    const load = loadavg()[0];

    // Watchers are added in steps: 1, then up to 100, then up to 1000 (100 per socket, socket i on client
    // thread i mod CLIENT_THREADS).
    let watchers = 0;
    const addWatchers = async (target) => {
      while (watchers < target) {
        if (watchers % WATCHES_PER_SOCKET === 0) {
          await threads[sockets % CLIENT_THREADS].call({ type: 'open', wsUrl: sign.wsUrl, sign: sign.signStr });
          sockets++;
        }
        await threads[(sockets - 1) % CLIENT_THREADS].call({ type: 'watch', watchId: `w${watchers}` });
        watchers++;
      }
    };

    const rows = [];
    let rssIdle = null;
    let value = 0;
    for (const target of [1, 100, 1000]) {
      await addWatchers(target);
      if (target === 1000) {
        await new Promise((r) => setTimeout(r, 500));
        rssIdle = rssKiB(pid);
      }
      const samples = target === 1000 ? Math.max(20, SAMPLES >> 1) : SAMPLES;
      const first = [];
      const last = [];
      const writes = [];
      const busyThreads = Math.min(sockets, CLIENT_THREADS);
      const ms = (fromNs, toNs) => Number(toNs - fromNs) / 1e6;
      for (let i = 0; i < samples + 10; i++) {
        value++;
        // Every client thread holding watches reports once per write: when all of its watches have parsed it.
        const reports = [];
        const allArrived = new Promise((resolve) => {
          onArrived = (report) => {
            reports.push(report);
            if (reports.length === busyThreads) resolve();
          };
        });
        const start = nowNs();
        await web({ action: 'database.updateDocument', collectionName: 'room', queryType: 'DOC', query: { _id: ids[i % SEED_DOCS] }, data: { $set: { n: value } }, merge: true });
        const acked = nowNs();
        await allArrived;
        if (i >= 10) { // the first 10 are warm-up
          writes.push(ms(start, acked));
          first.push(Math.min(...reports.map((r) => ms(start, r.firstNs))));
          last.push(Math.max(...reports.map((r) => ms(start, r.lastNs))));
        }
      }
      for (const list of [first, last, writes]) list.sort((a, b) => a - b);
      const row = {
        watchers: target,
        sockets,
        samples,
        write_p50_ms: quantile(writes, 0.5),
        first_p50_ms: quantile(first, 0.5),
        first_p99_ms: quantile(first, 0.99),
        last_p50_ms: quantile(last, 0.5),
        last_p99_ms: quantile(last, 0.99),
      };
      row.last_over_write_p50 = row.last_p50_ms / row.write_p50_ms;
      rows.push(row);
      console.log(`${target} watchers: write ${row.write_p50_ms.toFixed(3)} ms; first watcher p50 ${row.first_p50_ms.toFixed(3)} / p99 ${row.first_p99_ms.toFixed(3)} ms; last watcher p50 ${row.last_p50_ms.toFixed(3)} / p99 ${row.last_p99_ms.toFixed(3)} ms (${row.last_over_write_p50.toFixed(2)}x the write)`);
    }
    const rssDelta = rssIdle - rssBaseline;
    console.log(`RSS: ${rssBaseline} KiB without watchers, ${rssIdle} KiB with 1000 idle watchers (+${rssDelta} KiB, ${(rssDelta / 1000).toFixed(1)} KiB per watcher)`);
    const at1000 = rows.find((r) => r.watchers === 1000);
    const json = { binary, cpus: cpus().length, load_average_1min: load, seed_docs: SEED_DOCS, watches_per_socket: WATCHES_PER_SOCKET, client_threads: CLIENT_THREADS, rows, rss_kib: { baseline: rssBaseline, idle_1000_watchers: rssIdle, per_watcher: rssDelta / 1000 } };
    const md = [
      '# Realtime watch: commit-to-event latency and memory',
      '',
      `\`node bench/watch.mjs ${SAMPLES}\` — ${binary.includes('release') ? 'release' : 'debug'} emulator, loopback. One user updates one`,
      `document of a ${SEED_DOCS}-document collection (\`database.updateDocument\` over /web, keep-alive, one at a time); W watchers`,
      `(\`INIT_WATCH\` with query \`{}\`, ${WATCHES_PER_SOCKET} per WebSocket) get each change as a \`NEXT_EVENT\`. The sockets are`,
      `spread over ${CLIENT_THREADS} client threads of the Node process (worker_threads, one per CPU at most; socket i on thread i mod ${CLIENT_THREADS}),`,
      'as real watchers sit in different browsers. Latency is measured from sending the write: to the first watcher\'s',
      'frame, and to the last one\'s (all W received and parsed with JSON.parse; each thread stamps its frames with',
      'process.hrtime, one monotonic clock for all threads). Baseline in the same run: the write\'s own round trip',
      '(durable commit + HTTP answer).',
      `Machine: ${cpus().length} CPUs, 1-minute load average ${load.toFixed(1)} when the run started (other jobs share the`,
      'CPUs: absolute times and p99s swing with that load; the ratio to the write measured alongside is the stable figure).',
      '',
      '| watchers | sockets | samples | write (baseline) p50 | first watcher p50 / p99 | last watcher p50 / p99 | last / write (p50) |',
      '|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map((r) => `| ${r.watchers} | ${r.sockets} | ${r.samples} | ${r.write_p50_ms.toFixed(3)} ms | ${r.first_p50_ms.toFixed(3)} / ${r.first_p99_ms.toFixed(3)} ms | ${r.last_p50_ms.toFixed(3)} / ${r.last_p99_ms.toFixed(3)} ms | ${r.last_over_write_p50.toFixed(2)} |`),
      '',
      `Goal: p50 ≤ 5 ms at 1,000 watchers (last watcher) — ${at1000.last_p50_ms <= 5 ? 'met' : 'NOT met'} (${at1000.last_p50_ms.toFixed(3)} ms).`,
      '',
      `Emulator RSS: ${(rssBaseline / 1024).toFixed(1)} MiB with no watcher, ${(rssIdle / 1024).toFixed(1)} MiB with 1,000 idle watchers`,
      `(${Math.ceil(1000 / WATCHES_PER_SOCKET)} sockets; the watches, all of one query, share one ${SEED_DOCS}-document window): +${(rssDelta / 1024).toFixed(1)} MiB, ${(rssDelta / 1000).toFixed(1)} KiB per watcher.`,
    ].join('\n');
    writeResults('watch', json, md);
  } finally {
    for (const thread of threads) {
      await thread.call({ type: 'close' }).catch(() => {});
      await thread.stop();
    }
    await stop();
  }
}

if (isMainThread) main().catch((err) => { console.error(err); process.exit(1); });
else clientThread();
