//! A buffered client connection to nsqd: the handshake (including the TLS and compression
//! upgrades IDENTIFY can negotiate) plus the read and write buffers that every benchmark worker
//! reuses.
//!
//! One task owns a `Conn` and alternates between filling the read buffer, walking the complete
//! frames in it, and writing out what the walk queued (FINs, NOPs, publishes). Keeping both
//! directions in one task means no locks and no channels on the measured path.
//!
//! The upgrades work on whole buffers, never on single messages: TLS sits under the socket reads
//! and writes, and compression turns one socket read into plaintext appended to the read buffer
//! and one queued write buffer into one compressed write. A plain connection pays one `match`
//! per read and per write for this.

use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use nsq_protocol::compress::{Codec, Decoder, Encoder};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::wire::{self, Frame};

/// How long to wait for the TCP connection to be accepted, and for the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Spare room kept in the read buffer before each read, so reads are large.
const READ_CHUNK: usize = 256 * 1024;

/// What every connection of a run negotiates in IDENTIFY on top of the plain protocol.
///
/// The default is nothing: the IDENTIFY is sent with `feature_negotiation: false` and the
/// connection stays plain TCP, exactly as before these features existed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// Upgrade to TLS (`tls_v1`), without verifying nsqd's certificate.
    pub tls: bool,
    /// Compress both directions with snappy or deflate, after TLS if both are on.
    pub compression: Option<Codec>,
}

impl Features {
    /// Whether IDENTIFY has to negotiate anything.
    pub fn any(&self) -> bool {
        self.tls || self.compression.is_some()
    }

    /// A short name for reports: `plain`, `tls`, `snappy`, `tls+deflate` and so on.
    pub fn label(&self) -> String {
        let codec = match self.compression {
            None => None,
            Some(Codec::Snappy) => Some("snappy".to_owned()),
            Some(Codec::Deflate { level }) => Some(format!("deflate{level}")),
        };
        match (self.tls, codec) {
            (false, None) => "plain".to_owned(),
            (true, None) => "tls".to_owned(),
            (false, Some(c)) => c,
            (true, Some(c)) => format!("tls+{c}"),
        }
    }
}

/// The socket under a connection: plain TCP or TLS over it.
#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while the TCP stream is being handed to the TLS handshake.
    Upgrading,
}

impl Transport {
    async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read_buf(buf).await,
            Self::Tls(s) => s.read_buf(buf).await,
            Self::Upgrading => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.write_all(bytes).await,
            Self::Tls(s) => {
                s.write_all(bytes).await?;
                // rustls may still hold the last records; flushing pushes them to the socket.
                s.flush().await
            }
            Self::Upgrading => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

/// The codec state of a compressed connection.
#[derive(Debug)]
struct Compression {
    encoder: Encoder,
    decoder: Decoder,
    /// Compressed bytes read from the socket and not yet decoded.
    raw_in: BytesMut,
    /// Compressed bytes of the write buffer, reused for every flush.
    raw_out: BytesMut,
    /// The decoder may have plaintext ready without more input: it was given new bytes, or its
    /// last call stopped at the limit.
    decode_first: bool,
}

/// The fields of nsqd's IDENTIFY answer that say what it switched on.
#[derive(Debug, Deserialize)]
struct IdentifyAnswer {
    #[serde(default)]
    tls_v1: bool,
    #[serde(default)]
    snappy: bool,
    #[serde(default)]
    deflate: bool,
    #[serde(default)]
    deflate_level: u32,
}

/// An open V2 connection with its reusable buffers.
#[derive(Debug)]
pub struct Conn {
    stream: Transport,
    /// Plaintext read from the connection and not yet consumed as frames.
    rbuf: BytesMut,
    /// Commands queued for the next [`Conn::flush`].
    wbuf: BytesMut,
    /// Present once snappy or deflate is on.
    compression: Option<Box<Compression>>,
}

impl Conn {
    /// Connects to `addr`, sends the V2 magic and, when `identify` is given, an IDENTIFY with
    /// that JSON, waiting for its `OK`. The connection stays plain; see [`Conn::connect_with`].
    pub async fn connect(addr: &str, identify: Option<&str>) -> io::Result<Self> {
        Self::connect_with(addr, identify, Features::default()).await
    }

