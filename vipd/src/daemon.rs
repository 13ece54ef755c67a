//! The driver: one task that owns every instance, selects over packets, link events,
//! timers, signals and control requests, feeds the sans-IO core, and performs the
//! actions it returns through `io`.
//!
//! Only this module (and `io`) reads the clock; the core gets `now` as a value.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
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
use crate::io::netlink::{LinkEvent, Netlink, NetlinkError};
use crate::io::socket::{Datagram, RxSocket, TxSocket, vrrp_group};
use crate::notify::{self, NotifyCounters, NotifyState};
use crate::proto::action::{Action, FaultReason, State};
use crate::proto::instance::{self as core, Follow, Input, Instance, InstanceConfig};
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

/// Gratuitous ARP schedule of one master (keepalived's garp_master_* semantics).
#[derive(Debug, Default)]
struct GarpSchedule {
    /// Times at which one round of announcements (every VIP once) is due, earliest first.
    rounds: Vec<Instant>,
    /// Next periodic refresh, when `garp_master_refresh` is set.
    refresh_at: Option<Instant>,
    /// Announcements due but not sent yet: rounds are sent [`GARP_BUDGET`] frames per
    /// turn of the loop, so thousands of VIPs never hold up an advert.
    backlog: usize,
    /// Index into the instance's VIPs of the next one to announce.
    cursor: usize,
    /// When the backlog is to be worked on: the turn it was left in.
    continue_at: Option<Instant>,
}

/// Most gratuitous ARPs / neighbour advertisements sent per turn of the main loop (a
/// millisecond or so), between which adverts and received packets are handled.
const GARP_BUDGET: usize = 128;

impl GarpSchedule {
    fn next_deadline(&self) -> Option<Instant> {
        self.rounds
            .first()
            .copied()
            .into_iter()
            .chain(self.refresh_at)
            .chain(self.continue_at)
            .min()
    }
}

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
    /// (ifindex of the VIP's dev, the VIP).
    vips: Vec<(u32, config::VirtualAddress)>,
    vip_addresses: Vec<IpAddr>,
    local_addresses: Vec<IpAddr>,
    rx: RxCounters,
    garp: GarpSchedule,
    /// Whether the VIPs are (being) added: set when the add is queued.
    holds_vips: bool,
    /// The VIP job last queued for this slot (see [`VipJob`]).
    vip_generation: u64,
    /// The add job still in flight, if any: its completion claims the XDP leases and
    /// starts the announcements, so neighbours are not sent to a VIP the kernel lacks.
    acquiring: Option<u64>,
    /// The core asked to announce while `acquiring`: done when the add completes.
    announce_pending: bool,
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
    /// Link state of the instance's interface and of its track_interfaces, by ifindex.
    links: HashMap<u32, bool>,
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

    fn expected(&self) -> Expected<'_> {
        let cfg = self.core.config();
        Expected {
            version: cfg.version,
            vrid: cfg.vrid,
            local_priority: cfg.priority,
            auth: cfg.auth,
            advert_interval: cfg.advert_interval,
            // Adverts list at most the first 255 (RFC 5798 §5.2.5).
            virtual_addresses: &self.vip_addresses[..self.vip_addresses.len().min(255)],
        }
    }
}

/// The running daemon.
struct Daemon {
    /// Queue of the VIP worker ([`vip_worker`]): adds and removals, in order.
    vip_jobs: mpsc::UnboundedSender<VipJob>,
    slots: Vec<Slot>,
    by_vrid: HashMap<RouterKey, usize>,
    arp: HashMap<u32, ArpSender>,
    netlink: Netlink,
    started: Instant,
    /// Datagrams for VRIDs nobody here configured, per interface.
    unknown_vrid: HashMap<u32, RxCounters>,
    /// Datagrams on a VRRP socket that were not well-formed IPv4.
    malformed_ip: u64,
    /// Datagrams dropped because the daemon loop fell behind.
    rx_queue_drops: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Settled status of each track script (absent until its first run).
    script_health: HashMap<String, bool>,
    /// Global settings (mail, router id).
    mail: Option<config::MailSettings>,
    router_id: String,
    /// Notify and mail tasks still running, so shutdown can let them finish briefly.
    notify_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// XDP attachments by ifindex (absent where XDP is off).
    xdp: HashMap<u32, XdpAttachment>,
    /// Where XDP pins live, whether its log is on, and where its events go.
    pin: PinConfig,
    xdp_log: bool,
    xdp_tx: mpsc::Sender<AdvertEvent>,
    /// (Interface, family) pairs with a receive socket, and where their datagrams go.
    rx_sockets: std::collections::HashSet<(u32, wire::AddressFamily)>,
    rx_tx: mpsc::Sender<Received>,
    /// Track-script tasks and where they report.
    trackers: Vec<tokio::task::JoinHandle<()>>,
    track_tx: mpsc::Sender<TrackEvent>,
    /// Set while applying a reload: transitions it causes run no notify scripts.
    reloading: bool,
    /// One flock per interface this daemon touches, taken before anything is changed
    /// there, so a second vipd fails before it can remove the first one's VIPs.
    interface_locks: HashMap<String, std::fs::File>,
    /// Track files: their definitions, last values, and where their watchers report.
    track_files: Vec<config::TrackFile>,
    file_values: HashMap<String, i64>,
    file_tx: mpsc::Sender<FileEvent>,
    /// Sync groups, and members waiting to follow a group change.
    groups: Vec<GroupRuntime>,
    follow_queue: Vec<(usize, Follow)>,
}

