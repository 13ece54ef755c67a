//! Guards for long-running processes (daemons under test, peers, packet captures).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::netns::describe;

/// A spawned process in its own process group, with stdout and stderr captured line by
/// line in the background (so a chatty child never blocks on a full pipe).
///
/// Dropping the guard SIGKILLs the whole group and reaps the child, unless it was
/// already waited for ([`Proc::wait_timeout`], [`Proc::terminate`]).
#[derive(Debug)]
pub struct Proc {
    child: Child,
    command: String,
    stdout: Arc<Captured>,
    stderr: Arc<Captured>,
    status: Option<ExitStatus>,
}

/// How a process ended, with everything it printed.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Lines read so far from one pipe, and whether the pipe has closed.
#[derive(Debug, Default)]
struct Captured {
    state: Mutex<CapturedState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct CapturedState {
    lines: Vec<String>,
    closed: bool,
}

impl Captured {
    fn start(pipe: impl Read + Send + 'static) -> Arc<Captured> {
        let captured = Arc::new(Captured::default());
        let writer = Arc::clone(&captured);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut state = writer.state.lock().unwrap_or_else(|e| e.into_inner());
                state.lines.push(line);
                writer.changed.notify_all();
            }
            let mut state = writer.state.lock().unwrap_or_else(|e| e.into_inner());
            state.closed = true;
            writer.changed.notify_all();
        });
        captured
    }

    fn text(&self) -> String {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Waits until the pipe closes (the reader has everything), for at most `timeout`.
    fn wait_closed(&self, timeout: Duration) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| !s.closed)
            .unwrap_or_else(|e| e.into_inner());
        state.closed
    }
}

impl Proc {
    /// Spawns `cmd` in a new process group with stdin closed and stdout/stderr captured.
    pub fn spawn(mut cmd: Command) -> anyhow::Result<Proc> {
        let command = describe(&cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {command}"))?;
        let stdout = Captured::start(child.stdout.take().context("stdout is piped")?);
        let stderr = Captured::start(child.stderr.take().context("stderr is piped")?);
        Ok(Proc {
            child,
            command,
            stdout,
            stderr,
            status: None,
        })
    }

    /// The child's pid (also its process group id).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process itself, not its group.
    pub fn signal(&self, signal: i32) -> anyhow::Result<()> {
        if self.status.is_some() {
            bail!("{} has already exited", self.command);
        }
        // SAFETY: kill has no memory preconditions; our child is not reaped yet, so the
        // pid cannot have been reused.
        if unsafe { libc::kill(self.pid(), signal) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot signal {}", self.command));
        }
        Ok(())
    }

    /// Waits for a stdout line for which `matches` holds, for at most `timeout`, and
    /// returns it. Fails early, with the process's stderr, if stdout closes first (the
    /// process died).
    pub fn wait_for_line(
        &self,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.stdout.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(line) = state.lines.iter().find(|l| matches(l)) {
                return Ok(line.clone());
            }
            let now = Instant::now();
            if state.closed || now >= deadline {
                let why = if state.closed {
                    "stdout closed"
                } else {
                    "timed out"
                };
                let stdout = state.lines.join("\n");
                drop(state);
                bail!(
                    "{why} waiting for a line from {} (after {timeout:?})\n--- stdout:\n{stdout}\n--- stderr:\n{}",
                    self.command,
                    self.stderr.text()
                );
            }
            state = self
                .stdout
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Everything the process has written to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// Everything the process has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Whether the process has exited (reaping it if so).
    pub fn has_exited(&mut self) -> anyhow::Result<bool> {
        if self.status.is_none() {
            self.status = self.child.try_wait().context("waitpid")?;
        }
        Ok(self.status.is_some())
    }

    /// Waits up to `timeout` for the process to exit and returns how it ended.
    pub fn wait_timeout(&mut self, timeout: Duration) -> anyhow::Result<Finished> {
        let deadline = Instant::now() + timeout;
        while !self.has_exited()? {
            if Instant::now() >= deadline {
                bail!(
                    "{} still running after {timeout:?}\n--- stdout:\n{}\n--- stderr:\n{}",
                    self.command,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // The pipes close when the process (and anything it forked) is gone; bounded,
        // in case a grandchild holds them.
        self.stdout.wait_closed(Duration::from_secs(2));
        self.stderr.wait_closed(Duration::from_secs(2));
        Ok(Finished {
            status: self.status.context("exited")?,
            stdout: self.stdout(),
            stderr: self.stderr(),
        })
    }

    /// SIGTERM, then wait up to `timeout` for it to exit.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<Finished> {
        self.signal(libc::SIGTERM)?;
        self.wait_timeout(timeout)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        // SAFETY: as in `signal`; a negative pid addresses the process group we created.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        if let Err(e) = self.child.wait() {
            eprintln!("vipd-tests: reaping {}: {e}", self.command);
        }
    }
}

/// VmRSS of `pid` in KiB (/proc/PID/status), `None` when it cannot be read.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What a process's file descriptors are, from /proc/PID/fdinfo: all of them, and the
/// BPF maps (`map_id:`) and programs (`prog_id:`) among them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FdCensus {
    pub fds: u64,
    pub bpf_maps: u64,
    pub bpf_progs: u64,
}

/// Counts `pid`'s file descriptors (see [`FdCensus`]).
pub fn fd_census(pid: i32) -> std::io::Result<FdCensus> {
    let mut census = FdCensus::default();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))? {
        // An fd closed between the listing and the read counts, with no kind.
        let text = std::fs::read_to_string(entry?.path()).unwrap_or_default();
        census.fds += 1;
        census.bpf_maps += u64::from(text.contains("map_id:"));
        census.bpf_progs += u64::from(text.contains("prog_id:"));
    }
    Ok(census)
}

/// Files below `dir`, recursively (a daemon's bpffs pins); 0 if it cannot be read.
pub fn files_below(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() { files_below(&path) } else { 1 }
        })
        .sum()
}
