//! Result types of a benchmark run and how they are printed.
//!
//! The human line copies the shape of Go's `bench_writer`/`bench_reader` log line so the two
//! can be compared side by side; the same values are also serialisable for `--json`.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Messages moved in a timed run: what the writer got acknowledged or the reader received.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Throughput {
    /// Wall time from the start signal until the last worker finished, in seconds.
    pub duration_s: f64,
    /// Messages acknowledged (writer) or received and finished (reader).
    pub msgs: u64,
    /// Body size of each message, used for the MB/s figure.
    pub size: usize,
    /// Megabytes (MiB, as Go computes it) of message bodies per second.
    pub mb_per_s: f64,
    /// Messages per second.
    pub ops_per_s: f64,
    /// Microseconds of wall time per message.
    pub us_per_op: f64,
    /// Connections used.
    pub workers: usize,
}

impl Throughput {
    /// Derives the rates from a message count and the wall time the run took.
    pub fn new(msgs: u64, size: usize, duration: Duration, workers: usize) -> Self {
        let secs = duration.as_secs_f64().max(f64::MIN_POSITIVE);
        // Message counts stay far below 2^52, so the conversion to f64 is exact.
        #[allow(clippy::cast_precision_loss)]
        let (msgs_f, size_f) = (msgs as f64, size as f64);
        Self {
            duration_s: duration.as_secs_f64(),
            msgs,
            size,
            mb_per_s: msgs_f * size_f / secs / 1024.0 / 1024.0,
            ops_per_s: msgs_f / secs,
            us_per_op: if msgs == 0 {
                0.0
            } else {
                duration.as_secs_f64() * 1e6 / msgs_f
            },
            workers,
        }
    }
}

impl fmt::Display for Throughput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "duration: {:.2}s - {:.1}MB/s - {:.1}ops/s - {:.3}us/op",
            self.duration_s, self.mb_per_s, self.ops_per_s, self.us_per_op
        )
    }
}

/// Publish-to-receive latency for one RDY setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyReport {
    /// The RDY count the subscriber used.
    pub rdy: u32,
    /// Messages published (and acknowledged) during the phase.
    pub published: u64,
    /// Messages of this run received by the subscriber.
    pub received: u64,
    /// Median latency in microseconds.
    pub p50_us: f64,
    /// 99th percentile in microseconds.
    pub p99_us: f64,
    /// 99.9th percentile in microseconds.
    pub p999_us: f64,
    /// Worst latency in microseconds.
    pub max_us: f64,
}

impl LatencyReport {
    /// Summarises raw latencies (nanoseconds); sorts `samples` in place.
    pub fn from_samples(rdy: u32, published: u64, samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        let us = |ns: u64| {
            // Nanosecond latencies fit in f64's 52-bit mantissa for any sane run.
            #[allow(clippy::cast_precision_loss)]
            let ns = ns as f64;
            ns / 1000.0
        };
        Self {
            rdy,
            published,
            received: samples.len() as u64,
            p50_us: us(percentile(samples, 0.50)),
            p99_us: us(percentile(samples, 0.99)),
            p999_us: us(percentile(samples, 0.999)),
            max_us: us(samples.last().copied().unwrap_or(0)),
        }
    }
}

impl fmt::Display for LatencyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "latency rdy={}: {}/{} msgs - p50 {:.1}us - p99 {:.1}us - p999 {:.1}us - max {:.1}us",
            self.rdy,
            self.received,
            self.published,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us
        )
    }
}

/// Nearest-rank percentile of sorted samples; 0 for an empty set.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // The rank is at most `len`, so the float round trip cannot overflow or go negative.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_line_matches_go_shape_and_units() {
        // 5,468,159 messages of 200 bytes in 10 s: the example line from the task brief.
        let t = Throughput::new(5_468_159, 200, Duration::from_secs(10), 2);
        assert_eq!(
            t.to_string(),
            "duration: 10.00s - 104.3MB/s - 546815.9ops/s - 1.829us/op"
        );
    }

    #[test]
    fn zero_messages_do_not_divide_by_zero() {
        let t = Throughput::new(0, 200, Duration::ZERO, 1);
        assert_eq!(t.us_per_op, 0.0);
        assert_eq!(t.ops_per_s, 0.0);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), 500);
        assert_eq!(percentile(&v, 0.99), 990);
        assert_eq!(percentile(&v, 0.999), 999);
        assert_eq!(percentile(&v, 1.0), 1000);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.999), 7);
    }

    #[test]
    fn latency_report_sorts_and_converts_to_micros() {
        let mut v = vec![3_000, 1_000, 2_000];
        let r = LatencyReport::from_samples(1, 3, &mut v);
        assert_eq!((r.p50_us, r.max_us, r.received), (2.0, 3.0, 3));
    }
}