/// A sync group at run time.
struct GroupRuntime {
    spec: config::SyncGroup,
    /// Slot indexes of the members.
    members: Vec<usize>,
    /// The group's state as last notified.
    state: Option<NotifyState>,
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

/// Puts the daemon's thread at the configured real-time priority; a refusal (no
/// CAP_SYS_NICE, a container's RT budget of 0) is logged and the daemon runs on as an
/// ordinary process.
fn apply_scheduling(priority: u8) {
    use crate::io::sched::{Scheduling, current, set_realtime};
    let wanted = match priority {
        0 => Scheduling::Normal,
        p => Scheduling::RoundRobin(p),
    };
    // A reload that keeps the setting changes (and logs) nothing.
    if current().ok() == Some(wanted) {
        return;
    }
    match set_realtime(priority) {
        Ok(Scheduling::RoundRobin(p)) => {
            tracing::info!(priority = p, "running at real-time priority (SCHED_RR)");
        }
        Ok(Scheduling::Normal) => {
            tracing::info!("running as an ordinary process (realtime_priority = 0)")
        }
        Err(e) => tracing::warn!(
            priority,
            error = %e,
            "cannot switch to real-time scheduling (needs CAP_SYS_NICE and an RT budget); a busy CPU may delay adverts"
        ),
    }
}

/// Tells systemd (`Type=notify`) how the daemon is doing; nothing happens when vipd was
/// not started by a service manager (no `NOTIFY_SOCKET`).
fn notify_systemd(states: &[SdState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(config: Config, options: RunOptions) -> Result<(), DaemonError> {
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;

    hint_nonlocal_bind();
    apply_scheduling(config.global.realtime_priority);
    let netlink = Netlink::connect()?;
    let mut links = Netlink::watch_links()?;
    let rx_queue_drops = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (rx_tx, mut rx_rx) = mpsc::channel::<Received>(4096);
    let config_path = options.config_path.clone();

    let (xdp_tx, mut xdp_rx) = mpsc::channel::<AdvertEvent>(1024);
    let (track_tx, mut track_rx) = mpsc::channel::<TrackEvent>(64);
    let (file_tx, mut file_rx) = mpsc::channel::<FileEvent>(64);
    let (vip_jobs, vip_jobs_rx) = mpsc::unbounded_channel::<VipJob>();
    let (vip_done_tx, mut vip_done_rx) = mpsc::unbounded_channel::<VipDone>();
    let vip_worker_task = tokio::spawn(vip_worker(netlink.clone(), vip_jobs_rx, vip_done_tx));
    let mut daemon = Daemon {
        vip_jobs,
        slots: Vec::new(),
        by_vrid: HashMap::new(),
        arp: HashMap::new(),
        netlink,
        started: Instant::now(),
        unknown_vrid: HashMap::new(),
        malformed_ip: 0,
        rx_queue_drops: rx_queue_drops.clone(),
        script_health: HashMap::new(),
        mail: config.global.mail.clone(),
        router_id: config.global.router_id.clone().unwrap_or_else(hostname),
        notify_tasks: Vec::new(),
        xdp: HashMap::new(),
        pin: options.pin.clone().unwrap_or_else(PinConfig::system),
        xdp_log: options.xdp_log,
        xdp_tx,
        rx_sockets: std::collections::HashSet::new(),
        rx_tx,
        trackers: Vec::new(),
        track_tx,
        reloading: false,
        interface_locks: HashMap::new(),
        track_files: Vec::new(),
        file_values: HashMap::new(),
        file_tx,
        groups: Vec::new(),
        follow_queue: Vec::new(),
    };
    let prepared = daemon.prepare_all(&config.instances, true).await?;
    for file in &config.track_files {
        track::init_track_file(file);
    }
    daemon.start_trackers(&config);
    daemon.build_groups(&config);

    let socket_path = options
        .control_socket
        .unwrap_or_else(|| config.global.control_socket.clone());
    let (control_tx, mut control_rx) = mpsc::channel::<ControlRequest>(16);
    let metrics_task = match options.metrics_listen {
        Some(listen) => Some(
            crate::metrics::serve(listen, control_tx.clone())
                .await
                .map_err(|source| DaemonError::Socket {
                    instance: "metrics".into(),
                    what: format!("listening on {listen} for metrics"),
                    source,
                })?,
        ),
        None => None,
    };
    let control_task = control::serve(&socket_path, control_tx).await?;

    daemon.start_instances(&prepared, Instant::now()).await;
    tracing::info!(
        instances = daemon.slots.len(),
        control_socket = %socket_path.display(),
        "vipd running"
    );
    daemon.notify_ready();

    let mut timer = crate::io::clock::PreciseTimer::new();
    loop {
        let deadline = daemon
            .next_deadline()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {
                notify_systemd(&[SdState::Reloading]);
                daemon.reload(config_path.as_deref(), &socket_path).await;
                daemon.notify_ready();
            }
            Some(packet) = rx_rx.recv() => {
                daemon.on_packet(Instant::now(), packet).await;
            }
            Some(event) = links.recv() => {
                daemon.on_link(Instant::now(), event).await;
            }
            Some(event) = xdp_rx.recv() => {
                daemon.on_xdp_event(Instant::now(), event).await;
            }
            Some(event) = track_rx.recv() => {
                daemon.script_health.insert(event.name.clone(), event.healthy);
                daemon.trackers_changed(Instant::now(), &event.name).await;
            }
            Some(event) = file_rx.recv() => {
                daemon.file_values.insert(event.name.clone(), event.value);
                daemon.trackers_changed(Instant::now(), &event.name).await;
            }
            Some(request) = control_rx.recv() => {
                let _ = request.reply.send(daemon.status());
            }
            Some(done) = vip_done_rx.recv() => {
                daemon.on_vips_changed(Instant::now(), done);
            }
            _ = timer.sleep_until(deadline) => {}
        }
        daemon.on_timers(Instant::now()).await;
        daemon.settle_groups(Instant::now()).await;
    }

    tracing::info!("shutting down: priority-0 adverts, handing the VIPs over");
    notify_systemd(&[SdState::Stopping]);
    let now = Instant::now();
    let mut handing_over = Vec::new();
    for index in 0..daemon.slots.len() {
        let actions = daemon.slots[index].handle(now, Input::Shutdown);
        // A master keeps its VIPs until a backup has taken over (below), so the client's
        // traffic is answered until the new master's gratuitous ARP moves it.
        let (release, rest): (Vec<_>, Vec<_>) = actions
            .into_iter()
            .partition(|a| matches!(a, Action::ReleaseVips));
        daemon.perform(index, now, rest).await;
        if !release.is_empty() || daemon.slots[index].holds_vips {
            handing_over.push(index);
        }
    }
    daemon
        .await_successors(&mut rx_rx, &mut xdp_rx, &handing_over)
        .await;
    for index in handing_over {
        daemon.release_vips(index);
    }
    // Every queued VIP change (the removals above last) is done before vipd exits.
    daemon.vips_settled().await;
    vip_worker_task.abort();
    for (_, attachment) in daemon.xdp.drain() {
        let interface = attachment.interface().to_owned();
        if let Err(e) = attachment.detach_and_unpin() {
            tracing::warn!(%interface, error = %e, "detaching XDP failed");
        }
    }
    control_task.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    for tracker in daemon.trackers.drain(..) {
        tracker.abort();
    }
    let _ = std::fs::remove_file(&socket_path);
    // Let notify_stop scripts and mails start and mostly finish; never hang the exit.
    // (Handover at most 400 ms + this 300 ms: SIGTERM exits within a second.)
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    for task in std::mem::take(&mut daemon.notify_tasks) {
        let _ = tokio::time::timeout_at(deadline, task).await;
    }
    tracing::info!("vipd stopped");
    Ok(())
}

fn spawn_xdp_events(mut reader: AdvertEvents, queue: mpsc::Sender<AdvertEvent>) {
    tokio::spawn(async move {
        loop {
            match reader.next().await {
                Ok(event) => {
                    if queue.send(event).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading XDP advert events failed");
                    return;
                }
            }
        }
    });
}

/// An advert rebuilt from what XDP recorded (it checked TTL, version, type, length,
/// VRID, auth and checksum); the address list is taken as configured.
fn synthetic_advert(slot: &Slot, priority: u8, interval: Centiseconds) -> AdvertRepr {
    let cfg = slot.core.config();
    AdvertRepr {
        version: cfg.version,
        vrid: cfg.vrid,
        priority,
        max_advert_interval: interval,
        auth: cfg.auth,
        addresses: slot.vip_addresses.iter().take(255).copied().collect(),
    }
}

fn spawn_receiver(
    socket: RxSocket,
    ifindex: u32,
    queue: mpsc::Sender<Received>,
    drops: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            match socket.recv(&mut buf).await {
                Ok(datagram) => {
                    let packet = Received { ifindex, datagram };
                    if queue.try_send(packet).is_err() {
                        drops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    tracing::warn!(ifindex, error = %e, "VRRP receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
}

impl Daemon {
    /// READY=1 to systemd, with how many instances run (after start and each reload).
    fn notify_ready(&self) {
        let active = self.slots.iter().filter(|s| !s.retired).count();
        let status = format!("{active} instances running");
        notify_systemd(&[SdState::Ready, SdState::Status(&status)]);
    }

    /// Resolves an instance's interface and addresses, opens its send socket and removes
    /// VIPs a crashed earlier run left behind.
    async fn prepare(
        &mut self,
        spec: &InstanceSpec,
        cleanup_stale: bool,
    ) -> Result<Slot, DaemonError> {
        let setup = |message: String| DaemonError::Setup {
            instance: spec.name.clone(),
            message,
        };
        self.lock_interface(&spec.interface)?;
        for vip in &spec.virtual_addresses {
            self.lock_interface(&vip.dev)?;
        }
        let ifindex = self.netlink.link_index(&spec.interface).await?;
        let mut links = HashMap::from([(ifindex, self.netlink.link_is_up(&spec.interface).await?)]);
        for tracked in &spec.track_interfaces {
            let index = self.netlink.link_index(tracked).await?;
            links.insert(index, self.netlink.link_is_up(tracked).await?);
        }
        let vip_addresses: Vec<IpAddr> = spec.virtual_addresses.iter().map(|v| v.address).collect();
        let existing = self.netlink.addresses(ifindex).await?;
        let local_addresses: Vec<IpAddr> = existing
            .iter()
            .map(|a| a.address)
            .filter(|a| !vip_addresses.contains(a))
            .collect();
        // Config validation keeps unicast_src_ip in the instance's family.
        let primary = match (spec.unicast_src_ip, spec.family) {
            (Some(address), _) => address,
            (None, AddressFamily::V4) => local_addresses
                .iter()
                .copied()
                .find(|a| a.is_ipv4() && !a.is_loopback())
                .ok_or_else(|| {
                    setup(format!(
                        "{} has no IPv4 address to send adverts from: add one, or set unicast_src_ip",
                        spec.interface
                    ))
                })?,
            // RFC 5798 §5.1.2.1: IPv6 adverts come from the link-local address.
            (None, AddressFamily::V6) => IpAddr::V6(link_local(&existing).ok_or_else(|| {
                setup(format!(
                    "{} has no IPv6 link-local address to send adverts from (the kernel adds one once the link is up with carrier and IPv6 is enabled on it): start vipd once the link is up",
                    spec.interface
                ))
            })?),
        };

        let mut vips = Vec::new();
        for vip in &spec.virtual_addresses {
            let dev_index = if vip.dev == spec.interface {
                ifindex
            } else {
                self.netlink.link_index(&vip.dev).await?
            };
            vips.push((dev_index, vip.clone()));
        }
        // A crashed earlier run may have left our VIPs on the interface. We are not master
        // yet (the election below decides), so none of them should be there now.
        let mut present: HashMap<u32, Vec<crate::io::netlink::InterfaceAddress>> = HashMap::new();
        for (dev_index, vip) in &vips {
            if !present.contains_key(dev_index) {
                present.insert(*dev_index, self.netlink.addresses(*dev_index).await?);
            }
            // Delete with the prefix the kernel has: the address may have been added with
            // another one (by hand, or by an earlier config), and the kernel matches both.
            let stale: Vec<u8> = present
                .get(dev_index)
                .into_iter()
                .flatten()
                .filter(|a| a.address == vip.address)
                .map(|a| a.prefix_len)
                .collect();
            for prefix_len in stale.into_iter().filter(|_| cleanup_stale) {
                tracing::warn!(instance = %spec.name, vip = %vip.address, prefix_len, dev = %vip.dev, "removing stale VIP left by an earlier run");
                self.netlink
                    .del_address(*dev_index, vip.address, prefix_len)
                    .await?;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = self.arp.entry(*dev_index) {
                let mac =
                    crate::tools::interface_mac(&vip.dev).map_err(|e| setup(format!("{e:#}")))?;
                let sender =
                    ArpSender::open(*dev_index, mac).map_err(|source| DaemonError::Socket {
                        instance: spec.name.clone(),
                        what: format!("opening an ARP socket on {}", vip.dev),
                        source,
                    })?;
                e.insert(sender);
            }
            // Neighbour advertisements leave from the VIP interface's link-local address.
            if let (IpAddr::V6(_), Some(sender)) = (vip.address, self.arp.get_mut(dev_index)) {
                let source = present.get(dev_index).and_then(|a| link_local(a)).ok_or_else(|| {
                    setup(format!(
                        "{} has no IPv6 link-local address to send neighbour advertisements from",
                        vip.dev
                    ))
                })?;
                sender.set_link_local(source);
            }
        }

        let tx = TxSocket::open(&spec.interface, ifindex, primary).map_err(|source| {
            DaemonError::Socket {
                instance: spec.name.clone(),
                what: format!(
                    "opening the VRRP send socket on {} from {primary}",
                    spec.interface
                ),
                source,
            }
        })?;
        let family = wire::AddressFamily::of(primary);
        let destinations = if spec.unicast_peers.is_empty() {
            vec![vrrp_group(family)]
        } else {
            spec.unicast_peers
                .iter()
                .copied()
                .filter(|p| wire::AddressFamily::of(*p) == family)
                .collect()
        };

        let core_config = core_config(spec, primary);
        let core = Instance::new(core_config).map_err(|source| DaemonError::Core {
            instance: spec.name.clone(),
            source,
        })?;
        let mut local_addresses = local_addresses;
        if !local_addresses.contains(&primary) {
            local_addresses.push(primary);
        }
        Ok(Slot {
            spec: spec.clone(),
            core,
            ifindex,
            primary,
            tx,
            destinations,
            vips,
            vip_addresses,
            local_addresses,
            rx: RxCounters::default(),
            garp: GarpSchedule::default(),
            holds_vips: false,
            vip_generation: 0,
            acquiring: None,
            announce_pending: false,
            last_change: None,
            send_errors: 0,
            adverts_late: 0,
            advert_late_max_us: 0,
            vip_errors: 0,
            garps_sent: 0,
            nas_sent: 0,
            links,
            notify: Arc::new(NotifyCounters::default()),
            last_input: Instant::now(),
            xdp_rescues: 0,
            xdp_events: 0,
            retired: false,
            transitions_by_reason: Default::default(),
        })
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flat_map(|s| {
                s.core
                    .poll_timeout()
                    .into_iter()
                    .chain(s.garp.next_deadline())
            })
            .min()
    }

    async fn on_packet(&mut self, now: Instant, packet: Received) {
        let (meta, payload) = match packet.datagram.split() {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(ifindex = packet.ifindex, error = %e, "not a usable IP datagram");
                self.malformed_ip += 1;
                return;
            }
        };
        let family = ip_family(packet.datagram.family());
        let slot_index = validate::peek_vrid(payload)
            .and_then(|vrid| self.by_vrid.get(&(packet.ifindex, vrid, family)).copied());
        let Some(index) = slot_index else {
            let result = validate::validate(&meta, payload, &[], |_| None);
            self.unknown_vrid
                .entry(packet.ifindex)
                .or_default()
                .record(&result);
            return;
        };
        let slot = &mut self.slots[index];
        let result = validate::validate(&meta, payload, &slot.local_addresses, |_| {
            Some(slot.expected())
        });
        slot.rx.record(&result);
        match result {
            Ok(accepted) => {
                if accepted.address_list_mismatch {
                    tracing::warn!(instance = %slot.spec.name, from = %accepted.sender, "advert's address list differs from our virtual_ipaddress (accepted, RFC 5798 §7.1)");
                }
                let actions = slot.handle(
                    now,
                    Input::Advert {
                        src: accepted.sender,
                        advert: accepted.advert,
                    },
                );
                self.perform(index, now, actions).await;
            }
            Err(discard) => {
                tracing::debug!(instance = %slot.spec.name, from = %meta.src, reason = %discard, "advert discarded");
            }
        }
    }

    async fn on_link(&mut self, now: Instant, event: LinkEvent) {
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if slot.retired {
                continue;
            }
            let Some(up) = slot.links.get_mut(&event.ifindex) else {
                continue;
            };
            if *up == event.up {
                continue;
            }
            *up = event.up;
            tracing::info!(instance = %slot.spec.name, ifindex = event.ifindex, name = ?event.name, up = event.up, "link state changed");
            self.refresh_fault(index, now).await;
        }
    }

    /// A script's health or a file's value changed: recompute the priority offset and
    /// fault state of every instance that tracks `name`.
    async fn trackers_changed(&mut self, now: Instant, name: &str) {
        for index in 0..self.slots.len() {
            let spec = &self.slots[index].spec;
            let tracks = spec.track_scripts.iter().any(|t| t.name == name)
                || spec.track_files.iter().any(|t| t.name == name);
            if self.slots[index].retired || !tracks {
                continue;
            }
            let offset = self.priority_offset(index);
            if offset != self.slots[index].core.priority_offset() {
                let actions = self.slots[index].handle(now, Input::PriorityOffset(offset));
                self.perform(index, now, actions).await;
                tracing::info!(instance = %self.slots[index].spec.name, tracker = %name, priority = self.slots[index].core.effective_priority(), "tracked priority changed");
            }
            self.refresh_fault(index, now).await;
        }
    }

    /// keepalived's weights: a positive weight is added while the script is healthy, a
    /// negative one while it fails; weight 0 scripts cause FAULT instead.
    fn priority_offset(&self, index: usize) -> i32 {
        let spec = &self.slots[index].spec;
        let scripts: i32 = spec
            .track_scripts
            .iter()
            .filter_map(|t| {
                let healthy = *self.script_health.get(&t.name)?;
                let weight = i32::from(t.weight);
                match (weight > 0, weight < 0, healthy) {
                    (true, _, true) | (_, true, false) => Some(weight),
                    _ => None,
                }
            })
            .sum();
        // keepalived's track files: value × weight, capped by the config rules.
        let files: i32 = spec
            .track_files
            .iter()
            .filter_map(|t| {
                let file = self.track_files.iter().find(|f| f.name == t.name)?;
                let value = *self.file_values.get(&t.name)?;
                match config::track_file_effect(value, t.weight_with(file)) {
                    config::TrackFileEffect::Offset(offset) => Some(offset),
                    config::TrackFileEffect::Fault => None,
                }
            })
            .sum();
        scripts + files
    }

    /// Why the instance should be in FAULT now, if it should: a watched link is down, or
    /// a weight-0 track script fails.
    fn fault_reason(&self, index: usize) -> Option<FaultReason> {
        if let Some(reason) = self.own_fault(index) {
            return Some(reason);
        }
        // Sync group: FAULT wins (a member's fault takes the whole group down).
        let group = self.groups.iter().find(|g| g.members.contains(&index))?;
        group
            .members
            .iter()
            .any(|&m| m != index && self.own_fault(m).is_some())
            .then(|| FaultReason::Tracker {
                name: format!("sync group {}", group.spec.name),
            })
    }

    /// The instance's own fault sources: its links, weight-0 scripts, track files.
    fn own_fault(&self, index: usize) -> Option<FaultReason> {
        let slot = &self.slots[index];
        if slot.retired {
            return None;
        }
        if slot.links.values().any(|up| !up) {
            return Some(FaultReason::LinkDown);
        }
        let script = slot
            .spec
            .track_scripts
            .iter()
            .find(|t| t.weight == 0 && self.script_health.get(&t.name) == Some(&false))
            .map(|t| t.name.clone());
        let file = slot
            .spec
            .track_files
            .iter()
            .find(|t| {
                let Some(file) = self.track_files.iter().find(|f| f.name == t.name) else {
                    return false;
                };
                let value = self.file_values.get(&t.name).copied().unwrap_or(0);
                self.file_values.contains_key(&t.name)
                    && config::track_file_effect(value, t.weight_with(file))
                        == config::TrackFileEffect::Fault
            })
            .map(|t| t.name.clone());
        script.or(file).map(|name| FaultReason::Tracker { name })
    }

    /// Feeds the aggregate of all fault sources to the core.
    async fn refresh_fault(&mut self, index: usize, now: Instant) {
        let reason = self.fault_reason(index);
        let core = &self.slots[index].core;
        let input = match reason {
            Some(reason) if core.fault() != Some(&reason) => Input::Fault { reason },
            None if core.state() == State::Fault => Input::FaultCleared,
            _ => return,
        };
        let actions = self.slots[index].handle(now, input);
        self.perform(index, now, actions).await;
    }

    async fn on_timers(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            // The core may set a new deadline that is already due; bound the loop anyway.
            for _ in 0..8 {
                match self.slots[index].core.poll_timeout() {
                    Some(deadline) if deadline <= now => {
                        if self.rescue_from_xdp(index, now).await {
                            continue;
                        }
                        let slot = &mut self.slots[index];
                        if slot.core.state() == State::Master {
                            // A master's timer is its advert timer: how late is it?
                            let late = now.duration_since(deadline);
                            let late_us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
                            slot.advert_late_max_us = slot.advert_late_max_us.max(late_us);
                            if late > slot.spec.advert_interval {
                                slot.adverts_late += 1;
                            }
                        }
                        let actions = self.slots[index].handle(now, Input::Timeout);
                        self.perform(index, now, actions).await;
                    }
                    _ => break,
                }
            }
            self.run_garp(index, now);
        }
    }

    /// Attaches XDP to every interface an instance wants it on, and watches each
    /// instance's VRID there. `auto` falls back to no XDP with one warning.
    async fn attach_xdp(&mut self, indexes: &[usize]) -> Result<(), DaemonError> {
        let (pin, log, events) = (self.pin.clone(), self.xdp_log, self.xdp_tx.clone());
        for &index in indexes {
            let (ifindex, interface, mode) = {
                let slot = &self.slots[index];
                (slot.ifindex, slot.spec.interface.clone(), slot.spec.xdp)
            };
            let mode = match mode {
                config::XdpMode::Off => continue,
                config::XdpMode::Auto => AttachMode::Auto,
                config::XdpMode::Native => AttachMode::Native,
                config::XdpMode::Generic => AttachMode::Generic,
            };
            if let std::collections::hash_map::Entry::Vacant(entry) = self.xdp.entry(ifindex) {
                let options = AttachOptions {
                    mode,
                    log,
                    pin: Some(pin.clone()),
                };
                match XdpAttachment::attach_with(&interface, &options) {
                    Ok(mut attachment) => {
                        tracing::info!(%interface, mode = %attachment.mode(), taken_over = attachment.taken_over(), "XDP attached");
                        match attachment.take_events() {
                            Ok(reader) => spawn_xdp_events(reader, events.clone()),
                            Err(e) => {
                                tracing::warn!(%interface, error = %e, "no XDP advert events")
                            }
                        }
                        if log {
                            match attachment.take_logger() {
                                Ok(logger) => {
                                    tokio::spawn(logger.run());
                                }
                                Err(e) => tracing::warn!(%interface, error = %e, "no XDP log"),
                            }
                        }
                        entry.insert(attachment);
                    }
                    // A second vipd on this interface must not be papered over.
                    Err(BpfError::InterfaceLocked {
                        interface,
                        lock_path,
                        holder,
                    }) => {
                        return Err(DaemonError::InterfaceBusy {
                            interface,
                            holder,
                            lock: lock_path,
                        });
                    }
                    Err(e) if mode == AttachMode::Auto => {
                        tracing::warn!(%interface, error = %e, "XDP unavailable, running without it (adverts from the socket only, ARP answered by the kernel)");
                        continue;
                    }
                    Err(source) => {
                        return Err(DaemonError::Xdp {
                            interface,
                            source: Box::new(source),
                        });
                    }
                }
            }
            let slot = &self.slots[index];
            let cfg = slot.core.config();
            let spec = WatchSpec {
                version: cfg.version,
                auth: cfg.auth,
                silence: slot.core.master_down_interval(),
            };
            if let Some(attachment) = self.xdp.get_mut(&ifindex)
                && let Err(source) = attachment.watch(cfg.vrid, ip_family(slot.family()), &spec)
            {
                return Err(DaemonError::Xdp {
                    interface,
                    source: Box::new(source),
                });
            }
        }
        Ok(())
    }

    /// Takes this daemon's lock on `interface` (once; kept for the daemon's life):
    /// `<run dir>/<interface>.daemon.lock`, flock'ed, holding our pid. The kernel drops
    /// it when we die, however we die.
    fn lock_interface(&mut self, interface: &str) -> Result<(), DaemonError> {
        use std::io::{Read as _, Seek as _, Write as _};
        use std::os::fd::AsRawFd as _;
        if self.interface_locks.contains_key(interface) {
            return Ok(());
        }
        let lock = self.pin.lock_dir.join(format!("{interface}.daemon.lock"));
        let io_err = |source| DaemonError::Socket {
            instance: interface.to_owned(),
            what: format!("taking the interface lock {}", lock.display()),
            source,
        };
        std::fs::create_dir_all(&self.pin.lock_dir).map_err(io_err)?;
        let mut file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io_err)?;
        // SAFETY: a valid open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(DaemonError::InterfaceBusy {
                interface: interface.to_owned(),
                holder: holder.trim().to_owned(),
                lock,
            });
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "pid={}", std::process::id());
        self.interface_locks.insert(interface.to_owned(), file);
        Ok(())
    }

