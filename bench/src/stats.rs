//! Latency samples and their percentiles.

use std::time::Duration;

#[derive(Debug, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// The `pct` percentile (nearest rank); zero with no samples.
    pub fn p(&self, pct: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for i in 1..=100 {
            s.push(Duration::from_millis(i));
        }
        assert_eq!(s.p(50.0), Duration::from_millis(50));
        assert_eq!(s.p(99.0), Duration::from_millis(99));
        assert_eq!(s.p(100.0), Duration::from_millis(100));
        assert_eq!(Samples::default().p(99.0), Duration::ZERO);
    }
}
