//! Parquet export for fleets: `export --format parquet --out DIR` writes each sealed segment as
//! Parquet files in a Hive-partitioned layout that Spark, Trino and DuckDB read in place (a local
//! directory or the same tree in object storage):
//!
//! ```text
//! DIR/events/host=H/date=D/SEGMENT.parquet      one row per event (lineage denormalised)
//! DIR/processes/host=H/date=D/SEGMENT.parquet   one row per stored process image
//! DIR/losses/host=H/date=D/SEGMENT.parquet      one row per loss record
//! ```
//!
//! `SEGMENT` is `<seq>-<first 16 hex digits of the database's SHA-256>`: the same segment always
//! gets the same name, so exporting again is idempotent (files already there are left alone unless
//! `--overwrite`) and two stores of one host name never collide. `date` is the UTC date of the
//! events: a segment that runs past midnight gives one events file per date, so a `date` filter
//! never hides events; processes and losses go with the segment's first event's date.
//!
//! Every file is written to a hidden `.NAME.tmp` (created exclusively), fsynced and renamed
//! without replacing anything. `DIR` is reached through trusted directories only, and nothing
//! under it is ever followed: a link where a table, partition or file belongs is refused
//! (`safe_path`), so a planted `DIR/events -> /elsewhere` cannot make the export write there. Memory is bounded by one row group
//! ([`ROW_GROUP_ROWS`]) per open file, whatever the segment's size.
//!
//! The schema is versioned ([`PARQUET_SCHEMA_VERSION`], in each file's key-value metadata as
//! `open_forensics.schema_version`) and documented in `docs/fleet.md`: timestamps are
//! `TIMESTAMP(NANOS, UTC)`, ids are INT64 (portable: Trino has no unsigned types), strings are
//! UTF-8 and dictionary-encoded. Bytes that are not UTF-8 keep the project's `_b64` convention:
//! the text column holds the lossy text, `<column>_b64` the exact bytes (standard base64; null
//! when the text is exact), so a query can always recover them and `rules sql` matches them
//! exactly.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{Compression, Encoding, ZstdLevel};
use ::parquet::file::metadata::KeyValue;
use ::parquet::file::properties::WriterProperties;
use ::parquet::schema::types::ColumnPath;
use arrow_array::builder::{
    BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, RecordBatch, StructArray};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, TimeUnit};
use base64::Engine as _;

use crate::columns::{Column, Type, PARQUET_SCHEMA_VERSION};
use crate::event::Event;
use crate::process::Process;
use crate::safe_path::{PathError, SafeDir};
use crate::store::{Loss, Reader, SegmentData, SegmentInfo, SegmentState, StoredProcess};

/// Rows per record batch handed to the writer.
const BATCH_ROWS: usize = 8192;

/// Rows per row group: the writer holds one row group per open file in memory.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A Parquet table's columns in order, and those never null. Its Arrow schema comes from the
/// column table: a byte-string column is followed by its `_b64` twin (always nullable).
struct View {
    columns: &'static [Column],
    required: &'static [Column],
}

const EVENTS: View = View {
    columns: &[
        Column::Segment,
        Column::Seq,
        Column::Ts,
        Column::Pid,
        Column::Tid,
        Column::Ppid,
        Column::Uid,
        Column::Gid,
        Column::Comm,
        Column::Syscall,
        Column::Path,
        Column::PathSource,
        Column::PathTruncated,
        Column::RawPath,
        Column::Dirfd,
        Column::Flags,
        Column::Mode,
        Column::Ret,
        Column::ProcStart,
        Column::ExecTs,
        Column::Exe,
        Column::Argv,
        Column::Cmdline,
        Column::Euid,
        Column::Egid,
        Column::Auid,
        Column::User,
        Column::Cgroup,
        Column::ContainerId,
        Column::ParentExe,
        Column::ParentComm,
        Column::Ancestors,
        Column::Root,
        Column::File,
        Column::AliasOf,
        Column::ProcRoot,
        Column::Mntns,
        Column::ExeId,
        Column::ExeVerified,
        // Schema 3: appended, so that readers that go by position read older files alike.
        Column::Op,
        Column::OldPath,
        Column::NewUid,
        Column::NewGid,
        Column::Length,
        // Schema 4, appended likewise.
        Column::Cwd,
        Column::Tty,
        Column::ParentCmdline,
        Column::ProcAgeNs,
    ],
    required: &[
        Column::Segment,
        Column::Seq,
        Column::Ts,
        Column::Pid,
        Column::Tid,
        Column::Ppid,
        Column::Uid,
        Column::Gid,
        Column::Comm,
        Column::Syscall,
        Column::Path,
        Column::PathSource,
        Column::PathTruncated,
        Column::RawPath,
        Column::Flags,
        Column::Mode,
        Column::Ret,
        Column::Op,
    ],
};

const PROCESSES: View = View {
    columns: &[
        Column::Segment,
        Column::Pid,
        Column::ProcStart,
        Column::ExecTs,
        Column::Ppid,
        Column::ParentStart,
        Column::Source,
        Column::Comm,
        Column::Exe,
        Column::Argv,
        Column::Cmdline,
        Column::ArgsTruncated,
        Column::Uid,
        Column::Gid,
        Column::Euid,
        Column::Egid,
        Column::Auid,
        Column::Sessionid,
        Column::CgroupId,
        Column::Cgroup,
        Column::ContainerId,
        Column::Pidns,
        Column::Mntns,
        Column::Tty,
        Column::Root,
        Column::ExeId,
        Column::ExeVerified,
        Column::ExitStatus,
        Column::ExitTs,
        // Schema 4: appended, as in `events`.
        Column::Cwd,
    ],
    required: &[
        Column::Segment,
        Column::Pid,
        Column::ProcStart,
        Column::Ppid,
        Column::Source,
        Column::Comm,
        Column::ArgsTruncated,
        Column::Uid,
        Column::Gid,
        Column::Euid,
        Column::Egid,
        Column::CgroupId,
    ],
};

