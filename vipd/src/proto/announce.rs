//! When a master announces its addresses (gratuitous ARP for IPv4, unsolicited
//! Neighbor Advertisements for IPv6: RFC 5798 §6.4.1, §6.4.2, §8.2), as a pure schedule.
//!
//! No I/O, no clock: the driver starts a schedule when the core emits
//! [`Action::Announce`](super::action::Action::Announce), sleeps until
//! [`AnnounceSchedule::poll_timeout`], and sends a frame for each address index that
//! [`AnnounceSchedule::due`] returns.
//!
//! The timing follows keepalived's `garp_master_*` settings: a burst of `repeat` rounds
//! `interval` apart at once, the same again `delay` later (if set), and one round every
//! `refresh` while master (if set). A round is one frame per address; rounds are spread
//! over turns of the driver's loop, at most [`FRAMES_PER_TURN`] frames a turn, so
//! announcing ten thousand addresses never holds up an advert.

use std::time::{Duration, Instant};

/// Most announcement frames sent per turn of the driver's loop (a millisecond or so),
/// between which adverts and received packets are handled.
pub const FRAMES_PER_TURN: usize = 128;

/// How a master announces (keepalived's `garp_master_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnnouncePolicy {
    /// Rounds per burst (`garp_master_repeat`); 0 counts as 1.
    pub repeat: u32,
    /// Gap between the rounds of a burst (`garp_interval`).
    pub interval: Duration,
    /// A second burst this long after the first; zero: none (`garp_master_delay`).
    pub delay: Duration,
    /// A round this often while master; zero: never (`garp_master_refresh`).
    pub refresh: Duration,
}

/// Frames still owed, sent a turn's worth at a time, cycling over the addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Frames still to send.
    remaining: usize,
    /// Index of the next address.
    cursor: usize,
}

impl Backlog {
    /// `frames` frames owed over `count` addresses, starting with the first.
    pub fn new(frames: usize) -> Backlog {
        Backlog {
            remaining: frames,
            cursor: 0,
        }
    }

    /// Whether frames are still owed.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Adds `frames` more.
    fn add(&mut self, frames: usize) {
        self.remaining = self.remaining.saturating_add(frames);
    }

    /// The address indexes (of `count` addresses) to send this turn: at most
    /// [`FRAMES_PER_TURN`], going round the addresses. Nothing is owed for no
    /// addresses.
    pub fn take_turn(&mut self, count: usize) -> Vec<usize> {
        if count == 0 {
            self.remaining = 0;
            return Vec::new();
        }
        let turn = self.remaining.min(FRAMES_PER_TURN);
        self.remaining -= turn;
        (0..turn)
            .map(|_| {
                let index = self.cursor % count;
                self.cursor = (index + 1) % count;
                index
            })
            .collect()
    }
}

/// One master's announcements: due rounds, the refresh, and what is left of the
/// rounds already due.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceSchedule {
    /// When each round not yet due is, earliest first.
    rounds: Vec<Instant>,
    /// The next refresh round.
    refresh_at: Option<Instant>,
    backlog: Backlog,
    /// Set while the backlog is not empty: the driver comes back on its next turn.
    continue_at: Option<Instant>,
}

impl AnnounceSchedule {
    /// The schedule of a master that announces at `now` (taking over, or re-asserting).
    pub fn start(now: Instant, policy: &AnnouncePolicy) -> AnnounceSchedule {
        let repeat = policy.repeat.max(1);
        let bursts = [
            Some(now),
            (!policy.delay.is_zero()).then(|| now + policy.delay),
        ];
        let mut rounds: Vec<Instant> = bursts
            .into_iter()
            .flatten()
            .flat_map(|start| (0..repeat).map(move |i| start + policy.interval * i))
            .collect();
        rounds.sort();
        AnnounceSchedule {
            rounds,
            refresh_at: (!policy.refresh.is_zero()).then(|| now + policy.refresh),
            ..AnnounceSchedule::default()
        }
    }

