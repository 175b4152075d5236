//! The shipped detections under evasion (issue #25, items 3 and 4): `fixtures/evasions.sh` reads
//! /etc/shadow while passing for a password tool in every way it knows, under a live recorder
//! running `fixtures/rules/detections.yaml`; `shadow_read` must fire on each, and not on the real
//! `/usr/bin/passwd`. Capture is system-wide: alerts are matched to the pids the script reports.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use crate::helpers::{self, fixtures_dir, TempStore};
use crate::recorder::Recorder;

#[test]
fn shipped_shadow_read_fires_on_every_evasion_of_its_allow_list() {
    let test = "evasion::shipped_shadow_read_fires_on_every_evasion_of_its_allow_list";
    if !helpers::live_capture_available(test) {
        return;
    }
    let store = TempStore::new();
    let rules_file = fixtures_dir().join("rules/detections.yaml");
    let rules = rules_file.to_str().expect("utf-8");
    let alerts = store.path("alerts.jsonl");
    let pids_file = store.path("pids");
    let rec = Recorder::alerting(&store, &rules_file, &alerts);
    let out = Command::new("sh")
        .arg(fixtures_dir().join("evasions.sh"))
        .env("OF_EVASION_PIDS", &pids_file)
        .stdin(Stdio::null())
        .output()
        .expect("run fixtures/evasions.sh");
    rec.stop();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "evasions.sh: {out:?}"
    );
    let pids: BTreeMap<String, u64> = std::fs::read_to_string(&pids_file)
        .expect("pids")
        .lines()
        .map(|l| {
            let (name, pid) = l.split_once(' ').expect("NAME PID");
            (name.to_owned(), pid.parse().expect("a pid"))
        })
        .collect();
    assert_eq!(pids.len(), 6, "{pids:?}");

    let live = std::fs::read_to_string(&alerts).expect("alerts file");
    let fired: Vec<u64> = live
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("alert json"))
        .filter(|a| a["rule"] == "shadow_read")
        .filter_map(|a| a["pid"].as_u64())
        .collect();
    let mut missed = Vec::new();
    for (name, pid) in &pids {
        let control = name.starts_with("control");
        if fired.contains(pid) == control {
            missed.push(name.as_str());
        }
    }
    assert!(
        missed.is_empty(),
        "shadow_read got these wrong (fired on a control, or missed an evasion): {missed:?}\n{pids:?}\n{live}"
    );
    // Replay raises the same alerts, byte for byte.
    assert_eq!(store.ok(&["replay", "--rules", rules]), live);
}
