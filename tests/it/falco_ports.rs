//! Falco's 26 file-open rules, ported (`fixtures/rules/falco_ports.yaml`, docs/falco.md): each
//! fires on the recorded scenario `falco` (`fixtures/falco.sh`). Quiet on the baselines and the
//! golden alerts are `rules test`'s and `fixtures.rs`'s to enforce.

use std::collections::BTreeSet;

use crate::helpers::{cmd_at, fixtures_dir};

/// Our name of each of Falco's rules that look at file opens.
const PORTS: [&str; 26] = [
    "directory_traversal_monitored_file_read",
    "read_sensitive_file_trusted_after_startup",
    "read_sensitive_file_untrusted",
    "clear_log_activities",
    "release_agent_container_escape",
    "modify_shell_configuration_file",
    "schedule_cron_jobs",
    "read_ssh_information",
    "create_files_below_dev",
    "read_environ_in_container",
    "exfiltrating_artifacts_via_kubectl_cp",
    "adding_ssh_keys_to_authorized_keys",
    "backdoored_library_loaded_into_sshd",
    "delete_or_rename_shell_history",
    "read_shell_configuration_file",
    "update_package_repository",
    "write_below_binary_dir",
    "write_below_monitored_dir",
    "write_below_etc",
    "write_below_root",
    "write_below_rpm_database",
    "create_hidden_files_or_directories",
    "container_drift_open_create",
    "modify_container_entrypoint",
    "privileged_container_device_access",
    "container_access_to_host_sensitive_paths",
];

#[test]
fn every_falco_port_fires_on_the_falco_scenario() {
    let fixtures = fixtures_dir();
    let out = cmd_at(
        &fixtures.join("segments/falco"),
        &[
            "replay",
            "--rules",
            fixtures
                .join("rules/falco_ports.yaml")
                .to_str()
                .expect("utf-8"),
            "--format",
            "jsonl",
        ],
    )
    .output()
    .expect("run replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fired: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .filter_map(|a| a["rule"].as_str().map(str::to_owned))
        .collect();
    let silent: Vec<&str> = PORTS
        .iter()
        .copied()
        .filter(|r| !fired.contains(*r))
        .collect();
    assert!(
        silent.is_empty(),
        "these Falco ports did not fire on fixtures/segments/falco: {silent:?}"
    );
}

/// The rule sets we ship load together, as a user combining them would (`full.yaml` is the
/// format's showcase, not a set to deploy): the Falco ports' lists once clashed with
/// detections.yaml's (`shell_exes`, `sshd_exes`, `package_manager_exes`) and refused to load
/// beside it; they are all named `falco_…` now.
#[test]
fn the_shipped_rule_sets_load_together() {
    let rules = fixtures_dir().join("rules");
    let mut files: Vec<String> = std::fs::read_dir(&rules)
        .expect("fixtures/rules")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "full.yaml"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let mut args = vec!["rules", "check"];
    args.extend(files.iter().map(String::as_str));
    let store = tempfile::tempdir().expect("tempdir");
    let out = cmd_at(store.path(), &args).output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
