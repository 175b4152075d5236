//! Matching semantics and load errors.

use std::sync::Arc;

use super::*;
use crate::bytes::Str;
use crate::event::{Event, PathSource, Syscall};

pub(super) fn ev(path: &str) -> Event {
    Event {
        ts_ns: 1_764_000_000_000_000_000,
        pid: 42,
        tid: 42,
        ppid: 1,
        uid: 1000,
        gid: 1000,
        comm: Str::from("cat"),
        syscall: Syscall::Openat,
        path: Str::from(path),
        path_source: PathSource::File,
        raw_path: Str::from(path),
        dirfd: Some(-100),
        flags: libc::O_RDONLY as u64,
        ret: 3,
        ..Event::default()
    }
}

pub(super) fn set(yaml: &str) -> RuleSet {
    match RuleSet::from_yaml("t.yaml", yaml) {
        Ok(s) => s,
        Err(e) => panic!("load failed:\n{e}"),
    }
}

/// Names of the rules that fire, with what matched.
pub(super) fn fire(s: &RuleSet, e: &Event) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    s.engine().eval(e, |a| {
        out.push((a.rule.name.clone(), a.matched.map(str::to_owned)))
    });
    out
}

pub(super) fn fires(s: &RuleSet, e: &Event) -> bool {
    !fire(s, e).is_empty()
}

