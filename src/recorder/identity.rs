//! The recorder's identity checks, which rules rely on to see through names:
//!
//! - [`ExeCheck`] decides `Process::exe_verified` for each image the recorder learns (exec, fork,
//!   the `/proc` snapshot): the image's executable is the host's own file at `exe` (its identity
//!   equals a `stat` of that path in the recorder's mount namespace), and the process is in that
//!   namespace and not chrooted. An allow-list of executables holds only for such images.
//! - [`Watched`] sets `Event::alias_of`: the identities of a set of watched files (sensitive files
//!   of every Linux host, and every exact path the live rules name) map to their paths, so an open
//!   of the same file under another name (a hard link, a bind mount, a chroot's view) names the
//!   watched path too.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::bytes::Str;
use crate::event::Event;
use crate::file_id::FileId;
use crate::process::Process;
use crate::rules::RuleSet;

/// Files watched on every host whatever the rules: what credential theft and persistence go
/// after. Globs are not watched (a `stat` needs a name); see docs/rules.md.
pub const SENSITIVE_FILES: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/passwd",
    "/etc/group",
    "/etc/sudoers",
    "/etc/security/opasswd",
    "/etc/ssh/sshd_config",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/root/.ssh/authorized_keys",
    "/root/.ssh/id_rsa",
    "/root/.ssh/id_ecdsa",
    "/root/.ssh/id_ed25519",
    "/etc/crontab",
    "/etc/ld.so.preload",
    "/etc/pam.conf",
];

/// How long a `stat` of an executable's path is trusted to confirm an identity (a mismatch is
/// always checked again: a binary replaced by an upgrade is seen at once).
const EXE_STAT_TTL: Duration = Duration::from_secs(1);

/// How often (event time) the watched files are stat'ed again, for replacements no open showed.
pub const RESTAT_EVERY_NS: i64 = 10_000_000_000;

/// The host's view: pid 1's mount namespace and root, where paths are looked up. The recorder may
/// run in a mount namespace of its own (the shipped service unit's `ProtectSystem`,
/// `PrivateTmp`), and host paths are what pid 1's namespace names. Where pid 1 cannot be inspected
/// (no `CAP_SYS_PTRACE` over it), the recorder's own view.
fn host_view() -> (Option<u32>, &'static str) {
    let init = mount_namespace(Path::new("/proc/1/ns/mnt"));
    if init.is_some() && stat_in("/proc/1/root", b"/").is_some() {
        (init, "/proc/1/root")
    } else {
        (mount_namespace(Path::new("/proc/self/ns/mnt")), "/")
    }
}

/// The identity of what `path` names now below `root` (following symlinks, as an open does).
fn stat_in(root: &str, path: &[u8]) -> Option<FileId> {
    let mut full = root.trim_end_matches('/').as_bytes().to_vec();
    full.extend_from_slice(path);
    std::fs::metadata(Path::new(std::ffi::OsStr::from_bytes(&full)))
        .ok()
        .map(|m| FileId::of(&m))
}

/// The mount namespace's inode from a `/proc/PID/ns/mnt` link (`mnt:[4026531841]`).
fn mount_namespace(link: &Path) -> Option<u32> {
    let l = std::fs::read_link(link).ok()?;
    let s = l.to_str()?;
    s[s.find('[')? + 1..s.find(']')?].parse().ok()
}

/// Decides `exe_verified`, with a cache of executables' identities by path.
pub struct ExeCheck {
    /// The host's mount namespace, whose paths rules name.
    host_mntns: Option<u32>,
    /// Where host paths are looked up.
    root: &'static str,
    cache: HashMap<Box<[u8]>, (Option<FileId>, Instant)>,
}

impl ExeCheck {
    /// Judges against the host (see `host_view`).
    pub fn new() -> ExeCheck {
        let (mntns, root) = host_view();
        ExeCheck::in_namespace(mntns, root)
    }

    pub fn in_namespace(host_mntns: Option<u32>, root: &'static str) -> ExeCheck {
        ExeCheck {
            host_mntns,
            root,
            cache: HashMap::new(),
        }
    }

