//! `proc PID --tree` and `query --tree` (issue #28): the process tree of a recorded fixture, its
//! JSON lines, the cap's notice and the errors.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::helpers::{fixtures_dir, TempStore};

/// A copy of the `lineage` fixture: a workload (7899) that runs a renamed nginx (7903) whose shell
/// (7907) runs `cat /etc/passwd` (7908) and `id` (7909), among others.
fn lineage() -> TempStore {
    let s = TempStore::new();
    std::fs::create_dir(&s.dir).unwrap();
    std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for e in std::fs::read_dir(fixtures_dir().join("segments/lineage")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), s.dir.join(e.file_name())).unwrap();
    }
    s
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// pid → its JSON line.
fn by_pid(nodes: &[Value]) -> BTreeMap<u64, &Value> {
    nodes
        .iter()
        .map(|n| (n["pid"].as_u64().unwrap(), n))
        .collect()
}

/// Events of `pid` by SQL, to check the tree's counts against.
fn count(s: &TempStore, pid: u64, cond: &str) -> u64 {
    let sql = format!("SELECT count(*) AS n FROM events WHERE pid = {pid} AND {cond}");
    let out = s.ok(&["query", "--sql", &sql, "--format", "jsonl"]);
    lines(&out)[0]["n"].as_u64().unwrap()
}

#[test]
fn proc_tree_nests_the_descendants_under_the_ancestor_chain_with_their_counts() {
    let s = lineage();
    let out = s.ok(&["proc", "7903", "--tree", "--format", "jsonl"]);
    let nodes = lines(&out);
    // Every key, in order (docs/query.md lists them).
    let keys: Vec<&str> = nodes[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "depth",
            "pid",
            "ppid",
            "start",
            "exit",
            "exit_code",
            "comm",
            "exe",
            "argv",
            "user",
            "uid",
            "container_id",
            "context",
            "opens",
            "failed",
            "writes",
            "operations",
            "matched",
            "alerts",
            "rules"
        ]
    );
    let p = by_pid(&nodes);
    // The chain above is context; the process and its descendants are not.
    assert_eq!(p[&7899]["context"], true);
    assert_eq!(p[&7903]["context"], false);
    assert!(
        !p.contains_key(&7910),
        "a sibling of 7903 is not in its tree"
    );
    let depth = |pid: u64| p[&pid]["depth"].as_u64().unwrap();
    assert_eq!(depth(7903), depth(7899) + 1);
    assert_eq!(depth(7907), depth(7903) + 1);
    assert_eq!(
        (depth(7908), depth(7909)),
        (depth(7907) + 1, depth(7907) + 1)
    );
    for (child, parent) in [(7903, 7899), (7907, 7903), (7908, 7907), (7909, 7907)] {
        assert_eq!(p[&child]["ppid"], parent, "{child}");
    }
    assert_eq!(p[&7908]["argv"], serde_json::json!(["cat", "/etc/passwd"]));
    assert_eq!(p[&7908]["exe"], "/usr/bin/cat");
    assert_eq!(p[&7908]["user"], "root");
    // Depth first: a node's subtree follows it.
    let order: Vec<u64> = nodes.iter().map(|n| n["pid"].as_u64().unwrap()).collect();
    let at = |pid| order.iter().position(|&q| q == pid).unwrap();
    assert!(at(7899) < at(7903) && at(7903) < at(7907) && at(7907) < at(7908));
    for pid in [7903, 7907, 7908, 7909] {
        assert_eq!(p[&pid]["opens"], count(&s, pid, "op = 'open'"), "{pid}");
        assert_eq!(p[&pid]["failed"], count(&s, pid, "ret < 0"), "{pid}");
    }
    assert!(p[&7909]["failed"].as_u64().unwrap() > 0);
}

#[test]
fn proc_tree_draws_branches_and_counts_alerts_per_process() {
    let s = lineage();
    let rules = fixtures_dir().join("rules/detections.yaml");
    let out = s
        .cmd(&["proc", "7899", "--tree", "--format", "table", "--rules"])
        .arg(&rules)
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("  PID  USER  OPENS  FAILED  OPS  ALERTS  PROCESS\n"),
        "{text}"
    );
    assert!(text.contains("│  └─ /usr/bin/dash"), "{text}");
    assert!(text.contains("├─ /usr/bin/cat /etc/passwd"), "{text}");
    assert!(
        text.lines().all(|l| l.chars().count() <= 100),
        "lines fit the width:\n{text}"
    );
    // The alerts per process add up to replay's, for the processes of the tree.
    let tree = lines(&s.ok(&[
        "proc",
        "7899",
        "--tree",
        "--format",
        "jsonl",
        "--rules",
        rules.to_str().unwrap(),
    ]));
    let pids: Vec<&Value> = tree.iter().map(|n| &n["pid"]).collect();
    let replayed = lines(&s.ok(&["replay", "--rules", rules.to_str().unwrap()]))
        .into_iter()
        .filter(|a| a["event"] == "alert" && pids.contains(&&a["pid"]))
        .count() as u64;
    let counted: u64 = tree.iter().map(|n| n["alerts"].as_u64().unwrap()).sum();
    assert!(replayed > 0);
    assert_eq!(counted, replayed);
}

#[test]
fn tree_cap_keeps_the_first_processes_and_says_how_many_it_cut() {
    let s = lineage();
    let out = s.run(&[
        "proc",
        "7899",
        "--tree",
        "--format",
        "jsonl",
        "--max-processes",
        "3",
    ]);
    assert!(out.status.success());
    assert_eq!(lines(&String::from_utf8_lossy(&out.stdout)).len(), 3);
    let err = String::from_utf8_lossy(&out.stderr);
    let notice: Value = err
        .lines()
        .find(|l| l.contains("tree_cut"))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no notice: {err}"));
    assert_eq!(notice["shown"], 3);
    assert_eq!(notice["max_processes"], 3);
    let full = lines(&s.ok(&["proc", "7899", "--tree", "--format", "jsonl"])).len() as u64;
    assert_eq!(notice["cut"].as_u64().unwrap(), full - 3);
}

#[test]
fn query_ancestor_tree_roots_at_the_ancestor_with_matched_counts() {
    let s = lineage();
    let out = s.ok(&[
        "query",
        "--ancestor",
        "/tmp/*/nginx",
        "--path",
        "/etc/**",
        "--tree",
        "--format",
        "jsonl",
    ]);
    let nodes = lines(&out);
    let p = by_pid(&nodes);
    assert_eq!(
        p.keys().copied().collect::<Vec<_>>(),
        [7903, 7907, 7908, 7909]
    );
    assert_eq!(p[&7903]["depth"], 0);
    assert_eq!(p[&7908]["depth"], 2);
    for pid in [7903, 7907, 7908, 7909] {
        assert_eq!(
            p[&pid]["matched"],
            count(&s, pid, "path GLOB '/etc/*'"),
            "{pid}"
        );
    }
}

#[test]
fn proc_tree_of_an_unknown_pid_is_an_error_naming_it() {
    let s = lineage();
    let out = s.run(&["proc", "424242", "--tree"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no process 424242 in the store"), "{err}");
    let out = s.run(&["query", "--tree", "--sql", "top_paths"]);
    assert_eq!(out.status.code(), Some(2), "--tree is not for SQL");
}
