#!/usr/bin/env bash
# Instructions per request on the release server: /healthz, UserInfo, /v1/users/me with a JWT
# and with an API key, a client_credentials grant and an introspection.
# Deterministic (counts instructions, not time): the server runs under valgrind's callgrind with
# one worker, instrumentation is switched on only around N keep-alive requests to each, and
# each dump is divided by N. Needs valgrind (Debian package) and a release build; another
# binary (the commit before) with GATEHOUSE_BIN.
#   bench/instructions.sh            N=2000 bench/instructions.sh
#   GATEHOUSE_BIN=/tmp/gatehouse-before bench/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=/tmp/ui-cg; PORT=18093; BASE="http://127.0.0.1:$PORT"
rm -rf "$WORK" && mkdir -p "$WORK"
BIN=${GATEHOUSE_BIN:-$PWD/target/release/gatehouse}
export GATEHOUSE_DATABASE_URL="sqlite://$WORK/gatehouse.db"
export GATEHOUSE_SECRET="benchmark-secret-benchmark-secret-0123456789"
export GATEHOUSE_ADMIN_EMAIL=bench@example.com GATEHOUSE_ADMIN_PASSWORD="bench password 1"
export GATEHOUSE_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_CLIENT_RATE_LIMIT=1000000000 RUST_LOG=warn
"$BIN" migrate >/dev/null
CLIENT_JSON=$("$BIN" client create --name bench --redirect-uri http://127.0.0.1/cb --scopes "openid offline_access read:users" --json)
CLIENT_ID=$(echo "$CLIENT_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
CLIENT_SECRET=$(echo "$CLIENT_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
CC_JSON=$("$BIN" client create --name machine --redirect-uri http://127.0.0.1/cb --scopes "read:users" --client-credentials --json)
CC_ID=$(echo "$CC_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
CC_SECRET=$(echo "$CC_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
KEY=$("$BIN" key create --user bench@example.com --name bench | grep -o 'sk_live_[A-Za-z0-9_]*' | head -1)
"$BIN" serve --bind "127.0.0.1:$PORT" --workers 1 >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 50); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.1; done
JAR=$WORK/cookies
CSRF=$(curl -s -c "$JAR" "$BASE/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
curl -s -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode "csrf_token=$CSRF" --data-urlencode "email=bench@example.com" --data-urlencode "password=bench password 1" "$BASE/login"
VERIFIER=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk
CHALLENGE=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM
P="/oauth/authorize?response_type=code&client_id=$CLIENT_ID&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=openid+offline_access+read%3Ausers&state=s&nonce=n&code_challenge=$CHALLENGE&code_challenge_method=S256"
PAGE=$(curl -s -b "$JAR" "$BASE$P")
field() { python3 -c 'import sys,re,html; p=sys.argv[2]; p=p[p.find("id=\"consent-form\""):]; m=re.search(r"name=\"%s\" value=\"([^\"]*)\"" % sys.argv[1], p); print(html.unescape(m.group(1)))' "$1" "$PAGE"; }
LOCATION=$(curl -s -b "$JAR" -o /dev/null -w '%{redirect_url}' --data-urlencode "csrf_token=$(field csrf_token)" --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "redirect_uri=http://127.0.0.1/cb" -d response_type=code --data-urlencode "scope=openid offline_access read:users" -d state=s -d nonce=n \
  -d "code_challenge=$CHALLENGE" -d code_challenge_method=S256 -d decision=approve "$BASE/oauth/authorize")
CODE=$(echo "$LOCATION" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
ACCESS=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code -d "code=$CODE" --data-urlencode "redirect_uri=http://127.0.0.1/cb" -d "code_verifier=$VERIFIER" "$BASE/oauth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
kill $SERVER; wait $SERVER 2>/dev/null || true
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.%p" "$BIN" serve --bind "127.0.0.1:$PORT" --workers 1 >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 300); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.2; done
N=${N:-3000}
# name method path authorization body
ENDPOINTS=(
  "healthz GET /healthz - -"
  "userinfo GET /oauth/userinfo bearer:$ACCESS -"
  "me-jwt GET /v1/users/me bearer:$ACCESS -"
  "me-key GET /v1/users/me bearer:$KEY -"
  "client-credentials POST /oauth/token basic:$CC_ID:$CC_SECRET grant_type=client_credentials"
  "introspect POST /oauth/introspect basic:$CLIENT_ID:$CLIENT_SECRET token=$ACCESS"
)
load() { python3 - "$PORT" "$N" $1 <<'PY'
import base64,http.client,sys
port,n,name,method,path,auth,body=int(sys.argv[1]),int(sys.argv[2]),*sys.argv[3:8]
h={}
if auth.startswith("bearer:"): h["Authorization"]="Bearer "+auth[7:]
elif auth.startswith("basic:"): h["Authorization"]="Basic "+base64.b64encode(auth[6:].encode()).decode()
data=None if body=="-" else body
if data: h["Content-Type"]="application/x-www-form-urlencoded"
c=http.client.HTTPConnection("127.0.0.1",port)
for i in range(n):
    c.request(method,path,body=data,headers=h); r=c.getresponse(); r.read()
    assert r.status==200,(name,r.status)
PY
}
for ep in "${ENDPOINTS[@]}"; do
  load "$ep"; N=200 load "$ep"
  callgrind_control -i on $SERVER >/dev/null
  load "$ep"
  callgrind_control -i off $SERVER >/dev/null
  callgrind_control -d "${ep%% *}" $SERVER >/dev/null
done
kill $SERVER; wait $SERVER 2>/dev/null || true
# The dumps are numbered in the order above; callgrind_annotate FILE shows where each went.
i=0
for ep in "${ENDPOINTS[@]}"; do
  i=$((i + 1))
  f=$(ls "$WORK"/cg.*."$i")
  printf '%-20s %8.0f instructions per request  (%s)\n' "${ep%% *}" \
    "$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1/'"$N"'}')" "$f"
done