    /// `Some(true)` when `p`'s executable is the host's file at its path, `Some(false)` when it
    /// only bears the name (another file, another mount namespace, a chroot), `None` when its
    /// identity is unknown.
    pub fn verdict(&mut self, p: &Process) -> Option<bool> {
        let id = p.exe_id?;
        let exe = p.exe.as_ref()?.as_bytes();
        if p.root.is_some() || self.host_mntns.is_none() || p.mntns != self.host_mntns {
            return Some(false);
        }
        if let Some((known, at)) = self.cache.get(exe) {
            if *known == Some(id) && at.elapsed() < EXE_STAT_TTL {
                return Some(true);
            }
        }
        // ` (deleted)` ends an unlinked executable's path: no file there is the one it runs.
        let now = stat_in(self.root, exe);
        self.cache.insert(exe.into(), (now, Instant::now()));
        Some(now == Some(id))
    }

    /// Sets `p.exe_verified` (the process table calls this on every image it makes).
    pub fn judge(&mut self, p: &mut Process) {
        p.exe_verified = self.verdict(p);
    }
}

/// The watched files' identities, kept current, and the aliases they give opens.
pub struct Watched {
    /// Where host paths are looked up.
    root: &'static str,
    paths: Vec<Str>,
    by_path: FxHashMap<Box<[u8]>, usize>,
    /// Every key of `by_path`, and of `by_id`, has its bit set: most opens are of no watched
    /// path and no watched file, and a bit answers that without hashing the path (`mark` runs
    /// for every event: this halved its cost, docs/benchmarks.md).
    path_bits: Sieve,
    id_bits: Sieve,
    ids: Vec<Option<FileId>>,
    by_id: FxHashMap<FileId, usize>,
    restat_at_ns: i64,
}

/// A set of 1024 bits; a key's bit set means the key may be in the map it stands for.
#[derive(Default)]
struct Sieve([u64; 16]);

impl Sieve {
    fn set(&mut self, bit: usize) {
        self.0[(bit / 64) % 16] |= 1 << (bit % 64);
    }

    fn has(&self, bit: usize) -> bool {
        self.0[(bit / 64) % 16] & (1 << (bit % 64)) != 0
    }

    /// A path's bit: its length and last byte.
    fn path_bit(p: &[u8]) -> usize {
        let last = usize::from(p.last().copied().unwrap_or(0));
        ((p.len().wrapping_mul(0x9e37_79b1) >> 7) ^ last.wrapping_mul(0x85eb)) % 1024
    }

    /// A file's bit: inode numbers vary in their low bits.
    fn id_bit(f: FileId) -> usize {
        (f.ino ^ f.dev.rotate_left(17)) as usize % 1024
    }
}

impl Watched {
    /// [`SENSITIVE_FILES`] and every exact path `rules` name.
    pub fn for_rules(rules: Option<&RuleSet>) -> Watched {
        let mut paths: Vec<String> = SENSITIVE_FILES.iter().map(|s| s.to_string()).collect();
        paths.extend(rules.map(RuleSet::exact_paths).unwrap_or_default());
        Watched::new(paths, host_view().1)
    }

    /// Watches `paths` below `root` (first named first: when two are one file, an alias names
    /// the first).
    pub fn new(paths: Vec<String>, root: &'static str) -> Watched {
        let mut w = Watched {
            root,
            paths: Vec::new(),
            by_path: FxHashMap::default(),
            path_bits: Sieve::default(),
            id_bits: Sieve::default(),
            ids: Vec::new(),
            by_id: FxHashMap::default(),
            restat_at_ns: i64::MIN,
        };
        for p in paths {
            if !w.by_path.contains_key(p.as_bytes()) {
                w.by_path.insert(p.as_bytes().into(), w.paths.len());
                w.path_bits.set(Sieve::path_bit(p.as_bytes()));
                w.paths.push(Str::from(p.as_str()));
                w.ids.push(None);
            }
        }
        w.restat();
        w
    }

    /// Stats every watched path again.
    pub fn restat(&mut self) {
        for i in 0..self.paths.len() {
            let id = stat_in(self.root, self.paths[i].as_bytes());
            self.set(i, id);
        }
    }

    /// Path `i` is file `id` now.
    fn set(&mut self, i: usize, id: Option<FileId>) {
        if self.ids[i] == id {
            return;
        }
        if let Some(old) = self.ids[i] {
            if self.by_id.get(&old) == Some(&i) {
                self.by_id.remove(&old);
            }
        }
        self.ids[i] = id;
        if let Some(id) = id {
            // The first path named keeps an identity two paths share.
            let keep = self.by_id.get(&id).is_some_and(|&j| j < i);
            if !keep {
                self.by_id.insert(id, i);
            }
        }
        // Rare (a watched file replaced): bits of removed identities go too.
        self.id_bits = Sieve::default();
        for id in self.by_id.keys() {
            self.id_bits.set(Sieve::id_bit(*id));
        }
    }

