//! The registration database (Go's `RegistrationDB`): which nsqd ("peer") produces which topic and channel.
//!
//! A registration is a `(category, key, subkey)` triple: `("client", "", "")` lists every identified peer,
//! `("topic", topic, "")` the producers of a topic and `("channel", topic, channel)` those of a channel. A
//! registration can exist with no producers (created over HTTP, or left behind after its producers went away),
//! which is how `/topics` and `/channels` keep listing names that no nsqd has any more, as Go does.
//!
//! Every operation takes the one lock, does its work and returns owned data; the lock is a synchronous
//! `parking_lot::Mutex` and is never held across an `.await`. Operations that need the time take `now_ns`
//! (Unix nanoseconds) from the caller, so the inactivity and tombstone rules are tested without sleeping.
//!
//! Registrations sit in a `BTreeMap`, so every listing comes out sorted where Go's comes out in random map
//! order. `*` as a key or subkey matches every value, as in Go (so `/channels?topic=*` lists all channels).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// The category of the registration every identified peer is in.
pub const CLIENT: &str = "client";
/// The category of topic registrations.
pub const TOPIC: &str = "topic";
/// The category of channel registrations.
pub const CHANNEL: &str = "channel";

/// Matches any key or subkey in a query.
const WILDCARD: &str = "*";

/// One identified TCP connection (an nsqd) with what it said in IDENTIFY (Go's `PeerInfo`).
#[derive(Debug)]
pub struct Peer {
    /// Unique for the life of the daemon; tells two connections apart even if an address is reused.
    pub key: u64,
    /// Go's `id`: the connection's remote address, shown by `/debug`.
    pub id: String,
    /// The remote address as `ip:port` (Go overwrites whatever the IDENTIFY JSON said).
    pub remote_address: String,
    /// The nsqd's hostname.
    pub hostname: String,
    /// The address clients should dial.
    pub broadcast_address: String,
    /// The nsqd's TCP port.
    pub tcp_port: i64,
    /// The nsqd's HTTP port.
    pub http_port: i64,
    /// The nsqd's version string.
    pub version: String,
    /// Topology-aware consumption: the nsqd's zone.
    pub topology_zone: String,
    /// Topology-aware consumption: the nsqd's region.
    pub topology_region: String,
    /// Unix nanoseconds of IDENTIFY or the last PING; producers silent for longer than
    /// `--inactive-producer-timeout` are left out of `/lookup` and `/nodes`.
    last_update: AtomicI64,
}

impl Peer {
    /// A peer whose last sign of life is `now_ns`.
    pub fn new(key: u64, remote_address: String, info: PeerFields, now_ns: i64) -> Self {
        Self {
            key,
            id: remote_address.clone(),
            remote_address,
            hostname: info.hostname,
            broadcast_address: info.broadcast_address,
            tcp_port: info.tcp_port,
            http_port: info.http_port,
            version: info.version,
            topology_zone: info.topology_zone,
            topology_region: info.topology_region,
            last_update: AtomicI64::new(now_ns),
        }
    }

    /// Records a PING.
    pub fn touch(&self, now_ns: i64) {
        self.last_update.store(now_ns, Ordering::Relaxed);
    }

    /// Unix nanoseconds of the last IDENTIFY or PING.
    pub fn last_update(&self) -> i64 {
        self.last_update.load(Ordering::Relaxed)
    }

    fn is_active(&self, now_ns: i64, inactive_timeout: Duration) -> bool {
        i128::from(now_ns) - i128::from(self.last_update()) <= nanos(inactive_timeout)
    }
}

/// The IDENTIFY fields a peer is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerFields {
    /// See [`Peer::hostname`].
    pub hostname: String,
    /// See [`Peer::broadcast_address`].
    pub broadcast_address: String,
    /// See [`Peer::tcp_port`].
    pub tcp_port: i64,
    /// See [`Peer::http_port`].
    pub http_port: i64,
    /// See [`Peer::version`].
    pub version: String,
    /// See [`Peer::topology_zone`].
    pub topology_zone: String,
    /// See [`Peer::topology_region`].
    pub topology_region: String,
}

