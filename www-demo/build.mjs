#!/usr/bin/env node
// Assembles the hosted demo: www-demo/src/* plus the built npm package (pkg/) copied to
// <out>/taro-cloud-wasm/, which the page's import map points at. Usage: node www-demo/build.mjs [outDir]
// (default www-demo/dist). Build the package first: bash scripts/build-pkg.sh
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const demoDir = dirname(fileURLToPath(import.meta.url));
const pkgDir = resolve(demoDir, '..', 'pkg');

export function buildDemo(outDir = join(demoDir, 'dist')) {
  if (!existsSync(join(pkgDir, 'index.mjs'))) {
    throw new Error(`${pkgDir}/index.mjs not found: build the package first (bash scripts/build-pkg.sh)`);
  }
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  cpSync(join(demoDir, 'src'), outDir, { recursive: true });
  cpSync(pkgDir, join(outDir, 'taro-cloud-wasm'), {
    recursive: true,
    filter: (source) => !source.includes('node_modules'),
  });
  return outDir;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = buildDemo(process.argv[2] ? resolve(process.argv[2]) : undefined);
  console.log(`demo assembled in ${out}`);
}
