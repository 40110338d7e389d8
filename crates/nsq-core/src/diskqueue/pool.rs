//! The I/O threads shared by every diskqueue of a daemon, and the global bound on unwritten records.
//!
//! Queues with work are put on one run queue; a few OS threads take them off and run one round of file work
//! each (see [`queue`](super::queue)). The same threads keep the timers for `--sync-timeout` and write
//! retries, by waiting on the run queue's condition variable with a timeout.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use super::queue::QueueInner;

/// The threads that do every queue's file work. See the [module docs](super) for the threading model.
pub struct IoPool {
    shared: Arc<PoolShared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for IoPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoPool")
            .field("threads", &self.threads.lock().len())
            .field("pending_bytes", &self.pending_bytes())
            .field("max_pending_bytes", &self.shared.max_pending_bytes)
            .finish()
    }
}

struct PoolShared {
    run: Mutex<RunQueue>,
    /// Signalled when a queue is put on the run queue, when an earlier timer is added, and at shutdown.
    cond: Condvar,
    pending_bytes: AtomicUsize,
    max_pending_bytes: usize,
    /// Wakes publishers waiting in [`IoPool::writable`].
    writable: Notify,
    /// Callbacks of non-async movers of records (a topic handing its disk backlog to its channels) to run
    /// once pending bytes drop below the limit.
    on_writable: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

#[derive(Default)]
struct RunQueue {
    /// Queues with work, each at most once (their `scheduled` flag says so).
    ready: VecDeque<Arc<QueueInner>>,
    timers: BinaryHeap<Timer>,
    /// `on_writable` callbacks are to be run (by the next free thread).
    callbacks_due: bool,
    shutdown: bool,
}

/// A queue to wake at `at`: for its sync deadline or a write retry. Stale entries are harmless: the queue
/// checks what is due when it runs.
struct Timer {
    at: Instant,
    queue: Weak<QueueInner>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    /// Reversed, so the `BinaryHeap` (a max-heap) yields the earliest deadline first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

impl IoPool {
    /// Starts `threads` I/O threads (at least one). `max_pending_bytes` bounds the bytes accepted by `put`
    /// across all queues and not yet written; above it [`IoPool::writable`] makes publishers wait.
    pub fn new(threads: usize, max_pending_bytes: usize) -> Arc<IoPool> {
        let shared = Arc::new(PoolShared {
            run: Mutex::new(RunQueue::default()),
            cond: Condvar::new(),
            pending_bytes: AtomicUsize::new(0),
            max_pending_bytes: max_pending_bytes.max(1),
            writable: Notify::new(),
            on_writable: Mutex::new(Vec::new()),
        });
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("diskqueue-io-{i}"))
                .spawn(move || io_thread(&shared));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => tracing::error!("failed to start diskqueue I/O thread {i} - {e}"),
            }
        }
        Arc::new(IoPool {
            shared,
            threads: Mutex::new(handles),
        })
    }

    /// Bytes accepted by put() across all queues but not yet written to a file.
    pub fn pending_bytes(&self) -> usize {
        self.shared.pending_bytes.load(AtomicOrdering::Acquire)
    }

    /// Completes at once when [`IoPool::pending_bytes`] is below the limit, otherwise when it drops below it.
    /// This is the policy for a full write buffer: publishers wait (nsqd awaits this after each PUB/MPUB).
    pub async fn writable(&self) {
        loop {
            let notified = self.shared.writable.notified();
            tokio::pin!(notified);
            // Registered before the check, so a drop below the limit in between is not missed.
            notified.as_mut().enable();
            if self.pending_bytes() < self.shared.max_pending_bytes {
                return;
            }
            notified.await;
        }
    }

    /// Whether pending bytes are at or above the limit (publishers would wait in [`IoPool::writable`]).
    pub fn is_full(&self) -> bool {
        self.pending_bytes() >= self.shared.max_pending_bytes
    }

    /// Runs `f` (on a pool thread, or right here) once pending bytes are below the limit: the way a caller
    /// that cannot await (one moving records from queue to queue under a lock) waits for room.
    pub fn call_when_writable(&self, f: Box<dyn FnOnce() + Send>) {
        self.shared.on_writable.lock().push(f);
        // Checked after registering, so a drop below the limit in between is not missed. The callbacks run on
        // a pool thread, never inline: the caller may hold the very locks a callback takes.
        if !self.is_full() {
            self.writable_callbacks_due();
        }
    }

    fn writable_callbacks_due(&self) {
        self.shared.run.lock().callbacks_due = true;
        self.shared.cond.notify_one();
    }

    /// Stops the threads once the run queue is empty and waits for them (except the calling thread, should
    /// it be one of them). Queues should be closed first: records of open queues that are still pending are
    /// not written afterwards.
    pub fn shutdown(&self) {
        self.shared.run.lock().shutdown = true;
        self.shared.cond.notify_all();
        let me = std::thread::current().id();
        let handles: Vec<_> = std::mem::take(&mut *self.threads.lock());
        for h in handles {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }

    /// Puts a queue on the run queue. The caller has set its `scheduled` flag.
    pub(crate) fn enqueue(&self, queue: Arc<QueueInner>) {
        self.shared.run.lock().ready.push_back(queue);
        self.shared.cond.notify_one();
    }

    /// Wakes `queue` at `at`.
    pub(crate) fn add_timer(&self, at: Instant, queue: Weak<QueueInner>) {
        let mut run = self.shared.run.lock();
        let earlier = run.timers.peek().is_none_or(|t| at < t.at);
        run.timers.push(Timer { at, queue });
        drop(run);
        if earlier {
            self.shared.cond.notify_one();
        }
    }

    pub(crate) fn add_pending(&self, bytes: usize) {
        if bytes > 0 {
            self.shared
                .pending_bytes
                .fetch_add(bytes, AtomicOrdering::AcqRel);
        }
    }

    /// Records that `bytes` of pending records were written (or dropped), waking publishers when that takes
    /// the total below the limit.
    pub(crate) fn sub_pending(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let before = self
            .shared
            .pending_bytes
            .fetch_sub(bytes, AtomicOrdering::AcqRel);
        let max = self.shared.max_pending_bytes;
        if before >= max && before - bytes < max {
            self.shared.writable.notify_waiters();
            if !self.shared.on_writable.lock().is_empty() {
                self.writable_callbacks_due();
            }
        }
    }
}

