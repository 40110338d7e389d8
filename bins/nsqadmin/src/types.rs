//! The cluster data nsqadmin reports, with Go's JSON field names and order (Go's
//! `internal/clusterinfo/types.go`): producers as lookupd or nsqd describe them, and topic, channel and client
//! statistics read from nsqd's `/stats` and summed over nodes.
//!
//! Deserializing accepts what our (and Go's) nsqd and nsqlookupd send; serializing writes Go's layout,
//! including `null` for lists Go leaves nil.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

/// One topic of a producer, with whether lookupd has it tombstoned.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProducerTopic {
    /// The topic name.
    pub topic: String,
    /// Whether the producer is tombstoned for it.
    pub tombstoned: bool,
}

/// An nsqd, as nsqadmin lists it (Go's `clusterinfo.Producer`).
#[derive(Debug, Clone, Serialize)]
pub struct Producer {
    /// `<lookupd>/<remote address>` for every lookupd that knows the node.
    pub remote_addresses: Option<Vec<String>>,
    /// The node's address as the (last) lookupd saw its connection.
    pub remote_address: String,
    /// The node's hostname.
    pub hostname: String,
    /// The address it broadcasts.
    pub broadcast_address: String,
    /// Its TCP port.
    pub tcp_port: i64,
    /// Its HTTP port.
    pub http_port: i64,
    /// Its version string.
    pub version: String,
    /// Its topics, sorted by name; `null` when it has none.
    pub topics: Option<Vec<ProducerTopic>>,
    /// Whether an nsqd of a newer version is in the cluster.
    pub out_of_date: bool,
}

impl Producer {
    /// `broadcast_address:http_port`, the node's name in nsqadmin's URLs.
    pub fn http_address(&self) -> String {
        format!("{}:{}", self.broadcast_address, self.http_port)
    }

    /// `broadcast_address:tcp_port`, the key lookupd producers are merged by.
    pub fn tcp_address(&self) -> String {
        format!("{}:{}", self.broadcast_address, self.tcp_port)
    }
}

/// A producer as lookupd's `/nodes` and `/lookup` describe it.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct LookupdProducer {
    /// See [`Producer`].
    pub remote_address: String,
    /// See [`Producer`].
    pub hostname: String,
    /// See [`Producer`].
    pub broadcast_address: String,
    /// See [`Producer`].
    pub tcp_port: i64,
    /// See [`Producer`].
    pub http_port: i64,
    /// See [`Producer`].
    pub version: String,
    /// The topics (only in `/nodes`).
    #[serde(deserialize_with = "nullable")]
    pub topics: Vec<String>,
    /// Whether each topic is tombstoned, in the order of `topics`.
    #[serde(deserialize_with = "nullable")]
    pub tombstones: Vec<bool>,
}

impl From<LookupdProducer> for Producer {
    fn from(p: LookupdProducer) -> Self {
        let mut topics: Vec<ProducerTopic> = p
            .topics
            .iter()
            .enumerate()
            .map(|(i, t)| ProducerTopic {
                topic: t.clone(),
                tombstoned: p.tombstones.get(i).copied().unwrap_or(false),
            })
            .collect();
        topics.sort_by(|a, b| a.topic.cmp(&b.topic));
        Producer {
            remote_addresses: None,
            remote_address: p.remote_address,
            hostname: p.hostname,
            broadcast_address: p.broadcast_address,
            tcp_port: p.tcp_port,
            http_port: p.http_port,
            version: p.version,
            topics: (!topics.is_empty()).then_some(topics),
            out_of_date: false,
        }
    }
}

/// Reads a JSON `null` as the type's default (Go decodes `null` into an empty slice without complaint).
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// A version as `(major, minor, patch)`, `0.0.0` when it does not parse (Go's semver fallback).
pub fn version_triple(version: &str) -> (u64, u64, u64) {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<Option<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [Some(a), Some(b), Some(c)] => (*a, *b, *c),
        _ => (0, 0, 0),
    }
}

/// End-to-end latency percentiles of a topic or channel, summed over nodes (Go's
/// `quantile.E2eProcessingLatencyAggregate`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct E2eLatency {
    /// Messages measured.
    pub count: i64,
    /// One map per quantile (`average`, `count`, `max`, `min`, `quantile`, `value`); `null` when nsqd measures none.
    #[serde(serialize_with = "go_float_maps")]
    pub percentiles: Option<Vec<BTreeMap<String, f64>>>,
    /// The topic (set on aggregates).
    pub topic: String,
    /// The channel (set on channel aggregates).
    pub channel: String,
    /// The node, `*` for aggregates.
    pub host: String,
}

