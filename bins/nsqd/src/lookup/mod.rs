//! Registration with nsqlookupd (Go's `nsqd/lookup.go` and `lookup_peer.go`), so consumers can discover this
//! node through `/lookup`.
//!
//! One task per `--lookupd-tcp-address` ([`peer`]) holds a lookupd TCP connection (protocol V1): it dials
//! lazily, sends IDENTIFY and then one REGISTER per channel (or per topic without channels), PINGs every 15 s,
//! and forwards the REGISTER/UNREGISTER lines made from the domain's [`Event`]s. The manager ([`run`]) starts
//! and stops peer tasks as `PUT /config/nsqlookupd_tcp_addresses` changes the list.
//!
//! ```text
//! EventSink (sync, any thread) --Lookup::on_event--> broadcast (LINE_QUEUE lines) --> one task per lookupd
//! ```
//!
//! The broadcast queue is bounded and never blocks the sender, so a slow or dead lookupd never stalls a
//! publish. Policy when a peer falls behind by more than [`LINE_QUEUE`] lines: it forgets them, closes its
//! connection (lookupd drops everything this node registered) and reconnects at once, registering the current
//! topics and channels from scratch.
//!
//! When a topic is created, [`Lookup::topic_channels`] asks every lookupd (`GET /channels?topic=`) which
//! channels it knows, so they exist before the topic's first message is delivered ([`channels`]).
//!
//! Differences from Go: each lookupd has its own task (Go serialises all of them in one loop, so one slow
//! lookupd delays the others); a connection that lookupd closes is noticed while idle and redialled after 1 s
//! (Go notices at the next command and redials at the one after, up to 30 s later); the `/channels` request
//! cannot follow Go's 403-to-HTTPS retry and refuses a gzip-encoded answer.

mod channels;
mod peer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nsq_core::Event;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::context::Context;

/// How many REGISTER/UNREGISTER lines may wait for the slowest peer before it must start over.
const LINE_QUEUE: usize = 4096;

/// How long shutdown waits for peer tasks before aborting them.
const PEER_STOP_DEADLINE: Duration = Duration::from_secs(2);

/// What this node tells lookupd about itself in IDENTIFY.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The address consumers dial (`--broadcast-address`).
    pub broadcast_address: String,
    /// `--broadcast-tcp-port`, or the TCP port listened on (-1 for a unix socket).
    pub tcp_port: i32,
    /// `--broadcast-http-port`, or the HTTP port listened on (-1 for a unix socket).
    pub http_port: i32,
    /// The OS hostname.
    pub hostname: String,
    /// `--topology-region`.
    pub topology_region: String,
    /// `--topology-zone`.
    pub topology_zone: String,
}

/// Limits and timeouts for talking to lookupd.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `--max-body-size`: the largest response accepted from lookupd (TCP and HTTP).
    pub max_body_size: i64,
    /// `--http-client-connect-timeout`, for `/channels`.
    pub http_connect_timeout: Duration,
    /// `--http-client-request-timeout`, for `/channels`.
    pub http_request_timeout: Duration,
}

/// The part of a lookupd's IDENTIFY answer nsqd uses (Go's `peerInfo`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PeerInfo {
    /// lookupd's TCP port.
    #[serde(default)]
    pub tcp_port: i64,
    /// lookupd's HTTP port, where `/channels` is asked.
    #[serde(default)]
    pub http_port: i64,
    /// lookupd's version.
    #[serde(default)]
    pub version: String,
    /// lookupd's address for `/channels`.
    #[serde(default)]
    pub broadcast_address: String,
}

/// The daemon's side of discovery: turns domain events into lines for the peer tasks and remembers what each
/// lookupd said about itself.
#[derive(Debug)]
pub struct Lookup {
    identity: Identity,
    limits: Limits,
    lines: broadcast::Sender<Bytes>,
    /// IDENTIFY answers by lookupd TCP address, kept across reconnects like Go's `lookupPeer.Info`.
    infos: Mutex<BTreeMap<String, PeerInfo>>,
    /// Receivers made at start for the configured lookupds, so the events of loading `nsqd.dat` reach them
    /// after their first registration burst (Go queues those notifications the same way).
    early: Mutex<BTreeMap<String, broadcast::Receiver<Bytes>>>,
    /// Signalled after `PUT /config/nsqlookupd_tcp_addresses`.
    addresses_changed: Notify,
}

impl Lookup {
    /// A lookup side for `addresses` (the initial `--lookupd-tcp-address` list).
    pub fn new(identity: Identity, limits: Limits, addresses: &[String]) -> Self {
        let (lines, _) = broadcast::channel(LINE_QUEUE);
        let early = addresses
            .iter()
            .map(|a| (a.clone(), lines.subscribe()))
            .collect();
        Self {
            identity,
            limits,
            lines,
            infos: Mutex::new(BTreeMap::new()),
            early: Mutex::new(early),
            addresses_changed: Notify::new(),
        }
    }

    /// Queues the REGISTER/UNREGISTER line for a domain event (Go's `lookupLoop` `notifyChan` branch). Never
    /// blocks: see the module docs for what happens when a peer falls behind. A topic's deletion arrives as
    /// the topic's event followed by one per channel, Go's order.
    pub fn on_event(&self, event: &Event) {
        let l = match event {
            Event::TopicCreated { topic } => line("REGISTER", topic, None),
            Event::ChannelCreated { topic, channel } => line("REGISTER", topic, Some(channel)),
            Event::ChannelDeleted { topic, channel } => line("UNREGISTER", topic, Some(channel)),
            Event::TopicDeleted { topic } => line("UNREGISTER", topic, None),
        };
        // An error only means that no lookupd is configured right now.
        let _ = self.lines.send(l);
    }

