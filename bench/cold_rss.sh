#!/usr/bin/env bash
# Resident memory through a burst of different keys: start the server on the seeded SQLite
# database of bench/scale.sh, send D seconds (default 20) of /v1/users/me with a new key each
# (bench/cold_keys.lua over the keys file), print RSS before and after and the anonymous part.
#   GATEHOUSE_BIN=target/release/gatehouse bench/cold_rss.sh
#   MALLOC_ARENA_MAX=2 bench/cold_rss.sh       (glibc: fewer malloc arenas)
# DB=postgres:///gh_scale_seeded?host=/var/run/postgresql KF=postgres for the PostgreSQL one.
set -euo pipefail
cd "$(dirname "$0")/.."
export GATEHOUSE_SECRET="benchmark-secret-benchmark-secret-0123456789"
export GATEHOUSE_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_RATE_LIMIT=1000000000 RUST_LOG=warn
export GATEHOUSE_DATABASE_URL=${DB:-sqlite:///tmp/gatehouse-scale/seeded.db}
BIN=${GATEHOUSE_BIN:-target/release/gatehouse}
PORT=${PORT:-18093}
"$BIN" serve --bind "127.0.0.1:$PORT" >/tmp/cold-rss-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do sleep 0.05; done
echo "RSS at start: $(ps -o rss= -p $server | tr -d ' ') kB"
KEYS_FILE=/tmp/gatehouse-scale/keys-${KF:-sqlite}-seeded.txt \
  wrk -t1 -c4 -d"${D:-20}s" -s bench/cold_keys.lua "http://127.0.0.1:$PORT" | grep Requests/sec
echo "RSS after the burst: $(ps -o rss= -p $server | tr -d ' ') kB ($(ls /proc/$server/task | wc -l) threads)"
# The server returns the allocator's free pages every 10 s (src/memory.rs).
sleep 11
echo "RSS 11 s after the burst: $(ps -o rss= -p $server | tr -d ' ') kB"
grep -E "^(Anonymous|Pss_File)" "/proc/$server/smaps_rollup"
