//! One lookupd connection and the task that keeps it (Go's `lookupPeer` plus its share of `lookupLoop`).
//!
//! Every exchange is one command and one `[u32 size][data]` response, each write and read with Go's 1 s
//! deadline. A failed exchange closes the connection and the command is lost, as in Go; the next command dials
//! again, identifies and registers everything, so nothing stays lost for long.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::PeerInfo;
use crate::context::Context;
use crate::NSQ_VERSION;

/// Go's dial, read and write deadline for lookupd.
const IO_DEADLINE: Duration = Duration::from_secs(1);
/// Go's heartbeat period (`time.Tick(15 * time.Second)`).
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long after lookupd closed the connection we dial again.
const REDIAL_DELAY: Duration = Duration::from_secs(1);

const MAGIC_V1: &[u8] = b"  V1";
const PING: &[u8] = b"PING\n";

/// Runs one lookupd peer until `stop` fires.
pub(super) async fn run(
    addr: String,
    ctx: Arc<Context>,
    mut lines: broadcast::Receiver<Bytes>,
    stop: CancellationToken,
) {
    let mut peer = Peer {
        addr,
        ctx,
        conn: None,
    };
    // Go dials as soon as the peer is added (`lookupPeer.Command(nil)`).
    if !stoppable(&stop, peer.ensure_connected()).await {
        return;
    }
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut redial: Option<Instant> = None;
    loop {
        let done = tokio::select! {
            _ = stop.cancelled() => break,
            _ = ping.tick() => {
                tracing::debug!("LOOKUPD({}): sending heartbeat", peer.addr);
                stoppable(&stop, peer.command(Bytes::from_static(PING))).await
            }
            received = lines.recv() => match received {
                Ok(line) => stoppable(&stop, peer.command(line)).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(
                        "LOOKUPD({}): {n} registrations were dropped; reconnecting to register everything",
                        peer.addr
                    );
                    peer.conn = None;
                    stoppable(&stop, peer.ensure_connected()).await
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = closed_by_lookupd(&mut peer.conn) => {
                tracing::info!("LOOKUPD({}): connection closed by lookupd", peer.addr);
                peer.conn = None;
                redial = Some(Instant::now() + REDIAL_DELAY);
                true
            }
            _ = tokio::time::sleep_until(redial.unwrap_or_else(Instant::now)), if redial.is_some() => {
                redial = None;
                stoppable(&stop, peer.ensure_connected()).await
            }
        };
        if !done {
            break;
        }
    }
    // Dropping the connection closes it; Go sends nothing at exit either.
}

/// Runs `work` unless `stop` fires first; false when stopped. Biased: once the manager has stopped this peer
/// (and forgotten its IDENTIFY answer), `work` is never polled again, so it cannot record that answer anew.
async fn stoppable(stop: &CancellationToken, work: impl std::future::Future<Output = ()>) -> bool {
    tokio::select! {
        biased;
        _ = stop.cancelled() => false,
        _ = work => true,
    }
}

/// Resolves when an idle connection is closed by lookupd (or sends something unasked); never when there is no
/// connection. Cancel-safe: it only reads, and anything read ends the connection.
async fn closed_by_lookupd(conn: &mut Option<Conn>) {
    match conn {
        Some(c) => {
            let mut byte = [0u8; 1];
            let _ = c.stream.read(&mut byte).await;
        }
        None => std::future::pending().await,
    }
}

struct Peer {
    addr: String,
    ctx: Arc<Context>,
    conn: Option<Conn>,
}

impl Peer {
    /// Sends one command (dialling first if needed) and reads its response; a failure closes the connection.
    async fn command(&mut self, line: Bytes) {
        self.ensure_connected().await;
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match conn.command(&line).await {
            Ok(resp) if resp.starts_with(b"E_") => {
                // lookupd closes the connection after any error.
                tracing::error!(
                    "LOOKUPD({}): {} - {}",
                    self.addr,
                    String::from_utf8_lossy(line.trim_ascii_end()),
                    String::from_utf8_lossy(&resp)
                );
                self.conn = None;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::error!(
                    "LOOKUPD({}): {} - {err}",
                    self.addr,
                    String::from_utf8_lossy(line.trim_ascii_end())
                );
                self.conn = None;
            }
        }
    }

    /// Dials, identifies and registers every topic and channel, unless connected already.
    async fn ensure_connected(&mut self) {
        if self.conn.is_some() {
            return;
        }
        match self.connect().await {
            Ok(conn) => self.conn = Some(conn),
            Err(err) => tracing::error!("LOOKUPD({}): {err}", self.addr),
        }
    }

    async fn connect(&self) -> std::io::Result<Conn> {
        tracing::info!("LOOKUP connecting to {}", self.addr);
        let stream = timeout(IO_DEADLINE, TcpStream::connect(self.addr.as_str()))
            .await
            .map_err(|_| timed_out("dial"))??;
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            stream,
            max_body_size: self.ctx.lookup.limits.max_body_size,
        };
        conn.write(MAGIC_V1).await?;
        let resp = conn.command(&identify_command(&self.ctx)?).await?;
        if resp.starts_with(b"E_") {
            return Err(std::io::Error::other(format!(
                "IDENTIFY - lookupd returned {}",
                String::from_utf8_lossy(&resp)
            )));
        }
        let info: PeerInfo = serde_json::from_slice(&resp).map_err(|e| {
            std::io::Error::other(format!(
                "parsing response {} - {e}",
                String::from_utf8_lossy(&resp)
            ))
        })?;
        tracing::info!("LOOKUPD({}): peer info {info:?}", self.addr);
        if info.broadcast_address.is_empty() {
            tracing::error!("LOOKUPD({}): no broadcast address", self.addr);
        }
        self.ctx.lookup.set_info(&self.addr, info);
        for line in registrations(&self.ctx) {
            tracing::info!(
                "LOOKUPD({}): {}",
                self.addr,
                String::from_utf8_lossy(line.trim_ascii_end())
            );
            let resp = conn.command(&line).await?;
            if resp.starts_with(b"E_") {
                return Err(std::io::Error::other(String::from_utf8_lossy(&resp)));
            }
        }
        Ok(conn)
    }
}

