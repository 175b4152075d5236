//! Issue #30: `export --format ocsf|ecs|timesketch`, the same formats for alerts (`replay
//! --format`, `record --alerts-format`), checked line by line against the published schemas:
//! OCSF 1.3.0 and ECS 8.17.0, vendored as excerpts under tests/data (see its README), and
//! Timesketch's three required fields. Every kept fixture is exported and replayed.

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value};

use open_forensics::alerts::{Outputs, Target};
use open_forensics::output::foreign::LineFormat;
use open_forensics::rules::{Alerter, RuleSet};
use open_forensics::timespec::parse_ts;

use crate::helpers::{cmd_at, event, fixtures_dir, scenarios};
use crate::lifecycle_rules::ok;

pub(crate) fn data(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).expect("schema excerpt")).expect("JSON")
}

/// What a command prints for a fixture (it must succeed).
fn printed(scenario: &str, args: &[&str]) -> String {
    ok(&mut cmd_at(
        &fixtures_dir().join("segments").join(scenario),
        args,
    ))
}

/// Every fixture's export and its alerts under the shipped detections, in `format`, as printed:
/// `(SCENARIO.jsonl, its events)` and `(SCENARIO.alerts.jsonl, its alerts)`.
fn every_fixture_printed(format: &str) -> Vec<(String, String)> {
    let rules = fixtures_dir().join("rules/detections.yaml");
    let rules = rules.to_str().expect("path");
    let mut files = Vec::new();
    for s in scenarios() {
        let events = printed(&s, &["export", "--format", format]);
        let alerts = printed(&s, &["replay", "--rules", rules, "--format", format]);
        files.push((format!("{s}.jsonl"), events));
        files.push((format!("{s}.alerts.jsonl"), alerts));
    }
    files
}

/// The events and the alerts of [`every_fixture_printed`], parsed.
fn parsed(files: &[(String, String)]) -> (Vec<Value>, Vec<Value>) {
    let (mut events, mut alerts) = (Vec::new(), Vec::new());
    for (name, text) in files {
        let into = if name.ends_with(".alerts.jsonl") {
            &mut alerts
        } else {
            &mut events
        };
        into.extend(
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}"))),
        );
    }
    assert!(events.len() > 1000, "{} events", events.len());
    assert!(alerts.len() > 10, "{} alerts", alerts.len());
    (events, alerts)
}

fn every_fixture(format: &str) -> (Vec<Value>, Vec<Value>) {
    parsed(&every_fixture_printed(format))
}

/// OCSF: an object against its attributes (required ones present, no unknown one, types and
/// enum ids right), into every object it holds.
pub(crate) struct Ocsf(pub(crate) Value);

impl Ocsf {
    pub(crate) fn check_class(&self, v: &Value, errs: &mut Vec<String>) {
        let uid = v["class_uid"].as_u64().expect("class_uid").to_string();
        let class = &self.0["classes"][&uid];
        assert!(class.is_object(), "class {uid} is not in the excerpt");
        let activity = v["activity_id"].as_u64().expect("activity_id");
        if v["type_uid"].as_u64() != Some(uid.parse::<u64>().unwrap() * 100 + activity) {
            errs.push(format!("type_uid {} for class {uid}", v["type_uid"]));
        }
        if v["category_uid"] != class["category_uid"] {
            errs.push(format!(
                "category_uid {} for class {uid}",
                v["category_uid"]
            ));
        }
        if v["metadata"]["version"] != "1.3.0" {
            errs.push(format!("metadata.version {}", v["metadata"]["version"]));
        }
        self.check(v, &class["attributes"], &uid, errs);
    }

    fn check(&self, v: &Value, attrs: &Value, at: &str, errs: &mut Vec<String>) {
        let Some(obj) = v.as_object() else {
            return errs.push(format!("{at}: not an object"));
        };
        let attrs = attrs.as_object().expect("attributes");
        for (name, a) in attrs {
            if a["requirement"] == "required" && !obj.contains_key(name) {
                errs.push(format!("{at}: required `{name}` missing"));
            }
        }
        for (k, x) in obj {
            let Some(a) = attrs.get(k) else {
                errs.push(format!("{at}: unknown attribute `{k}`"));
                continue;
            };
            let at = format!("{at}.{k}");
            if a["is_array"] == true {
                match x.as_array() {
                    Some(xs) => xs.iter().for_each(|x| self.value(x, a, &at, errs)),
                    None => errs.push(format!("{at}: not an array")),
                }
            } else {
                self.value(x, a, &at, errs);
            }
        }
    }