impl E2eLatency {
    /// Fills in the per-percentile fields Go derives when it reads nsqd's answer: `min`, `max` and `average`
    /// are the value, `count` the node's count.
    fn normalize(&mut self) {
        let count = self.count as f64;
        for p in self.percentiles.iter_mut().flatten() {
            let value = p.get("value").copied().unwrap_or(0.0);
            p.insert("min".to_owned(), value);
            p.insert("max".to_owned(), value);
            p.insert("average".to_owned(), value);
            p.insert("count".to_owned(), count);
        }
    }

    /// Adds another node's percentiles (Go's `E2eProcessingLatencyAggregate.Add`).
    fn add(&mut self, other: &E2eLatency) {
        self.host = "*".to_owned();
        self.count += other.count;
        for value in other.percentiles.iter().flatten() {
            let q = value.get("quantile").copied().unwrap_or(0.0);
            let list = self.percentiles.get_or_insert_with(Vec::new);
            let get = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
            let i = match list.iter().position(|m| get(m, "quantile") == q) {
                Some(i) => i,
                None => {
                    let mut fresh = BTreeMap::new();
                    fresh.insert("quantile".to_owned(), q);
                    fresh.insert("min".to_owned(), get(value, "min"));
                    list.push(fresh);
                    list.len() - 1
                }
            };
            let entry = &mut list[i];
            let max = get(value, "max").max(get(entry, "max"));
            let min = get(value, "min").min(get(entry, "min"));
            let count = get(entry, "count") + get(value, "count");
            entry.insert("max".to_owned(), max);
            entry.insert("min".to_owned(), min);
            entry.insert("count".to_owned(), count);
            let average = if count == 0.0 {
                0.0
            } else {
                let avg = get(entry, "average");
                avg + (get(value, "average") - avg) * get(value, "count") / count
            };
            entry.insert("average".to_owned(), average);
        }
        if let Some(list) = &mut self.percentiles {
            list.sort_by(|a, b| {
                let qa = a.get("quantile").copied().unwrap_or(0.0);
                let qb = b.get("quantile").copied().unwrap_or(0.0);
                qb.total_cmp(&qa)
            });
        }
    }
}

/// Writes float maps as Go does: integral values without a fraction.
fn go_float_maps<S: Serializer>(
    value: &Option<Vec<BTreeMap<String, f64>>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let Some(list) = value else {
        return s.serialize_none();
    };
    let converted: Vec<BTreeMap<&str, serde_json::Value>> = list
        .iter()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let json = if v.fract() == 0.0 && v.abs() < 1e15 {
                        serde_json::Value::from(*v as i64)
                    } else {
                        serde_json::Value::from(*v)
                    };
                    (k.as_str(), json)
                })
                .collect()
        })
        .collect();
    converted.serialize(s)
}

/// A client connected to a channel (Go's `clusterinfo.ClientStats`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ClientStats {
    /// The nsqd it is connected to.
    pub node: String,
    /// Its address.
    pub remote_address: String,
    /// Its protocol version.
    pub version: String,
    /// Its client id.
    pub client_id: String,
    /// Its hostname.
    pub hostname: String,
    /// Its user agent.
    pub user_agent: String,
    /// When it connected (unix seconds).
    pub connect_ts: i64,
    /// How long it has been connected, in nanoseconds.
    pub connected: i64,
    /// Messages in flight.
    pub in_flight_count: i64,
    /// Its RDY count.
    pub ready_count: i64,
    /// Messages finished.
    pub finish_count: i64,
    /// Messages requeued.
    pub requeue_count: i64,
    /// Messages delivered.
    pub message_count: i64,
    /// Its sample rate.
    pub sample_rate: i32,
    /// Whether it uses deflate.
    pub deflate: bool,
    /// Whether it uses snappy.
    pub snappy: bool,
    /// Whether it authenticated.
    pub authed: bool,
    /// Its auth identity.
    pub auth_identity: String,
    /// Its auth identity URL.
    pub auth_identity_url: String,
    /// Whether it uses TLS.
    pub tls: bool,
    /// The TLS cipher suite.
    pub tls_cipher_suite: String,
    /// The TLS version.
    pub tls_version: String,
    /// The negotiated protocol.
    pub tls_negotiated_protocol: String,
    /// Whether the protocol negotiation was mutual.
    pub tls_negotiated_protocol_is_mutual: bool,
}

