//! Queries over history: named SQL (`queries/*.sql`, built into the binary) and ad-hoc SQL files.
//!
//! Each segment is its own SQLite database, so SQL cannot run on them one by one and still give
//! correct totals. Instead the events of the time range are decoded once (through
//! `store::Reader::scan`, the same decoder replay uses) into one in-memory table, `events`, and the
//! SQL runs there. Nothing is written to the store; the SQL sees only this private copy.
//!
//! `events` columns: `seq` (arrival order), `ts` (RFC 3339 text), `ts_ns`, `pid`, `tid`, `ppid`,
//! `uid`, `gid`, `comm`, `syscall`, `path`, `raw_path`, `path_source`, `path_truncated`, `dirfd`,
//! `flags`, `mode`, `ret`, `errno` (name, NULL on success), `result` (`success` or the errno name),
//! `access` (the `access:` names of rule files, comma-separated), then the opener's lineage (NULL
//! for events recorded before lineage): `image` (joins `processes.image`), `proc_start_ns`, `exe`,
//! `cmdline`, `parent_exe`, `container_id`, `user`, `euid`, `egid`, `auid`. Byte strings that are
//! not UTF-8 appear with U+FFFD. `events_v` is a view of the same rows (the segments' own name).
//!
//! `processes` has one row per process image stored in the segments read (every process that ran
//! while recording, and the ancestors of every opener): `image` (primary key: pid, start and exec
//! time), `pid`, `start`, `start_ns`, `exec` (RFC 3339, NULL unless the image began with an exec),
//! `ppid`, `parent_image`, `parent_exe`, `parent_comm`, `comm`, `exe`, `cmdline` (argv joined with
//! spaces), `argv` (a JSON array), `uid`, `gid`, `euid`, `egid`, `auid`, `sessionid`, `user`,
//! `cgroup`, `container_id`, `tty`, `pidns`, `mntns`, `source` (`exec`, `fork`, `procfs`, `event`,
//! `import`), `exit_code`, `exit_signal`, `exit` (RFC 3339, NULL while running or unknown), `root` (a
//! chrooted process's root, NULL otherwise).
//!
//! The table `losses` (`start_ns`, `end_ns`, `count`, `reason`) holds the loss records that overlap
//! the range: when it is not empty the answer is incomplete, and the CLI says so on stderr.

use std::ops::ControlFlow;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection};
use serde_json::{json, Value};

use std::collections::HashMap;

use crate::event::{format_ts, Str};
use crate::output::Rows;
use crate::process::Process;
use crate::rules::{access_names, errno};
use crate::store::{Reader, ScanStats, StoredProcess, TimeRange};

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
    #[error("building the events table: {0}")]
    Load(#[source] rusqlite::Error),
}

/// The description of a query: its leading `--` comment.
pub fn describe(sql: &str) -> String {
    sql.lines()
        .take_while(|l| l.trim_start().starts_with("--"))
        .map(|l| l.trim_start().trim_start_matches('-').trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A named query, or the text of a `.sql` file (any argument that is not a name is a path).
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
    Err(QueryError::Unknown {
        name: arg.to_owned(),
    })
}

const SCHEMA: &str = "
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, ts_ns INTEGER NOT NULL,
    pid INTEGER NOT NULL, tid INTEGER NOT NULL, ppid INTEGER NOT NULL,
    uid INTEGER NOT NULL, gid INTEGER NOT NULL, comm TEXT NOT NULL, syscall TEXT NOT NULL,
    path TEXT NOT NULL, raw_path TEXT NOT NULL, path_source TEXT NOT NULL,
    path_truncated INTEGER NOT NULL, dirfd INTEGER, flags INTEGER NOT NULL, mode INTEGER NOT NULL,
    ret INTEGER NOT NULL, errno TEXT, result TEXT NOT NULL, access TEXT NOT NULL,
    image TEXT, proc_start_ns INTEGER, exe TEXT, cmdline TEXT, parent_exe TEXT, container_id TEXT,
    user TEXT, euid INTEGER, egid INTEGER, auid INTEGER
);
CREATE VIEW events_v AS SELECT * FROM events;
CREATE TABLE processes (
    image TEXT PRIMARY KEY, pid INTEGER NOT NULL, start TEXT NOT NULL, start_ns INTEGER NOT NULL,
    exec TEXT, ppid INTEGER NOT NULL, parent_image TEXT, parent_exe TEXT, parent_comm TEXT,
    comm TEXT NOT NULL, exe TEXT, cmdline TEXT, argv TEXT, uid INTEGER NOT NULL,
    gid INTEGER NOT NULL, euid INTEGER NOT NULL, egid INTEGER NOT NULL, auid INTEGER,
    sessionid INTEGER, user TEXT, cgroup TEXT, container_id TEXT, tty TEXT, pidns INTEGER,
    mntns INTEGER, source TEXT NOT NULL, exit_code INTEGER, exit_signal INTEGER, exit TEXT,
    root TEXT
);
CREATE TABLE losses (start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, count INTEGER NOT NULL, reason TEXT NOT NULL);
";