impl Drop for IoPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One I/O thread: runs queue rounds and fires due timers until shutdown.
fn io_thread(shared: &PoolShared) {
    let mut fired: Vec<Weak<QueueInner>> = Vec::new();
    loop {
        let job = {
            let mut run = shared.run.lock();
            loop {
                if run.callbacks_due {
                    run.callbacks_due = false;
                    drop(run);
                    let callbacks = std::mem::take(&mut *shared.on_writable.lock());
                    for f in callbacks {
                        if catch_unwind(AssertUnwindSafe(f)).is_err() {
                            tracing::error!("diskqueue writable callback panicked");
                        }
                    }
                    run = shared.run.lock();
                    continue;
                }
                if let Some(q) = run.ready.pop_front() {
                    break Some(q);
                }
                let now = Instant::now();
                while run.timers.peek().is_some_and(|t| t.at <= now) {
                    if let Some(t) = run.timers.pop() {
                        fired.push(t.queue);
                    }
                }
                if !fired.is_empty() {
                    break None;
                }
                if run.shutdown {
                    return;
                }
                match run.timers.peek().map(|t| t.at) {
                    Some(at) => {
                        shared.cond.wait_until(&mut run, at);
                    }
                    None => shared.cond.wait(&mut run),
                }
            }
        };
        match job {
            Some(queue) => {
                // A bug in one queue's round must not take the daemon down: that queue stops (its close
                // reports the failure) and the thread goes on with the others.
                if catch_unwind(AssertUnwindSafe(|| queue.run_round())).is_err() {
                    tracing::error!(queue = %queue.name, "diskqueue round panicked; queue stopped");
                    queue.poisoned();
                }
            }
            None => {
                for w in fired.drain(..) {
                    if let Some(q) = w.upgrade() {
                        q.timer_fired();
                    }
                }
            }
        }
    }
}
