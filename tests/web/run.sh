#!/usr/bin/env bash
# The web authenticator's suite: its signing module against proto/test-vectors.json (node), and
# the app served by a real pushauthd (built from this tree, started by the tests on ephemeral
# loopback ports with temporary data directories) driven by Debian's headless Chromium through
# playwright-core. Installs nothing: needs cargo, node 20+, /usr/bin/chromium and `npm ci` run
# in this folder (scripts/setup does it). Writes /etc nothing and binds no fixed port, so it may
# run beside the other suites.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

command -v node >/dev/null || { echo "web e2e: node is missing" >&2; exit 1; }
command -v cargo >/dev/null || { echo "web e2e: cargo is missing" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "web e2e: /usr/bin/chromium is missing (apt-get install chromium)" >&2; exit 1; }
[ -d "$HERE/node_modules/playwright-core" ] || { echo "web e2e: run 'npm ci' in tests/web first" >&2; exit 1; }

echo "== building pushauthd and pushauth-device"
(cd "$ROOT" && cargo build -q -p pushauth-server -p pushauth-device --bins)

export PUSHAUTH_BIN=$CARGO_TARGET_DIR/debug
export E2E_ARTIFACTS=$HERE/artifacts
rm -rf "$E2E_ARTIFACTS"
mkdir -p "$E2E_ARTIFACTS"
cd "$HERE"
# One file at a time: each starts its own Chromium and pushauthd, and the machine is small.
node --test --test-concurrency=1 ./*.test.mjs
echo "web e2e: screenshots in $E2E_ARTIFACTS"
