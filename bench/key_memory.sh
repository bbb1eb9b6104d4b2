#!/usr/bin/env bash
# Resident memory around the API-key cases of bench/scale.sh, on its seeded database (run
# bench/scale.sh once first): warm key, introspection, key and audit pages, then a burst of
# different keys. Prints RSS before and after, threads, and the largest mappings.
#   bench/key_memory.sh            SQLite (/tmp/gatehouse-scale/seeded.db)
#   URL=postgres:///gh_scale_seeded?host=/var/run/postgresql KEYS=/tmp/gatehouse-scale/keys-postgres-seeded.txt bench/key_memory.sh
#   TRIM=1: also call malloc_trim(0) in the server (gdb) before the last reading
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${GATEHOUSE_BIN:-$PWD/target/release/gatehouse}; PORT=18090; BASE=http://127.0.0.1:$PORT; WORK=/tmp/gatehouse-scale
DURATION=${DURATION:-10}
export GATEHOUSE_SECRET="benchmark-secret-benchmark-secret-0123456789"
export GATEHOUSE_ADMIN_EMAIL=bench@example.com GATEHOUSE_ADMIN_PASSWORD="bench password 1"
export GATEHOUSE_RATE_LIMIT=1000000000 GATEHOUSE_SENSITIVE_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_RATE_LIMIT=1000000000 GATEHOUSE_OAUTH_CLIENT_RATE_LIMIT=1000000000 RUST_LOG=warn
export GATEHOUSE_DATABASE_URL=${URL:-sqlite://$WORK/seeded.db}
KEYS=${KEYS:-$WORK/keys-sqlite-seeded.txt}
run() { local label=$1; shift; wrk -t1 -c4 -d2s "$@" >/dev/null; printf '  %-34s %s\n' "$label" "$(wrk -t1 -c4 -d${DURATION}s "$@" | awk '/Requests\/sec/ {print $2}')"; }
admin_key=$("$BIN" key create --user bench@example.com --name "bench $(date +%s%N)")
other_key=$("$BIN" key create --user bench@example.com --name "other $(date +%s%N)")
"$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 & server=$!
until curl -fs "$BASE/healthz" >/dev/null 2>&1; do sleep 0.01; done
echo "  RSS start: $(ps -o rss= -p $server) kB"
run "warm" -H "Authorization: Bearer $admin_key" "$BASE/v1/users/me"
TOKEN=$other_key AUTH=$admin_key run "introspection" -s bench/introspect.lua "$BASE/oauth/introspect"
run "key page" -H "Authorization: Bearer $admin_key" "$BASE/v1/api-keys"
run "audit page" -H "Authorization: Bearer $admin_key" "$BASE/v1/audit-events"
echo "  RSS before burst: $(ps -o rss= -p $server) kB"
KEYS_FILE=$KEYS run "cold" -s bench/cold_keys.lua "$BASE"
run "audit after burst" -H "Authorization: Bearer $admin_key" "$BASE/v1/audit-events"
echo "  RSS after: $(ps -o rss= -p $server) kB"
sleep ${SETTLE:-0}; [ -n "${TRIM:-}" ] && gdb -p $server -batch -ex "call (int)malloc_trim(0)" >/dev/null 2>&1; echo "  RSS settled: $(ps -o rss= -p $server) kB"
grep -E "Threads|RssAnon|RssFile" /proc/$server/status | tr '\n' ' '; echo
awk "/^[0-9a-f]+-/ {name=\$6} /^Rss:/ {r[name]+=\$2} END {for (n in r) if (r[n] > 500) print r[n], n}" /proc/$server/smaps | sort -rn | head -8
kill $server; wait $server 2>/dev/null || true
