//! Bounded polling: wait for a condition instead of sleeping for a guessed time.

use std::fmt::Debug;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Calls `condition` every `interval` until it returns true or `timeout` has passed.
///
/// Returns whether the condition became true. The condition is always checked at least
/// once, and once more at the deadline, so a short timeout cannot skip the last chance.
pub fn wait_until(
    timeout: Duration,
    interval: Duration,
    mut condition: impl FnMut() -> bool,
) -> bool {
    poll_until("condition", timeout, interval, || {
        if condition() { Ok(()) } else { Err("false") }
    })
    .is_ok()
}

/// Calls `probe` every `interval` until it returns `Ok`, for at most `timeout`.
///
/// `probe` returns `Err(what_it_saw)` while the condition does not hold yet; on timeout
/// the error names `what` is awaited and the last thing seen, which is usually all one
/// needs to debug a failing test.
pub fn poll_until<T, S: Debug>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Result<T, S>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last_seen = match probe() {
            Ok(value) => return Ok(value),
            Err(seen) => seen,
        };
        let now = Instant::now();
        if now >= deadline {
            anyhow::bail!(
                "timed out after {timeout:?} waiting for {what}; last seen: {last_seen:?}"
            );
        }
        sleep(interval.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_until_reports_last_seen_value() {
        let mut n = 0;
        let err = poll_until(
            "n to reach 100",
            Duration::from_millis(30),
            Duration::from_millis(5),
            || {
                n += 1;
                if n >= 100 { Ok(n) } else { Err(n) }
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("n to reach 100"), "{err}");
        assert!(err.contains(&format!("last seen: {n}")), "{err}");
    }

    #[test]
    fn poll_until_returns_first_success() {
        let mut n = 0;
        let got = poll_until(
            "n to reach 3",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                if n >= 3 { Ok(n) } else { Err(n) }
            },
        )
        .unwrap();
        assert_eq!(got, 3);
    }

    #[test]
    fn wait_until_checks_at_least_once() {
        assert!(wait_until(Duration::ZERO, Duration::from_millis(1), || {
            true
        }));
        assert!(!wait_until(
            Duration::ZERO,
            Duration::from_millis(1),
            || false
        ));
    }
}
