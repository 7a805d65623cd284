#!/usr/bin/env bash
# `make run`: install the tools if needed, build the release, run Rounds on http://127.0.0.1:3000
# with its embedded SQLite database (created, migrated and seeded with demo data on first start).
#
# The build is skipped when none of its inputs changed since the last one that succeeded, so a
# second `make run` starts at once (cargo-leptos would re-run wasm-bindgen, wasm-opt and the
# precompression, ~1 minute, on every build).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source scripts/setup.sh run

STAMP="$ROOT/target/.rounds-build"
OUTPUTS=(target/release/rounds target/release/hash.txt target/site/pkg)

# Every input of the build (path, size, modification time), the toolchain and the command:
# a file added, changed or removed anywhere in them changes this.
fingerprint() {
  {
    declare -f build_release
    rustc --version
    cargo leptos --version
    find Cargo.toml Cargo.lock app frontend server/Cargo.toml server/src server/migrations \
      style public -printf '%p %s %T@\n' | LC_ALL=C sort
  } | sha256sum | cut -d' ' -f1
}

built() {
  local output
  for output in "${OUTPUTS[@]}"; do
    [ -e "$output" ] || return 1
  done
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ]
}

if built; then
  echo "[run] nothing changed since the last build: starting it"
else
  echo "[run] building the release (server + WASM); the first build takes several minutes"
  rm -f "$STAMP"
  before="$(fingerprint)"
  build_release
  # A file edited during the build leaves the stamp unwritten, so the next start builds again.
  [ "$(fingerprint)" = "$before" ] && echo "$before" >"$STAMP"
fi
export ROUNDS_SITE_ROOT="${ROUNDS_SITE_ROOT:-$ROOT/target/site}"
export ROUNDS_DATABASE_URL="${ROUNDS_DATABASE_URL:-sqlite://$ROOT/data/rounds.db}"
exec "$ROOT/target/release/rounds" "$@"
