#!/usr/bin/env bash
# Reproduces the sockmap engine's duplicated bytes (README, Relay engines): bench/loadgen
# request/response through `switchyard serve --relay sockmap` to a loadgen echo, N runs of 3 s with
# 1 MiB messages (larger than a fresh socket's send buffer, so the kernel's redirect backlog waits on
# a full destination) and N with 64 KiB messages (it rarely does). loadgen counts an echo that
# returns more bytes than were sent as `unexpected_data`, which only a duplicating path can cause.
#
#   bash bench/sockmap-duplicates.sh [N]      (default 10; needs `bash scripts/build.sh` and root)
#   RELAY=splice bash bench/sockmap-duplicates.sh [N]    the same through splice, as a control
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
relay=${RELAY:-sockmap}
lg=bench/loadgen/zig-out/bin/loadgen
work=$(mktemp -d /tmp/switchyard-sockmap-dup.XXXXXX)
pids=()
cleanup() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Waits for a line matching $2 in file $1 and prints its last field.
address_in() {
  for _ in $(seq 1 100); do
    local line; line=$(grep -m1 -E "$2" "$1" 2>/dev/null) && { echo "${line##*[ =]}"; return 0; }
    sleep 0.05
  done
  echo "sockmap-duplicates: no '$2' in $1" >&2; cat "$1" >&2; return 1
}

"$lg" serve --listen 127.0.0.1:0 --mode echo --threads 1 >"$work/echo.log" 2>&1 &
pids+=($!)
echo_at=$(address_in "$work/echo.log" '^LISTENING ') || exit 1
SWITCHYARD_NATIVE_SOCKMAP=experimental dist/switchyard serve --listen 127.0.0.1:0 --backend "$echo_at" --relay "$relay" \
  >/dev/null 2>"$work/proxy.log" &
pids+=($!)
proxy_at=$(address_in "$work/proxy.log" 'INFO +listening address=') || exit 1
grep -q "relay engine: $relay" "$work/proxy.log" || { echo "sockmap-duplicates: $relay is not in use:" >&2; cat "$work/proxy.log" >&2; exit 1; }

for size in 1048576 65536; do
  dup=0; other=0; bytes=0
  for _ in $(seq 1 "$runs"); do
    "$lg" rr --target "$proxy_at" --connections 4 --size "$size" --duration 3 --warmup 0 --threads 1 --json >"$work/rr.json"
    read -r moved errors unexpected < <(node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      console.log(r.bytes_sent + r.bytes_received, r.errors_total, r.error_other_last === "unexpected_data" ? 1 : 0);' "$work/rr.json")
    bytes=$((bytes + moved))
    [ "$unexpected" = 1 ] && dup=$((dup + 1))
    [ "$errors" -gt 0 ] && [ "$unexpected" = 0 ] && other=$((other + 1))
  done
  echo "relay $relay, size $size: $runs runs, $((bytes / 1073741824)) GiB echoed; runs where bytes came back twice: $dup; runs with other errors: $other"
done
