//! A tiny blocking client for nsqd's V2 TCP protocol, just enough to replay transcripts.
//!
//! It deliberately does not use `nsq-protocol`: the golden tests judge the server's bytes with an
//! independent reading of the wire format, so a shared decoding bug cannot hide itself. Frames are
//! `[int32 size][int32 type][data]`; message data is `[int64 ns][uint16 attempts][16-byte id][body]`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Frame type of a response frame (`OK`, `_heartbeat_`, `CLOSE_WAIT`, IDENTIFY JSON).
pub const FRAME_RESPONSE: i32 = 0;
/// Frame type of an error frame (`E_INVALID ...`).
pub const FRAME_ERROR: i32 = 1;
/// Frame type of a message frame.
pub const FRAME_MESSAGE: i32 = 2;

/// One frame read from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// 0 = response, 1 = error, 2 = message.
    pub frame_type: i32,
    /// The frame data after the type field.
    pub data: Vec<u8>,
}

/// A frame together with the moment its last byte was read.
#[derive(Debug, Clone)]
pub struct TimedFrame {
    /// The frame.
    pub frame: Frame,
    /// When the read that completed the frame returned.
    pub at: Instant,
}

/// The fields of a message frame's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Nanosecond timestamp.
    pub timestamp_ns: i64,
    /// Delivery attempts.
    pub attempts: u16,
    /// The 16-byte ASCII id.
    pub id: [u8; 16],
    /// The message body.
    pub body: Vec<u8>,
}

impl Message {
    /// Parses message frame data; `None` if it is shorter than the fixed header.
    pub fn parse(data: &[u8]) -> Option<Message> {
        if data.len() < 26 {
            return None;
        }
        let timestamp_ns = i64::from_be_bytes(data[0..8].try_into().ok()?);
        let attempts = u16::from_be_bytes(data[8..10].try_into().ok()?);
        let id: [u8; 16] = data[10..26].try_into().ok()?;
        Some(Message {
            timestamp_ns,
            attempts,
            id,
            body: data[26..].to_vec(),
        })
    }

    /// The id as text (lossy for non-ASCII ids).
    pub fn id_text(&self) -> String {
        String::from_utf8_lossy(&self.id).into_owned()
    }
}

/// Splits a byte string into whole frames; fails on a trailing partial frame.
pub fn split_frames(mut bytes: &[u8]) -> Result<Vec<Frame>> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        match take_frame(bytes)? {
            Some((frame, used)) => {
                frames.push(frame);
                bytes = &bytes[used..];
            }
            None => bail!("{} trailing bytes do not form a whole frame", bytes.len()),
        }
    }
    Ok(frames)
}

/// Takes one frame off the front of `bytes`: `Ok(None)` if more bytes are needed.
fn take_frame(bytes: &[u8]) -> Result<Option<(Frame, usize)>> {
    if bytes.len() < 4 {
        return Ok(None);
    }
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if size < 4 {
        bail!("frame size {size} is smaller than the type field");
    }
    if size > 64 * 1024 * 1024 {
        bail!("frame size {size} is implausibly large");
    }
    if bytes.len() < 4 + size {
        return Ok(None);
    }
    let frame_type = i32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let data = bytes[8..4 + size].to_vec();
    Ok(Some((Frame { frame_type, data }, 4 + size)))
}

/// What [`FrameConn::next_event`] observed.
#[derive(Debug)]
pub enum Event {
    /// A whole frame arrived.
    Frame(TimedFrame),
    /// The server closed the connection (`reset` when it came as an RST).
    Closed {
        /// Whether the close was a reset rather than an orderly EOF.
        reset: bool,
        /// Bytes of an incomplete frame left when the connection closed.
        partial: usize,
    },
    /// The deadline passed with no complete frame.
    Timeout,
}

/// A client connection that reads whole frames with deadlines.
#[derive(Debug)]
pub struct FrameConn {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: Option<bool>,
}

