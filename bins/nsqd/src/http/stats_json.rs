//! `GET /stats?format=json`: the snapshot as Go's `encoding/json` writes nsqd's stats structs.
//!
//! The structs below exist only to fix the key order and the omitempty rules of Go's `TopicStats`,
//! `ChannelStats` and `ClientV2Stats` (see the golden `stats-json-schema.json`); they borrow from the
//! snapshot. Go writes float64 values that are whole numbers without a decimal point (`3539423744`, `0`),
//! which [`go_float`] reproduces.

use nsq_core::stats::{ChannelStats, ClientStats, E2eStats, TopicStats};
use serde::{Serialize, Serializer};

use super::stats::{pub_count, MemStats, Snapshot};

/// The whole `/stats` document.
#[derive(Debug, Serialize)]
struct StatsDoc<'a> {
    version: &'static str,
    health: &'static str,
    start_time: i64,
    topics: Option<Vec<TopicDoc<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<MemStats>,
    producers: Option<Vec<ClientDoc<'a>>>,
}

#[derive(Debug, Serialize)]
struct TopicDoc<'a> {
    topic_name: &'a str,
    channels: Vec<ChannelDoc<'a>>,
    depth: i64,
    backend_depth: i64,
    message_count: u64,
    message_bytes: u64,
    paused: bool,
    e2e_processing_latency: E2eDoc,
}

#[derive(Debug, Serialize)]
struct ChannelDoc<'a> {
    channel_name: &'a str,
    depth: i64,
    backend_depth: i64,
    in_flight_count: i64,
    deferred_count: i64,
    message_count: u64,
    // Go also has zone_local_msg_count and region_local_msg_count here (omitempty, topology experiment only);
    // the domain does not count them, so they are always absent.
    #[serde(skip_serializing_if = "is_zero")]
    global_msg_count: u64,
    requeue_count: u64,
    timeout_count: u64,
    client_count: usize,
    clients: Option<Vec<ClientDoc<'a>>>,
    paused: bool,
    e2e_processing_latency: E2eDoc,
}

/// Go's `ClientV2Stats`. Its per-client zone/region/global counters are omitempty and never incremented in Go,
/// so they are left out.
#[derive(Debug, Serialize)]
struct ClientDoc<'a> {
    client_id: &'a str,
    hostname: &'a str,
    version: &'a str,
    remote_address: &'a str,
    state: i32,
    ready_count: i64,
    in_flight_count: i64,
    message_count: u64,
    finish_count: u64,
    requeue_count: u64,
    connect_ts: i64,
    sample_rate: i32,
    deflate: bool,
    snappy: bool,
    user_agent: &'a str,
    #[serde(skip_serializing_if = "is_false")]
    authed: bool,
    #[serde(skip_serializing_if = "is_empty")]
    auth_identity: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    auth_identity_url: &'a str,
    topology_zone: &'a str,
    topology_region: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub_counts: Vec<PubCountDoc<'a>>,
    tls: bool,
    tls_cipher_suite: &'a str,
    tls_version: &'a str,
    tls_negotiated_protocol: &'a str,
    tls_negotiated_protocol_is_mutual: bool,
}

#[derive(Debug, Serialize)]
struct PubCountDoc<'a> {
    topic: &'a str,
    count: u64,
}

#[derive(Debug, Serialize)]
struct E2eDoc {
    count: u64,
    percentiles: Option<Vec<PercentileDoc>>,
}

#[derive(Debug, Serialize)]
struct PercentileDoc {
    #[serde(serialize_with = "go_float")]
    quantile: f64,
    #[serde(serialize_with = "go_float")]
    value: f64,
}

/// Renders the snapshot as Go's compact JSON.
pub(crate) fn render(snap: &Snapshot) -> Result<Vec<u8>, serde_json::Error> {
    let filter = snap.topic_filter.as_str();
    let doc = StatsDoc {
        version: crate::NSQ_VERSION,
        health: "OK",
        start_time: snap.start_time,
        topics: snap.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| topic_doc(t, filter, snap.include_clients))
                .collect()
        }),
        memory: snap.memory,
        producers: snap
            .producers
            .as_ref()
            .map(|ps| ps.iter().map(|c| client_doc(c, filter)).collect()),
    };
    nsq_protocol::to_go_json(&doc)
}

fn topic_doc<'a>(t: &'a TopicStats, filter: &str, include_clients: bool) -> TopicDoc<'a> {
    TopicDoc {
        topic_name: &t.topic_name,
        channels: t
            .channels
            .iter()
            .map(|c| channel_doc(c, filter, include_clients))
            .collect(),
        depth: t.depth,
        backend_depth: t.backend_depth,
        message_count: t.message_count,
        message_bytes: t.message_bytes,
        paused: t.paused,
        e2e_processing_latency: e2e_doc(&t.e2e_processing_latency),
    }
}

fn channel_doc<'a>(c: &'a ChannelStats, filter: &str, include_clients: bool) -> ChannelDoc<'a> {
    ChannelDoc {
        channel_name: &c.channel_name,
        depth: c.depth,
        backend_depth: c.backend_depth,
        in_flight_count: c.in_flight_count,
        deferred_count: c.deferred_count,
        message_count: c.message_count,
        global_msg_count: c.global_msg_count,
        requeue_count: c.requeue_count,
        timeout_count: c.timeout_count,
        client_count: c.client_count,
        clients: include_clients
            .then(|| c.clients.iter().map(|cl| client_doc(cl, filter)).collect()),
        paused: c.paused,
        e2e_processing_latency: e2e_doc(&c.e2e_processing_latency),
    }
}

fn client_doc<'a>(c: &'a ClientStats, filter: &str) -> ClientDoc<'a> {
    ClientDoc {
        client_id: &c.client_id,
        hostname: &c.hostname,
        version: if c.version.is_empty() {
            "V2"
        } else {
            &c.version
        },
        remote_address: &c.remote_address,
        state: c.state,
        ready_count: c.ready_count,
        in_flight_count: c.in_flight_count,
        message_count: c.message_count,
        finish_count: c.finish_count,
        requeue_count: c.requeue_count,
        connect_ts: c.connect_ts,
        sample_rate: c.sample_rate,
        deflate: c.deflate,
        snappy: c.snappy,
        user_agent: &c.user_agent,
        authed: c.authed,
        auth_identity: &c.auth_identity,
        auth_identity_url: &c.auth_identity_url,
        topology_zone: &c.topology_zone,
        topology_region: &c.topology_region,
        pub_counts: pub_count(c, filter)
            .map(|(topic, count)| PubCountDoc { topic, count })
            .into_iter()
            .collect(),
        tls: c.tls,
        tls_cipher_suite: &c.tls_cipher_suite,
        tls_version: &c.tls_version,
        // No ALPN is offered, and Go 1.19 reports "mutual" for every TLS client.
        tls_negotiated_protocol: "",
        tls_negotiated_protocol_is_mutual: c.tls,
    }
}

fn e2e_doc(e: &E2eStats) -> E2eDoc {
    E2eDoc {
        count: e.count,
        percentiles: e.percentiles.as_ref().map(|ps| {
            ps.iter()
                .map(|&(quantile, value)| PercentileDoc { quantile, value })
                .collect()
        }),
    }
}

/// Writes a float as Go's `encoding/json` does for the values seen here: whole numbers without `.0`.
fn go_float<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        // The range check makes the conversion exact.
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_empty(s: &&str) -> bool {
    s.is_empty()
}

fn is_false(v: &bool) -> bool {
    !*v
}
