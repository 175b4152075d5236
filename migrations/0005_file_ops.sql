-- open-forensics segment schema, version 5: file operations besides opens (rename, link, symlink,
-- unlink, rmdir, mkdir, chmod, chown, truncate), in the same blocks as opens (src/event.rs, `Op`).
-- Shapes and blocks written before version 5 read back as opens, with these NULL.

-- What the event did: an Op code (1 open … 10 truncate). Per event and of a handful of values, so
-- it is part of the interned shape, beside the syscall it came through.
ALTER TABLE shapes ADD COLUMN op INTEGER NOT NULL DEFAULT 1;

-- Four more event columns in `blocks`, each `count` LEB128 varints like the others, or NULL when
-- no event of the block has a value (a block of opens has none):
--   old_path  strings.id: rename/link's old name, symlink's target as given; 0: none
--   new_uid   chown's new owner + 1; 0: none (left unchanged, or not a chown)
--   new_gid   chown's new group + 1; 0: none
--   length    truncate's new length, zigzag + 1 (up to 65 bits); 0: none
ALTER TABLE blocks ADD COLUMN old_path BLOB;
ALTER TABLE blocks ADD COLUMN new_uid BLOB;
ALTER TABLE blocks ADD COLUMN new_gid BLOB;
ALTER TABLE blocks ADD COLUMN length BLOB;
