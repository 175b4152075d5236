//! Alert throttling, driven by event time, and the one stream of alerts live and replay share.
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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Alert, Engine, Rule, RuleSet};
use crate::event::{format_ts, Event};
use crate::json::Obj;

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

    fn value(self, ev: &Event) -> KeyVal {
        let p = ev.process.as_deref();
        let text = |s: Option<&crate::event::Str>| match s {
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

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum KeyVal {
    Num(i64),
    Text(Box<[u8]>),
    Null,
}

type KeyVals = Box<[KeyVal]>;

/// One key value's window.
struct Slot {
    start_ns: i64,
    end_ns: i64,
    count: u64,
    suppressed: u64,
    first_suppressed_ns: i64,
    last_suppressed_ns: i64,
    /// Position in the LRU (the alert counter when last touched).
    used: u64,
    /// Its entry in `Alerter::due` while it has suppressed alerts.
    due: Option<Due>,
}

#[derive(Default)]
struct RuleState {
    slots: HashMap<KeyVals, Slot>,
    /// `Slot::used` → key, oldest first.
    lru: BTreeMap<u64, KeyVals>,
}

/// An `alert_summary`: how many alerts of one rule and key value a window suppressed.
#[derive(Clone, Debug)]
pub struct Summary<'a> {
    pub rule: &'a Rule,
    pub ts_ns: i64,
    key: Vec<(KeyField, KeyVal)>,
    pub suppressed: u64,
    pub window_start_ns: i64,
    pub window_end_ns: i64,
    pub first_suppressed_ns: i64,
    pub last_suppressed_ns: i64,
    pub host: &'a str,
}

impl Summary<'_> {
    /// One JSON object, no trailing newline (shape in the module documentation).
    pub fn to_json_line(&self) -> String {
        let mut o = Obj::new();
        o.str("ts", &format_ts(self.ts_ns));
        o.str("event", "alert_summary");
        o.str("rule", &self.rule.name);
        o.str("severity", self.rule.severity.as_str());
        o.raw_key("key");
        let mut k = Obj::new();
        for (f, v) in &self.key {
            match v {
                KeyVal::Num(n) => k.num(f.name(), n),
                // Lossy for bytes that are not UTF-8: a summary names a key, it is not evidence.
                KeyVal::Text(t) => k.str(f.name(), &String::from_utf8_lossy(t)),
                KeyVal::Null => k.null(f.name()),
            }
        }
        o.push_raw(&k.finish());
        o.num("suppressed", self.suppressed);
        o.num("max", self.rule.throttle.as_ref().map_or(0, |t| t.max));
        o.str("window_start", &format_ts(self.window_start_ns));
        o.str("window_end", &format_ts(self.window_end_ns));
        o.str("first_suppressed", &format_ts(self.first_suppressed_ns));
        o.str("last_suppressed", &format_ts(self.last_suppressed_ns));
        o.str("hostname", self.host);
        o.str("description", &self.rule.description);
        o.strs("tags", &self.rule.tags);
        o.finish()
    }

    /// The key as `field=value` pairs (for tables).
    pub fn key_text(&self) -> String {
        self.key
            .iter()
            .map(|(f, v)| match v {
                KeyVal::Num(n) => format!("{}={n}", f.name()),
                KeyVal::Text(t) => format!("{}={}", f.name(), String::from_utf8_lossy(t)),
                KeyVal::Null => format!("{}=null", f.name()),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What the alert stream carries: alerts, and summaries of what throttling suppressed.
#[derive(Clone, Debug)]
pub enum Raised<'a> {
    Alert(Alert<'a>),
    Summary(Summary<'a>),
}

impl Raised<'_> {
    pub fn rule(&self) -> &Rule {
        match self {
            Raised::Alert(a) => a.rule,
            Raised::Summary(s) => s.rule,
        }
    }

    pub fn to_json_line(&self) -> String {
        match self {
            Raised::Alert(a) => a.to_json_line(),
            Raised::Summary(s) => s.to_json_line(),
        }
    }

    /// The values of `ALERT_COLUMNS`; a summary fills `ts`, `event`, `rule`, `severity`, puts
    /// its key and count in `matched` and leaves the event's columns null.
    pub fn values(&self) -> Vec<serde_json::Value> {
        match self {
            Raised::Alert(a) => a.values(),
            Raised::Summary(s) => {
                let mut v = vec![serde_json::Value::Null; super::ALERT_COLUMNS.len()];
                v[0] = format_ts(s.ts_ns).into();
                v[1] = "alert_summary".into();
                v[2] = s.rule.name.clone().into();
                v[7] = format!("{} suppressed ({})", s.suppressed, s.key_text()).into();
                v[8] = s.rule.severity.as_str().into();
                v
            }
        }
    }
}

/// A pending summary: when it falls due, and for which rule and key value.
type Due = (i64, u64, usize);

/// The alert stream of a rule set over a stream of events: the engine's matches, throttled, with
/// summaries. One per stream of events (a recording, a replay); used live and by `replay`.
pub struct Alerter<'a> {
    engine: Engine<'a>,
    host: Arc<str>,
    state: Vec<RuleState>,
    /// Windows with suppressed alerts, by when they end; the value is the key value.
    due: BTreeMap<Due, KeyVals>,
    next_due_ns: i64,
    seq: u64,
    last_ts_ns: i64,
}

impl<'a> Alerter<'a> {
    pub fn new(set: &'a RuleSet) -> Alerter<'a> {
        Alerter::with_engine(set.engine(), set.rules().len())
    }

    /// An alerter that owns its rule set with others (the recorder's, swapped on reload).
    pub fn shared(set: Arc<RuleSet>) -> Alerter<'static> {
        let rules = set.rules().len();
        Alerter::with_engine(Engine::shared(set), rules)
    }

    fn with_engine(engine: Engine<'a>, rules: usize) -> Alerter<'a> {
        Alerter {
            engine,
            host: Arc::from(""),
            state: (0..rules).map(|_| RuleState::default()).collect(),
            due: BTreeMap::new(),
            next_due_ns: i64::MAX,
            seq: 0,
            last_ts_ns: i64::MIN,
        }
    }

    /// The recording host that alerts name (`hostname`): live the host's, on replay the
    /// segment's.
    pub fn set_host(&mut self, host: &str) {
        if *self.host != *host {
            self.host = Arc::from(host);
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Calls `f` with the summaries that fall due at `ev`'s time, then with `ev`'s alerts that
    /// throttling lets through, in rule order.
    pub fn eval(&mut self, ev: &Event, mut f: impl FnMut(&Raised)) {
        self.last_ts_ns = ev.ts_ns;
        if ev.ts_ns >= self.next_due_ns {
            self.flush_due(ev.ts_ns, &mut f);
        }
        let Alerter {
            engine,
            host,
            state,
            due,
            next_due_ns,
            seq,
            ..
        } = self;
        let host: &str = host;
        engine.eval(ev, |a| {
            let a = Alert { host, ..*a };
            let Some(t) = &a.rule.throttle else {
                f(&Raised::Alert(a));
                return;
            };
            let idx = a.rule_index;
            let st = &mut state[idx];
            *seq += 1;
            let key: KeyVals = t.key.iter().map(|k| k.value(ev)).collect();
            if let Some(slot) = st.slots.get_mut(&key) {
                st.lru.remove(&slot.used);
                slot.used = *seq;
                st.lru.insert(*seq, key.clone());
                if ev.ts_ns >= slot.end_ns {
                    // A new window (the old one's summary, if any, was emitted when it fell due).
                    *slot = Slot {
                        start_ns: ev.ts_ns,
                        end_ns: ev.ts_ns.saturating_add(t.window_ns),
                        count: 0,
                        suppressed: 0,
                        first_suppressed_ns: 0,
                        last_suppressed_ns: 0,
                        used: slot.used,
                        due: None,
                    };
                }
                if slot.count < t.max {
                    slot.count += 1;
                    f(&Raised::Alert(a));
                } else {
                    if slot.suppressed == 0 {
                        slot.first_suppressed_ns = ev.ts_ns;
                        let d = (slot.end_ns, *seq, idx);
                        slot.due = Some(d);
                        due.insert(d, key.clone());
                        *next_due_ns = (*next_due_ns).min(slot.end_ns);
                    }
                    slot.suppressed += 1;
                    slot.last_suppressed_ns = ev.ts_ns;
                }
                return;
            }
            if st.slots.len() >= MAX_KEYS {
                if let Some((_, old)) = st.lru.pop_first() {
                    if let Some(slot) = st.slots.remove(&old) {
                        if let Some(d) = slot.due {
                            // Its pending entry goes with it; the summary is emitted now.
                            due.remove(&d);
                            *next_due_ns = due.keys().next().map_or(i64::MAX, |d| d.0);
                            f(&Raised::Summary(summary(
                                a.rule, t, &old, &slot, ev.ts_ns, host,
                            )));
                        }
                    }
                }
            }
            st.lru.insert(*seq, key.clone());
            st.slots.insert(
                key,
                Slot {
                    start_ns: ev.ts_ns,
                    end_ns: ev.ts_ns.saturating_add(t.window_ns),
                    count: 1,
                    suppressed: 0,
                    first_suppressed_ns: 0,
                    last_suppressed_ns: 0,
                    used: *seq,
                    due: None,
                },
            );
            f(&Raised::Alert(a));
        });
    }

    /// End of the stream: the summaries of windows still open, in the order they would have
    /// fallen due.
    pub fn finish(&mut self, mut f: impl FnMut(&Raised)) {
        self.flush_due(i64::MAX, &mut f);
    }

    /// The end of one run (a recording) and the start of the next in the same stream: what the
    /// first run's recorder emitted when it stopped ([`Alerter::finish`]), then throttle state
    /// as empty as the next recorder's was.
    pub fn next_run(&mut self, f: impl FnMut(&Raised)) {
        self.finish(f);
        for st in &mut self.state {
            *st = RuleState::default();
        }
    }

    fn flush_due(&mut self, upto_ns: i64, f: &mut impl FnMut(&Raised)) {
        let set = self.engine.rules();
        while let Some(entry) = self.due.first_entry() {
            let (end_ns, _, idx) = *entry.key();
            if end_ns > upto_ns {
                break;
            }
            let key = entry.remove();
            let rule = &set.rules()[idx];
            let (Some(t), Some(slot)) = (&rule.throttle, self.state[idx].slots.get_mut(&key))
            else {
                continue;
            };
            // Due by time: at the window's end; forced by the end of the stream: the last event's.
            let ts = if upto_ns == i64::MAX {
                self.last_ts_ns
            } else {
                end_ns
            };
            let s = summary(rule, t, &key, slot, ts, &self.host);
            slot.suppressed = 0;
            slot.due = None;
            f(&Raised::Summary(s));
        }
        self.next_due_ns = self.due.keys().next().map_or(i64::MAX, |d| d.0);
    }
}

fn summary<'r>(
    rule: &'r Rule,
    t: &Throttle,
    key: &KeyVals,
    slot: &Slot,
    ts_ns: i64,
    host: &'r str,
) -> Summary<'r> {
    Summary {
        rule,
        ts_ns,
        key: t.key.iter().copied().zip(key.iter().cloned()).collect(),
        suppressed: slot.suppressed,
        window_start_ns: slot.start_ns,
        window_end_ns: slot.end_ns,
        first_suppressed_ns: slot.first_suppressed_ns,
        last_suppressed_ns: slot.last_suppressed_ns,
        host,
    }
}

impl Alerter<'_> {
    /// The alerts of `range` of a store, as `record` raised them live: each segment's events
    /// with that segment's `host`, then (unless `f` stopped the scan) the end-of-stream
    /// summaries. Where the segments' `recording` changes, a recorder stopped and another
    /// started: the first one's end-of-stream summaries, and throttling starts afresh
    /// ([`Alerter::next_run`]). `on_event` sees every event first (progress bars). Used by
    /// `replay` and `rules test`.
    pub fn replay(
        &mut self,
        reader: &crate::store::Reader,
        range: &crate::store::TimeRange,
        mut on_event: impl FnMut(&Event),
        mut f: impl FnMut(&Raised) -> std::ops::ControlFlow<()>,
    ) -> crate::store::ScanStats {
        use std::cell::RefCell;
        use std::ops::ControlFlow;
        let host: RefCell<Option<String>> = RefCell::new(None);
        // The previous segment's run (`None` before the first), and whether this one starts
        // another.
        let run: RefCell<Option<Option<String>>> = RefCell::new(None);
        let new_run = std::cell::Cell::new(false);
        let mut flow = ControlFlow::Continue(());
        let stats = reader.scan_with(
            range,
            |seg| {
                *host.borrow_mut() = Some(seg.meta.host.clone());
                let this = &seg.meta.recording;
                let mut prev = run.borrow_mut();
                if prev.as_ref().is_some_and(|p| p != this) {
                    new_run.set(true);
                }
                *prev = Some(this.clone());
            },
            |ev| {
                if new_run.replace(false) {
                    self.next_run(|r| {
                        if flow.is_continue() {
                            flow = f(r);
                        }
                    });
                    if flow.is_break() {
                        return flow;
                    }
                }
                if let Some(h) = host.borrow_mut().take() {
                    self.set_host(&h);
                }
                on_event(ev);
                self.eval(ev, |r| {
                    if flow.is_continue() {
                        flow = f(r);
                    }
                });
                flow
            },
        );
        if flow.is_continue() {
            self.finish(|r| {
                if flow.is_continue() {
                    flow = f(r);
                }
            });
        }
        stats
    }
}
