#!/usr/bin/env python3
"""Generates one host's events as the JSON lines `open-forensics import` reads.

    gen.py --host NAME --events N [--seed S] > host.jsonl

Deterministic for a seed. Made to exercise every rule semantic `rules sql` must reproduce:
paths that are exact, under prefixes, matched by globs with `*`, `**`, `?`, classes and
alternates; bytes that are not UTF-8 (`_b64` keys), control characters, multi-byte
characters; comms longer than the kernel keeps; every syscall; flags for every access kind;
successes and errno failures; processes with and without lineage (exe, argv, parent,
ancestors, containers, users, login uids); and, after the opens, execs of programs that Sigma
`process_creation` rules look for (from their own random stream, so the opens stay as they were).
"""

import argparse
import base64
import json
import random
import sys

BASE_NS = 1_795_000_000_000_000_000  # 2026-11-18

SYSCALLS = ["open", "creat", "openat", "openat2", "open_by_handle_at", "io_uring",
            "ia32_open", "ia32_creat", "ia32_openat", "ia32_openat2",
            "ia32_open_by_handle_at"]

# Paths as bytes: common, sensitive, and hostile ones.
PATHS = [
    b"/etc/shadow", b"/etc/gshadow", b"/etc/shadow-", b"/etc/passwd", b"/etc/group",
    b"/etc/sudoers", b"/etc/sudoers.d/90-cloud", b"/etc/sudoers.d/.hidden",
    b"/etc/ssh/sshd_config", b"/etc/ssh/ssh_host_rsa_key", b"/etc/ld.so.preload",
    b"/etc/ld.so.cache", b"/etc/cron.d/job", b"/etc/crontab", b"/var/spool/cron/crontabs/root",
    b"/etc/systemd/system/evil.service", b"/lib/systemd/system/ssh.service",
    b"/root/.ssh/id_rsa", b"/root/.ssh/authorized_keys", b"/root/.ssh/id_rsa.pub",
    b"/home/alice/.ssh/id_ed25519", b"/home/alice/.ssh/id_ed25519.pub",
    b"/home/bob/.ssh/keys/deep/id_rsa", b"/home/alice/.bash_history",
    b"/home/alice/.config/google-chrome/Default/Login Data",
    b"/home/alice/.mozilla/firefox/x.default/logins.json",
    b"/tmp/a", b"/tmp/ab", b"/tmp/x/y", b"/tmp/\xc3\xa9", b"/tmp/\xe2\x82\xac",
    b"/tmp/\xff\xfe", b"/tmp/bad\xffname/file", b"/tmp/new\nline", b"/tmp/tab\there",
    b"/tmp/quote'\"\\back", b"/dev/shm/x", b"/dev/null", b"/proc/self/status",
    b"/sys/kernel/mm/x", b"/usr/lib/x86_64-linux-gnu/libc.so.6", b"/usr/bin/python3.11",
    b"/var/log/auth.log", b"/var/lib/dpkg/status", b"pipe:[12345]", b"socket:[777]",
    b"anon_inode:[eventfd]", b"/memfd:x (deleted)", b"/etc/shadow (deleted)",
    b"/srv/app/config.yaml", b"/srv/app/[x].conf", b"/srv/app/{a}.conf", b"/srv/app/a*b",
]

COMMS = [b"bash", b"sh", b"dash", b"zsh", b"python3", b"python3.11", b"perl", b"cat",
         b"sshd", b"passwd", b"chpasswd", b"cron", b"systemd", b"nginx", b"apt-get",
         b"dpkg", b"useradd", b"averylongprocna", b"curl", b"c\xffat", b"\xc3\xa9t\xc3\xa9",
         b"kworker/0:1", b"node", b"java", b"vim"]