    /// Prepares `specs` as new slots (reusing retired ones), attaches XDP and opens
    /// receive sockets where needed. Returns the slots' indexes, ready for
    /// [`Daemon::start_instances`].
    async fn prepare_all(
        &mut self,
        specs: &[InstanceSpec],
        cleanup_stale: bool,
    ) -> Result<Vec<usize>, DaemonError> {
        let mut indexes = Vec::new();
        for spec in specs {
            let slot = self.prepare(spec, cleanup_stale).await?;
            let index = match self.slots.iter().position(|s| s.retired) {
                Some(free) => {
                    self.slots[free] = slot;
                    free
                }
                None => {
                    self.slots.push(slot);
                    self.slots.len() - 1
                }
            };
            self.by_vrid.insert(self.slots[index].key(), index);
            indexes.push(index);
        }
        self.attach_xdp(&indexes).await?;
        for &index in &indexes {
            let (ifindex, interface, family) = (
                self.slots[index].ifindex,
                self.slots[index].spec.interface.clone(),
                self.slots[index].family(),
            );
            if self.rx_sockets.contains(&(ifindex, family)) {
                continue;
            }
            let socket = RxSocket::open(&interface, ifindex, family).map_err(|source| {
                DaemonError::Socket {
                    instance: self.slots[index].spec.name.clone(),
                    what: format!("opening the {family} VRRP receive socket on {interface}"),
                    source,
                }
            })?;
            spawn_receiver(
                socket,
                ifindex,
                self.rx_tx.clone(),
                self.rx_queue_drops.clone(),
            );
            self.rx_sockets.insert((ifindex, family));
        }
        Ok(indexes)
    }

