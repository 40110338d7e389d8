//! A blocking V2 client connection that can be upgraded mid-stream the way IDENTIFY upgrades it: to TLS
//! (rustls over the same socket) and to snappy or deflate stream compression.
//!
//! [`crate::wire::FrameConn`] only speaks plain TCP, but the golden transcripts of feature negotiation
//! continue after IDENTIFY inside TLS or inside a compressed stream. This connection keeps the three layers
//! apart so a replay can choose what it writes: [`Transport::send_raw`] puts bytes on the current stream
//! as they are (Go's recorded compressed bytes are replayed verbatim), while [`Transport::send`] compresses
//! first. Reading decodes whatever layers are active and hands out whole frames with deadlines, and it
//! keeps the compressed bytes that arrived so a test can compare them with Go's.
//!
//! The switch to compression happens between two frames of one read: nsqd writes the IDENTIFY JSON in
//! plaintext and the next `OK` already compressed, often in one TCP segment. Bytes read before
//! [`Transport::start_compression`] that are not yet part of a consumed frame are therefore handed to the
//! decoder when it starts.

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::BytesMut;
use nsq_protocol::compress::{Codec, Decoder, Encoder};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::wire::{Event, Frame, TimedFrame};

/// How long a write or a TLS handshake may block before the connection counts as hung.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Most plaintext taken from the decoder per call; it is called again while it fills the limit.
const DECODE_LIMIT: usize = 64 * 1024;

/// The socket, plain or inside TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stream::Plain(_) => f.write_str("Plain"),
            Stream::Tls(_) => f.write_str("Tls"),
        }
    }
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The compression layer once it is on.
#[derive(Debug)]
struct Compression {
    decoder: Decoder,
    encoder: Encoder,
    /// Compressed bytes not yet decoded.
    pending: BytesMut,
    /// Every compressed byte received since the last [`Transport::take_compressed_log`].
    log: Vec<u8>,
}

/// The negotiated TLS parameters, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// For example `TLSv1_3`.
    pub version: String,
    /// For example `TLS13_AES_128_GCM_SHA256`.
    pub cipher_suite: String,
}

/// A client connection to nsqd's TCP port with optional TLS and compression layers.
#[derive(Debug)]
pub struct Transport {
    stream: Option<Stream>,
    compression: Option<Compression>,
    /// Plaintext received and not yet returned as frames.
    plain: Vec<u8>,
    /// `Some(reset)` once the server closed the connection.
    closed: Option<bool>,
}

