#!/usr/bin/env bash
# Where the open probe's time goes: builds the recorder with one stage of the open path of
# tp_btf__sys_exit disabled at a time and runs the 1-thread row of benches/capture.rs twice for
# each (root; ~15 min). Prints the row and the probe's ns/run (an average over every syscall's
# exit: with the bench's open+close loop, an open's share is about twice the difference).
# The stages' costs are the differences from `base`. bpf/opens.bpf.c is edited in place and
# restored on exit: run it on a clean tree. Variants whose events lack comm or never reach the
# ring show a shortfall: that is expected (the bench finds its events by comm).
set -euo pipefail
cd "$(dirname "$0")/.."
src=bpf/opens.bpf.c
keep=$(mktemp)
cp "$src" "$keep"
trap 'cp "$keep" "$src"; rm -f "$keep"' EXIT
run() {
  local name=$1
  shift
  cp "$keep" "$src"
  for e in "$@"; do perl -0pi -e "$e" "$src"; done
  if [ "$name" != base ] && cmp -s "$src" "$keep"; then
    echo "$name: the edit did not apply (the probe changed): update this script" >&2
    exit 1
  fi
  for i in 1 2; do
    out=$(CAPTURE_BENCH_ONLY="open ok1" CAPTURE_BENCH_STEPS=0 CAPTURE_BENCH_SECS=3 \
      cargo bench -q --bench capture 2>/dev/null)
    echo "$name $i: $(grep '^open ok' <<<"$out" | head -1) | ns/run $(grep 'record tp_btf__sys_exit ' <<<"$out" | awk '{print $NF}')"
  done
}
run base
run no-path 's/f = walk_fds \? fd_file\(task, ret\) : NULL;/f = NULL;/'
run no-dir-walk 's/\tif \(dir\)\n\t\tpath_len = walk_dir/\tif (0)\n\t\tpath_len = walk_dir/'
run no-user-path 's/n = bpf_probe_read_user_str\(e->data, OF_RAW_MAX, \(void \*\)path\);/n = 0;/'
run no-ring 's/if \(bpf_ringbuf_output\(&of_events, e, size, flags\)\) \{/if (size == 77777) {/'
run no-timestamp 's/h->ts_ns = bpf_ktime_get_boot_ns\(\);/h->ts_ns = 1;/'
run no-comm 's/__builtin_memcpy\(h->comm, task->comm, sizeof\(h->comm\)\);//'
