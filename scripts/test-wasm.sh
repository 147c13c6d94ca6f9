#!/usr/bin/env bash
# The SDK's browser tests: wasm-pack test in headless Chromium against a cloud-emulator started for the run
# (tests/browser.rs reads its URL at build time). Needs target/debug/cloud-emulator (make emulator).
set -euo pipefail
cd "$(dirname "$0")/.."
emulator=${CLOUD_EMULATOR_BIN:-${CARGO_TARGET_DIR:-target}/debug/cloud-emulator}
[ -x "$emulator" ] || { echo "missing $emulator: run cargo build -p cloud-emulator" >&2; exit 1; }
data_dir=$(mktemp -d)
trap 'rm -rf "$data_dir"' EXIT
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-120}
"$emulator" exec --data-dir "$data_dir" --functions tests/functions -- \
  wasm-pack test --headless --chrome --test browser
