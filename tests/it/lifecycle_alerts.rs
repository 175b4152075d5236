//! The shipped detections over the file's whole story, live (issue #27): `fixtures/lifecycle.sh`
//! runs every operation by its ordinary tool under a recorder running
//! `fixtures/rules/detections.yaml`. The three write rules that `sed -i` and `mv` used to evade
//! must fire on their renames, each new rule on its operation, and `replay` must raise the same
//! alerts byte for byte. Capture is system-wide: alerts are kept when the script's shell is the
//! alerting process or one of its ancestors.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::{self, fixtures_dir, TempStore};
use crate::recorder::Recorder;

#[test]
fn sed_i_and_mv_fire_the_shipped_write_rules_live_and_on_replay() {
    let test = "lifecycle_alerts::sed_i_and_mv_fire_the_shipped_write_rules_live_and_on_replay";
    if !helpers::live_capture_available(test) {
        return;
    }
    let store = TempStore::new();
    let rules_file = fixtures_dir().join("rules/detections.yaml");
    let alerts = store.path("alerts.jsonl");
    let rec = Recorder::alerting(&store, &rules_file, &alerts);
    // `sh -c 'echo $$; exec sh lifecycle.sh'`: the pid printed is the script's shell.
    let script = fixtures_dir().join("lifecycle.sh");
    let out = Command::new("sh")
        .arg("-c")
        .arg("echo $$; exec sh \"$0\"")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .expect("run fixtures/lifecycle.sh");
    rec.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "lifecycle.sh: {out:?}"
    );
    let root: u64 = stdout.trim().parse().expect("the script's pid");

    let live = std::fs::read_to_string(&alerts).expect("alerts file");
    let ours = |a: &Value| {
        a["pid"].as_u64() == Some(root)
            || a["ancestors"]
                .as_array()
                .is_some_and(|up| up.iter().any(|p| p["pid"].as_u64() == Some(root)))
    };
    let fired: BTreeSet<(String, String)> = live
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("alert json"))
        .filter(ours)
        .map(|a| {
            (
                a["rule"].as_str().unwrap_or_default().to_owned(),
                a["op"].as_str().unwrap_or("open").to_owned(),
            )
        })
        .collect();
    // Each (rule, op) the story must raise: the evaded write rules on renames, the new rules on
    // the operations they watch.
    for want in [
        ("authorized_keys_write", "rename"),
        ("ld_preload_tamper", "rename"),
        ("cron_persistence", "rename"),
        ("log_deleted_or_truncated", "truncate"),
        ("log_deleted_or_truncated", "unlink"),
        ("log_moved_away", "rename"),
        ("setuid_bit_set", "chmod"),
        ("shell_history_tampered", "unlink"),
        ("shell_history_moved_away", "rename"),
        ("system_binary_replaced", "rename"),
        ("tmp_program_changes_files", "unlink"),
    ] {
        assert!(
            fired.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} did not fire; fired: {fired:?}\n{live}"
        );
    }
    // Replay raises the same alerts, byte for byte.
    let rules = rules_file.to_str().expect("utf-8");
    assert_eq!(store.ok(&["replay", "--rules", rules]), live);
}
