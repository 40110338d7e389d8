//! End-to-end processing latency quantiles (Go's `internal/quantile`).
//!
//! Go keeps two biased-quantile streams, each covering half of `--e2e-processing-latency-window-time`, and
//! answers from both. We keep the same two half-windows, but each holds a bounded reservoir sample of the
//! latencies, so memory stays fixed however busy a channel is and a query is a sort of at most a few thousand
//! values (queries only happen on `/stats`).

use rand::Rng;
use tokio::time::Instant;

use std::time::Duration;

/// Samples kept per half-window.
const RESERVOIR: usize = 2048;

#[derive(Debug, Default, Clone)]
struct Window {
    samples: Vec<i64>,
    seen: u64,
}

impl Window {
    fn insert(&mut self, value: i64) {
        self.seen += 1;
        if self.samples.len() < RESERVOIR {
            self.samples.push(value);
        } else {
            let slot = rand::thread_rng().gen_range(0..self.seen);
            if let Ok(slot) = usize::try_from(slot) {
                if slot < RESERVOIR {
                    self.samples[slot] = value;
                }
            }
        }
    }
}

/// A rolling latency quantile estimator.
#[derive(Debug, Clone)]
pub(crate) struct Quantile {
    windows: [Window; 2],
    current: usize,
    last_move: Instant,
    move_every: Duration,
}

impl Quantile {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            windows: Default::default(),
            current: 0,
            last_move: Instant::now(),
            move_every: window / 2,
        }
    }

    /// Records one latency in nanoseconds.
    pub(crate) fn insert(&mut self, value: i64) {
        self.rotate();
        self.windows[self.current].insert(value);
    }

    /// Adds another estimator's samples (a topic merging its channels).
    pub(crate) fn merge(&mut self, other: &Quantile) {
        for w in other.live() {
            for &v in &w.samples {
                self.windows[self.current].insert(v);
            }
            // Count what the other side saw, not just what it kept.
            self.windows[self.current].seen += w.seen.saturating_sub(w.samples.len() as u64);
        }
    }

    /// Number of latencies recorded in the live windows.
    pub(crate) fn count(&self) -> u64 {
        self.live().map(|w| w.seen).sum()
    }

    /// The value at each quantile `q` in (0, 1]; 0 when nothing was recorded.
    pub(crate) fn query(&self, quantiles: &[f64]) -> Vec<(f64, f64)> {
        let mut all: Vec<i64> = self
            .live()
            .flat_map(|w| w.samples.iter().copied())
            .collect();
        all.sort_unstable();
        quantiles
            .iter()
            .map(|&q| {
                if all.is_empty() {
                    return (q, 0.0);
                }
                let rank = ((q * all.len() as f64).ceil() as usize).clamp(1, all.len());
                (q, all[rank - 1] as f64)
            })
            .collect()
    }

    /// Half-windows passed since the live window last moved. Go moves the windows once per half-window passed,
    /// on every insert and every query, so a latency is reported for at most the whole window even on a channel
    /// that has gone quiet. A zero window keeps nothing.
    fn moves_due(&self, now: Instant) -> u128 {
        if self.move_every.is_zero() {
            return 2;
        }
        now.saturating_duration_since(self.last_move).as_nanos() / self.move_every.as_nanos()
    }

    /// The windows a query sees: both, only the current one once a move is due (the other would be cleared),
    /// or none once two moves are due. Queries take `&self`, so they skip stale windows instead of moving them.
    fn live(&self) -> impl Iterator<Item = &Window> {
        let moves = self.moves_due(Instant::now());
        let current = self.current;
        self.windows
            .iter()
            .enumerate()
            .filter(move |&(i, _)| moves == 0 || (moves == 1 && i == current))
            .map(|(_, w)| w)
    }

    fn rotate(&mut self) {
        let now = Instant::now();
        match self.moves_due(now) {
            0 => return,
            1 => {
                self.current ^= 1;
                self.windows[self.current] = Window::default();
            }
            _ => self.windows = Default::default(),
        }
        // Keep the window boundaries where Go keeps them: whole half-windows after creation.
        let behind = if self.move_every.is_zero() {
            0
        } else {
            now.saturating_duration_since(self.last_move).as_nanos() % self.move_every.as_nanos()
        };
        let behind = Duration::from_nanos(u64::try_from(behind).unwrap_or(0));
        self.last_move = now.checked_sub(behind).unwrap_or(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_uniform_range() {
        let mut q = Quantile::new(Duration::from_secs(600));
        for v in 1..=1000 {
            q.insert(v);
        }
        let r = q.query(&[0.99, 0.5]);
        assert!((r[0].1 - 990.0).abs() <= 30.0, "{r:?}");
        assert!((r[1].1 - 500.0).abs() <= 50.0, "{r:?}");
        assert_eq!(q.count(), 1000);
    }

    #[test]
    fn empty_estimator_answers_zero() {
        let q = Quantile::new(Duration::from_secs(600));
        assert_eq!(q.query(&[0.5]), vec![(0.5, 0.0)]);
        assert_eq!(q.count(), 0);
    }
}
