//! The publish benchmark: Go's `bench/bench_writer`, with pipelining.
//!
//! Every worker owns one connection and sends MPUB batches of identical messages back to back.
//! Go's tool waits for each `OK` before sending the next batch; here a worker keeps up to
//! `pipeline` batches outstanding (`pipeline = 1` is the Go behaviour), so the figure measures
//! nsqd rather than the round trip. Only acknowledged messages are counted, and a worker stops
//! sending once `runfor` has elapsed, then waits for the acknowledgements still in flight.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use crate::conn::Conn;
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
}

/// Connects every worker, waits for the start time, publishes for `runfor` and returns the
/// acknowledged throughput.
pub async fn run(cfg: &WriterConfig) -> io::Result<Throughput> {
    let batch = encode_batch(&cfg.topic, cfg.size, cfg.batch_size);
    let identify = cfg.identify.then(|| wire::identify_json("writer"));
    let mut conns = Vec::with_capacity(cfg.workers);
    for _ in 0..cfg.workers.max(1) {
        conns.push(Conn::connect(&cfg.addr, identify.as_deref()).await?);
    }
    cfg.start_at.wait().await;

    let start = Instant::now();
    let end = start + cfg.runfor;
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let batch = batch.clone();
            let (batch_size, pipeline) = (cfg.batch_size as u64, cfg.pipeline.max(1));
            tokio::spawn(pub_worker(conn, batch, batch_size, pipeline, end))
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

/// Publishes `batch` until `end`, keeping at most `pipeline` MPUBs unacknowledged, and returns
/// the number of messages nsqd acknowledged.
async fn pub_worker(
    mut conn: Conn,
    batch: Bytes,
    batch_size: u64,
    pipeline: usize,
    end: Instant,
) -> io::Result<u64> {
    let mut outstanding = 0usize;
    let mut acked = 0u64;
    let mut stopping = false;
    loop {
        while !stopping && outstanding < pipeline {
            conn.wbuf().extend_from_slice(&batch);
            outstanding += 1;
        }
        conn.flush().await?;
        if outstanding == 0 {
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
        if oks > outstanding {
            return Err(wire::invalid("more OKs than MPUBs sent"));
        }
        outstanding -= oks;
        acked += oks as u64 * batch_size;
        if oks > 0 && Instant::now() >= end {
            stopping = true;
        }
    }
}
