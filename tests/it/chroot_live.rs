//! Live capture (issue #25): a chroot renames nothing, and what a process opens and runs carries
//! the identity of the file. The probes walk every path up to the top of the mount tree, so a
//! chrooted process's `path` and `exe` are the host's, its root rides along on each open, and
//! each successful open and each exec names the file by device and inode, in stat's encoding.
//! Root only; every check is filtered by the pids of the children these tests fork.
//!
//! `root` and the identities are not stored yet (that is the store's part), so these tests read
//! them where capture makes them: the probes loaded in this process (`capture::run`), their
//! records decoded as the recorder decodes them. This process's own opens are not captured
//! there (the probes leave out their loader), which is why every open is made by a child.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Duration;

use open_forensics::capture::decode::{Decoder, ProcKind, Record};
use open_forensics::capture::{self, Batch, Gauges, QUEUE_BATCHES};
use open_forensics::event::{Event, PathSource};
use open_forensics::file_id::FileId;
use open_forensics::process::Process;

use crate::capture_paths::{cstr, in_child, Step};
use crate::helpers::{self, read_store, TempStore};
use crate::recorder::Recorder;

/// The probes, loaded and attached in this process until [`Probes::stop`].
struct Probes {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
    /// Takes every batch as it comes (a full queue would hold the capture back).
    collector: std::thread::JoinHandle<Vec<Batch>>,
}

impl Probes {
    fn start() -> Probes {
        let (tx, batches) = sync_channel(QUEUE_BATCHES);
        let (ready_tx, ready) = sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let opts = capture::Options {
                ring_bytes: 16 << 20,
                no_ia32: true,
            };
            capture::run(
                &opts,
                tx,
                Arc::new(Gauges::default()),
                |_| {
                    let _ = ready_tx.send(());
                    Ok(())
                },
                || stopped.load(Ordering::Relaxed),
            )
        });
        if ready.recv_timeout(Duration::from_secs(60)).is_err() {
            panic!("the probes did not attach: {:?}", thread.join());
        }
        let collector = std::thread::spawn(move || batches.iter().collect());
        Probes {
            stop,
            thread,
            collector,
        }
    }

    /// Detaches, and decodes every record: the opens and exec images of `pids`.
    fn stop(self, pids: &[u32]) -> (Vec<Event>, Vec<Process>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .expect("capture thread")
            .expect("capture");
        let mut decoder = Decoder::default();
        let (mut opens, mut execs) = (Vec::new(), Vec::new());
        for b in self.collector.join().expect("collector") {
            for rec in b.records() {
                match decoder.decode_any(rec, 0).expect("decode") {
                    Record::Open(e, _) if pids.contains(&e.pid) => opens.push(e),
                    Record::Proc(p) if p.kind == ProcKind::Exec && pids.contains(&p.image.pid) => {
                        execs.push(p.image)
                    }
                    _ => {}
                }
            }
        }
        (opens, execs)
    }
}

fn id_of(p: impl AsRef<Path>) -> FileId {
    FileId::of(&std::fs::metadata(p).expect("stat"))
}

fn root_of(e: &Event) -> Option<String> {
    e.root.as_ref().map(|r| r.lossy().into_owned())
}

/// The issue's own evasion, `chroot("/etc"); chdir("/"); open("/shadow")`, with a rule
/// `path: /etc/shadow`: the open is stored as /etc/shadow (the raw path as passed) and the rule
/// raises its alert. It was stored as /shadow, and no path rule could see it.
#[test]
fn chroot_read_of_etc_shadow_is_stored_under_its_host_path_and_alerts() {
    if !helpers::live_capture_available(
        "chroot_read_of_etc_shadow_is_stored_under_its_host_path_and_alerts",
    ) {
        return;
    }
    let store = TempStore::new();
    let rules = store.path("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: shadow\n    description: password hashes\n    severity: high\n    path: /etc/shadow\n",
    )
    .expect("write rules");
    let alerts = store.path("alerts.jsonl");
    let rec = Recorder::alerting(&store, &rules, &alerts);
    let child = in_child(&[
        Step::Chroot(c"/etc".into()),
        Step::Chdir(c"/".into()),
        Step::Open(c"/shadow".into()),
    ]);
    rec.stop();
    let got: Vec<(String, String)> = read_store(&store.dir)
        .into_iter()
        .filter(|e| e.pid == child)
        .map(|e| (e.path.lossy().into_owned(), e.raw_path.lossy().into_owned()))
        .collect();
    assert_eq!(got, [("/etc/shadow".to_string(), "/shadow".to_string())]);
    let alerts = std::fs::read_to_string(&alerts).expect("alerts");
    let pid = format!("\"pid\":{child},");
    assert!(
        alerts
            .lines()
            .any(|l| l.contains(&pid) && l.contains("\"/etc/shadow\"")),
        "no alert for pid {child}: {alerts}"
    );
}

