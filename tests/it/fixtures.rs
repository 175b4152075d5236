//! Recorded fixtures replayed without privilege (issue #5): every rule set over every recorded
//! scenario must print exactly its golden alerts. `OPEN_FORENSICS_BLESS=1` rewrites the golden
//! files; review them as a diff.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::helpers::{fixtures_dir, is_root, scenarios};
use crate::nobody::{Nobody, NOBODY};

/// A copy of a fixture store that an unprivileged user owns, and a command that runs as that user
/// (as root: uid/gid 65534 `nobody`; otherwise we are unprivileged already).
struct Unprivileged {
    nobody: Nobody,
    /// A copy of `fixtures/`, owned by the unprivileged user.
    fixtures: PathBuf,
    store: PathBuf,
}

impl Unprivileged {
    fn new(scenario: &str) -> Unprivileged {
        let nobody = Nobody::new();
        let copy = nobody.dir().join("fixtures");
        copy_dir(&fixtures_dir(), &copy);
        let store = copy.join("segments").join(scenario);
        if is_root() {
            for p in walk(&copy) {
                let c =
                    std::ffi::CString::new(p.to_str().expect("utf-8 temp path")).expect("no NUL");
                // SAFETY: chown of a path we just created.
                assert_eq!(
                    unsafe { libc::chown(c.as_ptr(), NOBODY, NOBODY) },
                    0,
                    "chown {}",
                    p.display()
                );
            }
        }
        Unprivileged {
            nobody,
            fixtures: copy,
            store,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.nobody
            .cmd()
            .arg("--store")
            .arg(&self.store)
            .args(args)
            .current_dir(&self.fixtures)
            .output()
            .expect("run open-forensics")
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn check_golden(golden: &Path, actual: &str) {
    if std::env::var("OPEN_FORENSICS_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(golden.parent().expect("parent")).expect("mkdir");
        std::fs::write(golden, actual).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(golden).unwrap_or_else(|_| {
        panic!(
            "missing golden {} (OPEN_FORENSICS_BLESS=1 creates it)",
            golden.display()
        )
    });
    assert!(
        want == actual,
        "{} differs from replay:\n--- golden\n{want}\n--- replay\n{actual}",
        golden.display()
    );
}

#[test]
fn every_rule_set_replays_every_fixture_as_golden_without_privilege() {
    let sets = [
        "poc",
        "detections",
        "full",
        "falco_ports",
        "sigma",
        "sigma_process_creation",
    ];
    let scenarios = scenarios();
    assert!(
        scenarios.len() >= 3,
        "fixtures/segments holds {scenarios:?}"
    );
    for scenario in &scenarios {
        let u = Unprivileged::new(scenario);
        for set in sets {
            let file = format!("rules/{set}.yaml");
            let out = u.run(&["replay", "--rules", &file, "--format", "jsonl"]);
            assert!(
                out.status.success(),
                "replay {set} over {scenario} as an unprivileged user: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let golden = fixtures_dir()
                .join("expected")
                .join(set)
                .join(format!("{scenario}.jsonl"));
            check_golden(
                &golden,
                &String::from_utf8(out.stdout).expect("utf-8 alerts"),
            );
        }
        // Nothing was written into the store by reading it.
        let names: Vec<_> = walk(&u.store).into_iter().skip(1).collect();
        assert_eq!(names.len(), 1, "the fixture store changed: {names:?}");
    }
}

#[test]
fn fixtures_cover_every_capture_route_and_are_readable_as_nobody() {
    let u = Unprivileged::new("routes");
    let out = u.run(&["export"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    for syscall in ["open", "creat", "openat", "openat2", "io_uring"] {
        assert!(
            events.iter().any(|e| e["syscall"] == syscall),
            "no {syscall} event in fixtures/segments/routes"
        );
    }
    for source in ["file", "cwd", "raw"] {
        assert!(
            events.iter().any(|e| e["path_source"] == source),
            "no path_source {source}"
        );
    }
    assert!(events.iter().any(|e| e["ret"] == -13), "no EACCES");
    assert!(events.iter().any(|e| e["ret"] == -2), "no ENOENT");
    assert!(
        events.iter().any(|e| e["pid"] != e["tid"]),
        "no event from a thread"
    );
    assert!(
        events
            .iter()
            .any(|e| e["path"].as_str().is_some_and(|p| p.len() > 256)),
        "no long path"
    );
    assert!(
        events
            .iter()
            .any(|e| e["path"].as_str().is_some_and(|p| p.contains('\n'))),
        "no control bytes"
    );
}

#[test]
fn attack_detections_fire_and_baseline_stays_quiet() {
    let attack = Unprivileged::new("attack");
    let out = attack.run(&["replay", "--rules", "rules/detections.yaml"]);
    let alerts = String::from_utf8_lossy(&out.stdout).into_owned();
    for rule in [
        "shadow_read",
        "ssh_private_key_read",
        "authorized_keys_write",
        "cron_persistence",
        "systemd_unit_write",
        "browser_credentials_read",
        "ld_preload_tamper",
    ] {
        assert!(
            alerts.contains(&format!("\"rule\":\"{rule}\"")),
            "{rule} did not fire on the attack fixture"
        );
    }
    let baseline = Unprivileged::new("baseline");
    let out = baseline.run(&[
        "replay",
        "--rules",
        "rules/detections.yaml",
        "rules/poc.yaml",
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "false positives on the benign baseline"
    );
}

#[test]
fn rules_test_passes_good_rules_and_names_each_failure() {
    let u = Unprivileged::new("attack");
    let fx = u.fixtures.to_str().expect("utf-8 path");
    let rules_test = |files: &[&str]| {
        let mut args = vec!["rules", "test"];
        args.extend_from_slice(files);
        args.extend(["--fixtures", fx, "--format", "jsonl"]);
        u.run(&args)
    };
    let det = format!("{fx}/rules/detections.yaml");
    let poc = format!("{fx}/rules/poc.yaml");
    let ok = rules_test(&[&det, &poc]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&ok.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 16);
    assert!(
        rows.iter()
            .all(|r| r["verdict"] == "ok" && r["golden"] == format!("{} ok", scenarios().len())),
        "{rows:?}"
    );

    // The Falco ports are ours as well: each tested by a fixture, quiet on every baseline
    // (fixtures/README.md says which sets must pass).
    let ok = rules_test(&[&format!("{fx}/rules/falco_ports.yaml")]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // full.yaml has rules no fixture exercises and one that fires on the baseline.
    let bad = rules_test(&[&format!("{fx}/rules/full.yaml")]);
    assert_eq!(bad.status.code(), Some(1));
    let out = String::from_utf8_lossy(&bad.stdout);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        out.contains("\"rule\":\"sudoers_write\"") && out.contains("rule is untested"),
        "{out}"
    );
    assert!(
        err.contains("false positive of tmp_exec_dir on baseline"),
        "{err}"
    );

    // A golden file that no longer matches.
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixtures_dir(), tmp.path());
    let golden = tmp.path().join("expected/detections/attack.jsonl");
    let text = std::fs::read_to_string(&golden)
        .expect("golden")
        .replace("\"ret\":3", "\"ret\":4");
    std::fs::write(&golden, text).expect("write");
    let t = tmp.path().to_str().expect("utf-8");
    let changed = crate::helpers::TempStore::new().run(&[
        "rules",
        "test",
        &format!("{t}/rules/detections.yaml"),
        "--fixtures",
        t,
        "--format",
        "csv",
    ]);
    assert_eq!(changed.status.code(), Some(1));
    let err = String::from_utf8_lossy(&changed.stderr);
    assert!(
        err.contains("attack.jsonl") && err.contains("first difference"),
        "{err}"
    );
}
