//! Alert outputs (issue #12) against real local receivers: a Unix datagram socket standing in for
//! `/dev/log`, HTTP servers on 127.0.0.1 that fail then recover (or never answer), programs that
//! exit or never read, a file renamed under SIGUSR1. The first tests drive the outputs directly
//! (no privilege); the live ones run `record` as root, filter by their own temp paths, and check
//! that a dead output loses no stored event and that live alerts (throttled too) equal replay.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use open_forensics::alerts::{Facility, HttpFormat, OutputState, Outputs, State, Target};
use open_forensics::rules::{Alerter, RuleSet};
use open_forensics::store::{Reader, TimeRange};

use crate::helpers::{self, event, read_store, TempStore};
use crate::recorder::Recorder;

const RULE: &str = "rules:\n  - name: shadow\n    description: shadow read\n    severity: high\n    tags: [t1]\n    path: /etc/shadow\n";

/// Raises `n` alerts through `out`; returns their lines.
fn raise(out: &Outputs, n: usize) -> Vec<String> {
    let set = RuleSet::from_yaml("t.yaml", RULE).expect("rules");
    let mut a = Alerter::new(&set);
    a.set_host("testhost");
    let mut lines = Vec::new();
    for i in 0..n {
        a.eval(&event(i as i64, "/etc/shadow"), |r| {
            lines.push(r.to_json_line());
            out.send(r);
        });
    }
    lines
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn only(states: &[OutputState]) -> &OutputState {
    assert_eq!(states.len(), 1, "{states:?}");
    &states[0]
}

// --- syslog ---

/// RFC 5424 `<PRI>1 TS HOST APP PID MSGID SD MSG` → (PRI, MSGID, MSG).
fn parse_5424(d: &str) -> (u32, String, String) {
    let (pri, rest) = d[1..].split_once(">1 ").expect("version 1");
    let parts: Vec<&str> = rest.splitn(7, ' ').collect();
    assert_eq!(parts.len(), 7, "{d}");
    assert_eq!(parts[2], "open-forensics", "{d}");
    assert!(parts[3].parse::<u32>().is_ok(), "PROCID: {d}");
    assert_eq!(parts[5], "-", "{d}");
    (
        pri.parse().expect("PRI"),
        parts[4].to_owned(),
        parts[6].to_owned(),
    )
}

#[test]
fn syslog_output_sends_rfc5424_datagrams_with_the_alert_as_msg_and_waits_for_the_socket() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("log");
    let out = Outputs::start(
        &[Target::Syslog {
            socket: sock.clone(),
            facility: Facility::Local3,
        }],
        100,
    )
    .expect("start");
    // Nobody listens yet: the output retries, and delivers once the socket appears.
    let lines = raise(&out, 5);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(only(&out.states()).sent, 0);
    let rx = UnixDatagram::bind(&sock).expect("bind");
    rx.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while got.len() < 5 {
        let n = rx.recv(&mut buf).expect("a datagram within 20s");
        got.push(String::from_utf8(buf[..n].to_vec()).expect("utf-8"));
    }
    let (drops, states) = out.close_with_states();
    assert!(drops.is_empty(), "{drops:?}");
    assert_eq!(only(&states).sent, 5);
    for (d, line) in got.iter().zip(&lines) {
        let (pri, msgid, msg) = parse_5424(d);
        assert_eq!(pri, 19 * 8 + 3, "local3, high → err: {d}");
        assert_eq!(msgid, "alert");
        assert_eq!(&msg, line);
        assert!(
            d.contains(&format!(" open-forensics {} alert - ", std::process::id())),
            "{d}"
        );
        assert!(d.contains(" 2025-11-24T16:00:00."), "the event's time: {d}");
    }
}

// --- HTTP ---

#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Read the request, close without answering.
    Close,
}

#[derive(Debug)]
struct Request {
    batch: String,
    content_type: String,
    body: String,
    answer: String,
}

