//! The HTTP listener both daemons use: hyper's HTTP/1 server around a daemon's axum router, with Go's wire
//! details.
//!
//! hyper is used directly (not `axum::serve`) for two things clients can see: header names in title case
//! (Go's canonical `X-Nsq-Content-Type`), and Go's exact reply to a request line it cannot parse. go-nsq's
//! tests send the nsqd TCP magic to the HTTP port (and the lookupd magic reaches lookupd's the same way) and
//! expect `HTTP/1.1 400 Bad Request` with `Connection: close` and the body `400 Bad Request`; hyper's own
//! answer differs, so the first request line of each connection is checked here before hyper sees the bytes.
//!
//! [`serve_tls`] is the same server behind a TLS handshake (nsqd's `--https-address`).
//!
//! Both daemons also listen on unix domain sockets (Go's `util.TypeOfAddr`, nsq #1434): [`Listener`] binds a
//! TCP address or a socket path and accepts either kind of [`Accepted`] stream, for HTTP here and for the
//! daemons' own TCP protocols.
//!
//! Shutdown is graceful: when `shutdown` resolves, the listener closes, idle connections close, and requests in
//! progress finish (bounded by [`DRAIN_DEADLINE`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;

use crate::response::GO_BAD_REQUEST;

/// How long shutdown waits for requests in progress.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// A first request line longer than this is left to hyper to judge.
const SNIFF_LIMIT: usize = 8 * 1024;
/// Pause after a failed `accept` (for example when out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Go's `util.TypeOfAddr`: an address that `net.SplitHostPort` accepts (`host:port`, `:port`,
/// `[v6]:port`) is TCP; anything else, such as `/tmp/nsqd.sock`, is the path of a unix domain socket.
pub fn is_unix_address(addr: &str) -> bool {
    split_host_port(addr).is_none()
}

/// Go's `net.SplitHostPort` rules, reduced to whether the address splits: the port follows the last colon,
/// a host holding colons must be bracketed, and brackets may appear nowhere else.
fn split_host_port(addr: &str) -> Option<(&str, &str)> {
    let colon = addr.rfind(':')?;
    let (host, port) = (&addr[..colon], &addr[colon + 1..]);
    let host = if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        if inner.contains(['[', ']']) {
            return None;
        }
        inner
    } else {
        if host.contains([':', '[', ']']) {
            return None;
        }
        host
    };
    if port.contains(['[', ']']) {
        return None;
    }
    Some((host, port))
}

/// A listening socket of either kind a daemon's address flag can name.
#[derive(Debug)]
pub enum Listener {
    /// A TCP address (`host:port`; Go's `:port` means every interface).
    Tcp(TcpListener),
    /// A unix domain socket; its file is removed when the listener is dropped, as Go's `UnixListener.Close`
    /// does.
    Unix(UnixSocket),
}

/// A bound unix domain socket and the path of its file.
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Listener {
    /// Binds `addr` as Go's `net.Listen(util.TypeOfAddr(addr), addr)` would. A path that already exists is
    /// not removed first: like Go, the bind then fails with "address already in use".
    pub async fn bind(addr: &str) -> io::Result<Self> {
        if is_unix_address(addr) {
            let listener = UnixListener::bind(addr)?;
            Ok(Self::Unix(UnixSocket {
                listener,
                path: PathBuf::from(addr),
            }))
        } else {
            TcpListener::bind(crate::daemon::listen_address(addr))
                .await
                .map(Self::Tcp)
        }
    }

    /// The TCP address listened on; `None` for a unix socket.
    pub fn tcp_addr(&self) -> io::Result<Option<SocketAddr>> {
        match self {
            Self::Tcp(l) => l.local_addr().map(Some),
            Self::Unix(_) => Ok(None),
        }
    }

    /// The port to report in `/info` and registrations: the TCP port, or -1 for a unix socket (Go's value
    /// when the listener's network is not "tcp").
    pub fn reported_port(&self) -> i32 {
        match self {
            Self::Tcp(l) => l.local_addr().map_or(0, |a| i32::from(a.port())),
            Self::Unix(_) => -1,
        }
    }

    /// Accepts the next connection.
    pub async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Self::Tcp(l) => l
                .accept()
                .await
                .map(|(stream, peer)| Accepted::Tcp(stream, peer)),
            Self::Unix(u) => u.listener.accept().await.map(|(s, _)| Accepted::Unix(s)),
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Self::Tcp(listener)
    }
}

