//! Proves every mode of the bench tool against a tiny fake nsqd, so the tool is trusted before
//! it is pointed at the real daemon.
//!
//! The fake speaks just enough V2: magic, IDENTIFY, PUB, MPUB, SUB, RDY, FIN, NOP, with one
//! shared in-memory queue. It also sends a heartbeat after each SUB and before the first MPUB's
//! `OK`, to check that the tool answers `NOP` and does not mistake a heartbeat for an `OK`.
//! With `hold_oks` it withholds `OK`s until the publisher has been quiet for a moment, which
//! exposes how many MPUBs the writer keeps in flight.

// The fake server is test fixture code outside `#[test]` functions; a panic there fails a test.
#![allow(clippy::unwrap_used)]

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use nsq_bench::reader::{self, ReaderConfig};
use nsq_bench::writer::{self, WriterConfig};
use nsq_bench::{latency, StartAt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// How long held `OK`s wait after the last MPUB before they are released.
const HOLD_FOR: Duration = Duration::from_millis(60);

#[derive(Debug, Clone, Copy, Default)]
struct FakeOptions {
    /// Withhold MPUB `OK`s until the publisher pauses (see [`HOLD_FOR`]).
    hold_oks: bool,
    /// Answer every PUB/MPUB with `E_BAD_TOPIC`.
    reject_pub: bool,
}

#[derive(Debug, Default)]
struct Counters {
    queue: VecDeque<Vec<u8>>,
    published: u64,
    finished: u64,
    fin_failed: u64,
    nops: u64,
    min_body: usize,
    max_body: usize,
    /// Most MPUBs one connection sent while none of their `OK`s had been released.
    max_unacked: usize,
    next_id: u64,
}

#[derive(Debug)]
struct Fake {
    addr: SocketAddr,
    state: Arc<Mutex<Counters>>,
}

impl Fake {
    async fn start(opts: FakeOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(Counters {
            min_body: usize::MAX,
            ..Counters::default()
        }));
        let (notify_tx, _) = watch::channel(0u64);
        let notify_tx = Arc::new(notify_tx);
        let st = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let conn = FakeConn {
                    state: Arc::clone(&st),
                    notify: Arc::clone(&notify_tx),
                    opts,
                    subscribed: false,
                    rdy: 0,
                    in_flight: HashSet::new(),
                    held_oks: 0,
                    release_at: None,
                    first_mpub: true,
                };
                tokio::spawn(conn.serve(stream));
            }
        });
        Self { addr, state }
    }

    fn addr(&self) -> String {
        self.addr.to_string()
    }

    fn with<T>(&self, f: impl FnOnce(&Counters) -> T) -> T {
        f(&self.state.lock().unwrap())
    }

    /// Polls until `cond` holds, failing the test after two seconds.
    async fn wait_until(&self, what: &str, cond: impl Fn(&Counters) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.with(&cond) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

struct FakeConn {
    state: Arc<Mutex<Counters>>,
    /// Bumped after every publish so subscribers wake up.
    notify: Arc<watch::Sender<u64>>,
    opts: FakeOptions,
    subscribed: bool,
    rdy: usize,
    in_flight: HashSet<Vec<u8>>,
    held_oks: usize,
    release_at: Option<Instant>,
    first_mpub: bool,
}

fn put_frame(w: &mut BytesMut, frame_type: i32, data: &[u8]) {
    w.put_i32(i32::try_from(data.len()).unwrap() + 4);
    w.put_i32(frame_type);
    w.put_slice(data);
}

impl FakeConn {
    async fn serve(mut self, mut stream: TcpStream) {
        let mut magic = [0u8; 4];
        stream.read_exact(&mut magic).await.unwrap();
        assert_eq!(&magic, b"  V2");
        let mut notified = self.notify.subscribe();
        let (mut rbuf, mut wbuf) = (BytesMut::new(), BytesMut::new());
        loop {
            if self.subscribed {
                self.deliver(&mut wbuf);
            }
            if !wbuf.is_empty() && stream.write_all(&wbuf).await.is_err() {
                return;
            }
            wbuf.clear();
            let release = self.release_at.unwrap_or_else(Instant::now);
            tokio::select! {
                read = stream.read_buf(&mut rbuf) => match read {
                    Ok(n) if n > 0 => self.handle_commands(&mut rbuf, &mut wbuf),
                    _ => return,
                },
                _ = notified.changed(), if self.subscribed => {}
                () = tokio::time::sleep_until(release), if self.release_at.is_some() => {
                    for _ in 0..self.held_oks {
                        put_frame(&mut wbuf, 0, b"OK");
                    }
                    self.held_oks = 0;
                    self.release_at = None;
                }
            }
        }
    }

    fn deliver(&mut self, w: &mut BytesMut) {
        let mut st = self.state.lock().unwrap();
        while self.in_flight.len() < self.rdy {
            let Some(body) = st.queue.pop_front() else {
                break;
            };
            st.next_id += 1;
            let id = format!("{:016x}", st.next_id).into_bytes();
            let mut payload = Vec::with_capacity(26 + body.len());
            payload.extend_from_slice(&1_700_000_000_000_000_000i64.to_be_bytes());
            payload.extend_from_slice(&1u16.to_be_bytes());
            payload.extend_from_slice(&id);
            payload.extend_from_slice(&body);
            put_frame(w, 2, &payload);
            self.in_flight.insert(id);
        }
    }

    /// Executes every complete command in `r`, leaving a partial one buffered.
    fn handle_commands(&mut self, r: &mut BytesMut, w: &mut BytesMut) {
        while let Some(nl) = r.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8(r[..nl].to_vec()).unwrap();
            let mut words = line.split(' ');
            let cmd = words.next().unwrap_or_default().to_owned();
            let needs_body = matches!(cmd.as_str(), "IDENTIFY" | "PUB" | "MPUB");
            let body = if needs_body {
                let Some(len) = r.get(nl + 1..nl + 5) else {
                    return;
                };
                let len = usize::try_from(i32::from_be_bytes(len.try_into().unwrap())).unwrap();
                if r.len() < nl + 5 + len {
                    return;
                }
                r.advance(nl + 5);
                r.split_to(len).to_vec()
            } else {
                r.advance(nl + 1);
                Vec::new()
            };
            match cmd.as_str() {
                "IDENTIFY" => put_frame(w, 0, b"OK"),
                "SUB" => {
                    self.subscribed = true;
                    put_frame(w, 0, b"OK");
                    put_frame(w, 0, b"_heartbeat_");
                }
                "RDY" => self.rdy = words.next().unwrap().parse().unwrap(),
                "FIN" => {
                    let id = words.next().unwrap().as_bytes().to_vec();
                    let mut st = self.state.lock().unwrap();
                    if self.in_flight.remove(&id) {
                        st.finished += 1;
                    } else {
                        st.fin_failed += 1;
                        put_frame(w, 1, b"E_FIN_FAILED FIN failed");
                    }
                }
                "NOP" => self.state.lock().unwrap().nops += 1,
                "PUB" => self.publish(vec![body], w),
                "MPUB" => {
                    let bodies = split_mpub(&body);
                    if self.first_mpub {
                        self.first_mpub = false;
                        put_frame(w, 0, b"_heartbeat_");
                    }
                    self.publish(bodies, w);
                }
                other => panic!("fake nsqd got unexpected command {other:?}"),
            }
        }
    }

    fn publish(&mut self, bodies: Vec<Vec<u8>>, w: &mut BytesMut) {
        if self.opts.reject_pub {
            put_frame(w, 1, b"E_BAD_TOPIC PUB topic name is not valid");
            return;
        }
        {
            let mut st = self.state.lock().unwrap();
            for b in bodies {
                st.min_body = st.min_body.min(b.len());
                st.max_body = st.max_body.max(b.len());
                st.published += 1;
                st.queue.push_back(b);
            }
            if self.opts.hold_oks {
                self.held_oks += 1;
                st.max_unacked = st.max_unacked.max(self.held_oks);
                self.release_at = Some(Instant::now() + HOLD_FOR);
            }
        }
        if !self.opts.hold_oks {
            put_frame(w, 0, b"OK");
        }
        self.notify.send_modify(|n| *n += 1);
    }
}

