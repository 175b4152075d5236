-- Files opened by processes whose parent is a shell or a web server (the classic web shell and reverse shell shape), with their command lines.
SELECT e.ts, e.pid, e.comm, e.exe, p.cmdline, p.parent_exe, p.parent_comm, e.user,
       e.access, e.result, e.path
FROM events e
JOIN processes p ON p.image = e.image
WHERE e.op = 'open' AND (p.parent_comm IN ('bash', 'sh', 'dash', 'zsh', 'ksh', 'fish', 'busybox',
                        'nginx', 'httpd', 'apache2', 'lighttpd', 'caddy', 'php-fpm', 'tomcat',
                        'java', 'node', 'gunicorn', 'uwsgi')
   OR p.parent_exe GLOB '*/bin/*sh'
   OR p.parent_exe GLOB '*/nginx'
   OR p.parent_exe GLOB '*/httpd'
   OR p.parent_exe GLOB '*/apache2'
   OR p.parent_exe GLOB '*/php-fpm*')
ORDER BY e.ts_ns, e.seq
LIMIT 1000
