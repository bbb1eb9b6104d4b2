#!/usr/bin/env bash
# Gatehouse side by side with the reference server (node oidc-provider, ../shared/bench), same
# machine, same run, same JWT algorithm, same load (its bench.sh: wrk -t1 -c4, 5 s warm-up):
#   - client_credentials tokens/s
#   - introspection req/s: Gatehouse on a JWT access token, an API key and a refresh token;
#     the peer on an opaque access token (it refuses to introspect JWTs by design)
# One server at a time. Results: the peer's summary.tsv (see below) and a table printed here.
#   bench/peer.sh [ALG]            ALG = ES256 (default), RS256 or EdDSA, for both servers
set -euo pipefail
cd "$(dirname "$0")/.."
ALG=${1:-ES256}
PEER=${PEER_BENCH:-$(cd ../shared/bench && pwd)}
WORK=/tmp/gatehouse-bench-peer
PORT=${PORT:-18082}
BASE="http://127.0.0.1:$PORT"
export RESULTS_DIR=${RESULTS_DIR:-$WORK/results}
export DURATION=${DURATION:-20s}
rm -rf "$WORK" && mkdir -p "$WORK"
cargo build --release --quiet
BIN=$PWD/target/release/gatehouse

export GATEHOUSE_DATABASE_URL="sqlite://$WORK/gatehouse.db"
export GATEHOUSE_SECRET="benchmark-secret-benchmark-secret-0123456789"
export GATEHOUSE_ADMIN_EMAIL=bench@example.com GATEHOUSE_ADMIN_PASSWORD="bench password 1"
export GATEHOUSE_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_CLIENT_RATE_LIMIT=1000000000 GATEHOUSE_SIGNING_ALG=$ALG RUST_LOG=warn
"$BIN" migrate >/dev/null
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
# The same client as the peer's: client_credentials, read:users write:users; it may also
# introspect every credential (the admin-only `introspect` scope).
CLIENT_JSON=$("$BIN" client create --name bench --redirect-uri http://127.0.0.1:9999/cb \
  --scopes "read:users write:users introspect" --client-credentials --first-party --json)
CLIENT_ID=$(echo "$CLIENT_JSON" | json client_id)
CLIENT_SECRET=$(echo "$CLIENT_JSON" | json client_secret)
API_KEY=$("$BIN" key create --user bench@example.com --name introspected --expires-in 30d)

"$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.1; done

# A refresh token from a real flow (signed-in session; the app is first-party).
JAR=$WORK/cookies
CSRF=$(curl -s -c "$JAR" "$BASE/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
curl -s -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode "csrf_token=$CSRF" \
  --data-urlencode "email=bench@example.com" --data-urlencode "password=bench password 1" "$BASE/login"
LOCATION=$(curl -s -b "$JAR" -o /dev/null -w '%{redirect_url}' \
  "$BASE/oauth/authorize?response_type=code&client_id=$CLIENT_ID&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcb&scope=read%3Ausers&state=s")
CODE=$(echo "$LOCATION" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
REFRESH=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code -d "code=$CODE" \
  --data-urlencode "redirect_uri=http://127.0.0.1:9999/cb" "$BASE/oauth/token" | json refresh_token)

gatehouse_bench() {
  URL=$BASE LABEL=$1 TOKEN_PATH=/oauth/token INTROSPECT_PATH=/oauth/introspect \
    DISCOVERY_PATH=/.well-known/oauth-authorization-server CLIENT_ID=$CLIENT_ID \
    CLIENT_SECRET=$CLIENT_SECRET INTROSPECT_RESOURCE= SERVER_PID=$SERVER "$PEER/bench.sh" "${@:2}"
}
gatehouse_bench "gatehouse-$ALG" token
gatehouse_bench "gatehouse-$ALG-jwt" introspect
INTROSPECT_TOKEN=$API_KEY TOKEN_TYPE_HINT=api_key gatehouse_bench "gatehouse-apikey" introspect
INTROSPECT_TOKEN=$REFRESH TOKEN_TYPE_HINT=refresh_token gatehouse_bench "gatehouse-refresh" introspect
kill $SERVER; wait $SERVER 2>/dev/null || true

PEER_JWT_ALG=$ALG "$PEER/start-peer.sh"
trap '"$PEER/stop-peer.sh" >/dev/null || true' EXIT
LABEL="oidc-provider-$ALG" "$PEER/bench.sh" token
LABEL="oidc-provider-opaque" "$PEER/bench.sh" introspect
"$PEER/stop-peer.sh"

echo
printf '%-26s %-11s %12s %10s %10s %12s\n' server test req/s p99 non2xx "peak RSS kB"
tail -n +2 "$RESULTS_DIR/summary.tsv" | awk -F'\t' '{printf "%-26s %-11s %12s %10s %10s %12s\n", $2, $3, $7, $9, $10, $13}'