/// An accepted connection.
#[derive(Debug)]
pub enum Accepted {
    /// A TCP client and its address.
    Tcp(TcpStream, SocketAddr),
    /// A unix socket client. Its address is almost always unnamed; Go prints that as `@` on Linux.
    Unix(UnixStream),
}

impl Accepted {
    /// The client's address as Go's `conn.RemoteAddr().String()` prints it: `ip:port`, or `@` for an
    /// unnamed unix socket client.
    pub fn remote_string(&self) -> String {
        match self {
            Self::Tcp(_, peer) => peer.to_string(),
            Self::Unix(_) => UNIX_REMOTE.to_owned(),
        }
    }
}

/// What Go on Linux reports as the remote address of a client of a unix socket listener (the unnamed
/// address, whose all-zero path the syscall package renders as `@`).
pub const UNIX_REMOTE: &str = "@";

impl AsyncRead for Accepted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s, _) => Pin::new(s).poll_read(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s, _) => Pin::new(s).poll_write(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(s, _) => s.is_write_vectored(),
            Self::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s, _) => Pin::new(s).poll_flush(cx),
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s, _) => Pin::new(s).poll_shutdown(cx),
            Self::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Serves `app` on `listener` (TCP or a unix socket) until `shutdown` resolves, then stops accepting and
/// lets requests in progress finish.
pub async fn serve(
    listener: impl Into<Listener>,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    serve_with(listener.into(), app, None, shutdown).await;
}

/// Like [`serve`], with every connection starting by a TLS handshake (bounded by [`TLS_HANDSHAKE_TIMEOUT`]).
pub async fn serve_tls(
    listener: impl Into<Listener>,
    app: axum::Router,
    tls: TlsAcceptor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    serve_with(listener.into(), app, Some(tls), shutdown).await;
}

/// How long an HTTPS client has to finish its handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

async fn serve_with(
    listener: Listener,
    app: axum::Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            res = listener.accept() => res,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok(stream) => match &tls {
                None => {
                    tracker.spawn(connection(stream, app.clone(), stop.clone()));
                }
                Some(tls) => {
                    tracker.spawn(tls_connection(
                        stream,
                        tls.clone(),
                        app.clone(),
                        stop.clone(),
                    ));
                }
            },
            Err(err) => {
                tracing::warn!("HTTP accept failed: {err}");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    () = &mut shutdown => break,
                }
            }
        }
    }
    drop(listener);
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("HTTP requests did not finish within {DRAIN_DEADLINE:?}");
    }
}

/// Runs the TLS handshake, then serves the connection.
async fn tls_connection(
    stream: Accepted,
    tls: TlsAcceptor,
    app: axum::Router,
    stop: CancellationToken,
) {
    let accepted = tokio::select! {
        res = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)) => res,
        () = stop.cancelled() => return,
    };
    match accepted {
        Ok(Ok(stream)) => connection(stream, app, stop).await,
        Ok(Err(err)) => tracing::debug!("HTTPS handshake failed: {err}"),
        Err(_) => tracing::debug!("HTTPS handshake timed out"),
    }
}

