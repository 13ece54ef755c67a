//! The BFD thread: every BFD session's receive, transmit and detection timers run here,
//! on a thread of their own (SCHED_RR one step above the daemon's thread when the daemon
//! is real-time), not on the daemon's event loop.
//!
//! Why a thread: at 3 ms × 3 a session tolerates 9 ms without a packet. The daemon's
//! loop also reads adverts, floods of them included, adds VIPs, runs scripts' results
//! and answers status; a turn of that loop that takes longer than the Detection Time made
//! a live neighbour look dead, and a late transmission makes us look dead to the
//! neighbour. Here nothing but BFD waits in line: one `ppoll` on the receive sockets and
//! a wake-up pipe, with the earliest session deadline as its (nanosecond) timeout.
//!
//! The daemon thread talks to this one through [`Command`]s (new sessions with their
//! sockets already opened, so errors are reported where the configuration is; XDP
//! record handles; AdminDown; status) and hears back [`BfdEvent`]s for sessions that
//! went Up or left Up. The session logic stays in `proto::bfd`, sans-IO.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::IpAddr;
use std::os::fd::{AsRawFd as _, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::config;
use crate::control;
use crate::io::bfd::{BfdDatagram, BfdRxSocket, BfdTxSocket};
use crate::io::bpf::{BfdRecords, monotonic_now_ns};
use crate::proto::bfd::{self as core_bfd, SessionKey, SessionState};

/// Datagrams read from one socket per wake-up before Detection Times are checked: the
/// neighbour's packet may sit behind a few hundred junk ones.
const RX_BURST: usize = 256;

/// While draining, due transmissions go out every this many datagrams: a flood of BFD
/// packets cannot hold up our own packets by more than a few dozen microseconds (about
/// 0.5 ms in a debug build), even when a stall left hundreds queued.
const TX_CHECK_EVERY: usize = 16;

/// How long the daemon waits for the thread's status answer.
const STATUS_TIMEOUT: Duration = Duration::from_millis(200);

/// A session the daemon prepared (socket opened, discriminator chosen).
pub(super) struct NewSession {
    pub(super) spec: config::BfdInstance,
    pub(super) session: core_bfd::Session,
    pub(super) key: SessionKey,
    pub(super) tx: BfdTxSocket,
}

/// A session that went Up or left Up.
#[derive(Debug, Clone)]
pub(super) struct BfdEvent {
    /// Which [`Command::Replace`] the session came from: events of replaced sessions are
    /// stale.
    pub(super) generation: u64,
    pub(super) name: String,
    pub(super) neighbor: IpAddr,
    pub(super) to: SessionState,
    /// The neighbour said AdminDown (RFC 5882 §3.2: not a failure).
    pub(super) remote_admin_down: bool,
}

/// What the thread reports for `vipd status` and the metrics.
#[derive(Debug, Clone, Default)]
pub(super) struct Snapshot {
    pub(super) sessions: Vec<control::BfdStatus>,
    /// Datagrams no session took, by reason.
    pub(super) discards: BTreeMap<&'static str, u64>,
    /// Receive errors other than an empty queue.
    pub(super) rx_errors: u64,
    /// Where a late deadline's time went (µs, worst since start): the thread woke
    /// later than its `ppoll` timeout asked (the kernel or the host did not run it), or
    /// one turn of its loop took that long (its own work).
    pub(super) wake_late_max_us: u64,
    pub(super) turn_max_us: u64,
}

enum Command {
    /// Sends AdminDown on the current sessions (when `admin_down_old`), then replaces
    /// them by `sessions`; `rx` are receive sockets for families not received yet.
    Replace {
        generation: u64,
        admin_down_old: bool,
        sessions: Vec<NewSession>,
        rx: Vec<BfdRxSocket>,
    },
    /// The XDP programs' record maps, replacing the previous set.
    Records(Vec<BfdRecords>),
    /// Every session to AdminDown (RFC 5880 §6.8.16), kept sending until `Stop`.
    AdminDown,
    Status(std::sync::mpsc::Sender<Snapshot>),
    Stop,
}

/// The daemon's end: sends commands and wakes the thread.
pub(super) struct BfdEngine {
    commands: std::sync::mpsc::Sender<Command>,
    wake: std::io::PipeWriter,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BfdEngine {
    /// Starts the thread. `priority`: the daemon's real-time priority (0: none), read
    /// again on every turn so a reload that changes it applies here too.
    pub(super) fn spawn(
        priority: Arc<AtomicU8>,
        events: mpsc::UnboundedSender<BfdEvent>,
    ) -> std::io::Result<Self> {
        let (wake_rx, wake) = std::io::pipe()?;
        let (commands, commands_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("vipd-bfd".into())
            .spawn(move || {
                Engine {
                    generation: 0,
                    slots: Vec::new(),
                    keys: Vec::new(),
                    rx: Vec::new(),
                    records: Vec::new(),
                    discards: BTreeMap::new(),
                    rx_errors: 0,
                    wake_late_max_us: 0,
                    turn_max_us: 0,
                    events,
                    commands: commands_rx,
                    wake: wake_rx,
                    priority,
                    applied_priority: None,
                }
                .run();
            })?;
        Ok(Self {
            commands,
            wake,
            thread: Some(thread),
        })
    }

    fn send(&mut self, command: Command) {
        if self.commands.send(command).is_ok() {
            // One byte per command; a full pipe (the thread is far behind) already
            // guarantees a wake-up, so a failed write loses nothing.
            let _ = self.wake.write(&[1]);
        } else {
            tracing::error!("the BFD thread is gone; BFD sessions no longer run");
        }
    }

    pub(super) fn replace(
        &mut self,
        generation: u64,
        admin_down_old: bool,
        sessions: Vec<NewSession>,
        rx: Vec<BfdRxSocket>,
    ) {
        self.send(Command::Replace {
            generation,
            admin_down_old,
            sessions,
            rx,
        });
    }

    pub(super) fn records(&mut self, records: Vec<BfdRecords>) {
        self.send(Command::Records(records));
    }

    pub(super) fn admin_down(&mut self) {
        self.send(Command::AdminDown);
    }

    /// The sessions' status; empty if the thread does not answer in time.
    pub(super) fn snapshot(&self) -> Snapshot {
        let (reply, answer) = std::sync::mpsc::channel();
        if self.commands.send(Command::Status(reply)).is_err() {
            return Snapshot::default();
        }
        let _ = (&self.wake).write(&[1]);
        answer.recv_timeout(STATUS_TIMEOUT).unwrap_or_else(|_| {
            tracing::warn!("the BFD thread did not answer a status request in time");
            Snapshot::default()
        })
    }
}

impl Drop for BfdEngine {
    /// Stops the thread after what it was asked to send (AdminDown) went out.
    fn drop(&mut self) {
        self.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One session and what the thread keeps for it.
struct Slot {
    spec: config::BfdInstance,
    session: core_bfd::Session,
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
    /// The latest this thread ran a due deadline of the session, in microseconds.
    timer_late_max_us: u64,
}

impl Slot {
    fn status(&self) -> control::BfdStatus {
        let session = &self.session;
        let counters = session.counters();
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        control::BfdStatus {
            name: self.spec.name.clone(),
            neighbor: self.spec.neighbor.to_string(),
            state: session.state().to_string(),
            remote_state: session.remote_state().to_string(),
            diagnostic: session.local_diag().to_string(),
            local_discriminator: session.local_discriminator(),
            remote_discriminator: session.remote_discriminator(),
            transmit_interval_us: micros(session.transmit_interval()),
            detection_time_us: micros(session.detection_time()),
            sent: counters.sent,
            received: counters.received,
            discarded: counters.discarded,
            up_count: counters.up,
            down_count: counters.down,
            send_errors: self.send_errors,
            xdp_rescues: self.xdp_rescues,
            timer_late_max_us: self.timer_late_max_us,
            last_change_unix: self.last_change.and_then(|t| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs_f64())
            }),
        }
    }
}

/// The thread's state.
struct Engine {
    generation: u64,
    slots: Vec<Slot>,
    keys: Vec<SessionKey>,
    rx: Vec<BfdRxSocket>,
    records: Vec<BfdRecords>,
    discards: BTreeMap<&'static str, u64>,
    rx_errors: u64,
    wake_late_max_us: u64,
    turn_max_us: u64,
    events: mpsc::UnboundedSender<BfdEvent>,
    commands: std::sync::mpsc::Receiver<Command>,
    wake: std::io::PipeReader,
    priority: Arc<AtomicU8>,
    applied_priority: Option<u8>,
}

/// Which due deadlines [`Engine::run_timers`] runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Transmissions only: before and while the sockets are drained, so our packets
    /// never wait behind a queue of the neighbour's (or a flood's).
    Transmit,
    /// Everything, Detection Times included: after the sockets were drained, so a
    /// packet of the neighbour's that was queued counts before its session expires.
    All,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
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

/// Waits until one of `fds` is readable or `timeout` passes (`None`: no timeout).
/// Returns which fds are readable. `ppoll` takes a nanosecond timeout, so a session
/// deadline is met to the timer's precision rather than rounded up to a millisecond.
fn wait_readable(fds: &[RawFd], timeout: Option<Duration>) -> Vec<bool> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let timespec = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    let timeout_ptr = timespec
        .as_ref()
        .map_or(std::ptr::null(), std::ptr::from_ref);
    // SAFETY: `pollfds` is a valid array of `len` pollfd for the call; the timespec, when
    // given, outlives the call; a null sigmask keeps the thread's mask.
    let rc = unsafe {
        libc::ppoll(
            pollfds.as_mut_ptr(),
            pollfds.len() as libc::nfds_t,
            timeout_ptr,
            std::ptr::null(),
        )
    };
    if rc <= 0 {
        // Timeout, or EINTR: the caller's loop runs the timers and comes back.
        return vec![false; fds.len()];
    }
    pollfds
        .iter()
        .map(|p| p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0)
        .collect()
}

impl Engine {
    fn run(mut self) {
        let mut buf = vec![0u8; 512];
        loop {
            self.apply_priority();
            let deadline = self
                .slots
                .iter()
                .filter_map(|s| s.session.poll_timeout())
                .min();
            let asked = Instant::now();
            let timeout = deadline.map(|d| d.saturating_duration_since(asked));
            let mut fds = vec![self.wake.as_raw_fd()];
            fds.extend(self.rx.iter().map(|r| r.as_raw_fd()));
            let readable = wait_readable(&fds, timeout);
            let woke = Instant::now();
            if let Some(timeout) = timeout {
                let late = woke.saturating_duration_since(asked + timeout);
                self.wake_late_max_us = self.wake_late_max_us.max(micros(late));
            }
            if readable.first().copied().unwrap_or(false) {
                let mut drain = [0u8; 64];
                // At least one byte is there (poll said so): this read does not block.
                let _ = self.wake.read(&mut drain);
            }
            if !self.run_commands() {
                return;
            }
            self.run_timers(Instant::now(), Pass::Transmit);
            for (index, _) in readable.iter().enumerate().skip(1).filter(|(_, r)| **r) {
                self.drain_socket(index - 1, &mut buf);
            }
            self.run_timers(Instant::now(), Pass::All);
            self.turn_max_us = self.turn_max_us.max(micros(woke.elapsed()));
        }
    }

    fn apply_priority(&mut self) {
        let wanted = self.priority.load(Ordering::Relaxed);
        if self.applied_priority == Some(wanted) {
            return;
        }
        self.applied_priority = Some(wanted);
        // One step above the daemon's thread: its loop must not hold up a session
        // deadline; 0 keeps the ordinary policy.
        let ours = if wanted == 0 {
            0
        } else {
            wanted.saturating_add(1).min(99)
        };
        if let Err(e) = crate::io::sched::set_realtime(ours) {
            tracing::warn!(priority = ours, error = %e, "could not set the BFD thread's real-time priority");
        }
    }

    /// Runs every queued command; false on `Stop` (or when the daemon is gone).
    fn run_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Replace {
                    generation,
                    admin_down_old,
                    sessions,
                    rx,
                }) => {
                    if admin_down_old {
                        self.admin_down(Instant::now());
                    }
                    self.generation = generation;
                    self.keys = sessions.iter().map(|s| s.key).collect();
                    let now = Instant::now();
                    self.slots = sessions
                        .into_iter()
                        .map(|s| Slot {
                            spec: s.spec,
                            session: s.session,
                            tx: s.tx,
                            last_input: now,
                            send_errors: 0,
                            last_change: None,
                            last_rx: None,
                            xdp_rescues: 0,
                            timer_late_max_us: 0,
                        })
                        .collect();
                    self.rx.extend(rx);
                }
                Ok(Command::Records(records)) => self.records = records,
                Ok(Command::AdminDown) => self.admin_down(Instant::now()),
                Ok(Command::Status(reply)) => {
                    let _ = reply.send(Snapshot {
                        sessions: self.slots.iter().map(Slot::status).collect(),
                        discards: self.discards.clone(),
                        rx_errors: self.rx_errors,
                        wake_late_max_us: self.wake_late_max_us,
                        turn_max_us: self.turn_max_us,
                    });
                }
                Ok(Command::Stop) | Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return false;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return true,
            }
        }
    }

    fn admin_down(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            self.handle(index, now, core_bfd::Input::AdminDown);
        }
    }

    fn drain_socket(&mut self, socket: usize, buf: &mut [u8]) {
        for n in 1..=RX_BURST {
            if n % TX_CHECK_EVERY == 0 {
                self.run_timers(Instant::now(), Pass::Transmit);
            }
            let datagram = match self.rx.get(socket).map(|s| s.try_recv(buf)) {
                Some(Ok(Some(datagram))) => datagram,
                Some(Ok(None)) | None => return,
                Some(Err(e)) => {
                    self.rx_errors += 1;
                    tracing::debug!(error = %e, "BFD receive failed");
                    return;
                }
            };
            self.on_datagram(Instant::now(), &datagram);
        }
    }

    fn on_datagram(&mut self, now: Instant, datagram: &BfdDatagram) {
        let received = core_bfd::receive(
            &self.keys,
            datagram.src.ip(),
            datagram.src.port(),
            datagram.ttl,
            &datagram.payload,
        );
        match received {
            Ok((index, packet)) => {
                if self.handle(index, now, core_bfd::Input::Packet(packet)) {
                    self.slots[index].last_rx = Some(now);
                }
            }
            Err(discard) => {
                *self.discards.entry(discard_name(&discard)).or_default() += 1;
                tracing::debug!(from = %datagram.src, reason = %discard, "BFD packet discarded");
            }
        }
    }

    /// Runs the sessions whose deadline has passed; with [`Pass::Transmit`] only those
    /// whose Detection Time has not run out.
    fn run_timers(&mut self, now: Instant, pass: Pass) {
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let Some(due) = slot.session.poll_timeout().filter(|due| *due <= now) else {
                continue;
            };
            let expired = slot.session.detect_deadline().is_some_and(|due| due <= now);
            if expired && pass == Pass::Transmit {
                continue;
            }
            slot.timer_late_max_us = slot.timer_late_max_us.max(micros(now.duration_since(due)));
            if expired {
                self.rescue_from_xdp(index, now);
            }
            self.handle(index, now, core_bfd::Input::Timeout);
        }
    }

    /// The Detection Time of session `index` ran out. If the XDP program recorded a
    /// packet from the neighbour more recently than the socket delivered one (a full
    /// socket queue under a flood drops packets after XDP has seen them), feed that
    /// packet instead of declaring the session Down.
    fn rescue_from_xdp(&mut self, index: usize, now: Instant) {
        let slot = &self.slots[index];
        let discriminator = slot.session.local_discriminator();
        let Some(record) = self
            .records
            .iter()
            .filter_map(|r| r.get(discriminator).ok().flatten())
            .max_by_key(|r| r.last_seen_ns)
        else {
            return;
        };
        let age = Duration::from_nanos(monotonic_now_ns().saturating_sub(record.last_seen_ns));
        let Some(seen_at) = now.checked_sub(age) else {
            return;
        };
        // Only a record newer than what the session has, and recent enough to keep it
        // Up, is news.
        if slot.last_rx.is_some_and(|last| seen_at <= last) || age >= slot.session.detection_time()
        {
            return;
        }
        // The daemon's own checks on the recorded bytes (RFC 5880 §6.8.6); the program
        // checked TTL, neighbour and discriminator.
        let Ok(packet) = core_bfd::ControlRepr::parse_bytes(&record.packet) else {
            return;
        };
        self.slots[index].xdp_rescues += 1;
        tracing::debug!(bfd = %self.slots[index].spec.name, "BFD packet seen by XDP, not yet by the socket");
        if self.handle(index, seen_at, core_bfd::Input::Packet(packet)) {
            self.slots[index].last_rx = Some(seen_at);
        }
    }

    /// Feeds `input` to session `index` and performs what it returns; false if the
    /// session discarded it.
    fn handle(&mut self, index: usize, now: Instant, input: core_bfd::Input) -> bool {
        let generation = self.generation;
        let slot = &mut self.slots[index];
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
                    slot.last_change = Some(SystemTime::now());
                    let name = &slot.spec.name;
                    let neighbor = slot.spec.neighbor;
                    tracing::info!(bfd = %name, %neighbor, %from, %to, %diagnostic, "BFD session state changed");
                    if from == SessionState::Up || to == SessionState::Up {
                        let _ = self.events.send(BfdEvent {
                            generation,
                            name: name.clone(),
                            neighbor,
                            to,
                            remote_admin_down: slot.session.remote_state()
                                == SessionState::AdminDown,
                        });
                    }
                }
            }
        }
        true
    }
}
