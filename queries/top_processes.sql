-- The processes (by name) that open the most files.
SELECT comm,
       count(*) AS opens,
       count(DISTINCT pid) AS pids,
       count(DISTINCT path) AS paths,
       sum(ret < 0) AS failed,
       group_concat(DISTINCT uid) AS uids
FROM events
WHERE op = 'open'
GROUP BY comm
ORDER BY opens DESC, comm
LIMIT 50
