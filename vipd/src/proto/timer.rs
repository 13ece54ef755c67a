//! Timers as data, and the RFC 5798 §6.1 timing formulas.
//!
//! No I/O, no clock: a [`TimerTable`] only stores deadlines that the state machine computed
//! from the `now` it was handed. The driver reads the earliest one through
//! [`Instance::poll_timeout`](super::instance::Instance::poll_timeout) and sleeps until
//! then.
//!
//! # Rounding
//!
//! RFC 5798 states Skew_Time in centiseconds, `((256 - Priority) * Master_Adver_Interval)
//! / 256`. Integer centiseconds would truncate up to 9.99 ms, which at a 10 ms interval
//! (1 cs) makes every Skew_Time zero and removes the priority ordering among backups. We
//! therefore compute in nanoseconds and round down to the nanosecond: the result is within
//! 1 ns of the exact rational value, and never larger. Master_Down_Interval is then
//! `3 × Master_Adver_Interval + Skew_Time`, exact apart from that nanosecond.
//!
//! # Adver_Timer runs on a grid
//!
//! RFC 5798 §6.4.3 says that when the Adver_Timer fires the master sends an advert and
//! "Reset[s] the Adver_Timer to Advertisement_Interval". Measured from the moment the
//! driver got round to it, every wake-up's lateness (scheduling, a timer that rounds up
//! to the millisecond) would add up: at 10 ms, 0.9 ms late each time is 9 % fewer adverts
//! and 9 % less of the backups' margin. [`next_advert_deadline`] measures from the
//! deadline that fired instead, so adverts stay on the grid `start + k × interval` and a
//! late wake-up only delays one advert.
//!
//! A master that was starved for a whole interval or more sends one advert at once and
//! starts a new grid at `now + interval`. It does not catch up with a burst: one advert
//! resets the backups' Master_Down_Timer as well as several would, and a burst would put
//! adverts closer together than Advertisement_Interval. It does not keep the old grid
//! either, whose next point could fall microseconds after the advert just sent.
//!
//! Every other "Reset the Adver_Timer" (becoming master, answering a priority-0 advert,
//! re-asserting against a lower-priority master) sends an advert at `now` and so starts
//! the grid again at `now + interval`.

use std::time::{Duration, Instant};

use super::wire::{Centiseconds, Version};

/// Nanoseconds in one centisecond.
const NANOS_PER_CENTISECOND: u128 = 10_000_000;
/// Nanoseconds in one second.
const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// The timers of one VRRP instance (RFC 5798 §6.2). Only one runs at a time: Adver_Timer
/// in Master, Master_Down_Timer in Backup, the failure retry in a Fault entered because
/// the instance could not act as master, none in Initialize or another Fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Adver_Timer: when it fires, a master sends an advertisement.
    Advert,
    /// Master_Down_Timer: when it fires, a backup declares the master dead and takes over.
    MasterDown,
    /// Not RFC: when a Fault entered because the VIPs could not be added or adverts could
    /// not be sent ends, and the instance tries again from Backup.
    FailureRetry,
}

impl Timer {
    /// Every timer, in table order.
    pub const ALL: [Timer; 3] = [Timer::Advert, Timer::MasterDown, Timer::FailureRetry];

    const fn index(self) -> usize {
        match self {
            Timer::Advert => 0,
            Timer::MasterDown => 1,
            Timer::FailureRetry => 2,
        }
    }
}

/// One optional deadline per [`Timer`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimerTable {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    /// Arms `timer` to fire at `deadline`, replacing any earlier setting.
    pub fn set(&mut self, timer: Timer, deadline: Instant) {
        self.deadlines[timer.index()] = Some(deadline);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.deadlines = Default::default();
    }

    /// When `timer` fires, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// The earliest armed deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the earliest timer whose deadline is at or before `now`, with
    /// that deadline (the Adver_Timer re-arms from it, see [`next_advert_deadline`]).
    pub fn pop_expired(&mut self, now: Instant) -> Option<(Timer, Instant)> {
        let (timer, deadline) = Timer::ALL
            .iter()
            .filter_map(|&timer| self.get(timer).map(|deadline| (timer, deadline)))
            .filter(|&(_, deadline)| deadline <= now)
            .min_by_key(|&(_, deadline)| deadline)?;
        self.stop(timer);
        Some((timer, deadline))
    }
}

/// When the Adver_Timer fires next, after it fired for `deadline` and was handled at
/// `now` (see the module doc): one `interval` after `deadline`, or, if that has passed
/// already (the master is a whole interval or more behind), one `interval` after `now`.
pub fn next_advert_deadline(deadline: Instant, now: Instant, interval: Duration) -> Instant {
    let next = deadline + interval;
    if next > now { next } else { now + interval }
}

