-- Logs and shell histories deleted, truncated, emptied by an open, or renamed away or over (under /var/log, and ~/.*_history), newest first: who did it and how.
SELECT ts, op, path, old_path, length, access, result,
       pid, comm, exe, cmdline, user, auid, parent_exe
FROM events
WHERE (op IN ('unlink', 'rmdir', 'truncate', 'rename')
       OR (op = 'open' AND (',' || access || ',') LIKE '%,truncate,%'))
  AND EXISTS (SELECT 1
              FROM (SELECT events.path AS name UNION ALL SELECT events.old_path)
              WHERE name = '/var/log' OR name GLOB '/var/log/*'
                 OR name GLOB '*/.bash_history'
                 OR name GLOB '*/.zsh_history'
                 OR name GLOB '*/.sh_history'
                 OR name GLOB '*/.ash_history'
                 OR name GLOB '*/.histfile'
                 OR name GLOB '*/.local/share/fish/fish_history')
ORDER BY ts_ns DESC, seq DESC
LIMIT 1000
