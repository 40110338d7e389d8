//! nsqlookupd: the discovery daemon nsqd registers with and consumers query, wire-compatible with Go
//! nsqlookupd 1.3 (Go's `nsqlookupd/`).
//!
//! nsqd connects over TCP (protocol V1, [`protocol`]) and says which topics and channels it has; consumers and
//! nsqadmin ask over HTTP ([`http`]) where a topic is produced. Both sides share one in-memory
//! [`db::RegistrationDb`]. There is no persistence and no coordination between lookupd instances, as in Go.
//!
//! `main.rs` only parses flags: [`Nsqlookupd::bind`] opens the listeners (port 0 works; [`Nsqlookupd::tcp_addr`]
//! tells the real port; an address that is a path is a unix domain socket, removed again when its listener
//! closes) and [`Nsqlookupd::run`] serves until its cancellation token fires.
//!
//! Deliberate differences from Go, all where Go crashes, grows without bound or leaves garbage behind:
//! - a negative or oversized IDENTIFY body size answers `E_BAD_BODY IDENTIFY invalid body size N` and closes
//!   that connection (Go's whole process panics on a negative size); bodies are limited to 1 MiB and command
//!   lines to 64 KiB (Go has no limits);
//! - when an nsqd disconnects, ephemeral topic and channel registrations it leaves without producers are
//!   deleted, as an UNREGISTER would (Go keeps them listed forever);
//! - listings come out sorted instead of in Go's random map order.

pub mod cli;
pub mod db;
pub mod http;
pub mod options;
pub mod protocol;
mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use nsq_http::Listener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use db::RegistrationDb;
pub use options::Options;

pub use nsq_protocol::NSQ_VERSION;

/// How long shutdown waits for TCP connections to finish.
const CLIENT_DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Errors from [`Nsqlookupd::bind`].
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A listener could not be opened.
    #[error("listen ({addr}) failed - {source}")]
    Listen {
        /// The address as configured.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// What the TCP and HTTP sides share.
#[derive(Debug)]
pub struct Context {
    /// Options as given at start.
    pub opts: Options,
    /// The registrations.
    pub db: RegistrationDb,
    /// The TCP listener's real address; `0.0.0.0:0` for a unix socket (see [`Context::tcp_port`]).
    pub tcp_addr: SocketAddr,
    /// The HTTP listener's real address; `0.0.0.0:0` for a unix socket (see [`Context::http_port`]).
    pub http_addr: SocketAddr,
    /// The TCP port IDENTIFY reports: the real one, or -1 for a unix socket (as Go).
    pub tcp_port: i32,
    /// The HTTP port IDENTIFY reports: the real one, or -1 for a unix socket.
    pub http_port: i32,
    /// The OS hostname, reported in the IDENTIFY answer.
    pub hostname: String,
}

impl Context {
    /// The lifetimes that decide which producers the HTTP API shows.
    pub fn visibility(&self) -> db::Visibility {
        db::Visibility {
            inactive_producer_timeout: self.opts.inactive_producer_timeout,
            tombstone_lifetime: self.opts.tombstone_lifetime,
        }
    }
}

/// A bound, not yet running daemon.
#[derive(Debug)]
pub struct Nsqlookupd {
    ctx: Arc<Context>,
    tcp: Listener,
    http: Listener,
}

impl Nsqlookupd {
    /// Opens the TCP and HTTP listeners.
    pub async fn bind(opts: Options) -> Result<Self, BindError> {
        let tcp = listen(&opts.tcp_address).await?;
        let http = listen(&opts.http_address).await?;
        // A unix socket has no TCP address: it stands as 0.0.0.0:0 and reports port -1.
        let addr_of = |l: &Listener, configured: &str| {
            l.tcp_addr()
                .map(|a| a.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))))
                .map_err(|source| BindError::Listen {
                    addr: configured.to_owned(),
                    source,
                })
        };
        let tcp_addr = addr_of(&tcp, &opts.tcp_address)?;
        let http_addr = addr_of(&http, &opts.http_address)?;
        let ctx = Arc::new(Context {
            opts,
            db: RegistrationDb::new(),
            tcp_addr,
            http_addr,
            tcp_port: tcp.reported_port(),
            http_port: http.reported_port(),
            hostname: options::os_hostname(),
        });
        Ok(Self { ctx, tcp, http })
    }

    /// The TCP listener's address (`0.0.0.0:0` for a unix socket).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.ctx.tcp_addr
    }

    /// The HTTP listener's address (`0.0.0.0:0` for a unix socket).
    pub fn http_addr(&self) -> SocketAddr {
        self.ctx.http_addr
    }

    /// The shared state (for in-process tests).
    pub fn context(&self) -> Arc<Context> {
        Arc::clone(&self.ctx)
    }

    /// Serves until `cancel` fires, then stops accepting, lets HTTP requests in progress finish, and closes
    /// the TCP connections (each removes its registrations on the way out).
    pub async fn run(self, cancel: CancellationToken) {
        let Self { ctx, tcp, http } = self;
        let listeners = CancellationToken::new();
        let clients = CancellationToken::new();
        let tracker = TaskTracker::new();
        let tcp_task = tokio::spawn(tcp::serve(
            tcp,
            Arc::clone(&ctx),
            listeners.clone(),
            clients.clone(),
            tracker.clone(),
        ));
        let http_task = tokio::spawn(nsq_http::serve(
            http,
            http::router(Arc::clone(&ctx)),
            listeners.clone().cancelled_owned(),
        ));
        tracing::info!("nsqlookupd v{NSQ_VERSION}");
        let shown = |port: i32, addr: SocketAddr, configured: &str| {
            if port == -1 {
                configured.to_owned()
            } else {
                addr.to_string()
            }
        };
        tracing::info!(
            "TCP: listening on {}",
            shown(ctx.tcp_port, ctx.tcp_addr, &ctx.opts.tcp_address)
        );
        tracing::info!(
            "HTTP: listening on {}",
            shown(ctx.http_port, ctx.http_addr, &ctx.opts.http_address)
        );

        cancel.cancelled().await;
        tracing::info!("nsqlookupd exiting");
        listeners.cancel();
        let _ = tcp_task.await;
        let _ = http_task.await;
        clients.cancel();
        tracker.close();
        if tokio::time::timeout(CLIENT_DRAIN_DEADLINE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("TCP connections did not finish within {CLIENT_DRAIN_DEADLINE:?}");
        }
        tracing::info!("nsqlookupd exited");
    }
}

/// Binds a TCP address or, for a path, a unix domain socket.
async fn listen(addr: &str) -> Result<Listener, BindError> {
    Listener::bind(addr)
        .await
        .map_err(|source| BindError::Listen {
            addr: addr.to_owned(),
            source,
        })
}

/// Unix nanoseconds now, the clock of `last_update` and tombstones (Go's `time.Now().UnixNano()`).
pub fn now_ns() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}
