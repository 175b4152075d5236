-- Every open of credentials, keys, sudo and PAM configuration, cron and shell start-up files, in time order.
SELECT ts, comm, pid, ppid, uid, access, result, path
FROM events
WHERE path IN ('/etc/shadow', '/etc/gshadow', '/etc/shadow-', '/etc/gshadow-', '/etc/sudoers',
               '/etc/passwd', '/etc/group', '/etc/crontab', '/etc/ld.so.preload')
   OR path GLOB '/etc/sudoers.d/*'
   OR path GLOB '/etc/pam.d/*'
   OR path GLOB '/etc/ssh/ssh_host_*_key'
   OR path GLOB '/etc/cron.*/*'
   OR path GLOB '/var/spool/cron/*'
   OR path GLOB '/root/.ssh/*'
   OR path GLOB '/home/*/.ssh/*'
   OR path GLOB '/root/.bash*'
   OR path GLOB '/home/*/.bash*'
   OR path GLOB '/home/*/.gnupg/*'
   OR path GLOB '/root/.gnupg/*'
   OR path GLOB '/home/*/.aws/*'
   OR path GLOB '/root/.aws/*'
ORDER BY ts_ns, seq
