//! Durations as operators write them: `"10ms"`, `"1.5s"`, `"2m"`, or a bare number of
//! seconds (`1`, `0.5`, `"3"`), which is how keepalived spells `advert_int 1`.
//!
//! Parsing is exact decimal arithmetic (no floats), so `"0.01"` is exactly 10 ms and a
//! later check such as "v3 intervals are whole centiseconds" cannot be fooled by rounding.

use std::time::Duration;

/// Why a duration text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text was empty or only whitespace.
    #[error("empty duration; write e.g. \"1s\" or \"100ms\"")]
    Empty,
    /// The number part is not a plain decimal such as `1`, `1.5` or `100`.
    #[error("{text:?} is not a duration; write e.g. \"1s\", \"1.5s\" or \"100ms\"")]
    NotANumber {
        /// The offending text.
        text: String,
    },
    /// The unit suffix is not one of `ms`, `s`, `m`, `h`.
    #[error("unknown unit {unit:?} in {text:?}; use ms, s, m or h (a bare number means seconds)")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// A negative duration.
    #[error("{text:?}: a duration cannot be negative")]
    Negative {
        /// The offending text.
        text: String,
    },
    /// Finer than a nanosecond.
    #[error("{text:?} is finer than a nanosecond")]
    TooPrecise {
        /// The offending text.
        text: String,
    },
    /// Too large to represent.
    #[error("{text:?} is too large")]
    TooLarge {
        /// The offending text.
        text: String,
    },
}

/// Parses a duration: a non-negative decimal number followed by an optional unit
/// (`ms`, `s`, `m`, `h`; none means seconds). Whitespace between number and unit is
/// allowed.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative { text: text.into() });
    }
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number = number.strip_prefix('+').unwrap_or(number);
    let nanos_per_unit: u128 = match unit.trim() {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => {
            return Err(DurationError::UnknownUnit {
                unit: other.into(),
                text: text.into(),
            });
        }
    };
    let not_a_number = || DurationError::NotANumber { text: text.into() };
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(not_a_number());
    }
    let too_large = || DurationError::TooLarge { text: text.into() };
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let mut nanos = whole.checked_mul(nanos_per_unit).ok_or_else(too_large)?;
    // Each fractional digit is worth a tenth of the previous one; a non-zero digit worth
    // less than a nanosecond cannot be represented.
    let mut place = nanos_per_unit;
    for digit in fraction.bytes().map(|b| u128::from(b - b'0')) {
        if !place.is_multiple_of(10) {
            if digit != 0 {
                return Err(DurationError::TooPrecise { text: text.into() });
            }
            continue;
        }
        place /= 10;
        nanos += digit * place;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_large())?;
    // The remainder of a division by 10^9 always fits in u32.
    let subsec = u32::try_from(nanos % 1_000_000_000).map_err(|_| too_large())?;
    Ok(Duration::new(secs, subsec))
}

/// Formats a duration the way [`parse`] reads it back, in the largest exact unit
/// (`"1s"`, `"1.5s"`, `"10ms"`, `"0s"`).
pub fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos.is_multiple_of(1_000_000_000) {
        format!("{}s", duration.as_secs())
    } else if nanos >= 1_000_000_000 {
        let text = format!("{}.{:09}", duration.as_secs(), duration.subsec_nanos());
        format!("{}s", text.trim_end_matches('0'))
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else {
        let text = format!("0.{:09}", duration.subsec_nanos());
        format!("{}s", text.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let ms = Duration::from_millis;
        let table: &[(&str, Duration)] = &[
            ("1", ms(1000)),
            ("1s", ms(1000)),
            ("1.5s", ms(1500)),
            ("1.5", ms(1500)),
            ("0.01", ms(10)),
            (".5s", ms(500)),
            ("3.", ms(3000)),
            ("10ms", ms(10)),
            ("100ms", ms(100)),
            ("15ms", ms(15)),
            ("1.5ms", Duration::from_micros(1500)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            (" 5 s ", ms(5000)),
            ("+2s", ms(2000)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("1.000000000000s", ms(1000)),
        ];
        for (text, want) in table {
            assert_eq!(parse(text), Ok(*want), "{text:?}");
        }
    }

    #[test]
    fn rejected_forms() {
        type Check = fn(&DurationError) -> bool;
        let table: &[(&str, Check)] = &[
            ("", |e| matches!(e, DurationError::Empty)),
            ("  ", |e| matches!(e, DurationError::Empty)),
            ("s", |e| matches!(e, DurationError::NotANumber { .. })),
            (".", |e| matches!(e, DurationError::NotANumber { .. })),
            ("1.2.3s", |e| matches!(e, DurationError::NotANumber { .. })),
            ("1x", |e| matches!(e, DurationError::UnknownUnit { .. })),
            ("1sec", |e| matches!(e, DurationError::UnknownUnit { .. })),
            ("1 s s", |e| matches!(e, DurationError::UnknownUnit { .. })),
            ("-1s", |e| matches!(e, DurationError::Negative { .. })),
            ("0.0000000001s", |e| {
                matches!(e, DurationError::TooPrecise { .. })
            }),
            ("0.0000001ms", |e| {
                matches!(e, DurationError::TooPrecise { .. })
            }),
            ("99999999999999999999999999999h", |e| {
                matches!(e, DurationError::TooLarge { .. })
            }),
        ];
        for (text, check) in table {
            match parse(text) {
                Ok(d) => panic!("{text:?} parsed as {d:?}"),
                Err(e) => assert!(check(&e), "{text:?}: unexpected {e:?}"),
            }
        }
    }

    #[test]
    fn format_round_trips() {
        for text in [
            "0s", "1s", "1.5s", "10ms", "15ms", "0.0015s", "40.95s", "120s",
        ] {
            let parsed = parse(text).unwrap();
            assert_eq!(format(parsed), text);
            assert_eq!(parse(&format(parsed)), Ok(parsed));
        }
    }
}
