//! A short in-memory history of message counts and depths per topic and channel, so the UI can draw rate
//! and depth charts without graphite (Go's nsqadmin only charts through graphite).
//!
//! Without `--graphite-url`, [`poll`] samples the whole cluster every [`POLL_INTERVAL`] and keeps the last
//! [`MAX_POINTS`] samples of each topic and channel. `GET /api/history/:topic[/:channel]` answers them as
//! `{"topic", "channel", "interval_ms", "points": [{"ts", "message_count", "depth", "in_flight_count",
//! "rate"}], "message"}`, where `ts` is milliseconds since the epoch and `rate` is messages per second since
//! the previous point. With `--graphite-url` no history is kept; the route answers no points and a message
//! saying so, and the UI charts from graphite instead.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::Response;
use hyper::StatusCode;
use nsq_http::response::{v1_error, v1_json_value};
use parking_lot::Mutex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::Context;

/// How often the cluster is sampled.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How many samples are kept per topic or channel.
pub const MAX_POINTS: usize = 120;

/// One sample of a topic or channel.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Point {
    /// When it was taken, in milliseconds since the epoch.
    pub ts: u64,
    /// Messages received so far (summed over nodes).
    pub message_count: i64,
    /// Messages waiting (summed over nodes).
    pub depth: i64,
    /// Messages in flight (channels only; 0 for topics).
    pub in_flight_count: i64,
    /// Messages per second since the previous sample (0 for the first one, or after a counter reset).
    pub rate: f64,
}

/// The bounded histories, keyed by `(topic, channel)` with an empty channel for the topic itself.
#[derive(Debug, Default)]
pub struct History {
    series: Mutex<BTreeMap<(String, String), VecDeque<Point>>>,
}

impl History {
    /// Adds one sample; series not present in a round are dropped (their topic or channel is gone).
    pub fn record_round(&self, ts: u64, samples: Vec<((String, String), i64, i64, i64)>) {
        let mut series = self.series.lock();
        let mut fresh = BTreeMap::new();
        for (key, message_count, depth, in_flight_count) in samples {
            let mut points = series.remove(&key).unwrap_or_default();
            let rate = match points.back() {
                Some(prev) if ts > prev.ts && message_count >= prev.message_count => {
                    (message_count - prev.message_count) as f64 * 1000.0 / (ts - prev.ts) as f64
                }
                _ => 0.0,
            };
            points.push_back(Point {
                ts,
                message_count,
                depth,
                in_flight_count,
                rate,
            });
            while points.len() > MAX_POINTS {
                points.pop_front();
            }
            fresh.insert(key, points);
        }
        *series = fresh;
    }

    /// The samples of a topic (empty `channel`) or channel, oldest first.
    pub fn points(&self, topic: &str, channel: &str) -> Vec<Point> {
        self.series
            .lock()
            .get(&(topic.to_owned(), channel.to_owned()))
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Samples the cluster until `cancel` fires. Does nothing when `--graphite-url` is set.
pub async fn poll(ctx: Arc<Context>, cancel: CancellationToken) {
    if !ctx.opts().graphite_url.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let opts = ctx.opts();
        let producers = match ctx
            .cluster
            .producers(&opts.nsqlookupd_http_addresses, &opts.nsqd_http_addresses)
            .await
        {
            Ok(g) => g.value,
            Err(e) => {
                tracing::debug!("history: cannot list nodes - {e}");
                continue;
            }
        };
        let (topics, channels) = match ctx.cluster.nsqd_stats(&producers, "").await {
            Ok(g) => g.value,
            Err(e) => {
                tracing::debug!("history: cannot read stats - {e}");
                continue;
            }
        };
        let mut per_topic: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for t in &topics {
            let entry = per_topic.entry(t.topic_name.clone()).or_default();
            entry.0 += t.message_count;
            entry.1 += t.depth;
        }
        let mut samples: Vec<_> = per_topic
            .into_iter()
            .map(|(t, (count, depth))| ((t, String::new()), count, depth, 0))
            .collect();
        samples.extend(channels.values().map(|c| {
            (
                (c.topic_name.clone(), c.channel_name.clone()),
                c.message_count,
                c.depth,
                c.in_flight_count,
            )
        }));
        ctx.history.record_round(now_ms(), samples);
    }
}

/// Answers `GET /api/history/:topic[/:channel]` (`path` is without the base path); `None` for other paths.
pub fn answer(ctx: &Context, path: &str) -> Option<Response> {
    let rest = path.strip_prefix("/api/history/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (topic, channel) = match parts.as_slice() {
        [t] if !t.is_empty() => (*t, ""),
        [t, c] if !t.is_empty() && !c.is_empty() => (*t, *c),
        _ => return Some(v1_error(StatusCode::NOT_FOUND, "NOT_FOUND")),
    };
    #[derive(Serialize)]
    struct Body {
        topic: String,
        channel: String,
        interval_ms: u64,
        points: Vec<Point>,
        message: String,
    }
    let graphite = !ctx.opts().graphite_url.is_empty();
    let message = if graphite {
        "history is not kept when --graphite-url is set".to_owned()
    } else {
        String::new()
    };
    Some(v1_json_value(
        StatusCode::OK,
        &Body {
            topic: topic.to_owned(),
            channel: channel.to_owned(),
            interval_ms: POLL_INTERVAL.as_millis() as u64,
            points: ctx.history.points(topic, channel),
            message,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str, c: &str) -> (String, String) {
        (t.to_owned(), c.to_owned())
    }

    #[test]
    fn rates_and_bounds() {
        let h = History::default();
        h.record_round(1000, vec![(key("t", ""), 10, 5, 0)]);
        h.record_round(3000, vec![(key("t", ""), 30, 2, 0)]);
        let p = h.points("t", "");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].rate, 0.0);
        assert_eq!(p[1].rate, 10.0);
        assert_eq!(p[1].depth, 2);
        for i in 0..(MAX_POINTS as u64 + 10) {
            h.record_round(4000 + i * 1000, vec![(key("t", ""), 30, 0, 0)]);
        }
        assert_eq!(h.points("t", "").len(), MAX_POINTS);
        // A counter that went back (nsqd restarted) gives a zero rate, not a negative one.
        h.record_round(1_000_000, vec![(key("t", ""), 1, 0, 0)]);
        assert_eq!(h.points("t", "").last().unwrap().rate, 0.0);
    }

    #[test]
    fn vanished_series_are_dropped() {
        let h = History::default();
        h.record_round(
            1000,
            vec![(key("t", "c"), 1, 1, 1), (key("t", ""), 1, 0, 0)],
        );
        h.record_round(2000, vec![(key("t", ""), 1, 0, 0)]);
        assert!(h.points("t", "c").is_empty());
        assert_eq!(h.points("t", "").len(), 2);
    }
}
