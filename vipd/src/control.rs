//! The control socket: a Unix stream socket (mode 0600) on which the daemon answers
//! `vipd status`.
//!
//! Protocol: the client writes one request line (`status`), the daemon answers with one
//! JSON document and closes. Plain and line-based so `socat - UNIX:/run/vipd/vipd.sock`
//! works too.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// Errors of the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket could not be created.
    #[error("control socket {path}: {source}")]
    Bind {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Another daemon answers on the socket.
    #[error(
        "control socket {path} is in use: is another vipd running? (stop it, or set global.control_socket)"
    )]
    InUse {
        /// Socket path.
        path: PathBuf,
    },
    /// The client could not reach the daemon.
    #[error(
        "cannot reach vipd at {path}: {source} (is the daemon running? is the path right? see --socket)"
    )]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The daemon's answer was not understood.
    #[error("bad answer from vipd: {0}")]
    BadAnswer(String),
}

/// The status of the whole daemon, as `vipd status --json` prints it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// vipd version.
    pub version: String,
    /// Process id.
    pub pid: u32,
    /// Seconds since the daemon started.
    pub uptime_seconds: f64,
    /// One entry per VRRP instance.
    pub instances: Vec<InstanceStatus>,
    /// XDP programs per interface (empty when XDP is off).
    #[serde(default)]
    pub xdp: Vec<XdpStatus>,
    /// Daemon-wide counters (adverts for VRIDs not configured here, malformed IP,
    /// receive-queue overflow).
    #[serde(default)]
    pub counters: std::collections::BTreeMap<String, u64>,
    /// Load-balanced services (keepalived `virtual_server`), in config order.
    #[serde(default)]
    pub virtual_servers: Vec<VirtualServerStatus>,
    /// The XDP load balancer's counters, summed across CPUs and interfaces.
    #[serde(default)]
    pub lb_counters: std::collections::BTreeMap<String, u64>,
    /// BFD sessions (`bfd_instance`).
    #[serde(default)]
    pub bfd: Vec<BfdStatus>,
    /// L3 mode: the routes announced over BGP now.
    #[serde(default)]
    pub announced: Vec<AnnouncedRoute>,
}

/// A route L3 mode announces (an address on one of its TAP devices).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnnouncedRoute {
    /// The address (announced as /32 or /128).
    pub address: String,
    /// `primary` or `standby`.
    pub path: String,
}

/// The status of one BFD session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BfdStatus {
    /// Configured name.
    pub name: String,
    /// Neighbour address.
    pub neighbor: String,
    /// bfd.SessionState: AdminDown, Down, Init, Up.
    pub state: String,
    /// bfd.RemoteSessionState.
    pub remote_state: String,
    /// bfd.LocalDiag, as text.
    pub diagnostic: String,
    /// bfd.LocalDiscr.
    pub local_discriminator: u32,
    /// bfd.RemoteDiscr (0 while unknown).
    pub remote_discriminator: u32,
    /// Negotiated transmit interval before jitter, µs.
    pub transmit_interval_us: u64,
    /// Detection Time, µs (0 before any packet).
    pub detection_time_us: u64,
    /// Control packets sent.
    pub sent: u64,
    /// Control packets accepted.
    pub received: u64,
    /// Control packets the session discarded.
    pub discarded: u64,
    /// Transitions to Up.
    pub up_count: u64,
    /// Transitions from Up to Down.
    pub down_count: u64,
    /// Packets that could not be sent.
    pub send_errors: u64,
    /// Times the XDP record kept the session Up when the socket had fallen behind.
    pub xdp_rescues: u64,
    /// The latest a due deadline of the session ran, in microseconds (daemon
    /// starvation).
    pub timer_late_max_us: u64,
    /// When the state last changed (Unix seconds).
    pub last_change_unix: Option<f64>,
}

/// The status of one virtual server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VirtualServerStatus {
    /// `192.0.2.100:80/tcp` or `group NAME`.
    pub name: String,
    /// `rr`, `wrr`, `lc`, `wlc`, `sh`, `mh`.
    pub algo: String,
    /// The quorum is met (else the sorry server, if any, serves).
    pub quorum_up: bool,
    /// New flows go to the sorry server.
    pub using_sorry_server: bool,
    /// Open flows, packets and bytes over all real servers.
    pub active_flows: u64,
    /// Frames forwarded.
    pub packets: u64,
    /// Bytes forwarded.
    pub bytes: u64,
    /// The pool, in config order.
    pub real_servers: Vec<RealServerStatus>,
}

