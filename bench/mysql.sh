#!/usr/bin/env bash
# sysbench oltp_read_only against one MariaDB server (started here) four ways, in ONE run,
# interleaved (the order rotates every round): directly; through a switchyard mysql listener (the
# route chosen by database, the client authenticated to the server by the relayed AuthSwitchRequest,
# then the relay), once with the default relay engine (auto: userspace, splice once busy) and once
# with `--relay uring`; through a switchyard tcp listener (no MySQL module: the relay alone, default
# engine, to tell the relay's cost from the module's); and through HAProxy in tcp mode (which cannot
# route by database). Then the
# connection set-up rate of each: PyMySQL processes that connect, authenticate, run nothing and quit,
# in a loop. Per run: tps, qps, p95 latency, the proxy's CPU ticks (its process tree, from
# /proc/PID/stat) and the whole machine's busy ticks (/proc/stat); ratios are to HAProxy and to direct.
#
# Usage: bash bench/mysql.sh [--rounds N] [--seconds S] [--threads T] [--connect-seconds S] [--out FILE.json] [--before BINARY]
# --before: a before/after run of the mysql listener instead, both with `--relay userspace` (where
# the module's per-read code runs): this build ("userspace") against BINARY ("before-userspace").
# (defaults 3 rounds, 10 s, 8 sysbench threads, 5 s of connects; dist/switchyard must be built).
# Installs Debian's sysbench if it is missing (apt-get). switchyard runs with one worker and HAProxy
# with one thread, so one core each.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3; secs=10; threads=8; connect_secs=5; out=""; before=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --connect-seconds) connect_secs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --before) before=$(realpath "$2"); shift 2 ;;
    *) echo "bench/mysql.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bin=$(realpath dist/switchyard)
[ -x "$bin" ] || { echo "bench/mysql.sh: build first (bash scripts/build.sh)" >&2; exit 1; }
if ! command -v sysbench >/dev/null; then
  echo "bench/mysql.sh: installing sysbench (Debian package)..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sysbench >/dev/null
fi
for t in haproxy mariadb mariadb-install-db python3; do command -v "$t" >/dev/null || { echo "bench/mysql.sh: missing $t" >&2; exit 1; }; done
/usr/bin/python3 -c "import pymysql" 2>/dev/null || { echo "bench/mysql.sh: missing python3-pymysql" >&2; exit 1; }

dir=$(mktemp -d /tmp/switchyard-bench-mysql.XXXXXX)
base=$((20000 + RANDOM % 20000)); dbport=$base; syport=$((base + 1)); haport=$((base + 2)); decoy=$((base + 3)); uport=$((base + 4)); tport=$((base + 5)); usport=$((base + 6)); bport=$((base + 7))
user=$(id -un)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# ─── MariaDB ─────────────────────────────────────────────────────────────────────────────────────
mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal --skip-test-db --user="$user" >/dev/null 2>&1
/usr/sbin/mariadbd --no-defaults --datadir="$dir/data" --port="$dbport" --bind-address=127.0.0.1 --socket="$dir/sock" \
  --pid-file="$dir/pid" --user="$user" --skip-log-bin --skip-name-resolve --innodb-buffer-pool-size=256M \
  --max-connections=500 --innodb-flush-log-at-trx-commit=0 --log-error="$dir/mariadb.log" & pids+=($!)
for _ in $(seq 600); do mariadb --no-defaults -S "$dir/sock" -uroot -e "select 1" >/dev/null 2>&1 && break; sleep 0.1; done
mariadb --no-defaults -S "$dir/sock" -uroot -e "select 1" >/dev/null 2>&1 || { echo "bench/mysql.sh: mariadbd did not start" >&2; tail -n 20 "$dir/mariadb.log" >&2; exit 1; }
mariadb --no-defaults -S "$dir/sock" -uroot -e "create database alpha; create database beta;
  create user sb@'%' identified by 'sbpass'; grant all on *.* to sb@'%';"

