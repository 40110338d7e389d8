//! One TCP client's shared state (Go's `clientV2`): what the reader, the message pump, the channel and
//! `/stats` all need to see.
//!
//! Counters are atomics so the reader (FIN/REQ/RDY), the pump (deliveries) and the channel's timeout
//! processing (via [`Consumer`]) update them without a lock; `wake` tells the pump to re-check readiness.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};

use nsq_core::stats::ClientStats;
use nsq_core::{Channel, Consumer};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::context::ClientInfo;
use crate::tls::TlsInfo;

/// Go's connection states, as reported in `/stats`.
pub(crate) const STATE_INIT: i32 = 0;
pub(crate) const STATE_SUBSCRIBED: i32 = 3;
pub(crate) const STATE_CLOSING: i32 = 4;

/// IDENTIFY-supplied descriptive fields.
#[derive(Debug, Default, Clone)]
pub(crate) struct Meta {
    pub(crate) client_id: String,
    pub(crate) hostname: String,
    pub(crate) user_agent: String,
    pub(crate) topology_zone: String,
    pub(crate) topology_region: String,
    /// Publish counts by topic in first-publish order.
    pub(crate) pub_counts: Vec<(String, u64)>,
    /// The TLS session, once upgraded.
    pub(crate) tls: Option<TlsInfo>,
    /// Snappy negotiated.
    pub(crate) snappy: bool,
    /// Deflate negotiated.
    pub(crate) deflate: bool,
    /// Identity and identity URL from the auth server, once AUTH granted something.
    pub(crate) auth_identity: Option<(String, String)>,
}

/// A connected client.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) id: u64,
    /// The TCP peer; `None` for a client of a unix socket listener.
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) connect_ts: i64,
    pub(crate) meta: Mutex<Meta>,
    pub(crate) state: AtomicI32,
    pub(crate) ready_count: AtomicI64,
    pub(crate) in_flight_count: AtomicI64,
    pub(crate) message_count: AtomicU64,
    pub(crate) finish_count: AtomicU64,
    pub(crate) requeue_count: AtomicU64,
    pub(crate) sample_rate: AtomicI32,
    /// Tells the pump that readiness may have changed (RDY, FIN, REQ, timeouts, pause).
    pub(crate) wake: Notify,
    /// Cancelled to close the connection (channel deletion, shutdown, a write failure).
    pub(crate) cancel: CancellationToken,
}

impl Client {
    pub(crate) fn new(
        id: u64,
        remote_addr: Option<SocketAddr>,
        connect_ts: i64,
        cancel: CancellationToken,
    ) -> Self {
        // Go starts client_id and hostname at the host part of the remote address; the unix address does not
        // split into host and port, so they start empty.
        let ip = remote_addr.map(|a| a.ip().to_string()).unwrap_or_default();
        Self {
            id,
            remote_addr,
            connect_ts,
            meta: Mutex::new(Meta {
                client_id: ip.clone(),
                hostname: ip,
                ..Meta::default()
            }),
            state: AtomicI32::new(STATE_INIT),
            ready_count: AtomicI64::new(0),
            in_flight_count: AtomicI64::new(0),
            message_count: AtomicU64::new(0),
            finish_count: AtomicU64::new(0),
            requeue_count: AtomicU64::new(0),
            sample_rate: AtomicI32::new(0),
            wake: Notify::new(),
            cancel,
        }
    }

    /// Whether the client came through a unix socket (no TLS is offered there).
    pub(crate) fn is_unix(&self) -> bool {
        self.remote_addr.is_none()
    }

    /// The peer's IP as the auth servers get it (`remote_ip`); empty for a unix socket client, whose address
    /// Go cannot split either.
    pub(crate) fn remote_ip(&self) -> String {
        self.remote_addr
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    }

    /// `remote_address` in `/stats`: `ip:port`, or Go's rendering of an unnamed unix socket peer on Linux,
    /// `@`.
    pub(crate) fn remote_address(&self) -> String {
        self.remote_addr.map_or_else(
            || nsq_http::server::UNIX_REMOTE.to_owned(),
            |a| a.to_string(),
        )
    }

