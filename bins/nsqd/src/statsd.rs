//! Pushes nsqd's counters and gauges to a statsd server over UDP, as Go's `nsqd/statsd.go` does, so the
//! dashboards and nsqadmin graphs built on Go's metric names keep working.
//!
//! Once per `--statsd-interval` the task takes the same snapshot `GET /stats` renders (so the two always
//! agree), turns it into statsd lines `<prefix><stat>:<value>|c` (counters: the change since the previous
//! report) or `|g` (gauges), and sends them in datagrams of at most `--statsd-udp-packet-size` bytes, spread
//! over the interval minus one second as Go's `SpreadWriter` does. Nothing happens per message: the task
//! sleeps between reports.
//!
//! Memory: the report is rendered into one `String` that is cleared and reused every interval, and datagrams
//! are slices of it, so the only per-interval allocations are the snapshot itself and the small map of the
//! previous counters. A line longer than the packet size is sent alone in a larger datagram, as Go's
//! buffered writer does.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use nsq_core::stats::TopicStats;
use tokio::net::UdpSocket;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::http::stats::{snapshot, MemStats, StatsParams};

/// Go's `bufio` default, which its statsd writer falls back to for a packet size of zero or less.
const GO_DEFAULT_PACKET_SIZE: usize = 4096;

/// How long resolving the statsd address may take (Go's `net.DialTimeout(.., time.Second)`).
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// The part of each interval the datagrams are spread over is the interval minus this (Go's choice).
const SPREAD_MARGIN: Duration = Duration::from_secs(1);

/// Runs the statsd loop until `stop` fires. The first report goes out one interval after start, as with
/// Go's ticker; a report whose address cannot be resolved is skipped and its counters roll into the next.
pub(crate) async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let opts = Arc::clone(&ctx.opts);
    let interval = opts.statsd_interval;
    if interval.is_zero() {
        // Go's ticker panics on a zero interval; refusing to report is the gentler equivalent.
        tracing::error!("STATSD: --statsd-interval must be positive; not reporting");
        return;
    }
    let mut reporter = Reporter::new(prefix(&ctx), opts.statsd_exclude_ephemeral);
    let packet_size = usize::try_from(opts.statsd_udp_packet_size)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(GO_DEFAULT_PACKET_SIZE);
    let spread = interval.saturating_sub(SPREAD_MARGIN);
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let addr = &opts.statsd_address;
        let socket = match connect(addr).await {
            Ok(socket) => socket,
            Err(err) => {
                tracing::error!("failed to create UDP socket to statsd({addr}) - {err}");
                continue;
            }
        };
        tracing::info!("STATSD: pushing stats to {addr}");
        let params = StatsParams {
            json: false,
            topic: String::new(),
            channel: String::new(),
            include_clients: false,
            include_mem: opts.statsd_mem_stats,
        };
        let snap_ctx = Arc::clone(&ctx);
        // The snapshot locks topics and channels one at a time; it belongs on the blocking pool.
        let snap = match tokio::task::spawn_blocking(move || snapshot(&snap_ctx, &params)).await {
            Ok(snap) => snap,
            Err(err) => {
                tracing::error!("STATSD: snapshot task failed: {err}");
                continue;
            }
        };
        reporter.render(&snap.topics.unwrap_or_default(), snap.memory.as_ref());
        send_spread(&socket, reporter.report(), packet_size, spread, &stop).await;
    }
    tracing::info!("STATSD: closing");
}

/// The expanded `--statsd-prefix`. Go expands it with the broadcast HTTP port, which it sets to the HTTP
/// listener's real port when the flag is 0; with `--http-address=…:0` that is the port actually bound.
fn prefix(ctx: &Context) -> String {
    match ctx.http_addr {
        Some(http) if ctx.opts.broadcast_http_port == 0 => {
            let mut opts = (*ctx.opts).clone();
            opts.broadcast_http_port = http.port();
            opts.statsd_prefix_with_host()
        }
        _ => ctx.opts.statsd_prefix_with_host(),
    }
}

/// A UDP socket connected to `addr` (`host:port`), resolved anew each interval as Go dials anew.
async fn connect(addr: &str) -> std::io::Result<UdpSocket> {
    let target = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::lookup_host(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "resolving timed out"))??
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(target).await?;
    Ok(socket)
}