/// Skew_Time (RFC 5798 §6.1 for v3, RFC 3768 §6.1 for v2), rounded down to the nanosecond.
///
/// - v3: `((256 - Priority) × Master_Adver_Interval) / 256`.
/// - v2: `(256 - Priority) / 256` seconds; the interval does not enter.
pub fn skew_time(version: Version, priority: u8, master_adver_interval: Centiseconds) -> Duration {
    let weight = 256 - u128::from(priority);
    let nanos = match version {
        Version::V3 => weight * u128::from(master_adver_interval.0) * NANOS_PER_CENTISECOND / 256,
        Version::V2 => weight * NANOS_PER_SECOND / 256,
    };
    // At most 256 × 4095 cs × 10^7 / 256 ≈ 4.1 × 10^10 ns, far inside u64.
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Master_Down_Interval (RFC 5798 §6.1; RFC 3768 §6.1 for v2):
/// `3 × Master_Adver_Interval + Skew_Time`. For v2 the caller passes the configured
/// Advertisement_Interval, since v2 never learns the master's.
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_interval: Centiseconds,
) -> Duration {
    master_adver_interval.as_duration() * 3 + skew_time(version, priority, master_adver_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5798_6_1_skew_time_v3_is_exact_to_the_nanosecond() {
        // (256 - 100) × 100 cs / 256 = 60.9375 cs = 609.375 ms.
        assert_eq!(
            skew_time(Version::V3, 100, Centiseconds(100)),
            Duration::from_nanos(609_375_000)
        );
        // A 10 ms interval must still order backups by priority: 1 cs × 156 / 256.
        let low = skew_time(Version::V3, 100, Centiseconds(1));
        let high = skew_time(Version::V3, 200, Centiseconds(1));
        assert_eq!(low, Duration::from_nanos(6_093_750));
        assert!(high < low && !high.is_zero());
        // Owner: 1/256 of the interval.
        assert_eq!(
            skew_time(Version::V3, 255, Centiseconds(256)),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn rfc3768_6_1_skew_time_v2_ignores_interval() {
        let expected = Duration::from_nanos(156 * 1_000_000_000 / 256);
        assert_eq!(skew_time(Version::V2, 100, Centiseconds(100)), expected);
        assert_eq!(skew_time(Version::V2, 100, Centiseconds(500)), expected);
    }

    #[test]
    fn rfc5798_6_1_master_down_interval_is_three_intervals_plus_skew() {
        assert_eq!(
            master_down_interval(Version::V3, 100, Centiseconds(100)),
            Duration::from_nanos(3_609_375_000)
        );
        assert_eq!(
            master_down_interval(Version::V2, 100, Centiseconds(300)),
            Duration::from_secs(9) + Duration::from_nanos(609_375_000)
        );
        // Largest v3 interval does not overflow.
        assert_eq!(
            master_down_interval(Version::V3, 1, Centiseconds(4095)),
            Duration::from_millis(40_950 * 3) + Duration::from_nanos(255 * 4095 * 10_000_000 / 256)
        );
    }

    #[test]
    fn timer_table_pops_earliest_expired_first_and_only_expired() {
        let base = Instant::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next_timeout(), None);
        table.set(Timer::MasterDown, base + Duration::from_secs(2));
        table.set(Timer::Advert, base + Duration::from_secs(1));
        assert_eq!(table.next_timeout(), Some(base + Duration::from_secs(1)));
        assert_eq!(table.pop_expired(base), None);
        let late = base + Duration::from_secs(3);
        assert_eq!(
            table.pop_expired(late),
            Some((Timer::Advert, base + Duration::from_secs(1)))
        );
        assert_eq!(
            table.pop_expired(late),
            Some((Timer::MasterDown, base + Duration::from_secs(2)))
        );
        assert_eq!(table.pop_expired(late), None);
        table.set(Timer::Advert, late);
        table.stop_all();
        assert_eq!(table.get(Timer::Advert), None);
    }

    #[test]
    fn next_advert_deadline_keeps_the_grid_unless_a_whole_interval_behind() {
        let base = Instant::now();
        let interval = Duration::from_millis(10);
        let ms = Duration::from_millis;
        // On time and late by less than an interval: the next grid point.
        assert_eq!(next_advert_deadline(base, base, interval), base + ms(10));
        assert_eq!(
            next_advert_deadline(base, base + ms(9), interval),
            base + ms(10)
        );
        // Exactly one interval behind: the grid point is now, and firing again at once
        // would be a burst; a new grid starts.
        assert_eq!(
            next_advert_deadline(base, base + ms(10), interval),
            base + ms(20)
        );
        assert_eq!(
            next_advert_deadline(base, base + ms(35), interval),
            base + ms(45)
        );
    }
}
