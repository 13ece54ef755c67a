//! Session tests on a fake clock, one group per RFC 5880 section.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config(discriminator: u32) -> SessionConfig {
    SessionConfig {
        local_discriminator: discriminator,
        desired_min_tx: ms(10),
        required_min_rx: ms(10),
        detect_mult: 3,
        idle_tx: SLOW_TX,
        passive: false,
    }
}

fn sent(actions: &[Action]) -> Vec<ControlRepr> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(*p),
            Action::StateChanged { .. } => None,
        })
        .collect()
}

fn changes(actions: &[Action]) -> Vec<(SessionState, SessionState, Diagnostic)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged {
                from,
                to,
                diagnostic,
            } => Some((*from, *to, *diagnostic)),
            Action::Send(_) => None,
        })
        .collect()
}

fn handle(session: &mut Session, now: Instant, input: Input) -> Vec<Action> {
    session.handle(now, input).expect("accepted")
}

/// Two sessions on a lossless link with `delay`, on virtual time. Each step jumps to
/// the next deadline or delivery.
struct Pair {
    now: Instant,
    a: Session,
    b: Session,
    delay: Duration,
    /// (due, to_b, packet)
    in_flight: Vec<(Instant, bool, ControlRepr)>,
    /// Whether each side is alive (a dead side neither sends nor receives).
    alive: [bool; 2],
    log: Vec<(Instant, bool, SessionState, SessionState, Diagnostic)>,
}

impl Pair {
    fn new(a: SessionConfig, b: SessionConfig) -> Pair {
        let now = Instant::now();
        Pair {
            now,
            a: Session::new(a, now, 1).expect("config"),
            b: Session::new(b, now, 2).expect("config"),
            delay: Duration::from_micros(100),
            in_flight: Vec::new(),
            alive: [true, true],
            log: Vec::new(),
        }
    }

    fn perform(&mut self, from_a: bool, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(packet) => {
                    self.in_flight.push((self.now + self.delay, from_a, packet));
                }
                Action::StateChanged {
                    from,
                    to,
                    diagnostic,
                } => self.log.push((self.now, from_a, from, to, diagnostic)),
            }
        }
    }

    /// Advances to `until`, running every event on the way.
    fn run_until(&mut self, until: Instant) {
        loop {
            let delivery = self.in_flight.iter().map(|f| f.0).min();
            let next = [
                self.a.poll_timeout().filter(|_| self.alive[0]),
                self.b.poll_timeout().filter(|_| self.alive[1]),
                delivery,
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|&t| t <= until) else {
                self.now = until;
                return;
            };
            self.now = self.now.max(next);
            let now = self.now;
            let (due, rest): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|f| f.0 <= now);
            self.in_flight = rest;
            for (_, to_b, packet) in due {
                let (session, alive) = if to_b {
                    (&mut self.b, self.alive[1])
                } else {
                    (&mut self.a, self.alive[0])
                };
                if alive && let Ok(actions) = session.handle(now, Input::Packet(packet)) {
                    self.perform(!to_b, actions);
                }
            }
            if self.alive[0] && self.a.poll_timeout().is_some_and(|t| t <= now) {
                let actions = handle(&mut self.a, now, Input::Timeout);
                self.perform(true, actions);
            }
            if self.alive[1] && self.b.poll_timeout().is_some_and(|t| t <= now) {
                let actions = handle(&mut self.b, now, Input::Timeout);
                self.perform(false, actions);
            }
        }
    }

    fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }
}

/// §6.8.1 initial values: Down, RemoteDiscr 0, slow Desired Min TX (§6.8.3); the first
/// packet goes out at once with Your Discriminator 0.
#[test]
fn initial_state_6_8_1() {
    let now = Instant::now();
    let mut session = Session::new(config(7), now, 1).expect("config");
    assert_eq!(session.state(), SessionState::Down);
    assert_eq!(session.remote_discriminator(), 0);
    assert_eq!(session.poll_timeout(), Some(now));
    let packets = sent(&handle(&mut session, now, Input::Timeout));
    assert_eq!(packets.len(), 1);
    let p = packets[0];
    assert_eq!(p.state, SessionState::Down);
    assert_eq!(p.my_discriminator, 7);
    assert_eq!(p.your_discriminator, 0);
    assert_eq!(
        p.desired_min_tx, 1_000_000,
        "§6.8.3: at least 1 s while not Up"
    );
    assert_eq!(p.required_min_rx, 10_000);
    assert_eq!(p.required_min_echo_rx, 0, "§6.8.9: no Echo");
    assert_eq!(p.detect_mult, 3);
    // The next one a jittered second later (§6.8.7).
    let next = session.poll_timeout().expect("scheduled") - now;
    assert!(next >= ms(750) && next <= ms(1000), "{next:?}");
    assert_eq!(
        Session::new(config(0), now, 1).err(),
        Some(ConfigError::DiscriminatorZero)
    );
}