/// A 127.0.0.1 server answering requests by `plan` (then 200), logging them; bounded to
/// `max` requests and 60 s.
fn http_server(
    plan: Vec<Answer>,
    max: usize,
) -> (String, Arc<Mutex<Vec<Request>>>, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/alerts", l.local_addr().expect("addr"));
    let log = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (log2, stop2) = (log.clone(), stop.clone());
    l.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut n = 0;
        while n < max
            && !stop2.load(Ordering::Relaxed)
            && started.elapsed() < Duration::from_secs(60)
        {
            let s = match l.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            s.set_nonblocking(false).expect("blocking");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut r = BufReader::new(s);
            // Keep-alive: several requests per connection.
            while n < max {
                let Some(req) = read_request(&mut r) else {
                    break;
                };
                let answer = plan.get(n).copied().unwrap_or(Answer::Status(200));
                n += 1;
                let mut log = log2.lock().expect("log");
                log.push(Request {
                    answer: format!("{answer:?}"),
                    ..req
                });
                drop(log);
                match answer {
                    Answer::Close => break,
                    Answer::Status(code) => {
                        let resp = format!(
                            "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
                        );
                        if r.get_mut().write_all(resp.as_bytes()).is_err() {
                            break;
                        }
                    }
                }
            }
        }
    });
    (url, log, stop)
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if !line.starts_with("POST /alerts ") {
        return None;
    }
    let (mut len, mut batch, mut ctype) = (0usize, String::new(), String::new());
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().ok()?,
            "x-open-forensics-batch" => batch = v.trim().to_owned(),
            "content-type" => ctype = v.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        batch,
        content_type: ctype,
        body: String::from_utf8(body).ok()?,
        answer: String::new(),
    })
}

fn http_target(url: &str, batch: usize, format: HttpFormat) -> Target {
    Target::Http {
        url: url.to_owned(),
        batch,
        timeout: Duration::from_secs(5),
        format,
    }
}

/// The server fails the first requests (500, 503, a closed connection), then recovers: retries
/// deliver every alert, each acknowledged exactly once and in order; a retried batch keeps its
/// number and its bytes.
#[test]
fn http_output_retries_with_backoff_until_the_server_recovers_and_delivers_everything() {
    let plan = vec![
        Answer::Status(500),
        Answer::Status(503),
        Answer::Close,
        Answer::Status(429),
    ];
    let (url, log, stop) = http_server(plan, 200);
    let out = Outputs::start(&[http_target(&url, 7, HttpFormat::Ndjson)], 1000).expect("start");
    let lines = raise(&out, 40);
    wait_until("every alert acknowledged", Duration::from_secs(30), || {
        only(&out.states()).sent == 40
    });
    let (drops, states) = out.close_with_states();
    stop.store(true, Ordering::Relaxed);
    assert!(drops.is_empty(), "{drops:?}");
    assert_eq!(only(&states).state, State::Ok);
    let log = log.lock().expect("log");
    assert!(log.len() >= 5, "{log:#?}");
    // The first four attempts are one batch, retried: same number, same body.
    for r in &log[1..4] {
        assert_eq!(r.batch, log[0].batch, "{log:#?}");
        assert_eq!(r.body, log[0].body, "{log:#?}");
    }
    let acked: Vec<&str> = log
        .iter()
        .filter(|r| r.answer == "Status(200)")
        .flat_map(|r| {
            assert_eq!(r.content_type, "application/x-ndjson");
            assert!(r.body.ends_with('\n'));
            r.body.lines()
        })
        .collect();
    assert_eq!(acked, lines.iter().map(String::as_str).collect::<Vec<_>>());
    let batches: Vec<&str> = log.iter().map(|r| r.batch.as_str()).collect();
    let mut distinct = batches.clone();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        log.iter().filter(|r| r.answer == "Status(200)").count(),
        "one number per batch: {batches:?}"
    );
}