const LOSSES: View = View {
    columns: &[
        Column::Segment,
        Column::LossStart,
        Column::LossEnd,
        Column::LossCount,
        Column::LossReason,
    ],
    required: &[
        Column::Segment,
        Column::LossStart,
        Column::LossEnd,
        Column::LossCount,
        Column::LossReason,
    ],
};

/// The struct of each element of `ancestors`.
const ANCESTOR: View = View {
    columns: &[Column::Pid, Column::Comm, Column::Exe, Column::ProcStart],
    required: &[Column::Pid, Column::ProcStart],
};

/// The Arrow type of a column (of its text, for a byte string).
fn arrow_type(ty: Type) -> DataType {
    match ty {
        Type::Int => DataType::Int64,
        Type::Int32 => DataType::Int32,
        Type::Bool => DataType::Boolean,
        Type::Text | Type::Bytes => DataType::Utf8,
        Type::Time => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        Type::Args => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        Type::Ancestors => DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(ANCESTOR.fields()),
            false,
        ))),
    }
}

impl View {
    fn fields(&self) -> Fields {
        let mut fields = Vec::new();
        for &c in self.columns {
            let ty = arrow_type(c.ty());
            let nullable = !self.required.contains(&c);
            fields.push(Field::new(c.name(), ty.clone(), nullable));
            if matches!(c.ty(), Type::Bytes | Type::Args) {
                fields.push(Field::new(format!("{}_b64", c.name()), ty, true));
            }
        }
        fields.into()
    }

    /// The arrays of each column (a byte string's text, then its `_b64`) in the view's order,
    /// checked against the view's schema.
    fn arrays(
        &self,
        mut arrays: BTreeMap<Column, Vec<ArrayRef>>,
    ) -> Result<Vec<ArrayRef>, ArrowError> {
        let mut out = Vec::new();
        for c in self.columns {
            let a = arrays.remove(c).ok_or_else(|| {
                ArrowError::SchemaError(format!("no values for column {}", c.name()))
            })?;
            out.extend(a);
        }
        Ok(out)
    }

    fn batch(&self, arrays: BTreeMap<Column, Vec<ArrayRef>>) -> Result<RecordBatch, ArrowError> {
        let arrays = self.arrays(arrays)?;
        RecordBatch::try_new(Arc::new(Schema::new(self.fields())), arrays)
    }
}

fn one(array: ArrayRef) -> Vec<ArrayRef> {
    vec![array]
}

/// What one export did.
#[derive(Debug, Default, Clone)]
pub struct ExportSummary {
    pub segments: u64,
    pub events: u64,
    pub files_written: u64,
    /// Files that were already there (not rewritten).
    pub files_present: u64,
    pub bytes_written: u64,
    /// Segments left out on purpose (not sealed yet), or entries the store listing skipped.
    pub warnings: Vec<String>,
    /// Segments that could not be read or written (the export went on without them).
    pub errors: Vec<String>,
}

/// Exports `segments` of `reader`: sealed ones only (an active segment still grows; it is
/// exported once sealed, under its final name). A segment that fails is reported in the summary
/// and the rest go on; a path refused under `root` (a planted link) ends the export.
pub fn export_segments(
    reader: &Reader,
    segments: &[SegmentInfo],
    root: &SafeDir,
    overwrite: bool,
) -> Result<ExportSummary, PathError> {
    let mut summary = ExportSummary::default();
    for info in segments {
        if info.state != SegmentState::Sealed {
            summary.warnings.push(format!(
                "{} is not sealed yet ({:?}): left out; export again once it is sealed",
                info.file, info.state
            ));
            continue;
        }
        let res = reader
            .load(info)
            .map_err(ExportError::from)
            .and_then(|seg| export_segment(&seg, root, overwrite, &mut summary));
        match res {
            Ok(()) => {}
            Err(ExportError::Path(e @ PathError::Refused { .. })) => return Err(e),
            Err(e) => summary.errors.push(format!("{}: {e}", info.file)),
        }
    }
    Ok(summary)
}

