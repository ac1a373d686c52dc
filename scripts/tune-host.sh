#!/usr/bin/env bash
# Kernel settings for a benchmark host (the usual advice for HAProxy/nginx load tests): deeper accept
# queues, a wider ephemeral port range, TIME_WAIT reuse, bigger socket buffers, more file descriptors.
# Nothing here is applied by bench/run.sh; run it yourself, and undo it afterwards.
#
#   scripts/tune-host.sh show     current value and the value `apply` would set, for each setting
#   scripts/tune-host.sh apply    change them (root), printing "key: old -> new"; saves the old values
#   scripts/tune-host.sh undo     restore the saved values (root) and remove the saved file
#
# The saved values go to $TUNE_HOST_STATE (default /var/tmp/switchyard-tune-host.saved). `apply`
# refuses to run twice without an `undo` in between, so the file always holds the host's own values.
# Settings are runtime only (sysctl -w via /proc/sys): a reboot also undoes them.
set -euo pipefail

state=${TUNE_HOST_STATE:-/var/tmp/switchyard-tune-host.saved}

# key | target | how: "set" = exactly this value; "raise" = only if the current value is lower
settings=(
  "net.core.somaxconn|65535|raise"               # accept queue limit (listen backlog is capped by it)
  "net.ipv4.tcp_max_syn_backlog|65535|raise"     # half-open connections queued per listener
  "net.core.netdev_max_backlog|250000|raise"     # packets queued per CPU before the stack takes them
  "net.ipv4.ip_local_port_range|1024 65535|set"  # ephemeral ports for outgoing connections (load generator, proxy -> backend)
  "net.ipv4.tcp_tw_reuse|1|set"                  # reuse TIME_WAIT ports for new outgoing connections (2 = loopback only)
  "net.ipv4.tcp_fin_timeout|15|set"              # seconds in FIN_WAIT_2
  "net.ipv4.tcp_max_tw_buckets|2000000|raise"    # TIME_WAIT sockets kept before the kernel destroys them early
  "net.core.rmem_max|16777216|raise"             # largest receive buffer setsockopt may ask for
  "net.core.wmem_max|16777216|raise"             # largest send buffer setsockopt may ask for
  "fs.file-max|2097152|raise"                    # open files, system-wide
  "fs.nr_open|1048576|raise"                     # largest per-process open-file limit (ulimit -n)
)

path_of() { echo "/proc/sys/${1//./\/}"; }
read_value() { tr -s ' \t' ' ' <"$(path_of "$1")" | sed 's/ $//'; }

# prints the value apply would set, given the current one
target_of() {
  local current=$1 target=$2 how=$3
  if [ "$how" = raise ] && [ "$current" -ge "$target" ] 2>/dev/null; then echo "$current"; else echo "$target"; fi
}

need_root() {
  if [ "$(id -u)" -ne 0 ]; then echo "tune-host: $1 needs root" >&2; exit 1; fi
}

cmd=${1:-show}
case "$cmd" in
  show)
    printf '%-32s %-22s %s\n' "setting" "current" "apply would set"
    for s in "${settings[@]}"; do
      IFS='|' read -r key target how <<<"$s"
      if [ ! -e "$(path_of "$key")" ]; then printf '%-32s %s\n' "$key" "(not available here)"; continue; fi
      cur=$(read_value "$key")
      printf '%-32s %-22s %s\n' "$key" "$cur" "$(target_of "$cur" "$target" "$how")"
    done
    if [ -f "$state" ]; then echo "applied: yes (saved values in $state; 'undo' restores them)"; else echo "applied: no"; fi
    ;;
  apply)
    need_root apply
    if [ -f "$state" ]; then echo "tune-host: already applied ($state exists); run 'undo' first" >&2; exit 1; fi
    tmp=$(mktemp "$state.XXXXXX")
    for s in "${settings[@]}"; do
      IFS='|' read -r key target how <<<"$s"
      if [ ! -e "$(path_of "$key")" ]; then echo "$key: not available here, skipped"; continue; fi
      cur=$(read_value "$key")
      new=$(target_of "$cur" "$target" "$how")
      if [ "$cur" = "$new" ]; then echo "$key: $cur (unchanged)"; continue; fi
      echo "$key|$cur" >>"$tmp"
      echo "$new" >"$(path_of "$key")"
      echo "$key: $cur -> $(read_value "$key")"
    done
    mv "$tmp" "$state"
    echo "old values saved in $state; 'scripts/tune-host.sh undo' restores them"
    ;;
  undo)
    need_root undo
    if [ ! -f "$state" ]; then echo "tune-host: nothing to undo ($state does not exist)"; exit 0; fi
    while IFS='|' read -r key old; do
      [ -n "$key" ] || continue
      cur=$(read_value "$key")
      echo "$old" >"$(path_of "$key")"
      echo "$key: $cur -> $(read_value "$key")"
    done <"$state"
    rm -f "$state"
    echo "restored; $state removed"
    ;;
  *)
    echo "usage: $0 show|apply|undo" >&2
    exit 2
    ;;
esac
