#!/usr/bin/env python3
"""Tests of check.py's verdicts on synthetic serial logs (the runner runs them before booting)."""

import json
import unittest

from check import check, parse

WL, FORK, EXEC, CHROOT = 300, 301, 302, 303
EXE, CAT = "/usr/bin/of-workload", "/bin/busybox"
ROUTES = ["open", "openat", "openat2", "creat", "open_by_handle_at", "ia32_open", "ia32_openat",
          "io_uring"]


def expectations():
    out = [{"route": r, "syscall": r, "path": f"/tmp/x/{r}.txt", "ret": 3, "pid": WL, "ppid": 1,
            "exe": EXE} for r in ROUTES]
    for r in ["rename", "chmod", "unlink"]:
        out.append({"route": r, "syscall": r, "op": r, "path": "/tmp/x/op-to.txt",
                    "old_path": "/tmp/x/op-from.txt" if r == "rename" else None, "ret": 0,
                    "pid": WL, "ppid": 1, "exe": EXE})
    out.append({"route": "fork", "syscall": None, "path": "/tmp/x/fork.txt", "ret": None,
                "pid": FORK, "ppid": WL, "exe": EXE})
    out.append({"route": "chroot", "syscall": "openat", "path": "/tmp/x/chroot.txt",
                "raw_path": "/chroot.txt", "ret": None, "pid": CHROOT, "ppid": WL, "exe": EXE})
    out.append({"route": "exec", "syscall": None, "path": "/tmp/x/exec.txt", "ret": None,
                "pid": EXEC, "ppid": WL, "exe": CAT, "argv": ["/bin/cat", "/tmp/x/exec.txt"],
                "cwd": "/"})
    return out


def event(exp):
    out = {"pid": exp["pid"], "ppid": exp["ppid"], "syscall": exp["syscall"] or "openat",
           "path": exp["path"], "raw_path": exp.get("raw_path", exp["path"]),
           "ret": exp["ret"] if exp["ret"] is not None else 3, "exe": exp["exe"]}
    # An open's JSON line has no op key; an operation's has op and old_path.
    if "op" in exp:
        out.update(op=exp["op"], old_path=exp["old_path"])
    return out


def exec_event():
    """The exec'd child's exec, as query prints it."""
    return {"pid": EXEC, "ppid": WL, "syscall": "execve", "op": "exec", "path": CAT,
            "raw_path": "/bin/cat", "ret": 0, "exe": CAT, "argv": ["/bin/cat", "/tmp/x/exec.txt"],
            "cwd": "/"}


def log(expect=None, events=None, record=(), version=(), query=(), attached=True, verify_rc=0):
    expect = expectations() if expect is None else expect
    if events is None:
        events = [event(e) for e in expect if "pid" in e] + [exec_event()]
    lines = ["\x1b[2J@@of-kernels uname 6.1.0-test", "@@of-kernels booted 9",
             "@@of-kernels begin version", *version, "@@of-kernels end version rc=0"]
    if attached:
        lines += ["@@of-kernels attached 40", "@@of-kernels begin workload",
                  "@@of-kernels end workload rc=0"]
    lines += ["@@of-kernels record-exit 0" if attached else "@@of-kernels record-exit 1",
              "@@of-kernels begin record-log", *record, "@@of-kernels end record-log rc=0",
              "@@of-kernels begin expect", *map(json.dumps, expect), "@@of-kernels end expect rc=0",
              "@@of-kernels begin query", *map(json.dumps, events), *query,
              "@@of-kernels end query rc=0",
              f"@@of-kernels begin proc-{EXEC}",
              json.dumps({"kind": "image", "pid": EXEC, "exe": CAT,
                          "argv": ["/bin/cat", "/tmp/x/exec.txt"]}),
              json.dumps({"kind": "ancestor", "pid": WL, "exe": EXE}),
              f"@@of-kernels end proc-{EXEC} rc=0",
              f"@@of-kernels begin proc-{WL}",
              json.dumps({"kind": "child", "pid": FORK, "exe": EXE}),
              json.dumps({"kind": "child", "pid": EXEC, "exe": CAT}),
              f"@@of-kernels end proc-{WL} rc=0",
              "@@of-kernels begin verify", json.dumps({"segment": "1", "status": "ok"}),
              f"@@of-kernels end verify rc={verify_rc}", "@@of-kernels done 80"]
    return check(*parse("\n".join(lines)), 100)


GAP = "io_uring opens and file operations not captured: kernel 6.1 has no io_uring_submit_req tracepoint"