    /// RFC 5798 §6.4.1: leaves Initialize (into FAULT where a fault is already known;
    /// the core remembers it, and a later FaultCleared runs the startup rules).
    async fn start_instances(&mut self, indexes: &[usize], now: Instant) {
        for &index in indexes {
            if let Some(reason) = self.fault_reason(index) {
                let actions = self.slots[index].handle(now, Input::Fault { reason });
                self.perform(index, now, actions).await;
            }
            let actions = self.slots[index].handle(now, Input::Startup);
            self.perform(index, now, actions).await;
        }
    }

    /// (Re)starts one task per script that some instance tracks.
    fn start_trackers(&mut self, config: &Config) {
        for tracker in self.trackers.drain(..) {
            tracker.abort();
        }
        let tracked: std::collections::HashSet<&str> = config
            .instances
            .iter()
            .flat_map(|i| i.track_scripts.iter().map(|t| t.name.as_str()))
            .collect();
        // A script's health is re-measured from its first run after a (re)start.
        self.script_health.clear();
        self.trackers = config
            .scripts
            .iter()
            .filter(|s| tracked.contains(s.name.as_str()))
            .map(|s| track::spawn_script(s.clone(), self.track_tx.clone()))
            .collect();
        let files: std::collections::HashSet<&str> = config
            .instances
            .iter()
            .flat_map(|i| i.track_files.iter().map(|t| t.name.as_str()))
            .collect();
        self.file_values.clear();
        self.track_files = config.track_files.clone();
        self.trackers.extend(
            config
                .track_files
                .iter()
                .filter(|f| files.contains(f.name.as_str()))
                .map(|f| track::spawn_file(f.clone(), self.file_tx.clone())),
        );
    }