/// The name a segment's files get (see the module documentation).
pub fn segment_id(seg: &SegmentData) -> String {
    let hash = match &seg.meta.db_sha256 {
        Some(h) => h.clone(),
        None => {
            use sha2::Digest;
            let meta = serde_json::to_string(&seg.meta).unwrap_or_default();
            sha2::Sha256::digest(meta.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        }
    };
    let short: String = hash.chars().take(16).collect();
    format!("{:010}-{short}", seg.meta.seq)
}

/// A partition value, escaped as Hive does (`%XX` for anything but letters, digits, `.`, `_`,
/// `-`), with a leading `.` or `_` escaped too: engines skip such names as hidden. A host name
/// from a segment's metadata can then never name another directory (`..`, `a/b`).
pub fn hive_escape(value: &str) -> String {
    if value.is_empty() {
        return "__HIVE_DEFAULT_PARTITION__".to_owned();
    }
    let mut out = String::with_capacity(value.len());
    for (i, b) in value.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || (i > 0 && matches!(b, b'.' | b'_')) || b == b'-';
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn date_of(ts_ns: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(ts_ns)
        .format("%Y-%m-%d")
        .to_string()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A byte-string column: the text (lossy when not UTF-8) and its `_b64` twin.
struct BytesCol {
    text: StringBuilder,
    b64: StringBuilder,
}

impl BytesCol {
    fn new() -> Self {
        BytesCol {
            text: StringBuilder::new(),
            b64: StringBuilder::new(),
        }
    }

    fn push(&mut self, v: Option<&[u8]>) {
        match v {
            None => {
                self.text.append_null();
                self.b64.append_null();
            }
            Some(b) => match std::str::from_utf8(b) {
                Ok(t) => {
                    self.text.append_value(t);
                    self.b64.append_null();
                }
                Err(_) => {
                    self.text.append_value(String::from_utf8_lossy(b));
                    self.b64.append_value(b64(b));
                }
            },
        }
    }

    /// The text, then the `_b64` twin.
    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![Arc::new(self.text.finish()), Arc::new(self.b64.finish())]
    }
}

/// argv as a list of lossy texts, and the exact arguments in base64 when any is not UTF-8.
struct ArgvCol {
    text: ListBuilder<StringBuilder>,
    b64: ListBuilder<StringBuilder>,
}

impl ArgvCol {
    fn new() -> Self {
        ArgvCol {
            text: ListBuilder::new(StringBuilder::new()),
            b64: ListBuilder::new(StringBuilder::new()),
        }
    }

    fn push(&mut self, p: Option<&Process>) {
        let Some(p) = p.filter(|p| p.argv.is_some()) else {
            self.text.append(false);
            self.b64.append(false);
            return;
        };
        let args = p.args();
        for a in &args {
            self.text.values().append_value(String::from_utf8_lossy(a));
        }
        self.text.append(true);
        if args.iter().any(|a| std::str::from_utf8(a).is_err()) {
            for a in &args {
                self.b64.values().append_value(b64(a));
            }
            self.b64.append(true);
        } else {
            self.b64.append(false);
        }
    }

    /// The texts, then the `_b64` twin.
    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![Arc::new(self.text.finish()), Arc::new(self.b64.finish())]
    }
}

fn ts_builder() -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::new().with_timezone("UTC")
}

/// `ancestors`: list<struct<pid, comm, comm_b64, exe, exe_b64, proc_start>>, parent first.
struct AncestorsCol {
    lengths: Vec<usize>,
    valid: Vec<bool>,
    pid: Int64Builder,
    comm: BytesCol,
    exe: BytesCol,
    start: TimestampNanosecondBuilder,
}

impl AncestorsCol {
    fn new() -> Self {
        AncestorsCol {
            lengths: Vec::new(),
            valid: Vec::new(),
            pid: Int64Builder::new(),
            comm: BytesCol::new(),
            exe: BytesCol::new(),
            start: ts_builder(),
        }
    }

    fn push(&mut self, p: Option<&Process>) {
        let Some(p) = p else {
            self.lengths.push(0);
            self.valid.push(false);
            return;
        };
        let mut n = 0;
        for a in p.ancestors() {
            self.pid.append_value(i64::from(a.pid));
            self.comm.push(Some(a.comm.as_bytes()));
            self.exe.push(a.exe.as_ref().map(|e| e.as_bytes()));
            self.start.append_value(a.start_ns);
            n += 1;
        }
        self.lengths.push(n);
        self.valid.push(true);
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let parts = BTreeMap::from([
            (Column::Pid, one(Arc::new(self.pid.finish()))),
            (Column::Comm, self.comm.finish()),
            (Column::Exe, self.exe.finish()),
            (Column::ProcStart, one(Arc::new(self.start.finish()))),
        ]);
        let fields = ANCESTOR.fields();
        let values = StructArray::try_new(fields.clone(), ANCESTOR.arrays(parts)?, None)?;
        let item = Arc::new(Field::new("item", DataType::Struct(fields), false));
        let offsets = OffsetBuffer::from_lengths(std::mem::take(&mut self.lengths));
        let nulls = NullBuffer::from(std::mem::take(&mut self.valid));
        Ok(Arc::new(ListArray::try_new(
            item,
            offsets,
            Arc::new(values),
            Some(nulls),
        )?))
    }
}

fn opt_i64(b: &mut Int64Builder, v: Option<impl Into<i64>>) {
    b.append_option(v.map(Into::into));
}

/// The builders of [`EVENTS`]' columns.
struct EventCols {
    segment: StringBuilder,
    seq: Int64Builder,
    ts: TimestampNanosecondBuilder,
    pid: Int64Builder,
    tid: Int64Builder,
    ppid: Int64Builder,
    uid: Int64Builder,
    gid: Int64Builder,
    comm: BytesCol,
    syscall: StringBuilder,
    path: BytesCol,
    path_source: StringBuilder,
    path_truncated: BooleanBuilder,
    raw_path: BytesCol,
    dirfd: Int32Builder,
    flags: Int64Builder,
    mode: Int64Builder,
    ret: Int64Builder,
    proc_start: TimestampNanosecondBuilder,
    exec_ts: TimestampNanosecondBuilder,
    exe: BytesCol,
    argv: ArgvCol,
    cmdline: BytesCol,
    euid: Int64Builder,
    egid: Int64Builder,
    auid: Int64Builder,
    user: BytesCol,
    cgroup: BytesCol,
    container_id: BytesCol,
    parent_exe: BytesCol,
    parent_comm: BytesCol,
    ancestors: AncestorsCol,
    root: BytesCol,
    file: StringBuilder,
    alias_of: BytesCol,
    proc_root: BytesCol,
    mntns: Int64Builder,
    exe_id: StringBuilder,
    exe_verified: BooleanBuilder,
    op: StringBuilder,
    old_path: BytesCol,
    new_uid: Int64Builder,
    new_gid: Int64Builder,
    length: Int64Builder,
    cwd: BytesCol,
    tty: BytesCol,
    parent_cmdline: BytesCol,
    proc_age_ns: Int64Builder,
    rows: usize,
}