    /// Tells the manager that `nsqlookupd_tcp_addresses` changed.
    pub fn addresses_changed(&self) {
        self.addresses_changed.notify_one();
    }

    /// The `host:port` HTTP addresses of the lookupds that answered IDENTIFY with a broadcast address (Go's
    /// `lookupdHTTPAddrs`).
    pub fn http_addrs(&self) -> Vec<String> {
        self.infos
            .lock()
            .values()
            .filter(|i| !i.broadcast_address.is_empty())
            .map(|i| join_host_port(&i.broadcast_address, i.http_port))
            .collect()
    }

    /// The channels lookupd knows for `topic`, merged over every lookupd, sorted and without duplicates (Go's
    /// `GetLookupdTopicChannels`). Failures are logged; the channels of the lookupds that answered are kept.
    pub async fn topic_channels(&self, topic: &str, addrs: Vec<String>) -> Vec<String> {
        channels::query_all(topic, addrs, &self.limits).await
    }

    fn set_info(&self, addr: &str, info: PeerInfo) {
        self.infos.lock().insert(addr.to_owned(), info);
    }

    fn subscribe(&self, addr: &str) -> broadcast::Receiver<Bytes> {
        self.early
            .lock()
            .remove(addr)
            .unwrap_or_else(|| self.lines.subscribe())
    }
}

/// `REGISTER topic [channel]\n` or `UNREGISTER ...`.
fn line(verb: &str, topic: &str, channel: Option<&str>) -> Bytes {
    let text = match channel {
        Some(c) => format!("{verb} {topic} {c}\n"),
        None => format!("{verb} {topic}\n"),
    };
    Bytes::from(text)
}

/// Go's `net.JoinHostPort`: IPv6 literals get brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A running peer task.
#[derive(Debug)]
struct Running {
    addr: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Keeps one peer task per configured lookupd until `stop` fires, following `PUT
/// /config/nsqlookupd_tcp_addresses` (Go `lookupLoop`'s `optsNotificationChan` branch: removed peers are closed,
/// new ones dialled). At stop the connections are closed without UNREGISTER, as Go does.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let lookup = Arc::clone(&ctx.lookup);
    let mut peers: Vec<Running> = Vec::new();
    loop {
        let wanted = ctx.nsqlookupd_tcp_addresses.read().clone();
        peers.retain(|p| {
            let keep = wanted.contains(&p.addr);
            if !keep {
                tracing::info!("LOOKUP({}): removing peer", p.addr);
                p.stop.cancel();
                lookup.infos.lock().remove(&p.addr);
            }
            keep
        });
        for addr in wanted {
            if peers.iter().any(|p| p.addr == addr) {
                continue;
            }
            tracing::info!("LOOKUP({addr}): adding peer");
            let token = stop.child_token();
            let lines = lookup.subscribe(&addr);
            let task = tokio::spawn(peer::run(
                addr.clone(),
                Arc::clone(&ctx),
                lines,
                token.clone(),
            ));
            peers.push(Running {
                addr,
                stop: token,
                task,
            });
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = lookup.addresses_changed.notified() => {}
        }
    }
    tracing::info!("LOOKUP: closing");
    for p in peers {
        let mut task = p.task;
        if tokio::time::timeout(PEER_STOP_DEADLINE, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup() -> Lookup {
        Lookup::new(
            Identity {
                broadcast_address: "127.0.0.1".to_owned(),
                tcp_port: 4150,
                http_port: 4151,
                hostname: "vm".to_owned(),
                topology_region: String::new(),
                topology_zone: String::new(),
            },
            Limits {
                max_body_size: 1024,
                http_connect_timeout: Duration::from_secs(1),
                http_request_timeout: Duration::from_secs(1),
            },
            &[],
        )
    }

    fn drain(rx: &mut broadcast::Receiver<Bytes>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(l) = rx.try_recv() {
            out.push(String::from_utf8(l.to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn events_become_go_lines() {
        let l = lookup();
        let mut rx = l.subscribe("a:1");
        let t = || "t".to_owned();
        let channel = |c: &str| c.to_owned();
        l.on_event(&Event::TopicCreated { topic: t() });
        l.on_event(&Event::ChannelCreated {
            topic: t(),
            channel: channel("a"),
        });
        l.on_event(&Event::ChannelDeleted {
            topic: t(),
            channel: channel("a"),
        });
        l.on_event(&Event::TopicDeleted { topic: t() });
        assert_eq!(
            drain(&mut rx),
            [
                "REGISTER t\n",
                "REGISTER t a\n",
                "UNREGISTER t a\n",
                "UNREGISTER t\n",
            ]
        );
    }

    #[test]
    fn http_addrs_skip_peers_without_a_broadcast_address() {
        let l = lookup();
        l.set_info(
            "a:4160",
            PeerInfo {
                broadcast_address: "::1".to_owned(),
                http_port: 4161,
                ..PeerInfo::default()
            },
        );
        l.set_info("b:4160", PeerInfo::default());
        assert_eq!(l.http_addrs(), ["[::1]:4161"]);
    }

    #[test]
    fn a_full_queue_never_blocks_the_sender() {
        let l = lookup();
        let mut rx = l.subscribe("a:1");
        for i in 0..LINE_QUEUE + 10 {
            l.on_event(&Event::TopicCreated {
                topic: format!("t{i}"),
            });
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(10))
        ));
    }
}
