//! Shared test helpers: a temporary store, an event builder, a command runner, a live recorder.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use open_forensics::bytes::Str;
use open_forensics::event::{Event, PathSource, Syscall};
use open_forensics::store::{Reader, TimeRange};

use crate::recorder::Recorder;

/// The built binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_open-forensics"))
}

/// A store in a fresh temporary directory, removed on drop.
pub struct TempStore {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

impl TempStore {
    pub fn new() -> TempStore {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("store");
        TempStore { tmp, dir }
    }

    /// `open-forensics --store DIR ARGS…`, with stdin closed.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--store")
            .arg(&self.dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            // Hermetic: a host's /etc/open-forensics/config.yaml must not change what runs.
            .env("OPEN_FORENSICS_CONFIG", "/dev/null");
        c
    }

    /// Runs and returns the output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run open-forensics")
    }

    /// Runs, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Imports `events` through `open-forensics import` (one call, so one or more new segments).
    pub fn import(&self, events: &[Event]) {
        let n = std::fs::read_dir(self.tmp.path())
            .map(|d| d.count())
            .unwrap_or(0);
        let file = self.path(&format!("import-{n}.jsonl"));
        write_jsonl(&file, events);
        self.ok(&["import", file.to_str().expect("utf-8 temp path")]);
    }
}

/// A plausible event; tweak fields with struct update syntax.
pub fn event(i: i64, path: &str) -> Event {
    Event {
        ts_ns: 1_764_000_000_000_000_000 + i * 1_500,
        pid: 1000 + (i % 7) as u32,
        tid: 1000 + (i % 7) as u32,
        ppid: 1,
        uid: 1000,
        gid: 1000,
        comm: Str::from("cat"),
        syscall: Syscall::Openat,
        path: Str::from(path),
        path_source: PathSource::File,
        path_truncated: false,
        raw_path: Str::from(path),
        dirfd: Some(-100),
        flags: 0x80000,
        mode: 0,
        ret: 3,
        ..Event::default()
    }
}

