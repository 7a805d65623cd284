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
cargo leptos build --release

echo "[test] Rust tests"
cargo test --release -p app -p server

echo "[test] Playwright suite (Debian Chromium, headless)"
(cd end2end && npx playwright test)

echo "[test] all suites passed in $(( $(date +%s) - started )) s"
