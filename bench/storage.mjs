#!/usr/bin/env node
// Storage throughput through the SDK vs raw fetch of the same bytes to the same emulator, in the same run,
// interleaved (alternating which goes first), plus the emulator's peak RSS during a 1 GiB streaming upload.
//   upload:   SDK uploadFile (presigned PUT; Node has no XHR, so fetch)  vs  raw fetch: storage.getUploadMetadata
//             envelope + PUT of the same Blob with the same headers.
//   download: SDK downloadFile (streamed body, progress, one ArrayBuffer, object URL)  vs  raw fetch:
//             storage.batchGetDownloadUrl envelope + GET + arrayBuffer().
//   RSS:      VmHWM of the emulator (/proc/<pid>/status) before and after a 1 GiB PUT whose bytes are generated on
//             the fly (never held by the client either), bounded to 120 s.
// Usage: node bench/storage.mjs [MiB per transfer=32] [rounds=8]
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PKG_DIR, median, pickEmulatorBinary, startBenchEmulator, writeResults } from './lib.mjs';

const MIB = 1024 * 1024;
const SIZE = Math.min(256, Math.max(1, Number(process.argv[2] ?? 32))) * MIB;
const ROUNDS = Math.min(50, Math.max(2, Number(process.argv[3] ?? 8)));
const BIG = 1024 * MIB;
const ENV = 'bench-storage';

function memoryKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { hwm: field('VmHWM'), rss: field('VmRSS') };
}

async function signIn(base) {
  const response = await fetch(`${base}/auth/v1/signin/anonymously?client_id=${ENV}`, {
    method: 'POST',
    headers: { 'x-device-id': randomUUID().replaceAll('-', '') },
    body: '{}',
  });
  if (response.status !== 200) throw new Error(`sign-in failed: ${response.status}`);
  return (await response.json()).access_token;
}

