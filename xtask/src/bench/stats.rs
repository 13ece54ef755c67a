//! Percentiles over a handful of samples.

use serde_json::{Value, json};

/// p50 / p99 / max of a set of samples (milliseconds), nearest-rank percentiles.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank: the max below 100 samples).
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Summary {
    /// None for no samples.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let r = (p / 100.0 * sorted.len() as f64).ceil() as usize;
            sorted[r.clamp(1, sorted.len()) - 1]
        };
        Some(Summary {
            n: sorted.len(),
            p50: rank(50.0),
            p99: rank(99.0),
            max: sorted[sorted.len() - 1],
        })
    }

    /// As JSON.
    pub fn to_json(self) -> Value {
        json!({ "n": self.n, "p50_ms": self.p50, "p99_ms": self.p99, "max_ms": self.max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s = Summary::of(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.n, s.p50, s.p99, s.max), (5, 3.0, 5.0, 5.0));
        assert!(Summary::of(&[]).is_none());
        let many: Vec<f64> = (1..=200).map(f64::from).collect();
        let s = Summary::of(&many).unwrap();
        assert_eq!((s.p50, s.p99, s.max), (100.0, 198.0, 200.0));
    }
}