class Verdicts(unittest.TestCase):
    def test_everything_stored_passes(self):
        self.assertEqual(log()[0], [])

    def test_a_missing_route_fails(self):
        events = [event(e) for e in expectations() if e["route"] != "ia32_openat"] + [exec_event()]
        fails = log(events=events)[0]
        self.assertEqual(len(fails), 1)
        self.assertIn("ia32_openat: not stored", fails[0])

    def test_wrong_exe_ppid_or_fd_fail(self):
        for key, value, want in [("exe", EXE, "exec: exe"), ("ppid", 1, "fork: ppid"),
                                 ("ret", 7, "open: not stored")]:
            events = [event(e) for e in expectations()] + [exec_event()]
            route = want.split(":")[0]
            next(e for e in events if route in e["path"])[key] = value
            self.assertIn(want, " ".join(log(events=events)[0]))

    def test_an_exec_without_its_exec_event_or_with_another_exe_fails(self):
        events = [event(e) for e in expectations()]
        self.assertIn("exec: 0 exec events", " ".join(log(events=events)[0]))
        bad = exec_event()
        bad["path"] = EXE
        events = [event(e) for e in expectations()] + [bad]
        self.assertIn("exec: the exec event's path", " ".join(log(events=events)[0]))
        bad = exec_event()
        del bad["cwd"]
        events = [event(e) for e in expectations()] + [bad]
        self.assertIn("exec: the exec event's cwd", " ".join(log(events=events)[0]))

    def test_an_operation_without_its_op_or_old_name_fails(self):
        events = [event(e) for e in expectations()] + [exec_event()]
        del next(e for e in events if e.get("op") == "unlink")["op"]
        self.assertIn("unlink: not stored", " ".join(log(events=events)[0]))
        events = [event(e) for e in expectations()] + [exec_event()]
        next(e for e in events if e.get("op") == "rename")["old_path"] = "/tmp/x/other"
        self.assertIn("rename: old_path", " ".join(log(events=events)[0]))

    def test_a_reported_file_operations_gap_covers_them(self):
        gap = ("file operations by syscall (rename, link, symlink, unlink, rmdir, mkdir, chmod, "
               "chown, truncate) not captured: --no-ia32")
        events = [event(e) for e in expectations() if "op" not in e] + [exec_event()]
        fails, notes = log(events=events, record=[f"open-forensics: {gap}"], version=[f"  {gap}"],
                           query=[f"open-forensics: notice: {gap}"])
        self.assertEqual(fails, [])

    def test_a_chrooted_open_under_its_chroot_path_fails(self):
        # Issue #25: stored as the chroot sees it (/chroot.txt), not the host's path.
        events = [event(e) for e in expectations()] + [exec_event()]
        next(e for e in events if e["pid"] == CHROOT)["path"] = "/chroot.txt"
        self.assertIn("chroot: not stored", " ".join(log(events=events)[0]))
        events = [event(e) for e in expectations()] + [exec_event()]
        next(e for e in events if e["pid"] == CHROOT)["raw_path"] = "/tmp/x/chroot.txt"
        self.assertIn("chroot: raw_path", " ".join(log(events=events)[0]))

    def test_a_reported_gap_passes_when_every_query_reports_it(self):
        events = [event(e) for e in expectations() if e["route"] != "io_uring"] + [exec_event()]
        fails, notes = log(events=events, record=[f"open-forensics: {GAP}"], version=[f"  {GAP}"],
                           query=[f"open-forensics: notice: {GAP} (from … to …)"])
        self.assertEqual(fails, [])
        self.assertIn(GAP, notes)
        fails = log(events=events, record=[f"open-forensics: {GAP}"], version=[f"  {GAP}"])[0]
        self.assertIn("query does not report", fails[0])
        fails = log(events=events, record=[f"open-forensics: {GAP}"],
                    query=[f"open-forensics: notice: {GAP}"])[0]
        self.assertIn("--version", fails[0])

    def test_every_gap_of_a_one_line_notice_counts(self):
        deep = "whole paths deeper than 10 levels not captured (kernel 6.1 lacks bpf_rdonly_cast)"
        uring = "io_uring opens and file operations not captured (kernel 6.1 has no io_uring_submit_req tracepoint)"
        events = [event(e) for e in expectations() if e["route"] != "io_uring"] + [exec_event()]
        notice = f"open-forensics: notice: {deep}; {uring}"
        version = [f"  {deep}", f"  {uring}"]
        reports = [f'{{"warning":"not_captured","text":"{deep}"}}',
                   f'{{"warning":"not_captured","text":"{uring}"}}']
        fails = log(events=events, record=[notice], version=version, query=reports)[0]
        self.assertEqual(fails, [])
        # The second gap of the line is read too: a query that reports only the first fails.
        fails = log(events=events, record=[notice], version=version, query=reports[:1])[0]
        self.assertTrue(any("io_uring opens and file operations" in f for f in fails), fails)

    def test_a_route_the_kernel_lacks_is_a_note(self):
        expect = [e for e in expectations() if e["route"] != "openat2"]
        expect.append({"route": "openat2", "unavailable": "the kernel answers ENOSYS"})
        fails, notes = log(expect=expect)
        self.assertEqual(fails, [])
        self.assertTrue(any(n.startswith("openat2") for n in notes))

    def test_losses_and_verify_fail(self):
        lost = json.dumps({"warning": "incomplete", "lost": 5})
        self.assertIn("lost", log(query=[lost])[0][0])
        self.assertIn("verify failed", log(verify_rc=1)[0][0])

    def test_a_rejected_program_is_named_with_the_verifiers_reason(self):
        record = ["open-forensics: libbpf warn: libbpf: prog 'tp_btf__io_uring_complete': BPF "
                  "program load failed: -EACCES",
                  "open-forensics: libbpf warn: libbpf: prog 'tp_btf__io_uring_complete': -- BEGIN "
                  "PROG LOAD LOG --",
                  "72: (61) r2 = *(u32 *)(r2 +8)", "R2 invalid mem access 'scalar'",
                  "processed 69 insns (limit 1000000)", "-- END PROG LOAD LOG --",
                  "open-forensics: load the BPF programs: Permission denied (os error 13)"]
        fails = log(record=record, attached=False)[0]
        self.assertEqual(fails[0], "program tp_btf__io_uring_complete: R2 invalid mem access 'scalar'")
        self.assertIn("Permission denied", fails[-1])


if __name__ == "__main__":
    unittest.main()
