//! The message pump: the one task that writes to a client's socket (Go's `messagePump`, minus Go's write lock).
//!
//! It owns the write half and one output buffer, and multiplexes:
//! - replies and errors from the reader task (a bounded queue, so replies keep command order),
//! - messages taken from the subscribed channel while the client is ready (`RDY > in_flight`),
//! - heartbeats, and the `output_buffer_timeout` flush tick.
//!
//! Flushing follows Go: replies, errors and heartbeats are flushed at once; message frames are buffered up to
//! `output_buffer_size` and flushed when the client stops being ready or on the tick. Go's ticker holds a stale
//! tick while idle, so the first buffered message after a quiet period goes out at once; a tokio interval that
//! skips missed ticks behaves the same.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nsq_core::Channel;
use nsq_protocol::compress::Encoder;
use nsq_protocol::{encode_frame, encode_message_frame, FrameType, HEARTBEAT};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

use super::client::Client;
use super::transport::{Handover, WriteHalf, Writer};

/// Most messages taken from the channel in one step, so replies and heartbeats are never starved.
const MAX_BATCH: usize = 256;

/// Per-connection settings the pump needs, fixed by the first IDENTIFY (as in Go, later IDENTIFYs do not
/// reach the pump).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PumpSettings {
    pub(crate) heartbeat_interval: Duration,
    pub(crate) output_buffer_size: usize,
    pub(crate) output_buffer_timeout: Duration,
    pub(crate) msg_timeout: Duration,
    pub(crate) sample_rate: i32,
    /// When these settings took effect; heartbeats are counted from here. The reader starts its read deadline
    /// after this instant, so a heartbeat due at the same moment as the deadline is always written first, as in
    /// Go (where the pump's ticker also starts before the reader's next deadline).
    pub(crate) since: Instant,
}

/// What the reader hands the pump, in order.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A reply or error frame, written and flushed immediately.
    Frame(FrameType, Bytes),
    /// IDENTIFY changed the pump's settings.
    Identify(PumpSettings),
    /// SUB succeeded: start delivering from this channel.
    Subscribed(Arc<Channel>),
    /// IDENTIFY negotiated TLS or compression: write out what is buffered, then lend the writer to the reader
    /// for the upgrade and wait for it to come back.
    Handover(Handover),
}

struct Pump {
    client: Arc<Client>,
    /// `None` only while lent to the reader for an upgrade.
    writer: Option<WriteHalf>,
    /// Set once snappy or deflate is negotiated: every flush is compressed (and, for deflate, sync-flushed).
    encoder: Option<Encoder>,
    /// The compressed form of `out`, reused across flushes.
    wire: BytesMut,
    out: BytesMut,
    settings: PumpSettings,
    write_timeout: Option<Duration>,
}

fn ticker(since: Instant, period: Duration) -> Option<Interval> {
    if period.is_zero() {
        return None;
    }
    let mut t = interval_at(since + period, period);
    t.set_missed_tick_behavior(MissedTickBehavior::Skip);
    Some(t)
}

/// Go's write deadline: one heartbeat interval per write, none when heartbeats are off.
fn write_timeout(s: &PumpSettings) -> Option<Duration> {
    (!s.heartbeat_interval.is_zero()).then_some(s.heartbeat_interval)
}

