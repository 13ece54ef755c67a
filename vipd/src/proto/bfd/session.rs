//! One BFD session (RFC 5880 §6): the state machine (§6.2), asynchronous mode, timer
//! negotiation (§6.8.2–§6.8.4), the Poll / Final sequence (§6.5), transmission with
//! jitter (§6.8.7) and reception (§6.8.6).
//!
//! No I/O, no clock, no randomness source: every input carries `now`; the jitter comes
//! from a generator seeded with a value the driver passes to [`Session::new`], so a test
//! replays exactly. Outputs are [`Action`] values.
//!
//! # Driving a session
//!
//! 1. [`Session::new`] with a validated [`SessionConfig`] and a random seed. The session
//!    starts Down (§6.8.1) and, unless passive, sends its first packet on the first
//!    [`Session::handle`] of [`Input::Timeout`] (its deadline is `now` of creation).
//! 2. A received control packet that passed [`super::wire`] and was demultiplexed to this
//!    session (RFC 5881 TTL check included) → [`Input::Packet`].
//! 3. The deadline of [`Session::poll_timeout`] passed → [`Input::Timeout`].
//! 4. Perform the returned actions in order; re-read `poll_timeout`.
//!
//! # Choices the RFC leaves open
//!
//! - **Demand mode** (§6.6) is not requested; a remote that asks for it is honoured as
//!   §6.8.6 requires (periodic transmission stops while both are Up).
//! - **Echo** is not offered: Required Min Echo RX Interval is sent as 0 (§6.8.9).
//! - **Authentication** is not configured, so a packet with the A bit is discarded
//!   (§6.8.6).
//! - **Slow timers.** While not Up, Desired Min TX is `idle_tx`, at least one second
//!   (§6.8.3); on reaching Up the configured value is advertised with a Poll Sequence,
//!   and on leaving Up the slow rate comes back at once (a session that is not Up has no
//!   peer whose detection time could be upset).
//! - **Periodic transmission** runs on the deadlines, not on `now`, so a driver that is
//!   late by its timer resolution does not stretch every interval: the next packet is due
//!   one jittered interval after the previous deadline (or after `now`, if that is
//!   already past).

use std::time::{Duration, Instant};

use super::wire::{self, ControlRepr, Diagnostic, Flags, SessionState};

/// RFC 5880 §6.8.3: "When bfd.SessionState is not Up, the system MUST set
/// bfd.DesiredMinTxInterval to a value of not less than one second".
pub const SLOW_TX: Duration = Duration::from_secs(1);

/// Parameters of one session. Intervals are durations; the wire carries microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// bfd.LocalDiscr: nonzero, unique among this system's sessions (§6.8.1).
    pub local_discriminator: u32,
    /// bfd.DesiredMinTxInterval once Up.
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval: the fastest this system accepts packets; nonzero.
    pub required_min_rx: Duration,
    /// bfd.DetectMult, nonzero.
    pub detect_mult: u8,
    /// Desired Min TX while not Up; raised to [`SLOW_TX`] if lower (§6.8.3).
    pub idle_tx: Duration,
    /// Passive role (§6.1): send nothing until the remote has sent a packet.
    pub passive: bool,
}

impl SessionConfig {
    /// keepalived's defaults (10 ms, 10 ms, ×5, idle 1 s, active).
    pub fn new(local_discriminator: u32) -> SessionConfig {
        SessionConfig {
            local_discriminator,
            desired_min_tx: Duration::from_millis(10),
            required_min_rx: Duration::from_millis(10),
            detect_mult: 5,
            idle_tx: SLOW_TX,
            passive: false,
        }
    }

    /// Checks what the session relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local_discriminator == 0 {
            return Err(ConfigError::DiscriminatorZero);
        }
        if self.detect_mult == 0 {
            return Err(ConfigError::DetectMultZero);
        }
        if self.desired_min_tx.is_zero() || self.required_min_rx.is_zero() {
            return Err(ConfigError::IntervalZero);
        }
        Ok(())
    }

    fn slow_tx(&self) -> Duration {
        self.idle_tx.max(SLOW_TX).max(self.desired_min_tx)
    }
}

