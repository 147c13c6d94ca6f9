#!/usr/bin/env node
// Size report: what an app ships for taro-cloud-wasm, per feature set, vs @cloudbase/js-sdk 3.7.0 measured the
// same way, in one run.
//   (a) functions  the skeleton (init, Cloud, CloudID, callFunction): build-pkg.sh --variant functions
//   (b) storage    functions + storage:                              build-pkg.sh --variant storage
//   (c) full       the package as published (functions + storage + database): pkg/
// Each as shipped (index.mjs = shim + glue + inlined wasm), its raw .wasm, and as an esbuild app bundle of
// `import x from '<package>'`; raw / minified / gzip (zlib level 9).
// Budget (issue 2): the skeleton (a) ≤ 40 KiB gzip, shipped and bundled (exit code 1 if over).
// Then the bundler matrix: the packed package bundled by vite, webpack 5, esbuild and Rollup, each app's gzip size.
// Usage: node bench/size.mjs [--build | --no-build]
//   Variants (a) and (b) are built into target/pkg-<variant>/ when missing or older than pkg/index.mjs;
//   --build rebuilds them always, --no-build never. Needs pkg/ built and `npm ci --prefix js-tests`.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { JS_TESTS_DIR, PKG_DIR, REPO_ROOT, kb, requireFromJsTests, writeResults } from './lib.mjs';
import { buildMatrix } from '../js-tests/helpers/bundler-apps.mjs';

const BUDGET_GZIP_BYTES = 40 * 1024;
const esbuild = requireFromJsTests('esbuild');
const args = new Set(process.argv.slice(2));
for (const arg of args) {
  if (arg !== '--build' && arg !== '--no-build') {
    console.error(`unknown argument ${arg} (usage: node bench/size.mjs [--build | --no-build])`);
    process.exit(2);
  }
}

const VARIANTS = [
  { key: 'functions', label: '(a) functions', features: 'init, Cloud, CloudID, callFunction', dir: join(REPO_ROOT, 'target', 'pkg-functions') },
  { key: 'storage', label: '(b) functions+storage', features: '(a) + uploadFile, downloadFile, getTempFileURL, deleteFile', dir: join(REPO_ROOT, 'target', 'pkg-storage') },
  { key: 'full', label: '(c) full', features: '(b) + database, callContainer', dir: PKG_DIR },
];

const gzip = (bytes) => gzipSync(bytes, { level: 9 }).length;

async function minify(source) {
  // charset utf8: the package inlines the wasm as a string of chars 0-255; esbuild's default (ascii) would
  // re-escape them and measure a file nobody ships.
  const result = await esbuild.transform(source, {
    minify: true,
    format: 'esm',
    target: 'es2020',
    legalComments: 'none',
    charset: 'utf8',
  });
  return Buffer.from(result.code);
}

/**
 * esbuild bundle of an entry that imports `specifier` and keeps it alive, the way an app would, with
 * esbuild's defaults (charset ascii: non-ASCII chars in strings are escaped, the conservative figure).
 */
