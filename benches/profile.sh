#!/usr/bin/env bash
# Where an open's overhead goes, by kernel symbol (root; needs perf): one C loop of open+close
# pinned to CPU 0, sampled by perf's cpu-clock (the VM has no hardware counters) bare and then
# under BIN's recorder (pinned to CPU 1). Each symbol's share of the samples times the loop's ns
# per open+close gives its ns per open+close; the table is recorded minus bare, largest first.
# BPF stats (cargo bench --bench capture) time only the program; this also shows the helpers'
# callees (the clock read, the user copy, the ring), the tracepoint dispatch and the syscall
# work the floor pays too. Sampling slows the loop a little (2,500 Hz: a few %; 20 kHz in this
# VM: half again), so the figures are approximate; PROFILE_FREQ sets the rate.
#   sudo benches/profile.sh BIN [SECONDS=10] [PATH=/etc/hostname] [-- RECORD_ARGS…]
set -euo pipefail
bin=$1 secs=${2:-10} path=${3:-/etc/hostname}
shift $(($# < 3 ? $# : 3))
[ "${1:-}" = -- ] && shift
command -v perf >/dev/null || { echo "profile.sh: needs perf (apt-get install linux-perf)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/loop" "$(dirname "$0")/openloop.c"
# Samples CPU 0 for all but the loop's first and last half second; prints the loop's ns/op.
phase() {
  local name=$1
  taskset -c 0 "$work/loop" "$secs" "$path" >"$work/$name.ns" &
  local loop=$!
  sleep 0.5
  perf record -q -e cpu-clock -F "${PROFILE_FREQ:-2500}" -C 0 -o "$work/$name.data" -- sleep "$(echo "$secs - 1" | bc)" 2>/dev/null
  wait "$loop"
  perf report -i "$work/$name.data" --no-children --sort sym --stdio -g none 2>/dev/null |
    awk -v ns="$(cat "$work/$name.ns")" '/^ +[0-9.]+%/ { p = $1; sub("%", "", p); $1 = ""; $2 = ""; sub(/^ +/, ""); print p * ns / 100 "\t" $0 }' >"$work/$name.tsv"
}
phase bare
rm -rf "$work/store"
taskset -c 1 "$bin" --store "$work/store" record "$@" 2>"$work/rec.log" &
rec=$!
for _ in $(seq 100); do grep -q attached "$work/rec.log" && break; sleep 0.1; done
sleep 0.3
phase rec
kill -INT "$rec"
wait "$rec" || { cat "$work/rec.log" >&2; exit 1; }
echo "ns per open+close of $path: bare $(cat "$work/bare.ns"), recorded $(cat "$work/rec.ns")"
printf '%8s %8s %8s  %s\n' "+ns" bare recorded symbol
awk -F'\t' 'FNR == NR { b[$2] = $1; next } { r[$2] = $1 }
  END { for (s in r) printf "%8.1f %8.1f %8.1f  %s\n", r[s] - b[s], b[s], r[s], s
        for (s in b) if (!(s in r)) printf "%8.1f %8.1f %8.1f  %s\n", -b[s], b[s], 0, s }' \
  "$work/bare.tsv" "$work/rec.tsv" | sort -rn | head -"${PROFILE_ROWS:-25}"
