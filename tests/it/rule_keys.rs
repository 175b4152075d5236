//! The rule keys `parent_cmdline`, `cwd`, `tty`, `proc_age` and `raw_path` end to end: a store of
//! opens by processes with and without a terminal, parent arguments and age, through relative
//! and traversing paths, replayed, and compiled by `rules sql` to the same alerts on DuckDB and
//! Spark over the Parquet export.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use open_forensics::bytes::Str;
use open_forensics::event::Event;
use open_forensics::process::{ProcSource, Process};
use open_forensics::store::{RotateConfig, Writer};

use crate::helpers::{event, TempStore};
use crate::lifecycle_rules::{key, lines, of, ok, rules_sql_alerts};

const SEC: i64 = 1_000_000_000;

const KEY_RULES: &str = r#"
rules:
  - name: piped_from_a_shell
    description: parent_cmdline, glob and regex
    severity: high
    parent_cmdline: ['bash -c *curl*', 're:\|\s*sh$']
  - name: interactive_secret_read
    description: a terminal's process reads a key (kubectl cp wants a tty)
    severity: medium
    tty: 'pts/*'
    path: '/etc/ssh/**'
  - name: daemon_without_terminal
    description: tty none
    severity: low
    tty: none
    path: /etc/ssh/
  - name: read_after_startup
    description: Falco's "trusted after startup"
    severity: high
    path: /etc/shadow
    proc_age: '>5s'
    not_tty: none
  - name: young_reader
    description: not_proc_age
    severity: info
    not_proc_age: ['>=1s']
    path: /etc/
  - name: directory_traversal
    description: Falco's fd.nameraw
    severity: critical
    raw_path: ['**/../**', 're:^\.\./']
    not_raw_path: 'i:**/SKIP/**'
  - name: outside_home
    description: not_cwd holds where cwd is elsewhere or unknown
    severity: info
    not_cwd: /home/
    path: /etc/passwd
  - name: in_home
    description: cwd positive
    severity: info
    cwd: '/home/**'
"#;

/// A process image started at `start_ns`, child of a bash that ran `parent_args`.
fn image(
    pid: u32,
    start_ns: i64,
    args: &[&str],
    parent_args: &[&str],
    tty: Option<&str>,
) -> Arc<Process> {
    let argv = |a: &[&str]| {
        (!a.is_empty()).then(|| {
            let mut v = a.join("\0").into_bytes();
            v.push(0);
            Str::new(v)
        })
    };
    let parent = Process {
        exe: Some(Str::from("/usr/bin/bash")),
        argv: argv(parent_args),
        source: ProcSource::Exec,
        exec_ns: Some(start_ns - 10),
        ..Process::from_event(pid - 1, start_ns - 20, 1, Str::from("bash"), 1000, 1000)
    };
    Arc::new(Process {
        exe: Some(Str::from(format!("/usr/bin/{}", args[0]).as_str())),
        argv: argv(args),
        tty: tty.map(Str::from),
        cwd: (pid == 200).then(|| Str::from("/home/ann")),
        parent: Some(Arc::new(parent)),
        source: ProcSource::Exec,
        exec_ns: Some(start_ns),
        ..Process::from_event(pid, start_ns, pid - 1, Str::from(args[0]), 1000, 1000)
    })
}

/// Opens by those processes at `i` (µs steps), passing `raw` for `path`.
fn opened(i: i64, p: &Arc<Process>, path: &str, raw: &str) -> Event {
    let e = event(i, path);
    Event {
        pid: p.pid,
        tid: p.pid,
        ppid: p.ppid,
        comm: p.comm.clone(),
        raw_path: Str::from(raw),
        process: Some(p.clone()),
        ..e
    }
}