impl EventCols {
    fn new() -> Self {
        EventCols {
            segment: StringBuilder::new(),
            seq: Int64Builder::new(),
            ts: ts_builder(),
            pid: Int64Builder::new(),
            tid: Int64Builder::new(),
            ppid: Int64Builder::new(),
            uid: Int64Builder::new(),
            gid: Int64Builder::new(),
            comm: BytesCol::new(),
            syscall: StringBuilder::new(),
            path: BytesCol::new(),
            path_source: StringBuilder::new(),
            path_truncated: BooleanBuilder::new(),
            raw_path: BytesCol::new(),
            dirfd: Int32Builder::new(),
            flags: Int64Builder::new(),
            mode: Int64Builder::new(),
            ret: Int64Builder::new(),
            proc_start: ts_builder(),
            exec_ts: ts_builder(),
            exe: BytesCol::new(),
            argv: ArgvCol::new(),
            cmdline: BytesCol::new(),
            euid: Int64Builder::new(),
            egid: Int64Builder::new(),
            auid: Int64Builder::new(),
            user: BytesCol::new(),
            cgroup: BytesCol::new(),
            container_id: BytesCol::new(),
            parent_exe: BytesCol::new(),
            parent_comm: BytesCol::new(),
            ancestors: AncestorsCol::new(),
            root: BytesCol::new(),
            file: StringBuilder::new(),
            alias_of: BytesCol::new(),
            proc_root: BytesCol::new(),
            mntns: Int64Builder::new(),
            exe_id: StringBuilder::new(),
            exe_verified: BooleanBuilder::new(),
            cwd: BytesCol::new(),
            op: StringBuilder::new(),
            old_path: BytesCol::new(),
            new_uid: Int64Builder::new(),
            new_gid: Int64Builder::new(),
            length: Int64Builder::new(),
            tty: BytesCol::new(),
            parent_cmdline: BytesCol::new(),
            proc_age_ns: Int64Builder::new(),
            rows: 0,
        }
    }

    fn push(&mut self, segment: &str, seq: i64, e: &Event) {
        self.segment.append_value(segment);
        self.seq.append_value(seq);
        self.ts.append_value(e.ts_ns);
        self.pid.append_value(e.pid.into());
        self.tid.append_value(e.tid.into());
        self.ppid.append_value(e.ppid.into());
        self.uid.append_value(e.uid.into());
        self.gid.append_value(e.gid.into());
        self.comm.push(Some(e.comm.as_bytes()));
        self.syscall.append_value(e.syscall.as_str());
        self.path.push(Some(e.path.as_bytes()));
        self.path_source.append_value(e.path_source.as_str());
        self.path_truncated.append_value(e.path_truncated);
        self.raw_path.push(Some(e.raw_path.as_bytes()));
        self.dirfd.append_option(e.dirfd);
        // Flags are at most 32 bits wide in practice; the cast keeps every bit of a u64.
        self.flags.append_value(e.flags as i64);
        self.mode.append_value(e.mode.into());
        self.ret.append_value(e.ret);
        let p = e.process.as_deref();
        self.proc_start.append_option(p.map(|p| p.start_ns));
        self.exec_ts.append_option(p.and_then(|p| p.exec_ns));
        self.exe
            .push(p.and_then(|p| p.exe.as_ref()).map(|s| s.as_bytes()));
        self.argv.push(p);
        let cmdline = p.filter(|p| p.argv.is_some()).map(|p| p.cmdline());
        self.cmdline.push(cmdline.as_deref());
        opt_i64(&mut self.euid, e.euid);
        opt_i64(&mut self.egid, e.egid);
        opt_i64(&mut self.auid, p.and_then(|p| p.auid));
        self.user.push(e.user.as_ref().map(|u| u.as_bytes()));
        self.cgroup
            .push(p.and_then(|p| p.cgroup.as_ref()).map(|s| s.as_bytes()));
        self.container_id.push(
            p.and_then(|p| p.container_id.as_ref())
                .map(|s| s.as_bytes()),
        );
        let parent = p.and_then(|p| p.parent.as_deref());
        self.parent_exe
            .push(parent.and_then(|q| q.exe.as_ref()).map(|s| s.as_bytes()));
        self.parent_comm.push(parent.map(|q| q.comm.as_bytes()));
        self.ancestors.push(p);
        self.root.push(e.root.as_ref().map(|s| s.as_bytes()));
        self.file.append_option(e.file.map(|f| f.to_string()));
        self.alias_of
            .push(e.alias_of.as_ref().map(|s| s.as_bytes()));
        self.proc_root
            .push(p.and_then(|p| p.root.as_ref()).map(|s| s.as_bytes()));
        opt_i64(&mut self.mntns, p.and_then(|p| p.mntns));
        self.exe_id
            .append_option(p.and_then(|p| p.exe_id).map(|f| f.to_string()));
        self.exe_verified
            .append_option(p.and_then(|p| p.exe_verified));
        self.op.append_value(e.op.as_str());
        self.old_path
            .push(e.old_path.as_ref().map(|s| s.as_bytes()));
        opt_i64(&mut self.new_uid, e.new_uid);
        opt_i64(&mut self.new_gid, e.new_gid);
        self.length.append_option(e.length);
        self.cwd
            .push(p.and_then(|p| p.cwd.as_ref()).map(|s| s.as_bytes()));
        self.tty
            .push(p.and_then(|p| p.tty.as_ref()).map(|s| s.as_bytes()));
        let parent_cmdline = parent.filter(|q| q.argv.is_some()).map(|q| q.cmdline());
        self.parent_cmdline.push(parent_cmdline.as_deref());
        self.proc_age_ns
            .append_option(p.map(|p| e.ts_ns.saturating_sub(p.start_ns)));
        self.rows += 1;
    }

