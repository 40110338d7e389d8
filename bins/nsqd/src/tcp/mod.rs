//! The TCP side of nsqd: the accept loop (Go's `TCPServer`) and one task pair per connection. The listener
//! is a TCP port or a unix domain socket (`--tcp-address` a path); the protocol is the same over both.
//!
//! ```text
//!             accept loop ──spawn──▶ connection task (reader: conn::Conn::io_loop)
//!                                        │ Outbound (bounded mpsc, 1024: the reader waits when full)
//!                                        ▼
//!                                    message pump task (owns the write half)
//!                                        ▲ Channel::take (batch), woken by Channel::notify / Client::wake
//! ```

mod client;
mod conn;
mod exec;
mod pump;
mod transport;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use nsq_http::{Accepted, Listener};
use nsq_protocol::{encode_frame, FrameType, BAD_PROTOCOL, MAGIC_V2};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::{ClientInfo, Context};
use client::Client;
use conn::Conn;

/// Replies queued between a connection's reader and its pump. A pipelining producer waits here when its
/// socket is slower than its commands: that is the backpressure policy.
const OUTBOUND_CAPACITY: usize = 1024;

/// Accepts connections until `shutdown` is cancelled. Each connection's token is a child of `clients`, so
/// cancelling `clients` closes every connection.
pub(crate) async fn serve(
    listener: Listener,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
    clients: CancellationToken,
    tracker: TaskTracker,
) {
    let next_id = AtomicU64::new(1);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok(stream) => {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let ctx = Arc::clone(&ctx);
                let cancel = clients.child_token();
                tracker.spawn(handle(stream, ctx, id, cancel));
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::error!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Go's `tcpServer.Handle`: checks the magic, then runs the V2 protocol.
async fn handle(mut stream: Accepted, ctx: Arc<Context>, id: u64, cancel: CancellationToken) {
    let remote = match &stream {
        Accepted::Tcp(tcp, peer) => {
            let _ = tcp.set_nodelay(true);
            Some(*peer)
        }
        Accepted::Unix(_) => None,
    };
    let mut magic = [0u8; 4];
    let read = tokio::select! {
        () = cancel.cancelled() => return,
        r = tokio::time::timeout(ctx.opts.client_timeout, stream.read_exact(&mut magic)) => r,
    };
    if !matches!(read, Ok(Ok(_))) {
        return;
    }
    if &magic != MAGIC_V2 {
        let mut out = BytesMut::new();
        encode_frame(&mut out, FrameType::Error, BAD_PROTOCOL);
        let _ = stream.write_all(&out).await;
        return;
    }
    tracing::debug!(client = id, remote = %stream.remote_string(), "new V2 client");
    let client = Arc::new(Client::new(
        id,
        remote,
        nsq_core::now_ns() / 1_000_000_000,
        cancel.clone(),
    ));
    let info: Arc<dyn ClientInfo> = client.clone();
    ctx.clients.lock().insert(id, info);

    let (reader, writer) = match stream {
        Accepted::Tcp(tcp, _) => transport::Stream::split_tcp(tcp),
        Accepted::Unix(unix) => transport::Stream::split_unix(unix),
    };
    let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
    let pump = tokio::spawn(pump::message_pump(
        Arc::clone(&client),
        writer,
        rx,
        Conn::initial_pump_settings(&ctx),
    ));
    let mut conn = Conn::new(
        Arc::clone(&ctx),
        Arc::clone(&client),
        reader,
        BytesMut::with_capacity(16 * 1024),
        tx,
    );
    conn.io_loop().await;
    let channel = conn.channel().cloned();
    // Dropping the reader's sender lets the pump flush what is queued (a fatal error frame) and exit.
    drop(conn);
    let _ = pump.await;
    if let Some(channel) = channel {
        ctx.topics.remove_consumer(&channel, id);
    }
    ctx.clients.lock().remove(&id);
    tracing::debug!(client = id, "client exited");
}
