//! A buffered client connection to nsqd: the handshake plus the read and write buffers that
//! every benchmark worker reuses.
//!
//! One task owns a `Conn` and alternates between filling the read buffer, walking the complete
//! frames in it, and writing out what the walk queued (FINs, NOPs, publishes). Keeping both
//! directions in one task means no locks and no channels on the measured path.

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::{self, Frame};

/// How long to wait for the TCP connection to be accepted.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Spare room kept in the read buffer before each read, so reads are large.
const READ_CHUNK: usize = 256 * 1024;

/// An open V2 connection with its reusable buffers.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// Bytes read from the socket and not yet consumed as frames.
    rbuf: BytesMut,
    /// Commands queued for the next [`Conn::flush`].
    wbuf: BytesMut,
}

impl Conn {
    /// Connects to `addr`, sends the V2 magic and, when `identify` is given, an IDENTIFY with
    /// that JSON, waiting for its `OK`.
    pub async fn connect(addr: &str, identify: Option<&str>) -> io::Result<Self> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {addr}"))
            })??;
        stream.set_nodelay(true)?;
        let mut conn = Self {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(64 * 1024),
        };
        conn.wbuf.extend_from_slice(wire::MAGIC_V2);
        if let Some(json) = identify {
            wire::encode_identify(&mut conn.wbuf, json.as_bytes());
            conn.flush().await?;
            conn.expect_ok("IDENTIFY").await?;
        }
        Ok(conn)
    }

    /// The write buffer, for queueing commands before a [`Conn::flush`].
    pub fn wbuf(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// Writes and clears everything queued in the write buffer.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads at least one more byte into the read buffer.
    ///
    /// Cancel safe: if this future is dropped inside `select!`, no bytes have been lost, since
    /// `read_buf` either completes or reads nothing.
    pub async fn fill(&mut self) -> io::Result<()> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        if self.stream.read_buf(&mut self.rbuf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "nsqd closed the connection",
            ));
        }
        Ok(())
    }

    /// Calls `f` for every complete frame in the read buffer, then drops those bytes.
    ///
    /// `f` also gets the write buffer so it can queue replies (FIN, NOP) without a copy; the
    /// caller flushes afterwards. Heartbeats are answered here, before `f` sees them.
    pub fn drain_frames<F>(&mut self, mut f: F) -> io::Result<()>
    where
        F: FnMut(Frame<'_>, &mut BytesMut) -> io::Result<()>,
    {
        let mut used = 0;
        let result = loop {
            match wire::parse_frame(&self.rbuf[used..]) {
                Ok(Some((frame, len))) => {
                    used += len;
                    if frame == Frame::Response(wire::HEARTBEAT) {
                        wire::encode_nop(&mut self.wbuf);
                    }
                    if let Err(e) = f(frame, &mut self.wbuf) {
                        break Err(e);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.rbuf.advance(used);
        result
    }

    /// Waits for the next response that is not a heartbeat and requires it to be `OK`.
    /// Message frames that arrive meanwhile are an error: callers use this only before RDY.
    pub async fn expect_ok(&mut self, what: &str) -> io::Result<()> {
        loop {
            let mut answer: Option<io::Result<()>> = None;
            self.drain_until_answer(&mut answer, what)?;
            self.flush().await?;
            if let Some(answer) = answer {
                return answer;
            }
            self.fill().await?;
        }
    }

    /// Consumes frames up to and including the first non-heartbeat one, recording its verdict.
    fn drain_until_answer(
        &mut self,
        answer: &mut Option<io::Result<()>>,
        what: &str,
    ) -> io::Result<()> {
        while answer.is_none() {
            let Some((frame, len)) = wire::parse_frame(&self.rbuf)? else {
                break;
            };
            *answer = match frame {
                Frame::Response(wire::HEARTBEAT) => {
                    wire::encode_nop(&mut self.wbuf);
                    None
                }
                Frame::Response(wire::OK) => Some(Ok(())),
                Frame::Response(other) => Some(Err(wire::invalid(format!(
                    "{what}: expected OK, got {:?}",
                    String::from_utf8_lossy(other)
                )))),
                Frame::Error(e) => Some(Err(wire::invalid(format!(
                    "{what}: {}",
                    String::from_utf8_lossy(e)
                )))),
                Frame::Message(_) => Some(Err(wire::invalid(format!(
                    "{what}: got a message before the answer"
                )))),
            };
            self.rbuf.advance(len);
        }
        Ok(())
    }
}