/// The IDENTIFY body: Go marshals a map, so the keys come out sorted.
#[derive(Serialize)]
struct IdentifyBody<'a> {
    broadcast_address: &'a str,
    hostname: &'a str,
    http_port: i32,
    tcp_port: i32,
    topology_region: &'a str,
    topology_zone: &'a str,
    version: &'a str,
}

fn identify_command(ctx: &Context) -> std::io::Result<Vec<u8>> {
    let id = &ctx.lookup.identity;
    let body = nsq_protocol::to_go_json(&IdentifyBody {
        broadcast_address: &id.broadcast_address,
        hostname: &id.hostname,
        http_port: id.http_port,
        tcp_port: id.tcp_port,
        topology_region: &id.topology_region,
        topology_zone: &id.topology_zone,
        version: NSQ_VERSION,
    })
    .map_err(std::io::Error::other)?;
    let mut out = BytesMut::with_capacity(13 + body.len());
    out.put_slice(b"IDENTIFY\n");
    out.put_u32(u32::try_from(body.len()).unwrap_or(u32::MAX));
    out.put_slice(&body);
    Ok(out.to_vec())
}

/// One REGISTER per channel, or one per topic that has no channels (Go's `connectCallback`).
fn registrations(ctx: &Context) -> Vec<Bytes> {
    let mut out = Vec::new();
    for topic in ctx.topics.topics() {
        let channels = topic.channels();
        if channels.is_empty() {
            out.push(super::line("REGISTER", topic.name(), None));
        }
        for c in channels {
            out.push(super::line("REGISTER", topic.name(), Some(c.name())));
        }
    }
    out
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// A connected lookupd socket.
struct Conn {
    stream: TcpStream,
    max_body_size: i64,
}

impl Conn {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        timeout(IO_DEADLINE, self.stream.write_all(bytes))
            .await
            .map_err(|_| timed_out("write"))?
    }

    /// Writes a command and reads its response, bounded by `--max-body-size` (Go's `readResponseBounded`).
    async fn command(&mut self, bytes: &[u8]) -> std::io::Result<Bytes> {
        self.write(bytes).await?;
        let size = timeout(IO_DEADLINE, self.stream.read_i32())
            .await
            .map_err(|_| timed_out("read"))??;
        if i64::from(size) > self.max_body_size || size < 0 {
            return Err(std::io::Error::other(format!(
                "response body size ({size}) is greater than limit ({})",
                self.max_body_size
            )));
        }
        let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
        timeout(IO_DEADLINE, self.stream.read_exact(&mut buf))
            .await
            .map_err(|_| timed_out("read"))??;
        Ok(Bytes::from(buf))
    }
}
