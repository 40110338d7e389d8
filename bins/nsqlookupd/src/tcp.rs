//! The TCP side: the accept loop (Go's `tcpServer`) and one task per connection (Go's `LookupProtocolV1`).
//! The listener is a TCP port or a unix domain socket (`--tcp-address` a path); the protocol is the same.
//!
//! A connection is strictly request/response: read one command (and the IDENTIFY body), run it against the
//! registration database, write one answer. So one task owns the whole socket and there is no writer to share.
//! The database lock is taken inside each `RegistrationDb` call and released before any socket write.
//!
//! When the connection ends for any reason (EOF, an error answer, shutdown), the peer's registrations are
//! removed before the task exits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use nsq_http::{Accepted, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::Peer;
use crate::protocol::{
    encode_response, identify_body_len, parse_identify, parse_line, Command, IdentifyResponse,
    ProtocolError, TopicChannel, BAD_PROTOCOL, MAGIC_V1, MAX_LINE_LENGTH, OK,
};
use crate::{now_ns, Context, NSQ_VERSION};

/// Pause after a failed `accept` (for example when out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections until `shutdown` is cancelled. Each connection's token is a child of `clients`.
pub(crate) async fn serve(
    listener: Listener,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
    clients: CancellationToken,
    tracker: TaskTracker,
) {
    let next_key = AtomicU64::new(1);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok(stream) => {
                // Go's `RemoteAddr().String()`: `ip:port`, or `@` for a unix socket client.
                let remote = stream.remote_string();
                let key = next_key.fetch_add(1, Ordering::Relaxed);
                let conn = Conn {
                    ctx: Arc::clone(&ctx),
                    stream,
                    remote,
                    key,
                    buf: BytesMut::with_capacity(4096),
                    out: BytesMut::with_capacity(256),
                    peer: None,
                };
                tracker.spawn(conn.run(clients.child_token()));
            }
            Err(e) => {
                tracing::error!(error = %e, "TCP accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// One client connection.
struct Conn {
    ctx: Arc<Context>,
    stream: Accepted,
    remote: String,
    /// Tells this connection's peer apart from every other one in the database.
    key: u64,
    /// Bytes read but not yet consumed.
    buf: BytesMut,
    /// The answer being written.
    out: BytesMut,
    /// Set by IDENTIFY.
    peer: Option<Arc<Peer>>,
}

/// Why the command loop stopped.
enum Stop {
    /// The client went away or the socket failed.
    Closed,
    /// A protocol error, to be sent before closing.
    Error(ProtocolError),
}

impl From<ProtocolError> for Stop {
    fn from(e: ProtocolError) -> Self {
        Self::Error(e)
    }
}

impl Conn {
    /// Go's `tcpServer.Handle` and `IOLoop`: magic, commands, then cleanup.
    async fn run(mut self, cancel: CancellationToken) {
        tracing::debug!(remote = %self.remote, "TCP: new client");
        tokio::select! {
            () = cancel.cancelled() => {}
            () = self.serve() => {}
        }
        if self.peer.take().is_some() {
            let removed = self.ctx.db.remove_peer(self.key);
            tracing::info!(
                remote = %self.remote,
                "client closing; removed from {removed} registrations"
            );
        } else {
            tracing::debug!(remote = %self.remote, "client closing");
        }
    }

    async fn serve(&mut self) {
        match self.read_exact(4).await {
            Some(magic) if magic[..] == MAGIC_V1[..] => {}
            Some(_) => {
                let _ = self.respond(BAD_PROTOCOL).await;
                return;
            }
            None => return,
        }
        loop {
            let reply = match self.next_command().await {
                Ok(reply) => reply,
                Err(Stop::Closed) => return,
                Err(Stop::Error(e)) => {
                    tracing::info!(remote = %self.remote, "{}", String::from_utf8_lossy(&e.to_bytes()));
                    let _ = self.respond(&e.to_bytes()).await;
                    return;
                }
            };
            if self.respond(&reply).await.is_err() {
                return;
            }
        }
    }

    /// Reads and runs one command; returns the answer.
    async fn next_command(&mut self) -> Result<Vec<u8>, Stop> {
        let line = self.read_line().await?;
        match parse_line(&line)? {
            Command::Ping => {
                if let Some(peer) = &self.peer {
                    peer.touch(now_ns());
                }
                Ok(OK.to_vec())
            }
            Command::Identify => self.identify().await,
            Command::Register(args) => {
                let peer = self.identified()?;
                let TopicChannel { topic, channel } = args?;
                for (category, key, sub_key) in
                    self.ctx.db.register(&peer, &topic, channel.as_deref())
                {
                    tracing::info!(
                        peer = %peer.id,
                        "DB: REGISTER category:{category} key:{key} subkey:{sub_key}"
                    );
                }
                Ok(OK.to_vec())
            }
            Command::Unregister(args) => {
                let peer = self.identified()?;
                let TopicChannel { topic, channel } = args?;
                self.ctx.db.unregister(&peer, &topic, channel.as_deref());
                tracing::info!(peer = %peer.id, "DB: UNREGISTER topic:{topic} channel:{channel:?}");
                Ok(OK.to_vec())
            }
        }
    }

    fn identified(&self) -> Result<Arc<Peer>, ProtocolError> {
        self.peer
            .clone()
            .ok_or_else(|| ProtocolError::invalid("client must IDENTIFY"))
    }

    /// Go's IDENTIFY: refused when already done (before the body is read), then size, body and JSON.
    async fn identify(&mut self) -> Result<Vec<u8>, Stop> {
        if self.peer.is_some() {
            return Err(ProtocolError::invalid("cannot IDENTIFY again").into());
        }
        let size = self
            .read_exact(4)
            .await
            .ok_or_else(|| ProtocolError::bad_body("IDENTIFY failed to read body size"))?;
        let size = i32::from_be_bytes([size[0], size[1], size[2], size[3]]);
        let len = identify_body_len(size)?;
        let body = self
            .read_exact(len)
            .await
            .ok_or_else(|| ProtocolError::bad_body("IDENTIFY failed to read body"))?;
        let fields = parse_identify(&body)?;
        let peer = Arc::new(Peer::new(self.key, self.remote.clone(), fields, now_ns()));
        tracing::info!(
            peer = %peer.id,
            "IDENTIFY Address:{} TCP:{} HTTP:{} Version:{}",
            peer.broadcast_address,
            peer.tcp_port,
            peer.http_port,
            peer.version
        );
        self.ctx.db.add_client(&peer);
        self.peer = Some(peer);
        let answer = IdentifyResponse {
            broadcast_address: &self.ctx.opts.broadcast_address,
            hostname: &self.ctx.hostname,
            http_port: self.ctx.http_port,
            tcp_port: self.ctx.tcp_port,
            version: NSQ_VERSION,
        };
        // Go answers a bare OK if its map cannot be encoded; ours cannot fail, but keep the same fallback.
        Ok(nsq_protocol::to_go_json(&answer).unwrap_or_else(|_| OK.to_vec()))
    }

    /// The next line without its `\n`. A line longer than the limit is an error; EOF before a whole line
    /// closes (Go drops a partial last line too).
    async fn read_line(&mut self) -> Result<BytesMut, Stop> {
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let mut line = self.buf.split_to(scanned + pos + 1);
                line.truncate(scanned + pos);
                return Ok(line);
            }
            scanned = self.buf.len();
            if scanned > MAX_LINE_LENGTH {
                return Err(ProtocolError::invalid("command line too long").into());
            }
            if !self.fill().await {
                return Err(Stop::Closed);
            }
        }
    }

    /// Exactly `n` bytes, or `None` if the connection ends first.
    async fn read_exact(&mut self, n: usize) -> Option<BytesMut> {
        while self.buf.len() < n {
            if !self.fill().await {
                return None;
            }
        }
        Some(self.buf.split_to(n))
    }

    /// Reads more bytes into the buffer; false on EOF or error.
    async fn fill(&mut self) -> bool {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        matches!(self.stream.read_buf(&mut self.buf).await, Ok(n) if n > 0)
    }

    /// Writes one `[size][data]` answer.
    async fn respond(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.out.clear();
        encode_response(&mut self.out, data);
        self.stream.write_all(&self.out).await?;
        self.out.advance(self.out.len());
        Ok(())
    }
}
