#!/usr/bin/env bash
# Figures at scale: the same measurements on an empty database and on one seeded like a large
# deployment (bench/seed.rs: 100,000 users, 1,000,000 API keys, 10,000 clients, 1,000,000
# refresh families with 10,000,000 refresh-token rows, 1,000,000 audit events).
#   bench/scale.sh sqlite|postgres [seconds per case]
# The seeded database is kept between runs (/tmp/gatehouse-scale, database gh_scale_seeded);
# RESEED=1 makes it anew. SMALL=1 seeds a hundredth (a quick check of the script).
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND=${1:-sqlite}
DURATION=${2:-10}
WORK=/tmp/gatehouse-scale
PORT=18090
BASE="http://127.0.0.1:$PORT"
PG_ADMIN=${PG_ADMIN:-"postgres:///postgres?host=/var/run/postgresql"}
mkdir -p "$WORK"
if [ -z "${GATEHOUSE_BIN:-}" ]; then
  cargo build --release --quiet
  cargo build --release --quiet --example seed
fi
BIN=${GATEHOUSE_BIN:-$PWD/target/release/gatehouse}
SEED=${GATEHOUSE_SEED:-$PWD/target/release/examples/seed}
export GATEHOUSE_SECRET="benchmark-secret-benchmark-secret-0123456789"
export GATEHOUSE_ADMIN_EMAIL=bench@example.com GATEHOUSE_ADMIN_PASSWORD="bench password 1"
export GATEHOUSE_RATE_LIMIT=1000000000 GATEHOUSE_SENSITIVE_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_CLIENT_RATE_LIMIT=1000000000 RUST_LOG=warn
if [ "${SMALL:-}" = 1 ]; then
  SIZES=(--users 1000 --keys-per-user 10 --clients 100 --families 10000 --tokens-per-family 10 --audit-events 10000)
else
  SIZES=(--users 100000 --keys-per-user 10 --clients 10000 --families 1000000 --tokens-per-family 10 --audit-events 1000000)
fi

url_of() {
  case $BACKEND in
    sqlite) echo "sqlite://$WORK/$1.db" ;;
    postgres) echo "postgres:///gh_scale_$1?host=/var/run/postgresql" ;;
  esac
}
drop() {
  case $BACKEND in
    sqlite) rm -f "$WORK/$1.db" "$WORK/$1.db-wal" "$WORK/$1.db-shm" "$WORK/$1.db.secret" ;;
    postgres) psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS gh_scale_$1 WITH (FORCE)" ;;
  esac
}
exists() {
  case $BACKEND in
    sqlite) [ -f "$WORK/$1.db" ] ;;
    postgres) psql -tA "$PG_ADMIN" -c "SELECT 1 FROM pg_database WHERE datname = 'gh_scale_$1'" | grep -q 1 ;;
  esac
}
create() { [ "$BACKEND" = postgres ] && psql -q "$PG_ADMIN" -c "CREATE DATABASE gh_scale_$1" || true; }
size_mb() {
  case $BACKEND in
    sqlite) du -cm "$WORK/$1.db"* | tail -1 | cut -f1 ;;
    postgres) psql -tA "$PG_ADMIN" -c "SELECT pg_database_size('gh_scale_$1') / 1048576" ;;
  esac
}
keys_table_mb() {
  case $BACKEND in
    sqlite) sqlite3 "$WORK/$1.db" "SELECT SUM(pgsize) / 1048576 FROM dbstat WHERE name = 'api_keys' OR tbl_name = 'api_keys'" 2>/dev/null || echo "?" ;;
    postgres) psql -tA "postgres:///gh_scale_$1?host=/var/run/postgresql" -c "SELECT pg_total_relation_size('api_keys') / 1048576" ;;
  esac
}

run() {
  local label=$1; shift
  wrk -t1 -c4 -d2s "$@" >/dev/null
  local out
  out=$(wrk -t1 -c4 -d"${DURATION}s" --latency "$@")
  printf '  %-34s %10s req/s  p50 %-8s p99 %-8s non-2xx %s\n' "$label" \
    "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" "$(echo "$out" | awk '$1=="50%" {print $2}')" \
    "$(echo "$out" | awk '$1=="99%" {print $2}')" "$(echo "$out" | awk '/Non-2xx/ {print $NF}')"
}

