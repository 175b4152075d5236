//! Rules over file operations (#27): `op`, `not_op`, `old_path`, `mode_set`, the access an
//! operation grants, and the shipped detections over the events `sed -i`, `mv`, `ln`, `rm`,
//! `chmod` and `truncate` leave.

use std::path::Path;

use super::tests::{err, ev, fire, fires, set, verified};
use super::*;
use crate::bytes::Str;
use crate::event::{Event, Op};

/// An operation on `path` (its flags are the operation's: none here).
fn op(o: Op, path: &str) -> Event {
    Event {
        op: o,
        flags: 0,
        ret: 0,
        ..ev(path)
    }
}

/// A rename (or link) of `old` to `new`.
fn moved(o: Op, old: &str, new: &str) -> Event {
    Event {
        old_path: Some(Str::from(old)),
        ..op(o, new)
    }
}

fn chmod(path: &str, mode: u32) -> Event {
    Event {
        mode,
        ..op(Op::Chmod, path)
    }
}

/// `e` as done by the host's own `exe` (verified), child of bash.
fn by_exe(exe: &str, e: Event) -> Event {
    Event {
        comm: Str::from(exe.rsplit('/').next().unwrap_or(exe)),
        process: verified(exe, Some(true)).process,
        ..e
    }
}

fn names(s: &RuleSet, e: &Event) -> Vec<String> {
    fire(s, e).into_iter().map(|(n, _)| n).collect()
}

const WRITE: &str = r#"
rules:
  - {name: w, description: d, severity: high, path: /etc/x, access: [write, create]}
"#;

/// Every rule written before operations were recorded keeps its meaning: without `op` a rule
/// matches opens only, whatever the operation does to its path.
#[test]
fn a_rule_without_op_matches_opens_only() {
    let s = set(WRITE);
    let open_write = Event {
        flags: libc::O_WRONLY as u64,
        ..ev("/etc/x")
    };
    assert!(fires(&s, &open_write));
    for o in Op::ALL.iter().filter(|o| **o != Op::Open) {
        assert!(!fires(&s, &moved(*o, "/tmp/a", "/etc/x")), "{o:?}");
    }
    assert_eq!(s.rules()[0].ops, ["open"]);
    let poc = set("open_monitor:\n  sensitive_paths: [/etc/x]\n");
    assert!(fires(&poc, &ev("/etc/x")));
    assert!(!fires(&poc, &op(Op::Unlink, "/etc/x")));
    assert_eq!(poc.rules()[0].ops, ["open"]);
}

/// The opt-in: a rename, link or symlink into a name creates and writes it, a truncate writes
/// and truncates it, a mkdir creates a directory; unlink, rmdir, chmod and chown grant no access.
/// An operation's own flags (`RENAME_EXCHANGE` is `O_RDWR`'s value) are never read as `O_*`.
#[test]
fn an_operation_grants_the_access_of_its_op() {
    let rule = |ops: &str, access: &str| {
        set(&format!(
            "rules:\n  - {{name: r, description: d, severity: high, path: /etc/x, op: [{ops}], access: [{access}]}}\n"
        ))
    };
    let all = "open, rename, link, symlink, unlink, rmdir, mkdir, chmod, chown, truncate, exec";
    let write = rule(all, "write");
    for (o, hit) in [
        (Op::Rename, true),
        (Op::Link, true),
        (Op::Symlink, true),
        (Op::Truncate, true),
        (Op::Mkdir, false),
        (Op::Unlink, false),
        (Op::Rmdir, false),
        (Op::Chmod, false),
        (Op::Chown, false),
        (Op::Exec, false),
    ] {
        assert_eq!(fires(&write, &moved(o, "/tmp/a", "/etc/x")), hit, "{o:?}");
    }
    assert!(fires(&rule(all, "create"), &op(Op::Mkdir, "/etc/x")));
    assert!(fires(&rule(all, "directory"), &op(Op::Mkdir, "/etc/x")));
    assert!(fires(&rule(all, "truncate"), &op(Op::Truncate, "/etc/x")));
    assert!(!fires(&rule(all, "truncate"), &op(Op::Rename, "/etc/x")));
    let exchange = Event {
        flags: libc::O_RDWR as u64,
        ..moved(Op::Rename, "/tmp/a", "/etc/x")
    };
    assert!(!fires(&rule(all, "read"), &exchange));
    let rmdir = Event {
        flags: libc::AT_REMOVEDIR as u64,
        ..op(Op::Rmdir, "/etc/x")
    };
    assert!(!fires(&rule(all, "truncate"), &rmdir));
    // Only the listed ops: a rename is not a link.
    let renames = rule("rename", "write");
    assert!(fires(&renames, &moved(Op::Rename, "/tmp/a", "/etc/x")));
    assert!(!fires(&renames, &moved(Op::Link, "/tmp/a", "/etc/x")));
    assert!(!fires(
        &renames,
        &Event {
            flags: libc::O_WRONLY as u64,
            ..ev("/etc/x")
        }
    ));
    // The old name is not written: a rename away from the path is not a write of it.
    assert!(!fires(&write, &moved(Op::Rename, "/etc/x", "/tmp/a")));
}