/// Sends `report` in datagrams of at most `packet_size` bytes, evenly spaced over `spread`. Once `stop` has
/// fired the rest goes out without waiting, so shutdown is not delayed. Send errors (for example nobody
/// listening) are ignored, as Go ignores them.
async fn send_spread(
    socket: &UdpSocket,
    report: &str,
    packet_size: usize,
    spread: Duration,
    stop: &CancellationToken,
) {
    let count = packets(report, packet_size).count();
    let gap = u32::try_from(count)
        .ok()
        .filter(|&n| n > 0)
        .map_or(Duration::ZERO, |n| spread / n);
    for (i, packet) in packets(report, packet_size).enumerate() {
        if let Err(err) = socket.send(packet.as_bytes()).await {
            tracing::debug!("STATSD: send failed: {err}");
        }
        if i + 1 < count && !gap.is_zero() && !stop.is_cancelled() {
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(gap) => {}
            }
        }
    }
}

/// Splits `report` (lines each ending in `\n`) into datagrams of whole lines, each at most `size` bytes
/// unless one line alone is longer.
fn packets(report: &str, size: usize) -> impl Iterator<Item = &str> + '_ {
    let mut rest = report;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        for line in rest.split_inclusive('\n') {
            if end > 0 && end + line.len() > size {
                break;
            }
            end += line.len();
            if end >= size {
                break;
            }
        }
        let (packet, tail) = rest.split_at(end);
        rest = tail;
        Some(packet)
    })
}

/// The previous report's counters of one topic, for the deltas.
#[derive(Debug, Default)]
struct LastTopic {
    message_count: u64,
    message_bytes: u64,
    channels: HashMap<String, LastChannel>,
}

/// The previous report's counters of one channel.
#[derive(Debug, Default, Clone, Copy)]
struct LastChannel {
    message_count: u64,
    requeue_count: u64,
    timeout_count: u64,
}

/// Renders reports and remembers the counters they were based on.
#[derive(Debug)]
struct Reporter {
    /// The expanded prefix, ending in `.` (or empty).
    prefix: String,
    /// `--statsd-exclude-ephemeral`.
    exclude_ephemeral: bool,
    /// Counters of the previous report, by topic name (ephemeral ones included, as Go keeps them).
    last: HashMap<String, LastTopic>,
    /// `gc_total_runs` of the previous report.
    last_gc_runs: u64,
    /// The latest report, reused between intervals.
    report: String,
}

/// A counter's change since the previous report. Go subtracts unsigned counts and converts to int64, so a
/// topic recreated with smaller counts reports a negative delta; the wrapping arithmetic does the same.
fn delta(now: u64, last: u64) -> i64 {
    now.wrapping_sub(last) as i64
}

/// A gauge value as Go's `int64(...)` conversion gives it.
fn gauge<T: TryInto<i64>>(v: T) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

impl Reporter {
    fn new(prefix: String, exclude_ephemeral: bool) -> Self {
        Self {
            prefix,
            exclude_ephemeral,
            last: HashMap::new(),
            last_gc_runs: 0,
            report: String::new(),
        }
    }

    /// The latest rendered report.
    fn report(&self) -> &str {
        &self.report
    }

    /// One line; `kind` is `c` or `g`.
    fn line(&mut self, stat: std::fmt::Arguments<'_>, value: i64, kind: char) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.report, "{}{stat}:{value}|{kind}", self.prefix);
    }

    /// Renders one report from `topics` (and `mem`, when memory stats are on) in Go's order, and keeps the
    /// counters for the next one.
    fn render(&mut self, topics: &[TopicStats], mem: Option<&MemStats>) {
        self.report.clear();
        let mut last = HashMap::with_capacity(topics.len());
        for topic in topics {
            let previous = self.last.remove(&topic.topic_name).unwrap_or_default();
            let mut kept = LastTopic {
                message_count: topic.message_count,
                message_bytes: topic.message_bytes,
                channels: HashMap::with_capacity(topic.channels.len()),
            };
            for c in &topic.channels {
                kept.channels.insert(
                    c.channel_name.clone(),
                    LastChannel {
                        message_count: c.message_count,
                        requeue_count: c.requeue_count,
                        timeout_count: c.timeout_count,
                    },
                );
            }
            if !(self.exclude_ephemeral && nsq_protocol::is_ephemeral(&topic.topic_name)) {
                self.render_topic(topic, &previous);
            }
            last.insert(topic.topic_name.clone(), kept);
        }
        self.last = last;
        if let Some(m) = mem {
            self.line(format_args!("mem.heap_objects"), gauge(m.heap_objects), 'g');
            self.line(
                format_args!("mem.heap_idle_bytes"),
                gauge(m.heap_idle_bytes),
                'g',
            );
            let in_use = gauge(m.heap_in_use_bytes);
            self.line(format_args!("mem.heap_in_use_bytes"), in_use, 'g');
            let released = gauge(m.heap_released_bytes);
            self.line(format_args!("mem.heap_released_bytes"), released, 'g');
            let p100 = gauge(m.gc_pause_usec_100);
            self.line(format_args!("mem.gc_pause_usec_100"), p100, 'g');
            self.line(
                format_args!("mem.gc_pause_usec_99"),
                gauge(m.gc_pause_usec_99),
                'g',
            );
            self.line(
                format_args!("mem.gc_pause_usec_95"),
                gauge(m.gc_pause_usec_95),
                'g',
            );
            self.line(
                format_args!("mem.next_gc_bytes"),
                gauge(m.next_gc_bytes),
                'g',
            );
            let runs = delta(m.gc_total_runs, self.last_gc_runs);
            self.line(format_args!("mem.gc_runs"), runs, 'c');
            self.last_gc_runs = m.gc_total_runs;
        }
    }

