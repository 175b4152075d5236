//! True answers from `query`, `proc` and SQL (issue #25 items 6–10, #26 part 5): each test is
//! named after the defect it keeps fixed.

use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use open_forensics::bytes::Str;
use open_forensics::event::Event;
use open_forensics::process::Process;
use open_forensics::store::{RotateConfig, Writer};

use crate::helpers::{event, live_capture_available, TempStore};
use crate::recorder::Recorder;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A process image of `pid` started at `start`, run by `uid` with login uid `auid`.
fn process(pid: u32, start: i64, exe: &str, uid: u32, auid: u32) -> Arc<Process> {
    Arc::new(Process {
        exe: Some(Str::from(exe)),
        argv: Some(Str::new(format!("{exe}\0--flag\0").into_bytes())),
        auid: Some(auid),
        ..Process::from_event(pid, start, 1, Str::from("worker"), uid, uid)
    })
}

/// An event by `p` at place `i` (see `helpers::event`), with `user` as the recording named it.
fn by(p: &Arc<Process>, i: i64, user: Option<&str>) -> Event {
    Event {
        pid: p.pid,
        tid: p.pid,
        uid: p.uid,
        gid: p.gid,
        process: Some(p.clone()),
        user: user.map(Str::from),
        ..event(i, &format!("/srv/{i}"))
    }
}