    fn value(&self, x: &Value, a: &Value, at: &str, errs: &mut Vec<String>) {
        let ty = a["type"].as_str().expect("type");
        if ty == "object" {
            // `unmapped`: any object.
            return if !x.is_object() {
                errs.push(format!("{at}: not an object"))
            };
        }
        if let Some(o) = self.0["objects"].get(ty) {
            return self.check(x, &o["attributes"], at, errs);
        }
        let base = self.0["types"][ty].as_str().unwrap_or(ty);
        let base = self.0["types"][base].as_str().unwrap_or(base);
        let ok = match base {
            "string_t" => x.is_string(),
            "integer_t" | "long_t" => x.is_i64() || x.is_u64(),
            "boolean_t" => x.is_boolean(),
            "float_t" => x.is_number(),
            "json_t" => true,
            other => panic!("{at}: type {other} not handled"),
        };
        if !ok {
            errs.push(format!("{at}: {x} is not a {ty}"));
        }
        if let Some(e) = a["enum"].as_array() {
            if !e.contains(x) {
                errs.push(format!("{at}: {x} is not one of {e:?}"));
            }
        }
    }
}

pub(crate) fn report(what: &str, errs: Vec<String>) {
    let mut errs = errs;
    errs.sort();
    errs.dedup();
    assert!(errs.is_empty(), "{what}:\n{}", errs.join("\n"));
}

#[test]
fn ocsf_export_and_alerts_of_every_fixture_fit_the_ocsf_1_3_0_schema() {
    let schema = Ocsf(data("ocsf-1.3.0-excerpt.json"));
    let (events, alerts) = every_fixture("ocsf");
    let mut errs = Vec::new();
    // File System Activity, but an exec (the `falco` fixture's): Process Activity's Launch.
    for v in &events {
        match v["class_uid"].as_u64() {
            Some(1001) => {}
            Some(1007) => assert_eq!(v["activity_id"], 1, "{v}"),
            _ => panic!("an event is neither class 1001 nor 1007: {v}"),
        }
        schema.check_class(v, &mut errs);
    }
    for v in &alerts {
        assert_eq!(v["class_uid"], 2004, "{v}");
        schema.check_class(v, &mut errs);
    }
    report("OCSF", errs);
    // Every op the fixtures hold maps to its own activity: a rename is a Rename, not an Open.
    let rename = events
        .iter()
        .find(|v| v["unmapped"]["op"] == "rename")
        .expect("a rename in the fixtures");
    assert_eq!(rename["activity_id"], 5);
    assert_eq!(rename["file"]["path"], rename["unmapped"]["old_path"]);
    assert!(events
        .iter()
        .any(|v| v["status_id"] == 2 && v["status_code"].is_string()));
    assert!(
        events.iter().any(|v| v["class_uid"] == 1007),
        "a recorded exec in the fixtures"
    );
}

/// ECS: every leaf field (dotted) is an ECS field of the right type and allowed value, or ours
/// under `open_forensics`.
pub(crate) fn ecs_check(fields: &Map<String, Value>, v: &Value, at: &str, errs: &mut Vec<String>) {
    if at == "open_forensics" {
        return;
    }
    if let (Some(o), None) = (v.as_object(), fields.get(at)) {
        for (k, x) in o {
            let at = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            ecs_check(fields, x, &at, errs);
        }
        return;
    }
    let Some(f) = fields.get(at) else {
        return errs.push(format!("`{at}` is not an ECS 8.17 field"));
    };
    let values: Vec<&Value> = match v.as_array() {
        Some(a) => a.iter().collect(),
        None if f["array"] == true => return errs.push(format!("`{at}` must be an array")),
        None => vec![v],
    };
    for x in values {
        let ok = match f["type"].as_str().expect("type") {
            "keyword" | "wildcard" | "match_only_text" | "text" | "constant_keyword" => {
                x.is_string()
            }
            "long" | "integer" => x.is_i64() || x.is_u64(),
            "date" => x.as_str().and_then(parse_ts).is_some(),
            "boolean" => x.is_boolean(),
            "object" | "flattened" => x.is_object(),
            other => panic!("`{at}`: type {other} not handled"),
        };
        if !ok {
            errs.push(format!("`{at}`: {x} is not a {}", f["type"]));
        }
        if let Some(allowed) = f["allowed"].as_array() {
            if !allowed.contains(x) {
                errs.push(format!("`{at}`: {x} is not one of {allowed:?}"));
            }
        }
    }
}

#[test]
fn ecs_export_and_alerts_of_every_fixture_fit_the_ecs_8_17_fields() {
    let schema = data("ecs-8.17.0-excerpt.json");
    let fields = schema["fields"].as_object().expect("fields");
    let (events, alerts) = every_fixture("ecs");
    let mut errs = Vec::new();
    for (v, kind) in events
        .iter()
        .map(|v| (v, "event"))
        .chain(alerts.iter().map(|v| (v, "alert")))
    {
        ecs_check(fields, v, "", &mut errs);
        if v["ecs"]["version"] != "8.17.0" || v["event"]["kind"] != kind {
            errs.push(format!("ecs.version / event.kind: {v}"));
        }
    }
    report("ECS", errs);
    assert!(alerts
        .iter()
        .all(|a| a["rule"]["name"].is_string() && a["event"]["severity"].is_u64()));
}