/// The lifetimes that decide which producers `/lookup` and `/nodes` show.
#[derive(Debug, Clone, Copy)]
pub struct Visibility {
    /// `--inactive-producer-timeout`.
    pub inactive_producer_timeout: Duration,
    /// `--tombstone-lifetime`.
    pub tombstone_lifetime: Duration,
}

/// What `/lookup` shows for a topic.
#[derive(Debug)]
pub struct Lookup {
    /// Channel names of the topic.
    pub channels: Vec<String>,
    /// Active, not tombstoned producers.
    pub producers: Vec<Arc<Peer>>,
}

/// One `/nodes` entry.
#[derive(Debug)]
pub struct Node {
    /// The peer.
    pub peer: Arc<Peer>,
    /// The topics it produces, each with whether its producer entry is tombstoned.
    pub topics: Vec<(String, bool)>,
}

/// One producer entry as `/debug` shows it.
#[derive(Debug)]
pub struct DebugProducer {
    /// The peer.
    pub peer: Arc<Peer>,
    /// When this entry was tombstoned, if ever (the flag stays after the lifetime ends, as in Go).
    pub tombstoned_at: Option<i64>,
}

/// The registration database.
#[derive(Debug, Default)]
pub struct RegistrationDb {
    map: Mutex<BTreeMap<Registration, Vec<Producer>>>,
}

/// A `(category, key, subkey)` triple.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Registration {
    category: &'static str,
    key: String,
    sub_key: String,
}

impl Registration {
    fn new(category: &'static str, key: &str, sub_key: &str) -> Self {
        Self {
            category,
            key: key.to_owned(),
            sub_key: sub_key.to_owned(),
        }
    }

    fn is_match(&self, category: &str, key: &str, sub_key: &str) -> bool {
        self.category == category
            && (key == WILDCARD || self.key == key)
            && (sub_key == WILDCARD || self.sub_key == sub_key)
    }

    /// Whether this registration names an ephemeral topic or channel.
    fn is_ephemeral(&self) -> bool {
        match self.category {
            TOPIC => nsq_protocol::is_ephemeral(&self.key),
            CHANNEL => nsq_protocol::is_ephemeral(&self.sub_key),
            _ => false,
        }
    }
}

/// A peer in one registration. Tombstones are per registration: tombstoning a producer of one topic leaves
/// its other topics alone.
#[derive(Debug)]
struct Producer {
    peer: Arc<Peer>,
    tombstoned_at: Option<i64>,
}

impl Producer {
    fn is_tombstoned(&self, now_ns: i64, lifetime: Duration) -> bool {
        self.tombstoned_at
            .is_some_and(|at| i128::from(now_ns) - i128::from(at) < nanos(lifetime))
    }
}

type Map = BTreeMap<Registration, Vec<Producer>>;

/// The registrations matching a query; an exact key is found by a range scan instead of a full walk.
fn find<'a>(
    map: &'a Map,
    category: &'static str,
    key: &str,
    sub_key: &str,
) -> Vec<(&'a Registration, &'a Vec<Producer>)> {
    let start = Registration::new(category, if key == WILDCARD { "" } else { key }, "");
    map.range(start..)
        .take_while(|(r, _)| r.category == category && (key == WILDCARD || r.key == key))
        .filter(|(r, _)| r.is_match(category, key, sub_key))
        .collect()
}

fn find_keys(map: &Map, category: &'static str, key: &str, sub_key: &str) -> Vec<Registration> {
    find(map, category, key, sub_key)
        .into_iter()
        .map(|(r, _)| r.clone())
        .collect()
}

/// Go's `AddProducer`: creates the registration if needed and adds the peer unless it is already there (an
/// existing entry keeps its tombstone). Returns whether it was added.
fn add_producer(map: &mut Map, reg: Registration, peer: &Arc<Peer>) -> bool {
    let producers = map.entry(reg).or_default();
    if producers.iter().any(|p| p.peer.key == peer.key) {
        return false;
    }
    producers.push(Producer {
        peer: Arc::clone(peer),
        tombstoned_at: None,
    });
    true
}

