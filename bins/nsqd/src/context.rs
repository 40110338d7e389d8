//! What every part of the daemon shares: options, the topic registry, the connected clients and a few
//! run-time settings (Go keeps these on the `NSQD` struct).
//!
//! Nothing in the domain holds this; the TCP and HTTP layers get an `Arc<Context>`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use nsq_core::stats::ClientStats;
use nsq_core::{Topic, Topics};
use parking_lot::{Mutex, RwLock};

use crate::auth::AuthClient;
use crate::lookup::Lookup;
use crate::options::{LogLevel, Options};
use crate::persist::Persistence;
use crate::tls::ServerTls;

/// A connected TCP client as the rest of the daemon sees it.
pub trait ClientInfo: Send + Sync + std::fmt::Debug {
    /// A `/stats` snapshot, with its publish count filtered to `topic` when that is not empty; `None` for a
    /// client that has not published anything (not a producer).
    fn producer_stats(&self, topic: &str) -> Option<ClientStats>;
}

/// Shared daemon state.
#[derive(Debug)]
pub struct Context {
    /// Options as given at start.
    pub opts: Arc<Options>,
    /// Every topic.
    pub topics: Arc<Topics>,
    /// Connected TCP clients by id, for `/stats` producers.
    pub clients: Mutex<BTreeMap<u64, Arc<dyn ClientInfo>>>,
    /// Start time, Unix seconds.
    pub start_time: i64,
    /// The TCP listener's real address; `0.0.0.0:0` when `--tcp-address` is a unix socket path (see
    /// [`Context::tcp_port`]).
    pub tcp_addr: SocketAddr,
    /// The HTTP listener's real address; `None` when HTTP is disabled or listens on a unix socket (see
    /// [`Context::http_port`]).
    pub http_addr: Option<SocketAddr>,
    /// The HTTPS listener's real address (only with TLS configured and `--https-address` set).
    pub https_addr: Option<SocketAddr>,
    /// The OS hostname (Go `os.Hostname()`).
    pub hostname: String,
    /// The log level, changeable with `PUT /config/log_level`.
    pub log_level: RwLock<LogLevel>,
    /// lookupd addresses, changeable with `PUT /config/nsqlookupd_tcp_addresses` (which then calls
    /// [`Lookup::addresses_changed`]).
    pub nsqlookupd_tcp_addresses: RwLock<Vec<String>>,
    /// Registration with nsqlookupd, and the channels it knows for new topics.
    pub lookup: Arc<Lookup>,
    /// The data directory's lock, `nsqd.dat` and the diskqueue threads; `None` only in tests that run the
    /// daemon's handlers without a data directory.
    pub persistence: Option<Arc<Persistence>>,
    /// The TLS server configuration when `--tls-cert`/`--tls-key` are set (IDENTIFY then offers `tls_v1`).
    pub tls: Option<ServerTls>,
    /// The auth servers' client when `--auth-http-address` is set (IDENTIFY then reports `auth_required`).
    pub(crate) auth: Option<AuthClient>,
}

impl Context {
    /// The TCP port `/info` and lookupd registrations report: the real port, or -1 when `--tcp-address` is
    /// a unix socket path (Go reports -1 for a listener whose network is not "tcp").
    pub fn tcp_port(&self) -> i32 {
        if nsq_http::is_unix_address(&self.opts.tcp_address) {
            -1
        } else {
            i32::from(self.tcp_addr.port())
        }
    }

    /// The HTTP port to report: -1 for a unix socket, the real port of a TCP listener, and `None` when HTTP
    /// is disabled (callers then fall back on the configured address).
    pub fn http_port(&self) -> Option<i32> {
        if !self.opts.http_address.is_empty() && nsq_http::is_unix_address(&self.opts.http_address)
        {
            Some(-1)
        } else {
            self.http_addr.map(|a| i32::from(a.port()))
        }
    }

    /// Producer snapshots (clients that published at least once), ordered by client id; `topic` filters each
    /// client's publish count as Go's `Stats(topic)` does.
    pub fn producer_stats(&self, topic: &str) -> Vec<ClientStats> {
        let clients: Vec<_> = self.clients.lock().values().cloned().collect();
        clients
            .iter()
            .filter_map(|c| c.producer_stats(topic))
            .collect()
    }

    /// Asks for `nsqd.dat` to be rewritten (after a pause or unpause; creations and deletions are reported
    /// by the domain itself).
    pub fn metadata_changed(&self) {
        if let Some(p) = &self.persistence {
            p.dirty().mark();
        }
    }

    /// Publishes `bodies` to `topic` (PUB, MPUB, DPUB and HTTP `/pub`, `/mpub`) and returns once the publish
    /// may be acknowledged: first it waits while more published data than the write budget is waiting for the
    /// disk (see `persist`), then, after the put, until the records it sent to a diskqueue are in their file,
    /// as Go's diskqueue `Put` returns after its write.
    pub async fn publish(
        &self,
        topic: &Topic,
        bodies: impl IntoIterator<Item = Bytes>,
        defer: Duration,
    ) -> Result<(), nsq_core::Error> {
        if let Some(p) = &self.persistence {
            p.writable().await;
        }
        topic.put_messages(bodies, defer)?.written().await;
        Ok(())
    }

    /// Returns the topic, creating it if needed (Go `NSQD.GetTopic`). A new topic first gets the non-ephemeral
    /// channels nsqlookupd knows for it (`GET /channels?topic=` on every lookupd that answered IDENTIFY), then
    /// starts; meanwhile concurrent publishes wait in its backlog. Every place that may create a topic for a
    /// client comes through here (loading `nsqd.dat` does not ask lookupd, as in Go).
    ///
    /// The lookupd query runs in its own task, so a caller that goes away (a closed connection) cannot leave
    /// the topic unstarted.
    pub async fn get_topic(&self, name: &str) -> Arc<Topic> {
        let (topic, created) = self.topics.get_topic_unstarted(name);
        if !created {
            return topic;
        }
        let addrs = self.lookup.http_addrs();
        if addrs.is_empty() {
            topic.start();
            return topic;
        }
        let lookup = Arc::clone(&self.lookup);
        let new = Arc::clone(&topic);
        let prepare = tokio::spawn(async move {
            for channel in lookup.topic_channels(new.name(), addrs).await {
                // Ephemeral channels are made by their consumers only.
                if !nsq_protocol::is_ephemeral(&channel) {
                    new.get_channel(&channel);
                }
            }
            new.start();
        });
        if prepare.await.is_err() {
            topic.start();
        }
        topic
    }

    /// Whether the daemon is shutting down (publishes answer `EXITING` / `E_PUB_FAILED`).
    pub fn is_exiting(&self) -> bool {
        self.topics.is_exiting()
    }
}