pub(super) fn err(yaml: &str) -> String {
    match RuleSet::from_yaml("t.yaml", yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

const POC: &str = r#"
open_monitor:
  sensitive_paths: ["/etc/shadow", "/etc/ssh/", "/root/.ssh/*"]
  allow_comm: []
  deny_comm: ["sshd"]
  ignore_path_prefixes: ["/proc/", "/sys/"]
"#;

#[test]
fn poc_exact_prefix_and_glob() {
    let s = set(POC);
    assert_eq!(s.rules()[0].name, "open_sensitive");
    assert_eq!(s.rules()[0].severity, Severity::High);
    assert_eq!(
        fire(&s, &ev("/etc/shadow")),
        vec![("open_sensitive".into(), Some("/etc/shadow".into()))]
    );
    assert!(!fires(&s, &ev("/etc/shadow-")), "exact means exact");
    assert!(!fires(&s, &ev("/etc/shadowx")));
    assert_eq!(
        fire(&s, &ev("/etc/ssh/sshd_config"))[0].1.as_deref(),
        Some("/etc/ssh/")
    );
    assert!(
        fires(&s, &ev("/etc/ssh/a/b/c")),
        "a directory prefix covers subdirectories"
    );
    assert!(
        !fires(&s, &ev("/etc/ssh")),
        "the directory itself is not under itself"
    );
    assert!(!fires(&s, &ev("/etc/sshd")));
    assert_eq!(
        fire(&s, &ev("/root/.ssh/id_rsa"))[0].1.as_deref(),
        Some("/root/.ssh/*")
    );
    assert!(
        !fires(&s, &ev("/root/.ssh/keys/id_rsa")),
        "`*` stays within a component"
    );
}

#[test]
fn poc_comm_lists_and_failed_opens() {
    let s = set(POC);
    let sshd = Event {
        comm: Str::from("sshd"),
        ..ev("/etc/shadow")
    };
    assert!(!fires(&s, &sshd), "deny_comm never alerts");
    let failed = Event {
        ret: -13,
        ..ev("/etc/shadow")
    };
    assert!(
        fires(&s, &failed),
        "like the PoC, failed attempts alert too"
    );

    let allow = set(
        "open_monitor:\n  sensitive_paths: [/etc/shadow]\n  allow_comm: [cat]\n  ignore_path_prefixes: [/proc/]\n",
    );
    assert!(fires(&allow, &ev("/etc/shadow")));
    let vim = Event {
        comm: Str::from("vim"),
        ..ev("/etc/shadow")
    };
    assert!(!fires(&allow, &vim), "allow_comm restricts who can alert");

    let ignore = set("open_monitor:\n  sensitive_paths: [\"/proc/**\", /etc/]\n  ignore_path_prefixes: [/proc/, /etc/skip/]\n");
    assert!(!fires(&ignore, &ev("/proc/1/environ")));
    assert!(!fires(&ignore, &ev("/etc/skip/x")));
    assert!(fires(&ignore, &ev("/etc/passwd")));
}

#[test]
fn star_does_not_cross_slash_but_double_star_does() {
    let s = set(r#"
rules:
  - name: one
    description: d
    severity: low
    path: ["/home/*/.bashrc"]
  - name: deep
    description: d
    severity: low
    path: ["/home/**/id_*"]
  - name: class
    description: d
    severity: low
    path: ["/dev/tty[0-9]", "/tmp/?.{sh,py}"]
"#);
    assert!(fires(&s, &ev("/home/alice/.bashrc")));
    assert!(!fires(&s, &ev("/home/alice/x/.bashrc")));
    assert_eq!(fire(&s, &ev("/home/a/b/c/id_rsa"))[0].0, "deep");
    assert_eq!(
        fire(&s, &ev("/home/id_ed25519"))[0].0,
        "deep",
        "`**` matches zero components"
    );
    assert!(!fires(&s, &ev("/home/a/b/id/x")));
    assert!(fires(&s, &ev("/dev/tty3")));
    assert!(!fires(&s, &ev("/dev/ttyS0")));
    assert!(fires(&s, &ev("/tmp/a.py")));
    assert!(!fires(&s, &ev("/tmp/ab.py")));
}

#[test]
fn prefix_key_is_a_plain_byte_prefix() {
    let s = set(
        "rules:\n  - name: p\n    description: d\n    severity: low\n    path_prefix: [/tmp/x]\n",
    );
    assert!(fires(&s, &ev("/tmp/x")));
    assert!(fires(&s, &ev("/tmp/xyz")));
    assert!(fires(&s, &ev("/tmp/x/y")));
    assert!(!fires(&s, &ev("/tmp/")));
}

#[test]
fn path_and_path_prefix_are_one_condition_and_not_excludes() {
    let s = set(r#"
rules:
  - name: r
    description: d
    severity: medium
    path: [/etc/shadow]
    path_prefix: [/etc/ssh/]
    not_path: ["/etc/ssh/*.pub"]
    not_path_prefix: [/etc/ssh/moduli]
"#);
    assert!(fires(&s, &ev("/etc/shadow")));
    assert!(fires(&s, &ev("/etc/ssh/ssh_host_rsa_key")));
    assert!(!fires(&s, &ev("/etc/ssh/ssh_host_rsa_key.pub")));
    assert!(!fires(&s, &ev("/etc/ssh/moduli")));
}

#[test]
fn except_blocks_are_condition_sets() {
    let s = set(r#"
rules:
  - name: shadow
    description: d
    severity: high
    path: [/etc/shadow]
    except:
      - comm: [passwd]
      - uid: 0
        comm: [cron]
"#);
    assert!(fires(&s, &ev("/etc/shadow")));
    let passwd = Event {
        comm: Str::from("passwd"),
        ..ev("/etc/shadow")
    };
    assert!(!fires(&s, &passwd));
    let cron_user = Event {
        comm: Str::from("cron"),
        ..ev("/etc/shadow")
    };
    assert!(
        fires(&s, &cron_user),
        "an except block needs all its conditions"
    );
    let cron_root = Event {
        uid: 0,
        ..cron_user
    };
    assert!(!fires(&s, &cron_root));
}

#[test]
fn lists_expand_and_nest() {
    let s = set(r#"
lists:
  shells: [bash, sh]
  interpreters: [$shells, "python3*"]
  keys: ["/root/.ssh/", "/home/*/.ssh/**"]
rules:
  - name: r
    description: d
    severity: high
    path: [$keys]
    comm: [$interpreters, perl]
"#);
    for comm in ["bash", "sh", "python3.11", "perl"] {
        let e = Event {
            comm: Str::from(comm),
            ..ev("/home/bob/.ssh/id_rsa")
        };
        assert_eq!(
            fire(&s, &e),
            vec![("r".into(), Some("/home/*/.ssh/**".into()))],
            "{comm}"
        );
    }
    let cat = ev("/root/.ssh/authorized_keys");
    assert!(!fires(&s, &cat));
}

#[test]
fn results_and_errno_names() {
    let s = set(r#"
rules:
  - name: denied
    description: d
    severity: medium
    path: ["/**"]
    result: [EACCES, EPERM]
  - name: ok
    description: d
    severity: info
    path: ["/**"]
    result: success
  - name: failed
    description: d
    severity: info
    path: ["/**"]
    result: failure
    not_result: ENOENT
"#);
    let names = |ret| -> Vec<String> {
        fire(&s, &Event { ret, ..ev("/x") })
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    assert_eq!(names(3), ["ok"]);
    assert_eq!(names(-13), ["denied", "failed"]);
    assert_eq!(names(-1), ["denied", "failed"]);
    assert_eq!(names(-2), Vec::<String>::new());
}

#[test]
fn access_from_flags() {
    let s = set(r#"
rules:
  - {name: read, description: d, severity: info, path: ["/**"], access: read}
  - {name: write, description: d, severity: info, path: ["/**"], access: write}
  - {name: create, description: d, severity: info, path: ["/**"], access: create}
  - {name: trunc, description: d, severity: info, path: ["/**"], access: truncate}
  - {name: append, description: d, severity: info, path: ["/**"], access: append}
  - {name: dir, description: d, severity: info, path: ["/**"], access: directory}
  - {name: tmp, description: d, severity: info, path: ["/**"], access: tmpfile}
  - {name: opath, description: d, severity: info, path: ["/**"], access: path}
"#);
    let names = |flags: i32, sc: Syscall| -> Vec<String> {
        let e = Event {
            flags: flags as u64,
            syscall: sc,
            ..ev("/x")
        };
        fire(&s, &e).into_iter().map(|(n, _)| n).collect()
    };
    use libc::*;
    assert_eq!(names(O_RDONLY | O_CLOEXEC, Syscall::Openat), ["read"]);
    assert_eq!(
        names(O_WRONLY | O_CREAT | O_TRUNC, Syscall::Openat),
        ["write", "create", "trunc"]
    );
    assert_eq!(
        names(O_RDWR | O_APPEND, Syscall::Open),
        ["read", "write", "append"]
    );
    assert_eq!(
        names(O_RDONLY | O_DIRECTORY, Syscall::Openat),
        ["read", "dir"]
    );
    assert_eq!(
        names(O_RDWR | O_TMPFILE, Syscall::Openat),
        ["read", "write", "tmp"]
    );
    assert_eq!(names(O_PATH, Syscall::Openat), ["opath"]);
    assert_eq!(
        names(0, Syscall::Creat),
        ["write", "create", "trunc"],
        "creat implies O_CREAT|O_WRONLY|O_TRUNC"
    );
    assert_eq!(
        names(3, Syscall::Openat),
        Vec::<String>::new(),
        "O_ACCMODE 3 is neither"
    );
}

#[test]
fn ids_syscalls_and_disabled_rules() {
    let s = set(r#"
rules:
  - {name: a, description: d, severity: info, uid: [0, 1000], not_pid: 7, syscall: [openat, openat2]}
  - {name: b, description: d, severity: info, ppid: 1, gid: 5}
  - {name: c, description: d, severity: info, uid: 1000, enabled: false}
"#);
    assert_eq!(fire(&s, &ev("/x")).len(), 1);
    assert!(!fires(&s, &Event { pid: 7, ..ev("/x") }));
    assert!(!fires(
        &s,
        &Event {
            syscall: Syscall::Open,
            ..ev("/x")
        }
    ));
    assert_eq!(
        fire(
            &s,
            &Event {
                gid: 5,
                uid: 3,
                ..ev("/x")
            }
        )[0]
        .0,
        "b"
    );
    assert_eq!(fire(&s.only("a").unwrap(), &ev("/x"))[0].0, "a");
    assert!(s.only("zz").unwrap_err().contains("no such rule"));
}

/// Issue #9: `query --rule` of a disabled rule evaluated it (every event, for a `/**` rule) while
/// `replay` skipped it. Now it is an error naming where the rule is.
#[test]
fn disabled_rule_cannot_be_chosen_alone() {
    let s = set("rules:\n  - {name: a, description: d, severity: info, path: /x}\n  - name: c\n    description: d\n    severity: info\n    enabled: false\n    path: [\"/**\"]\n");
    assert_eq!(fire(&s, &ev("/y")), vec![], "disabled rules do not run");
    let e = s.only("c").unwrap_err();
    assert!(
        e.contains("rule `c` (defined at t.yaml:3:5) is disabled (`enabled: false`)"),
        "{e}"
    );
}

#[test]
fn comm_names_are_cut_like_the_kernel() {
    let s =
        set("rules:\n  - {name: a, description: d, severity: info, comm: unattended-upgrades}\n");
    let e = Event {
        comm: Str::from("unattended-upgr"),
        ..ev("/x")
    };
    assert_eq!(fire(&s, &e)[0].1.as_deref(), Some("unattended-upgrades"));
}

#[test]
fn cached_verdicts_follow_keys_and_tables() {
    let s = set(
        "rules:\n  - {name: a, description: d, severity: info, path: /etc/shadow, comm: cat}\n",
    );
    let mut eng = s.engine();
    let keyed = |path: &str, key, comm: &str, ckey, table| Event {
        path: Str::keyed(Arc::from(path.as_bytes()), key),
        comm: Str::keyed(Arc::from(comm.as_bytes()), ckey),
        table,
        ..ev(path)
    };
    let mut n = 0;
    for _ in 0..3 {
        eng.eval(&keyed("/etc/shadow", 1, "cat", 2, 7), |_| n += 1);
        eng.eval(&keyed("/etc/passwd", 3, "cat", 2, 7), |_| n += 1);
    }
    assert_eq!(n, 3);
    // Same keys, another table: other strings.
    eng.eval(&keyed("/etc/passwd", 1, "vim", 2, 8), |_| n += 1);
    eng.eval(&keyed("/etc/shadow", 3, "cat", 5, 8), |_| n += 1);
    assert_eq!(n, 4);
}

#[test]
fn alert_line_order_and_bytes() {
    let s = set(POC);
    let e = Event {
        comm: Str::new(&b"c\xffx"[..]),
        ret: -13,
        ..ev("/etc/shadow")
    };
    let mut line = String::new();
    let mut alerter = Alerter::new(&s);
    alerter.set_host("h1");
    alerter.eval(&e, |a| line = a.to_json_line());
    // The proof of concept's keys first, then today's; hostname, description and tags last.
    assert_eq!(
        line,
        r#"{"ts":"2025-11-24T16:00:00.000000000Z","event":"alert","rule":"open_sensitive","pid":42,"ppid":1,"comm":"c�x","path":"/etc/shadow","matched":"/etc/shadow","severity":"high","tid":42,"uid":1000,"gid":1000,"syscall":"openat","raw_path":"/etc/shadow","flags":0,"ret":-13,"comm_b64":"Y/94","hostname":"h1","description":"An open (or attempt) of a path in open_monitor.sensitive_paths","tags":[]}"#
    );
}

// --- load errors: each names file:line:col and what was expected ---

#[test]
fn unknown_keys_and_types_are_positioned() {
    let e = err("rules:\n  - name: a\n    description: d\n    severity: high\n    pth: /x\n");
    assert!(
        e.starts_with("t.yaml:5:5: rules[0]: unknown field `pth`, expected one of"),
        "{e}"
    );
    let e = err("rules:\n  - name: a\n    description: d\n    severity: hgh\n    path: /x\n");
    assert!(
        e.starts_with("t.yaml:4:15: rules[0].severity: unknown variant `hgh`"),
        "{e}"
    );
    let e = err("rules:\n  - name: a\n    description: d\n    severity: high\n    uid: [1.5]\n");
    assert!(
        e.starts_with("t.yaml:5:11: rules[0].uid[0]: invalid type: floating point"),
        "{e}"
    );
    let e = err("rules:\n  - name: a\n    severity: high\n    path: /x\n");
    assert!(e.contains("missing field `description`"), "{e}");
    let e = err("open_monitor:\n  sensitive_path: [/x]\n");
    assert!(
        e.starts_with("t.yaml:2:3: open_monitor: unknown field `sensitive_path`"),
        "{e}"
    );
    let e = err("rules: [\n");
    assert!(e.starts_with("t.yaml:2:1: "), "{e}");
}

#[test]
fn semantic_errors_are_positioned() {
    let base = "rules:\n  - name: a\n    description: d\n    severity: high\n";
    let e = err(&format!("{base}    path: [/ok, \"/x/[a\"]\n"));
    assert!(
        e.starts_with("t.yaml:5:17: rules[0].path[1]: invalid glob \"/x/[a\""),
        "{e}"
    );
    let e = err(&format!(
        "{base}    path: /x\n    result: [success, EACCESS]\n"
    ));
    assert!(
        e.starts_with("t.yaml:6:23: rules[0].result[1]: unknown result \"EACCESS\""),
        "{e}"
    );
    let e = err(&format!("{base}    result: eacces\n"));
    assert!(e.contains("did you mean EACCES?"), "{e}");
    let e = err(&format!("{base}    comm: [$shells]\n"));
    assert!(
        e.starts_with(
            "t.yaml:5:12: rules[0].comm[0]: unknown list `shells` (no lists are defined)"
        ),
        "{e}"
    );
    let e = err(&format!("{base}    exe: [usr/bin/cat]\n"));
    assert!(
        e.starts_with("t.yaml:5:11: rules[0].exe[0]: path \"usr/bin/cat\" is not absolute"),
        "{e}"
    );
    let e = err(&format!("{base}    euid: [root]\n"));
    assert!(
        e.starts_with("t.yaml:5:12: rules[0].euid[0]: expected a euid (an integer)"),
        "{e}"
    );
    let e = err(&format!("{base}    path: etc/shadow\n"));
    assert!(e.contains("is not absolute"), "{e}");
    let e = err(&format!("{base}    access: [reed]\n"));
    assert!(
        e.contains("unknown access \"reed\", expected one of read, write"),
        "{e}"
    );
    let e = err(&format!("{base}    syscall: openat3\n"));
    assert!(
        e.starts_with("t.yaml:5:14: rules[0].syscall: unknown syscall"),
        "{e}"
    );
    let e = err(&format!("{base}    uid: [root]\n"));
    assert!(
        e.contains("expected a uid (an integer), found \"root\""),
        "{e}"
    );
    let e = err(&format!("{base}    uid: [-1]\n"));
    assert!(e.contains("out of range"), "{e}");
    let e = err(base);
    assert!(
        e.starts_with("t.yaml:2:5: rules[0]: this rule has no conditions"),
        "{e}"
    );
    let e = err(&format!("{base}    path: []\n"));
    assert!(e.contains("can never hold"), "{e}");
    let e = err(&format!("{base}    path: /x\n    except:\n      - {{}}\n"));
    assert!(
        e.contains("rules[0].except[0]: this except block has no conditions"),
        "{e}"
    );
}

#[test]
fn list_errors() {
    let e = err("lists:\n  a: [$b]\n  b: [$a]\nrules:\n  - {name: r, description: d, severity: low, comm: [$a]}\n");
    assert!(e.contains("refers to itself"), "{e}");
    let e = err("lists:\n  a: [x]\n  a: [y]\nrules:\n  - {name: r, description: d, severity: low, comm: x}\n");
    assert!(
        e.starts_with("t.yaml:3:3: lists: list `a` is defined twice"),
        "{e}"
    );
    let e = err("rules:\n  - name: \"a b\"\n    description: d\n");
    assert!(
        e.starts_with("t.yaml:2:11: rules[0].name: invalid rule name \"a b\""),
        "{e}"
    );
    let e = err("lists:\n  \"bad name\": [x]\n");
    assert!(e.contains("invalid list name"), "{e}");
    // Among many lists, an unknown one names a few of them.
    let mut y = String::from("lists:\n");
    for i in 0..1000 {
        y.push_str(&format!("  l{i:03}: [x]\n"));
    }
    y.push_str("rules:\n  - {name: r, description: d, severity: low, comm: [$nope, $nope2]}\n");
    let e = err(&y);
    assert!(
        e.contains("unknown list `nope` (defined lists: l000, l001, "),
        "{e:.300}"
    );
    assert!(e.contains(", l019, … (1000 in all))\n"), "{e:.300}");
    assert!(
        e.contains("unknown list `nope2` (defined lists: l000, "),
        "{e:.300}"
    );
}

#[test]
fn duplicate_rules_across_files_name_both() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(
        &a,
        "lists:\n  sh: [bash]\nrules:\n  - {name: r, description: d, severity: low, comm: [$sh]}\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "# b\nrules:\n  - name: r\n    description: d\n    severity: low\n    comm: [$sh]\n",
    )
    .unwrap();
    let e = RuleSet::load(&[a.clone(), b.clone()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}:3:11: rules[0].name: duplicate rule name `r` (first defined at {}:4:12); to change that rule from here, give the keys to change in `override:` (see \"Layering\" in docs/rules.md)",
            b.display(),
            a.display()
        )
    );
    // Lists are shared across files.
    std::fs::write(
        &b,
        "rules:\n  - {name: r2, description: d, severity: low, comm: [$sh]}\n",
    )
    .unwrap();
    let s = RuleSet::load(&[a, b]).unwrap();
    assert_eq!(s.rules().len(), 2);
}

#[test]
fn open_monitor_and_rules_coexist() {
    let s = set(&format!(
        "{POC}rules:\n  - {{name: open_sensitive_2, description: d, severity: low, path: /etc/shadow}}\n"
    ));
    let names: Vec<_> = fire(&s, &ev("/etc/shadow"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["open_sensitive", "open_sensitive_2"]);
    let e = err(&format!(
        "{POC}rules:\n  - {{name: open_sensitive, description: d, severity: low, path: /x}}\n"
    ));
    assert!(
        e.contains("duplicate rule name `open_sensitive` (first defined at t.yaml:3:"),
        "{e}"
    );
}

#[test]
fn no_panic_on_any_prefix_of_a_rule_file() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/rules/full.yaml"
    ))
    .unwrap_or_else(|_| POC.to_owned());
    for end in 0..text.len() {
        if text.is_char_boundary(end) {
            let _ = RuleSet::from_yaml("t.yaml", &text[..end]);
        }
    }
    for junk in [
        "- a\n- b",
        "rules: 5",
        "rules: [1, 2]",
        "&a [*a]",
        "{{{",
        "rules:\n  - !!binary aGk=",
        "lists: [a]",
        "\t- x",
        "a: &x\n  b: *x\n",
        "rules:\n  - name: [a]\n",
    ] {
        assert!(RuleSet::from_yaml("t.yaml", junk).is_err(), "{junk:?}");
    }
}

/// An event by `exe` (argv `args`), child of `parent_exe`, grandchild of systemd (pid 1).
pub(super) fn by(exe: &str, args: &[&str], parent_exe: &str, container: Option<&str>) -> Event {
    use crate::process::Process;
    let init = Arc::new(Process {
        exe: Some(Str::from("/usr/lib/systemd/systemd")),
        ..Process::from_event(1, 0, 0, Str::from("systemd"), 0, 0)
    });
    let parent = Arc::new(Process {
        exe: Some(Str::from(parent_exe)),
        parent: Some(init),
        ..Process::from_event(
            40,
            5,
            1,
            Str::from(parent_exe.rsplit('/').next().unwrap()),
            0,
            0,
        )
    });
    let mut argv = args.join("\0").into_bytes();
    argv.push(0);
    let p = Process {
        exe: Some(Str::from(exe)),
        argv: Some(Str::new(argv)),
        parent: Some(parent),
        container_id: container.map(Str::from),
        auid: Some(1000),
        ..Process::from_event(42, 9, 40, Str::from("passwd"), 1000, 1000)
    };
    Event {
        comm: Str::from("passwd"),
        process: Some(Arc::new(p)),
        user: Some(Str::from("alice")),
        euid: Some(0),
        ..ev("/etc/shadow")
    }
}

#[test]
fn lineage_keys_see_through_a_renamed_process() {
    let s = set(r#"
lists:
  shells: [/usr/bin/bash, /usr/bin/dash]
rules:
  - name: by_exe
    description: d
    severity: high
    path: /etc/shadow
    comm: passwd
    not_exe: [/usr/bin/passwd]
  - name: shell_child
    description: d
    severity: high
    path: /etc/shadow
    parent_exe: [$shells]
    ancestor_exe: ["/usr/lib/systemd/*"]
    parent_comm: [bash]
    ancestor_comm: [systemd]
  - name: cmd
    description: d
    severity: high
    path: /etc/shadow
    cmdline: ["python3 -c *open*"]
    user: [alice]
    euid: 0
    auid: [1000]
    container: host
    except:
      - container: ["abc*"]
"#);
    let names = |e: &Event| -> Vec<String> { fire(&s, e).into_iter().map(|(n, _)| n).collect() };
    let e = by(
        "/usr/bin/python3.11",
        &["python3", "-c", "open('/etc/shadow')"],
        "/usr/bin/bash",
        None,
    );
    assert_eq!(names(&e), ["by_exe", "shell_child", "cmd"]);
    // The real passwd binary is allowed; a container is not the host.
    let real = by(
        "/usr/bin/passwd",
        &["passwd"],
        "/usr/bin/bash",
        Some("abc123"),
    );
    assert_eq!(names(&real), ["shell_child"]);
    // Another parent, another user, another login, another effective uid.
    let other = by(
        "/usr/bin/python3",
        &["python3", "job.py"],
        "/usr/sbin/cron",
        None,
    );
    assert_eq!(names(&other), ["by_exe"]);
    let e2 = Event {
        user: Some(Str::from("bob")),
        ..e.clone()
    };
    assert_eq!(names(&e2), ["by_exe", "shell_child"]);
    let e3 = Event {
        euid: Some(1000),
        ..e.clone()
    };
    assert_eq!(names(&e3), ["by_exe", "shell_child"]);
}

#[test]
fn events_without_lineage_fail_positive_and_pass_negative_lineage_conditions() {
    let s = set(r#"
rules:
  - name: pos
    description: d
    severity: low
    path: /etc/shadow
    exe: ["/**"]
  - name: neg
    description: d
    severity: low
    path: /etc/shadow
    not_exe: [/usr/bin/passwd]
    not_container: ["*"]
"#);
    let names: Vec<String> = fire(&s, &ev("/etc/shadow"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["neg"]);
}

#[test]
fn process_verdicts_are_cached_per_image_not_per_pid() {
    // Two images of one pid (before and after an exec) share a table key space only through
    // `proc_key`: each key gets its own verdict.
    let s = set("rules:\n  - name: r\n    description: d\n    severity: low\n    path: /x\n    exe: /usr/bin/cat\n");
    let mut engine = s.engine();
    let cat = Event {
        table: 7,
        proc_key: 1,
        ..by("/usr/bin/cat", &["cat"], "/usr/bin/bash", None)
    };
    let sh = Event {
        table: 7,
        proc_key: 2,
        ..by("/usr/bin/dash", &["sh"], "/usr/bin/bash", None)
    };
    let mut hits = 0;
    for e in [&cat, &sh, &cat, &sh] {
        let e = Event {
            path: Str::from("/x"),
            ..e.clone()
        };
        engine.eval(&e, |_| hits += 1);
    }
    assert_eq!(hits, 2);
}

#[test]
fn alert_lines_add_lineage_only_when_recorded() {
    let s =
        set("rules:\n  - name: r\n    description: d\n    severity: low\n    path: /etc/shadow\n");
    let line = |e: &Event| {
        let mut out = String::new();
        s.engine().eval(e, |a| out = a.to_json_line());
        out
    };
    let old = line(&ev("/etc/shadow"));
    assert!(
        old.ends_with(r#""ret":3,"hostname":"","description":"d","tags":[]}"#),
        "{old}"
    );
    let new = line(&by(
        "/usr/bin/python3",
        &["python3", "x"],
        "/usr/bin/bash",
        Some("c1"),
    ));
    assert!(
        new.contains(r#""ret":3,"exe":"/usr/bin/python3","argv":["python3","x"],"parent_exe":"/usr/bin/bash","ancestors":[{"pid":40,"comm":"bash","exe":"/usr/bin/bash","proc_start":"1970-01-01T00:00:00.000000005Z","exec_ts":null},{"pid":1,"comm":"systemd","exe":"/usr/lib/systemd/systemd","proc_start":"1970-01-01T00:00:00.000000000Z","exec_ts":null}],"container_id":"c1","user":"alice","root":null,"file":null,"alias_of":null,"exec_ts":null,"proc_root":null,"mntns":null,"exe_id":null,"exe_verified":null,"hostname":"","description":"d","tags":[]}"#),
        "{new}"
    );
}

// --- issue #9: hostile rule files fail with an error, in bounded time and memory ---

/// A chain of 20,000 lists, each referring to the previous one, overflowed the stack.
#[test]
fn list_nesting_depth_is_bounded() {
    let mut y = String::from("lists:\n  l0: [a]\n");
    for i in 1..20_000 {
        y.push_str(&format!("  l{i}: [$l{}]\n", i - 1));
    }
    y.push_str("rules:\n  - {name: r, description: d, severity: low, comm: [$l19999]}\n");
    let e = err(&y);
    // The 65th list down the chain, l19935, is referred to in l19936's list, at line 19,938.
    assert!(
        e.starts_with("t.yaml:19938:12: lists.l19936[0]: list `l19935` is nested more than 64 levels deep (`l19999` → … → `l19936` → `l19935`)"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    // 64 levels are fine.
    let mut y = String::from("lists:\n  l0: [a]\n");
    for i in 1..64 {
        y.push_str(&format!("  l{i}: [$l{}]\n", i - 1));
    }
    y.push_str("rules:\n  - {name: r, description: d, severity: low, comm: [$l63]}\n");
    let s = set(&y);
    assert!(fires(
        &s,
        &Event {
            comm: Str::from("a"),
            ..ev("/x")
        }
    ));
}

/// A 600-byte file of lists that each refer nine times to the previous one expanded until the
/// memory ran out.
#[test]
fn list_expansion_is_bounded() {
    let mut y = String::from("lists:\n  a: [x]\n");
    let names: Vec<char> = ('a'..='m').collect();
    for w in names.windows(2) {
        y.push_str(&format!(
            "  {}: [{}]\n",
            w[1],
            vec![format!("${}", w[0]); 9].join(", ")
        ));
    }
    y.push_str("rules:\n  - {name: r, description: d, severity: low, comm: [$m]}\n");
    assert!(y.len() < 700);
    let e = err(&y);
    // b..f hold 9 + 81 + … + 9⁵ = 66,429 values; g's first use of f (59,049) goes over 100,000.
    assert!(
        e.starts_with("t.yaml:8:7: lists.g[0]: list `f` makes the lists expand to more than 100000 values in all"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    // Lists are expanded once, but each use counts: 101 rules using a list of 1,000 values.
    let mut y = String::from("lists:\n  big: [");
    y.push_str(
        &(0..1000)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    y.push_str("]\nrules:\n");
    for i in 0..101 {
        y.push_str(&format!(
            "  - {{name: r{i}, description: d, severity: low, comm: [$big]}}\n"
        ));
    }
    let e = err(&y);
    assert!(
        e.contains("rules[100].comm[0]: list `big` makes the lists expand"),
        "{e}"
    );
    // A hundred uses are fine, and an empty list referred to 9ⁿ times costs nothing.
    let cut = y.find("  - {name: r100").unwrap();
    assert_eq!(set(&y[..cut]).rules().len(), 100);
    let mut y = String::from("lists:\n  a: []\n");
    for w in names.windows(2) {
        y.push_str(&format!(
            "  {}: [{}]\n",
            w[1],
            vec![format!("${}", w[0]); 9].join(", ")
        ));
    }
    y.push_str("rules:\n  - {name: r, description: d, severity: low, comm: [$m, sh]}\n");
    set(&y);
}

/// A glob of 240 KB panicked inside globset; every pattern is now bounded, with an error at it.
#[test]
fn long_patterns_are_errors() {
    let long = format!("/{}", "a*".repeat(120_000));
    let base = "rules:\n  - name: a\n    description: d\n    severity: high\n";
    for (key, value) in [
        ("path", long.clone()),
        ("path", format!("/{}", "a".repeat(5000))),
        ("not_path", long.clone()),
        ("path_prefix", format!("/{}", "a".repeat(5000))),
        ("comm", long[1..].to_owned()),
        ("exe", long.clone()),
        ("ancestor_comm", long[1..].to_owned()),
        ("cmdline", long[1..].to_owned()),
        ("container", long[1..].to_owned()),
        ("user", long[1..].to_owned()),
    ] {
        let e = err(&format!("{base}    {key}: [\"{value}\"]\n"));
        assert!(
            e.starts_with(&format!(
                "t.yaml:5:{}: rules[0].{key}[0]: pattern \"",
                key.len() + 8
            )),
            "{e:.200}"
        );
        assert!(
            e.contains(&format!(
                "… is {} bytes long; patterns are limited to 4096 bytes",
                value.len()
            )),
            "{e:.200}"
        );
        assert!(e.len() < 300, "the message quotes only the start: {e:.300}");
    }
    for key in [
        "sensitive_paths",
        "ignore_path_prefixes",
        "allow_comm",
        "deny_comm",
    ] {
        let e = err(&format!(
            "open_monitor:\n  {key}: [\"/{}\"]\n",
            "x".repeat(4096)
        ));
        assert!(
            e.starts_with(&format!(
                "t.yaml:2:{}: open_monitor.{key}[0]: pattern",
                key.len() + 6
            )),
            "{e:.200}"
        );
    }
}

/// Patterns up to the bound compile (or fail with an error), whatever they are made of.
#[test]
fn patterns_at_the_bound_do_not_panic() {
    for unit in [
        "a*",
        "*",
        "?",
        "**/",
        "[a-z]",
        "[!a]",
        "{a,b}",
        "{*,?,[x]}",
        "\\*",
        "é*",
        "[é]",
    ] {
        let mut p = String::from("/");
        while p.len() + unit.len() <= 4096 {
            p.push_str(unit);
        }
        let quoted = serde_json::to_string(&p).unwrap();
        let comm = serde_json::to_string(&p[1..]).unwrap();
        for y in [
            format!("rules:\n  - {{name: a, description: d, severity: low, path: [{quoted}]}}\n"),
            format!("rules:\n  - {{name: a, description: d, severity: low, comm: [{comm}]}}\n"),
        ] {
            if let Ok(s) = RuleSet::from_yaml("t.yaml", &y) {
                fire(&s, &ev("/aaaa/bbbb"));
            }
        }
    }
}

/// Loading N rules re-read the whole file once per rule (for its origin): 10,000 rules took
/// minutes. Positions now come from one index per file; this checks the origins it gives.
#[test]
fn many_rules_load_with_their_origins() {
    let s = set(&many_rules(10_000));
    assert_eq!(s.rules().len(), 10_000);
    for (i, r) in s.rules().iter().enumerate().step_by(997) {
        assert_eq!(r.origin, format!("t.yaml:{}:5", 3 + 5 * i), "{}", r.name);
    }
    let sh = |path| Event {
        comm: Str::from("sh"),
        ..ev(path)
    };
    assert_eq!(fire(&s, &sh("/etc/f9999"))[0].0, "r9999");
    assert_eq!(fire(&s, &sh("/var/x/g5000"))[0].0, "r5000");
    assert_eq!(fire(&s, &sh("/var/g5001"))[0].0, "r5001");
}

/// `n` rules of five lines each; every hundredth has a glob (globs are slow to build unoptimized).
fn many_rules(n: usize) -> String {
    let mut y = String::from("# generated\nrules:\n");
    for i in 0..n {
        let glob = if i % 100 == 0 { "/var/*/g" } else { "/var/g" };
        y.push_str(&format!(
            "  - name: r{i}\n    description: rule {i}\n    severity: low\n    path: [/etc/f{i}, \"{glob}{i}\"]\n    comm: [c{i}, sh]\n"
        ));
    }
    y
}

/// Load times of 1,000 and 10,000 generated rules, for the record:
/// `cargo test --release --lib -- --ignored --nocapture load_time`.
#[test]
#[ignore]
fn load_time_of_generated_rules() {
    for n in [1_000, 10_000] {
        let y = many_rules(n);
        let t = std::time::Instant::now();
        let s = set(&y);
        let origins: usize = s.rules().iter().map(|r| r.origin.len()).sum();
        eprintln!("{n} rules: {:.3} s ({origins})", t.elapsed().as_secs_f64());
    }
}

/// `deny_comm: 42` was taken as the process name "42": every key wants its own type.
#[test]
fn values_must_have_their_keys_type() {
    let base = "rules:\n  - name: a\n    description: d\n    severity: high\n";
    for (cond, want) in [
        (
            "comm: 42",
            "t.yaml:5:11: rules[0].comm: expected a process name (a string), found 42",
        ),
        (
            "not_comm: [sh, 7]",
            "t.yaml:5:20: rules[0].not_comm[1]: expected a process name (a string), found 7",
        ),
        (
            "path: [1]",
            "t.yaml:5:12: rules[0].path[0]: expected a path (a string), found 1",
        ),
        (
            "path_prefix: 1",
            "t.yaml:5:18: rules[0].path_prefix: expected a path (a string), found 1",
        ),
        (
            "syscall: 2",
            "t.yaml:5:14: rules[0].syscall: expected a syscall name (a string), found 2",
        ),
        (
            "access: [1]",
            "t.yaml:5:14: rules[0].access[0]: expected an access name (a string), found 1",
        ),
        (
            "result: [13]",
            "t.yaml:5:14: rules[0].result[0]: expected a result (a string), found 13",
        ),
        (
            "uid: [root]",
            "t.yaml:5:11: rules[0].uid[0]: expected a uid (an integer), found \"root\"",
        ),
        // Lineage keys.
        (
            "user: 42",
            "t.yaml:5:11: rules[0].user: expected a user name (a string), found 42",
        ),
        (
            "exe: [5]",
            "t.yaml:5:11: rules[0].exe[0]: expected a path (a string), found 5",
        ),
        (
            "parent_comm: 3",
            "t.yaml:5:18: rules[0].parent_comm: expected a process name (a string), found 3",
        ),
        (
            "cmdline: 1",
            "t.yaml:5:14: rules[0].cmdline: expected a command line (a string), found 1",
        ),
        (
            "container: 7",
            "t.yaml:5:16: rules[0].container: expected a container id (a string), found 7",
        ),
        (
            "euid: [root]",
            "t.yaml:5:12: rules[0].euid[0]: expected a euid (an integer), found \"root\"",
        ),
        (
            "path: /x\n    enabled: 1",
            "t.yaml:6:14: rules[0].enabled: invalid type: integer `1`, expected a boolean",
        ),
    ] {
        let e = err(&format!("{base}    {cond}\n"));
        assert!(e.starts_with(want), "{cond}: {e}");
    }
    let e = err("rules:\n  - {name: a, description: 42, severity: low, path: /x}\n");
    assert!(
        e.starts_with(
            "t.yaml:2:28: rules[0].description: invalid type: integer `42`, expected a string"
        ),
        "{e}"
    );
    let e = err("rules:\n  - {name: 42, description: d, severity: low, path: /x}\n");
    assert!(
        e.starts_with(
            "t.yaml:2:12: rules[0].name: invalid type: integer `42`, expected a rule name"
        ),
        "{e}"
    );
    let e =
        err("lists:\n  7: [a]\nrules:\n  - {name: a, description: d, severity: low, path: /x}\n");
    assert!(
        e.starts_with("t.yaml:2:3: lists: invalid type: integer `7`, expected a list name"),
        "{e}"
    );
    // Through a list, the error is at the value in the list.
    let e = err("lists:\n  n: [sh, 1000]\nrules:\n  - {name: a, description: d, severity: low, comm: [$n]}\n");
    assert!(
        e.starts_with("t.yaml:2:11: lists.n[1]: expected a process name (a string), found 1000"),
        "{e}"
    );
    for (key, what) in [
        ("deny_comm", "a process name"),
        ("allow_comm", "a process name"),
        ("sensitive_paths", "a path"),
        ("ignore_path_prefixes", "a path prefix"),
    ] {
        let e = err(&format!("open_monitor:\n  {key}: 42\n"));
        assert!(
            e.starts_with(&format!(
                "t.yaml:2:{}: open_monitor.{key}: expected {what} (a string), found 42",
                key.len() + 5
            )),
            "{e}"
        );
    }
    // Quoted, a number is a string.
    set("open_monitor:\n  sensitive_paths: [/x]\n  deny_comm: [\"42\"]\n");
}

/// Error messages echoed control characters from the file raw to the terminal.
#[test]
fn error_messages_escape_control_characters() {
    let e = err(
        "rules:\n  - name: a\n    description: d\n    severity: high\n    \"p\\e[2J\\a\": /x\n",
    );
    assert!(
        e.starts_with("t.yaml:5:5: rules[0]: unknown field `p\\u{1b}[2J\\u{7}`"),
        "{e}"
    );
    let e = err("rules:\n  - {name: a, description: d, severity: high, comm: \"\\e]0;x\\a\\r\", result: \"\\e\"}\n");
    assert!(!e.chars().any(|c| c.is_control() && c != '\n'), "{e:?}");
    let e = RuleSet::from_yaml("t\u{1b}[31m.yaml", "rules: 5\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("t\\u{1b}[31m.yaml:1:8: "), "{e}");
}

// --- issue #12: tags, throttling ---

const SEC: i64 = 1_000_000_000;

fn throttled(key: &str, window: &str, max: u64) -> RuleSet {
    set(&format!(
        "rules:\n  - name: t\n    description: d\n    severity: medium\n    tags: [mitre:T1003, credential_access]\n    path: /etc/shadow\n    throttle: {{key: {key}, window: {window}, max: {max}}}\n"
    ))
}

/// Every line the alerter raises for `events` (then the end of the stream).
fn stream(s: &RuleSet, events: &[Event]) -> Vec<serde_json::Value> {
    let mut a = Alerter::new(s);
    a.set_host("h1");
    let mut out = Vec::new();
    for e in events {
        a.eval(e, |r| {
            out.push(serde_json::from_str(&r.to_json_line()).unwrap())
        });
    }
    a.finish(|r| out.push(serde_json::from_str(&r.to_json_line()).unwrap()));
    out
}

fn at(secs: i64, pid: u32, path: &str) -> Event {
    let e = ev(path);
    Event {
        ts_ns: e.ts_ns + secs * SEC,
        pid,
        tid: pid,
        ..e
    }
}

#[test]
fn alerts_carry_hostname_description_and_tags() {
    let s = throttled("[pid]", "1m", 10);
    let out = stream(&s, &[at(0, 1, "/etc/shadow")]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["hostname"], "h1");
    assert_eq!(out[0]["description"], "d");
    assert_eq!(
        out[0]["tags"],
        serde_json::json!(["mitre:T1003", "credential_access"])
    );
}

#[test]
fn throttle_suppresses_past_max_and_summarizes_at_the_first_event_past_the_window() {
    let s = throttled("[pid]", "10s", 2);
    let events = [
        at(0, 1, "/etc/shadow"),
        at(1, 1, "/etc/shadow"),
        at(2, 1, "/etc/shadow"),
        at(3, 2, "/etc/shadow"), // another key value: its own window
        at(4, 1, "/etc/shadow"),
        at(9, 1, "/etc/hostname"), // not an alert; the window is still open
        at(10, 1, "/etc/hostname"), // the window [0s, 10s) is over: its summary comes first
        at(11, 1, "/etc/shadow"),  // a new window
    ];
    let out = stream(&s, &events);
    let kinds: Vec<(String, i64)> = out
        .iter()
        .map(|v| {
            (
                v["event"].as_str().unwrap().to_owned(),
                v["pid"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("alert".to_owned(), 1),
            ("alert".to_owned(), 1),
            ("alert".to_owned(), 2),
            ("alert_summary".to_owned(), -1),
            ("alert".to_owned(), 1),
        ]
    );
    let sum = &out[3];
    let ts = |secs: i64| crate::timespec::format_ts(ev("/").ts_ns + secs * SEC);
    assert_eq!(sum["rule"], "t");
    assert_eq!(sum["key"], serde_json::json!({"pid": 1}));
    assert_eq!(sum["suppressed"], 2);
    assert_eq!(sum["max"], 2);
    assert_eq!(sum["ts"], ts(10));
    assert_eq!(sum["window_start"], ts(0));
    assert_eq!(sum["window_end"], ts(10));
    assert_eq!(sum["first_suppressed"], ts(2));
    assert_eq!(sum["last_suppressed"], ts(4));
    assert_eq!(sum["hostname"], "h1");
    assert_eq!(sum["severity"], "medium");
    // pid 2 suppressed nothing: no summary for it, at the end either.
    assert_eq!(out.len(), 5);
}

#[test]
fn throttle_summaries_of_open_windows_come_at_the_end_of_the_stream() {
    let s = throttled("[comm, path]", "1h", 1);
    let out = stream(
        &s,
        &[
            at(0, 1, "/etc/shadow"),
            at(5, 2, "/etc/shadow"),
            at(7, 3, "/etc/shadow"),
        ],
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[1]["event"], "alert_summary");
    assert_eq!(out[1]["suppressed"], 2);
    assert_eq!(
        out[1]["key"],
        serde_json::json!({"comm": "cat", "path": "/etc/shadow"})
    );
    // Forced by the end of the stream: the last event's time, the window as it was.
    assert_eq!(out[1]["ts"], out[1]["last_suppressed"]);
    assert_ne!(out[1]["window_end"], out[1]["ts"]);
}

#[test]
fn throttle_without_key_counts_the_whole_rule() {
    let s = throttled("[]", "1m", 1);
    let out = stream(&s, &[at(0, 1, "/etc/shadow"), at(1, 2, "/etc/shadow")]);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1]["key"], serde_json::json!({}));
}

#[test]
fn throttle_state_is_bounded_and_an_evicted_key_reports_what_it_suppressed() {
    let s = throttled("[pid]", "1h", 1);
    let mut events = vec![at(0, 0, "/etc/shadow"), at(1, 0, "/etc/shadow")];
    // As many new key values as the cap: the first, least recently alerted, is evicted.
    for pid in 1..=throttle::MAX_KEYS as u32 {
        events.push(at(2, pid, "/etc/shadow"));
    }
    let out = stream(&s, &events);
    let summaries: Vec<&serde_json::Value> = out
        .iter()
        .filter(|v| v["event"] == "alert_summary")
        .collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["key"], serde_json::json!({"pid": 0}));
    assert_eq!(summaries[0]["suppressed"], 1);
    // It came when the key was evicted, before the alert that evicted it.
    let pos = out
        .iter()
        .position(|v| v["event"] == "alert_summary")
        .unwrap();
    assert_eq!(pos, throttle::MAX_KEYS);
    assert_eq!(out.len(), 2 + throttle::MAX_KEYS);
}

#[test]
fn query_style_evaluation_is_not_throttled() {
    // `query --rule` uses the engine: every matching event, whatever the throttle says.
    let s = throttled("[pid]", "1h", 1);
    let mut e = s.engine();
    let n = (0..5)
        .filter(|i| e.matches(&at(*i, 1, "/etc/shadow")))
        .count();
    assert_eq!(n, 5);
}

#[test]
fn bad_throttle_and_tags_are_positioned() {
    let rule = |extra: &str| {
        format!(
            "rules:\n  - name: a\n    description: d\n    severity: high\n    path: /x\n{extra}"
        )
    };
    let e = err(&rule(
        "    throttle: {key: [pid, bogus], window: 1m, max: 3}\n",
    ));
    assert!(
        e.starts_with("t.yaml:6:27: rules[0].throttle.key[1]: unknown key field `bogus`"),
        "{e}"
    );
    let e = err(&rule(
        "    throttle: {key: [pid, pid], window: 1m, max: 3}\n",
    ));
    assert!(
        e.contains("rules[0].throttle.key[1]: key field `pid` is given twice"),
        "{e}"
    );
    let e = err(&rule("    throttle:\n      window: 1x\n      max: 3\n"));
    assert!(
        e.starts_with("t.yaml:7:15: rules[0].throttle.window: invalid duration"),
        "{e}"
    );
    let e = err(&rule("    throttle:\n      window: 0s\n      max: 3\n"));
    assert!(e.contains("must be between 1ms and 30d"), "{e}");
    let e = err(&rule("    throttle:\n      window: 60\n      max: 3\n"));
    assert!(e.contains("expected a duration with a unit"), "{e}");
    let e = err(&rule("    throttle:\n      window: 1m\n      max: 0\n"));
    assert!(
        e.starts_with("t.yaml:8:12: rules[0].throttle.max: max 0: expected an integer from 1"),
        "{e}"
    );
    let e = err(&rule("    throttle:\n      window: 1m\n"));
    assert!(e.contains("missing field `max`"), "{e}");
    let e = err(&rule("    throttle: {window: 1m, max: 1, windw: 2m}\n"));
    assert!(e.contains("unknown field `windw`"), "{e}");
    let e = err(&rule("    tags: [ok, \"has space\"]\n"));
    assert!(
        e.starts_with("t.yaml:6:16: rules[0].tags[1]: invalid tag \"has space\""),
        "{e}"
    );
    let e = err(&rule("    tags: [a, a]\n"));
    assert!(e.contains("tag `a` is given twice"), "{e}");
    let e = err(&rule("    tags: [7]\n"));
    assert!(e.contains("expected a tag (a string), found 7"), "{e}");
    // Lists work in tags.
    let s = set(&format!(
        "lists:\n  mitre: [T1003, T1552]\n{}",
        rule("    tags: [$mitre, x]\n")
    ));
    assert_eq!(s.rules()[0].tags, ["T1003", "T1552", "x"]);
}

/// `by(exe)` with the image's `exe_verified` set (what the recorder decided).
pub(super) fn verified(exe: &str, v: Option<bool>) -> Event {
    let mut e = by(exe, &[exe], "/usr/bin/bash", None);
    let mut p = (**e.process.as_ref().unwrap()).clone();
    p.exe_verified = v;
    e.process = Some(Arc::new(p));
    e
}

/// Issue #25, item 3 (a chroot's or a private mount namespace's fake `/usr/bin/passwd`): an
/// allow-list of executables holds only for the host's own file at that path; a positive `exe`
/// (and an exception's `not_exe`) still match by path, so a fake only makes rules fire more.
#[test]
fn an_executable_allow_list_is_bypassed_by_a_fake_at_the_allowed_path() {
    let s = set(r#"
rules:
  - name: not_exe
    description: d
    severity: high
    path: /etc/shadow
    not_exe: [/usr/bin/passwd]
  - name: except_exe
    description: d
    severity: high
    path: /etc/shadow
    except:
      - exe: [/usr/bin/passwd]
  - name: exe
    description: d
    severity: high
    exe: /usr/bin/passwd
  - name: except_not_exe
    description: d
    severity: high
    path: /etc/shadow
    except:
      - not_exe: [/usr/bin/passwd]
"#);
    let names = |e: &Event| -> Vec<String> { fire(&s, e).into_iter().map(|(n, _)| n).collect() };
    let fake = verified("/usr/bin/passwd", Some(false));
    assert_eq!(
        names(&fake),
        ["not_exe", "except_exe", "exe", "except_not_exe"]
    );
    let real = verified("/usr/bin/passwd", Some(true));
    assert_eq!(names(&real), ["exe", "except_not_exe"]);
    // Another program is never exempt, verified or not.
    let cat = verified("/usr/bin/cat", Some(true));
    assert_eq!(names(&cat), ["not_exe", "except_exe"]);
    // No identity recorded (older segments): the path is trusted, and the engine says so.
    let mut engine = s.engine();
    let mut fired = Vec::new();
    engine.eval(&verified("/usr/bin/passwd", None), |a| {
        fired.push(a.rule.name.clone())
    });
    assert_eq!(fired, ["exe", "except_not_exe"]);
    assert!(engine.trusted_unverified());
    let mut engine = s.engine();
    engine.eval(&real, |_| {});
    engine.eval(&cat, |_| {});
    assert!(
        !engine.trusted_unverified(),
        "verified images trust nothing"
    );
}

/// Issue #25, item 3 (the chroot's `etc/shadow` hard-linked to the real one, or a bind mount):
/// path conditions match the watched path an open's file is (`alias_of`) as well as its path:
/// positive ones when any value matches either, `not_path` when none matches either.
#[test]
fn a_path_rule_matches_another_name_of_a_watched_file() {
    let s = set(r#"
rules:
  - name: shadow
    description: d
    severity: high
    path: [/etc/gshadow, /etc/shadow]
  - name: tmp_but_not_shadow
    description: d
    severity: low
    path_prefix: /jail/
    not_path: /etc/shadow
"#);
    let mut e = ev("/jail/etc/shadow");
    assert_eq!(
        fire(&s, &e),
        vec![("tmp_but_not_shadow".into(), Some("/jail/".into()))]
    );
    e.alias_of = Some(Str::from("/etc/shadow"));
    assert_eq!(
        fire(&s, &e),
        vec![("shadow".into(), Some("/etc/shadow".into()))]
    );
    // Keyed strings (as stored) take the same path: the alias is never cached as the path.
    e.path.key = 3;
    e.table = 9;
    let mut engine = s.engine();
    let mut hits = 0;
    engine.eval(&e, |_| hits += 1);
    e.alias_of = None;
    engine.eval(&e, |_| hits += 10);
    assert_eq!(hits, 11);
}

/// Issue #25, item 4: `rules check` warns about an exemption a process grants itself by its
/// name, naming the file, line and rule; exemptions keyed on the executable are quiet.
#[test]
fn a_comm_only_exception_is_warned_about_with_its_file_line_and_rule() {
    let s = set(r#"
rules:
  - name: shadow_read
    description: d
    severity: high
    path: /etc/shadow
    except:
      - exe: [/usr/bin/passwd]
        comm: [passwd]
      - comm: [passwd, chpasswd]
  - name: keys
    description: d
    severity: high
    path: /root/.ssh/id_rsa
    not_comm: [sshd]
"#);
    let w: Vec<String> = s.warnings().iter().map(|d| d.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("t.yaml:10:15: rules[0].except[1].comm: rule `shadow_read`: this exception trusts the process name alone"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("t.yaml:15:15: rules[1].not_comm: rule `keys`: `not_comm` trusts"),
        "{w:?}"
    );
    assert!(set(POC).warnings()[0]
        .to_string()
        .contains("open_monitor.deny_comm"));
    let quiet = set("rules:\n  - {name: r, description: d, severity: low, path: /x, not_exe: [/usr/bin/x], except: [{exe: /y, parent_comm: z}]}\n");
    assert!(quiet.warnings().is_empty(), "{:?}", quiet.warnings());
}

/// Issue #25, item 4: the shipped detections hold against a process that calls itself
/// `passwd` (prctl), against a fake at the allowed path, and name no process by its name alone.
#[test]
fn the_shipped_detections_trust_no_comm() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules");
    for f in ["detections.yaml", "falco_ports.yaml"] {
        let s = RuleSet::load(&[dir.join(f)]).unwrap();
        assert!(s.warnings().is_empty(), "{f}: {:?}", s.warnings());
    }
    let s = RuleSet::load(&[dir.join("detections.yaml")]).unwrap();
    let shadow_read = |e: &Event| fire(&s, e).iter().any(|(n, _)| n == "shadow_read");
    // `by` is a process named `passwd`.
    assert!(shadow_read(&verified("/usr/bin/python3.11", Some(true))));
    assert!(shadow_read(&verified("/usr/bin/passwd", Some(false))));
    assert!(!shadow_read(&verified("/usr/bin/passwd", Some(true))));
    assert!(!shadow_read(&verified("/usr/sbin/unix_chkpwd", Some(true))));
}