/// The events of `range` in one in-memory database (see the module documentation), and what the
/// scan saw (losses, unreadable segments) for the caller to report.
pub fn materialize(
    reader: &Reader,
    range: &TimeRange,
    mut progress: impl FnMut(),
) -> Result<(Connection, ScanStats), QueryError> {
    let mut conn = Connection::open_in_memory().map_err(QueryError::Load)?;
    conn.execute_batch(SCHEMA).map_err(QueryError::Load)?;
    let tx = conn.transaction().map_err(QueryError::Load)?;
    let mut failed = None;
    let mut proc_failed = None;
    let mut stats = {
        let mut st = tx
            .prepare(
                "INSERT INTO events VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
                 ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, \
                 ?29, ?30)",
            )
            .map_err(QueryError::Load)?;
        let mut pst = tx
            .prepare(
                "INSERT INTO processes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
                 ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, \
                 ?29, ?30) ON CONFLICT (image) DO UPDATE SET \
                 exit_code = coalesce(exit_code, excluded.exit_code), \
                 exit_signal = coalesce(exit_signal, excluded.exit_signal), \
                 exit = coalesce(exit, excluded.exit)",
            )
            .map_err(QueryError::Load)?;
        reader.scan_with(
            range,
            |seg| {
                if proc_failed.is_some() {
                    return;
                }
                let loaded = seg.processes().and_then(|ps| Ok((ps, seg.users()?)));
                let (procs, users) = match loaded {
                    Ok(x) => x,
                    // The event scan of the same segment reports it.
                    Err(_) => return,
                };
                for sp in procs {
                    if let Err(e) = insert_process(&mut pst, &sp, &users) {
                        proc_failed = Some(e);
                        return;
                    }
                }
            },
            |e| {
                progress();
                let errno = errno::name_of_ret(e.ret);
                let result = match (e.ret >= 0, errno) {
                    (true, _) => "success".to_owned(),
                    (false, Some(n)) => n.to_owned(),
                    (false, None) => format!("errno {}", e.ret.unsigned_abs()),
                };
                let p = e.process.as_deref();
                let r = st.execute(params![
                    format_ts(e.ts_ns),
                    e.ts_ns,
                    e.pid,
                    e.tid,
                    e.ppid,
                    e.uid,
                    e.gid,
                    e.comm.lossy(),
                    e.syscall.as_str(),
                    e.path.lossy(),
                    e.raw_path.lossy(),
                    e.path_source.as_str(),
                    e.path_truncated,
                    e.dirfd,
                    // Flags are at most 32 bits wide in the kernel; SQLite integers are signed 64.
                    e.flags as i64,
                    e.mode,
                    e.ret,
                    errno,
                    result,
                    access_names(e),
                    p.map(Process::image_key),
                    p.map(|p| p.start_ns),
                    p.and_then(|p| p.exe.as_ref()).map(|s| s.lossy()),
                    p.map(|p| String::from_utf8_lossy(&p.cmdline()).into_owned()),
                    p.and_then(|p| p.parent.as_ref()?.exe.as_ref())
                        .map(|s| s.lossy()),
                    p.and_then(|p| p.container_id.as_ref()).map(|s| s.lossy()),
                    e.user.as_ref().map(|s| s.lossy()),
                    e.euid,
                    e.egid,
                    p.and_then(|p| p.auid),
                ]);
                match r {
                    Ok(_) => ControlFlow::Continue(()),
                    Err(err) => {
                        failed = Some(err);
                        ControlFlow::Break(())
                    }
                }
            },
        )
    };
    if let Some(e) = failed.or(proc_failed) {
        return Err(QueryError::Load(e));
    }
    {
        let mut st = tx
            .prepare("INSERT INTO losses VALUES (?1, ?2, ?3, ?4)")
            .map_err(QueryError::Load)?;
        for l in &stats.losses {
            st.execute(params![l.start_ns, l.end_ns, l.count as i64, l.reason])
                .map_err(QueryError::Load)?;
        }
    }
    tx.commit().map_err(QueryError::Load)?;
    stats.losses.sort_by_key(|l| l.start_ns);
    Ok((conn, stats))
}

