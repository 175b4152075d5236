//! The rule keys of issue #30's process and path details: `parent_cmdline`, `cwd`, `tty`,
//! `proc_age` and `raw_path`, each with its `not_` form, `$lists`, `re:`/`i:` where a string,
//! in `output:` templates, and pruning nothing.

use std::sync::Arc;

use super::tests::{by, err, ev, fire, fires, set};
use super::*;
use crate::bytes::Str;
use crate::event::Event;
use crate::process::Process;

/// An open of `path` (passed as `raw`) by a `curl` whose parent ran `parent_args`, in `cwd`, on
/// `tty`, started `age_ns` before the open.
fn opener(
    raw: &str,
    parent_args: &[&str],
    cwd: Option<&str>,
    tty: Option<&str>,
    age_ns: i64,
) -> Event {
    let e = by("/usr/bin/curl", &["curl", "-O", "x"], "/usr/bin/bash", None);
    let mut p = (**e.process.as_ref().unwrap()).clone();
    let mut parent = (**p.parent.as_ref().unwrap()).clone();
    let mut argv = parent_args.join("\0").into_bytes();
    argv.push(0);
    parent.argv = (!parent_args.is_empty()).then(|| Str::new(argv));
    p.parent = Some(Arc::new(parent));
    p.cwd = cwd.map(Str::from);
    p.tty = tty.map(Str::from);
    p.start_ns = e.ts_ns - age_ns;
    Event {
        raw_path: Str::from(raw),
        process: Some(Arc::new(p)),
        ..e
    }
}

fn rule(conds: &str) -> RuleSet {
    set(&format!(
        "lists:\n  dev: [/home/*/src/**]\nrules:\n  - {{name: r, description: d, severity: high, {conds}}}\n"
    ))
}

const SEC: i64 = 1_000_000_000;

#[test]
fn parent_cmdline_matches_the_parents_arguments_joined_as_cmdline_does() {
    let e = opener(
        "/etc/shadow",
        &["bash", "-c", "curl -O x | sh"],
        None,
        None,
        SEC,
    );
    assert!(fires(&rule("parent_cmdline: 'bash -c curl*'"), &e));
    assert!(fires(&rule(r"parent_cmdline: 're:\|\s*sh$'"), &e));
    assert!(fires(&rule("parent_cmdline: 'i:BASH -C *'"), &e));
    assert!(!fires(&rule("parent_cmdline: 'bash -c'"), &e));
    assert!(!fires(&rule("not_parent_cmdline: 'bash *'"), &e));
    // A parent whose arguments were not recorded: a positive condition fails, a `not_` holds.
    let unknown = opener("/etc/shadow", &[], None, None, SEC);
    assert!(!fires(&rule("parent_cmdline: '*'"), &unknown));
    assert!(fires(&rule("not_parent_cmdline: '*'"), &unknown));
}

#[test]
fn cwd_matches_as_a_path_and_a_missing_one_matches_no_value() {
    let e = opener("x", &[], Some("/home/ann/src/proj"), None, SEC);
    assert!(fires(&rule("cwd: [$dev]"), &e));
    assert!(fires(&rule("cwd: /home/"), &e));
    assert!(fires(&rule("cwd: 're:/src/'"), &e));
    assert!(fires(&rule("cwd: 'i:/HOME/ANN/SRC/PROJ'"), &e));
    assert!(
        !fires(&rule("cwd: '/home/*/proj'"), &e),
        "`*` stays in a component"
    );
    assert!(!fires(&rule("not_cwd: /home/"), &e));
    let none = opener("x", &[], None, None, SEC);
    assert!(!fires(&rule("cwd: '**'"), &none));
    assert!(fires(&rule("not_cwd: /home/"), &none));
    assert!(err(&rule_text("cwd: tmp")).contains("is not absolute"));
}

fn rule_text(conds: &str) -> String {
    format!("rules:\n  - {{name: r, description: d, severity: high, {conds}}}\n")
}

#[test]
fn tty_matches_a_name_or_glob_and_none_means_no_terminal() {
    let on_pts = opener("x", &[], None, Some("pts/3"), SEC);
    let daemon = opener("x", &[], None, None, SEC);
    let (pts, none, not_none) = (
        rule("tty: 'pts/*'"),
        rule("tty: none"),
        rule("not_tty: none"),
    );
    assert!(fires(&pts, &on_pts) && !fires(&pts, &daemon));
    assert!(!fires(&none, &on_pts) && fires(&none, &daemon));
    assert!(fires(&not_none, &on_pts) && !fires(&not_none, &daemon));
    assert!(fires(&rule("tty: ['tty1', 're:^pts/[0-9]+$']"), &on_pts));
    assert!(fires(&rule("not_tty: [tty1]"), &on_pts));
    // No lineage at all: whether it had a terminal is unknown, so `tty: none` does not hold.
    assert!(!fires(&none, &ev("x")) && fires(&not_none, &ev("x")));
}

