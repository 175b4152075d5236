//! Regular expressions (`re:`) and case-insensitive values (`i:`) in rules, end to end, and
//! `rules import-sigma`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

use open_forensics::bytes::Str;
use open_forensics::event::{Event, Op, Syscall};
use open_forensics::process::{ProcSource, Process};
use open_forensics::store::{RotateConfig, Writer};

use crate::helpers::{bin, event, fixtures_dir, TempStore};
use crate::lifecycle_rules::{lines, of, ok, rules_sql_alerts};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Rules that use each form on each kind of key, over what the `lineage` and `lifecycle`
/// fixtures hold.
const PATTERN_RULES: &str = r#"
rules:
  - name: locale_by_tr
    description: re on path, i on comm
    severity: low
    path: 're:^/usr/lib/locale/C\.utf8/LC_(TIME|NAME)$'
    comm: 'i:TR'
  - name: coreutils_catalog
    description: i on exe, case-insensitive re on path
    severity: low
    exe: 'i:/USR/BIN/ID'
    path: 're:(?i)COREUTILS\.MO$'
  - name: shell_from_dpkg
    description: re on cmdline and parent_exe
    severity: medium
    cmdline: 're:^/bin/sh -c echo'
    parent_exe: 're:/dpkg$'
  - name: local_bin_by_root
    description: i prefix on path, re on user
    severity: high
    path: 'i:/USR/LOCAL/BIN/'
    user: 're:^ro+t$'
  - name: lineage_programs
    description: re on comm and not_path, i glob on ancestor_exe
    severity: info
    comm: 're:^(nginx|dpkg)$'
    not_path: 're:^/(usr/)?lib'
    ancestor_exe: 'i:**/OF-WORKLOAD'
  - name: any_op_under_etc
    description: re over every operation
    severity: info
    not_op: [open]
    path: 're:^/etc/'
    except:
      - old_path: 're:\.dpkg-'
"#;

/// A private copy of a kept fixture store (a store is owner-only).
fn fixture_store(s: &TempStore, scenario: &str) -> PathBuf {
    let dir = s.path(scenario);
    std::fs::create_dir(&dir).unwrap();
    for f in std::fs::read_dir(fixtures_dir().join("segments").join(scenario)).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    dir
}

