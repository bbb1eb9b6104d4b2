#!/usr/bin/env bash
# OAuth figures on one server, same run (release build, SQLite by default):
#   - GET /v1/users/me with a JWT access token vs GET /healthz   (wrk -t1 -c4)
#   - full authorization-code flows (signed-in user, consent remembered): authorize → code →
#     token with PKCE, bench/flow.lua (wrk -t1 -c4)
#   - refresh grants with rotation: 4 chains in parallel, each wrk -t1 -c1 (a chain must
#     present the token the previous answer returned)
#   bench/oauth.sh [seconds]      GATEHOUSE_DATABASE_URL=postgres://… for PostgreSQL
#   GRANTS_ONLY=1 bench/oauth.sh  the flows and refresh grants only (no JWT /me rounds)
#   CPU=1 bench/oauth.sh          also the CPU time per flow / grant of the server and of
#                                 PostgreSQL's processes (from /proc, user + system)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
WORK=/tmp/gatehouse-bench-oauth
PORT=${PORT:-18081}
BASE="http://127.0.0.1:$PORT"
rm -rf "$WORK" && mkdir -p "$WORK"
[ -n "${GATEHOUSE_BIN:-}" ] || cargo build --release --quiet
BIN=${GATEHOUSE_BIN:-$PWD/target/release/gatehouse}
export GATEHOUSE_DATABASE_URL=${GATEHOUSE_DATABASE_URL:-"sqlite://$WORK/gatehouse.db"}
export GATEHOUSE_SECRET="benchmark-secret-benchmark-secret-0123456789"
export GATEHOUSE_ADMIN_EMAIL=bench@example.com GATEHOUSE_ADMIN_PASSWORD="bench password 1"
export GATEHOUSE_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_CLIENT_RATE_LIMIT=1000000000 RUST_LOG=warn
"$BIN" migrate >/dev/null
CLIENT_JSON=$("$BIN" client create --name bench --redirect-uri http://127.0.0.1/cb --scopes read:users --json)
CLIENT_ID=$(echo "$CLIENT_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
CLIENT_SECRET=$(echo "$CLIENT_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
BASIC=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)

"$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.1; done

# Sign in once (cookie jar), then run the flow: authorize (first-party: no consent) → code → tokens.
JAR=$WORK/cookies
CSRF=$(curl -s -c "$JAR" "$BASE/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
curl -s -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode "csrf_token=$CSRF" --data-urlencode "email=bench@example.com" --data-urlencode "password=bench password 1" "$BASE/login"
# PKCE pair of RFC 7636 appendix B.
VERIFIER=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk
CHALLENGE=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM
AUTHORIZE_PATH="/oauth/authorize?response_type=code&client_id=$CLIENT_ID&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=read%3Ausers&state=s&code_challenge=$CHALLENGE&code_challenge_method=S256"
# Approve once on the consent page; every later flow skips it (remembered consent).
PAGE=$(curl -s -b "$JAR" "$BASE$AUTHORIZE_PATH")
field() { python3 -c 'import sys,re,html; p=sys.argv[2]; p=p[p.find("id=\"consent-form\""):]; m=re.search(r"name=\"%s\" value=\"([^\"]*)\"" % sys.argv[1], p); print(html.unescape(m.group(1)))' "$1" "$PAGE"; }
curl -s -b "$JAR" -o /dev/null --data-urlencode "csrf_token=$(field csrf_token)" --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "redirect_uri=http://127.0.0.1/cb" -d response_type=code --data-urlencode "scope=read:users" -d state=s \
  -d "code_challenge=$CHALLENGE" -d code_challenge_method=S256 -d decision=approve "$BASE/oauth/authorize"
tokens() {
  local location code
  location=$(curl -s -b "$JAR" -o /dev/null -w '%{redirect_url}' "$BASE$AUTHORIZE_PATH")
  code=$(echo "$location" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
  curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code -d "code=$code" --data-urlencode "redirect_uri=http://127.0.0.1/cb" -d "code_verifier=$VERIFIER" "$BASE/oauth/token"
}
ACCESS=$(tokens | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ACCESS" "$BASE/v1/users/me")" = 200 ]

# CPU ticks (user + system) of some processes, and a report of CPU per operation.
ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null; done | awk '{s += $1} END {print s + 0}'; }
cpu_mark() { [ -n "${CPU:-}" ] && CPU_AT=("$(ticks "$SERVER")" "$(ticks $(pgrep -u postgres))") || true; }
cpu_report() {
  [ -n "${CPU:-}" ] || return 0
  awk -v ops="$1" -v hz="$(getconf CLK_TCK)" -v s="$(( $(ticks "$SERVER") - CPU_AT[0] ))" \
    -v p="$(( $(ticks $(pgrep -u postgres)) - CPU_AT[1] ))" \
    'BEGIN {f = 1000000 / hz / ops; printf "%-34s server %.0f µs, PostgreSQL %.0f µs\n", "  CPU per operation", s * f, p * f}'
}

run() {
  local label=$1; shift
  local out rss
  wrk -t1 -c4 -d3s "$@" >/dev/null
  out=$(wrk -t1 -c4 -d"${DURATION}s" --latency "$@")
  rss=$(ps -o rss= -p "$SERVER" | tr -d ' ')
  printf '%-34s %10s req/s  p50 %-8s p99 %-8s RSS %s kB\n' "$label" "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
    "$(echo "$out" | awk '$1=="50%" {print $2}')" "$(echo "$out" | awk '$1=="99%" {print $2}')" "$rss"
}

echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, database: ${GATEHOUSE_DATABASE_URL%%://*}, ${DURATION}s per case"
if [ -z "${GRANTS_ONLY:-}" ]; then
# The machine is shared and noisy (±5 % between identical runs): /healthz and /me alternate,
# three rounds, each /me run compared with the mean of the /healthz runs around it.
rps() { wrk -t1 -c4 -d"${DURATION}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
wrk -t1 -c4 -d3s "$BASE/healthz" >/dev/null
wrk -t1 -c4 -d3s -H "Authorization: Bearer $ACCESS" "$BASE/v1/users/me" >/dev/null
H=("$(rps "$BASE/healthz")")
RATIOS=()
for round in 1 2 3; do
  M=$(rps -H "Authorization: Bearer $ACCESS" "$BASE/v1/users/me")
  H+=("$(rps "$BASE/healthz")")
  R=$(awk -v m="$M" -v a="${H[$((round - 1))]}" -v b="${H[$round]}" 'BEGIN {printf "%.3f", m / ((a + b) / 2)}')
  RATIOS+=("$R")
  printf 'round %d: /healthz %s, /v1/users/me with a JWT %s, then /healthz %s req/s: ratio %s\n' \
    "$round" "${H[$((round - 1))]}" "$M" "${H[$round]}" "$R"
done
printf '%-34s %s (median of %s)  RSS %s kB\n' "JWT /me vs /healthz" \
  "$(printf '%s\n' "${RATIOS[@]}" | sort -n | sed -n 2p)" "${RATIOS[*]}" "$(ps -o rss= -p "$SERVER" | tr -d ' ')"
fi

# Full flows: the session cookie from the jar, the code queue in bench/flow.lua.
COOKIE=$(awk '$7 ~ /^ses_/ {print $6 "=" $7}' "$JAR" | tail -1)
export COOKIE BASIC AUTHORIZE_PATH VERIFIER REDIRECT_URI=http://127.0.0.1/cb
wrk -t1 -c4 -d3s -s bench/flow.lua "$BASE" >/dev/null
wrk -t1 -c4 -d"${DURATION}s" --latency -s bench/flow.lua "$BASE" >"$WORK/flows" &
sleep 0.05 && cpu_mark
wait $!
FLOW=$(cat "$WORK/flows")
printf '%-34s %s  (p99 per request %s, RSS %s kB)\n' "full authorization-code flows" \
  "$(echo "$FLOW" | awk '/^flows:/ {print $0}')" "$(echo "$FLOW" | awk '$1=="99%" {print $2}')" \
  "$(ps -o rss= -p "$SERVER" | tr -d ' ')"
cpu_report "$(echo "$FLOW" | awk '/^flows:/ {print $2}')"

# Refresh with rotation: four independent chains.
pids=()
for i in 1 2 3 4; do
  RT=$(tokens | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
  REFRESH_TOKEN=$RT BASIC=$BASIC wrk -t1 -c1 -d"${DURATION}s" -s bench/refresh.lua "$BASE/oauth/token" >"$WORK/refresh.$i" &
  pids+=($!)
done
sleep 0.05 && cpu_mark
wait "${pids[@]}"
total=$(cat "$WORK"/refresh.* | awk '/Requests\/sec/ {s += $2} END {printf "%.0f", s}')
failures=$(cat "$WORK"/refresh.* | awk '/refresh failures/ {s += $3} END {print s}')
printf '%-34s %10s grants/s (4 chains), failures %s, RSS %s kB\n' "refresh_token with rotation" "$total" "$failures" "$(ps -o rss= -p "$SERVER" | tr -d ' ')"
cpu_report "$(cat "$WORK"/refresh.* | awk '/requests in/ {s += $1} END {print s}')"