    fn batch(&mut self) -> Result<RecordBatch, ArrowError> {
        let arrays = BTreeMap::from([
            (Column::Segment, one(Arc::new(self.segment.finish()))),
            (Column::Seq, one(Arc::new(self.seq.finish()))),
            (Column::Ts, one(Arc::new(self.ts.finish()))),
            (Column::Pid, one(Arc::new(self.pid.finish()))),
            (Column::Tid, one(Arc::new(self.tid.finish()))),
            (Column::Ppid, one(Arc::new(self.ppid.finish()))),
            (Column::Uid, one(Arc::new(self.uid.finish()))),
            (Column::Gid, one(Arc::new(self.gid.finish()))),
            (Column::Comm, self.comm.finish()),
            (Column::Syscall, one(Arc::new(self.syscall.finish()))),
            (Column::Path, self.path.finish()),
            (Column::PathSource, one(Arc::new(self.path_source.finish()))),
            (
                Column::PathTruncated,
                one(Arc::new(self.path_truncated.finish())),
            ),
            (Column::RawPath, self.raw_path.finish()),
            (Column::Dirfd, one(Arc::new(self.dirfd.finish()))),
            (Column::Flags, one(Arc::new(self.flags.finish()))),
            (Column::Mode, one(Arc::new(self.mode.finish()))),
            (Column::Ret, one(Arc::new(self.ret.finish()))),
            (Column::ProcStart, one(Arc::new(self.proc_start.finish()))),
            (Column::ExecTs, one(Arc::new(self.exec_ts.finish()))),
            (Column::Exe, self.exe.finish()),
            (Column::Argv, self.argv.finish()),
            (Column::Cmdline, self.cmdline.finish()),
            (Column::Euid, one(Arc::new(self.euid.finish()))),
            (Column::Egid, one(Arc::new(self.egid.finish()))),
            (Column::Auid, one(Arc::new(self.auid.finish()))),
            (Column::User, self.user.finish()),
            (Column::Cgroup, self.cgroup.finish()),
            (Column::ContainerId, self.container_id.finish()),
            (Column::ParentExe, self.parent_exe.finish()),
            (Column::ParentComm, self.parent_comm.finish()),
            (Column::Ancestors, one(self.ancestors.finish()?)),
            (Column::Root, self.root.finish()),
            (Column::File, one(Arc::new(self.file.finish()))),
            (Column::AliasOf, self.alias_of.finish()),
            (Column::ProcRoot, self.proc_root.finish()),
            (Column::Mntns, one(Arc::new(self.mntns.finish()))),
            (Column::ExeId, one(Arc::new(self.exe_id.finish()))),
            (
                Column::ExeVerified,
                one(Arc::new(self.exe_verified.finish())),
            ),
            (Column::Op, one(Arc::new(self.op.finish()))),
            (Column::OldPath, self.old_path.finish()),
            (Column::NewUid, one(Arc::new(self.new_uid.finish()))),
            (Column::NewGid, one(Arc::new(self.new_gid.finish()))),
            (Column::Length, one(Arc::new(self.length.finish()))),
            (Column::Cwd, self.cwd.finish()),
            (Column::Tty, self.tty.finish()),
            (Column::ParentCmdline, self.parent_cmdline.finish()),
            (Column::ProcAgeNs, one(Arc::new(self.proc_age_ns.finish()))),
        ]);
        self.rows = 0;
        EVENTS.batch(arrays)
    }
}