/// The status of one real server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RealServerStatus {
    /// `addr:port` (`sorry` servers are listed with `sorry: true`).
    pub address: String,
    /// `alive`, `failed` or `inhibited`.
    pub state: String,
    /// Effective weight.
    pub weight: u32,
    /// This is the sorry server.
    #[serde(default)]
    pub sorry: bool,
    /// Open flows the balancer saw.
    pub active_flows: u64,
    /// Frames forwarded.
    pub packets: u64,
    /// Bytes forwarded.
    pub bytes: u64,
    /// Whether the last finished check passed (absent before the first).
    pub last_check_ok: Option<bool>,
    /// The last check's reason (`HTTP 200`, `connect timeout`, ...).
    pub last_check: Option<String>,
    /// Why the data plane cannot forward to it yet (no route, neighbour unresolved).
    pub unreachable: Option<String>,
}

/// The status of one XDP attachment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct XdpStatus {
    /// Interface.
    pub interface: String,
    /// `native` or `generic`.
    pub mode: String,
    /// Counters summed across CPUs.
    pub counters: std::collections::BTreeMap<String, u64>,
}

/// The status of one instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// Instance name.
    pub name: String,
    /// Interface.
    pub interface: String,
    /// Virtual router id.
    pub vrid: u8,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// VRRP version (2 or 3).
    pub version: u8,
    /// `INIT`, `BACKUP`, `MASTER` or `FAULT`.
    pub state: String,
    /// Configured priority.
    pub priority: u8,
    /// Priority after tracker weights.
    pub effective_priority: u8,
    /// Address of the current master, when known (ours when we are master).
    pub master_address: Option<String>,
    /// Our advert source address.
    pub primary_address: String,
    /// The virtual addresses.
    pub virtual_addresses: Vec<String>,
    /// Advert interval in use, in milliseconds (learned from the master on a v3 backup).
    pub advert_interval_ms: u64,
    /// The last transition.
    pub last_transition: Option<TransitionStatus>,
    /// Event counters.
    pub counters: std::collections::BTreeMap<String, u64>,
    /// State transitions by reason.
    #[serde(default)]
    pub transitions_by_reason: std::collections::BTreeMap<String, u64>,
}

/// A transition, for status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TransitionStatus {
    /// State before.
    pub from: String,
    /// State after.
    pub to: String,
    /// Why.
    pub reason: String,
    /// Seconds ago.
    pub seconds_ago: f64,
    /// Wall-clock time, RFC 3339.
    pub at: String,
}

/// A request from a client, with the channel for its answer.
#[derive(Debug)]
pub struct ControlRequest {
    /// Where the daemon sends the status.
    pub reply: oneshot::Sender<DaemonStatus>,
}

/// Binds the control socket with mode 0600 and serves requests by forwarding them to
/// the daemon loop through `requests`. A stale socket file from a dead daemon is
/// replaced; a live one is an error.
pub async fn serve(
    path: &Path,
    requests: mpsc::Sender<ControlRequest>,
) -> Result<tokio::task::JoinHandle<()>, ControlError> {
    let bind_err = |source| ControlError::Bind {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::InUse {
                path: path.to_owned(),
            });
        }
        std::fs::remove_file(path).map_err(bind_err)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(bind_err)?;
    }
    // Create the socket with no group/other access from the first moment.
    // SAFETY: umask only changes this process's file creation mask.
    let old_mask = unsafe { libc::umask(0o177) };
    let listener = UnixListener::bind(path);
    unsafe { libc::umask(old_mask) };
    let listener = listener.map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;

    Ok(tokio::spawn(async move {
        let mut backoff = AcceptBackoff::default();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    backoff.succeeded("control socket");
                    stream
                }
                Err(e) => {
                    backoff.failed(&e, "control socket").await;
                    continue;
                }
            };
            // Only root (and our own uid) may ask, whatever the file mode says.
            let allowed = stream
                .peer_cred()
                .map(|cred| cred.uid() == 0 || cred.uid() == unsafe { libc::geteuid() })
                .unwrap_or(false);
            let requests = requests.clone();
            tokio::spawn(async move {
                if allowed {
                    let _ = answer(stream, requests).await;
                } else {
                    let mut stream = stream;
                    let _ = stream
                        .write_all(b"{\"error\":\"permission denied\"}\n")
                        .await;
                }
            });
        }
    }))
}

