//! `GET /metrics`: nsqd's figures in the Prometheus text exposition format (version 0.0.4), so a Prometheus
//! server can scrape nsqd without a sidecar exporter. Go NSQ has no such endpoint (nsqio/nsq#732); the
//! metric list, with each metric's `/stats` source, is in `docs/prometheus.md`.
//!
//! Every value comes from the same [`Snapshot`] that `/stats` renders, taken once per scrape (nothing is
//! counted per message), so a scrape and a `/stats` call taken at the same moment agree. The format is
//! written here by hand: `# HELP` and `# TYPE` once per family, then the family's samples, families in a fixed
//! order and samples in the snapshot's (topic and channel names sorted).

use std::sync::Arc;

use axum::response::Response;
use hyper::StatusCode;
use nsq_core::stats::{ChannelStats, E2eStats, TopicStats};
use nsq_http::prometheus::{
    self, counter, format_float, gauge, Exposition, Family, Process, Samples, Value,
};
use nsq_http::response::v1_error;

use super::stats::{self, Snapshot, StatsParams};
use crate::context::Context;

/// `GET /metrics`. Like `/stats`, the snapshot and its rendering run on the blocking pool.
pub(crate) async fn handle(ctx: &Arc<Context>) -> Response {
    let ctx = Arc::clone(ctx);
    let rendered = tokio::task::spawn_blocking(move || {
        let params = StatsParams {
            json: false,
            topic: String::new(),
            channel: String::new(),
            // Clients are needed for the producer count, memory for the resident set size.
            include_clients: true,
            include_mem: true,
        };
        let snap = stats::snapshot(&ctx, &params);
        // The start time `/stats` reports, so the two agree to the second.
        #[allow(clippy::cast_precision_loss)]
        let process = Process {
            start_time_seconds: Some(snap.start_time as f64),
            ..Process::read()
        };
        render(&snap, &process)
    })
    .await;
    match rendered {
        Ok(body) => prometheus::response(body),
        Err(err) => {
            tracing::error!("/metrics task failed: {err}");
            v1_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR")
        }
    }
}

/// Renders a snapshot with the process figures.
fn render(snap: &Snapshot, process: &Process) -> String {
    let topics = snap.topics.as_deref().unwrap_or_default();
    let mut exp = Exposition::default();

    exp.family(BUILD_INFO)
        .sample(&[("version", crate::NSQ_VERSION)], 1_u64);
    exp.process(process);

    exp.family(TOPICS).sample(&[], topics.len());
    let producers = snap.producers.as_deref().map_or(0, <[_]>::len);
    exp.family(PRODUCERS).sample(&[], producers);
    let consumers: usize = topics
        .iter()
        .flat_map(|t| &t.channels)
        .map(|c| c.client_count)
        .sum();
    exp.family(CONSUMERS).sample(&[], consumers);

    per_topic(&mut exp, TOPIC_DEPTH, topics, |t| t.depth.into());
    per_topic(&mut exp, TOPIC_BACKEND_DEPTH, topics, |t| {
        t.backend_depth.into()
    });
    per_topic(&mut exp, TOPIC_MESSAGES, topics, |t| t.message_count.into());
    per_topic(&mut exp, TOPIC_MESSAGE_BYTES, topics, |t| {
        t.message_bytes.into()
    });
    per_topic(&mut exp, TOPIC_PAUSED, topics, |t| t.paused.into());
    per_topic(&mut exp, TOPIC_CHANNELS, topics, |t| {
        t.channels.len().into()
    });
    let mut e2e = exp.family(TOPIC_E2E);
    for t in topics {
        quantiles(
            &mut e2e,
            &[("topic", &t.topic_name)],
            &t.e2e_processing_latency,
        );
    }
    let mut e2e = exp.family(TOPIC_E2E_SAMPLES);
    for t in topics {
        window_count(
            &mut e2e,
            &[("topic", &t.topic_name)],
            &t.e2e_processing_latency,
        );
    }

    per_channel(&mut exp, CHANNEL_DEPTH, topics, |c| c.depth.into());
    per_channel(&mut exp, CHANNEL_BACKEND_DEPTH, topics, |c| {
        c.backend_depth.into()
    });
    per_channel(&mut exp, CHANNEL_IN_FLIGHT, topics, |c| {
        c.in_flight_count.into()
    });
    per_channel(&mut exp, CHANNEL_DEFERRED, topics, |c| {
        c.deferred_count.into()
    });
    per_channel(&mut exp, CHANNEL_MESSAGES, topics, |c| {
        c.message_count.into()
    });
    per_channel(&mut exp, CHANNEL_REQUEUES, topics, |c| {
        c.requeue_count.into()
    });
    per_channel(&mut exp, CHANNEL_TIMEOUTS, topics, |c| {
        c.timeout_count.into()
    });
    per_channel(&mut exp, CHANNEL_CLIENTS, topics, |c| c.client_count.into());
    per_channel(&mut exp, CHANNEL_PAUSED, topics, |c| c.paused.into());
    let mut e2e = exp.family(CHANNEL_E2E);
    for t in topics {
        for c in &t.channels {
            let labels = [
                ("topic", t.topic_name.as_str()),
                ("channel", &c.channel_name),
            ];
            quantiles(&mut e2e, &labels, &c.e2e_processing_latency);
        }
    }
    let mut e2e = exp.family(CHANNEL_E2E_SAMPLES);
    for t in topics {
        for c in &t.channels {
            let labels = [
                ("topic", t.topic_name.as_str()),
                ("channel", &c.channel_name),
            ];
            window_count(&mut e2e, &labels, &c.e2e_processing_latency);
        }
    }
    exp.finish()
}