fn process_batch(segment: &str, procs: &[StoredProcess]) -> Result<RecordBatch, ArrowError> {
    let mut seg = StringBuilder::new();
    let (mut pid, mut ppid, mut uid, mut gid, mut euid, mut egid) = (
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
    );
    let (mut auid, mut sessionid, mut cgroup_id, mut pidns, mut mntns) = (
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
    );
    let (mut start, mut exec_ts, mut parent_start, mut exit_ts) =
        (ts_builder(), ts_builder(), ts_builder(), ts_builder());
    let mut exit_status = Int32Builder::new();
    let mut source = StringBuilder::new();
    let mut args_truncated = BooleanBuilder::new();
    let (mut comm, mut exe, mut cmdline, mut cgroup, mut container, mut tty, mut root) = (
        BytesCol::new(),
        BytesCol::new(),
        BytesCol::new(),
        BytesCol::new(),
        BytesCol::new(),
        BytesCol::new(),
        BytesCol::new(),
    );
    let mut argv = ArgvCol::new();
    let mut exe_id = StringBuilder::new();
    let mut exe_verified = BooleanBuilder::new();
    let mut cwd = BytesCol::new();
    for sp in procs {
        let p = &sp.process;
        seg.append_value(segment);
        pid.append_value(p.pid.into());
        start.append_value(p.start_ns);
        exec_ts.append_option(p.exec_ns);
        ppid.append_value(p.ppid.into());
        parent_start.append_option(p.parent.as_ref().map(|q| q.start_ns));
        source.append_value(p.source.as_str());
        comm.push(Some(p.comm.as_bytes()));
        exe.push(p.exe.as_ref().map(|s| s.as_bytes()));
        argv.push(Some(p));
        let cl = p.argv.as_ref().map(|_| p.cmdline());
        cmdline.push(cl.as_deref());
        args_truncated.append_value(p.args_truncated);
        uid.append_value(p.uid.into());
        gid.append_value(p.gid.into());
        euid.append_value(p.euid.into());
        egid.append_value(p.egid.into());
        opt_i64(&mut auid, p.auid);
        opt_i64(&mut sessionid, p.sessionid);
        // cgroup ids are inode numbers: far below 2^63.
        cgroup_id.append_value(p.cgroup_id as i64);
        cgroup.push(p.cgroup.as_ref().map(|s| s.as_bytes()));
        container.push(p.container_id.as_ref().map(|s| s.as_bytes()));
        opt_i64(&mut pidns, p.pidns);
        opt_i64(&mut mntns, p.mntns);
        tty.push(p.tty.as_ref().map(|s| s.as_bytes()));
        root.push(p.root.as_ref().map(|s| s.as_bytes()));
        exe_id.append_option(p.exe_id.map(|f| f.to_string()));
        exe_verified.append_option(p.exe_verified);
        exit_status.append_option(sp.exit.map(|(s, _)| s));
        exit_ts.append_option(sp.exit.map(|(_, t)| t));
        cwd.push(p.cwd.as_ref().map(|s| s.as_bytes()));
    }
    PROCESSES.batch(BTreeMap::from([
        (Column::Segment, one(Arc::new(seg.finish()))),
        (Column::Pid, one(Arc::new(pid.finish()))),
        (Column::ProcStart, one(Arc::new(start.finish()))),
        (Column::ExecTs, one(Arc::new(exec_ts.finish()))),
        (Column::Ppid, one(Arc::new(ppid.finish()))),
        (Column::ParentStart, one(Arc::new(parent_start.finish()))),
        (Column::Source, one(Arc::new(source.finish()))),
        (Column::Comm, comm.finish()),
        (Column::Exe, exe.finish()),
        (Column::Argv, argv.finish()),
        (Column::Cmdline, cmdline.finish()),
        (
            Column::ArgsTruncated,
            one(Arc::new(args_truncated.finish())),
        ),
        (Column::Uid, one(Arc::new(uid.finish()))),
        (Column::Gid, one(Arc::new(gid.finish()))),
        (Column::Euid, one(Arc::new(euid.finish()))),
        (Column::Egid, one(Arc::new(egid.finish()))),
        (Column::Auid, one(Arc::new(auid.finish()))),
        (Column::Sessionid, one(Arc::new(sessionid.finish()))),
        (Column::CgroupId, one(Arc::new(cgroup_id.finish()))),
        (Column::Cgroup, cgroup.finish()),
        (Column::ContainerId, container.finish()),
        (Column::Pidns, one(Arc::new(pidns.finish()))),
        (Column::Mntns, one(Arc::new(mntns.finish()))),
        (Column::Tty, tty.finish()),
        (Column::Root, root.finish()),
        (Column::ExeId, one(Arc::new(exe_id.finish()))),
        (Column::ExeVerified, one(Arc::new(exe_verified.finish()))),
        (Column::ExitStatus, one(Arc::new(exit_status.finish()))),
        (Column::ExitTs, one(Arc::new(exit_ts.finish()))),
        (Column::Cwd, cwd.finish()),
    ]))
}

fn loss_batch(segment: &str, losses: &[Loss]) -> Result<RecordBatch, ArrowError> {
    let mut seg = StringBuilder::new();
    let (mut start, mut end) = (ts_builder(), ts_builder());
    let mut count = Int64Builder::new();
    let mut reason = StringBuilder::new();
    for l in losses {
        seg.append_value(segment);
        start.append_value(l.start_ns);
        end.append_value(l.end_ns);
        count.append_value(i64::try_from(l.count).unwrap_or(i64::MAX));
        reason.append_value(&l.reason);
    }
    LOSSES.batch(BTreeMap::from([
        (Column::Segment, one(Arc::new(seg.finish()))),
        (Column::LossStart, one(Arc::new(start.finish()))),
        (Column::LossEnd, one(Arc::new(end.finish()))),
        (Column::LossCount, one(Arc::new(count.finish()))),
        (Column::LossReason, one(Arc::new(reason.finish()))),
    ]))
}

/// Export failures: I/O on the output directory, or a segment that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: ::parquet::errors::ParquetError,
    },
    #[error("building columns for {}: {source}", path.display())]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Path(#[from] PathError),
}