/// Pacing for a listener whose `accept` fails (out of file descriptors, EMFILE/ENFILE,
/// or out of memory): the error repeats at once until something frees a descriptor, so
/// retrying in a loop would burn the CPU — at real-time priority, starving the adverts —
/// and flood the log. Waits grow from [`Self::FIRST`] to [`Self::MAX`]; one warning per
/// burst of failures and one line when accepting works again.
#[derive(Debug, Default)]
pub(crate) struct AcceptBackoff {
    /// Consecutive failed accepts.
    failures: u32,
}

impl AcceptBackoff {
    /// Wait after the first failure of a burst.
    pub(crate) const FIRST: std::time::Duration = std::time::Duration::from_millis(10);
    /// Longest wait: a listener recovers within a second of descriptors being freed.
    pub(crate) const MAX: std::time::Duration = std::time::Duration::from_secs(1);

    /// Records one failure: how long to wait before the next `accept`, and whether this
    /// failure starts a burst (and so is the one to log).
    pub(crate) fn next_failure(&mut self) -> (std::time::Duration, bool) {
        let first = self.failures == 0;
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(16);
        let delay = Self::FIRST.saturating_mul(1 << doublings).min(Self::MAX);
        (delay, first)
    }

    /// Records a successful accept; returns how many failures the burst it ends had.
    pub(crate) fn next_success(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }

    /// Logs (once per burst) and waits after a failed accept on `listener`.
    pub(crate) async fn failed(&mut self, error: &std::io::Error, listener: &str) {
        let (delay, first) = self.next_failure();
        if first {
            tracing::warn!(%error, listener, "accepting a connection failed; retrying with backoff until it works again");
        }
        tokio::time::sleep(delay).await;
    }

    /// Notes a successful accept on `listener`, logging the end of a failure burst.
    pub(crate) fn succeeded(&mut self, listener: &str) {
        let failures = self.next_success();
        if failures > 0 {
            tracing::info!(listener, failures, "accepting connections works again");
        }
    }
}

async fn answer(stream: UnixStream, requests: mpsc::Sender<ControlRequest>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // Bounded read: a client cannot make us buffer more than a short line.
    BufReader::new(read.take(256)).read_line(&mut line).await?;
    let reply = match line.trim() {
        "status" | "" => {
            let (tx, rx) = oneshot::channel();
            if requests.send(ControlRequest { reply: tx }).await.is_err() {
                return Ok(());
            }
            match rx.await {
                Ok(status) => serde_json::to_string(&status).map_err(std::io::Error::other)?,
                Err(_) => return Ok(()),
            }
        }
        other => {
            serde_json::json!({ "error": format!("unknown request {other:?}; try \"status\"") })
                .to_string()
        }
    };
    write.write_all(reply.as_bytes()).await?;
    write.write_all(b"\n").await?;
    write.shutdown().await
}

