//! Waking channels when in-flight or deferred messages are due (what Go's `queueScanLoop` does by polling).
//!
//! Go samples 20 random channels every 100 ms, so an idle daemon still wakes ten times a second and a timeout
//! can fire up to a scan refresh (5 s) late on a new channel. Here each channel registers its earliest deadline
//! in one shared min-heap, and a single task sleeps until the earliest one. Idle channels cost nothing and
//! timeouts fire on time.
//!
//! A channel registers only when its earliest deadline moves earlier than the one it already registered, so the
//! heap holds about one entry per channel with pending deadlines. Superseded entries fire harmlessly.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::channel::Channel;
use crate::deferred::Timed;

#[derive(Debug, Default)]
struct Heap {
    entries: BinaryHeap<Reverse<Timed<Weak<Channel>>>>,
    seq: u64,
}

/// The shared deadline heap and its wake-up signal.
#[derive(Debug, Default)]
pub struct QueueScan {
    heap: Mutex<Heap>,
    wake: Notify,
}

impl QueueScan {
    /// A scanner with nothing scheduled.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Asks for `channel` to be processed at `when`.
    pub(crate) fn schedule(&self, when: Instant, channel: Weak<Channel>) {
        let mut heap = self.heap.lock();
        let earliest = heap.entries.peek().map(|e| e.0.when);
        heap.seq += 1;
        let seq = heap.seq;
        heap.entries.push(Reverse(Timed {
            when,
            seq,
            item: channel,
        }));
        drop(heap);
        if earliest.is_none_or(|e| when < e) {
            self.wake.notify_one();
        }
    }

    /// Number of pending wake-ups (for tests and stats).
    pub fn pending(&self) -> usize {
        self.heap.lock().entries.len()
    }

    /// Runs until `shutdown` resolves, processing each channel when its deadline comes.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            let next = {
                let mut heap = self.heap.lock();
                while heap.entries.peek().is_some_and(|e| e.0.when <= now) {
                    if let Some(Reverse(e)) = heap.entries.pop() {
                        due.push(e.item);
                    }
                }
                heap.entries.peek().map(|e| e.0.when)
            };
            if !due.is_empty() {
                for channel in due.iter().filter_map(Weak::upgrade) {
                    channel.process_queues(now);
                }
                continue;
            }
            let notified = self.wake.notified();
            match next {
                Some(when) => tokio::select! {
                    () = tokio::time::sleep_until(when) => {}
                    () = notified => {}
                    () = &mut shutdown => return,
                },
                None => tokio::select! {
                    () = notified => {}
                    () = &mut shutdown => return,
                },
            }
        }
    }
}