impl FrameConn {
    /// Connects to nsqd's TCP port (no magic is sent).
    pub fn connect(addr: SocketAddr) -> Result<FrameConn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(FrameConn {
            stream,
            buf: Vec::new(),
            closed: None,
        })
    }

    /// Writes all bytes in one call.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).context("writing to nsqd")?;
        Ok(())
    }

    /// Whether the server has been seen closing the connection.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Waits for the next frame, the close of the connection, or the deadline.
    pub fn next_event(&mut self, deadline: Instant) -> Event {
        loop {
            match take_frame(&self.buf) {
                Ok(Some((frame, used))) => {
                    self.buf.drain(..used);
                    return Event::Frame(TimedFrame {
                        frame,
                        at: Instant::now(),
                    });
                }
                Ok(None) => {}
                Err(_) => {
                    // A corrupt size field: report it as a close so the caller stops reading.
                    return Event::Closed {
                        reset: false,
                        partial: self.buf.len(),
                    };
                }
            }
            if let Some(reset) = self.closed {
                return Event::Closed {
                    reset,
                    partial: self.buf.len(),
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Event::Timeout;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            if self.stream.set_read_timeout(Some(wait)).is_err() {
                self.closed = Some(false);
                continue;
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = Some(false),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.closed = Some(e.kind() == ErrorKind::ConnectionReset),
            }
        }
    }

    /// Reads the next frame, failing on timeout or close. Meant for setup code.
    pub fn expect_frame(&mut self, timeout: Duration) -> Result<Frame> {
        match self.next_event(Instant::now() + timeout) {
            Event::Frame(f) => Ok(f.frame),
            Event::Closed { reset, .. } => {
                bail!("connection closed (reset: {reset}) while waiting for a frame")
            }
            Event::Timeout => bail!("no frame within {timeout:?}"),
        }
    }

    /// Reads the next frame and requires it to be the response `OK`.
    pub fn expect_ok(&mut self, what: &str) -> Result<()> {
        let frame = self
            .expect_frame(Duration::from_secs(5))
            .with_context(|| what.to_string())?;
        if frame.frame_type != FRAME_RESPONSE || frame.data != b"OK" {
            bail!(
                "{what}: expected OK, got type {} {:?}",
                frame.frame_type,
                String::from_utf8_lossy(&frame.data)
            );
        }
        Ok(())
    }

    /// Reads frames until a message arrives, skipping heartbeats; other frames are an error.
    pub fn expect_message(&mut self, timeout: Duration) -> Result<Message> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self.expect_frame(left)?;
            match frame.frame_type {
                FRAME_MESSAGE => return Message::parse(&frame.data).context("short message frame"),
                FRAME_RESPONSE if frame.data == b"_heartbeat_" => self.send(b"NOP\n")?,
                other => bail!(
                    "expected a message, got type {other} {:?}",
                    String::from_utf8_lossy(&frame.data)
                ),
            }
        }
    }

    /// Half-closes and drops the connection.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Encodes a command line without a body (`"NOP"` -> `NOP\n`).
pub fn command(line: &str) -> Vec<u8> {
    let mut out = line.as_bytes().to_vec();
    out.push(b'\n');
    out
}

/// Encodes a command line followed by a size-prefixed body (PUB, DPUB, IDENTIFY).
pub fn command_with_body(line: &str, body: &[u8]) -> Vec<u8> {
    let mut out = command(line);
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Encodes an MPUB body: `[int32 count]([int32 size][bytes])*`.
pub fn mpub_body(messages: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let count = u32::try_from(messages.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for m in messages {
        let len = u32::try_from(m.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// The protocol magic a V2 client sends first.
pub const MAGIC_V2: &[u8] = b"  V2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_messages_parse() {
        let mut bytes = vec![0, 0, 0, 6, 0, 0, 0, 0, b'O', b'K'];
        let mut msg = Vec::new();
        msg.extend_from_slice(&7i64.to_be_bytes());
        msg.extend_from_slice(&2u16.to_be_bytes());
        msg.extend_from_slice(b"0123456789abcdef");
        msg.extend_from_slice(b"body");
        bytes.extend_from_slice(&(4 + msg.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&2i32.to_be_bytes());
        bytes.extend_from_slice(&msg);
        let frames = split_frames(&bytes).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[0],
            Frame {
                frame_type: 0,
                data: b"OK".to_vec()
            }
        );
        let m = Message::parse(&frames[1].data).unwrap();
        assert_eq!(
            (
                m.timestamp_ns,
                m.attempts,
                m.id_text().as_str(),
                m.body.as_slice()
            ),
            (7, 2, "0123456789abcdef", &b"body"[..])
        );
        assert!(split_frames(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn commands_encode_with_big_endian_sizes() {
        assert_eq!(
            command_with_body("PUB t", b"ab"),
            b"PUB t\n\x00\x00\x00\x02ab"
        );
        assert_eq!(
            mpub_body(&[b"a", b"bc"]),
            b"\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x02bc"
        );
    }
}