/// One row of `processes` (see the module documentation).
fn insert_process(
    st: &mut rusqlite::Statement<'_>,
    sp: &StoredProcess,
    users: &HashMap<u32, Str>,
) -> rusqlite::Result<()> {
    let p = &sp.process;
    let lossy = |s: &Option<Str>| s.as_ref().map(|s| s.lossy().into_owned());
    let args: Vec<String> = p
        .args()
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let parent = p.parent.as_deref();
    st.execute(params![
        p.image_key(),
        p.pid,
        format_ts(p.start_ns),
        p.start_ns,
        p.exec_ns.map(format_ts),
        p.ppid,
        parent.map(Process::image_key),
        parent.and_then(|q| lossy(&q.exe)),
        parent.map(|q| q.comm.lossy().into_owned()),
        p.comm.lossy(),
        lossy(&p.exe),
        p.argv.as_ref().map(|_| args.join(" ")),
        p.argv
            .as_ref()
            .map(|_| serde_json::Value::from(args.clone()).to_string()),
        p.uid,
        p.gid,
        p.euid,
        p.egid,
        p.auid,
        p.sessionid,
        users.get(&p.uid).map(|u| u.lossy().into_owned()),
        lossy(&p.cgroup),
        lossy(&p.container_id),
        lossy(&p.tty),
        p.pidns,
        p.mntns,
        p.source.as_str(),
        sp.exit.map(|(status, _)| (status >> 8) & 0xff),
        sp.exit.map(|(status, _)| status & 0x7f),
        sp.exit.map(|(_, ts)| format_ts(ts)),
        lossy(&p.root),
    ])
    .map(|_| ())
}

/// Runs one SQL statement and returns its rows (at most `limit`).
pub fn run(
    conn: &Connection,
    name: &str,
    sql: &str,
    limit: Option<u64>,
) -> Result<Rows, QueryError> {
    let err = |source| QueryError::Sql {
        name: name.to_owned(),
        source,
    };
    let mut st = conn.prepare(sql).map_err(err)?;
    let headers: Vec<String> = st.column_names().map(|c| c.to_string()).collect();
    let n = headers.len();
    let mut rows = Rows::new(headers);
    let mut q = st.query([]).map_err(err)?;
    while let Some(r) = q.next().map_err(err)? {
        if limit.is_some_and(|l| rows.rows.len() as u64 >= l) {
            break;
        }
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
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_queries_have_descriptions_and_prepare() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        for (name, sql) in NAMED {
            assert!(!describe(sql).is_empty(), "{name}");
            let rows = run(&conn, name, sql, None).unwrap();
            assert!(rows.rows.is_empty(), "{name}");
        }
        assert!(matches!(resolve("nope"), Err(QueryError::Unknown { .. })));
    }
}