const BUILD_INFO: Family = gauge(
    "nsq_build_info",
    "Always 1; the version label is the NSQ version this nsqd is compatible with.",
);
const TOPICS: Family = gauge("nsq_topics", "Number of topics.");
const PRODUCERS: Family = gauge(
    "nsq_producer_clients",
    "Connected clients that have published at least once.",
);
const CONSUMERS: Family = gauge(
    "nsq_consumer_clients",
    "Clients subscribed to a channel, summed over all channels.",
);
const TOPIC_DEPTH: Family = gauge(
    "nsq_topic_depth",
    "Messages waiting at the topic, in memory and on disk.",
);
const TOPIC_BACKEND_DEPTH: Family = gauge(
    "nsq_topic_backend_depth",
    "Messages waiting in the topic's disk queue.",
);
const TOPIC_MESSAGES: Family = counter(
    "nsq_topic_messages_total",
    "Messages published to the topic since nsqd started.",
);
const TOPIC_MESSAGE_BYTES: Family = counter(
    "nsq_topic_message_bytes_total",
    "Message body bytes published to the topic since nsqd started.",
);
const TOPIC_PAUSED: Family = gauge("nsq_topic_paused", "1 when the topic is paused, else 0.");
const TOPIC_CHANNELS: Family = gauge("nsq_topic_channels", "Number of channels of the topic.");
const TOPIC_E2E: Family = gauge(
    "nsq_topic_e2e_processing_latency_seconds",
    "End-to-end processing latency quantile over the topic's channels, in the current window.",
);
const TOPIC_E2E_SAMPLES: Family = gauge(
    "nsq_topic_e2e_processing_latency_samples",
    "Latencies recorded in the current window of the topic's quantiles.",
);
const CHANNEL_DEPTH: Family = gauge(
    "nsq_channel_depth",
    "Messages waiting in the channel, in memory and on disk.",
);
const CHANNEL_BACKEND_DEPTH: Family = gauge(
    "nsq_channel_backend_depth",
    "Messages waiting in the channel's disk queue.",
);
const CHANNEL_IN_FLIGHT: Family = gauge(
    "nsq_channel_in_flight",
    "Messages sent to a client and not yet finished, requeued or timed out.",
);
const CHANNEL_DEFERRED: Family = gauge(
    "nsq_channel_deferred",
    "Messages waiting for their deferral or requeue delay to pass.",
);
const CHANNEL_MESSAGES: Family = counter(
    "nsq_channel_messages_total",
    "Messages the channel has received from its topic since it was created.",
);
const CHANNEL_REQUEUES: Family = counter(
    "nsq_channel_requeues_total",
    "Messages requeued by clients.",
);
const CHANNEL_TIMEOUTS: Family = counter(
    "nsq_channel_timeouts_total",
    "In-flight messages that timed out.",
);
const CHANNEL_CLIENTS: Family = gauge("nsq_channel_clients", "Clients subscribed to the channel.");
const CHANNEL_PAUSED: Family = gauge(
    "nsq_channel_paused",
    "1 when the channel is paused, else 0.",
);
const CHANNEL_E2E: Family = gauge(
    "nsq_channel_e2e_processing_latency_seconds",
    "End-to-end processing latency quantile of the channel, in the current window.",
);
const CHANNEL_E2E_SAMPLES: Family = gauge(
    "nsq_channel_e2e_processing_latency_samples",
    "Latencies recorded in the current window of the channel's quantiles.",
);