/// One Parquet file being written: `.NAME.tmp` until `commit`.
struct PendingFile {
    dir: SafeDir,
    name: String,
    tmp: String,
    writer: ArrowWriter<File>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where a file goes: the directories under the export's root, and its name.
fn target(table: &str, host: &str, date: &str, segment: &str) -> ([String; 3], String) {
    let dirs = [
        table.to_owned(),
        format!("host={}", hive_escape(host)),
        format!("date={date}"),
    ];
    (dirs, format!("{segment}.parquet"))
}

/// Opens (or, with `create`, makes) the directories of a [`target`] beneath `root`.
fn open_target(root: &SafeDir, dirs: &[String; 3], create: bool) -> Result<SafeDir, PathError> {
    let mut dir = root.subdir(&dirs[0], create)?;
    for d in &dirs[1..] {
        dir = dir.subdir(d, create)?;
    }
    Ok(dir)
}

impl PendingFile {
    fn create(
        root: &SafeDir,
        dirs: &[String; 3],
        name: String,
        schema: arrow_schema::SchemaRef,
        meta: &[(&str, String)],
    ) -> Result<PendingFile, ExportError> {
        let dir = open_target(root, dirs, true)?;
        let tmp_name = format!(".{name}.tmp");
        // A leftover from an export that died: ours to replace (a link or anything else is not
        // removed, and then refused by the exclusive create).
        dir.remove_file(OsStr::new(&tmp_name))?;
        let file = dir.create_new(OsStr::new(&tmp_name), 0o600)?;
        let tmp = dir.path().join(&tmp_name);
        let mut kv = vec![KeyValue::new(
            "open_forensics.schema_version".to_owned(),
            PARQUET_SCHEMA_VERSION.to_string(),
        )];
        for (k, v) in meta {
            kv.push(KeyValue::new(format!("open_forensics.{k}"), v.clone()));
        }
        let level = ZstdLevel::try_new(3).map_err(|source| ExportError::Parquet {
            path: tmp.clone(),
            source,
        })?;
        let mut props = WriterProperties::builder();
        // Times and positions grow steadily: their deltas pack into a few bits (a dictionary of
        // unique values does not; the fleet bench measures it: docs/benchmarks.md).
        for col in [Column::Ts, Column::Seq].map(Column::name) {
            props = props
                .set_column_dictionary_enabled(ColumnPath::from(col), false)
                .set_column_encoding(ColumnPath::from(col), Encoding::DELTA_BINARY_PACKED);
        }
        let props = props
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("open-forensics {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(kv))
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|source| {
            ExportError::Parquet {
                path: tmp.clone(),
                source,
            }
        })?;
        Ok(PendingFile {
            dir,
            name,
            tmp: tmp_name,
            writer,
        })
    }

    fn tmp_path(&self) -> PathBuf {
        self.dir.path().join(&self.tmp)
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ExportError> {
        self.writer
            .write(batch)
            .map_err(|source| ExportError::Parquet {
                path: self.tmp_path(),
                source,
            })
    }

    /// Finishes the file, fsyncs it and renames it into place (replacing only with `overwrite`);
    /// returns its size.
    fn commit(mut self, overwrite: bool) -> Result<u64, ExportError> {
        let perr = |path: &Path| {
            let path = path.to_owned();
            move |source| ExportError::Parquet { path, source }
        };
        let tmp = self.tmp_path();
        self.writer.finish().map_err(perr(&tmp))?;
        let file = self.writer.inner();
        file.sync_all().map_err(io_err(&tmp))?;
        let bytes = file.metadata().map_err(io_err(&tmp))?.len();
        self.dir
            .rename(OsStr::new(&self.tmp), OsStr::new(&self.name), overwrite)?;
        self.dir.sync()?;
        Ok(bytes)
    }
}

/// Exports one loaded segment under `root`; files already present are kept unless `overwrite`.
pub fn export_segment(
    seg: &SegmentData,
    root: &SafeDir,
    overwrite: bool,
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    let id = segment_id(seg);
    let host = seg.meta.host.clone();
    let first_date = date_of(seg.meta.first_ts_ns.unwrap_or(0));
    let meta = [
        ("host", host.clone()),
        ("segment", id.clone()),
        ("boot_id", seg.meta.boot_id.clone()),
        ("kernel", seg.meta.kernel.clone()),
        ("tool_version", env!("CARGO_PKG_VERSION").to_owned()),
    ];
    let arrow = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Arrow { path, source }
    };
    summary.segments += 1;

    // Which files exist already (skipped unless `overwrite`).
    let present = |table: &str, date: &str| {
        let (dirs, name) = target(table, &host, date, &id);
        open_target(root, &dirs, false).is_ok_and(|d| d.exists(OsStr::new(&name)))
    };

