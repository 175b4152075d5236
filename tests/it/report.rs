//! `report --out FILE` (issue #28, "The case report"): one self-contained HTML file, opened in a
//! real headless Chromium — the alerts and the process tree are on the page, the search filters
//! it, nothing leaves the page and nothing fails on the console — and the input it refuses.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use open_forensics::bytes::Str;
use open_forensics::event::Event;
use open_forensics::process::Process;
use serde_json::Value;

use crate::helpers::{event, fixtures_dir, TempStore};
use crate::history::fixture_copy;
use crate::webdriver::Browser;

fn detections() -> String {
    fixtures_dir()
        .join("rules/detections.yaml")
        .to_string_lossy()
        .into_owned()
}

/// `report --out DIR/NAME ARGS…` on `store`; the page.
fn report(store: &TempStore, name: &str, args: &[&str]) -> (PathBuf, String) {
    let out = store.path(name);
    let mut all = vec!["report", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    store.ok(&all);
    let page = std::fs::read_to_string(&out).expect("the report");
    (out, page)
}

/// The JSON the page embeds.
fn data(page: &str) -> Value {
    let json = page
        .split("<script type=\"application/json\" id=\"data\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the data element");
    serde_json::from_str(json).expect("JSON")
}

/// Where the screenshots go: kept after the run, for a person (or CI) to look at.
fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("target/test-artifacts");
    dir.join(name)
}

/// Console entries at SEVERE (errors, CSP violations included) and requests other than the page.
fn errors_and_requests(b: &Browser, page_url: &str) -> (Vec<String>, Vec<String>) {
    let errors = b
        .log("browser")
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].to_string())
        .collect();
    let requests = b
        .log("performance")
        .into_iter()
        .filter_map(|e| {
            let m: Value = serde_json::from_str(e["message"].as_str()?).ok()?;
            (m["message"]["method"] == "Network.requestWillBeSent")
                .then(|| {
                    m["message"]["params"]["request"]["url"]
                        .as_str()
                        .map(str::to_owned)
                })
                .flatten()
        })
        .filter(|u| u != page_url)
        .collect();
    (errors, requests)
}

/// Rows of `css` a person sees (not hidden by the search, nor inside a hidden process).
fn visible(b: &Browser, css: &str) -> u64 {
    let script = format!(
        "return [...document.querySelectorAll({css:?})].filter(e => e.getClientRects().length > 0 && !e.closest('.hidden')).length;"
    );
    b.js(&script).as_u64().expect("a count")
}

#[test]
fn report_in_chromium_shows_alerts_and_tree_filters_and_fetches_nothing() {
    let Some(b) =
        Browser::start("report_in_chromium_shows_alerts_and_tree_filters_and_fetches_nothing")
    else {
        return;
    };
    let s = fixture_copy("lifecycle");
    let (out, page) = report(&s, "case.html", &["--rules", &detections()]);
    let d = data(&page);
    assert_eq!(d["alerts"]["total"], 25, "every alert replay raises");
    let url = format!("file://{}", out.display());
    b.goto(&url);
    // The alert's rule name, visible in the alerts table and pinned on its process in the tree.
    let rules =
        b.js("return [...document.querySelectorAll('#alerts td.rule')].map(e => e.innerText);");
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "setuid_bit_set"),
        "{rules}"
    );
    assert!(visible(&b, "#alerts td.rule") >= 25);
    let chmod = b.js(
        "const d = [...document.querySelectorAll('details.proc')].find(e => e.id.startsWith('p-28765-'));
         return d ? [d.querySelector(':scope > summary .exe').innerText, [...d.querySelectorAll(':scope > summary .badge')].map(e => e.innerText), d.getClientRects().length > 0] : null;",
    );
    assert_eq!(chmod[0], " /usr/bin/chmod", "{chmod}");
    assert!(
        chmod[1]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "setuid_bit_set"),
        "{chmod}"
    );
    assert_eq!(chmod[2], true, "an alerted process is shown open: {chmod}");
    // The tree has the processes of the lifecycle script: its tools, each under its shell.
    let exes = b.js("return [...document.querySelectorAll('details.proc > summary .exe')].map(e => e.innerText.trim());");
    for exe in [
        "/usr/bin/chmod",
        "/usr/bin/mv",
        "/usr/bin/sed",
        "/usr/bin/truncate",
        "/usr/bin/dash",
    ] {
        assert!(
            exes.as_array().unwrap().iter().any(|e| e == exe),
            "{exe} not in {exes}"
        );
    }
    let all = visible(&b, "details.proc");
    assert_eq!(all as usize, d["tree"]["nodes"].as_array().unwrap().len());
    // The search: only the processes that match (with the ancestors that lead to them) stay.
    b.type_into("#search", "truncate");
    let shown = visible(&b, "details.proc");
    assert!(
        shown > 0 && shown < all / 2,
        "{shown} of {all} after the search"
    );
    let names = b.js("return [...document.querySelectorAll('details.proc')].filter(e => !e.closest('.hidden')).map(e => e.querySelector(':scope > summary').innerText);");
    assert!(
        names
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("/usr/bin/truncate")),
        "{names}"
    );
    let matches = b.js("return document.getElementById('matches').innerText;");
    assert!(
        matches
            .as_str()
            .unwrap()
            .starts_with(&format!("{shown} processes")),
        "{matches}"
    );
    // The evidence at the bottom: verdict, chain head, version.
    let evidence = b.js("return document.getElementById('evidence').innerText;");
    let evidence = evidence.as_str().unwrap();
    assert!(evidence.contains("intact"), "{evidence}");
    assert!(
        evidence.contains(d["evidence"]["head"].as_str().unwrap()),
        "{evidence}"
    );
    assert!(evidence.contains(env!("CARGO_PKG_VERSION")), "{evidence}");
    // The timeline drew its buckets (sub-second: the incident took under a second), and zooms.
    let width = b.js("return document.querySelector('#timeline canvas').width;");
    assert!(width.as_u64() > Some(0));
    let buckets = d["timeline"]["buckets"].as_array().unwrap().len();
    assert!(buckets > 100, "{buckets} buckets");
    let window = "return document.getElementById('timeline-window').innerText;";
    let all = format!("{buckets} of {buckets} buckets");
    assert!(b.js(window).as_str().unwrap().starts_with(&all));
    b.js("document.getElementById('zoom-in').click(); return null;");
    let zoomed = b.js(window);
    let half = format!("{} of {buckets} buckets", (buckets as f64 / 2.0).round());
    assert!(zoomed.as_str().unwrap().starts_with(&half), "{zoomed}");
    b.js("const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input')); s.blur(); window.scrollTo(0, 0); return null;");
    std::fs::write(artifact("report.png"), b.screenshot()).expect("screenshot");
    let (errors, requests) = errors_and_requests(&b, &url);
    assert_eq!(errors, Vec::<String>::new(), "console errors");
    assert_eq!(
        requests,
        Vec::<String>::new(),
        "requests that left the page"
    );
    assert_eq!(
        b.js("return performance.getEntriesByType('resource').length;"),
        0
    );
}

