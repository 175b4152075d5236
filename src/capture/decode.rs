//! Kernel record → [`Event`].
//!
//! A record (bpf/events.h) is the fixed `of_event_hdr`, `raw_len` bytes of the path exactly as the
//! process passed it, then `path_len` bytes of resolved components, each NUL-terminated, leaf
//! first, then `root_len` bytes of a chrooted process's root's components. Every walk goes up to
//! the top of the mount tree, so `path` and `root` are host paths. The header is read through the
//! type libbpf-cargo generates from the BPF object's BTF, so the layout is declared once, in C.
//!
//! The recorder decodes every open of the host, so [`Decoder`] does it without allocating per
//! event: comm, raw path and resolved path come from a bounded pool of recent strings (one hash
//! lookup and a reference count when the string was seen, which is most of the time), and the
//! path is joined in a reused buffer. `benches/decode.rs` counts its instructions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use super::skel::types;
use crate::bytes::Str;
use crate::event::{Event, PathSource, Syscall};
use crate::file_id::FileId;
use crate::process::Process;

type Hdr = types::of_event_hdr;
type ProcHdr = types::of_proc_hdr;

/// Bytes of the fixed part of a process record.
pub const PROC_HDR_LEN: usize = std::mem::size_of::<ProcHdr>();

const REC_OPEN: u32 = types::of_rec_kind::OF_REC_OPEN.0;
const REC_EXEC: u32 = types::of_rec_kind::OF_REC_EXEC.0;
const REC_FORK: u32 = types::of_rec_kind::OF_REC_FORK.0;
const REC_EXIT: u32 = types::of_rec_kind::OF_REC_EXIT.0;
const TRUNC_EXE: u8 = types::of_trunc::OF_TRUNC_EXE.0 as u8;
const TRUNC_ARGS: u8 = types::of_trunc::OF_TRUNC_ARGS.0 as u8;
const EXE_DELETED: u8 = types::of_exe_flags::OF_EXE_DELETED.0 as u8;

/// What a ring record is.
#[derive(Debug)]
// Opens are nearly every record: boxing them would cost an allocation each; process records are
// the rare, boxed ones.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    /// An open, and its process's start (boot clock ns): with the pid, the key of its process.
    Open(Event, u64),
    Proc(Box<ProcRecord>),
}