/// Serves one connection.
async fn connection<S>(mut stream: S, app: axum::Router, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let sniffed = tokio::select! {
        res = sniff_request_line(&mut stream) => res,
        () = stop.cancelled() => return,
    };
    let prefix = match sniffed {
        Ok(Sniffed::Http(prefix)) => prefix,
        Ok(Sniffed::Malformed) => {
            let _ = stream.write_all(GO_BAD_REQUEST).await;
            let _ = stream.shutdown().await;
            return;
        }
        Ok(Sniffed::Closed) | Err(_) => return,
    };
    let io = TokioIo::new(Prefixed {
        prefix,
        inner: stream,
    });
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let mut app = app.clone();
        async move {
            std::future::poll_fn(|cx| Service::<Request<Incoming>>::poll_ready(&mut app, cx))
                .await?;
            app.call(req).await
        }
    });
    let conn = http1::Builder::new()
        .title_case_headers(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let res = tokio::select! {
        res = conn.as_mut() => res,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(err) = res {
        tracing::debug!("HTTP connection ended with an error: {err}");
    }
}

/// What the first bytes of a connection turned out to be.
enum Sniffed {
    /// Looks like HTTP (or is too long to judge); hand these bytes to hyper first.
    Http(BytesMut),
    /// A first line Go's server rejects with its plain `400 Bad Request`.
    Malformed,
    /// The client closed before sending a whole line.
    Closed,
}

/// Reads until the first `\n` (or [`SNIFF_LIMIT`] bytes) and judges the request line as Go's
/// `parseRequestLine` would.
async fn sniff_request_line<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Sniffed> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            return Ok(if is_go_request_line(&buf[..end]) {
                Sniffed::Http(buf)
            } else {
                Sniffed::Malformed
            });
        }
        if buf.len() >= SNIFF_LIMIT {
            return Ok(Sniffed::Http(buf));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(Sniffed::Closed);
        }
    }
}

/// `METHOD SP URI SP HTTP/d.d`, split at the first two spaces as Go does: a token method, a non-empty target
/// and a well-formed version. Anything else is answered with Go's 400.
fn is_go_request_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(uri), Some(proto)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    let version_ok = proto.len() == 8
        && proto.starts_with(b"HTTP/")
        && proto[5].is_ascii_digit()
        && proto[6] == b'.'
        && proto[7].is_ascii_digit();
    !method.is_empty() && method.iter().all(token) && !uri.is_empty() && version_ok
}

/// A stream whose first bytes were already read: they are replayed before the rest.
#[derive(Debug)]
struct Prefixed<S> {
    prefix: BytesMut,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_do_not_split_are_unix_sockets() {
        for tcp in [
            "127.0.0.1:4150",
            ":4150",
            "[::1]:4150",
            "localhost:http",
            "host:",
        ] {
            assert!(!is_unix_address(tcp), "{tcp}");
        }
        for unix in [
            "/tmp/nsqd.sock",
            "nsqd.sock",
            "::1:4150",
            "[::1]",
            "",
            "a]:1",
        ] {
            assert!(is_unix_address(unix), "{unix}");
        }
    }

    #[tokio::test]
    async fn a_unix_listener_serves_and_removes_its_file() {
        let dir = std::env::temp_dir().join(format!("nsq-http-unix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("http.sock");
        let _ = std::fs::remove_file(&path);
        let addr = path.to_str().unwrap().to_owned();
        let listener = Listener::bind(&addr).await.unwrap();
        assert_eq!(listener.reported_port(), -1);
        assert!(listener.tcp_addr().unwrap().is_none());
        // A second bind of a path in use fails, as in Go.
        assert!(Listener::bind(&addr).await.is_err());
        let app = axum::Router::new().route("/ping", axum::routing::get(|| async { "OK" }));
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, app, stop.clone().cancelled_owned()));
        let mut client = UnixStream::connect(&path).await.unwrap();
        client
            .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("OK"), "{answer}");
        stop.cancel();
        server.await.unwrap();
        assert!(!path.exists(), "the socket file outlived its listener");
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn request_lines_are_judged_like_go() {
        assert!(is_go_request_line(b"GET /ping HTTP/1.1\r"));
        assert!(is_go_request_line(b"POST /pub?topic=a HTTP/1.0"));
        // The golden http_port_receives_tcp_magic exchange: the nsqd TCP magic and IDENTIFY.
        assert!(!is_go_request_line(b"  V2IDENTIFY"));
        // The same exchange against nsqlookupd: its magic and a PING.
        assert!(!is_go_request_line(b"  V1PING"));
        assert!(!is_go_request_line(b""));
        assert!(!is_go_request_line(b"GET /ping"));
        assert!(!is_go_request_line(b"GET /a b HTTP/1.1"));
        assert!(!is_go_request_line(b"G(T /ping HTTP/1.1"));
        assert!(!is_go_request_line(b"GET  HTTP/1.1"));
    }
}
