-- Every process that ran, with its parent, command line, container and exit, and how many files it opened (in start order).
SELECT p.start, p.pid, p.ppid, p.parent_exe, p.exe, p.cmdline, p.user, p.container_id,
       p.source, p.exit_code, p.exit_signal, p.exit,
       coalesce(o.opens, 0) AS opens
FROM processes p
-- One pass over the events, joined by image (a correlated subquery would read them per process).
LEFT JOIN (SELECT image, count(*) AS opens FROM events WHERE op = 'open' AND image IS NOT NULL GROUP BY image) o
       ON o.image = p.image
ORDER BY p.start_ns, p.pid, p.exec
LIMIT 1000
