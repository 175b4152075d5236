-- Every open of credentials, keys, sudo and PAM configuration, cron and shell start-up files, and every operation on them (either name of a rename or link: what replaced, moved, linked or removed them), in time order.
SELECT ts, comm, pid, ppid, uid, access, result, path, op, old_path
FROM events
WHERE EXISTS (SELECT 1
              FROM (SELECT events.path AS name UNION ALL SELECT events.old_path)
              WHERE name IN ('/etc/shadow', '/etc/gshadow', '/etc/shadow-', '/etc/gshadow-',
                             '/etc/sudoers', '/etc/passwd', '/etc/group', '/etc/crontab',
                             '/etc/ld.so.preload')
                 OR name GLOB '/etc/sudoers.d/*'
                 OR name GLOB '/etc/pam.d/*'
                 OR name GLOB '/etc/ssh/ssh_host_*_key'
                 OR name GLOB '/etc/cron.*/*'
                 OR name GLOB '/var/spool/cron/*'
                 OR name GLOB '/root/.ssh/*'
                 OR name GLOB '/home/*/.ssh/*'
                 OR name GLOB '/root/.bash*'
                 OR name GLOB '/home/*/.bash*'
                 OR name GLOB '/home/*/.gnupg/*'
                 OR name GLOB '/root/.gnupg/*'
                 OR name GLOB '/home/*/.aws/*'
                 OR name GLOB '/root/.aws/*')
ORDER BY ts_ns, seq
