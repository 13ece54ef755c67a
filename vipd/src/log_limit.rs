//! Rate limits for warnings that repeat with every packet or advert.
//!
//! A peer with a different address list, or a link that refuses every send, would
//! otherwise log the same line a hundred times a second (one router logged 936 identical
//! warnings in 40 s under a barrage). RFC 9568 §7.1 asks receivers that log bad packets
//! to rate-limit the logging. Per key (instance, reason): the first occurrence is logged;
//! later ones within [`LogLimiter::period`] are only counted, and the count comes out as
//! one summary line when the period is over, either with the next occurrence or, when
//! none follows, from [`LogLimiter::poll_summaries`].
//!
//! Pure: the caller passes `now`, so tests run on a fake clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What to do with one occurrence of a repeated warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Log it; `suppressed` earlier occurrences of its key were counted but not logged
    /// since the last line (say so in the line when non-zero).
    Log {
        /// Occurrences not logged since the key's last line.
        suppressed: u64,
    },
    /// Count it, do not log it.
    Suppress,
}

/// Per key: when a line was last logged and how many occurrences were held back since.
#[derive(Debug)]
struct Window {
    logged_at: Instant,
    suppressed: u64,
}

/// At most one log line per key per `period`, counting the rest.
#[derive(Debug)]
pub struct LogLimiter<K> {
    period: Duration,
    windows: HashMap<K, Window>,
}

impl<K: Eq + Hash + Clone> LogLimiter<K> {
    /// A limiter allowing one line per key per `period`.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            windows: HashMap::new(),
        }
    }

    /// The period between two lines of one key.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// One occurrence of `key` at `now`: log it or count it.
    pub fn check(&mut self, now: Instant, key: K) -> Verdict {
        let period = self.period;
        match self.windows.get_mut(&key) {
            Some(window) if now.saturating_duration_since(window.logged_at) < period => {
                window.suppressed += 1;
                Verdict::Suppress
            }
            Some(window) => {
                let suppressed = std::mem::take(&mut window.suppressed);
                window.logged_at = now;
                Verdict::Log { suppressed }
            }
            None => {
                self.windows.insert(
                    key,
                    Window {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
                Verdict::Log { suppressed: 0 }
            }
        }
    }

    /// When [`LogLimiter::poll_summaries`] next has something to say: the end of the
    /// earliest period in which occurrences were held back.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.windows
            .values()
            .filter(|w| w.suppressed > 0)
            .map(|w| w.logged_at + self.period)
            .min()
    }

    /// The keys whose period is over with occurrences held back, and how many: log one
    /// summary line each. Such a summary starts a new period (so a steady stream gives
    /// one line per period), and keys quiet for a whole period are forgotten (their next
    /// occurrence is logged in full again).
    pub fn poll_summaries(&mut self, now: Instant) -> Vec<(K, u64)> {
        let period = self.period;
        let mut due = Vec::new();
        self.windows.retain(|key, window| {
            if now.saturating_duration_since(window.logged_at) < period {
                return true;
            }
            if window.suppressed == 0 {
                return false;
            }
            due.push((key.clone(), std::mem::take(&mut window.suppressed)));
            window.logged_at = now;
            true
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(10);

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn first_occurrence_is_logged_then_repeats_are_counted() {
        let t0 = Instant::now();
        let mut limiter = LogLimiter::new(PERIOD);
        assert_eq!(limiter.check(t0, "a"), Verdict::Log { suppressed: 0 });
        for ms in (10..1000).step_by(10) {
            assert_eq!(limiter.check(at(t0, ms), "a"), Verdict::Suppress);
        }
        // After the period, the next occurrence is logged with the count held back.
        assert_eq!(
            limiter.check(at(t0, 10_000), "a"),
            Verdict::Log { suppressed: 99 }
        );
        assert_eq!(limiter.check(at(t0, 10_010), "a"), Verdict::Suppress);
    }

    #[test]
    fn keys_are_limited_separately() {
        let t0 = Instant::now();
        let mut limiter = LogLimiter::new(PERIOD);
        assert_eq!(limiter.check(t0, ("r1", 1)), Verdict::Log { suppressed: 0 });
        assert_eq!(limiter.check(t0, ("r1", 2)), Verdict::Log { suppressed: 0 });
        assert_eq!(limiter.check(t0, ("r2", 1)), Verdict::Log { suppressed: 0 });
        assert_eq!(limiter.check(at(t0, 1), ("r1", 1)), Verdict::Suppress);
    }

    /// A barrage of 100 a second for 40 s gives 1 line plus one summary per period.
    #[test]
    fn a_barrage_gives_one_line_per_period() {
        let t0 = Instant::now();
        let mut limiter = LogLimiter::new(PERIOD);
        let mut lines = 0;
        let mut counted = 0;
        for ms in (0..40_000).step_by(10) {
            let now = at(t0, ms);
            for (_, suppressed) in limiter.poll_summaries(now) {
                lines += 1;
                counted += suppressed;
            }
            if let Verdict::Log { suppressed } = limiter.check(now, "mismatch") {
                lines += 1;
                counted += suppressed + 1;
            }
        }
        let now = at(t0, 50_000);
        for (_, suppressed) in limiter.poll_summaries(now) {
            lines += 1;
            counted += suppressed;
        }
        assert_eq!(lines, 5, "the first line and one per 10 s");
        assert_eq!(counted, 4000, "every occurrence is accounted for");
    }

    #[test]
    fn held_back_occurrences_are_summarised_when_the_period_ends() {
        let t0 = Instant::now();
        let mut limiter = LogLimiter::new(PERIOD);
        assert_eq!(limiter.next_deadline(), None);
        let _ = limiter.check(t0, "a");
        assert_eq!(limiter.next_deadline(), None, "nothing held back yet");
        let _ = limiter.check(at(t0, 5), "a");
        let _ = limiter.check(at(t0, 6), "a");
        assert_eq!(limiter.next_deadline(), Some(at(t0, 10_000)));
        assert!(limiter.poll_summaries(at(t0, 9_999)).is_empty());
        assert_eq!(limiter.poll_summaries(at(t0, 10_000)), vec![("a", 2)]);
        assert_eq!(limiter.next_deadline(), None);
        // Quiet for a whole period: forgotten, so the next one is logged in full.
        assert!(limiter.poll_summaries(at(t0, 20_000)).is_empty());
        assert_eq!(
            limiter.check(at(t0, 20_001), "a"),
            Verdict::Log { suppressed: 0 }
        );
    }
}
