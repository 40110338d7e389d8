//! The HTTP listener: hyper's HTTP/1 server around the axum router.
//!
//! hyper is used directly (not `axum::serve`) for two things clients see: title-case header names (Go's
//! canonical `X-Nsq-Content-Type`), and Go's exact answer to a request line it cannot parse. Go's answer to
//! the lookupd TCP magic sent to the HTTP port is `HTTP/1.1 400 Bad Request`, `Connection: close`, body
//! `400 Bad Request`; hyper's differs, so the first line of each connection is checked before hyper sees it.
//!
//! Shutdown is graceful: the listener closes, idle connections close, requests in progress finish (bounded by
//! [`DRAIN_DEADLINE`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;

use super::response::GO_BAD_REQUEST;
use crate::Context;

/// How long shutdown waits for requests in progress.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// A first request line longer than this is left to hyper to judge.
const SNIFF_LIMIT: usize = 8 * 1024;
/// Pause after a failed `accept`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the HTTP API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = super::router(ctx);
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            res = listener.accept() => res,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _)) => {
                tracker.spawn(connection(stream, app.clone(), stop.clone()));
            }
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

/// Serves one connection.
async fn connection(mut stream: TcpStream, app: axum::Router, stop: CancellationToken) {
    let sniffed = tokio::select! {
        res = sniff_request_line(&mut stream) => res,
        () = stop.cancelled() => return,
    };
    let prefix = match sniffed {
        Ok(Some(prefix)) => prefix,
        Ok(None) => {
            let _ = stream.write_all(GO_BAD_REQUEST).await;
            let _ = stream.shutdown().await;
            return;
        }
        Err(_) => return,
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

/// Reads up to the first `\n` (or [`SNIFF_LIMIT`] bytes). `Some(bytes)` to hand to hyper, `None` for a line
/// Go rejects with its plain 400. A client that closes before a whole line is an error (nothing to answer).
async fn sniff_request_line(stream: &mut TcpStream) -> io::Result<Option<BytesMut>> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            return Ok(is_go_request_line(&buf[..end]).then_some(buf));
        }
        if buf.len() >= SNIFF_LIMIT {
            return Ok(Some(buf));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// `METHOD SP URI SP HTTP/d.d`, split at the first two spaces as Go's `parseRequestLine` does.
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

/// A stream whose first bytes were already read; they are replayed first.
#[derive(Debug)]
struct Prefixed {
    prefix: BytesMut,
    inner: TcpStream,
}

impl AsyncRead for Prefixed {
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

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
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
    fn request_lines_are_judged_like_go() {
        assert!(is_go_request_line(b"GET /lookup?topic=a HTTP/1.1\r"));
        // The golden http_port_receives_tcp_magic exchange: the lookupd magic and a PING.
        assert!(!is_go_request_line(b"  V1PING"));
        assert!(!is_go_request_line(b"GET /ping"));
        assert!(!is_go_request_line(b"G(T /ping HTTP/1.1"));
    }
}