async function bundle(specifier, { minified }) {
  const result = await esbuild.build({
    stdin: {
      contents: `import sdk from ${JSON.stringify(specifier)};\nglobalThis.__sdk = sdk;\n`,
      resolveDir: JS_TESTS_DIR,
      loader: 'js',
    },
    bundle: true,
    minify: minified,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    legalComments: 'none',
    write: false,
    logLevel: 'error',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  return Buffer.from(result.outputFiles[0].contents);
}

function row(label, raw, minified) {
  return {
    label,
    raw: raw.length,
    rawGzip: gzip(raw),
    minified: minified ? minified.length : null,
    minifiedGzip: minified ? gzip(minified) : null,
  };
}

async function measureFile(label, path, { isJs }) {
  const bytes = readFileSync(path);
  return row(label, bytes, isJs ? await minify(bytes.toString('utf8')) : null);
}

async function measureBundle(label, specifier) {
  return row(label, await bundle(specifier, { minified: false }), await bundle(specifier, { minified: true }));
}

const fullMjs = join(PKG_DIR, 'index.mjs');
if (!existsSync(fullMjs)) {
  console.error('pkg/index.mjs not found: build the package first (bash scripts/build-pkg.sh)');
  process.exit(2);
}

// Variants older than the full package may predate the sources it was built from: rebuild them.
for (const variant of VARIANTS.filter((v) => v.dir !== PKG_DIR)) {
  const mjs = join(variant.dir, 'index.mjs');
  const stale = !existsSync(mjs) || statSync(mjs).mtimeMs < statSync(fullMjs).mtimeMs;
  if (args.has('--no-build') ? !existsSync(mjs) : args.has('--build') || stale) {
    if (args.has('--no-build')) {
      console.error(`${mjs} not found (--no-build): bash scripts/build-pkg.sh --variant ${variant.key}`);
      process.exit(2);
    }
    console.log(`building variant ${variant.key}: bash scripts/build-pkg.sh --variant ${variant.key}`);
    const build = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'build-pkg.sh'), '--variant', variant.key], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (build.status !== 0) {
      console.error(`build-pkg.sh --variant ${variant.key} failed (exit ${build.status})`);
      process.exit(2);
    }
  }
}

const results = [];
for (const variant of VARIANTS) {
  const shipped = await measureFile(`${variant.label}: index.mjs as shipped`, join(variant.dir, 'index.mjs'), { isJs: true });
  const wasm = await measureFile(`${variant.label}: raw .wasm`, join(variant.dir, 'taro_cloud_wasm_bg.wasm'), { isJs: false });
  const appBundle = await measureBundle(`${variant.label}: app bundle (esbuild)`, join(variant.dir, 'index.mjs'));
  results.push({ ...variant, dir: variant.dir.slice(REPO_ROOT.length + 1), shipped, wasm, appBundle });
}
const baseline = await measureBundle('@cloudbase/js-sdk 3.7.0: app bundle (esbuild)', '@cloudbase/js-sdk');

const [skeleton, , full] = results;
// The budget covers what the package ships (rawGzip: index.mjs is minified by the build) and what an app
// bundles (minified, gzip).
const budgetFigures = { shippedGzip: skeleton.shipped.rawGzip, appBundleGzip: skeleton.appBundle.minifiedGzip };
const withinBudget = Math.max(budgetFigures.shippedGzip, budgetFigures.appBundleGzip) <= BUDGET_GZIP_BYTES;
const ratio = full.appBundle.minifiedGzip / baseline.minifiedGzip;
const ratios = Object.fromEntries(results.map((r) => [r.key, r.appBundle.minifiedGzip / baseline.minifiedGzip]));

const rows = [...results.flatMap((r) => [r.shipped, r.wasm, r.appBundle]), baseline];
const cell = (value) => String(value ?? 'n/a').padStart(9);
console.log('size in bytes (gzip = zlib level 9)');
console.log(`  ${'what'.padEnd(50)} ${'raw'.padStart(9)} ${'raw.gz'.padStart(9)} ${'min'.padStart(9)} ${'min.gz'.padStart(9)}`);
for (const r of rows) {
  console.log(`  ${r.label.padEnd(50)} ${cell(r.raw)} ${cell(r.rawGzip)} ${cell(r.minified)} ${cell(r.minifiedGzip)}`);
}
for (const r of results) {
  console.log(
    `ratio ${r.label} / @cloudbase/js-sdk (app bundle, min.gz): ${ratios[r.key].toFixed(4)} (${(1 / ratios[r.key]).toFixed(1)}x smaller)`,
  );
}
const verdict = withinBudget ? 'PASS' : 'FAIL';
console.log(
  `budget (a) functions ≤ ${BUDGET_GZIP_BYTES} B gzip: ${verdict} (index.mjs ${budgetFigures.shippedGzip} B = ${kb(budgetFigures.shippedGzip)}, app bundle ${budgetFigures.appBundleGzip} B = ${kb(budgetFigures.appBundleGzip)})`,
);

