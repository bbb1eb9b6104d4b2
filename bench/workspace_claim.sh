#!/usr/bin/env bash
# What the `workspace` claim costs GET /v1/users/me (issue 12's figure: at most 3 %): one
# server, two access tokens of the same user, app and scope — one with the claim (every user
# grant has one), one whose code had its workspace removed before the exchange (no claim) —
# alternated in three rounds, each claim run compared with the mean of the claim-less runs
# around it (the machine is shared and noisy).
#   bench/workspace_claim.sh [seconds]      GATEHOUSE_DATABASE_URL is SQLite here (the code is
#   edited with sqlite3).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
WORK=/tmp/gatehouse-bench-workspace
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
code() {
  curl -s -b "$JAR" -o /dev/null -w '%{redirect_url}' "$BASE$AUTHORIZE_PATH" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p'
}
exchange() {
  curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code -d "code=$1" --data-urlencode "redirect_uri=http://127.0.0.1/cb" -d "code_verifier=$VERIFIER" "$BASE/oauth/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
WITH=$(exchange "$(code)")
PLAIN_CODE=$(code)
sqlite3 -cmd '.timeout 5000' "$WORK/gatehouse.db" "UPDATE auth_codes SET workspace_id = NULL WHERE consumed_at IS NULL"
WITHOUT=$(exchange "$PLAIN_CODE")
claim() { python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; p+="="*(-len(p)%4); print(json.loads(base64.urlsafe_b64decode(p)).get("workspace"))' "$1"; }
echo "with:    $(echo -n "$WITH" | wc -c) bytes, workspace $(claim "$WITH")"
echo "without: $(echo -n "$WITHOUT" | wc -c) bytes, workspace $(claim "$WITHOUT")"
for t in "$WITH" "$WITHOUT"; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "$BASE/v1/users/me")" = 200 ]
done

echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${DURATION}s per case"
rps() { wrk -t1 -c4 -d"${DURATION}s" -H "Authorization: Bearer $1" "$BASE/v1/users/me" | awk '/Requests\/sec/ {print $2}'; }
wrk -t1 -c4 -d3s -H "Authorization: Bearer $WITH" "$BASE/v1/users/me" >/dev/null
wrk -t1 -c4 -d3s -H "Authorization: Bearer $WITHOUT" "$BASE/v1/users/me" >/dev/null
P=("$(rps "$WITHOUT")")
RATIOS=()
for round in 1 2 3; do
  W=$(rps "$WITH")
  P+=("$(rps "$WITHOUT")")
  R=$(awk -v w="$W" -v a="${P[$((round - 1))]}" -v b="${P[$round]}" 'BEGIN {printf "%.3f", w / ((a + b) / 2)}')
  RATIOS+=("$R")
  printf 'round %d: without %s, with the claim %s, then without %s req/s: ratio %s\n' \
    "$round" "${P[$((round - 1))]}" "$W" "${P[$round]}" "$R"
done
printf '%-34s %s (median of %s)\n' "/me with the claim vs without" \
  "$(printf '%s\n' "${RATIOS[@]}" | sort -n | sed -n 2p)" "${RATIOS[*]}"
