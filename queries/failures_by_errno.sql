-- How opens failed, by errno, with the processes involved.
SELECT errno,
       count(*) AS failures,
       count(DISTINCT comm) AS processes,
       count(DISTINCT path) AS paths,
       group_concat(DISTINCT comm) AS comms
FROM events
WHERE op = 'open' AND ret < 0
GROUP BY errno
ORDER BY failures DESC, errno
