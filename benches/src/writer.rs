//! The publish benchmark: Go's `bench/bench_writer`, with pipelining.
//!
//! Every worker owns one connection and sends MPUB batches of identical messages back to back.
//! Go's tool waits for each `OK` before sending the next batch; here a worker keeps up to
//! `pipeline` batches outstanding (`pipeline = 1` is the Go behaviour), so the figure measures
//! nsqd rather than the round trip. Only acknowledged messages are counted, and a worker stops
//! sending once `runfor` has elapsed, then waits for the acknowledgements still in flight.
//!
//! With a `count`, the workers share one budget of messages and stop once it is spent, so a run
//! leaves exactly that many messages on the topic (the last MPUB is cut short to fit). This is
//! how the disk benchmarks build a backlog of a known size.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use crate::conn::{Conn, Features};
use crate::report::Throughput;
use crate::wire::{self, Frame};
use crate::StartAt;

/// Settings of a writer run; the CLI flags map onto these one to one.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// nsqd's TCP address, `host:port`.
    pub addr: String,
    /// Topic to publish to.
    pub topic: String,
    /// How long to keep sending.
    pub runfor: Duration,
    /// Body size of every message in bytes.
    pub size: usize,
    /// Messages per MPUB.
    pub batch_size: usize,
    /// Connections, one task each.
    pub workers: usize,
    /// Most MPUBs a connection may have sent without their `OK`.
    pub pipeline: usize,
    /// Whether to send IDENTIFY after the magic.
    pub identify: bool,
    /// When to start sending, once every connection is open.
    pub start_at: StartAt,
    /// Stop once this many messages in total have been sent (and then acknowledged), even
    /// before `runfor` has elapsed.
    pub count: Option<u64>,
}

/// Connects every worker, waits for the start time, publishes for `runfor` and returns the
/// acknowledged throughput.
pub async fn run(cfg: &WriterConfig) -> io::Result<Throughput> {
    run_with(cfg, Features::default()).await
}

/// [`run`] with every connection negotiating `features` (TLS, compression) in IDENTIFY.
pub async fn run_with(cfg: &WriterConfig, features: Features) -> io::Result<Throughput> {
    let batch = encode_batch(&cfg.topic, cfg.size, cfg.batch_size);
    let identify = cfg
        .identify
        .then(|| wire::identify_json_with("writer", &features));
    let mut conns = Vec::with_capacity(cfg.workers);
    for _ in 0..cfg.workers.max(1) {
        conns.push(Conn::connect_with(&cfg.addr, identify.as_deref(), features).await?);
    }
    cfg.start_at.wait().await;

    let start = Instant::now();
    let budget = Arc::new(Budget {
        claimed: AtomicU64::new(0),
        limit: cfg.count,
    });
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let worker = PubWorker {
                topic: cfg.topic.clone(),
                size: cfg.size,
                batch: batch.clone(),
                batch_size: cfg.batch_size as u64,
                pipeline: cfg.pipeline.max(1),
                end: start + cfg.runfor,
                budget: Arc::clone(&budget),
            };
            tokio::spawn(worker.run(conn))
        })
        .collect();
    let mut msgs = 0;
    for task in tasks {
        msgs += task.await.map_err(io::Error::other)??;
    }
    Ok(Throughput::new(
        msgs,
        cfg.size,
        start.elapsed(),
        cfg.workers.max(1),
    ))
}

/// Encodes the one MPUB command every worker sends over and over.
pub fn encode_batch(topic: &str, size: usize, batch_size: usize) -> Bytes {
    let body = vec![b'a'; size];
    let mut buf = BytesMut::with_capacity(topic.len() + 16 + batch_size * (4 + size));
    wire::encode_mpub(
        &mut buf,
        topic,
        std::iter::repeat_n(body.as_slice(), batch_size),
    );
    buf.freeze()
}

/// The message budget of a `count` run, shared by all workers.
#[derive(Debug)]
struct Budget {
    /// Messages the workers have taken for MPUBs so far (may overshoot `limit`).
    claimed: AtomicU64,
    /// The total to send, or `None` to send until `runfor` ends.
    limit: Option<u64>,
}

impl Budget {
    /// Takes up to `want` messages from the budget and returns how many were granted; 0 means
    /// the budget is spent.
    fn claim(&self, want: u64) -> u64 {
        let Some(limit) = self.limit else {
            return want;
        };
        let before = self.claimed.fetch_add(want, Ordering::Relaxed);
        limit.saturating_sub(before).min(want)
    }
}

/// One publishing connection's state.
#[derive(Debug)]
struct PubWorker {
    topic: String,
    size: usize,
    /// A full MPUB of `batch_size` messages, encoded once.
    batch: Bytes,
    batch_size: u64,
    /// Most MPUBs awaiting their `OK`.
    pipeline: usize,
    /// When to stop sending.
    end: Instant,
    budget: Arc<Budget>,
}

impl PubWorker {
    /// Publishes until `end` or until the budget is spent, keeping at most `pipeline` MPUBs
    /// unacknowledged, and returns the number of messages nsqd acknowledged.
    async fn run(self, mut conn: Conn) -> io::Result<u64> {
        // Messages in each MPUB sent and not yet acknowledged, oldest first; nsqd answers a
        // connection's commands in order.
        let mut outstanding: VecDeque<u64> = VecDeque::with_capacity(self.pipeline);
        let mut acked = 0u64;
        let mut stopping = false;
        loop {
            while !stopping && outstanding.len() < self.pipeline {
                let n = self.budget.claim(self.batch_size);
                if n == 0 {
                    stopping = true;
                } else if n == self.batch_size {
                    conn.wbuf().extend_from_slice(&self.batch);
                    outstanding.push_back(n);
                } else {
                    // Only the one MPUB that exhausts the budget is shorter than a batch.
                    let body = vec![b'a'; self.size];
                    let len = usize::try_from(n).map_err(|e| wire::invalid(e.to_string()))?;
                    wire::encode_mpub(
                        conn.wbuf(),
                        &self.topic,
                        std::iter::repeat_n(body.as_slice(), len),
                    );
                    outstanding.push_back(n);
                }
            }
            conn.flush().await?;
            if outstanding.is_empty() {
                return Ok(acked);
            }
            conn.fill().await?;
            let mut oks = 0usize;
            conn.drain_frames(|frame, _| match frame {
                Frame::Response(wire::OK) => {
                    oks += 1;
                    Ok(())
                }
                Frame::Response(wire::HEARTBEAT) => Ok(()),
                Frame::Response(other) => Err(wire::invalid(format!(
                    "MPUB: unexpected response {:?}",
                    String::from_utf8_lossy(other)
                ))),
                Frame::Error(e) => Err(wire::invalid(format!(
                    "MPUB: {}",
                    String::from_utf8_lossy(e)
                ))),
                Frame::Message(_) => Err(wire::invalid("MPUB: got a message on a publisher")),
            })?;
            if oks > outstanding.len() {
                return Err(wire::invalid("more OKs than MPUBs sent"));
            }
            acked += outstanding.drain(..oks).sum::<u64>();
            if oks > 0 && Instant::now() >= self.end {
                stopping = true;
            }
        }
    }
}