    /// Like [`Conn::connect`], and then switches on what `features` asks for. The IDENTIFY JSON
    /// must request the same features (see [`wire::identify_json_with`]): nsqd answers it with a
    /// JSON object, the TLS handshake follows on the same socket, and then one `OK` per upgrade.
    pub async fn connect_with(
        addr: &str,
        identify: Option<&str>,
        features: Features,
    ) -> io::Result<Self> {
        if features.any() && identify.is_none() {
            return Err(wire::invalid(
                "TLS and compression are negotiated in IDENTIFY, which is switched off",
            ));
        }
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {addr}"))
            })??;
        stream.set_nodelay(true)?;
        let mut conn = Self {
            stream: Transport::Plain(stream),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(64 * 1024),
            compression: None,
        };
        conn.wbuf.extend_from_slice(wire::MAGIC_V2);
        if let Some(json) = identify {
            wire::encode_identify(&mut conn.wbuf, json.as_bytes());
            conn.flush().await?;
            if features.any() {
                conn.negotiate(addr, features).await?;
            } else {
                conn.expect_ok("IDENTIFY").await?;
            }
        }
        Ok(conn)
    }

    /// Reads nsqd's IDENTIFY answer, checks it granted `features`, and performs the upgrades in
    /// nsqd's order: TLS, then compression, each confirmed by an `OK` sent through it.
    async fn negotiate(&mut self, addr: &str, features: Features) -> io::Result<()> {
        let answer = self.identify_answer().await?;
        if features.tls && !answer.tls_v1 {
            return Err(wire::invalid(
                "nsqd declined tls_v1 (is it started with --tls-cert and --tls-key?)",
            ));
        }
        let codec = match features.compression {
            Some(Codec::Snappy) if !answer.snappy => {
                return Err(wire::invalid("nsqd declined snappy"));
            }
            Some(Codec::Deflate { .. }) if !answer.deflate => {
                return Err(wire::invalid("nsqd declined deflate"));
            }
            // Write at the level nsqd settled on (it caps ours at --max-deflate-level).
            Some(Codec::Deflate { level }) => Some(Codec::Deflate {
                level: if answer.deflate_level > 0 {
                    answer.deflate_level.min(level)
                } else {
                    level
                },
            }),
            other => other,
        };
        if features.tls {
            if !self.rbuf.is_empty() {
                return Err(wire::invalid("nsqd sent data before the TLS handshake"));
            }
            self.start_tls(addr).await?;
            self.expect_ok("TLS upgrade").await?;
        }
        if let Some(codec) = codec {
            self.compression = Some(Box::new(Compression {
                encoder: Encoder::new(codec),
                decoder: Decoder::new(codec),
                // Anything read past the IDENTIFY answer was already compressed.
                raw_in: self.rbuf.split(),
                raw_out: BytesMut::with_capacity(64 * 1024),
                decode_first: true,
            }));
            self.expect_ok("compression upgrade").await?;
        }
        Ok(())
    }

    /// Waits for the response frame that answers a negotiating IDENTIFY and parses its JSON.
    async fn identify_answer(&mut self) -> io::Result<IdentifyAnswer> {
        loop {
            if let Some((frame, len)) = wire::parse_frame(&self.rbuf)? {
                let answer = match frame {
                    Frame::Response(wire::HEARTBEAT) => None,
                    Frame::Response(json) => Some(serde_json::from_slice(json).map_err(|e| {
                        wire::invalid(format!(
                            "IDENTIFY: expected a JSON answer, got {:?}: {e}",
                            String::from_utf8_lossy(json)
                        ))
                    })?),
                    Frame::Error(e) => {
                        return Err(wire::invalid(format!(
                            "IDENTIFY: {}",
                            String::from_utf8_lossy(e)
                        )))
                    }
                    Frame::Message(_) => {
                        return Err(wire::invalid("IDENTIFY: got a message before the answer"))
                    }
                };
                self.rbuf.advance(len);
                match answer {
                    Some(answer) => return Ok(answer),
                    None => {
                        wire::encode_nop(&mut self.wbuf);
                        self.flush().await?;
                        continue;
                    }
                }
            }
            self.fill().await?;
        }
    }

    /// Runs the TLS handshake on the TCP stream.
    async fn start_tls(&mut self, addr: &str) -> io::Result<()> {
        let Transport::Plain(tcp) = std::mem::replace(&mut self.stream, Transport::Upgrading)
        else {
            return Err(wire::invalid(
                "TLS upgrade on a connection that is not plain TCP",
            ));
        };
        // The name is not checked (see `AcceptAnyCert`); an IP address simply sends no SNI.
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .or_else(|_| ServerName::try_from("nsqd".to_owned()))
            .map_err(|e| wire::invalid(e.to_string()))?;
        let tls = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TlsConnector::from(tls_config()?).connect(name, tcp),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake with nsqd"))??;
        self.stream = Transport::Tls(Box::new(tls));
        Ok(())
    }

    /// The write buffer, for queueing commands before a [`Conn::flush`].
    pub fn wbuf(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// Writes and clears everything queued in the write buffer (compressed first, if on).
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        match &mut self.compression {
            None => self.stream.write_all(&self.wbuf).await?,
            Some(z) => {
                z.encoder.encode(&self.wbuf, &mut z.raw_out);
                self.stream.write_all(&z.raw_out).await?;
                z.raw_out.clear();
            }
        }
        self.wbuf.clear();
        Ok(())
    }

    /// Reads at least one more byte of plaintext into the read buffer.
    ///
    /// Cancel safe: if this future is dropped inside `select!`, no bytes have been lost, since
    /// `read_buf` either completes or reads nothing, and compressed bytes that were read are kept
    /// in the connection until they are decoded.
    pub async fn fill(&mut self) -> io::Result<()> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        let Some(z) = &mut self.compression else {
            return read_some(&mut self.stream, &mut self.rbuf).await;
        };
        loop {
            if z.decode_first {
                // Decode no more than the room already reserved, so the buffer does not grow here.
                let limit = (self.rbuf.capacity() - self.rbuf.len()).max(1);
                let n = z
                    .decoder
                    .decode(&mut z.raw_in, &mut self.rbuf, limit)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                z.decode_first = n == limit;
                if n > 0 {
                    return Ok(());
                }
            }
            if z.raw_in.capacity() - z.raw_in.len() < READ_CHUNK / 4 {
                z.raw_in.reserve(READ_CHUNK);
            }
            read_some(&mut self.stream, &mut z.raw_in).await?;
            z.decode_first = true;
        }
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

