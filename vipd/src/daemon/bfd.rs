//! BFD sessions in the driver: sockets, timers, and what a session's state means for
//! the VRRP instances that track it. The session logic is `proto::bfd`; the rules for
//! instances are `proto::health::add_bfd` (weight / FAULT) and
//! `Input::PeerDown` (a peer's session Down is Master_Down).
//!
//! Everything runs on the daemon's thread (SCHED_RR when configured), so packets go out
//! from the real-time thread and a CPU hog cannot delay them any more than adverts.

use std::collections::BTreeMap;
use std::hash::{BuildHasher as _, Hasher as _};

use super::*;
use crate::io::bfd::{BfdDatagram, BfdRxSocket, BfdTxSocket};
use crate::proto::bfd::{self as core_bfd, SessionKey, SessionState};

/// One configured BFD session and what the driver keeps for it.
pub(super) struct BfdSlot {
    pub(super) spec: config::BfdInstance,
    pub(super) session: core_bfd::Session,
    tx: BfdTxSocket,
    /// The latest `now` handed to the session (time only moves forward for it).
    last_input: Instant,
    send_errors: u64,
    last_change: Option<SystemTime>,
    /// When the session last accepted a packet (from the socket or an XDP record).
    last_rx: Option<Instant>,
    /// Packets the XDP record showed that the socket had not delivered when the
    /// Detection Time ran out (each one a false Down avoided).
    xdp_rescues: u64,
    /// The latest the loop ran a due deadline of this session, in microseconds: how
    /// starved the daemon's thread was (a late transmission looks like a lost one to
    /// the neighbour).
    timer_late_max_us: u64,
}

/// The BFD side of the daemon.
pub(super) struct BfdRuntime {
    pub(super) slots: Vec<BfdSlot>,
    keys: Vec<SessionKey>,
    /// Families with a receive socket (false: IPv4, true: IPv6).
    receiving: std::collections::HashSet<bool>,
    rx_tx: mpsc::Sender<BfdDatagram>,
    /// Datagrams no session took, by reason.
    discards: BTreeMap<String, u64>,
    /// Datagrams dropped because the daemon loop fell behind.
    queue_drops: Arc<std::sync::atomic::AtomicU64>,
}

/// A random u64 from std's per-process hasher keys (not for secrets: discriminators
/// and jitter need only differ between sessions and restarts).
fn random_u64(salt: u64) -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(salt);
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

