//! The driver: one task that owns every instance, selects over packets, link events,
//! timers, signals and control requests, feeds the sans-IO core, and performs the
//! actions it returns through `io`.
//!
//! Only this module (and `io`) reads the clock; the core gets `now` as a value.
//!
//! - [`run`](self::run()): start-up, the main loop and the graceful shutdown (`run.rs`);
//! - `setup`: interfaces, sockets, XDP, locks, trackers, groups;
//! - `input`: packets, XDP events, links, trackers, timers → `handle` calls;
//! - `executor`: actions → I/O (adverts, VIPs, announcements, leases, notify);
//! - `l3`: L3 mode: announced routes follow states and health (`proto::l3`);
//! - `reload`: SIGHUP;
//! - `status`: `vipd status` and metrics.

mod bfd;
mod bfd_engine;
mod executor;
mod input;
mod l3;
mod reload;
mod run;
mod setup;
mod status;

use crate::proto::announce::{AnnounceSchedule, Backlog};
use executor::{
    AnnounceForBacklog, ResolvedMaster, VIP_REQUESTS_IN_FLIGHT, VipDone, VipJob, spawn_vip_worker,
};
use run::apply_scheduling;
pub use run::run;
use status::reason_name;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime};

use sd_notify::NotifyState as SdState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::config::{self, AddressFamily, Authentication, Config, InstanceSpec, VrrpVersion};
use crate::control::{self, ControlRequest, DaemonStatus, InstanceStatus, TransitionStatus};
use crate::io::arp::ArpSender;
use crate::io::bpf::{
    AdvertEvent, AdvertEvents, AttachMode, AttachOptions, BpfError, IpFamily, PinConfig, WatchSpec,
    XdpAttachment, monotonic_now_ns,
};
use crate::io::netlink::{LinkEvent, NetEvent, Netlink, NetlinkError};
use crate::io::socket::{Datagram, RxSocket, TxSocket, vrrp_group};
use crate::log_limit::{LogLimiter, Verdict};
use crate::notify::{self, NotifyCounters, NotifyState};
use crate::proto::action::{Action, FaultReason, State};
use crate::proto::health::{self, Health};
use crate::proto::instance::{self as core, Follow, Input, Instance, InstanceConfig};
use crate::proto::sync_group::{GroupState, SyncGroup};
use crate::proto::validate::{self, Expected, RxCounters};
use crate::proto::wire::{self, AdvertRepr, Auth, Centiseconds, Packet, Version};
use crate::track::{self, FileEvent, TrackEvent};

