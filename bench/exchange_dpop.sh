#!/usr/bin/env bash
# Issue 14's figures on one release server (SQLite):
#  1. token exchange of an API key by its holder (RFC 8693): exchanges/s (target ≥ 10,000);
#  2. GET /v1/users/me with a DPoP-bound token and a fresh proof per request (ALG=ES256, the
#     default, RS256 or EdDSA), against the same with a Bearer token of the same key
#     (target ≥ 0.7), alternated in three rounds.
# Proofs are made ahead by bench/dpop_proofs.rs (a load generator cannot sign), one per request.
#   [ALG=RS256] [SKIP_EXCHANGE=1] bench/exchange_dpop.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
WORK=/tmp/gatehouse-bench-exchange
PORT=${PORT:-18082}
BASE="http://127.0.0.1:$PORT"
rm -rf "$WORK" && mkdir -p "$WORK"
cargo build --release --quiet --bin gatehouse --example dpop_proofs
BIN=$PWD/target/release/gatehouse
PROOFS_BIN=$PWD/target/release/examples/dpop_proofs
ALG=${ALG:-ES256}
export ALG
SEED=$WORK/client-key-$ALG
export GATEHOUSE_DATABASE_URL="sqlite://$WORK/gatehouse.db"
export GATEHOUSE_SECRET="benchmark-secret-benchmark-secret-0123456789"
export GATEHOUSE_ADMIN_EMAIL=bench@example.com GATEHOUSE_ADMIN_PASSWORD="bench password 1"
export GATEHOUSE_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_CLIENT_RATE_LIMIT=1000000000 RUST_LOG=warn
# The token endpoint's nonce round trip is the client's business, not this measurement's.
export GATEHOUSE_DPOP_NONCE=false
"$BIN" migrate >/dev/null
"$BIN" user list >/dev/null
KEY=$("$BIN" key create --user bench@example.com --name bench --scopes read:users 2>/dev/null)
export KEY
"$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.1; done
GRANT=urn:ietf:params:oauth:grant-type:token-exchange
TYPE=urn:gatehouse:params:oauth:token-type:api_key
exchange() { curl -s "$@" -d "grant_type=$GRANT" -d "subject_token_type=$TYPE" -d "subject_token=$KEY" "$BASE/oauth/token"; }
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
BEARER=$(exchange | field access_token)
DPOP=$(exchange -H "DPoP: $("$PROOFS_BIN" "$SEED" POST "$BASE/oauth/token" 1)" | field access_token)
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BEARER" "$BASE/v1/users/me")" = 200 ]
CHECK=$("$PROOFS_BIN" "$SEED" GET "$BASE/v1/users/me" 1 "$DPOP")
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: DPoP $DPOP" -H "DPoP: $CHECK" "$BASE/v1/users/me")" = 200 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $DPOP" "$BASE/v1/users/me")" = 401 ]

echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${DURATION}s per run, build $(git rev-parse --short HEAD), DPoP proofs $ALG"
if [ -z "${SKIP_EXCHANGE:-}" ]; then
wrk -t2 -c8 -d3s -s bench/exchange.lua "$BASE/oauth/token" >/dev/null
for round in 1 2 3; do
  wrk -t2 -c8 -d"${DURATION}s" -s bench/exchange.lua "$BASE/oauth/token" >"$WORK/exchange.txt"
  printf 'exchange round %d: %s exchanges/s, non-2xx: %s\n' "$round" \
    "$(awk '/Requests\/sec/ {print $2}' "$WORK/exchange.txt")" \
    "$(awk '/Non-2xx/ {print $5}' "$WORK/exchange.txt" | grep . || echo 0)"
done
fi

# The Bearer baseline sends the same requests through the same script (its proof ignored), so
# that the load generator, on the same two cores, costs both sides alike.
bearer() {
  # The server ignores a Bearer request's proof: a few thousand, sent in turn, cost wrk the same.
  "$PROOFS_BIN" "$SEED" GET "$BASE/v1/users/me" 20000 "$DPOP" >"$WORK/proofs.txt"
  PROOFS="$WORK/proofs.txt" TOKEN="$BEARER" SCHEME=Bearer wrk -t1 -c4 -d"${DURATION}s" -s bench/proofs.lua "$BASE/v1/users/me" | awk '/Requests\/sec/ {print $2}'
}
echo "plain Bearer (static headers): $(wrk -t1 -c4 -d"${DURATION}s" -H "Authorization: Bearer $BEARER" "$BASE/v1/users/me" | awk '/Requests\/sec/ {print $2}') req/s"
dpop() {
  # Enough proofs for the fastest run imaginable, made just before it (each is valid a minute;
  # RS256 signs slowly: PROOF_RATE=14000 and runs of 6 s keep its proofs within that minute).
  "$PROOFS_BIN" "$SEED" GET "$BASE/v1/users/me" $((${PROOF_RATE:-30000} * DURATION)) "$DPOP" >"$WORK/proofs.txt"
  PROOFS="$WORK/proofs.txt" TOKEN="$DPOP" wrk -t1 -c4 -d"${DURATION}s" -s bench/proofs.lua "$BASE/v1/users/me" >"$WORK/dpop.txt"
  local bad
  bad=$(awk '/Non-2xx/ {print $5}' "$WORK/dpop.txt")
  [ -z "$bad" ] || echo "  (non-2xx answers in the DPoP run: $bad)" >&2
  awk '/Requests\/sec/ {print $2}' "$WORK/dpop.txt"
}
B=("$(bearer)")
RATIOS=()
for round in 1 2 3; do
  D=$(dpop)
  B+=("$(bearer)")
  R=$(awk -v d="$D" -v a="${B[$((round - 1))]}" -v b="${B[$round]}" 'BEGIN {printf "%.3f", d / ((a + b) / 2)}')
  RATIOS+=("$R")
  printf 'round %d: Bearer %s, DPoP %s, then Bearer %s req/s: ratio %s\n' \
    "$round" "${B[$((round - 1))]}" "$D" "${B[$round]}" "$R"
done
printf '%-34s %s (median of %s)\n' "/me DPoP vs Bearer" \
  "$(printf '%s\n' "${RATIOS[@]}" | sort -n | sed -n 2p)" "${RATIOS[*]}"
