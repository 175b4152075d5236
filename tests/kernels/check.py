#!/usr/bin/env python3
"""The kernel matrix's verdict on one guest's serial log (written by tests/kernels/init.sh).

Prints `PASS kernel RELEASE (timings; notes)` or `FAIL kernel RELEASE: …` and the reasons, and
exits 1 on failure. A guest passes when the recorder attached, every open the workload made was
stored (query) with its syscall, pid, fd, parent and exe (a chrooted child's under the host's
path, with the raw path it passed), the exec'd child's exec is one `op` exec event, `proc` tells
the exec'd child's image and ancestry and the workload's children, `verify` passed and nothing was lost. A route the
workload made (an open, or a rename, chmod or unlink with its op and old name) but the
store lacks fails, unless the binary said, with a reason, that it does not
capture that route on this kernel (a "... not captured: why" line at start) and every query
reports it (a coverage notice). A route the kernel itself refuses (ENOSYS) is noted, not failed.
When the recorder did not attach, the failure names the program libbpf or the verifier rejected
and the last lines of the verifier's log.
"""

import argparse
import json
import re
import sys

MARK = "@@of-kernels "
# Which routes a "not captured" line's capability covers (matched on its text before "not
# captured"); the fork and exec routes need lineage (exe, parent) beyond the open itself.
CAPABILITIES = [
    (re.compile(r"io_uring"), {"io_uring"}),
    (re.compile(r"file operations by syscall"), {"rename", "chmod", "unlink"}),
    (re.compile(r"32-bit|ia32|int 0x80", re.I), {"ia32_open", "ia32_openat"}),
    (re.compile(r"\bopenat2\b"), {"openat2"}),
    (re.compile(r"\bopen_by_handle_at\b"), {"open_by_handle_at"}),
    (re.compile(r"\bcreat\b"), {"creat"}),
    (re.compile(r"\bopenat\b"), {"openat", "chroot"}),
    (re.compile(r"\bopen\b"), {"open"}),
    (re.compile(r"process|lineage|exec|fork", re.I), {"lineage"}),
]
LOG_LINES = 8


def parse(log):
    """The marker values and the sections (name -> (lines, rc)) of a serial log."""
    marks, sections, current, lines = {}, {}, None, []
    for raw in log.splitlines():
        at = raw.find(MARK)
        if at < 0:
            if current is not None:
                lines.append(raw.rstrip("\r"))
            continue
        # SeaBIOS's terminal escapes may precede the first marker on its line.
        key, _, value = raw[at + len(MARK):].strip().partition(" ")
        if key == "begin":
            current, lines = value, []
        elif key == "end" and current is not None:
            rc = value.rpartition("rc=")[2]
            sections[current] = (lines, int(rc) if rc.isdigit() else None)
            current = None
        else:
            marks[key] = value
    return marks, sections


def jsonl(lines):
    out = []
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a kernel message cut into the line; the check below names what is missing
    return out


def not_captured(lines):
    """The "… not captured: why" gaps: [(routes, text)]. `record`'s start notice names every gap
    on one line, separated by "; "."""
    out = []
    for line in lines:
        for text in re.sub(r"^open-forensics:\s*(notice:\s*)?", "", line.strip()).split("; "):
            out.extend(gap(text))
    return out


def gap(text):
    """One "WHAT not captured: why" text, as [(routes, text)] (empty when it is not one)."""
    what, sep, why = text.partition(" not captured")
    if not sep or not why.lstrip(":( ").strip():
        return []
    routes = set()
    for pattern, covered in CAPABILITIES:
        if pattern.search(what):
            routes |= covered
    return [(routes, text)]


