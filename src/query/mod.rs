//! Queries over history: named SQL (`queries/*.sql`, built into the binary), `.sql` files and
//! ad-hoc SQL (`--sql "SELECT …"`).
//!
//! Each segment is its own SQLite database, so SQL cannot run on them one by one and still give
//! correct totals. Instead `events` and `processes` are virtual tables (`vtab.rs`) whose cursors
//! decode the store segment by segment, one block at a time, through the segment reader replay
//! uses: SQLite aggregates and sorts the stream, so memory follows the answer, not the range; the
//! session's [`Limits`] bound its time, SQLite's heap, and where its sorter may spill (memory
//! unless the user names a directory). `--since`/`--until` and any constraint on
//! `ts_ns` in the SQL narrow what is read to whole segments (metadata) and blocks (their time
//! range); `=` and `IN` on path, comm, op, pid, uid, exe and the like skip the segments and blocks
//! whose summaries rule them out, and the rows that fail them before SQLite sees them (see
//! `vtab.rs`, `pushdown.rs`). Nothing is written anywhere: statements must be one read-only `SELECT`/`WITH`
//! (checked with `sqlite3_stmt_readonly`, and the connection is `query_only`).
//!
//! Each reference to `events` in a statement is its own scan of the range: a correlated subquery
//! over `events` per row of another table reads the range once per row. Join to an aggregate
//! (`JOIN (SELECT image, count(*) … GROUP BY image)`) instead, as `process_tree` does.
//!
//! `events` columns (one row per event: an open, another file operation or an exec): `seq` (arrival order:
//! the segment's sequence number × 2³² + the event's place in it, the same whatever the window),
//! `ts` (RFC 3339 text), `ts_ns`, `pid`, `tid`, `ppid`, `uid`, `gid`, `comm`, `syscall`, `op`
//! (`open`, `rename`… ; `open` for every event of a segment before schema 5), `path`, `old_path`
//! (a rename's or link's old name, a symlink's target; NULL otherwise), `raw_path`,
//! `path_source`, `path_truncated`, `dirfd`, `flags`, `mode`, `ret`, `errno` (name, NULL on
//! success), `result` (`success` or the errno name), `access` (the `access:` names of rule files,
//! comma-separated: an operation's by its op), `new_uid`, `new_gid` (chown's, NULL when left
//! unchanged), `length` (truncate's), then the opener's lineage (NULL
//! for events recorded before lineage): `image` (joins `processes.image`), `proc_start_ns`, `exe`,
//! `cmdline`, `parent_exe`, `container_id`, `user`, `euid`, `egid`, `auid`, then its identities
//! (NULL before schema 4): `root`, `file`, `alias_of`, `mntns`, `exe_id`, `exe_verified` (see
//! `docs/events.md`), then the image's `cwd` (NULL when not known). Byte strings that are
//! not UTF-8 appear with U+FFFD. `events_v` is a view of the same rows (the segments' own name).
//!
//! `processes` has one row per process image stored in the segments of the range and alive in it
//! (held in memory while the query runs: one row per image) (every process that ran
//! while recording, and the ancestors of every opener): `image` (primary key: pid, start and exec
//! time), `pid`, `start`, `start_ns`, `exec` (RFC 3339, NULL unless the image began with an exec),
//! `ppid`, `parent_image`, `parent_exe`, `parent_comm`, `comm`, `exe`, `cmdline` (argv joined with
//! spaces), `argv` (a JSON array), `uid`, `gid`, `euid`, `egid`, `auid`, `sessionid`, `user`,
//! `cgroup`, `container_id`, `tty`, `pidns`, `mntns`, `source` (`exec`, `fork`, `procfs`, `event`,
//! `import`), `exit_code`, `exit_signal`, `exit` (RFC 3339, NULL while running or unknown), `root` (a
//! chrooted process's root, NULL otherwise), `exe_id`, `exe_verified`, `cwd` (the working
//! directory it began in; NULL for a fork's image and before schema 7).
//!
//! `path_counts` (`op`, `path`, `comm`, `events`, `failed`, `first_ts_ns`, `last_ts_ns`,
//! `first_ts`, `last_ts`) is `events` counted per op, path and comm over the range, computed per
//! segment over its string ids (`path_counts.rs`): what `top_paths` reads instead of grouping every
//! event.
//!
//! The table `losses` (`start_ns`, `end_ns`, `count`, `reason`) holds the loss records that overlap
//! the range (read from the segments whose metadata counts losses): when it is not empty the
//! answer is incomplete, and the CLI says so on stderr.

