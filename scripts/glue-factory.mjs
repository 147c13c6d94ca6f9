// Rewrites wasm-bindgen's `--target web` glue (one ES module with module-level state) into a factory,
// `export function createGlue()`, that returns a fresh copy of the glue — its own `wasm` exports,
// FinalizationRegistries and caches — each time it is called. The shim (pkg-template/index.js) uses it
// to start a new wasm instance after a trap (a WebAssembly.RuntimeError): the trapped instance may have
// corrupted its memory, and objects of the old copy must never free into the new one.
//
// `retire(makeError)` in a copy turns its `wasm` into exports that throw a clear error (and finalizers that do
// nothing), so objects made before the restart fail loudly instead of touching a broken instance.
//
// Usage: node scripts/glue-factory.mjs GLUE.js OUT.js
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output] = process.argv.slice(2);
const source = readFileSync(input, 'utf8');
const imports = [];
const names = new Set();
const body = [];
// The asynchronous init path (`__wbg_init` and its helpers) is never used (the shim instantiates
// synchronously); esbuild cannot drop unused functions inside the factory, so they are left out here.
const UNUSED = /^(async function (__wbg_load|__wbg_init|__wbg_init_once)\(|let __wbg_init_promise;)/;
let skipping = false;
for (const line of source.split('\n')) {
  if (skipping) {
    if (line === '}') skipping = false;
    continue;
  }
  if (UNUSED.test(line)) {
    skipping = line.endsWith('{');
    continue;
  }
  if (/^import /.test(line)) {
    imports.push(line);
    continue;
  }
  const reexport = /^export \{([^}]*)\};?$/.exec(line);
  if (reexport) {
    for (const part of reexport[1].split(',')) {
      const [local, exported] = part.trim().split(/\s+as\s+/);
      if (local && (exported ?? local) !== 'default') names.add(local);
    }
    continue;
  }
  const declaration = /^export (class|function|const|let) ([A-Za-z_$][\w$]*)/.exec(line);
  if (declaration) {
    names.add(declaration[2]);
    body.push(line.slice('export '.length));
    continue;
  }
  if (/^export /.test(line)) throw new Error(`glue-factory: unexpected export: ${line}`);
  body.push(line);
}
for (const required of ['initSync', 'CloudHandle']) {
  if (!names.has(required)) throw new Error(`glue-factory: the glue exports no ${required}`);
}
if (!/\blet wasmModule, wasmInstance, wasm;/.test(source)) {
  throw new Error('glue-factory: the glue no longer declares `let wasmModule, wasmInstance, wasm;`');
}

const retire = `
function retire(makeError) {
  const fail = () => { throw makeError(); };
  // Finalizers of old objects (\`__wbg_*_free\`, the closure destructor) must not throw from a GC callback.
  const quiet = (name) => /_free$/.test(name) || /^__wbindgen_export\\d+$/.test(name);
  wasm = new Proxy({}, { get: (_, name) => (typeof name === 'string' && quiet(name) ? () => {} : fail) });
}`;

writeFileSync(
  output,
  `${imports.join('\n')}\n\nexport function createGlue() {\n${body.join('\n')}\n${retire}\nreturn { ${[
    ...names,
    'retire',
  ].join(', ')} };\n}\n`,
);