    /// Maps each sync group's member names to slots.
    fn build_groups(&mut self, config: &Config) {
        self.groups = config
            .sync_groups
            .iter()
            .map(|g| GroupRuntime {
                spec: g.clone(),
                members: g
                    .instances
                    .iter()
                    .filter_map(|name| {
                        self.slots
                            .iter()
                            .position(|s| !s.retired && &s.spec.name == name)
                    })
                    .collect(),
                state: None,
            })
            .collect();
        self.follow_queue.clear();
    }

    /// Brings sync groups to agreement after whatever just happened: members follow a
    /// member that changed state (FAULT through [`Daemon::fault_reason`], MASTER and
    /// BACKUP through [`Input::Follow`]), and a group whose state changed runs its
    /// notify commands.
    async fn settle_groups(&mut self, now: Instant) {
        if self.groups.is_empty() {
            return;
        }
        // Bounded: each round can only move members towards the group's state.
        for _ in 0..4 {
            let members: Vec<usize> = self.groups.iter().flat_map(|g| g.members.clone()).collect();
            for index in members {
                self.refresh_fault(index, now).await;
            }
            let queue = std::mem::take(&mut self.follow_queue);
            if queue.is_empty() {
                break;
            }
            for (index, follow) in queue {
                let actions = self.slots[index].handle(now, Input::Follow(follow));
                self.perform(index, now, actions).await;
            }
        }
        for g in 0..self.groups.len() {
            let states: Vec<State> = self.groups[g]
                .members
                .iter()
                .map(|&m| self.slots[m].core.state())
                .collect();
            let state = if states.contains(&State::Fault) {
                NotifyState::Fault
            } else if !states.is_empty() && states.iter().all(|s| *s == State::Master) {
                NotifyState::Master
            } else if states.iter().all(|s| *s != State::Initialize) {
                NotifyState::Backup
            } else {
                continue;
            };
            if self.groups[g].state != Some(state) {
                self.groups[g].state = Some(state);
                tracing::info!(group = %self.groups[g].spec.name, state = state.name(), "sync group state");
                if !self.reloading {
                    let counters = Arc::new(NotifyCounters::default());
                    let tasks = notify::on_group_state(&self.groups[g].spec, state, &counters);
                    self.notify_tasks.extend(tasks);
                }
            }
        }
    }

    /// Stops an instance for good (priority 0 if master, VIPs released) and frees its
    /// slot for reuse.
    async fn retire(&mut self, index: usize, now: Instant) {
        let actions = self.slots[index].handle(now, Input::Shutdown);
        self.perform(index, now, actions).await;
        if self.slots[index].holds_vips {
            self.release_vips(index);
        }
        let slot = &mut self.slots[index];
        if let Some(attachment) = self.xdp.get_mut(&slot.ifindex) {
            let _ = attachment.unwatch(slot.spec.virtual_router_id, ip_family(slot.family()));
        }
        self.by_vrid.remove(&slot.key());
        slot.retired = true;
        slot.garp = GarpSchedule::default();
    }