/// Go's `RemoveProducer`: returns whether the peer was there and how many producers are left.
fn remove_producer(map: &mut Map, reg: &Registration, peer_key: u64) -> (bool, usize) {
    let Some(producers) = map.get_mut(reg) else {
        return (false, 0);
    };
    let before = producers.len();
    producers.retain(|p| p.peer.key != peer_key);
    (producers.len() != before, producers.len())
}

/// Removes the peer from `reg`, and `reg` itself when it is ephemeral and has no producer left.
fn remove_producer_and_ephemeral(map: &mut Map, reg: &Registration, peer_key: u64) -> bool {
    let (removed, left) = remove_producer(map, reg, peer_key);
    if left == 0 && reg.is_ephemeral() {
        map.remove(reg);
    }
    removed
}

/// A duration in nanoseconds, saturating far beyond any real lifetime.
fn nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

impl RegistrationDb {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// IDENTIFY: the peer joins the `client` registration.
    pub fn add_client(&self, peer: &Arc<Peer>) -> bool {
        add_producer(
            &mut self.map.lock(),
            Registration::new(CLIENT, "", ""),
            peer,
        )
    }

    /// REGISTER: the peer produces `topic` and, when given, `channel` of it. Returns the registrations that
    /// are new for this peer, as `(category, key, subkey)` for the log.
    pub fn register(
        &self,
        peer: &Arc<Peer>,
        topic: &str,
        channel: Option<&str>,
    ) -> Vec<(&'static str, String, String)> {
        let mut map = self.map.lock();
        let mut added = Vec::new();
        if let Some(channel) = channel {
            if add_producer(&mut map, Registration::new(CHANNEL, topic, channel), peer) {
                added.push((CHANNEL, topic.to_owned(), channel.to_owned()));
            }
        }
        if add_producer(&mut map, Registration::new(TOPIC, topic, ""), peer) {
            added.push((TOPIC, topic.to_owned(), String::new()));
        }
        added
    }

    /// UNREGISTER. With a channel, the peer leaves that channel. Without one, it leaves the topic and every
    /// channel of it. An ephemeral topic or channel left without producers is deleted.
    pub fn unregister(&self, peer: &Peer, topic: &str, channel: Option<&str>) {
        let mut map = self.map.lock();
        match channel {
            Some(channel) => {
                let reg = Registration::new(CHANNEL, topic, channel);
                remove_producer_and_ephemeral(&mut map, &reg, peer.key);
            }
            None => {
                for reg in find_keys(&map, CHANNEL, topic, WILDCARD) {
                    // Go only removes the producer here, even from an ephemeral channel.
                    if remove_producer(&mut map, &reg, peer.key).0 {
                        tracing::warn!(
                            peer = %peer.id,
                            "unexpected UNREGISTER category:channel key:{topic} subkey:{}",
                            reg.sub_key
                        );
                    }
                }
                let reg = Registration::new(TOPIC, topic, "");
                remove_producer_and_ephemeral(&mut map, &reg, peer.key);
            }
        }
    }

    /// The peer's connection closed: it leaves every registration. Ephemeral topics and channels left without
    /// producers are deleted (Go keeps them; see the crate docs). Returns how many entries were removed.
    pub fn remove_peer(&self, peer_key: u64) -> usize {
        let mut map = self.map.lock();
        let regs: Vec<Registration> = map
            .iter()
            .filter(|(_, producers)| producers.iter().any(|p| p.peer.key == peer_key))
            .map(|(r, _)| r.clone())
            .collect();
        for reg in &regs {
            remove_producer_and_ephemeral(&mut map, reg, peer_key);
        }
        regs.len()
    }

    /// `/topics`: every topic registration's name.
    pub fn topics(&self) -> Vec<String> {
        let map = self.map.lock();
        find(&map, TOPIC, WILDCARD, "")
            .into_iter()
            .map(|(r, _)| r.key.clone())
            .collect()
    }

    /// `/channels`: the channel names registered under `topic`.
    pub fn channels(&self, topic: &str) -> Vec<String> {
        let map = self.map.lock();
        find(&map, CHANNEL, topic, WILDCARD)
            .into_iter()
            .map(|(r, _)| r.sub_key.clone())
            .collect()
    }