/// Errors that stop the daemon from starting.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// rtnetlink failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The control socket could not be served.
    #[error(transparent)]
    Control(#[from] control::ControlError),
    /// A socket could not be opened.
    #[error(
        "instance {instance}: {what}: {source} (vipd needs root or CAP_NET_RAW + CAP_NET_ADMIN)"
    )]
    Socket {
        /// Instance name.
        instance: String,
        /// What was being opened.
        what: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration cannot run on this host.
    #[error("instance {instance}: {message}")]
    Setup {
        /// Instance name.
        instance: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The protocol core refused the instance's parameters.
    #[error("instance {instance}: {source}")]
    Core {
        /// Instance name.
        instance: String,
        /// The core's reason.
        #[source]
        source: core::ConfigError,
    },
    /// Another live vipd manages this interface.
    #[error(
        "{interface} is already managed by another vipd ({holder}; lock {lock}): stop that one first, or use another --run-dir for a separate host"
    )]
    InterfaceBusy {
        /// The interface.
        interface: String,
        /// What the holder wrote into the lock file.
        holder: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// XDP could not be attached in the mode the configuration demands.
    #[error("XDP on {interface}: {source} (set xdp = \"auto\" to fall back, or \"off\")")]
    Xdp {
        /// Interface.
        interface: String,
        /// Why.
        #[source]
        source: Box<BpfError>,
    },
    /// The load balancer cannot run its data plane.
    #[error("load balancer: {message}")]
    LoadBalancer {
        /// What is wrong and what to do.
        message: String,
    },
    /// L3 mode's announcement devices could not be created.
    #[error(transparent)]
    L3(#[from] crate::io::l3::L3Error),
    /// Installing a signal handler failed.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

/// A VRRP datagram read from an interface's receive socket.
struct Received {
    ifindex: u32,
    datagram: Datagram,
}

/// Instances are keyed by (interface, VRID, family): RFC 5798 §5.2.3 makes the IPv4 and
/// IPv6 routers of one VRID separate, as does the XDP program's watch key.
type RouterKey = (u32, u8, IpFamily);

/// The XDP / key family of a wire family.
fn ip_family(family: wire::AddressFamily) -> IpFamily {
    match family {
        wire::AddressFamily::Ipv4 => IpFamily::Ipv4,
        wire::AddressFamily::Ipv6 => IpFamily::Ipv6,
    }
}

/// The wire family of a configured family.
fn wire_family(family: AddressFamily) -> wire::AddressFamily {
    match family {
        AddressFamily::V4 => wire::AddressFamily::Ipv4,
        AddressFamily::V6 => wire::AddressFamily::Ipv6,
    }
}

/// Warnings that can repeat with every advert or packet, rate-limited per instance (see
/// [`crate::log_limit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Repeated {
    /// A peer's advert lists other addresses than ours (accepted all the same).
    AddressListMismatch,
    /// An advert could not be sent.
    SendAdvert,
    /// The XDP lease clock could not be renewed.
    LeaseRenewal,
    /// A gratuitous ARP or neighbour advertisement could not be sent.
    Announcement,
    /// An L3 route could not be announced or withdrawn (retried every loop turn).
    L3Route,
    /// A received advert failed a receive check worth telling the operator about
    /// ([`validate::DiscardReason::worth_logging`]).
    Discarded(validate::DiscardReason),
    /// A received datagram was not a usable IP datagram.
    MalformedDatagram,
}

impl Repeated {
    fn message(self) -> String {
        let text = match self {
            Self::AddressListMismatch => {
                "advert's address list differs from our virtual_ipaddress (accepted, RFC 5798 §7.1)"
            }
            Self::SendAdvert => "sending advert failed",
            Self::LeaseRenewal => "renewing the XDP ARP lease failed",
            Self::Announcement => "gratuitous ARP / neighbour advertisement failed",
            Self::L3Route => "L3: changing an announced route failed (retrying)",
            // RFC 9568 §7.1: the receiver "MUST discard the packet, SHOULD log the event
            // (subject to rate-limiting)".
            Self::Discarded(reason) => return format!("advert discarded: {}", reason.name()),
            Self::MalformedDatagram => "received datagram is not a usable IP datagram",
        };
        text.to_owned()
    }
}

/// One line per (instance, warning) per this period; the rest are counted.
const REPEATED_WARNING_PERIOD: Duration = Duration::from_secs(10);

/// One configured instance and everything the driver keeps for it.
struct Slot {
    spec: InstanceSpec,
    core: Instance,
    ifindex: u32,
    /// Source of our adverts: an IPv4 address of the interface, or its IPv6 link-local
    /// address (either unless `unicast_src_ip` says otherwise).
    primary: IpAddr,
    tx: TxSocket,
    destinations: Vec<IpAddr>,
    /// IPv6 with a VMAC: the VMAC's ifindex, whose packet socket sends the adverts
    /// (Ethernet source the virtual MAC, IPv6 source the parent's link-local address).
    advert_via: Option<u32>,
    /// (ifindex of the VIP's dev, the VIP).
    vips: Vec<(u32, config::VirtualAddress)>,
    local_addresses: Vec<IpAddr>,
    rx: RxCounters,
    garp: AnnounceSchedule,
    /// Whether the VIPs are (being) added: set when the add is queued.
    holds_vips: bool,
    /// The VIP job last queued for this slot (see [`VipJob`]).
    vip_generation: u64,
    /// The add job still in flight, if any: its completion claims the XDP leases and
    /// starts the announcements, so neighbours are not sent to a VIP the kernel lacks.
    acquiring: Option<u64>,
    last_change: Option<SystemTime>,
    send_errors: u64,
    /// Adverts sent more than one advert interval after they were due: the daemon was
    /// starved of CPU (peers time out after about three intervals).
    adverts_late: u64,
    /// The latest an advert was sent after it was due, in microseconds.
    advert_late_max_us: u64,
    vip_errors: u64,
    garps_sent: u64,
    /// Unsolicited neighbour advertisements sent (IPv6 VIPs' gratuitous ARP).
    nas_sent: u64,
    /// Gratuitous ARPs / NAs sent on behalf of the master this instance yielded to
    /// ([`Action::AnnounceFor`]).
    announced_for_master: u64,
    /// Those still to send.
    announce_for: Option<AnnounceForBacklog>,
    /// The instance's interface and its track_interfaces, by ifindex.
    links: HashMap<u32, TrackedLink>,
    /// Shared with this instance's notify tasks.
    notify: Arc<NotifyCounters>,
    /// The latest `now` handed to the core: inputs derived from XDP timestamps are never
    /// older, so the core sees time move forward only.
    last_input: Instant,
    /// Adverts the XDP record showed that the socket had not delivered in time (each
    /// one a false failover avoided).
    xdp_rescues: u64,
    /// Inputs taken from XDP ring-buffer events.
    xdp_events: u64,
    /// Removed by a reload: stopped, kept only so indexes (and lease clocks) stay put.
    retired: bool,
    /// State transitions by reason, for metrics.
    transitions_by_reason: std::collections::BTreeMap<String, u64>,
    /// A notify held back until the transition is complete (state, priority then): a
    /// new master's until its VIPs are announced, a stopping master's until it has
    /// handed them over (as keepalived, which notifies after setting the VIPs). The
    /// scripts' process starts then do not compete with the takeover for the CPU.
    pending_notify: Option<(NotifyState, u8)>,
    /// Interfaces (the instance's, or a VIP's) that had no IPv6 link-local address when
    /// the instance was prepared: it stays in FAULT, and is prepared again once the
    /// kernel reports one ([`NetEvent::LinkLocalReady`]).
    awaiting_link_local: Vec<u32>,
}

impl Slot {
    /// Feeds the core, never letting its time go backwards.
    fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let now = now.max(self.last_input);
        self.last_input = now;
        self.core.handle(now, input)
    }

    /// How long an ARP lease written at an advert lasts: three advert intervals, so one
    /// or two late adverts do not interrupt answering, never below 30 ms.
    fn lease_duration(&self) -> Duration {
        (self.core.config().advert_interval.as_duration() * 3).max(Duration::from_millis(30))
    }

    /// The instance's address family.
    fn family(&self) -> wire::AddressFamily {
        wire::AddressFamily::of(self.primary)
    }

    fn key(&self) -> RouterKey {
        (
            self.ifindex,
            self.spec.virtual_router_id,
            ip_family(self.family()),
        )
    }

    /// Runs the receive checks on an advert the XDP program recorded and counts the
    /// outcome with the socket's; `None` (logged) if it is to be discarded.
    fn accept_observed(
        &mut self,
        observed: &validate::ObservedAdvert,
    ) -> Option<validate::Accepted> {
        let result =
            validate::validate_observed(observed, &self.local_addresses, Some(self.expected()));
        self.rx.record(&result);
        match result {
            Ok(accepted) => Some(accepted),
            Err(discard) => {
                tracing::debug!(instance = %self.spec.name, from = %observed.src, reason = %discard, "advert seen by XDP discarded");
                None
            }
        }
    }

    fn expected(&self) -> Expected<'_> {
        let cfg = self.core.config();
        Expected {
            version: cfg.version,
            vrid: cfg.vrid,
            auth: cfg.auth,
            advert_interval: cfg.advert_interval,
            // What our own adverts list: a peer configured alike lists the same.
            virtual_addresses: self.core.listed_addresses(),
        }
    }
}

