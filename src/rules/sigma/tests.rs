//! Conversion of Sigma rules: what fits, what each modifier and condition becomes, what is
//! refused and why, and that a converted rule fires where its Sigma rule would.

use std::sync::Arc;

use super::*;
use crate::bytes::Str;
use crate::event::{Event, Op};
use crate::process::Process;
use crate::rules::tests::ev;

fn sigma(category: &str, detection: &str) -> String {
    format!(
        "title: Test Rule\nid: 00000000-0000-0000-0000-000000000001\nlevel: high\nauthor: Someone\ntags: [attack.t1548.003]\nreferences: [https://example.org/x]\nlogsource:\n    product: linux\n    category: {category}\ndetection:\n{detection}"
    )
}

fn converted(category: &str, detection: &str) -> RuleSet {
    let c = convert("t.yml", &sigma(category, detection)).unwrap_or_else(|e| panic!("{e}"));
    RuleSet::from_yaml("out.yaml", &document(&[c])).unwrap()
}

fn refused(category: &str, detection: &str) -> String {
    match convert("t.yml", &sigma(category, detection)) {
        Ok(c) => panic!("converted:\n{}", c.yaml),
        Err(e) => e,
    }
}

fn fires(s: &RuleSet, e: &Event) -> bool {
    let mut n = 0;
    s.engine().eval(e, |_| n += 1);
    n > 0
}

/// A successful creation of `path` by `exe`.
fn created(path: &str, exe: &str) -> Event {
    let p = Process {
        exe: Some(Str::from(exe)),
        ..Process::from_event(42, 9, 1, Str::from("x"), 0, 0)
    };
    Event {
        flags: (libc::O_WRONLY | libc::O_CREAT) as u64,
        process: Some(Arc::new(p)),
        ..ev(path)
    }
}

#[test]
fn metadata_is_kept_and_the_output_loads() {
    let c = convert(
        "dir/t.yml",
        &sigma(
            "file_event",
            "    selection:\n        TargetFilename|endswith: '/etc/doas.conf'\n    condition: selection\n",
        ),
    )
    .unwrap();
    assert_eq!(c.name, "sigma_test_rule");
    assert_eq!(
        c.yaml,
        r#"  # Sigma rule 00000000-0000-0000-0000-000000000001 (dir/t.yml)
  # author: Someone
  # reference: https://example.org/x
  - name: sigma_test_rule
    description: "Test Rule"
    severity: high
    tags: ["attack.t1548.003", "sigma:00000000-0000-0000-0000-000000000001"]
    op: [open, rename, link, symlink]
    access: [create]
    result: [success]
    path: ["re:(?i)/etc/doas\\.conf$"]
"#
    );
}

#[test]
fn values_are_case_insensitive_unless_cased_and_keep_their_wildcards() {
    let s = converted(
        "file_event",
        "    selection:\n        TargetFilename|startswith: '/tmp/a*b?c'\n        Image|cased: '/usr/bin/Wget'\n    condition: selection\n",
    );
    assert!(fires(&s, &created("/TMP/Axxb/c/z", "/usr/bin/Wget")));
    assert!(
        !fires(&s, &created("/TMP/Axxb/c/z", "/usr/bin/wget")),
        "cased"
    );
    assert!(
        !fires(&s, &created("/tmp/abc", "/usr/bin/Wget")),
        "`?` is one character"
    );
    // An escaped wildcard is literal.
    let s = converted(
        "file_event",
        "    selection:\n        TargetFilename|contains: 'a\\*b'\n    condition: selection\n",
    );
    assert!(fires(&s, &created("/x/A*B/y", "/x")));
    assert!(!fires(&s, &created("/x/axxb/y", "/x")));
}

#[test]
fn all_and_re_modifiers() {
    let s = converted(
        "file_event",
        "    selection:\n        TargetFilename|contains|all: ['/etc/', '.d/']\n        Image|re: '^/usr/s?bin/(cp|mv)$'\n    condition: selection\n",
    );
    assert!(fires(&s, &created("/etc/cron.d/x", "/usr/bin/cp")));
    assert!(
        !fires(&s, &created("/etc/crontab", "/usr/bin/cp")),
        "all values"
    );
    assert!(
        !fires(&s, &created("/etc/cron.d/x", "/usr/bin/CP")),
        "re is cased"
    );
    let s = converted(
        "file_event",
        "    selection:\n        Image|re|i: '/CP$'\n    condition: selection\n",
    );
    assert!(fires(&s, &created("/etc/x", "/usr/bin/cp")));
}

