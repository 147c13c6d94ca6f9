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
  const result = await esbuild.transform(source, { minify: true, format: 'esm', target: 'es2020', legalComments: 'none' });
  return Buffer.from(result.code);
}

/** esbuild bundle of an entry that imports `specifier` and keeps it alive, the way an app would. */
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

function row(label, raw, minified, gzipped) {
  return { label, raw, minified, gzip: gzipped };
}

async function measureFile(label, path, { isJs }) {
  const bytes = readFileSync(path);
  const minified = isJs ? await minify(bytes.toString('utf8')) : null;
  return row(label, bytes.length, minified ? minified.length : null, gzip(minified ?? bytes));
}

async function measureBundle(label, specifier) {
  const raw = await bundle(specifier, { minified: false });
  const minified = await bundle(specifier, { minified: true });
  return row(label, raw.length, minified.length, gzip(minified));
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

const ratio = oursBundle.gzip / baseline.gzip;
const withinBudget = oursBundle.gzip <= BUDGET_GZIP_BYTES;
const fmt = (value) => (value === null ? 'n/a' : `${value} B (${kb(value)})`);

console.log('size (gzip = zlib level 9 of the minified form)');
for (const r of rows) console.log(`  ${r.label.padEnd(46)} raw ${fmt(r.raw).padEnd(22)} min ${fmt(r.minified).padEnd(22)} gzip ${fmt(r.gzip)}`);
console.log(`ratio taro-cloud-wasm / @cloudbase/js-sdk (bundle, gzip): ${ratio.toFixed(4)} (${(1 / ratio).toFixed(1)}x smaller)`);
console.log(`budget: bundle ≤ ${BUDGET_GZIP_BYTES} B gzip → ${withinBudget ? 'PASS' : 'FAIL'} (${oursBundle.gzip} B)`);

const markdown = `# Bundle size

Measured by \`node bench/size.mjs\` (esbuild ${esbuild.version}, \`--bundle --minify --platform=browser\`, gzip = zlib level 9
of the minified form), ${new Date().toISOString()}.

| What | raw | minified | gzip |
| --- | ---: | ---: | ---: |
${rows.map((r) => `| ${r.label} | ${r.raw} | ${r.minified ?? 'n/a'} | ${r.gzip} |`).join('\n')}

Ratio taro-cloud-wasm / @cloudbase/js-sdk (app bundle, gzip): **${ratio.toFixed(4)}** (${(1 / ratio).toFixed(1)}× smaller).
Budget ≤ ${BUDGET_GZIP_BYTES} B gzip: **${withinBudget ? 'PASS' : 'FAIL'}** (${oursBundle.gzip} B).
`;
writeResults('size', { date: new Date().toISOString(), esbuild: esbuild.version, budgetGzipBytes: BUDGET_GZIP_BYTES, rows, ratio, withinBudget }, markdown);
if (!withinBudget) process.exitCode = 1;
