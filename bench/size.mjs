#!/usr/bin/env node
// Size report: what an app ships for taro-cloud-wasm vs @cloudbase/js-sdk 3.7.0, measured the same way.
//   ours:      pkg/index.mjs (shim + glue + inlined wasm) and the raw pkg/taro_cloud_wasm_bg.wasm
//   both:      esbuild --bundle --minify --platform=browser of `import x from '<package>'`
// Each as raw / minified / gzip (zlib level 9). Budget: the bundle ≤ 40 KiB gzip (exit code 1 if over).
// Usage: node bench/size.mjs   (needs pkg/ built and `npm ci --prefix js-tests`)
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { JS_TESTS_DIR, PKG_DIR, kb, requireFromJsTests, writeResults } from './lib.mjs';

const BUDGET_GZIP_BYTES = 40 * 1024;
const esbuild = requireFromJsTests('esbuild');

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
      contents: `import sdk from '${specifier}';\nglobalThis.__sdk = sdk;\n`,
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

const mjs = join(PKG_DIR, 'index.mjs');
const wasm = join(PKG_DIR, 'taro_cloud_wasm_bg.wasm');
if (!existsSync(mjs)) {
  console.error('pkg/index.mjs not found: build the package first (bash scripts/build-pkg.sh)');
  process.exit(2);
}

const rows = [await measureFile('taro-cloud-wasm pkg/index.mjs', mjs, { isJs: true })];
if (existsSync(wasm)) rows.push(await measureFile('taro-cloud-wasm raw .wasm', wasm, { isJs: false }));
const oursBundle = await measureBundle('taro-cloud-wasm app bundle (esbuild)', 'taro-cloud-wasm');
const baseline = await measureBundle('@cloudbase/js-sdk 3.7.0 app bundle (esbuild)', '@cloudbase/js-sdk');
rows.push(oursBundle, baseline);

const ratio = oursBundle.minifiedGzip / baseline.minifiedGzip;
const withinBudget = oursBundle.minifiedGzip <= BUDGET_GZIP_BYTES;
const fmt = (value) => (value === null ? 'n/a' : `${value} B (${kb(value)})`);

console.log('size in bytes (gzip = zlib level 9)');
console.log(`  ${'what'.padEnd(46)} ${'raw'.padStart(9)} ${'raw.gz'.padStart(9)} ${'min'.padStart(9)} ${'min.gz'.padStart(9)}`);
const cell = (value) => String(value ?? 'n/a').padStart(9);
for (const r of rows) {
  console.log(`  ${r.label.padEnd(46)} ${cell(r.raw)} ${cell(r.rawGzip)} ${cell(r.minified)} ${cell(r.minifiedGzip)}`);
}
console.log(`ratio taro-cloud-wasm / @cloudbase/js-sdk (bundle, gzip): ${ratio.toFixed(4)} (${(1 / ratio).toFixed(1)}x smaller)`);
console.log(`budget: minified app bundle ≤ ${BUDGET_GZIP_BYTES} B gzip → ${withinBudget ? 'PASS' : 'FAIL'} (${oursBundle.minifiedGzip} B)`);

const markdown = `# Bundle size

Measured by \`node bench/size.mjs\`, ${new Date().toISOString()}: esbuild ${esbuild.version} app bundles
(\`--bundle --minify --platform=browser\`, default charset), gzip = zlib level 9. Bytes. \`pkg/index.mjs\` is already
minified by the build; its "min" column is esbuild re-minifying it (charset utf8), shown for completeness.

| What | raw | raw gzip | minified | minified gzip |
| --- | ---: | ---: | ---: | ---: |
${rows.map((r) => `| ${r.label} | ${r.raw} | ${r.rawGzip} | ${r.minified ?? 'n/a'} | ${r.minifiedGzip ?? 'n/a'} |`).join('\n')}

Ratio taro-cloud-wasm / @cloudbase/js-sdk (minified app bundle, gzip): **${ratio.toFixed(4)}** (${(1 / ratio).toFixed(1)}× smaller).
Budget: minified app bundle ≤ ${BUDGET_GZIP_BYTES} B gzip: **${withinBudget ? 'PASS' : 'FAIL'}** (${oursBundle.minifiedGzip} B).
`;
writeResults('size', { date: new Date().toISOString(), esbuild: esbuild.version, budgetGzipBytes: BUDGET_GZIP_BYTES, rows, ratio, withinBudget }, markdown);
if (!withinBudget) process.exitCode = 1;