mod cells;
pub mod completeness;
pub mod limits;
mod path_counts;
pub mod pid;
mod pushdown;
pub mod replay;
mod row_limit;
pub mod scan_cost;
pub mod timeline;
pub mod tree;
pub mod users;
mod vtab;

use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::store::{Reader, ScanStats, TimeRange};
pub use limits::Limits;

/// Events read between two calls of a session's progress callback.
pub const PROGRESS_EVERY: u64 = 1 << 14;

/// Named queries: (name, SQL). The first comment line of each is its description.
pub const NAMED: &[(&str, &str)] = &[
    ("top_paths", include_str!("../../queries/top_paths.sql")),
    (
        "top_processes",
        include_str!("../../queries/top_processes.sql"),
    ),
    (
        "failed_by_process",
        include_str!("../../queries/failed_by_process.sql"),
    ),
    (
        "failures_by_errno",
        include_str!("../../queries/failures_by_errno.sql"),
    ),
    ("first_seen", include_str!("../../queries/first_seen.sql")),
    (
        "sensitive_timeline",
        include_str!("../../queries/sensitive_timeline.sql"),
    ),
    (
        "spawned_by_shell_or_server",
        include_str!("../../queries/spawned_by_shell_or_server.sql"),
    ),
    (
        "process_tree",
        include_str!("../../queries/process_tree.sql"),
    ),
    (
        "file_changes",
        include_str!("../../queries/file_changes.sql"),
    ),
    (
        "log_deletions",
        include_str!("../../queries/log_deletions.sql"),
    ),
    (
        "setuid_changes",
        include_str!("../../queries/setuid_changes.sql"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("unknown query {name:?}: not a named query ({}) nor a .sql file", NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    Unknown { name: String },
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("query {name}: {source}")]
    Sql {
        name: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("query {name}: refused: {why}; queries read history and never write")]
    NotReadOnly { name: String, why: &'static str },
    #[error("query {name}: syntax error near {near}")]
    Syntax { name: String, near: String },
    #[error("query {name}: {what}")]
    Limit { name: String, what: String },
    #[error("setting up the query tables: {0}")]
    Load(#[source] rusqlite::Error),
    #[error("writing the answer: {0}")]
    Output(#[source] std::io::Error),
}

/// The description of a query: its leading `--` comment.
pub fn describe(sql: &str) -> String {
    sql.lines()
        .take_while(|l| l.trim_start().starts_with("--"))
        .map(|l| l.trim_start().trim_start_matches('-').trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A named query, the text of a `.sql` file, or ad-hoc SQL: an argument that is not a name, not
/// an existing file nor a `.sql` path, and holds a blank (`"SELECT count(*) FROM events"`).
pub fn resolve(arg: &str) -> Result<(String, String), QueryError> {
    if let Some((n, sql)) = NAMED.iter().find(|(n, _)| *n == arg) {
        return Ok(((*n).to_owned(), (*sql).to_owned()));
    }
    let path = std::path::Path::new(arg);
    if path.extension().is_some_and(|e| e == "sql") || path.exists() {
        let sql = std::fs::read_to_string(path).map_err(|source| QueryError::Io {
            path: arg.to_owned(),
            source,
        })?;
        return Ok((arg.to_owned(), sql));
    }
    if arg.contains(char::is_whitespace) {
        return Ok(("ad-hoc".to_owned(), arg.to_owned()));
    }
    Err(QueryError::Unknown {
        name: arg.to_owned(),
    })
}

/// What the connection holds besides the virtual tables.
const SCHEMA: &str = "
CREATE VIEW events_v AS SELECT * FROM events;
CREATE TABLE losses (start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, count INTEGER NOT NULL, reason TEXT NOT NULL);
";

/// A query connection over one store and time range (see the module documentation).
pub struct Session {
    conn: Connection,
    shared: Arc<vtab::Shared>,
    losses: Vec<crate::store::Loss>,
    limits: Limits,
}

/// What [`Session::run`] hands back: the sink, and the statement's own `LIMIT` when the answer
/// stopped there with more rows to come.
pub struct Answer<W> {
    pub sink: W,
    pub cut_at: Option<u64>,
}

impl Session {
    /// Registers the tables and reads the range's loss records; `progress` is called every
    /// [`PROGRESS_EVERY`] events read. The `limits` hold from now on.
    pub fn open(
        reader: Reader,
        range: TimeRange,
        limits: Limits,
        progress: Box<dyn Fn() + Send + Sync>,
    ) -> Result<Session, QueryError> {
        let mut conn = Connection::open_in_memory().map_err(QueryError::Load)?;
        limits::apply(&mut conn, &limits).map_err(QueryError::Load)?;
        let shared = Arc::new(vtab::Shared::new(reader, range, progress));
        vtab::register(&conn, shared.clone()).map_err(QueryError::Load)?;
        path_counts::register(&conn, shared.clone()).map_err(QueryError::Load)?;
        conn.execute_batch(SCHEMA).map_err(QueryError::Load)?;
        let mut losses = Vec::new();
        {
            let mut errors = Vec::new();
            for info in shared
                .reader
                .segments_in(&range)
                // A segment without events may be a gap segment: outages count no event.
                .filter(|s| s.meta.lost > 0 || s.meta.alert_drops > 0 || s.meta.events == 0)
            {
                match shared.reader.load(info).and_then(|s| s.losses()) {
                    Ok(l) => losses.extend(
                        l.into_iter()
                            .filter(|l| range.overlaps(l.start_ns, l.end_ns)),
                    ),
                    Err(e) => errors.push(e),
                }
            }
            let mut st = shared.stats.lock().unwrap_or_else(|p| p.into_inner());
            st.errors.extend(errors);
            for info in shared.reader.segments_in(&range) {
                st.note_coverage(&info.meta);
            }
        }
        losses.sort_by_key(|l| l.start_ns);
        {
            let mut st = conn
                .prepare("INSERT INTO losses VALUES (?1, ?2, ?3, ?4)")
                .map_err(QueryError::Load)?;
            for l in &losses {
                st.execute(params![l.start_ns, l.end_ns, l.count as i64, l.reason])
                    .map_err(QueryError::Load)?;
            }
        }
        // Belt and braces with the read-only check of each statement: nothing can be written.
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(QueryError::Load)?;
        Ok(Session {
            conn,
            shared,
            losses,
            limits,
        })
    }

    /// Runs one read-only statement: `start` gets its column names and returns the sink that
    /// `on_row` then hands each row as it comes (at most `limit`, which replaces the statement's
    /// own trailing `LIMIT`).
    pub fn run<W>(
        &self,
        name: &str,
        sql: &str,
        limit: Option<u64>,
        start: impl FnOnce(Vec<String>) -> std::io::Result<W>,
        mut on_row: impl FnMut(&mut W, Vec<Value>) -> std::io::Result<()>,
    ) -> Result<Answer<W>, QueryError> {
        let err = |source: rusqlite::Error| match limits::exceeded(&source, &self.limits) {
            Some(what) => QueryError::Limit {
                name: name.to_owned(),
                what,
            },
            None => QueryError::Sql {
                name: name.to_owned(),
                source,
            },
        };
        // Its own LIMIT is asked one row more, to tell "stopped at the limit" from "all".
        let own = row_limit::trailing_limit(sql);
        let (sql, cap, own_cap) = match (own, limit) {
            (Some((span, n)), None) => (
                row_limit::with_limit(sql, span, n.saturating_add(1)),
                Some(n),
                Some(n),
            ),
            (Some((span, _)), Some(l)) => (row_limit::with_limit(sql, span, l), Some(l), None),
            (None, l) => (sql.to_owned(), l, None),
        };
        // A statement that does not parse is a syntax error, whatever its first word.
        let mut st = self
            .conn
            .prepare(&sql)
            .map_err(|e| syntax(name, &e).unwrap_or_else(|| err(e)))?;
        check_select(name, &sql)?;
        if !st.readonly() {
            return Err(QueryError::NotReadOnly {
                name: name.to_owned(),
                why: "it would write",
            });
        }
        let headers: Vec<String> = st.column_names().map(|c| c.to_string()).collect();
        let n = headers.len();
        let mut sink = start(headers).map_err(QueryError::Output)?;
        let mut q = st.query([]).map_err(err)?;
        let mut count = 0u64;
        let mut cut_at = None;
        while let Some(r) = q.next().map_err(err)? {
            if cap.is_some_and(|c| count >= c) {
                cut_at = own_cap;
                break;
            }
            count += 1;
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(match r.get_ref(i).map_err(err)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => json!(v),
                    ValueRef::Real(v) => json!(v),
                    ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                    ValueRef::Blob(b) => json!(String::from_utf8_lossy(b)),
                });
            }
            on_row(&mut sink, row).map_err(QueryError::Output)?;
            if own_cap.is_none() && cap.is_some_and(|c| count >= c) {
                break;
            }
        }
        Ok(Answer { sink, cut_at })
    }

    /// What the reading saw: segments and events read, losses, segments that could not be read.
    pub fn stats(&self) -> ScanStats {
        let mut st =
            std::mem::take(&mut *self.shared.stats.lock().unwrap_or_else(|p| p.into_inner()));
        st.losses = self.losses.clone();
        st.pruned = self.shared.reader.pruned_in(&self.shared.range);
        st.warnings = self.shared.reader.skipped().to_vec();
        st.errors
            .splice(0..0, self.shared.reader.unreadable_errors());
        st
    }
}

/// A statement SQLite could not parse: "syntax error near X", from its `near "X": syntax error`.
fn syntax(name: &str, e: &rusqlite::Error) -> Option<QueryError> {
    let msg = match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.as_str(),
        rusqlite::Error::SqlInputError { msg, .. } => msg.as_str(),
        _ => return None,
    };
    let near = msg.strip_suffix(": syntax error")?.strip_prefix("near ")?;
    Some(QueryError::Syntax {
        name: name.to_owned(),
        near: near.to_owned(),
    })
}

/// The first keyword of `sql` after comments and blanks must be `SELECT`, `WITH` or `VALUES`:
/// `sqlite3_stmt_readonly` alone would let `ATTACH` (which can create a file) and `PRAGMA` through.
fn check_select(name: &str, sql: &str) -> Result<(), QueryError> {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    if matches!(word.as_str(), "SELECT" | "WITH" | "VALUES") {
        Ok(())
    } else {
        Err(QueryError::NotReadOnly {
            name: name.to_owned(),
            why: "only one SELECT (or WITH … SELECT) statement runs",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_queries_have_descriptions_and_pass_the_read_only_check() {
        for (name, sql) in NAMED {
            assert!(!describe(sql).is_empty(), "{name}");
            check_select(name, sql).unwrap();
        }
        assert!(matches!(resolve("nope"), Err(QueryError::Unknown { .. })));
        assert_eq!(
            resolve("SELECT 1").unwrap(),
            ("ad-hoc".into(), "SELECT 1".into())
        );
    }

    #[test]
    fn only_select_statements_pass() {
        for ok in [
            "SELECT 1",
            "  -- c\n/* x */ with a AS (SELECT 1) SELECT * FROM a",
            "values (1)",
        ] {
            check_select("t", ok).unwrap();
        }
        for bad in [
            "DELETE FROM events",
            "ATTACH '/tmp/x' AS x",
            "PRAGMA query_only = OFF",
            "-- SELECT\nDROP TABLE losses",
            "/* SELECT */ INSERT INTO losses VALUES (1, 2, 3, 'x')",
            "",
        ] {
            assert!(
                matches!(check_select("t", bad), Err(QueryError::NotReadOnly { .. })),
                "{bad}"
            );
        }
    }
}