/// Reads at least one byte from `stream` into `buf`; end of stream is an error.
async fn read_some(stream: &mut Transport, buf: &mut BytesMut) -> io::Result<()> {
    if stream.read_buf(buf).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "nsqd closed the connection",
        ));
    }
    Ok(())
}

/// The client TLS configuration of every connection, built once per process.
fn tls_config() -> io::Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert { provider }))
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(|e| io::Error::other(format!("building the TLS client config: {e}")))
}

/// A certificate verifier for benchmarking a local test daemon: it trusts any certificate and
/// any name, but still checks the handshake signatures, so the server has to hold the key of
/// the certificate it shows and the handshake costs what a verified one costs.
#[derive(Debug)]
struct AcceptAnyCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    //! The handshake and the buffer loops against a tiny in-test nsqd that performs the same
    //! upgrades as the real one: JSON answer, TLS handshake, `OK`, compression, `OK`.

    use super::*;

    use bytes::BufMut;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

    /// Messages the test server sends in one write; far more plaintext than one decode call may
    /// produce, so the decoder's "call again" path is taken.
    const MESSAGES: usize = 5000;
    const BODY: usize = 200;
    /// The size of the one PUB the client sends: more than one snappy block.
    const PUB_BODY: usize = 150_000;

    fn acceptor() -> TlsAcceptor {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/certs");
        let certs = CertificateDer::pem_file_iter(format!("{dir}/server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(format!("{dir}/server.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }

    fn frame(out: &mut BytesMut, frame_type: i32, data: &[u8]) {
        out.put_i32(i32::try_from(data.len()).unwrap() + 4);
        out.put_i32(frame_type);
        out.put_slice(data);
    }

    /// Reads from `io` (through `dec` if set) until `plain` holds at least `n` bytes.
    async fn read_plain(
        io: &mut (dyn Io + '_),
        dec: &mut Option<Decoder>,
        raw: &mut BytesMut,
        plain: &mut BytesMut,
        n: usize,
    ) {
        while plain.len() < n {
            if let Some(d) = dec {
                if d.decode(raw, plain, 1 << 20).unwrap() > 0 {
                    continue;
                }
                assert!(io.read_buf(raw).await.unwrap() > 0, "client hung up");
            } else {
                assert!(io.read_buf(plain).await.unwrap() > 0, "client hung up");
            }
        }
    }

    /// Serves one connection: answers IDENTIFY granting what was asked unless `decline_tls`,
    /// upgrades, reads one PUB, checks its body and answers with [`MESSAGES`] messages.
    async fn serve(listener: TcpListener, decline_tls: bool) {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut io: Box<dyn Io> = Box::new(tcp);
        let (mut raw, mut plain) = (BytesMut::new(), BytesMut::new());
        let mut dec: Option<Decoder> = None;
        read_plain(&mut *io, &mut dec, &mut raw, &mut plain, 4 + 9 + 4).await;
        assert_eq!(&plain[..13], b"  V2IDENTIFY\n");
        let len = usize::try_from(u32::from_be_bytes(plain[13..17].try_into().unwrap())).unwrap();
        read_plain(&mut *io, &mut dec, &mut raw, &mut plain, 17 + len).await;
        let asked: serde_json::Value = serde_json::from_slice(&plain[17..17 + len]).unwrap();
        plain.advance(17 + len);
        let flag = |k: &str| asked.get(k).and_then(serde_json::Value::as_bool) == Some(true);
        let tls = flag("tls_v1") && !decline_tls;
        let codec = if flag("snappy") {
            Some(Codec::Snappy)
        } else if flag("deflate") {
            Some(Codec::Deflate { level: 1 })
        } else {
            None
        };
        let answer = serde_json::json!({
            "max_rdy_count": 2500,
            "tls_v1": tls,
            "snappy": codec == Some(Codec::Snappy),
            "deflate": matches!(codec, Some(Codec::Deflate { .. })),
            "deflate_level": 1,
        });
        let mut out = BytesMut::new();
        frame(&mut out, 0, answer.to_string().as_bytes());
        io.write_all(&out).await.unwrap();
        let mut ok = BytesMut::new();
        frame(&mut ok, 0, b"OK");
        if tls {
            io = Box::new(acceptor().accept(io).await.unwrap());
            io.write_all(&ok).await.unwrap();
            io.flush().await.unwrap();
        }
        let mut enc = codec.map(Encoder::new);
        if let (Some(e), Some(c)) = (&mut enc, codec) {
            let mut wire = BytesMut::new();
            e.encode(&ok, &mut wire);
            io.write_all(&wire).await.unwrap();
            io.flush().await.unwrap();
            dec = Some(Decoder::new(c));
        }

        let head = b"PUB t\n".len() + 4;
        read_plain(&mut *io, &mut dec, &mut raw, &mut plain, head + PUB_BODY).await;
        assert_eq!(&plain[..6], b"PUB t\n");
        assert!(plain[head..head + PUB_BODY].iter().all(|&b| b == b'p'));

        let mut msgs = BytesMut::new();
        for i in 0..MESSAGES {
            let mut payload = vec![0u8; wire::MESSAGE_HEADER_LEN];
            payload.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, BODY));
            frame(&mut msgs, 2, &payload);
        }
        let wire_bytes = match &mut enc {
            Some(e) => {
                let mut w = BytesMut::new();
                e.encode(&msgs, &mut w);
                w
            }
            None => msgs,
        };
        io.write_all(&wire_bytes).await.unwrap();
        io.flush().await.unwrap();
        // Keep the connection open until the client has read everything and hangs up.
        let _ = io.read_buf(&mut raw).await;
    }

    /// Runs [`exchange_once`]; a client that waits on the socket while its decoder still holds
    /// plaintext would hang, so the exchange has a deadline.
    async fn exchange(features: Features) {
        tokio::time::timeout(Duration::from_secs(20), exchange_once(features))
            .await
            .expect("the exchange stalled");
    }

    async fn exchange_once(features: Features) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(serve(listener, false));
        let json = wire::identify_json_with("test", &features);
        let mut conn = Conn::connect_with(&addr, Some(&json), features)
            .await
            .unwrap();
        assert_eq!(conn.compression.is_some(), features.compression.is_some());
        assert_eq!(matches!(conn.stream, Transport::Tls(_)), features.tls);
        wire::encode_pub(conn.wbuf(), "t", &[b'p'; PUB_BODY]);
        conn.flush().await.unwrap();
        let mut seen = 0usize;
        while seen < MESSAGES {
            conn.fill().await.unwrap();
            conn.drain_frames(|frame, _| {
                let Frame::Message(payload) = frame else {
                    panic!("unexpected frame {frame:?}");
                };
                let body = wire::parse_message(payload)?.body;
                let want = b'a' + (seen % 26) as u8;
                assert!(body.len() == BODY && body.iter().all(|&b| b == want));
                seen += 1;
                Ok(())
            })
            .unwrap();
        }
        assert!(conn.rbuf.is_empty());
        drop(conn);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn tls_handshake_then_plain_frames() {
        exchange(Features {
            tls: true,
            compression: None,
        })
        .await;
    }

    #[tokio::test]
    async fn snappy_in_both_directions() {
        exchange(Features {
            tls: false,
            compression: Some(Codec::Snappy),
        })
        .await;
    }

    #[tokio::test]
    async fn deflate_in_both_directions() {
        exchange(Features {
            tls: false,
            compression: Some(Codec::Deflate { level: 6 }),
        })
        .await;
    }

    #[tokio::test]
    async fn tls_then_snappy() {
        exchange(Features {
            tls: true,
            compression: Some(Codec::Snappy),
        })
        .await;
    }

    #[tokio::test]
    async fn tls_then_deflate() {
        exchange(Features {
            tls: true,
            compression: Some(Codec::Deflate { level: 9 }),
        })
        .await;
    }

    #[tokio::test]
    async fn a_declined_upgrade_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(serve(listener, true));
        let features = Features {
            tls: true,
            compression: None,
        };
        let json = wire::identify_json_with("test", &features);
        let err = Conn::connect_with(&addr, Some(&json), features)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("declined tls_v1"), "{err}");
        server.abort();
    }

    #[test]
    fn labels_name_the_transport() {
        assert_eq!(Features::default().label(), "plain");
        let f = Features {
            tls: true,
            compression: Some(Codec::Deflate { level: 6 }),
        };
        assert_eq!(f.label(), "tls+deflate6");
    }
}
