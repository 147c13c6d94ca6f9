#!/usr/bin/env bash
# Fuzzes every target for FUZZ_SECONDS each (default 60) on stable Rust (engine/tests/fuzzing: proptest
# generators driven for a time budget, panics and >2 s inputs reported with their input), optimised
# builds, then writes bench/results/fuzz.json and fuzz.md (execs and time per target).
# A failure prints the input and the seed; FUZZ_SEED=<seed> repeats that run.
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh        (make fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
results=$(mktemp)
trap 'rm -f "$results"' EXIT
export FUZZ_SECONDS=$seconds FUZZ_RESULTS=$results
status=0
# One test binary at a time, one target at a time: each gets the machine for its whole budget.
cargo test --release -p cloud-engine --test fuzz -- --test-threads=1 --nocapture || status=$?
cargo test --release -p cloud-emulator --test fuzz_http -- --test-threads=1 --nocapture || status=$?
cargo test --release -p cloud-emulator --test fuzz_ws -- --test-threads=1 --nocapture || status=$?
node -e '
  const fs = require("fs");
  const [path, seconds, status] = process.argv.slice(1);
  const rows = fs.readFileSync(path, "utf8").trim().split("\n").filter(Boolean).map((line) => JSON.parse(line));
  const when = new Date().toISOString();
  fs.mkdirSync("bench/results", { recursive: true });
  fs.writeFileSync("bench/results/fuzz.json", JSON.stringify({ when, seconds_per_target: Number(seconds), rows }, null, 2) + "\n");
  const md = [
    "# Fuzzing (stable Rust)",
    "",
    `\`FUZZ_SECONDS=${seconds} bash scripts/fuzz.sh\` (\`make fuzz\`), ${when}, release builds, one target at a time.`,
    "Targets never panic and never take over 2 s on one input; a failure stops the target and prints the input.",
    "",
    "| target | execs | seconds | execs/s | result |",
    "|---|---:|---:|---:|---|",
    ...rows.map((r) => `| ${r.target} | ${r.execs.toLocaleString("en")} | ${r.seconds} | ${Math.round(r.execs / r.seconds).toLocaleString("en")} | ${r.failed ? "FAILED (seed " + r.seed + ")" : "0 panics, 0 hangs"} |`),
    "",
    `Total: ${rows.reduce((n, r) => n + r.execs, 0).toLocaleString("en")} execs in ${rows.reduce((n, r) => n + r.seconds, 0).toFixed(0)} s.`,
  ].join("\n");
  fs.writeFileSync("bench/results/fuzz.md", md + "\n");
  console.log(md);
' "$results" "$seconds" "$status"
exit "$status"
