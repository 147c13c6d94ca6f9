// Inlines the wasm into the bundled package files as a JS string, one char per byte, through a byte→char
// substitution chosen per build: frequent bytes become ASCII chars that cost one byte (in the shipped UTF-8
// file and after an app bundler re-escapes the file as ASCII, esbuild's default), rare bytes take the chars
// that need escaping (0x80-0xFF: 2 bytes in UTF-8, `\xNN` in ASCII). A byte-for-byte substitution keeps
// gzip's repeats intact. With the identity mapping ~8.7% of the bytes needed `\xNN` in an esbuild app bundle
// (+4.1 KB gzip on the full package); with ~40 swapped pairs ~3.5% do. The shim decodes with the list of
// pairs (pkg-template/index.js `decode`).
//
// Usage: node scripts/inline-wasm.mjs MODULE.wasm BYTES_PLACEHOLDER SWAPS_PLACEHOLDER OUT.mjs OUT.cjs ...
import { readFileSync, writeFileSync } from 'node:fs';

const [wasmPath, bytesPlaceholder, swapsPlaceholder, ...outputs] = process.argv.slice(2);
const wasm = readFileSync(wasmPath);

// What a char costs in an app bundle esbuild re-escapes as ASCII (its default charset, in a template literal):
// \0 \a \b \v \f \r ESC \\ and ` take 2 bytes, chars from 0x7F on 4 (`\xNN`), the rest 1.
const cost = (code) => (code >= 0x7f ? 4 : [0, 7, 8, 11, 12, 13, 27, 92, 96].includes(code) ? 2 : 1);

// Swap the most frequent costly bytes with the rarest cheap ones while that pays: a short list of pairs
// (~40) instead of a 256-entry table, and an involution, so one list encodes and decodes.
const counts = new Array(256).fill(0);
for (const byte of wasm) counts[byte]++;
const codes = [...Array(256).keys()];
const costly = codes.filter((code) => cost(code) > 1).sort((a, b) => counts[b] - counts[a] || a - b);
const cheap = codes.filter((code) => cost(code) === 1).sort((a, b) => counts[a] - counts[b] || a - b);
const charOf = codes.slice();
const swaps = [];
for (let i = 0; i < Math.min(costly.length, cheap.length); i++) {
  const [dear, free] = [costly[i], cheap[i]];
  const gain = (counts[dear] - counts[free]) * (cost(dear) - cost(free));
  if (gain <= 0) break;
  charOf[dear] = free;
  charOf[free] = dear;
  swaps.push(dear, free);
}

// A double-quoted literal of chars 0-255: only ", \\, LF and CR need escaping.
function literal(codes) {
  let text = '"';
  for (const code of codes) {
    if (code === 0x22) text += '\\"';
    else if (code === 0x5c) text += '\\\\';
    else if (code === 0x0a) text += '\\n';
    else if (code === 0x0d) text += '\\r';
    else text += String.fromCharCode(code);
  }
  return text + '"';
}

const bytesLiteral = literal(Array.from(wasm, (byte) => charOf[byte]));
const swapsLiteral = literal(swaps);
for (const output of outputs) {
  let source = readFileSync(output, 'utf8');
  for (const [placeholder, value] of [
    [bytesPlaceholder, bytesLiteral],
    [swapsPlaceholder, swapsLiteral],
  ]) {
    const parts = source.split(JSON.stringify(placeholder));
    if (parts.length !== 2) throw new Error(`${output}: expected ${placeholder} exactly once`);
    source = parts[0] + value + parts[1];
  }
  writeFileSync(output, source, 'utf8');
}