    pub(crate) fn state(&self) -> i32 {
        self.state.load(Ordering::Acquire)
    }

    /// Go's `IsReadyForMessages`: how many more messages this client may take right now.
    pub(crate) fn ready_slots(&self, channel: &Channel) -> usize {
        if channel.is_paused() {
            return 0;
        }
        let rdy = self.ready_count.load(Ordering::Acquire);
        let in_flight = self.in_flight_count.load(Ordering::Acquire);
        usize::try_from(rdy - in_flight).unwrap_or(0)
    }

    /// Go's `FinishedMessage` / `RequeuedMessage` bookkeeping. The caller wakes the pump (the reader does it
    /// once per batch of buffered commands, see `Conn::fill`).
    pub(crate) fn message_done(&self) {
        self.in_flight_count.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn published(&self, topic: &str, count: u64) {
        let mut meta = self.meta.lock();
        match meta.pub_counts.iter_mut().find(|(t, _)| t == topic) {
            Some((_, n)) => *n += count,
            None => meta.pub_counts.push((topic.to_owned(), count)),
        }
    }

    fn snapshot(&self, topic_name: &str) -> ClientStats {
        let meta = self.meta.lock().clone();
        // Go lists at most one publish count, filtered by topic when asked for a channel's clients.
        let pub_counts = meta
            .pub_counts
            .iter()
            .find(|(t, _)| topic_name.is_empty() || t == topic_name)
            .cloned()
            .into_iter()
            .collect();
        ClientStats {
            client_id: meta.client_id,
            hostname: meta.hostname,
            version: "V2".to_owned(),
            remote_address: self.remote_address(),
            state: self.state(),
            ready_count: self.ready_count.load(Ordering::Relaxed),
            in_flight_count: self.in_flight_count.load(Ordering::Relaxed),
            message_count: self.message_count.load(Ordering::Relaxed),
            finish_count: self.finish_count.load(Ordering::Relaxed),
            requeue_count: self.requeue_count.load(Ordering::Relaxed),
            connect_ts: self.connect_ts,
            sample_rate: self.sample_rate.load(Ordering::Relaxed),
            user_agent: meta.user_agent,
            pub_counts,
            topology_zone: meta.topology_zone,
            topology_region: meta.topology_region,
            tls: meta.tls.is_some(),
            tls_version: meta
                .tls
                .as_ref()
                .map(|t| t.version.clone())
                .unwrap_or_default(),
            tls_cipher_suite: meta
                .tls
                .as_ref()
                .map(|t| t.cipher_suite.clone())
                .unwrap_or_default(),
            snappy: meta.snappy,
            deflate: meta.deflate,
            authed: meta.auth_identity.is_some(),
            auth_identity: meta
                .auth_identity
                .as_ref()
                .map(|a| a.0.clone())
                .unwrap_or_default(),
            auth_identity_url: meta.auth_identity.map(|a| a.1).unwrap_or_default(),
            ..ClientStats::default()
        }
    }
}

impl Consumer for Client {
    fn id(&self) -> u64 {
        self.id
    }

    fn timed_out_message(&self) {
        self.message_done();
        self.wake.notify_one();
    }

    fn empty(&self) {
        self.in_flight_count.store(0, Ordering::Release);
        self.wake.notify_one();
    }

    fn pause(&self) {
        self.wake.notify_one();
    }

    fn unpause(&self) {
        self.wake.notify_one();
    }

    fn close(&self) {
        self.cancel.cancel();
    }

    fn stats(&self, topic_name: &str) -> ClientStats {
        self.snapshot(topic_name)
    }
}

impl ClientInfo for Client {
    fn producer_stats(&self, topic: &str) -> Option<ClientStats> {
        if self.meta.lock().pub_counts.is_empty() {
            return None;
        }
        Some(self.snapshot(topic))
    }
}