    /// `/lookup`: `None` when the topic has no registration, else its channels and its visible producers
    /// (each peer once).
    pub fn lookup(&self, topic: &str, now_ns: i64, vis: Visibility) -> Option<Lookup> {
        let map = self.map.lock();
        let topics = find(&map, TOPIC, topic, "");
        if topics.is_empty() {
            return None;
        }
        let channels = find(&map, CHANNEL, topic, WILDCARD)
            .into_iter()
            .map(|(r, _)| r.sub_key.clone())
            .collect();
        let mut producers: Vec<Arc<Peer>> = Vec::new();
        for (_, entries) in topics {
            for p in entries {
                let visible = p.peer.is_active(now_ns, vis.inactive_producer_timeout)
                    && !p.is_tombstoned(now_ns, vis.tombstone_lifetime);
                if visible && !producers.iter().any(|q| q.key == p.peer.key) {
                    producers.push(Arc::clone(&p.peer));
                }
            }
        }
        Some(Lookup {
            channels,
            producers,
        })
    }

    /// `/topic/create`: a topic registration, with no producers if it is new.
    pub fn create_topic(&self, topic: &str) {
        self.map
            .lock()
            .entry(Registration::new(TOPIC, topic, ""))
            .or_default();
    }

    /// `/channel/create`: the channel registration and its topic's.
    pub fn create_channel(&self, topic: &str, channel: &str) {
        let mut map = self.map.lock();
        map.entry(Registration::new(CHANNEL, topic, channel))
            .or_default();
        map.entry(Registration::new(TOPIC, topic, "")).or_default();
    }

    /// `/topic/delete`: removes the topic's channel registrations and the topic registration, producers and
    /// all. nsqd is not contacted (as in Go).
    pub fn delete_topic(&self, topic: &str) {
        let mut map = self.map.lock();
        for reg in find_keys(&map, CHANNEL, topic, WILDCARD) {
            map.remove(&reg);
        }
        for reg in find_keys(&map, TOPIC, topic, "") {
            map.remove(&reg);
        }
    }

    /// `/channel/delete`: removes the channel registration; `false` when there was none.
    pub fn delete_channel(&self, topic: &str, channel: &str) -> bool {
        let mut map = self.map.lock();
        let regs = find_keys(&map, CHANNEL, topic, channel);
        for reg in &regs {
            map.remove(reg);
        }
        !regs.is_empty()
    }

    /// `/topic/tombstone`: marks the producers of `topic` whose `broadcast_address:http_port` is `node`.
    pub fn tombstone(&self, topic: &str, node: &str, now_ns: i64) {
        let mut map = self.map.lock();
        let regs = find_keys(&map, TOPIC, topic, "");
        for reg in regs {
            for p in map.get_mut(&reg).into_iter().flatten() {
                if format!("{}:{}", p.peer.broadcast_address, p.peer.http_port) == node {
                    p.tombstoned_at = Some(now_ns);
                }
            }
        }
    }

    /// `/nodes`: the active peers (tombstoned ones included) with their topics and tombstone flags.
    pub fn nodes(&self, now_ns: i64, vis: Visibility) -> Vec<Node> {
        let map = self.map.lock();
        let peers: Vec<Arc<Peer>> = find(&map, CLIENT, "", "")
            .into_iter()
            .flat_map(|(_, entries)| entries)
            .filter(|p| p.peer.is_active(now_ns, vis.inactive_producer_timeout))
            .map(|p| Arc::clone(&p.peer))
            .collect();
        peers
            .into_iter()
            .map(|peer| {
                let topics = find(&map, TOPIC, WILDCARD, "")
                    .into_iter()
                    .filter_map(|(reg, entries)| {
                        let entry = entries.iter().find(|p| p.peer.key == peer.key)?;
                        let tombstoned = entry.is_tombstoned(now_ns, vis.tombstone_lifetime);
                        Some((reg.key.clone(), tombstoned))
                    })
                    .collect();
                Node { peer, topics }
            })
            .collect()
    }

