#!/usr/bin/env bash
# Runs every test: type check, the native library's Zig unit tests, the load generator's, and the
# bun:test suites (unit, then integration against the compiled binary). Ends with the line CI reads:
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
zig="$PWD/tools/zig/ziglang/zig"
bun="$PWD/node_modules/.bin/bun"
passed=0; failed=0
log=$(mktemp)

step() { # name, command...: a step that passes or fails as a whole
  local name=$1; shift
  if "$@" >"$log" 2>&1; then passed=$((passed + 1)); echo "ok    $name"
  else failed=$((failed + 1)); echo "FAIL  $name"; tail -n 40 "$log"; fi
}

step "typecheck (tsc --noEmit, strict)" node_modules/.bin/tsc -p .
step "native: zig build test" bash -c "cd native && '$zig' build test"
[ -f bench/loadgen/build.zig ] && step "loadgen: zig build test" bash -c "cd bench/loadgen && '$zig' build test"

# bun:test counts each test; its summary lines are " N pass" / " N fail". The tests run in three bun
# processes (unit, then each half of the integration files): Bun 1.4.5's test runner segfaults (at the
# same address each time, 0x18CA6) in a process that has run integration tests for over ~6 minutes,
# first seen when unit and integration shared one process, again when the integration files alone
# grew past that. A crashed process prints no summary and counts as a failure below.
integration=(test/integration/*.test.ts)
half=$(( (${#integration[@]} + 1) / 2 ))
run_bun() { # name, files...
  local name=$1; shift
  "$bun" test --timeout 120000 "$@" 2>&1 | tee "$log"
  bun_pass=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  bun_fail=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  if [ "$bun_pass" -eq 0 ] && [ "$bun_fail" -eq 0 ]; then bun_fail=1; echo "FAIL  bun test $name ran no test (or crashed)"; fi
  passed=$((passed + bun_pass)); failed=$((failed + bun_fail))
}
run_bun test/unit test/unit
run_bun "test/integration (first half)" "${integration[@]:0:$half}"
run_bun "test/integration (second half)" "${integration[@]:$half}"
rm -f "$log"

# The benchmark's quick mode checks the tools work end to end (figures come from `npm run bench`).
# It needs HAProxy, nginx, wrk and hyperfine from Debian, which .ci/run installs.
bench_tools_missing=$(for t in haproxy nginx wrk hyperfine; do command -v "$t" >/dev/null || printf '%s ' "$t"; done)
if [ -n "$bench_tools_missing" ]; then
  echo "skip  bench quick mode: not installed: $bench_tools_missing(apt-get install haproxy nginx libnginx-mod-stream wrk hyperfine)"
elif [ "${SWITCHYARD_BENCH_QUICK:-1}" = "1" ]; then
  if bash bench/run.sh --quick >/tmp/switchyard-bench-quick.log 2>&1; then passed=$((passed + 1)); echo "ok    bench quick mode (tools work end to end)"
  else failed=$((failed + 1)); echo "FAIL  bench quick mode"; tail -n 40 /tmp/switchyard-bench-quick.log; fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
