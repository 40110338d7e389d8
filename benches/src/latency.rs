//! The latency benchmark: publish-to-receive time at a steady, low rate.
//!
//! Throughput runs keep nsqd saturated, which says little about how long one message waits.
//! Here one connection PUBs `rate` messages a second, each body carrying the time it was sent
//! (nanoseconds since an `Instant` shared with the subscriber, which runs in the same process),
//! and one subscriber connection measures when each arrives. The run is repeated for every RDY
//! setting asked for: with RDY 1 nsqd flushes after every message, with a large RDY it relies on
//! its output buffer timeout (250 ms by default), and the difference shows up in these figures.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BufMut;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::conn::{Conn, Features};
use crate::report::LatencyReport;
use crate::wire::{self, Frame};

/// How long the subscriber keeps waiting for stragglers after the publisher is done.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Bytes of a latency body that carry the run tag and the send time.
const STAMP_LEN: usize = 16;

/// Settings of a latency run.
#[derive(Debug, Clone)]
pub struct LatencyConfig {
    /// nsqd's TCP address, `host:port`.
    pub addr: String,
    /// Topic to publish to and subscribe on.
    pub topic: String,
    /// How long each RDY phase publishes for.
    pub runfor: Duration,
    /// Messages per second.
    pub rate: u32,
    /// Body size; at least 16 bytes are used for the stamp.
    pub size: usize,
    /// One phase per RDY value, in order.
    pub rdys: Vec<u32>,
    /// Whether to send IDENTIFY after the magic.
    pub identify: bool,
}

/// Runs one publish/subscribe phase per RDY value and returns their latency summaries.
pub async fn run(cfg: &LatencyConfig) -> io::Result<Vec<LatencyReport>> {
    run_with(cfg, Features::default()).await
}

/// [`run`] with both connections of every phase negotiating `features` in IDENTIFY.
pub async fn run_with(cfg: &LatencyConfig, features: Features) -> io::Result<Vec<LatencyReport>> {
    let epoch = Instant::now();
    // A per-process tag lets the subscriber ignore messages left on the topic by earlier runs.
    let run_tag = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut reports = Vec::with_capacity(cfg.rdys.len());
    for (phase, &rdy) in cfg.rdys.iter().enumerate() {
        let tag = run_tag.wrapping_add(phase as u64);
        reports.push(run_phase(cfg, features, rdy, tag, epoch).await?);
    }
    Ok(reports)
}

async fn run_phase(
    cfg: &LatencyConfig,
    features: Features,
    rdy: u32,
    tag: u64,
    epoch: Instant,
) -> io::Result<LatencyReport> {
    let identify = cfg
        .identify
        .then(|| wire::identify_json_with("latency", &features));
    // An ephemeral channel per phase: it sees only this phase's messages and disappears after.
    let channel = format!("latency_rdy{rdy}#ephemeral");
    let mut sub = Conn::connect_with(&cfg.addr, identify.as_deref(), features).await?;
    wire::encode_sub(sub.wbuf(), &cfg.topic, &channel);
    sub.flush().await?;
    sub.expect_ok("SUB").await?;
    wire::encode_rdy(sub.wbuf(), rdy);
    sub.flush().await?;

    let (total_tx, total_rx) = watch::channel(None);
    let subscriber = tokio::spawn(subscribe(sub, total_rx, tag, epoch));
    let published = match publish(cfg, identify.as_deref(), features, tag, epoch).await {
        Ok(n) => n,
        Err(e) => {
            subscriber.abort();
            return Err(e);
        }
    };
    total_tx.send_replace(Some(published));
    let mut samples = subscriber.await.map_err(io::Error::other)??;
    Ok(LatencyReport::from_samples(rdy, published, &mut samples))
}