impl Transport {
    /// Connects to `addr` (no magic is sent).
    pub fn connect(addr: SocketAddr) -> Result<Transport> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Transport {
            stream: Some(Stream::Plain(stream)),
            compression: None,
            plain: Vec::new(),
            closed: None,
        })
    }

    fn stream(&mut self) -> Result<&mut Stream> {
        self.stream.as_mut().context("the connection is gone")
    }

    /// Writes `bytes` to the current stream (inside TLS if it is on) without compressing them.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        let stream = self.stream()?;
        stream.write_all(bytes).context("writing to nsqd")?;
        stream.flush().context("flushing to nsqd")?;
        Ok(())
    }

    /// Writes plaintext `bytes`, compressed first when compression is on.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.compression {
            Some(c) => {
                let mut out = BytesMut::new();
                c.encoder.encode(bytes, &mut out);
                self.send_raw(&out)
            }
            None => self.send_raw(bytes),
        }
    }

    /// Whether TLS is on.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Some(Stream::Tls(_)))
    }

    /// Whether compression is on.
    pub fn is_compressed(&self) -> bool {
        self.compression.is_some()
    }

    /// Runs a TLS handshake on the socket (the client side of IDENTIFY `tls_v1`) and returns what was
    /// negotiated. Plaintext already received and not consumed means the server wrote before the
    /// handshake, which is an error.
    pub fn start_tls(&mut self, config: Arc<ClientConfig>, server_name: &str) -> Result<TlsInfo> {
        ensure!(!self.is_tls(), "TLS is already on");
        ensure!(
            self.plain.is_empty(),
            "{} bytes arrived in plaintext where the TLS handshake should start",
            self.plain.len()
        );
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            bail!("the connection is gone");
        };
        let name = ServerName::try_from(server_name.to_owned())
            .with_context(|| format!("bad TLS server name {server_name:?}"))?;
        let mut conn = ClientConnection::new(config, name).context("creating the TLS client")?;
        let mut tcp = tcp;
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).context("TLS handshake")?;
        }
        let info = TlsInfo {
            version: conn
                .protocol_version()
                .map_or_else(|| "none".to_owned(), |v| format!("{v:?}")),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map_or_else(|| "none".to_owned(), |s| format!("{:?}", s.suite())),
        };
        self.stream = Some(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))));
        Ok(info)
    }

    /// Turns compression on for both directions. Bytes received but not yet consumed as frames become
    /// the decoder's first input, because they were sent after the switch.
    pub fn start_compression(&mut self, codec: Codec) -> Result<()> {
        ensure!(self.compression.is_none(), "compression is already on");
        let leftover = std::mem::take(&mut self.plain);
        let mut c = Compression {
            decoder: Decoder::new(codec),
            encoder: Encoder::new(codec),
            pending: BytesMut::new(),
            log: Vec::new(),
        };
        c.pending.extend_from_slice(&leftover);
        c.log.extend_from_slice(&leftover);
        self.compression = Some(c);
        self.decode_pending()
    }

    /// The compressed bytes received since the last call (or since compression started).
    pub fn take_compressed_log(&mut self) -> Vec<u8> {
        self.compression
            .as_mut()
            .map(|c| std::mem::take(&mut c.log))
            .unwrap_or_default()
    }

    /// Whether the server has been seen closing the connection.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    fn decode_pending(&mut self) -> Result<()> {
        let Some(c) = &mut self.compression else {
            return Ok(());
        };
        let mut out = BytesMut::new();
        loop {
            let n = c
                .decoder
                .decode(&mut c.pending, &mut out, DECODE_LIMIT)
                .context("decoding the server's compressed stream")?;
            if n < DECODE_LIMIT {
                break;
            }
        }
        self.plain.extend_from_slice(&out);
        Ok(())
    }

    /// Waits for the next frame, the close of the connection, or the deadline. Undecodable compressed
    /// data is reported as an error.
    pub fn next_event(&mut self, deadline: Instant) -> Result<Event> {
        loop {
            if let Some((frame, used)) = take_frame(&self.plain)? {
                self.plain.drain(..used);
                return Ok(Event::Frame(TimedFrame {
                    frame,
                    at: Instant::now(),
                }));
            }
            if let Some(reset) = self.closed {
                return Ok(Event::Closed {
                    reset,
                    partial: self.plain.len(),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Event::Timeout);
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            let stream = self.stream()?;
            stream.tcp().set_read_timeout(Some(wait))?;
            let mut chunk = [0u8; 64 * 1024];
            match stream.read(&mut chunk) {
                Ok(0) => self.closed = Some(false),
                Ok(n) => self.received(&chunk[..n])?,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A TLS peer that closes without close_notify, and a plain close, are both a close.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => self.closed = Some(false),
                Err(e) => self.closed = Some(e.kind() == ErrorKind::ConnectionReset),
            }
        }
    }

    fn received(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.compression {
            Some(c) => {
                c.pending.extend_from_slice(bytes);
                c.log.extend_from_slice(bytes);
                self.decode_pending()
            }
            None => {
                self.plain.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Reads the next frame, failing on timeout or close. Meant for setup code.
    pub fn expect_frame(&mut self, timeout: Duration) -> Result<Frame> {
        match self.next_event(Instant::now() + timeout)? {
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
            .with_context(|| what.to_owned())?;
        ensure!(
            frame.frame_type == crate::wire::FRAME_RESPONSE && frame.data == b"OK",
            "{what}: expected OK, got type {} {:?}",
            frame.frame_type,
            String::from_utf8_lossy(&frame.data)
        );
        Ok(())
    }

    /// Closes the connection (TLS: after a close_notify).
    pub fn close(mut self) {
        match self.stream.take() {
            Some(Stream::Tls(mut s)) => {
                s.conn.send_close_notify();
                let _ = s.flush();
                let _ = s.get_ref().shutdown(Shutdown::Both);
            }
            Some(Stream::Plain(s)) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            None => {}
        }
    }
}

/// A TLS client configuration that trusts only the CA in `ca_pem`, offers TLS 1.3 and 1.2 with ring's
/// cipher suites in the order a Go client on AES hardware prefers (AES-128-GCM first), and presents no
/// client certificate.
pub fn client_config(ca_pem: &Path) -> Result<Arc<ClientConfig>> {
    let file =
        std::fs::File::open(ca_pem).with_context(|| format!("opening {}", ca_pem.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
        let cert = cert.with_context(|| format!("reading {}", ca_pem.display()))?;
        roots.add(cert).context("adding the test CA")?;
    }
    ensure!(
        !roots.is_empty(),
        "{} holds no certificate",
        ca_pem.display()
    );
    let mut provider = rustls::crypto::ring::default_provider();
    let rank = |s: &rustls::SupportedCipherSuite| match s.suite() {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => 1,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 2,
        _ => 3,
    };
    provider.cipher_suites.sort_by_key(rank);
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The test certificates (`tests/certs/`).
pub fn certs_dir() -> std::path::PathBuf {
    crate::workspace_dir().join("tests").join("certs")
}

/// Sends one HTTP/1.1 request over TLS to `addr` with `Connection: close` and returns the raw response
/// bytes read until the server closes, for the HTTPS listener checks.
pub fn https_raw_request(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    request: &[u8],
) -> Result<Vec<u8>> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    let name = ServerName::try_from(addr.ip().to_string()).context("server name")?;
    let conn = ClientConnection::new(config, name).context("creating the TLS client")?;
    let mut tls = StreamOwned::new(conn, tcp);
    tls.write_all(request)
        .context("writing the HTTPS request")?;
    tls.flush()?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof && !out.is_empty() => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the HTTPS response"),
        }
    }
    Ok(out)
}

/// Takes one whole frame off the front of `bytes`; `Ok(None)` if more bytes are needed, an error for a
/// size field no frame can have.
fn take_frame(bytes: &[u8]) -> Result<Option<(Frame, usize)>> {
    let Some(size) = bytes.get(..4) else {
        return Ok(None);
    };
    let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
    ensure!(
        (4..=64 * 1024 * 1024).contains(&size),
        "frame size {size} is impossible"
    );
    let Some(frame) = bytes.get(4..4 + size) else {
        return Ok(None);
    };
    let frame_type = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    Ok(Some((
        Frame {
            frame_type,
            data: frame[4..].to_vec(),
        },
        4 + size,
    )))
}