/// §6.2 / §6.8.6: the three-way handshake brings both sides Up, and both then send at
/// the negotiated 10 ms after a Poll Sequence (§6.8.3, §6.5).
#[test]
fn three_way_handshake_6_2() {
    let mut pair = Pair::new(config(1), config(2));
    pair.run_for(ms(5));
    assert_eq!(pair.a.state(), SessionState::Up);
    assert_eq!(pair.b.state(), SessionState::Up);
    let a_path: Vec<SessionState> = pair.log.iter().filter(|e| e.1).map(|e| e.3).collect();
    // A heard B's Down first (Init), then B's Init or Up.
    assert_eq!(a_path, vec![SessionState::Init, SessionState::Up]);
    assert_eq!(pair.a.remote_discriminator(), 2);
    assert_eq!(pair.b.remote_discriminator(), 1);
    // Poll Sequences completed: fast timers in force on both sides.
    assert!(!pair.a.polling() && !pair.b.polling());
    assert_eq!(pair.a.transmit_interval(), ms(10));
    assert_eq!(pair.a.detection_time(), ms(30));
    pair.run_for(Duration::from_secs(2));
    assert_eq!(pair.a.state(), SessionState::Up);
    assert_eq!(pair.a.counters().down, 0);
    // About 200 packets each in 2 s at 7.5–10 ms.
    let sent = pair.a.counters().sent;
    assert!((200..=275).contains(&sent), "{sent}");
}

/// §6.8.4: a silent peer is declared down after the Detection Time (Detect Mult ×
/// max(Required Min RX, remote Desired Min TX)), diag 1, and RemoteDiscr goes to 0
/// (§6.8.1).
#[test]
fn detection_time_expiry_6_8_4() {
    let mut pair = Pair::new(config(1), config(2));
    pair.run_for(ms(100));
    assert_eq!(pair.a.state(), SessionState::Up);
    let last_heard = pair.now;
    pair.alive[1] = false;
    pair.in_flight.clear();
    let deadline = pair.a.detect_deadline().expect("running");
    assert!(deadline - last_heard <= ms(30));
    pair.run_until(deadline - Duration::from_micros(1));
    assert_eq!(
        pair.a.state(),
        SessionState::Up,
        "not before the Detection Time"
    );
    pair.run_until(deadline);
    assert_eq!(pair.a.state(), SessionState::Down);
    assert_eq!(pair.a.local_diag(), Diagnostic::ControlDetectionTimeExpired);
    assert_eq!(pair.a.remote_discriminator(), 0);
    // §6.8.3: back to the slow rate.
    assert_eq!(pair.a.transmit_interval(), SLOW_TX);
    // The Detection Time uses the larger of the two rates: a peer that asks for 50 ms
    // gets 3 × 50 ms.
    let mut slow_peer = config(2);
    slow_peer.desired_min_tx = ms(50);
    let mut pair = Pair::new(config(1), slow_peer);
    pair.run_for(ms(500));
    assert_eq!(pair.a.detection_time(), ms(150));
    assert_eq!(pair.b.detection_time(), ms(30));
}