EXES = [b"/usr/bin/bash", b"/bin/sh", b"/usr/bin/dash", b"/usr/bin/python3.11",
        b"/usr/bin/perl", b"/usr/bin/cat", b"/usr/sbin/sshd", b"/usr/bin/passwd",
        b"/usr/sbin/chpasswd", b"/usr/sbin/cron", b"/usr/lib/systemd/systemd",
        b"/usr/sbin/nginx", b"/usr/sbin/apache2", b"/usr/bin/apt-get", b"/usr/bin/dpkg",
        b"/usr/sbin/useradd", b"/tmp/.x/payload", b"/memfd:stage2 (deleted)",
        b"/usr/bin/curl", b"/opt/\xffodd/bin", b"/usr/bin/sudo", b"/usr/bin/su",
        b"/usr/bin/vim.basic", b"/usr/bin/node", b"/dev/shm/run"]

CONTAINERS = [None, None, None, b"0123456789abcdef" * 4, b"fedcba9876543210" * 4,
              b"pod:1234-abcd"]

USERS = {0: "root", 1000: "alice", 1001: "bob", 33: "www-data", 65534: "nobody"}

# Flag sets covering every access kind (x86-64 values).
O = dict(RDONLY=0, WRONLY=1, RDWR=2, ACC3=3, CREAT=0o100, EXCL=0o200, TRUNC=0o1000,
         APPEND=0o2000, DIRECTORY=0o200000, NOFOLLOW=0o400000, CLOEXEC=0o2000000,
         PATH=0o10000000, TMPFILE=0o20200000)
FLAGS = [
    O["RDONLY"] | O["CLOEXEC"], O["RDONLY"], O["WRONLY"], O["RDWR"], O["ACC3"],
    O["WRONLY"] | O["CREAT"] | O["TRUNC"], O["RDWR"] | O["CREAT"] | O["EXCL"],
    O["WRONLY"] | O["APPEND"], O["RDONLY"] | O["DIRECTORY"], O["PATH"],
    O["PATH"] | O["RDWR"], O["TMPFILE"] | O["RDWR"], O["RDONLY"] | O["NOFOLLOW"],
    O["CREAT"], O["CREAT"] | O["RDONLY"] | O["CLOEXEC"],
]

RETS = [3, 4, 5, 0, -2, -13, -1, -20, -21, -40, -36]


def text(b):
    """(text, b64-or-None) in the project's `_b64` convention."""
    try:
        return b.decode("utf-8"), None
    except UnicodeDecodeError:
        return b.decode("utf-8", "replace"), base64.b64encode(b).decode()


def put(obj, key, b):
    t, b64 = text(b)
    obj[key] = t
    if b64 is not None:
        obj[key + "_b64"] = b64


