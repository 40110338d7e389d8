//! How a channel sees a subscribed client (Go's `Consumer` interface in `nsqd/channel.go`).
//!
//! The channel calls these while holding its own lock, so implementations must be quick, must not block and
//! must never call back into the channel. In nsqd they flip atomics and wake the client's message pump.

use std::fmt::Debug;

use crate::stats::ClientStats;

/// A client subscribed to a channel.
pub trait Consumer: Send + Sync + Debug {
    /// The client's connection id (unique per daemon).
    fn id(&self) -> u64;
    /// One of this client's in-flight messages timed out and went back to the queue.
    fn timed_out_message(&self);
    /// The channel was emptied: the client has nothing in flight any more.
    fn empty(&self);
    /// The channel was paused: stop taking messages.
    fn pause(&self);
    /// The channel was unpaused: look for messages again.
    fn unpause(&self);
    /// The channel is going away: close the connection.
    fn close(&self);
    /// A snapshot for `/stats`.
    fn stats(&self, topic_name: &str) -> ClientStats;
}
