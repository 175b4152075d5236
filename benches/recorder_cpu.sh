#!/usr/bin/env bash
# The recorder's own cost per event, A/B of two builds interleaved (root): each round records one
# C loop of open+close of /etc/hostname (pinned to CPU 0) with OLD then NEW (pinned to CPU 1), and
# reads the recorder's CPU time (utime+stime, /proc/PID/stat) and the bytes it passed to write
# calls (wchar, /proc/PID/io) from just before the loop until it has stored the loop's events.
# Prints per round and, at the end, each build's mean CPU seconds per million events and bytes
# written per event. SECONDS=0 records an idle host for 10 s instead (then: bytes per second).
#   sudo benches/recorder_cpu.sh OLD_BINARY NEW_BINARY [ROUNDS=4] [SECONDS=5] [-- RECORD_ARGS…]
# Steadier than the capture bench's CPU column: nothing else runs on the recorder's CPU.
set -euo pipefail
. "$(dirname "$0")/ab_common.sh"
ab_args 4 5 "$@"
set -- "${record_args[@]}"
hz=$(getconf CLK_TCK)
# An idle measurement's length, and the wait after the loop for its events to be stored (the
# reorder window and the queue): an idle figure is per second of both.
idle=10 settle=1.5
events() { grep -o 'recorded [0-9]*' "$work/rec.log" | awk '{ print $2 }'; }
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
wchar() { awk '/^wchar/ { print $2 }' "/proc/$1/io"; }
measure() {
  start_recorder "$@"
  sleep 1
  local c0 w0 c1 w1
  c0=$(cpu "$pid") w0=$(wchar "$pid")
  if [ "$secs" = 0 ]; then sleep "$idle"; else taskset -c 0 "$work/loop" "$secs" >/dev/null; fi
  sleep "$settle"
  c1=$(cpu "$pid") w1=$(wchar "$pid")
  stop_recorder
  echo "$(events) $((c1 - c0)) $((w1 - w0))"
}
for _ in $(seq "$rounds"); do
  echo "old $(measure "$old" "$@") new $(measure "$new" "$@")"
done | tee "$work/out"
awk -v hz="$hz" -v secs="$secs" -v idle="$idle" -v settle="$settle" '{ oe += $2; oc += $3; ow += $4; ne += $6; nc += $7; nw += $8 }
  END {
    span = idle + settle
    if (secs == 0)
      printf "idle: old %.0f bytes/s, %.3f CPU-s/s; new %.0f bytes/s, %.3f CPU-s/s\n",
        ow / NR / span, oc / hz / NR / span, nw / NR / span, nc / hz / NR / span
    else
      printf "mean: old %.3f CPU-s/Mev, %.1f bytes/event; new %.3f CPU-s/Mev, %.1f bytes/event\n",
        oc / hz / oe * 1e6, ow / oe, nc / hz / ne * 1e6, nw / ne
  }' "$work/out"