    /// Sets `ev.alias_of`: an open of a watched file under another name names the watched path;
    /// an open of a watched path with another identity has the path stat'ed again.
    pub fn mark(&mut self, ev: &mut Event) {
        if ev.ts_ns >= self.restat_at_ns.saturating_add(RESTAT_EVERY_NS) {
            self.restat_at_ns = ev.ts_ns;
            self.restat();
        }
        ev.alias_of = None;
        let Some(file) = ev.file else {
            return;
        };
        let path = ev.path.as_bytes();
        if self.path_bits.has(Sieve::path_bit(path)) {
            if let Some(&i) = self.by_path.get(path) {
                // Another identity under a watched path: the file was replaced, or the opener
                // sees another file there (a container's, a bind mount in a private namespace).
                // Ask the host, never the event, so that no process can re-point a watched path.
                if self.ids[i] != Some(file) {
                    let now = stat_in(self.root, path);
                    self.set(i, now);
                }
                return;
            }
        }
        if self.id_bits.has(Sieve::id_bit(file)) {
            if let Some(&i) = self.by_id.get(&file) {
                ev.alias_of = Some(self.paths[i].clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An open of a watched path that shows another file (a container's own /etc/shadow, a
    /// fake bind-mounted over it in a private namespace) does not re-point the watched path.
    #[test]
    fn another_file_at_a_watched_path_does_not_replace_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (secret, link, fake) = (
            tmp.path().join("secret"),
            tmp.path().join("link"),
            tmp.path().join("fake"),
        );
        std::fs::write(&secret, "x").unwrap();
        std::fs::hard_link(&secret, &link).unwrap();
        std::fs::write(&fake, "f").unwrap();
        let mut w = Watched::new(vec![secret.to_str().unwrap().to_owned()], "/");
        w.restat_at_ns = 0;
        let mut poison = open_of(&secret, 1);
        poison.file = stat_in("/", fake.as_os_str().as_bytes());
        w.mark(&mut poison);
        let mut ev = open_of(&link, 2);
        w.mark(&mut ev);
        assert_eq!(alias(&ev), Some(secret.as_os_str().as_bytes()));
    }

    fn open_of(path: &Path, ts_ns: i64) -> Event {
        Event {
            ts_ns,
            path: Str::new(path.as_os_str().as_bytes().to_vec()),
            file: stat_in("/", path.as_os_str().as_bytes()),
            ..Event::default()
        }
    }

    fn alias(ev: &Event) -> Option<&[u8]> {
        ev.alias_of.as_ref().map(|a| a.as_bytes())
    }

    /// Another name for a watched file (a hard link) names the watched path; the watched path
    /// itself, an unrelated file and an open without identity name nothing.
    #[test]
    fn a_hard_link_of_a_watched_file_is_its_alias() {
        let tmp = tempfile::tempdir().unwrap();
        let (secret, link, other) = (
            tmp.path().join("secret"),
            tmp.path().join("jail-secret"),
            tmp.path().join("other"),
        );
        std::fs::write(&secret, "x").unwrap();
        std::fs::hard_link(&secret, &link).unwrap();
        std::fs::write(&other, "y").unwrap();
        let secret_s = secret.to_str().unwrap().to_owned();
        let mut w = Watched::new(vec![secret_s.clone()], "/");
        let mut ev = open_of(&link, 1);
        w.mark(&mut ev);
        assert_eq!(alias(&ev), Some(secret_s.as_bytes()));
        for p in [&secret, &other] {
            let mut ev = open_of(p, 2);
            ev.alias_of = Some(Str::from("stale"));
            w.mark(&mut ev);
            assert_eq!(alias(&ev), None, "{p:?}");
        }
        let mut failed = open_of(&link, 3);
        failed.file = None;
        w.mark(&mut failed);
        assert_eq!(alias(&failed), None);
    }

    /// A watched file replaced by rename (as `passwd` replaces /etc/shadow) is followed: an open
    /// of the watched path teaches its new identity at once, a re-stat finds it otherwise.
    #[test]
    fn a_watched_file_replaced_by_rename_is_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = tmp.path().join("secret");
        let (new, link) = (tmp.path().join("nsecret"), tmp.path().join("link"));
        std::fs::write(&secret, "old").unwrap();
        let mut w = Watched::new(vec![secret.to_str().unwrap().to_owned()], "/");
        std::fs::write(&new, "new").unwrap();
        std::fs::hard_link(&new, &link).unwrap();
        std::fs::rename(&new, &secret).unwrap();
        // Within the re-stat period, only an open of the path tells.
        let mut ev = open_of(&link, 0);
        w.restat_at_ns = 0;
        w.mark(&mut ev);
        assert_eq!(alias(&ev), None);
        let mut ev = open_of(&secret, 1);
        w.mark(&mut ev);
        let mut ev = open_of(&link, 2);
        w.mark(&mut ev);
        assert!(alias(&ev).is_some());
        // Replaced again, and no open of the path: the next period's re-stat finds it.
        std::fs::remove_file(&link).unwrap();
        std::fs::write(&new, "newer").unwrap();
        std::fs::hard_link(&new, &link).unwrap();
        std::fs::rename(&new, &secret).unwrap();
        let mut ev = open_of(&link, RESTAT_EVERY_NS);
        w.mark(&mut ev);
        assert!(alias(&ev).is_some());
    }

    fn image(exe: &str, id: Option<FileId>, mntns: Option<u32>, root: Option<&str>) -> Process {
        Process {
            exe: Some(Str::from(exe)),
            exe_id: id,
            mntns,
            root: root.map(Str::from),
            ..Process::from_event(1, 0, 0, Str::from("x"), 0, 0)
        }
    }

    /// The host is pid 1's view when it can be inspected, else the recorder's own.
    #[test]
    fn the_host_is_pid_1s_view_or_the_recorders() {
        let c = ExeCheck::new();
        assert!(c.host_mntns.is_some());
        let init = mount_namespace(Path::new("/proc/1/ns/mnt"));
        let own = mount_namespace(Path::new("/proc/self/ns/mnt"));
        match c.root {
            "/proc/1/root" => assert_eq!(c.host_mntns, init),
            _ => assert_eq!((c.host_mntns, c.root), (own, "/")),
        }
    }

    /// The host's own file at its path, in the host's namespace, unchrooted: verified; a file
    /// that only bears the name, a chroot or another mount namespace: not; no identity: unknown.
    #[test]
    fn an_executable_is_verified_only_as_the_hosts_own_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (real, fake) = (tmp.path().join("passwd"), tmp.path().join("fake"));
        std::fs::write(&real, "r").unwrap();
        std::fs::write(&fake, "f").unwrap();
        let real_s = real.to_str().unwrap();
        let stat = |p: &[u8]| stat_in("/", p);
        let (real_id, fake_id) = (stat(real_s.as_bytes()), stat(fake.as_os_str().as_bytes()));
        let mut c = ExeCheck::in_namespace(Some(7), "/");
        assert_eq!(
            c.verdict(&image(real_s, real_id, Some(7), None)),
            Some(true)
        );
        // Cached: a second image is answered without a stat, and the same.
        assert_eq!(
            c.verdict(&image(real_s, real_id, Some(7), None)),
            Some(true)
        );
        assert_eq!(
            c.verdict(&image(real_s, fake_id, Some(7), None)),
            Some(false)
        );
        assert_eq!(
            c.verdict(&image(real_s, real_id, Some(8), None)),
            Some(false)
        );
        assert_eq!(
            c.verdict(&image(real_s, real_id, Some(7), Some("/jail"))),
            Some(false)
        );
        assert_eq!(c.verdict(&image(real_s, None, Some(7), None)), None);
        // Replaced (an upgrade): the new file is verified at once, despite the cache.
        std::fs::rename(&fake, &real).unwrap();
        assert_eq!(
            c.verdict(&image(real_s, fake_id, Some(7), None)),
            Some(true)
        );
        assert_eq!(
            c.verdict(&image(real_s, real_id, Some(7), None)),
            Some(false)
        );
        let mut p = image(real_s, fake_id, Some(7), None);
        c.judge(&mut p);
        assert_eq!(p.exe_verified, Some(true));
    }
}
#[cfg(test)]
mod manual {
    /// docs/rules.md lists [`super::SENSITIVE_FILES`], in order.
    #[test]
    fn the_manual_lists_the_watched_files() {
        let doc = include_str!("../../docs/rules.md");
        let listed = doc
            .split("```text\n")
            .find(|b| b.starts_with("/etc/shadow"))
            .and_then(|b| b.split("```").next())
            .expect("the watched files' block in docs/rules.md");
        let listed: Vec<&str> = listed.split_whitespace().collect();
        assert_eq!(listed, super::SENSITIVE_FILES);
    }
}
