//! `re:` and `i:` values: what they match for every string key, and their errors.

use super::tests::{by, err, ev, fire, fires, set};
use crate::bytes::Str;
use crate::event::Event;

fn rule(conds: &str) -> String {
    format!("rules:\n  - {{name: r, description: d, severity: high, {conds}}}\n")
}

#[test]
fn regex_values_match_anywhere_in_the_value_and_report_themselves() {
    let s = set(&rule(
        r#"path: ['re:^/etc/(shadow|gshadow)$', 're:\.ssh/id_[a-z0-9]+$']"#,
    ));
    assert_eq!(
        fire(&s, &ev("/etc/gshadow")),
        vec![(
            "r".to_owned(),
            Some("re:^/etc/(shadow|gshadow)$".to_owned())
        )]
    );
    assert!(fires(&s, &ev("/home/a/.ssh/id_ed25519")));
    assert!(!fires(&s, &ev("/etc/shadow-")), "anchored with $");
    assert!(!fires(&s, &ev("/home/a/.ssh/id_rsa.pub")));
    // Unanchored: a regex without ^ matches inside the value.
    let s = set(&rule("cmdline: 're:curl .*\\|\\s*sh'"));
    assert!(fires(
        &s,
        &by(
            "/usr/bin/curl",
            &["curl", "x.sh", "|", "sh"],
            "/bin/sh",
            None
        )
    ));
    assert!(!fires(
        &s,
        &by("/usr/bin/curl", &["curl", "x.sh"], "/bin/sh", None)
    ));
}

#[test]
fn nocase_values_ignore_ascii_case_for_exact_prefix_and_glob() {
    let s = set(&rule(
        "path: ['i:/ETC/Shadow', 'i:/Tmp/', 'i:/home/*/.SSH/*']",
    ));
    assert!(fires(&s, &ev("/etc/shadow")));
    assert!(fires(&s, &ev("/etc/SHADOW")));
    assert!(!fires(&s, &ev("/etc/shadow.bak")), "exact stays exact");
    assert!(fires(&s, &ev("/TMP/a/b")), "a `dir/` prefix stays a prefix");
    assert!(fires(&s, &ev("/home/a/.ssh/id")));
    assert!(
        !fires(&s, &ev("/home/a/b/.ssh/id")),
        "`*` still stays within a component"
    );
    // A backslash in an exact value is literal; ASCII only is folded.
    let s = set(&rule(r#"path: 'i:/tmp/\É'"#));
    assert!(fires(&s, &ev("/TMP/\\É")));
    assert!(!fires(&s, &ev("/tmp/\\é")));
    let s = set(&rule("comm: 'i:CAT', path: 'i:/x[1]'"));
    assert!(fires(&s, &ev("/X1")), "a glob stays a glob");
}

#[test]
fn every_string_key_takes_both_forms() {
    let e = by(
        "/usr/bin/Curl",
        &["curl", "-O", "http://x"],
        "/bin/bash",
        Some("abc123"),
    );
    for conds in [
        "exe: 'i:/usr/bin/curl'",
        "exe: 're:/[Cc]url$'",
        "cmdline: 'i:CURL *'",
        "cmdline: 're:^curl -O'",
        "parent_exe: 're:/(ba|z)?sh$'",
        "parent_comm: 'i:BASH'",
        "ancestor_exe: 're:systemd'",
        "ancestor_comm: 're:^system'",
        "comm: 're:^pass'",
        "container: 're:^abc'",
        "user: 'i:ALICE'",
        "user: 're:^al'",
        "path_prefix: 'i:/ETC/'",
    ] {
        let s = set(&format!(
            "rules:\n  - {{name: r, description: d, severity: high, {conds}}}\n"
        ));
        assert!(fires(&s, &e), "{conds}");
        let s = set(&format!(
            "rules:\n  - {{name: r, description: d, severity: high, path: /etc/shadow, not_{conds}}}\n"
        ));
        assert!(!fires(&s, &e), "not_{conds}");
    }
}

#[test]
fn regexes_run_on_bytes_that_are_not_utf8() {
    let s = set(&rule(r"path: ['re:^/tmp/(?-u:\xFF)', 're:^/x/.$']"));
    let mut e = ev("/");
    e.path = Str::new(b"/tmp/\xFFz".to_vec());
    assert!(fires(&s, &e));
    // `.` is one character (Unicode on), not one byte of an invalid sequence.
    e.path = Str::new(b"/x/\xFF".to_vec());
    assert!(!fires(&s, &e));
    assert!(fires(&s, &ev("/x/é")));
}

#[test]
fn bad_regexes_and_misused_forms_are_positioned_errors() {
    let e = err(&rule("path: ['/ok', 're:(/etc']"));
    assert!(
        e.contains("t.yaml:2:")
            && e.contains("invalid regular expression \"(/etc\": unclosed group"),
        "{e}"
    );
    let e = err(&rule("path_prefix: 're:^/etc'"));
    assert!(e.contains("a regex is a `path` value, not a prefix"), "{e}");
    let e = err(&rule("path: 'i:etc/shadow'"));
    assert!(e.contains("is not absolute"), "{e}");
    let e = err(&rule("comm: 'i:'"));
    assert!(e.contains("empty process name"), "{e}");
    let e = err(&rule(&format!("path: 're:{}'", "a{1000}{1000}")));
    assert!(e.contains("invalid regular expression"), "{e}");
}

/// The forms are spelled into the value: a plain value keeps its meaning.
#[test]
fn plain_values_are_unchanged() {
    let s = set(&rule("comm: 'ire:x', path: /etc/shadow"));
    let e = Event {
        comm: Str::from("ire:x"),
        ..ev("/etc/shadow")
    };
    assert!(fires(&s, &e));
}

/// Falco's literal `proc.cmdline = "runc:[1:CHILD] init"` is a glob class here (one of `1:CHILD`
/// in place of the brackets); ported rules escape the brackets (falco_ports.yaml does).
#[test]
fn falco_runc_cmdline_matches_only_with_its_brackets_escaped() {
    let runc = by(
        "/usr/bin/runc",
        &["runc:[1:CHILD]", "init"],
        "/usr/bin/runc",
        None,
    );
    let class = by("/usr/bin/runc", &["runc:C", "init"], "/usr/bin/runc", None);
    let s = set(&rule("cmdline: 'runc:[1:CHILD] init'"));
    assert!(!fires(&s, &runc), "unescaped: a class, not the literal");
    assert!(fires(&s, &class));
    for escaped in [r"'runc:\[1:CHILD\] init'", "'runc:[[]1:CHILD] init'"] {
        let s = set(&rule(&format!("cmdline: {escaped}")));
        assert!(fires(&s, &runc), "{escaped}");
        assert!(!fires(&s, &class), "{escaped}");
    }
}
