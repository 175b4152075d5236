//! Rules benchmark (issue #4): replay throughput of a 50-rule set over a realistic store, against a
//! bare decompress-and-scan of the same segments (target: replay at least half as fast as the bare
//! scan), plus a 50-rule set that matches nothing (it should cost almost nothing per event).
//!
//! `cargo bench --bench rules` (OF_BENCH_EVENTS=N to change the 10M default, OF_BENCH_RUNS=N for the
//! runs per measurement (best is kept, default 2), OF_BENCH_PER_RULE=1 to print alerts per rule).
//! Prints figures only.

mod common;

use std::io::Write;
use std::ops::ControlFlow;
use std::time::Instant;

use open_forensics::alerts::{HttpFormat, Outputs, Target};
use open_forensics::rules::{Alerter, RuleSet};
use open_forensics::store::{Reader, RotateConfig, TimeRange, Writer};

/// 50 rules: hand-written ones of the kind people deploy, plus generated per-file watch rules.
fn rule_set() -> String {
    let mut y = String::from(
        r#"
lists:
  shells: [bash, sh, dash, zsh]
  package_tools: [apt-get, dpkg, apt]
  credential_files: [/etc/shadow, /etc/gshadow, /etc/sudoers, "/etc/sudoers.d/*"]
rules:
  - name: credentials_read
    description: password hashes read
    severity: high
    path: [$credential_files]
    except:
      - comm: [passwd, chpasswd]
  - name: passwd_read_by_interpreter
    description: account database read by an interpreter
    severity: low
    path: /etc/passwd
    comm: [python3, node, "perl*"]
    result: success
  - name: proc_snooping
    description: another process's command line read
    severity: low
    path: ["/proc/*/cmdline", "/proc/*/environ"]
    not_comm: [systemd, containerd, dockerd]
  - name: apt_lists_written_by_non_apt
    description: package lists modified by something that is not the package manager
    severity: medium
    path: /var/lib/apt/lists/
    access: [write, create, truncate]
    not_comm: [$package_tools]
  - name: source_written_by_root
    description: developer sources written as root
    severity: medium
    path: ["/home/*/src/**"]
    uid: 0
    access: write
  - name: denied_in_etc
    description: refused opens under /etc
    severity: medium
    path: /etc/
    result: [EACCES, EPERM]
  - name: shell_reads_ld_cache
    description: shells loading the linker cache
    severity: info
    path: /etc/ld.so.cache
    comm: [$shells]
  - name: io_uring_opens_outside_usr
    description: io_uring opens outside /usr
    severity: low
    syscall: io_uring
    not_path_prefix: [/usr/]
  - name: library_from_writable_dir
    description: a shared library opened from a world-writable directory
    severity: high
    path: ["/tmp/**/*.so*", "/dev/shm/**/*.so*", "/var/tmp/**/*.so*"]
    result: success
  - name: directory_opens_by_shells
    description: directories listed by shells
    severity: info
    access: directory
    comm: [$shells]
"#,
    );
    for i in 0..40 {
        let path = match i % 4 {
            0 => format!("/etc/app{i}/secret.key"),
            1 => format!("/root/.config/tool{i}/token"),
            2 => format!("/home/*/.local/share/app{i}/**"),
            _ => format!("/opt/vendor{i}/"),
        };
        y.push_str(&format!(
            "  - name: watch_{i}\n    description: watched file {i}\n    severity: medium\n    path: [\"{path}\"]\n    not_comm: [backup{i}]\n"
        ));
    }
    y
}

/// 50 rules that nothing in the workload matches.
fn quiet_set() -> String {
    let mut y = String::from("rules:\n");
    for i in 0..50 {
        y.push_str(&format!(
            "  - name: quiet_{i}\n    description: d\n    severity: low\n    path: [\"/nonexistent/{i}/**\", /srv/none{i}]\n    comm: [nobody{i}]\n"
        ));
    }
    y
}

/// Counts bytes written; the alerts are formatted but not kept.
struct Sink(u64);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("at least one run"))
}