fn store() -> TempStore {
    let s = TempStore::new();
    let t0 = event(0, "/").ts_ns;
    let curl = image(
        200,
        t0 - 30 * SEC,
        &["curl", "-sO", "x"],
        &["bash", "-c", "curl -s x | sh"],
        Some("pts/2"),
    );
    let sshd = image(300, t0 - 3600 * SEC, &["sshd", "-D"], &["bash", "-l"], None);
    let young = image(400, t0 - SEC / 2, &["cat", "f"], &[], Some("tty1"));
    let old_tty = image(
        500,
        t0 - 10 * SEC,
        &["less", "f"],
        &["bash", "-i"],
        Some("pts/0"),
    );
    let mut events = vec![
        opened(1, &curl, "/etc/shadow", "/etc/shadow"),
        opened(2, &curl, "/etc/ssh/ssh_config", "../../etc/ssh/ssh_config"),
        opened(3, &sshd, "/etc/ssh/sshd_config", "/etc/ssh/sshd_config"),
        opened(4, &sshd, "/etc/shadow", "/etc/shadow"),
        opened(5, &young, "/etc/passwd", "passwd"),
        opened(6, &young, "/var/www/x", "/var/www/html/../x"),
        opened(7, &old_tty, "/etc/shadow", "shadow"),
        opened(8, &old_tty, "/srv/skip/y", "/srv/skip/../skip/y"),
        opened(9, &old_tty, "/etc/passwd", "./../etc/passwd"),
        // No lineage: every lineage key's positive form fails, its `not_` form holds.
        event(10, "/etc/passwd"),
        event(11, "/etc/ssh/x"),
    ];
    let mut w = Writer::open(&s.dir, RotateConfig::default()).expect("writer");
    for e in &mut events {
        w.append(e).expect("append");
    }
    w.close().expect("close");
    s
}

/// `rules sql` over each store's Parquet export returns exactly `replay`'s alerts, on every
/// engine installed (`test` names the caller where an engine is missing); returns the rules that
/// fired.
pub(crate) fn assert_sql_equals_replay(
    s: &TempStore,
    rules: &str,
    stores: &[(&str, PathBuf)],
    test: &str,
) -> BTreeSet<String> {
    let mut fired = BTreeSet::new();
    let mut want = Vec::new();
    let mut jobs = Vec::new();
    for (name, store) in stores {
        let alerts = lines(&ok(&mut of(
            store,
            &["replay", "--rules", rules, "--format", "jsonl"],
        )));
        fired.extend(
            alerts
                .iter()
                .map(|a| a["rule"].as_str().unwrap().to_owned()),
        );
        let mut keys: Vec<String> = alerts.iter().map(key).collect();
        keys.sort();
        want.push(keys);
        let parquet = s.path(&format!("{name}.parquet"));
        ok(of(store, &["export", "--format", "parquet", "--out"]).arg(&parquet));
        jobs.push((name, parquet));
    }
    for engine in ["duckdb", "spark"] {
        let Some(found) = rules_sql_alerts(s, rules, engine, &jobs, test) else {
            continue;
        };
        for ((keys, alerts), (name, _)) in want.iter().zip(&found).zip(&jobs) {
            let mut got: Vec<String> = alerts.iter().map(key).collect();
            got.sort();
            assert_eq!(&got, keys, "{engine} over {name}");
        }
    }
    fired
}

#[test]
fn process_and_raw_path_keys_fire_on_replay_and_rules_sql_equals_replay() {
    let s = store();
    let rules = s.path("keys.yaml");
    std::fs::write(&rules, KEY_RULES).unwrap();
    let rules = rules.to_string_lossy().into_owned();
    let alerts = lines(&ok(&mut of(
        &s.dir,
        &["replay", "--rules", &rules, "--format", "jsonl"],
    )));
    let got: BTreeSet<(String, u64)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_owned(),
                a["pid"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: BTreeSet<(String, u64)> = [
        ("piped_from_a_shell", 200),
        ("interactive_secret_read", 200),
        ("daemon_without_terminal", 300),
        ("read_after_startup", 200),
        ("read_after_startup", 500),
        ("young_reader", 400),
        ("young_reader", 1003),
        ("young_reader", 1004),
        ("directory_traversal", 200),
        ("directory_traversal", 400),
        ("directory_traversal", 500),
        ("outside_home", 400),
        ("outside_home", 500),
        ("outside_home", 1003),
        ("in_home", 200),
    ]
    .iter()
    .map(|(r, p)| (r.to_string(), *p))
    .collect();
    assert_eq!(got, want);
    let traversals: Vec<&str> = alerts
        .iter()
        .filter(|a| a["rule"] == "directory_traversal")
        .map(|a| a["matched"].as_str().unwrap())
        .collect();
    assert_eq!(traversals, ["**/../**", "**/../**", "**/../**"]);
    let fired = assert_sql_equals_replay(
        &s,
        &rules,
        &[("keys", s.dir.clone())],
        "process_and_raw_path_keys_fire_on_replay_and_rules_sql_equals_replay",
    );
    assert_eq!(fired.len(), 8, "{fired:?}");
}
