//! Running as a service (issue 12): the config file, SIGHUP reloads, retention while recording
//! and the pruning notice, `prune`'s guard rails, health files, completions, man pages,
//! `--version`, `install` and the systemd unit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use open_forensics::event::Event;

use crate::helpers::{bin, event, live_capture_available, TempStore};
use crate::nobody::Nobody;
use crate::recorder::Recorder;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write a test file");
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_errors_name_file_line_and_column_and_exit_2() {
    let s = TempStore::new();
    let cfg = s.path("config.yaml");
    let cfg_s = cfg.to_str().unwrap();
    for (text, want) in [
        (
            "ring-mb: 16\nrulez: [a.yaml]\n",
            ":2:8: unknown key \"rulez\"",
        ),
        (
            "stats: true\nring-mb: lots\n",
            ":2:10: ring-mb: invalid value 'lots'",
        ),
        (
            "retain-size: 10 bananas\n",
            ":1:14: retain-size: invalid value '10 bananas'",
        ),
        (
            "max-age: [1h, 2h]\n",
            ":1:10: max-age: expected one value, found a list",
        ),
        (
            "stats: {a: 1}\n",
            ":1:8: stats: expected true or false, found a mapping",
        ),
        ("ring-mb: [\n", "config.yaml:"),
    ] {
        write(&cfg, text);
        let out = s.run(&["record", "--config", cfg_s]);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert!(
            err.contains(&format!("{cfg_s}{want}")) || (want.ends_with(':') && err.contains(want)),
            "{text:?}: wanted {want:?} in {err}"
        );
        assert!(!s.dir.exists(), "a config error must not touch the store");
    }
    // A config file that is named but missing is an error too.
    let out = s.run(&["record", "--config", s.path("nope.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("nope.yaml"));
}

#[test]
fn flags_win_over_the_config_file_and_the_config_fills_in_the_rest() {
    // --ring-mb is validated before anything needs privilege, so its message shows which value
    // the recorder ended up with, root or not.
    let s = TempStore::new();
    let cfg = s.path("config.yaml");
    write(&cfg, "ring-mb: 3\n");
    let cfg_s = cfg.to_str().unwrap();
    let err = stderr_of(&s.run(&["record", "--config", cfg_s]));
    assert!(err.contains("--ring-mb 3: must be a power of two"), "{err}");
    let err = stderr_of(&s.run(&["record", "--config", cfg_s, "--ring-mb", "5"]));
    assert!(err.contains("--ring-mb 5: must be a power of two"), "{err}");
    // The environment names the file as well as --config does.
    let out = s
        .cmd(&["record"])
        .env("OPEN_FORENSICS_CONFIG", &cfg)
        .output()
        .unwrap();
    assert!(
        stderr_of(&out).contains("--ring-mb 3:"),
        "{}",
        stderr_of(&out)
    );
    // A health file whose directory is missing: refused up front, not warned about forever.
    let err = stderr_of(&s.run(&["record", "--stats-file", "/nonexistent/dir/h.json"]));
    assert!(
        err.contains("/nonexistent/dir/h.json: refused: its directory does not exist"),
        "{err}"
    );
    // A requirement met by the config: --alerts on the command line, rules in the file.
    write(&cfg, "ring-mb: 3\nrules: [/nonexistent.yaml]\n");
    let err = stderr_of(&s.run(&["record", "--config", cfg_s, "--alerts", "/dev/null"]));
    assert!(err.contains("--ring-mb 3:"), "{err}");
}

#[test]
fn the_shipped_config_is_valid() {
    let s = TempStore::new();
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/config.yaml");
    // Everything in it parses; the deliberate bad flag stops the run before anything is done.
    let err = stderr_of(&s.run(&[
        "record",
        "--config",
        cfg.to_str().unwrap(),
        "--ring-mb",
        "3",
    ]));
    assert!(err.contains("--ring-mb 3: must be a power of two"), "{err}");
}

#[test]
fn completions_and_man_pages_are_generated_from_the_flags() {
    let s = TempStore::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = s.ok(&["completions", shell]);
        assert!(
            out.contains("retain-size"),
            "{shell}: no --retain-size in\n{out}"
        );
        assert!(out.contains("open-forensics"), "{shell}");
    }
    let man = s.ok(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH open-forensics 1"),
        "{man}"
    );
    assert!(man.contains("record"));
    let dir = s.path("man");
    std::fs::create_dir(&dir).unwrap();
    s.ok(&["man", "--dir", dir.to_str().unwrap()]);
    let record = std::fs::read_to_string(dir.join("open-forensics-record.1")).unwrap();
    assert!(record.contains("retain\\-size"), "{record}");
}

#[test]
fn version_names_the_schema_libbpf_and_kernel_features() {
    let out = std::process::Command::new(bin())
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    for want in [
        "open-forensics 0.",
        "schema ",
        "libbpf v1.",
        "kernel ",
        "BTF: ",
        "ring buffer: ",
        "bpf_loop: ",
        "tp_btf: ",
    ] {
        assert!(text.contains(want), "no {want:?} in {text}");
    }
}

/// Events stamped `minutes_ago` minutes ago (ten of them, one sealed segment per import).
fn recent(minutes_ago: i64, tag: &str) -> Vec<Event> {
    let base = open_forensics::timespec::now_ns() - minutes_ago * 60_000_000_000;
    (0..10)
        .map(|i| Event {
            ts_ns: base + i * 1_000,
            ..event(i, &format!("/service/{tag}/{i}"))
        })
        .collect()
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".seg.zst"))
        .collect();
    v.sort();
    v
}

