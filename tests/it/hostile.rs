//! Hostile files around the store and the outputs (issue #26, parts 4 and 6, and 5's temporary
//! copies): a planted hard link, symbolic link or file of another user's never makes a command
//! write where it points; a reader's decompressed copy never outlives it. Each test is named
//! after the defect it pins, and runs against `OPEN_FORENSICS_BIN` when set (to show the build
//! before the fix failing it).

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::helpers::{cmd_at, event, is_root, write_jsonl, TempStore};
use crate::nobody::{Nobody, NOBODY};

const RULE: &str = "rules:\n  - name: shadow\n    description: shadow read\n    severity: high\n    tags: [t1]\n    path: /etc/shadow\n";

fn text(o: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn import_more(s: &TempStore, name: &str) -> Output {
    let file = s.path(name);
    write_jsonl(&file, &[event(1, "/b")]);
    cmd_at(&s.dir, &["import", file.to_str().unwrap()])
        .output()
        .unwrap()
}

/// `ln /some/file STORE/store.lock; record --store STORE` truncated the linked file and wrote the
/// pid into it. Now a lock file with another link, or of another user's, is refused (exit 2)
/// before anything is written to it.
#[test]
fn hard_linked_store_lock_is_refused_and_the_linked_file_kept() {
    let s = TempStore::new();
    s.import(&[event(0, "/a")]);
    let victim = s.path("victim");
    std::fs::write(&victim, "precious").unwrap();
    let lock = s.dir.join("store.lock");
    std::fs::remove_file(&lock).unwrap();
    std::fs::hard_link(&victim, &lock).unwrap();
    let r = import_more(&s, "more.jsonl");
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("store.lock") && err.contains("2 hard links"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    if is_root() {
        std::fs::remove_file(&lock).unwrap();
        std::fs::write(&lock, "").unwrap();
        std::os::unix::fs::chown(&lock, Some(NOBODY), Some(NOBODY)).unwrap();
        let r = import_more(&s, "more2.jsonl");
        assert_eq!(r.status.code(), Some(2), "{}", text(&r));
        assert!(
            String::from_utf8_lossy(&r.stderr).contains("owned by uid 65534"),
            "{}",
            text(&r)
        );
        assert_eq!(std::fs::read_to_string(&lock).unwrap(), "");
    }
    std::fs::remove_file(&lock).unwrap();
    let r = import_more(&s, "more3.jsonl");
    assert!(r.status.success(), "{}", text(&r));
}

/// `export --format parquet --out pq` with `pq/events` a symbolic link wrote into the link's
/// target. Now a link anywhere under --out is refused (exit 2) and nothing is written there.
#[test]
fn export_parquet_through_a_linked_table_directory_is_refused() {
    let s = TempStore::new();
    s.import(&[event(0, "/a"), event(1, "/b")]);
    let out = s.path("pq");
    let elsewhere = s.path("elsewhere");
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, out.join("events")).unwrap();
    let export = || {
        cmd_at(
            &s.dir,
            &[
                "export",
                "--format",
                "parquet",
                "--out",
                out.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap()
    };
    let r = export();
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("pq/events") && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // Without the link the same export writes its three tables.
    std::fs::remove_file(out.join("events")).unwrap();
    let r = export();
    assert!(r.status.success(), "{}", text(&r));
    for t in ["events", "processes", "losses"] {
        assert!(out.join(t).is_dir(), "{t}");
    }
}

/// Root's `record --alerts pub/alerts.jsonl`, with a link an unprivileged user planted there (a
/// 0777 directory; `fs.protected_symlinks=0` or not, a sticky one), appended alerts to a
/// root-owned file. Now such an alerts (or health) file is refused, exit 2, before recording.
#[test]
fn alerts_file_planted_by_another_user_is_refused() {
    if !is_root() {
        crate::helpers::skip("alerts_file_planted_by_another_user_is_refused", "not root");
        return;
    }
    let nb = Nobody::new();
    let s = TempStore::new();
    let rules = s.path("r.yaml");
    std::fs::write(&rules, RULE).unwrap();
    let victim = s.path("victim");
    std::fs::write(&victim, "precious").unwrap();
    let public = nb.dir().join("pub");
    std::fs::create_dir(&public).unwrap();
    let alerts = public.join("alerts.jsonl");
    let record = |extra: &[&str]| {
        let mut args = vec![
            "record",
            "--duration",
            "1s",
            "--rules",
            rules.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        cmd_at(&s.dir, &args).output().unwrap()
    };
    let alerts_arg = ["--alerts", alerts.to_str().unwrap()];
    let plant = |how: &str| {
        let _ = std::fs::remove_file(&alerts);
        match how {
            "symlink" => {
                symlink(&victim, &alerts).unwrap();
                std::os::unix::fs::lchown(&alerts, Some(NOBODY), Some(NOBODY)).unwrap();
            }
            _ => std::fs::hard_link(&victim, &alerts).unwrap(),
        }
    };
    let cases: [(u32, &str, &str); 4] = [
        (0o777, "symlink", "without the sticky bit"),
        (0o1777, "symlink", "symbolic link"),
        (0o1777, "hardlink", "2 hard links"),
        (0o777, "hardlink", "without the sticky bit"),
    ];
    for (mode, how, why) in cases {
        std::fs::set_permissions(&public, std::fs::Permissions::from_mode(mode)).unwrap();
        plant(how);
        let r = record(&alerts_arg);
        assert_eq!(r.status.code(), Some(2), "{mode:o} {how}: {}", text(&r));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            err.contains(why) && err.contains("alerts.jsonl"),
            "{mode:o} {how}: {err}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
    // The health file: a link there is refused the same way.
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let health = public.join("health.json");
    symlink(&victim, &health).unwrap();
    let r = record(&["--stats-file", health.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("symbolic link"),
        "{}",
        text(&r)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

/// A store with one sealed segment whose database is larger than the 64 MiB decompressed in
/// memory (long, distinct paths: the sealed file stays small).
fn big_store() -> (TempStore, usize) {
    let s = TempStore::new();
    let n = 18_000;
    let events: Vec<_> = (0..n)
        .map(|i| event(i as i64, &format!("/{}{i}", "p".repeat(4000))))
        .collect();
    s.import(&events);
    let reader = open_forensics::store::Reader::open(&s.dir).unwrap();
    let db: u64 = reader.segments().iter().map(|g| g.meta.db_bytes).sum();
    assert_eq!(reader.segments().len(), 1);
    assert!(db > 64 << 20, "only {db} bytes: not the large-segment path");
    (s, n)
}

/// The descriptors of `pid` whose target lies under `dir`.
fn fds_under(pid: u32, dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    rd.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.starts_with(dir))
        .map(|t| t.display().to_string())
        .collect()
}

/// A reader interrupted with Ctrl-C while decompressing a segment larger than 64 MiB left the
/// decompressed copy in `$TMPDIR`. Now the copy never has a name: while it is being written
/// `$TMPDIR` shows nothing, and after SIGINT nothing is left.
#[test]
fn reader_interrupted_while_decompressing_leaves_no_copy() {
    let (s, n) = big_store();
    let tmpdir = s.path("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    // The whole segment reads, through the unnamed copy.
    let r = cmd_at(&s.dir, &["query", "--sql", "SELECT count(*) FROM events"])
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stdout).contains(&n.to_string()),
        "{}",
        text(&r)
    );
    assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0);

    let mut child = cmd_at(&s.dir, &["query", "--sql", "SELECT count(*) FROM events"])
        .env("TMPDIR", &tmpdir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let fds = fds_under(child.id(), &tmpdir);
        if !fds.is_empty() {
            break fds;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the reader ended before its copy was seen"
        );
        assert!(Instant::now() < until, "no copy in $TMPDIR within 60 s");
        std::thread::sleep(Duration::from_millis(1));
    };
    let named: Vec<_> = std::fs::read_dir(&tmpdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait().unwrap();
    let left: Vec<_> = std::fs::read_dir(&tmpdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        named.is_empty() && left.is_empty(),
        "copy {seen:?}: named while reading {named:?}, left after SIGINT {left:?}"
    );
}

/// "Permission denied (os error 13): Permission denied (os error 13)": an error and the cause its
/// message already ends with were both printed. Now each is said once.
#[test]
fn permission_denied_is_said_once() {
    if !is_root() {
        crate::helpers::skip("permission_denied_is_said_once", "not root");
        return;
    }
    let nb = Nobody::new();
    let store = nb.dir().join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = nb
        .cmd()
        .arg("--store")
        .arg(&store)
        .args(["query", "--sql", "SELECT 1"])
        .env("OPEN_FORENSICS_CONFIG", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1), "{}", text(&r));
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(err.matches("Permission denied").count(), 1, "{err}");
}

/// `--store` given a symbolic link to a directory said "not a directory". Now it says it is a
/// link, to where, and why a store is never reached through one (exit 2).
#[test]
fn store_given_a_symlink_says_so_and_why() {
    let s = TempStore::new();
    s.import(&[event(0, "/a")]);
    let link = s.path("link");
    symlink(&s.dir, &link).unwrap();
    for args in [&["segments"][..], &["import", "/dev/null"][..]] {
        let r = cmd_at(&link, args).output().unwrap();
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", text(&r));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            err.contains("symbolic link (to ")
                && err.contains(s.dir.to_str().unwrap())
                && !err.contains("not a directory"),
            "{args:?}: {err}"
        );
    }
}

/// `segments` exited 0 after printing an error. Whatever it cannot read, an error on stderr goes
/// with a non-zero exit (warnings, for entries that are not segments, do not).
#[test]
fn segments_exits_nonzero_whenever_it_prints_an_error() {
    let s = TempStore::new();
    s.import(&[event(0, "/a")]);
    let plant: [(&str, &[u8]); 3] = [
        ("0000000007.seg.zst", b"not a segment"),
        ("0000000008.active.db", &[7u8; 4096]),
        ("0000000009.seg.zst", &[]),
    ];
    for (name, bytes) in plant {
        let p = s.dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let r = cmd_at(&s.dir, &["segments", "--format", "jsonl"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains("error"), "{name}: {}", text(&r));
        assert_eq!(r.status.code(), Some(1), "{name}: {}", text(&r));
        std::fs::remove_file(&p).unwrap();
    }
}