/// The running daemon.
struct Daemon {
    /// Queue of the VIP worker ([`spawn_vip_worker`]): adds and removals, in order.
    vip_jobs: mpsc::UnboundedSender<VipJob>,
    /// `realtime_priority` as configured, which the VIP worker follows.
    realtime_priority: Arc<AtomicU8>,
    slots: Vec<Slot>,
    by_vrid: HashMap<RouterKey, usize>,
    arp: HashMap<u32, ArpSender>,
    netlink: Netlink,
    /// Virtual MAC interfaces of instances with `use_vmac`, deleted on stop.
    vmacs: crate::io::vmac::Vmacs,
    started: Instant,
    /// Datagrams for VRIDs nobody here configured, per interface.
    unknown_vrid: HashMap<u32, RxCounters>,
    /// Datagrams on a VRRP socket that were not well-formed IPv4.
    malformed_ip: u64,
    /// SIGHUPs handled whose configuration loaded and was applied (`reloads`), and
    /// those whose configuration did not load (`reload_failures`): how a supervisor or
    /// a test knows a reload it asked for is done.
    reloads: u64,
    reload_failures: u64,
    /// Datagrams dropped because the daemon loop fell behind.
    rx_queue_drops: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Settled status of each track script (absent until its first run).
    script_health: HashMap<String, bool>,
    /// Global settings (mail, router id).
    mail: Option<config::MailSettings>,
    router_id: String,
    /// Notify and mail tasks still running, so shutdown can let them finish.
    notify_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// How long shutdown waits for them (`notify_shutdown_timeout`).
    notify_shutdown_timeout: Duration,
    /// XDP attachments by ifindex (absent where XDP is off).
    xdp: HashMap<u32, XdpAttachment>,
    /// The load balancer's data plane, when virtual servers are configured.
    lb: Option<crate::lb::LbRuntime>,
    /// Where XDP pins live, whether its log is on, and where its events go.
    pin: PinConfig,
    xdp_log: bool,
    xdp_tx: mpsc::Sender<AdvertEvent>,
    /// (Interface, family) pairs with a receive socket, and where their datagrams go.
    rx_sockets: std::collections::HashSet<(u32, wire::AddressFamily)>,
    rx_tx: mpsc::Sender<Received>,
    /// Track-script and track-file tasks, and where scripts report.
    trackers: Vec<Tracker>,
    track_tx: mpsc::Sender<TrackEvent>,
    /// Set while applying a reload: transitions it causes run no notify scripts.
    reloading: bool,
    /// One flock per interface this daemon touches, taken before anything is changed
    /// there, so a second vipd fails before it can remove the first one's VIPs.
    interface_locks: HashMap<String, crate::io::lock::LockFile>,
    /// Track files: their definitions, last values, and where their watchers report.
    track_files: Vec<config::TrackFile>,
    file_values: HashMap<String, i64>,
    file_tx: mpsc::Sender<FileEvent>,
    /// Sync groups, and members waiting to follow a group change.
    groups: Vec<GroupRuntime>,
    follow_queue: Vec<(usize, Follow)>,
    /// Where the MACs that answer for the VIPs of masters we yielded to arrive
    /// ([`ResolvedMaster`]).
    resolved_tx: mpsc::UnboundedSender<ResolvedMaster>,
    /// Rate limits of repeated warnings, by (instance name, warning).
    warnings: LogLimiter<(String, Repeated)>,
    /// BFD sessions (`bfd_instance`).
    bfd: bfd::BfdRuntime,
    /// L3 mode's announcement devices, when anything is announced over BGP.
    l3: Option<l3::L3Runtime>,
}

