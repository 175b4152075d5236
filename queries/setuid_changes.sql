-- Files made setuid or setgid: chmod with S_ISUID or S_ISGID, or an open that created the file with either, newest first: which process and user did it, and whether it worked.
SELECT ts, op, path, printf('%04o', mode) AS mode, result,
       pid, comm, exe, cmdline, user, auid, parent_exe
FROM events
WHERE (op = 'chmod' AND mode & 3072 <> 0)
   OR (op = 'open' AND (',' || access || ',') LIKE '%,create,%' AND mode & 3072 <> 0)
ORDER BY ts_ns DESC, seq DESC
LIMIT 1000