/// §6.8.6: a peer that signals Down or AdminDown takes us Down with diag 3; the
/// handshake then restarts and comes Up again.
#[test]
fn neighbor_signaled_down_6_8_6() {
    let mut pair = Pair::new(config(1), config(2));
    pair.run_for(ms(50));
    let now = pair.now;
    let actions = handle(&mut pair.b, now, Input::AdminDown);
    let packets = sent(&actions);
    assert_eq!(packets[0].state, SessionState::AdminDown);
    assert_eq!(packets[0].diagnostic, Diagnostic::AdministrativelyDown);
    pair.perform(false, actions);
    pair.run_for(ms(1));
    assert_eq!(pair.a.state(), SessionState::Down);
    assert_eq!(pair.a.local_diag(), Diagnostic::NeighborSignaledSessionDown);
    // §6.8.6: while AdminDown, received packets are discarded.
    let from_a = pair.a.packet(false);
    assert_eq!(
        pair.b.handle(pair.now, Input::Packet(from_a)),
        Err(Discard::AdminDown)
    );
    // §6.8.16: leaving AdminDown → Down, and the sessions come back Up.
    let actions = handle(&mut pair.b, pair.now, Input::AdminUp);
    assert_eq!(
        changes(&actions),
        vec![(
            SessionState::AdminDown,
            SessionState::Down,
            Diagnostic::AdministrativelyDown
        )]
    );
    pair.run_for(Duration::from_secs(3));
    assert_eq!(pair.a.state(), SessionState::Up);
    assert_eq!(pair.b.state(), SessionState::Up);
    assert_eq!(pair.a.local_diag(), Diagnostic::None);

    // A restarted peer (new discriminator, Down, Your Discriminator 0): Up → Down.
    let mut restarted = pair.b.packet(false);
    restarted.state = SessionState::Down;
    restarted.my_discriminator = 77;
    restarted.your_discriminator = 0;
    let actions = handle(&mut pair.a, pair.now, Input::Packet(restarted));
    assert_eq!(
        changes(&actions),
        vec![(
            SessionState::Up,
            SessionState::Down,
            Diagnostic::NeighborSignaledSessionDown
        )]
    );
    assert_eq!(pair.a.remote_discriminator(), 77);
}

/// §6.5: a Poll is answered at once with a packet carrying F and not P; P and F are
/// never both set, even while our own Poll Sequence runs.
#[test]
fn poll_answered_with_final_6_5() {
    let mut pair = Pair::new(config(1), config(2));
    pair.run_for(ms(50));
    let now = pair.now;
    // Start a Poll Sequence on A (timer change), then let B poll A.
    let actions = handle(
        &mut pair.a,
        now,
        Input::SetIntervals {
            desired_min_tx: ms(20),
            required_min_rx: ms(10),
        },
    );
    let poll = sent(&actions);
    assert_eq!(poll.len(), 1);
    assert!(poll[0].flags.poll && !poll[0].flags.final_);
    let mut from_b = pair.b.packet(false);
    from_b.flags.poll = true;
    let answer = sent(&handle(&mut pair.a, now, Input::Packet(from_b)));
    assert_eq!(answer.len(), 1, "a Final goes out at once");
    assert!(answer[0].flags.final_);
    assert!(!answer[0].flags.poll, "§6.5: never P and F together");
    assert!(pair.a.polling(), "our own sequence still runs");
    // Every periodic packet carries P until a Final arrives.
    let due = pair.a.poll_timeout().expect("scheduled");
    let periodic = sent(&handle(&mut pair.a, due, Input::Timeout));
    assert!(periodic.iter().all(|p| p.flags.poll));
    let mut final_ = pair.b.packet(true);
    final_.your_discriminator = 1;
    handle(&mut pair.a, due, Input::Packet(final_));
    assert!(!pair.a.polling());
    assert_eq!(pair.a.counters().polls_completed, 2, "handshake + this one");
}

/// §6.8.3: an increased Desired Min TX does not slow transmission, and a reduced
/// Required Min RX does not shorten the Detection Time, until the Poll Sequence
/// completes; a peer's new rate is used from its next packet.
#[test]
fn timer_change_waits_for_final_6_8_3() {
    let mut pair = Pair::new(config(1), config(2));
    pair.run_for(ms(50));
    let now = pair.now;
    pair.in_flight.clear();
    let actions = handle(
        &mut pair.a,
        now,
        Input::SetIntervals {
            desired_min_tx: ms(100),
            required_min_rx: ms(5),
        },
    );
    let poll = sent(&actions)[0];
    assert_eq!(poll.desired_min_tx, 100_000, "advertised at once");
    assert_eq!(poll.required_min_rx, 5_000);
    assert_eq!(pair.a.transmit_interval(), ms(10), "old TX until Final");
    assert_eq!(pair.a.detection_time(), ms(30), "old RX until Final");
    pair.perform(true, actions);
    pair.run_for(ms(5));
    assert!(!pair.a.polling());
    assert_eq!(pair.a.transmit_interval(), ms(100));
    // B now sends at 10 ms but A accepts 5 ms: detection 3 × max(5, 10).
    assert_eq!(pair.a.detection_time(), ms(30));
    // B's Detection Time for A follows A's advertised 100 ms.
    assert_eq!(pair.b.detection_time(), ms(300));
    pair.run_for(Duration::from_secs(1));
    assert_eq!(pair.a.state(), SessionState::Up);
    assert_eq!(pair.b.state(), SessionState::Up);
}

