//! `GET /stats`: its parameters, the snapshot it renders (Go's `NSQD.GetStats`), and the memory figures.
//!
//! One snapshot feeds both renderings ([`super::stats_json`] and [`super::stats_text`]) so the two formats
//! always agree. The null-versus-empty rules of Go's JSON are decided here, as `Option`s:
//! - `topics` is `None` (JSON `null`) when a `topic=` filter names a topic that does not exist, and then
//!   `producers` is `None` too, because Go returns early with an empty result;
//! - `producers` is `None` when no client has published or `include_clients` is false (Go appends to a nil
//!   slice, so it is never `[]`);
//! - a channel's `clients` is `null` exactly when `include_clients` is false.

use nsq_core::stats::{ClientStats, TopicStats};
use serde::Serialize;

use crate::context::Context;
use nsq_http::query::Query;

/// The `/stats` query parameters, read as Go reads them (absent means empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatsParams {
    /// `format=json`; anything else is text.
    pub(crate) json: bool,
    /// `topic=` filter; empty means every topic.
    pub(crate) topic: String,
    /// `channel=` filter; empty means every channel.
    pub(crate) channel: String,
    /// `include_clients` (`true`/`1`/`false`/`0`, anything else is the default, true).
    pub(crate) include_clients: bool,
    /// `include_mem`, parsed like `include_clients`.
    pub(crate) include_mem: bool,
}

impl StatsParams {
    /// Reads the parameters from a parsed query.
    pub(crate) fn from_query(q: &Query) -> Self {
        Self {
            json: q.get("format") == Some("json"),
            topic: q.get("topic").unwrap_or_default().to_owned(),
            channel: q.get("channel").unwrap_or_default().to_owned(),
            include_clients: go_bool_param(q.get("include_clients")),
            include_mem: go_bool_param(q.get("include_mem")),
        }
    }
}

/// nsq's `boolParams` lookup with a default of true.
fn go_bool_param(v: Option<&str>) -> bool {
    !matches!(v, Some("false" | "0"))
}

/// Everything `/stats` reports, taken at one moment.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Daemon start, Unix seconds.
    pub(crate) start_time: i64,
    /// When the snapshot was taken, Unix nanoseconds (for `uptime` and `connected`).
    pub(crate) now_ns: i64,
    /// Topics sorted by name; `None` when the topic filter matched nothing.
    pub(crate) topics: Option<Vec<TopicStats>>,
    /// Clients that have published; `None` when there are none or clients were not asked for.
    pub(crate) producers: Option<Vec<ClientStats>>,
    /// Process memory, when `include_mem` is true.
    pub(crate) memory: Option<MemStats>,
    /// The topic filter, which also filters the clients' publish counts.
    pub(crate) topic_filter: String,
    /// Whether client lists were asked for.
    pub(crate) include_clients: bool,
}

/// Takes the snapshot. It locks topics and channels briefly, one at a time; call it off the async workers.
pub(crate) fn snapshot(ctx: &Context, p: &StatsParams) -> Snapshot {
    let mut snap = Snapshot {
        start_time: ctx.start_time,
        now_ns: nsq_core::now_ns(),
        topics: None,
        producers: None,
        memory: p.include_mem.then(mem_stats),
        topic_filter: p.topic.clone(),
        include_clients: p.include_clients,
    };
    let topics = if p.topic.is_empty() {
        ctx.topics.topics()
    } else {
        match ctx.topics.get_existing_topic(&p.topic) {
            Some(t) => vec![t],
            None => return snap,
        }
    };
    let channel = (!p.channel.is_empty()).then_some(p.channel.as_str());
    let mut out = Vec::with_capacity(topics.len());
    for t in topics {
        // A topic without the asked-for channel is left out, as in Go.
        if channel.is_some_and(|c| t.get_existing_channel(c).is_none()) {
            continue;
        }
        out.push(t.stats(channel, p.include_clients));
    }
    snap.topics = Some(out);
    if p.include_clients {
        let producers = ctx.producer_stats(&p.topic);
        snap.producers = (!producers.is_empty()).then_some(producers);
    }
    snap
}