fn write(s: &TempStore, name: &str, text: &str) -> String {
    let p = s.path(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// `rules sql` returns `replay`'s alerts for rules written with `re:` and `i:` values, on DuckDB
/// and on Spark, over recorded fixtures; every rule fires somewhere.
#[test]
fn rules_sql_with_regex_and_nocase_values_equals_replay() {
    let s = TempStore::new();
    let rules = write(&s, "patterns.yaml", PATTERN_RULES);
    let stores: Vec<(&str, std::path::PathBuf)> = ["lineage", "lifecycle"]
        .into_iter()
        .map(|scenario| (scenario, fixture_store(&s, scenario)))
        .collect();
    let fired = crate::rule_keys::assert_sql_equals_replay(
        &s,
        &rules,
        &stores,
        "rules_sql_with_regex_and_nocase_values_equals_replay",
    );
    let every: std::collections::BTreeSet<String> = [
        "locale_by_tr",
        "coreutils_catalog",
        "shell_from_dpkg",
        "local_bin_by_root",
        "lineage_programs",
        "any_op_under_etc",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(fired, every);
}

/// A bad regex is an error at its file:line:column, exit 2.
#[test]
fn bad_regex_is_a_positioned_error_with_exit_2() {
    let s = TempStore::new();
    let rules = write(
        &s,
        "bad.yaml",
        "rules:\n  - name: r\n    description: d\n    severity: low\n    path: ['/ok', 're:^/etc/(shadow']\n",
    );
    let out = Command::new(bin())
        .args(["rules", "check", &rules])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:5:19: rules[0].path[1]: invalid regular expression \"^/etc/(shadow\": unclosed group"),
        "{err}"
    );
}

/// `rules import-sigma` of `dir` (under `tests/data/sigma`): its exit status, stderr, and stdout
/// checked against (or, with `OPEN_FORENSICS_BLESS`, written to) the kept rule file `kept`.
fn import_to_kept(dir: &str, kept: &str) -> (Option<i32>, String) {
    let out = Command::new(bin())
        .args(["rules", "import-sigma", &format!("tests/data/sigma/{dir}")])
        .current_dir(ROOT)
        .output()
        .unwrap();
    let kept = fixtures_dir().join("rules").join(kept);
    let got = String::from_utf8(out.stdout).unwrap();
    if std::env::var_os("OPEN_FORENSICS_BLESS").is_some() {
        std::fs::write(&kept, &got).unwrap();
    }
    assert_eq!(
        got,
        std::fs::read_to_string(&kept).unwrap(),
        "{}",
        kept.display()
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `rules import-sigma` over the vendored SigmaHQ `file_event` rules: all eight convert to
/// `fixtures/rules/sigma.yaml` (replayed over every fixture as golden alerts, see `fixtures.rs`).
#[test]
fn import_sigma_converts_the_vendored_file_rules_to_the_kept_rule_file() {
    let (code, err) = import_to_kept("file_event", "sigma.yaml");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("converted 8 of 8 Sigma rules (0 refused)"),
        "{err}"
    );
}

/// The 35 vendored `process_creation` rules: 29 convert to `op: [exec]` rules in
/// `fixtures/rules/sigma_process_creation.yaml`; the other six are refused by name with the
/// reason, and the exit status says some were.
#[test]
fn import_sigma_converts_process_creation_rules_and_refuses_the_rest_by_name() {
    let (code, err) = import_to_kept("process_creation", "sigma_process_creation.yaml");
    assert_eq!(code, Some(1));
    let refused: Vec<&str> = err.lines().filter(|l| l.contains(": refused: ")).collect();
    let why = |rule: &str| {
        let l = refused
            .iter()
            .find(|l| l.contains(&format!("/proc_creation_lnx_{rule}.yml: refused: ")))
            .unwrap_or_else(|| panic!("{rule} not refused:\n{err}"));
        l.split(": refused: ").nth(1).unwrap().to_owned()
    };
    assert_eq!(refused.len(), 6, "{err}");
    assert!(
        why("omigod_scx_runasprovider_executescript").contains("field `LogonId` has no rule key")
    );
    assert!(why("local_account").contains("an `or` across fields (exe and cmdline)"));
    assert!(why("susp_interactive_bash").contains("an `or` across fields (cmdline and exe)"));
    assert!(why("clear_syslog").contains("an `or` whose alternatives are not each one field"));
    assert!(why("chmod_targeting_sensitive_directories")
        .contains("two conditions on `parent_cmdline` inside one negated `and`"));
    assert!(why("services_stop_and_disable")
        .contains("two conditions on `cmdline` inside one negated `and`"));
    assert!(
        err.contains("converted 29 of 35 Sigma rules (6 refused)"),
        "{err}"
    );
}

/// `--out` replaces the file; `--dry-run` prints and writes nothing.
#[test]
fn import_sigma_writes_out_only_without_dry_run() {
    let s = TempStore::new();
    let rule = format!("{ROOT}/tests/data/sigma/file_event/file_event_lnx_doas_conf_creation.yml");
    let out = s.path("out.yaml");
    let run = |extra: &[&str]| {
        Command::new(bin())
            .args(["rules", "import-sigma", &rule, "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let dry = run(&["--dry-run"]);
    assert!(dry.status.success());
    assert!(String::from_utf8_lossy(&dry.stdout)
        .contains("- name: sigma_linux_doas_conf_file_creation\n"));
    assert!(!out.exists());
    let wet = run(&[]);
    assert!(wet.status.success());
    assert!(wet.stdout.is_empty());
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, String::from_utf8_lossy(&dry.stdout));
    ok(Command::new(bin()).args(["rules", "check"]).arg(&out));
}

/// Whether pySigma (the oracle) is installed; where it is not, `test` is skipped (not in CI).
fn pysigma_available(test: &str) -> bool {
    let have = Command::new("python3")
        .args(["-c", "import sigma.rule"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        crate::helpers::skip(test, "no pySigma (pip install pysigma)");
    }
    have
}

/// pySigma (the reference parser, pinned in the README's test command) is the oracle: events are
/// generated around every value of the converted vendored rules, pySigma's parse of each rule is
/// evaluated on them (`tests/sigma/oracle.py`), and `replay` of `fixtures/rules/sigma.yaml` must
/// raise exactly those alerts.
#[test]
fn converted_rules_alert_exactly_where_pysigma_says_the_sigma_rules_match() {
    if !pysigma_available("converted_rules_alert_exactly_where_pysigma_says_the_sigma_rules_match")
    {
        return;
    }
    let s = TempStore::new();
    let kept = fixtures_dir().join("rules/sigma.yaml");
    let summary = ok(Command::new("python3")
        .arg(format!("{ROOT}/tests/sigma/oracle.py"))
        .arg(format!("{ROOT}/tests/data/sigma"))
        .arg(&kept)
        .arg(s.tmp.path()));
    let events = s.path("events.jsonl");
    s.ok(&["import", events.to_str().unwrap()]);
    let (want, got) = oracle_and_replay(&s, &kept);
    assert!(want.len() > 100, "{summary}");
    assert_eq!(got, want, "{summary}");
    // And the same rules compiled by `rules sql`, on DuckDB over the Parquet export.
    let test = "converted_rules_alert_exactly_where_pysigma_says_the_sigma_rules_match";
    if let Some(on_duckdb) = on_duckdb(&s, &s.dir, &kept, test) {
        assert_eq!(on_duckdb, want, "rules sql on DuckDB");
    }
}

/// Alerts as sorted (ts, rule) pairs.
type Matches = Vec<(i64, String)>;

/// The oracle's matches (`expected.json`, written by tests/sigma/oracle.py) and `replay` of
/// `kept` over the store.
fn oracle_and_replay(s: &TempStore, kept: &Path) -> (Matches, Matches) {
    let mut want: Matches =
        serde_json::from_str(&std::fs::read_to_string(s.path("expected.json")).unwrap()).unwrap();
    want.sort();
    let replayed = s.ok(&[
        "replay",
        "--rules",
        kept.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    let mut got: Matches = lines(&replayed)
        .iter()
        .map(|a| {
            let ts = open_forensics::timespec::parse_ts(a["ts"].as_str().unwrap()).unwrap();
            (ts, a["rule"].as_str().unwrap().to_owned())
        })
        .collect();
    got.sort();
    (want, got)
}

/// The alerts (ts, rule) of `rules`' `rules sql` query on DuckDB over `store`'s Parquet export,
/// sorted; `None` where DuckDB is not installed (`test` is the test that then skips).
fn on_duckdb(s: &TempStore, store: &Path, rules: &Path, test: &str) -> Option<Matches> {
    let parquet = s.path("parquet");
    ok(of(store, &["export", "--format", "parquet", "--out"]).arg(&parquet));
    let jobs = [("oracle", parquet)];
    let found = rules_sql_alerts(s, rules.to_str().unwrap(), "duckdb", &jobs, test)?;
    let mut alerts: Matches = found[0]
        .iter()
        .map(|a| {
            (
                a["ts_ns"].as_i64().unwrap(),
                a["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    alerts.sort();
    Some(alerts)
}

/// The exec event the oracle describes (`execs.json`): a new image running `Image` with
/// `CommandLine`, begun in `CurrentDirectory` by `User` (uid `uid`), whose parent ran
/// `ParentImage` with `ParentCommandLine`. Each command line is one argument, so that argv joined
/// with spaces is exactly the oracle's string.
fn exec_event(i: u32, x: &Value, uid: u32) -> Event {
    let s = |k: &str| Str::from(x[k].as_str().unwrap());
    let argv = |k: &str| Str::new([x[k].as_str().unwrap().as_bytes(), b"\0"].concat());
    let ts = x["ts_ns"].as_i64().unwrap();
    let parent = Process {
        exe: Some(s("ParentImage")),
        argv: Some(argv("ParentCommandLine")),
        source: ProcSource::Exec,
        exec_ns: Some(ts - 1500),
        ..Process::from_event(2_000_000 + i, ts - 2000, 1, Str::from("parent"), uid, uid)
    };
    let p = Process {
        exe: Some(s("Image")),
        argv: Some(argv("CommandLine")),
        cwd: Some(s("CurrentDirectory")),
        parent: Some(Arc::new(parent)),
        source: ProcSource::Exec,
        exec_ns: Some(ts),
        ..Process::from_event(
            1_000_000 + i,
            ts - 1000,
            2_000_000 + i,
            Str::from("child"),
            uid,
            uid,
        )
    };
    Event {
        ts_ns: ts,
        pid: p.pid,
        tid: p.pid,
        ppid: p.ppid,
        uid,
        gid: uid,
        op: Op::Exec,
        syscall: Syscall::Execve,
        path: s("Image"),
        raw_path: s("Image"),
        flags: 0,
        ret: 0,
        user: Some(s("User")),
        euid: Some(uid),
        egid: Some(uid),
        process: Some(Arc::new(p)),
        ..event(0, "/")
    }
}

/// The same oracle over exec events: pySigma's parse of each vendored `process_creation` rule
/// that converts, evaluated on execs generated around its values on all six fields, and `replay`
/// of `fixtures/rules/sigma_process_creation.yaml` over a store of those execs (and its `rules
/// sql` on DuckDB) must raise exactly those alerts.
#[test]
fn converted_process_creation_rules_alert_on_execs_exactly_where_pysigma_says() {
    if !pysigma_available(
        "converted_process_creation_rules_alert_on_execs_exactly_where_pysigma_says",
    ) {
        return;
    }
    let s = TempStore::new();
    let kept = fixtures_dir().join("rules/sigma_process_creation.yaml");
    let summary = ok(Command::new("python3")
        .arg(format!("{ROOT}/tests/sigma/oracle.py"))
        .arg(format!("{ROOT}/tests/data/sigma/process_creation"))
        .arg(&kept)
        .arg(s.tmp.path()));
    let execs: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(s.path("execs.json")).unwrap()).unwrap();
    // The user name is stored per uid: one uid per name.
    let mut uids = std::collections::HashMap::new();
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("writer");
    for (i, x) in execs.iter().enumerate() {
        let n = uids.len() as u32;
        let uid = *uids
            .entry(x["User"].as_str().unwrap().to_owned())
            .or_insert(1000 + n);
        w.append(&mut exec_event(i as u32, x, uid)).expect("append");
    }
    w.close().expect("close");
    let (want, got) = oracle_and_replay(&s, &kept);
    let fired: std::collections::BTreeSet<&str> = got.iter().map(|(_, r)| r.as_str()).collect();
    // Every converted rule fires on some generated exec, but the one whose only value is a
    // regex (`-(W|R)\s?…`): samples are made from values, not from what a regex matches.
    assert_eq!(fired.len(), 28, "{summary}");
    assert!(!fired.contains("sigma_pnscan_binary_data_transmission_activity"));
    assert_eq!(got, want, "{summary}");
    let test = "converted_process_creation_rules_alert_on_execs_exactly_where_pysigma_says";
    if let Some(on_duckdb) = on_duckdb(&s, &s.dir, &kept, test) {
        assert_eq!(on_duckdb, want, "rules sql on DuckDB");
    }
}
