// Inlines the wasm into the bundled package files as a JS string, one char per byte, through a byte→char
// substitution chosen per build: the most frequent bytes become the ASCII chars that cost one byte everywhere
// (in the shipped UTF-8 file and after an app bundler re-escapes the file as ASCII, esbuild's default), the
// rarest bytes become chars 0x80-0xFF (2 bytes in UTF-8, `\xNN` in ASCII). A byte-for-byte substitution keeps
// gzip's repeats intact. With the identity mapping ~8.7% of the bytes needed `\xNN` in an esbuild app bundle
// (+4.1 KB gzip on the full package); with this one ~3.5% do. The shim decodes with the 256-char table
// (pkg-template/index.js `decode`).
//
// Usage: node scripts/inline-wasm.mjs MODULE.wasm BYTES_PLACEHOLDER TABLE_PLACEHOLDER OUT.mjs OUT.cjs ...
import { readFileSync, writeFileSync } from 'node:fs';

const [wasmPath, bytesPlaceholder, tablePlaceholder, ...outputs] = process.argv.slice(2);
const wasm = readFileSync(wasmPath);

// Chars by cost: those one byte in both forms first, then those some form escapes, then the non-ASCII ones.
// esbuild (charset ascii) escapes \0 \a \b \v \f \r ESC \\ and the quote it picks; UTF-8 JSON-ish literals
// here escape " \\ LF CR.
const ESCAPED_SOMEWHERE = [0, 7, 8, 10, 11, 12, 13, 27, 34, 36, 39, 92, 96];
const chars = [];
for (let c = 1; c < 127; c++) if (!ESCAPED_SOMEWHERE.includes(c)) chars.push(c);
chars.push(...ESCAPED_SOMEWHERE);
for (let c = 127; c < 256; c++) chars.push(c);

const counts = new Array(256).fill(0);
for (const byte of wasm) counts[byte]++;
const byFrequency = [...Array(256).keys()].sort((a, b) => counts[b] - counts[a] || a - b);
const charOf = new Array(256);
const byteOf = new Array(256);
byFrequency.forEach((byte, rank) => {
  charOf[byte] = chars[rank];
  byteOf[chars[rank]] = byte;
});

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
const tableLiteral = literal(byteOf);
for (const output of outputs) {
  let source = readFileSync(output, 'utf8');
  for (const [placeholder, value] of [
    [bytesPlaceholder, bytesLiteral],
    [tablePlaceholder, tableLiteral],
  ]) {
    const parts = source.split(JSON.stringify(placeholder));
    if (parts.length !== 2) throw new Error(`${output}: expected ${placeholder} exactly once`);
    source = parts[0] + value + parts[1];
  }
  writeFileSync(output, source, 'utf8');
}
