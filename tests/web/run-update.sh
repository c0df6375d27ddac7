#!/usr/bin/env bash
# The signed-update suite alone (h4's run.sh runs every *.test.mjs here, this one included):
# the release checks in node, then the installed app against a real pushauthd in headless
# Chromium. Needs cargo, node 20+, /usr/bin/chromium and `npm ci` in this folder. Ephemeral
# loopback ports and temporary directories only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
[ -d "$HERE/node_modules/playwright-core" ] || { echo "web update: run 'npm ci' in tests/web first" >&2; exit 1; }
(cd "$ROOT" && cargo build -q -p pushauth-server --bins)
export PUSHAUTH_BIN=$CARGO_TARGET_DIR/debug
cd "$HERE"
node --test --test-concurrency=1 release-verify.test.mjs update.test.mjs
