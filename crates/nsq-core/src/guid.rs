//! Message ids, generated the way Go nsqd does (`nsqd/guid.go`): a 64-bit snowflake of
//! `(ts - twepoch) << 22 | node_id << 12 | sequence` where `ts` is `UnixNano >> 20` (units of about 1.05 ms),
//! rendered as 16 lowercase hex characters. Each topic has its own factory.
//!
//! One deliberate difference: when the 12-bit sequence runs out within one tick, Go sleeps a millisecond and
//! retries, capping a topic at about 3.9M ids/s. We borrow the next tick instead, so ids stay unique and
//! increasing, and publishing never sleeps while holding the topic lock.

use nsq_protocol::MessageId;

use crate::message::now_ns;

const NODE_ID_BITS: u64 = 10;
const SEQUENCE_BITS: u64 = 12;
const NODE_ID_SHIFT: u64 = SEQUENCE_BITS;
const TIMESTAMP_SHIFT: u64 = SEQUENCE_BITS + NODE_ID_BITS;
const SEQUENCE_MASK: u64 = (1 << SEQUENCE_BITS) - 1;
/// Go's twepoch constant, 2010-11-04 01:42:54.288 UTC in milliseconds.
const TWEPOCH: i64 = 1_288_834_974_288;

/// Per-topic id generator.
#[derive(Debug)]
pub struct GuidFactory {
    node_id: u64,
    last_ts: i64,
    sequence: u64,
}

impl GuidFactory {
    /// A factory for ids carrying `node_id` (0..1024).
    pub fn new(node_id: i64) -> Self {
        let node_id = u64::try_from(node_id).unwrap_or(0) & ((1 << NODE_ID_BITS) - 1);
        Self {
            node_id,
            last_ts: 0,
            sequence: 0,
        }
    }

    /// The next id as a raw 64-bit value.
    pub fn next_guid(&mut self) -> u64 {
        self.next_guid_at(now_ns())
    }

    /// The next id for a message published at `now_ns` (one clock read serves a whole MPUB batch).
    pub fn next_guid_at(&mut self, now_ns: i64) -> u64 {
        let ts = now_ns >> 20;
        if ts > self.last_ts {
            self.last_ts = ts;
            self.sequence = 0;
        } else {
            // Same tick (or the clock went back): continue the sequence, borrowing the next tick when it runs out.
            self.sequence = (self.sequence + 1) & SEQUENCE_MASK;
            if self.sequence == 0 {
                self.last_ts += 1;
            }
        }
        let ts_part = u64::try_from(self.last_ts - TWEPOCH).unwrap_or(0);
        (ts_part << TIMESTAMP_SHIFT) | (self.node_id << NODE_ID_SHIFT) | self.sequence
    }

    /// The next id in its wire form.
    pub fn next_id(&mut self) -> MessageId {
        MessageId::from_guid(self.next_guid())
    }

    /// The next id in its wire form, for a message published at `now_ns`.
    pub fn next_id_at(&mut self, now_ns: i64) -> MessageId {
        MessageId::from_guid(self.next_guid_at(now_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_increasing_and_carry_the_node_id() {
        let mut f = GuidFactory::new(1);
        let mut last = 0;
        for _ in 0..100_000 {
            let g = f.next_guid();
            assert!(g > last);
            assert_eq!((g >> NODE_ID_SHIFT) & 0x3ff, 1);
            last = g;
        }
    }

    #[test]
    fn hex_form_matches_go_layout() {
        let mut f = GuidFactory::new(1);
        let id = f.next_id();
        let s = id.as_str();
        assert_eq!(s.len(), 16);
        // Node id 1 with sequence 0 sets bit 12: the last four hex digits are "1000".
        assert_eq!(&s[12..], "1000");
    }
}
