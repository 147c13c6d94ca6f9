#!/usr/bin/env bash
# Installs what building and testing need, skipping whatever is already there at the right version.
# Idempotent: safe to run before every build.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_PACK_VERSION=0.15.1
say() { printf '[setup] %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
command -v node >/dev/null || { echo "node >= 18 is required"; exit 1; }
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' || { echo "node >= 18 is required"; exit 1; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock.
[ -f Cargo.lock ] || cargo generate-lockfile
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  say "installing wasm-bindgen-cli $bindgen_version"
  cargo install wasm-bindgen-cli --version "$bindgen_version"
fi

if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" != "$WASM_PACK_VERSION" ]; then
  say "installing wasm-pack $WASM_PACK_VERSION"
  cargo install wasm-pack --version "$WASM_PACK_VERSION"
fi

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  say "installing Debian chromium and chromium-driver"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
fi

# npm dependencies from the lockfiles; `npm ci` only when node_modules is older than the lockfile.
# emulator/wx-server-sdk holds the real wx-server-sdk (pinned 4.0.2) that cloud-emulator gives functions
# without their own node_modules/wx-server-sdk.
for dir in . js-tests emulator/wx-server-sdk; do
  if [ -f "$dir/package-lock.json" ]; then
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      say "npm ci in $dir"
      (cd "$dir" && npm ci --no-audit --no-fund)
    fi
  fi
done
# The Taro app's and the bundler matrix's npm trees (~450 MB and ~60 MB, for js-tests/taro-app.e2e.test.mjs,
# bundlers.test.mjs and types.test.mjs): cached per hash of their package.json + lockfile under
# ~/.cache/taro-cloud-wasm/ (js-tests/helpers/cached-install.mjs); `npm install` runs only when the entry is missing.
node js-tests/helpers/cached-install.mjs taro-app js-tests/bundlers
say "ready"
