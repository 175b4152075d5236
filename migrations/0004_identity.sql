-- open-forensics segment schema, version 4: identities. An opened file and an executable are
-- known by their device and inode (src/file_id.rs; `dev` in stat(2)'s encoding, both stored as
-- the INTEGER with the same 64 bits), so that another name for a file is still that file.
-- Rows and blocks written before version 4 read back with these NULL.

-- Opened files' identities, interned: an event names one by id.
CREATE TABLE files (
    id  INTEGER PRIMARY KEY,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL
);

-- Two more event columns in `blocks`, each `count` LEB128 varints like the others, or NULL when
-- every value of the block is 0:
--   file      files.id of the opened file, 0 when unknown (a failed open)
--   alias_of  strings.id of the watched path the file is, when the open named it otherwise; 0: none
ALTER TABLE blocks ADD COLUMN file BLOB;
ALTER TABLE blocks ADD COLUMN alias_of BLOB;

-- The opening thread's root directory (a host path) when it is not its mount namespace's root:
-- part of the interned thread context, as the ids are. NULL: the namespace's root.
ALTER TABLE procs ADD COLUMN root INTEGER REFERENCES strings (id);

-- The executable's identity, and whether it is the host's own file at `exe` (1), a file that only
-- bears the name (0), or unknown (NULL).
ALTER TABLE processes ADD COLUMN exe_dev INTEGER;
ALTER TABLE processes ADD COLUMN exe_ino INTEGER;
ALTER TABLE processes ADD COLUMN exe_verified INTEGER;
