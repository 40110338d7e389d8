//! The slice of nsqd's options that the domain needs.
//!
//! The daemon owns the full option set; the domain only sees these fields, so topics and channels never hold a
//! pointer back to the daemon (Go's `nsqd *NSQD` back-pointer is what this replaces).

use std::time::Duration;

/// Queue and delivery settings shared by every topic and channel.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Node id baked into every message id (Go `--node-id`).
    pub node_id: i64,
    /// Messages held in memory per topic and per channel before overflow goes to the backend.
    pub mem_queue_size: i64,
    /// Consumers allowed per channel; 0 means unlimited.
    pub max_channel_consumers: i64,
    /// Upper bound on how far TOUCH may push an in-flight deadline past delivery.
    pub max_msg_timeout: Duration,
    /// Quantiles reported for end-to-end processing latency, sorted descending; empty disables tracking.
    pub e2e_percentiles: Vec<f64>,
    /// How far back the e2e latency quantiles look.
    pub e2e_window: Duration,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            node_id: 0,
            mem_queue_size: 10_000,
            max_channel_consumers: 0,
            max_msg_timeout: Duration::from_secs(15 * 60),
            e2e_percentiles: Vec::new(),
            e2e_window: Duration::from_secs(10 * 60),
        }
    }
}
