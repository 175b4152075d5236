-- Failed opens per process and errno, with an example path.
SELECT comm,
       errno,
       count(*) AS failures,
       count(DISTINCT path) AS paths,
       min(path) AS example_path,
       max(ts) AS last_seen
FROM events
WHERE op = 'open' AND ret < 0
GROUP BY comm, errno
ORDER BY failures DESC, comm, errno
LIMIT 100