def rfc3339(ns):
    import datetime
    s, frac = divmod(ns, 1_000_000_000)
    d = datetime.datetime.fromtimestamp(s, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % frac


def make_processes(rng, n):
    procs = []
    for i in range(n):
        lineage = rng.random() < 0.8
        pid = 2000 + i
        p = {"pid": pid, "start": BASE_NS - rng.randrange(10**12), "lineage": lineage,
             "ppid": rng.choice([1, 1500, 1600, 1700])}
        if lineage:
            exe = rng.choice(EXES + [None])
            p["exe"] = exe
            nargs = rng.randrange(0, 4)
            args = [exe or b"prog"] + [rng.choice([b"-c", b"/etc/shadow", b"x y", b"--flag",
                                                     b"\xffarg", b"*"]) for _ in range(nargs)]
            p["argv"] = args if rng.random() < 0.9 else None
            p["container"] = rng.choice(CONTAINERS)
            p["auid"] = rng.choice([None, 0, 1000, 1001])
            p["cgroup"] = b"/system.slice/x.service" if p["container"] is None else \
                b"/docker/" + (p["container"] if not p["container"].startswith(b"pod:") else b"x")
            depth = rng.randrange(0, 5)
            anc = []
            for d in range(depth):
                anc.append({"pid": rng.choice([1, 900, 901, 1500, 1600, 1700 + d]),
                            "comm": rng.choice(COMMS), "exe": rng.choice(EXES + [None]),
                            "start": BASE_NS - 10**13 - d})
            p["ancestors"] = anc
        procs.append(p)
    return procs


def event_line(rng, i, procs):
    p = rng.choice(procs)
    uid = rng.choice(list(USERS))
    syscall = rng.choice(SYSCALLS)
    path = rng.choice(PATHS)
    raw = path if rng.random() < 0.8 else path.rsplit(b"/", 1)[-1]
    ret = rng.choice(RETS)
    o = {"ts_ns": BASE_NS + i * 1_000_003 + rng.randrange(1000), "pid": p["pid"],
         "tid": p["pid"] + rng.choice([0, 0, 1]), "ppid": p["ppid"], "uid": uid, "gid": uid}
    put(o, "comm", rng.choice(COMMS))
    o["syscall"] = syscall
    put(o, "path", path)
    o["path_source"] = "file" if ret >= 0 else "raw"
    o["path_truncated"] = False
    put(o, "raw_path", raw)
    o["dirfd"] = None if syscall in ("open", "creat", "ia32_open", "ia32_creat") else -100
    o["flags"] = rng.choice(FLAGS)
    o["mode"] = 0o644
    o["ret"] = ret
    if p["lineage"]:
        if p["exe"] is not None:
            put(o, "exe", p["exe"])
        if p["argv"] is not None:
            args = [text(a) for a in p["argv"]]
            o["argv"] = [t for t, _ in args]
            if any(b is not None for _, b in args):
                o["argv_b64"] = [base64.b64encode(a).decode() for a in p["argv"]]
        o["proc_start"] = rfc3339(p["start"])
        o["euid"] = rng.choice([uid, uid, 0])
        o["egid"] = uid
        if p["auid"] is not None:
            o["auid"] = p["auid"]
        o["user"] = USERS[uid]
        put(o, "cgroup", p["cgroup"])
        if p["container"] is not None:
            put(o, "container_id", p["container"])
        anc = []
        for a in p["ancestors"]:
            x = {"pid": a["pid"]}
            put(x, "comm", a["comm"])
            if a["exe"] is None:
                x["exe"] = None
            else:
                put(x, "exe", a["exe"])
            x["proc_start"] = rfc3339(a["start"])
            anc.append(x)
        o["ancestors"] = anc
    return o


# Programs started by the execs: what SigmaHQ's process_creation rules look for, and not.
EXECS = [
    [b"/usr/bin/nohup", b"nohup", b"./payload"],
    [b"/usr/bin/doas", b"doas", b"id"],
    [b"/usr/bin/python3", b"python3", b"-m", b"http.server", b"8000"],
    [b"/dev/shm/run", b"/dev/shm/run"],
    [b"/usr/bin/ls", b"ls", b"-la"],
]


def exec_line(rng, i, procs):
    """An exec of one of `EXECS` by a process with lineage (the event's lineage is the new
    image's)."""
    o = event_line(rng, i, [p for p in procs if p["lineage"]])
    exe, *argv = rng.choice(EXECS)
    o.update(op="exec", syscall="execve", flags=0, mode=0, ret=0, path_source="file")
    o["dirfd"] = -100
    for k in ["path", "raw_path", "exe"]:
        o.pop(k + "_b64", None)
        put(o, k, exe)
    o.pop("argv_b64", None)
    o["argv"] = [a.decode() for a in argv]
    return o


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(f"{a.host}:{a.seed}")
    procs = make_processes(rng, 200)
    out = sys.stdout
    for i in range(a.events):
        out.write(json.dumps(event_line(rng, i, procs), separators=(",", ":")) + "\n")
    xr = random.Random(f"{a.host}:{a.seed}:exec")
    for i in range(a.events, a.events + 20):
        out.write(json.dumps(exec_line(xr, i, procs), separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
