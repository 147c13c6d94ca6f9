#!/usr/bin/env node
// Realtime watch latency and memory of cloud-emulator over loopback.
//   commit-to-event latency: one user writes (database.updateDocument over /web, keep-alive) while W watchers
//   (W = 1, 100, 1000; 100 watches per WebSocket, the protocol's frames parsed with JSON.parse) watch the same
//   collection; for each write, the time from sending the request until the FIRST and until the LAST watcher
//   has its NEXT_EVENT. Baseline measured in the same run: the write's own round trip (request sent → answer,
//   i.e. durable commit + HTTP), so "last / write" says how many write round trips it takes to reach everyone.
//   memory: the emulator's RSS (VmRSS) with no watcher, then with 1000 idle watchers (20 documents each).
// Usage: node bench/watch.mjs [samples=200]
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pickEmulatorBinary, quantile, requireFromJsTests, writeResults, startBenchEmulator, postJson } from './lib.mjs';

const { WebSocket } = requireFromJsTests('ws');
const SAMPLES = Math.max(20, Number(process.argv[2] ?? 200));
const ENV = 'bench-watch';
const WATCHES_PER_SOCKET = 100;
const SEED_DOCS = 20;

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

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

async function main() {
  const binary = pickEmulatorBinary();
  const { url, admin, pid, stop } = await startBenchEmulator(binary, ENV, 'bench-watch-');
  const sockets = [];
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

    // Watchers are added in steps: 1, then up to 100, then up to 1000 (100 per socket).
    let watchers = 0;
    let onArrival = () => {};
    const addWatchers = async (target) => {
      while (watchers < target) {
        if (watchers % WATCHES_PER_SOCKET === 0) sockets.push(await openSocket(sign.wsUrl, sign.signStr, (frame) => onArrival(frame)));
        const { request } = sockets[sockets.length - 1];
        const init = await request({ watchId: `w${watchers}`, msgType: 'INIT_WATCH', msgData: { envId: ENV, collName: 'room', query: '{}' } });
        if (init.msgType !== 'INIT_EVENT' || init.msgData.events.length !== SEED_DOCS) throw new Error(JSON.stringify(init).slice(0, 300));
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
      for (let i = 0; i < samples + 10; i++) {
        value++;
        let arrived = 0;
        let firstAt = 0;
        const allArrived = new Promise((resolve) => {
          onArrival = () => {
            arrived++;
            if (arrived === 1) firstAt = performance.now();
            if (arrived === target) resolve(performance.now());
          };
        });
        const start = performance.now();
        await web({ action: 'database.updateDocument', collectionName: 'room', queryType: 'DOC', query: { _id: ids[i % SEED_DOCS] }, data: { $set: { n: value } }, merge: true });
        const acked = performance.now();
        const lastAt = await allArrived;
        if (i >= 10) { // the first 10 are warm-up
          writes.push(acked - start);
          first.push(firstAt - start);
          last.push(lastAt - start);
        }
      }
      for (const list of [first, last, writes]) list.sort((a, b) => a - b);
      const row = {
        watchers: target,
        sockets: sockets.length,
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
    const json = { binary, cpus: cpus().length, load_average_1min: load, seed_docs: SEED_DOCS, watches_per_socket: WATCHES_PER_SOCKET, rows, rss_kib: { baseline: rssBaseline, idle_1000_watchers: rssIdle, per_watcher: rssDelta / 1000 } };
    const md = [
      '# Realtime watch: commit-to-event latency and memory',
      '',
      `\`node bench/watch.mjs ${SAMPLES}\` — ${binary.includes('release') ? 'release' : 'debug'} emulator, loopback. One user updates one`,
      `document of a ${SEED_DOCS}-document collection (\`database.updateDocument\` over /web, keep-alive, one at a time); W watchers`,
      `(\`INIT_WATCH\` with query \`{}\`, ${WATCHES_PER_SOCKET} per WebSocket, all in this one Node process) get each change as a`,
      '`NEXT_EVENT`. Latency is measured from sending the write: to the first watcher\'s frame, and to the last one\'s',
      '(all W received and parsed). Baseline in the same run: the write\'s own round trip (durable commit + HTTP answer).',
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
      `(${Math.ceil(1000 / WATCHES_PER_SOCKET)} sockets, each watch holding its ${SEED_DOCS}-document window): +${(rssDelta / 1024).toFixed(1)} MiB, ${(rssDelta / 1000).toFixed(1)} KiB per watcher.`,
    ].join('\n');
    writeResults('watch', json, md);
  } finally {
    for (const { socket } of sockets) socket.terminate();
    await stop();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
