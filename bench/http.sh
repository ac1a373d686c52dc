#!/usr/bin/env bash
# HTTP/1.1 reverse-proxy benchmark (issue 14): switchyard's http listener against HAProxy 2.6 (mode
# http, http-reuse always) and nginx proxy_pass (upstream keepalive), in front of one nginx backend,
# with wrk keep-alive load; interleaved rounds in one run; then memory per idle keep-alive client.
# See bench/README.md ("HTTP").
#
#   bash bench/http.sh                        default: 3 rounds of 5 s, loads 64x100,256x100,64x4k,256x4k
#   bash bench/http.sh --out bench/results/2026-12-03-http     also writes OUT.json and OUT.table.md
#   bash bench/http.sh --switchyard base=/tmp/a --switchyard new=dist/switchyard --systems switchyard/w1,haproxy/t1 \
#        --loads 64x100 --rounds 5 --duration 4 --no-memory            A/B of two binaries in one run
#   options: --rounds N --duration S --warmup S --loads CxSIZE,... (SIZE 100 or 4k) --systems a,b
#            --switchyard LABEL=PATH (repeatable) --idle N --no-memory --wrk-threads N --out PREFIX
#
# Every process it starts is stopped by pid (also on Ctrl-C); nginx runs from its own prefix in a temp dir.
set -uo pipefail
cd "$(dirname "$0")/.."

bun=node_modules/.bin/bun
if ! command -v wrk >/dev/null; then
  echo "bench/http.sh: installing wrk (Debian package)" >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq --no-install-recommends wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null; }; fi
fi
missing=()
for t in haproxy nginx wrk; do command -v "$t" >/dev/null || missing+=("$t"); done
[ -x "$bun" ] || missing+=("$bun")
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/http.sh: missing ${missing[*]} (apt-get install haproxy nginx wrk)" >&2
  exit 1
fi
has_binary=0
for a in "$@"; do [ "$a" = "--switchyard" ] && has_binary=1; done
if [ $has_binary = 0 ] && [ ! -x dist/switchyard ]; then
  echo "bench/http.sh: dist/switchyard missing (bash scripts/build.sh)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/switchyard-http-bench.XXXXXX)
ulimit -n "$(ulimit -Hn)" 2>/dev/null
cleanup() {
  local pids=()
  if [ -f "$work/pids" ]; then
    while read -r pid _; do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && pids+=("$pid"); done <"$work/pids"
  fi
  if [ ${#pids[@]} -gt 0 ]; then
    echo "bench/http.sh: stopping leftover processes ${pids[*]}" >&2
    kill -TERM "${pids[@]}" 2>/dev/null
    sleep 1
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
  fi
}
trap cleanup EXIT
"$bun" bench/http/main.ts --workdir "$work" --command "bash bench/http.sh${*:+ $*}" "$@" &
runner=$!
trap 'kill -TERM $runner 2>/dev/null; wait $runner; exit 130' INT TERM
wait $runner
status=$?
[ $status = 0 ] && rm -rf "$work" || echo "bench/http.sh: logs and configs kept in $work" >&2
exit $status
