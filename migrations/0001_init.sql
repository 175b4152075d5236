-- open-forensics segment schema, version 1. Migrations are append-only: never edit a released file,
-- add NNNN_name.sql instead. Each file runs once, in order, in one exclusive transaction, and
-- PRAGMA user_version records how many have run.

-- Segment metadata (keys: see src/store/writer.rs, write_meta_table).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Every byte string that repeats (paths, comms) is stored once per segment and referenced by id.
CREATE TABLE strings (
    id    INTEGER PRIMARY KEY,
    value BLOB NOT NULL
);

-- Process context, interned: the events of one thread share it.
CREATE TABLE procs (
    id   INTEGER PRIMARY KEY,
    pid  INTEGER NOT NULL,
    tid  INTEGER NOT NULL,
    ppid INTEGER NOT NULL,
    uid  INTEGER NOT NULL,
    gid  INTEGER NOT NULL,
    comm INTEGER NOT NULL REFERENCES strings (id)
);

-- How a file was opened, interned: a handful of distinct shapes cover nearly every event.
CREATE TABLE shapes (
    id        INTEGER PRIMARY KEY,
    syscall   INTEGER NOT NULL,   -- Syscall code (src/event.rs, bpf/events.h)
    src       INTEGER NOT NULL,   -- PathSource code
    truncated INTEGER NOT NULL,   -- 1 when the kernel cut path or raw_path
    dirfd     INTEGER,            -- NULL for calls without one; -100 is AT_FDCWD
    flags     INTEGER NOT NULL,
    mode      INTEGER NOT NULL
);

-- Events, one row per committed batch, stored by column: each BLOB holds `count` LEB128 varints,
-- in arrival order. Columns of like values side by side are what zstd compresses best (about a
-- third of the size of the same events as rows).
--   ts        zigzag deltas: the first from base_ts_ns (so 0), then from the previous event
--   proc      procs.id
--   path      strings.id of the resolved path
--   raw_path  strings.id of the raw path, 0 when it is the same string as path
--   shape     shapes.id
--   ret       zigzag: the fd, or minus errno
CREATE TABLE blocks (
    id          INTEGER PRIMARY KEY,
    count       INTEGER NOT NULL,
    base_ts_ns  INTEGER NOT NULL,   -- time of the block's first event
    min_ts_ns   INTEGER NOT NULL,   -- earliest and latest, to skip blocks outside a time range
    max_ts_ns   INTEGER NOT NULL,
    ts          BLOB NOT NULL,
    proc        BLOB NOT NULL,
    path        BLOB NOT NULL,
    raw_path    BLOB NOT NULL,
    shape       BLOB NOT NULL,
    ret         BLOB NOT NULL
);

-- Events the kernel or the recorder could not keep: a query over [start_ns, end_ns] is incomplete.
CREATE TABLE losses (
    id       INTEGER PRIMARY KEY,
    start_ns INTEGER NOT NULL,
    end_ns   INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    reason   TEXT NOT NULL
);
