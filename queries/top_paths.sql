-- The most opened paths, with how many processes opened them and how often it failed.
SELECT path,
       sum(events) AS opens,
       -- One row of path_counts per path and comm: count(*) is count(DISTINCT comm).
       count(*) AS processes,
       sum(failed) AS failed,
       min(first_ts) AS first_seen,
       max(last_ts) AS last_seen
-- Counted per segment over its string ids (see path_counts in src/query/path_counts.rs): SQLite
-- groups a few thousand rows instead of sorting every open of the range by path.
FROM path_counts
WHERE op = 'open'
GROUP BY path
ORDER BY opens DESC, path
LIMIT 50