impl Record {
    pub fn ts_ns(&self) -> i64 {
        match self {
            Record::Open(e, _) => e.ts_ns,
            Record::Proc(p) => p.ts_ns,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcKind {
    Exec,
    Fork,
    Exit,
}

/// A process lifecycle record (bpf/events.h `of_proc_hdr`): what it says of the process image,
/// as a [`Process`], and what only the process table needs.
#[derive(Debug, Clone)]
pub struct ProcRecord {
    pub kind: ProcKind,
    /// When it happened, on the wall clock.
    pub ts_ns: i64,
    /// The process's and its parent's start on the boot clock: the keys the probes use.
    pub start_boot: u64,
    pub parent_start_boot: u64,
    pub exit_code: i32,
    /// Exec only: the executable (with ` (deleted)` when unlinked), argv, cgroup, container,
    /// tty, root. Its `source`, `exec_ns` and `parent` are the process table's to set.
    pub image: Process,
}

/// Any ring record (with a fresh [`Decoder`]; the recorder keeps one).
pub fn decode_any(rec: &[u8], anchor_ns: i64) -> Result<Record, DecodeError> {
    Decoder::default().decode_any(rec, anchor_ns)
}

/// Strings the pool keeps before it starts over: a bound on its memory (a few MiB) that still
/// holds the working set of a busy host's paths.
const POOL_MAX: usize = 1 << 16;

/// Decodes records, reusing the strings it has seen (see the module docs).
#[derive(Default)]
pub struct Decoder {
    pool: HashSet<Arc<[u8]>, FxBuildHasher>,
    /// Resolved paths by the component bytes the kernel sent (plain walks only: no cut, pseudo
    /// or deleted mark): a path seen before is neither joined nor hashed again. Cleared with
    /// the pool.
    walked: HashMap<Box<[u8]>, Arc<[u8]>, FxBuildHasher>,
    /// The kernel's directory cache as this decoder learnt it (bpf/opens.bpf.c): by slot id,
    /// the fill a defining record named and that directory's path.
    dirs: HashMap<u32, (u32, Arc<[u8]>), FxBuildHasher>,
    /// Records that used a slot whose defining record this decoder never saw (it was lost, or
    /// decoding started later): their path is the raw path, marked unresolved.
    pub unknown_dirs: u64,
    path: Vec<u8>,
    key: Vec<u8>,
}

/// Slot ids the decoder keeps before it starts over (the kernel has OF_DIR_SLOTS per CPU): a
/// bound on its memory whatever the records say.
const DIRS_MAX: usize = 1 << 20;

impl Decoder {
    /// Any ring record.
    pub fn decode_any(&mut self, rec: &[u8], anchor_ns: i64) -> Result<Record, DecodeError> {
        let mut out = Record::Open(Event::default(), 0);
        self.decode_into(rec, anchor_ns, &mut out)?;
        Ok(out)
    }

    /// Any ring record, into `out`: an open into the event `out` already holds, if it holds one
    /// (the recorder recycles released events), where strings and the process that are the same
    /// as before are kept rather than replaced — each replacement is two atomic reference-count
    /// updates and was, with the moves of whole events, a third of the store thread's time. On
    /// error `out` holds an unspecified open.
    pub fn decode_into(
        &mut self,
        rec: &[u8],
        anchor_ns: i64,
        out: &mut Record,
    ) -> Result<(), DecodeError> {
        let kind = rec
            .first_chunk::<4>()
            .map(|k| u32::from_ne_bytes(*k))
            .ok_or(DecodeError::Short(rec.len()))?;
        match kind {
            REC_OPEN => {
                let h = header(rec)?;
                if !matches!(out, Record::Open(..)) {
                    *out = Record::Open(Event::default(), 0);
                }
                let Record::Open(ev, start) = out else {
                    unreachable!("made an open above")
                };
                *start = h.proc_start;
                self.open(&h, rec, anchor_ns, ev)
            }
            REC_EXEC | REC_FORK | REC_EXIT => {
                *out = Record::Proc(Box::new(decode_proc(rec, anchor_ns)?));
                Ok(())
            }
            k => Err(DecodeError::Kind(k)),
        }
    }

    /// Decodes one open record; see [`decode`].
    pub fn decode(&mut self, rec: &[u8], anchor_ns: i64) -> Result<Event, DecodeError> {
        let h = header(rec)?;
        let mut ev = Event::default();
        self.open(&h, rec, anchor_ns, &mut ev)?;
        Ok(ev)
    }

    /// Sets `slot` to the pooled copy of `bytes`.
    fn intern_into(&mut self, slot: &mut Str, bytes: &[u8]) {
        if let Some(s) = self.pool.get(bytes) {
            set_shared(slot, s);
            return;
        }
        if self.pool.len() >= POOL_MAX {
            self.pool.clear();
            self.walked.clear();
        }
        let s: Arc<[u8]> = Arc::from(bytes);
        self.pool.insert(s.clone());
        *slot = Str::new(s);
    }

    fn open(
        &mut self,
        h: &Hdr,
        rec: &[u8],
        anchor_ns: i64,
        ev: &mut Event,
    ) -> Result<(), DecodeError> {
        let raw_len = usize::from(h.raw_len);
        let path_len = usize::from(h.path_len);
        let root_len = usize::from(h.root_len);
        let data = &rec[HDR_LEN..];
        if data.len() < raw_len + path_len + root_len {
            return Err(DecodeError::Short(rec.len()));
        }
        let raw = &data[..raw_len];
        let comps = &data[raw_len..raw_len + path_len];
        // Only a chrooted process's records carry a root: the join costs nobody else.
        let root_comps = &data[raw_len + path_len..raw_len + path_len + root_len];
        let mut root =
            (!root_comps.is_empty()).then(|| join_components(root_comps, h.root_cut != 0));
        let syscall = Syscall::from_code(h.syscall).ok_or(DecodeError::Syscall(h.syscall))?;
        let mut path_source =
            PathSource::from_code(h.path_source).ok_or(DecodeError::PathSource(h.path_source))?;
        let walk_cut = h.trunc & TRUNC_PATH != 0;
        // The directory part from the kernel's cache: the leaf (or nothing) is in the record.
        let cached = h.dir_slot != 0 && h.trunc & PATH_CACHED != 0;
        if h.dir_slot != 0 && !cached {
            self.define_dir(h, path_source, comps);
        }
        let plain_walk = path_source == PathSource::File
            && h.trunc & (TRUNC_PATH | PATH_PSEUDO | PATH_DELETED) == 0;
        // The walk's bytes, and for a cached directory its slot and fill (one fill of a slot is
        // one directory path for as long as the probes are loaded): what the path is a
        // function of.
        let mut key = std::mem::take(&mut self.key);
        if plain_walk && cached {
            key.clear();
            key.extend_from_slice(comps);
            key.extend_from_slice(&h.dir_slot.to_ne_bytes());
            key.extend_from_slice(&h.dir_gen.to_ne_bytes());
            // A walk's bytes always end in NUL: no uncached key ends like this.
            key.push(0xff);
        }
        // An uncached walk is its own key: no copy.
        let walk_key: &[u8] = if cached { &key } else { comps };
        if plain_walk {
            if let Some(p) = self.walked.get(walk_key) {
                set_shared(&mut ev.path, p);
                self.key = key;
                self.event(h, syscall, path_source, raw, root.as_deref(), anchor_ns, ev);
                return Ok(());
            }
        }
        let dir = if cached {
            match self.dirs.get(&h.dir_slot) {
                Some((gen, p)) if *gen == h.dir_gen => Some(p.clone()),
                _ => {
                    self.unknown_dirs += 1;
                    path_source = PathSource::Unresolved;
                    None
                }
            }
        } else {
            None
        };
        let plain_walk = plain_walk && path_source == PathSource::File;
        let mut path = std::mem::take(&mut self.path);
        path.clear();
        match path_source {
            // A pipe, socket or anonymous inode: the kernel's own name (pipe:[N]), not a path.
            PathSource::File if h.trunc & PATH_PSEUDO != 0 => {
                path.extend_from_slice(until_nul(comps))
            }
            PathSource::File => {
                if let Some(dir) = &dir {
                    path.extend_from_slice(dir);
                    path.push(b'/');
                    path.extend_from_slice(until_nul(comps));
                } else {
                    // The raw path, when absolute, still knows the top a cut walk lost.
                    let top = if walk_cut {
                        leading_component(raw)
                    } else {
                        None
                    };
                    join_into(&mut path, comps, walk_cut, top);
                }
                // As the kernel's d_path (and /proc/PID/fd) name an unlinked file.
                if h.trunc & PATH_DELETED != 0 {
                    path.extend_from_slice(b" (deleted)");
                }
            }
            PathSource::Cwd | PathSource::Dirfd => {
                // Rare (failed relative opens): allocating here is fine.
                let dir = match &dir {
                    Some(d) => d.to_vec(),
                    None => join_components(comps, walk_cut),
                };
                path = join_relative(root.as_deref(), &dir, raw);
            }
            // The walked directory is the root (mounts stacked on the top walk to `/`: none).
            PathSource::Root => {
                let dir = match &dir {
                    Some(d) => d.to_vec(),
                    None => join_components(comps, walk_cut),
                };
                path = join_relative(Some(&dir), &dir, raw);
                root = (dir != b"/").then_some(dir);
            }
            PathSource::Raw | PathSource::Unresolved => path.extend_from_slice(raw),
        }
        self.intern_into(&mut ev.path, &path);
        if plain_walk {
            if self.walked.len() >= POOL_MAX {
                self.walked.clear();
            }
            self.walked.insert(walk_key.into(), ev.path.bytes.clone());
        }
        self.key = key;
        self.path = path;
        self.event(h, syscall, path_source, raw, root.as_deref(), anchor_ns, ev);
        Ok(())
    }

    /// Learns the directory a record defines its slot with: the components after the leaf
    /// (a file) or all of them (a cwd or dirfd).
    fn define_dir(&mut self, h: &Hdr, source: PathSource, comps: &[u8]) {
        let dir = match source {
            PathSource::File if h.trunc & (TRUNC_PATH | PATH_PSEUDO) == 0 => {
                let leaf = comps
                    .iter()
                    .position(|&b| b == 0)
                    .map_or(comps.len(), |n| n + 1);
                &comps[leaf..]
            }
            PathSource::Cwd | PathSource::Dirfd | PathSource::Root if h.trunc & TRUNC_PATH == 0 => {
                comps
            }
            // The kernel never caches a cut or pseudo walk; a record claiming so is not trusted.
            _ => return,
        };
        if dir.is_empty() {
            return;
        }
        if self.dirs.len() >= DIRS_MAX {
            self.dirs.clear();
        }
        let path: Arc<[u8]> = join_components(dir, false).into();
        self.dirs.insert(h.dir_slot, (h.dir_gen, path));
    }

    /// Fills in the rest of `ev` from an open record whose path is resolved into `ev.path`.
    /// Every field is written (`ev` held another event): the process and user are the
    /// process table's to attach, and are left for it to compare.
    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        h: &Hdr,
        syscall: Syscall,
        path_source: PathSource,
        raw: &[u8],
        root: Option<&[u8]>,
        anchor_ns: i64,
        ev: &mut Event,
    ) {
        let comm: [u8; OF_COMM_LEN] = h.comm.map(|c| c as u8);
        let comm = until_nul(&comm);
        // Runs of opens by one thread are the rule: its name is checked before it is hashed.
        if *ev.comm.bytes == *comm {
            ev.comm.key = Str::NO_KEY;
        } else {
            self.intern_into(&mut ev.comm, comm);
        }
        // Most opens name an absolute path that is the resolved one: one string, not two.
        if raw == ev.path.as_bytes() {
            let Event { path, raw_path, .. } = ev;
            set_shared(raw_path, &path.bytes);
        } else {
            self.intern_into(&mut ev.raw_path, raw);
        }
        ev.ts_ns = (h.ts_ns as i64).wrapping_add(anchor_ns);
        ev.pid = h.pid;
        ev.tid = h.tid;
        ev.ppid = h.ppid;
        ev.uid = h.uid;
        ev.gid = h.gid;
        ev.syscall = syscall;
        ev.path_source = path_source;
        ev.path_truncated = h.trunc & (TRUNC_RAW | TRUNC_PATH) != 0;
        ev.dirfd = (h.has_dirfd != 0).then_some(h.dirfd);
        ev.flags = h.flags;
        ev.mode = h.mode;
        ev.ret = h.ret;
        // dev 0: no file walked (no superblock has device 0).
        ev.file = (h.dev != 0).then(|| FileId::from_kernel(h.dev, h.ino));
        match root {
            Some(r) => self.intern_into(ev.root.get_or_insert_with(Str::default), r),
            None => ev.root = None,
        }
        // The recorder's to set, from identities.
        ev.alias_of = None;
        ev.euid = Some(h.euid);
        ev.egid = Some(h.egid);
        ev.table = 0;
        ev.proc_key = Str::NO_KEY;
    }
}

/// Points `slot` at `bytes`, unless it does already (a reference count is an atomic update).
fn set_shared(slot: &mut Str, bytes: &Arc<[u8]>) {
    slot.key = Str::NO_KEY;
    if !Arc::ptr_eq(&slot.bytes, bytes) {
        slot.bytes = bytes.clone();
    }
}

const OF_COMM_LEN: usize = 16;

/// Decodes a process record.
pub fn decode_proc(rec: &[u8], anchor_ns: i64) -> Result<ProcRecord, DecodeError> {
    if rec.len() < PROC_HDR_LEN {
        return Err(DecodeError::Short(rec.len()));
    }
    // SAFETY: as in `header`: a #[repr(C)] struct of integers, at least PROC_HDR_LEN bytes.
    let h: ProcHdr = unsafe { std::ptr::read_unaligned(rec.as_ptr().cast::<ProcHdr>()) };
    let (exe_len, args_len, cg_len, root_len) = (
        usize::from(h.exe_len),
        usize::from(h.args_len),
        usize::from(h.cgroup_len),
        usize::from(h.root_len),
    );
    let data = &rec[PROC_HDR_LEN..];
    if data.len() < exe_len + args_len + cg_len + root_len {
        return Err(DecodeError::Short(rec.len()));
    }
    let kind = match h.kind {
        REC_EXEC => ProcKind::Exec,
        REC_FORK => ProcKind::Fork,
        _ => ProcKind::Exit,
    };
    let unset = |v: u32| (v != u32::MAX).then_some(v);
    let (mut exe, mut argv, mut cgroup, mut tty, mut root) = (None, None, None, None, None);
    if kind == ProcKind::Exec {
        let comps = &data[..exe_len];
        if !comps.is_empty() {
            let mut path = join_components(comps, h.trunc & TRUNC_EXE != 0);
            if h.exe_flags & EXE_DELETED != 0 {
                path.extend_from_slice(b" (deleted)");
            }
            exe = Some(path);
        }
        argv = Some(data[exe_len..exe_len + args_len].to_vec());
        let cg = &data[exe_len + args_len..exe_len + args_len + cg_len];
        // The root cgroup walks to no component at all: it is `/`.
        cgroup = Some(join_components(cg, false));
        let at = exe_len + args_len + cg_len;
        if root_len > 0 {
            root = Some(join_components(&data[at..at + root_len], false));
        }
        let t = c_bytes(&h.tty);
        if !t.is_empty() {
            tty = Some(crate::process::tty_display(&String::from_utf8_lossy(&t)));
        }
    }
    let cgroup = cgroup.map(Str::new);
    let image = Process {
        euid: h.euid,
        egid: h.egid,
        auid: unset(h.auid),
        sessionid: unset(h.sessionid),
        cgroup_id: h.cgroup_id,
        pidns: Some(h.pidns),
        mntns: Some(h.mntns),
        exe: exe.map(Str::new),
        argv: argv.map(Str::new),
        args_truncated: h.trunc & TRUNC_ARGS != 0,
        container_id: cgroup
            .as_ref()
            .and_then(|c| crate::process::container_id(c.as_bytes()))
            .map(|c| Str::from(c.as_str())),
        cgroup,
        tty: tty.as_deref().map(Str::from),
        root: root.map(Str::new),
        exe_id: (h.exe_dev != 0).then(|| FileId::from_kernel(h.exe_dev, h.exe_ino)),
        ..Process::from_event(
            h.pid,
            (h.start as i64).wrapping_add(anchor_ns),
            h.ppid,
            Str::new(c_bytes(&h.comm)),
            h.uid,
            h.gid,
        )
    };
    Ok(ProcRecord {
        kind,
        ts_ns: (h.ts_ns as i64).wrapping_add(anchor_ns),
        start_boot: h.start,
        parent_start_boot: h.parent_start,
        exit_code: h.exit_code,
        image,
    })
}

/// Bytes of the fixed part of every record.
pub const HDR_LEN: usize = std::mem::size_of::<Hdr>();

const TRUNC_RAW: u8 = types::of_trunc::OF_TRUNC_RAW.0 as u8;
const TRUNC_PATH: u8 = types::of_trunc::OF_TRUNC_PATH.0 as u8;
const PATH_DELETED: u8 = types::of_trunc::OF_PATH_DELETED.0 as u8;
const PATH_PSEUDO: u8 = types::of_trunc::OF_PATH_PSEUDO.0 as u8;
const PATH_CACHED: u8 = types::of_trunc::OF_PATH_CACHED.0 as u8;

/// A record user space cannot make sense of: a BPF/user-space mismatch, never expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its header or the lengths it declares")]
    Short(usize),
    #[error("unknown syscall code {0}")]
    Syscall(u8),
    #[error("unknown path source code {0}")]
    PathSource(u8),
    #[error("unknown record kind {0}")]
    Kind(u32),
}

/// The header of a record.
pub fn header(rec: &[u8]) -> Result<Hdr, DecodeError> {
    if rec.len() < HDR_LEN {
        return Err(DecodeError::Short(rec.len()));
    }
    // SAFETY: `Hdr` is the #[repr(C)] struct generated from bpf/events.h and holds only integers
    // and integer arrays, so any bytes are a valid value; `rec` holds at least `HDR_LEN` bytes;
    // `read_unaligned` copies without requiring the ring buffer's alignment.
    Ok(unsafe { std::ptr::read_unaligned(rec.as_ptr().cast::<Hdr>()) })
}

/// Decodes one record; `anchor_ns` (wall clock minus boot clock) turns the kernel's boot-clock
/// timestamp into ns since the epoch.
pub fn decode(rec: &[u8], anchor_ns: i64) -> Result<Event, DecodeError> {
    Decoder::default().decode(rec, anchor_ns)
}

/// The kernel's `char[]` up to its NUL.
fn c_bytes(s: &[i8]) -> Vec<u8> {
    s.iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect()
}

/// Bytes up to the first NUL.
fn until_nul(s: &[u8]) -> &[u8] {
    s.iter().position(|&c| c == 0).map_or(s, |n| &s[..n])
}

/// Leaf-first NUL-terminated components → `/a/b/c`. A walk that was cut (deeper than the bytes
/// kept) keeps the leaf end and marks the cut: `/…/b/c`, never a relative-looking string.
fn join_components(comps: &[u8], cut: bool) -> Vec<u8> {
    join_cut(comps, cut, None)
}

/// [`join_components`], with the leading component when it is known (`/tmp/…/b/c`).
fn join_cut(comps: &[u8], cut: bool, top: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(comps.len() + 8);
    join_into(&mut out, comps, cut, top);
    out
}

/// [`join_cut`] into `out` (the decoder's reused buffer). Each `name\0` of the record becomes
/// `/name` at the mirrored place, so the path is filled from its end in one pass, one copy per
/// component (this runs for every open the host makes; see benches/decode.rs).
fn join_into(out: &mut Vec<u8>, comps: &[u8], cut: bool, top: Option<&[u8]>) {
    let start = out.len();
    if cut {
        if let Some(t) = top {
            out.push(b'/');
            out.extend_from_slice(t);
        }
        out.extend_from_slice("/\u{2026}".as_bytes());
    }
    let base = out.len();
    // Exactly the joined length when every component is NUL-terminated, one more otherwise.
    out.resize(
        base + comps.len() + usize::from(comps.last().is_some_and(|&b| b != 0)),
        0,
    );
    let mut end = out.len();
    let mut rest = comps;
    while !rest.is_empty() {
        // A plain scan: names average a few bytes, too short for memchr's set-up to pay
        // (measured: 1190 vs 1118 instructions per decoded record).
        let n = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        if n > 0 {
            out[end - n..end].copy_from_slice(&rest[..n]);
            out[end - n - 1] = b'/';
            end -= n + 1;
        }
        rest = rest.get(n + 1..).unwrap_or_default();
    }
    // Empty components (two NULs in a row: never sent, but a record is not trusted) leave room
    // at the front.
    if end > base {
        out.copy_within(end.., base);
        out.truncate(out.len() - (end - base));
    }
    if out.len() == start {
        out.push(b'/');
    }
}

/// The first component of an absolute path (what a cut walk lost first), if any.
fn leading_component(raw: &[u8]) -> Option<&[u8]> {
    let rest = raw.strip_prefix(b"/")?;
    rest.split(|&b| b == b'/').find(|c| !c.is_empty())
}

/// `dir` joined with the relative `raw` (`raw` absolute, under `root`, for [`PathSource::Root`]),
/// lexically. In a chrooted process's root, `..` stops at the root as the kernel's lookup does,
/// when `dir` is in it (a directory outside it, e.g. a dirfd opened before the chroot, is not
/// bounded by it, nor is the kernel's lookup from there).
fn join_relative(root: Option<&[u8]>, dir: &[u8], raw: &[u8]) -> Vec<u8> {
    let inside = root.and_then(|r| {
        let rest = dir.strip_prefix(r)?;
        (rest.is_empty() || rest.first() == Some(&b'/')).then_some((r, rest))
    });
    let Some((root, rest)) = inside else {
        let mut p = Vec::with_capacity(dir.len() + 1 + raw.len());
        p.extend_from_slice(dir);
        p.push(b'/');
        p.extend_from_slice(raw);
        return normalize(&p);
    };
    // Normalized as an absolute path of its own: `..` cannot climb above its `/`.
    let mut p = Vec::with_capacity(rest.len() + 2 + raw.len());
    p.push(b'/');
    p.extend_from_slice(rest);
    p.push(b'/');
    p.extend_from_slice(raw);
    let inner = normalize(&p);
    let mut out = root.to_vec();
    if inner != b"/" {
        out.extend_from_slice(&inner);
    }
    out
}

/// Lexical clean-up of a joined path: drops empty and `.` components and applies `..` (the
/// directory part came from the kernel, so only the raw tail can hold them; a symlink in that
/// tail can make this differ from what the kernel would have resolved, which is why such paths
/// are marked `cwd`/`dirfd`, not `file`).
fn normalize(p: &[u8]) -> Vec<u8> {
    let absolute = p.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !absolute {
                    parts.push(c);
                }
            }
            _ => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(p.len());
    for (i, c) in parts.iter().enumerate() {
        if i > 0 || absolute {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(if absolute { b'/' } else { b'.' });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record as the kernel would send it, built through the generated header type (the
    /// pipeline's tests build theirs with it too).
    pub(crate) fn record(h: Hdr, raw: &[u8], comps: &[&str]) -> Vec<u8> {
        let mut h = h;
        let mut tail = raw.to_vec();
        let mut c = Vec::new();
        for s in comps {
            c.extend_from_slice(s.as_bytes());
            c.push(0);
        }
        h.raw_len = raw.len() as u16;
        h.path_len = c.len() as u16;
        tail.extend_from_slice(&c);
        let mut out = vec![0u8; HDR_LEN];
        // SAFETY: `out` has exactly HDR_LEN bytes; write_unaligned needs no alignment.
        unsafe { std::ptr::write_unaligned(out.as_mut_ptr().cast::<Hdr>(), h) };
        out.extend_from_slice(&tail);
        out
    }

    pub(crate) fn hdr(syscall: Syscall, source: PathSource) -> Hdr {
        let mut comm = [0i8; 16];
        for (d, s) in comm.iter_mut().zip(b"cat") {
            *d = *s as i8;
        }
        Hdr {
            ts_ns: 1_000,
            ret: 3,
            flags: 0x80000,
            pid: 10,
            tid: 11,
            ppid: 1,
            uid: 1000,
            gid: 100,
            mode: 0o644,
            dirfd: -100,
            has_dirfd: 1,
            syscall: syscall.code(),
            path_source: source.code(),
            comm,
            kind: REC_OPEN,
            ..Hdr::default()
        }
    }

    #[test]
    fn codes_match_the_shared_header() {
        use types::{of_path_source as P, of_syscall as S};
        let pairs = [
            (S::OF_SYSCALL_OPEN, Syscall::Open),
            (S::OF_SYSCALL_CREAT, Syscall::Creat),
            (S::OF_SYSCALL_OPENAT, Syscall::Openat),
            (S::OF_SYSCALL_OPENAT2, Syscall::Openat2),
            (S::OF_SYSCALL_OPEN_BY_HANDLE_AT, Syscall::OpenByHandleAt),
            (S::OF_SYSCALL_IO_URING, Syscall::IoUring),
            (S::OF_SYSCALL_IA32_OPEN, Syscall::Ia32Open),
            (S::OF_SYSCALL_IA32_CREAT, Syscall::Ia32Creat),
            (S::OF_SYSCALL_IA32_OPENAT, Syscall::Ia32Openat),
            (S::OF_SYSCALL_IA32_OPENAT2, Syscall::Ia32Openat2),
            (
                S::OF_SYSCALL_IA32_OPEN_BY_HANDLE_AT,
                Syscall::Ia32OpenByHandleAt,
            ),
        ];
        for (c, r) in pairs {
            assert_eq!(c.0, u32::from(r.code()), "{r}");
        }
        assert_eq!(pairs.len(), Syscall::ALL.len());
        let pairs = [
            (P::OF_PATH_FILE, PathSource::File),
            (P::OF_PATH_RAW, PathSource::Raw),
            (P::OF_PATH_CWD, PathSource::Cwd),
            (P::OF_PATH_DIRFD, PathSource::Dirfd),
            (P::OF_PATH_UNRESOLVED, PathSource::Unresolved),
        ];
        for (c, r) in pairs {
            assert_eq!(c.0, u32::from(r.code()), "{r}");
        }
        assert_eq!(pairs.len(), PathSource::ALL.len());
    }

    #[test]
    fn walked_path_is_reversed_and_absolute() {
        let rec = record(
            hdr(Syscall::Openat, PathSource::File),
            b"hostname",
            &["hostname", "etc"],
        );
        let e = decode(&rec, 5_000).unwrap();
        assert_eq!(e.path.as_bytes(), b"/etc/hostname");
        assert_eq!(e.raw_path.as_bytes(), b"hostname");
        assert_eq!(e.ts_ns, 6_000);
        assert_eq!(e.comm.as_bytes(), b"cat");
        assert_eq!((e.pid, e.tid, e.ppid, e.uid, e.gid), (10, 11, 1, 1000, 100));
        assert_eq!(e.dirfd, Some(-100));
        assert!(!e.path_truncated);
    }

    /// A record that defines a directory slot, then records that use it: a file in it (leaf
    /// only), a failed relative open from it (no components), an unlinked file in it.
    #[test]
    fn cached_directories_are_joined_from_the_slot_their_defining_record_named() {
        let mut d = Decoder::default();
        let mut def = hdr(Syscall::Openat, PathSource::File);
        (def.dir_slot, def.dir_gen) = (7, 1);
        let rec = record(def, b"a.conf", &["a.conf", "app", "etc"]);
        assert_eq!(
            d.decode(&rec, 0).unwrap().path.as_bytes(),
            b"/etc/app/a.conf"
        );

        let mut hit = hdr(Syscall::Openat, PathSource::File);
        (hit.dir_slot, hit.dir_gen, hit.trunc) = (7, 1, PATH_CACHED);
        let rec = record(hit, b"/etc/app/b.conf", &["b.conf"]);
        // Twice: the second from the decoder's map of walks, keyed with the slot and fill.
        for _ in 0..2 {
            assert_eq!(
                d.decode(&rec, 0).unwrap().path.as_bytes(),
                b"/etc/app/b.conf"
            );
        }
        let mut gone = hit;
        gone.trunc |= PATH_DELETED;
        let rec = record(gone, b"/etc/app/c", &["c"]);
        assert_eq!(
            d.decode(&rec, 0).unwrap().path.as_bytes(),
            b"/etc/app/c (deleted)"
        );

        let mut cwd = hdr(Syscall::Openat, PathSource::Cwd);
        (cwd.dir_slot, cwd.dir_gen, cwd.trunc, cwd.ret) = (7, 1, PATH_CACHED, -2);
        let rec = record(cwd, b"../x", &[]);
        let e = d.decode(&rec, 0).unwrap();
        assert_eq!(
            (e.path.as_bytes(), e.path_source),
            (&b"/etc/x"[..], PathSource::Cwd)
        );
        assert_eq!(d.unknown_dirs, 0);
    }

    /// A slot redefined (a rename made the kernel walk again): later records name the new fill
    /// and get the new path, even for the same leaf bytes.
    #[test]
    fn a_redefined_slot_gives_its_new_path() {
        let mut d = Decoder::default();
        let mut def = hdr(Syscall::Openat, PathSource::Cwd);
        (def.dir_slot, def.dir_gen, def.ret) = (3, 1, -2);
        d.decode(&record(def, b"x", &["old", "tmp"]), 0).unwrap();
        let mut hit = hdr(Syscall::Openat, PathSource::File);
        (hit.dir_slot, hit.dir_gen, hit.trunc) = (3, 1, PATH_CACHED);
        let rec = record(hit, b"leaf", &["leaf"]);
        assert_eq!(d.decode(&rec, 0).unwrap().path.as_bytes(), b"/tmp/old/leaf");
        (def.dir_gen, hit.dir_gen) = (2, 2);
        d.decode(&record(def, b"x", &["new", "tmp"]), 0).unwrap();
        let rec = record(hit, b"leaf", &["leaf"]);
        assert_eq!(d.decode(&rec, 0).unwrap().path.as_bytes(), b"/tmp/new/leaf");
    }

    /// A record using a slot this decoder never saw defined, or an older fill of it (its
    /// defining record was lost): never another directory's path; the raw path, unresolved.
    #[test]
    fn a_slot_never_seen_defined_leaves_the_path_unresolved() {
        let mut d = Decoder::default();
        let mut hit = hdr(Syscall::Openat, PathSource::File);
        (hit.dir_slot, hit.dir_gen, hit.trunc) = (9, 4, PATH_CACHED);
        let rec = record(hit, b"rel/leaf", &["leaf"]);
        let e = d.decode(&rec, 0).unwrap();
        assert_eq!(
            (e.path.as_bytes(), e.path_source),
            (&b"rel/leaf"[..], PathSource::Unresolved)
        );
        let mut def = hdr(Syscall::Openat, PathSource::File);
        (def.dir_slot, def.dir_gen) = (9, 3);
        d.decode(&record(def, b"/a/f", &["f", "a"]), 0).unwrap();
        let e = d.decode(&rec, 0).unwrap();
        assert_eq!(
            (e.path.as_bytes(), e.path_source),
            (&b"rel/leaf"[..], PathSource::Unresolved)
        );
        assert_eq!(d.unknown_dirs, 2);
    }

    #[test]
    fn unlinked_files_are_marked_deleted() {
        let mut h = hdr(Syscall::Openat, PathSource::File);
        h.trunc = PATH_DELETED;
        let rec = record(h, b"/proc/self/fd/3", &["gone", "tmp"]);
        let e = decode(&rec, 0).unwrap();
        assert_eq!(e.path.as_bytes(), b"/tmp/gone (deleted)");
        assert!(!e.path_truncated, "deleted is not a cut");
    }

    #[test]
    fn root_and_cut_walks() {
        let rec = record(hdr(Syscall::Open, PathSource::File), b"/", &[]);
        assert_eq!(decode(&rec, 0).unwrap().path.as_bytes(), b"/");
        let mut h = hdr(Syscall::Open, PathSource::File);
        h.trunc = TRUNC_PATH;
        let rec = record(h, b"x", &["f", "deep"]);
        let e = decode(&rec, 0).unwrap();
        assert_eq!(e.path.as_bytes(), "/\u{2026}/deep/f".as_bytes());
        assert!(e.path_truncated);
        let rec = record(h, b"/tmp/a/b/deep/f", &["f", "deep"]);
        let e = decode(&rec, 0).unwrap();
        assert_eq!(e.path.as_bytes(), "/tmp/\u{2026}/deep/f".as_bytes());
    }

    #[test]
    fn failed_relative_opens_join_the_directory() {
        let mut h = hdr(Syscall::Openat, PathSource::Cwd);
        h.ret = -2;
        let rec = record(h, b"../x/./missing", &["sub", "tmp"]);
        assert_eq!(decode(&rec, 0).unwrap().path.as_bytes(), b"/tmp/x/missing");
        let mut h = hdr(Syscall::Openat, PathSource::Dirfd);
        h.ret = -13;
        h.dirfd = 7;
        let rec = record(h, b"a b\nc", &["d"]);
        let e = decode(&rec, 0).unwrap();
        assert_eq!(e.path.as_bytes(), b"/d/a b\nc");
        assert_eq!(e.dirfd, Some(7));
    }

    #[test]
    fn raw_sources_keep_the_raw_path() {
        let mut h = hdr(Syscall::Creat, PathSource::Raw);
        h.has_dirfd = 0;
        h.ret = -2;
        let rec = record(h, b"/no/such/../file", &[]);
        let e = decode(&rec, 0).unwrap();
        assert_eq!(e.path.as_bytes(), b"/no/such/../file");
        assert_eq!(e.dirfd, None);
        assert_eq!(e.ret, -2);
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        assert_eq!(decode(&[0; 8], 0), Err(DecodeError::Short(8)));
        let mut rec = record(hdr(Syscall::Open, PathSource::File), b"abc", &["abc"]);
        rec.truncate(rec.len() - 2);
        assert!(matches!(decode(&rec, 0), Err(DecodeError::Short(_))));
        let mut h = hdr(Syscall::Open, PathSource::File);
        h.syscall = 99;
        assert_eq!(
            decode(&record(h, b"", &[]), 0),
            Err(DecodeError::Syscall(99))
        );
    }

    /// The one-pass join gives what splitting, dropping empty components and reversing gives,
    /// for well-formed and malformed component lists alike.
    #[test]
    fn join_from_the_end_matches_the_plain_join() {
        fn plain(comps: &[u8], cut: bool, top: Option<&[u8]>) -> Vec<u8> {
            let parts: Vec<&[u8]> = comps.split(|&b| b == 0).filter(|c| !c.is_empty()).collect();
            let mut out = Vec::new();
            if cut {
                if let Some(t) = top {
                    out.push(b'/');
                    out.extend_from_slice(t);
                }
                out.extend_from_slice("/\u{2026}".as_bytes());
            }
            for c in parts.iter().rev() {
                out.push(b'/');
                out.extend_from_slice(c);
            }
            if out.is_empty() {
                out.push(b'/');
            }
            out
        }
        let cases: &[&[u8]] = &[
            b"",
            b"\0",
            b"\0\0\0",
            b"leaf\0dir\0etc\0",
            b"leaf\0\0etc\0",
            b"\0leaf\0etc\0",
            b"leaf\0etc",
            b"x",
            b"a\0b\0\0",
        ];
        for comps in cases {
            for (cut, top) in [(false, None), (true, None), (true, Some(&b"tmp"[..]))] {
                let mut got = b"junk".to_vec();
                got.clear();
                join_into(&mut got, comps, cut, top);
                assert_eq!(got, plain(comps, cut, top), "{:?} cut={cut}", comps);
            }
        }
    }

    /// A decoder reuses one buffer and its pool across records: nothing of one record leaks
    /// into the next.
    #[test]
    fn one_decoder_decodes_records_independently() {
        let mut d = Decoder::default();
        let long = record(
            hdr(Syscall::Openat, PathSource::File),
            b"/usr/lib/x86_64-linux-gnu/libc.so.6",
            &["libc.so.6", "x86_64-linux-gnu", "lib", "usr"],
        );
        let short = record(
            hdr(Syscall::Openat, PathSource::File),
            b"hostname",
            &["hostname", "etc"],
        );
        let mut deleted = hdr(Syscall::Openat, PathSource::File);
        deleted.trunc = PATH_DELETED;
        let deleted = record(deleted, b"hostname", &["hostname", "etc"]);
        let mut cut = hdr(Syscall::Openat, PathSource::File);
        cut.trunc = TRUNC_PATH;
        let cut = record(cut, b"/x/y/hostname", &["hostname", "etc"]);
        for _ in 0..3 {
            // The same components with a mark are never served the plain walk's path.
            assert_eq!(
                d.decode(&deleted, 0).unwrap().path.as_bytes(),
                b"/etc/hostname (deleted)"
            );
            assert_eq!(
                d.decode(&cut, 0).unwrap().path.as_bytes(),
                "/x/\u{2026}/etc/hostname".as_bytes()
            );
            let e = d.decode(&long, 0).unwrap();
            assert_eq!(e.path.as_bytes(), b"/usr/lib/x86_64-linux-gnu/libc.so.6");
            assert_eq!(e.raw_path.as_bytes(), e.path.as_bytes());
            let e = d.decode(&short, 0).unwrap();
            assert_eq!(e.path.as_bytes(), b"/etc/hostname");
            assert_eq!(e.raw_path.as_bytes(), b"hostname");
            assert_eq!(e.comm.as_bytes(), b"cat");
        }
    }

    /// An open decoded into a record that held another event (the recorder recycles them)
    /// is the event a fresh decode gives, field for field, whatever the old one held: other
    /// strings, the same strings, another kind of record, a dirfd, marks.
    #[test]
    fn decoding_into_a_recycled_record_leaves_nothing_of_the_old_event() {
        let mut other = hdr(Syscall::Open, PathSource::Raw);
        for (d, s) in other.comm.iter_mut().zip(b"sshd-session\0") {
            *d = *s as i8;
        }
        other.has_dirfd = 0;
        other.trunc = TRUNC_RAW;
        other.ts_ns = 99;
        let mut failed = hdr(Syscall::Openat2, PathSource::Cwd);
        failed.ret = -2;
        let records = [
            record(
                hdr(Syscall::Openat, PathSource::File),
                b"/etc/hostname",
                &["hostname", "etc"],
            ),
            record(other, b"/missing/x", &[]),
            record(
                hdr(Syscall::Openat, PathSource::File),
                b"/etc/hostname",
                &["hostname", "etc"],
            ),
            record(failed, b"rel/x", &["src", "home"]),
            record(
                hdr(Syscall::Openat, PathSource::File),
                b"hostname",
                &["hostname", "etc"],
            ),
        ];
        let stale = Event {
            ts_ns: 7,
            pid: 7,
            tid: 7,
            ppid: 7,
            uid: 7,
            gid: 7,
            comm: Str::keyed(b"old".as_slice().into(), 3),
            syscall: Syscall::IoUring,
            path: Str::keyed(b"/old".as_slice().into(), 4),
            path_source: PathSource::Unresolved,
            path_truncated: true,
            raw_path: Str::keyed(b"old".as_slice().into(), 5),
            dirfd: Some(9),
            flags: 7,
            mode: 7,
            ret: 7,
            file: Some(crate::file_id::FileId { dev: 7, ino: 7 }),
            root: Some(Str::keyed(b"/jail".as_slice().into(), 6)),
            alias_of: Some(Str::keyed(b"/etc/shadow".as_slice().into(), 7)),
            euid: None,
            egid: None,
            process: None,
            user: None,
            table: 6,
            proc_key: 8,
        };
        let (mut fresh, mut reused) = (Decoder::default(), Decoder::default());
        let proc_rec = {
            let mut p = vec![0u8; PROC_HDR_LEN];
            p[..4].copy_from_slice(&REC_FORK.to_ne_bytes());
            p
        };
        for first in [Record::Open(stale, 5), decode_any(&proc_rec, 0).unwrap()] {
            let mut slot = first;
            for rec in records.iter().chain(records.iter().rev()) {
                let want = fresh.decode_any(rec, 10).unwrap();
                reused.decode_into(rec, 10, &mut slot).unwrap();
                match (&want, &slot) {
                    (Record::Open(w, ws), Record::Open(g, gs)) => {
                        assert_eq!((w, ws), (g, gs));
                    }
                    other => panic!("not two opens: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(b"/a/b/../../.."), b"/");
        assert_eq!(normalize(b"//a//./b/"), b"/a/b");
        assert_eq!(normalize(b"a/../../b"), b"../b");
    }
}