/// A sync group at run time: its configuration, and the core's [`SyncGroup`] (members
/// by slot index, the state last notified).
struct GroupRuntime {
    spec: config::SyncGroup,
    group: SyncGroup,
}

/// A watched interface of an instance.
#[derive(Debug, Clone)]
struct TrackedLink {
    name: String,
    up: bool,
    /// 0 for the instance's own interface; a track_interface's weight otherwise.
    weight: i32,
}

/// What a tracker task watches.
#[derive(Debug)]
enum TrackerDefinition {
    Script(config::TrackScript),
    File(config::TrackFile),
}

/// A running tracker task: a reload keeps it while its definition is unchanged.
struct Tracker {
    definition: TrackerDefinition,
    task: tokio::task::JoinHandle<()>,
}

impl Tracker {
    /// Stops the task (a script it is running is killed with its process group).
    fn abort(&self) {
        self.task.abort();
    }

    fn name(&self) -> &str {
        match &self.definition {
            TrackerDefinition::Script(script) => &script.name,
            TrackerDefinition::File(file) => &file.name,
        }
    }
}

/// How `run` was asked to start.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Override of the control socket path.
    pub control_socket: Option<PathBuf>,
    /// Switch on the XDP program's own log lines (aya-log).
    pub xdp_log: bool,
    /// Where XDP links and maps are pinned and interface locks live; `None` for
    /// [`PinConfig::system`].
    pub pin: Option<PinConfig>,
    /// The file the configuration came from, re-read on SIGHUP (`None`: no reload).
    pub config_path: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// keepalived's state names, which operators grep for.
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

