#!/usr/bin/env bash
# `make run`: install the tools if needed, build the release, run Rounds on http://127.0.0.1:3000
# with its embedded SQLite database (created, migrated and seeded with demo data on first start).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source scripts/setup.sh run
echo "[run] building the release (server + WASM); the first build takes several minutes"
cargo leptos build --release
export ROUNDS_SITE_ROOT="${ROUNDS_SITE_ROOT:-$ROOT/target/site}"
export ROUNDS_DATABASE_URL="${ROUNDS_DATABASE_URL:-sqlite://$ROOT/data/rounds.db}"
exec "$ROOT/target/release/rounds" "$@"
