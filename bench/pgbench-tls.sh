#!/usr/bin/env bash
# pgbench through a postgres listener, with and without TLS, against a direct connection, in one run
# on one PostgreSQL server started here (trust auth, fsync off). Prints transactions per second and
# the ratio to direct for each path. Usage: bash bench/pgbench-tls.sh [BINARY] [SECONDS] [CLIENTS]
# (default dist/switchyard, 10 s, 8 clients: the figures in README "Performance").
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-dist/switchyard}"); secs=${2:-10}; clients=${3:-8}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d); chown postgres "$dir"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgport=$((20000 + RANDOM % 20000)); pxport=$((pgport + 1)); plainport=$((pgport + 2))
as_pg "$pgbin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
as_pg "$pgbin/pg_ctl" start -D "$dir/data" -w -l "$dir/log" -o "-p $pgport -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50" >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=db.test -keyout "$dir/db.key" -out "$dir/db.pem" 2>/dev/null
cat >"$dir/proxy.jsonc" <<JSON
{ "log": { "access": "off" }, "listeners": [
  { "name": "pg-tls", "listen": "127.0.0.1:$pxport", "protocol": "postgres", "defaultCert": { "cert": "$dir/db.pem", "key": "$dir/db.key" },
    "routes": [{ "upstreams": ["127.0.0.1:$pgport"] }] },
  { "name": "pg-plain", "listen": "127.0.0.1:$plainport", "protocol": "postgres", "routes": [{ "upstreams": ["127.0.0.1:$pgport"] }] } ] }
JSON
"$bin" serve -c "$dir/proxy.jsonc" 2>"$dir/proxy.log" & proxy=$!
cleanup() { kill "$proxy" 2>/dev/null || true; as_pg "$pgbin/pg_ctl" stop -D "$dir/data" -m immediate >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 100); do grep -q "switchyard ready" "$dir/proxy.log" && break; sleep 0.1; done
export PGUSER=postgres PGHOST=127.0.0.1
pgbench -i -s 10 -q -p "$pgport" postgres >/dev/null 2>&1
tps() { pgbench -S -n -c "$clients" -j 2 -T "$secs" -p "$1" postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
direct=$(PGSSLMODE=disable tps "$pgport")
plain=$(PGSSLMODE=disable tps "$plainport")
tls=$(PGSSLMODE=require tps "$pxport")
direct_tls_note="(direct has no TLS: the server has no certificate)"
printf 'pgbench -S -c %s -T %s, %s\n' "$clients" "$secs" "$("$bin" version | head -1)"
printf '  direct              %8.0f tps  1.00x %s\n' "$direct" "$direct_tls_note"
printf '  postgres listener   %8.0f tps  %.2fx\n' "$plain" "$(awk "BEGIN{print $plain / $direct}")"
printf '  postgres + TLS      %8.0f tps  %.2fx\n' "$tls" "$(awk "BEGIN{print $tls / $direct}")"