    /// SIGHUP: re-reads the configuration and applies the difference. Instances whose
    /// settings did not change are not touched; a changed instance is rebuilt in place
    /// (a master stays master without a gap and keeps the VIPs that stay configured);
    /// removed ones stop, new ones start. A configuration that does not load changes
    /// nothing: vipd goes on with the old one and says why.
    async fn reload(&mut self, path: Option<&std::path::Path>, socket: &std::path::Path) {
        let Some(path) = path else {
            tracing::warn!("SIGHUP ignored: vipd was not started from a configuration file");
            return;
        };
        let loaded = match config::load(path) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(file = %path.display(), "reload failed, keeping the running configuration:\n{e}");
                return;
            }
        };
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        let new = loaded.config;
        if new.global.control_socket != socket {
            tracing::warn!(new = %new.global.control_socket.display(), current = %socket.display(), "control_socket changes take effect at restart");
        }
        apply_scheduling(new.global.realtime_priority);
        self.mail = new.global.mail.clone();
        self.router_id = new.global.router_id.clone().unwrap_or_else(hostname);
        self.reloading = true;
        let now = Instant::now();
        let mut kept = 0;
        let mut rebuilt = Vec::new();
        let mut added = Vec::new();
        let active: Vec<usize> = (0..self.slots.len())
            .filter(|&i| !self.slots[i].retired)
            .collect();
        for index in active {
            let old = self.slots[index].spec.clone();
            match new.instances.iter().find(|i| i.name == old.name) {
                Some(spec) if *spec == old => kept += 1,
                // A changed family is another virtual router (own key, sockets, XDP
                // watch): that one stops and the new one starts.
                Some(spec)
                    if spec.interface == old.interface
                        && spec.virtual_router_id == old.virtual_router_id
                        && spec.family == old.family =>
                {
                    rebuilt.push((index, spec.clone()))
                }
                _ => {
                    tracing::info!(instance = %old.name, "reload: instance removed or moved, stopping it");
                    self.retire(index, now).await;
                }
            }
        }
        for spec in &new.instances {
            let known = self
                .slots
                .iter()
                .any(|s| !s.retired && s.spec.name == spec.name);
            if !known {
                added.push(spec.clone());
            }
        }
        for (index, spec) in &rebuilt {
            if let Err(e) = self.rebuild(*index, spec, now).await {
                tracing::error!(instance = %spec.name, error = %e, "reload: rebuilding the instance failed; it keeps its old settings");
            }
        }
        match self.prepare_all(&added, true).await {
            Ok(indexes) => self.start_instances(&indexes, now).await,
            Err(e) => tracing::error!(error = %e, "reload: starting new instances failed"),
        }
        self.start_trackers(&new);
        self.build_groups(&new);
        self.reloading = false;
        tracing::info!(
            kept,
            rebuilt = rebuilt.len(),
            added = added.len(),
            "configuration reloaded"
        );
    }

    /// Replaces an instance's settings in place. The new core starts as master when the
    /// old one was master (so the VIPs never leave), otherwise by the RFC's startup rules.
    async fn rebuild(
        &mut self,
        index: usize,
        spec: &InstanceSpec,
        now: Instant,
    ) -> Result<(), DaemonError> {
        let was_master = self.slots[index].core.state() == State::Master;
        let old_vips: Vec<(u32, config::VirtualAddress)> = self.slots[index].vips.clone();
        let mut spec = spec.clone();
        let mut slot = self.prepare(&spec, false).await?;
        // Dropped VIPs leave now; the ones that stay are re-added idempotently.
        if self.slots[index].holds_vips {
            // Through the worker, after any add still queued for the old list.
            let dropped: Vec<_> = old_vips
                .into_iter()
                .filter(|(_, vip)| !slot.vips.iter().any(|(_, v)| v.address == vip.address))
                .collect();
            if !dropped.is_empty() {
                self.queue_vips(index, false, dropped);
            }
        }
        if was_master {
            spec.initial_state = config::InitialState::Master;
            let mut cfg = core_config(&spec, slot.primary);
            cfg.initial_state = core::InitialState::Master;
            slot.core = Instance::new(cfg).map_err(|source| DaemonError::Core {
                instance: spec.name.clone(),
                source,
            })?;
        }
        let old = std::mem::replace(&mut self.slots[index], slot);
        let slot = &mut self.slots[index];
        slot.rx = old.rx;
        slot.notify = old.notify;
        slot.transitions_by_reason = old.transitions_by_reason;
        slot.last_input = old.last_input;
        slot.holds_vips = old.holds_vips;
        // Completions of the old slot's jobs must not match the new slot's.
        slot.vip_generation = old.vip_generation;
        self.attach_xdp(&[index]).await?;
        self.start_instances(&[index], now).await;
        Ok(())
    }

    /// A Backup's Master_Down_Timer is due. If the XDP program heard the master more
    /// recently than the socket delivered (a full socket queue under a flood drops
    /// adverts after XDP has seen them), feed that advert instead of declaring the
    /// master dead. Returns whether it did.
    async fn rescue_from_xdp(&mut self, index: usize, now: Instant) -> bool {
        let slot = &self.slots[index];
        if slot.core.state() != State::Backup {
            return false;
        }
        let Some(attachment) = self.xdp.get(&slot.ifindex) else {
            return false;
        };
        let Ok(Some(observed)) =
            attachment.observed(slot.spec.virtual_router_id, ip_family(slot.family()))
        else {
            return false;
        };
        let seen_at = observed.last_seen_at(now, monotonic_now_ns());
        if slot.local_addresses.contains(&observed.source)
            || observed.priority == 0
            || seen_at <= slot.last_input
            || now.saturating_duration_since(seen_at) >= slot.core.master_down_interval()
        {
            return false;
        }
        let advert = synthetic_advert(slot, observed.priority, observed.interval);
        let slot = &mut self.slots[index];
        slot.xdp_rescues += 1;
        tracing::debug!(instance = %slot.spec.name, from = %observed.source, "master heard by XDP, not yet by the socket");
        let actions = slot.handle(
            seen_at,
            Input::Advert {
                src: observed.source,
                advert,
            },
        );
        self.perform(index, now, actions).await;
        true
    }

    /// A ring-buffer event: the election acts at once on what changed (priority 0, a
    /// new or re-prioritised master) instead of waiting for the socket.
    async fn on_xdp_event(&mut self, now: Instant, event: AdvertEvent) {
        let Some(&index) = self.by_vrid.get(&(event.ifindex, event.vrid, event.family)) else {
            return;
        };
        let slot = &mut self.slots[index];
        if slot.local_addresses.contains(&event.source) {
            return;
        }
        slot.xdp_events += 1;
        let advert = synthetic_advert(slot, event.priority, event.interval);
        let seen_at = now
            .checked_sub(Duration::from_nanos(
                monotonic_now_ns().saturating_sub(event.seen_ns),
            ))
            .unwrap_or(now);
        let actions = slot.handle(
            seen_at,
            Input::Advert {
                src: event.source,
                advert,
            },
        );
        self.perform(index, now, actions).await;
    }

    /// Points the XDP program of each VIP's interface at this instance's lease clock
    /// (slot = instance index), answering ARP with that interface's MAC.
    fn claim_leases(&mut self, index: usize) {
        let slot = &self.slots[index];
        for (dev_index, vip) in &slot.vips {
            let (Some(attachment), IpAddr::V4(vip)) = (self.xdp.get_mut(dev_index), vip.address)
            else {
                continue;
            };
            let mac = self.arp.get(dev_index).map(|a| a.mac()).unwrap_or_default();
            if let Err(e) = attachment.set_vip_clocked(vip, mac, index as u32) {
                tracing::warn!(instance = %slot.spec.name, %vip, error = %e, "writing the XDP ARP lease failed");
            }
        }
    }

    /// Renews (or, with `live` false, voids) the instance's lease clock: one map write
    /// per interface, however many VIPs. A void lease keeps the VIPs in the map, so the
    /// program drops ARP requests for them and this host's kernel cannot answer for a
    /// VIP it no longer owns.
    fn set_lease_clock(&mut self, index: usize, live: bool) {
        let slot = &self.slots[index];
        let expires = if live {
            monotonic_now_ns().saturating_add(slot.lease_duration().as_nanos() as u64)
        } else {
            0
        };
        // Only IPv4 VIPs have leases (the XDP responder answers ARP; the kernel answers
        // neighbour solicitations for IPv6 VIPs once they are on the interface).
        let mut devices: Vec<u32> = slot
            .vips
            .iter()
            .filter(|(_, vip)| vip.address.is_ipv4())
            .map(|(dev, _)| *dev)
            .collect();
        devices.dedup();
        for dev_index in devices {
            if let Some(attachment) = self.xdp.get_mut(&dev_index)
                && let Err(e) = attachment.set_lease_clock(index as u32, expires)
            {
                tracing::warn!(instance = %slot.spec.name, error = %e, "renewing the XDP ARP lease failed");
            }
        }
    }

    /// After our priority-0 adverts: waits until each handed-over instance hears a new
    /// master (an advert with priority > 0 from another router), at most a backup's
    /// Skew_Time plus a few advert intervals and never more than 400 ms, so SIGTERM still
    /// exits well within a second when no backup exists.
    async fn await_successors(
        &mut self,
        packets: &mut mpsc::Receiver<Received>,
        events: &mut mpsc::Receiver<AdvertEvent>,
        handing_over: &[usize],
    ) {
        let mut waiting: Vec<usize> = handing_over.to_vec();
        if waiting.is_empty() {
            return;
        }
        let longest = waiting
            .iter()
            .map(|&i| self.slots[i].core.config().advert_interval.as_duration() * 4)
            .max()
            .unwrap_or_default();
        let deadline = tokio::time::Instant::now()
            + longest.clamp(Duration::from_millis(20), Duration::from_millis(400));
        while !waiting.is_empty() && tokio::time::Instant::now() < deadline {
            let heard = tokio::select! {
                Some(packet) = packets.recv() => self.new_master_in(&packet),
                Some(event) = events.recv() => (event.priority > 0)
                    .then(|| self.by_vrid.get(&(event.ifindex, event.vrid, event.family)).copied())
                    .flatten()
                    .filter(|&i| !self.slots[i].local_addresses.contains(&event.source)),
                _ = tokio::time::sleep_until(deadline) => break,
            };
            if let Some(index) = heard {
                waiting.retain(|&i| i != index);
            }
        }
        for index in waiting {
            tracing::info!(instance = %self.slots[index].spec.name, "no new master heard; releasing the VIPs anyway");
        }
    }

    /// The instance for which `packet` is a valid advert with priority > 0 from another
    /// router, if any.
    fn new_master_in(&self, packet: &Received) -> Option<usize> {
        let (meta, payload) = packet.datagram.split().ok()?;
        let vrid = validate::peek_vrid(payload)?;
        let family = ip_family(packet.datagram.family());
        let index = *self.by_vrid.get(&(packet.ifindex, vrid, family))?;
        let slot = &self.slots[index];
        let accepted = validate::validate(&meta, payload, &slot.local_addresses, |_| {
            Some(slot.expected())
        })
        .ok()?;
        (accepted.advert.priority > 0).then_some(index)
    }

    /// Performs the core's actions in order.
    async fn perform(&mut self, index: usize, now: Instant, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::SendAdvert(advert) => {
                    self.send_advert(index, &advert);
                    // Every advert a master sends renews its ARP leases.
                    let slot = &self.slots[index];
                    if advert.priority != 0 && slot.holds_vips && slot.acquiring.is_none() {
                        self.set_lease_clock(index, true);
                    }
                }
                Action::AcquireVips { accept } => {
                    if !accept {
                        tracing::debug!(instance = %self.slots[index].spec.name, "accept_mode off: traffic to the VIPs is not filtered (as keepalived without vrrp_strict)");
                    }
                    self.acquire_vips(index);
                }
                Action::ReleaseVips => self.release_vips(index),
                Action::Announce if self.slots[index].acquiring.is_some() => {
                    self.slots[index].announce_pending = true;
                }
                Action::Announce => self.start_garp(index, now),
                Action::StateChanged { from, to, reason } => {
                    let slot = &mut self.slots[index];
                    slot.last_change = Some(SystemTime::now());
                    *slot
                        .transitions_by_reason
                        .entry(reason_name(&reason))
                        .or_insert(0) += 1;
                    if to != State::Master {
                        slot.garp = GarpSchedule::default();
                    }
                    tracing::info!(
                        instance = %slot.spec.name,
                        interface = %slot.spec.interface,
                        vrid = slot.spec.virtual_router_id,
                        from = %state_name(from),
                        to = %state_name(to),
                        reason = ?reason,
                        priority = slot.core.effective_priority(),
                        "state change"
                    );
                    if from == State::Master
                        && to == State::Backup
                        && reason == crate::proto::action::Reason::HigherPriorityAdvert
                    {
                        // Beyond the RFC: one last advert at our priority as we yield.
                        // Neighbours may still send the VIPs' traffic to us (after a
                        // partition heals, say, our gratuitous ARPs are their latest
                        // news); the winner answers a lower-priority advert by
                        // announcing the VIPs again, so they come back to it at once.
                        let advert = self.slots[index]
                            .core
                            .advert_repr(self.slots[index].core.effective_priority());
                        self.send_advert(index, &advert);
                    }
                    if !self.reloading && reason != crate::proto::action::Reason::SyncGroup {
                        let follow = match (from, to) {
                            (_, State::Master) => Some(Follow::Master),
                            (State::Master, State::Backup) => Some(Follow::Backup),
                            _ => None,
                        };
                        if let (Some(follow), Some(group)) = (
                            follow,
                            self.groups.iter().find(|g| g.members.contains(&index)),
                        ) {
                            for &member in &group.members {
                                if member != index {
                                    self.follow_queue.push((member, follow));
                                }
                            }
                        }
                    }
                    let slot = &self.slots[index];
                    let notify_state = match to {
                        State::Master => Some(NotifyState::Master),
                        State::Backup => Some(NotifyState::Backup),
                        State::Fault => Some(NotifyState::Fault),
                        State::Initialize if from != State::Initialize => Some(NotifyState::Stop),
                        State::Initialize => None,
                    };
                    if let Some(state) = notify_state.filter(|_| !self.reloading) {
                        let tasks = notify::on_state(
                            &slot.spec,
                            state,
                            slot.core.effective_priority(),
                            self.mail.as_ref(),
                            &self.router_id,
                            &slot.notify,
                        );
                        self.notify_tasks.retain(|t| !t.is_finished());
                        self.notify_tasks.extend(tasks);
                    }
                }
            }
        }
    }

    fn send_advert(&mut self, index: usize, advert: &AdvertRepr) {
        let slot = &mut self.slots[index];
        let mut buffer = vec![0u8; advert.buffer_len()];
        for destination in slot.destinations.clone() {
            let mut packet = Packet::new_unchecked(&mut buffer[..], slot.family());
            // The checksum covers the pseudo-header of this source and destination, which
            // the send socket uses as they are: the kernel need not compute it.
            let result = advert
                .emit(&mut packet, slot.primary, destination)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|()| slot.tx.send(&buffer, destination));
            if let Err(e) = result {
                slot.send_errors += 1;
                tracing::warn!(instance = %slot.spec.name, %destination, error = %e, "sending advert failed");
            }
        }
    }

    /// Queues adding (or removing) `vips` for slot `index` on the VIP worker; returns
    /// the job's generation. Never waits: a master with thousands of VIPs keeps sending
    /// adverts while the kernel adds them (IPv6 addresses cost the kernel ~150 µs each).
    fn queue_vips(
        &mut self,
        index: usize,
        add: bool,
        vips: Vec<(u32, config::VirtualAddress)>,
    ) -> u64 {
        let slot = &mut self.slots[index];
        slot.vip_generation += 1;
        let job = VipJob {
            index,
            generation: slot.vip_generation,
            add,
            vips,
            done: None,
        };
        if self.vip_jobs.send(job).is_err() {
            tracing::error!(instance = %slot.spec.name, "the VIP worker has stopped; VIPs not changed");
        }
        slot.vip_generation
    }

    /// Waits until every VIP change queued so far is done.
    async fn vips_settled(&self) {
        let (done, finished) = tokio::sync::oneshot::channel();
        let barrier = VipJob {
            index: usize::MAX,
            generation: 0,
            add: false,
            vips: Vec::new(),
            done: Some(done),
        };
        if self.vip_jobs.send(barrier).is_ok() {
            let _ = finished.await;
        }
    }

    /// A VIP job finished: count and log failures; a completed add claims the XDP
    /// leases and starts the announcements the core asked for meanwhile.
    fn on_vips_changed(&mut self, now: Instant, done: VipDone) {
        let Some(slot) = self.slots.get_mut(done.index) else {
            return;
        };
        for (vip, error) in &done.failures {
            slot.vip_errors += 1;
            let what = if done.add {
                "adding VIP failed"
            } else {
                "removing VIP failed"
            };
            tracing::error!(instance = %slot.spec.name, %vip, error = %error, "{what}");
        }
        if !done.add || slot.acquiring != Some(done.generation) {
            return;
        }
        slot.acquiring = None;
        if !slot.holds_vips {
            return;
        }
        self.claim_leases(done.index);
        self.set_lease_clock(done.index, true);
        if std::mem::take(&mut self.slots[done.index].announce_pending)
            && self.slots[done.index].core.state() == State::Master
        {
            self.start_garp(done.index, now);
        }
    }

    fn acquire_vips(&mut self, index: usize) {
        let vips = self.slots[index].vips.clone();
        let generation = self.queue_vips(index, true, vips);
        let slot = &mut self.slots[index];
        slot.holds_vips = true;
        slot.acquiring = Some(generation);
    }

    fn release_vips(&mut self, index: usize) {
        let vips = self.slots[index].vips.clone();
        self.queue_vips(index, false, vips);
        let slot = &mut self.slots[index];
        slot.holds_vips = false;
        slot.acquiring = None;
        slot.announce_pending = false;
        self.set_lease_clock(index, false);
    }

    /// A new master announces its VIPs: a burst of `garp_master_repeat` rounds
    /// `garp_interval` apart now, the same again after `garp_master_delay`, and a round
    /// every `garp_master_refresh` while master.
    fn start_garp(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        let garp = &slot.spec.garp;
        let repeat = garp.master_repeat.max(1);
        let mut rounds = Vec::new();
        for burst_start in [
            Some(now),
            (!garp.master_delay.is_zero()).then(|| now + garp.master_delay),
        ]
        .into_iter()
        .flatten()
        {
            for i in 0..repeat {
                rounds.push(burst_start + garp.interval * i);
            }
        }
        rounds.sort();
        slot.garp = GarpSchedule {
            rounds,
            refresh_at: (!garp.master_refresh.is_zero()).then(|| now + garp.master_refresh),
            ..GarpSchedule::default()
        };
        // Directed ARP to the gateways (who-has GW tell VIP): for neighbours that ignore
        // gratuitous ARP, such as the upstream firewall in the seed setup.
        for _ in 0..garp.gateway_count {
            for gateway in &garp.gateways {
                let IpAddr::V4(gateway) = *gateway else {
                    continue;
                };
                for (dev_index, vip) in &slot.vips {
                    let (Some(sender), IpAddr::V4(vip)) = (self.arp.get(dev_index), vip.address)
                    else {
                        continue;
                    };
                    if let Err(e) = sender.directed(vip, gateway) {
                        tracing::warn!(instance = %slot.spec.name, %gateway, error = %e, "directed ARP failed");
                    }
                }
            }
        }
        self.run_garp(index, now);
    }

    fn run_garp(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        let mut due = 0;
        while slot.garp.rounds.first().is_some_and(|t| *t <= now) {
            slot.garp.rounds.remove(0);
            due += 1;
        }
        if let Some(refresh) = slot.garp.refresh_at.filter(|t| *t <= now) {
            due += 1;
            slot.garp.refresh_at = Some(refresh.max(now) + slot.spec.garp.master_refresh);
        }
        if slot.core.state() != State::Master || slot.vips.is_empty() {
            slot.garp.backlog = 0;
            slot.garp.continue_at = None;
            return;
        }
        slot.garp.backlog += due * slot.vips.len();
        let turn = slot.garp.backlog.min(GARP_BUDGET);
        for _ in 0..turn {
            let (dev_index, vip) = &slot.vips[slot.garp.cursor % slot.vips.len()];
            slot.garp.cursor = (slot.garp.cursor + 1) % slot.vips.len();
            let Some(sender) = self.arp.get(dev_index) else {
                continue;
            };
            // IPv4 VIPs get gratuitous ARP, IPv6 VIPs an unsolicited NA (RFC 5798 §8.2).
            let (result, sent, what) = match vip.address {
                IpAddr::V4(v4) => (
                    sender.gratuitous(v4),
                    &mut slot.garps_sent,
                    "gratuitous ARP",
                ),
                IpAddr::V6(v6) => (
                    sender.neighbour_advert(v6),
                    &mut slot.nas_sent,
                    "neighbour advertisement",
                ),
            };
            match result {
                Ok(()) => *sent += 1,
                Err(e) => {
                    tracing::warn!(instance = %slot.spec.name, vip = %vip.address, error = %e, "{what} failed")
                }
            }
        }
        slot.garp.backlog -= turn;
        slot.garp.continue_at = (slot.garp.backlog > 0).then_some(now);
    }

    /// Counters not tied to one instance: datagrams for VRIDs nobody here runs (by
    /// reason), malformed IP, and receive-queue overflow between socket and daemon loop.
    fn counters(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for counters in self.unknown_vrid.values() {
            for (name, value) in counters.iter() {
                *out.entry(format!("unconfigured_rx_{name}")).or_insert(0) += value;
            }
        }
        out.insert("rx_malformed_ip".into(), self.malformed_ip);
        out.insert(
            "rx_queue_drops".into(),
            self.rx_queue_drops
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        out
    }

    fn status(&self) -> DaemonStatus {
        let now = Instant::now();
        let wall = SystemTime::now();
        DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            uptime_seconds: now.duration_since(self.started).as_secs_f64(),
            instances: self
                .slots
                .iter()
                .map(|s| slot_status(s, now, wall))
                .collect(),
            xdp: self
                .xdp
                .values()
                .map(|a| control::XdpStatus {
                    interface: a.interface().to_owned(),
                    mode: a.mode().to_string(),
                    counters: a
                        .stats()
                        .map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                        .unwrap_or_default(),
                })
                .collect(),
            counters: self.counters(),
        }
    }
}