impl BfdRuntime {
    pub(super) fn new(rx_tx: mpsc::Sender<BfdDatagram>) -> Self {
        BfdRuntime {
            slots: Vec::new(),
            keys: Vec::new(),
            receiving: std::collections::HashSet::new(),
            rx_tx,
            discards: BTreeMap::new(),
            queue_drops: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Replaces every session by those of `sessions` (a reload that changed them; the
    /// caller has sent the old ones' AdminDown). The receive sockets stay.
    pub(super) fn restart(
        &mut self,
        sessions: &[config::BfdInstance],
        now: Instant,
    ) -> Result<(), DaemonError> {
        self.slots.clear();
        self.keys.clear();
        self.start(sessions, now)
    }

    /// The configured sessions, for a reload to compare with.
    pub(super) fn specs(&self) -> Vec<config::BfdInstance> {
        self.slots.iter().map(|s| s.spec.clone()).collect()
    }

    /// Opens sockets and creates a session for every `bfd_instance`. A session whose
    /// socket cannot be opened is an error: tracking it would fault the instance forever.
    pub(super) fn start(
        &mut self,
        sessions: &[config::BfdInstance],
        now: Instant,
    ) -> Result<(), DaemonError> {
        let socket_error = |name: &str, what: &str, source| DaemonError::Socket {
            instance: format!("bfd {name}"),
            what: what.to_owned(),
            source,
        };
        for spec in sessions {
            let v6 = spec.neighbor.is_ipv6();
            if !self.receiving.contains(&v6) {
                let socket = BfdRxSocket::open(v6)
                    .map_err(|e| socket_error(&spec.name, "binding UDP port 3784 for BFD", e))?;
                spawn_bfd_receiver(socket, self.rx_tx.clone(), self.queue_drops.clone());
                self.receiving.insert(v6);
            }
            let random = random_u64(self.slots.len() as u64);
            // Nonzero and distinct among ours (RFC 5880 §6.8.1).
            let mut discriminator = (random as u32).max(1);
            while self
                .keys
                .iter()
                .any(|k| k.local_discriminator == discriminator)
            {
                discriminator = discriminator.wrapping_add(1).max(1);
            }
            let preferred_port = 49152 + (random >> 32) as u16 % 16384;
            let tx = BfdTxSocket::open(spec.neighbor, spec.source, spec.ttl, preferred_port)
                .map_err(|e| socket_error(&spec.name, "opening the BFD send socket", e))?;
            let session_config = core_bfd::SessionConfig {
                local_discriminator: discriminator,
                desired_min_tx: spec.min_tx,
                required_min_rx: spec.min_rx,
                detect_mult: spec.multiplier,
                idle_tx: spec.idle_tx,
                passive: spec.passive,
            };
            let session = core_bfd::Session::new(session_config, now, random).map_err(|e| {
                DaemonError::Setup {
                    instance: format!("bfd {}", spec.name),
                    message: e.to_string(),
                }
            })?;
            tracing::info!(bfd = %spec.name, neighbor = %spec.neighbor, discriminator, source_port = tx.port(), "BFD session created");
            self.keys.push(SessionKey {
                local_discriminator: discriminator,
                neighbor: spec.neighbor,
                min_ttl: 255u8.saturating_sub(spec.max_hops),
            });
            self.slots.push(BfdSlot {
                spec: spec.clone(),
                session,
                tx,
                last_input: now,
                send_errors: 0,
                last_change: None,
                last_rx: None,
                xdp_rescues: 0,
                timer_late_max_us: 0,
            });
        }
        Ok(())
    }

    /// The earliest deadline of any session.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| s.session.poll_timeout())
            .min()
    }

    /// Whether `name`'s session is Up.
    pub(super) fn is_up(&self, name: &str) -> bool {
        self.slots
            .iter()
            .any(|s| s.spec.name == name && s.session.state() == SessionState::Up)
    }

    /// Status lines for `vipd status`.
    pub(super) fn status(&self) -> Vec<control::BfdStatus> {
        self.slots
            .iter()
            .map(|s| {
                let counters = s.session.counters();
                control::BfdStatus {
                    name: s.spec.name.clone(),
                    neighbor: s.spec.neighbor.to_string(),
                    state: s.session.state().to_string(),
                    remote_state: s.session.remote_state().to_string(),
                    diagnostic: s.session.local_diag().to_string(),
                    local_discriminator: s.session.local_discriminator(),
                    remote_discriminator: s.session.remote_discriminator(),
                    transmit_interval_us: u64::try_from(s.session.transmit_interval().as_micros())
                        .unwrap_or(u64::MAX),
                    detection_time_us: u64::try_from(s.session.detection_time().as_micros())
                        .unwrap_or(u64::MAX),
                    sent: counters.sent,
                    received: counters.received,
                    discarded: counters.discarded,
                    up_count: counters.up,
                    down_count: counters.down,
                    send_errors: s.send_errors,
                    xdp_rescues: s.xdp_rescues,
                    timer_late_max_us: s.timer_late_max_us,
                    last_change_unix: s.last_change.and_then(|t| {
                        t.duration_since(SystemTime::UNIX_EPOCH)
                            .ok()
                            .map(|d| d.as_secs_f64())
                    }),
                }
            })
            .collect()
    }

    /// Daemon-wide BFD counters.
    pub(super) fn counters(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.discards
            .iter()
            .map(|(reason, n)| (format!("bfd_discarded_{reason}"), *n))
            .chain(std::iter::once((
                "bfd_rx_queue_drops".to_owned(),
                self.queue_drops.load(Ordering::Relaxed),
            )))
    }
}

fn spawn_bfd_receiver(
    socket: BfdRxSocket,
    queue: mpsc::Sender<BfdDatagram>,
    drops: Arc<std::sync::atomic::AtomicU64>,
) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 512];
        loop {
            match socket.recv(&mut buf).await {
                Ok(datagram) => {
                    if queue.try_send(datagram).is_err() {
                        drops.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "BFD receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
}

/// The counter name of a discard reason.
fn discard_name(discard: &core_bfd::Discard) -> &'static str {
    match discard {
        core_bfd::Discard::Ttl { .. } => "ttl",
        core_bfd::Discard::SourcePort { .. } => "source_port",
        core_bfd::Discard::Wire(_) => "malformed",
        core_bfd::Discard::NoSession { .. } => "no_session",
        core_bfd::Discard::UnknownNeighbor { .. } => "unknown_neighbor",
    }
}

impl Daemon {
    /// A datagram from a BFD receive socket.
    pub(super) async fn on_bfd_datagram(&mut self, now: Instant, datagram: BfdDatagram) {
        let bfd = &mut self.bfd;
        let received = core_bfd::receive(
            &bfd.keys,
            datagram.src.ip(),
            datagram.src.port(),
            datagram.ttl,
            &datagram.payload,
        );
        let (index, packet) = match received {
            Ok(found) => found,
            Err(discard) => {
                *bfd.discards
                    .entry(discard_name(&discard).to_owned())
                    .or_default() += 1;
                tracing::debug!(from = %datagram.src, reason = %discard, "BFD packet discarded");
                return;
            }
        };
        if self
            .bfd_handle(index, now, core_bfd::Input::Packet(packet))
            .await
        {
            self.bfd.slots[index].last_rx = Some(now);
        }
    }

    /// Registers every session with every XDP attachment, so the program records the
    /// neighbours' packets (see `vipd-ebpf/src/bfd.rs`). Called after sessions or
    /// attachments change.
    pub(super) fn bfd_watch_xdp(&mut self) {
        for attachment in self.xdp.values_mut() {
            let interface = attachment.interface().to_owned();
            let result = attachment.unwatch_all_bfd().and_then(|()| {
                self.bfd.keys.iter().try_for_each(|key| {
                    attachment.watch_bfd(key.local_discriminator, key.neighbor, key.min_ttl)
                })
            });
            if let Err(e) = result {
                tracing::warn!(%interface, error = %e, "registering BFD sessions with XDP failed; a full socket queue may then cause a false Down");
            }
        }
    }

    /// The Detection Time of session `index` ran out. If the XDP program recorded a
    /// packet from the neighbour more recently than the socket delivered one (a full
    /// socket queue under a flood drops packets after XDP has seen them), feed that
    /// packet instead of declaring the session Down. Returns whether it did.
    async fn rescue_bfd_from_xdp(&mut self, index: usize, now: Instant) -> bool {
        let slot = &self.bfd.slots[index];
        let discriminator = slot.session.local_discriminator();
        let Some(record) = self
            .xdp
            .values()
            .filter_map(|a| a.bfd_record(discriminator).ok().flatten())
            .max_by_key(|r| r.last_seen_ns)
        else {
            return false;
        };
        let age = Duration::from_nanos(monotonic_now_ns().saturating_sub(record.last_seen_ns));
        let Some(seen_at) = now.checked_sub(age) else {
            return false;
        };
        // Only a record newer than what the session has, and recent enough to keep it
        // Up, is news.
        if slot.last_rx.is_some_and(|last| seen_at <= last) || age >= slot.session.detection_time()
        {
            return false;
        }
        // The daemon's own checks on the recorded bytes (RFC 5880 §6.8.6); the program
        // checked TTL, neighbour and discriminator.
        let Ok(packet) = core_bfd::ControlRepr::parse_bytes(&record.packet) else {
            return false;
        };
        let slot = &mut self.bfd.slots[index];
        slot.xdp_rescues += 1;
        tracing::debug!(bfd = %slot.spec.name, "BFD packet seen by XDP, not yet by the socket");
        if self
            .bfd_handle(index, seen_at, core_bfd::Input::Packet(packet))
            .await
        {
            self.bfd.slots[index].last_rx = Some(seen_at);
        }
        true
    }

    /// Runs every session whose deadline has passed.
    pub(super) async fn on_bfd_timers(&mut self, now: Instant) {
        for index in 0..self.bfd.slots.len() {
            let slot = &mut self.bfd.slots[index];
            let Some(due) = slot.session.poll_timeout().filter(|due| *due <= now) else {
                continue;
            };
            let late_us = u64::try_from(now.duration_since(due).as_micros()).unwrap_or(u64::MAX);
            slot.timer_late_max_us = slot.timer_late_max_us.max(late_us);
            let session = &slot.session;
            if session.detect_deadline().is_some_and(|due| due <= now) {
                self.rescue_bfd_from_xdp(index, now).await;
            }
            self.bfd_handle(index, now, core_bfd::Input::Timeout).await;
        }
    }

    /// Tells every neighbour we are going: AdminDown (RFC 5880 §6.8.16), so FRR and
    /// other vipd see "neighbor signaled session down" instead of waiting a Detection
    /// Time.
    pub(super) async fn bfd_admin_down(&mut self, now: Instant) {
        for index in 0..self.bfd.slots.len() {
            self.bfd_handle(index, now, core_bfd::Input::AdminDown)
                .await;
        }
    }

    /// Feeds `input` to session `index` and performs what it returns; false if the
    /// session discarded it.
    async fn bfd_handle(&mut self, index: usize, now: Instant, input: core_bfd::Input) -> bool {
        let slot = &mut self.bfd.slots[index];
        let now = now.max(slot.last_input);
        slot.last_input = now;
        let actions = match slot.session.handle(now, input) {
            Ok(actions) => actions,
            Err(discard) => {
                tracing::debug!(bfd = %slot.spec.name, reason = %discard, "BFD packet discarded by the session");
                return false;
            }
        };
        for action in actions {
            match action {
                core_bfd::Action::Send(packet) => {
                    let slot = &mut self.bfd.slots[index];
                    if let Err(e) = slot.tx.send(&packet.to_bytes()) {
                        slot.send_errors += 1;
                        tracing::debug!(bfd = %slot.spec.name, error = %e, "sending BFD packet failed");
                    }
                }
                core_bfd::Action::StateChanged {
                    from,
                    to,
                    diagnostic,
                } => {
                    let slot = &mut self.bfd.slots[index];
                    slot.last_change = Some(SystemTime::now());
                    let name = slot.spec.name.clone();
                    let neighbor = slot.spec.neighbor;
                    // RFC 5882 §3.2: a neighbour that took the session administratively
                    // down (a reload, a stop that also sends priority 0) has not failed.
                    let admin = slot.session.remote_state() == SessionState::AdminDown;
                    tracing::info!(bfd = %name, %neighbor, %from, %to, %diagnostic, "BFD session state changed");
                    if from == SessionState::Up || to == SessionState::Up {
                        let failed = to != SessionState::Up && !admin;
                        self.bfd_changed(now, &name, neighbor, failed).await;
                    }
                }
            }
        }
        true
    }

    /// A session went Up or left Up: instances tracking it recompute their health, and
    /// a Backup whose peer session failed takes over (`Input::PeerDown`).
    /// `failed`: it left Up because the neighbour failed, not because it said AdminDown.
    async fn bfd_changed(&mut self, now: Instant, name: &str, neighbor: IpAddr, failed: bool) {
        for index in 0..self.slots.len() {
            if self.slots[index].retired {
                continue;
            }
            let Some(tracked) = self.slots[index]
                .spec
                .track_bfd
                .iter()
                .find(|t| t.name == name)
                .cloned()
            else {
                continue;
            };
            if tracked.peer {
                if failed {
                    let actions = self.slots[index].handle(now, Input::PeerDown { peer: neighbor });
                    self.perform(index, now, actions).await;
                }
            } else {
                self.refresh_health(index, now).await;
            }
        }
    }

    /// The instance's tracked (non-peer) BFD sessions, for [`health::add_bfd`].
    pub(super) fn bfd_health(&self, index: usize, health: &mut Health) {
        let statuses: Vec<health::BfdStatus> = self.slots[index]
            .spec
            .track_bfd
            .iter()
            .filter(|t| !t.peer)
            .map(|t| health::BfdStatus {
                name: &t.name,
                up: self.bfd.is_up(&t.name),
                weight: i32::from(t.weight),
            })
            .collect();
        health::add_bfd(health, &statuses);
    }
}
