# The two commands of the README:
#   make demo   builds everything and starts cloud-emulator serving the demo app on http://127.0.0.1:8787
#   make test   runs every test
# Each installs what is missing first (scripts/setup.sh, idempotent).

EMULATOR_DEBUG := target/debug/cloud-emulator
EMULATOR_RELEASE := target/release/cloud-emulator
DEMO_PORT ?= 8787

.PHONY: setup pkg emulator emulator-release demo test test-rust test-wasm test-js lint bench fuzz

setup:
	bash scripts/setup.sh

pkg: setup
	bash scripts/build-pkg.sh

emulator:
	cargo build -p cloud-emulator

emulator-release:
	cargo build --release -p cloud-emulator

demo: pkg emulator-release
	bash scripts/run-demo.sh $(DEMO_PORT)

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p taro-cloud-wasm --all-targets --no-default-features --target wasm32-unknown-unknown -- -D warnings

test-rust: setup
	cargo test --workspace

test-wasm: pkg emulator
	bash scripts/test-wasm.sh

test-js: pkg emulator
	bash scripts/test-js.sh

test: setup lint test-rust test-wasm test-js

bench: pkg emulator-release
	bash scripts/bench.sh

# Every fuzz target for FUZZ_SECONDS each (default 600); results in bench/results/fuzz.md. The 1 s smoke
# run of each target is part of `cargo test` (test-rust).
fuzz: setup
	FUZZ_SECONDS=$${FUZZ_SECONDS:-600} bash scripts/fuzz.sh
