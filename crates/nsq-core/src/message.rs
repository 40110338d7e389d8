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

/// Bytes before the body in the on-disk layout: timestamp (8), attempts (2), id (16).
pub const DISK_HEADER_LEN: usize = 26;

impl Message {
    /// Appends the message in the layout Go's `Message.WriteTo` gives a diskqueue record: timestamp
    /// (i64 BE ns), attempts (u16 BE), the 16-byte id, then the body. There is no defer field, as in Go.
    pub fn encode_disk(&self, out: &mut bytes::BytesMut) {
        out.reserve(DISK_HEADER_LEN + self.body.len());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.attempts.to_be_bytes());
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(&self.body);
    }

    /// Reads a diskqueue record back (Go `decodeMessage`); the body is a zero-copy slice of `record`.
    /// `None` when the record is shorter than the header.
    pub fn decode_disk(record: Bytes) -> Option<Message> {
        if record.len() < DISK_HEADER_LEN {
            return None;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&record[..8]);
        let attempts = u16::from_be_bytes([record[8], record[9]]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&record[10..DISK_HEADER_LEN]);
        Some(Message {
            id: MessageId(id),
            body: record.slice(DISK_HEADER_LEN..),
            timestamp: i64::from_be_bytes(ts),
            attempts,
            deferred_ms: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_layout_matches_go() {
        let msg = Message {
            id: MessageId(*b"0123456789abcdef"),
            body: Bytes::from_static(b"hello"),
            timestamp: 0x0102_0304_0506_0708,
            attempts: 0x0a0b,
            deferred_ms: 500,
        };
        let mut out = bytes::BytesMut::new();
        msg.encode_disk(&mut out);
        assert_eq!(
            &out[..],
            b"\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b0123456789abcdefhello"
        );
        let back = Message::decode_disk(out.freeze()).unwrap();
        assert_eq!(back.deferred_ms, 0, "the defer is not stored on disk");
        assert_eq!(
            back,
            Message {
                deferred_ms: 0,
                ..msg
            }
        );
        assert!(Message::decode_disk(Bytes::from_static(&[0; 25])).is_none());
    }
}
