#!/usr/bin/env bash
# Builds the npm package `taro-cloud-wasm` into pkg/ (git-ignored). Idempotent; prints the sizes.
#   cargo (wasm-release profile) → wasm-bindgen --target web --weak-refs → wasm-opt -Os --converge (npm binaryen)
#   → esbuild bundles pkg-template/index.js + glue into pkg/index.mjs and pkg/index.cjs (minified), then the
#   wasm is inlined as a string of char codes 0-255 (gzips ~25% smaller than base64) through a per-build
#   byte swap that keeps it cheap when an app bundler re-escapes it as ASCII, so the package
#   instantiates synchronously (initSync) right after import.
# Honours CARGO_TARGET_DIR (default: target/).
#
# Usage: scripts/build-pkg.sh [--variant NAME] [--out DIR]      (or VARIANT=NAME, OUT=DIR)
#   no variant         the full package (cargo default features) into pkg/
#   --variant functions  the skeleton (init, Cloud, CloudID, callFunction): --no-default-features
#   --variant storage    functions + storage;  --variant database: functions + database
#   --variant full       the full package, but into the variant folder
# A variant goes to target/pkg-<variant>/ unless --out says otherwise (bench/size.mjs measures them).
set -euo pipefail
cd "$(dirname "$0")/.."

variant=${VARIANT:-}
out=${OUT:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant=${2:?--variant needs a name}; shift 2 ;;
    --variant=*) variant=${1#--variant=}; shift ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    *) echo "build-pkg.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
case "$variant" in
  "") features=() ;;
  functions) features=(--no-default-features) ;;
  storage | database) features=(--no-default-features --features "$variant") ;;
  full) features=() ;;
  *) echo "build-pkg.sh: unknown variant '$variant' (functions, storage, database, full)" >&2; exit 2 ;;
esac
out=${out:-$([ -n "$variant" ] && echo "target/pkg-$variant" || echo pkg)}
case "${out%/}" in "" | . | .. | / | src | pkg-template) echo "build-pkg.sh: refusing to replace '$out'" >&2; exit 2 ;; esac

target_dir=${CARGO_TARGET_DIR:-target}
export CARGO_TARGET_DIR=$target_dir
say() { printf '[build-pkg] %s\n' "$*"; }

if [ ! -x node_modules/.bin/esbuild ] || [ ! -x node_modules/.bin/wasm-opt ]; then
  say "npm ci (esbuild, binaryen)"
  npm ci --no-audit --no-fund
fi

say "cargo build --profile wasm-release --target wasm32-unknown-unknown ${features[*]:-} → $out/"
cargo build --lib -p taro-cloud-wasm --profile wasm-release --target wasm32-unknown-unknown ${features[@]+"${features[@]}"}
wasm="$target_dir/wasm32-unknown-unknown/wasm-release/taro_cloud_wasm.wasm"

work="$target_dir/pkg-build${variant:+-$variant}"
rm -rf "$work" "$out"
mkdir -p "$work/glue" "$out"

say "wasm-bindgen --target web --weak-refs"
wasm-bindgen --target web --weak-refs --no-typescript --out-dir "$work/glue" --out-name taro_cloud_wasm "$wasm"

say "wasm-opt -Os --converge --low-memory-unused"
# --converge repeats the passes while the module still shrinks (~0.3-0.5 KB gzip, a few seconds).
# -Os gzips smaller than -Oz here (-0.1 KB). --low-memory-unused (-0.5 KB gzip) lets binaryen fold constant
# offsets into loads/stores, assuming no address below 1024 is the result of a wrapping add: rustc links
# wasm32 stack-first (the stack pointer starts at 1 MiB, data after it), so only an overflowed stack pointer
# could wrap there, and a folded access then traps (out of bounds) instead of touching low memory.
# The features rustc enables by default for wasm32-unknown-unknown (all in every current browser and Node ≥ 18).
node_modules/.bin/wasm-opt -Os --converge --low-memory-unused --strip-debug --strip-producers \
  --enable-bulk-memory --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-reference-types --enable-multivalue \
  "$work/glue/taro_cloud_wasm_bg.wasm" -o "$work/glue/taro_cloud_wasm_bg.wasm"

# Short import names in the wasm and the glue (wasm-bindgen's carry 16 incompressible hex digits each).
node scripts/short-imports.mjs "$work/glue/taro_cloud_wasm.js" "$work/glue/taro_cloud_wasm_bg.wasm"

placeholder=__TARO_CLOUD_WASM_BYTES__
swaps_placeholder=__TARO_CLOUD_WASM_SWAPS__
printf 'export default "%s";\nexport const swaps = "%s";\n' "$placeholder" "$swaps_placeholder" >"$work/glue/wasm-bytes.js"
cp pkg-template/index.js "$work/index.js"
# The glue as a factory of fresh copies, for the shim's restart after a wasm trap.
node scripts/glue-factory.mjs "$work/glue/taro_cloud_wasm.js" "$work/glue/factory.js"

# Without a feature the shim's namespace reads of its classes (glue.Database, …) are undefined on purpose.
quiet_missing=$([ -n "$variant" ] && [ "$variant" != full ] && echo --log-override:import-is-undefined=silent || true)
# The shim's `database:` statement installs the database statics; without the feature it is dead code.
drop_labels=$([ "$variant" = functions ] || [ "$variant" = storage ] && echo --drop-labels=database || true)
say "esbuild → $out/index.mjs, $out/index.cjs"
for format in esm cjs; do
  ext=$([ "$format" = esm ] && echo mjs || echo cjs)
  node_modules/.bin/esbuild "$work/index.js" --bundle --minify --format="$format" --platform=neutral \
    --target=es2020 --legal-comments=none --log-level=warning $quiet_missing $drop_labels \
    $([ "$format" = cjs ] && echo --define:import.meta.url=undefined) --outfile="$out/index.$ext"
done

# Each wasm byte becomes one char of a string, through a per-build list of swapped byte pairs (scripts/inline-wasm.mjs).
node scripts/inline-wasm.mjs "$work/glue/taro_cloud_wasm_bg.wasm" "$placeholder" "$swaps_placeholder" "$out/index.mjs" "$out/index.cjs"

cp "$work/glue/taro_cloud_wasm_bg.wasm" "$out/taro_cloud_wasm_bg.wasm"
cp pkg-template/package.json pkg-template/index.d.ts pkg-template/register.mjs pkg-template/register.cjs pkg-template/register.d.ts pkg-template/README.md "$out/"
version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
node -e '
  const fs = require("fs");
  const [version, path] = process.argv.slice(1);
  const manifest = JSON.parse(fs.readFileSync(path, "utf8"));
  manifest.version = version;
  fs.writeFileSync(path, JSON.stringify(manifest, null, 2) + "\n");
' "$version" "$out/package.json"

size() { printf '%-32s %8d B raw %8d B gzip\n' "$1" "$(wc -c <"$1")" "$(gzip -9 -c "$1" | wc -c)"; }
say "sizes (gzip -9):"
size "$out/taro_cloud_wasm_bg.wasm"
size "$work/glue/taro_cloud_wasm.js"
size "$out/index.mjs"
size "$out/index.cjs"
say "$out/index.mjs is the whole ESM package (wasm + glue + shim); the skeleton (--variant functions) has a 40960 B gzip budget (bench/size.mjs)"
