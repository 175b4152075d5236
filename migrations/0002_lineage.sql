-- open-forensics segment schema, version 2: process identity and lineage.
-- Rows of schema 1 (procs without these columns) read back with lineage NULL.

-- One image of one process (src/process.rs): a process is keyed by (pid, start_ns); an exec
-- begins a new image of the same process. Every process an event references is here, with its
-- ancestors, so a segment answers "who" on its own.
CREATE TABLE processes (
    id             INTEGER PRIMARY KEY,
    pid            INTEGER NOT NULL,
    start_ns       INTEGER NOT NULL,   -- process start, ns since the epoch
    exec_ns        INTEGER,            -- when this image began (NULL: not from an exec)
    parent         INTEGER REFERENCES processes (id),  -- the parent's image at fork; always a lower id
    ppid           INTEGER NOT NULL,
    source         INTEGER NOT NULL,   -- ProcSource code: 1 exec, 2 fork, 3 procfs, 4 event, 5 import
    comm           INTEGER NOT NULL REFERENCES strings (id),
    exe            INTEGER REFERENCES strings (id),
    argv           INTEGER REFERENCES strings (id),   -- NUL-separated, as /proc/PID/cmdline
    args_truncated INTEGER NOT NULL,
    uid            INTEGER NOT NULL,
    gid            INTEGER NOT NULL,
    euid           INTEGER NOT NULL,
    egid           INTEGER NOT NULL,
    auid           INTEGER,            -- NULL: unset
    sessionid      INTEGER,
    cgroup_id      INTEGER NOT NULL,
    cgroup         INTEGER REFERENCES strings (id),
    container_id   INTEGER REFERENCES strings (id),
    pidns          INTEGER,
    mntns          INTEGER,
    tty            INTEGER REFERENCES strings (id),
    exit_code      INTEGER,            -- wait status (code << 8 | signal), NULL while running
    exit_ns        INTEGER
);

-- The event side: each interned proc row now says which image opened, with the effective ids.
ALTER TABLE procs ADD COLUMN euid INTEGER;
ALTER TABLE procs ADD COLUMN egid INTEGER;
ALTER TABLE procs ADD COLUMN process INTEGER REFERENCES processes (id);

-- User names of the recording host, so `user` reads the same on any machine.
CREATE TABLE users (
    uid  INTEGER PRIMARY KEY,
    name BLOB NOT NULL
);