/// Writes events as JSON lines to `path`.
pub fn write_jsonl(path: &Path, events: &[Event]) {
    let text: String = events.iter().map(|e| e.to_json_line() + "\n").collect();
    std::fs::write(path, text).expect("write jsonl");
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// CI runs as root on a kernel that can capture, so there a skipped live test is a failure.
pub fn live_capture_required() -> bool {
    std::env::var("OPEN_FORENSICS_REQUIRE_LIVE").as_deref() == Ok("1")
        || std::env::var("CI").as_deref() == Ok("true")
}

/// Whether live capture can run here; when it cannot, prints why (`SKIPPED …`). Where
/// [`live_capture_required`], a missing capability fails the test instead.
pub fn live_capture_available(test: &str) -> bool {
    let root = is_root();
    let btf = Path::new("/sys/kernel/btf/vmlinux").exists();
    let reason = match (root, btf) {
        (true, true) => return true,
        (false, _) => "not running as root",
        (true, false) => "no kernel BTF at /sys/kernel/btf/vmlinux",
    };
    skip(test, reason);
    false
}

/// A test (or part of one) that cannot run here for `reason`: where [`live_capture_required`]
/// (CI, whose test command installs everything) that fails it; elsewhere it prints
/// `SKIPPED test: reason`.
pub fn skip(test: &str, reason: &str) {
    if live_capture_required() {
        panic!("{test}: required here (CI=true or OPEN_FORENSICS_REQUIRE_LIVE=1), but {reason}; the README's test command installs what the suite needs");
    }
    // Straight to fd 2: libtest captures the print macros of passing tests, and a skip must show.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

impl Recorder {
    /// `record EXTRA…` on `store`, with its stderr kept for `stop` and `wait_line`.
    pub fn start(store: &TempStore, extra: &[&str]) -> Recorder {
        let mut args = vec!["record"];
        args.extend_from_slice(extra);
        Recorder::start_cmd(store.cmd(&args))
    }

    /// A recorder raising the alerts of `rules` live into the file `alerts`.
    pub fn alerting(store: &TempStore, rules: &Path, alerts: &Path) -> Recorder {
        let utf8 = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
        let (rules, alerts) = (utf8(rules), utf8(alerts));
        Recorder::start(store, &["--rules", &rules, "--alerts", &alerts])
    }

    /// Like [`Recorder::start`], from a prepared `record` command (another binary, another store).
    pub fn start_cmd(cmd: Command) -> Recorder {
        Recorder::spawn(cmd, false)
    }
}

/// Imports `good` then `bad` (one JSON line each) into a fresh store and asserts that `import`
/// refuses the file with exit 2, naming line 2 and `says`, and imports nothing.
pub fn assert_import_refuses(good: &str, bad: &str, says: &str) {
    let s = TempStore::new();
    let file = s.path("bad.jsonl");
    std::fs::write(&file, format!("{good}\n{bad}\n")).expect("write the lines");
    let out = s.run(&["import", file.to_str().expect("utf-8 path")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.jsonl:2:") && err.contains(says),
        "{says}: {err}"
    );
    assert!(
        !s.dir.exists() || read_store(&s.dir).is_empty(),
        "nothing imported"
    );
}

/// Every event in the store, in store order; asserts the scan had no errors.
pub fn read_store(dir: &Path) -> Vec<Event> {
    let mut out = Vec::new();
    let stats = Reader::open(dir)
        .expect("open the store")
        .scan(&TimeRange::default(), |e| {
            out.push(e.clone());
            ControlFlow::Continue(())
        });
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    out
}

/// The binary the hardening tests run: `OPEN_FORENSICS_BIN` when set (to replay a regression
/// test's scenario against another build, e.g. the one before a fix), else this build.
pub fn bin_under_test() -> PathBuf {
    std::env::var_os("OPEN_FORENSICS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(bin)
}

/// `BIN --store STORE ARGS…` with [`bin_under_test`], stdin closed; `store` may be any path.
pub fn cmd_at(store: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin_under_test());
    c.arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .env("OPEN_FORENSICS_CONFIG", "/dev/null");
    c
}

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The 1-based line of `file` holding the first `needle` after the first line holding `anchor`:
/// positions in a shipped rule file, found rather than written down, so that tests of messages
/// keep holding when the file grows.
pub fn line_after(file: &str, anchor: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(file).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let from = lines
        .iter()
        .position(|l| l.contains(anchor))
        .unwrap_or_else(|| panic!("{file}: no {anchor:?}"));
    from + 1
        + lines[from..]
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{file}: no {needle:?} after {anchor:?}"))
}

/// The recorded fixture scenarios (`fixtures/segments/*`), sorted.
pub fn scenarios() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures_dir().join("segments"))
        .expect("fixtures/segments")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The fixture scenarios recorded with a schema older than `schema` (the kept segments that prove
/// old schemas stay readable): `evasion` was recorded with schema 4, `lifecycle` and
/// `baseline_busy` with 5, `falco` with 7, the others before.
pub fn scenarios_before(schema: u32) -> Vec<String> {
    const RECORDED_WITH: [(&str, u32); 4] = [
        ("evasion", 4),
        ("lifecycle", 5),
        ("baseline_busy", 5),
        ("falco", 7),
    ];
    scenarios()
        .into_iter()
        .filter(|s| RECORDED_WITH.iter().all(|(n, v)| n != s || *v < schema))
        .collect()
}

/// A small tmpfs, unmounted on drop (lazily: even if something still holds it).
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("mountpoint");
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(st.success(), "mount tmpfs: {st}");
        Tmpfs { dir }
    }

    /// Fills the filesystem with `filler` until a write fails with ENOSPC; returns its path.
    pub fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.dir.path().join("filler");
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 1 << 16];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
        let _ = f.write_all(&chunk[..512]);
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