/// The one publish count Go lists for a client: the one for the topic filter, or (without a filter) the
/// first the client has. Go picks a random one there; taking the first keeps the answer stable.
pub(crate) fn pub_count<'a>(c: &'a ClientStats, topic_filter: &str) -> Option<(&'a str, u64)> {
    c.pub_counts
        .iter()
        .find(|(t, _)| topic_filter.is_empty() || t == topic_filter)
        .map(|(t, n)| (t.as_str(), *n))
}

/// The `memory` object of `/stats`, with Go's keys and order.
///
/// Go reports its garbage-collected heap; this process has no such heap, so the figures are mapped:
/// `heap_in_use_bytes` is the resident set size (`VmRSS` in `/proc/self/status`), and `heap_objects`,
/// `heap_idle_bytes`, `heap_released_bytes`, `next_gc_bytes`, the three `gc_pause_usec_*` percentiles and
/// `gc_total_runs` are 0 (there is no collector). Where `/proc` is unavailable every figure is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct MemStats {
    pub(crate) heap_objects: u64,
    pub(crate) heap_idle_bytes: u64,
    pub(crate) heap_in_use_bytes: u64,
    pub(crate) heap_released_bytes: u64,
    pub(crate) gc_pause_usec_100: u64,
    pub(crate) gc_pause_usec_99: u64,
    pub(crate) gc_pause_usec_95: u64,
    pub(crate) next_gc_bytes: u64,
    pub(crate) gc_total_runs: u64,
}

impl MemStats {
    /// `(name, value)` in Go's order, for the text format.
    pub(crate) fn fields(&self) -> [(&'static str, u64); 9] {
        [
            ("heap_objects", self.heap_objects),
            ("heap_idle_bytes", self.heap_idle_bytes),
            ("heap_in_use_bytes", self.heap_in_use_bytes),
            ("heap_released_bytes", self.heap_released_bytes),
            ("gc_pause_usec_100", self.gc_pause_usec_100),
            ("gc_pause_usec_99", self.gc_pause_usec_99),
            ("gc_pause_usec_95", self.gc_pause_usec_95),
            ("next_gc_bytes", self.next_gc_bytes),
            ("gc_total_runs", self.gc_total_runs),
        ]
    }
}

/// Reads this process's memory figures (see [`MemStats`] for the mapping).
fn mem_stats() -> MemStats {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    MemStats {
        heap_in_use_bytes: vm_rss_bytes(&status).unwrap_or(0),
        ..MemStats::default()
    }
}

/// The `VmRSS:   1234 kB` line of `/proc/<pid>/status`, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_follow_gos_defaults() {
        let p = StatsParams::from_query(
            &Query::parse(Some("format=json&include_clients=maybe")).unwrap(),
        );
        assert!(p.json && p.include_clients && p.include_mem);
        let p = StatsParams::from_query(
            &Query::parse(Some("include_clients=0&include_mem=false")).unwrap(),
        );
        assert!(!p.json && !p.include_clients && !p.include_mem);
        let p =
            StatsParams::from_query(&Query::parse(Some("format=JSON&include_clients=1")).unwrap());
        assert!(!p.json && p.include_clients);
    }

    #[test]
    fn rss_is_read_from_status() {
        assert_eq!(
            vm_rss_bytes("Name:\tx\nVmRSS:\t    1200 kB\n"),
            Some(1200 * 1024)
        );
        assert_eq!(vm_rss_bytes("Name:\tx\n"), None);
        if cfg!(target_os = "linux") {
            assert!(mem_stats().heap_in_use_bytes > 0);
        }
    }

    #[test]
    fn one_pub_count_is_listed() {
        let c = ClientStats {
            pub_counts: vec![("alpha".to_owned(), 1), ("beta".to_owned(), 3)],
            ..ClientStats::default()
        };
        assert_eq!(pub_count(&c, ""), Some(("alpha", 1)));
        assert_eq!(pub_count(&c, "beta"), Some(("beta", 3)));
        assert_eq!(pub_count(&c, "gamma"), None);
    }
}