    // Events: one writer per date, usually one. Dates already exported are decoded but not kept.
    let mut open: BTreeMap<String, PendingFile> = BTreeMap::new();
    let mut cols: BTreeMap<String, EventCols> = BTreeMap::new();
    let mut skipped_dates: Vec<String> = Vec::new();
    let mut seq = 0i64;
    let mut failure: Option<ExportError> = None;
    let flow = seg.for_each_event(|ev| {
        let date = date_of(ev.ts_ns);
        if !overwrite
            && !cols.contains_key(&date)
            && !skipped_dates.contains(&date)
            && present("events", &date)
        {
            skipped_dates.push(date.clone());
        }
        if skipped_dates.contains(&date) {
            seq += 1;
            return std::ops::ControlFlow::Continue(());
        }
        let c = cols.entry(date.clone()).or_insert_with(EventCols::new);
        c.push(&id, seq, ev);
        seq += 1;
        summary.events += 1;
        if c.rows >= BATCH_ROWS {
            if let Err(e) = flush_events(c, &date, &mut open, root, &host, &id, &meta) {
                failure = Some(e);
                return std::ops::ControlFlow::Break(());
            }
        }
        std::ops::ControlFlow::Continue(())
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    debug_assert!(flow.is_continue());
    // An empty segment still gets an (empty) events file: its schema, and proof it was exported.
    if seq == 0 && (overwrite || !present("events", &first_date)) {
        cols.insert(first_date.clone(), EventCols::new());
    }
    for (date, c) in cols.iter_mut() {
        if c.rows > 0 || !open.contains_key(date) {
            flush_events(c, date, &mut open, root, &host, &id, &meta)?;
        }
    }
    summary.files_present += skipped_dates.len() as u64;
    for (_, f) in open {
        summary.bytes_written += f.commit(overwrite)?;
        summary.files_written += 1;
    }

    // Processes and losses: small tables, one batch each.
    let procs = seg.processes()?;
    let losses = seg.losses()?;
    for table in ["processes", "losses"] {
        if !overwrite && present(table, &first_date) {
            summary.files_present += 1;
            continue;
        }
        let (dirs, name) = target(table, &host, &first_date, &id);
        let batch = match table {
            "processes" => process_batch(&id, &procs),
            _ => loss_batch(&id, &losses),
        }
        .map_err(arrow(&root.path().join(dirs.join("/"))))?;
        let mut f = PendingFile::create(root, &dirs, name, batch.schema(), &meta)?;
        f.write(&batch)?;
        summary.bytes_written += f.commit(overwrite)?;
        summary.files_written += 1;
    }
    Ok(())
}

fn flush_events(
    c: &mut EventCols,
    date: &str,
    open: &mut BTreeMap<String, PendingFile>,
    root: &SafeDir,
    host: &str,
    id: &str,
    meta: &[(&str, String)],
) -> Result<(), ExportError> {
    let (dirs, name) = target("events", host, date, id);
    let batch = c.batch().map_err(|source| ExportError::Arrow {
        path: root.path().join(dirs.join("/")),
        source,
    })?;
    if !open.contains_key(date) {
        let f = PendingFile::create(root, &dirs, name, batch.schema(), meta)?;
        open.insert(date.to_owned(), f);
    }
    let f = open.get_mut(date).expect("inserted above");
    f.write(&batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_values_cannot_escape_their_directory() {
        assert_eq!(hive_escape("web-01.example.com"), "web-01.example.com");
        assert_eq!(hive_escape(".."), "%2E.");
        assert_eq!(hive_escape("a/b"), "a%2Fb");
        assert_eq!(hive_escape("_x=y"), "%5Fx%3Dy");
        assert_eq!(hive_escape(""), "__HIVE_DEFAULT_PARTITION__");
        assert_eq!(hive_escape("é"), "%C3%A9");
    }

    /// Each view names a column once, and only its own columns as required.
    #[test]
    fn views_are_well_formed() {
        for v in [&EVENTS, &PROCESSES, &LOSSES, &ANCESTOR] {
            let mut seen = std::collections::HashSet::new();
            assert!(v.columns.iter().all(|c| seen.insert(c)), "{:?}", v.columns);
            assert!(v.required.iter().all(|c| v.columns.contains(c)));
        }
    }

    /// The builders make what the column table says (a mismatch fails `RecordBatch::try_new`).
    #[test]
    fn batches_match_the_column_table() {
        let events = EventCols::new().batch().unwrap();
        assert_eq!(events.schema().fields(), &EVENTS.fields());
        assert!(events
            .schema()
            .field_with_name("comm_b64")
            .unwrap()
            .is_nullable());
        assert!(!events
            .schema()
            .field_with_name("comm")
            .unwrap()
            .is_nullable());
        let procs = process_batch("s", &[]).unwrap();
        assert_eq!(procs.schema().fields(), &PROCESSES.fields());
        let losses = loss_batch("s", &[]).unwrap();
        assert_eq!(losses.schema().fields(), &LOSSES.fields());
    }

    /// Schema 3: an operation's own fields are columns; an open has `op = 'open'` and nulls.
    #[test]
    fn operations_fill_their_columns_and_opens_leave_them_null() {
        use crate::bytes::Str;
        use crate::event::Op;
        use arrow_array::cast::AsArray;
        use arrow_array::types::Int64Type;
        use arrow_array::Array;
        let mut cols = EventCols::new();
        cols.push("s", 1, &Event::default());
        let rename = Event {
            op: Op::Rename,
            path: Str::from("/etc/passwd"),
            old_path: Some(Str::from(&b"/etc/sed\xff"[..])),
            ..Event::default()
        };
        cols.push("s", 2, &rename);
        let chown = Event {
            op: Op::Chown,
            new_uid: Some(0),
            new_gid: None,
            ..Event::default()
        };
        cols.push("s", 3, &chown);
        let truncate = Event {
            op: Op::Truncate,
            length: Some(0),
            ..Event::default()
        };
        cols.push("s", 4, &truncate);
        let b = cols.batch().unwrap();
        let col = |n: &str| b.column_by_name(n).unwrap_or_else(|| panic!("{n}"));
        let op = col("op").as_string::<i32>();
        assert_eq!(
            (0..4).map(|i| op.value(i)).collect::<Vec<_>>(),
            ["open", "rename", "chown", "truncate"]
        );
        let old = col("old_path").as_string::<i32>();
        assert!(old.is_null(0) && old.is_null(2));
        assert_eq!(old.value(1), "/etc/sed\u{FFFD}");
        assert_eq!(
            col("old_path_b64").as_string::<i32>().value(1),
            "L2V0Yy9zZWT/"
        );
        let int = |n: &str| col(n).as_primitive::<Int64Type>().clone();
        let (uid, gid, len) = (int("new_uid"), int("new_gid"), int("length"));
        assert_eq!(
            (uid.is_null(0), uid.value(2), gid.is_null(2)),
            (true, 0, true)
        );
        assert_eq!(
            (len.is_null(0), len.is_null(2), len.value(3)),
            (true, true, 0)
        );
        assert!(!b.schema().field_with_name("op").unwrap().is_nullable());
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(1_764_000_000_000_000_000), "2025-11-24");
    }
}