/// The core's view of an instance spec.
pub fn core_config(spec: &InstanceSpec, primary: IpAddr) -> InstanceConfig {
    let version = match spec.version {
        VrrpVersion::V2 => Version::V2,
        VrrpVersion::V3 => Version::V3,
    };
    let centis = (spec.advert_interval.as_millis() / 10).min(u128::from(u16::MAX)) as u16;
    let mut cfg = InstanceConfig::new(
        spec.virtual_router_id,
        primary,
        spec.virtual_addresses.iter().map(|v| v.address).collect(),
    );
    cfg.version = version;
    cfg.priority = spec.priority;
    cfg.advert_interval = Centiseconds(centis);
    cfg.preempt = spec.preempt;
    cfg.preempt_delay = spec.preempt_delay;
    cfg.accept_mode = spec.accept_mode;
    cfg.initial_state = match spec.initial_state {
        config::InitialState::Backup => core::InitialState::Backup,
        config::InitialState::Master => core::InitialState::Master,
    };
    cfg.auth = match &spec.authentication {
        Some(Authentication::Pass { password }) => {
            Auth::simple_text(password).unwrap_or(Auth::None)
        }
        None => Auth::None,
    };
    cfg
}

/// The first usable IPv6 link-local address among `addresses`, preferring one whose
/// duplicate address detection is over.
fn link_local(addresses: &[crate::io::netlink::InterfaceAddress]) -> Option<Ipv6Addr> {
    let usable = || addresses.iter().filter(|a| a.is_link_local_v6());
    usable()
        .find(|a| a.flags & crate::io::netlink::InterfaceAddress::TENTATIVE == 0)
        .or_else(|| usable().next())
        .and_then(|a| match a.address {
            IpAddr::V6(v6) => Some(v6),
            IpAddr::V4(_) => None,
        })
}

/// The link-local address the kernel derives from `mac` by default (modified EUI-64,
/// RFC 4291 §2.5.1 and appendix A): a stand-in until the interface has its real one.
fn eui64_link_local(mac: [u8; 6]) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([mac[0] ^ 0x02, mac[1]]),
        u16::from_be_bytes([mac[2], 0xff]),
        u16::from_be_bytes([0xfe, mac[3]]),
        u16::from_be_bytes([mac[4], mac[5]]),
    )
}

/// The host name, for mail subjects when no router_id is configured.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "vipd".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stand-in is what the kernel derived for the keepalived capture's MAC
    /// (02:00:5e:00:53:01 → fe80::5eff:fe00:5301, seen on the wire).
    #[test]
    fn eui64_link_local_matches_the_kernels_address_for_a_mac() {
        assert_eq!(
            eui64_link_local([0x02, 0, 0x5e, 0, 0x53, 0x01]),
            "fe80::5eff:fe00:5301".parse::<Ipv6Addr>().expect("literal")
        );
        assert_eq!(
            eui64_link_local([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
            "fe80::211:22ff:fe33:4455"
                .parse::<Ipv6Addr>()
                .expect("literal")
        );
    }
}
