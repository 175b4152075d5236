//! A program: `/bin/sh -c COMMAND`, alerts as JSON lines on its stdin. Its stdout and stderr go
//! to the recorder's stderr (stdout may be carrying alerts).
//!
//! When it exits it is restarted, after 250 ms doubling to 30 s while it keeps exiting (reset
//! once an instance has run for 10 s). Lines still unread in the pipe when it exits — written
//! by us, never read by it — are not lost: the kernel says how many bytes the pipe still holds
//! (`FIONREAD`), and those trailing lines are written again to the next instance (a line it read
//! only part of is written again whole). What a program read and then did not act on before
//! exiting cannot be known. A program that never reads fills the pipe; then its queue fills and
//! further alerts are dropped for it (counted) until it reads again. On stop its stdin is closed
//! and it gets the grace period to finish; then it is killed.

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Delivery, Fail, Msg, Sink};

const RESTART_MIN: Duration = Duration::from_millis(250);
const RESTART_MAX: Duration = Duration::from_secs(30);
/// An instance that ran this long resets the restart delay.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

struct Running {
    child: Child,
    stdin: ChildStdin,
    started: Instant,
    /// The last lines written, at most a pipe's capacity of them: those the pipe may still hold.
    recent: VecDeque<Arc<str>>,
    recent_bytes: usize,
    pipe_size: usize,
}

pub(crate) struct Program {
    command: String,
    run: Option<Running>,
    /// Lines to write first to the next instance (unread by the last one).
    resend: Vec<Arc<str>>,
    delay: Duration,
    next_start: Instant,
    /// The running instance's pid (0: none), for `Outputs::close` to kill one that blocks us.
    pid: Arc<AtomicU32>,
}

/// Bytes in a pipe not yet read (`FIONREAD` works on either end).
fn unread(stdin: &ChildStdin) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through a valid pointer; the fd is open (we own it).
    let rc = unsafe { libc::ioctl(stdin.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc == 0 {
        n.max(0) as usize
    } else {
        0
    }
}

fn pipe_size(stdin: &ChildStdin) -> usize {
    // SAFETY: F_GETPIPE_SZ takes no argument and only reads the fd.
    let n = unsafe { libc::fcntl(stdin.as_raw_fd(), libc::F_GETPIPE_SZ) };
    if n > 0 {
        n as usize
    } else {
        64 << 10
    }
}

impl Program {
    pub fn new(command: String, pid: Arc<AtomicU32>) -> Program {
        Program {
            command,
            run: None,
            resend: Vec::new(),
            delay: RESTART_MIN,
            next_start: Instant::now(),
            pid,
        }
    }

    fn start(&mut self) -> Result<(), String> {
        let now = Instant::now();
        if now < self.next_start {
            return Err(format!("`{}` is restarting", self.command));
        }
        let cmd = self.command.clone();
        let err = |e: std::io::Error| format!("start `{cmd}`: {e}");
        let out = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(err)?;
        let errf = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(err)?;
        let spawned = Command::new("/bin/sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(errf))
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                self.backoff();
                return Err(err(e));
            }
        };
        let Some(stdin) = child.stdin.take() else {
            let _ = child.kill();
            let _ = child.wait();
            self.backoff();
            return Err(format!("start `{}`: no stdin", self.command));
        };
        let pipe_size = pipe_size(&stdin);
        self.pid.store(child.id(), Ordering::Relaxed);
        self.run = Some(Running {
            child,
            stdin,
            started: now,
            recent: VecDeque::new(),
            recent_bytes: 0,
            pipe_size,
        });
        Ok(())
    }

    fn backoff(&mut self) {
        self.next_start = Instant::now() + super::jittered(self.delay);
        self.delay = (self.delay * 2).min(RESTART_MAX);
    }

    /// The instance exited (or its stdin broke): reap it, keep its unread lines, schedule the
    /// next start.
    fn ended(&mut self) -> String {
        let Some(mut r) = self.run.take() else {
            return String::new();
        };
        let left = unread(&r.stdin);
        drop(r.stdin);
        self.pid.store(0, Ordering::Relaxed);
        let status = match r.child.try_wait() {
            Ok(Some(s)) => s.to_string(),
            _ => {
                let _ = r.child.kill();
                r.child.wait().map(|s| s.to_string()).unwrap_or_default()
            }
        };
        // The pipe's last `left` bytes are the tail of what we wrote: whole lines from the back.
        let mut tail = Vec::new();
        let mut bytes = 0;
        while bytes < left {
            let Some(l) = r.recent.pop_back() else { break };
            bytes += l.len() + 1;
            tail.push(l);
        }
        tail.reverse();
        tail.append(&mut self.resend);
        self.resend = tail;
        if r.started.elapsed() >= HEALTHY_AFTER {
            self.delay = RESTART_MIN;
        }
        self.backoff();
        format!("`{}` exited ({status})", self.command)
    }

    fn write_lines<'a>(
        r: &mut Running,
        lines: impl Iterator<Item = &'a Arc<str>>,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut written = Vec::new();
        for l in lines {
            buf.extend_from_slice(l.as_bytes());
            buf.push(b'\n');
            written.push(l.clone());
        }
        r.stdin.write_all(&buf)?;
        for l in written {
            r.recent_bytes += l.len() + 1;
            r.recent.push_back(l);
        }
        while r.recent_bytes > r.pipe_size {
            match r.recent.pop_front() {
                Some(l) => r.recent_bytes -= l.len() + 1,
                None => break,
            }
        }
        Ok(())
    }
}

