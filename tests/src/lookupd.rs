//! Starting and stopping a real `nsqlookupd` process for a test, with [`crate::daemon`]'s generic starter,
//! and a small client for lookupd's V1 TCP protocol.
//!
//! Each test gets its own lookupd on fresh loopback ports. The binary is `$NSQLOOKUPD_BIN`, else the newest
//! `target/{debug,release}/nsqlookupd`, else one built on demand (once per test process). Startup failures
//! carry the daemon's own output.

use std::net::{SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::daemon::{binary_once, Daemon, Kind};

/// nsqlookupd.
pub const NSQLOOKUPD: Kind = Kind {
    name: "nsqlookupd",
    env_var: "NSQLOOKUPD_BIN",
    workdir_prefix: "nsqlookupd-test-",
    sources: &["bins/nsqlookupd", "crates"],
};

/// A running nsqlookupd, killed when dropped; [`Daemon`]'s methods apply to it.
#[derive(Debug)]
pub struct Nsqlookupd {
    daemon: Daemon,
}

impl Nsqlookupd {
    /// Starts nsqlookupd with the golden flags (loopback addresses, `--broadcast-address=127.0.0.1`) plus
    /// `extra_flags`, and waits until `/ping` answers. A port taken between our probe and the daemon's bind is
    /// retried with new ports.
    pub fn start(extra_flags: &[String]) -> Result<Nsqlookupd> {
        Nsqlookupd::start_with(None, extra_flags)
    }

    /// Starts nsqlookupd on the given TCP and HTTP ports (for example to restart one that nsqd knows), with
    /// the golden flags plus `extra_flags`.
    pub fn start_on(tcp_port: u16, http_port: u16, extra_flags: &[String]) -> Result<Nsqlookupd> {
        Nsqlookupd::start_with(Some((tcp_port, http_port)), extra_flags)
    }

    fn start_with(ports: Option<(u16, u16)>, extra_flags: &[String]) -> Result<Nsqlookupd> {
        let binary = nsqlookupd_binary()?;
        let daemon = Daemon::start(
            &NSQLOOKUPD,
            &binary,
            ports,
            extra_flags,
            &|_| Ok(Vec::new()),
        )?;
        Ok(Nsqlookupd { daemon })
    }
}

impl Deref for Nsqlookupd {
    type Target = Daemon;

    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl DerefMut for Nsqlookupd {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

/// The nsqlookupd binary to test, found or built once per test process (into `target/nsq-tests-build`: the
/// `cargo test` running us holds the lock on `target/`).
pub fn nsqlookupd_binary() -> Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    binary_once(&BINARY, &NSQLOOKUPD)
}

/// The magic a lookupd client sends first.
pub const MAGIC_V1: &[u8] = b"  V1";

/// What a lookupd connection produced next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V1Event {
    /// One `[u32 size][data]` response (lookupd frames have no type field).
    Frame(Vec<u8>),
    /// The server closed the connection (`reset` when it came as an RST); `partial` bytes of an unfinished
    /// frame were left.
    Closed {
        /// Whether the close was a reset.
        reset: bool,
        /// Bytes of an incomplete frame left over.
        partial: usize,
    },
    /// The deadline passed with no complete frame.
    Timeout,
}

/// A client connection to lookupd's TCP port that reads whole V1 responses with deadlines.
#[derive(Debug)]
pub struct V1Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: Option<bool>,
}

impl V1Conn {
    /// Connects (no magic is sent).
    pub fn connect(addr: SocketAddr) -> Result<V1Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(V1Conn {
            stream,
            buf: Vec::new(),
            closed: None,
        })
    }

    /// Writes all bytes in one call.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        self.stream
            .write_all(bytes)
            .context("writing to nsqlookupd")
    }

    /// The local address (what lookupd reports as the peer's `remote_address`).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.stream.local_addr()?)
    }

    /// Waits for the next response, the close of the connection, or the deadline.
    pub fn next_event(&mut self, deadline: Instant) -> V1Event {
        use std::io::{ErrorKind, Read};
        loop {
            if self.buf.len() >= 4 {
                let size = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                let end = 4 + usize::try_from(size).unwrap_or(usize::MAX);
                if self.buf.len() >= end {
                    let frame = self.buf[4..end].to_vec();
                    self.buf.drain(..end);
                    return V1Event::Frame(frame);
                }
            }
            if let Some(reset) = self.closed {
                return V1Event::Closed {
                    reset,
                    partial: self.buf.len(),
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return V1Event::Timeout;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            if self.stream.set_read_timeout(Some(wait)).is_err() {
                self.closed = Some(false);
                continue;
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = Some(false),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.closed = Some(e.kind() == ErrorKind::ConnectionReset),
            }
        }
    }

    /// Sends `bytes` and requires the response `want` within a few seconds.
    pub fn exchange(&mut self, bytes: &[u8], want: &[u8]) -> Result<()> {
        self.send(bytes)?;
        match self.next_event(Instant::now() + Duration::from_secs(5)) {
            V1Event::Frame(data) if data == want => Ok(()),
            other => bail!(
                "sent {:?}: expected {:?}, got {other:?}",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(want)
            ),
        }
    }
}

/// `IDENTIFY\n[i32 size][body]`.
pub fn identify_command(body: &[u8]) -> Vec<u8> {
    let mut out = b"IDENTIFY\n".to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_commands_are_size_prefixed() {
        assert_eq!(identify_command(b"{}"), b"IDENTIFY\n\x00\x00\x00\x02{}");
    }
}
