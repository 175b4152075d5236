#!/bin/sh
# The kernel matrix's guest /init (busybox sh): records while the workload runs, then prints
# what the store holds. Everything goes to the serial console; tests/kernels/check.py reads the
# sections between "@@of-kernels begin NAME" and "@@of-kernels end NAME rc=N" lines.
# ATTACH_WAIT (of_attach_wait= on the kernel's command line, from the runner): how long to wait
# for record's `attached` line; loading and verifying the BPF object takes minutes under TCG.
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
ATTACH_WAIT=$(sed -n 's/.*of_attach_wait=\([0-9]*\).*/\1/p' /proc/cmdline)
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
# Kernels differ in which of these exist; record mounts tracefs itself where it can.
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
export PATH=/usr/bin:/bin
export TMPDIR=/tmp
# The console is a terminal: answers would otherwise wait in a pager for a key nobody presses.
export PAGER=cat
uptime_s() { cut -d. -f1 /proc/uptime; }
begin() { echo "@@of-kernels begin $1"; }
end() { echo "@@of-kernels end $1 rc=$2"; }
section() {
    name=$1
    shift
    begin "$name"
    "$@"
    end "$name" $?
}

echo "@@of-kernels uname $(uname -r)"
echo "@@of-kernels booted $(uptime_s)"
section version open-forensics --version

open-forensics record -v --store /tmp/s >/tmp/record.out 2>/tmp/record.log &
rec=$!
t0=$(uptime_s)
while ! grep -q '^open-forensics: attached' /tmp/record.log; do
    kill -0 $rec 2>/dev/null || break
    [ $(($(uptime_s) - t0)) -lt $ATTACH_WAIT ] || break
    sleep 1
done
if grep -q '^open-forensics: attached' /tmp/record.log; then
    echo "@@of-kernels attached $(($(uptime_s) - t0))"
    section workload of-workload kernel-matrix /tmp/expect.jsonl
    # The ring is drained on stop: nothing to wait for.
    kill -INT $rec
else
    echo "@@of-kernels not-attached $(($(uptime_s) - t0))"
    kill -INT $rec 2>/dev/null
fi
wait $rec
echo "@@of-kernels record-exit $?"
section record-log cat /tmp/record.log
section expect cat /tmp/expect.jsonl
section query open-forensics --store /tmp/s query --format jsonl --no-pager
for pid in $(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' /tmp/expect.jsonl 2>/dev/null | sort -u); do
    section "proc-$pid" open-forensics --store /tmp/s proc "$pid" --format jsonl --no-pager
done
section verify open-forensics --store /tmp/s verify --format jsonl --no-pager
echo "@@of-kernels done $(uptime_s)"
poweroff -f