fn slot_status(slot: &Slot, now: Instant, wall: SystemTime) -> InstanceStatus {
    let core = &slot.core;
    let mut counters: std::collections::BTreeMap<String, u64> = slot
        .rx
        .iter()
        .map(|(name, value)| (format!("rx_{name}"), value))
        .collect();
    let c = core.counters();
    for (name, value) in [
        ("adverts_sent", c.adverts_sent),
        ("adverts_received", c.adverts_received),
        ("adverts_discarded_lower_priority", c.adverts_discarded),
        ("priority_zero_sent", c.priority_zero_sent),
        ("priority_zero_received", c.priority_zero_received),
        ("transitions", c.transitions),
        ("became_master", c.became_master),
        ("reassertions", c.reassertions),
        ("send_errors", slot.send_errors),
        ("adverts_late", slot.adverts_late),
        ("advert_late_max_us", slot.advert_late_max_us),
        ("vip_errors", slot.vip_errors),
        ("garps_sent", slot.garps_sent),
        ("neighbour_adverts_sent", slot.nas_sent),
        ("xdp_rescued_adverts", slot.xdp_rescues),
        ("xdp_events", slot.xdp_events),
        (
            "notify_commands_run",
            slot.notify.commands_run.load(Ordering::Relaxed),
        ),
        (
            "notify_command_failures",
            slot.notify.command_failures.load(Ordering::Relaxed),
        ),
        ("mails_sent", slot.notify.mails_sent.load(Ordering::Relaxed)),
        (
            "mail_failures",
            slot.notify.mail_failures.load(Ordering::Relaxed),
        ),
    ] {
        counters.insert(name.to_owned(), value);
    }
    let master_address = match core.state() {
        State::Master => Some(slot.primary.to_string()),
        _ => core.master_address().map(|a| a.to_string()),
    };
    InstanceStatus {
        name: slot.spec.name.clone(),
        interface: slot.spec.interface.clone(),
        vrid: slot.spec.virtual_router_id,
        family: match slot.family() {
            wire::AddressFamily::Ipv4 => "ipv4",
            wire::AddressFamily::Ipv6 => "ipv6",
        }
        .into(),
        version: core.config().version.number(),
        state: state_name(core.state()).to_owned(),
        priority: core.priority(),
        effective_priority: core.effective_priority(),
        master_address,
        primary_address: slot.primary.to_string(),
        virtual_addresses: slot
            .spec
            .virtual_addresses
            .iter()
            .map(|v| format!("{}/{}", v.address, v.prefix_len))
            .collect(),
        advert_interval_ms: core.master_adver_interval().as_duration().as_millis() as u64,
        last_transition: core.last_transition().map(|t| {
            let ago = now.saturating_duration_since(t.at);
            TransitionStatus {
                from: state_name(t.from).to_owned(),
                to: state_name(t.to).to_owned(),
                reason: format!("{:?}", t.reason),
                seconds_ago: ago.as_secs_f64(),
                at: humantime::format_rfc3339_millis(slot.last_change.unwrap_or(wall - ago))
                    .to_string(),
            }
        }),
        counters,
        transitions_by_reason: slot.transitions_by_reason.clone(),
    }
}