/// In a jail: a file, a hard link to it, a failed absolute and a failed relative open; then the
/// same file opened by a process that is not chrooted. Each path is the host's, the chrooted
/// opens carry the jail as `root`, the failed absolute open is the root joined with the raw path
/// (`..` stopping at the root), and both names of the file have the identity `stat` gives.
#[test]
fn chrooted_opens_carry_the_root_and_the_files_identity() {
    if !helpers::live_capture_available("chrooted_opens_carry_the_root_and_the_files_identity") {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let jail = std::fs::canonicalize(work.path())
        .expect("canonical")
        .join("jail");
    std::fs::create_dir_all(jail.join("etc")).expect("mkdir");
    let (secret, link) = (jail.join("etc/secret"), jail.join("etc/link"));
    std::fs::write(&secret, b"x").expect("write");
    std::fs::hard_link(&secret, &link).expect("link");
    let probes = Probes::start();
    let jailed = in_child(&[
        Step::Chroot(cstr(&jail)),
        Step::Chdir(c"/etc".into()),
        Step::Open(c"/etc/secret".into()),
        Step::Open(c"link".into()),
        Step::Open(c"/../../missing".into()),
        Step::Open(c"../../gone".into()),
    ]);
    let host = in_child(&[Step::Open(cstr(&secret))]);
    let (opens, _) = probes.stop(&[jailed, host]);

    let s = |p: &Path| p.display().to_string();
    let got: Vec<_> = opens
        .iter()
        .map(|e| {
            (
                e.pid,
                e.path.lossy().into_owned(),
                e.raw_path.lossy().into_owned(),
                e.path_source,
                root_of(e),
            )
        })
        .collect();
    let root = Some(s(&jail));
    let want = vec![
        (
            jailed,
            s(&secret),
            "/etc/secret".into(),
            PathSource::File,
            root.clone(),
        ),
        (
            jailed,
            s(&link),
            "link".into(),
            PathSource::File,
            root.clone(),
        ),
        (
            jailed,
            s(&jail.join("missing")),
            "/../../missing".into(),
            PathSource::Root,
            root.clone(),
        ),
        (
            jailed,
            s(&jail.join("gone")),
            "../../gone".into(),
            PathSource::Cwd,
            root,
        ),
        (host, s(&secret), s(&secret), PathSource::File, None),
    ];
    assert_eq!(got, want);
    let files: Vec<Option<FileId>> = opens.iter().map(|e| e.file).collect();
    let id = id_of(&secret);
    assert_eq!(files, [Some(id), Some(id), None, None, Some(id)]);
    assert_eq!(std::fs::metadata(&link).expect("stat").ino(), id.ino);
}

/// An exec record names the executable by identity: a copy of `true` run from its host path and
/// from inside a jail (where it sits at /bin/true): `exe` is the host's path both times, and the
/// identity is the one `stat` gives for that path, not /usr/bin/true's.
#[test]
fn exec_records_carry_the_executables_host_path_and_identity() {
    if !helpers::live_capture_available("exec_records_carry_the_executables_host_path_and_identity")
    {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let jail = std::fs::canonicalize(work.path()).expect("canonical");
    std::fs::create_dir_all(jail.join("bin")).expect("mkdir");
    // A static binary runs in an empty jail; `true` is not static, so the jail gets what ldd
    // names at the same paths.
    let copy = jail.join("bin/true");
    std::fs::copy("/usr/bin/true", &copy).expect("copy");
    let ldd = Command::new("ldd").arg(&copy).output().expect("ldd");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        if let Some(lib) = line.split_whitespace().find(|w| w.starts_with('/')) {
            let to = jail.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::copy(lib, &to).expect("copy a library");
        }
    }
    let probes = Probes::start();
    let run = |c: &mut Command| {
        let child = c.spawn().expect("spawn");
        let pid = child.id();
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{c:?}");
        pid
    };
    let direct = run(&mut Command::new(&copy));
    let jailed = run(Command::new("chroot").arg(&jail).arg("/bin/true"));
    let (_, execs) = probes.stop(&[direct, jailed]);
    let copy_s = copy.display().to_string();
    type Image = (u32, Option<String>, Option<FileId>, Option<String>);
    let mine: Vec<Image> = execs
        .iter()
        .filter(|p| p.exe.as_ref().is_some_and(|e| e.lossy() == copy_s))
        .map(|p| {
            (
                p.pid,
                p.exe.as_ref().map(|e| e.lossy().into_owned()),
                p.exe_id,
                p.root.as_ref().map(|r| r.lossy().into_owned()),
            )
        })
        .collect();
    let (exe, id) = (Some(copy_s.clone()), Some(id_of(&copy)));
    assert_eq!(
        mine,
        [
            (direct, exe.clone(), id, None),
            (jailed, exe, id, Some(jail.display().to_string())),
        ]
    );
    assert_ne!(id, Some(id_of("/usr/bin/true")));
    // chroot(8) itself ran /usr/sbin/chroot first: that image is the host's binary.
    let chroot_bin = execs
        .iter()
        .find(|p| p.pid == jailed && p.exe.as_ref().is_some_and(|e| e.lossy() != copy_s))
        .expect("the chroot program's own image");
    let path = chroot_bin.exe.as_ref().expect("exe").lossy().into_owned();
    assert_eq!(chroot_bin.exe_id, Some(id_of(&path)), "{path}");
}
