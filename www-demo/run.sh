#!/usr/bin/env bash
# Builds the demo and serves it with the emulator: www-demo/run.sh [port]  → http://127.0.0.1:<port>/ (default 8080)
# Needs pkg/ (bash scripts/build-pkg.sh) and the emulator (cargo build [--release] -p cloud-emulator).
# DEMO_DATA_DIR (default .emulator-data) and DEMO_DIST (default www-demo/dist) move the state and the assembled
# site elsewhere; js-tests/demo.e2e.test.mjs runs this very script that way, so the test and `make demo` start
# the emulator with the same flags.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
port="${1:-${PORT:-8080}}"
data_dir="${DEMO_DATA_DIR:-$root/.emulator-data}"
dist="${DEMO_DIST:-$root/www-demo/dist}"
node "$root/www-demo/build.mjs" "$dist"
bin="${CLOUD_EMULATOR_BIN:-}"
if [ -z "$bin" ]; then
  bin="$root/target/release/cloud-emulator"
  [ -x "$bin" ] || bin="$root/target/debug/cloud-emulator"
fi
# --env pins the env the page uses (app.js) so --import can create collection `todos` (seed/database/) with
# wx's default rule: each user reads and writes only their own documents.
exec "$bin" start --port "$port" --data-dir "$data_dir" --env demo-env --import "$root/www-demo/seed" \
  --functions "$root/www-demo/cloudfunctions" --hosting "$dist"