#[test]
fn not_op_alone_matches_every_other_operation() {
    let s = set("rules:\n  - {name: r, description: d, severity: high, path: /etc/x, not_op: [open, chmod]}\n");
    assert!(!fires(&s, &ev("/etc/x")));
    assert!(!fires(&s, &chmod("/etc/x", 0o644)));
    assert!(fires(&s, &op(Op::Unlink, "/etc/x")));
    assert!(fires(&s, &op(Op::Chown, "/etc/x")));
    assert_eq!(
        s.rules()[0].ops,
        ["rename", "link", "symlink", "unlink", "rmdir", "mkdir", "chown", "truncate", "exec"]
    );
}

/// `old_path` matches the old name like `path` matches the path; an event without one (an open,
/// an unlink) fails a positive condition and passes a `not_` one; `matched` falls back to it.
#[test]
fn old_path_matches_the_old_name() {
    let s = set(r#"
rules:
  - {name: away, description: d, severity: high, op: rename, old_path: ["/var/log/**"], not_path: ["/var/log/**"]}
  - {name: not_old, description: d, severity: low, op: [rename, unlink], path: /x, not_old_path: ["/tmp/*"]}
"#);
    assert_eq!(
        fire(&s, &moved(Op::Rename, "/var/log/auth.log", "/tmp/a")),
        vec![("away".to_owned(), Some("/var/log/**".to_owned()))]
    );
    assert!(!fires(&s, &moved(Op::Rename, "/var/log/a", "/var/log/a.1")));
    assert!(!fires(&s, &moved(Op::Link, "/var/log/a", "/tmp/a")));
    assert!(!fires(&s, &op(Op::Rename, "/tmp/a")), "no old name");
    assert_eq!(names(&s, &op(Op::Unlink, "/x")), ["not_old"]);
    assert_eq!(names(&s, &moved(Op::Rename, "/srv/y", "/x")), ["not_old"]);
    assert!(!fires(&s, &moved(Op::Rename, "/tmp/y", "/x")));
    // In except blocks too; an except block without `op` holds for every op its rule matches.
    let s = set(r#"
rules:
  - name: r
    description: d
    severity: high
    path: /etc/x
    op: [rename, link]
    except:
      - old_path: ["/etc/x.dpkg-*"]
"#);
    assert!(fires(&s, &moved(Op::Rename, "/tmp/a", "/etc/x")));
    assert!(!fires(&s, &moved(Op::Rename, "/etc/x.dpkg-new", "/etc/x")));
    assert!(!fires(&s, &moved(Op::Link, "/etc/x.dpkg-new", "/etc/x")));
}

#[test]
fn mode_set_tests_the_named_bits() {
    let s = set(r#"
rules:
  - {name: suid, description: d, severity: high, op: chmod, mode_set: [setuid, setgid]}
  - {name: x_not_w, description: d, severity: low, op: chmod, mode_set: executable, not_mode_set: world_writable}
"#);
    assert_eq!(names(&s, &chmod("/tmp/sh", 0o4755)), ["suid", "x_not_w"]);
    assert_eq!(names(&s, &chmod("/tmp/sh", 0o2777)), ["suid"]);
    assert_eq!(names(&s, &chmod("/tmp/sh", 0o100)), ["x_not_w"]);
    assert!(!fires(&s, &chmod("/tmp/sh", 0o1666)));
    let open_suid = Event {
        mode: 0o4755,
        flags: (libc::O_CREAT | libc::O_WRONLY) as u64,
        ..ev("/tmp/sh")
    };
    assert!(!fires(&s, &open_suid), "op: chmod only");
}

#[test]
fn op_and_mode_errors_name_the_file_line_and_the_valid_names() {
    let base = "rules:\n  - name: a\n    description: d\n    severity: high\n    path: /x\n";
    let e = err(&format!("{base}    op: [open, move]\n"));
    assert!(
        e.starts_with("t.yaml:6:16: rules[0].op[1]: unknown op \"move\", expected one of open, rename, link, symlink, unlink, rmdir, mkdir, chmod, chown, truncate"),
        "{e}"
    );
    let e = err(&format!("{base}    not_op: 3\n"));
    assert!(
        e.contains("rules[0].not_op: expected an operation name"),
        "{e}"
    );
    let e = err(&format!("{base}    op: []\n"));
    assert!(e.contains("`op: []` can never hold"), "{e}");
    let e = err(&format!("{base}    mode_set: [suid]\n"));
    assert!(
        e.starts_with("t.yaml:6:16: rules[0].mode_set[0]: unknown mode bit \"suid\", expected one of setuid, setgid, sticky, executable, world_writable"),
        "{e}"
    );
    let e = err(&format!("{base}    old_path: [\"tmp/x\"]\n"));
    assert!(
        e.contains("rules[0].old_path[0]: path \"tmp/x\" is not absolute"),
        "{e}"
    );
}

fn detections() -> RuleSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules");
    RuleSet::load(&[dir.join("detections.yaml")]).expect("detections.yaml loads")
}

/// #27: `sed -i` (a temp file renamed over the target), `mv` (one rename; the target is never
/// opened), `ln -sf` and `truncate` put a file at the watched names: the persistence rules of
/// the shipped detections fire on each, and not on the same operations elsewhere.
#[test]
fn the_shipped_persistence_rules_fire_on_sed_i_mv_and_ln() {
    let s = detections();
    for (e, rule) in [
        (
            moved(
                Op::Rename,
                "/root/.ssh/sedAb12Cd",
                "/root/.ssh/authorized_keys",
            ),
            "authorized_keys_write",
        ),
        (
            moved(
                Op::Rename,
                "/home/bob/.ssh/sedX",
                "/home/bob/.ssh/authorized_keys",
            ),
            "authorized_keys_write",
        ),
        (
            moved(Op::Symlink, "/tmp/keys", "/root/.ssh/authorized_keys"),
            "authorized_keys_write",
        ),
        (
            moved(Op::Rename, "/tmp/x", "/etc/cron.d/job"),
            "cron_persistence",
        ),
        (
            moved(Op::Link, "/tmp/x", "/etc/cron.d/job"),
            "cron_persistence",
        ),
        (
            moved(Op::Rename, "/etc/sedQ1w2E3", "/etc/ld.so.preload"),
            "ld_preload_tamper",
        ),
        (op(Op::Truncate, "/etc/ld.so.preload"), "ld_preload_tamper"),
        (
            moved(Op::Rename, "/tmp/u", "/etc/systemd/system/x.service"),
            "systemd_unit_write",
        ),
    ] {
        assert_eq!(names(&s, &e), [rule], "{e:?}");
    }
    for e in [
        moved(Op::Rename, "/etc/cron.d/job", "/tmp/x"),
        op(Op::Unlink, "/etc/cron.d/job"),
        chmod("/etc/ld.so.preload", 0o644),
        moved(Op::Rename, "/tmp/a", "/tmp/b"),
    ] {
        assert!(names(&s, &e).is_empty(), "{e:?}: {:?}", names(&s, &e));
    }
    // The package manager's renames stay exempt, by its verified executable only.
    let dpkg = moved(Op::Rename, "/etc/cron.d/job.dpkg-new", "/etc/cron.d/job");
    assert!(names(&s, &by_exe("/usr/bin/dpkg", dpkg.clone())).is_empty());
    let mut fake = by_exe("/usr/bin/dpkg", dpkg);
    fake.process = verified("/usr/bin/dpkg", Some(false)).process;
    assert_eq!(names(&s, &fake), ["cron_persistence"]);
}

/// The shipped rules of #27 for the operations themselves: each fires on what it is about and
/// stays quiet on its benign twin.
#[test]
fn the_shipped_operation_rules_fire_and_stay_quiet() {
    let s = detections();
    let cases: Vec<(Event, &[&str])> = vec![
        // Logs: deleted, truncated, replaced, moved away; rotation by logrotate is not.
        (
            op(Op::Unlink, "/var/log/auth.log"),
            &["log_deleted_or_truncated"],
        ),
        (
            Event {
                length: Some(0),
                ..op(Op::Truncate, "/var/log/of-lab/app.log")
            },
            &["log_deleted_or_truncated"],
        ),
        (
            moved(Op::Symlink, "/dev/null", "/var/log/wtmp"),
            &["log_deleted_or_truncated"],
        ),
        (
            moved(Op::Rename, "/var/log/auth.log", "/tmp/gone"),
            &["log_moved_away"],
        ),
        (
            by_exe(
                "/usr/sbin/logrotate",
                moved(Op::Rename, "/var/log/syslog", "/var/log/syslog.1"),
            ),
            &[],
        ),
        (
            by_exe(
                "/usr/sbin/logrotate",
                op(Op::Unlink, "/var/log/syslog.4.gz"),
            ),
            &[],
        ),
        (op(Op::Unlink, "/var/tmp/x.log"), &[]),
        // setuid / setgid.
        (
            chmod("/tmp/of-lab/sh", 0o4755),
            &["setuid_bit_set", "tmp_file_made_executable"],
        ),
        (chmod("/srv/bin/tool", 0o2755), &["setuid_bit_set"]),
        (chmod("/srv/bin/tool", 0o755), &[]),
        (by_exe("/usr/bin/dpkg", chmod("/usr/bin/su", 0o4755)), &[]),
        // Created in /tmp, made executable, run: the program then acts on files.
        (chmod("/dev/shm/x", 0o700), &["tmp_file_made_executable"]),
        (chmod("/tmp/x", 0o600), &[]),
        (
            by_exe("/tmp/of-lab/payload", op(Op::Unlink, "/srv/data")),
            &["tmp_program_changes_files"],
        ),
        (by_exe("/tmp/of-lab/payload", ev("/etc/hostname")), &[]),
        (by_exe("/usr/bin/rm", op(Op::Unlink, "/srv/data")), &[]),
        // Shell history; the shell rewriting its own history by rename is not tampering.
        (
            op(Op::Unlink, "/root/.bash_history"),
            &["shell_history_tampered"],
        ),
        (
            moved(Op::Symlink, "/dev/null", "/home/bob/.zsh_history"),
            &["shell_history_tampered"],
        ),
        (
            op(Op::Truncate, "/home/bob/.bash_history"),
            &["shell_history_tampered"],
        ),
        (
            by_exe(
                "/usr/bin/bash",
                moved(
                    Op::Rename,
                    "/root/.bash_history-1.tmp",
                    "/root/.bash_history",
                ),
            ),
            &[],
        ),
        (
            by_exe("/usr/bin/bash", op(Op::Unlink, "/root/.bash_history")),
            &["shell_history_tampered"],
        ),
        (
            moved(Op::Rename, "/root/.bash_history", "/tmp/h"),
            &["shell_history_moved_away"],
        ),
        // System binaries placed by rename; the package manager's are not.
        (
            moved(Op::Rename, "/tmp/ls", "/usr/bin/ls"),
            &["system_binary_replaced"],
        ),
        (
            moved(Op::Rename, "/tmp/t", "/usr/local/bin/tool"),
            &["system_binary_replaced"],
        ),
        (
            by_exe(
                "/usr/bin/dpkg",
                moved(Op::Rename, "/usr/bin/ls.dpkg-new", "/usr/bin/ls"),
            ),
            &[],
        ),
        (moved(Op::Rename, "/tmp/t", "/usr/bin/sub/x"), &[]),
        (op(Op::Unlink, "/usr/bin/ls"), &[]),
    ];
    for (e, want) in cases {
        assert_eq!(
            names(&s, &e),
            want,
            "{:?} {} {:?}",
            e.op,
            e.path.lossy(),
            e.old_path
        );
    }
}

/// `rules sql` compiles the new keys from the same compiled form the engine evaluates.
#[test]
fn sql_compiles_op_old_path_mode_and_operation_access() {
    let s = set(r#"
rules:
  - {name: a, description: d, severity: high, path: /etc/x, access: write}
  - {name: b, description: d, severity: high, path: /etc/x, op: [open, rename], access: write}
  - {name: c, description: d, severity: high, not_op: open, old_path: ["/var/log/**"], not_mode_set: setuid}
"#);
    let q = s.to_sql(sql::Dialect::Duckdb).unwrap();
    assert!(q.contains("e.\"op\" IN ('open')"), "{q}");
    assert!(q.contains("e.\"op\" IN ('open', 'rename')"), "{q}");
    assert!(q.contains("NOT e.\"op\" IN ('open')"), "{q}");
    // An open's access from its flags, a rename's from its op.
    assert!(
        q.contains("((e.\"op\" = 'open' AND (NOT ((")
            && q.contains(" OR e.\"op\" IN ('rename', 'link', 'symlink', 'truncate'))"),
        "{q}"
    );
    assert!(q.contains("e.\"old_path\""), "{q}");
    assert!(
        q.contains("WHEN coalesce(regexp_matches(e.\"old_path\""),
        "{q}"
    );
    assert!(q.contains("NOT ((e.\"mode\" & 2048) <> 0)"), "{q}");
    let spark = s.to_sql(sql::Dialect::Spark).unwrap();
    assert!(spark.contains("`op` IN ('open', 'rename')"), "{spark}");
}
