#!/usr/bin/env bash
# `make test`: install the tools if needed, then every Rust test, then the Playwright suite
# against a freshly started server (the suite starts and stops it itself).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source scripts/setup.sh test
# The same LEPTOS_* values cargo-leptos compiles the server with, so `cargo test` reuses its
# release artifacts instead of rebuilding the dependency tree.
export LEPTOS_OUTPUT_NAME=rounds
started=$(date +%s)

echo "[test] building the release (server + WASM)"
build_release

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

echo "[test] Rust tests"
# Library, binary and integration tests (the crates have no doc tests).
cargo test --release -p app -p server --lib --bins --tests 2>&1 | tee "$log"

echo "[test] Playwright suite (Debian Chromium, headless)"
(cd end2end && npx playwright test) 2>&1 | tee -a "$log"

rust=$(grep -oE 'test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
browser=$(grep -oE '^ +[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
echo "[test] all suites passed in $(( $(date +%s) - started )) s: $rust Rust tests, $browser Playwright tests"
echo "total: $(( rust + browser )) passed, 0 failed"