measure() {
  local name=$1
  export GATEHOUSE_DATABASE_URL
  GATEHOUSE_DATABASE_URL=$(url_of "$name")
  echo "== $BACKEND, $name database: $(size_mb "$name") MB (api_keys with its indexes: $(keys_table_mb "$name") MB)"
  local admin_key other_key started server
  admin_key=$("$BIN" key create --user bench@example.com --name "bench $(date +%s%N)")
  other_key=$("$BIN" key create --user bench@example.com --name "other $(date +%s%N)")
  started=$(date +%s%N)
  "$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  server=$!
  until curl -fs "$BASE/healthz" >/dev/null 2>&1; do sleep 0.01; done
  echo "  start-up to first answer: $(( ($(date +%s%N) - started) / 1000000 )) ms"
  # The listings compare pages of the same length on both databases: 50 more keys of the
  # admin (and their 50 audit events) fill the first page of each (20 keys, 50 events), so
  # what differs is only the size of the tables under them.
  for i in $(seq 1 50); do
    curl -fs -o /dev/null -X POST -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
      -d "{\"name\":\"page filler $i\"}" "$BASE/v1/api-keys"
  done
  run "/v1/users/me, one key (warm)" -H "Authorization: Bearer $admin_key" "$BASE/v1/users/me"
  # The burst of different keys comes last: the cases after it ran up to a fifth slower on the
  # same database (the empty database has no burst, so the comparison would be of the burst).
  if [ "${COLD_ONLY:-}" != 1 ]; then
    TOKEN=$other_key AUTH=$admin_key run "introspection of a key" -s bench/introspect.lua "$BASE/oauth/introspect"
    run "GET /v1/api-keys (first page)" -H "Authorization: Bearer $admin_key" "$BASE/v1/api-keys"
    run "GET /v1/audit-events (first page)" -H "Authorization: Bearer $admin_key" "$BASE/v1/audit-events"
  fi
  if [ -s "$WORK/keys-$BACKEND-$name.txt" ]; then
    KEYS_FILE="$WORK/keys-$BACKEND-$name.txt" run "/v1/users/me, a new key each (cold)" -s bench/cold_keys.lua "$BASE"
    [ "${COLD_ONLY:-}" = 1 ] || run "GET /v1/audit-events, after the burst" -H "Authorization: Bearer $admin_key" "$BASE/v1/audit-events"
  fi
  [ "${COLD_ONLY:-}" = 1 ] && { kill "$server"; wait "$server" 2>/dev/null || true; return; }
  echo "  RSS after: $(ps -o rss= -p "$server" | tr -d ' ') kB"
  kill "$server"; wait "$server" 2>/dev/null || true
  PORT=18091 GATEHOUSE_BIN=$BIN bench/oauth.sh "$DURATION" | grep -E "full authorization-code|refresh_token with rotation|JWT /me vs"
}

echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${DURATION}s per case"
drop empty; create empty
GATEHOUSE_DATABASE_URL=$(url_of empty) "$BIN" migrate >/dev/null
rm -f "$WORK/keys-$BACKEND-empty.txt"
if [ "${RESEED:-}" = 1 ] || ! exists seeded; then
  drop seeded; create seeded
  started=$(date +%s)
  GATEHOUSE_DATABASE_URL=$(url_of seeded) "$SEED" "${SIZES[@]}" --keys-out "$WORK/keys-$BACKEND-seeded.txt"
  echo "seeded in $(( $(date +%s) - started )) s"
fi
measure empty
# The cold-cache case needs keys that are each used once: the small database gets 100,000
# keys of one user (a tenth of the seeded one's), no other rows.
drop small; create small
GATEHOUSE_DATABASE_URL=$(url_of small) "$SEED" --users 1 --keys-per-user 100000 --clients 1 --families 0 \
  --audit-events 0 --keys-out "$WORK/keys-$BACKEND-small.txt" >/dev/null 2>&1
COLD_ONLY=1 measure small
measure seeded
