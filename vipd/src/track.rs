//! Trackers: health-check scripts (keepalived `vrrp_script`) that raise or lower an
//! instance's priority, or put it into FAULT.
//!
//! Each script runs on its own task every `interval`, in its own process group, killed
//! with the whole group when it overruns `timeout` (which counts as a failure). Results
//! pass through rise/fall hysteresis ([`Hysteresis`], sans-IO and unit-tested); only
//! changes of the settled status reach the daemon, as [`TrackEvent`]s.

use std::process::Stdio;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{Command, TrackScript};

/// A tracker's settled status changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackEvent {
    /// The script's name.
    pub name: String,
    /// Healthy (exit 0 within the timeout, `rise` times in a row) or failing.
    pub healthy: bool,
}

/// rise/fall hysteresis over a stream of check results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    healthy: Option<bool>,
    streak: u32,
}

impl Hysteresis {
    /// Starts with no settled status: the first result settles it at once, so an
    /// instance does not run for `rise` intervals on a status nobody has checked.
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            healthy: None,
            streak: 0,
        }
    }

    /// Feeds one result; returns the new settled status when it changed.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        match self.healthy {
            None => {
                self.healthy = Some(ok);
                self.streak = 0;
                Some(ok)
            }
            Some(current) if current == ok => {
                self.streak = 0;
                None
            }
            Some(_) => {
                self.streak += 1;
                let needed = if ok { self.rise } else { self.fall };
                if self.streak >= needed {
                    self.healthy = Some(ok);
                    self.streak = 0;
                    Some(ok)
                } else {
                    None
                }
            }
        }
    }

    /// The settled status, if any result has come in.
    pub fn healthy(&self) -> Option<bool> {
        self.healthy
    }
}

/// The process for a configured command: argv exec'd directly, no shell, stdin closed,
/// in its own process group (so a timeout can kill everything it started).
pub fn process(command: &Command) -> tokio::process::Command {
    let mut process = tokio::process::Command::new(&command.argv[0]);
    process
        .args(&command.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    process
}

/// The outcome of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Exited with this status code (or signal, as `None`).
    Exited(Option<i32>),
    /// Still running at the timeout; killed with its process group.
    TimedOut,
    /// Could not be started.
    SpawnFailed(String),
}

impl RunOutcome {
    /// Exit 0 within the timeout.
    pub fn ok(&self) -> bool {
        matches!(self, RunOutcome::Exited(Some(0)))
    }
}