    /// `/debug`: every registration that has producers, keyed `category:key:subkey`.
    pub fn debug(&self) -> BTreeMap<String, Vec<DebugProducer>> {
        let map = self.map.lock();
        let mut out = BTreeMap::new();
        for (reg, producers) in map.iter().filter(|(_, p)| !p.is_empty()) {
            let key = format!("{}:{}:{}", reg.category, reg.key, reg.sub_key);
            let list = producers
                .iter()
                .map(|p| DebugProducer {
                    peer: Arc::clone(&p.peer),
                    tombstoned_at: p.tombstoned_at,
                })
                .collect();
            out.insert(key, list);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;
    const VIS: Visibility = Visibility {
        inactive_producer_timeout: Duration::from_secs(300),
        tombstone_lifetime: Duration::from_secs(45),
    };

    fn peer(key: u64, http_port: i64, now: i64) -> Arc<Peer> {
        let fields = PeerFields {
            hostname: "h".into(),
            broadcast_address: "127.0.0.1".into(),
            tcp_port: 4150,
            http_port,
            version: "1.3.0".into(),
            ..PeerFields::default()
        };
        Arc::new(Peer::new(
            key,
            format!("127.0.0.1:{}", 50000 + key),
            fields,
            now,
        ))
    }

    fn producer_keys(db: &RegistrationDb, topic: &str, now: i64) -> Vec<u64> {
        db.lookup(topic, now, VIS)
            .map(|l| l.producers.iter().map(|p| p.key).collect())
            .unwrap_or_default()
    }

    #[test]
    fn register_adds_topic_and_channel_once() {
        let db = RegistrationDb::new();
        let a = peer(1, 4151, 0);
        assert!(db.add_client(&a));
        assert!(!db.add_client(&a));
        assert_eq!(db.register(&a, "t", Some("c")).len(), 2);
        assert!(db.register(&a, "t", Some("c")).is_empty());
        assert_eq!(db.topics(), ["t"]);
        assert_eq!(db.channels("t"), ["c"]);
        assert_eq!(producer_keys(&db, "t", 0), [1]);
        assert!(db.lookup("nosuch", 0, VIS).is_none());
    }

    #[test]
    fn ephemeral_registrations_go_when_their_last_producer_leaves() {
        let db = RegistrationDb::new();
        let (a, b) = (peer(1, 4151, 0), peer(2, 4152, 0));
        db.register(&a, "t", Some("e#ephemeral"));
        db.register(&b, "t", Some("e#ephemeral"));
        db.register(&a, "t", Some("durable"));
        db.unregister(&a, "t", Some("e#ephemeral"));
        assert_eq!(db.channels("t"), ["durable", "e#ephemeral"]);
        db.unregister(&b, "t", Some("e#ephemeral"));
        assert_eq!(db.channels("t"), ["durable"]);
        db.unregister(&a, "t", Some("durable"));
        // A durable channel stays registered without producers.
        assert_eq!(db.channels("t"), ["durable"]);

        db.register(&a, "x#ephemeral", None);
        db.register(&a, "y", None);
        db.unregister(&a, "x#ephemeral", None);
        db.unregister(&a, "y", None);
        assert_eq!(db.topics(), ["t", "y"]);
    }

    #[test]
    fn topic_unregister_leaves_every_channel_of_the_topic() {
        let db = RegistrationDb::new();
        let a = peer(1, 4151, 0);
        db.add_client(&a);
        db.register(&a, "t", Some("c1"));
        db.register(&a, "t", Some("c2"));
        db.register(&a, "u", Some("c1"));
        db.unregister(&a, "t", None);
        let debug = db.debug();
        let keys: Vec<&str> = debug.keys().map(String::as_str).collect();
        assert_eq!(keys, ["channel:u:c1", "client::", "topic:u:"]);
        // The registrations themselves stay, empty.
        assert_eq!(db.channels("t"), ["c1", "c2"]);
        assert_eq!(db.lookup("t", 0, VIS).map(|l| l.producers.len()), Some(0));
    }

    #[test]
    fn disconnect_removes_the_peer_everywhere_and_ephemeral_names() {
        let db = RegistrationDb::new();
        let (a, b) = (peer(1, 4151, 0), peer(2, 4152, 0));
        for p in [&a, &b] {
            db.add_client(p);
            db.register(p, "t", Some("c"));
        }
        db.register(&a, "e#ephemeral", Some("c#ephemeral"));
        assert_eq!(db.remove_peer(a.key), 5);
        assert_eq!(producer_keys(&db, "t", 0), [2]);
        assert_eq!(db.topics(), ["t"]);
        assert!(db.debug().values().flatten().all(|p| p.peer.key == 2));
        assert_eq!(db.nodes(0, VIS).len(), 1);
        assert_eq!(db.remove_peer(a.key), 0);
    }

    #[test]
    fn inactive_producers_are_hidden_until_they_ping() {
        let db = RegistrationDb::new();
        let a = peer(1, 4151, 0);
        db.add_client(&a);
        db.register(&a, "t", None);
        let limit = 300 * SEC;
        assert_eq!(producer_keys(&db, "t", limit), [1]);
        assert!(producer_keys(&db, "t", limit + 1).is_empty());
        assert!(db.nodes(limit + 1, VIS).is_empty());
        a.touch(limit);
        assert_eq!(producer_keys(&db, "t", limit + 1), [1]);
        assert_eq!(db.nodes(limit + 1, VIS).len(), 1);
    }

    #[test]
    fn tombstones_hide_one_topic_for_their_lifetime() {
        let db = RegistrationDb::new();
        let (a, b) = (peer(1, 4151, 0), peer(2, 4152, 0));
        for p in [&a, &b] {
            db.add_client(p);
            db.register(p, "t", None);
            db.register(p, "u", None);
        }
        db.tombstone("t", "127.0.0.1:4151", 10 * SEC);
        db.tombstone("t", "1.2.3.4:1", 10 * SEC);
        assert_eq!(producer_keys(&db, "t", 10 * SEC), [2]);
        assert_eq!(producer_keys(&db, "u", 10 * SEC), [1, 2]);
        let nodes = db.nodes(10 * SEC, VIS);
        assert_eq!(
            nodes[0].topics,
            [("t".to_owned(), true), ("u".to_owned(), false)]
        );
        assert_eq!(nodes[1].topics[0], ("t".to_owned(), false));
        // Still hidden just before the lifetime ends, visible again at its end.
        assert_eq!(producer_keys(&db, "t", 55 * SEC - 1), [2]);
        assert_eq!(producer_keys(&db, "t", 55 * SEC), [1, 2]);
        assert!(!db.nodes(55 * SEC, VIS)[0].topics[0].1);
        // /debug keeps the flag and the time.
        let debug = db.debug();
        assert_eq!(debug["topic:t:"][0].tombstoned_at, Some(10 * SEC));
        // A re-REGISTER keeps the tombstone; UNREGISTER then REGISTER clears it.
        db.register(&a, "t", None);
        assert_eq!(producer_keys(&db, "t", 20 * SEC), [2]);
        db.unregister(&a, "t", None);
        db.register(&a, "t", None);
        assert_eq!(producer_keys(&db, "t", 20 * SEC), [2, 1]);
    }

    #[test]
    fn http_create_and_delete() {
        let db = RegistrationDb::new();
        db.create_topic("a");
        db.create_channel("b", "c");
        assert_eq!(db.topics(), ["a", "b"]);
        assert_eq!(db.lookup("a", 0, VIS).map(|l| l.channels), Some(vec![]));
        assert!(db.delete_channel("b", "c"));
        assert!(!db.delete_channel("b", "c"));
        db.create_channel("b", "c");
        db.delete_topic("b");
        db.delete_topic("nosuch");
        assert_eq!(db.topics(), ["a"]);
        assert!(db.channels("b").is_empty());
        // Registrations without producers are not in /debug.
        assert!(db.debug().is_empty());
    }

    #[test]
    fn wildcards_match_like_go() {
        let db = RegistrationDb::new();
        db.create_channel("a", "c1");
        db.create_channel("b", "c2");
        assert_eq!(db.channels("*"), ["c1", "c2"]);
        db.delete_topic("*");
        assert!(db.topics().is_empty());
    }
}