def rejection(record_log):
    """(program, reason, last verifier log lines) from a recorder that did not attach."""
    program, reason, log, in_log, last_log = None, None, [], False, []
    for line in record_log:
        m = re.search(r"libbpf: prog '([^']+)': (.*)", line)
        if "-- BEGIN PROG LOAD LOG --" in line:
            in_log, log = True, []
            program = program or (m.group(1) if m else None)
            continue
        if "-- END PROG LOAD LOG --" in line:
            in_log, last_log = False, log
            continue
        if in_log:
            log.append(line)
            continue
        if "libbpf warn" in line and m and program is None:
            program, reason = m.group(1), m.group(2)
        elif "libbpf warn" in line and reason is None and "extern" in line:
            reason = line.split("libbpf: ", 1)[-1]
    meaningful = [l for l in last_log if l.strip() and not l.startswith("processed ")]
    if meaningful:
        reason = meaningful[-1].strip()
    final = [l for l in record_log if l.startswith("open-forensics:") and not l.startswith("open-forensics: libbpf ")]
    if reason is None and final:
        reason = final[-1]
    tail = last_log[-LOG_LINES:]
    # The recorder's own last words (what the user reads) follow the verifier's.
    tail += final[-1:]
    return program or "(none named)", reason or "(no reason in the log)", tail


def check(marks, sections, wall):
    """(failures, notes)."""
    fails, notes = [], []
    version = sections.get("version", ([], None))[0]
    record_log = sections.get("record-log", ([], None))[0]
    if "done" not in marks:
        return [f"the guest did not finish (no 'done' line after {wall} s; see the log's end)"], notes
    if "attached" not in marks:
        program, reason, tail = rejection(record_log)
        fails.append(f"program {program}: {reason}")
        fails.extend("  | " + l for l in tail)
        return fails, notes

    gaps = not_captured(record_log)
    said = set().union(*[r for r, _ in gaps]) if gaps else set()
    version_gaps = set().union(*[r for r, _ in not_captured(version)]) if version else set()
    for routes, text in gaps:
        notes.append(text)
    if said != version_gaps:
        fails.append(f"--version's 'not captured' routes {sorted(version_gaps)} differ from record's {sorted(said)}")

    if sections.get("workload", ([], 1))[1] != 0:
        fails.append("the workload failed:")
        fails.extend("  | " + l for l in sections.get("workload", ([], None))[0][-LOG_LINES:])
    if marks.get("record-exit") != "0":
        fails.append(f"record exited with {marks.get('record-exit')}")

    query_lines = sections.get("query", ([], None))[0]
    objects = jsonl(query_lines)
    events = [o for o in objects if "syscall" in o]
    for o in objects:
        if "syscall" not in o and (o.get("warning") == "incomplete" or o.get("lost")):
            fails.append(f"query reports lost events: {json.dumps(o)}")
    coverage = [l for l in query_lines if "not captured" in l]
    for routes, text in gaps:
        what = text.partition(" not captured")[0]
        if not any(what in l for l in coverage):
            fails.append(f"query does not report the coverage gap '{what} not captured'")

    expected = jsonl(sections.get("expect", ([], None))[0])
    if not expected:
        fails.append("the workload wrote no expectations")
    for exp in expected:
        route = exp["route"]
        if "unavailable" in exp:
            notes.append(f"{route}: the kernel has no such route ({exp['unavailable']})")
            continue
        found = [
            e for e in events
            if e.get("pid") == exp["pid"] and e.get("path") == exp["path"]
            and (exp["syscall"] is None or e.get("syscall") == exp["syscall"])
            and (exp["ret"] is None or e.get("ret") == exp["ret"])
            and e.get("op") == exp.get("op")
        ]
        lineage = route in ("fork", "exec")
        if not found:
            if route in said or (lineage and "openat" in said):
                continue
            near = [f"{e.get('syscall')} pid {e.get('pid')} ret {e.get('ret')}" for e in events
                    if e.get("path") == exp["path"]]
            fails.append(f"{route}: not stored: {exp.get('syscall') or 'an open'} of {exp['path']} by pid "
                         f"{exp['pid']}" + (f" (stored: {', '.join(near)})" if near else ""))
            continue
        if route in said:
            fails.append(f"{route}: stored, yet reported not captured")
        e = found[0]
        if "old_path" in exp and e.get("old_path") != exp["old_path"]:
            fails.append(f"{route}: old_path {e.get('old_path')!r}, expected {exp['old_path']!r}")
        if "raw_path" in exp and e.get("raw_path") != exp["raw_path"]:
            fails.append(f"{route}: raw_path {e.get('raw_path')!r}, expected {exp['raw_path']!r}")
        if e.get("ppid") != exp["ppid"]:
            fails.append(f"{route}: ppid {e.get('ppid')}, expected {exp['ppid']}")
        if e.get("exe") != exp["exe"] and "lineage" not in said:
            fails.append(f"{route}: exe {e.get('exe')!r}, expected {exp['exe']!r}")
        if route == "exec" and "lineage" not in said:
            fails.extend(check_exec_event(events, exp))
            fails.extend(check_proc(sections, exp))

    verify = sections.get("verify", ([], None))
    problems = [o for o in jsonl(verify[0]) if o.get("status", "ok").split(" ")[0] != "ok"]
    if verify[1] != 0 or problems:
        fails.append(f"verify failed (rc {verify[1]}): {problems or verify[0][-LOG_LINES:]}")
    return fails, notes


