//! A host-stall watch: how long each CPU ran none of this machine's code.
//!
//! On a virtual machine the hypervisor can take a vCPU away for tens of milliseconds
//! (`steal` in /proc/stat). A real-time thread queued on that vCPU waits the whole
//! time: no guest scheduler can run it elsewhere, because the guest does not know the
//! vCPU is gone. A BFD session at 10 ms × 3 whose sender's vCPU vanishes for 20 ms
//! really does go quiet on the wire for 30 ms, and its neighbour is right to declare it
//! Down. A test that asserts "no session goes Down" must tell that apart from a Down
//! vipd caused.
//!
//! [`StallWatch`] runs one thread per CPU, pinned to it, at SCHED_FIFO 99 (above every
//! thread of vipd's), sleeping 1 ms at a time. Nothing in the guest outranks it but
//! interrupts, so when it wakes late, that CPU ran none of the guest's tasks for that
//! long: a host stall (or, much shorter, interrupt work). Measured here (perf sched, a
//! 2-vCPU Firecracker VM with a busy loop on each vCPU): vCPUs without a single timer
//! tick for 11–16 ms at a time, with a woken SCHED_RR thread waiting on each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long each watcher sleeps between looks.
const TICK: Duration = Duration::from_millis(1);
/// Lateness below this is scheduling noise, not a stall worth listing.
const RECORD_FROM: Duration = Duration::from_millis(2);

/// A time one CPU ran none of the guest's threads.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    pub cpu: usize,
    /// When it ended (the watcher ran again).
    pub ended: Instant,
    /// How long the watcher was late: a lower bound of the stall, within [`TICK`].
    pub length: Duration,
}

/// The watchers; [`StallWatch::finish`] stops them and returns what they saw.
pub struct StallWatch {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<Vec<Stall>, String>>>,
}

impl StallWatch {
    /// Starts one watcher per CPU. Fails if a watcher cannot be pinned or made
    /// SCHED_FIFO (not root): without that its lateness would measure our scheduler,
    /// not the host.
    pub fn start() -> anyhow::Result<StallWatch> {
        let cpus = allowed_cpus()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let threads = cpus
            .iter()
            .map(|&cpu| {
                let stop = Arc::clone(&stop);
                let ready = ready_tx.clone();
                std::thread::Builder::new()
                    .name(format!("stall-watch-{cpu}"))
                    .spawn(move || {
                        let setup = pin_realtime(cpu);
                        let failed = setup.as_ref().err().cloned();
                        let _ = ready.send(setup);
                        match failed {
                            Some(e) => Err(e),
                            None => Ok(watch(cpu, &stop)),
                        }
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let watch = StallWatch { stop, threads };
        for _ in &cpus {
            match ready_rx.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    watch.stop.store(true, Ordering::Relaxed);
                    anyhow::bail!("stall watch: {e}");
                }
                Err(_) => anyhow::bail!("stall watch: a watcher did not start"),
            }
        }
        Ok(watch)
    }

    /// Stops the watchers and returns every stall they saw, longest first.
    pub fn finish(mut self) -> anyhow::Result<Stalls> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for thread in std::mem::take(&mut self.threads) {
            let stalls = thread
                .join()
                .map_err(|_| anyhow::anyhow!("a stall watcher panicked"))?
                .map_err(|e| anyhow::anyhow!("stall watch: {e}"))?;
            all.extend(stalls);
        }
        all.sort_by_key(|s| std::cmp::Reverse(s.length));
        Ok(Stalls(all))
    }
}

impl Drop for StallWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What the watchers saw, longest first.
#[derive(Debug, Clone)]
pub struct Stalls(pub Vec<Stall>);

impl Stalls {
    /// The longest stall, zero if none.
    pub fn longest(&self) -> Duration {
        self.0.first().map_or(Duration::ZERO, |s| s.length)
    }

    /// Stalls at least `length` long.
    pub fn at_least(&self, length: Duration) -> usize {
        self.0.iter().filter(|s| s.length >= length).count()
    }

    /// The longest stall at least `length` long that overlapped `from..=to`.
    pub fn overlapping(&self, from: Instant, to: Instant, length: Duration) -> Option<Stall> {
        self.0
            .iter()
            .find(|s| s.length >= length && s.ended >= from && s.ended - s.length <= to)
            .copied()
    }