/// Kills a command's process group if the run is abandoned before the command ended: a
/// tracker aborted by a reload or shutdown, or a notify task dropped when the daemon
/// exits. `kill_on_drop` alone would end only the direct child, not what it started.
struct GroupGuard {
    group: Option<i32>,
    finished: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let (Some(group), false) = (self.group, self.finished) {
            // SAFETY: kill(2) on the process group we created for this command.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    }
}

/// Runs `command` once, killing its process group when it overruns `timeout`.
///
/// The fork and exec happen on the blocking pool, never on the daemon's (real-time)
/// thread: `spawn` returns only once the child has exec'd, and a child that waits for a
/// CPU (it runs at ordinary priority) would hold up adverts and announcements meanwhile.
pub async fn run_once(command: &Command, timeout: Duration) -> RunOutcome {
    run_once_niced(command, timeout, 0).await
}

/// [`run_once`], the command started at `niceness` (added to the daemon's own, which
/// real-time scheduling resets to 0 for children: `SCHED_RESET_ON_FORK`).
pub async fn run_once_niced(command: &Command, timeout: Duration, niceness: i32) -> RunOutcome {
    let mut process = process(command);
    // The guard is made with the child, so a run abandoned while the spawn is still on
    // the pool (a tracker aborted by a reload or shutdown) still takes its group along.
    // No `pre_exec` hook: without one std starts the child with posix_spawn (a vfork),
    // not fork, which would copy the daemon's page tables and hold its memory map lock
    // meanwhile (every allocation on the real-time thread then waits). The child takes
    // its niceness from the spawning thread instead: this pool thread is niced for the
    // spawn and put back after (nice is per thread on Linux; putting it back needs
    // CAP_SYS_NICE, which a real-time vipd has; without it the pool thread stays niced,
    // which costs nothing that matters).
    let spawned = tokio::task::spawn_blocking(move || {
        spawn_niced(&mut process, niceness).map(|child| {
            let guard = GroupGuard {
                group: child.id().and_then(|pid| i32::try_from(pid).ok()),
                finished: false,
            };
            (child, guard)
        })
    })
    .await;
    let (mut child, mut guard) = match spawned {
        Ok(Ok(spawned)) => spawned,
        Ok(Err(e)) => return RunOutcome::SpawnFailed(e.to_string()),
        Err(e) => return RunOutcome::SpawnFailed(format!("spawning task failed: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            // The command is done; what it left running in the background is its
            // business (as in keepalived), so the guard stands down.
            guard.finished = true;
            RunOutcome::Exited(status.code())
        }
        Ok(Err(e)) => RunOutcome::SpawnFailed(e.to_string()),
        Err(_) => {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) on the process group we created for this child.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            let _ = child.wait().await;
            guard.finished = true;
            RunOutcome::TimedOut
        }
    }
}

/// Spawns `process` from the calling thread niced by `niceness` for the call, so the
/// child inherits it; the thread's own niceness is put back after.
fn spawn_niced(
    process: &mut tokio::process::Command,
    niceness: i32,
) -> std::io::Result<tokio::process::Child> {
    if niceness == 0 {
        return process.spawn();
    }
    let previous = thread_nice(None);
    thread_nice(Some(previous.unwrap_or(0) + niceness));
    let spawned = process.spawn();
    if let Some(previous) = previous {
        thread_nice(Some(previous));
    }
    spawned
}

/// The calling thread's nice value, after setting it to `set` when given; `None` if the
/// kernel refused.
fn thread_nice(set: Option<i32>) -> Option<i32> {
    // SAFETY: gettid/getpriority/setpriority on the calling thread; no memory is passed.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        if let Some(value) = set
            && libc::setpriority(libc::PRIO_PROCESS, tid, value) != 0
        {
            return None;
        }
        // getpriority can return -1 legitimately: errno, cleared first, tells.
        *libc::__errno_location() = 0;
        let value = libc::getpriority(libc::PRIO_PROCESS, tid);
        (value != -1 || *libc::__errno_location() == 0).then_some(value)
    }
}

