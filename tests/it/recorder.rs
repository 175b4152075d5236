//! A running `open-forensics record`, past its `attached` line: the one way the tests and the
//! benches (which include this file by path, from `benches/common`) start and stop a recorder.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Recorder {
    child: Child,
    stderr: mpsc::Receiver<String>,
    /// The stderr lines read so far (kept for `stop`).
    early: Vec<String>,
}

impl Recorder {
    /// Spawns a prepared `record` command (stdout discarded, stderr read on a thread of its own)
    /// and waits up to 60 s for its `attached` line. With `echo`, every other stderr line but the
    /// summary is also printed as it comes (`recorder: …`), for a bench's report.
    pub fn spawn(mut cmd: Command, echo: bool) -> Recorder {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn open-forensics record");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if echo && !line.contains("attached") && !line.contains("recorded") {
                    eprintln!("recorder: {line}");
                }
                let _ = tx.send(line);
            }
        });
        let mut rec = Recorder {
            child,
            stderr: rx,
            early: Vec::new(),
        };
        if rec.wait_line("attached", Duration::from_secs(60)).is_none() {
            let _ = rec.child.kill();
            let status = rec.child.wait();
            panic!("recorder never attached ({status:?}): {:#?}", rec.early);
        }
        rec
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for a stderr line containing `pat`; returns it (kept for `stop`).
    /// `None` when the time is up or the recorder has closed its stderr.
    pub fn wait_line(&mut self, pat: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.stderr.recv_timeout(left).ok()?;
            self.early.push(line.clone());
            if line.contains(pat) {
                return Some(line);
            }
        }
    }

    /// Whether the recorder is still running (not exited, not a zombie).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the recorder to exit on its own (`--duration`, a signal sent by the test).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for the recorder")
    }

    /// SIGKILL and reap (a writer that dies without sealing).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGINT, wait, and return stderr; asserts a clean exit with its summary line.
    pub fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().expect("wait for the recorder");
        let mut lines = self.early;
        lines.extend(self.stderr.iter());
        let text = lines.join("\n");
        assert!(status.success(), "recorder exited {status}: {text}");
        assert!(text.contains("recorded"), "no summary line: {text}");
        text
    }
}
