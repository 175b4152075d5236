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
. "$(dirname "$0")/ab_common.sh"
ab_args 8 1.5 "$@"
set -- "${record_args[@]}"
loop() { taskset -c 0 "$work/loop" "$secs"; }
recording() {
  start_recorder "$@"
  local hogs=()
  for _ in $(seq "${HOGS:-0}"); do taskset -c 1 sh -c 'while :; do :; done' & hogs+=($!); done
  sleep 0.3
  local ns
  ns=$(loop)
  [ ${#hogs[@]} = 0 ] || kill "${hogs[@]}"
  stop_recorder
  echo "$ns $(grep -o 'lost [0-9]*' "$work/rec.log")"
}
for _ in $(seq "$rounds"); do
  echo "bare $(loop) old $(recording "$old" "$@") bare $(loop) new $(recording "$new" "$@")"
done | tee "$work/out"
awk '{ b += $2 + $8; o += $4; ol += $6; n += $10; nl += $12; k++ }
  END { printf "mean ns: bare %.0f old %.0f (ratio %.3f, lost %d) new %.0f (ratio %.3f, lost %d)\n",
        b / 2 / k, o / k, b / 2 / o, ol, n / k, b / 2 / n, nl }' "$work/out"
