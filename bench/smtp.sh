#!/usr/bin/env bash
# SMTP messages per second and proxy CPU per message, in ONE run, interleaved: smtp-source (Postfix)
# `-s SESSIONS -m MESSAGES -l 10240` (one connection per message, 10 kB each) against one smtp-sink,
# directly and through switchyard (an smtp listener), HAProxy 2.6 (TCP mode) and nginx's mail proxy
# (libnginx-mod-mail: `smtp_auth none`, `xclient off`; its auth_http answer comes from a location of
# the same nginx, so that cost is in nginx's process tree). Each proxy runs on one core (switchyard
# workers 1, HAProxy nbthread 1, nginx worker_processes 1). Per run: messages/s, the proxy's CPU
# per message (utime+stime of its process tree, children included, from /proc), and the whole
# machine's busy time per message (/proc/stat, everything: load generator, sink, proxy).
#
#   bash bench/smtp.sh [BINARY=dist/switchyard] [ROUNDS=3] [MESSAGES=5000] [SESSIONS=20] [JSON_OUT]
#
# BINARY_B=PATH adds "switchyard-b", a second switchyard binary on its own port, to the rotation
# (before/after a change, in the same run).
# Prints one line per run and a summary (median per system, ratio to direct, spread); writes the
# runs as JSON to JSON_OUT when given.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-dist/switchyard}"); rounds=${2:-3}; msgs=${3:-5000}; sessions=${4:-20}; json_out=${5:-}
systems=${SYSTEMS:-"direct switchyard${BINARY_B:+ switchyard-b} haproxy nginx"}
dir=$(mktemp -d); chmod 755 "$dir"
base=$((20000 + RANDOM % 20000))
sink=$base; sy=$((base + 1)); hap=$((base + 2)); ngx=$((base + 3)); auth=$((base + 4)); syb=$((base + 5))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
[ -n "${KEEP:-}" ] && cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; echo "kept $dir" >&2; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }

# The sink: accepts everything, stores nothing (no -d), backlog 256.
smtp-sink -u nobody 127.0.0.1:$sink 256 2>"$dir/sink.log" & pids+=($!)

cat >"$dir/switchyard.jsonc" <<JSON
{ "workers": 1, "log": { "access": "off", "level": "warn" }, "listeners": [
  { "name": "mx", "listen": "127.0.0.1:$sy", "protocol": "smtp", "smtp": { "hostname": "mx.test" },
    "routes": [{ "upstreams": ["127.0.0.1:$sink"] }] } ] }
JSON
"$bin" serve -c "$dir/switchyard.jsonc" 2>"$dir/switchyard.log" & sy_pid=$!; pids+=($sy_pid)
syb_pid=""
if [ -n "${BINARY_B:-}" ]; then
  sed "s/127.0.0.1:$sy/127.0.0.1:$syb/" "$dir/switchyard.jsonc" >"$dir/switchyard-b.jsonc"
  "$(realpath "$BINARY_B")" serve -c "$dir/switchyard-b.jsonc" 2>"$dir/switchyard-b.log" & syb_pid=$!; pids+=($syb_pid)
fi

cat >"$dir/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend mx
  bind 127.0.0.1:$hap
  default_backend sink
backend sink
  server s 127.0.0.1:$sink
CFG
haproxy -db -f "$dir/haproxy.cfg" 2>"$dir/haproxy.log" & hap_pid=$!; pids+=($hap_pid)

cat >"$dir/nginx.conf" <<CFG
load_module /usr/lib/nginx/modules/ngx_mail_module.so;
worker_processes 1;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  # nginx mail's auth_http: every session is sent to the sink.
  server {
    listen 127.0.0.1:$auth;
    location = /auth {
      add_header Auth-Status OK;
      add_header Auth-Server 127.0.0.1;
      add_header Auth-Port $sink;
      return 204;
    }
  }
}
mail {
  server_name mx.test;
  auth_http 127.0.0.1:$auth/auth;
  server {
    listen 127.0.0.1:$ngx;
    protocol smtp;
    smtp_auth none;
    xclient off;
  }
}
CFG
nginx -c "$dir/nginx.conf" 2>"$dir/nginx.log" & ngx_pid=$!; pids+=($ngx_pid)

wait_port $sink; wait_port $sy; wait_port $hap; wait_port $ngx; [ -z "$syb_pid" ] || wait_port $syb
for _ in $(seq 100); do grep -q "switchyard ready" "$dir/switchyard.log" && break; sleep 0.1; done
tck=$(getconf CLK_TCK)

# utime+stime+cutime+cstime of PID and every descendant, in ticks.
tree_ticks() {
  local all=" $1 " changed=1
  while [ $changed = 1 ]; do
    changed=0
    for s in /proc/[0-9]*/stat; do
      read -r line 2>/dev/null <"$s" || continue
      local rest=${line##*) } pid=${s#/proc/}; pid=${pid%/stat}
      set -- $rest
      case "$all" in *" $2 "*) case "$all" in *" $pid "*) ;; *) all="$all$pid "; changed=1 ;; esac ;; esac
    done
  done
  local sum=0
  for p in $all; do
    [ -r "/proc/$p/stat" ] || continue
    read -r line 2>/dev/null <"/proc/$p/stat" || continue
    set -- ${line##*) }
    sum=$((sum + ${12} + ${13} + ${14} + ${15}))
  done
  echo $sum
}
# Busy and total jiffies of the whole machine.
machine() { read -r _ u n s i w q sq st _ </proc/stat; echo "$((u + n + s + q + sq + st)) $((u + n + s + q + sq + st + i + w))"; }

