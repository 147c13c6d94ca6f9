#!/usr/bin/env bash
# Builds the demo and serves it with the emulator: http://127.0.0.1:${PORT:-8080}/
# Needs pkg/ (bash scripts/build-pkg.sh) and the emulator (cargo build -p cloud-emulator).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
node "$root/www-demo/build.mjs" "$root/www-demo/dist"
bin="${CLOUD_EMULATOR_BIN:-$root/target/debug/cloud-emulator}"
exec "$bin" start --port "${PORT:-8080}" --data-dir "$root/.emulator-data" \
  --functions "$root/www-demo/cloudfunctions" --hosting "$root/www-demo/dist"
