-- Every file operation other than an open (rename, link, symlink, unlink, rmdir, mkdir, chmod, chown, truncate), newest first: what changed, how, by which process and user, and whether it worked.
SELECT ts, op, path, old_path,
       CASE WHEN op IN ('chmod', 'mkdir') THEN printf('%04o', mode) END AS mode,
       new_uid, new_gid, length, result,
       pid, comm, exe, cmdline, user, auid, parent_exe
FROM events
WHERE op <> 'open'
ORDER BY ts_ns DESC, seq DESC
LIMIT 1000
