//! The consume benchmark: Go's `bench/bench_reader`.
//!
//! Every worker owns one connection subscribed to the same channel with a large RDY (2500 by
//! default). After each socket read it walks all complete message frames, queues one `FIN` per
//! message and sends the whole batch of FINs in a single write. Workers stop when `runfor`
//! elapses or, if a target count is given (as `all` mode does with the writer's total), as soon
//! as the workers together have received that many messages.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::conn::{Conn, Features};
use crate::report::Throughput;
use crate::wire::{self, Frame};
use crate::StartAt;

/// Settings of a reader run; the CLI flags map onto these one to one.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// nsqd's TCP address, `host:port`.
    pub addr: String,
    /// Topic to subscribe to.
    pub topic: String,
    /// Channel to subscribe to.
    pub channel: String,
    /// Longest time to read for.
    pub runfor: Duration,
    /// Body size the writer used, only for the MB/s figure.
    pub size: usize,
    /// RDY count of every connection.
    pub rdy: u32,
    /// Connections, one task each.
    pub workers: usize,
    /// Whether to send IDENTIFY after the magic.
    pub identify: bool,
    /// When to send RDY, once every connection is subscribed.
    pub start_at: StartAt,
    /// Stop once this many messages have arrived in total (the writer's count in `all` mode).
    pub count: Option<u64>,
}

/// Subscribes every worker, waits for the start time, consumes until `runfor` elapses or
/// `count` messages arrived, and returns the receive throughput.
pub async fn run(cfg: &ReaderConfig) -> io::Result<Throughput> {
    run_with(cfg, Features::default()).await
}

/// [`run`] with every connection negotiating `features` (TLS, compression) in IDENTIFY.
pub async fn run_with(cfg: &ReaderConfig, features: Features) -> io::Result<Throughput> {
    let identify = cfg
        .identify
        .then(|| wire::identify_json_with("reader", &features));
    let workers = cfg.workers.max(1);
    let mut conns = Vec::with_capacity(workers);
    for _ in 0..workers {
        let mut conn = Conn::connect_with(&cfg.addr, identify.as_deref(), features).await?;
        wire::encode_sub(conn.wbuf(), &cfg.topic, &cfg.channel);
        conn.flush().await?;
        conn.expect_ok("SUB").await?;
        conns.push(conn);
    }
    cfg.start_at.wait().await;

    let start = Instant::now();
    let shared = Arc::new(Shared {
        received: AtomicU64::new(0),
        target: cfg.count,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let worker = SubWorker {
                shared: Arc::clone(&shared),
                stop_tx: Arc::clone(&stop_tx),
                stop_rx: stop_rx.clone(),
                end: start + cfg.runfor,
                rdy: cfg.rdy,
            };
            tokio::spawn(worker.run(conn))
        })
        .collect();
    for task in tasks {
        task.await.map_err(io::Error::other)??;
    }
    let msgs = shared.received.load(Ordering::Relaxed);
    Ok(Throughput::new(msgs, cfg.size, start.elapsed(), workers))
}

/// State the reader workers share.
#[derive(Debug)]
struct Shared {
    /// Messages received by all workers so far.
    received: AtomicU64,
    /// The total at which every worker should stop, if any.
    target: Option<u64>,
}

/// One subscribed connection's consume loop.
#[derive(Debug)]
struct SubWorker {
    shared: Arc<Shared>,
    /// Raised by whichever worker sees the shared count reach the target.
    stop_tx: Arc<watch::Sender<bool>>,
    stop_rx: watch::Receiver<bool>,
    end: Instant,
    rdy: u32,
}

impl SubWorker {
    async fn run(mut self, mut conn: Conn) -> io::Result<()> {
        if self.target_reached() {
            return Ok(());
        }
        wire::encode_rdy(conn.wbuf(), self.rdy);
        conn.flush().await?;
        loop {
            tokio::select! {
                biased;
                _ = self.stop_rx.wait_for(|stop| *stop) => return Ok(()),
                () = tokio::time::sleep_until(self.end) => return Ok(()),
                read = conn.fill() => read?,
            }
            let mut got = 0u64;
            conn.drain_frames(|frame, wbuf| {
                match frame {
                    Frame::Message(payload) => {
                        wire::encode_fin(wbuf, wire::parse_message(payload)?.id);
                        got += 1;
                    }
                    // FIN failures (for example after a msg-timeout requeue) are not fatal.
                    Frame::Error(e) => eprintln!("reader: {}", String::from_utf8_lossy(e)),
                    Frame::Response(_) => {}
                }
                Ok(())
            })?;
            conn.flush().await?;
            let total = self.shared.received.fetch_add(got, Ordering::Relaxed) + got;
            if self.shared.target.is_some_and(|t| total >= t) {
                self.stop_tx.send_replace(true);
                return Ok(());
            }
        }
    }

    fn target_reached(&self) -> bool {
        self.shared
            .target
            .is_some_and(|t| self.shared.received.load(Ordering::Relaxed) >= t)
    }
}
