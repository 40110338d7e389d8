//! nsqadmin: the admin API over a cluster of nsqlookupd and nsqd, compatible with Go nsqadmin 1.3's backend
//! (Go's `nsqadmin/`): `/ping`, the `/api/*` routes, `/config/:opt` and our own web UI ([`ui`]), with a
//! short in-memory history of counts and depths for its charts ([`history`], beyond Go).
//!
//! - [`cli`] and [`options`]: Go's flags, defaults and `--config` file;
//! - [`cluster`] gathers data from every lookupd and nsqd concurrently through [`http_client`] (each request
//!   bounded by `--http-client-connect-timeout` / `--http-client-request-timeout`, https with the
//!   `--http-client-tls-*` settings, nsqd's `TLS_REQUIRED` 403 retried on its https port) and fans actions out;
//! - [`types`] holds Go's JSON shapes (`Producer`, `TopicStats`, `ChannelStats`, ...);
//! - [`http`] routes requests under `--base-path` and answers in nsq's V1 format, with the `--admin-user`
//!   check and notifications ([`notify`]).
//!
//! [`Nsqadmin::bind`] opens the listener (port 0 works; [`Nsqadmin::http_addr`] tells the real one) and
//! [`Nsqadmin::run`] serves until its cancellation token fires. The server loop is our own (hyper over tokio)
//! because handlers need the client's address (`/config` CIDR check, notifications' `remote_ip`).
//!
//! Deliberate differences from Go:
//! - summing a topic over nodes, every channel becomes a sum (`node` `*`, per-node rows in `nodes`); Go's
//!   `TopicStats.Add` reuses the first node's channel object as the sum (so that node's own row changes too)
//!   and, after the first channel it finds, stops adding channels that only later nodes have;
//! - lists sorted by hostname are sorted stably (ties by node address), where Go's order among equal
//!   hostnames is arbitrary;
//! - the `/render` graphite proxy (with `--proxy-graphite`) forwards only to `http://` graphite URLs and does
//!   not pass on a user and password written in the URL;
//! - a plain-http `403` is retried over https only when its body names a nonzero `https_port`; Go retries
//!   every such 403 and otherwise reports the JSON decoding error;
//! - httprouter's trailing-slash and case redirects are not reproduced.

pub mod cli;
pub mod cluster;
pub mod history;
pub mod http;
pub mod http_client;
pub mod notify;
pub mod options;
pub mod types;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use parking_lot::RwLock;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub use nsq_protocol::NSQ_VERSION;
pub use options::Options;

use crate::cluster::Cluster;
use crate::http_client::HttpClient;
use crate::notify::AdminAction;

/// Errors from [`Nsqadmin::bind`].
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The listener could not be opened.
    #[error("listen ({addr}) failed - {source}")]
    Listen {
        /// The address as configured.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `--lookupd-http-address` and `--nsqd-http-address` were both given, or neither, or the
    /// `--http-client-tls-*` files could not be loaded.
    #[error("{0}")]
    Options(String),
}

/// What every request handler shares.
#[derive(Debug)]
pub struct Context {
    opts: RwLock<Options>,
    /// The upstream client.
    pub cluster: Cluster,
    /// Where admin actions go, when `--notification-http-endpoint` is set.
    pub notifications: Option<mpsc::UnboundedSender<AdminAction>>,
    /// The OS hostname (`via` of notifications).
    pub hostname: String,
    /// Recent samples for the UI's charts.
    pub history: history::History,
}

impl Context {
    /// A snapshot of the current options (`PUT /config/:opt` can change some).
    pub fn opts(&self) -> Options {
        self.opts.read().clone()
    }

    /// Replaces the options.
    pub fn swap_opts(&self, opts: Options) {
        *self.opts.write() = opts;
    }
}

/// A bound, not yet running nsqadmin.
#[derive(Debug)]
pub struct Nsqadmin {
    ctx: Arc<Context>,
    listener: TcpListener,
    addr: SocketAddr,
}

impl Nsqadmin {
    /// Checks the options as Go does and opens the HTTP listener. Must run inside a tokio runtime (the
    /// notification sender is spawned here).
    pub async fn bind(opts: Options) -> Result<Self, BindError> {
        if !opts.nsqlookupd_http_addresses.is_empty() && !opts.nsqd_http_addresses.is_empty() {
            return Err(BindError::Options(
                "use --nsqd-http-address or --lookupd-http-address not both".to_owned(),
            ));
        }
        if opts.nsqlookupd_http_addresses.is_empty() && opts.nsqd_http_addresses.is_empty() {
            return Err(BindError::Options(
                "--nsqd-http-address or --lookupd-http-address required".to_owned(),
            ));
        }
        let listener = TcpListener::bind(nsq_http::daemon::listen_address(&opts.http_address))
            .await
            .map_err(|source| BindError::Listen {
                addr: opts.http_address.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| BindError::Listen {
            addr: opts.http_address.clone(),
            source,
        })?;
        let tls = http_client::tls_config(
            opts.http_client_tls_insecure_skip_verify,
            &opts.http_client_tls_root_ca_file,
            &opts.http_client_tls_cert,
            &opts.http_client_tls_key,
        )
        .map_err(|e| BindError::Options(format!("failed to build TLS config - {e}")))?;
        let client = HttpClient::new(
            opts.http_client_connect_timeout,
            opts.http_client_request_timeout,
            tls,
        );
        let notifications = (!opts.notification_http_endpoint.is_empty())
            .then(|| notify::start(opts.notification_http_endpoint.clone(), client.clone()));
        let ctx = Arc::new(Context {
            opts: RwLock::new(opts),
            cluster: Cluster { client },
            notifications,
            hostname: options::os_hostname(),
            history: history::History::default(),
        });
        Ok(Self {
            ctx,
            listener,
            addr,
        })
    }

    /// The HTTP listener's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `cancel` fires, then stops accepting; requests in progress finish on their own tasks.
    pub async fn run(self, cancel: CancellationToken) {
        let Self {
            ctx,
            listener,
            addr,
        } = self;
        tracing::info!("nsqadmin v{NSQ_VERSION}");
        tracing::info!("HTTP: listening on {addr}");
        let app = http::router(Arc::clone(&ctx));
        tokio::spawn(history::poll(Arc::clone(&ctx), cancel.child_token()));
        loop {
            let (stream, peer) = tokio::select! {
                () = cancel.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("accept failed - {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let app = app.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let mut req = req.map(axum::body::Body::new);
                        req.extensions_mut().insert(http::Peer(peer));
                        app.clone().oneshot(req)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .title_case_headers(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
        tracing::info!("nsqadmin exiting");
    }
}
