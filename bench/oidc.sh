#!/usr/bin/env bash
# OpenID Connect costs, same server, same run (release build, wrk -t1 -c4):
#   - full authorization-code flows with `openid` (ID token + access token + refresh token,
#     scope "openid offline_access read:users") against the same flow without it
#     ("offline_access read:users"), alternated, two rounds each;
#   - GET /oauth/userinfo with an openid access token against /healthz.
#   bench/oidc.sh [seconds]      (default 10 s per case)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
WORK=/tmp/gatehouse-bench-oidc
PORT=${PORT:-18082}
BASE="http://127.0.0.1:$PORT"
rm -rf "$WORK" && mkdir -p "$WORK"
[ -n "${GATEHOUSE_BIN:-}" ] || cargo build --release --quiet
BIN=${GATEHOUSE_BIN:-$PWD/target/release/gatehouse}
export GATEHOUSE_DATABASE_URL=${GATEHOUSE_DATABASE_URL:-"sqlite://$WORK/gatehouse.db"}
export GATEHOUSE_SECRET="benchmark-secret-benchmark-secret-0123456789"
export GATEHOUSE_ADMIN_EMAIL=bench@example.com GATEHOUSE_ADMIN_PASSWORD="bench password 1"
export GATEHOUSE_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_CLIENT_RATE_LIMIT=1000000000 RUST_LOG=warn
"$BIN" migrate >/dev/null
CLIENT_JSON=$("$BIN" client create --name bench --redirect-uri http://127.0.0.1/cb --scopes "openid offline_access read:users" --json)
CLIENT_ID=$(echo "$CLIENT_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
CLIENT_SECRET=$(echo "$CLIENT_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
BASIC=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)
"$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.1; done
JAR=$WORK/cookies
CSRF=$(curl -s -c "$JAR" "$BASE/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
curl -s -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode "csrf_token=$CSRF" --data-urlencode "email=bench@example.com" --data-urlencode "password=bench password 1" "$BASE/login"
VERIFIER=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk
CHALLENGE=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM
path_for() { echo "/oauth/authorize?response_type=code&client_id=$CLIENT_ID&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=$1&state=s&nonce=n&code_challenge=$CHALLENGE&code_challenge_method=S256"; }
# Approve every scope once (later flows are remembered: no consent page).
PAGE=$(curl -s -b "$JAR" "$BASE$(path_for openid+offline_access+read%3Ausers)")
field() { python3 -c 'import sys,re,html; p=sys.argv[2]; p=p[p.find("id=\"consent-form\""):]; m=re.search(r"name=\"%s\" value=\"([^\"]*)\"" % sys.argv[1], p); print(html.unescape(m.group(1)))' "$1" "$PAGE"; }
curl -s -b "$JAR" -o /dev/null --data-urlencode "csrf_token=$(field csrf_token)" --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "redirect_uri=http://127.0.0.1/cb" -d response_type=code --data-urlencode "scope=openid offline_access read:users" -d state=s -d nonce=n \
  -d "code_challenge=$CHALLENGE" -d code_challenge_method=S256 -d decision=approve "$BASE/oauth/authorize"
COOKIE=$(awk '$7 ~ /^ses_/ {print $6 "=" $7}' "$JAR" | tail -1)
export COOKIE BASIC VERIFIER REDIRECT_URI=http://127.0.0.1/cb
flows() {
  AUTHORIZE_PATH=$(path_for "$1") wrk -t1 -c4 -d"${DURATION}s" -s bench/flow.lua "$BASE" | awk '/^flows:/ {print $7}'
}
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, database: ${GATEHOUSE_DATABASE_URL%%://*}, ${DURATION}s per case"
# Warm-up: the first ten thousand flows run faster than any later ones (the tables are still
# tiny), which no alternation cancels; the rounds compare the two flows past that.
AUTHORIZE_PATH=$(path_for openid+offline_access+read%3Ausers) wrk -t1 -c4 -d10s -s bench/flow.lua "$BASE" >/dev/null
# The database grows with every flow, so later cases run a little slower: the order alternates
# (without, with | with, without | …) and the ratio is of the sums, which cancels a steady drift.
sum_with=0 sum_without=0
for round in 1 2 3 4; do
  if [ $((round % 2)) = 1 ]; then
    WITHOUT=$(flows offline_access+read%3Ausers); WITH=$(flows openid+offline_access+read%3Ausers)
  else
    WITH=$(flows openid+offline_access+read%3Ausers); WITHOUT=$(flows offline_access+read%3Ausers)
  fi
  sum_with=$((sum_with + WITH)) sum_without=$((sum_without + WITHOUT))
  printf 'round %d: code flows/s without openid %s, with openid (ID token too) %s: ratio %s\n' "$round" "$WITHOUT" "$WITH" \
    "$(awk -v a="$WITH" -v b="$WITHOUT" 'BEGIN {printf "%.3f", a / b}')"
done
printf 'code flows, all rounds: with openid %d, without %d: ratio %s\n' "$sum_with" "$sum_without" \
  "$(awk -v a="$sum_with" -v b="$sum_without" 'BEGIN {printf "%.3f", a / b}')"
LOCATION=$(curl -s -b "$JAR" -o /dev/null -w '%{redirect_url}' "$BASE$(path_for openid+offline_access+read%3Ausers)")
CODE=$(echo "$LOCATION" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
ACCESS=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code -d "code=$CODE" --data-urlencode "redirect_uri=http://127.0.0.1/cb" -d "code_verifier=$VERIFIER" "$BASE/oauth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ACCESS" "$BASE/oauth/userinfo")" = 200 ]
rps() { wrk -t1 -c4 -d"${DURATION}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
wrk -t1 -c4 -d3s -H "Authorization: Bearer $ACCESS" "$BASE/oauth/userinfo" >/dev/null
# UserInfo against /healthz and against /v1/users/me with the same token (the same
# authenticated path: cached verification, denylist, cached user), alternating, three rounds.
ratios_h="" ratios_me=""
for round in 1 2 3; do
  H=$(rps "$BASE/healthz")
  U=$(rps -H "Authorization: Bearer $ACCESS" "$BASE/oauth/userinfo")
  M=$(rps -H "Authorization: Bearer $ACCESS" "$BASE/v1/users/me")
  rh=$(awk -v u="$U" -v h="$H" 'BEGIN {printf "%.3f", u / h}') rm=$(awk -v u="$U" -v m="$M" 'BEGIN {printf "%.3f", u / m}')
  ratios_h="$ratios_h $rh" ratios_me="$ratios_me $rm"
  printf 'round %d: /healthz %s, /oauth/userinfo %s, /v1/users/me (same token) %s req/s: userinfo/healthz %s, userinfo/me %s\n' \
    "$round" "$H" "$U" "$M" "$rh" "$rm"
done
median() { printf '%s\n' $1 | sort -n | sed -n 2p; }
echo "UserInfo ÷ /healthz, median of 3: $(median "$ratios_h"); UserInfo ÷ /v1/users/me: $(median "$ratios_me")"
echo "RSS $(ps -o rss= -p "$SERVER" | tr -d ' ') kB"