#[test]
fn prune_refuses_a_recent_before_without_force_and_dry_run_deletes_nothing() {
    let s = TempStore::new();
    s.import(&recent(30, "a"));
    s.import(&recent(20, "b"));
    let before = segment_files(&s.dir);
    assert_eq!(before.len(), 2);

    let out = s.run(&["prune", "--before", "0s"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("--force"), "{}", stderr_of(&out));
    assert_eq!(
        segment_files(&s.dir),
        before,
        "a refused prune deleted something"
    );

    let out = s.run(&["prune", "--before", "0s", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    assert!(stderr_of(&out).contains("would prune 2 segment(s), 20 events"));
    assert_eq!(segment_files(&s.dir), before, "--dry-run deleted something");
    assert!(
        !s.dir.join("prune.json").exists(),
        "--dry-run recorded a prune"
    );

    // An older cut needs no --force; a recent one does, and then the range is reported.
    s.ok(&["prune", "--before", "2h"]);
    assert_eq!(segment_files(&s.dir), before);
    s.ok(&["prune", "--before", "25m", "--force"]);
    assert_eq!(segment_files(&s.dir).len(), 1);
    let out = s.run(&["segments", "--format", "csv"]);
    assert!(
        stderr_of(&out).contains("pruned (prune): 10 events in 1 segment(s)"),
        "{}",
        stderr_of(&out)
    );
    let out = s.run(&["export"]);
    assert!(out.status.success());
    let err = stderr_of(&out);
    let notice: serde_json::Value = err
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON notice in {err}"));
    assert_eq!(notice["warning"], "pruned");
    assert_eq!(notice["events"], 10);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 10);
    // A query that does not reach the pruned range says nothing about it.
    let out = s.run(&["query", "--since", "22m", "--format", "csv"]);
    assert!(!stderr_of(&out).contains("pruned"), "{}", stderr_of(&out));
    let out = s.run(&["query", "--since", "1h", "--format", "csv"]);
    assert!(
        stderr_of(&out).contains("warning: pruned: 10 events in 1 segment(s)"),
        "{}",
        stderr_of(&out)
    );
    s.ok(&["verify"]);
}

#[test]
fn install_puts_everything_in_place_and_never_overwrites_an_edited_config() {
    let s = TempStore::new();
    let root = s.path("root");
    let root_s = root.to_str().unwrap();
    let out = s.run(&[
        "install",
        "--destdir",
        root_s,
        "--prefix",
        "/usr",
        "--dry-run",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!root.exists(), "--dry-run wrote something");
    s.ok(&["install", "--destdir", root_s, "--prefix", "/usr"]);
    for f in [
        "usr/bin/open-forensics",
        "etc/systemd/system/open-forensics.service",
        "etc/open-forensics/config.yaml",
        "etc/open-forensics/rules/detections.yaml",
        "usr/share/bash-completion/completions/open-forensics",
        "usr/share/zsh/site-functions/_open-forensics",
        "usr/share/fish/vendor_completions.d/open-forensics.fish",
        "usr/share/man/man1/open-forensics.1",
        "usr/share/man/man1/open-forensics-record.1",
    ] {
        assert!(root.join(f).is_file(), "{f} not installed");
    }
    let unit =
        std::fs::read_to_string(root.join("etc/systemd/system/open-forensics.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/open-forensics record"),
        "{unit}"
    );
    let config = root.join("etc/open-forensics/config.yaml");
    write(&config, "ring-mb: 64\n");
    let out = s.run(&["install", "--destdir", root_s, "--prefix", "/usr"]);
    assert!(out.status.success());
    assert!(
        stderr_of(&out).contains("config.yaml.new"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "ring-mb: 64\n");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/open-forensics/config.yaml.new")).unwrap(),
        open_forensics::service::install::CONFIG
    );
}

/// The installed binary carries no debug info (the debug build here is ~170 MB, a release build
/// with line tables ~125 MB; stripped, a few tens of MB at most) and points at a debug file of its
/// own under /usr/lib/debug, where gdb and perf look for it: small to install, still profilable.
#[test]
fn install_splits_the_debug_info_off_the_binary() {
    let has_binutils = ["objcopy", "readelf"].iter().all(|t| {
        std::process::Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !has_binutils {
        crate::helpers::skip(
            "install_splits_the_debug_info_off_the_binary",
            "no objcopy or readelf (apt-get install binutils)",
        );
        return;
    }
    let s = TempStore::new();
    let root = s.path("root");
    s.ok(&[
        "install",
        "--destdir",
        root.to_str().unwrap(),
        "--prefix",
        "/usr",
    ]);
    let bin = root.join("usr/bin/open-forensics");
    let debug = root.join("usr/lib/debug/usr/bin/open-forensics.debug");
    let sections = |f: &std::path::Path| {
        let out = std::process::Command::new("readelf")
            .args(["-S", "-W"])
            .arg(f)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let b = sections(&bin);
    assert!(!b.contains(".debug_info"), "{b}");
    assert!(b.contains(".gnu_debuglink"), "{b}");
    assert!(sections(&debug).contains(".debug_info"));
    let (installed, built) = (
        std::fs::metadata(&bin).unwrap().len(),
        std::fs::metadata(crate::helpers::bin()).unwrap().len(),
    );
    assert!(
        installed * 2 < built,
        "installed {installed} of {built} bytes"
    );
    // It still runs.
    let out = std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn install_into_a_relative_destdir_creates_it() {
    // Regression: the missing-directory walk reached "" (the current directory) and failed.
    let s = TempStore::new();
    let out = s
        .cmd(&["install", "--destdir", "stage", "--prefix", "/usr"])
        .current_dir(s.tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(s.path("stage/usr/bin/open-forensics").is_file());
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        crate::helpers::skip(
            "systemd_analyze_verifies_the_unit",
            "no systemd-analyze (apt-get install systemd)",
        );
        return;
    };
    assert!(out.status.success());
    let s = TempStore::new();
    // The unit as installed next to this build's binary (verify checks that ExecStart exists).
    let unit = open_forensics::service::install::unit_for(bin().parent().unwrap());
    let path = s.path("open-forensics.service");
    write(&path, &unit);
    // --man=no: the man pages it documents are not installed on this machine.
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "systemd-analyze verify failed: {err}");
    assert!(
        !err.contains("open-forensics.service:"),
        "systemd-analyze complains about the unit: {err}"
    );
}

// ---- live: need root ----

/// Opens `path` once (it must exist): the event the rules see.
fn touch_open(path: &Path) {
    drop(std::fs::File::open(path).expect("open a marker"));
}

/// The alert lines (rule, path) in `file`.
fn alerts(file: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("alert JSON");
            (
                v["rule"].as_str().unwrap_or_default().to_owned(),
                v["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn wait_for_alert(file: &Path, path: &Path) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let p = path.to_str().unwrap();
    loop {
        let a = alerts(file);
        if a.iter().any(|(_, ap)| ap == p) || Instant::now() > deadline {
            return a;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rule_file(name: &str, marker_dir: &Path) -> String {
    format!(
        "rules:\n  - name: {name}\n    description: test marker\n    severity: low\n    path: [\"{}/*\"]\n",
        marker_dir.display()
    )
}

#[test]
fn sighup_swaps_rules_for_the_next_event_and_keeps_the_old_set_when_the_new_one_is_invalid() {
    if !live_capture_available(
        "sighup_swaps_rules_for_the_next_event_and_keeps_the_old_set_when_the_new_one_is_invalid",
    ) {
        return;
    }
    let s = TempStore::new();
    let marks = s.path("m");
    std::fs::create_dir(&marks).unwrap();
    for i in 1..=4 {
        write(&marks.join(format!("f{i}")), "");
    }
    let rules = s.path("live.yaml");
    write(&rules, &rule_file("before_reload", &marks));
    let cfg = s.path("config.yaml");
    write(
        &cfg,
        &format!("rules: [{}]\nno-ia32: true\n", rules.display()),
    );
    let alerts_file = s.path("alerts.jsonl");
    let mut rec = Recorder::start(
        &s,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--alerts",
            alerts_file.to_str().unwrap(),
        ],
    );
    let hup = |rec: &Recorder| {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(rec.pid() as i32, libc::SIGHUP) };
    };

    touch_open(&marks.join("f1"));
    let a = wait_for_alert(&alerts_file, &marks.join("f1"));
    assert!(a.iter().any(|(r, _)| r == "before_reload"), "{a:?}");

    write(&rules, &rule_file("after_reload", &marks));
    hup(&rec);
    let line = rec
        .wait_line("SIGHUP", Duration::from_secs(20))
        .expect("no reload line");
    assert!(line.contains("reloaded: 1 rule(s)"), "{line}");
    touch_open(&marks.join("f2"));
    wait_for_alert(&alerts_file, &marks.join("f2"));

    // Invalid: reported with its position, and the running set stays.
    write(
        &rules,
        &format!("{}    severity_typo: low\n", rule_file("broken", &marks)),
    );
    hup(&rec);
    let line = rec
        .wait_line("SIGHUP", Duration::from_secs(20))
        .expect("no reload line");
    assert!(line.contains("reload failed"), "{line}");
    assert!(line.contains(&format!("{}:6:", rules.display())), "{line}");
    touch_open(&marks.join("f3"));
    wait_for_alert(&alerts_file, &marks.join("f3"));

    // A config file gone at reload time: reported, still recording with the same rules.
    std::fs::rename(&cfg, s.path("config.yaml.away")).unwrap();
    hup(&rec);
    let line = rec
        .wait_line("SIGHUP", Duration::from_secs(20))
        .expect("no reload line");
    assert!(
        line.contains("reload failed") && line.contains("config.yaml"),
        "{line}"
    );
    assert!(rec.running(), "a failed reload ended the recorder");
    touch_open(&marks.join("f4"));
    wait_for_alert(&alerts_file, &marks.join("f4"));
    let err = rec.stop();

    let got = alerts(&alerts_file);
    let at = |f: &str| marks.join(f).to_str().unwrap().to_owned();
    let expect = vec![
        ("before_reload".to_owned(), at("f1")),
        ("after_reload".to_owned(), at("f2")),
        ("after_reload".to_owned(), at("f3")),
        ("after_reload".to_owned(), at("f4")),
    ];
    assert_eq!(
        got, expect,
        "alerts around the reloads (none doubled, none missed): {err}"
    );
}

/// Bytes of the sealed segment files in `dir`.
fn sealed_bytes(dir: &Path) -> u64 {
    segment_files(dir)
        .iter()
        .filter_map(|n| std::fs::metadata(dir.join(n)).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn retention_keeps_a_live_store_within_its_size_and_queries_say_what_was_pruned() {
    if !live_capture_available(
        "retention_keeps_a_live_store_within_its_size_and_queries_say_what_was_pruned",
    ) {
        return;
    }
    let s = TempStore::new();
    const LIMIT: u64 = 128 << 10;
    let health = s.path("health.json");
    let rec = Recorder::start(
        &s,
        &[
            "--max-age",
            "1s",
            "--max-bytes",
            "131072",
            "--retain-size",
            "128K",
            "--stats-file",
            health.to_str().unwrap(),
            "--stats-interval",
            "1s",
            "--no-ia32",
        ],
    );
    // Load: opens enough to outgrow the limit several times over without retention, paced at
    // about 20k/s so that it never floods the recorders of tests running beside this one
    // (capture is system-wide).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        // Distinct (missing) paths: each event then costs the store some bytes even on a quiet
        // machine, where identical opens would compress to almost nothing.
        let base = s.path("load");
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for _ in 0..200 {
                    drop(std::fs::File::open(base.join(format!("n{n}"))));
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            n
        })
    };
    let started = Instant::now();
    let mut most_sealed = 0;
    let mut removed_seen = None;
    // At least 10 s, and until a few seconds past the first removal (a loaded machine ticks
    // late); at most 60 s.
    while started.elapsed() < Duration::from_secs(10)
        || (started.elapsed() < Duration::from_secs(60)
            && removed_seen.is_none_or(|at: Instant| at.elapsed() < Duration::from_secs(4)))
    {
        most_sealed = most_sealed.max(sealed_bytes(&s.dir));
        if removed_seen.is_none() && s.dir.join("prune.json").exists() {
            removed_seen = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = load.join().unwrap();
    let secs = started.elapsed().as_secs_f64();
    let err = rec.stop();
    assert!(
        removed_seen.is_some(),
        "retention never removed anything ({opened} opens): {err}"
    );
    assert!(err.contains("retention (retain-size): removed"), "{err}");
    let summary = err
        .lines()
        .find_map(|l| l.strip_prefix("open-forensics: recorded "))
        .expect("summary line");
    let recorded: u64 = summary.split(' ').next().unwrap().parse().unwrap();
    let written: u64 = summary
        .split(", ")
        .find_map(|p| p.split_once(" bytes written").map(|(n, _)| n))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // Retention runs once per tick (1 s): between two passes, what is sealed meanwhile sits there
    // too, so the bound is the limit plus two ticks' worth of seals at this run's rate (the
    // machine is shared: the rate is whatever the host did plus the load above).
    let slack = ((2.0 * written as f64 / secs) as u64).max(128 << 10);
    assert!(
        written > LIMIT + slack,
        "the load did not outgrow the limit ({written} bytes written): {err}"
    );
    assert!(
        most_sealed <= LIMIT + slack,
        "sealed segments reached {most_sealed} bytes with --retain-size {LIMIT} (slack {slack}): {err}"
    );

    // Everything recorded is either still there or named as pruned: nothing vanished silently.
    let out = s.run(&["export"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let kept = String::from_utf8_lossy(&out.stdout).lines().count() as u64;
    let notice: serde_json::Value = stderr_of(&out)
        .lines()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .filter(|v| v["warning"] == "pruned")
        })
        .unwrap_or_else(|| panic!("export does not say what was pruned: {}", stderr_of(&out)));
    let pruned = notice["events"].as_u64().unwrap();
    assert!(pruned > 0);
    assert_eq!(
        kept + pruned,
        recorded,
        "kept {kept} + pruned {pruned} != recorded {recorded}"
    );
    let out = s.run(&["query", "--since", "1h", "--format", "jsonl"]);
    assert!(
        stderr_of(&out).contains("\"warning\":\"pruned\""),
        "{}",
        stderr_of(&out)
    );
    s.ok(&["verify"]);

    // The health files: this interval's rate, the ring, and a Prometheus twin.
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&health).unwrap()).unwrap();
    assert!(h["events_per_s"].as_f64().unwrap() > 0.0, "{h}");
    assert!(h["interval_s"].as_f64().unwrap() < 5.0, "{h}");
    assert_eq!(h["ring"]["size_bytes"], 16 << 20);
    assert!(h["pruned_events"].as_u64().unwrap() > 0, "{h}");
    // No rules, so no alert outputs (their states are in `outputs::record_delivers…`).
    assert_eq!(h["outputs"], serde_json::json!([]), "{h}");
    let prom =
        std::fs::read_to_string(PathBuf::from(format!("{}.prom", health.display()))).unwrap();
    assert!(
        prom.contains("# TYPE open_forensics_events_total counter"),
        "{prom}"
    );
    assert!(
        prom.contains("open_forensics_ring_size_bytes 16777216"),
        "{prom}"
    );
}

#[test]
fn writer_retention_removes_the_oldest_sealed_segments_and_records_them() {
    use open_forensics::store::{
        list_segments, Reader, Retention, RotateConfig, SegmentState, TimeRange, Writer,
    };
    let s = TempStore::new();
    let mut w = Writer::open(
        &s.dir,
        RotateConfig {
            max_events: 100,
            ..RotateConfig::default()
        },
    )
    .unwrap();
    for i in 0..450 {
        w.append(&mut event(i * 1000, &format!("/service/retain/{i}")))
            .unwrap();
    }
    // Four sealed segments and an active one; wait for the seals (retention leaves a segment
    // being sealed alone).
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.summary().segments_sealed < 4 && Instant::now() < deadline {
        w.tick().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    while w.sealing_seq().is_some() && Instant::now() < deadline {
        w.tick().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let (segs, _) = list_segments(&s.dir).unwrap();
    let sealed: Vec<_> = segs
        .iter()
        .filter(|g| g.state == SegmentState::Sealed)
        .collect();
    assert_eq!(sealed.len(), 4);
    let total: u64 = segs.iter().map(|g| g.file_bytes).sum();
    let oldest_two: u64 = sealed[..2].iter().map(|g| g.file_bytes).sum();
    let policy = Retention {
        max_bytes: Some(total - oldest_two),
        max_age: None,
    };
    let now = open_forensics::timespec::now_ns();
    let r = w.retain(&policy, now).unwrap().expect("something removed");
    assert_eq!(
        (r.segments, r.events, r.by.as_str()),
        (2, 200, "retain-size")
    );
    assert_eq!(
        (r.first_seq, r.last_seq),
        (sealed[0].meta.seq, sealed[1].meta.seq)
    );
    // Within the limit now: a second pass removes nothing; nor does a limit below the active
    // segment alone remove it.
    assert!(w.retain(&policy, now).unwrap().is_none());
    let r = w
        .retain(
            &Retention {
                max_bytes: Some(1),
                max_age: None,
            },
            now,
        )
        .unwrap()
        .expect("the other sealed ones go");
    assert_eq!(r.segments, 2);
    let (segs, _) = list_segments(&s.dir).unwrap();
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].state, SegmentState::Active);
    w.close().unwrap();

    s.ok(&["verify"]);
    let reader = Reader::open(&s.dir).unwrap();
    let stats = reader.scan(&TimeRange::default(), |_| {
        std::ops::ControlFlow::Continue(())
    });
    assert_eq!(stats.events_in_range, 50);
    assert_eq!(
        stats.pruned.len(),
        1,
        "adjacent removals are one range: {:?}",
        stats.pruned
    );
    assert_eq!(stats.pruned_events(), 400);
    // A range after the pruned history says nothing about it.
    let after = TimeRange {
        since: Some(event(401 * 1000, "").ts_ns),
        until: None,
    };
    assert!(reader
        .scan(&after, |_| std::ops::ControlFlow::Continue(()))
        .pruned
        .is_empty());
}

#[test]
fn verify_passes_when_a_removal_was_recorded_but_did_not_finish() {
    // The prune record is written before the segments are removed; a crash in between leaves
    // segments the record already counts as pruned. The chain must still verify: the record keeps
    // the cut before it.
    use open_forensics::store::list_segments;
    let s = TempStore::new();
    for k in 0..3 {
        s.import(
            &(0..5)
                .map(|i| event(k * 1000 + i, &format!("/service/crash/{k}/{i}")))
                .collect::<Vec<_>>(),
        );
    }
    let (segs, _) = list_segments(&s.dir).unwrap();
    assert_eq!(segs.len(), 3);
    let cut = open_forensics::timespec::format_ts(segs[1].meta.first_ts_ns.unwrap() - 1);
    s.ok(&["prune", "--before", &cut]);
    s.ok(&["verify"]);
    // What the next removal (of the oldest remaining segment) writes before deleting it.
    let record_path = s.dir.join("prune.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    let old_link = record["link"].clone();
    record["prev_link"] = old_link;
    record["link"] = serde_json::Value::from(segs[1].meta.link.clone().unwrap());
    std::fs::write(&record_path, record.to_string()).unwrap();
    let out = s.run(&["verify"]);
    assert!(
        out.status.success(),
        "verify after an unfinished removal: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
}

#[test]
fn the_recorder_tells_systemd_when_it_is_ready_and_when_it_reloads() {
    if !live_capture_available("the_recorder_tells_systemd_when_it_is_ready_and_when_it_reloads") {
        return;
    }
    // A stand-in for systemd's notification socket.
    let s = TempStore::new();
    let sock_path = s.path("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut cmd = s.cmd(&["record", "--no-ia32"]);
    cmd.env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "120000000");
    let mut rec = Recorder::start_cmd(cmd);
    let recv = || -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = recv();
    assert!(first.contains("READY=1"), "{first}");
    assert!(first.contains("STATUS=recording: "), "{first}");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(rec.pid() as i32, libc::SIGHUP) };
    rec.wait_line("SIGHUP", Duration::from_secs(20))
        .expect("no reload line");
    let mut seen = Vec::new();
    while !seen.iter().any(|m: &String| m.contains("RELOADING=1")) {
        seen.push(recv());
    }
    let reloading = seen.iter().find(|m| m.contains("RELOADING=1")).unwrap();
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let after = recv();
    assert!(after.contains("READY=1"), "after the reload: {after}");
    // And the watchdog is fed, every tick.
    let pings = (0..10)
        .map(|_| recv())
        .filter(|m| m.contains("WATCHDOG=1"))
        .count();
    assert!(pings >= 3, "{pings} watchdog pings in 10 notifications");
    rec.stop();
}

#[test]
fn version_without_privilege_says_unknown_instead_of_guessing() {
    // Regression: unprivileged, libbpf's probes read a refused map as "no ring buffer" and a
    // refused program load as "bpf_loop: yes".
    let nobody = Nobody::new();
    let out = nobody.cmd().arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for f in ["ring buffer", "bpf_loop"] {
        assert!(
            text.contains(&format!("{f}: unknown (probing needs CAP_BPF")),
            "{f}: {text}"
        );
    }
}

/// The retention pass after the last seal uses the limits in force when recording stops: a
/// SIGHUP that dropped a size limit must not see segments removed under the old one at exit
/// (they were: the pass used the start's limits).
#[test]
fn the_last_retention_pass_keeps_what_a_reload_allowed() {
    if !live_capture_available("the_last_retention_pass_keeps_what_a_reload_allowed") {
        return;
    }
    let s = TempStore::new();
    let cfg = s.path("config.yaml");
    write(&cfg, "retain-size: 32K\nmax-events: 100\nno-ia32: true\n");
    let mut rec = Recorder::start(&s, &["--config", cfg.to_str().unwrap()]);
    write(&cfg, "max-events: 100\nno-ia32: true\n");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(rec.pid() as i32, libc::SIGHUP) };
    let line = rec
        .wait_line("SIGHUP", Duration::from_secs(20))
        .expect("no reload line");
    assert!(line.contains("retention now"), "{line}");
    // Distinct missing paths, paced (capture is system-wide): every 100 events a segment is
    // sealed, well past 32K in all.
    let base = s.path("kept");
    const OPENS: usize = 4000;
    for n in 0..OPENS {
        drop(std::fs::File::open(base.join(format!("n{n}"))));
        if n % 200 == 199 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let err = rec.stop();
    assert!(!err.contains("retention ("), "a segment was removed: {err}");
    assert!(
        sealed_bytes(&s.dir) > 32 << 10,
        "the store never outgrew the old limit"
    );
    let prefix = base.as_os_str().as_encoded_bytes();
    let me = std::process::id();
    let kept = crate::helpers::read_store(&s.dir)
        .iter()
        .filter(|e| e.pid == me && e.path.as_bytes().starts_with(prefix))
        .count();
    assert_eq!(kept, OPENS, "opens of ours lost from the store");
}