/// A transition reason as a short label (`MasterDown`, `Fault`, ...).
fn reason_name(reason: &crate::proto::action::Reason) -> String {
    let debug = format!("{reason:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
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

/// The host name, for mail subjects when no router_id is configured.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "vipd".to_owned())
}

/// The seed setup's pitfall: a service binding the VIP on a backup fails unless
/// net.ipv4.ip_nonlocal_bind is 1. Say so once.
fn hint_nonlocal_bind() {
    if let Ok(value) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_nonlocal_bind")
        && value.trim() == "0"
    {
        tracing::info!(
            "hint: net.ipv4.ip_nonlocal_bind is 0; services that bind a VIP on a backup will fail to start until it is 1 (sysctl -w net.ipv4.ip_nonlocal_bind=1)"
        );
    }
}

/// One batch of VIP changes for the [`vip_worker`]. A job with `done` set and no VIPs is a
/// barrier: its sender learns that everything queued before it is finished.
struct VipJob {
    index: usize,
    generation: u64,
    add: bool,
    vips: Vec<(u32, config::VirtualAddress)>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

/// What a [`VipJob`] did, for the main loop.
struct VipDone {
    index: usize,
    generation: u64,
    add: bool,
    failures: Vec<(IpAddr, String)>,
}

/// Adds and removes VIPs over rtnetlink, one job after another so an instance's add and
/// a later removal can never swap; within a job many requests are in flight at once.
/// The main loop queues jobs and goes on sending adverts (see [`Daemon::queue_vips`]).
async fn vip_worker(
    netlink: Netlink,
    mut jobs: mpsc::UnboundedReceiver<VipJob>,
    done: mpsc::UnboundedSender<VipDone>,
) {
    use futures_util::StreamExt as _;
    while let Some(job) = jobs.recv().await {
        let add = job.add;
        let real = !job.vips.is_empty();
        let failures: Vec<(IpAddr, String)> = futures_util::stream::iter(job.vips)
            .map(|(dev_index, vip)| {
                let netlink = netlink.clone();
                async move {
                    let result = if add {
                        netlink
                            .add_address(
                                dev_index,
                                vip.address,
                                vip.prefix_len,
                                vip.label.as_deref(),
                            )
                            .await
                    } else {
                        netlink
                            .del_address(dev_index, vip.address, vip.prefix_len)
                            .await
                    };
                    result.err().map(|e| (vip.address, e.to_string()))
                }
            })
            .buffer_unordered(64)
            .filter_map(std::future::ready)
            .collect()
            .await;
        if let Some(barrier) = job.done {
            let _ = barrier.send(());
        }
        if real {
            let _ = done.send(VipDone {
                index: job.index,
                generation: job.generation,
                add,
                failures,
            });
        }
    }
}
