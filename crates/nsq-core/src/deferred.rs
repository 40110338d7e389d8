//! Messages waiting for a REQ delay or a DPUB defer to pass (Go's `deferredMessages` and `deferredPQ`).
//!
//! Nothing removes a deferred message by id (FIN of a deferred id is "not in flight"), so a plain binary heap on
//! the due time is enough; a sequence number keeps equal due times in arrival order.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use tokio::time::Instant;

use crate::message::Message;

/// A heap entry ordered by due time, ties broken by insertion order. Wrapped in `Reverse` it makes a min-heap;
/// the deferred queue and the queue scanner both use it.
#[derive(Debug)]
pub(crate) struct Timed<T> {
    pub(crate) when: Instant,
    pub(crate) seq: u64,
    pub(crate) item: T,
}

impl<T> PartialEq for Timed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Timed<T> {}
impl<T> PartialOrd for Timed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Timed<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.when, self.seq).cmp(&(other.when, other.seq))
    }
}

#[derive(Debug, Default)]
pub(crate) struct DeferredQueue {
    heap: BinaryHeap<Reverse<Timed<Message>>>,
    seq: u64,
}

impl DeferredQueue {
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn push(&mut self, msg: Message, due: Instant) {
        self.seq += 1;
        self.heap.push(Reverse(Timed {
            when: due,
            seq: self.seq,
            item: msg,
        }));
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.0.when)
    }

    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Message> {
        if self.heap.peek()?.0.when > now {
            return None;
        }
        self.heap.pop().map(|e| e.0.item)
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Message> + '_ {
        self.heap.drain().map(|e| e.0.item)
    }

    /// Like `drain`, keeping each message's due time and sequence.
    pub(crate) fn drain_timed(&mut self) -> impl Iterator<Item = Timed<Message>> + '_ {
        self.heap.drain().map(|e| e.0)
    }
}