#[test]
fn proc_age_compares_the_time_since_the_process_started() {
    let young = opener("x", &[], None, None, SEC);
    let old = opener("x", &[], None, None, 10 * SEC);
    let after_startup = rule("proc_age: '>5s'");
    assert!(fires(&after_startup, &old) && !fires(&after_startup, &young));
    let early = rule("not_proc_age: '>5s'");
    assert!(fires(&early, &young) && !fires(&early, &old));
    assert!(fires(&rule("proc_age: ['<500ms', '>=10s']"), &old));
    assert!(fires(&rule("proc_age: '<= 1s'"), &young));
    // Without lineage the start is unknown.
    assert!(!fires(&rule("proc_age: '>0s'"), &ev("x")));
    assert!(fires(&rule("not_proc_age: '>0s'"), &ev("x")));
    let e = err(&rule_text("proc_age: '5s'"));
    assert!(
        e.contains("t.yaml:2:57: rules[0].proc_age: invalid process age \"5s\""),
        "{e}"
    );
    assert!(err(&rule_text("proc_age: '>5'")).contains("needs a unit"));
    assert!(err(&rule_text("proc_age: 5")).contains("expected a process age"));
}

#[test]
fn raw_path_matches_the_path_as_passed_relative_or_not() {
    let traversal = rule("raw_path: '**/../**'");
    for raw in ["../../etc/shadow", "/var/www/../../etc/shadow", "a/../b"] {
        assert!(
            fires(&traversal, &opener(raw, &[], None, None, SEC)),
            "{raw}"
        );
    }
    for raw in ["/etc/shadow", "..hidden/x", "a/b.."] {
        assert!(
            !fires(&traversal, &opener(raw, &[], None, None, SEC)),
            "{raw}"
        );
    }
    let e = opener("../../etc/shadow", &[], None, None, SEC);
    assert_eq!(
        fire(&rule("raw_path: ['x', '../../etc/shadow']"), &e),
        [("r".to_owned(), Some("../../etc/shadow".to_owned()))]
    );
    assert!(fires(&rule(r"raw_path: 're:(^|/)\.\./'"), &e));
    assert!(fires(&rule("raw_path: 'i:../../ETC/*'"), &e));
    assert!(!fires(&rule("not_raw_path: '../**'"), &e));
    // The resolved path is another key: `path` does not see the dots.
    assert!(!fires(&rule("path: '**/../**'"), &e));
    assert!(err(&rule_text("raw_path: ''")).contains("empty path"));
}

#[test]
fn templates_show_the_new_fields() {
    let s = set(r#"
rules:
  - name: r
    description: d
    severity: high
    path: /etc/shadow
    output: "%parent_cmdline|%cwd|%tty|%proc_age_ns|%raw_path"
"#);
    let e = opener(
        "../shadow",
        &["bash", "-i"],
        Some("/etc/ssh"),
        Some("pts/1"),
        7,
    );
    let e = Event {
        path: Str::from("/etc/shadow"),
        ..e
    };
    let out = s.rules()[0].output.as_ref().unwrap().render(&e);
    assert_eq!(out, "bash -i|/etc/ssh|pts/1|7|../shadow");
    assert_eq!(
        s.rules()[0]
            .output
            .as_ref()
            .unwrap()
            .render(&ev("/etc/shadow")),
        "<NA>|<NA>|<NA>|<NA>|/etc/shadow"
    );
}

#[test]
fn the_new_keys_prune_nothing() {
    let keyed =
        rule("cwd: /root/, tty: none, proc_age: '>5s', raw_path: '../**', parent_cmdline: x");
    assert_eq!(keyed.need(), rule("comm: cat").need());
}

#[test]
fn a_process_image_decides_its_keys_once() {
    // Two events of one image (the same proc_key and table) share the image's verdict.
    let s = rule("tty: none, cwd: /srv/");
    let mut e = opener("x", &[], Some("/srv/app"), None, SEC);
    e.table = 7;
    e.proc_key = 3;
    let mut engine = s.engine();
    assert!(engine.matches(&e));
    let p = Process {
        tty: Some(Str::from("pts/0")),
        ..(**e.process.as_ref().unwrap()).clone()
    };
    let same_key = Event {
        process: Some(Arc::new(p)),
        ..e.clone()
    };
    assert!(engine.matches(&same_key), "cached per image");
    assert!(!s.engine().matches(&same_key));
}
