//! nsqd: the NSQ daemon that receives, queues and delivers messages, wire-compatible with Go nsqd 1.3.
//!
//! The binary's `main.rs` only parses flags; everything else is here so tests can run a daemon in-process:
//! [`Nsqd::bind`] opens the listeners (port 0 works and [`Nsqd::tcp_addr`] tells the real port; a path is a
//! unix domain socket, created at bind and removed when its listener closes), and
//! [`Nsqd::run`] serves until its cancellation token fires, then shuts down in the order written in
//! ARCHITECTURE.md.

mod auth;
pub mod cli;
pub mod context;
pub mod http;
mod http_client;
pub mod lookup;
pub mod options;
pub mod persist;
mod statsd;
mod tcp;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use nsq_core::{CoreConfig, Event, EventSink, QueueScan, Topics};
use nsq_http::Listener;
use parking_lot::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use context::Context;
use lookup::{Identity, Limits, Lookup};
pub use options::Options;
use persist::Persistence;

pub use nsq_protocol::NSQ_VERSION;

/// How long shutdown waits for connections to finish before giving up on them.
const CLIENT_DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Errors from [`Nsqd::bind`].
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// `--data-path` could not be locked (another nsqd uses it, or it does not exist).
    #[error("{0}")]
    DataPath(#[source] std::io::Error),
    /// `nsqd.dat` could not be read or written.
    #[error("{0}")]
    Metadata(#[source] std::io::Error),
    /// The TLS files could not be used, or TLS is required without them.
    #[error("{0}")]
    Tls(String),
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

/// A bound, not yet running daemon.
#[derive(Debug)]
pub struct Nsqd {
    ctx: Arc<Context>,
    scan: Arc<QueueScan>,
    tcp: Listener,
    http: Option<Listener>,
    https: Option<Listener>,
}

/// `configured`, unless it is 0 (Go's "use the port actually listened on", -1 for a unix socket).
fn nonzero_or(configured: u16, actual: i32) -> i32 {
    if configured == 0 {
        actual
    } else {
        i32::from(configured)
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

/// The TCP address of `listener`; `None` for a unix socket.
fn tcp_addr_of(listener: &Listener, configured: &str) -> Result<Option<SocketAddr>, BindError> {
    listener.tcp_addr().map_err(|source| BindError::Listen {
        addr: configured.to_owned(),
        source,
    })
}

/// How the startup line names a listener: its real TCP address, or the socket path as configured.
fn shown(addr: Option<SocketAddr>, configured: &str) -> String {
    addr.map_or_else(|| configured.to_owned(), |a| a.to_string())
}

impl Nsqd {
    /// Locks the data directory, opens the TCP and HTTP listeners, builds the daemon state and loads the
    /// topics and channels of `nsqd.dat` with their queued messages (Go `New` then `LoadMetadata`).
    pub async fn bind(opts: Options) -> Result<Self, BindError> {
        let tls = tls::server_config(&opts)
            .map_err(|e| BindError::Tls(format!("failed to build TLS config - {e}")))?;
        if tls.is_none() && opts.tls_required != options::TLS_NOT_REQUIRED {
            return Err(BindError::Tls(
                "cannot require TLS client connections without TLS key and cert".to_owned(),
            ));
        }
        let auth = auth::AuthClient::from_options(&opts).map_err(BindError::Tls)?;
        let persistence = Arc::new(Persistence::open(&opts).map_err(BindError::DataPath)?);
        let tcp = listen(&opts.tcp_address).await?;
        let http = if opts.http_address.is_empty() {
            None
        } else {
            Some(listen(&opts.http_address).await?)
        };
        // Go opens the HTTPS listener only when TLS is configured.
        let https = if tls.is_some() && !opts.https_address.is_empty() {
            Some(listen(&opts.https_address).await?)
        } else {
            None
        };
        let https_addr = https.as_ref().and_then(|l| l.tcp_addr().ok().flatten());
        // A unix socket has no TCP address; the context's accessors report its port as -1.
        let tcp_addr = tcp_addr_of(&tcp, &opts.tcp_address)?
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let http_addr = match &http {
            Some(l) => tcp_addr_of(l, &opts.http_address)?,
            None => None,
        };
        let tcp_port = tcp.reported_port();
        let http_port = http.as_ref().map_or(0, Listener::reported_port);
        let scan = QueueScan::new();
        let core = CoreConfig {
            node_id: opts.node_id,
            mem_queue_size: opts.mem_queue_size,
            max_channel_consumers: opts.max_channel_consumers,
            max_msg_timeout: opts.max_msg_timeout,
            e2e_percentiles: opts.e2e_processing_latency_percentiles.clone(),
            e2e_window: opts.e2e_processing_latency_window_time,
        };
        let hostname = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lookup = Arc::new(Lookup::new(
            Identity {
                broadcast_address: opts.broadcast_address.clone(),
                tcp_port: nonzero_or(opts.broadcast_tcp_port, tcp_port),
                http_port: nonzero_or(opts.broadcast_http_port, http_port),
                hostname: hostname.clone(),
                topology_region: opts.topology_region.clone(),
                topology_zone: opts.topology_zone.clone(),
            },
            Limits {
                max_body_size: opts.max_body_size,
                http_connect_timeout: opts.http_client_connect_timeout,
                http_request_timeout: opts.http_client_request_timeout,
            },
            &opts.nsqlookupd_tcp_addresses,
        ));
        let dirty = persistence.dirty();
        let lookup_events = Arc::clone(&lookup);
        let events = EventSink::new(move |event: Event| {
            if event.is_persistent() {
                dirty.mark();
            }
            lookup_events.on_event(&event);
        });
        let topics = Arc::new(Topics::with_storage(
            core,
            Arc::clone(&scan),
            persistence.storage(),
            Some(events),
        ));
        persistence
            .load(&topics)
            .await
            .map_err(BindError::Metadata)?;
        let ctx = Arc::new(Context {
            topics,
            clients: Mutex::new(Default::default()),
            start_time: nsq_core::now_ns() / 1_000_000_000,
            tcp_addr,
            http_addr,
            https_addr,
            hostname,
            log_level: RwLock::new(opts.log_level),
            nsqlookupd_tcp_addresses: RwLock::new(opts.nsqlookupd_tcp_addresses.clone()),
            lookup,
            persistence: Some(persistence),
            tls,
            auth,
            opts: Arc::new(opts),
        });
        Ok(Self {
            ctx,
            scan,
            tcp,
            http,
            https,
        })
    }

    /// The TCP listener's address (`0.0.0.0:0` for a unix socket).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.ctx.tcp_addr
    }

    /// The HTTP listener's address, unless HTTP is disabled or listens on a unix socket.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.ctx.http_addr
    }

    /// The HTTPS listener's address, when TLS is configured and `--https-address` is set.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.ctx.https_addr
    }

    /// The shared state (for in-process tests).
    pub fn context(&self) -> Arc<Context> {
        Arc::clone(&self.ctx)
    }

    /// Serves until `cancel` fires, then shuts down:
    /// 1. stop accepting TCP and HTTP connections (HTTP finishes requests in progress);
    /// 2. close every topic and channel, which disconnects consumers, then close the remaining clients and
    ///    wait (bounded) for their tasks, so replies already queued are flushed;
    /// 3. write every message still in memory (queued, in flight, deferred) to the diskqueues, close them
    ///    (fsync) and write `nsqd.dat`;
    /// 4. stop the queue scanner and close the nsqlookupd connections (without UNREGISTER, as Go: lookupd
    ///    forgets this node when the connection closes).
    pub async fn run(self, cancel: CancellationToken) {
        let Self {
            ctx,
            scan,
            tcp,
            http,
            https,
        } = self;
        let listeners = CancellationToken::new();
        let clients = CancellationToken::new();
        let scan_stop = CancellationToken::new();
        let tracker = TaskTracker::new();

        let scan_task = tokio::spawn(Arc::clone(&scan).run(scan_stop.clone().cancelled_owned()));
        let metadata_stop = CancellationToken::new();
        let metadata_task = ctx.persistence.as_ref().map(|p| {
            tokio::spawn(
                Arc::clone(p).run_metadata_writer(Arc::clone(&ctx.topics), metadata_stop.clone()),
            )
        });
        let lookup_stop = CancellationToken::new();
        let lookup_task = tokio::spawn(lookup::run(Arc::clone(&ctx), lookup_stop.clone()));
        let statsd_stop = CancellationToken::new();
        let statsd_task = (!ctx.opts.statsd_address.is_empty())
            .then(|| tokio::spawn(statsd::run(Arc::clone(&ctx), statsd_stop.clone())));
        let tcp_task = tokio::spawn(tcp::serve(
            tcp,
            Arc::clone(&ctx),
            listeners.clone(),
            clients.clone(),
            tracker.clone(),
        ));
        let http_task = http.map(|l| {
            tokio::spawn(nsq_http::serve(
                l,
                http::router(Arc::clone(&ctx)),
                listeners.clone().cancelled_owned(),
            ))
        });
        let https_task = https.zip(ctx.tls.clone()).map(|(l, config)| {
            tokio::spawn(nsq_http::serve_tls(
                l,
                http::https_router(Arc::clone(&ctx)),
                tokio_rustls::TlsAcceptor::from(config),
                listeners.clone().cancelled_owned(),
            ))
        });
        tracing::info!("nsqd v{NSQ_VERSION}");
        tracing::info!(
            "TCP: listening on {}",
            shown(
                (ctx.tcp_port() != -1).then_some(ctx.tcp_addr),
                &ctx.opts.tcp_address
            )
        );
        if let Some(addr) = ctx.https_addr {
            tracing::info!("HTTPS: listening on {addr}");
        }
        if !ctx.opts.http_address.is_empty() {
            tracing::info!(
                "HTTP: listening on {}",
                shown(ctx.http_addr, &ctx.opts.http_address)
            );
        }

        cancel.cancelled().await;
        tracing::info!("nsqd exiting");
        listeners.cancel();
        let _ = tcp_task.await;
        if let Some(t) = http_task {
            let _ = t.await;
        }
        if let Some(t) = https_task {
            let _ = t.await;
        }
        ctx.topics.close_all();
        clients.cancel();
        tracker.close();
        if tokio::time::timeout(CLIENT_DRAIN_DEADLINE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("clients did not finish within {:?}", CLIENT_DRAIN_DEADLINE);
        }
        metadata_stop.cancel();
        if let Some(t) = metadata_task {
            let _ = t.await;
        }
        if let Some(p) = &ctx.persistence {
            p.shutdown(&ctx.topics).await;
        }
        scan_stop.cancel();
        let _ = scan_task.await;
        statsd_stop.cancel();
        if let Some(t) = statsd_task {
            let _ = t.await;
        }
        lookup_stop.cancel();
        let _ = lookup_task.await;
        tracing::info!("nsqd exited");
    }
}
