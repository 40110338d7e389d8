//! Plain snapshots of topic, channel and client counters, taken for `/stats` (Go's `nsqd/stats.go`).
//!
//! They carry numbers only; the daemon renders them as Go's JSON or text.

/// End-to-end processing latency summary. `percentiles` is `None` where Go reports `null`
/// (no quantiles configured, or a topic without channels).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct E2eStats {
    /// Latencies recorded in the window.
    pub count: u64,
    /// `(quantile, value in ns)` in the configured (descending) order.
    pub percentiles: Option<Vec<(f64, f64)>>,
}

/// One topic.
#[derive(Debug, Clone, Default)]
pub struct TopicStats {
    /// Topic name.
    pub topic_name: String,
    /// Channels, sorted by name.
    pub channels: Vec<ChannelStats>,
    /// Messages waiting at the topic (memory plus backend).
    pub depth: i64,
    /// Messages waiting in the topic's backend.
    pub backend_depth: i64,
    /// Messages published since start.
    pub message_count: u64,
    /// Bytes published since start.
    pub message_bytes: u64,
    /// Whether fan-out is paused.
    pub paused: bool,
    /// Latency merged over the channels.
    pub e2e_processing_latency: E2eStats,
}

/// One channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelStats {
    /// Channel name.
    pub channel_name: String,
    /// Messages queued (memory plus backend).
    pub depth: i64,
    /// Messages queued in the backend.
    pub backend_depth: i64,
    /// Messages delivered and not yet finished.
    pub in_flight_count: i64,
    /// Messages waiting for a REQ delay or DPUB defer.
    pub deferred_count: i64,
    /// Messages put into the channel, deferred ones included.
    pub message_count: u64,
    /// REQ count.
    pub requeue_count: u64,
    /// In-flight timeouts.
    pub timeout_count: u64,
    /// Subscribed clients.
    pub client_count: usize,
    /// Per-client snapshots (empty unless requested).
    pub clients: Vec<ClientStats>,
    /// Whether delivery is paused.
    pub paused: bool,
    /// Messages taken from the memory queue (Go's `global_msg_count`).
    pub global_msg_count: u64,
    /// Latency of finished messages.
    pub e2e_processing_latency: E2eStats,
}

/// One connected TCP client (a consumer, a producer or both).
#[derive(Debug, Clone, Default)]
pub struct ClientStats {
    /// IDENTIFY `client_id` (remote IP until IDENTIFY).
    pub client_id: String,
    /// IDENTIFY `hostname` (remote IP until IDENTIFY).
    pub hostname: String,
    /// Protocol version, always "V2".
    pub version: String,
    /// Peer `ip:port`.
    pub remote_address: String,
    /// Go's connection state number (0 init, 2 connected, 3 subscribed, 4 closing).
    pub state: i32,
    /// Current RDY.
    pub ready_count: i64,
    /// Messages in flight to this client.
    pub in_flight_count: i64,
    /// Messages delivered.
    pub message_count: u64,
    /// FIN count.
    pub finish_count: u64,
    /// REQ count.
    pub requeue_count: u64,
    /// Connect time, Unix seconds.
    pub connect_ts: i64,
    /// IDENTIFY `sample_rate`.
    pub sample_rate: i32,
    /// Deflate negotiated.
    pub deflate: bool,
    /// Snappy negotiated.
    pub snappy: bool,
    /// IDENTIFY `user_agent`.
    pub user_agent: String,
    /// Messages taken from the memory queue for this client.
    pub global_msg_count: u64,
    /// Publish counts per topic (Go reports at most one entry).
    pub pub_counts: Vec<(String, u64)>,
    /// IDENTIFY topology zone.
    pub topology_zone: String,
    /// IDENTIFY topology region.
    pub topology_region: String,
    /// TLS negotiated.
    pub tls: bool,
    /// The TLS version's name as Go prints it (`TLS1.3`), empty without TLS.
    pub tls_version: String,
    /// The TLS cipher suite's name as Go prints it, empty without TLS.
    pub tls_cipher_suite: String,
    /// AUTH done.
    pub authed: bool,
    /// Identity from the auth server.
    pub auth_identity: String,
    /// Identity URL from the auth server.
    pub auth_identity_url: String,
}
