//! Real-time scheduling for the daemon's thread.
//!
//! A master whose thread waits behind a CPU hog for longer than the skew time misses
//! adverts, and its backups rightly take over: a false failover caused by the master's
//! own host. Running the daemon as SCHED_RR (keepalived's `vrrp_rt_priority`, corosync's
//! default) puts it ahead of every ordinary process. The kernel's RT throttling
//! (`sched_rt_runtime_us`, 95 % by default) still bounds what a runaway daemon could take.

use std::io;

/// What [`set_realtime`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduling {
    /// SCHED_RR at this priority.
    RoundRobin(u8),
    /// The ordinary time-sharing policy (priority 0 was asked for).
    Normal,
}

/// Switches the calling thread to SCHED_RR at `priority` (1–99), or back to SCHED_OTHER
/// for 0. `SCHED_RESET_ON_FORK` is set with RR, so threads and processes started from here
/// (notify and track scripts, tokio's blocking pool) run as ordinary processes: a script
/// stuck in a loop must not inherit the right to starve the machine.
pub fn set_realtime(priority: u8) -> io::Result<Scheduling> {
    let (policy, outcome) = match priority {
        0 => (libc::SCHED_OTHER, Scheduling::Normal),
        p => (
            libc::SCHED_RR | libc::SCHED_RESET_ON_FORK,
            Scheduling::RoundRobin(p),
        ),
    };
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call; pid 0 is the
    // calling thread.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc == 0 {
        Ok(outcome)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling thread's policy and priority, as `sched_getscheduler` reports them.
pub fn current() -> io::Result<Scheduling> {
    // SAFETY: plain syscalls on the calling thread with a valid out-pointer.
    let policy = unsafe { libc::sched_getscheduler(0) };
    if policy < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut param = libc::sched_param { sched_priority: 0 };
    if unsafe { libc::sched_getparam(0, &mut param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    match policy & !libc::SCHED_RESET_ON_FORK {
        libc::SCHED_RR | libc::SCHED_FIFO => Ok(Scheduling::RoundRobin(
            u8::try_from(param.sched_priority).unwrap_or(u8::MAX),
        )),
        _ => Ok(Scheduling::Normal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs on a thread of its own: the policy is per thread, and the test harness's
    /// other threads must stay ordinary.
    #[test]
    fn switches_to_round_robin_and_back() {
        std::thread::spawn(|| {
            match set_realtime(7) {
                Ok(outcome) => {
                    assert_eq!(outcome, Scheduling::RoundRobin(7));
                    assert_eq!(current().ok(), Some(Scheduling::RoundRobin(7)));
                    // A thread started from an RR thread is ordinary (reset on fork).
                    let child = std::thread::spawn(current).join().ok();
                    assert_eq!(child.and_then(Result::ok), Some(Scheduling::Normal));
                }
                // Without CAP_SYS_NICE the call is refused; that is what the daemon
                // logs and survives.
                Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
            }
            assert_eq!(set_realtime(0).ok(), Some(Scheduling::Normal));
            assert_eq!(current().ok(), Some(Scheduling::Normal));
        })
        .join()
        .expect("test thread");
    }
}
