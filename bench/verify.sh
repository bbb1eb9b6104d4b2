#!/usr/bin/env bash
# gatehouse-verify's warm paths (issue 12's figures): a cached JWT and an API key answered from
# the crate's cache, timed over a million calls each against a release Gatehouse on SQLite.
#   bench/verify.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=/tmp/gatehouse-bench-verify
PORT=${PORT:-18095}
BASE="http://127.0.0.1:$PORT"
rm -rf "$WORK" && mkdir -p "$WORK"
[ -n "${GATEHOUSE_BIN:-}" ] || cargo build --release --quiet
cargo build --release --quiet -p gatehouse-verify --example timing
BIN=${GATEHOUSE_BIN:-$PWD/target/release/gatehouse}
export GATEHOUSE_DATABASE_URL="sqlite://$WORK/gatehouse.db"
export GATEHOUSE_SECRET="benchmark-secret-benchmark-secret-0123456789"
export GATEHOUSE_ADMIN_EMAIL=bench@example.com GATEHOUSE_ADMIN_PASSWORD="bench password 1" RUST_LOG=warn
"$BIN" migrate >/dev/null
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
KEY=$("$BIN" key create --user bench@example.com --name svc --allow-endpoint "GET /orders/*" --json | json_field key)
INTROSPECTION_KEY=$("$BIN" key create --user bench@example.com --name rs --scopes introspect --json | json_field key)
CLIENT_JSON=$("$BIN" client create --name bench --redirect-uri http://127.0.0.1/cb --scopes "read:users" --client-credentials --json)
CLIENT_ID=$(echo "$CLIENT_JSON" | json_field client_id)
CLIENT_SECRET=$(echo "$CLIENT_JSON" | json_field client_secret)
"$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -fs -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials -d scope=read:users "$BASE/oauth/token" | json_field access_token)
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
GATEHOUSE_URL=$BASE TOKEN=$TOKEN KEY=$KEY INTROSPECTION_KEY=$INTROSPECTION_KEY target/release/examples/timing
