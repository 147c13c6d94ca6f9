// Shared bits of the benchmarks: paths, stats, result files. npm packages come from js-tests/node_modules
// (install once: npm ci --prefix js-tests).
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(BENCH_DIR, '..');
export const JS_TESTS_DIR = join(REPO_ROOT, 'js-tests');
export const PKG_DIR = join(REPO_ROOT, 'pkg');
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const requireFromJsTests = createRequire(join(JS_TESTS_DIR, 'package.json'));

/** Prefer the release emulator for timing (debug builds are ~10x slower); say which one is used. */
export function pickEmulatorBinary() {
  if (process.env.CLOUD_EMULATOR_BIN) return process.env.CLOUD_EMULATOR_BIN;
  const release = join(REPO_ROOT, 'target', 'release', 'cloud-emulator');
  const debug = join(REPO_ROOT, 'target', 'debug', 'cloud-emulator');
  return requireFromJsTests('node:fs').existsSync(release) ? release : debug;
}

export function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function writeResults(name, json, markdown) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
  writeFileSync(join(RESULTS_DIR, `${name}.md`), markdown.trimEnd() + '\n');
  console.log(`results: bench/results/${name}.json, bench/results/${name}.md`);
}

export const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
export const ms = (value) => `${value.toFixed(3)} ms`;