/// Why a [`SessionConfig`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// RFC 5880 §6.8.1: bfd.LocalDiscr "MUST be nonzero".
    #[error("local discriminator must be nonzero")]
    DiscriminatorZero,
    /// RFC 5880 §6.8.6 discards packets with Detect Mult 0; ours must not be.
    #[error("detect multiplier must be at least 1")]
    DetectMultZero,
    /// RFC 5880 §6.8.1: DesiredMinTx "MUST be nonzero"; a zero RequiredMinRx would ask
    /// the peer to stop sending (§6.8.1), which vipd never wants.
    #[error("transmit and receive intervals must be nonzero")]
    IntervalZero,
}

/// Something that happened, for [`Session::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// A control packet for this session: parsed by [`super::wire`], TTL 255 checked
    /// (RFC 5881 §5), demultiplexed by [`super::select_session`].
    Packet(ControlRepr),
    /// The deadline from [`Session::poll_timeout`] has passed (early calls are harmless).
    Timeout,
    /// Take the session administratively down (§6.8.16): tell the peer (diag 7).
    AdminDown,
    /// Leave AdminDown: Down, and start again (§6.8.16).
    AdminUp,
    /// New intervals while running (a reload): advertised at once, with a Poll Sequence
    /// when Up (§6.8.3).
    SetIntervals {
        /// New bfd.DesiredMinTxInterval (once Up).
        desired_min_tx: Duration,
        /// New bfd.RequiredMinRxInterval.
        required_min_rx: Duration,
    },
}

/// What the driver must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this control packet to the neighbour (UDP 3784, TTL 255, RFC 5881 §4).
    Send(ControlRepr),
    /// bfd.SessionState changed.
    StateChanged {
        /// Before.
        from: SessionState,
        /// After.
        to: SessionState,
        /// bfd.LocalDiag: why, when it went down.
        diagnostic: Diagnostic,
    },
}

/// Why [`Input::Packet`] was discarded by the session (RFC 5880 §6.8.6, the checks that
/// need session state, in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// RFC 5880 §6.8.6: "If the Your Discriminator field is nonzero, it MUST be used to
    /// select the session ... If no session is found, the packet MUST be discarded."
    #[error("your discriminator {got} is not ours ({ours})")]
    WrongDiscriminator {
        /// The field.
        got: u32,
        /// bfd.LocalDiscr.
        ours: u32,
    },
    /// RFC 5880 §6.8.6: "If the A bit is set and no authentication is in use
    /// (bfd.AuthType is zero), the packet MUST be discarded."
    #[error("authentication present but none configured")]
    AuthNotInUse,
    /// RFC 5880 §6.8.6: "If bfd.SessionState is AdminDown: Discard the packet".
    #[error("session administratively down")]
    AdminDown,
}

/// Event counters; they only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets emitted as [`Action::Send`].
    pub sent: u64,
    /// Packets handed in and accepted.
    pub received: u64,
    /// Packets handed in and discarded.
    pub discarded: u64,
    /// Transitions to Up.
    pub up: u64,
    /// Transitions from Up to Down (or AdminDown).
    pub down: u64,
    /// Poll Sequences completed by a Final.
    pub polls_completed: u64,
}

