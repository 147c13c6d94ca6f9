#!/usr/bin/env bash
# Size report and benchmarks; each prints ratios against a baseline measured in the same run and writes
# bench/results/. Needs pkg/ and target/release/cloud-emulator (make bench builds both).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d js-tests/node_modules ] || npm ci --prefix js-tests --no-audit --no-fund
node bench/size.mjs
node bench/overhead.mjs
node bench/throughput.mjs
node bench/storage.mjs
node bench/db.mjs
node bench/db-encode.mjs
node bench/db-concurrency.mjs
node bench/load.mjs
