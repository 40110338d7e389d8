//! nsqd pushes Go's statsd metrics: a UDP socket in the test receives what the real binary sends every
//! `--statsd-interval`, and after a known workload the names, types, prefix and values must match Go's
//! `nsqd/statsd.go` and agree with `GET /stats`: counter deltas add up to what happened, gauges equal the
//! snapshot, ephemeral topics and channels are skipped on request, memory lines follow
//! `--statsd-mem-stats`, and no datagram exceeds `--statsd-udp-packet-size`.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nsq_tests::client::publish_all;
use nsq_tests::http;
use nsq_tests::wire::{command, FrameConn};
use nsq_tests::Nsqd;
use serde_json::Value;

const TOPIC: &str = "statsd_t";
const EPHEMERAL_TOPIC: &str = "statsd_eph#ephemeral";
const EPHEMERAL_CHANNEL: &str = "tail#ephemeral";
const MESSAGES: usize = 20;
const BODY_LEN: usize = 16;

/// Packets that arrive further apart than this belong to different reports (the interval is 1s and, with
/// a 1s interval, Go and we send one report's packets back to back).
const REPORT_GAP: Duration = Duration::from_millis(300);

/// Datagrams with their arrival times.
type Packets = Vec<(Instant, Vec<u8>)>;

/// A UDP socket standing in for statsd; a thread records every datagram with its arrival time.
struct Sink {
    addr: SocketAddr,
    packets: Arc<Mutex<Packets>>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    fn start() -> Result<Sink> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let packets = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (p, d) = (Arc::clone(&packets), Arc::clone(&done));
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !d.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    p.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((Instant::now(), buf[..n].to_vec()));
                }
            }
        });
        Ok(Sink {
            addr,
            packets,
            done,
            thread: Some(thread),
        })
    }

    /// The datagrams so far.
    fn packets(&self) -> MutexGuard<'_, Packets> {
        self.packets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops recording and returns every datagram received.
    fn finish(mut self) -> Packets {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.packets())
    }
}

/// One statsd line.
#[derive(Debug, Clone)]
struct Line {
    /// The name with the prefix removed.
    stat: String,
    value: i64,
    /// `c` or `g`.
    kind: String,
}

/// One interval's report: its arrival time and lines.
#[derive(Debug)]
struct Report {
    at: Instant,
    lines: Vec<Line>,
}

impl Report {
    fn get(&self, stat: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.stat == stat)
    }

    fn gauge(&self, stat: &str) -> Result<i64> {
        let line = self
            .get(stat)
            .with_context(|| format!("no {stat} in the report"))?;
        ensure!(line.kind == "g", "{stat} is sent as |{}, not |g", line.kind);
        Ok(line.value)
    }
}

/// Checks every datagram (size, whole lines, prefix, syntax) and groups them into reports.
fn parse_reports(
    packets: &[(Instant, Vec<u8>)],
    prefix: &str,
    packet_size: usize,
) -> Result<Vec<Report>> {
    let mut reports: Vec<Report> = Vec::new();
    let mut last_at: Option<Instant> = None;
    for (at, packet) in packets {
        ensure!(
            packet.len() <= packet_size,
            "a {}-byte datagram exceeds --statsd-udp-packet-size={packet_size}",
            packet.len()
        );
        let text = std::str::from_utf8(packet).context("datagram is not UTF-8")?;
        ensure!(
            text.ends_with('\n'),
            "datagram does not end with a whole line: {text:?}"
        );
        if last_at.is_none_or(|t| at.duration_since(t) > REPORT_GAP) {
            reports.push(Report {
                at: *at,
                lines: Vec::new(),
            });
        }
        last_at = Some(*at);
        let report = reports.last_mut().context("no report")?;
        for raw in text.lines() {
            let stat = raw
                .strip_prefix(prefix)
                .with_context(|| format!("line {raw:?} lacks the prefix {prefix:?}"))?;
            let (name_value, kind) = stat
                .rsplit_once('|')
                .with_context(|| format!("no type in {raw:?}"))?;
            let (name, value) = name_value
                .rsplit_once(':')
                .with_context(|| format!("no value in {raw:?}"))?;
            ensure!(kind == "c" || kind == "g", "unknown type in {raw:?}");
            report.lines.push(Line {
                stat: name.to_owned(),
                value: value
                    .parse()
                    .with_context(|| format!("bad value in {raw:?}"))?,
                kind: kind.to_owned(),
            });
        }
    }
    Ok(reports)
}