#[test]
fn http_array_bodies_are_json_arrays_and_refused_batches_are_dropped_and_counted() {
    let (url, log, stop) = http_server(vec![Answer::Status(400)], 50);
    let out = Outputs::start(&[http_target(&url, 100, HttpFormat::Array)], 1000).expect("start");
    let first = raise(&out, 1);
    wait_until("the refusal", Duration::from_secs(10), || {
        only(&out.states()).dropped == 1
    });
    let lines = raise(&out, 3);
    wait_until("delivery", Duration::from_secs(10), || {
        only(&out.states()).sent == 3
    });
    let (drops, _) = out.close_with_states();
    stop.store(true, Ordering::Relaxed);
    assert_eq!(drops, vec![(format!("http:{url}"), 1)]);
    let log = log.lock().expect("log");
    let v: Vec<serde_json::Value> = serde_json::from_str(&log[0].body).expect("an array");
    assert_eq!(v.len(), 1);
    assert_eq!(log[0].body, format!("[{}]", first[0]));
    let delivered: Vec<serde_json::Value> = log[1..]
        .iter()
        .flat_map(|r| {
            assert_eq!(r.content_type, "application/json");
            serde_json::from_str::<Vec<serde_json::Value>>(&r.body).expect("an array")
        })
        .collect();
    let want: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(delivered, want);
}

// --- programs ---

/// A program that reads five lines and exits is restarted; lines it never read are written to
/// the next instance: every alert arrives once, in order.
#[test]
fn program_output_is_restarted_when_it_exits_and_loses_no_unread_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let got = tmp.path().join("got");
    // `read` takes one line at a time from a pipe (byte by byte), so each instance consumes
    // exactly five.
    let cmd = format!(
        "for i in 1 2 3 4 5; do IFS= read -r l || exit 0; printf '%s\\n' \"$l\" >> '{}'; done",
        got.display()
    );
    let out = Outputs::start(&[Target::Program(cmd)], 1000).expect("start");
    let lines = raise(&out, 17);
    wait_until(
        "17 lines through 4 instances",
        Duration::from_secs(30),
        || lines_in(&got) >= 17,
    );
    let (drops, states) = out.close_with_states();
    assert!(drops.is_empty(), "{drops:?}");
    assert!(only(&states).sent >= 17);
    let text = std::fs::read_to_string(&got).expect("output");
    assert_eq!(text.lines().collect::<Vec<_>>(), lines);
}

/// A program that never reads: its pipe fills, then its queue; further alerts are dropped for it
/// and counted, `send` never blocks, and on close it is killed and the count is complete.
#[test]
fn a_program_that_never_reads_costs_its_queue_and_its_drops_are_counted() {
    let out = Outputs::start(&[Target::Program("exec sleep 60".into())], 5).expect("start");
    let lines = raise(&out, 2000);
    // Every line is accounted for: written to the pipe, queued (or being written), or dropped.
    wait_until("the counters to settle", Duration::from_secs(5), || {
        let s = only(&out.states()).clone();
        s.sent + s.dropped + s.queued == lines.len() as u64
    });
    let s = only(&out.states()).clone();
    assert!(s.dropped > 1000, "{s:?}");
    assert!(s.queued <= 5 + 64, "{s:?}");
    let (drops, states) = out.close_with_states();
    let s = only(&states);
    assert_eq!(s.sent + s.dropped, 2000, "{s:?}");
    assert_eq!(s.queued, 0, "{s:?}");
    assert_eq!(drops, vec![("program:exec sleep 60".to_owned(), s.dropped)]);
}

// --- files ---

/// logrotate's way: rename, then SIGUSR1. Every line is in exactly one of the two files, in
/// order.
#[test]
fn sigusr1_reopens_alert_files_without_losing_or_duplicating_a_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("alerts.jsonl");
    let out = Outputs::start(&[Target::File(path.clone())], 10_000).expect("start");
    let mut lines = raise(&out, 300);
    wait_until("the first lines", Duration::from_secs(10), || {
        only(&out.states()).sent == 300
    });
    let rotated = tmp.path().join("alerts.jsonl.1");
    std::fs::rename(&path, &rotated).expect("rename");
    lines.extend(raise(&out, 100));
    // SAFETY: raising a signal in our own process; the output registered a handler for it.
    unsafe { libc::raise(libc::SIGUSR1) };
    wait_until("the reopened file", Duration::from_secs(10), || {
        path.exists()
    });
    lines.extend(raise(&out, 300));
    let (drops, _) = out.close_with_states();
    assert!(drops.is_empty(), "{drops:?}");
    let old = std::fs::read_to_string(&rotated).expect("rotated");
    let new = std::fs::read_to_string(&path).expect("new");
    assert!(old.lines().count() >= 300 && !new.is_empty());
    let all: Vec<&str> = old.lines().chain(new.lines()).collect();
    assert_eq!(all, lines);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

