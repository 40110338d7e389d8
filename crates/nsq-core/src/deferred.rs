//! Messages waiting for a REQ delay or a DPUB defer to pass (Go's `deferredMessages` and `deferredPQ`).
//!
//! Nothing removes a deferred message by id (FIN of a deferred id is "not in flight"), so a plain binary heap on
//! the due time is enough; a sequence number keeps equal due times in arrival order.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use tokio::time::Instant;

use crate::message::Message;

#[derive(Debug)]
struct Entry {
    due: Instant,
    seq: u64,
    msg: Message,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

#[derive(Debug, Default)]
pub(crate) struct DeferredQueue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl DeferredQueue {
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn push(&mut self, msg: Message, due: Instant) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            due,
            seq: self.seq,
            msg,
        }));
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.0.due)
    }

    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Message> {
        if self.heap.peek()?.0.due > now {
            return None;
        }
        self.heap.pop().map(|e| e.0.msg)
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Message> + '_ {
        self.heap.drain().map(|e| e.0.msg)
    }
}