/// A file name (and an exe, and an argv) chosen by an attacker is data, never markup: in the
/// page it is text.
#[test]
fn report_hostile_path_stays_text_in_chromium() {
    let hostile = "/tmp/x</script><img src=x onerror=\"document.title='pwned'\">.txt";
    let s = TempStore::new();
    let p = Arc::new(Process {
        exe: Some(Str::from(hostile)),
        argv: Some(Str::new(format!("{hostile}\0<b>bold</b>\0").into_bytes())),
        ..Process::from_event(4242, event(0, "").ts_ns - 10, 1, Str::from("x"), 0, 0)
    });
    s.import(&[Event {
        pid: 4242,
        tid: 4242,
        process: Some(p),
        ..event(1, hostile)
    }]);
    let (out, page) = report(&s, "hostile.html", &[]);
    assert!(
        !page.contains("<img") && !page.contains("<b>"),
        "markup in data is escaped in the file"
    );
    let d = data(&page);
    assert_eq!(d["tree"]["nodes"][0]["exe"], hostile);
    assert_eq!(d["tree"]["nodes"][0]["files"][0]["path"], hostile);
    let Some(b) = Browser::start("report_hostile_path_stays_text_in_chromium") else {
        return;
    };
    let url = format!("file://{}", out.display());
    b.goto(&url);
    b.js("for (const d of document.querySelectorAll('details')) d.open = true; return null;");
    assert_eq!(
        b.js("return document.querySelectorAll('#tree img, #tree b:not(.pid)').length;"),
        0
    );
    assert_eq!(b.js("return document.images.length;"), 0);
    assert_eq!(b.js("return document.title;"), "open-forensics case report");
    let text = b.js("return document.getElementById('tree').innerText;");
    let text = text.as_str().unwrap();
    assert!(
        text.contains(hostile) && text.contains("<b>bold</b>"),
        "shown as text: {text}"
    );
    let (errors, requests) = errors_and_requests(&b, &url);
    assert_eq!(errors, Vec::<String>::new(), "console errors");
    assert_eq!(
        requests,
        Vec::<String>::new(),
        "requests that left the page"
    );
}