/// The statsd type Go uses for a stat, by its last name component.
fn expected_kind(stat: &str) -> Result<&'static str> {
    let last = stat.rsplit('.').next().unwrap_or_default();
    Ok(match last {
        "message_count" | "message_bytes" | "requeue_count" | "timeout_count" | "gc_runs" => "c",
        "depth"
        | "backend_depth"
        | "in_flight_count"
        | "deferred_count"
        | "clients"
        | "heap_objects"
        | "heap_idle_bytes"
        | "heap_in_use_bytes"
        | "heap_released_bytes"
        | "gc_pause_usec_100"
        | "gc_pause_usec_99"
        | "gc_pause_usec_95"
        | "next_gc_bytes" => "g",
        l if l.starts_with("e2e_processing_latency_") => "g",
        _ => bail!("unexpected stat {stat}"),
    })
}

/// The sum of a counter over all reports; fails if it is ever sent as a gauge.
fn counter_sum(reports: &[Report], stat: &str) -> Result<i64> {
    let mut sum = 0;
    for r in reports {
        for l in r.lines.iter().filter(|l| l.stat == stat) {
            ensure!(l.kind == "c", "{stat} is sent as |{}, not |c", l.kind);
            sum += l.value;
        }
    }
    Ok(sum)
}

/// A subscribed consumer connection with `RDY rdy`.
fn subscribe(nsqd: &Nsqd, topic: &str, channel: &str, rdy: u32) -> Result<FrameConn> {
    let mut conn = FrameConn::connect(nsqd.tcp_addr())?;
    conn.send(b"  V2")?;
    conn.send(&command(&format!("SUB {topic} {channel}")))?;
    conn.expect_ok("SUB")?;
    conn.send(&command(&format!("RDY {rdy}")))?;
    Ok(conn)
}

fn stats_json(nsqd: &Nsqd) -> Result<Value> {
    let resp = http::get(nsqd.http_addr(), "/stats?format=json")?;
    ensure!(resp.status == 200, "/stats answered {}", resp.status);
    Ok(serde_json::from_slice(&resp.body)?)
}

fn find<'a>(list: &'a Value, key: &str, name: &str) -> Result<&'a Value> {
    list.as_array()
        .and_then(|a| a.iter().find(|v| v[key] == name))
        .with_context(|| format!("{name} not in /stats"))
}

/// The workload both runs share. Returns the connections that keep the ephemeral topic and channel alive,
/// and the consumer of `work`, which holds two messages in flight and one deferred.
///
/// The messages are published in two halves with a report in between, so the counters span intervals.
fn workload(nsqd: &Nsqd, sink: &Sink) -> Result<Vec<FrameConn>> {
    let eph_topic = subscribe(nsqd, EPHEMERAL_TOPIC, "ch", 0)?;
    let eph_channel = subscribe(nsqd, TOPIC, EPHEMERAL_CHANNEL, 0)?;
    let mut work = subscribe(nsqd, TOPIC, "work", 0)?;
    let bodies: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| format!("{i:0width$}", width = BODY_LEN).into_bytes())
        .collect();
    let (first, second) = bodies.split_at(MESSAGES / 2);
    publish_all(nsqd.tcp_addr(), TOPIC, first, 7)?;
    wait_for_reports_after(sink, Instant::now(), 1)?;
    publish_all(nsqd.tcp_addr(), TOPIC, second, 7)?;
    work.send(&command(&format!("RDY {MESSAGES}")))?;
    let mut ids = Vec::new();
    for _ in 0..MESSAGES {
        ids.push(work.expect_message(Duration::from_secs(5))?.id_text());
    }
    // FIN all but three, REQ one for a minute (deferred), keep two in flight.
    for id in &ids[..MESSAGES - 3] {
        work.send(&command(&format!("FIN {id}")))?;
    }
    work.send(&command(&format!("REQ {} 60000", ids[MESSAGES - 3])))?;
    // Wait until /stats shows the workload done.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = stats_json(nsqd)?;
        let topic = find(&stats["topics"], "topic_name", TOPIC)?;
        let ch = find(&topic["channels"], "channel_name", "work")?;
        if ch["in_flight_count"] == 2 && ch["deferred_count"] == 1 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the workload did not settle: {ch}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(vec![eph_topic, eph_channel, work])
}