# ─── switchyard: a mysql listener routing by database (alpha here, beta elsewhere) ───────────────
config() {
  cat <<JSON
{ "log": { "access": "off" }, "listeners": [
  { "name": "db", "listen": "127.0.0.1:$1", "protocol": "mysql", "routes": [
    { "name": "alpha", "match": { "database": "alpha" }, "upstreams": ["127.0.0.1:$dbport"] },
    { "name": "beta", "match": { "database": "beta" }, "upstreams": ["127.0.0.1:$decoy"] } ] } ] }
JSON
}
config "$syport" >"$dir/switchyard.json"
config "$uport" >"$dir/switchyard-uring.json"
config "$usport" >"$dir/userspace.json"
config "$bport" >"$dir/before-userspace.json"
cat >"$dir/switchyard-tcp.json" <<JSON
{ "log": { "access": "off" }, "listeners": [ { "name": "plain", "listen": "127.0.0.1:$tport", "protocol": "tcp", "routes": [ { "upstreams": ["127.0.0.1:$dbport"] } ] } ] }
JSON
"$bin" serve -c "$dir/switchyard.json" --workers 1 2>"$dir/switchyard.log" & sypid=$!; pids+=($sypid)
"$bin" serve -c "$dir/switchyard-uring.json" --workers 1 --relay uring 2>"$dir/switchyard-uring.log" & upid=$!; pids+=($upid)
"$bin" serve -c "$dir/switchyard-tcp.json" --workers 1 2>"$dir/switchyard-tcp.log" & tpid=$!; pids+=($tpid)
logs=(switchyard switchyard-uring switchyard-tcp)
if [ -n "$before" ]; then
  "$bin" serve -c "$dir/userspace.json" --workers 1 --relay userspace 2>"$dir/userspace.log" & uspid=$!; pids+=($uspid)
  "$before" serve -c "$dir/before-userspace.json" --workers 1 --relay userspace 2>"$dir/before-userspace.log" & bpid=$!; pids+=($bpid)
  logs+=(userspace before-userspace)
fi

# ─── HAProxy 2.6, tcp mode, one thread ───────────────────────────────────────────────────────────
cat >"$dir/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend db
  bind 127.0.0.1:$haport
  default_backend mariadb
backend mariadb
  server s1 127.0.0.1:$dbport
CFG
haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 & hapid=$!; pids+=($hapid)
for log in "${logs[@]}"; do
  for _ in $(seq 100); do grep -q "switchyard ready" "$dir/$log.log" && break; sleep 0.1; done
  grep -q "switchyard ready" "$dir/$log.log" || { cat "$dir/$log.log" >&2; exit 1; }
done
sleep 0.5