/// One sample per topic.
fn per_topic(
    exp: &mut Exposition,
    family: Family,
    topics: &[TopicStats],
    value: impl Fn(&TopicStats) -> Value,
) {
    let mut samples = exp.family(family);
    for t in topics {
        samples.sample(&[("topic", &t.topic_name)], value(t));
    }
}

/// One sample per channel, topic by topic.
fn per_channel(
    exp: &mut Exposition,
    family: Family,
    topics: &[TopicStats],
    value: impl Fn(&ChannelStats) -> Value,
) {
    let mut samples = exp.family(family);
    for t in topics {
        for c in &t.channels {
            samples.sample(
                &[("topic", &t.topic_name), ("channel", &c.channel_name)],
                value(c),
            );
        }
    }
}

/// One sample per configured quantile, in seconds; nothing when no quantiles are configured.
fn quantiles(samples: &mut Samples<'_>, labels: &[(&str, &str)], e2e: &E2eStats) {
    for &(quantile, nanos) in e2e.percentiles.as_deref().unwrap_or_default() {
        let quantile = format_float(quantile);
        let mut with_quantile = labels.to_vec();
        with_quantile.push(("quantile", &quantile));
        samples.sample(&with_quantile, nanos / 1e9);
    }
}

/// The window's sample count, when quantiles are configured.
fn window_count(samples: &mut Samples<'_>, labels: &[(&str, &str)], e2e: &E2eStats) {
    if e2e.percentiles.is_some() {
        samples.sample(labels, e2e.count);
    }
}

#[cfg(test)]
mod tests {
    use nsq_core::stats::{ChannelStats, ClientStats, E2eStats, TopicStats};

    use super::super::stats::MemStats;
    use super::*;

    /// The process figures the rendering tests expect to see.
    fn process() -> Process {
        Process {
            start_time_seconds: Some(1_700_000_000.0),
            resident_memory_bytes: Some(4096),
            open_fds: Some(12),
        }
    }

    fn channel(name: &str, clients: usize) -> ChannelStats {
        ChannelStats {
            channel_name: name.to_owned(),
            depth: 3,
            backend_depth: 1,
            in_flight_count: 2,
            deferred_count: 1,
            message_count: 10,
            requeue_count: 4,
            timeout_count: 5,
            client_count: clients,
            paused: name == "b",
            ..ChannelStats::default()
        }
    }

    fn snapshot(topics: Vec<TopicStats>) -> Snapshot {
        Snapshot {
            start_time: 1_700_000_000,
            now_ns: 1_700_000_100_000_000_000,
            topics: Some(topics),
            producers: Some(vec![ClientStats::default()]),
            memory: Some(MemStats {
                heap_in_use_bytes: 4096,
                ..MemStats::default()
            }),
            topic_filter: String::new(),
            include_clients: true,
        }
    }

    fn two_topics() -> Vec<TopicStats> {
        vec![
            TopicStats {
                topic_name: "alpha".to_owned(),
                channels: vec![channel("a", 1), channel("b", 2)],
                depth: 7,
                backend_depth: 2,
                message_count: u64::MAX,
                message_bytes: 123,
                paused: true,
                e2e_processing_latency: E2eStats {
                    count: 9,
                    percentiles: Some(vec![(0.99, 2_500_000.0), (0.5, 1_000_000.0)]),
                },
            },
            TopicStats {
                topic_name: "beta".to_owned(),
                ..TopicStats::default()
            },
        ]
    }