// --- loss records ---

/// `alert_dropped:…` loss records are kept (SQL sees them) but are not lost events: the segment's
/// `lost` stays 0, queries do not call the answer incomplete and say so apart, in prose and JSON.
#[test]
fn alert_drop_loss_records_are_reported_apart_from_lost_events() {
    use open_forensics::store::{Loss, RotateConfig, Writer};
    let store = TempStore::new();
    let mut w = Writer::open(&store.dir, RotateConfig::default()).expect("open");
    let mut events: Vec<_> = (0..5).map(|i| event(i, "/etc/shadow")).collect();
    for e in &mut events {
        w.append(e).expect("append");
    }
    let (t0, t1) = (events[0].ts_ns, events[4].ts_ns);
    w.record_loss(Loss {
        start_ns: t0,
        end_ns: t1,
        count: 7,
        reason: "alert_dropped:http:http://127.0.0.1:9/x".into(),
    })
    .expect("loss");
    let summary = w.close().expect("close");
    assert_eq!(summary.lost, 0);
    let segs = store.ok(&["segments", "--format", "jsonl"]);
    let seg: serde_json::Value =
        serde_json::from_str(segs.lines().next().expect("a segment")).expect("json");
    assert_eq!(seg["lost"], 0, "{segs}");
    let out = store.run(&["query", "--format", "jsonl"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("incomplete"), "{err}");
    let notice: serde_json::Value = serde_json::from_str(err.trim()).expect("one JSON notice");
    assert_eq!(notice["notice"], "alerts_dropped");
    assert_eq!(notice["dropped"], 7);
    let out = store.run(&["query", "--format", "csv"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("live alert outputs dropped 7 alert(s)"),
        "{err}"
    );
    // A real loss next to it is still reported as one, with its own count.
    let mut w = Writer::open(&store.dir, RotateConfig::default()).expect("open");
    w.record_loss(Loss {
        start_ns: t0,
        end_ns: t1,
        count: 3,
        reason: "ringbuf_full".into(),
    })
    .expect("loss");
    w.close().expect("close");
    let out = store.run(&["query", "--format", "jsonl"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let warning = err
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|v| v["warning"] == "incomplete")
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(warning["lost"], 3);
    assert_eq!(warning["loss_records"], 1);
    // SQL sees both, by reason.
    let file = store.path("losses.sql");
    std::fs::write(&file, "SELECT reason, count FROM losses ORDER BY reason").expect("write");
    let sql = store.ok(&["query", "--sql", utf8(&file), "--format", "csv"]);
    assert!(
        sql.contains("alert_dropped:http:http://127.0.0.1:9/x,7"),
        "{sql}"
    );
    assert!(sql.contains("ringbuf_full,3"), "{sql}");
}

/// `replay` throttles as `record` does (summaries in the stream, in every format); `query --rule`
/// returns every matching event.
#[test]
fn replay_throttles_and_query_by_rule_does_not() {
    let store = TempStore::new();
    // 30 opens by one pid, 1.5 µs apart: one window of 1 s holds them all.
    let events: Vec<_> = (0..30)
        .map(|i| open_forensics::event::Event {
            pid: 7,
            tid: 7,
            ..event(i, "/etc/shadow")
        })
        .collect();
    store.import(&events);
    let rules = store.path("r.yaml");
    std::fs::write(
        &rules,
        format!("{RULE}    throttle: {{key: [pid], window: 1s, max: 4}}\n"),
    )
    .expect("write");
    let r = utf8(&rules);
    let out = store.ok(&["replay", "--rules", r]);
    let v: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(v.len(), 5, "{out}");
    assert!(v[..4].iter().all(|a| a["event"] == "alert"));
    assert_eq!(v[4]["event"], "alert_summary");
    assert_eq!(v[4]["suppressed"], 26);
    assert_eq!(v[4]["key"], serde_json::json!({"pid": 7}));
    assert_eq!(v[4]["tags"], serde_json::json!(["t1"]));
    // The same, again: replay is deterministic.
    assert_eq!(store.ok(&["replay", "--rules", r]), out);
    let csv = store.ok(&["replay", "--rules", r, "--format", "csv"]);
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(
        csv.lines().last().unwrap().contains("alert_summary"),
        "{csv}"
    );
    assert!(csv.contains("26 suppressed (pid=7)"), "{csv}");
    let q = store.ok(&[
        "query", "--rules", r, "--rule", "shadow", "--format", "jsonl",
    ]);
    assert_eq!(q.lines().count(), 30);
}

/// Output flags are checked before anything is touched: exit 2, naming the flag.
#[test]
fn bad_alert_output_flags_exit_2() {
    let store = TempStore::new();
    let rules = store.path("r.yaml");
    std::fs::write(&rules, RULE).expect("write");
    let r = utf8(&rules);
    for (args, want) in [
        (
            vec!["--alert-http", "https://siem.example/x"],
            "HTTPS is not built in",
        ),
        (
            vec!["--alert-http", "localhost:80"],
            "expected a URL like http://",
        ),
        (vec!["--http-batch", "0"], "--http-batch 0"),
        (vec!["--alert-queue", "0"], "--alert-queue 0"),
        (vec!["--alert-program", " "], "--alert-program"),
        (
            vec!["--syslog-facility", "bogus", "--alert-syslog"],
            "bogus",
        ),
    ] {
        let mut a = vec!["record", "--rules", r];
        a.extend(&args);
        let out = store.run(&a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!store.dir.exists(), "{args:?} touched the store");
    }
    // Outputs need rules.
    let out = store.run(&["record", "--alert-syslog"]);
    assert_eq!(out.status.code(), Some(2));
}

// --- live ---

fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A rule file matching opens of `dir/**` only (capture is system-wide; this is ours alone).
fn rules_for(store: &TempStore, dir: &Path, extra: &str) -> std::path::PathBuf {
    let rules = store.path("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "rules:\n  - name: ours\n    description: the test's files\n    severity: critical\n    tags: [test, \"mitre:T0000\"]\n    path: [\"{}/**\"]\n{extra}",
            dir.display()
        ),
    )
    .expect("write rules");
    rules
}

/// `dir` with the files `open_n` opens, made before recording starts (creating them would be
/// opens too).
fn work_dir(store: &TempStore) -> std::path::PathBuf {
    let dir = store.path("work");
    std::fs::create_dir(&dir).expect("mkdir");
    for i in 0..10 {
        std::fs::write(dir.join(format!("f{i}")), "x").expect("write");
    }
    dir
}

/// Lines in a file written so far (0 while it does not exist).
fn lines_in(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn open_n(dir: &Path, n: usize) {
    for i in 0..n {
        std::fs::File::open(dir.join(format!("f{}", i % 10))).expect("open");
    }
}

/// Syslog datagrams received on `sock` until `stop`, as MSGs.
fn syslog_receiver(sock: &Path) -> (Arc<Mutex<Vec<String>>>, Arc<AtomicBool>) {
    let rx = UnixDatagram::bind(sock).expect("bind");
    rx.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let got = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (got2, stop2) = (got.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 17];
        let started = Instant::now();
        while !stop2.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
            if let Ok(n) = rx.recv(&mut buf) {
                let d = String::from_utf8_lossy(&buf[..n]).into_owned();
                got2.lock().expect("got").push(parse_5424(&d).2);
            }
        }
    });
    (got, stop)
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_owned()
}