// The bundler matrix (js-tests/helpers/bundler-apps.mjs, also run by js-tests/bundlers.test.mjs): the PACKED
// package (`npm pack`) installed into scratch apps that call functions, storage and the database, bundled by
// vite, webpack 5 (production), esbuild (--minify) and Rollup (node-resolve, no minifier); every .js each emits.
const FULL_BUDGET_GZIP_BYTES = 100 * 1024;
const matrix = await buildMatrix();
const bundlers = Object.fromEntries(Object.entries(matrix.browser).map(([name, { size }]) => [name, size]));
matrix.cleanup();
console.log(`bundler matrix (packed package in a scratch app; all emitted JS), budget full ≤ ${FULL_BUDGET_GZIP_BYTES} B gzip:`);
for (const [name, size] of Object.entries(bundlers)) {
  const ratioToEsbuildApp = size.gzip / full.appBundle.minifiedGzip;
  console.log(
    `  ${name.padEnd(8)} ${String(size.raw).padStart(9)} B raw ${String(size.gzip).padStart(9)} B gzip  ` +
      `${(size.gzip <= FULL_BUDGET_GZIP_BYTES ? 'within' : 'OVER').padEnd(6)}  ${ratioToEsbuildApp.toFixed(3)}× the (c) esbuild app bundle`,
  );
}

const date = new Date().toISOString();
const markdown = `# Bundle size

Measured by \`node bench/size.mjs\`, ${date}: esbuild ${esbuild.version} app bundles
(\`--bundle --minify --platform=browser\`, default charset) of \`import x from '<package>'\`, gzip = zlib level 9.
Bytes. \`index.mjs\` (shim + glue + inlined wasm) is already minified by the build: its "raw gzip" is what the
package ships, gzipped; its "min" column is esbuild re-minifying it (charset utf8), shown for completeness.

| Variant | Cargo features | Package folder | API |
| --- | --- | --- | --- |
${results.map((r) => `| ${r.label} | ${r.key === 'functions' ? '`--no-default-features`' : r.key === 'storage' ? '`--no-default-features --features storage`' : 'default (`storage`, `database`, `container`)'} | \`${r.dir}/\` | ${r.features} |`).join('\n')}

| What | raw | raw gzip | minified | minified gzip |
| --- | ---: | ---: | ---: | ---: |
${rows.map((r) => `| ${r.label} | ${r.raw} | ${r.rawGzip} | ${r.minified ?? 'n/a'} | ${r.minifiedGzip ?? 'n/a'} |`).join('\n')}

Ratios to @cloudbase/js-sdk 3.7.0 (minified app bundle, gzip, ${baseline.minifiedGzip} B):
${results.map((r) => `- ${r.label}: **${ratios[r.key].toFixed(4)}** (${(1 / ratios[r.key]).toFixed(1)}× smaller)`).join('\n')}

Bundler matrix (the packed package installed from its tarball into scratch apps that call functions, storage and
the database; all JS each bundler emits; \`js-tests/helpers/bundler-apps.mjs\`). Vite, webpack 5 (production) and
esbuild minify; Rollup has node-resolve only (no minifier):

| Bundler | raw | gzip | ≤ ${FULL_BUDGET_GZIP_BYTES} B gzip | gzip / (c) esbuild app bundle |
| --- | ---: | ---: | --- | ---: |
${Object.entries(bundlers).map(([name, size]) => `| ${name} | ${size.raw} | ${size.gzip} | ${size.gzip <= FULL_BUDGET_GZIP_BYTES ? 'yes' : '**no**'} | ${(size.gzip / full.appBundle.minifiedGzip).toFixed(3)} |`).join('\n')}

Budget (issue 2): the skeleton (a) ≤ ${BUDGET_GZIP_BYTES} B gzip, shipped and bundled: **${verdict}**
(index.mjs ${budgetFigures.shippedGzip} B, app bundle ${budgetFigures.appBundleGzip} B).
`;
writeResults(
  'size',
  {
    date,
    esbuild: esbuild.version,
    budgetGzipBytes: BUDGET_GZIP_BYTES,
    budgetFigures,
    withinBudget,
    variants: results,
    baseline,
    ratio,
    ratios,
    bundlers,
  },
  markdown,
);
if (!withinBudget) process.exitCode = 1;
