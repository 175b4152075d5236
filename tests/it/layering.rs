//! Rule layering (issue #30): a site file after the shipped rules changes them by name
//! (`override:`, `enabled:`, list `append:`), and every command sees the effective rules.

use std::process::Command;

use serde_json::{json, Value};

use crate::fleet::engine_available;
use crate::helpers::{fixtures_dir, line_after, TempStore};
use crate::history::fixture_copy;
use crate::lifecycle_rules::key;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn fx(rel: &str) -> String {
    fixtures_dir().join(rel).to_string_lossy().into_owned()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The shipped detections with the example site file after them.
fn layered() -> [String; 2] {
    [
        fx("rules/detections.yaml"),
        fx("rules/layers/local_overrides.yaml"),
    ]
}

/// `enabled: false` of a shipped rule removes its alerts and leaves every other alert byte for byte
/// as the golden file has it; a severity `override:` changes only that field of that rule's.
#[test]
fn local_overrides_disable_and_retune_shipped_rules_on_replay() {
    let s = fixture_copy("attack");
    let [shipped, local] = layered();
    let got = s.ok(&["replay", "--rules", &shipped, &local, "--format", "jsonl"]);
    let golden = std::fs::read_to_string(fx("expected/detections/attack.jsonl")).unwrap();
    assert!(golden.contains("\"rule\":\"browser_credentials_read\""));
    let want: String = golden
        .lines()
        .filter(|l| !l.contains("\"rule\":\"browser_credentials_read\""))
        .map(|l| {
            if l.contains("\"rule\":\"systemd_unit_write\"") {
                l.replacen("\"severity\":\"critical\"", "\"severity\":\"high\"", 1)
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert!(
        want.contains("\"rule\":\"systemd_unit_write\"") && want.contains("\"severity\":\"high\"")
    );
    assert_eq!(got, want);
}

/// `rules check` names, for each changed rule, where every key of the effective rule was written;
/// an appended key names both files.
#[test]
fn rules_check_shows_where_each_part_of_an_overridden_rule_came_from() {
    let s = TempStore::new();
    let [shipped, local] = layered();
    let rows = lines(&s.ok(&["rules", "check", &shipped, &local, "--format", "jsonl"]));
    let row = |name: &str| rows.iter().find(|r| r["rule"] == name).unwrap().clone();
    let shadow = row("shadow_read");
    let (except, path) = (
        line_after(&shipped, "name: shadow_read", "except:") + 1,
        line_after(&shipped, "name: shadow_read", "path:"),
    );
    assert_eq!(
        shadow["layers"]["except"],
        json!([format!("{shipped}:{except}:7"), format!("{local}:28:7"),])
    );
    assert_eq!(
        shadow["layers"]["path"],
        json!([format!("{shipped}:{path}:11")])
    );
    assert!(shadow["conditions"]
        .as_str()
        .unwrap()
        .ends_with("except {exe: [/usr/local/sbin/vault-agent]}"));
    let unit = row("systemd_unit_write");
    assert_eq!(unit["severity"], "high");
    assert_eq!(
        unit["layers"]["severity"],
        json!([format!("{local}:22:15")])
    );
    let browser = row("browser_credentials_read");
    assert_eq!(browser["enabled"], false);
    assert_eq!(
        browser["layers"]["enabled"],
        json!([format!("{local}:17:14")])
    );
    assert_eq!(row("ssh_private_key_read")["layers"], Value::Null);
    // Alone, the shipped file has no layers at all.
    let alone = lines(&s.ok(&["rules", "check", &shipped, "--format", "jsonl"]));
    assert!(alone.iter().all(|r| r["layers"].is_null()));
}

/// Errors name the file, line and column, and what to do; exit 2.
#[test]
fn layering_errors_are_positioned_and_exit_2() {
    let s = TempStore::new();
    let shipped = fx("rules/detections.yaml");
    let cases = [
        (
            "rules:\n  - name: no_such_rule\n    override: {severity: replace}\n    severity: low\n",
            ":2:11: rules[0].name: no rule `no_such_rule` to override (defined rules: authorized_keys_write, browser_credentials_read,",
        ),
        (
            "rules:\n  - name: shadow_read\n    override: {pth: append}\n    path: /x\n",
            ":3:21: rules[0].override.pth: unknown key `pth` in `override:`: a rule has no such key",
        ),
        (
            "rules:\n  - name: shadow_read\n    description: d\n    severity: low\n    path: /x\n",
            ":2:11: rules[0].name: duplicate rule name `shadow_read` (first defined at ",
        ),
        (
            "rules:\n  - name: shadow_read\n    override: {severity: append}\n    severity: low\n",
            ":3:26: rules[0].override.severity: `severity` can only be replaced",
        ),
        (
            "lists:\n  no_such_list: {append: true, items: [x]}\nrules:\n  - {name: shadow_read, enabled: false}\n",
            ":2:17: lists.no_such_list: no list `no_such_list` to append to (defined lists: ",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let local = s.path(&format!("local{i}.yaml"));
        std::fs::write(&local, text).unwrap();
        let local = local.to_str().unwrap();
        for cmd in [
            &["rules", "check"][..],
            &["rules", "sql", "--dialect", "duckdb"],
        ] {
            let mut args = cmd.to_vec();
            args.extend([shipped.as_str(), local]);
            let out = s.run(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(&format!("{local}{want}")), "{want}\n{err}");
        }
    }
    // The duplicate's message says how to change a rule instead.
    let out = s.run(&[
        "rules",
        "check",
        &shipped,
        s.path("local2.yaml").to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("give the keys to change in `override:`"),
        "{out:?}"
    );
}

/// `rules sql` compiles the effective rules: over the Parquet export of the attack fixture, the
/// layered query returns exactly the layered replay's alerts.
#[test]
fn rules_sql_of_overridden_rules_equals_replay() {
    let s = fixture_copy("attack");
    let [shipped, local] = layered();
    let mut want: Vec<String> =
        lines(&s.ok(&["replay", "--rules", &shipped, &local, "--format", "jsonl"]))
            .iter()
            .map(key)
            .collect();
    want.sort();
    assert!(want.len() >= 5, "{want:?}");
    assert!(want
        .iter()
        .any(|k| k.contains("systemd_unit_write") && k.contains("\"high\"")));
    let parquet = s.path("parquet");
    s.ok(&[
        "export",
        "--format",
        "parquet",
        "--out",
        parquet.to_str().unwrap(),
    ]);
    for engine in ["duckdb", "spark"] {
        if !engine_available(engine, "rules_sql_of_overridden_rules_equals_replay") {
            continue;
        }
        let sql = s.path(&format!("q.{engine}.sql"));
        std::fs::write(
            &sql,
            s.ok(&["rules", "sql", &shipped, &local, "--dialect", engine]),
        )
        .unwrap();
        let out = s.path(&format!("{engine}.jsonl"));
        let manifest = s.path(&format!("{engine}.json"));
        std::fs::write(
            &manifest,
            json!({"jobs": [{"name": "layered", "parquet": parquet, "sql": sql, "out": out}]})
                .to_string(),
        )
        .unwrap();
        let status = Command::new("python3")
            .arg(format!("{ROOT}/tests/fleet/run_sql.py"))
            .arg(engine)
            .arg(&manifest)
            .status()
            .unwrap();
        assert!(status.success(), "{engine}");
        let mut got: Vec<String> = lines(&std::fs::read_to_string(&out).unwrap())
            .iter()
            .map(key)
            .collect();
        got.sort();
        assert_eq!(got, want, "{engine}");
    }
}