sb() { sysbench oltp_read_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$1" --mysql-user=sb --mysql-password=sbpass \
  --mysql-db=alpha --tables=4 --table-size=20000 "${@:2}"; }
sb "$dbport" prepare >/dev/null
# Every path must reach the same server by the same database before anything is measured.
for p in "$dbport" "$syport" "$uport" "$tport" "$haport" ${before:+"$usport" "$bport"}; do
  [ "$(mariadb --no-defaults -h 127.0.0.1 -P "$p" -usb -psbpass --skip-ssl -N -B alpha -e 'select count(*) from sbtest1')" = 20000 ] \
    || { echo "bench/mysql.sh: port $p does not reach the server (db $dbport, switchyard $syport, uring $uport, tcp $tport, haproxy $haport)" >&2; tail -n 5 "$dir"/*.log >&2; exit 1; }
done

port_of() { case "$1" in direct) echo "$dbport" ;; switchyard) echo "$syport" ;; switchyard-uring) echo "$uport" ;; switchyard-tcp) echo "$tport" ;; haproxy) echo "$haport" ;; userspace) echo "$usport" ;; before-userspace) echo "$bport" ;; esac; }
pid_of() { case "$1" in direct) echo "" ;; switchyard) echo "$sypid" ;; switchyard-uring) echo "$upid" ;; switchyard-tcp) echo "$tpid" ;; haproxy) echo "$hapid" ;; userspace) echo "$uspid" ;; before-userspace) echo "$bpid" ;; esac; }
# utime+stime+cutime+cstime of a process (its reaped children included), in clock ticks.
proc_ticks() { [ -n "$1" ] && awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" || echo 0; }
host_busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

cat >"$dir/connects.py" <<'PY'
# Connect (the full handshake: greeting, AuthSwitchRequest through switchyard, OK), then quit; repeat for S seconds.
import sys, time, pymysql
port, secs = int(sys.argv[1]), float(sys.argv[2])
kw = {"ssl_disabled": True} if "ssl_disabled" in __import__("inspect").signature(pymysql.connections.Connection.__init__).parameters else {}
n = 0
end = time.monotonic() + secs
while time.monotonic() < end:
    c = pymysql.connect(host="127.0.0.1", port=port, user="sb", password="sbpass", database="alpha", **kw)
    c.close()
    n += 1
print(n)
PY

results="$dir/results.tsv"
: >"$results"
systems=(direct switchyard switchyard-uring switchyard-tcp haproxy)
[ -n "$before" ] && systems=(userspace before-userspace)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench/mysql.sh: $rounds rounds × {${systems[*]}}, sysbench oltp_read_only ${secs}s × $threads threads; connects ${connect_secs}s × 2 processes (load at start: $load_start)" >&2
for round in $(seq "$rounds"); do
  # Rotate the order each round so no system always runs first (or right after another).
  shift_by=$(( (round - 1) % ${#systems[@]} ))
  order=("${systems[@]:$shift_by}" "${systems[@]:0:$shift_by}")
  for s in "${order[@]}"; do
    port=$(port_of "$s"); pid=$(pid_of "$s")
    p0=$(proc_ticks "$pid"); h0=$(host_busy)
    report=$(sb "$port" --threads="$threads" --time="$secs" --percentile=95 --report-interval=0 run)
    p1=$(proc_ticks "$pid"); h1=$(host_busy)
    tps=$(sed -n 's/^ *transactions: *[0-9]* *(\([0-9.]*\) per sec.)/\1/p' <<<"$report")
    qps=$(sed -n 's/^ *queries: *[0-9]* *(\([0-9.]*\) per sec.)/\1/p' <<<"$report")
    p95=$(sed -n 's/^ *95th percentile: *\([0-9.]*\)/\1/p' <<<"$report")
    errors=$(sed -n 's/^ *ignored errors: *\([0-9]*\).*/\1/p' <<<"$report")
    printf 'oltp\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$s" "$tps" "$qps" "$p95" "$((p1 - p0))" "$((h1 - h0))" "${errors:-0}" >>"$results"
    printf '  round %s %-16s %9.1f tps %9.1f qps  p95 %6.2f ms\n' "$round" "$s" "$tps" "$qps" "$p95" >&2
  done
  for s in "${order[@]}"; do
    port=$(port_of "$s"); pid=$(pid_of "$s")
    p0=$(proc_ticks "$pid"); h0=$(host_busy)
    /usr/bin/python3 "$dir/connects.py" "$port" "$connect_secs" >"$dir/c1" & c1=$!
    /usr/bin/python3 "$dir/connects.py" "$port" "$connect_secs" >"$dir/c2" & c2=$!
    wait "$c1" "$c2"
    p1=$(proc_ticks "$pid"); h1=$(host_busy)
    n=$(( $(cat "$dir/c1") + $(cat "$dir/c2") ))
    printf 'connect\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$s" "$n" "$connect_secs" "$((p1 - p0))" "$((h1 - h0))" >>"$results"
    printf '  round %s %-16s %9.1f connects/s\n' "$round" "$s" "$(awk "BEGIN{print $n / $connect_secs}")" >&2
  done
done

version=$("$bin" version | sed -n 1p)
haversion=$(haproxy -v | sed -n 1p)
sbversion=$(sysbench --version)
dbversion=$(/usr/sbin/mariadbd --version)
python3 - "$results" "$rounds" "$secs" "$threads" "$connect_secs" "$version" "$haversion" "$sbversion" "$dbversion" "$load_start" "$(nproc)" "$(uname -r)" "$out" <<'PY'
import json, statistics, sys
path, rounds, secs, threads, csecs, version, haversion, sbversion, dbversion, load, ncpu, kernel, out = sys.argv[1:]
oltp, conn = {}, {}
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if f[0] == "oltp":
        oltp.setdefault(f[2], []).append({"round": int(f[1]), "tps": float(f[3]), "qps": float(f[4]), "p95Ms": float(f[5]),
                                         "proxyTicks": int(f[6]), "hostTicks": int(f[7]), "errors": int(f[8])})
    else:
        conn.setdefault(f[2], []).append({"round": int(f[1]), "connects": int(f[3]), "seconds": float(f[4]), "proxyTicks": int(f[5]), "hostTicks": int(f[6])})
med = lambda xs: statistics.median(xs)
summary = {}
for s, runs in oltp.items():
    summary[s] = {
        "tps": med([r["tps"] for r in runs]), "qps": med([r["qps"] for r in runs]), "p95Ms": med([r["p95Ms"] for r in runs]),
        "tpsRounds": [r["tps"] for r in runs], "p95Rounds": [r["p95Ms"] for r in runs],
        "proxyTicksPer1kTx": med([r["proxyTicks"] / (r["tps"] * float(secs)) * 1000 for r in runs]),
        "hostTicksPer1kTx": med([r["hostTicks"] / (r["tps"] * float(secs)) * 1000 for r in runs]),
        "connectsPerSecond": med([c["connects"] / c["seconds"] for c in conn.get(s, [])]),
        "connectsRounds": [round(c["connects"] / c["seconds"], 1) for c in conn.get(s, [])],
        "proxyTicksPer1kConnects": med([c["proxyTicks"] / c["connects"] * 1000 for c in conn.get(s, [])]),
    }
def ratio(a, b, key):
    return summary[a][key] / summary[b][key]
# Per-round ratios (same round, adjacent runs) show the spread better than a ratio of medians.
def round_ratios(a, b, key, table):
    by = {r["round"]: r for r in table[b]}
    return [round(r[key] / by[r["round"]][key], 3) for r in table[a]]
def spread(xs):
    return {"median": med(xs), "min": min(xs), "max": max(xs)}
def versus(a, b):
    tps = round_ratios(a, b, "tps", oltp)
    return {"tps": ratio(a, b, "tps"), "qps": ratio(a, b, "qps"), "p95": ratio(a, b, "p95Ms"),
            "tpsRounds": tps, "tpsRoundRatio": spread(tps), "p95RoundRatio": spread(round_ratios(a, b, "p95Ms", oltp)),
            "connects": ratio(a, b, "connectsPerSecond"), "connectsRounds": round_ratios(a, b, "connects", conn),
            "connectsRoundRatio": spread(round_ratios(a, b, "connects", conn)),
            "proxyTicksPerTx": ratio(a, b, "proxyTicksPer1kTx") if summary[b]["proxyTicksPer1kTx"] else None}
if "before-userspace" in summary:
    r = versus("userspace", "before-userspace")
    doc = {"bench": "bench/mysql.sh --before", "rounds": int(rounds), "seconds": int(secs), "threads": int(threads), "switchyard": version,
           "cpus": int(ncpu), "kernel": kernel, "loadAtStart": load, "summary": summary, "afterVsBefore": r, "runs": {"oltp": oltp, "connect": conn}}
    if out: open(out, "w").write(json.dumps(doc, indent=2) + "\n")
    for s in ("userspace", "before-userspace"):
        m = summary[s]
        print(f"{s:<17} {m['tps']:9.1f} tps {m['p95Ms']:7.2f} ms p95 {m['proxyTicksPer1kTx']:8.2f} proxy ticks/1k tx {m['connectsPerSecond']:8.1f} connects/s")
    t = r["tpsRoundRatio"]
    print(f"after / before: tps {t['median']:.3f} ({t['min']:.2f}..{t['max']:.2f}), proxy CPU per tx {r['proxyTicksPerTx']:.3f}, connects/s {r['connectsRoundRatio']['median']:.3f}")
    sys.exit(0)
ratios = {
    "switchyardVsHaproxy": versus("switchyard", "haproxy"),
    "uringVsHaproxy": versus("switchyard-uring", "haproxy"),
    "tcpListenerVsHaproxy": versus("switchyard-tcp", "haproxy"),
    "switchyardVsDirect": versus("switchyard", "direct"),
    "haproxyVsDirect": versus("haproxy", "direct"),
}
# The goal is read on the median of the per-round ratios (each from two runs of the same round).
goal = ratios["switchyardVsHaproxy"]["tpsRoundRatio"]["median"] >= 0.95
goal_uring = ratios["uringVsHaproxy"]["tpsRoundRatio"]["median"] >= 0.95
doc = {"bench": "bench/mysql.sh", "rounds": int(rounds), "seconds": int(secs), "threads": int(threads), "connectSeconds": float(csecs),
       "switchyard": version, "haproxy": haversion, "sysbench": sbversion, "server": dbversion, "cpus": int(ncpu), "kernel": kernel,
       "loadAtStart": load, "summary": summary, "ratios": ratios, "goalWithin5PercentOfHaproxy": {"switchyard": goal, "switchyard-uring": goal_uring}, "runs": {"oltp": oltp, "connect": conn}}
text = json.dumps(doc, indent=2)
if out:
    open(out, "w").write(text + "\n")
print(f"{'system':<17} {'tps':>9} {'qps':>10} {'p95 ms':>7} {'proxy ticks/1k tx':>18} {'connects/s':>11} {'proxy ticks/1k conn':>20}")
for s in ("direct", "switchyard", "switchyard-uring", "switchyard-tcp", "haproxy"):
    m = summary[s]
    print(f"{s:<17} {m['tps']:9.1f} {m['qps']:10.1f} {m['p95Ms']:7.2f} {m['proxyTicksPer1kTx']:18.2f} {m['connectsPerSecond']:11.1f} {m['proxyTicksPer1kConnects']:20.1f}")
for name, key, met in (("switchyard", "switchyardVsHaproxy", goal), ("switchyard-uring", "uringVsHaproxy", goal_uring), ("switchyard-tcp (no routing)", "tcpListenerVsHaproxy", None)):
    r = ratios[key]
    t, c = r["tpsRoundRatio"], r["connectsRoundRatio"]
    print(f"{name} / haproxy: tps {t['median']:.3f} (rounds {t['min']:.2f}..{t['max']:.2f}), p95 {r['p95RoundRatio']['median']:.3f}, "
          f"connects/s {c['median']:.3f} ({c['min']:.2f}..{c['max']:.2f}), proxy CPU per tx {r['proxyTicksPerTx']:.2f}; goal (tps within 5 %): {'-' if met is None else 'met' if met else 'NOT met'}")
PY