/// Keeps recording until `count` reports have started after `after` (plus a margin for the rest of the
/// last one's datagrams), or fails.
fn wait_for_reports_after(sink: &Sink, after: Instant, count: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(3 + 2 * count as u64);
    loop {
        let started = {
            let packets = sink.packets();
            let mut starts = 0;
            let mut prev: Option<Instant> = None;
            for (at, _) in packets.iter().filter(|(at, _)| *at > after) {
                if prev.is_none_or(|p| at.duration_since(p) > REPORT_GAP) {
                    starts += 1;
                }
                prev = Some(*at);
            }
            starts
        };
        if started >= count {
            std::thread::sleep(REPORT_GAP);
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "only {started} of {count} statsd reports arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn statsd_reports_go_names_types_and_values() -> Result<()> {
    let sink = Sink::start()?;
    let nsqd = Nsqd::start(&[
        format!("--statsd-address={}", sink.addr),
        "--statsd-interval=1s".to_owned(),
        "--statsd-prefix=test.%s".to_owned(),
        "--e2e-processing-latency-percentile=1.0,0.5".to_owned(),
    ])?;
    let _conns = workload(&nsqd, &sink)?;
    let stats = stats_json(&nsqd)?;
    let fetched = Instant::now();
    wait_for_reports_after(&sink, fetched, 2)?;
    let packets = sink.finish();

    let prefix = format!("test.127_0_0_1_{}.", nsqd.http_addr().port());
    let reports = parse_reports(&packets, &prefix, 508)?;
    ensure!(reports.len() >= 3, "only {} reports", reports.len());
    for r in &reports {
        for l in &r.lines {
            ensure!(
                l.kind == expected_kind(&l.stat)?,
                "{} sent as |{}",
                l.stat,
                l.kind
            );
        }
    }

    // Counters: the deltas over all intervals add up to the workload.
    let t = format!("topic.{TOPIC}");
    let n = MESSAGES as i64;
    ensure!(counter_sum(&reports, &format!("{t}.message_count"))? == n);
    ensure!(counter_sum(&reports, &format!("{t}.message_bytes"))? == n * BODY_LEN as i64);
    let work = format!("{t}.channel.work");
    ensure!(counter_sum(&reports, &format!("{work}.message_count"))? == n);
    ensure!(counter_sum(&reports, &format!("{work}.requeue_count"))? == 1);
    ensure!(counter_sum(&reports, &format!("{work}.timeout_count"))? == 0);
    let tail = format!("{t}.channel.{EPHEMERAL_CHANNEL}");
    ensure!(counter_sum(&reports, &format!("{tail}.message_count"))? == n);
    // The two halves were published in different intervals, and the last report saw no new messages.
    let nonzero = reports
        .iter()
        .filter(|r| {
            r.get(&format!("{t}.message_count"))
                .is_some_and(|l| l.value > 0)
        })
        .count();
    ensure!(
        nonzero >= 2,
        "the message count changed in {nonzero} reports"
    );

    // Gauges: the latest report equals the /stats snapshot taken before it (nothing changed in between).
    let last = reports.last().context("no report")?;
    ensure!(last.at > fetched, "the last report predates /stats");
    ensure!(last.get(&format!("{t}.message_count")).map(|l| l.value) == Some(0));
    let topic = find(&stats["topics"], "topic_name", TOPIC)?;
    for key in ["depth", "backend_depth"] {
        ensure!(
            Some(last.gauge(&format!("{t}.{key}"))?) == topic[key].as_i64(),
            "{t}.{key} differs from /stats"
        );
    }
    for ch in topic["channels"].as_array().context("no channels")? {
        let name = ch["channel_name"].as_str().context("channel_name")?;
        for (stat, key) in [
            ("depth", "depth"),
            ("backend_depth", "backend_depth"),
            ("in_flight_count", "in_flight_count"),
            ("deferred_count", "deferred_count"),
            ("clients", "client_count"),
        ] {
            let sent = last.gauge(&format!("{t}.channel.{name}.{stat}"))?;
            ensure!(
                Some(sent) == ch[key].as_i64(),
                "{name}.{stat}: sent {sent}, /stats {}",
                ch[key]
            );
        }
    }
    // And the known values of the workload, so an all-zero snapshot cannot pass.
    ensure!(last.gauge(&format!("{work}.in_flight_count"))? == 2);
    ensure!(last.gauge(&format!("{work}.deferred_count"))? == 1);
    ensure!(last.gauge(&format!("{work}.clients"))? == 1);
    ensure!(last.gauge(&format!("{tail}.depth"))? == n);
    ensure!(last.gauge(&format!("topic.{EPHEMERAL_TOPIC}.channel.ch.clients"))? == 1);

    // Latency percentiles, named with the percentile times 100, in nanoseconds.
    ensure!(last.gauge(&format!("{t}.e2e_processing_latency_100"))? > 0);
    last.gauge(&format!("{t}.e2e_processing_latency_50"))?;
    ensure!(last.gauge(&format!("{work}.e2e_processing_latency_100"))? > 0);

    // Memory figures, on by default.
    for stat in [
        "heap_objects",
        "heap_idle_bytes",
        "heap_in_use_bytes",
        "heap_released_bytes",
        "gc_pause_usec_100",
        "gc_pause_usec_99",
        "gc_pause_usec_95",
        "next_gc_bytes",
    ] {
        last.gauge(&format!("mem.{stat}"))?;
    }
    ensure!(
        last.gauge("mem.heap_in_use_bytes")? > 0,
        "no resident memory"
    );
    ensure!(last.get("mem.gc_runs").is_some_and(|l| l.kind == "c"));
    Ok(())
}

#[test]
fn statsd_excludes_ephemeral_drops_mem_and_keeps_packets_small() -> Result<()> {
    const PACKET_SIZE: usize = 120;
    let sink = Sink::start()?;
    let nsqd = Nsqd::start(&[
        format!("--statsd-address={}", sink.addr),
        "--statsd-interval=1s".to_owned(),
        "--statsd-exclude-ephemeral".to_owned(),
        "--statsd-mem-stats=false".to_owned(),
        format!("--statsd-udp-packet-size={PACKET_SIZE}"),
    ])?;
    let _conns = workload(&nsqd, &sink)?;
    wait_for_reports_after(&sink, Instant::now(), 1)?;
    let packets = sink.finish();

    // The default prefix `nsq.%s`, expanded.
    let prefix = format!("nsq.127_0_0_1_{}.", nsqd.http_addr().port());
    let reports = parse_reports(&packets, &prefix, PACKET_SIZE)?;
    let last = reports.last().context("no report")?;
    // A report of this size needs many datagrams of 120 bytes.
    let last_packets = packets.iter().filter(|(at, _)| *at >= last.at).count();
    ensure!(
        last_packets > 5,
        "only {last_packets} datagrams in the last report"
    );
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for l in reports.iter().flat_map(|r| &r.lines) {
        ensure!(
            !l.stat.contains("#ephemeral"),
            "ephemeral stat sent: {}",
            l.stat
        );
        ensure!(!l.stat.starts_with("mem."), "memory stat sent: {}", l.stat);
        *counts.entry(l.stat.as_str()).or_default() += 1;
    }
    let t = format!("topic.{TOPIC}");
    ensure!(counter_sum(&reports, &format!("{t}.message_count"))? == MESSAGES as i64);
    ensure!(last.gauge(&format!("{t}.channel.work.in_flight_count"))? == 2);
    ensure!(
        counts.contains_key(format!("{t}.channel.work.clients").as_str()),
        "work channel missing"
    );
    Ok(())
}
