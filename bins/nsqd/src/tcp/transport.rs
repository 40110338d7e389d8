//! The byte transport under a V2 connection: plain TCP, a unix domain socket (`--tcp-address` a path) or TLS,
//! split into the reader's half and the pump's half. TLS runs over TCP only: IDENTIFY offers no upgrade to a
//! unix socket client.
//!
//! IDENTIFY can switch a connection to TLS after it has been split, so an upgrade puts the halves back together
//! (the pump hands its half over, see [`Handover`]), runs the handshake on the whole stream and splits the TLS
//! stream again. Compression is not a transport: it is applied to bytes above this layer (the reader decodes
//! what it reads, the pump encodes what it writes), so it needs only the same hand-over to switch both sides at
//! one point in the byte stream.

use std::io;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use nsq_protocol::compress::Encoder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{unix, TcpStream, UnixStream};
use tokio::sync::oneshot;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::tls::TlsInfo;

/// Go's deadline for the TLS handshake of an upgrade.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The reader task's half.
#[derive(Debug)]
pub(crate) enum ReadHalf {
    Plain(OwnedReadHalf),
    Unix(unix::OwnedReadHalf),
    Tls(tokio::io::ReadHalf<TlsStream<TcpStream>>),
}

/// The pump task's half.
#[derive(Debug)]
pub(crate) enum WriteHalf {
    Plain(OwnedWriteHalf),
    Unix(unix::OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<TlsStream<TcpStream>>),
}

/// What the pump gives the reader for an upgrade, and gets back afterwards: its half and its output encoder.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) half: WriteHalf,
    pub(crate) encoder: Option<Encoder>,
}

/// A request to the pump to write out what it holds and lend its writer to the reader until `back` delivers
/// it again (dropped `back`: the upgrade failed and the connection ends).
#[derive(Debug)]
pub(crate) struct Handover {
    pub(crate) lend: oneshot::Sender<Writer>,
    pub(crate) back: oneshot::Receiver<Writer>,
}

/// The whole stream while the halves are together.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Splits a new TCP connection.
    pub(crate) fn split_tcp(stream: TcpStream) -> (ReadHalf, WriteHalf) {
        let (r, w) = stream.into_split();
        (ReadHalf::Plain(r), WriteHalf::Plain(w))
    }

    /// Splits a new unix socket connection.
    pub(crate) fn split_unix(stream: UnixStream) -> (ReadHalf, WriteHalf) {
        let (r, w) = stream.into_split();
        (ReadHalf::Unix(r), WriteHalf::Unix(w))
    }

    /// Puts the halves of one connection back together.
    pub(crate) fn reunite(read: ReadHalf, write: WriteHalf) -> io::Result<Self> {
        match (read, write) {
            (ReadHalf::Plain(r), WriteHalf::Plain(w)) => r
                .reunite(w)
                .map(Stream::Plain)
                .map_err(|_| io::Error::other("halves of different connections")),
            (ReadHalf::Unix(r), WriteHalf::Unix(w)) => r
                .reunite(w)
                .map(Stream::Unix)
                .map_err(|_| io::Error::other("halves of different connections")),
            (ReadHalf::Tls(r), WriteHalf::Tls(w)) => {
                if !r.is_pair_of(&w) {
                    return Err(io::Error::other("halves of different connections"));
                }
                Ok(Stream::Tls(Box::new(r.unsplit(w))))
            }
            _ => Err(io::Error::other("halves of different transports")),
        }
    }

    /// Splits again.
    pub(crate) fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(s) => Self::split_tcp(s),
            Stream::Unix(s) => Self::split_unix(s),
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }

    /// Runs the server side of a TLS handshake (bounded by Go's 5 s) and returns the TLS stream with what the
    /// session negotiated.
    pub(crate) async fn upgrade_tls(self, acceptor: &TlsAcceptor) -> io::Result<(Self, TlsInfo)> {
        let tcp = match self {
            Stream::Plain(tcp) => tcp,
            Stream::Unix(_) => {
                return Err(io::Error::other("TLS is not offered over a unix socket"))
            }
            Stream::Tls(_) => return Err(io::Error::other("connection is already TLS")),
        };
        let tls = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let info = TlsInfo::of(tls.get_ref().1);
        Ok((Stream::Tls(Box::new(tls)), info))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Plain(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Unix(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Tls(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Plain(w) => Pin::new(w).poll_write(cx, buf),
            WriteHalf::Unix(w) => Pin::new(w).poll_write(cx, buf),
            WriteHalf::Tls(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::Unix(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::Tls(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::Unix(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::Tls(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}
