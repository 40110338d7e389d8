//! Where messages go once a memory queue is full (Go's `BackendQueue`).
//!
//! This is the seam for persistence: a Go-format diskqueue will implement [`BackendQueue`] and replace
//! [`MemoryBackend`] for non-ephemeral topics and channels. Ephemeral ones use [`DummyBackend`], which drops
//! overflow exactly as Go's `newDummyBackendQueue` does.

use std::collections::VecDeque;
use std::fmt::Debug;

use crate::message::Message;

/// Overflow storage for a topic or channel. Calls happen under the owner's lock, so they must not block.
pub trait BackendQueue: Send + Debug {
    /// Stores one message at the tail.
    fn put(&mut self, msg: Message);
    /// Takes the oldest message, if any.
    fn pop(&mut self) -> Option<Message>;
    /// How many messages are stored.
    fn depth(&self) -> i64;
    /// Drops everything stored.
    fn empty(&mut self);
}

/// Keeps overflow in memory until the diskqueue exists.
///
/// Unbounded on purpose for now: its bound will be the disk. Until then the policy when "full" is the process's
/// memory, which is what `--mem-queue-size` tells an operator to expect from a backend that is not yet durable.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    queue: VecDeque<Message>,
}

impl BackendQueue for MemoryBackend {
    fn put(&mut self, msg: Message) {
        self.queue.push_back(msg);
    }
    fn pop(&mut self) -> Option<Message> {
        let msg = self.queue.pop_front();
        if self.queue.is_empty() && self.queue.capacity() > crate::channel::SHRINK_ABOVE {
            self.queue = VecDeque::new();
        }
        msg
    }
    fn depth(&self) -> i64 {
        i64::try_from(self.queue.len()).unwrap_or(i64::MAX)
    }
    fn empty(&mut self) {
        self.queue = VecDeque::new();
    }
}

/// The backend a topic or channel named with (`ephemeral`) or without the `#ephemeral` suffix starts with.
pub(crate) fn backend_for(ephemeral: bool) -> Box<dyn BackendQueue> {
    if ephemeral {
        Box::new(DummyBackend)
    } else {
        Box::new(MemoryBackend::default())
    }
}

/// Ephemeral overflow: dropped on the floor, as Go does.
#[derive(Debug, Default)]
pub struct DummyBackend;

impl BackendQueue for DummyBackend {
    fn put(&mut self, _msg: Message) {}
    fn pop(&mut self) -> Option<Message> {
        None
    }
    fn depth(&self) -> i64 {
        0
    }
    fn empty(&mut self) {}
}
