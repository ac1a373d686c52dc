#!/usr/bin/env bash
# The benchmark suite: switchyard against HAProxy, nginx (stream) and a direct connection, all in front
# of the same loadgen backend. See bench/README.md.
#
#   bash bench/run.sh            full run (3 interleaved rounds of 5 s runs, ~10 min); results in bench/results/
#   bash bench/run.sh --quick    smoke test (~1 min): 1 round of 1 s runs; results in a temp dir; exit 1 if broken
#   options: --rounds N --duration S --warmup S --hold N --scenarios rr-1k,bulk,http,hold,tls-rr,tls-new,tls-resume,rate --label L --out DIR
#
# Expects dist/switchyard and bench/loadgen/zig-out/bin/loadgen (`bash scripts/build.sh`; `npm run bench`
# builds first). Every process the runner starts is stopped by pid at the end, also on failure or Ctrl-C.
set -uo pipefail
cd "$(dirname "$0")/.."

bun=node_modules/.bin/bun
missing=()
for f in dist/switchyard bench/loadgen/zig-out/bin/loadgen "$bun"; do [ -x "$f" ] || missing+=("$f"); done
for t in haproxy nginx wrk hyperfine openssl redis-server redis-benchmark; do command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: missing ${missing[*]} (build with 'bash scripts/build.sh'; install the tools with apt-get install haproxy nginx libnginx-mod-stream wrk hyperfine redis-server redis-tools)" >&2
  exit 1
fi

quick=0
for a in "$@"; do [ "$a" = "--quick" ] && quick=1; done
work=$(mktemp -d /tmp/switchyard-bench-work.XXXXXX)
extra=()
if [ $quick = 1 ]; then
  out=$(mktemp -d /tmp/switchyard-bench-quick.XXXXXX)
  extra+=(--out "$out")
fi
if [ -n "${npm_lifecycle_event:-}" ]; then command="npm run $npm_lifecycle_event"; else command="bash bench/run.sh${*:+ $*}"; fi

# Backstop for the runner's own cleanup: every pid it started is listed in $work/pids while alive.
cleanup() {
  local pids=()
  if [ -f "$work/pids" ]; then
    while read -r pid _; do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && pids+=("$pid"); done <"$work/pids"
  fi
  if [ ${#pids[@]} -gt 0 ]; then
    echo "bench: stopping leftover processes ${pids[*]}" >&2
    kill -TERM "${pids[@]}" 2>/dev/null
    sleep 1
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
  fi
}
trap cleanup EXIT

ulimit -n "$(ulimit -Hn)" 2>/dev/null
# In the background so that a signal to this script (Ctrl-C, kill) is handled at once: the runner is
# asked to stop (it then stops everything it started), and cleanup() catches anything left over.
"$bun" bench/runner/main.ts --workdir "$work" --command "$command" "${extra[@]}" "$@" &
runner=$!
on_signal() {
  trap '' INT TERM
  echo "bench: interrupted, stopping the runner (pid $runner)" >&2
  kill -TERM "$runner" 2>/dev/null
  wait "$runner"
  echo "bench: interrupted; logs and configs kept in $work" >&2
  exit 130
}
trap on_signal INT TERM
wait "$runner"
rc=$?
trap - INT TERM
if [ $rc -eq 0 ]; then
  rm -rf "$work"
else
  echo "bench: failed (exit $rc); logs and configs kept in $work" >&2
fi
if [ $quick = 1 ]; then
  if [ $rc -eq 0 ]; then echo "bench quick: OK, results written to $out (not to bench/results)"
  else echo "bench quick: FAILED, results (if any) in $out" >&2; fi
fi
exit $rc