fn main() {
    let n: u64 = std::env::var("OF_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let runs: usize = std::env::var("OF_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");

    let t = Instant::now();
    let mut w = common::Workload::new(42);
    let mut writer = Writer::open(&dir, RotateConfig::default()).expect("open store");
    for _ in 0..n {
        writer.append(&mut w.next_event()).expect("append");
    }
    let summary = writer.close().expect("close");
    println!(
        "store: {} events in {} segments, built in {:.1} s",
        summary.events,
        summary.segments_sealed,
        t.elapsed().as_secs_f64()
    );

    let reader = Reader::open(&dir).expect("open reader");
    let range = TimeRange::default();

    let (scan_s, scanned) = best_of(runs, || {
        let stats = reader.scan(&range, |_| ControlFlow::Continue(()));
        assert!(stats.errors.is_empty(), "{:?}", stats.errors);
        stats.events_in_range
    });
    println!(
        "bare scan (decompress + decode, no-op closure): {:.2} s, {:.2} M events/s",
        scan_s,
        scanned as f64 / scan_s / 1e6
    );

    for (label, yaml) in [
        ("50-rule set", rule_set()),
        ("50 rules matching nothing", quiet_set()),
    ] {
        let set = RuleSet::from_yaml("bench.yaml", &yaml).expect("bench rules load");
        assert_eq!(set.rules().len(), 50);
        let (s, (alerts, bytes)) = best_of(runs, || {
            let mut engine = set.engine();
            let mut sink = Sink(0);
            let mut alerts = 0u64;
            let stats = reader.scan(&range, |ev| {
                engine.eval(ev, |a| {
                    alerts += 1;
                    let _ = writeln!(sink, "{}", a.to_json_line());
                });
                ControlFlow::Continue(())
            });
            assert_eq!(stats.events_in_range, scanned);
            (alerts, sink.0)
        });
        // What `replay` runs: the same engine behind the Alerter (hosts per segment, throttling,
        // summaries), over the same scan.
        let (sa, alerted) = best_of(runs, || {
            let mut alerter = Alerter::new(&set);
            let mut sink = Sink(0);
            let mut alerts = 0u64;
            let stats = open_forensics::query::replay::alerts(
                &mut alerter,
                &reader,
                &range,
                // Every event, as the engine's run above: the same work compared.
                &open_forensics::need::Need::all(),
                |_| {},
                |a| {
                    alerts += 1;
                    let _ = writeln!(sink, "{}", a.to_json_line());
                    ControlFlow::Continue(())
                },
            );
            assert_eq!(stats.events_in_range, scanned);
            alerts
        });
        assert_eq!(alerted, alerts);
        println!(
            "replay through the Alerter, {label}: {:.2} s, {:.2} M events/s; engine-only time / Alerter time = {:.2}",
            sa,
            scanned as f64 / sa / 1e6,
            s / sa
        );
        if std::env::var("OF_BENCH_PER_RULE").is_ok() {
            let mut per: std::collections::BTreeMap<String, u64> = Default::default();
            let mut engine = set.engine();
            reader.scan(&range, |ev| {
                engine.eval(ev, |a| *per.entry(a.rule.name.clone()).or_default() += 1);
                ControlFlow::Continue(())
            });
            println!("{per:?}");
        }
        println!(
            "replay, {label}: {:.2} s, {:.2} M events/s, {alerts} alerts ({:.1} MB of JSON lines); \
             bare scan / replay = {:.2} (target >= 0.5)",
            s,
            scanned as f64 / s / 1e6,
            bytes as f64 / 1e6,
            scan_s / s
        );
    }

    // The pipeline's side of alert delivery: formatting alone vs `Outputs::send` to three outputs
    // that never take anything (an HTTP port that never answers, a program that never reads, a
    // full queue): sending must cost about the formatting, never a wait.
    let set = RuleSet::from_yaml("bench.yaml", &rule_set()).expect("bench rules load");
    let mut alerts: Vec<open_forensics::event::Event> = Vec::new();
    let mut engine = set.engine();
    reader.scan(&range, |ev| {
        if alerts.len() < 200_000 {
            let mut hit = false;
            engine.eval(ev, |_| hit = true);
            if hit {
                alerts.push(ev.clone());
            }
        }
        ControlFlow::Continue(())
    });
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/x", silent.local_addr().expect("addr"));
    let outputs = Outputs::start(
        &[
            Target::Http {
                url,
                batch: 100,
                timeout: std::time::Duration::from_secs(60),
                format: HttpFormat::Ndjson,
            },
            Target::Program("exec sleep 600".into()),
            Target::Program("exec sleep 600".into()),
        ],
        1000,
    )
    .expect("outputs");
    let (fmt_s, n_fmt) = best_of(runs, || {
        let mut a = Alerter::new(&set);
        let mut sink = Sink(0);
        let mut n = 0u64;
        for ev in &alerts {
            a.eval(ev, |r| {
                n += 1;
                let _ = writeln!(sink, "{}", r.to_json_line());
            });
        }
        n
    });
    let (send_s, n_send) = best_of(runs, || {
        let mut a = Alerter::new(&set);
        let mut n = 0u64;
        for ev in &alerts {
            a.eval(ev, |r| {
                n += 1;
                outputs.send(r);
            });
        }
        n
    });
    assert_eq!(n_fmt, n_send);
    let (_, states) = outputs.close_with_states();
    let dropped: u64 = states.iter().map(|s| s.dropped).sum();
    println!(
        "alert delivery, {n_send} alerts to 3 dead outputs: format only {:.0} ns/alert, send {:.0} ns/alert; send / format = {:.2}; {dropped} dropped (counted)",
        fmt_s / n_fmt as f64 * 1e9,
        send_s / n_send as f64 * 1e9,
        send_s / fmt_s
    );
}
