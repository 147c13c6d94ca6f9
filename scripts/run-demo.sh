#!/usr/bin/env bash
# Serves the demo app (www-demo/, with the built package) from cloud-emulator: scripts/run-demo.sh [port]
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash www-demo/run.sh "${1:-8787}"
