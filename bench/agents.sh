#!/usr/bin/env bash
# Issue 13's figures, one server (release build, SQLite, wrk):
#  1. GET /oauth/authorize by a signed-in user (the consent page, 200) for an app described by
#     a Client ID Metadata Document whose document is cached, against a registered public app:
#     alternating rounds, requests/s of each (target: the document app costs ≤ 1.1× as much,
#     i.e. its throughput ≥ 0.91 of the registered app's). The document app's row is stored
#     fresh before the run (as the first fetch would leave it), so no fetch happens: this is
#     the warm path by construction.
#  2. /v1/users/me with an API key at a steady ~1,000 requests/s, its p99 latency alone and
#     while a flood of ~1,000 registrations/s hits POST /oauth/register from one address (open
#     registration, 10 a minute allowed): alternating rounds (target: p99 within +10 %).
#   bench/agents.sh [seconds]      (default 10 s per case)
# PIN=1 runs the server on CPU 0 and the load generators on CPU 1 (taskset), so that the
# generators do not take the server's core: the flood's own cost is then what remains.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
WORK=/tmp/gatehouse-bench-agents
PORT=${PORT:-18083}
BASE="http://127.0.0.1:$PORT"
rm -rf "$WORK" && mkdir -p "$WORK"
[ -n "${GATEHOUSE_BIN:-}" ] || cargo build --release --quiet
BIN=${GATEHOUSE_BIN:-$PWD/target/release/gatehouse}
export GATEHOUSE_DATABASE_URL="sqlite://$WORK/gatehouse.db"
export GATEHOUSE_SECRET="benchmark-secret-benchmark-secret-0123456789"
export GATEHOUSE_ADMIN_EMAIL=bench@example.com GATEHOUSE_ADMIN_PASSWORD="bench password 1"
export GATEHOUSE_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_CLIENT_RATE_LIMIT=1000000000 RUST_LOG=warn
export GATEHOUSE_CIMD=all GATEHOUSE_REGISTRATION=open
"$BIN" migrate >/dev/null
REGISTERED=$("$BIN" client create --name bench --public --redirect-uri http://127.0.0.1/cb --scopes "read:users" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
DOCUMENT=https://agent.example.com/client.json
sqlite3 "$WORK/gatehouse.db" "INSERT INTO clients (id, name, owner_user_id, client_type, redirect_uris, allowed_scopes, grant_types, first_party, created_at, updated_at, admin_locked, resources, post_logout_redirect_uris, backchannel_logout_session_required, origin, metadata, metadata_expires_at) VALUES ('$DOCUMENT', 'Research Agent', NULL, 'public', 'http://127.0.0.1/cb', 'read:users', 'authorization_code refresh_token', 0, '2026-12-01 00:00:00', '2026-12-01 00:00:00', 0, '', '', 0, 'cimd', '{\"token_endpoint_auth_method\":\"none\"}', '2099-01-01 00:00:00')"
KEY=$("$BIN" key create --user bench@example.com --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
SERVER_PIN=() LOAD_PIN=()
if [ "${PIN:-0}" = 1 ]; then SERVER_PIN=(taskset -c 0) LOAD_PIN=(taskset -c 1); export GATEHOUSE_WORKERS=1; fi
WRK=$(command -v wrk)
wrk() { "${LOAD_PIN[@]}" "$WRK" "$@"; }
"${SERVER_PIN[@]}" "$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.1; done
JAR=$WORK/cookies
CSRF=$(curl -s -c "$JAR" "$BASE/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
curl -s -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode "csrf_token=$CSRF" --data-urlencode "email=bench@example.com" --data-urlencode "password=bench password 1" "$BASE/login"
COOKIE=$(awk '$7 ~ /^ses_/ {print $6 "=" $7}' "$JAR" | tail -1)
CHALLENGE=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM
urlenc() { python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
path_for() { echo "/oauth/authorize?response_type=code&client_id=$(urlenc "$1")&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=read%3Ausers&state=s&code_challenge=$CHALLENGE&code_challenge_method=S256"; }
for c in "$REGISTERED" "$DOCUMENT"; do
  status=$(curl -s -o "$WORK/page.html" -w '%{http_code}' -H "Cookie: $COOKIE" "$BASE$(path_for "$c")")
  [ "$status" = 200 ] && grep -q 'id="consent-form"' "$WORK/page.html" || { echo "no consent page for $c ($status)"; cat "$WORK/page.html"; exit 1; }
done
grep -q 'id="consent-host"' "$WORK/page.html"
rps() { wrk -t1 -c4 -d"${DURATION}s" -H "Cookie: $COOKIE" "$BASE$(path_for "$1")" | awk '/Requests\/sec/ {print $2}'; }
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, SQLite, ${DURATION}s per case, pinned: ${PIN:-0}"
rps "$REGISTERED" >/dev/null
sum_r=0 sum_d=0
for round in 1 2 3 4; do
  if [ $((round % 2)) = 1 ]; then R=$(rps "$REGISTERED"); D=$(rps "$DOCUMENT"); else D=$(rps "$DOCUMENT"); R=$(rps "$REGISTERED"); fi
  sum_r=$(awk -v a="$sum_r" -v b="$R" 'BEGIN {print a + b}') sum_d=$(awk -v a="$sum_d" -v b="$D" 'BEGIN {print a + b}')
  printf 'round %d: consent page, registered public app %s req/s, metadata-document app %s req/s: ratio %s\n' "$round" "$R" "$D" \
    "$(awk -v a="$D" -v b="$R" 'BEGIN {printf "%.3f", a / b}')"
done
printf 'consent page, all rounds: metadata-document app / registered app throughput %s\n' \
  "$(awk -v a="$sum_d" -v b="$sum_r" 'BEGIN {printf "%.3f", a / b}')"

# 2. /v1 p99 with and without a registration flood; as a control, with the same rate of
# GET /healthz (what any 1,000 requests/s cost two cores shared with the load generators).
api() { AUTHORIZATION="Bearer $KEY" DELAY_MS=4 wrk -t1 -c4 -d"${DURATION}s" -s bench/paced.lua "$BASE/v1/users/me"; }
flood() {
  METHOD=POST CONTENT_TYPE=application/json DELAY_MS=10 \
    BODY='{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","client_name":"flood"}' \
    wrk -t1 -c10 -d"$((DURATION + 2))s" -s bench/paced.lua "$BASE/oauth/register" >"$WORK/flood.txt"
}
control() { DELAY_MS=10 wrk -t1 -c10 -d"$((DURATION + 2))s" -s bench/paced.lua "$BASE/healthz" >"$WORK/control.txt"; }
p99() { awk '/^p99_us:/ {print $2}'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
api >/dev/null
alone_all="" flood_all="" control_all=""
for round in 1 2 3 4 5; do
  ALONE=$(api | p99)
  flood & FLOOD=$!
  sleep 1
  WITH=$(api | tee "$WORK/with.txt" | p99)
  wait $FLOOD
  control & CONTROL=$!
  sleep 1
  CTRL=$(api | p99)
  wait $CONTROL
  alone_all="$alone_all $ALONE" flood_all="$flood_all $WITH" control_all="$control_all $CTRL"
  printf 'round %d: /v1/users/me p99 alone %s µs, during the registration flood %s µs (%s registrations/s:%s), during a /healthz flood %s µs (%s req/s)\n' \
    "$round" "$ALONE" "$WITH" "$(awk '/Requests\/sec/ {print $2}' "$WORK/flood.txt")" "$(awk '/^statuses:/ {$1=""; print}' "$WORK/flood.txt")" \
    "$CTRL" "$(awk '/Requests\/sec/ {print $2}' "$WORK/control.txt")"
done
A=$(echo "$alone_all" | median) F=$(echo "$flood_all" | median) C=$(echo "$control_all" | median)
printf 'medians: /v1 p99 alone %s µs, during registrations %s µs (ratio %s), during /healthz %s µs (ratio %s)\n' "$A" "$F" \
  "$(awk -v a="$F" -v b="$A" 'BEGIN {printf "%.3f", a / b}')" "$C" "$(awk -v a="$C" -v b="$A" 'BEGIN {printf "%.3f", a / b}')"