    /// The sample lines of `name` (exactly that name, any labels).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .collect()
    }

    #[test]
    fn families_without_topics_are_left_out() {
        let mut exp = Exposition::default();
        per_topic(&mut exp, TOPIC_DEPTH, &[], |t| t.depth.into());
        per_channel(&mut exp, CHANNEL_DEPTH, &[], |c| c.depth.into());
        assert_eq!(exp.finish(), "");
    }

    #[test]
    fn each_family_is_headed_once_and_its_samples_are_contiguous() {
        let text = render(&snapshot(two_topics()), &process());
        let mut seen: Vec<&str> = Vec::new();
        let mut current = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!seen.contains(&name), "{name} has two HELP lines");
                seen.push(name);
                current = name;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert_eq!(rest.split(' ').next().unwrap(), current);
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "sample {line:?} outside its family");
            }
        }
        let families = [
            BUILD_INFO,
            prometheus::START_TIME,
            prometheus::RESIDENT_MEMORY,
            prometheus::OPEN_FDS,
            TOPICS,
            PRODUCERS,
            CONSUMERS,
            TOPIC_DEPTH,
            TOPIC_BACKEND_DEPTH,
            TOPIC_MESSAGES,
            TOPIC_MESSAGE_BYTES,
            TOPIC_PAUSED,
            TOPIC_CHANNELS,
            TOPIC_E2E,
            TOPIC_E2E_SAMPLES,
            CHANNEL_DEPTH,
            CHANNEL_BACKEND_DEPTH,
            CHANNEL_IN_FLIGHT,
            CHANNEL_DEFERRED,
            CHANNEL_MESSAGES,
            CHANNEL_REQUEUES,
            CHANNEL_TIMEOUTS,
            CHANNEL_CLIENTS,
            CHANNEL_PAUSED,
        ];
        let names: Vec<&str> = families.iter().map(|f| f.name).collect();
        assert_eq!(seen, names, "families in the documented order");
    }

    #[test]
    fn snapshot_values_land_in_their_samples() {
        let text = render(&snapshot(two_topics()), &process());
        assert_eq!(
            samples(&text, "nsq_build_info"),
            [r#"nsq_build_info{version="1.3.0"} 1"#]
        );
        assert_eq!(
            samples(&text, "process_start_time_seconds"),
            ["process_start_time_seconds 1700000000"]
        );
        assert_eq!(
            samples(&text, "process_resident_memory_bytes"),
            ["process_resident_memory_bytes 4096"]
        );
        assert_eq!(samples(&text, "process_open_fds"), ["process_open_fds 12"]);
        assert_eq!(samples(&text, "nsq_topics"), ["nsq_topics 2"]);
        assert_eq!(
            samples(&text, "nsq_producer_clients"),
            ["nsq_producer_clients 1"]
        );
        assert_eq!(
            samples(&text, "nsq_consumer_clients"),
            ["nsq_consumer_clients 3"]
        );
        assert_eq!(
            samples(&text, "nsq_topic_messages_total"),
            [
                r#"nsq_topic_messages_total{topic="alpha"} 18446744073709551615"#,
                r#"nsq_topic_messages_total{topic="beta"} 0"#,
            ]
        );
        assert_eq!(
            samples(&text, "nsq_topic_paused"),
            [
                r#"nsq_topic_paused{topic="alpha"} 1"#,
                r#"nsq_topic_paused{topic="beta"} 0"#
            ]
        );
        assert_eq!(
            samples(&text, "nsq_topic_channels"),
            [
                r#"nsq_topic_channels{topic="alpha"} 2"#,
                r#"nsq_topic_channels{topic="beta"} 0"#
            ]
        );
        assert_eq!(
            samples(&text, "nsq_channel_paused"),
            [
                r#"nsq_channel_paused{topic="alpha",channel="a"} 0"#,
                r#"nsq_channel_paused{topic="alpha",channel="b"} 1"#,
            ]
        );
        assert_eq!(
            samples(&text, "nsq_channel_requeues_total"),
            [
                r#"nsq_channel_requeues_total{topic="alpha",channel="a"} 4"#,
                r#"nsq_channel_requeues_total{topic="alpha",channel="b"} 4"#,
            ]
        );
        // Only alpha has quantiles configured; beta's `None` writes nothing.
        assert_eq!(
            samples(&text, "nsq_topic_e2e_processing_latency_seconds"),
            [
                r#"nsq_topic_e2e_processing_latency_seconds{topic="alpha",quantile="0.99"} 0.0025"#,
                r#"nsq_topic_e2e_processing_latency_seconds{topic="alpha",quantile="0.5"} 0.001"#,
            ]
        );
        assert_eq!(
            samples(&text, "nsq_topic_e2e_processing_latency_samples"),
            [r#"nsq_topic_e2e_processing_latency_samples{topic="alpha"} 9"#]
        );
        assert!(samples(&text, "nsq_channel_e2e_processing_latency_seconds").is_empty());
    }

    #[test]
    fn no_topics_leaves_only_daemon_figures() {
        let snap = snapshot(Vec::new());
        let text = render(&snap, &Process::default());
        assert!(samples(&text, "process_resident_memory_bytes").is_empty());
        assert!(samples(&text, "process_open_fds").is_empty());
        assert_eq!(samples(&text, "nsq_topics"), ["nsq_topics 0"]);
        assert!(!text.contains("nsq_topic_depth"));
        assert!(!text.contains("nsq_channel_"));
    }
}