/// A channel on one node, or summed over nodes (Go's `clusterinfo.ChannelStats`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ChannelStats {
    /// The node's HTTP address, `*` for a sum.
    pub node: String,
    /// The node's hostname (empty for a sum).
    pub hostname: String,
    /// The topic.
    pub topic_name: String,
    /// The channel.
    pub channel_name: String,
    /// Messages queued.
    pub depth: i64,
    /// Messages queued in memory.
    pub memory_depth: i64,
    /// Messages queued on disk.
    pub backend_depth: i64,
    /// Messages in flight.
    pub in_flight_count: i64,
    /// Messages deferred.
    pub deferred_count: i64,
    /// Messages requeued.
    pub requeue_count: i64,
    /// Messages timed out.
    pub timeout_count: i64,
    /// Messages delivered.
    pub message_count: i64,
    /// Clients connected (not in Go's JSON).
    #[serde(skip_serializing)]
    pub client_count: i64,
    /// The per-node rows of a sum; `null` on a node's own row.
    pub nodes: Option<Vec<ChannelStats>>,
    /// The clients.
    pub clients: Option<Vec<ClientStats>>,
    /// Whether the channel is paused (on any node, for a sum).
    pub paused: bool,
    /// Latency percentiles.
    pub e2e_processing_latency: Option<E2eLatency>,
}

impl ChannelStats {
    /// An empty sum for `topic`/`channel`, ready for [`ChannelStats::add`].
    pub fn sum_of(topic: &str, channel: &str) -> Self {
        ChannelStats {
            topic_name: topic.to_owned(),
            channel_name: channel.to_owned(),
            ..ChannelStats::default()
        }
    }

    /// Adds one node's row (Go's `ChannelStats.Add`).
    pub fn add(&mut self, a: ChannelStats) {
        self.node = "*".to_owned();
        self.depth += a.depth;
        self.memory_depth += a.memory_depth;
        self.backend_depth += a.backend_depth;
        self.in_flight_count += a.in_flight_count;
        self.deferred_count += a.deferred_count;
        self.requeue_count += a.requeue_count;
        self.timeout_count += a.timeout_count;
        self.message_count += a.message_count;
        self.client_count += a.client_count;
        self.paused |= a.paused;
        let e2e = self
            .e2e_processing_latency
            .get_or_insert_with(|| E2eLatency {
                topic: self.topic_name.clone(),
                channel: self.channel_name.clone(),
                host: "*".to_owned(),
                ..E2eLatency::default()
            });
        if let Some(other) = &a.e2e_processing_latency {
            e2e.add(other);
        }
        if let Some(clients) = &a.clients {
            let all = self.clients.get_or_insert_with(Vec::new);
            all.extend(clients.iter().cloned());
            all.sort_by(|x, y| x.hostname.cmp(&y.hostname));
        }
        let nodes = self.nodes.get_or_insert_with(Vec::new);
        nodes.push(a);
        nodes.sort_by(|x, y| (&x.hostname, &x.node).cmp(&(&y.hostname, &y.node)));
    }
}

/// A topic on one node, or summed over nodes (Go's `clusterinfo.TopicStats`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TopicStats {
    /// The node's HTTP address, `*` for a sum.
    pub node: String,
    /// The node's hostname (empty for a sum).
    pub hostname: String,
    /// The topic.
    pub topic_name: String,
    /// Messages queued.
    pub depth: i64,
    /// Messages queued in memory.
    pub memory_depth: i64,
    /// Messages queued on disk.
    pub backend_depth: i64,
    /// Messages published.
    pub message_count: i64,
    /// The per-node rows of a sum; `null` on a node's own row.
    pub nodes: Option<Vec<TopicStats>>,
    /// The channels.
    pub channels: Option<Vec<ChannelStats>>,
    /// Whether the topic is paused (on any node, for a sum).
    pub paused: bool,
    /// Latency percentiles.
    pub e2e_processing_latency: Option<E2eLatency>,
}

