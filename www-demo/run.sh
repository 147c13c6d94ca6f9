#!/usr/bin/env bash
# Builds the demo and serves it with the emulator: www-demo/run.sh [port]  → http://127.0.0.1:<port>/ (default 8080)
# Needs pkg/ (bash scripts/build-pkg.sh) and the emulator (cargo build [--release] -p cloud-emulator).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
port="${1:-${PORT:-8080}}"
node "$root/www-demo/build.mjs" "$root/www-demo/dist"
bin="${CLOUD_EMULATOR_BIN:-}"
if [ -z "$bin" ]; then
  bin="$root/target/release/cloud-emulator"
  [ -x "$bin" ] || bin="$root/target/debug/cloud-emulator"
fi
exec "$bin" start --port "$port" --data-dir "$root/.emulator-data" \
  --functions "$root/www-demo/cloudfunctions" --hosting "$root/www-demo/dist"