#[test]
fn filters_become_except_blocks_and_one_of_selections_merge_on_one_field() {
    let s = converted(
        "file_event",
        "    selection_a:\n        TargetFilename|startswith: '/etc/cron.d/'\n    selection_b:\n        TargetFilename|contains: '/etc/crontab'\n    filter_main_dpkg:\n        Image|endswith: '/usr/bin/dpkg'\n        TargetFilename: '/etc/cron.d/README.dpkg-new'\n    filter_optional:\n        TargetFilename: ['/etc/cron.d/apt', '/etc/cron.d/dpkg']\n    condition: 1 of selection_* and not 1 of filter_*\n",
    );
    assert!(fires(&s, &created("/etc/cron.d/job", "/bin/sh")));
    assert!(fires(&s, &created("/etc/crontab", "/bin/sh")));
    assert!(fires(
        &s,
        &created("/etc/cron.d/README.dpkg-new", "/bin/sh")
    ));
    assert!(!fires(
        &s,
        &created("/etc/cron.d/README.dpkg-new", "/usr/bin/dpkg")
    ));
    assert!(!fires(&s, &created("/etc/cron.d/APT", "/bin/sh")));
    assert!(!fires(&s, &created("/etc/passwd", "/bin/sh")));
}

#[test]
fn two_conditions_on_one_field_hold_together() {
    let s = converted(
        "file_event",
        "    selection:\n        TargetFilename|contains: '/etc/profile.d/'\n        TargetFilename|endswith: ['.csh', '.sh']\n    condition: selection\n",
    );
    assert!(fires(&s, &created("/etc/profile.d/x.sh", "/bin/sh")));
    assert!(!fires(&s, &created("/etc/profile.d/x.conf", "/bin/sh")));
    assert!(!fires(&s, &created("/etc/x.sh", "/bin/sh")));
}

#[test]
fn categories_choose_the_operations() {
    let det = "    selection:\n        TargetFilename|endswith: '.log'\n    condition: selection\n";
    let s = converted("file_delete", det);
    let unlink = Event {
        op: Op::Unlink,
        flags: 0,
        ..ev("/var/log/a.log")
    };
    assert!(fires(&s, &unlink));
    assert!(!fires(&s, &created("/var/log/a.log", "/x")));
    let failed = Event { ret: -13, ..unlink };
    assert!(!fires(&s, &failed), "what happened, not attempts");
    let s = converted("file_access", det);
    assert!(fires(&s, &ev("/var/log/a.log")));
    let s = converted(
        "file_rename",
        "    selection:\n        SourceFilename|startswith: '/var/log/'\n    condition: selection\n",
    );
    let moved = Event {
        op: Op::Rename,
        flags: 0,
        old_path: Some(Str::from("/var/log/a")),
        ..ev("/tmp/a")
    };
    assert!(fires(&s, &moved));
}