    fn render_topic(&mut self, topic: &TopicStats, previous: &LastTopic) {
        let t = topic.topic_name.as_str();
        let count = delta(topic.message_count, previous.message_count);
        self.line(format_args!("topic.{t}.message_count"), count, 'c');
        let bytes = delta(topic.message_bytes, previous.message_bytes);
        self.line(format_args!("topic.{t}.message_bytes"), bytes, 'c');
        self.line(format_args!("topic.{t}.depth"), topic.depth, 'g');
        let backend = topic.backend_depth;
        self.line(format_args!("topic.{t}.backend_depth"), backend, 'g');
        for &(q, v) in topic.e2e_processing_latency.percentiles.iter().flatten() {
            let pct = q * 100.0;
            // Go converts the float nanoseconds with int64(), which truncates.
            self.line(
                format_args!("topic.{t}.e2e_processing_latency_{pct:.0}"),
                v as i64,
                'g',
            );
        }
        for c in &topic.channels {
            if self.exclude_ephemeral && nsq_protocol::is_ephemeral(&c.channel_name) {
                continue;
            }
            let ch = c.channel_name.as_str();
            let last = previous.channels.get(ch).copied().unwrap_or_default();
            // Go's order: message_count, depth, backend_depth, in_flight_count, deferred_count,
            // requeue_count, timeout_count, clients, then the latency percentiles.
            let lines: [(&str, i64, char); 8] = [
                (
                    "message_count",
                    delta(c.message_count, last.message_count),
                    'c',
                ),
                ("depth", c.depth, 'g'),
                ("backend_depth", c.backend_depth, 'g'),
                ("in_flight_count", c.in_flight_count, 'g'),
                ("deferred_count", c.deferred_count, 'g'),
                (
                    "requeue_count",
                    delta(c.requeue_count, last.requeue_count),
                    'c',
                ),
                (
                    "timeout_count",
                    delta(c.timeout_count, last.timeout_count),
                    'c',
                ),
                ("clients", gauge(c.client_count), 'g'),
            ];
            for (name, value, kind) in lines {
                self.line(format_args!("topic.{t}.channel.{ch}.{name}"), value, kind);
            }
            for &(q, v) in c.e2e_processing_latency.percentiles.iter().flatten() {
                let pct = q * 100.0;
                self.line(
                    format_args!("topic.{t}.channel.{ch}.e2e_processing_latency_{pct:.0}"),
                    v as i64,
                    'g',
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsq_core::stats::{ChannelStats, E2eStats};

    fn topic(name: &str, count: u64, channels: Vec<ChannelStats>) -> TopicStats {
        TopicStats {
            topic_name: name.to_owned(),
            channels,
            depth: 3,
            backend_depth: 1,
            message_count: count,
            message_bytes: count * 10,
            ..TopicStats::default()
        }
    }

    fn channel(name: &str, count: u64, requeues: u64) -> ChannelStats {
        ChannelStats {
            channel_name: name.to_owned(),
            depth: 2,
            in_flight_count: 4,
            deferred_count: 1,
            message_count: count,
            requeue_count: requeues,
            client_count: 5,
            ..ChannelStats::default()
        }
    }

    #[test]
    fn statsd_report_has_gos_lines_and_order() {
        let mut r = Reporter::new("p.".to_owned(), false);
        let mut t = topic("t", 7, vec![channel("c", 7, 2)]);
        t.e2e_processing_latency = E2eStats {
            count: 1,
            percentiles: Some(vec![(0.99, 1234.9), (0.5, 10.0)]),
        };
        t.channels[0].e2e_processing_latency = E2eStats {
            count: 1,
            percentiles: Some(vec![(1.0, 99.0)]),
        };
        r.render(&[t], None);
        let expected = "p.topic.t.message_count:7|c\n\
            p.topic.t.message_bytes:70|c\n\
            p.topic.t.depth:3|g\n\
            p.topic.t.backend_depth:1|g\n\
            p.topic.t.e2e_processing_latency_99:1234|g\n\
            p.topic.t.e2e_processing_latency_50:10|g\n\
            p.topic.t.channel.c.message_count:7|c\n\
            p.topic.t.channel.c.depth:2|g\n\
            p.topic.t.channel.c.backend_depth:0|g\n\
            p.topic.t.channel.c.in_flight_count:4|g\n\
            p.topic.t.channel.c.deferred_count:1|g\n\
            p.topic.t.channel.c.requeue_count:2|c\n\
            p.topic.t.channel.c.timeout_count:0|c\n\
            p.topic.t.channel.c.clients:5|g\n\
            p.topic.t.channel.c.e2e_processing_latency_100:99|g\n";
        assert_eq!(r.report(), expected);
    }

    #[test]
    fn statsd_counters_are_deltas_and_new_names_start_from_zero() {
        let mut r = Reporter::new(String::new(), false);
        r.render(&[topic("t", 5, vec![channel("c", 5, 1)])], None);
        r.render(
            &[topic("t", 8, vec![channel("c", 8, 1), channel("d", 2, 0)])],
            None,
        );
        let report = r.report();
        assert!(report.contains("topic.t.message_count:3|c\n"), "{report}");
        assert!(report.contains("topic.t.message_bytes:30|c\n"), "{report}");
        assert!(report.contains("topic.t.channel.c.message_count:3|c\n"));
        assert!(report.contains("topic.t.channel.c.requeue_count:0|c\n"));
        assert!(report.contains("topic.t.channel.d.message_count:2|c\n"));
        // A topic recreated with fewer messages goes negative, as Go's uint64-to-int64 difference does.
        r.render(&[topic("t", 1, vec![])], None);
        assert!(r.report().contains("topic.t.message_count:-7|c\n"));
    }

    #[test]
    fn statsd_exclude_ephemeral_skips_topics_and_channels() {
        let mut r = Reporter::new(String::new(), true);
        let topics = [
            topic("e#ephemeral", 1, vec![channel("c", 1, 0)]),
            topic(
                "t",
                1,
                vec![channel("c", 1, 0), channel("x#ephemeral", 1, 0)],
            ),
        ];
        r.render(&topics, None);
        assert!(!r.report().contains("#ephemeral"), "{}", r.report());
        assert!(r.report().contains("topic.t.channel.c.depth:2|g\n"));
        // Without the flag they are reported.
        let mut r = Reporter::new(String::new(), false);
        r.render(&topics, None);
        assert!(r.report().contains("topic.e#ephemeral.depth:3|g\n"));
        assert!(r
            .report()
            .contains("topic.t.channel.x#ephemeral.clients:5|g\n"));
    }

    #[test]
    fn statsd_mem_lines_follow_the_stats_figures() {
        let mut r = Reporter::new("n.".to_owned(), false);
        let mem = MemStats {
            heap_in_use_bytes: 4096,
            gc_total_runs: 3,
            ..MemStats::default()
        };
        r.render(&[], Some(&mem));
        let expected = "n.mem.heap_objects:0|g\n\
            n.mem.heap_idle_bytes:0|g\n\
            n.mem.heap_in_use_bytes:4096|g\n\
            n.mem.heap_released_bytes:0|g\n\
            n.mem.gc_pause_usec_100:0|g\n\
            n.mem.gc_pause_usec_99:0|g\n\
            n.mem.gc_pause_usec_95:0|g\n\
            n.mem.next_gc_bytes:0|g\n\
            n.mem.gc_runs:3|c\n";
        assert_eq!(r.report(), expected);
        r.render(&[], Some(&mem));
        assert!(r.report().ends_with("n.mem.gc_runs:0|c\n"));
        r.render(&[], None);
        assert_eq!(r.report(), "");
    }

    #[test]
    fn statsd_packets_hold_whole_lines_within_the_size() {
        let report = "aaaa\nbbbb\ncc\ndddddddddddd\ne\n";
        let got: Vec<&str> = packets(report, 10).collect();
        assert_eq!(got, ["aaaa\nbbbb\n", "cc\n", "dddddddddddd\n", "e\n"]);
        assert_eq!(got.concat(), report);
        let got: Vec<&str> = packets(report, 1000).collect();
        assert_eq!(got, [report]);
        assert_eq!(packets("", 10).count(), 0);
    }

    #[tokio::test]
    async fn statsd_sends_every_packet_to_the_socket() {
        let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sink.local_addr().unwrap().to_string();
        let socket = connect(&addr).await.unwrap();
        let report = "x.a:1|c\nx.b:2|g\nx.c:3|g\n";
        let stop = CancellationToken::new();
        send_spread(&socket, report, 16, Duration::ZERO, &stop).await;
        let mut got = String::new();
        let mut buf = [0u8; 64];
        for _ in 0..packets(report, 16).count() {
            let n = sink.recv(&mut buf).await.unwrap();
            assert!(n <= 16);
            got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        assert_eq!(got, report);
    }
}
