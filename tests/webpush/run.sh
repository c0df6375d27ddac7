#!/bin/sh
# Web Push suite (issue 11): the built pushauthd and CLI device against a push service written in
# the test on loopback. Needs no root; uses ephemeral loopback ports and temporary directories.
# Needs pytest, cryptography, pyjwt and http_ece (pip: tests/webpush/requirements.txt).
set -eu
cd "$(dirname "$0")/../.."
cargo build -p pushauth-server -p pushauth-device
target="${CARGO_TARGET_DIR:-$PWD/target}/debug"
export PUSHAUTH_TARGET_DIR="$target"
export PYTHONDONTWRITEBYTECODE=1
exec python3 -m pytest -p no:cacheprovider -v tests/webpush "$@"