impl TopicStats {
    /// Adds one node's row (Go's `TopicStats.Add`; channels of the same name are summed, see the crate docs).
    pub fn add(&mut self, a: TopicStats) {
        self.node = "*".to_owned();
        self.depth += a.depth;
        self.memory_depth += a.memory_depth;
        self.backend_depth += a.backend_depth;
        self.message_count += a.message_count;
        self.paused |= a.paused;
        for channel in a.channels.iter().flatten() {
            let list = self.channels.get_or_insert_with(Vec::new);
            let i = match list
                .iter()
                .position(|c| c.channel_name == channel.channel_name)
            {
                Some(i) => i,
                None => {
                    list.push(ChannelStats::sum_of(
                        &channel.topic_name,
                        &channel.channel_name,
                    ));
                    list.len() - 1
                }
            };
            list[i].add(channel.clone());
        }
        let e2e = self
            .e2e_processing_latency
            .get_or_insert_with(|| E2eLatency {
                topic: self.topic_name.clone(),
                host: "*".to_owned(),
                ..E2eLatency::default()
            });
        if let Some(other) = &a.e2e_processing_latency {
            e2e.add(other);
        }
        let nodes = self.nodes.get_or_insert_with(Vec::new);
        nodes.push(a);
        nodes.sort_by(|x, y| (&x.hostname, &x.node).cmp(&(&y.hostname, &y.node)));
    }

    /// Marks a row read from nsqd at `node` (Go's post-processing in `GetNSQDStats`).
    pub fn tag(&mut self, node: &str, hostname: &str, now_secs: i64) {
        self.node = node.to_owned();
        self.hostname = hostname.to_owned();
        self.memory_depth = self.depth - self.backend_depth;
        if let Some(e2e) = &mut self.e2e_processing_latency {
            e2e.normalize();
        }
        for c in self.channels.iter_mut().flatten() {
            c.node = node.to_owned();
            c.hostname = hostname.to_owned();
            c.topic_name = self.topic_name.clone();
            c.memory_depth = c.depth - c.backend_depth;
            c.client_count = c.clients.as_ref().map_or(0, |l| l.len() as i64);
            if let Some(e2e) = &mut c.e2e_processing_latency {
                e2e.normalize();
            }
            for client in c.clients.iter_mut().flatten() {
                client.node = node.to_owned();
                client.connected = (now_secs - client.connect_ts).saturating_mul(1_000_000_000);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_topic(node: &str, depth: i64, channel_depth: i64) -> TopicStats {
        let mut t: TopicStats = serde_json::from_str(&format!(
            r#"{{"topic_name":"t","depth":{depth},"backend_depth":1,"message_count":{depth},"paused":false,
            "channels":[{{"channel_name":"c","depth":{channel_depth},"backend_depth":0,"clients":[],"paused":true,
            "e2e_processing_latency":{{"count":0,"percentiles":null}}}}],
            "e2e_processing_latency":{{"count":0,"percentiles":null}}}}"#
        ))
        .unwrap();
        t.tag(node, "host", 0);
        t
    }

    #[test]
    fn sums_keep_per_node_rows_in_gos_layout() {
        let mut sum = TopicStats {
            topic_name: "t".to_owned(),
            ..TopicStats::default()
        };
        sum.add(node_topic("b:2", 3, 2));
        sum.add(node_topic("a:1", 4, 5));
        assert_eq!(
            (sum.node.as_str(), sum.depth, sum.memory_depth),
            ("*", 7, 5)
        );
        let nodes = sum.nodes.as_ref().unwrap();
        assert_eq!(nodes[0].node, "a:1");
        let channels = sum.channels.as_ref().unwrap();
        assert_eq!(channels.len(), 1);
        assert_eq!((channels[0].depth, channels[0].paused), (7, true));
        let json = serde_json::to_value(&sum).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "node",
                "hostname",
                "topic_name",
                "depth",
                "memory_depth",
                "backend_depth",
                "message_count",
                "nodes",
                "channels",
                "paused",
                "e2e_processing_latency"
            ]
        );
        assert_eq!(json["nodes"][0]["nodes"], serde_json::Value::Null);
        assert_eq!(
            json["e2e_processing_latency"],
            serde_json::json!({"count":0,"percentiles":null,"topic":"t","channel":"","host":"*"})
        );
    }

    #[test]
    fn versions_compare_as_semver_cores() {
        assert_eq!(version_triple("1.3.0"), (1, 3, 0));
        assert_eq!(version_triple("1.3.0-alpha"), (1, 3, 0));
        assert_eq!(version_triple("junk"), (0, 0, 0));
    }
}
