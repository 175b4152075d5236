-- open-forensics segment schema, version 1. Migrations are append-only: never edit a released file,
-- add NNNN_name.sql instead. Each file runs once, in order, in one exclusive transaction, and
-- PRAGMA user_version records how many have run.

-- Segment metadata (see src/store/mod.rs for the keys).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Every byte string that repeats (paths, comms) is stored once per segment and referenced by id.
CREATE TABLE strings (
    id    INTEGER PRIMARY KEY,
    value BLOB NOT NULL
);

-- Process context, interned: most events of a process share it, so an event stores one small id.
CREATE TABLE procs (
    id   INTEGER PRIMARY KEY,
    pid  INTEGER NOT NULL,
    tid  INTEGER NOT NULL,
    ppid INTEGER NOT NULL,
    uid  INTEGER NOT NULL,
    gid  INTEGER NOT NULL,
    comm INTEGER NOT NULL REFERENCES strings (id)
);

-- One row per open, in arrival order. Columns are small integers on purpose: SQLite stores an
-- integer in 0 to 8 bytes by magnitude, so deltas and ids cost a byte or two.
CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    dt        INTEGER NOT NULL,              -- ns since the previous event (the first: since meta.base_ts_ns)
    proc      INTEGER NOT NULL REFERENCES procs (id),
    syscall   INTEGER NOT NULL,              -- Syscall code (src/event.rs, bpf/events.h)
    path      INTEGER NOT NULL REFERENCES strings (id),
    raw_path  INTEGER REFERENCES strings (id), -- NULL: the same string as path
    src       INTEGER NOT NULL,              -- PathSource code
    truncated INTEGER NOT NULL,              -- 1 when the kernel cut path or raw_path
    dirfd     INTEGER,                       -- NULL for calls without one; -100 is AT_FDCWD
    flags     INTEGER NOT NULL,
    mode      INTEGER NOT NULL,
    ret       INTEGER NOT NULL               -- the fd, or minus errno
);

-- Events the kernel or the recorder could not keep: a query over [start_ns, end_ns] is incomplete.
CREATE TABLE losses (
    id       INTEGER PRIMARY KEY,
    start_ns INTEGER NOT NULL,
    end_ns   INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    reason   TEXT NOT NULL
);

-- The events as a person reads them; named SQL in queries/ is written against this view.
CREATE VIEW events_v AS
SELECT
    e.id AS id,
    (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'base_ts_ns')
        + sum(e.dt) OVER (ORDER BY e.id ROWS UNBOUNDED PRECEDING) AS ts_ns,
    p.pid, p.tid, p.ppid, p.uid, p.gid,
    CAST(c.value AS TEXT) AS comm,
    CASE e.syscall WHEN 1 THEN 'open' WHEN 2 THEN 'creat' WHEN 3 THEN 'openat' WHEN 4 THEN 'openat2'
        WHEN 5 THEN 'open_by_handle_at' WHEN 6 THEN 'io_uring' ELSE 'unknown' END AS syscall,
    CAST(sp.value AS TEXT) AS path,
    CAST(coalesce(sr.value, sp.value) AS TEXT) AS raw_path,
    CASE e.src WHEN 1 THEN 'file' WHEN 2 THEN 'raw' WHEN 3 THEN 'cwd' WHEN 4 THEN 'dirfd'
        WHEN 5 THEN 'unresolved' ELSE 'unknown' END AS path_source,
    e.truncated AS path_truncated,
    e.dirfd, e.flags, e.mode, e.ret
FROM events e
JOIN procs p ON p.id = e.proc
JOIN strings c ON c.id = p.comm
JOIN strings sp ON sp.id = e.path
LEFT JOIN strings sr ON sr.id = e.raw_path;