/// One BFD session. See the module doc for how to drive it.
#[derive(Clone, Debug)]
pub struct Session {
    config: SessionConfig,
    /// bfd.SessionState.
    state: SessionState,
    /// bfd.RemoteSessionState.
    remote_state: SessionState,
    /// bfd.RemoteDiscr.
    remote_discriminator: u32,
    /// bfd.LocalDiag.
    local_diag: Diagnostic,
    /// bfd.DesiredMinTxInterval, as advertised.
    desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval, as advertised.
    required_min_rx: Duration,
    /// The Desired Min TX the transmit interval is computed from: lags an increase until
    /// the Poll Sequence completes (§6.8.3).
    tx_in_use: Duration,
    /// The Required Min RX the detection time is computed from: lags a decrease until
    /// the Poll Sequence completes (§6.8.3).
    rx_in_use: Duration,
    /// bfd.RemoteMinRxInterval.
    remote_min_rx: Duration,
    /// The Desired Min TX Interval of the last packet received (§6.8.4).
    remote_desired_min_tx: Duration,
    /// The Detect Mult of the last packet received (§6.8.4).
    remote_detect_mult: u8,
    /// bfd.RemoteDemandMode.
    remote_demand: bool,
    /// A Poll Sequence is being transmitted (§6.5).
    polling: bool,
    /// Next periodic transmission; `None` while none may be sent.
    next_tx: Option<Instant>,
    /// The Detection Time runs out at; `None` until a packet arrives.
    detect_deadline: Option<Instant>,
    /// xorshift64 state for the §6.8.7 jitter.
    random: u64,
    counters: Counters,
}

impl Session {
    /// A session in Down (§6.8.1), due to send its first packet at `now` unless passive.
    pub fn new(config: SessionConfig, now: Instant, seed: u64) -> Result<Session, ConfigError> {
        config.validate()?;
        let slow = config.slow_tx();
        let mut session = Session {
            state: SessionState::Down,
            remote_state: SessionState::Down,
            remote_discriminator: 0,
            local_diag: Diagnostic::None,
            desired_min_tx: slow,
            required_min_rx: config.required_min_rx,
            tx_in_use: slow,
            rx_in_use: config.required_min_rx,
            // RFC 5880 §6.8.1: bfd.RemoteMinRxInterval "MUST be initialized to 1".
            remote_min_rx: Duration::from_micros(1),
            remote_desired_min_tx: Duration::ZERO,
            remote_detect_mult: 0,
            remote_demand: false,
            polling: false,
            next_tx: None,
            detect_deadline: None,
            // xorshift must not start at 0.
            random: seed | 1,
            counters: Counters::default(),
            config,
        };
        if session.may_transmit() {
            session.next_tx = Some(now);
        }
        Ok(session)
    }

    /// Feeds one input at `now`; returns what to do, in order. A packet the session
    /// discards is reported as `Err` (nothing to do).
    #[must_use = "the returned actions must be performed"]
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<Vec<Action>, Discard> {
        let mut actions = Vec::new();
        match input {
            Input::Packet(packet) => match self.on_packet(now, &packet, &mut actions) {
                Ok(()) => self.counters.received += 1,
                Err(discard) => {
                    self.counters.discarded += 1;
                    return Err(discard);
                }
            },
            Input::Timeout => self.on_timeout(now, &mut actions),
            Input::AdminDown => self.on_admin_down(now, &mut actions),
            Input::AdminUp => {
                if self.state == SessionState::AdminDown {
                    // RFC 5880 §6.8.16: "When the session leaves AdminDown state, the
                    // local system MUST set bfd.SessionState to Down".
                    self.set_state(SessionState::Down, Diagnostic::None, &mut actions);
                    self.schedule_tx(now);
                }
            }
            Input::SetIntervals {
                desired_min_tx,
                required_min_rx,
            } => self.on_set_intervals(now, desired_min_tx, required_min_rx, &mut actions),
        }
        Ok(actions)
    }