/// File, syslog, HTTP and a program at once: each receives exactly the lines replay prints,
/// which name this host, the rule's description and tags.
#[test]
fn record_delivers_to_every_output_exactly_what_replay_prints() {
    if !helpers::live_capture_available(
        "record_delivers_to_every_output_exactly_what_replay_prints",
    ) {
        return;
    }
    let store = TempStore::new();
    let dir = work_dir(&store);
    let rules = rules_for(&store, &dir, "");
    let file = store.path("alerts.jsonl");
    let sock = store.path("log.sock");
    let prog_out = store.path("prog.jsonl");
    let (syslog, stop_syslog) = syslog_receiver(&sock);
    let (url, http, stop_http) = http_server(Vec::new(), 500);
    let prog = format!("cat >> '{}'", prog_out.display());
    let health = store.path("health.json");
    let rec = Recorder::start(
        &store,
        &[
            "--rules",
            utf8(&rules),
            "--stats-file",
            utf8(&health),
            "--stats-interval",
            "1s",
            "--alerts",
            utf8(&file),
            "--alert-syslog",
            "--syslog-socket",
            utf8(&sock),
            "--alert-http",
            &url,
            "--alert-program",
            &prog,
        ],
    );
    open_n(&dir, 50);
    // At least one health interval passes with every output running.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let text = rec.stop();
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&health).expect("health file"))
            .expect("json");
    let names: Vec<&str> = h["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| o["name"].as_str().expect("name"))
        .collect();
    for kind in ["file:", "syslog:", "http:", "program:"] {
        assert!(names.iter().any(|n| n.starts_with(kind)), "{kind}: {h}");
    }
    stop_syslog.store(true, Ordering::Relaxed);
    stop_http.store(true, Ordering::Relaxed);
    let replay = store.ok(&["replay", "--rules", utf8(&rules)]);
    let want: Vec<&str> = replay.lines().collect();
    assert_eq!(want.len(), 50, "{replay}");
    let first: serde_json::Value = serde_json::from_str(want[0]).expect("json");
    assert_eq!(first["hostname"], this_host());
    assert_eq!(first["description"], "the test's files");
    assert_eq!(first["tags"], serde_json::json!(["test", "mitre:T0000"]));
    let f = std::fs::read_to_string(&file).expect("alerts file");
    assert_eq!(f.lines().collect::<Vec<_>>(), want, "file");
    assert_eq!(*syslog.lock().expect("syslog"), want, "syslog");
    let posted: Vec<String> = http
        .lock()
        .expect("http")
        .iter()
        .flat_map(|r| r.body.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert_eq!(posted, want, "http");
    let p = std::fs::read_to_string(&prog_out).expect("program output");
    assert_eq!(p.lines().collect::<Vec<_>>(), want, "program");
    for name in ["file:", "syslog:", "http:", "program:"] {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("alerts to {name}"))
                    && l.contains("50 sent, 0 dropped")),
            "{name}: {text}"
        );
    }
}

