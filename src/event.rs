//! The one `Event` type every part of open-forensics passes around: built from the kernel's record in
//! `capture`, from SQLite rows in `store::Reader`, and from JSON lines in `import`. The rule engine sees
//! only this type, which is why live alerts and replayed alerts cannot differ.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A byte string that may have been interned by whoever produced the event.
///
/// Linux paths and comms are bytes, not text. `key` is the string's index in the producer's string
/// table (a segment's `strings` table on replay, the writer's interner live), valid while
/// `Event::table` stays the same; the rule engine caches verdicts by it so that a predicate runs once
/// per distinct string, not once per event.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Str {
    pub bytes: Arc<[u8]>,
    pub key: u32,
}

impl Str {
    /// Key of a string no table knows.
    pub const NO_KEY: u32 = u32::MAX;

    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        Str {
            bytes: bytes.into(),
            key: Self::NO_KEY,
        }
    }

    pub fn keyed(bytes: Arc<[u8]>, key: u32) -> Self {
        Str { bytes, key }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The text, with U+FFFD for bytes that are not UTF-8 (for humans; JSON adds the exact bytes).
    pub fn lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    pub fn is_utf8(&self) -> bool {
        std::str::from_utf8(&self.bytes).is_ok()
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.lossy())
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str::new(s.as_bytes())
    }
}

