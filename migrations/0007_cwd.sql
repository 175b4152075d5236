-- open-forensics segment schema, version 7: the working directory a process image began in (at
-- its exec, or for a process running when recording began, /proc/PID/cwd), as the host sees it.
-- NULL: not known (an image from a fork, or a segment written before version 7). Exec events
-- need no column of their own: `op` 11 (exec) in `shapes.op`, which every schema since 5 has.
ALTER TABLE processes ADD COLUMN cwd INTEGER REFERENCES strings (id);
