#!/usr/bin/env bash
# A rolling upgrade on one PostgreSQL database: the previous release migrates and serves, the
# new binary applies its migrations while the old one keeps serving, then both serve side by
# side; keys made by either work on both.
#   bench/rolling_upgrade.sh OLD_BINARY NEW_BINARY [POSTGRES_ADMIN_URL]
set -euo pipefail
old=$1 new=$2
admin=${3:-postgres:///postgres?host=/var/run/postgresql}
db=gh_upgrade_$$
psql -q "$admin" -c "CREATE DATABASE $db"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
export GATEHOUSE_DATABASE_URL="postgres:///$db?host=/var/run/postgresql"
export GATEHOUSE_SECRET=rolling-upgrade-secret-0123456789abcdef RUST_LOG=warn
key() { "$1" key create --user ops@example.com --name "$2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'; }
wait_up() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.1; done; exit 1; }

"$old" migrate >/dev/null
"$old" user create --email ops@example.com >/dev/null
old_key=$(key "$old" before)
"$old" serve --bind 127.0.0.1:18101 & wait_up 18101
echo "old: $("$old" --version), serving"
echo "new: $("$new" --version), migrating while the old one serves: $("$new" migrate | head -1)"
"$new" serve --bind 127.0.0.1:18102 & wait_up 18102
new_key=$(key "$new" after)
status=0
for port in 18101 18102; do
  for k in "$old_key" "$new_key"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $k" "http://127.0.0.1:$port/v1/users/me")
    echo "port $port, key ${k:0:12}…: $code"
    [ "$code" = 200 ] || status=1
  done
done
exit $status
