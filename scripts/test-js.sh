#!/usr/bin/env bash
# Node suites (js-tests/) against the built package and per-file emulators; includes the official-SDK
# conformance run and the headless-Chromium E2E of the demo. Needs pkg/ and target/debug/cloud-emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d js-tests/node_modules ] || npm ci --prefix js-tests --no-audit --no-fund
npm test --prefix js-tests