impl Sink for Program {
    fn max_batch(&self) -> usize {
        64
    }

    fn deliver(&mut self, batch: &[Msg]) -> Delivery {
        let retry = |why: String| Delivery {
            done: 0,
            fail: Some(Fail::Retry(why)),
        };
        if self
            .run
            .as_mut()
            .is_some_and(|r| matches!(r.child.try_wait(), Ok(Some(_))))
        {
            let why = self.ended();
            return retry(why);
        }
        if self.run.is_none() {
            if let Err(why) = self.start() {
                return retry(why);
            }
        }
        let Some(r) = self.run.as_mut() else {
            return retry("not running".into());
        };
        if !self.resend.is_empty() {
            let resend = std::mem::take(&mut self.resend);
            if Self::write_lines(r, resend.iter()).is_err() {
                self.resend = resend;
                let why = self.ended();
                return retry(why);
            }
        }
        match Self::write_lines(r, batch.iter().map(|m| &m.line)) {
            Ok(()) => Delivery::all(batch.len()),
            Err(_) => {
                // Whatever part of this batch got into the pipe is in `unread` territory only if
                // the write completed; an interrupted one is resent whole.
                let why = self.ended();
                retry(why)
            }
        }
    }

    fn idle(&mut self) {
        // Notice an exit while quiet, so the next alert goes to a fresh instance without delay.
        if self
            .run
            .as_mut()
            .is_some_and(|r| matches!(r.child.try_wait(), Ok(Some(_))))
        {
            let why = self.ended();
            crate::diag::debug(&format!("alert program {why}; restarting"));
        }
        let due =
            self.run.is_none() && !self.resend.is_empty() && Instant::now() >= self.next_start;
        if due && self.start().is_ok() {
            if let Some(r) = self.run.as_mut() {
                let resend = std::mem::take(&mut self.resend);
                if Self::write_lines(r, resend.iter()).is_err() {
                    self.resend = resend;
                    self.ended();
                }
            }
        }
    }

    fn close(&mut self) {
        if let Some(mut r) = self.run.take() {
            drop(r.stdin);
            self.pid.store(0, Ordering::Relaxed);
            let until = Instant::now() + super::GRACE;
            while Instant::now() < until {
                if let Ok(Some(_)) = r.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}
