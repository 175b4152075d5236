//! A process's CPU time, utime + stime from `/proc/<pid>/stat`, read through an fd opened once so
//! that measuring opens nothing (the recorder would record those opens).

use std::fs::File;
use std::os::unix::fs::FileExt;

pub struct CpuTime(File);

impl CpuTime {
    pub fn of(pid: u32) -> CpuTime {
        CpuTime(File::open(format!("/proc/{pid}/stat")).expect("stat"))
    }

    /// utime + stime so far, in seconds.
    pub fn secs(&self) -> f64 {
        let mut buf = [0u8; 1024];
        let n = self.0.read_at(&mut buf, 0).unwrap_or(0);
        let s = String::from_utf8_lossy(&buf[..n]);
        let after = s.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        // Fields after the comm: state is [0], utime is field 14 overall → [11], stime [12].
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
            .sum();
        // SAFETY: sysconf has no preconditions.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
}