#[test]
fn what_has_no_faithful_form_is_refused_with_the_reason() {
    let sel = |f: &str| format!("    selection:\n        {f}\n    condition: selection\n");
    for (category, detection, says) in [
        ("network_connection", sel("Image|endswith: '/x'"), "category `network_connection` is not recorded"),
        ("file_event", sel("CurrentDirectory: /tmp"), "recorded when an image begins (its exec), not at each file event"),
        ("process_creation", sel("TargetFilename: /tmp/x"), "field `TargetFilename` has no rule key"),
        ("process_creation", sel("LogonId: 0"), "field `LogonId` has no rule key"),
        ("file_event", sel("ProcessId: 1"), "field `ProcessId` has no rule key"),
        ("file_event", sel("TargetFilename|base64: x"), "modifier `base64` has no rule form"),
        ("file_event", sel("TargetFilename: null"), "null value"),
        ("file_event", sel("Image|re: '(?<=a)b'"), "does not load"),
        ("file_event", "    keywords: [evil]\n    condition: keywords\n".into(), "keyword search"),
        ("file_event", "    a:\n        TargetFilename: /x\n    b:\n        Image: /y\n    condition: a or b\n".into(), "`or` across fields (path and exe)"),
        ("file_event", "    a:\n        TargetFilename: /x\n    condition: a | count() > 5\n".into(), "aggregation"),
        ("file_event", "    a:\n        TargetFilename: /x\n    condition: b\n".into(), "names `b`, which is not defined"),
    ] {
        let e = refused(category, &detection);
        assert!(e.contains(says), "{detection}: {e}");
    }
    let windows = convert(
        "t.yml",
        &sigma("file_event", &sel("TargetFilename: x"))
            .replace("product: linux", "product: windows"),
    )
    .unwrap_err();
    assert!(windows.contains("product `windows`"), "{windows}");
}

/// An exec of `exe` with `args`, in `cwd`, by `user`, whose parent ran `parent_args` from
/// `parent_exe`: the exec event's process is the new image.
fn exec(exe: &str, args: &[&str], parent_exe: &str, parent_args: &[&str], cwd: &str) -> Event {
    let argv = |a: &[&str]| {
        Str::new(
            a.iter()
                .flat_map(|s| [s.as_bytes(), b"\0"].concat())
                .collect::<Vec<u8>>(),
        )
    };
    let parent = Process {
        exe: Some(Str::from(parent_exe)),
        argv: Some(argv(parent_args)),
        ..Process::from_event(40, 5, 1, Str::from("parent"), 0, 0)
    };
    let p = Process {
        exe: Some(Str::from(exe)),
        argv: Some(argv(args)),
        parent: Some(Arc::new(parent)),
        cwd: Some(Str::from(cwd)),
        ..Process::from_event(42, 9, 40, Str::from("child"), 0, 0)
    };
    Event {
        op: Op::Exec,
        flags: 0,
        ret: 0,
        process: Some(Arc::new(p)),
        user: Some(Str::from("www-data")),
        ..ev(exe)
    }
}

#[test]
fn process_creation_matches_exec_events_on_the_new_images_fields() {
    let s = converted(
        "process_creation",
        "    selection:\n        Image|endswith: '/python3'\n        CommandLine|contains|all: [' -m ', 'http.server']\n        ParentImage|endswith: '/bash'\n        ParentCommandLine|contains: 'curl'\n        User: 'www-data'\n        CurrentDirectory|startswith: '/tmp'\n    condition: selection\n",
    );
    assert_eq!(s.rules()[0].ops, ["exec"]);
    let hit = exec(
        "/usr/bin/python3",
        &["python3", "-m", "http.server", "8000"],
        "/usr/bin/bash",
        &["bash", "-c", "curl x | sh"],
        "/tmp/x",
    );
    assert!(fires(&s, &hit));
    // Each field counts: another parent command line, working directory, or an open instead.
    let other_parent = exec(
        "/usr/bin/python3",
        &["python3", "-m", "http.server"],
        "/usr/bin/bash",
        &["bash"],
        "/tmp/x",
    );
    assert!(!fires(&s, &other_parent));
    let elsewhere = exec(
        "/usr/bin/python3",
        &["python3", "-m", "http.server"],
        "/usr/bin/bash",
        &["bash", "curl"],
        "/home/a",
    );
    assert!(!fires(&s, &elsewhere));
    let open = Event {
        op: Op::Open,
        ..hit
    };
    assert!(!fires(&s, &open));
}

#[test]
fn names_are_made_unique_in_a_document() {
    let det = "    selection:\n        TargetFilename: /x\n    condition: selection\n";
    let a = convert("a.yml", &sigma("file_event", det)).unwrap();
    let doc = document(&[a.clone(), a]);
    assert!(
        doc.contains("- name: sigma_test_rule\n") && doc.contains("- name: sigma_test_rule_2\n"),
        "{doc}"
    );
    RuleSet::from_yaml("out.yaml", &doc).unwrap();
}