#[test]
fn query_user_resolves_names_recorded_in_any_segment() {
    let s = TempStore::new();
    let alice = process(500, event(0, "").ts_ns - 10, "/usr/bin/cat", 1000, 1000);
    let mallory = process(501, event(0, "").ts_ns - 10, "/usr/bin/cat", 1001, 1000);
    // The first segment was written before the recorder knew mallory's name; the second after.
    s.import(&[by(&alice, 1, Some("alice")), by(&mallory, 2, None)]);
    s.import(&[by(&mallory, 3, Some("mallory"))]);
    let count = |args: &[&str]| {
        let mut a = vec!["query", "--format", "csv"];
        a.extend_from_slice(args);
        s.ok(&a).lines().count() - 1
    };
    assert_eq!(count(&["--uid", "1001"]), 2);
    assert_eq!(count(&["--user", "mallory"]), 2);
    assert_eq!(count(&["--user", "mal*,alice"]), 3);
    assert_eq!(count(&["--auid", "alice"]), 3);
    assert_eq!(count(&["--auid", "1000", "--user", "alice"]), 1);

    // A name no segment knows is an error listing the names it has, never an empty answer.
    let out = s.run(&["query", "--user", "mallroy"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("--user \"mallroy\"") && err.contains("recorded: alice, mallory"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    let out = s.run(&["query", "--auid", "bob"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn proc_pid_reused_in_range_lists_them_and_asks_for_at() {
    let s = TempStore::new();
    let t0 = event(0, "").ts_ns;
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("open");
    let first = process(700, t0 - 10, "/usr/bin/sleep", 1000, 1000);
    let second = process(700, t0 + 5_000, "/usr/bin/nc", 1000, 1000);
    w.append(&mut by(&first, 1, None)).expect("append");
    w.record_exit(&first, 0, t0 + 2_000).expect("exit");
    w.append(&mut by(&second, 10, None)).expect("append");
    w.close().expect("close");

    let out = s.run(&["proc", "700"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("pid 700 was 2 processes") && err.contains("--at"),
        "{err}"
    );
    assert!(
        err.contains("/usr/bin/sleep [/usr/bin/sleep --flag]"),
        "{err}"
    );
    assert!(err.contains("/usr/bin/nc"), "{err}");
    let at = |ns: i64| open_forensics::timespec::format_ts(ns);
    let early = s.ok(&["proc", "700", "--at", &at(t0 + 1_000), "--format", "jsonl"]);
    assert!(early.contains("/usr/bin/sleep") && !early.contains("/usr/bin/nc"));
    let late = s.ok(&["proc", "700", "--at", &at(t0 + 9_000), "--format", "jsonl"]);
    assert!(late.contains("/usr/bin/nc") && !late.contains("/usr/bin/sleep"));
    // A window in which only one of them lived needs no --at.
    let only = s.ok(&[
        "proc",
        "700",
        "--since",
        &at(t0 + 3_000),
        "--format",
        "jsonl",
    ]);
    assert!(only.contains("/usr/bin/nc") && !only.contains("/usr/bin/sleep"));
}

#[test]
fn processes_table_honours_the_range_and_limits_say_so() {
    let s = TempStore::new();
    let t0 = event(0, "").ts_ns;
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("open");
    // One segment: a process that ended before the window, one alive in it, one after it.
    let gone = process(800, t0 - 10, "/usr/bin/gone", 0, 0);
    let alive = process(801, t0 - 10, "/usr/bin/alive", 0, 0);
    let later = process(802, t0 + 100_000, "/usr/bin/later", 0, 0);
    w.append(&mut by(&gone, 1, None)).expect("append");
    w.record_exit(&gone, 0, t0 + 2_000).expect("exit");
    w.append(&mut by(&alive, 10, None)).expect("append");
    w.append(&mut by(&later, 100, None)).expect("append");
    w.close().expect("close");
    let at = |ns: i64| open_forensics::timespec::format_ts(ns);
    let (since, until) = (at(t0 + 10_000), at(t0 + 20_000));
    let sql = "SELECT exe FROM processes ORDER BY exe";
    let window = ["--since", &since, "--until", &until, "--format", "csv"];
    let mut args = vec!["query", "--sql", sql];
    args.extend_from_slice(&window);
    assert_eq!(s.ok(&args), "exe\r\n/usr/bin/alive\r\n");
    let all = s.ok(&["query", "--sql", sql, "--format", "csv"]);
    assert_eq!(all.lines().count(), 4, "{all}");

    // A statement that stops at its own LIMIT says so; --limit replaces that LIMIT.
    let out = s.run(&[
        "query",
        "--sql",
        "SELECT exe FROM processes LIMIT 2",
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out).lines().count(), 3);
    assert!(
        stderr(&out).contains("ad-hoc stopped at its LIMIT 2; more rows match"),
        "{out:?}"
    );
    let out = s.run(&["query", "--sql", "SELECT exe FROM processes LIMIT 2"]);
    assert_eq!(
        stderr(&out),
        "{\"notice\":\"row_limit\",\"query\":\"ad-hoc\",\"limit\":2}\n"
    );
    let out = s.run(&[
        "query",
        "--sql",
        "SELECT exe FROM processes LIMIT 2",
        "--limit",
        "5",
    ]);
    assert_eq!(
        (stdout(&out).lines().count(), stderr(&out)),
        (3, String::new())
    );
    let out = s.run(&["query", "--sql", "SELECT exe FROM processes LIMIT 3"]);
    assert_eq!(
        (stdout(&out).lines().count(), stderr(&out)),
        (3, String::new())
    );
    let out = s.run(&[
        "query",
        "--sql",
        "top_paths",
        "--limit",
        "2",
        "--format",
        "jsonl",
    ]);
    assert_eq!(stdout(&out).lines().count(), 2);
    assert!(stderr(&out).is_empty(), "{out:?}");
}

#[test]
fn since_too_large_is_an_error_not_an_empty_answer() {
    let s = TempStore::new();
    s.import(&[event(1, "/a")]);
    for since in ["30000000000000000w", "18446744073709551615s"] {
        let out = s.run(&["query", "--since", since]);
        assert_eq!(out.status.code(), Some(2), "{since}: {out:?}");
        assert!(stderr(&out).contains("too large"), "{out:?}");
    }
}

#[test]
fn sql_typo_is_a_syntax_error_not_a_refused_write() {
    let s = TempStore::new();
    s.import(&[event(1, "/a")]);
    let out = s.run(&["query", "--sql", "SELEC count(*) FROM events"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr(&out);
    assert!(err.contains("syntax error near \"SELEC\""), "{err}");
    assert!(!err.contains("refused"), "{err}");
}

#[test]
fn sql_unbounded_reads_stop_at_their_limits() {
    let s = TempStore::new();
    s.import(&[event(1, "/a")]);
    let started = Instant::now();
    let out = s.run(&[
        "query",
        "--sql",
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r",
        "--timeout",
        "1s",
    ]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("stopped after 1s (--timeout"),
        "{out:?}"
    );

    let out = s.run(&["query", "--sql", "SELECT length(randomblob(900000000))"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("exceed 256 MiB"), "{out:?}");

    let out = s.run(&["query", "--sql", "SELECT 1", "--temp-dir", "/nonexistent/x"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr(&out).contains("--temp-dir /nonexistent/x"),
        "{out:?}"
    );
}

/// Sorting beyond the page cache: in memory by default (no file anywhere, whatever TMPDIR
/// says), in files under --temp-dir when given. Seen from the open descriptors of the child
/// while it sorts (the files are unlinked as soon as they are made).
#[test]
fn sql_sort_spills_only_to_the_temp_dir_named() {
    let s = TempStore::new();
    s.import(&[event(1, "/a")]);
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let sql = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 150000) \
               SELECT count(DISTINCT randomblob(400)) AS n FROM r";
    let spilled = |extra: &[&str]| {
        let mut args = vec!["query", "--sql", sql, "--format", "csv"];
        args.extend_from_slice(extra);
        let mut child = s
            .cmd(&args)
            .env("TMPDIR", &tmp)
            .env("SQLITE_TMPDIR", &tmp)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let fds = format!("/proc/{}/fd", child.id());
        let mut seen = false;
        while child.try_wait().expect("wait").is_none() {
            seen |= std::fs::read_dir(&fds)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.starts_with(&tmp)));
            std::thread::sleep(Duration::from_millis(5));
        }
        let out = child.wait_with_output().expect("output");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(stdout(&out), "n\r\n150000\r\n");
        seen
    };
    assert!(
        !spilled(&[]),
        "a sort wrote a temporary file without --temp-dir"
    );
    assert!(spilled(&["--temp-dir", tmp.to_str().unwrap()]));
}

#[test]
fn sql_over_a_pruned_range_warns_like_every_answer() {
    let s = TempStore::new();
    s.import(&[event(1, "/old")]);
    s.import(&[event(100_000, "/new")]);
    let cut = open_forensics::timespec::format_ts(event(50_000, "").ts_ns);
    s.ok(&["prune", "--before", &cut]);
    let out = s.run(&[
        "query",
        "--sql",
        "SELECT count(*) AS n FROM events",
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "n\r\n1\r\n");
    assert!(
        stderr(&out).contains("warning: pruned: 1 events in 1 segment(s)"),
        "{out:?}"
    );
}

/// Issue #25 item 6, live: an account made while recording. The recorder runs in a mount
/// namespace of its own where `/etc/passwd` is a copy the test appends to, so the host's file
/// is never touched; a process of that uid opens before and after the account exists.
#[test]
fn query_user_created_while_recording_live() {
    if !live_capture_available("query_user_created_while_recording_live") {
        return;
    }
    const UID: &str = "54321";
    const NAME: &str = "mallory54321";
    let s = TempStore::new();
    let passwd = s.path("passwd");
    std::fs::copy("/etc/passwd", &passwd).expect("copy passwd");
    let script = format!(
        "mount --bind {} /etc/passwd && exec {} --store {} record",
        passwd.display(),
        crate::helpers::bin().display(),
        s.dir.display()
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("OPEN_FORENSICS_CONFIG", "/dev/null");
    let rec = Recorder::start_cmd(cmd);
    let open_as_uid = || {
        let st = std::process::Command::new("setpriv")
            .args([
                "--reuid",
                UID,
                "--regid",
                UID,
                "--clear-groups",
                "cat",
                "/etc/hostname",
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("setpriv");
        assert!(st.success());
    };
    open_as_uid();
    std::thread::sleep(Duration::from_millis(300));
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&passwd)
            .expect("open the copy");
        writeln!(f, "{NAME}:x:{UID}:{UID}::/nonexistent:/bin/sh").expect("append");
    }
    // Past the recorder's once-a-second look at the file.
    std::thread::sleep(Duration::from_millis(1500));
    open_as_uid();
    std::thread::sleep(Duration::from_millis(500));
    rec.stop();

    let by_uid = s.ok(&["query", "--uid", UID, "--format", "jsonl"]);
    let by_name = s.ok(&["query", "--user", NAME, "--format", "jsonl"]);
    assert!(by_uid.lines().count() >= 2, "{by_uid}");
    assert_eq!(by_name, by_uid);
    assert!(
        by_name.contains(&format!("\"user\":\"{NAME}\"")),
        "{by_name}"
    );
}

/// Issue #28 (time windows): dates and times without a zone are local (`TZ`), as
/// `journalctl --since` reads them; a bare number is no duration; a reversed window is an error
/// naming both ends, not an empty answer.
#[test]
fn local_times_bare_numbers_and_reversed_windows() {
    let store = crate::helpers::fixtures_dir().join("segments/evasion");
    let count = |tz: &str, since: &str, until: &str| -> usize {
        let out = crate::helpers::cmd_at(
            &store,
            &[
                "query", "--since", since, "--until", until, "--format", "jsonl",
            ],
        )
        .env("TZ", tz)
        .output()
        .expect("run query");
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().count()
    };
    // The fixture was recorded at 01:13 UTC: 10:13 in Tokyo (UTC+9, no daylight saving).
    let utc = count("UTC", "2026-12-07T01:13:00Z", "2026-12-07T01:14:00Z");
    assert!(utc > 0, "the fixture's minute holds events");
    assert_eq!(
        count("Asia/Tokyo", "2026-12-07 10:13", "2026-12-07 10:14"),
        utc
    );
    assert_eq!(
        count("UTC-9", "2026-12-07 10:13:00", "2026-12-07T10:14"),
        utc
    );
    assert_eq!(count("UTC", "2026-12-07 10:13", "2026-12-07 10:14"), 0);

    for (args, says) in [
        (&["--since", "10"][..], "needs its unit"),
        (&["--since", "1h", "--until", "2h"][..], "is before --since"),
        (
            &["--since", "2026-12-07", "--until", "2026-12-06"][..],
            "the window is empty",
        ),
    ] {
        let mut a = vec!["query"];
        a.extend_from_slice(args);
        let out = crate::helpers::cmd_at(&store, &a).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

/// Issue #28: `query` without a store said "no such store directory: no such store directory",
/// exit 1, with no hint. Every reading command now names the fix and exits 2.
#[test]
fn a_missing_store_says_how_to_name_one_and_exits_2() {
    let t = TempStore::new();
    let missing = t.dir.join("not-here");
    let poc = crate::helpers::fixtures_dir().join("rules/poc.yaml");
    let poc = poc.to_str().expect("utf-8");
    for args in [
        &["query"][..],
        &["replay", "--rules", poc][..],
        &["export"][..],
        &["segments"][..],
        &["proc", "1"][..],
    ] {
        let out = crate::helpers::cmd_at(&missing, args)
            .output()
            .expect("run");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("no such store directory")
                && err.contains("--store")
                && err.contains("OPEN_FORENSICS_STORE")
                && err.matches("no such store directory").count() == 1,
            "{args:?}: {err}"
        );
    }
}

/// Issue #28: `replay` could not filter by rule or severity. `--rule` and `--severity` keep
/// exactly the lines of those alerts that the whole set prints, byte for byte; an unknown rule
/// is an error naming the rules there are.
#[test]
fn replay_rule_and_severity_keep_exactly_those_alerts() {
    let store = crate::helpers::fixtures_dir().join("segments/lifecycle");
    let rules = crate::helpers::fixtures_dir().join("rules/detections.yaml");
    let rules = rules.to_str().expect("utf-8");
    let replay = |extra: &[&str]| -> Output {
        let mut a = vec!["replay", "--rules", rules];
        a.extend_from_slice(extra);
        crate::helpers::cmd_at(&store, &a)
            .output()
            .expect("run replay")
    };
    let all = stdout(&replay(&[]));
    let keep = |f: &dyn Fn(&serde_json::Value) -> bool| -> String {
        all.lines()
            .filter(|l| f(&serde_json::from_str(l).expect("alert json")))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let two = keep(&|a| a["rule"] == "setuid_bit_set" || a["rule"] == "log_moved_away");
    assert!(two.lines().count() >= 2, "{all}");
    assert_eq!(
        stdout(&replay(&["--rule", "setuid_bit_set,log_moved_away"])),
        two
    );
    assert_eq!(
        stdout(&replay(&[
            "--rule",
            "setuid_bit_set",
            "--rule",
            "log_moved_away"
        ])),
        two
    );
    let critical = keep(&|a| a["severity"] == "critical");
    assert!(!critical.is_empty() && critical.len() < all.len());
    assert_eq!(stdout(&replay(&["--severity", "critical"])), critical);
    let high = keep(&|a| a["severity"] == "critical" || a["severity"] == "high");
    assert_eq!(stdout(&replay(&["--severity", "high"])), high);

    let out = replay(&["--rule", "no_such_rule"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("shadow_read"), "{}", stderr(&out));
    let out = replay(&["--severity", "urgent"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
