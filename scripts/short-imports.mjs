// Renames the wasm's imports from the glue module ("./taro_cloud_wasm_bg.js") to short names, in the wasm's
// import section and in the glue's import object alike. wasm-bindgen names them like
// `__wbg_new_787b9fb330d55d78`: the 16 hex digits are incompressible and appear twice (wasm and JS), which
// cost ~1 KB of gzip per package. (binaryen's --minify-imports only handles the `env` module.)
//
// Usage: node scripts/short-imports.mjs GLUE.js MODULE.wasm   (both rewritten in place)
import { readFileSync, writeFileSync } from 'node:fs';

const [gluePath, wasmPath] = process.argv.slice(2);
const GLUE_MODULE = './taro_cloud_wasm_bg.js';
const wasm = readFileSync(wasmPath);
let glue = readFileSync(gluePath, 'utf8');

let p = 8;
const leb = () => {
  let result = 0;
  let shift = 0;
  let byte;
  do {
    byte = wasm[p++];
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return result;
};
const encodeLeb = (value) => {
  const out = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return Buffer.from(out);
};
const name = () => {
  const length = leb();
  const text = wasm.toString('utf8', p, p + length);
  p += length;
  return text;
};
const limits = () => {
  const flags = wasm[p++];
  leb();
  if (flags & 1) leb();
};

const parts = [wasm.subarray(0, 8)];
const renamed = new Map();
let found = false;
while (p < wasm.length) {
  const sectionStart = p;
  const id = wasm[p++];
  const size = leb();
  const bodyStart = p;
  const end = p + size;
  if (id !== 2) {
    parts.push(wasm.subarray(sectionStart, end));
    p = end;
    continue;
  }
  found = true;
  const count = leb();
  const entries = [encodeLeb(count)];
  for (let i = 0; i < count; i++) {
    const module = name();
    const field = name();
    const descStart = p;
    const kind = wasm[p++];
    if (kind === 0) leb();
    else if (kind === 1) {
      p++;
      limits();
    } else if (kind === 2) limits();
    else if (kind === 3) p += 2;
    else if (kind === 4) {
      p++;
      leb();
    } else throw new Error(`short-imports: unknown import kind ${kind}`);
    let newField = field;
    if (module === GLUE_MODULE) {
      if (!renamed.has(field)) renamed.set(field, renamed.size.toString(36));
      newField = renamed.get(field);
    }
    const moduleBytes = Buffer.from(module);
    const fieldBytes = Buffer.from(newField);
    entries.push(encodeLeb(moduleBytes.length), moduleBytes, encodeLeb(fieldBytes.length), fieldBytes, wasm.subarray(descStart, p));
  }
  if (p !== end) throw new Error('short-imports: import section not fully parsed');
  void bodyStart;
  const body = Buffer.concat(entries);
  parts.push(Buffer.from([2]), encodeLeb(body.length), body);
}
if (!found) throw new Error('short-imports: no import section');

// In the glue every import is one `name: function(` property of the import object, named exactly once.
for (const [long, short] of renamed) {
  const pattern = new RegExp(`(^|[\\s{,])${long.replace(/\$/g, '\\$')}(\\s*:)`, 'gm');
  const hits = glue.match(pattern)?.length ?? 0;
  if (hits !== 1) throw new Error(`short-imports: ${long} appears ${hits} times as a key in the glue`);
  glue = glue.replace(pattern, (_, before, colon) => `${before}${JSON.stringify(short)}${colon}`);
}
writeFileSync(wasmPath, Buffer.concat(parts));
writeFileSync(gluePath, glue);
console.log(`[short-imports] ${renamed.size} imports renamed`);