async function action(base, token, name, params) {
  const seqId = Math.random().toString(16).slice(2, 15);
  const response = await fetch(`${base}/web?env=${ENV}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json;charset=UTF-8', 'x-seqid': seqId },
    body: JSON.stringify({ action: name, dataVersion: '2020-01-10', env: ENV, ...params, access_token: token, seqId }),
  });
  const json = await response.json();
  if (json.code) throw new Error(`${name}: ${json.code} ${json.message}`);
  return json.data;
}

async function rawUpload(base, token, cloudPath, blob) {
  const meta = await action(base, token, 'storage.getUploadMetadata', { path: cloudPath, method: 'put', headers: {} });
  const response = await fetch(meta.url, {
    method: 'PUT',
    headers: {
      authorization: meta.authorization,
      'x-cos-meta-fileid': meta.cosFileId,
      'x-cos-security-token': meta.token,
      'content-type': blob.type,
    },
    body: blob,
  });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`raw PUT: ${response.status}`);
  return meta.fileId;
}

async function rawDownload(base, token, fileID) {
  const data = await action(base, token, 'storage.batchGetDownloadUrl', { file_list: [{ fileid: fileID, max_age: 600 }] });
  const response = await fetch(data.download_list[0].download_url);
  const bytes = await response.arrayBuffer();
  if (bytes.byteLength !== SIZE) throw new Error(`raw GET: ${bytes.byteLength} bytes`);
}

/** A 1 GiB PUT with Content-Length, bytes generated chunk by chunk as the socket drains. */
async function streamingUpload(base, token) {
  const meta = await action(base, token, 'storage.getUploadMetadata', { path: 'big/1gib.bin', method: 'put', headers: {} });
  const chunk = Buffer.alloc(MIB, 0x5a);
  const started = performance.now();
  const status = await new Promise((resolve, reject) => {
    const request = http.request(meta.url, {
      method: 'PUT',
      headers: {
        authorization: meta.authorization,
        'x-cos-meta-fileid': meta.cosFileId,
        'x-cos-security-token': meta.token,
        'content-type': 'application/octet-stream',
        'content-length': String(BIG),
      },
      timeout: 120_000,
    });
    request.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode));
    });
    request.on('timeout', () => request.destroy(new Error('1 GiB upload exceeded 120 s')));
    request.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < BIG) {
        sent += chunk.length;
        if (!request.write(chunk)) return request.once('drain', pump);
      }
      request.end();
    };
    pump();
  });
  if (status !== 200) throw new Error(`1 GiB PUT: HTTP ${status}`);
  return { seconds: (performance.now() - started) / 1000, fileId: meta.fileId };
}

const binary = pickEmulatorBinary();
const emulator = await startBenchEmulator(binary, ENV, 'bench-storage-', { args: ['--max-upload-bytes', String(BIG + MIB)] });
try {
  const { cloud } = await import(join(PKG_DIR, 'index.mjs'));
  cloud.init({ env: ENV, endpoint: emulator.url, persistence: 'none' });
  const token = await signIn(emulator.url);

  // 1. Peak RSS of the emulator around a 1 GiB streaming upload (first, so the high-water mark is its own).
  await cloud.getTempFileURL({ fileList: ['cloud://warm.up/x'] });
  const before = memoryKiB(emulator.pid);
  const big = await streamingUpload(emulator.url, token);
  const after = memoryKiB(emulator.pid);
  const bigCheck = await cloud.getTempFileURL({ fileList: [big.fileId] });
  if (bigCheck.fileList[0].status !== 0) throw new Error('the 1 GiB object is missing');
  await cloud.deleteFile({ fileList: [big.fileId] });

  // 2. Throughput, interleaved rounds, alternating which side goes first.
  const bytes = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i += 4096) bytes[i] = i & 0xff;
  const blob = new Blob([bytes], { type: 'application/octet-stream' });
  const times = { sdkUp: [], rawUp: [], sdkDown: [], rawDown: [] };
  const time = async (list, fn) => {
    const t0 = performance.now();
    const value = await fn();
    list.push(performance.now() - t0);
    return value;
  };
  // Warm-up of both paths.
  const warm = await cloud.uploadFile({ cloudPath: 'warm.bin', file: blob });
  await cloud.downloadFile({ fileID: warm.fileID });
  await rawDownload(emulator.url, token, await rawUpload(emulator.url, token, 'warm-raw.bin', blob));
  for (let round = 0; round < ROUNDS; round++) {
    const sdkUpload = () => time(times.sdkUp, async () => (await cloud.uploadFile({ cloudPath: `sdk/${round}.bin`, file: blob })).fileID);
    const rawUploadOnce = () => time(times.rawUp, () => rawUpload(emulator.url, token, `raw/${round}.bin`, blob));
    let sdkId;
    let rawId;
    if (round % 2) {
      rawId = await rawUploadOnce();
      sdkId = await sdkUpload();
    } else {
      sdkId = await sdkUpload();
      rawId = await rawUploadOnce();
    }
    const sdkDownload = () =>
      time(times.sdkDown, async () => {
        const { data } = await cloud.downloadFile({ fileID: sdkId });
        if (data.byteLength !== SIZE) throw new Error(`SDK download: ${data.byteLength} bytes`);
      });
    const rawDownloadOnce = () => time(times.rawDown, () => rawDownload(emulator.url, token, rawId));
    if (round % 2) {
      await rawDownloadOnce();
      await sdkDownload();
    } else {
      await sdkDownload();
      await rawDownloadOnce();
    }
    await cloud.deleteFile({ fileList: [sdkId, rawId] });
  }

  const mibps = (list) => SIZE / MIB / (median(list) / 1000);
  const upload = { sdkMiBps: mibps(times.sdkUp), rawMiBps: mibps(times.rawUp) };
  upload.ratio = upload.sdkMiBps / upload.rawMiBps;
  const download = { sdkMiBps: mibps(times.sdkDown), rawMiBps: mibps(times.rawDown) };
  download.ratio = download.sdkMiBps / download.rawMiBps;
  const rss = {
    uploadBytes: BIG,
    seconds: big.seconds,
    vmHwmBeforeKiB: before.hwm,
    vmHwmAfterKiB: after.hwm,
    vmRssAfterKiB: after.rss,
    budgetKiB: 100 * 1024,
  };
  const result = {
    date: new Date().toISOString(),
    emulator: binary,
    transferBytes: SIZE,
    rounds: ROUNDS,
    upload,
    download,
    rss,
    goalRatio: 0.9,
  };
  const fmt = (value) => value.toFixed(1);
  const markdown = `# storage throughput and emulator memory

${new Date().toISOString()} — emulator \`${binary}\`, ${SIZE / MIB} MiB per transfer, ${ROUNDS} interleaved rounds (medians), Node ${process.version}.

| | SDK MiB/s | raw fetch MiB/s | SDK / raw (goal ≥ 0.9) |
| --- | --- | --- | --- |
| upload (PUT) | ${fmt(upload.sdkMiBps)} | ${fmt(upload.rawMiBps)} | ${upload.ratio.toFixed(3)} |
| download | ${fmt(download.sdkMiBps)} | ${fmt(download.rawMiBps)} | ${download.ratio.toFixed(3)} |

1 GiB streaming PUT (bytes generated on the fly): ${big.seconds.toFixed(1)} s; emulator VmHWM ${fmt(before.hwm / 1024)} MiB before,
${fmt(after.hwm / 1024)} MiB after (budget < 100 MiB); VmRSS after ${fmt(after.rss / 1024)} MiB.
`;
  console.log(markdown);
  writeResults('storage', result, markdown);
  const failed = [];
  if (after.hwm >= 100 * 1024) failed.push(`emulator peak RSS ${fmt(after.hwm / 1024)} MiB >= 100 MiB`);
  if (upload.ratio < 0.9) failed.push(`upload ratio ${upload.ratio.toFixed(3)} < 0.9`);
  if (download.ratio < 0.9) failed.push(`download ratio ${download.ratio.toFixed(3)} < 0.9`);
  if (failed.length) {
    console.error('over budget: ' + failed.join('; '));
    process.exitCode = 1;
  }
} finally {
  await emulator.stop();
}