async fn tick(t: &mut Option<Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Runs until the reader hangs up, the client is closed, or a write fails.
pub(crate) async fn message_pump(
    client: Arc<Client>,
    writer: WriteHalf,
    mut rx: mpsc::Receiver<Outbound>,
    settings: PumpSettings,
) {
    let mut pump = Pump {
        client,
        writer: Some(writer),
        encoder: None,
        wire: BytesMut::new(),
        out: BytesMut::with_capacity(settings.output_buffer_size.max(4096) + 1024),
        settings,
        write_timeout: write_timeout(&settings),
    };
    let mut heartbeat = ticker(settings.since, settings.heartbeat_interval);
    let mut flusher = ticker(settings.since, settings.output_buffer_timeout);
    let mut channel: Option<Arc<Channel>> = None;
    let mut identified = false;
    let mut flushed = true;

    let result: std::io::Result<()> = async {
        loop {
            let subscribed = channel.clone();
            let slots = subscribed.as_deref().map_or(0, |c| pump.client.ready_slots(c));
            if slots == 0 && !flushed {
                // Not ready: Go forces a flush so nothing sits in the buffer while the client waits.
                pump.flush().await?;
                flushed = true;
            }
            let notified = subscribed.as_deref().map(|c| c.notify().notified());
            tokio::pin!(notified);
            let mut took = 0;
            if let (Some(ch), Some(mut n)) = (subscribed.as_deref(), notified.as_mut().as_pin_mut()) {
                // Register interest before looking, so a put between the look and the wait is not missed.
                n.as_mut().enable();
                if slots > 0 {
                    took = pump.deliver(ch, slots.min(MAX_BATCH)).await?;
                    if took > 0 {
                        flushed = false;
                    }
                }
            }
            let wait_for_messages = slots > 0 && took == 0;
            tokio::select! {
                biased;
                () = pump.client.cancel.cancelled() => break,
                // Before the reply queue: a heartbeat due when the reader gives up is still written, as in Go.
                () = tick(&mut heartbeat) => {
                    encode_frame(&mut pump.out, FrameType::Response, HEARTBEAT);
                    pump.flush().await?;
                    flushed = true;
                }
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    let mut next = Some(msg);
                    let mut wrote_frame = false;
                    while let Some(msg) = next.take() {
                        match msg {
                            Outbound::Frame(ft, data) => {
                                encode_frame(&mut pump.out, ft, &data);
                                wrote_frame = true;
                            }
                            Outbound::Identify(s) if !identified => {
                                identified = true;
                                pump.settings = s;
                                pump.write_timeout = write_timeout(&s);
                                heartbeat = ticker(s.since, s.heartbeat_interval);
                                flusher = ticker(s.since, s.output_buffer_timeout);
                            }
                            Outbound::Identify(_) => {}
                            Outbound::Subscribed(c) => channel = Some(c),
                            Outbound::Handover(h) => {
                                pump.flush().await?;
                                wrote_frame = false;
                                flushed = true;
                                pump.lend(h).await?;
                            }
                        }
                        next = rx.try_recv().ok();
                    }
                    if wrote_frame {
                        pump.flush().await?;
                        flushed = true;
                    }
                }
                () = tick(&mut flusher), if !flushed => {
                    pump.flush().await?;
                    flushed = true;
                }
                () = pump.client.wake.notified() => {}
                () = async { if let Some(n) = notified.as_mut().as_pin_mut() { n.await } }, if wait_for_messages => {}
                () = std::future::ready(()), if took > 0 => {}
            }
        }
        pump.flush().await
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(client = pump.client.id, error = %e, "message pump write failed");
    }
    // Whatever ended the pump ends the connection.
    pump.client.cancel.cancel();
    if let Some(w) = pump.writer.as_mut() {
        let _ = w.shutdown().await;
    }
}

impl Pump {
    /// Takes up to `max` messages, encoding their frames straight into the output buffer until it reaches
    /// `output_buffer_size`, and then writes it.
    async fn deliver(&mut self, channel: &Channel, max: usize) -> std::io::Result<usize> {
        let client = &self.client;
        // Reserve the slots before taking so a fast FIN can never drive the count below zero.
        client
            .in_flight_count
            .fetch_add(max as i64, Ordering::AcqRel);
        let out = &mut self.out;
        let limit = self.settings.output_buffer_size;
        let n = channel.take_with(
            client.id,
            max,
            self.settings.msg_timeout,
            self.settings.sample_rate,
            |msg| {
                encode_message_frame(out, msg.timestamp, msg.attempts, &msg.id, &msg.body);
                // Like Go's bufio writer: a full buffer is written before anything else is added to it.
                out.len() < limit
            },
        );
        client
            .in_flight_count
            .fetch_sub((max - n) as i64, Ordering::AcqRel);
        client.message_count.fetch_add(n as u64, Ordering::Relaxed);
        if self.out.len() >= self.settings.output_buffer_size {
            self.flush().await?;
        }
        Ok(n)
    }

    /// Lends the writer (and the encoder) to the reader for an upgrade and takes back what it returns.
    async fn lend(&mut self, handover: Handover) -> std::io::Result<()> {
        let lent = Writer {
            half: self.writer.take().ok_or_else(lent_out)?,
            encoder: self.encoder.take(),
        };
        if handover.lend.send(lent).is_err() {
            return Err(std::io::Error::other("reader gone during upgrade"));
        }
        let back = handover
            .back
            .await
            .map_err(|_| std::io::Error::other("upgrade failed"))?;
        self.writer = Some(back.half);
        self.encoder = back.encoder;
        Ok(())
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let writer = self.writer.as_mut().ok_or_else(lent_out)?;
        let bytes: &[u8] = match self.encoder.as_mut() {
            Some(encoder) => {
                self.wire.clear();
                encoder.encode(&self.out, &mut self.wire);
                &self.wire
            }
            None => &self.out,
        };
        // The flush matters for TLS, whose records are written out by it.
        let write = async {
            writer.write_all(bytes).await?;
            writer.flush().await
        };
        match self.write_timeout {
            Some(t) => tokio::time::timeout(t, write).await.map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "write deadline exceeded")
            })??,
            None => write.await?,
        }
        self.out.clear();
        Ok(())
    }
}

fn lent_out() -> std::io::Error {
    std::io::Error::other("writer is lent out")
}
