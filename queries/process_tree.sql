-- Every process that ran, with its parent, command line, container and exit, and how many files it opened (in start order).
SELECT p.start, p.pid, p.ppid, p.parent_exe, p.exe, p.cmdline, p.user, p.container_id,
       p.source, p.exit_code, p.exit_signal, p.exit,
       (SELECT count(*) FROM events e WHERE e.image = p.image) AS opens
FROM processes p
ORDER BY p.start_ns, p.pid, p.exec
LIMIT 1000
