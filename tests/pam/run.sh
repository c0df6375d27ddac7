#!/bin/sh
# Real-PAM suite for pam_push (pamtester, sshd, sudo). Run as root. Installs nothing: needs
# openssh-server, openssh-client, sudo, pamtester, libpam0g-dev (apt) and pytest + pexpect (pip).
# Builds the workspace binaries and the module, then runs pytest with PUSHAUTH_TARGET_DIR set.
set -eu
cd "$(dirname "$0")/../.."
cargo build -p pushauth-server -p pushauth-device -p pam_push -p pushauth-approve
target="${CARGO_TARGET_DIR:-$PWD/target}/debug"
export PUSHAUTH_TARGET_DIR="$target"
export PYTHONDONTWRITEBYTECODE=1
exec python3 -m pytest -p no:cacheprovider -v tests/pam "$@"
