#!/usr/bin/env bash
# Debian packages suite (issue 5). Run as root on Debian 12 with the apt packages .ci/run
# installs (debhelper, dpkg-dev, fakeroot, lintian, libsqlite3-dev, plus the PAM suite's
# openssh-server, pamtester, pytest, pexpect) and rustup's cargo.
#
# 1. builds the packages with dpkg-buildpackage -us -uc -b from a copy of the tree;
# 2. lintian: fails on any error or warning not overridden (with a reason) in debian/;
# 3. installs them with `apt-get install ./*.deb` and checks files, modes, user, state dir;
#    pushauth-approve: binary, man page, example config (nothing in /etc), --help, and exit 2
#    naming the file for a missing config;
# 4. enables the pam-auth-update profile and disables it again (common-auth restored);
# 5. systemd-analyze verify the unit;
# 6. starts the installed pushauthd with the unit's ExecStart, as its User, without systemd;
#    sets up /etc/pam_push.conf and /etc/pushauth/api-key as README documents; configures and
#    starts pushauth-idp-sidecar the same way and checks it reaches pushauthd with its key;
#    runs pushauth-approve as an unprivileged user with the packaged example config (server and
#    key file filled in), approved through the installed pushauth-device with its key pinned;
# 7. runs tests/pam/test_sshd.py against the installed pam_push.so, /etc/pam_push.conf,
#    pushauthd and pushauth-device (approved login gets a shell, denied and cancelled do not),
#    and tests/pam/test_services_profile.py: with the profile enabled, sudo, sudo-i, su, login
#    and sshd (documented set-up) all reach pam_push after the password (issue 9 item 16);
# 8. remove keeps /etc config and /var/lib state; purge deletes them.
#
# The machine is restored afterwards (packages purged, PAM files and /etc/pushauth put back),
# also on failure, and a run may be repeated. CARGO_TARGET_DIR is honoured (default
# <repo>/target/deb, reused between runs); PUSHAUTH_DEB_WORK is the build folder.
set -euo pipefail
umask 022
cd "$(dirname "$0")/../.."
REPO=$PWD
WORK=${PUSHAUTH_DEB_WORK:-/tmp/pushauth-deb}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target/deb}"
export PATH="$HOME/.cargo/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1
PKGS=(libpam-push pushauthd pushauth-device pushauth-approve pushauth-idp-sidecar pushauth-keycloak)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
MODULE=/lib/$MULTIARCH/security/pam_push.so
UNIT=/lib/systemd/system/pushauthd.service
SIDECAR_UNIT=/lib/systemd/system/pushauth-idp-sidecar.service
SIDECAR_CONFIG=/etc/pushauth-idp-sidecar/sidecar.toml
SERVER_CONFIG=/etc/pushauthd/pushauthd.toml
APPROVE=/usr/bin/pushauth-approve
APPROVE_EXAMPLE=/usr/share/doc/pushauth-approve/examples/approve.toml
BACKUP=$WORK/backup

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/deb/run.sh must run as root (it installs packages and starts sshd)" >&2
  exit 2
fi

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
ok() { echo "ok: $*"; }
# check DESCRIPTION COMMAND...: runs the command, fails the suite if it fails.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
mode_owner() { stat -c '%a %U %G' "$1"; }

installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qv '^not-installed$'; }
purge_all() {
  local present=()
  for p in "${PKGS[@]}"; do installed "$p" && present+=("$p"); done
  if [ ${#present[@]} -gt 0 ]; then
    apt-get purge -y -q "${present[@]}" >/dev/null
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
http_status() { # URL -> HTTP status of a GET, or 000
  python3 - "$1" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}
pids=()
# start_like_unit UNIT LOG [ARGS...]: the unit's ExecStart (plus ARGS) as its User and Group,
# with the unit's UMask and / as working folder, in the background, as systemd would start it
# (only the sandbox is missing: no systemd runs here). Adds the pid to $pids.
start_like_unit() {
  local unit=$1 log=$2 cmd user group
  shift 2
  cmd=$(sed -n 's/^ExecStart=//p' "$unit")
  user=$(sed -n 's/^User=//p' "$unit")
  group=$(sed -n 's/^Group=//p' "$unit")
  [ -n "$cmd" ] && [ -n "$user" ] && [ -n "$group" ] || fail "cannot read ExecStart/User/Group from $unit"
  grep -qx 'UMask=0077' "$unit" || fail "$unit: UMask changed, update start_like_unit"
  # shellcheck disable=SC2086  # ExecStart is split into words, as systemd does
  (cd / && umask 0077 && exec setpriv --reuid="$user" --regid="$group" --init-groups \
    --no-new-privs -- $cmd "$@") >"$log" 2>&1 &
  pids+=($!)
}
# wait_up URL LOG: waits for 200 from URL while the last started process lives.
wait_up() {
  local pid=${pids[-1]}
  for _ in $(seq 100); do
    [ "$(http_status "$1")" = 200 ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "process for $1 exited: $(cat "$2")"
    sleep 0.2
  done
  fail "$1 did not come up: $(cat "$2")"
}
stop_servers() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}

# What this run changes outside the packages: the PAM common-* files and pam-auth-update's
# state (step 4), and /etc/pushauth (the API key written as README says).
backup_system() {
  rm -rf "$BACKUP"
  mkdir -p "$BACKUP/pam.d" "$BACKUP/varlibpam"
  cp -a /etc/pam.d/common-* "$BACKUP/pam.d/"
  cp -a /var/lib/pam/. "$BACKUP/varlibpam/"
  if [ -e /etc/pushauth ]; then mv /etc/pushauth "$BACKUP/etc-pushauth"; fi
  touch "$BACKUP/complete"
}
restore_system() {
  [ -e "$BACKUP/complete" ] || return 0
  cp -a "$BACKUP/pam.d/." /etc/pam.d/
  rm -rf /var/lib/pam
  cp -a "$BACKUP/varlibpam" /var/lib/pam
  rm -rf /etc/pushauth
  if [ -e "$BACKUP/etc-pushauth" ]; then mv "$BACKUP/etc-pushauth" /etc/pushauth; fi
  rm -rf "$BACKUP"
}

cleanup() {
  local rc=$?
  set +e
  stop_servers
  purge_all
  restore_system
  if [ "$rc" -ne 0 ]; then
    for log in "$WORK/pushauthd.log" "$WORK/sidecar.log"; do
      [ -f "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
    done
  fi
  exit "$rc"
}

# A previous run that was killed may have left packages or a backup behind.
if [ -e "$BACKUP/complete" ]; then restore_system; fi
purge_all
trap cleanup EXIT

echo "== 1. build (dpkg-buildpackage -us -uc -b, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
rm -rf "$WORK"
mkdir -p "$WORK/src"
# A copy, so the build's debian/ by-products and ../*.deb never land in the repository. The
# test suites (tests/, with node_modules) and build outputs are not part of the build.
tar -C "$REPO" --exclude=./target --exclude=./.git --exclude=./tests --exclude=./keycloak/target \
  --exclude=node_modules --exclude=.pytest_cache --exclude=__pycache__ -cf - . |
  tar -C "$WORK/src" -xf -
(cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" \
  dpkg-buildpackage -us -uc -b >"$WORK/build.log" 2>&1) || {
  tail -n 40 "$WORK/build.log" >&2
  fail "dpkg-buildpackage"
}
changes=$(ls "$WORK"/pushauth_*_"$(dpkg --print-architecture)".changes)
debs=()
for p in "${PKGS[@]}"; do
  deb=$(ls "$WORK/${p}"_*.deb) || fail "no .deb for $p"
  debs+=("./$(basename "$deb")")
done
ok "built ${debs[*]}"

echo "== 2. lintian"
# As an unprivileged user: lintian does not want root.
runuser -u nobody -- lintian --fail-on error,warning "$changes" | tee "$WORK/lintian.log" ||
  fail "lintian reported errors or warnings that are not overridden (see above)"
ok "lintian: no errors, no warnings beyond the justified overrides"

echo "== 3. apt-get install ./*.deb"
backup_system
(cd "$WORK" && apt-get install -y -q "${debs[@]}" >"$WORK/install.log" 2>&1) || {
  cat "$WORK/install.log" >&2
  fail "apt-get install"
}
for p in "${PKGS[@]}"; do
  check "$p is installed" test "$(dpkg-query -W -f='${db:Status-Status}' "$p")" = installed
done
pam_dir=$(dirname "$(dpkg -L libpam-modules | grep '/security/pam_unix\.so$')")
check "pam_push.so in $pam_dir (the folder libpam-modules uses)" \
  sh -c "dpkg -L libpam-push | grep -qx '$MODULE' && test '$(dirname "$MODULE")' = '$pam_dir' && test -f '$MODULE'"
check "/etc/pam_push.conf is root:root 0600" test "$(mode_owner /etc/pam_push.conf)" = "600 root root"
check "/etc/pam_push.conf is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' libpam-push | grep -q ' /etc/pam_push.conf '"
check "$SERVER_CONFIG is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' pushauthd | grep -q ' $SERVER_CONFIG '"
check "pam-auth-update profile installed" test -f /usr/share/pam-configs/pushauth
check "Keycloak provider jar installed, with the authenticator factory" \
  python3 -c "import sys, zipfile; sys.exit('META-INF/services/org.keycloak.authentication.AuthenticatorFactory' not in zipfile.ZipFile('/usr/share/pushauth-keycloak/pushauth-keycloak.jar').namelist())"
check "installing changed no PAM stack (Default: no)" sh -c "! grep -rq pam_push /etc/pam.d/"
check "system user _pushauthd with no login shell" \
  sh -c 'getent passwd _pushauthd | grep -Eq ":/var/lib/pushauthd:(/usr/sbin/nologin|/bin/false)$"'
check "/var/lib/pushauthd is _pushauthd 0700" test "$(mode_owner /var/lib/pushauthd)" = "700 _pushauthd _pushauthd"
check "pushauthd unit installed and enabled" test -L /etc/systemd/system/multi-user.target.wants/pushauthd.service
check "sidecar unit installed, not enabled before it is configured" \
  sh -c "test -f $SIDECAR_UNIT && ! test -e /etc/systemd/system/multi-user.target.wants/pushauth-idp-sidecar.service"
check "system user _pushauth-idp" sh -c 'getent passwd _pushauth-idp | grep -q ":/var/lib/pushauth-idp-sidecar:"'
check "/var/lib/pushauth-idp-sidecar is _pushauth-idp 0700" \
  test "$(mode_owner /var/lib/pushauth-idp-sidecar)" = "700 _pushauth-idp _pushauth-idp"
check "$SIDECAR_CONFIG is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' pushauth-idp-sidecar | grep -q ' $SIDECAR_CONFIG '"
for ex in sshd sudo sudo-i su login; do
  check "example for /etc/pam.d/$ex installed" test -f "/usr/share/doc/libpam-push/examples/$ex.example"
done
for page in man8/pam_push.8 man5/pam_push.conf.5 man8/pushauthd.8 man1/pushauth-device.1 \
  man1/pushauth-approve.1 man8/pushauth-idp-sidecar.8; do
  check "man page $page" test -f "/usr/share/man/$page.gz"
done
check "pushauthd runs" sh -c '/usr/sbin/pushauthd --version | grep -q "^pushauthd "'
check "pushauth-device runs" sh -c '/usr/bin/pushauth-device --version | grep -q "^pushauth-device "'
check "pushauth-idp-sidecar runs" sh -c '/usr/sbin/pushauth-idp-sidecar --version | grep -q "^pushauth-idp-sidecar "'
# pushauth-approve (issue 14): the binary, its man page and the example config; nothing in /etc
# (the config holds the site's server and a key file path: the admin writes it).
check "pushauth-approve installs $APPROVE" \
  sh -c "dpkg -L pushauth-approve | grep -qx '$APPROVE' && test -x '$APPROVE'"
check "pushauth-approve installs its man page" \
  sh -c "dpkg -L pushauth-approve | grep -qx /usr/share/man/man1/pushauth-approve.1.gz"
check "pushauth-approve installs the example config $APPROVE_EXAMPLE (uncompressed)" \
  sh -c "dpkg -L pushauth-approve | grep -qx '$APPROVE_EXAMPLE' && test -f '$APPROVE_EXAMPLE'"
check "pushauth-approve installs nothing in /etc and has no conffiles" \
  sh -c "! dpkg -L pushauth-approve | grep -q '^/etc' && test -z \"\$(dpkg-query -W -f='\${Conffiles}' pushauth-approve)\""
check "the installed man page renders, with the exit statuses" \
  sh -c "MANWIDTH=80 man -P cat -l /usr/share/man/man1/pushauth-approve.1.gz 2>/dev/null | grep -q '^EXIT STATUS'"
"$APPROVE" --help >"$WORK/approve-help.log" 2>&1 || fail "pushauth-approve --help: $(cat "$WORK/approve-help.log")"
check "pushauth-approve --help runs and lists --user, --message and the exit codes" \
  sh -c "grep -q -- '--user' '$WORK/approve-help.log' && grep -q -- '--message' '$WORK/approve-help.log' &&
         grep -q 'Exit codes' '$WORK/approve-help.log'"
check "pushauth-approve --version runs" sh -c "'$APPROVE' --version | grep -q '^pushauth-approve '"
set +e
"$APPROVE" --user x --message y --config /nonexistent >"$WORK/approve-missing.out" 2>"$WORK/approve-missing.err"
status=$?
set -e
check "pushauth-approve with a missing config exits 2 (got $status) and names the file" \
  sh -c "test $status = 2 && grep -q /nonexistent '$WORK/approve-missing.err' && ! test -s '$WORK/approve-missing.out'"
check "pushauthd links Debian's libsqlite3" sh -c 'ldd /usr/sbin/pushauthd | grep -q libsqlite3.so'

echo "== 4. pam-auth-update --enable pushauth, then --disable"
pam-auth-update --enable pushauth
check "enabled profile puts pam_push in common-auth" \
  grep -Eq '^auth[[:space:]]+required[[:space:]]+pam_push\.so' /etc/pam.d/common-auth
pam-auth-update --disable pushauth
check "disabled profile takes it out" sh -c "! grep -q pam_push /etc/pam.d/common-auth"

echo "== 5. systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
  for unit in "$UNIT" "$SIDECAR_UNIT"; do
    name=$(basename "$unit")
    # Only this unit's own findings fail the run (the host's other units are not ours).
    systemd-analyze verify "$unit" >"$WORK/verify.log" 2>&1 || true
    cat "$WORK/verify.log"
    if grep -F "$name" "$WORK/verify.log" | grep -qv 'Cannot add dependency job'; then
      fail "systemd-analyze verify found problems in $name"
    fi
    ok "systemd-analyze verify $unit"
    # The sandbox stays tight: exposure 2.0 or less ("OK") on systemd's 0-10 scale.
    check "systemd-analyze security $name: exposure <= 2.0" \
      sh -c "systemd-analyze security --offline=true --threshold=20 --no-pager $unit >/dev/null"
  done
else
  echo "skip: systemd-analyze is not installed"
fi

echo "== 6. installed pushauthd, started like the unit (without systemd), and README's setup"
port=$(free_port)
url=http://127.0.0.1:$port
# Same command line and user as the unit; only --listen is added, so that a server on 8443
# cannot get in the way.
start_like_unit "$UNIT" "$WORK/pushauthd.log" --listen "127.0.0.1:$port"
wait_up "$url/healthz" "$WORK/pushauthd.log"
check "pushauthd answers $url/healthz, running as _pushauthd" \
  sh -c "test \"\$(ps -o user:32= -p ${pids[-1]})\" = _pushauthd"
check "it made its admin token 0600 in its state folder" \
  test "$(mode_owner /var/lib/pushauthd/admin-token)" = "600 _pushauthd _pushauthd"

admin=(runuser -u _pushauthd -- /usr/sbin/pushauthd)
api_key=$("${admin[@]}" rp add deb-test --config "$SERVER_CONFIG" | tail -n 1 | tr -d '[:space:]')
[ -n "$api_key" ] || fail "pushauthd rp add printed no key"
install -d -m 700 /etc/pushauth
(umask 077 && echo "$api_key" >/etc/pushauth/api-key)
sed -i "s|^server = .*|server = \"$url\"|" /etc/pam_push.conf
check "/etc/pam_push.conf still root:root 0600 after editing" test "$(mode_owner /etc/pam_push.conf)" = "600 root root"
check "the database belongs to _pushauthd" test "$(stat -c %U /var/lib/pushauthd/pushauthd.sqlite3)" = _pushauthd

echo "== 6b. installed pushauth-idp-sidecar, configured as sidecar.toml says, started like its unit"
# Issue 9 item 2: a scoped relying-party key (never the admin token), secrets 0600 owned by the
# service user, and a [realms] rule (a realm without one is refused).
sidecar_key=$("${admin[@]}" rp add idp-sidecar --config "$SERVER_CONFIG" --user 'kc/*' --enroll | tail -n 1 | tr -d '[:space:]')
install -o _pushauth-idp -g _pushauth-idp -m 600 /dev/null /etc/pushauth-idp-sidecar/api-key
echo "$sidecar_key" >/etc/pushauth-idp-sidecar/api-key
shared_secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
install -o _pushauth-idp -g _pushauth-idp -m 600 /dev/null /etc/pushauth-idp-sidecar/shared-secret
echo "$shared_secret" >/etc/pushauth-idp-sidecar/shared-secret
sed -i "s|^servers = .*|servers = [\"$url\"]|" "$SIDECAR_CONFIG"
printf '\n[realms.corp]\nuser = "kc/{username}"\n' >>"$SIDECAR_CONFIG"
# Issue 10 item 3: the packaged layout is the one the sidecar requires (its secrets 0600, owned
# by its user), and a group-readable secret stops it with the fix-it message.
for f in api-key shared-secret; do
  check "/etc/pushauth-idp-sidecar/$f is 600 _pushauth-idp" \
    test "$(mode_owner /etc/pushauth-idp-sidecar/$f)" = "600 _pushauth-idp _pushauth-idp"
done
chmod 640 /etc/pushauth-idp-sidecar/shared-secret
start_like_unit "$SIDECAR_UNIT" "$WORK/sidecar-0640.log" --listen "127.0.0.1:$(free_port)"
refused_pid=${pids[-1]}
unset 'pids[${#pids[@]}-1]'
for _ in $(seq 50); do kill -0 "$refused_pid" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$refused_pid" 2>/dev/null; then
  kill "$refused_pid"; wait "$refused_pid" 2>/dev/null || true
  fail "the sidecar started with a group-readable shared secret: $(cat "$WORK/sidecar-0640.log")"
fi
wait "$refused_pid" 2>/dev/null || true
check "a 0640 shared secret stops the sidecar with: chmod 600 /etc/pushauth-idp-sidecar/shared-secret" \
  grep -q "chmod 600 /etc/pushauth-idp-sidecar/shared-secret" "$WORK/sidecar-0640.log"
chmod 600 /etc/pushauth-idp-sidecar/shared-secret
sidecar_url=http://127.0.0.1:$(free_port)
start_like_unit "$SIDECAR_UNIT" "$WORK/sidecar.log" --listen "${sidecar_url#http://}"
wait_up "$sidecar_url/healthz" "$WORK/sidecar.log"
check "sidecar answers $sidecar_url/healthz, running as _pushauth-idp" \
  sh -c "test \"\$(ps -o user:32= -p ${pids[-1]})\" = _pushauth-idp"
check "it made its signing key 0600 in its state folder" \
  test "$(mode_owner /var/lib/pushauth-idp-sidecar/signing-key)" = "600 _pushauth-idp _pushauth-idp"
# A login for a user pushauthd does not know: 404 unknown_user proves the sidecar reached
# pushauthd and its API key was accepted (a refused key is 502 upstream_refused).
check "sidecar -> pushauthd with the installed config: unknown user is 404 unknown_user" \
  python3 - "$sidecar_url" "$shared_secret" <<'PY'
import json, sys, urllib.error, urllib.request
url, secret = sys.argv[1], sys.argv[2]
req = urllib.request.Request(
    url + "/v1/logins",
    data=json.dumps({"realm": "corp", "username": "deb-nobody", "nonce": "0123456789abcdef0123"}).encode(),
    headers={"Authorization": "Bearer " + secret, "Content-Type": "application/json"},
    method="POST",
)
try:
    urllib.request.urlopen(req, timeout=10)
    sys.exit("expected an error")
except urllib.error.HTTPError as e:
    body = e.read().decode()
    assert e.code == 404 and "unknown_user" in body, (e.code, body)
PY

echo "== 6c. installed pushauth-approve, with the example config, approved on the installed device CLI"
# The example config as the package ships it, only server and api_key_file changed, plus the
# pinned-key directory as pushauth-approve(1) describes it (root's, 0755, one file per user);
# run as an unprivileged user who owns the 0600 key file, as the man page says.
approve_dir=$WORK/approve
install -d -m 755 "$approve_dir" "$approve_dir/authorized_devices"
approve_key=$("${admin[@]}" rp add "deb approve" --config "$SERVER_CONFIG" --user 'deb-*' | tail -n 1 | tr -d '[:space:]')
[ -n "$approve_key" ] || fail "pushauthd rp add printed no key for pushauth-approve"
install -o nobody -g nogroup -m 600 /dev/null "$approve_dir/api-key"
echo "$approve_key" >"$approve_dir/api-key"
sed -e "s|^server = .*|server = \"$url\"|" \
  -e "s|^api_key_file = .*|api_key_file = \"$approve_dir/api-key\"|" \
  -e "s|^# authorized_devices = .*|authorized_devices = \"$approve_dir/authorized_devices\"|" \
  "$APPROVE_EXAMPLE" >"$approve_dir/approve.toml"
chmod 644 "$approve_dir/approve.toml"
grep -q "^authorized_devices = " "$approve_dir/approve.toml" || fail "the example config has no authorized_devices line to enable"
approve_as_nobody() { runuser -u nobody -- "$APPROVE" --config "$approve_dir/approve.toml" "$@"; }
set +e
approve_as_nobody --user deb-nobody --message "deb suite: nobody to ask" --timeout 10 \
  >"$WORK/approve-nobody.out" 2>"$WORK/approve-nobody.err"
status=$?
set -e
check "example config + key: a user the server does not know is not asked, exit 6 (got $status)" \
  sh -c "test $status = 6 && grep -q 'deb-nobody is not asked' '$WORK/approve-nobody.err'"
# An approver with a device: enrolled with the installed pushauthd and pushauth-device.
device_dir=$WORK/approve-device
link=$("${admin[@]}" enroll deb-approver --config "$SERVER_CONFIG" --public-url "$url" | sed -n 2p | tr -d '[:space:]')
PUSHAUTH_DEVICE_DIR=$device_dir /usr/bin/pushauth-device enroll "$link" --name "deb approver phone" >/dev/null
PUSHAUTH_DEVICE_DIR=$device_dir /usr/bin/pushauth-device info | sed -n 's/^authorized_devices line: //p' \
  >"$approve_dir/authorized_devices/deb-approver"
chmod 644 "$approve_dir/authorized_devices/deb-approver"
check "pushauth-device info gave an ed25519 pin line" grep -q '^ed25519 ' "$approve_dir/authorized_devices/deb-approver"
# approve_answer DECISION: answers the approval that reaches the device (deny, report or approve).
approve_answer() {
  local id=""
  for _ in $(seq 100); do
    id=$(PUSHAUTH_DEVICE_DIR=$device_dir /usr/bin/pushauth-device pending --json | python3 -c '
import json, sys
for c in json.load(sys.stdin)["challenges"]:
    if c["context"].get("action") == "approval" and c["context"].get("requester") == "deb suite":
        print(c["id"])
        break')
    [ -n "$id" ] && break
    sleep 0.2
  done
  [ -n "$id" ] || return 1
  PUSHAUTH_DEVICE_DIR=$device_dir /usr/bin/pushauth-device "$1" -- "$id" >/dev/null
}
# run_approval DECISION: pushauth-approve in the background, the device answers; sets $status.
run_approval() {
  approve_as_nobody --user deb-approver --message "Deploy 2.3 to prod" --requester "deb suite" \
    --context env=prod --timeout 60 >"$WORK/approve-$1.out" 2>"$WORK/approve-$1.err" &
  local pid=$!
  approve_answer "$1" || { kill "$pid"; wait "$pid" || true; fail "the approval never reached the device"; }
  set +e
  wait "$pid"
  status=$?
  set -e
}
run_approval deny
check "a denial on the device: exit 1 (got $status), nothing on stdout" \
  sh -c "test $status = 1 && grep -q 'denied by deb-approver' '$WORK/approve-deny.err' && ! test -s '$WORK/approve-deny.out'"
run_approval approve
check "an approval by the pinned device: exit 0 (got $status), and who approved on stdout" \
  sh -c "test $status = 0 && grep -q 'approved by deb-approver (device \"deb approver phone\"' '$WORK/approve-approve.out'"
# The same approval with only another key pinned is refused (exit 5): pushauthd alone cannot approve.
# (A real Ed25519 key, the raw 32 bytes at the end of its DER form: random bytes need not be a
# valid key, and a pin file with an invalid key is a configuration error, exit 2.)
other_key=$(openssl genpkey -algorithm ed25519 | openssl pkey -pubout -outform DER | tail -c 32 |
  basenc --base64url | tr -d '=\n')
echo "ed25519 $other_key other device" >"$approve_dir/authorized_devices/deb-approver"
run_approval approve
check "an approval signed by a key that is not pinned: exit 5 (got $status), never 0" \
  sh -c "test $status = 5 && grep -q pinned '$WORK/approve-approve.err' && ! test -s '$WORK/approve-approve.out'"

echo "== 7. sshd push login against the installed module, config and server (tests/pam/test_sshd.py)"
PUSHAUTH_PUSHAUTHD=/usr/sbin/pushauthd \
  PUSHAUTH_DEVICE=/usr/bin/pushauth-device \
  PUSHAUTH_MODULE=pam_push.so \
  PUSHAUTH_PAM_CONF=/etc/pam_push.conf \
  PUSHAUTH_SERVER_URL="$url" \
  PUSHAUTH_SERVER_ADMIN="${admin[*]}" \
  PUSHAUTH_SERVER_CONFIG="$SERVER_CONFIG" \
  python3 -m pytest -p no:cacheprovider -v tests/pam/test_sshd.py tests/pam/test_services_profile.py
check "the profile test left common-auth without pam_push" sh -c "! grep -q pam_push /etc/pam.d/common-auth"
"${admin[@]}" audit --config "$SERVER_CONFIG" --limit 200 >"$WORK/audit.log"
check "the installed server's audit log has the approved and the denied sshd login" \
  sh -c "grep -q 'challenge_answered.*user=pa_alice.*detail=approve' '$WORK/audit.log' &&
         grep -q 'challenge_answered.*user=pa_alice.*detail=deny' '$WORK/audit.log'"
stop_servers

echo "== 8. remove keeps config and state; purge deletes them"
# What pam_push makes at run time in its default state_dir (offline caches, grace records).
install -d -m 0700 /var/lib/pam_push/offline && install -m 0600 /dev/null /var/lib/pam_push/offline/pa_alice
apt-get remove -y -q "${PKGS[@]}" >/dev/null
check "remove: /var/lib/pam_push kept" test -f /var/lib/pam_push/offline/pa_alice
check "remove: binaries and module gone" \
  sh -c "! test -e /usr/sbin/pushauthd && ! test -e $MODULE && ! test -e /usr/bin/pushauth-device && ! test -e $APPROVE"
check "remove: /etc/pam_push.conf kept" test -f /etc/pam_push.conf
check "remove: $SERVER_CONFIG kept" test -f "$SERVER_CONFIG"
check "remove: /var/lib/pushauthd kept with its database" test -f /var/lib/pushauthd/pushauthd.sqlite3
check "remove: no PAM stack names pam_push" sh -c "! grep -q pam_push /etc/pam.d/common-auth"
check "remove: $SIDECAR_CONFIG and the sidecar's signing key kept" \
  sh -c "test -f $SIDECAR_CONFIG && test -f /var/lib/pushauth-idp-sidecar/signing-key"
check "remove: the Keycloak jar gone (it has no conffiles, so nothing of it is left)" \
  test ! -e /usr/share/pushauth-keycloak/pushauth-keycloak.jar
purge_all
check "purge: /etc/pam_push.conf gone" test ! -e /etc/pam_push.conf
check "purge: /etc/pushauthd gone" test ! -e /etc/pushauthd
check "purge: /var/lib/pushauthd gone" test ! -e /var/lib/pushauthd
check "purge: /var/lib/pam_push gone" test ! -e /var/lib/pam_push
check "purge: /etc/pushauth-idp-sidecar (config and secrets) gone" test ! -e /etc/pushauth-idp-sidecar
check "purge: /var/lib/pushauth-idp-sidecar gone" test ! -e /var/lib/pushauth-idp-sidecar
check "purge: unit no longer enabled" test ! -e /etc/systemd/system/multi-user.target.wants/pushauthd.service
for p in "${PKGS[@]}"; do
  check "purge: $p unknown to dpkg" sh -c "! dpkg-query -W -f='\${db:Status-Status}' $p 2>/dev/null | grep -qv not-installed"
done

echo "deb suite: all passed"
