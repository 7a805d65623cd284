#!/usr/bin/env bash
# Installs what building, running and testing Rounds needs, and nothing twice.
# Usage: scripts/setup.sh run|test   (sourced by run.sh and test.sh; safe to run by hand)
#
# Everything comes from crates.io, npm or Debian: cargo-leptos would otherwise download
# wasm-bindgen, wasm-opt and sass from GitHub, which these machines cannot reach.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="${1:-run}"
CARGO_LEPTOS_VERSION="0.3.10"
BINARYEN_MIN_VERSION=120

# rustup installs cargo in ~/.cargo/bin, which a non-login shell (CI) may not have on PATH.
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required but missing: $2" >&2; exit 1; }
}
need_cmd cargo "install Rust with rustup"
need_cmd rustup "install Rust with rustup"
need_cmd npm "install Node.js and npm (Debian: apt-get install nodejs npm)"

# 1. The WASM target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target (the browser half of the app compiles to WASM)"
  rustup target add wasm32-unknown-unknown
fi

# 2. cargo-leptos, pinned: 0.3.11 needs a newer rustc than these machines have.
if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (builds server + WASM together; about 13 minutes once)"
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
fi

# 3. wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock (they must match).
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$ROOT/Cargo.lock")"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (must equal the wasm-bindgen crate; about 2 minutes once)"
  # Not --locked: one of its pinned dependencies is no longer in the registry.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# 4. wasm-opt from npm's binaryen (Debian's binaryen 108 emits WASM that fails to hydrate).
TOOLING="$ROOT/scripts/tooling"
if [ ! -x "$TOOLING/node_modules/.bin/wasm-opt" ] || ! cmp -s "$TOOLING/package-lock.json" "$TOOLING/node_modules/.package-lock.json.installed" 2>/dev/null; then
  say "installing binaryen's wasm-opt from npm (shrinks the WASM bundle)"
  (cd "$TOOLING" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$TOOLING/package-lock.json" "$TOOLING/node_modules/.package-lock.json.installed"
fi
export PATH="$TOOLING/node_modules/.bin:$HOME/.cargo/bin:$PATH"
WASM_OPT_VERSION="$(wasm-opt --version | grep -o 'version [0-9]*' | awk '{print $2}')"
if [ "${WASM_OPT_VERSION:-0}" -lt "$BINARYEN_MIN_VERSION" ]; then
  echo "setup: wasm-opt on PATH is version ${WASM_OPT_VERSION:-unknown} ($(command -v wasm-opt)); need >= $BINARYEN_MIN_VERSION" >&2
  exit 1
fi

if [ "$MODE" = "test" ]; then
  # 5. Debian's Chromium for Playwright (Playwright's own browser download cannot work here).
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's chromium for the browser tests"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
  # 6. PostgreSQL's server binaries: the api_pg test suite starts its own throwaway cluster
  #    with initdb + pg_ctl (as the `postgres` user the package creates, when run as root).
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    say "installing Debian's postgresql (server binaries for the PostgreSQL and two-node tests)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  fi
  # 7. The Playwright suite's npm packages.
  E2E="$ROOT/end2end"
  if [ ! -d "$E2E/node_modules/@playwright/test" ] || ! cmp -s "$E2E/package-lock.json" "$E2E/node_modules/.package-lock.json.installed" 2>/dev/null; then
    say "installing the Playwright suite's npm packages (no browser download)"
    (cd "$E2E" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    cp "$E2E/package-lock.json" "$E2E/node_modules/.package-lock.json.installed"
  fi
fi
say "tools ready: cargo-leptos $CARGO_LEPTOS_VERSION, wasm-bindgen $WASM_BINDGEN_VERSION, wasm-opt $WASM_OPT_VERSION"

# The release build both commands run: server + WASM under content-hashed names, each static file
# precompressed beside itself (.br by cargo-leptos; .gz again by Debian's gzip -9, 15 % smaller
# than cargo-leptos's own gzip), for the server's ServeDir to send by Accept-Encoding.
build_release() {
  cargo leptos build --release --precompress
  find "$ROOT/target/site" -type f ! -name '*.gz' ! -name '*.br' -exec gzip -9 -n -k -f {} +
}
