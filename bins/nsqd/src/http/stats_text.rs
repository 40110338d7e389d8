//! `GET /stats` in its default text format, laid out as Go's `printStats` and `ClientV2Stats.String()`
//! print it: `%-15s` topic and `%-25s` channel names, `*P ` in front of paused entries, e2e percentiles as
//! human durations, and one line per client that uses the producer layout whenever the client has published.

use std::fmt::Write as _;

use nsq_core::stats::{ClientStats, E2eStats};

use super::stats::{pub_count, Snapshot};
use nsq_http::gofmt::{duration_string, nanos_to_human, rfc3339_utc};

/// Renders the snapshot as Go's text format.
pub(crate) fn render(snap: &Snapshot) -> String {
    let mut w = String::with_capacity(1024);
    let uptime = snap
        .now_ns
        .saturating_sub(snap.start_time.saturating_mul(1_000_000_000));
    // Writing to a String cannot fail.
    // Go prints `version.String("nsqd")` here, the same line as `--version`; ours names our build instead of
    // Go's toolchain (a deliberate difference, listed in docs/compatibility.md).
    let _ = writeln!(w, "{}", crate::cli::version_line());
    let _ = writeln!(w, "start_time {}", rfc3339_utc(snap.start_time));
    let _ = writeln!(w, "uptime {}", duration_string(uptime));
    w.push_str("\nHealth: OK\n");

    if let Some(mem) = &snap.memory {
        w.push_str("\nMemory:\n");
        for (name, value) in mem.fields() {
            let _ = writeln!(w, "   {name:<25}\t{value}");
        }
    }

    let topics = snap.topics.as_deref().unwrap_or_default();
    if topics.is_empty() {
        w.push_str("\nTopics: None\n");
    } else {
        w.push_str("\nTopics:");
    }
    for t in topics {
        let prefix = if t.paused { "*P " } else { "   " };
        let _ = writeln!(
            w,
            "\n{prefix}[{:<15}] depth: {:<5} be-depth: {:<5} msgs: {:<8} e2e%: {}",
            t.topic_name,
            t.depth,
            t.backend_depth,
            t.message_count,
            e2e_text(&t.e2e_processing_latency)
        );
        for c in &t.channels {
            let prefix = if c.paused { "   *P " } else { "      " };
            let _ = writeln!(
                w,
                "{prefix}[{:<25}] depth: {:<5} be-depth: {:<5} inflt: {:<4} def: {:<4} re-q: {:<5} \
                 timeout: {:<5} msgs: {:<8} e2e%: {}",
                c.channel_name,
                c.depth,
                c.backend_depth,
                c.in_flight_count,
                c.deferred_count,
                c.requeue_count,
                c.timeout_count,
                c.message_count,
                e2e_text(&c.e2e_processing_latency)
            );
            for client in &c.clients {
                let _ = writeln!(w, "        {}", client_line(client, snap));
            }
        }
    }

    match snap.producers.as_deref() {
        Some(producers) if !producers.is_empty() => {
            w.push_str("\nProducers:\n");
            for p in producers {
                let _ = writeln!(w, "   {}", client_line(p, snap));
            }
        }
        _ => w.push_str("\nProducers: None\n"),
    }
    w
}

/// nsq's e2e `String()`: each percentile's value as a human duration, comma separated; empty when none.
fn e2e_text(e: &E2eStats) -> String {
    e.percentiles
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|&(_, value)| nanos_to_human(value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Go's `ClientV2Stats.String()`.
fn client_line(c: &ClientStats, snap: &Snapshot) -> String {
    let connected_ns = snap
        .now_ns
        .saturating_sub(c.connect_ts.saturating_mul(1_000_000_000));
    let connected = duration_string(connected_ns.div_euclid(1_000_000_000) * 1_000_000_000);
    let port = c
        .remote_address
        .rsplit_once(':')
        .map_or("", |(_, port)| port);
    let id = format!("{}:{port} {}", c.hostname, c.user_agent);
    let version = if c.version.is_empty() {
        "V2"
    } else {
        &c.version
    };
    match pub_count(c, &snap.topic_filter) {
        Some((topic, count)) => format!(
            "[{version} {id:<21}] msgs: {count:<8} topics: {topic}={count} connected: {connected}"
        ),
        None => format!(
            "[{version} {id:<21}] state: {} inflt: {:<4} rdy: {:<4} fin: {:<8} re-q: {:<8} msgs: {:<8} \
             connected: {connected}",
            c.state, c.in_flight_count, c.ready_count, c.finish_count, c.requeue_count, c.message_count
        ),
    }
}