/// An HTTP endpoint that never answers and a program that never reads: recording stores every
/// event all the same, their drops become `alert_dropped:OUTPUT` loss records matching what the
/// recorder reported, and queries do not call the history incomplete.
#[test]
fn dead_outputs_lose_no_stored_event_and_their_drops_are_loss_records() {
    if !helpers::live_capture_available(
        "dead_outputs_lose_no_stored_event_and_their_drops_are_loss_records",
    ) {
        return;
    }
    let store = TempStore::new();
    let dir = work_dir(&store);
    let rules = rules_for(&store, &dir, "");
    // Listens (connections complete in the kernel's backlog) and never accepts or answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/alerts", silent.local_addr().expect("addr"));
    let rec = Recorder::start(
        &store,
        &[
            "--rules",
            utf8(&rules),
            "--alerts",
            utf8(&store.path("alerts.jsonl")),
            "--alert-http",
            &url,
            "--http-timeout",
            "2s",
            "--alert-program",
            "exec sleep 600",
            "--alert-queue",
            "10",
        ],
    );
    let n = 3000;
    open_n(&dir, n);
    let text = rec.stop();
    drop(silent);
    let prefix = dir.to_str().expect("utf-8").as_bytes();
    let ours = read_store(&store.dir)
        .into_iter()
        .filter(|e| e.path.as_bytes().starts_with(prefix) && e.pid == std::process::id())
        .count();
    assert!(ours >= n, "stored {ours} of our {n} opens");
    // What the recorder said it dropped, per output.
    let reported = |name: &str| -> (u64, u64) {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("alerts to {name}")))
            .unwrap_or_else(|| panic!("no summary for {name}: {text}"));
        let nums: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        let k = nums.len();
        (nums[k - 2], nums[k - 1])
    };
    let stats = Reader::open(&store.dir)
        .expect("open")
        .scan(&TimeRange::default(), |_| ControlFlow::Continue(()));
    let recorded = |name: &str| -> u64 {
        stats
            .losses
            .iter()
            .filter(|l| l.reason == format!("alert_dropped:{name}"))
            .map(|l| l.count)
            .sum()
    };
    let alerts = ours as u64;
    // Each gave up within the grace period (the request timed out, the program was killed).
    assert!(!text.contains("did not finish"), "{text}");
    let http = format!("http:{url}");
    let (sent, dropped) = reported(&http);
    assert_eq!(sent, 0, "{text}");
    assert_eq!(dropped, alerts, "{text}");
    assert_eq!(recorded(&http), dropped);
    let prog = "program:exec sleep 600";
    let (sent, dropped) = reported(prog);
    assert!(dropped > 0, "{text}");
    assert_eq!(sent + dropped, alerts, "{text}");
    assert_eq!(recorded(prog), dropped);
    // The file has a queue of 10 too: under this burst it may drop some, counted the same way.
    let file = format!("file:{}", store.path("alerts.jsonl").display());
    let (sent, dropped) = reported(&file);
    assert_eq!(sent + dropped, alerts, "{text}");
    assert_eq!(recorded(&file), dropped);
    let written = std::fs::read_to_string(store.path("alerts.jsonl")).expect("alerts");
    assert_eq!(written.lines().count() as u64, sent);
    // Alert drops are not lost events: no incompleteness, a notice instead.
    let event_losses: u64 = stats
        .losses
        .iter()
        .filter(|l| !l.reason.starts_with("alert_dropped:"))
        .map(|l| l.count)
        .sum();
    assert_eq!(stats.lost(), event_losses);
    let out = store.run(&[
        "query",
        "--path",
        &format!("{}/**", dir.display()),
        "--format",
        "csv",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("live alert outputs dropped"), "{err}");
    if event_losses == 0 {
        assert!(!err.contains("incomplete"), "{err}");
    }
}

