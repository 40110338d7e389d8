//! Blocking producer and consumer helpers for tests that move many messages through a real nsqd: publish in
//! MPUB batches, and drain a channel with FIN until it stays quiet.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::wire::{
    command, command_with_body, mpub_body, Event, FrameConn, Message, FRAME_MESSAGE, FRAME_RESPONSE,
};

/// Publishes `bodies` to `topic` in MPUBs of at most `batch` messages, waiting for each `OK`.
pub fn publish_all(tcp: SocketAddr, topic: &str, bodies: &[Vec<u8>], batch: usize) -> Result<()> {
    let mut conn = FrameConn::connect(tcp)?;
    conn.send(b"  V2")?;
    for chunk in bodies.chunks(batch.max(1)) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        conn.send(&command_with_body(
            &format!("MPUB {topic}"),
            &mpub_body(&refs),
        ))?;
        conn.expect_ok("MPUB")?;
    }
    conn.close();
    Ok(())
}

/// Subscribes to `topic`/`channel` with `RDY rdy`, FINs every message, and returns them in delivery order
/// once no message arrived for `quiet`. Fails if the connection closes.
pub fn drain(
    tcp: SocketAddr,
    topic: &str,
    channel: &str,
    rdy: u32,
    quiet: Duration,
) -> Result<Vec<Message>> {
    let mut conn = FrameConn::connect(tcp)?;
    conn.send(b"  V2")?;
    conn.send(&command(&format!("SUB {topic} {channel}")))?;
    conn.expect_ok("SUB")?;
    conn.send(&command(&format!("RDY {rdy}")))?;
    let mut out = Vec::new();
    let mut last = Instant::now();
    loop {
        match conn.next_event(last + quiet) {
            Event::Frame(f) if f.frame.frame_type == FRAME_MESSAGE => {
                let msg = Message::parse(&f.frame.data).context("short message frame")?;
                conn.send(&command(&format!("FIN {}", msg.id_text())))?;
                out.push(msg);
                last = Instant::now();
            }
            Event::Frame(f) if f.frame.frame_type == FRAME_RESPONSE => {
                if f.frame.data == b"_heartbeat_" {
                    conn.send(b"NOP\n")?;
                }
            }
            Event::Frame(f) => bail!(
                "unexpected frame while draining {topic}/{channel}: {:?}",
                String::from_utf8_lossy(&f.frame.data)
            ),
            Event::Closed { .. } => bail!("nsqd closed the connection while draining"),
            Event::Timeout => break,
        }
    }
    conn.close();
    Ok(out)
}
