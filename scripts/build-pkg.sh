#!/usr/bin/env bash
# Builds the npm package `taro-cloud-wasm` into pkg/ (git-ignored). Idempotent; prints the sizes.
#   cargo (wasm-release profile) → wasm-bindgen --target web --weak-refs → wasm-opt -Oz (npm binaryen)
#   → esbuild bundles pkg-template/index.js + glue into pkg/index.mjs and pkg/index.cjs (minified), then the
#   wasm is inlined as a string of char codes 0-255 (gzips ~25% smaller than base64), so the package
#   instantiates synchronously (initSync) right after import.
# Honours CARGO_TARGET_DIR (default: target/).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
export CARGO_TARGET_DIR=$target_dir
say() { printf '[build-pkg] %s\n' "$*"; }

if [ ! -x node_modules/.bin/esbuild ] || [ ! -x node_modules/.bin/wasm-opt ]; then
  say "npm ci (esbuild, binaryen)"
  npm ci --no-audit --no-fund
fi

say "cargo build --profile wasm-release --target wasm32-unknown-unknown"
cargo build --lib -p taro-cloud-wasm --profile wasm-release --target wasm32-unknown-unknown
wasm="$target_dir/wasm32-unknown-unknown/wasm-release/taro_cloud_wasm.wasm"

work="$target_dir/pkg-build"
rm -rf "$work" pkg
mkdir -p "$work/glue" pkg

say "wasm-bindgen --target web --weak-refs"
wasm-bindgen --target web --weak-refs --no-typescript --out-dir "$work/glue" --out-name taro_cloud_wasm "$wasm"

say "wasm-opt -Oz"
# The features rustc enables by default for wasm32-unknown-unknown (all in every current browser and Node ≥ 18).
node_modules/.bin/wasm-opt -Oz --strip-debug --strip-producers \
  --enable-bulk-memory --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-reference-types --enable-multivalue \
  "$work/glue/taro_cloud_wasm_bg.wasm" -o "$work/glue/taro_cloud_wasm_bg.wasm"

placeholder=__TARO_CLOUD_WASM_BYTES__
echo "export default \"$placeholder\";" >"$work/glue/wasm-bytes.js"
cp pkg-template/index.js "$work/index.js"

say "esbuild → pkg/index.mjs, pkg/index.cjs"
for format in esm cjs; do
  ext=$([ "$format" = esm ] && echo mjs || echo cjs)
  node_modules/.bin/esbuild "$work/index.js" --bundle --minify --format="$format" --platform=neutral \
    --target=es2020 --legal-comments=none --log-level=warning $([ "$format" = cjs ] && echo --define:import.meta.url=undefined) --outfile="pkg/index.$ext"
done

# Each wasm byte becomes the char with that code; only ", \\, LF and CR need escaping in a JS string.
node -e '
  const fs = require("fs");
  const [wasmPath, placeholder, ...outputs] = process.argv.slice(1);
  let literal = "\"";
  for (const byte of fs.readFileSync(wasmPath)) {
    if (byte === 0x22) literal += "\\\"";
    else if (byte === 0x5c) literal += "\\\\";
    else if (byte === 0x0a) literal += "\\n";
    else if (byte === 0x0d) literal += "\\r";
    else literal += String.fromCharCode(byte);
  }
  literal += "\"";
  for (const output of outputs) {
    const parts = fs.readFileSync(output, "utf8").split(JSON.stringify(placeholder));
    if (parts.length !== 2) throw new Error(output + ": expected the wasm placeholder exactly once");
    fs.writeFileSync(output, parts[0] + literal + parts[1], "utf8");
  }
' "$work/glue/taro_cloud_wasm_bg.wasm" "$placeholder" pkg/index.mjs pkg/index.cjs

cp "$work/glue/taro_cloud_wasm_bg.wasm" pkg/taro_cloud_wasm_bg.wasm
cp pkg-template/package.json pkg-template/index.d.ts pkg-template/README.md pkg/
version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
node -e '
  const fs = require("fs");
  const manifest = JSON.parse(fs.readFileSync("pkg/package.json", "utf8"));
  manifest.version = process.argv[1];
  fs.writeFileSync("pkg/package.json", JSON.stringify(manifest, null, 2) + "\n");
' "$version"

size() { printf '%-32s %8d B raw %8d B gzip\n' "$1" "$(wc -c <"$1")" "$(gzip -9 -c "$1" | wc -c)"; }
say "sizes (gzip -9):"
size pkg/taro_cloud_wasm_bg.wasm
size "$work/glue/taro_cloud_wasm.js"
size pkg/index.mjs
size pkg/index.cjs
say "pkg/index.mjs is the whole ESM package (wasm + glue + shim); budget 40960 B gzip"