    /// When the driver must next call [`AnnounceSchedule::due`]; `None` when nothing is
    /// scheduled (never started, or stopped).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rounds
            .first()
            .copied()
            .into_iter()
            .chain(self.refresh_at)
            .chain(self.continue_at)
            .min()
    }

    /// The indexes of the `count` addresses to announce at `now`: the rounds that fell
    /// due (a refresh comes back `refresh` after it was due, not after `now`, so a late
    /// turn does not drift the schedule), at most [`FRAMES_PER_TURN`] of them; the rest
    /// on the next turns.
    pub fn due(&mut self, now: Instant, policy: &AnnouncePolicy, count: usize) -> Vec<usize> {
        let due_rounds = self.rounds.iter().take_while(|t| **t <= now).count();
        self.rounds.drain(..due_rounds);
        let mut rounds = due_rounds;
        if let Some(refresh) = self.refresh_at.filter(|t| *t <= now) {
            rounds += 1;
            // Never more than one refresh per turn, however late the turn.
            let mut next = refresh + policy.refresh;
            if next <= now {
                next = now + policy.refresh;
            }
            self.refresh_at = Some(next);
        }
        self.backlog.add(rounds.saturating_mul(count));
        let turn = self.backlog.take_turn(count);
        self.continue_at = (!self.backlog.is_empty()).then_some(now);
        turn
    }

    /// No more announcements (the instance left Master).
    pub fn stop(&mut self) {
        *self = AnnounceSchedule::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> AnnouncePolicy {
        AnnouncePolicy {
            repeat: 3,
            interval: 10 * MS,
            delay: 5000 * MS,
            refresh: Duration::ZERO,
        }
    }

    #[test]
    fn a_burst_now_and_again_after_the_delay() {
        let t0 = Instant::now();
        let policy = policy();
        let mut schedule = AnnounceSchedule::start(t0, &policy);
        assert_eq!(schedule.due(t0, &policy, 2), vec![0, 1]);
        assert_eq!(schedule.poll_timeout(), Some(t0 + 10 * MS));
        assert!(schedule.due(t0 + 9 * MS, &policy, 2).is_empty());
        assert_eq!(schedule.due(t0 + 10 * MS, &policy, 2), vec![0, 1]);
        assert_eq!(schedule.due(t0 + 20 * MS, &policy, 2), vec![0, 1]);
        assert_eq!(schedule.poll_timeout(), Some(t0 + 5000 * MS));
        // A late turn sends every round that fell due.
        assert_eq!(schedule.due(t0 + 5030 * MS, &policy, 2).len(), 6);
        assert_eq!(schedule.poll_timeout(), None);
    }

    #[test]
    fn no_second_burst_without_a_delay_and_repeat_zero_is_one_round() {
        let t0 = Instant::now();
        let policy = AnnouncePolicy {
            repeat: 0,
            delay: Duration::ZERO,
            ..policy()
        };
        let mut schedule = AnnounceSchedule::start(t0, &policy);
        assert_eq!(schedule.due(t0, &policy, 3), vec![0, 1, 2]);
        assert_eq!(schedule.poll_timeout(), None);
    }

    #[test]
    fn refresh_repeats_on_its_own_grid_and_never_bursts() {
        let t0 = Instant::now();
        let policy = AnnouncePolicy {
            repeat: 1,
            delay: Duration::ZERO,
            refresh: 100 * MS,
            ..policy()
        };
        let mut schedule = AnnounceSchedule::start(t0, &policy);
        assert_eq!(schedule.due(t0, &policy, 1), vec![0]);
        assert_eq!(schedule.poll_timeout(), Some(t0 + 100 * MS));
        // 3 ms late: the next one is still at 200 ms.
        assert_eq!(schedule.due(t0 + 103 * MS, &policy, 1), vec![0]);
        assert_eq!(schedule.poll_timeout(), Some(t0 + 200 * MS));
        // Starved for a second: one round, not ten, then the grid restarts from now.
        assert_eq!(schedule.due(t0 + 1200 * MS, &policy, 1), vec![0]);
        assert_eq!(schedule.poll_timeout(), Some(t0 + 1300 * MS));
    }

    #[test]
    fn thousands_of_addresses_go_out_a_turn_at_a_time() {
        let t0 = Instant::now();
        let policy = AnnouncePolicy {
            repeat: 1,
            delay: Duration::ZERO,
            ..policy()
        };
        let count = 1000;
        let mut schedule = AnnounceSchedule::start(t0, &policy);
        let mut sent = Vec::new();
        let mut turns = 0;
        let mut now = t0;
        loop {
            let turn = schedule.due(now, &policy, count);
            assert!(turn.len() <= FRAMES_PER_TURN);
            sent.extend(turn);
            turns += 1;
            match schedule.poll_timeout() {
                // The driver comes back on its next turn.
                Some(at) => {
                    assert_eq!(at, now);
                    now += MS;
                }
                None => break,
            }
        }
        assert_eq!(turns, count.div_ceil(FRAMES_PER_TURN));
        // Every address exactly once, in order.
        assert_eq!(sent, (0..count).collect::<Vec<_>>());
    }

    #[test]
    fn stopping_clears_everything_and_no_addresses_owe_nothing() {
        let t0 = Instant::now();
        let policy = policy();
        let mut schedule = AnnounceSchedule::start(t0, &policy);
        schedule.stop();
        assert_eq!(schedule.poll_timeout(), None);
        assert!(schedule.due(t0 + 6000 * MS, &policy, 2).is_empty());
        let mut schedule = AnnounceSchedule::start(t0, &policy);
        assert!(schedule.due(t0, &policy, 0).is_empty());
        assert_eq!(schedule.poll_timeout(), Some(t0 + 10 * MS));
    }

    #[test]
    fn a_backlog_cycles_over_the_addresses() {
        let mut backlog = Backlog::new(5);
        assert_eq!(backlog.take_turn(2), vec![0, 1, 0, 1, 0]);
        assert!(backlog.is_empty());
        let mut backlog = Backlog::new(FRAMES_PER_TURN + 1);
        assert_eq!(backlog.take_turn(3).len(), FRAMES_PER_TURN);
        assert_eq!(backlog.take_turn(3), vec![FRAMES_PER_TURN % 3]);
    }
}