    /// Every stall that overlapped `from..=to`, longest first.
    pub fn all_overlapping(&self, from: Instant, to: Instant) -> Vec<Stall> {
        self.0
            .iter()
            .filter(|s| s.ended >= from && s.ended - s.length <= to)
            .copied()
            .collect()
    }

    /// The stall a BFD sender must suffer before its neighbour rightly declares it
    /// Down: the neighbour waits `detection`, and the sender's last packet before the
    /// stall went out at most one `interval` earlier. Less one watcher tick, since the
    /// watch gives a lower bound.
    pub fn silencing(detection: Duration, interval: Duration) -> Duration {
        detection.saturating_sub(interval).saturating_sub(TICK)
    }

    /// A line for test output: the count and the longest few.
    pub fn summary(&self) -> String {
        let longest: Vec<String> = self
            .0
            .iter()
            .take(5)
            .map(|s| format!("{:.1} ms on cpu{}", s.length.as_secs_f64() * 1e3, s.cpu))
            .collect();
        format!(
            "{} host stalls ≥ {} ms; longest: {}",
            self.0.len(),
            RECORD_FROM.as_millis(),
            if longest.is_empty() {
                "none".to_owned()
            } else {
                longest.join(", ")
            }
        )
    }
}

/// The CPUs this process may run on (its affinity mask), each watched by one thread.
pub fn allowed_cpus() -> anyhow::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set for sched_getaffinity to fill;
    // CPU_ISSET reads within it for i < CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            anyhow::bail!(
                "stall watch: sched_getaffinity: {}",
                std::io::Error::last_os_error()
            );
        }
        let size = usize::try_from(libc::CPU_SETSIZE).unwrap_or(1024);
        Ok((0..size).filter(|&i| libc::CPU_ISSET(i, &set)).collect())
    }
}

/// Pins the calling thread to `cpu` and makes it SCHED_FIFO 99.
fn pin_realtime(cpu: usize) -> Result<(), String> {
    pin(cpu).map_err(|e| format!("pinning to cpu{cpu}: {e}"))?;
    fifo(99).map_err(|e| format!("SCHED_FIFO on cpu{cpu}: {e}"))
}

/// Pins the calling thread to `cpu` (one of [`allowed_cpus`]).
pub fn pin(cpu: usize) -> std::io::Result<()> {
    if cpu >= usize::try_from(libc::CPU_SETSIZE).unwrap_or(1024) {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes within it for
    // cpu < CPU_SETSIZE (checked above).
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the calling thread SCHED_FIFO at `priority`.
pub fn fifo(priority: i32) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: valid sched_param; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn watch(cpu: usize, stop: &AtomicBool) -> Vec<Stall> {
    let mut stalls = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let before = Instant::now();
        std::thread::sleep(TICK);
        let after = Instant::now();
        let late = after.saturating_duration_since(before + TICK);
        if late >= RECORD_FROM {
            stalls.push(Stall {
                cpu,
                ended: after,
                length: late,
            });
        }
    }
    stalls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silencing_stall_is_detection_less_one_interval_and_a_tick() {
        assert_eq!(
            Stalls::silencing(Duration::from_millis(30), Duration::from_millis(10)),
            Duration::from_millis(19)
        );
        assert_eq!(
            Stalls::silencing(Duration::from_millis(5), Duration::from_millis(10)),
            Duration::ZERO
        );
    }

    #[test]
    fn counts_and_orders() {
        let now = Instant::now();
        let stall = |cpu, ms| Stall {
            cpu,
            ended: now + Duration::from_millis(100),
            length: Duration::from_millis(ms),
        };
        let mut all = vec![stall(0, 3), stall(1, 25), stall(0, 12)];
        all.sort_by_key(|s| std::cmp::Reverse(s.length));
        let stalls = Stalls(all);
        assert_eq!(stalls.longest(), Duration::from_millis(25));
        assert_eq!(stalls.at_least(Duration::from_millis(12)), 2);
        assert!(
            stalls.summary().starts_with("3 host stalls"),
            "{}",
            stalls.summary()
        );
    }
}