/// Client side: asks the daemon at `path` for its status.
pub async fn query_status(path: &Path) -> Result<DaemonStatus, ControlError> {
    let connect_err = |source| ControlError::Connect {
        path: path.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(path).await.map_err(connect_err)?;
    stream.write_all(b"status\n").await.map_err(connect_err)?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .map_err(connect_err)?;
    serde_json::from_str(&answer).map_err(|e| ControlError::BadAnswer(format!("{e}: {answer}")))
}

/// The status as `vipd status --json` prints it (and `GET /status` serves it).
pub fn status_json(status: &DaemonStatus) -> serde_json::Result<String> {
    serde_json::to_string_pretty(status).map(|mut text| {
        text.push('\n');
        text
    })
}

/// Renders the status as a table for people.
pub fn render_table(status: &DaemonStatus) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    // A director without VRRP has no instance table to show.
    let instances = !status.instances.is_empty() || status.virtual_servers.is_empty();
    if instances {
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:>4} {:<7} {:>8} {:<16} {:<24} VIPS",
            "INSTANCE", "INTERFACE", "VRID", "STATE", "PRIORITY", "MASTER", "LAST CHANGE"
        );
    }
    for i in &status.instances {
        let priority = if i.priority == i.effective_priority {
            i.priority.to_string()
        } else {
            format!("{}({})", i.effective_priority, i.priority)
        };
        let last = i
            .last_transition
            .as_ref()
            .map(|t| format!("{} {:.1}s ago", t.reason, t.seconds_ago))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:>4} {:<7} {:>8} {:<16} {:<24} {}",
            i.name,
            i.interface,
            i.vrid,
            i.state,
            priority,
            i.master_address.as_deref().unwrap_or("-"),
            last,
            i.virtual_addresses.join(",")
        );
    }
    if !status.virtual_servers.is_empty() {
        if instances {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{:<24} {:<26} {:<9} {:>6} {:>8} {:>12} LAST CHECK",
            "VIRTUAL SERVER", "REAL SERVER", "STATE", "WEIGHT", "FLOWS", "PACKETS"
        );
        for vs in &status.virtual_servers {
            let mut name = format!("{} {}", vs.name, vs.algo);
            if !vs.quorum_up {
                name.push_str(" (quorum down)");
            }
            for rs in &vs.real_servers {
                let state = match (&rs.unreachable, rs.sorry) {
                    (Some(_), _) => "no-route".to_owned(),
                    (None, true) if vs.using_sorry_server => "serving".to_owned(),
                    (None, true) => "standby".to_owned(),
                    (None, false) => rs.state.clone(),
                };
                let address = if rs.sorry {
                    format!("{} (sorry)", rs.address)
                } else {
                    rs.address.clone()
                };
                let check = rs
                    .unreachable
                    .clone()
                    .or_else(|| rs.last_check.clone())
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "{:<24} {:<26} {:<9} {:>6} {:>8} {:>12} {}",
                    name, address, state, rs.weight, rs.active_flows, rs.packets, check
                );
                name.clear();
            }
        }
    }
    if !status.announced.is_empty() {
        let _ = writeln!(out, "\n{:<40} PATH", "ANNOUNCED OVER BGP");
        for route in &status.announced {
            let _ = writeln!(out, "{:<40} {}", route.address, route.path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{AcceptBackoff, AnnouncedRoute, DaemonStatus, render_table};

    #[test]
    fn table_lists_announced_routes_only_when_there_are_some() {
        let mut status = DaemonStatus::default();
        assert!(!render_table(&status).contains("ANNOUNCED"));
        status.announced.push(AnnouncedRoute {
            address: "203.0.113.10".into(),
            path: "standby".into(),
        });
        let table = render_table(&status);
        assert!(table.contains("ANNOUNCED OVER BGP"), "{table}");
        assert!(
            table.contains("203.0.113.10") && table.contains("standby"),
            "{table}"
        );
    }

    #[test]
    fn a_director_without_instances_shows_only_its_virtual_servers() {
        let mut status = DaemonStatus::default();
        assert!(render_table(&status).starts_with("INSTANCE"));
        status.virtual_servers.push(super::VirtualServerStatus {
            name: "192.0.2.100:80/tcp".into(),
            algo: "rr".into(),
            quorum_up: true,
            ..Default::default()
        });
        let table = render_table(&status);
        assert!(table.starts_with("VIRTUAL SERVER"), "{table}");
        assert!(!table.contains("INSTANCE"), "{table}");
    }

    #[test]
    fn accept_backoff_grows_to_a_cap_and_logs_once_per_burst() {
        let mut backoff = AcceptBackoff::default();
        let burst: Vec<(Duration, bool)> = (0..10).map(|_| backoff.next_failure()).collect();
        assert_eq!(burst[0], (AcceptBackoff::FIRST, true));
        assert!(burst[1..].iter().all(|(_, first)| !first), "{burst:?}");
        assert!(
            burst.windows(2).all(|w| w[1].0 >= w[0].0),
            "waits never shrink within a burst: {burst:?}"
        );
        assert_eq!(burst[1].0, AcceptBackoff::FIRST * 2);
        assert_eq!(burst[9].0, AcceptBackoff::MAX);
        // Never a busy loop, however long the burst lasts.
        for _ in 0..1000 {
            let (delay, first) = backoff.next_failure();
            assert_eq!(delay, AcceptBackoff::MAX);
            assert!(!first);
        }
        assert_eq!(backoff.next_success(), 1010);
        // A new burst starts short again, and is logged again.
        assert_eq!(backoff.next_failure(), (AcceptBackoff::FIRST, true));
        assert_eq!(backoff.next_success(), 1);
        assert_eq!(backoff.next_success(), 0);
    }
}
