#!/usr/bin/env bash
# API-key hot path vs /healthz on the same server, same run (release build, wrk -t1 -c4).
#   bench/keys.sh [seconds]      (default 15 s measured per case, after 3 s of warm-up)
# Prints req/s, p50/p99 latency and the server's RSS for each case. Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
WORK=/tmp/gatehouse-bench-keys
PORT=${PORT:-18080}
rm -rf "$WORK" && mkdir -p "$WORK"
[ -n "${GATEHOUSE_BIN:-}" ] || cargo build --release --quiet
BIN=${GATEHOUSE_BIN:-$PWD/target/release/gatehouse}
export GATEHOUSE_DATABASE_URL=${GATEHOUSE_DATABASE_URL:-"sqlite://$WORK/gatehouse.db"}
export GATEHOUSE_SECRET="benchmark-secret-benchmark-secret-0123456789"
export GATEHOUSE_ADMIN_EMAIL=bench@example.com GATEHOUSE_ADMIN_PASSWORD="bench password 1"
# The benchmark measures the path, not the limiter's refusals.
export GATEHOUSE_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_CLIENT_RATE_LIMIT=1000000000 RUST_LOG=warn
"$BIN" migrate >/dev/null
VALID=$("$BIN" key create --user bench@example.com --name valid)
REVOKED_JSON=$("$BIN" key create --user bench@example.com --name revoked --json)
REVOKED=$(echo "$REVOKED_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
"$BIN" key revoke "$(echo "$REVOKED_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" >/dev/null
# Same shape, one character changed: fails the checksum.
BADSUM="${VALID:0:20}$( [ "${VALID:20:1}" = x ] && echo y || echo x )${VALID:21}"

"$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VALID" "http://127.0.0.1:$PORT/v1/users/me")" = 200 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $REVOKED" "http://127.0.0.1:$PORT/v1/users/me")" = 401 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BADSUM" "http://127.0.0.1:$PORT/v1/users/me")" = 401 ]

run() {
  local label=$1 path=$2 header=${3:-}
  local args=(-t1 -c4 --latency)
  [ -n "$header" ] && args+=(-H "$header")
  wrk "${args[@]}" -d3s "http://127.0.0.1:$PORT$path" >/dev/null
  local out rss
  out=$(wrk "${args[@]}" -d"${DURATION}s" "http://127.0.0.1:$PORT$path")
  rss=$(ps -o rss= -p "$SERVER" | tr -d ' ')
  local rps p50 p99 non2xx
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf '%-28s %10s req/s  p50 %-8s p99 %-8s non-2xx %-8s RSS %s kB\n' "$label" "$rps" "$p50" "$p99" "${non2xx:-0}" "$rss"
}

echo "wrk -t1 -c4, ${DURATION}s per case, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
run "GET /healthz" /healthz
run "/v1/users/me valid key" /v1/users/me "Authorization: Bearer $VALID"
run "/v1/users/me bad checksum" /v1/users/me "Authorization: Bearer $BADSUM"
run "/v1/users/me revoked key" /v1/users/me "Authorization: Bearer $REVOKED"
run "GET /healthz (again)" /healthz
