-- The most opened paths, with how many processes opened them and how often it failed.
SELECT path,
       count(*) AS opens,
       count(DISTINCT comm) AS processes,
       sum(ret < 0) AS failed,
       min(ts) AS first_seen,
       max(ts) AS last_seen
FROM events
WHERE op = 'open'
GROUP BY path
ORDER BY opens DESC, path
LIMIT 50