/// Timesketch's required fields: a message, an ISO 8601 `datetime`, what the time means; and
/// `timestamp` in microseconds of the same instant. Attributes are flat.
pub(crate) fn timesketch_check(v: &Value, errs: &mut Vec<String>) {
    let msg = v["message"].as_str().unwrap_or("");
    let desc = v["timestamp_desc"].as_str().unwrap_or("");
    let ns = v["datetime"].as_str().and_then(parse_ts);
    if msg.is_empty() || desc.is_empty() || ns.is_none() {
        return errs.push(format!("required fields: {v}"));
    }
    if v["timestamp"].as_i64() != ns.map(|n| n.div_euclid(1000)) {
        errs.push(format!("timestamp is not datetime in µs: {v}"));
    }
    let nested = v.as_object().expect("object").iter().find(|(_, x)| {
        x.is_object()
            || x.as_array()
                .is_some_and(|a| a.iter().any(|y| !y.is_string()))
    });
    if let Some((k, _)) = nested {
        errs.push(format!("`{k}` is not flat"));
    }
}

/// Timesketch's fields checked here, then Timesketch's own import path over the same lines, offline
/// (tests/timesketch/ingest.py; its packages are pinned in the README's test command): its client
/// reads every file and has nothing to add, drop or repair, and its server's validator takes every
/// line the client would upload. One test, so the fixtures are exported once.
#[test]
fn timesketch_export_and_alerts_of_every_fixture_carry_its_fields_and_its_importer_takes_them() {
    let test = "timesketch_export_and_alerts_of_every_fixture_carry_its_fields_and_its_importer_takes_them";
    let files = every_fixture_printed("timesketch");
    let (events, alerts) = parsed(&files);
    let mut errs = Vec::new();
    events
        .iter()
        .chain(&alerts)
        .for_each(|v| timesketch_check(v, &mut errs));
    report("Timesketch", errs);
    assert!(events.iter().any(|v| v["timestamp_desc"] == "File Rename"));
    assert!(alerts.iter().all(|v| v["timestamp_desc"] == "Alert"));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/timesketch/ingest.py");
    let check = Command::new("python3").arg(&script).arg("--check").output();
    if !check.as_ref().is_ok_and(|o| o.status.success()) {
        let why = check.map_or_else(
            |e| format!("python3: {e}"),
            |o| String::from_utf8_lossy(&o.stderr).trim().to_owned(),
        );
        crate::helpers::skip(&format!("the Timesketch import half of {test}"), &why);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let paths: Vec<_> = files
        .iter()
        .filter(|(_, text)| !text.is_empty())
        .map(|(name, text)| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        })
        .collect();
    let out = ok(Command::new("python3").arg(&script).args(&paths));
    let summary: Value = serde_json::from_str(&out).expect("summary");
    let validated: usize = summary
        .as_object()
        .expect("object")
        .values()
        .map(|f| f["validated"].as_u64().expect("validated") as usize)
        .sum();
    assert_eq!(validated, events.len() + alerts.len(), "{summary}");
}

#[test]
fn alerts_format_applies_to_every_output_and_json_stays_the_default() {
    const RULE: &str = "rules:\n  - name: shadow\n    description: shadow read\n    severity: high\n    tags: [t1]\n    path: /etc/shadow\n";
    let set = RuleSet::from_yaml("t.yaml", RULE).expect("rules");
    let tmp = tempfile::tempdir().expect("tempdir");
    for format in [
        LineFormat::Json,
        LineFormat::Ocsf,
        LineFormat::Ecs,
        LineFormat::Timesketch,
    ] {
        let path = tmp.path().join(format!("{format:?}.jsonl"));
        let out = Outputs::start(&[Target::File(path.clone())], 100)
            .expect("start")
            .line_format(format);
        let mut a = Alerter::new(&set);
        a.set_host("testhost");
        let mut want = String::new();
        a.eval(&event(1, "/etc/shadow"), |r| {
            want = format.raised(r) + "\n";
            if format == LineFormat::Json {
                assert_eq!(want, r.to_json_line() + "\n");
            }
            out.send(r);
        });
        let (drops, _) = out.close_with_states();
        assert!(drops.is_empty(), "{drops:?}");
        let got = std::fs::read_to_string(&path).expect("alerts file");
        assert_eq!(got, want, "{format:?}");
        let v: Value = serde_json::from_str(&got).expect("JSON");
        match format {
            LineFormat::Json => assert_eq!(v["rule"], "shadow"),
            LineFormat::Ocsf => assert_eq!(v["finding_info"]["title"], "shadow"),
            LineFormat::Ecs => assert_eq!(v["rule"]["name"], "shadow"),
            LineFormat::Timesketch => assert_eq!(v["timestamp_desc"], "Alert"),
        }
    }
}