/// Rename the alert file, SIGUSR1 the recorder, go on: the two files hold exactly replay's lines.
#[test]
fn sigusr1_reopens_the_live_alert_file() {
    if !helpers::live_capture_available("sigusr1_reopens_the_live_alert_file") {
        return;
    }
    let store = TempStore::new();
    let dir = work_dir(&store);
    let rules = rules_for(&store, &dir, "");
    let file = store.path("alerts.jsonl");
    let rec = Recorder::start(&store, &["--rules", utf8(&rules), "--alerts", utf8(&file)]);
    open_n(&dir, 100);
    wait_until("the first alerts", Duration::from_secs(10), || {
        lines_in(&file) >= 100
    });
    let rotated = store.path("alerts.jsonl.1");
    std::fs::rename(&file, &rotated).expect("rename");
    open_n(&dir, 50);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(rec.pid() as i32, libc::SIGUSR1) };
    wait_until("the reopened file", Duration::from_secs(10), || {
        file.exists()
    });
    open_n(&dir, 100);
    rec.stop();
    let replay = store.ok(&["replay", "--rules", utf8(&rules)]);
    let old = std::fs::read_to_string(&rotated).expect("rotated");
    let new = std::fs::read_to_string(&file).expect("new");
    assert!(lines_in(&file) >= 100);
    let all: Vec<&str> = old.lines().chain(new.lines()).collect();
    assert_eq!(all, replay.lines().collect::<Vec<_>>());
    assert_eq!(all.len(), 250);
}

