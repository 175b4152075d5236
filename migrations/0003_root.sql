-- open-forensics segment schema, version 3: a chrooted process's root directory (as its mount
-- namespace sees it), so that its paths, which are relative to that root, can be read against it.
-- NULL: the namespace's own root (or a segment written before version 3).
ALTER TABLE processes ADD COLUMN root INTEGER REFERENCES strings (id);
