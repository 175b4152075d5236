//! Rules, replay and query through the CLI: golden alerts for both rule formats, the malformed rule
//! file corpus, query filters, `--rule` and named SQL.
//!
//! Golden files live in fixtures/golden/; `OPEN_FORENSICS_BLESS=1 cargo test --test it rules`
//! rewrites them (review the diff).

use std::path::{Path, PathBuf};

use open_forensics::bytes::Str;
use open_forensics::event::{Event, Syscall};
use open_forensics::rules::{Alerter, RuleSet};

use crate::helpers::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn fx(rel: &str) -> String {
    fixture(rel).display().to_string()
}

/// Compares with (or, with OPEN_FORENSICS_BLESS=1, writes) fixtures/golden/NAME.
///
/// Alerts name the recording host, here the machine the test imports on: it is written `HOST`.
fn golden(name: &str, actual: &str) {
    let actual: &str = &actual.replace(
        &format!("\"hostname\":\"{}\"", this_host()),
        "\"hostname\":\"HOST\"",
    );
    let path = fixture("golden").join(name);
    if std::env::var("OPEN_FORENSICS_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with OPEN_FORENSICS_BLESS=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs (OPEN_FORENSICS_BLESS=1 rewrites it; review the diff)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}

/// The name `import` stores as a segment's `host`.
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

const WR: u64 = (libc::O_WRONLY | libc::O_TRUNC) as u64;
const CREATE: u64 = (libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC) as u64;

/// A small history with a positive and a benign sample for every example rule.
fn history() -> Vec<Event> {
    let e = |i: i64, comm: &str, path: &str| Event {
        comm: Str::from(comm),
        ..event(i, path)
    };
    let mut non_utf8 = e(12, "cat", "");
    non_utf8.path = Str::new(&b"/etc/ssh/key-\xff\xfe"[..]);
    non_utf8.raw_path = non_utf8.path.clone();
    vec![
        Event {
            uid: 0,
            ..e(0, "cat", "/etc/shadow")
        },
        e(1, "sshd", "/etc/shadow"),
        e(2, "passwd", "/etc/shadow"),
        Event {
            ret: -13,
            ..e(3, "cat", "/etc/shadow")
        },
        e(4, "bash", "/root/.ssh/id_rsa"),
        e(5, "bash", "/root/.ssh/id_rsa.pub"),
        e(6, "cat", "/proc/1/environ"),
        e(7, "python3.11", "/home/alice/.ssh/keys/id_ed25519"),
        Event {
            flags: WR,
            ..e(8, "vim", "/etc/sudoers")
        },
        e(9, "cat", "/etc/sudoers"),
        Event {
            uid: 0,
            flags: CREATE,
            syscall: Syscall::Openat,
            ..e(10, "touch", "/tmp/x")
        },
        e(11, "cat", "/etc/ssh/sshd_config"),
        non_utf8,
        Event {
            uid: 0,
            ..e(13, "cron", "/etc/shadow")
        },
        e(14, "cat", "/etc/passwd"),
        Event {
            ret: -2,
            ..e(15, "ls", "/etc/nothere")
        },
        Event {
            ret: -2,
            ..e(16, "ls", "/etc/nothere")
        },
        e(17, "cat", "/etc/passwd"),
    ]
}

fn store_with(events: &[Event]) -> TempStore {
    let store = TempStore::new();
    store.import(events);
    store
}

#[test]
fn replay_poc_config_golden() {
    let store = store_with(&history());
    let out = store.ok(&["replay", "--rules", &fx("rules/poc.yaml")]);
    golden("replay_poc.jsonl", &out);
}

#[test]
fn replay_both_formats_golden() {
    let store = store_with(&history());
    let out = store.ok(&[
        "replay",
        "--rules",
        &fx("rules/poc.yaml"),
        &fx("rules/full.yaml"),
    ]);
    golden("replay_both.jsonl", &out);
    let csv = store.ok(&[
        "replay",
        "--rules",
        &fx("rules/full.yaml"),
        "--format",
        "csv",
    ]);
    golden("replay_full.csv", &csv);
}

/// The alerts replay prints are the alerts the engine gives for the same events before they were
/// stored (unkeyed, as `record` would see them before interning): byte for byte.
#[test]
fn replay_lines_equal_direct_engine_lines() {
    let events = history();
    let store = store_with(&events);
    let rules = [fixture("rules/poc.yaml"), fixture("rules/full.yaml")];
    let set = RuleSet::load(&rules).unwrap();
    let mut alerter = Alerter::new(&set);
    alerter.set_host(&this_host());
    let mut direct = String::new();
    for ev in &events {
        alerter.eval(ev, |a| {
            direct.push_str(&a.to_json_line());
            direct.push('\n');
        });
    }
    let replayed = store.ok(&[
        "replay",
        "--rules",
        rules[0].to_str().unwrap(),
        rules[1].to_str().unwrap(),
    ]);
    assert_eq!(replayed, direct);
}

#[test]
fn replay_time_window_and_many_segments() {
    let events = history();
    let store = TempStore::new();
    // Two imports, two segments: alerts keep the stored (time) order across them.
    for part in events.chunks(9) {
        store.import(part);
    }
    let all = store.ok(&["replay", "--rules", &fx("rules/poc.yaml")]);
    golden("replay_poc.jsonl", &all);
    let since = open_forensics::timespec::format_ts(events[4].ts_ns);
    let until = open_forensics::timespec::format_ts(events[11].ts_ns);
    let window = store.ok(&[
        "replay",
        "--rules",
        &fx("rules/poc.yaml"),
        "--since",
        &since,
        "--until",
        &until,
    ]);
    let expected: Vec<&str> = all
        .lines()
        .filter(|l| {
            let ts = &l[7..37];
            ts >= since.as_str() && ts <= until.as_str()
        })
        .collect();
    assert_eq!(window.lines().collect::<Vec<_>>(), expected);
    assert_eq!(expected.len(), 3, "{window}");
}

#[test]
fn replay_of_an_empty_store_is_quiet() {
    let store = store_with(&[]);
    let out = store.run(&["replay", "--rules", &fx("rules/poc.yaml")]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

/// Each malformed file: exit 2, its own message at file:line:col, no panic.
#[test]
fn malformed_rule_files() {
    let cases: &[(&str, &str)] = &[
        ("unknown_key.yaml", ":5:5: rules[0]: unknown field `pth`, expected one of `name`"),
        ("bad_severity.yaml", ":4:15: rules[0].severity: unknown variant `loud`, expected one of `info`, `low`, `medium`, `high`, `critical`"),
        ("wrong_type.yaml", ":5:11: rules[0].uid[0]: expected a uid (an integer), found \"root\""),
        ("bad_glob.yaml", ":5:12: rules[0].path[0]: invalid glob \"/etc/[shadow\": unclosed character class"),
        ("unknown_list.yaml", ":5:12: rules[0].comm[0]: unknown list `shels` (no lists are defined)"),
        ("unknown_errno.yaml", ":6:14: rules[0].result[0]: unknown result \"EACCESS\", expected `success`, `failure` or an errno name"),
        ("exe.yaml", ":5:11: rules[0].exe[0]: path \"usr/bin/cat\" is not absolute"),
        ("duplicate.yaml", ":6:11: rules[1].name: duplicate rule name `r` (first defined at "),
        ("syntax.yaml", ":6:1: did not find expected ',' or ']'"),
        ("poc_wrong_type.yaml", ":3:14: open_monitor.deny_comm: invalid type: map, expected a string, an integer, or a list of them"),
        ("empty.yaml", ":1:1: empty rule file"),
        // Issue #9: each of these overflowed, panicked or was accepted.
        ("list_bomb.yaml", ":9:7: lists.g[0]: list `f` makes the lists expand to more than 100000 values"),
        ("long_pattern.yaml", ":5:12: rules[0].path[0]: pattern \"/a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a\"… is 4099 bytes long; patterns are limited to 4096 bytes"),
        ("comm_not_string.yaml", ":3:14: open_monitor.deny_comm: expected a process name (a string), found 42"),
        ("control_chars.yaml", ":5:5: rules[0]: unknown field `p\\u{1b}[2J\\u{7}`"),
    ];
    let store = TempStore::new();
    let mut seen = std::collections::HashSet::new();
    for (file, want) in cases {
        let path = fx(&format!("rules/bad/{file}"));
        for args in [
            vec!["replay", "--rules", &path],
            vec!["rules", "check", &path],
            vec!["query", "--rule", "r", "--rules", &path],
        ] {
            let out = store.run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains(&format!("{path}{want}")),
                "{args:?}: expected `{path}{want}` in:\n{err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            assert!(
                !err.chars().any(|c| c.is_control() && c != '\n'),
                "{args:?}: raw control characters in {err:?}"
            );
        }
        seen.insert(*file);
    }
    // Every file of the corpus has a case.
    for entry in std::fs::read_dir(fixture("rules/bad")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(seen.contains(name.as_str()), "no case for rules/bad/{name}");
    }
    let out = store.run(&["replay", "--rules", "/nonexistent/rules.yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rules_check_summarises() {
    let store = TempStore::new();
    let out = store.ok(&[
        "rules",
        "check",
        &fx("rules/poc.yaml"),
        &fx("rules/full.yaml"),
        "--format",
        "jsonl",
    ]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "open_sensitive",
            "credentials_read",
            "credentials_denied",
            "ssh_key_access",
            "sudoers_write",
            "tmp_exec_dir",
            "disabled_example"
        ]
    );
    assert_eq!(rows[0]["severity"], "high");
    assert_eq!(rows[6]["enabled"], false);
    assert_eq!(
        rows[1]["conditions"],
        "path: [$credential_files]; result: [success]; except {exe: [$password_tool_exes]}; except {exe: [/usr/sbin/cron]; uid: [0]}"
    );
    assert!(rows[1]["defined_at"]
        .as_str()
        .unwrap()
        .ends_with("full.yaml:10:5"));
}

/// Issue #25, item 4: an exemption a process grants itself by naming itself (`comm`) is a warning
/// of `rules check` (file, line, rule), which still exits 0; the shipped files have none.
#[test]
fn rules_check_warns_on_a_comm_only_exception() {
    let store = TempStore::new();
    let file = store.path("names.yaml");
    std::fs::write(
        &file,
        "rules:\n  - name: shadow_read\n    description: d\n    severity: high\n    path: /etc/shadow\n    except:\n      - comm: [passwd]\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let out = store.run(&["rules", "check", file, &fx("rules/poc.yaml")]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings[0].starts_with(&format!(
            "open-forensics: warning: {file}:7:15: rules[0].except[0].comm: rule `shadow_read`: this exception trusts the process name alone"
        )),
        "{err}"
    );
    let deny = line_after(&fx("rules/poc.yaml"), "open_monitor:", "deny_comm:");
    assert!(
        warnings[1].contains(&format!(
            "poc.yaml:{deny}:14: open_monitor.deny_comm: rule `open_sensitive`"
        )),
        "{err}"
    );
    for shipped in ["detections.yaml", "falco_ports.yaml", "full.yaml"] {
        let out = store.run(&["rules", "check", &fx(&format!("rules/{shipped}"))]);
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            out.status.success() && !err.contains("warning"),
            "{shipped}: {err}"
        );
    }
}

fn paths_of(jsonl: &str) -> Vec<String> {
    jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {}",
                v["comm"].as_str().unwrap(),
                v["path"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn query_by_rule() {
    let store = store_with(&history());
    let full = fx("rules/full.yaml");
    let out = store.ok(&[
        "query",
        "--rule",
        "credentials_read",
        "--rules",
        &full,
        "--format",
        "jsonl",
    ]);
    // Processes named `passwd` and `cron` are not exempt: full.yaml's exceptions name
    // executables, and these events carry none.
    assert_eq!(
        paths_of(&out),
        [
            "cat /etc/shadow",
            "sshd /etc/shadow",
            "passwd /etc/shadow",
            "cron /etc/shadow"
        ]
    );
    // Lines are events, as `export` prints them.
    let export = store.ok(&["export"]);
    for l in out.lines() {
        assert!(export.lines().any(|e| e == l), "{l}");
    }
    // Rule and filters together.
    let out = store.ok(&[
        "query",
        "--rule",
        "credentials_read",
        "--rules",
        &full,
        "--comm",
        "sshd",
        "--format",
        "jsonl",
    ]);
    assert_eq!(paths_of(&out), ["sshd /etc/shadow"]);
    let out = store.run(&["query", "--rule", "nope", "--rules", &full]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rule nope: no such rule"));
}

#[test]
fn query_filters() {
    let events = history();
    let store = store_with(&events);
    let q = |args: &[&str]| {
        let mut a = vec!["query", "--format", "jsonl"];
        a.extend_from_slice(args);
        paths_of(&store.ok(&a))
    };
    assert_eq!(
        q(&["--comm", "bash"]),
        ["bash /root/.ssh/id_rsa", "bash /root/.ssh/id_rsa.pub"]
    );
    assert_eq!(q(&["--comm", "python*,vim"]).len(), 2);
    assert_eq!(
        q(&["--path", "/root/.ssh/*.pub"]),
        ["bash /root/.ssh/id_rsa.pub"]
    );
    assert_eq!(q(&["--path", "/home/**"]).len(), 1);
    assert_eq!(q(&["--path", "/home/*"]).len(), 0, "`*` does not cross `/`");
    assert_eq!(
        q(&["--path", "/etc/ssh/"]).len(),
        2,
        "a trailing / is a directory prefix"
    );
    assert_eq!(
        q(&["--failed"]),
        ["cat /etc/shadow", "ls /etc/nothere", "ls /etc/nothere"]
    );
    assert_eq!(q(&["--uid", "0"]).len(), 3);
    assert_eq!(q(&["--uid", "0", "--comm", "cron"]), ["cron /etc/shadow"]);
    let pid = events[0].pid.to_string();
    let by_pid = q(&["--pid", &pid]);
    assert_eq!(
        by_pid.len(),
        events.iter().filter(|e| e.pid == events[0].pid).count()
    );
    assert_eq!(q(&["--limit", "2"]).len(), 2);
    assert_eq!(q(&["--failed", "--limit", "1"]), ["cat /etc/shadow"]);
    let since = open_forensics::timespec::format_ts(events[15].ts_ns);
    assert_eq!(q(&["--since", &since, "--comm", "ls,cat"]).len(), 3);
    assert_eq!(q(&[]).len(), events.len(), "no filter: every event");
    // A bad glob is the user's to fix.
    let out = store.run(&["query", "--path", "/x/[a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--path: invalid glob"));
    // Tables on request.
    let table = store.ok(&["query", "--comm", "vim", "--format", "table"]);
    assert!(
        table.contains("/etc/sudoers") && table.contains("write,truncate"),
        "{table}"
    );
}

#[test]
fn named_sql() {
    let events = history();
    let store = TempStore::new();
    // Across two segments: aggregates must count both.
    for part in events.chunks(10) {
        store.import(part);
    }
    let list = store.ok(&["query", "--sql", "list", "--format", "jsonl"]);
    for name in [
        "top_paths",
        "top_processes",
        "failed_by_process",
        "failures_by_errno",
        "first_seen",
        "sensitive_timeline",
    ] {
        assert!(list.contains(&format!("\"name\":\"{name}\"")), "{list}");
    }
    let mut all = String::new();
    for name in [
        "top_paths",
        "top_processes",
        "failed_by_process",
        "first_seen",
        "sensitive_timeline",
    ] {
        let out = store.ok(&["query", "--sql", name, "--format", "jsonl"]);
        all.push_str(&format!("## {name}\n{out}"));
    }
    golden("named_sql.jsonl", &all);
    // /etc/shadow is opened in both segments.
    let top = store.ok(&[
        "query",
        "--sql",
        "top_paths",
        "--format",
        "jsonl",
        "--limit",
        "1",
    ]);
    // Keys keep the query's column order.
    assert!(
        top.starts_with(r#"{"path":"/etc/shadow","opens":5,"processes":4,"failed":1,"#),
        "{top}"
    );

    let sql = store.path("mine.sql");
    std::fs::write(
        &sql,
        "SELECT count(*) AS n, count(DISTINCT comm) AS comms FROM events",
    )
    .unwrap();
    let out = store.ok(&["query", "--sql", sql.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(out, format!("n,comms\r\n{},9\r\n", events.len()));

    std::fs::write(&sql, "SELEC nope").unwrap();
    let out = store.run(&["query", "--sql", sql.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = store.run(&["query", "--sql", "no_such_query"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("top_paths"));
}

/// Issue #9: `query --rule` of a disabled rule (`path: ["/**"]`) printed every event while `replay`
/// printed nothing. They agree now: replay skips it, and query by it is an error saying why.
#[test]
fn query_by_a_disabled_rule_is_an_error() {
    let store = store_with(&history());
    let full = fx("rules/full.yaml");
    let out = store.run(&["query", "--rule", "disabled_example", "--rules", &full]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains(&format!(
            "--rule disabled_example: rule `disabled_example` (defined at {full}:46:5) is disabled (`enabled: false`)"
        )),
        "{err}"
    );
    let only_disabled = store.path("disabled.yaml");
    std::fs::write(
        &only_disabled,
        "rules:\n  - {name: off, description: d, severity: low, enabled: false, path: [\"/**\"]}\n",
    )
    .unwrap();
    let only_disabled = only_disabled.to_str().unwrap();
    assert_eq!(store.ok(&["replay", "--rules", only_disabled]), "");
    let out = store.run(&["query", "--rule", "off", "--rules", only_disabled]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// Issue #9: generated rule files that overflowed the stack (exit 134), panicked in globset
/// (exit 101) or took minutes now load, or fail with an error at file:line:col (exit 2).
#[test]
fn huge_rule_files_fail_cleanly_or_load() {
    let store = TempStore::new();
    let check = |name: &str, text: &str| {
        let path = store.path(name);
        std::fs::write(&path, text).unwrap();
        let out = store.run(&[
            "rules",
            "check",
            path.to_str().unwrap(),
            "--format",
            "jsonl",
        ]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !err.contains("panicked") && !err.contains("overflow"),
            "{name}: {err:.300}"
        );
        (
            out.status.code(),
            format!("{}{err}", String::from_utf8_lossy(&out.stdout)),
            path,
        )
    };
    let mut chain = String::from("lists:\n  l0: [a]\n");
    for i in 1..20_000 {
        chain.push_str(&format!("  l{i}: [$l{}]\n", i - 1));
    }
    chain.push_str("rules:\n  - {name: r, description: d, severity: low, comm: [$l19999]}\n");
    let (code, err, path) = check("chain.yaml", &chain);
    assert_eq!(code, Some(2), "{err:.300}");
    assert!(
        err.contains(&format!(
            "{}:19938:12: lists.l19936[0]: list `l19935` is nested more than 64 levels deep",
            path.display()
        )),
        "{err:.300}"
    );

    let glob = format!(
        "rules:\n  - {{name: r, description: d, severity: low, path: [\"/{}\"]}}\n",
        "a*".repeat(120_000)
    );
    let (code, err, path) = check("glob.yaml", &glob);
    assert_eq!(code, Some(2), "{err:.300}");
    assert!(
        err.contains(&format!(
            "{}:2:53: rules[0].path[0]: pattern \"/a*a*",
            path.display()
        )),
        "{err:.300}"
    );
    assert!(err.contains("is 240001 bytes long"), "{err:.300}");

    let mut many = String::from("rules:\n");
    for i in 0..10_000 {
        many.push_str(&format!(
            "  - {{name: r{i}, description: d, severity: low, path: [/etc/f{i}], comm: [c{i}]}}\n"
        ));
    }
    let (code, out, path) = check("many.yaml", &many);
    assert_eq!(code, Some(0), "{out:.300}");
    assert!(out.contains("10000 rules in 1 files: OK"), "{out:.300}");
    assert!(
        out.contains(&format!("\"defined_at\":\"{}:10001:5\"", path.display())),
        "the last rule's origin"
    );
}

/// Issue #9: `--format csv` wrote ESC and BEL raw to the terminal. Cells are escaped, always.
#[test]
fn csv_output_escapes_control_characters() {
    let hostile = "/tmp/\u{1b}[2J\u{7}x\r\ny";
    let store = store_with(&[
        Event {
            comm: Str::from("a\u{1b}]0;t\u{7}"),
            ..event(0, hostile)
        },
        event(1, "/tmp/plain"),
    ]);
    let rules = store.path("tmp.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - {name: tmp, description: \"d\\e[5m\", severity: low, path: [\"/tmp/**\"]}\n",
    )
    .unwrap();
    let rules = rules.to_str().unwrap();
    for args in [
        vec!["query", "--format", "csv"],
        vec!["replay", "--rules", rules, "--format", "csv"],
        vec!["rules", "check", rules, "--format", "csv"],
        vec!["query", "--format", "table"],
    ] {
        let out = store.ok(&args);
        assert!(
            !out.chars()
                .any(|c| c.is_control() && c != '\r' && c != '\n'),
            "{args:?}: {out:?}"
        );
        if args[0] != "rules" {
            assert!(
                out.contains("/tmp/\\u{1b}[2J\\u{7}x\\r\\ny"),
                "{args:?}: {out}"
            );
        }
        if args.contains(&"csv") {
            // One line per row: the header and the rows.
            let rows = if args[0] == "rules" { 1 } else { 2 };
            assert_eq!(out.split("\r\n").count(), 1 + rows + 1, "{args:?}: {out}");
        }
    }
    // JSON lines keep the exact text (escaped by JSON).
    let out = store.ok(&["query", "--format", "jsonl", "--limit", "1"]);
    assert!(
        out.contains(r#""path":"/tmp/\u001b[2J\u0007x\r\ny""#),
        "{out}"
    );
}
