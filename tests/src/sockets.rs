//! The kernel's view of another process's raw sockets: what `/proc/PID/net/raw` lists
//! (queued bytes, drops) and, through a duplicate of the socket taken with
//! `pidfd_getfd(2)`, its receive buffer size as the kernel applied it.
//!
//! Used to make a flood test deterministic: instead of assuming a queue of "a few
//! hundred datagrams", the test reads how much the socket under test can hold.

use std::os::fd::{FromRawFd as _, OwnedFd};
use std::os::unix::io::AsRawFd as _;

use anyhow::{Context as _, bail};

/// One raw socket as `/proc/net/raw` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawSocket {
    /// The socket's inode (what `/proc/PID/fd/N` links to as `socket:[INODE]`).
    pub inode: u64,
    /// Bytes queued for reading (`sk_rmem_alloc`: the skbs' truesize, not payload).
    pub queued: u64,
    /// Datagrams dropped because the queue was full (`sk_drops`).
    pub drops: u64,
}

/// The raw sockets of IP protocol `protocol` in the network namespace of process `pid`
/// (`/proc/PID/net/raw`, readable while the process is stopped, and cheaper than
/// running a command in the namespace).
pub fn raw_sockets(pid: i32, protocol: u8) -> anyhow::Result<Vec<RawSocket>> {
    raw_socket_table(pid, protocol, "raw")
}

/// [`raw_sockets`] for IPv6 (`/proc/PID/net/raw6`, the same columns).
pub fn raw6_sockets(pid: i32, protocol: u8) -> anyhow::Result<Vec<RawSocket>> {
    raw_socket_table(pid, protocol, "raw6")
}

fn raw_socket_table(pid: i32, protocol: u8, table: &str) -> anyhow::Result<Vec<RawSocket>> {
    let path = format!("/proc/{pid}/net/{table}");
    let table = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let port = format!(":{protocol:04X}");
    let mut sockets = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout
        // inode ref pointer drops; for raw sockets the local "port" is the protocol.
        if !fields.get(1).is_some_and(|l| l.ends_with(&port)) {
            continue;
        }
        let parsed = (|| {
            let queued = fields.get(4)?.split_once(':')?.1;
            Some(RawSocket {
                inode: fields.get(9)?.parse().ok()?,
                queued: u64::from_str_radix(queued, 16).ok()?,
                drops: fields.last()?.parse().ok()?,
            })
        })();
        sockets.push(parsed.with_context(|| format!("unexpected line in {path}: {line:?}"))?);
    }
    Ok(sockets)
}

/// `SO_RCVBUF` of the socket with inode `inode` that process `pid` holds: the limit on
/// its queued bytes (already doubled by the kernel, as `/proc/net/raw`'s queue counts).
pub fn socket_rcvbuf(pid: i32, inode: u64) -> anyhow::Result<u64> {
    let target = format!("socket:[{inode}]");
    let fd_dir = format!("/proc/{pid}/fd");
    let mut found = None;
    for entry in std::fs::read_dir(&fd_dir).with_context(|| format!("listing {fd_dir}"))? {
        let entry = entry?;
        if std::fs::read_link(entry.path()).is_ok_and(|link| link.as_os_str() == &*target) {
            found = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok());
            break;
        }
    }
    let Some(remote_fd) = found else {
        bail!("process {pid} holds no fd for {target}");
    };
    // SAFETY: pidfd_open(2) has no memory arguments; it returns a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(std::io::Error::last_os_error()).context("pidfd_open");
    }
    // SAFETY: the fd was just returned to us and is owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // SAFETY: pidfd_getfd(2) has no memory arguments; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), remote_fd, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("pidfd_getfd of fd {remote_fd} of process {pid}"));
    }
    // SAFETY: as above, a fresh fd of our own (a duplicate of the other process's).
    let socket = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are live for the call and len is value's size.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("getsockopt(SO_RCVBUF)");
    }
    u64::try_from(value).context("negative SO_RCVBUF")
}

/// Whether every thread of process `pid` is stopped (state `T` in
/// `/proc/PID/task/*/stat`): after SIGSTOP, the signal has taken effect, and the
/// process will not read a socket until it is continued.
pub fn is_stopped(pid: i32) -> anyhow::Result<bool> {
    let tasks = format!("/proc/{pid}/task");
    let mut any = false;
    for entry in std::fs::read_dir(&tasks).with_context(|| format!("listing {tasks}"))? {
        let stat = match std::fs::read_to_string(entry?.path().join("stat")) {
            Ok(stat) => stat,
            // A thread that exited since the listing (tokio's idle blocking threads do).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading a stat in {tasks}")),
        };
        // The state follows the command name, which is in parentheses and may hold any
        // character, so look after the last ')'.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .with_context(|| format!("unexpected stat line {stat:?}"))?;
        if state != "T" {
            return Ok(false);
        }
        any = true;
    }
    Ok(any)
}