/// §6.8.7: jitter 75–100 % (75–90 % with Detect Mult 1), spread over the range.
#[test]
fn jitter_bounds_6_8_7() {
    let interval = ms(100);
    let mut seen = std::collections::BTreeSet::new();
    for random in [0, 1, 250, 251, u32::MAX, 123_456_789] {
        let j = jittered(interval, 3, random);
        assert!(j >= ms(75) && j <= ms(100), "{j:?}");
        let j1 = jittered(interval, 1, random);
        assert!(j1 >= ms(75) && j1 <= ms(90), "{j1:?}");
        seen.insert(j);
    }
    assert_eq!(jittered(interval, 3, 0), ms(75));
    assert_eq!(jittered(interval, 3, 250), ms(100));
    assert_eq!(jittered(interval, 1, 150), ms(90));
    assert!(seen.len() > 3);
    // The session's own draws stay in range over many packets.
    let now = Instant::now();
    let mut session = Session::new(config(1), now, 42).expect("config");
    let mut t = now;
    let mut gaps = Vec::new();
    for _ in 0..200 {
        let _ = handle(&mut session, t, Input::Timeout);
        let next = session.poll_timeout().expect("scheduled");
        gaps.push(next - t);
        t = next;
    }
    assert!(gaps[1..].iter().all(|g| *g >= ms(750) && *g <= SLOW_TX));
    assert!(gaps[1..].iter().any(|g| *g < ms(800)));
    assert!(gaps[1..].iter().any(|g| *g > ms(950)));
}

/// §6.8.7: a passive session sends nothing until it has heard the peer; a remote
/// Required Min RX of 0 stops periodic transmission.
#[test]
fn passive_and_zero_min_rx_6_8_7() {
    let now = Instant::now();
    let mut cfg = config(1);
    cfg.passive = true;
    let mut passive = Session::new(cfg, now, 1).expect("config");
    assert_eq!(passive.poll_timeout(), None);
    assert!(sent(&handle(&mut passive, now + ms(5000), Input::Timeout)).is_empty());
    let mut pair = Pair::new(cfg, config(2));
    pair.run_for(ms(20));
    assert_eq!(pair.a.state(), SessionState::Up);
    assert_eq!(pair.b.state(), SessionState::Up);

    let mut quiet = pair.b.packet(false);
    quiet.required_min_rx = 0;
    let now = pair.now;
    handle(&mut pair.a, now, Input::Packet(quiet));
    assert_eq!(pair.a.poll_timeout(), pair.a.detect_deadline());
}

/// §6.8.6: a remote in Demand mode while both are Up stops our periodic packets.
#[test]
fn remote_demand_stops_periodic_6_8_6() {
    let mut pair = Pair::new(config(1), config(2));
    pair.run_for(ms(50));
    let mut demand = pair.b.packet(false);
    demand.flags.demand = true;
    let now = pair.now;
    handle(&mut pair.a, now, Input::Packet(demand));
    let due = pair.a.poll_timeout();
    assert_eq!(
        due,
        pair.a.detect_deadline(),
        "only the detection timer runs"
    );
}

/// §6.8.6: the session-level discards, each with its own reason.
#[test]
fn session_discards_6_8_6() {
    let now = Instant::now();
    let mut session = Session::new(config(1), now, 1).expect("config");
    let mut packet = ControlRepr {
        diagnostic: Diagnostic::None,
        state: SessionState::Down,
        flags: wire::Flags::default(),
        detect_mult: 3,
        my_discriminator: 5,
        your_discriminator: 9,
        desired_min_tx: 1_000_000,
        required_min_rx: 10_000,
        required_min_echo_rx: 0,
    };
    assert_eq!(
        session.handle(now, Input::Packet(packet)),
        Err(Discard::WrongDiscriminator { got: 9, ours: 1 })
    );
    packet.your_discriminator = 0;
    packet.flags.auth_present = true;
    assert_eq!(
        session.handle(now, Input::Packet(packet)),
        Err(Discard::AuthNotInUse)
    );
    assert_eq!(session.counters().discarded, 2);
    assert_eq!(session.state(), SessionState::Down);
    assert_eq!(session.remote_discriminator(), 0, "nothing learned");
}
