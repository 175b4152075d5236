//! The rule engine: one engine for live alerts, `replay` and `query --rule`.
//!
//! CONTRACT (stable API other modules use: re-exported here, or in the public `sql` and `testing`;
//! every other file is private):
//! - `RuleSet::load(&[PathBuf]) -> Result<RuleSet, RulesError>`: loads and validates YAML rule
//!   files; `RuleSet::from_yaml` does the same for text, `RuleSet::from_filter(name, &Filter)`
//!   makes one rule of command-line filters (`Filter` is their `clap::Args`).
//! - `RuleSet::engine(&self) -> Engine`: an evaluator with its own per-string verdict caches.
//! - `Engine::eval(&mut self, ev: &Event, f: impl FnMut(&Alert))`: calls `f` for every rule that
//!   matches `ev`, in rule order.
//! - `Alert::to_json_line(&self) -> String`: the alert line, identical live and on replay (its
//!   lineage keys are written by `event::put_alert_lineage`); `Alert::values` are its table and
//!   CSV columns.
//! - `Alerter::new(&RuleSet)`, `set_host`, `eval(ev, f: FnMut(&Raised))`, `next_run(f)`,
//!   `finish(f)`: the alert stream (alerts with their host, throttled, and `alert_summary` lines)
//!   that `record` and `replay` both print. The caller feeds it events: `query::replay` runs it
//!   over a store's segments.
//! - `RuleSet::to_sql(&self, sql::Dialect) -> Result<String, Vec<sql::Refusal>>`: the enabled rules
//!   as one SQL query over the Parquet export, returning exactly `replay`'s alerts (see `sql`).
//! - `testing::judge`: the verdicts of `rules test`, from the alerts its caller replayed.
//!
//! The engine reads rule files and nothing else: no store, no printing. It uses the ground floor
//! (`event`, `process`, `json`, `timespec`, `errno`, `yaml_pos`), and still `output::printable`
//! (to escape messages) and the Parquet schema's version (in `sql`).
//!
//! For the string caches to work, evaluate an event after `store::Writer::append` has set its
//! `Str::key`s and `Event::table` (replayed events already carry them); unkeyed events are evaluated
//! directly, with the same result.
//!
//! # Rule files
//!
//! A rule file is one YAML mapping with any of three top-level keys; several files are merged in
//! the order given. Every key below is checked: an unknown key, a value of the wrong type, a bad
//! glob, an unknown list, syscall, access or errno name is an error naming the file, line and column.
//!
//! ## `open_monitor:` (the proof of concept's configuration, still accepted)
//!
//! ```yaml
//! open_monitor:
//!   sensitive_paths: ["/etc/shadow", "/etc/ssh/", "/root/.ssh/*"]
//!   allow_comm: []            # if non-empty, only these processes can alert
//!   deny_comm: ["sshd"]       # these never alert
//!   ignore_path_prefixes: ["/proc/", "/sys/"]
//! ```
//!
//! defines one rule, `open_sensitive` (severity `high`). A `sensitive_paths` entry matches the exact
//! path; when it ends in `/`, every path under that directory; when it contains a glob character
//! (`*`, `?`, `[`, `{`), the glob (same glob syntax as below: `*` stays within one path component,
//! `**` crosses them). Like the proof of concept, which hooked the syscall's entry and so saw every
//! attempt, `open_sensitive` also fires on opens that failed (e.g. `EACCES`). All four keys are
//! optional; an empty or missing `sensitive_paths` makes a rule that never fires.
//!
//! ## `lists:` (named, reusable values)
//!
//! ```yaml
//! lists:
//!   shells: [bash, sh, dash, zsh]
//!   ssh_dirs: ["/root/.ssh/", "/home/*/.ssh/**"]
//! ```
//!
//! An item `$NAME` in any condition (or in another list) stands for the items of list `NAME`, which
//! may be defined in any of the files. A list may be empty; cycles are an error. Lists may refer to
//! lists at most 64 levels deep, and list references may produce at most 100,000 values in a rule
//! set (a list's values count each time it is used; values written in the rules do not count):
//! beyond either bound, loading fails with an error at the reference.
//!
//! ## `rules:` (the full format)
//!
//! ```yaml
//! rules:
//!   - name: shadow_read              # required; letters, digits, `_`, `-`, `.`, `:`; unique
//!     description: Reads of password hashes   # required
//!     severity: high                 # required: info | low | medium | high | critical
//!     enabled: true                  # optional, default true; a disabled rule runs nowhere
//!                                    # (`query --rule` of it is an error)
//!     path: [/etc/shadow, /etc/gshadow]
//!     not_comm: [$shells]
//!     access: [read]
//!     result: [success]
//!     except:                        # optional: if any block matches, the rule does not fire
//!       - comm: [passwd, chpasswd]
//!       - uid: [0]
//!         path: ["/etc/gshadow"]
//!     tags: [credential_access, "mitre:T1003.008"]   # optional, in alerts
//!     throttle: {key: [pid, exe], window: 1m, max: 5} # optional, see below
//! ```
//!
//! `tags`: strings of letters, digits and `_ - . : / @ +`, 1 to 64 bytes, at most 32, no
//! duplicates, `$lists` allowed. `throttle`: after `max` (1 to 1,000,000) alerts per value of
//! `key` (a list of `pid`, `tid`, `ppid`, `uid`, `gid`, `euid`, `comm`, `path`, `syscall`, `exe`,
//! `parent_exe`, `user`, `container`, each at most once; empty or absent: the whole rule) within
//! `window` (a duration, 1ms to 30d) of event time, further alerts are suppressed and summarised
//! by one `alert_summary` line; the semantics are in `throttle.rs`. Throttling applies to the
//! alert stream (`record`, `replay`, `rules test`: [`Alerter`]), not to `query --rule`.
//!
//! Conditions (each a value or a list of values; every listed condition must hold, a list holds
//! when any of its values matches; each `K` also has `not_K`, which holds when none matches):
//!
//! | key | matches | values |
//! |---|---|---|
//! | `path` | the resolved `path` | exact path; `dir/` = everything under `dir/`; glob: `*`, `?`, `[a-z]`, `{a,b}` within a component, `**` across components |
//! | `path_prefix` | the resolved `path` | a plain byte prefix (`/tmp/x` also matches `/tmp/xyz`) |
//! | `comm` | the process name | exact name, or a glob (`python*`); exact names longer than 15 bytes are cut to 15, as the kernel does |
//! | `uid`, `gid`, `pid`, `ppid` | the event's ids | integers |
//! | `syscall` | how the open was made | `open`, `creat`, `openat`, `openat2`, `open_by_handle_at`, `io_uring`, and through the 32-bit entry `ia32_open`, `ia32_creat`, `ia32_openat`, `ia32_openat2`, `ia32_open_by_handle_at` |
//! | `access` | what the flags ask for | `read`, `write` (from `O_ACCMODE`; not with `O_PATH`), `create` (`O_CREAT`, or the `creat` syscall), `truncate`, `append`, `exclusive` (`O_EXCL`), `directory`, `tmpfile`, `path` (`O_PATH`), `nofollow`, `cloexec` |
//! | `result` | the return value | `success`, `failure`, or an errno name (`EACCES`, `ENOENT`, …) |
//! | `exe` | the opener's executable, resolved in the kernel (a renamed process cannot change it; ` (deleted)` ends an unlinked one, `/memfd:NAME (deleted)` is fileless) | as `path` |
//! | `cmdline` | the opener's argv joined with spaces | exact, or a glob where `*` also crosses `/` |
//! | `parent_exe`, `parent_comm` | the parent's executable and name when it started the opener | as `exe`, as `comm` |
//! | `ancestor_exe`, `ancestor_comm` | any ancestor's (parent, grandparent, … up to pid 1 or 32 levels) | as `exe`, as `comm` |
//! | `ancestor_pid` | any ancestor's pid | integers |
//! | `container` | the container id parsed from the cgroup (docker, containerd/CRI, CRI-O, podman; `pod:UID` for a bare Kubernetes pod) | an id or glob, or `host` for processes in no container |
//! | `user` | the name of `uid` on the recording host | exact name or glob |
//! | `euid` | the effective uid at the open | integers |
//! | `auid` | the login uid (who logged in, through `su`/`sudo`) | integers; unset matches none |
//!
//! Every pattern (of any key above or of `open_monitor`) is at most 4096 bytes long, as no path is
//! longer. Values have the type their key needs: integers for the ids (`uid`, `gid`, `pid`, `ppid`,
//! `ancestor_pid`, `euid`, `auid`), strings for everything else (`comm: 42` is an error, not the
//! name "42"; quote it), as are `name` and `description`.
//!
//! `path` and `path_prefix` form one condition (the path matches any of their values), and so do
//! `not_path` and `not_path_prefix`. Lineage conditions are decided once per process image. Events
//! recorded before lineage (schema 1 segments) have no exe, parent, container or user: a positive
//! lineage condition never holds for them, a `not_` one always does.
//! A rule or an `except` block needs at least one condition; a positive key given an empty list
//! (`path: []`) is an error, since it could never hold.
//!
//! ## Alerts
//!
//! One JSON object per line: `ts` (the event's time, RFC 3339 UTC, 9 fractional digits), `event`
//! (`"alert"`), `rule`, `pid`, `ppid`, `comm`, `path`, `matched` (the rule's first `path` value that
//! matched, else its first matching `comm` value, else its first matching `exe` value, else
//! `null`), `severity`, `tid`, `uid`, `gid`,
//! `syscall`, `raw_path`, `flags`, `ret`; then, only for byte strings that are not UTF-8,
//! `comm_b64`, `path_b64`, `raw_path_b64` (their exact bytes; the plain keys hold lossy text); then,
//! for events recorded with lineage, `exe`, `argv` (an array), `parent_exe`, `ancestors` (an
//! array of `{pid, comm, exe, proc_start}`, parent first), `container_id`, `user`; then always
//! `hostname` (the recording host: the segment's `host`, live and on replay), the rule's
//! `description` and `tags`.

mod access;
mod alert;
mod alerter;
mod builder;
mod clause;
mod diag;
mod engine;
mod expand;
mod filter;
mod lineage;
mod load;
mod matcher;
mod pattern;
mod raw;
mod rule;
mod set;
pub mod sql;
mod summary;
pub mod testing;
mod throttle;

pub use access::access_names;
pub use alert::{Alert, COLUMNS as ALERT_COLUMNS};
pub use alerter::{Alerter, Raised};
pub use diag::{Diagnostic, RulesError};
pub use engine::Engine;
pub use filter::Filter;
pub use rule::{Rule, Severity};
pub use set::RuleSet;
pub use summary::Summary;
pub use throttle::{KeyField, Throttle};

#[cfg(test)]
mod tests;
