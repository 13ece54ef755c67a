//! Network namespace guards and running code inside them.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};

use anyhow::{Context, bail};

use crate::proc::Proc;

/// Every namespace this harness creates starts with this; [`cleanup_stale`] relies on it.
pub const NAME_PREFIX: &str = "vipd-t-";

/// Where iproute2 keeps the bind mounts of named namespaces.
const NETNS_RUN_DIR: &str = "/var/run/netns";

/// Makes names unique among the namespaces of one test process (tests run in parallel
/// threads); the pid in the name separates processes.
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Serialises `ip netns add/del` within this process: the first `ip netns add` turns
/// /var/run/netns into a shared mount point, and two doing it at once can stack mounts.
static NETNS_ADD_DEL: Mutex<()> = Mutex::new(());

/// The first namespace a test process creates first sweeps up after crashed runs.
static SWEEP_STALE: Once = Once::new();

/// A named network namespace that is deleted, with every process still in it, on drop.
///
/// Named `vipd-t-<tag>-<pid>-<n>`. Interfaces inside are created by the topology helpers
/// in [`crate::topo`]; loopback is up from the start.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a fresh namespace with `lo` up. `tag` (letters, digits, `_`) says what
    /// the namespace plays in the test, e.g. `r1`, `client`, `sw`.
    ///
    /// The first call in a process also runs [`cleanup_stale`], so namespaces left by a
    /// test run that was SIGKILLed (no Drop ran) do not pile up.
    pub fn new(tag: &str) -> anyhow::Result<Netns> {
        if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("namespace tag {tag:?} must be non-empty letters, digits and '_'");
        }
        SWEEP_STALE.call_once(|| match cleanup_stale() {
            Ok(deleted) if !deleted.is_empty() => {
                eprintln!("vipd-tests: removed stale namespaces {deleted:?}");
            }
            Ok(_) => {}
            Err(e) => eprintln!("vipd-tests: sweeping stale namespaces: {e:#}"),
        });
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NAME_PREFIX}{tag}-{}-{n}", std::process::id());
        {
            let _serialised = NETNS_ADD_DEL.lock().unwrap_or_else(|e| e.into_inner());
            run(Command::new("ip").args(["netns", "add", &name]))?;
        }
        // From here on the guard owns the namespace, so a failure below still removes it.
        let ns = Netns { name };
        ns.set_up_lo()?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `argv` inside the namespace (`ip netns exec`) and returns its output, whatever
    /// the exit status. See [`Netns::exec_ok`] for the common case.
    pub fn exec(&self, argv: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = self.command(argv);
        cmd.output()
            .with_context(|| format!("cannot run {}", describe(&cmd)))
    }

    /// Runs `argv` inside the namespace and returns its stdout; an error, naming the
    /// command, its status and its stderr, if it exits non-zero.
    pub fn exec_ok(&self, argv: &[&str]) -> anyhow::Result<String> {
        run(&mut self.command(argv))
    }

    /// Starts `argv` inside the namespace in its own process group, stdout and stderr
    /// captured, stdin closed. The returned guard SIGKILLs the group when dropped.
    pub fn spawn(&self, argv: &[&str]) -> anyhow::Result<Proc> {
        Proc::spawn(self.command(argv))
    }

    /// Runs `ip <args>` against this namespace (`ip -n NAME ...`), which is cheaper
    /// than `ip netns exec` and what the topology helpers use.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Sets a sysctl inside the namespace, e.g. `("net.ipv4.conf.all.arp_ignore", "1")`.
    pub fn sysctl(&self, key: &str, value: &str) -> anyhow::Result<()> {
        self.exec_ok(&["sysctl", "-qw", &format!("{key}={value}")])?;
        Ok(())
    }

    /// The packet count of nftables counter `name` in table `family table` (`nft -j
    /// list counter`), e.g. `("ip6", "vipdtest6", "mcast")`.
    pub fn nft_counter(&self, family: &str, table: &str, name: &str) -> anyhow::Result<u64> {
        let text = self.exec_ok(&["nft", "-j", "list", "counter", family, table, name])?;
        let json: serde_json::Value = serde_json::from_str(&text)?;
        json["nftables"]
            .as_array()
            .and_then(|items| items.iter().find_map(|i| i["counter"]["packets"].as_u64()))
            .with_context(|| format!("no counter {name} in {text}"))
    }

    /// Brings the loopback interface up ([`Netns::new`] already does).
    pub fn set_up_lo(&self) -> anyhow::Result<()> {
        self.ip(&["link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Pids of every process whose network namespace is this one (`ip netns pids`).
    pub fn pids(&self) -> anyhow::Result<Vec<i32>> {
        let out = run(Command::new("ip").args(["netns", "pids", &self.name]))?;
        Ok(out
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }

    /// A `Command` for `ip netns exec NAME argv...`.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(argv);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = delete_namespace(&self.name) {
            eprintln!("vipd-tests: cleaning up namespace {}: {e:#}", self.name);
        }
    }
}

/// Kills every process left in the namespace, then deletes it.
///
/// Processes first: a namespace lives on, unnamed, as long as a process is in it, and a
/// vipd left running there would keep its XDP program and sockets alive.
fn delete_namespace(name: &str) -> anyhow::Result<()> {
    let pids = run(Command::new("ip").args(["netns", "pids", name]))?;
    let me = std::process::id() as i32;
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        if pid != me && pid > 1 {
            // SAFETY: kill has no memory preconditions; a pid that is already gone
            // just yields ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _serialised = NETNS_ADD_DEL.lock().unwrap_or_else(|e| e.into_inner());
    run(Command::new("ip").args(["netns", "del", name]))?;
    Ok(())
}

/// Runs `f` on a new thread that has entered `ns`'s network namespace, and returns what
/// it returns (a panic in `f` is re-raised here).
///
/// Only that thread moves; the caller stays where it is. File descriptors created
/// inside (sockets) stay bound to `ns` and can be returned and used from anywhere.
pub fn in_netns<T, F>(ns: &Netns, f: F) -> anyhow::Result<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let path = Path::new(NETNS_RUN_DIR).join(ns.name());
    let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    std::thread::scope(|scope| {
        let thread = scope.spawn(move || -> anyhow::Result<T> {
            // SAFETY: a valid, open namespace fd; setns only affects this thread, which
            // exits when `f` returns, so no pooled thread is left in the namespace.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("setns into {}", path.display()));
            }
            drop(file);
            Ok(f())
        });
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Deletes `vipd-t-*` namespaces left behind by test processes that no longer exist
/// (a crashed or SIGKILLed earlier run), killing whatever still runs inside them, and
/// those processes' bpffs directories (`/sys/fs/bpf/vipd-t-*`, see
/// [`crate::vipd::Scratch::bpffs_dir`]; removing the pins detaches XDP programs a
/// killed vipd left attached). Returns what it deleted. What belongs to live test
/// processes is left alone.
pub fn cleanup_stale() -> anyhow::Result<Vec<String>> {
    cleanup_where(|owner| !process_alive(owner))
}

/// Deletes what process `pid` created, as [`cleanup_stale`] does for dead owners: for
/// a run that is interrupted (SIGINT, SIGTERM) and will not unwind its guards.
pub fn cleanup_owned_by(pid: u32) -> anyhow::Result<Vec<String>> {
    cleanup_where(|owner| i64::from(owner) == i64::from(pid))
}

/// Deletes the namespaces, then the bpffs directories, whose owner pid `doomed` picks.
fn cleanup_where(doomed: impl Fn(i32) -> bool) -> anyhow::Result<Vec<String>> {
    let mut deleted = cleanup_namespaces(&doomed)?;
    deleted.extend(cleanup_bpffs(&doomed));
    Ok(deleted)
}

/// Removes `/sys/fs/bpf/vipd-t-*` directories whose owner `doomed` picks.
fn cleanup_bpffs(doomed: &impl Fn(i32) -> bool) -> Vec<String> {
    let root = Path::new(crate::vipd::BPFFS_ROOT);
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut deleted = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if owner_pid(&name).is_some_and(doomed) && std::fs::remove_dir_all(root.join(&name)).is_ok()
        {
            deleted.push(root.join(&name).display().to_string());
        }
    }
    deleted
}

fn cleanup_namespaces(doomed: &impl Fn(i32) -> bool) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_RUN_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {NETNS_RUN_DIR}")),
    };
    let mut deleted = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !owner_pid(&name).is_some_and(doomed) {
            continue;
        }
        match delete_namespace(&name) {
            Ok(()) => deleted.push(name),
            // Another sweeper (a parallel test process) got there first.
            Err(_) if !Path::new(NETNS_RUN_DIR).join(&name).exists() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// The pid of the test process that created namespace `name`, if it is one of ours:
/// `vipd-t-<tag>-<pid>-<n>`.
fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let mut fields = rest.rsplitn(3, '-');
    let _n: u32 = fields.next()?.parse().ok()?;
    let pid = fields.next()?.parse().ok()?;
    let _tag = fields.next()?;
    Some(pid)
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Runs a command to completion; its stdout, or an error naming the command, its exit
/// status and its stderr.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{} printed non-UTF-8", describe(cmd)))
}

/// `prog arg arg ...`, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_our_names_only() {
        assert_eq!(owner_pid("vipd-t-r1-1234-0"), Some(1234));
        assert_eq!(owner_pid("vipd-t-long_tag-77-12"), Some(77));
        assert_eq!(owner_pid("vipd-t-r1-x-0"), None);
        assert_eq!(owner_pid("other-r1-1234-0"), None);
        assert_eq!(owner_pid("vipd-t-1234-0"), None);
    }
}
