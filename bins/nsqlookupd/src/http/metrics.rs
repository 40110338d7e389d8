//! `GET /metrics`: nsqlookupd's registration counts in the Prometheus text exposition format (version
//! 0.0.4). Go NSQ has no such endpoint (nsqio/nsq#732); `docs/prometheus.md` lists every metric and its source.
//!
//! The values are read from the registration DB through the same calls `/topics`, `/channels` and `/nodes`
//! make, once per scrape; the text and the process figures are written by `nsq_http::prometheus`, shared
//! with nsqd.

use axum::response::Response;
use nsq_http::prometheus::{self, gauge, Exposition, Family, Process};

use crate::{now_ns, Context, NSQ_VERSION};

/// `GET /metrics`.
pub(crate) fn handle(ctx: &Context) -> Response {
    prometheus::response(render(&Registrations::read(ctx), &Process::read()))
}

/// What the registration DB holds at one scrape.
#[derive(Debug, Default, PartialEq, Eq)]
struct Registrations {
    /// Active producers, as `/nodes` lists them.
    producers: usize,
    /// Per topic (sorted by name): its channel count (`/channels`) and its producers that are not tombstoned
    /// (from `/nodes`).
    topics: Vec<TopicFigures>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct TopicFigures {
    name: String,
    channels: usize,
    producers: usize,
}

impl Registrations {
    fn read(ctx: &Context) -> Self {
        let nodes = ctx.db.nodes(now_ns(), ctx.visibility());
        let mut names = ctx.db.topics();
        names.sort_unstable();
        names.dedup();
        let topics = names
            .into_iter()
            .map(|name| {
                let producers = nodes
                    .iter()
                    .filter(|n| {
                        n.topics
                            .iter()
                            .any(|(t, tombstoned)| *t == name && !tombstoned)
                    })
                    .count();
                TopicFigures {
                    channels: ctx.db.channels(&name).len(),
                    producers,
                    name,
                }
            })
            .collect();
        Self {
            producers: nodes.len(),
            topics,
        }
    }
}

fn render(reg: &Registrations, process: &Process) -> String {
    let mut exp = Exposition::default();
    exp.family(BUILD_INFO)
        .sample(&[("version", NSQ_VERSION)], 1_u64);
    exp.process(process);
    exp.family(PRODUCERS).sample(&[], reg.producers);
    exp.family(TOPICS).sample(&[], reg.topics.len());
    let channels: usize = reg.topics.iter().map(|t| t.channels).sum();
    exp.family(CHANNELS).sample(&[], channels);
    let mut f = exp.family(TOPIC_PRODUCERS);
    for t in &reg.topics {
        f.sample(&[("topic", &t.name)], t.producers);
    }
    let mut f = exp.family(TOPIC_CHANNELS);
    for t in &reg.topics {
        f.sample(&[("topic", &t.name)], t.channels);
    }
    exp.finish()
}

const BUILD_INFO: Family = gauge(
    "nsq_build_info",
    "Always 1; the version label is the NSQ version this nsqlookupd is compatible with.",
);
const PRODUCERS: Family = gauge(
    "nsq_lookupd_producers",
    "Active nsqd producers registered with this lookupd.",
);
const TOPICS: Family = gauge("nsq_lookupd_topics", "Number of registered topics.");
const CHANNELS: Family = gauge(
    "nsq_lookupd_channels",
    "Number of registered channels, summed over all topics.",
);
const TOPIC_PRODUCERS: Family = gauge(
    "nsq_lookupd_topic_producers",
    "Active producers of the topic that are not tombstoned.",
);
const TOPIC_CHANNELS: Family = gauge(
    "nsq_lookupd_topic_channels",
    "Number of registered channels of the topic.",
);

#[cfg(test)]
mod tests {
    use super::*;

    fn registrations() -> Registrations {
        Registrations {
            producers: 2,
            topics: vec![
                TopicFigures {
                    name: "alpha".to_owned(),
                    channels: 2,
                    producers: 1,
                },
                TopicFigures {
                    name: "beta".to_owned(),
                    channels: 1,
                    producers: 2,
                },
            ],
        }
    }

    #[test]
    fn renders_families_once_in_order() {
        let process = Process {
            start_time_seconds: Some(1_700_000_000.25),
            resident_memory_bytes: Some(8192),
            open_fds: Some(9),
        };
        let text = render(&registrations(), &process);
        let expected = "\
# HELP nsq_build_info Always 1; the version label is the NSQ version this nsqlookupd is compatible with.
# TYPE nsq_build_info gauge
nsq_build_info{version=\"1.3.0\"} 1
# HELP process_start_time_seconds Start time of the process since the Unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1700000000.25
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 8192
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds 9
# HELP nsq_lookupd_producers Active nsqd producers registered with this lookupd.
# TYPE nsq_lookupd_producers gauge
nsq_lookupd_producers 2
# HELP nsq_lookupd_topics Number of registered topics.
# TYPE nsq_lookupd_topics gauge
nsq_lookupd_topics 2
# HELP nsq_lookupd_channels Number of registered channels, summed over all topics.
# TYPE nsq_lookupd_channels gauge
nsq_lookupd_channels 3
# HELP nsq_lookupd_topic_producers Active producers of the topic that are not tombstoned.
# TYPE nsq_lookupd_topic_producers gauge
nsq_lookupd_topic_producers{topic=\"alpha\"} 1
nsq_lookupd_topic_producers{topic=\"beta\"} 2
# HELP nsq_lookupd_topic_channels Number of registered channels of the topic.
# TYPE nsq_lookupd_topic_channels gauge
nsq_lookupd_topic_channels{topic=\"alpha\"} 2
nsq_lookupd_topic_channels{topic=\"beta\"} 1
";
        assert_eq!(text, expected);
    }

    #[test]
    fn without_proc_or_topics_only_the_counts_remain() {
        let text = render(&Registrations::default(), &Process::default());
        assert!(!text.contains("process_"));
        assert!(!text.contains("nsq_lookupd_topic_"));
        assert!(text.contains("\nnsq_lookupd_topics 0\n"));
    }
}