/// Runs `script` forever, sending settled-status changes to `events`. Ends when the
/// receiver is gone.
pub fn spawn_script(
    script: TrackScript,
    events: mpsc::Sender<TrackEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut hysteresis = Hysteresis::new(script.rise, script.fall);
        let mut ticker = tokio::time::interval(script.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let outcome = run_once(&script.command, script.timeout).await;
            if !outcome.ok() {
                tracing::debug!(script = %script.name, ?outcome, "track script failed");
            }
            if let Some(healthy) = hysteresis.record(outcome.ok()) {
                if healthy {
                    tracing::info!(script = %script.name, "track script is healthy");
                } else {
                    tracing::warn!(script = %script.name, ?outcome, "track script is failing");
                }
                let event = TrackEvent {
                    name: script.name.clone(),
                    healthy,
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_result_settles_at_once() {
        let mut h = Hysteresis::new(3, 3);
        assert_eq!(h.record(false), Some(false));
        let mut h = Hysteresis::new(3, 3);
        assert_eq!(h.record(true), Some(true));
    }

    #[test]
    fn fall_needs_consecutive_failures() {
        let mut h = Hysteresis::new(2, 3);
        h.record(true);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None, "a success resets the streak");
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), Some(false));
        assert_eq!(h.healthy(), Some(false));
    }

    #[test]
    fn rise_needs_consecutive_successes() {
        let mut h = Hysteresis::new(2, 1);
        h.record(false);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some(true));
        assert_eq!(h.record(false), Some(false), "fall 1 flips at once");
    }

    fn cmd(argv: &[&str]) -> Command {
        Command {
            argv: argv.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The command runs at the niceness asked for (inherited from the spawning thread,
    /// so it holds from the command's first instruction), and the thread that spawned it
    /// is back at its own niceness afterwards (as root, which may lower it again).
    #[test]
    fn niced_commands_inherit_the_niceness_and_the_spawning_thread_is_restored() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let out = std::env::temp_dir().join(format!("vipd-nice-{}", std::process::id()));
        let script = format!("nice > {}", out.display());
        let ours = thread_nice(None).unwrap_or(0);
        let status = runtime.block_on(async {
            let mut process = process(&cmd(&["sh", "-c", &script]));
            let mut child = spawn_niced(&mut process, 7).expect("spawned");
            child.wait().await
        });
        assert!(status.is_ok_and(|s| s.success()));
        let seen = std::fs::read_to_string(&out).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        assert_eq!(seen.trim(), format!("{}", ours + 7));
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(
                thread_nice(None),
                Some(ours),
                "the thread kept the command's niceness"
            );
        }
    }

    #[tokio::test]
    async fn exit_status_decides() {
        assert!(run_once(&cmd(&["true"]), Duration::from_secs(5)).await.ok());
        assert_eq!(
            run_once(&cmd(&["false"]), Duration::from_secs(5)).await,
            RunOutcome::Exited(Some(1))
        );
        assert!(matches!(
            run_once(&cmd(&["/nonexistent/vipd-test"]), Duration::from_secs(5)).await,
            RunOutcome::SpawnFailed(_)
        ));
    }

    #[tokio::test]
    async fn overrun_kills_the_whole_process_group() {
        let marker = std::env::temp_dir().join(format!("vipd-track-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        // The script starts a grandchild that would create the marker after 1 s.
        let script = format!("(sleep 1; touch {}) & sleep 10", marker.display());
        let started = std::time::Instant::now();
        let outcome = run_once(&cmd(&["sh", "-c", &script]), Duration::from_millis(200)).await;
        assert_eq!(outcome, RunOutcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "the grandchild survived the timeout");
    }
}

/// A tracked file's value changed (keepalived `vrrp_track_file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEvent {
    /// The track file's name.
    pub name: String,
    /// Its value (0 when missing or unreadable, as keepalived reads it).
    pub value: i64,
}

/// How often a track file is re-read. keepalived uses inotify; a 100 ms poll of at most
/// 127 bytes is as cheap and needs no watch bookkeeping for files that come and go.
pub const FILE_POLL: Duration = Duration::from_millis(100);

/// Writes a track file's `init_file` value: when the file is missing, or always with
/// `overwrite`. A failure is logged, not fatal (as in keepalived).
pub fn init_track_file(file: &crate::config::TrackFile) {
    let Some(init) = file.init else { return };
    if file.path.exists() && !init.overwrite {
        return;
    }
    if let Err(e) = std::fs::write(&file.path, format!("{}\n", init.value)) {
        tracing::warn!(file = %file.path.display(), error = %e, "writing the track file's init value failed");
    }
}

/// Reads `file` now and whenever its value changes, sending each value to `events`.
pub fn spawn_file(
    file: crate::config::TrackFile,
    events: mpsc::Sender<FileEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: Option<i64> = None;
        let mut ticker = tokio::time::interval(FILE_POLL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            // keepalived: missing, empty or non-numeric files count as 0; a number out of
            // range leaves the previous value.
            let value = match std::fs::read(&file.path) {
                Ok(bytes) => {
                    crate::config::TrackFile::parse_value(&bytes).unwrap_or(last.unwrap_or(0))
                }
                Err(_) => 0,
            };
            if last != Some(value) {
                last = Some(value);
                tracing::info!(file = %file.path.display(), name = %file.name, value, "track file value");
                let event = FileEvent {
                    name: file.name.clone(),
                    value,
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    })
}