fn split_mpub(mut body: &[u8]) -> Vec<Vec<u8>> {
    let n = body.get_i32();
    (0..n)
        .map(|_| {
            let len = usize::try_from(body.get_i32()).unwrap();
            let b = body[..len].to_vec();
            body.advance(len);
            b
        })
        .collect()
}

fn writer_cfg(addr: String) -> WriterConfig {
    WriterConfig {
        addr,
        topic: "sub_bench".to_owned(),
        runfor: Duration::from_millis(250),
        size: 100,
        batch_size: 50,
        workers: 2,
        pipeline: 4,
        identify: true,
        start_at: StartAt::Now,
        count: None,
    }
}

fn reader_cfg(addr: String, count: Option<u64>) -> ReaderConfig {
    ReaderConfig {
        addr,
        topic: "sub_bench".to_owned(),
        channel: "ch".to_owned(),
        runfor: Duration::from_secs(10),
        size: 100,
        rdy: 300,
        workers: 2,
        identify: true,
        start_at: StartAt::Now,
        count,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_counts_acknowledged_messages_and_answers_heartbeats() {
    let fake = Fake::start(FakeOptions::default()).await;
    let t = writer::run(&writer_cfg(fake.addr())).await.unwrap();
    assert!(t.msgs > 0);
    assert_eq!(t.msgs % 50, 0, "whole batches only");
    assert_eq!(t.msgs, fake.with(|c| c.published), "every OK was counted");
    assert_eq!(fake.with(|c| (c.min_body, c.max_body)), (100, 100));
    assert!(t.duration_s >= 0.25 && t.duration_s < 2.0, "{t:?}");
    // Each connection got a heartbeat before its first OK and must have answered it.
    fake.wait_until("two NOPs", |c| c.nops == 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_keeps_exactly_pipeline_mpubs_in_flight() {
    for pipeline in [1, 4] {
        let fake = Fake::start(FakeOptions {
            hold_oks: true,
            ..FakeOptions::default()
        })
        .await;
        let cfg = WriterConfig {
            pipeline,
            workers: 1,
            ..writer_cfg(fake.addr())
        };
        let t = writer::run(&cfg).await.unwrap();
        assert_eq!(
            fake.with(|c| c.max_unacked),
            pipeline,
            "pipeline {pipeline}"
        );
        assert_eq!(t.msgs, fake.with(|c| c.published));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_with_count_publishes_exactly_that_many_messages() {
    // 1,234 is not a multiple of the 50-message batch, so one MPUB must be cut short, and the
    // long runfor proves the count, not the clock, ended the run.
    let fake = Fake::start(FakeOptions::default()).await;
    let cfg = WriterConfig {
        count: Some(1_234),
        runfor: Duration::from_secs(30),
        ..writer_cfg(fake.addr())
    };
    let t = writer::run(&cfg).await.unwrap();
    assert_eq!(t.msgs, 1_234);
    assert_eq!(fake.with(|c| c.published), 1_234);
    assert!(t.duration_s < 5.0, "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_reports_error_frames() {
    let fake = Fake::start(FakeOptions {
        reject_pub: true,
        ..FakeOptions::default()
    })
    .await;
    let err = writer::run(&writer_cfg(fake.addr())).await.unwrap_err();
    assert!(err.to_string().contains("E_BAD_TOPIC"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_mode_reader_drains_exactly_what_the_writer_published() {
    let fake = Fake::start(FakeOptions::default()).await;
    let w = writer::run(&writer_cfg(fake.addr())).await.unwrap();
    let r = reader::run(&reader_cfg(fake.addr(), Some(w.msgs)))
        .await
        .unwrap();
    assert_eq!(r.msgs, w.msgs);
    assert!(
        r.duration_s < 5.0,
        "the reader stopped on the drain, not on runfor"
    );
    fake.wait_until("every message FINned", |c| c.finished == w.msgs)
        .await;
    // Two writer heartbeats plus one after each reader SUB.
    fake.wait_until("four NOPs", |c| c.nops == 4).await;
    assert_eq!(fake.with(|c| c.fin_failed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_without_target_stops_when_runfor_elapses() {
    let fake = Fake::start(FakeOptions::default()).await;
    let cfg = ReaderConfig {
        runfor: Duration::from_millis(300),
        ..reader_cfg(fake.addr(), None)
    };
    let r = reader::run(&cfg).await.unwrap();
    assert_eq!(r.msgs, 0);
    assert!(r.duration_s >= 0.3 && r.duration_s < 1.5, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_times_every_message_for_each_rdy() {
    let fake = Fake::start(FakeOptions::default()).await;
    let cfg = latency::LatencyConfig {
        addr: fake.addr(),
        topic: "latency_bench".to_owned(),
        runfor: Duration::from_millis(300),
        rate: 500,
        size: 64,
        rdys: vec![1, 50],
        identify: true,
    };
    let reports = latency::run(&cfg).await.unwrap();
    assert_eq!(reports.len(), 2);
    for (r, rdy) in reports.iter().zip([1, 50]) {
        assert_eq!(r.rdy, rdy);
        // 500 msgs/s for 0.3 s, give or take a tick of the pacing timer.
        assert!((140..=160).contains(&r.published), "{r:?}");
        assert_eq!(r.received, r.published, "{r:?}");
        assert!(r.p50_us > 0.0 && r.p50_us <= r.p99_us, "{r:?}");
        assert!(r.p99_us <= r.p999_us && r.p999_us <= r.max_us, "{r:?}");
        assert!(r.max_us < 500_000.0, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_prints_one_json_line_and_go_style_text() {
    let fake = Fake::start(FakeOptions::default()).await;
    let addr = fake.addr();
    let pid = std::process::id().to_string();
    let run = move |extra: &'static [&'static str]| {
        let (addr, pid) = (addr.clone(), pid.clone());
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_nsq_bench"))
                .args(["writer", "--runfor", "200ms", "--workers", "1"])
                .args(["--nsqd-tcp-address", &addr, "--mem-pid", &pid])
                .args(extra)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        })
    };

    let json = run(&["--json"]).await.unwrap();
    assert_eq!(json.lines().count(), 1, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mode"], "writer");
    assert!(v["writer"]["msgs"].as_u64().unwrap() > 0, "{v}");
    assert!(v["writer"]["ops_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["mem"]["peak_rss_kb"].as_u64().unwrap() > 0, "{v}");

    let text = run(&[]).await.unwrap();
    let mut lines = text.lines();
    let first = lines.next().unwrap();
    assert!(first.starts_with("[bench_writer] duration: 0."), "{text}");
    assert!(
        first.contains("MB/s - ") && first.ends_with("us/op"),
        "{text}"
    );
    assert!(lines.next().unwrap().starts_with("[mem] pid "), "{text}");
}
