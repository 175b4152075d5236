//! Output that reads at a glance (#28, "Terminal"): tables that fit the terminal (whole cells,
//! columns left out by rank, one record per block when narrow or piped), local time and `--utc`,
//! colour and `NO_COLOR`, rules' `output:` templates on replay and on a live terminal.
//! The terminal is `--terminal` with `COLUMNS` (hidden, for tests), or a real pty from `script`.

use std::path::Path;
use std::process::Command;

use crate::helpers::{bin, live_capture_available, TempStore};
use crate::history::fixture_copy;

/// `query --format table` on the `lineage` fixture as a terminal of `columns` would show it.
fn table(s: &TempStore, columns: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["query", "--format", "table", "--terminal", "--no-pager"];
    args.extend_from_slice(extra);
    let out = s
        .cmd(&args)
        .env("COLUMNS", columns)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Issue #28: at 80 columns every cell wrapped character by character. Lines fit, times and
/// short paths are whole, and the columns left out are named once.
#[test]
fn tables_fit_80_columns_with_whole_cells() {
    let s = fixture_copy("lineage");
    let (out, err) = table(&s, "80", &[]);
    assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
    assert!(out.contains("│ 13:52:50.883 ┆"), "{out}");
    assert!(out.contains(" /etc/ld.so.cache "), "{out}");
    assert!(
        out.contains("2026-11-25"),
        "the day heads the time column: {out}"
    );
    assert_eq!(
        err.matches("left out to fit 80 columns").count(),
        1,
        "{err}"
    );
    assert!(err.contains("syscall"), "{err}");
    // --wide: every column, whole executable paths, however wide.
    let (wide, err) = table(&s, "80", &["--wide"]);
    assert!(wide.contains("/tmp/of-head/target/release/examples/of-workload"));
    assert!(
        wide.contains("syscall") && !err.contains("left out"),
        "{err}"
    );
}

/// Issue #28: a terminal width of 0 gave 1-character columns. Unknown or 0 is 100.
#[test]
fn a_zero_width_is_the_default_width() {
    let s = fixture_copy("lineage");
    let (out, _) = table(&s, "0", &[]);
    let widest = out.lines().map(|l| l.chars().count()).max().unwrap();
    assert!((81..=100).contains(&widest), "{widest}: {out}");
}

/// Below 60 columns, and off a terminal, a table is one record per block.
#[test]
fn narrow_terminals_and_pipes_get_one_record_per_block() {
    let s = fixture_copy("lineage");
    let (out, _) = table(&s, "40", &["--limit", "2"]);
    let piped = s.ok(&["query", "--format", "table", "--limit", "2", "--utc"]);
    for text in [&out, &piped] {
        assert!(!text.contains('┌'), "{text}");
        assert!(text.contains("    path: /etc/ld.so.cache\n"), "{text}");
        assert!(
            text.contains("      ts: 2026-11-25 13:52:50.883"),
            "times in full: {text}"
        );
        assert!(
            text.contains("/examples/of-workload\n"),
            "whole exe: {text}"
        );
        assert_eq!(text.matches("\n\n").count(), 2, "{text}");
    }
}

/// Times on a table are local (TZ honoured) unless `--utc`; JSON lines stay RFC3339 UTC.
#[test]
fn local_time_by_default_and_utc_on_request() {
    let s = fixture_copy("lineage");
    let run = |tz: &str, extra: &[&str]| {
        let mut args = vec!["query", "--limit", "1", "--terminal", "--no-pager"];
        args.extend_from_slice(extra);
        let out = s
            .cmd(&args)
            .env("TZ", tz)
            .env("COLUMNS", "120")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let tokyo = run("Asia/Tokyo", &["--format", "table"]);
    assert!(
        tokyo.contains("22:52:50.883") && tokyo.contains("2026-11-25"),
        "{tokyo}"
    );
    let utc = run("Asia/Tokyo", &["--format", "table", "--utc"]);
    assert!(
        utc.contains("13:52:50.883") && utc.contains("2026-11-25 UTC"),
        "{utc}"
    );
    assert_eq!(
        run("Asia/Tokyo", &["--format", "jsonl"]),
        run("UTC", &["--format", "jsonl"])
    );
    assert!(run("Asia/Tokyo", &["--format", "jsonl"]).contains("\"ts\":\"2026-11-25T13:52:50.883"));
}

/// A rule file with a template, and a store to replay it over.
fn rules_file(s: &TempStore, output: &str) -> std::path::PathBuf {
    let p = s.tmp.path().join("rules.yaml");
    std::fs::write(
        &p,
        format!(
            "rules:\n  - name: shadow_read\n    description: d\n    severity: high\n    path: /etc/shadow\n    output: \"{output}\"\n"
        ),
    )
    .unwrap();
    p
}

/// `replay --format table` on a terminal: one line per alert, the rule's template rendered,
/// the severity coloured unless NO_COLOR; JSON lines unchanged.
#[test]
fn replay_on_a_terminal_is_one_line_per_alert_with_its_template() {
    let s = fixture_copy("lineage");
    let rules = rules_file(&s, "%comm (pid %pid, user %user) read %path as %container");
    let rules = rules.to_str().unwrap();
    let run = |no_color: Option<&str>, extra: &[&str]| {
        let mut args = vec!["replay", "--rules", rules, "--no-pager", "--utc"];
        args.extend_from_slice(extra);
        let mut c = s.cmd(&args);
        c.env_remove("NO_COLOR").env("TERM", "xterm");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let line = run(None, &["--format", "table", "--terminal"]);
    let first = line.lines().next().expect("an alert");
    assert!(
        first.starts_with("13:52:50.884 \u{1b}[1m\u{1b}[31mHIGH    \u{1b}[0m shadow_read "),
        "{first:?}"
    );
    assert!(first.ends_with("read /etc/shadow as <NA>"), "{first:?}");
    assert!(first.contains("(pid 7901, user root)"), "{first:?}");
    let plain = run(Some("1"), &["--format", "table", "--terminal"]);
    assert!(!plain.contains('\u{1b}'), "NO_COLOR: {plain:?}");
    assert!(
        plain.starts_with("13:52:50.884 HIGH     shadow_read "),
        "{plain}"
    );
    let never = run(
        None,
        &["--format", "table", "--terminal", "--color", "never"],
    );
    assert_eq!(never, plain);
    // JSON lines: the alert as ever, no template in it.
    let json = run(None, &[]);
    assert!(
        json.starts_with("{\"ts\":\"2026-11-25T13:52:50.884"),
        "{json}"
    );
    assert!(!json.contains("as <NA>"), "{json}");
}

/// An unknown `%field` is refused at load, naming the file, line and column (exit 2).
#[test]
fn an_unknown_template_field_is_refused_with_its_position() {
    let s = fixture_copy("lineage");
    let rules = rules_file(&s, "read by %exee");
    let out = s.run(&["replay", "--rules", rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rules.yaml:6:13: rules[0].output: unknown field `%exee`: expected one of"),
        "{err}"
    );
    let out = s.run(&["rules", "check", rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// Live alerts on a terminal (a pty from `script`) are one line each, with the template.
#[test]
fn live_alerts_on_a_terminal_are_one_line_each() {
    if !live_capture_available("live_alerts_on_a_terminal_are_one_line_each") {
        return;
    }
    let s = TempStore::new();
    let marker = s.tmp.path().join("of-terminal-marker");
    std::fs::write(&marker, "x").unwrap();
    let rules = s.tmp.path().join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "rules:\n  - name: marker_read\n    description: d\n    severity: critical\n    path: {}\n    output: \"%comm read %path\"\n",
            marker.display()
        ),
    )
    .unwrap();
    // The recorder runs 12 s; the marker is read every half second from the second on, so the
    // recorder has time to attach even on a loaded machine.
    let cmd = format!(
        "{bin} --store {store} record --rules {rules} --duration 12s & \
         sleep 1; for i in $(seq 1 16); do cat {marker} >/dev/null; sleep 0.5; done; wait",
        bin = bin().display(),
        store = s.dir.display(),
        rules = rules.display(),
        marker = marker.display(),
    );
    let out = Command::new("/usr/bin/script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("OPEN_FORENSICS_CONFIG", "/dev/null")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout);
    let want = format!("CRITICAL marker_read cat read {}", marker.display());
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("marker_read")).collect();
    assert!(!lines.is_empty(), "no alert line: {text}");
    assert!(
        lines.iter().all(|l| l.trim_end().ends_with(&want)),
        "{text}"
    );
    assert!(!text.contains("{\"ts\""), "JSON on a terminal: {text}");
    assert!(Path::new("/usr/bin/script").exists());
}
