# Sourced by ab.sh and recorder_cpu.sh: their arguments OLD NEW [ROUNDS] [SECONDS] [-- ARGS…]
# (defaults in $1 and $2 of the `ab_args` call), a work directory removed on exit, and the
# open+close loop compiled into it.
ab_args() {
  local rounds_default=$1 secs_default=$2
  shift 2
  old=$1 new=$2 rounds=${3:-$rounds_default} secs=${4:-$secs_default}
  shift $(($# < 4 ? $# : 4))
  [ "${1:-}" = -- ] && shift
  record_args=("$@")
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cc -O2 -o "$work/loop" "$(dirname "${BASH_SOURCE[0]}")/openloop.c"
}

# Starts BIN recording into a fresh store, pinned to CPU 1 (record's ARGS after BIN), and waits
# for it to attach: $pid is the recorder.
start_recorder() {
  local bin=$1
  shift
  rm -rf "$work/store"
  taskset -c 1 "$bin" --store "$work/store" record "$@" 2>"$work/rec.log" &
  pid=$!
  for _ in $(seq 100); do grep -q attached "$work/rec.log" && break; sleep 0.1; done
}

# Stops it and waits (the summary is then in $work/rec.log); fails with its log if it failed.
stop_recorder() {
  kill -INT "$pid"
  wait "$pid" || { cat "$work/rec.log" >&2; exit 1; }
}
