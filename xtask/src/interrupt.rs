//! Interrupted runs clean up after themselves. A bench, soak, demo or test run builds
//! network namespaces with guards that remove them when the run ends, but Ctrl-C
//! (SIGINT), SIGTERM (a CI timeout) or SIGHUP (a closed terminal) end the process
//! without unwinding them: the namespaces, the processes in them (nginx, keepalived,
//! vipd) and their XDP pins would stay until the next run's sweep. One thread takes
//! those signals instead and removes what this run made before exiting.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use anyhow::bail;

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Set once a signal arrived: the signal thread is sweeping and will exit.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Write end of the pipe the signal handler writes the signal's number to.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// The signal handler: one `write`, the only thing it does (async-signal-safe).
extern "C" fn on_signal(signal: libc::c_int) {
    let byte = signal as u8;
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    // SAFETY: write(2) is async-signal-safe; `byte` outlives the call.
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
}

/// Catches SIGINT, SIGTERM and SIGHUP with a handler that hands them to a thread,
/// which removes this run's namespaces and exits. A handler, not a blocked mask and
/// `sigwait`: a blocked mask is inherited by the processes the run starts (vipd
/// would never see its SIGTERM), a handler is reset to the default by `exec`.
/// `SA_RESTART`, so the run's own waits carry on until the thread exits.
pub fn clean_up_on_signal() -> anyhow::Result<()> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("cannot make a pipe: {}", std::io::Error::last_os_error());
    }
    let [read_fd, write_fd] = fds;
    PIPE_WRITE.store(write_fd, Ordering::Relaxed);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut byte = 0u8;
            // SAFETY: reads one byte into `byte`, from the pipe made above.
            let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
            if n != 1 {
                return;
            }
            INTERRUPTED.store(true, Ordering::SeqCst);
            let signal = libc::c_int::from(byte);
            let name = match signal {
                libc::SIGINT => "SIGINT",
                libc::SIGTERM => "SIGTERM",
                _ => "SIGHUP",
            };
            eprintln!("xtask: {name}: removing this run's network namespaces");
            clean_up();
            std::process::exit(128 + signal);
        })?;
    for signal in SIGNALS {
        // SAFETY: a zeroed sigaction is valid; the handler has the signature the
        // kernel calls and only writes to a pipe.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            bail!(
                "cannot catch signal {signal}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

/// Never returns once a signal arrived: the run's main thread, failing because the
/// sweep killed its processes, must not exit before the sweep has (with 128 + signal).
pub fn wait_if_interrupted() {
    while INTERRUPTED.load(Ordering::SeqCst) {
        std::thread::park();
    }
}

/// What this process made, then what test processes that died of the same Ctrl-C
/// made (`cargo xtask test` runs them as children; give them a moment to exit).
fn clean_up() {
    crate::report_cleanup(
        "this run's",
        vipd_tests::cleanup_owned_by(std::process::id()),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    crate::report_cleanup("stale", vipd_tests::cleanup_stale());
}
