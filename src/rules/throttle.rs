//! Alert throttling, driven by event time: the `throttle:` of a rule and its semantics, which the
//! `Alerter` applies.
//!
//! A rule with `throttle: {key: [pid, exe], window: 1m, max: 5}` raises at most `max` alerts per
//! value of its key within a window. The window of a key value starts at its first alert and
//! lasts `window` of *event* time (`ts`), never of wall-clock time, so a replay of the same
//! events throttles exactly as the live recorder did. Alerts past `max` are suppressed and
//! counted; once the window is over, one `alert_summary` line says how many:
//!
//! ```json
//! {"ts":"…","event":"alert_summary","rule":"r","severity":"high","key":{"pid":42,"exe":"/usr/bin/cat"},"suppressed":17,"max":5,"window_start":"…","window_end":"…","first_suppressed":"…","last_suppressed":"…","hostname":"h","description":"…","tags":[]}
//! ```
//!
//! When a summary is emitted (the same point live and on replay, because both see the same
//! events in the same order):
//! - before the first event (of any kind, matching or not) whose `ts` is at or past the window's
//!   end; its `ts` is then `window_end`;
//! - when the key value is evicted to bound memory (below); `ts` is the current event's;
//! - at the end of the stream (the recorder stops; a replay reaches the end of its range), for
//!   windows still open; `ts` is the last event's. A replay of part of a recording (`--until`)
//!   therefore reports what its part suppressed.
//!
//! A window in which nothing was suppressed ends silently. State is bounded: at most
//! [`MAX_KEYS`] key values per rule are tracked, the least recently alerted one is evicted
//! (with its summary, if it had suppressed anything) when a new one arrives. The state starts
//! empty at the start of each recording and each replay, and a replay spanning two recordings
//! empties it where the second began (segments name the run that wrote them), after the
//! summaries the first recorder emitted when it stopped: live == replay across restarts.
//!
//! `query --rule` returns matching events, not alerts, and is not throttled.

use crate::bytes::Str;
use crate::event::Event;

/// Key values tracked per throttled rule (an LRU beyond this).
pub const MAX_KEYS: usize = 10_000;
/// The largest `max:`.
pub const MAX_PER_WINDOW: u64 = 1_000_000;

/// What a throttle key may be made of: event and process fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyField {
    Pid,
    Tid,
    Ppid,
    Uid,
    Gid,
    Euid,
    Comm,
    Path,
    Syscall,
    Exe,
    ParentExe,
    User,
    Container,
}

impl KeyField {
    pub const ALL: &'static [(&'static str, KeyField)] = &[
        ("pid", KeyField::Pid),
        ("tid", KeyField::Tid),
        ("ppid", KeyField::Ppid),
        ("uid", KeyField::Uid),
        ("gid", KeyField::Gid),
        ("euid", KeyField::Euid),
        ("comm", KeyField::Comm),
        ("path", KeyField::Path),
        ("syscall", KeyField::Syscall),
        ("exe", KeyField::Exe),
        ("parent_exe", KeyField::ParentExe),
        ("user", KeyField::User),
        ("container", KeyField::Container),
    ];

    pub fn parse(s: &str) -> Option<KeyField> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, k)| *k)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }

    pub(super) fn value(self, ev: &Event) -> KeyVal {
        let p = ev.process.as_deref();
        let text = |s: Option<&Str>| match s {
            Some(s) => KeyVal::Text(s.as_bytes().into()),
            None => KeyVal::Null,
        };
        match self {
            KeyField::Pid => KeyVal::Num(ev.pid.into()),
            KeyField::Tid => KeyVal::Num(ev.tid.into()),
            KeyField::Ppid => KeyVal::Num(ev.ppid.into()),
            KeyField::Uid => KeyVal::Num(ev.uid.into()),
            KeyField::Gid => KeyVal::Num(ev.gid.into()),
            KeyField::Euid => ev.euid.map_or(KeyVal::Null, |v| KeyVal::Num(v.into())),
            KeyField::Comm => text(Some(&ev.comm)),
            KeyField::Path => text(Some(&ev.path)),
            KeyField::Syscall => KeyVal::Text(ev.syscall.as_str().as_bytes().into()),
            KeyField::Exe => text(p.and_then(|p| p.exe.as_ref())),
            KeyField::ParentExe => text(p.and_then(|p| p.parent.as_ref()?.exe.as_ref())),
            KeyField::User => text(ev.user.as_ref()),
            // On the host (no container) the value is `host`, as the `container:` condition says.
            KeyField::Container => match p {
                None => KeyVal::Null,
                Some(p) => match &p.container_id {
                    Some(c) => KeyVal::Text(c.as_bytes().into()),
                    None => KeyVal::Text(b"host"[..].into()),
                },
            },
        }
    }
}

/// A rule's `throttle:`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttle {
    /// Empty: one key for the whole rule.
    pub key: Vec<KeyField>,
    pub window_ns: i64,
    pub max: u64,
}

/// `5 per 60s by pid,exe` (for `rules check`).
impl std::fmt::Display for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self.window_ns;
        let window = if w % 1_000_000_000 == 0 {
            format!("{}s", w / 1_000_000_000)
        } else {
            format!("{}ms", w / 1_000_000)
        };
        let key: Vec<&str> = self.key.iter().map(|k| k.name()).collect();
        if key.is_empty() {
            write!(f, "{} per {window}", self.max)
        } else {
            write!(f, "{} per {window} by {}", self.max, key.join(","))
        }
    }
}

/// One field's value in a throttle key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum KeyVal {
    Num(i64),
    Text(Box<[u8]>),
    Null,
}

/// A throttle key's value: one `KeyVal` per field.
pub(super) type KeyVals = Box<[KeyVal]>;