/// The report is written for its owner only, and a link at its name is refused (exit 2), its
/// target untouched.
#[test]
fn report_is_owner_only_and_a_link_at_out_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let s = fixture_copy("lineage");
    let (out, _) = report(&s, "r.html", &[]);
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let target = s.path("target.txt");
    std::fs::write(&target, "keep").unwrap();
    let link = s.path("link.html");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let r = s.run(&["report", "--out", link.to_str().unwrap()]);
    assert_eq!(
        r.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(String::from_utf8_lossy(&r.stderr).contains("symbolic link"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
}

#[test]
fn report_alert_without_at_or_a_known_rule_is_refused() {
    let s = fixture_copy("lifecycle");
    let out = s.path("r.html");
    let out = out.to_str().unwrap();
    let rules = detections();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--alert", "setuid_bit_set", "--rules", &rules],
            "--alert RULE needs --at TIME",
        ),
        (
            &["--at", "2026-12-07T03:28:22Z"],
            "--at goes with --pid or --alert",
        ),
        (
            &[
                "--alert",
                "no_such_rule",
                "--at",
                "2026-12-07T03:28:22Z",
                "--rules",
                &rules,
            ],
            "no rule of that name in the rule files (they have: ",
        ),
        (
            &[
                "--alert",
                "shadow_read",
                "--at",
                "2026-12-07T03:28:22Z",
                "--rules",
                &rules,
            ],
            "no alert of shadow_read in 2026-12-07T03:23:22",
        ),
    ];
    for (args, said) in cases {
        let mut all = vec!["report", "--out", out];
        all.extend_from_slice(args);
        let r = s.run(&all);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
        assert!(!Path::new(out).exists(), "{args:?}: nothing written");
    }
}

/// `--alert RULE --at T`: the window around it, the alert nearest to T focused (its row marked,
/// its process shown open in the browser), the tree the story of its process (its ancestors above
/// it).
#[test]
fn report_alert_focuses_the_nearest_alert_and_its_process() {
    let s = fixture_copy("lifecycle");
    let (out, page) = report(
        &s,
        "alert.html",
        &[
            "--alert",
            "cron_persistence",
            "--at",
            "2026-12-07T03:28:22.381Z",
            "--window",
            "1s",
            "--rules",
            &detections(),
        ],
    );
    let d = data(&page);
    assert_eq!(d["focus"]["rule"], "cron_persistence");
    assert_eq!(
        d["focus"]["pid"], 28806,
        "the alert nearest to --at: {}",
        d["focus"]
    );
    let nodes = d["tree"]["nodes"].as_array().unwrap();
    let last = nodes
        .iter()
        .find(|n| n["pid"] == 28806)
        .expect("the alert's process");
    assert_eq!(last["context"], false);
    assert!(
        nodes.iter().any(|n| n["pid"] == 1 && n["context"] == true),
        "its ancestors as context"
    );
    assert!(
        nodes.iter().all(|n| n["pid"] != 28765),
        "not the other processes of the window"
    );
    assert!(d["scope"]
        .as_str()
        .unwrap()
        .contains("the alert cron_persistence"));
    let Some(b) = Browser::start("report_alert_focuses_the_nearest_alert_and_its_process") else {
        return;
    };
    let url = format!("file://{}", out.display());
    b.goto(&url);
    let row = b.js("return document.querySelector('#alerts tr.focus td.rule').innerText;");
    assert_eq!(row, "cron_persistence");
    let focused = b.js("const d = document.querySelector('details.proc.focus'); return [d.id, d.open, d.getClientRects().length > 0];");
    assert!(
        focused[0].as_str().unwrap().starts_with("p-28806-"),
        "{focused}"
    );
    assert_eq!(
        (&focused[1], &focused[2]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    let (errors, requests) = errors_and_requests(&b, &url);
    assert_eq!(errors, Vec::<String>::new(), "console errors");
    assert_eq!(
        requests,
        Vec::<String>::new(),
        "requests that left the page"
    );
}

/// Beyond `--max-processes` and `--max-files` the page lists fewer and says how many it left out.
#[test]
fn report_bounds_cut_the_page_and_say_so() {
    let s = fixture_copy("lifecycle");
    let (_, page) = report(
        &s,
        "cut.html",
        &["--max-processes", "8", "--max-files", "1"],
    );
    let d = data(&page);
    assert_eq!(d["tree"]["nodes"].as_array().unwrap().len(), 8);
    let notices: Vec<&str> = d["notices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let cut = d["tree"]["cut"]["processes"].as_u64().unwrap();
    assert!(cut > 0);
    assert!(
        notices.iter().any(|n| n.starts_with(&format!(
            "{cut} more processes not shown (--max-processes 8)"
        ))),
        "{notices:?}"
    );
    assert!(
        notices.iter().any(|n| n.contains("(--max-files)")),
        "{notices:?}"
    );
    assert!(d["tree"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["files"].as_array().unwrap().len() <= 1));
}

/// `--pid` reports one process and its descendants, with its ancestors as context.
#[test]
fn report_pid_is_that_process_and_its_descendants() {
    let s = fixture_copy("lifecycle");
    let (_, page) = report(&s, "pid.html", &["--pid", "28748"]);
    let d = data(&page);
    assert_eq!(d["focus"]["pid"], 28748);
    let nodes = d["tree"]["nodes"].as_array().unwrap();
    let me = nodes
        .iter()
        .position(|n| n["pid"] == 28748)
        .expect("the process");
    assert_eq!(nodes[me]["context"], false);
    assert!(!nodes[me]["children"].as_array().unwrap().is_empty());
    assert!(
        nodes[..me].iter().all(|n| n["context"] == true),
        "above it: its ancestors"
    );
    let r = s.run(&[
        "report",
        "--out",
        s.path("none.html").to_str().unwrap(),
        "--pid",
        "999999",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no process 999999 in the range"));
}
