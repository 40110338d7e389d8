//! `GET /metrics`: nsqlookupd's registration counts in the Prometheus text exposition format (version
//! 0.0.4). Go NSQ has no such endpoint (nsqio/nsq#732); `docs/prometheus.md` lists every metric and its source.
//!
//! The values are read from the registration DB through the same calls `/topics`, `/channels` and `/nodes`
//! make, once per scrape. The text writer is a small one of our own: `# HELP` and `# TYPE` once per family,
//! then its samples, label values escaped. nsqd has the same writer in its `http::metrics`; the two belong in
//! `nsq-http` once both daemons' copies have settled.

use std::fmt::Write as _;

use axum::response::Response;
use hyper::header::{self, HeaderValue};
use hyper::StatusCode;
use nsq_http::response::GoResponse;

use crate::{now_ns, Context, NSQ_VERSION};

/// The `Content-Type` Prometheus expects for the text format.
const EXPOSITION_CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");

/// The kernel's `USER_HZ`, the unit of `/proc/<pid>/stat` times. It is 100 on every Linux architecture
/// this daemon is built for.
const USER_HZ: f64 = 100.0;

/// `GET /metrics`.
pub(crate) fn handle(ctx: &Context) -> Response {
    let body = render(&Registrations::read(ctx), &Process::read());
    GoResponse::new(StatusCode::OK)
        .header(header::CONTENT_TYPE, EXPOSITION_CONTENT_TYPE)
        .typed_body(body)
        .build()
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

/// Process figures from `/proc/self` (Linux); each is `None` where it cannot be read.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Process {
    start_time_seconds: Option<f64>,
    resident_memory_bytes: Option<u64>,
    open_fds: Option<u64>,
}

impl Process {
    fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let system = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        Self {
            start_time_seconds: start_time_seconds(&stat, &system),
            resident_memory_bytes: vm_rss_bytes(&status),
            // The listing holds one descriptor itself while it runs; it is not one of the daemon's.
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| (d.count() as u64).saturating_sub(1)),
        }
    }
}

/// Boot time (`btime` of `/proc/stat`) plus the process's `starttime` (field 22 of `/proc/self/stat`, in
/// clock ticks since boot).
fn start_time_seconds(stat: &str, system: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces; fields after it start at 3.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after_comm.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let boot: u64 = system
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    #[allow(clippy::cast_precision_loss)]
    // Seconds since 1970 and ticks since boot are far below 2^52.
    Some(boot as f64 + ticks as f64 / USER_HZ)
}

/// The `VmRSS:   1234 kB` line of `/proc/<pid>/status`, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn render(reg: &Registrations, process: &Process) -> String {
    let mut out = String::with_capacity(512);
    family(&mut out, "nsq_build_info", "gauge", BUILD_INFO_HELP)
        .sample(&[("version", NSQ_VERSION)], "1");
    if let Some(v) = process.start_time_seconds {
        family(&mut out, "process_start_time_seconds", "gauge", START_HELP)
            .sample(&[], &v.to_string());
    }
    if let Some(v) = process.resident_memory_bytes {
        family(&mut out, "process_resident_memory_bytes", "gauge", RSS_HELP)
            .sample(&[], &v.to_string());
    }
    if let Some(v) = process.open_fds {
        family(&mut out, "process_open_fds", "gauge", FDS_HELP).sample(&[], &v.to_string());
    }
    family(&mut out, "nsq_lookupd_producers", "gauge", PRODUCERS_HELP)
        .sample(&[], &reg.producers.to_string());
    family(&mut out, "nsq_lookupd_topics", "gauge", TOPICS_HELP)
        .sample(&[], &reg.topics.len().to_string());
    let channels: usize = reg.topics.iter().map(|t| t.channels).sum();
    family(&mut out, "nsq_lookupd_channels", "gauge", CHANNELS_HELP)
        .sample(&[], &channels.to_string());
    if !reg.topics.is_empty() {
        let mut f = family(
            &mut out,
            "nsq_lookupd_topic_producers",
            "gauge",
            TOPIC_PRODUCERS_HELP,
        );
        for t in &reg.topics {
            f.sample(&[("topic", &t.name)], &t.producers.to_string());
        }
        let mut f = family(
            &mut out,
            "nsq_lookupd_topic_channels",
            "gauge",
            TOPIC_CHANNELS_HELP,
        );
        for t in &reg.topics {
            f.sample(&[("topic", &t.name)], &t.channels.to_string());
        }
    }
    out
}

const BUILD_INFO_HELP: &str =
    "Always 1; the version label is the NSQ version this nsqlookupd is compatible with.";
const START_HELP: &str = "Start time of the process since the Unix epoch in seconds.";
const RSS_HELP: &str = "Resident memory size in bytes.";
const FDS_HELP: &str = "Number of open file descriptors.";
const PRODUCERS_HELP: &str = "Active nsqd producers registered with this lookupd.";
const TOPICS_HELP: &str = "Number of registered topics.";
const CHANNELS_HELP: &str = "Number of registered channels, summed over all topics.";
const TOPIC_PRODUCERS_HELP: &str = "Active producers of the topic that are not tombstoned.";
const TOPIC_CHANNELS_HELP: &str = "Number of registered channels of the topic.";

/// Writes a family's `# HELP` and `# TYPE` lines; its samples follow through the returned writer.
fn family<'a>(out: &'a mut String, name: &'a str, kind: &str, help: &str) -> Family<'a> {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out, name }
}

/// The sample writer of one family.
#[derive(Debug)]
struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
}

impl Family<'_> {
    /// Writes `name{label="value",...} value`; `value` is already in the format's number syntax.
    fn sample(&mut self, labels: &[(&str, &str)], value: &str) -> &mut Self {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
                .collect();
            let _ = write!(self.out, "{{{}}}", pairs.join(","));
        }
        let _ = writeln!(self.out, " {value}");
        self
    }
}

/// A `# HELP` text with `\` and line feeds escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// A label value with `\`, `"` and line feeds escaped.
fn escape_label_value(text: &str) -> String {
    text.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

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

    #[test]
    fn labels_and_help_are_escaped() {
        assert_eq!(escape_label_value("a\\b\"c\nd"), r#"a\\b\"c\nd"#);
        assert_eq!(escape_help("a\\b\"c\nd"), r#"a\\b"c\nd"#);
        let mut out = String::new();
        family(&mut out, "x", "gauge", "h\nh").sample(&[("k", "v\""), ("l", "\\")], "1");
        assert_eq!(
            out,
            "# HELP x h\\nh\n# TYPE x gauge\nx{k=\"v\\\"\",l=\"\\\\\"} 1\n"
        );
    }

    #[test]
    fn start_time_is_boot_time_plus_ticks() {
        // A command name with spaces and a parenthesis must not shift the fields.
        let stat = "42 (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 1234 1000 50";
        let started = start_time_seconds(stat, "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        assert!((started - 1_700_000_012.34).abs() < 1e-6, "{started}");
        assert_eq!(start_time_seconds(stat, "cpu 1\n"), None);
        assert_eq!(start_time_seconds("garbage", "btime 1\n"), None);
        if cfg!(target_os = "linux") {
            let now = now_ns() / 1_000_000_000;
            let started = Process::read().start_time_seconds.unwrap();
            #[allow(clippy::cast_precision_loss)]
            let now = now as f64;
            assert!(
                started <= now + 1.0 && started > now - 3600.0,
                "{started} vs {now}"
            );
        }
    }

    #[test]
    fn rss_is_read_from_status() {
        assert_eq!(vm_rss_bytes("VmRSS:\t  10 kB\n"), Some(10 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tx\n"), None);
    }
}