    /// When the driver must next call `handle(now, Input::Timeout)`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tx.into_iter().chain(self.detect_deadline).min()
    }

    /// bfd.SessionState.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// bfd.RemoteSessionState.
    pub fn remote_state(&self) -> SessionState {
        self.remote_state
    }

    /// bfd.LocalDiag.
    pub fn local_diag(&self) -> Diagnostic {
        self.local_diag
    }

    /// bfd.LocalDiscr.
    pub fn local_discriminator(&self) -> u32 {
        self.config.local_discriminator
    }

    /// bfd.RemoteDiscr (0 while unknown).
    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discriminator
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Whether a Poll Sequence is in progress.
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// bfd.DesiredMinTxInterval as now advertised.
    pub fn desired_min_tx(&self) -> Duration {
        self.desired_min_tx
    }

    /// The negotiated transmit interval before jitter (§6.8.7): the larger of our Desired
    /// Min TX (as in use) and the remote's Required Min RX.
    pub fn transmit_interval(&self) -> Duration {
        self.tx_in_use.max(self.remote_min_rx)
    }

    /// The Detection Time in asynchronous mode (§6.8.4): the remote's Detect Mult times
    /// the larger of our Required Min RX (as in use) and its last Desired Min TX. Zero
    /// before any packet arrived.
    pub fn detection_time(&self) -> Duration {
        self.rx_in_use.max(self.remote_desired_min_tx) * u32::from(self.remote_detect_mult)
    }

    /// When the Detection Time runs out, if a packet has been received.
    pub fn detect_deadline(&self) -> Option<Instant> {
        self.detect_deadline
    }

    /// Event counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether periodic packets may go out (§6.8.7).
    fn may_transmit(&self) -> bool {
        // RFC 5880 §6.8.7: "A system MUST NOT transmit BFD Control packets if
        // bfd.RemoteDiscr is zero and the system is taking the Passive role."
        if self.config.passive && self.remote_discriminator == 0 {
            return false;
        }
        // RFC 5880 §6.8.7: "A system MUST NOT periodically transmit BFD Control packets
        // if bfd.RemoteMinRxInterval is zero."
        if self.remote_min_rx.is_zero() {
            return false;
        }
        // RFC 5880 §6.8.7: "A system MUST NOT periodically transmit BFD Control packets
        // if Demand mode is active on the remote system (bfd.RemoteDemandMode is 1,
        // bfd.SessionState is Up, and bfd.RemoteSessionState is Up) and a Poll Sequence
        // is not being transmitted."
        !(self.remote_demand
            && self.state == SessionState::Up
            && self.remote_state == SessionState::Up
            && !self.polling)
    }

    fn next_random(&mut self) -> u32 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        (x >> 32) as u32
    }

    /// Next periodic packet one jittered interval after `from`.
    fn schedule_tx_from(&mut self, from: Instant) {
        if !self.may_transmit() {
            self.next_tx = None;
            return;
        }
        let random = self.next_random();
        self.next_tx =
            Some(from + jittered(self.transmit_interval(), self.config.detect_mult, random));
    }

    /// Ensures a periodic packet is scheduled (after a change that may allow it), no
    /// later than one interval from `now`.
    fn schedule_tx(&mut self, now: Instant) {
        if !self.may_transmit() {
            self.next_tx = None;
            return;
        }
        let latest = now + self.transmit_interval();
        match self.next_tx {
            Some(due) if due <= latest => {}
            _ => self.schedule_tx_from(now),
        }
    }

    fn on_timeout(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if self.detect_deadline.is_some_and(|d| d <= now) {
            self.detection_time_expired(now, actions);
        }
        if let Some(due) = self.next_tx
            && due <= now
        {
            // RFC 5880 §6.8.7: periodic transmission; a Poll Sequence in progress sets P
            // on each packet until the Final arrives (§6.5).
            self.transmit(false, actions);
            let random = self.next_random();
            let interval = jittered(self.transmit_interval(), self.config.detect_mult, random);
            // On the grid of deadlines unless we are already a whole interval late.
            let from = if due + interval > now { due } else { now };
            self.next_tx = None;
            if self.may_transmit() {
                self.next_tx = Some(from + interval);
            }
        }
    }

    /// RFC 5880 §6.8.4: "If a period of a Detection Time passes without the receipt of a
    /// valid, authenticated BFD packet from the remote system ...".
    fn detection_time_expired(&mut self, now: Instant, actions: &mut Vec<Action>) {
        self.detect_deadline = None;
        // RFC 5880 §6.8.1: bfd.RemoteDiscr "MUST be set to zero if a period of a Detection
        // Time passes without the receipt of a valid, authenticated BFD packet".
        self.remote_discriminator = 0;
        self.remote_state = SessionState::Down;
        self.remote_demand = false;
        if matches!(self.state, SessionState::Init | SessionState::Up) {
            // RFC 5880 §6.8.4: "If bfd.SessionState is Init or Up, the session has gone
            // down -- the local system MUST set bfd.SessionState to Down and
            // bfd.LocalDiag to 1 (Control Detection Time Expired)".
            self.set_state(
                SessionState::Down,
                Diagnostic::ControlDetectionTimeExpired,
                actions,
            );
        }
        self.schedule_tx(now);
    }

    fn on_packet(
        &mut self,
        now: Instant,
        packet: &ControlRepr,
        actions: &mut Vec<Action>,
    ) -> Result<(), Discard> {
        let ours = self.config.local_discriminator;
        if packet.your_discriminator != 0 && packet.your_discriminator != ours {
            return Err(Discard::WrongDiscriminator {
                got: packet.your_discriminator,
                ours,
            });
        }
        if packet.flags.auth_present {
            return Err(Discard::AuthNotInUse);
        }
        // RFC 5880 §6.8.6: "Set bfd.RemoteDiscr to the value of My Discriminator. Set
        // bfd.RemoteState to the value of the State (Sta) field. Set
        // bfd.RemoteDemandMode to the value of the Demand (D) bit. Set
        // bfd.RemoteMinRxInterval to the value of Required Min RX Interval."
        self.remote_discriminator = packet.my_discriminator;
        self.remote_state = packet.state;
        self.remote_demand = packet.flags.demand;
        self.remote_min_rx = wire::micros(packet.required_min_rx);
        self.remote_desired_min_tx = wire::micros(packet.desired_min_tx);
        self.remote_detect_mult = packet.detect_mult;
        // RFC 5880 §6.8.6: "If a Poll Sequence is being transmitted by the local system
        // and the Final (F) bit in the received packet is set, the Poll Sequence MUST be
        // terminated." The intervals it announced are now in force (§6.8.3).
        if packet.flags.final_ && self.polling {
            self.polling = false;
            self.tx_in_use = self.desired_min_tx;
            self.rx_in_use = self.required_min_rx;
            self.counters.polls_completed += 1;
        }
        // RFC 5880 §6.8.6: "If bfd.SessionState is AdminDown: Discard the packet".
        if self.state == SessionState::AdminDown {
            return Err(Discard::AdminDown);
        }
        if packet.state == SessionState::AdminDown {
            // RFC 5880 §6.8.6: "If received state is AdminDown: If bfd.SessionState is
            // not Down: Set bfd.LocalDiag to 3 (Neighbor signaled session down); Set
            // bfd.SessionState to Down".
            if self.state != SessionState::Down {
                self.set_state(
                    SessionState::Down,
                    Diagnostic::NeighborSignaledSessionDown,
                    actions,
                );
            }
        } else {
            match (self.state, packet.state) {
                // RFC 5880 §6.8.6: "If bfd.SessionState is Down: If received State is
                // Down: Set bfd.SessionState to Init. Else if received State is Init:
                // Set bfd.SessionState to Up".
                (SessionState::Down, SessionState::Down) => {
                    self.set_state(SessionState::Init, Diagnostic::None, actions)
                }
                (SessionState::Down, SessionState::Init) => {
                    self.set_state(SessionState::Up, Diagnostic::None, actions)
                }
                // RFC 5880 §6.8.6: "Else if bfd.SessionState is Init: If received State
                // is Init or Up: Set bfd.SessionState to Up".
                (SessionState::Init, SessionState::Init | SessionState::Up) => {
                    self.set_state(SessionState::Up, Diagnostic::None, actions)
                }
                // RFC 5880 §6.8.6: "Else (bfd.SessionState is Up): If received State is
                // Down: Set bfd.LocalDiag to 3 (Neighbor signaled session down); Set
                // bfd.SessionState to Down".
                (SessionState::Up, SessionState::Down) => self.set_state(
                    SessionState::Down,
                    Diagnostic::NeighborSignaledSessionDown,
                    actions,
                ),
                _ => {}
            }
        }
        // RFC 5880 §6.8.6: "If the Poll (P) bit is set, send a BFD Control packet to the
        // remote system with the Poll (P) bit clear, and the Final (F) bit set".
        if packet.flags.poll {
            self.transmit(true, actions);
        }
        // RFC 5880 §6.8.6: "If the packet was not discarded, it has been received for
        // purposes of the Detection Time expiration rules in section 6.8.4." The new
        // intervals may also allow (or ask for) a sooner transmission (§6.8.2).
        self.detect_deadline = Some(now + self.detection_time());
        self.schedule_tx(now);
        Ok(())
    }

    fn on_admin_down(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if self.state == SessionState::AdminDown {
            return;
        }
        // RFC 5880 §6.8.16: "set bfd.SessionState to AdminDown ... bfd.LocalDiag to an
        // appropriate value" and keep sending for a Detection Time so the remote learns
        // of it. The first goes out at once.
        self.set_state(
            SessionState::AdminDown,
            Diagnostic::AdministrativelyDown,
            actions,
        );
        self.detect_deadline = None;
        self.schedule_tx(now);
    }

    fn on_set_intervals(
        &mut self,
        now: Instant,
        desired_min_tx: Duration,
        required_min_rx: Duration,
        actions: &mut Vec<Action>,
    ) {
        if desired_min_tx.is_zero() || required_min_rx.is_zero() {
            return;
        }
        self.config.desired_min_tx = desired_min_tx;
        self.config.required_min_rx = required_min_rx;
        let advertised = if self.state == SessionState::Up {
            desired_min_tx
        } else {
            self.config.slow_tx()
        };
        self.change_intervals(now, advertised, required_min_rx, actions);
    }

    /// RFC 5880 §6.8.3: new values are advertised at once; while Up a Poll Sequence
    /// confirms them, and until it completes an increased Desired Min TX does not slow
    /// transmission and a reduced Required Min RX does not shorten the Detection Time.
    fn change_intervals(
        &mut self,
        now: Instant,
        desired_min_tx: Duration,
        required_min_rx: Duration,
        actions: &mut Vec<Action>,
    ) {
        if desired_min_tx == self.desired_min_tx && required_min_rx == self.required_min_rx {
            return;
        }
        self.desired_min_tx = desired_min_tx;
        self.required_min_rx = required_min_rx;
        if self.state == SessionState::Up {
            // Faster sending and longer detection are safe before the peer confirms.
            self.tx_in_use = self.tx_in_use.min(desired_min_tx);
            self.rx_in_use = self.rx_in_use.max(required_min_rx);
            // RFC 5880 §6.8.3: "If either bfd.DesiredMinTxInterval or
            // bfd.RequiredMinRxInterval is changed, a Poll Sequence MUST be initiated".
            self.polling = true;
            self.transmit(false, actions);
        } else {
            self.tx_in_use = desired_min_tx;
            self.rx_in_use = required_min_rx;
        }
        self.schedule_tx_from(now);
    }

    fn set_state(&mut self, to: SessionState, diagnostic: Diagnostic, actions: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        // bfd.LocalDiag says why the session last went down; it is cleared when the
        // session comes up (FRR and Junos do the same) so an Up packet does not carry a
        // stale reason.
        if to == SessionState::Up {
            self.local_diag = Diagnostic::None;
            self.counters.up += 1;
        } else if diagnostic != Diagnostic::None {
            self.local_diag = diagnostic;
        }
        if from == SessionState::Up {
            self.counters.down += 1;
        }
        actions.push(Action::StateChanged {
            from,
            to,
            diagnostic: self.local_diag,
        });
        let slow = self.config.slow_tx();
        if to == SessionState::Up {
            // Not a timer change the peer can be hurt by: faster sending, with a Poll
            // Sequence (§6.8.3) so the peer applies our new Desired Min TX to its
            // detection time only once it has seen it.
            let (desired, required) = (self.config.desired_min_tx, self.config.required_min_rx);
            self.change_intervals_now(desired, required);
        } else if from == SessionState::Up {
            // RFC 5880 §6.8.3: not Up, so Desired Min TX ≥ 1 s again. No peer to poll.
            self.polling = false;
            self.desired_min_tx = slow;
            self.tx_in_use = slow;
            self.required_min_rx = self.config.required_min_rx;
            self.rx_in_use = self.config.required_min_rx;
        }
        // Not required by the RFC, allowed by it (§6.8.7 bounds only the periodic
        // rate): the new state goes out at once, so the three-way handshake takes a
        // round trip instead of three slow intervals, and a peer learns of a Down now.
        // Reaching Up, this packet is also the first Poll of the switch to fast timers.
        if self.may_transmit() || self.remote_discriminator != 0 {
            self.transmit(false, actions);
        }
    }

    /// The Up switch of [`Session::set_state`]: like `change_intervals` but the
    /// transmission is rescheduled by the caller's path (`schedule_tx`).
    fn change_intervals_now(&mut self, desired_min_tx: Duration, required_min_rx: Duration) {
        if desired_min_tx == self.desired_min_tx && required_min_rx == self.required_min_rx {
            return;
        }
        self.desired_min_tx = desired_min_tx;
        self.required_min_rx = required_min_rx;
        self.tx_in_use = self.tx_in_use.min(desired_min_tx);
        self.rx_in_use = self.rx_in_use.max(required_min_rx);
        self.polling = true;
        // The first Poll goes out with the state change; the periodic schedule moves to
        // the new interval.
        self.next_tx = None;
    }

    /// Emits one control packet (§6.8.7). `final_` answers a Poll: P and F are never
    /// both set.
    fn transmit(&mut self, final_: bool, actions: &mut Vec<Action>) {
        self.counters.sent += 1;
        actions.push(Action::Send(self.packet(final_)));
    }

    /// The control packet this session sends now (RFC 5880 §6.8.7).
    pub fn packet(&self, final_: bool) -> ControlRepr {
        ControlRepr {
            diagnostic: self.local_diag,
            state: self.state,
            flags: Flags {
                poll: self.polling && !final_,
                final_,
                ..Flags::default()
            },
            detect_mult: self.config.detect_mult,
            my_discriminator: self.config.local_discriminator,
            your_discriminator: self.remote_discriminator,
            desired_min_tx: wire::to_micros(self.desired_min_tx),
            required_min_rx: wire::to_micros(self.required_min_rx),
            // RFC 5880 §6.8.9: no Echo function, so Required Min Echo RX is zero.
            required_min_echo_rx: 0,
        }
    }
}

/// RFC 5880 §6.8.7: "the interval between transmitted BFD Control packets MUST be
/// reduced by a random value of 0 to 25% ... If bfd.DetectMult is equal to 1, the
/// interval between transmitted BFD Control packets MUST be no more than 90% of the
/// negotiated transmission interval, and MUST be no less than 75%". `random` picks the
/// point in that range uniformly.
pub fn jittered(interval: Duration, detect_mult: u8, random: u32) -> Duration {
    // Fraction of the interval in parts per 1000: 750..=1000, or 750..=900.
    let top: u64 = if detect_mult == 1 { 900 } else { 1000 };
    let span = top - 750 + 1;
    let permille = 750 + u64::from(random) % span;
    let nanos = interval.as_nanos().saturating_mul(u128::from(permille)) / 1000;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