port_of() { case $1 in direct) echo $sink ;; switchyard) echo $sy ;; switchyard-b) echo $syb ;; haproxy) echo $hap ;; nginx) echo $ngx ;; esac; }
pid_of() { case $1 in direct) echo "" ;; switchyard) echo $sy_pid ;; switchyard-b) echo $syb_pid ;; haproxy) echo $hap_pid ;; nginx) echo $ngx_pid ;; esac; }

# Warm every path once (JIT, first connections).
for sys in $systems; do smtp-source -s 4 -m 200 -l 10240 -f s@x.test -t r@m.test 127.0.0.1:$(port_of $sys) >/dev/null 2>&1 || true; done

runs="$dir/runs.tsv"; : >"$runs"
printf '%-10s %5s %10s %14s %16s\n' system round "msg/s" "proxy us/msg" "machine us/msg"
for round in $(seq "$rounds"); do
  for sys in $systems; do
    pid=$(pid_of $sys)
    before=0; [ -n "$pid" ] && before=$(tree_ticks "$pid")
    read -r busy0 total0 < <(machine)
    t0=$(date +%s.%N)
    if ! smtp-source -s "$sessions" -m "$msgs" -l 10240 -f s@x.test -t r@m.test 127.0.0.1:$(port_of $sys) >"$dir/source.out" 2>"$dir/source.err"; then
      echo "smtp-source failed on $sys: $(tail -3 "$dir/source.err")" >&2; exit 1
    fi
    t1=$(date +%s.%N)
    read -r busy1 total1 < <(machine)
    after=0; [ -n "$pid" ] && after=$(tree_ticks "$pid")
    errors=$(grep -ci 'error\|fatal\|warning' "$dir/source.err" || true)
    awk -v sys=$sys -v r=$round -v m=$msgs -v t0=$t0 -v t1=$t1 -v pt=$((after - before)) -v mb=$((busy1 - busy0)) -v tck=$tck -v e=$errors 'BEGIN {
      s = t1 - t0; rate = m / s; proxy = pt / tck * 1e6 / m; mach = mb / tck * 1e6 / m;
      printf "%s\t%d\t%.1f\t%.1f\t%.1f\t%d\n", sys, r, rate, proxy, mach, e }' >>"$runs"
    tail -1 "$runs" | awk -F'\t' '{ note = ($6 > 0) ? "  (" $6 " smtp-source errors)" : ""; printf "%-10s %5d %10.0f %14.0f %16.0f%s\n", $1, $2, $3, $4, $5, note }'
  done
done

echo
echo "median of $rounds rounds (min-max), smtp-source -s $sessions -m $msgs -l 10240, $("$bin" version | head -1)${BINARY_B:+, switchyard-b: $("$BINARY_B" version | head -1)}, $(haproxy -v | head -1 | cut -d' ' -f1-3), $(nginx -v 2>&1 | cut -d' ' -f3)"
awk -F'\t' -v systems="$systems" '
  { rate[$1] = rate[$1] " " $3; cpu[$1] = cpu[$1] " " $4; mach[$1] = mach[$1] " " $5 }
  function sorted(list, a,   n, i, j, t) { n = split(list, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t } return n }
  function med(list,   a, n) { n = sorted(list, a); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  function lo(list,   a) { sorted(list, a); return a[1] }
  function hi(list,   a, n) { n = sorted(list, a); return a[n] }
  END {
    split(systems, s, " "); d = med(rate["direct"]);
    printf "%-10s %22s %8s %24s %22s\n", "system", "msg/s", "vs direct", "proxy CPU us/msg", "machine busy us/msg";
    for (i = 1; s[i] != ""; i++) { k = s[i];
      printf "%-10s %8.0f (%5.0f-%5.0f) %8.2fx %8.0f (%5.0f-%5.0f) %8.0f (%5.0f-%5.0f)\n", k, med(rate[k]), lo(rate[k]), hi(rate[k]), (d > 0 ? med(rate[k]) / d : 0),
        med(cpu[k]), lo(cpu[k]), hi(cpu[k]), med(mach[k]), lo(mach[k]), hi(mach[k]) }
  }' "$runs"

if [ -n "$json_out" ]; then
  awk -F'\t' -v m=$msgs -v s=$sessions -v cmd="bash bench/smtp.sh $* " 'BEGIN { printf "{\n  \"command\": \"%s\",\n  \"load\": \"smtp-source -s %d -m %d -l 10240\",\n  \"runs\": [\n", cmd, s, m }
    { printf "%s    {\"system\": \"%s\", \"round\": %d, \"messagesPerSecond\": %s, \"proxyCpuUsPerMessage\": %s, \"machineBusyUsPerMessage\": %s, \"sourceErrors\": %d}", (NR > 1 ? ",\n" : ""), $1, $2, $3, $4, $5, $6 }
    END { printf "\n  ]\n}\n" }' "$runs" >"$json_out"
fi