def check_exec_event(events, exp):
    """The exec itself is one event of the exec'd child: op exec, path its exe, its argv, the
    cwd the workload ran in (walked at exec: `/` is a cwd too)."""
    found = [e for e in events if e.get("pid") == exp["pid"] and e.get("op") == "exec"]
    if len(found) != 1:
        return [f"exec: {len(found)} exec events of pid {exp['pid']}, expected 1"]
    e, fails = found[0], []
    for key, want in [("path", exp["exe"]), ("exe", exp["exe"]), ("argv", exp["argv"]),
                      ("syscall", "execve"), ("ret", 0), ("ppid", exp["ppid"]),
                      ("cwd", exp.get("cwd"))]:
        if e.get(key) != want:
            fails.append(f"exec: the exec event's {key} is {e.get(key)!r}, expected {want!r}")
    return fails


def check_proc(sections, exp):
    """`proc` of the exec'd child names its image and parent; `proc` of the parent its children."""
    fails = []
    child = jsonl(sections.get(f"proc-{exp['pid']}", ([], None))[0])
    if not any(o.get("kind") == "image" and o.get("exe") == exp["exe"] and o.get("argv") == exp["argv"]
               for o in child):
        fails.append(f"proc {exp['pid']}: no image with exe {exp['exe']} and argv {exp['argv']}")
    if not any(o.get("kind") == "ancestor" and o.get("pid") == exp["ppid"] for o in child):
        fails.append(f"proc {exp['pid']}: its parent {exp['ppid']} is not among its ancestors")
    parent = jsonl(sections.get(f"proc-{exp['ppid']}", ([], None))[0])
    if not any(o.get("kind") == "child" and o.get("pid") == exp["pid"] and o.get("exe") == exp["exe"]
               for o in parent):
        fails.append(f"proc {exp['ppid']}: its child {exp['pid']} ({exp['exe']}) is not listed")
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", required=True, help="the release, when the guest did not say")
    ap.add_argument("--qemu-rc", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=0, help="the whole run's wall time")
    ap.add_argument("log")
    a = ap.parse_args()
    with open(a.log, encoding="utf-8", errors="replace") as f:
        text = f.read()
    marks, sections = parse(text)
    kernel = marks.get("uname", a.kernel)
    fails, notes = check(marks, sections, a.seconds)
    if a.qemu_rc != 0 and "done" not in marks:
        fails.append(f"qemu exited with {a.qemu_rc}" + (" (timed out)" if a.qemu_rc == 124 else ""))
        fails.extend("  | " + l for l in text.splitlines()[-LOG_LINES:])
    timing = f"boot {marks.get('booted', '?')} s, attach {marks.get('attached', '?')} s, run {a.seconds} s"
    if fails:
        print(f"FAIL kernel {kernel}: {fails[0]}")
        for f in fails[1:]:
            print(f"  {f}")
        print(f"  ({timing})")
        return 1
    print(f"PASS kernel {kernel} ({timing})")
    for n in notes:
        print(f"  note: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
