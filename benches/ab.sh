#!/usr/bin/env bash
# A/B of two recorder builds on the open path, interleaved so that a noisy shared VM hits both
# alike (root): rounds of bare | OLD recording | bare | NEW recording, one C loop of
# open+close of /etc/hostname pinned to CPU 0, the recorder pinned to CPU 1. Prints ns per
# open+close for each phase and, at the end, the means and each build's ratio to the bare rate.
#   sudo [HOGS=N] benches/ab.sh OLD_BINARY NEW_BINARY [ROUNDS=8] [SECONDS=1.5] [-- RECORD_ARGS…]
# HOGS=N: a busy host, N spinning processes on the recorder's CPU while each build records. Each
# recording's losses (the summary's `lost`) are summed per build.
# Build OLD in its own target directory (or touch bpf/ after): the skeletons live in OUT_DIR.
set -euo pipefail
old=$1 new=$2 rounds=${3:-8} secs=${4:-1.5}
shift $(($# < 4 ? $# : 4))
[ "${1:-}" = -- ] && shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/loop" "$(dirname "$0")/openloop.c"
loop() { taskset -c 0 "$work/loop" "$secs"; }
recording() {
  local bin=$1
  shift
  rm -rf "$work/store"
  taskset -c 1 "$bin" --store "$work/store" record "$@" 2>"$work/rec.log" &
  local pid=$!
  for _ in $(seq 100); do grep -q attached "$work/rec.log" && break; sleep 0.1; done
  local hogs=()
  for _ in $(seq "${HOGS:-0}"); do taskset -c 1 sh -c 'while :; do :; done' & hogs+=($!); done
  sleep 0.3
  local ns
  ns=$(loop)
  [ ${#hogs[@]} = 0 ] || kill "${hogs[@]}"
  kill -INT "$pid"
  wait "$pid" || { cat "$work/rec.log" >&2; exit 1; }
  echo "$ns $(grep -o 'lost [0-9]*' "$work/rec.log")"
}
for _ in $(seq "$rounds"); do
  echo "bare $(loop) old $(recording "$old" "$@") bare $(loop) new $(recording "$new" "$@")"
done | tee "$work/out"
awk '{ b += $2 + $8; o += $4; ol += $6; n += $10; nl += $12; k++ }
  END { printf "mean ns: bare %.0f old %.0f (ratio %.3f, lost %d) new %.0f (ratio %.3f, lost %d)\n",
        b / 2 / k, o / k, b / 2 / o, ol, n / k, b / 2 / n, nl }' "$work/out"