/// PUBs stamped messages at `cfg.rate` for `cfg.runfor`, then waits for the last `OK`s.
/// Returns how many were acknowledged.
async fn publish(
    cfg: &LatencyConfig,
    identify: Option<&str>,
    features: Features,
    tag: u64,
    epoch: Instant,
) -> io::Result<u64> {
    let mut conn = Conn::connect_with(&cfg.addr, identify, features).await?;
    let rate = f64::from(cfg.rate.max(1));
    // Tokio timers have millisecond resolution, so above 1000 msgs/s each tick sends the
    // messages that are due rather than one message per tick.
    let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut body = vec![b'l'; cfg.size.max(STAMP_LEN)];
    let start = Instant::now();
    let end = start + cfg.runfor;
    let (mut sent, mut acked) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                // The product stays far below 2^53 for any run length a person would choose.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let due = ((now - start).as_secs_f64() * rate) as u64 + 1;
                while sent < due {
                    stamp(&mut body, tag, epoch);
                    wire::encode_pub(conn.wbuf(), &cfg.topic, &body);
                    sent += 1;
                }
                conn.flush().await?;
            }
            read = conn.fill() => {
                read?;
                acked += drain_pub_answers(&mut conn)?;
                conn.flush().await?;
            }
        }
    }
    while acked < sent {
        tokio::time::timeout(DRAIN_GRACE, conn.fill())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "waiting for PUB OKs"))??;
        acked += drain_pub_answers(&mut conn)?;
        conn.flush().await?;
    }
    Ok(acked)
}

/// Counts the `OK`s in the buffer; any error frame fails the run.
fn drain_pub_answers(conn: &mut Conn) -> io::Result<u64> {
    let mut oks = 0;
    conn.drain_frames(|frame, _| match frame {
        Frame::Response(wire::OK) => {
            oks += 1;
            Ok(())
        }
        Frame::Error(e) => Err(wire::invalid(format!(
            "PUB: {}",
            String::from_utf8_lossy(e)
        ))),
        _ => Ok(()),
    })?;
    Ok(oks)
}

/// Receives, FINs and times messages until all `total` published ones arrived, or until
/// [`DRAIN_GRACE`] after the publisher finished. Returns latencies in nanoseconds.
async fn subscribe(
    mut conn: Conn,
    mut total_rx: watch::Receiver<Option<u64>>,
    tag: u64,
    epoch: Instant,
) -> io::Result<Vec<u64>> {
    let mut samples = Vec::new();
    let mut give_up: Option<Instant> = None;
    loop {
        let total = *total_rx.borrow_and_update();
        if let Some(total) = total {
            if samples.len() as u64 >= total {
                return Ok(samples);
            }
            give_up.get_or_insert_with(|| Instant::now() + DRAIN_GRACE);
        }
        let deadline = give_up.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            changed = total_rx.changed(), if total.is_none() => {
                if changed.is_err() {
                    // The publisher went away without a total: its error is reported there.
                    return Ok(samples);
                }
            }
            () = tokio::time::sleep_until(deadline), if give_up.is_some() => return Ok(samples),
            read = conn.fill() => {
                read?;
                conn.drain_frames(|frame, wbuf| {
                    if let Frame::Message(payload) = frame {
                        let msg = wire::parse_message(payload)?;
                        let now_ns = epoch.elapsed().as_nanos() as u64;
                        if let Some(sent_ns) = read_stamp(msg.body, tag) {
                            samples.push(now_ns.saturating_sub(sent_ns));
                        }
                        wire::encode_fin(wbuf, msg.id);
                    }
                    Ok(())
                })?;
                conn.flush().await?;
            }
        }
    }
}

/// Writes the run tag and the current time since `epoch` into the first 16 bytes of `body`.
fn stamp(body: &mut [u8], tag: u64, epoch: Instant) {
    let now_ns = epoch.elapsed().as_nanos() as u64;
    let mut head = &mut body[..STAMP_LEN];
    head.put_u64(tag);
    head.put_u64(now_ns);
}

/// Reads the send time back from a body, if it carries this phase's tag.
fn read_stamp(body: &[u8], tag: u64) -> Option<u64> {
    let tag_bytes = body.get(..8)?;
    let ns_bytes = body.get(8..STAMP_LEN)?;
    (u64::from_be_bytes(tag_bytes.try_into().ok()?) == tag)
        .then(|| u64::from_be_bytes(ns_bytes.try_into().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_foreign_tags_are_ignored() {
        let epoch = Instant::now();
        let mut body = vec![0u8; 32];
        stamp(&mut body, 42, epoch);
        let sent = read_stamp(&body, 42).unwrap();
        assert!(sent <= epoch.elapsed().as_nanos() as u64);
        assert_eq!(read_stamp(&body, 43), None);
        assert_eq!(read_stamp(&body[..10], 42), None);
    }
}
