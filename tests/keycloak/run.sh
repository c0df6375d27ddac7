#!/usr/bin/env bash
# Keycloak end-to-end suite: a real Keycloak (from Maven Central, cached in ~/.m2) in dev mode on
# loopback with the pushauth provider jar, a real pushauthd and idp-sidecar, driven by headless
# Chromium through playwright-core. Installs nothing: needs cargo, mvn, java 17+, node 20+,
# /usr/bin/chromium and `npm ci` already run in this folder (see README.md).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KC_VERSION=${KC_VERSION:-26.5.6}
WORK=$HERE/work
ART=$HERE/artifacts
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

for tool in cargo mvn java node; do
  command -v "$tool" >/dev/null || { echo "keycloak e2e: $tool is missing" >&2; exit 1; }
done
[ -x /usr/bin/chromium ] || { echo "keycloak e2e: /usr/bin/chromium is missing (apt-get install chromium)" >&2; exit 1; }
[ -d "$HERE/node_modules/playwright-core" ] || { echo "keycloak e2e: run 'npm ci' in tests/keycloak first" >&2; exit 1; }

mkdir -p "$WORK" "$ART"
rm -rf "$WORK/run"
RUN=$WORK/run
mkdir -p "$RUN"
chmod 700 "$RUN"

echo "== building pushauthd, pushauth-device, pushauth-idp-sidecar"
(cd "$ROOT" && cargo build -q -p pushauth-server -p pushauth-device -p pushauth-idp-sidecar --bins)
BIN=$CARGO_TARGET_DIR/debug

echo "== building the Keycloak provider (and its unit tests)"
(cd "$ROOT/keycloak" && mvn -B -q package)
JAR=$ROOT/keycloak/target/pushauth-keycloak.jar

echo "== fetching Keycloak $KC_VERSION through Maven"
KC=$WORK/keycloak-$KC_VERSION
if [ ! -x "$KC/bin/kc.sh" ]; then
  mvn -B -q dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$KC_VERSION:tar.gz" \
    -DoutputDirectory="$WORK/dist"
  tar xzf "$WORK/dist/keycloak-quarkus-dist-$KC_VERSION.tar.gz" -C "$WORK"
  rm -rf "$WORK/dist"
fi
rm -rf "$KC/data"
cp "$JAR" "$KC/providers/pushauth-keycloak.jar"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PUSH_PORT=$(free_port); SIDECAR_PORT=$(free_port); KC_PORT=$(free_port); KC_MGMT_PORT=$(free_port)

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_http() { # url seconds what
  local deadline=$(( $(date +%s) + $2 ))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "keycloak e2e: $3 did not come up; log follows" >&2; return 1; fi
    sleep 1
  done
}

echo "== starting pushauthd on 127.0.0.1:$PUSH_PORT"
mkdir -p "$RUN/pushauthd"
# Admin commands never create a store: make it first.
"$BIN/pushauthd" migrate --data-dir "$RUN/pushauthd" >/dev/null
# The sidecar's key has only the rights it needs (issue 9 item 2): the users of the realm that
# shares Unix names, the second realm's namespace, enrollment, and bootstrap (the first realm
# lets users enroll their first device; the sidecar config says which realm may).
API_KEY=$("$BIN/pushauthd" rp add idp-sidecar --data-dir "$RUN/pushauthd" \
  --user alice --user bob --user carol --user dave --user erin --user frank --user gina \
  --user hana --user ivan \
  --user 'pushauth-e2e-2/*' \
  --enroll --bootstrap | tail -n 1)
( umask 077; printf '%s\n' "$API_KEY" > "$RUN/api-key" )
"$BIN/pushauthd" serve --listen "127.0.0.1:$PUSH_PORT" --data-dir "$RUN/pushauthd" \
  --admin-token-file "$RUN/admin-token" > "$ART/pushauthd.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PUSH_PORT/healthz" 30 pushauthd || { cat "$ART/pushauthd.log" >&2; exit 1; }

echo "== starting the sidecar on 127.0.0.1:$SIDECAR_PORT"
( umask 077
  python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$RUN/sidecar-secret"
  python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$RUN/ciba-key" )
cat > "$RUN/sidecar.toml" <<TOML
listen = "127.0.0.1:$SIDECAR_PORT"
servers = ["http://127.0.0.1:$PUSH_PORT"]
api_key_file = "$RUN/api-key"
shared_secret_file = "$RUN/sidecar-secret"
signing_key_file = "$RUN/sidecar-key"
login_ttl_secs = 60

# The realm whose users are the machines' users: alice here is pushauthd's alice.
[realms.pushauth-e2e]
user = "{username}"
bootstrap = true

# A second realm: its alice is pushauthd's "pushauth-e2e-2/alice", and nobody there may enroll
# a first device without an administrator.
[realms.pushauth-e2e-2]
bootstrap = false

[ciba]
key_file = "$RUN/ciba-key"
keycloak_url = "http://127.0.0.1:$KC_PORT"
TOML
SIDECAR_PUBLIC_KEY=$("$BIN/pushauth-idp-sidecar" public-key --signing-key-file "$RUN/sidecar-key")
"$BIN/pushauth-idp-sidecar" serve --config "$RUN/sidecar.toml" --log-format json > "$ART/sidecar.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$SIDECAR_PORT/healthz" 30 sidecar || { cat "$ART/sidecar.log" >&2; exit 1; }

echo "== starting Keycloak on 127.0.0.1:$KC_PORT (dev mode; first start builds, allow a few minutes)"
KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=admin \
"$KC/bin/kc.sh" start-dev --http-host 127.0.0.1 --http-port "$KC_PORT" \
  --http-management-port "$KC_MGMT_PORT" --hostname-strict=false \
  --spi-authenticator-pushauth-sidecar-url="http://127.0.0.1:$SIDECAR_PORT" \
  --spi-authenticator-pushauth-secret-file="$RUN/sidecar-secret" \
  --spi-authenticator-pushauth-sidecar-public-key="$SIDECAR_PUBLIC_KEY" \
  --spi-ciba-auth-channel-ciba-http-auth-channel-http-authentication-channel-uri="http://127.0.0.1:$SIDECAR_PORT/ciba/$(cat "$RUN/ciba-key")" \
  > "$ART/keycloak.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$KC_PORT/realms/master" 420 Keycloak || { tail -n 80 "$ART/keycloak.log" >&2; exit 1; }

echo "== running the browser tests"
export KC_URL="http://127.0.0.1:$KC_PORT" PUSHAUTHD_URL="http://127.0.0.1:$PUSH_PORT" \
  SIDECAR_URL="http://127.0.0.1:$SIDECAR_PORT" PUSHAUTH_BIN="$BIN" E2E_RUN="$RUN" E2E_ARTIFACTS="$ART"
cd "$HERE"
if [ "${E2E_HOLD:-}" = 1 ]; then # debugging: keep the services up, print how to reach them
  env | grep -E '^(KC_URL|PUSHAUTHD_URL|SIDECAR_URL|PUSHAUTH_BIN|E2E_RUN|E2E_ARTIFACTS)=' | sed 's/^/export /' > "$RUN/env"
  echo "services up; source $RUN/env"; wait "${PIDS[@]}"
fi
# E2E_ONLY=<regex>: run only the tests whose names match (the setup always runs). The timeout
# bounds the whole file too (node runs it as one test): about 4-5 minutes on 2 busy cores.
node --test --test-concurrency=1 --test-timeout=600000 ${E2E_ONLY:+--test-name-pattern="$E2E_ONLY"} keycloak.test.mjs
