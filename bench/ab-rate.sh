#!/usr/bin/env bash
# A/B of the per-connection path: new connections per second (connect, 1 KB echo, close; 50 at a
# time) through two switchyard binaries in turn, same loadgen echo backend, userspace relay, one
# process. Alternating rounds spread a noisy host's swings over both. Every process it starts is
# stopped by pid.
#   bash bench/ab-rate.sh BEFORE_BINARY AFTER_BINARY [ROUNDS=5] [SECONDS=4]
set -u
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bash bench/ab-rate.sh BEFORE_BINARY AFTER_BINARY [ROUNDS] [SECONDS]" >&2; exit 2; }
before=$1; after=$2; rounds=${3:-5}; seconds=${4:-4}
lg=bench/loadgen/zig-out/bin/loadgen
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
backend=$(port); front=$(port)
"$lg" serve --listen "127.0.0.1:$backend" --mode echo --threads 1 >/dev/null 2>&1 & bpid=$!
trap 'kill $bpid 2>/dev/null' EXIT
sleep 0.5
for round in $(seq "$rounds"); do
  for side in before after; do
    bin=$before; [ "$side" = after ] && bin=$after
    "$bin" serve --listen "127.0.0.1:$front" --backend "127.0.0.1:$backend" --relay userspace --log-level error >/dev/null 2>&1 & ppid=$!
    sleep 0.7
    r=$("$lg" rate --target "127.0.0.1:$front" --connections 50 --size 1024 --duration "$seconds" --warmup 1 --threads 1 --json 2>/dev/null |
      python3 -c 'import json,sys; print(round(json.load(sys.stdin)["connections_per_s"]))')
    kill "$ppid"; wait "$ppid" 2>/dev/null
    echo "round $round $side $r conn/s (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done
