//! The message as nsqd holds it (Go `nsqd/message.go`).
//!
//! A message is small and cheap to clone: the body is a shared `Bytes`, so fanning a message out to several
//! channels copies a few words per channel and never the body.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use nsq_protocol::MessageId;

/// One message in a topic or channel queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The 16-character hex id, unique per topic.
    pub id: MessageId,
    /// The payload, shared by every channel the message was fanned out to.
    pub body: Bytes,
    /// Publish time in nanoseconds since the Unix epoch; kept across redeliveries.
    pub timestamp: i64,
    /// Delivery attempts so far; incremented each time the message is handed to a consumer.
    pub attempts: u16,
    /// DPUB delay in milliseconds; only meaningful while the message waits at the topic before fan-out.
    /// Milliseconds in a `u32` (49 days) cover any `--max-req-timeout` and keep the struct small: a backlog
    /// holds millions of these.
    pub deferred_ms: u32,
}

impl Message {
    /// A fresh message stamped with the current wall clock time.
    pub fn new(id: MessageId, body: Bytes) -> Self {
        Self {
            id,
            body,
            timestamp: now_ns(),
            attempts: 0,
            deferred_ms: 0,
        }
    }

    /// Gives the body its own allocation before the message waits a long time (a REQ delay or a DPUB defer).
    ///
    /// Bodies normally stay slices of the connection read buffer they arrived in, so delivery never copies
    /// them. A buffer is freed only when every message sliced from it is gone, so one message deferred for an
    /// hour would keep its whole (64 KiB) read buffer alive; Go allocates each body separately and has no such
    /// effect. Copying on this rare path keeps memory proportional to what is actually stored.
    pub fn unpin_body(&mut self) {
        self.body = Bytes::copy_from_slice(&self.body);
    }

    /// The DPUB delay.
    pub fn deferred(&self) -> Duration {
        Duration::from_millis(u64::from(self.deferred_ms))
    }
}

/// Wall clock time in nanoseconds since the Unix epoch, as Go's `time.Now().UnixNano()`.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
