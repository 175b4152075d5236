-- When each path was first opened, and by whom (newest first: what appeared recently).
SELECT path, ts AS first_seen, comm, pid, uid, result, opens
FROM (
    SELECT path, ts, comm, pid, uid, result,
           count(*) OVER (PARTITION BY path) AS opens,
           row_number() OVER (PARTITION BY path ORDER BY ts_ns, seq) AS n
    FROM events
    WHERE op = 'open'
)
WHERE n = 1
ORDER BY first_seen DESC, path
LIMIT 200