/// `record --reorder-window` holds events that long before they are stored and evaluated: no
/// alert can be raised before its event is older than the window (whatever the machine's speed),
/// and every one is raised soon after. Windows over 1 s (memory) are refused.
#[test]
fn the_reorder_window_holds_live_alerts_as_long_as_asked() {
    if !helpers::live_capture_available("the_reorder_window_holds_live_alerts_as_long_as_asked") {
        return;
    }
    let store = TempStore::new();
    let dir = work_dir(&store);
    let rules = rules_for(&store, &dir, "");
    let file = store.path("alerts.jsonl");
    let rec = Recorder::start(
        &store,
        &[
            "--rules",
            utf8(&rules),
            "--alerts",
            utf8(&file),
            "--reorder-window",
            "1s",
        ],
    );
    let opened = Instant::now();
    open_n(&dir, 5);
    std::thread::sleep(Duration::from_millis(500));
    let early = lines_in(&file);
    wait_until("the held alerts", Duration::from_secs(30), || {
        lines_in(&file) >= 5
    });
    let held = opened.elapsed();
    rec.stop();
    assert_eq!(early, 0, "alerts raised within 0.5 s of a 1 s window");
    assert!(held >= Duration::from_secs(1), "released after {held:?}");

    let out = store.run(&["record", "--reorder-window", "1001ms"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--reorder-window 1.001s: must be at most 1s"),
        "{err}"
    );
}

/// Throttled live alerts, with the summary a window's end emits mid-recording and the one the
/// end of the stream emits, are byte for byte what replay prints.
#[test]
fn throttled_alerts_live_equal_replay() {
    if !helpers::live_capture_available("throttled_alerts_live_equal_replay") {
        return;
    }
    let store = TempStore::new();
    let dir = work_dir(&store);
    let rules = rules_for(
        &store,
        &dir,
        "    throttle: {key: [pid, comm], window: 1s, max: 3}\n",
    );
    let file = store.path("alerts.jsonl");
    let rec = Recorder::start(&store, &["--rules", utf8(&rules), "--alerts", utf8(&file)]);
    open_n(&dir, 20);
    std::thread::sleep(Duration::from_millis(1500));
    open_n(&dir, 20);
    rec.stop();
    let live = std::fs::read_to_string(&file).expect("alerts");
    let replay = store.ok(&["replay", "--rules", utf8(&rules)]);
    assert_eq!(live, replay);
    let v: Vec<serde_json::Value> = live
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let kinds: Vec<&str> = v.iter().map(|x| x["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "alert",
            "alert",
            "alert",
            "alert_summary",
            "alert",
            "alert",
            "alert",
            "alert_summary"
        ],
        "{live}"
    );
    assert_eq!(v[3]["suppressed"], 17);
    assert_eq!(v[7]["suppressed"], 17);
    assert_eq!(v[3]["key"]["pid"], std::process::id());
}

/// Drops are counted in the segment's metadata (`alert_drops`), apart from `lost`: a segment that
/// holds nothing but alert drops is sealed, not discarded as empty, and SQL finds its records
/// (it reads loss records only from segments whose metadata counts some).
#[test]
fn a_segment_holding_only_alert_drops_is_kept_and_sql_sees_them() {
    use open_forensics::store::{Loss, RotateConfig, Writer};
    let store = TempStore::new();
    let mut w = Writer::open(&store.dir, RotateConfig::default()).expect("open");
    w.record_loss(Loss {
        start_ns: 1_000,
        end_ns: 2_000,
        count: 4,
        reason: "alert_dropped:program:cat".into(),
    })
    .expect("loss");
    assert_eq!(w.close().expect("close").lost, 0);
    let segs = store.ok(&["segments", "--format", "jsonl"]);
    let seg: serde_json::Value =
        serde_json::from_str(segs.lines().next().expect("the segment is kept")).expect("json");
    assert_eq!(seg["lost"], 0, "{segs}");
    let file = store.path("drops.sql");
    std::fs::write(&file, "SELECT reason, count FROM losses").expect("write");
    let sql = store.ok(&["query", "--sql", utf8(&file), "--format", "csv"]);
    assert!(sql.contains("alert_dropped:program:cat,4"), "{sql}");
}
