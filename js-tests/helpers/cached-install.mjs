// Heavy npm trees (the Taro app's ~450 MB, the bundler matrix) are installed once per hash of their
// package.json + package-lock.json under ~/.cache/taro-cloud-wasm/<name>-<hash>/node_modules and reused by
// every later run on the machine (CI runs in a fresh clone on the same machine). A missing cache is installed
// with `npm install` (Taro's lockfile breaks `npm ci`: four optional @tarojs/binding-* packages are missing from
// the registry); the install goes to a staging folder renamed into place when complete, so an interrupted
// install is never mistaken for a cache and two concurrent runs cannot mix trees.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The cache root: $TARO_CLOUD_WASM_CACHE, else $XDG_CACHE_HOME/taro-cloud-wasm, else ~/.cache/taro-cloud-wasm. */
export function cacheRoot() {
  if (process.env.TARO_CLOUD_WASM_CACHE) return process.env.TARO_CLOUD_WASM_CACHE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'taro-cloud-wasm');
}

/** Runs a command to its end; resolves with its stdout, rejects with its output when it fails or outlives `timeoutMs`. */
export function run(command, args, { cwd, env = process.env, timeoutMs = 600_000 } = {}) {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = ''; // stdout and stderr, for the error message
    let stdout = '';
    const keep = (chunk) => (output = (output + chunk).slice(-200_000));
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      keep(chunk);
    });
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      rejectRun(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolveRun(stdout);
      else rejectRun(new Error(`${command} ${args.join(' ')} (in ${cwd}) exited ${code ?? signal}:\n${output.slice(-20_000)}`));
    });
  });
}

/**
 * The folder holding `node_modules` for the npm project in `projectDir` (its package.json and, when present,
 * package-lock.json), installing it first when the cache has none for this hash.
 * @param {string} projectDir
 * @param {string} name  the cache entry's prefix, e.g. 'taro-app'
 */
export async function cachedInstall(projectDir, name) {
  const manifest = readFileSync(join(projectDir, 'package.json'));
  const lockPath = join(projectDir, 'package-lock.json');
  const lock = existsSync(lockPath) ? readFileSync(lockPath) : Buffer.alloc(0);
  const hash = createHash('sha256').update(manifest).update('\0').update(lock).digest('hex').slice(0, 16);
  const entry = join(cacheRoot(), `${name}-${hash}`);
  if (existsSync(join(entry, 'node_modules', '.complete'))) return entry;

  mkdirSync(cacheRoot(), { recursive: true });
  const staging = `${entry}.staging-${process.pid}-${Date.now()}`;
  mkdirSync(staging, { recursive: true });
  try {
    writeFileSync(join(staging, 'package.json'), manifest);
    if (lock.length) writeFileSync(join(staging, 'package-lock.json'), lock);
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: staging });
    writeFileSync(join(staging, 'node_modules', '.complete'), `${new Date().toISOString()}\n`);
    try {
      renameSync(staging, entry);
    } catch (error) {
      // Another run finished the same install first (or a broken entry is in the way): keep the complete one.
      if (existsSync(join(entry, 'node_modules', '.complete'))) return entry;
      rmSync(entry, { recursive: true, force: true });
      renameSync(staging, entry);
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return entry;
}

/**
 * Copies a cached node_modules into `targetDir` as hard links (instant, no extra disk; falls back to a real
 * copy across file systems). Builds that write into node_modules (.cache, .vite) create new files, which never
 * touch the cache.
 */
export async function linkNodeModules(cacheEntry, targetDir) {
  const target = join(targetDir, 'node_modules');
  rmSync(target, { recursive: true, force: true });
  try {
    await run('cp', ['-al', join(cacheEntry, 'node_modules'), target], { timeoutMs: 120_000 });
  } catch {
    rmSync(target, { recursive: true, force: true });
    cpSync(join(cacheEntry, 'node_modules'), target, { recursive: true, verbatimSymlinks: true });
  }
  // npm rewrites its hidden lockfile in place on the next install; unlink the shared copy first.
  rmSync(join(target, '.package-lock.json'), { force: true });
  rmSync(join(target, '.complete'), { force: true });
}

// CLI (scripts/setup.sh): `node js-tests/helpers/cached-install.mjs DIR...` fills the cache for each npm project
// DIR (entry name = the folder's name, as the tests use it) and prints where it is.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const dir of process.argv.slice(2)) {
    const started = Date.now();
    const entry = await cachedInstall(resolve(dir), basename(resolve(dir)));
    console.log(`[setup] ${dir}: node_modules in ${entry} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
}
