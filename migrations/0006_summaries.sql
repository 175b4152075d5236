-- open-forensics segment schema, version 6: a summary of each block (src/store/summary.rs), so
-- that a reading skips blocks that cannot hold what it asks for without decoding them: the ops
-- and results of the block's events (bitmasks), and a Bloom filter of their paths (path, old_path,
-- alias_of, and their directories), executables, pids, uids and container ids. Written with the
-- block; NULL in blocks written before version 6 (they are read, never skipped by it).
ALTER TABLE blocks ADD COLUMN summary BLOB;