impl From<&[u8]> for Str {
    fn from(s: &[u8]) -> Self {
        Str::new(s)
    }
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name { $($(#[$vm])* $variant = $code),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used in JSON, rule files and tables.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The small integer stored in segments and in the kernel's record.
            pub fn code(self) -> u8 {
                self as u8
            }

            pub fn from_code(code: u8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// How the open reached the kernel. Codes are stored on disk and shared with `bpf/events.h`:
    /// never renumber, only append.
    Syscall {
        Open = 1 => "open",
        Creat = 2 => "creat",
        Openat = 3 => "openat",
        Openat2 = 4 => "openat2",
        OpenByHandleAt = 5 => "open_by_handle_at",
        IoUring = 6 => "io_uring",
    }
}

wire_enum! {
    /// Where the resolved `path` came from. Codes are stored on disk and shared with `bpf/events.h`.
    PathSource {
        /// Walked from the opened file's dentry and mount chain (successful opens).
        File = 1 => "file",
        /// The raw path was absolute and the open failed: `path` is the raw path.
        Raw = 2 => "raw",
        /// A failed relative open: the process's cwd joined with the raw path.
        Cwd = 3 => "cwd",
        /// A failed open relative to a directory fd: that directory joined with the raw path.
        Dirfd = 4 => "dirfd",
        /// Nothing better was available (e.g. an io_uring direct descriptor): `path` is the raw path.
        Unresolved = 5 => "unresolved",
    }
}

/// One open, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Nanoseconds since the Unix epoch (kernel clock, converted through the segment's anchor).
    pub ts_ns: i64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: Str,
    pub syscall: Syscall,
    /// Absolute, resolved path.
    pub path: Str,
    pub path_source: PathSource,
    /// Set when the kernel had to cut `path` or `raw_path` (longer than it keeps).
    pub path_truncated: bool,
    /// Exactly as the process passed it.
    pub raw_path: Str,
    /// The directory fd for `*at` calls (`-100` is `AT_FDCWD`), `None` where the call has none.
    pub dirfd: Option<i32>,
    pub flags: u64,
    pub mode: u32,
    /// The fd, or minus errno.
    pub ret: i64,
    /// Identifies the string table that `Str::key`s refer to (see `Str`).
    pub table: u64,
}

impl Default for Event {
    fn default() -> Self {
        Event {
            ts_ns: 0,
            pid: 0,
            tid: 0,
            ppid: 0,
            uid: 0,
            gid: 0,
            comm: Str::default(),
            syscall: Syscall::Openat,
            path: Str::default(),
            path_source: PathSource::Raw,
            path_truncated: false,
            raw_path: Str::default(),
            dirfd: None,
            flags: 0,
            mode: 0,
            ret: 0,
            table: 0,
        }
    }
}

/// RFC3339, UTC, always nine fractional digits: fixed width, so lines sort and compare as text.
pub fn format_ts(ts_ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ts_ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parses an RFC3339 timestamp into nanoseconds since the epoch.
pub fn parse_ts(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()?
        .with_timezone(&Utc)
        .timestamp_nanos_opt()
}

/// The JSON form of an event: the documented key names, in a fixed order.
///
/// Byte strings that are not UTF-8 keep their exact bytes in an extra `<key>_b64` field (standard
/// base64); the plain key then holds the lossy text for humans. Import prefers `<key>_b64`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventJson {
    pub ts: String,
    pub ts_ns: i64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_b64: Option<String>,
    pub syscall: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_b64: Option<String>,
    pub path_source: String,
    #[serde(default)]
    pub path_truncated: bool,
    pub raw_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_path_b64: Option<String>,
    pub dirfd: Option<i32>,
    pub flags: u64,
    pub mode: u32,
    pub ret: i64,
}

/// Text plus, when the bytes are not UTF-8, their exact base64 form.
pub fn bytes_to_json(s: &Str) -> (String, Option<String>) {
    match std::str::from_utf8(s.as_bytes()) {
        Ok(t) => (t.to_owned(), None),
        Err(_) => (
            s.lossy().into_owned(),
            Some(base64::engine::general_purpose::STANDARD.encode(s.as_bytes())),
        ),
    }
}

fn bytes_from_json(text: &str, b64: Option<&str>, field: &str) -> Result<Str, String> {
    match b64 {
        None => Ok(Str::from(text)),
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(Str::new)
            .map_err(|e| format!("field `{field}_b64`: not valid base64 ({e})")),
    }
}

impl From<&Event> for EventJson {
    fn from(e: &Event) -> Self {
        let (comm, comm_b64) = bytes_to_json(&e.comm);
        let (path, path_b64) = bytes_to_json(&e.path);
        let (raw_path, raw_path_b64) = bytes_to_json(&e.raw_path);
        EventJson {
            ts: format_ts(e.ts_ns),
            ts_ns: e.ts_ns,
            pid: e.pid,
            tid: e.tid,
            ppid: e.ppid,
            uid: e.uid,
            gid: e.gid,
            comm,
            comm_b64,
            syscall: e.syscall.as_str().to_owned(),
            path,
            path_b64,
            path_source: e.path_source.as_str().to_owned(),
            path_truncated: e.path_truncated,
            raw_path,
            raw_path_b64,
            dirfd: e.dirfd,
            flags: e.flags,
            mode: e.mode,
            ret: e.ret,
        }
    }
}

impl TryFrom<EventJson> for Event {
    type Error = String;

    /// Checks what serde cannot: enum names, and that `ts` and `ts_ns` agree.
    fn try_from(j: EventJson) -> Result<Self, String> {
        let ts = parse_ts(&j.ts)
            .ok_or_else(|| format!("field `ts`: not an RFC3339 time: {:?}", j.ts))?;
        if ts != j.ts_ns {
            return Err(format!(
                "fields `ts` and `ts_ns` disagree ({} is {ts} ns, ts_ns is {})",
                j.ts, j.ts_ns
            ));
        }
        let syscall = Syscall::parse(&j.syscall).ok_or_else(|| {
            format!(
                "field `syscall`: unknown value {:?} (expected one of {})",
                j.syscall,
                names(Syscall::ALL)
            )
        })?;
        let path_source = PathSource::parse(&j.path_source).ok_or_else(|| {
            format!(
                "field `path_source`: unknown value {:?} (expected one of {})",
                j.path_source,
                names(PathSource::ALL)
            )
        })?;
        Ok(Event {
            ts_ns: j.ts_ns,
            pid: j.pid,
            tid: j.tid,
            ppid: j.ppid,
            uid: j.uid,
            gid: j.gid,
            comm: bytes_from_json(&j.comm, j.comm_b64.as_deref(), "comm")?,
            syscall,
            path: bytes_from_json(&j.path, j.path_b64.as_deref(), "path")?,
            path_source,
            path_truncated: j.path_truncated,
            raw_path: bytes_from_json(&j.raw_path, j.raw_path_b64.as_deref(), "raw_path")?,
            dirfd: j.dirfd,
            flags: j.flags,
            mode: j.mode,
            ret: j.ret,
            table: 0,
        })
    }
}

fn names<T: fmt::Display>(all: &[T]) -> String {
    all.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Event {
    pub fn to_json_line(&self) -> String {
        // Serializing a struct of plain fields cannot fail.
        serde_json::to_string(&EventJson::from(self)).expect("EventJson serializes")
    }

    pub fn succeeded(&self) -> bool {
        self.ret >= 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_non_utf8_bytes() {
        let e = Event {
            ts_ns: 1_700_000_000_123_456_789,
            path: Str::new(&b"/tmp/\xff\xfe name\n"[..]),
            raw_path: Str::from("rel"),
            comm: Str::from("cat"),
            ..Event::default()
        };
        let line = e.to_json_line();
        assert!(line.contains("\"path_b64\""), "{line}");
        assert!(!line.contains("raw_path_b64"), "{line}");
        let back: EventJson = serde_json::from_str(&line).unwrap();
        assert_eq!(Event::try_from(back).unwrap(), e);
    }

    #[test]
    fn ts_is_fixed_width_nanoseconds() {
        assert_eq!(format_ts(1_000_000_000), "1970-01-01T00:00:01.000000000Z");
        assert_eq!(
            parse_ts("1970-01-01T00:00:01.000000000Z"),
            Some(1_000_000_000)
        );
    }

    #[test]
    fn enum_codes_round_trip() {
        for s in Syscall::ALL {
            assert_eq!(Syscall::from_code(s.code()), Some(*s));
            assert_eq!(Syscall::parse(s.as_str()), Some(*s));
        }
        for s in PathSource::ALL {
            assert_eq!(PathSource::from_code(s.code()), Some(*s));
        }
    }
}
