//! One queue's state, split in two: what callers touch ([`Front`], behind a short lock, never any I/O) and
//! what only the I/O round touches ([`Back`]: open files, read and write positions).
//!
//! A round ([`QueueInner::run_round`]) runs on a pool thread and does, in order: the initial load, a delete
//! or empty that was asked for, writing a batch of pending records, refilling the read-ahead, deleting fully
//! read files, and an fsync plus metadata write when one is due. Each step takes what it needs from the
//! front under the lock, does its I/O without it, and publishes the result under the lock again. A counter
//! (`epoch`) bumped by `empty()` and `delete()` tells a step that its result is stale and must be dropped.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

mod round;

use super::files::{Paths, Pos, ReadRecord};
use super::latch::Latch;
use super::{DiskQueueError, DiskQueueOptions, IoPool};
use round::Back;

/// The outcome of a close, kept so every caller of `close` gets it (an `io::Error` cannot be cloned).
pub(crate) type CloseResult = Result<(), (io::ErrorKind, String)>;

pub(crate) struct QueueInner {
    pub(crate) name: String,
    opts: Arc<DiskQueueOptions>,
    pool: Arc<IoPool>,
    paths: Paths,
    on_readable: Box<dyn Fn() + Send + Sync>,
    front: Mutex<Front>,
    /// Only the thread running this queue's round locks it (rounds never overlap), so it is uncontended.
    back: Mutex<Back>,
    pub(crate) loaded: Latch<()>,
    pub(crate) closed: Latch<CloseResult>,
    /// Woken whenever records of this queue stop waiting to be written (`DiskQueue::written`).
    progress: Notify,
}

impl std::fmt::Debug for QueueInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskQueue")
            .field("name", &self.name)
            .field("depth", &self.depth())
            .finish()
    }
}

/// What callers see and change. Every field is cheap to update; nothing here waits.
#[derive(Default)]
struct Front {
    loaded: bool,
    /// Records accepted by `put` and not yet taken by a round.
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    /// Records taken by the running round and not yet written (still part of the depth).
    writing: i64,
    /// Records ever accepted by `put`; those up to `accepted - pending - writing` have reached a file (or
    /// were dropped by `empty`, `delete` or a failed close), since records leave `pending` in order.
    accepted: u64,
    /// Records read (or handed over from memory) and not yet popped, with the read position after each.
    read_ahead: VecDeque<ReadRecord>,
    read_ahead_bytes: usize,
    /// The read position after the last popped record: what the metadata stores.
    committed: Pos,
    /// The write position after the last written batch.
    written_end: Pos,
    /// Go's depth: records written minus records popped (read-ahead records count, pending ones do not).
    disk_depth: i64,
    /// Whether the files hold records the read-ahead has not reached.
    disk_unread: bool,
    epoch: u64,
    /// Writes plus pops so far, and the value at the last sync (Go's `count` is their difference).
    changes: u64,
    synced_changes: u64,
    /// The last sync failed (reported by `close`).
    sync_error: bool,
    /// A state change that Go syncs at once (a read or write file switch, a bad file, an empty).
    need_sync: bool,
    sync_deadline: Option<Instant>,
    /// The earliest pool timer armed for this queue.
    timer_at: Option<Instant>,
    /// After a failed write: no write attempt before this.
    retry_at: Option<Instant>,
    /// On the run queue or in a round.
    scheduled: bool,
    empty_requested: bool,
    /// Set by `close` and `delete`: puts fail, pops find nothing.
    closing: bool,
    close_requested: bool,
    delete_requested: bool,
    /// The queue is closed or deleted; no round does anything any more.
    shut: bool,
}

impl Front {
    fn depth(&self) -> i64 {
        self.disk_depth + self.pending.len() as i64 + self.writing
    }

    fn dirty(&self) -> bool {
        self.changes != self.synced_changes
    }

    /// Go's checkTailCorruption: once the reader has reached the writer, the depth must be 0.
    fn check_tail(&mut self, name: &str) {
        if self.committed != self.written_end || !self.read_ahead.is_empty() || self.disk_depth == 0
        {
            return;
        }
        if self.disk_depth < 0 {
            tracing::error!(
                queue = name,
                depth = self.disk_depth,
                "negative depth at tail, metadata corruption, resetting 0"
            );
        } else {
            tracing::error!(
                queue = name,
                depth = self.disk_depth,
                "positive depth at tail, data loss, resetting 0"
            );
        }
        self.disk_depth = 0;
        self.need_sync = true;
    }

    fn wants_fill(&self, limit: usize) -> bool {
        self.disk_unread
            && !self.closing
            && (self.read_ahead.is_empty() || self.read_ahead_bytes < limit / 2)
    }
}

impl QueueInner {
    pub(crate) fn new(
        name: &str,
        opts: Arc<DiskQueueOptions>,
        pool: Arc<IoPool>,
        on_readable: Box<dyn Fn() + Send + Sync>,
    ) -> Arc<QueueInner> {
        let inner = Arc::new(QueueInner {
            name: name.to_owned(),
            paths: Paths::new(&opts.data_path, name),
            opts,
            pool,
            on_readable,
            front: Mutex::new(Front::default()),
            back: Mutex::new(Back::new()),
            loaded: Latch::new(),
            closed: Latch::new(),
            progress: Notify::new(),
        });
        // The first round loads the metadata.
        let mut f = inner.front.lock();
        inner.schedule_locked(&mut f);
        drop(f);
        inner
    }

    fn limits(&self) -> (i32, i32) {
        (self.opts.min_msg_size, self.opts.max_msg_size)
    }

    fn read_ahead_limit(&self) -> usize {
        self.opts.read_ahead_bytes.max(1)
    }

    fn sync_timeout(&self) -> Duration {
        self.opts.sync_timeout.max(Duration::from_millis(1))
    }

    fn sync_every_reached(&self, f: &Front) -> bool {
        self.opts.sync_every > 0 && f.changes - f.synced_changes >= self.opts.sync_every as u64
    }

    fn schedule_locked(self: &Arc<Self>, f: &mut Front) {
        if !f.scheduled && !f.shut {
            f.scheduled = true;
            self.pool.enqueue(Arc::clone(self));
        }
    }

    fn arm_timer_locked(self: &Arc<Self>, f: &mut Front, at: Instant) {
        if f.timer_at.is_none_or(|t| at < t) {
            f.timer_at = Some(at);
            self.pool.add_timer(at, Arc::downgrade(self));
        }
    }

    pub(crate) fn put_many(
        self: &Arc<Self>,
        records: impl IntoIterator<Item = Bytes>,
    ) -> Result<(), DiskQueueError> {
        let (min, max) = self.limits();
        let mut f = self.front.lock();
        if f.closing {
            return Err(DiskQueueError::Closed);
        }
        let mut first_err = None;
        let mut added = 0usize;
        let mut count = 0usize;
        for r in records {
            let len = r.len() as i64;
            if len < i64::from(min) || len > i64::from(max) {
                first_err.get_or_insert(DiskQueueError::InvalidSize {
                    len: r.len(),
                    min,
                    max,
                });
                continue;
            }
            added += r.len();
            count += 1;
            f.accepted += 1;
            f.pending.push_back(r);
        }
        if count > 0 {
            f.pending_bytes += added;
            self.pool.add_pending(added);
            self.schedule_locked(&mut f);
        }
        first_err.map_or(Ok(()), Err)
    }

    pub(crate) fn pop(self: &Arc<Self>) -> Option<Bytes> {
        let limit = self.read_ahead_limit();
        let mut f = self.front.lock();
        if f.closing {
            return None;
        }
        let Some(rec) = f.read_ahead.pop_front() else {
            if f.disk_unread && f.loaded {
                self.schedule_locked(&mut f);
            }
            return None;
        };
        f.read_ahead_bytes -= rec.data.len();
        let old = f.committed;
        f.committed = rec.end;
        f.disk_depth -= 1;
        f.changes += 1;
        if rec.end.file != old.file {
            // A file was fully read: it gets deleted, and Go syncs at once.
            f.need_sync = true;
        }
        f.check_tail(&self.name);
        if f.need_sync || self.sync_every_reached(&f) || f.wants_fill(limit) {
            self.schedule_locked(&mut f);
        }
        if f.sync_deadline.is_none() {
            let at = Instant::now() + self.sync_timeout();
            f.sync_deadline = Some(at);
            self.arm_timer_locked(&mut f, at);
        }
        Some(rec.data)
    }

    pub(crate) fn depth(&self) -> i64 {
        self.front.lock().depth()
    }

    /// How many records were ever accepted.
    pub(crate) fn accepted(&self) -> u64 {
        self.front.lock().accepted
    }

    /// Waits until `done()` reaches `ticket`; `done` is checked after registering for the wake-up, so progress
    /// in between is not missed.
    pub(crate) async fn wait_done(&self, ticket: u64) {
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.done() >= ticket {
                return;
            }
            notified.await;
        }
    }

    /// Records that `bytes` of pending records were written or dropped: the pool's budget and this queue's
    /// `written` waiters both hear of it.
    pub(crate) fn records_left_pending(&self, bytes: usize) {
        self.pool.sub_pending(bytes);
        self.progress.notify_waiters();
    }

    /// How many of the accepted records are no longer waiting to be written.
    pub(crate) fn done(&self) -> u64 {
        let f = self.front.lock();
        if f.shut {
            // Closed or stopped for good: nothing more will be written, so nobody should wait.
            return f.accepted;
        }
        let outstanding = f.pending.len() as u64 + u64::try_from(f.writing).unwrap_or(0);
        f.accepted.saturating_sub(outstanding)
    }

    pub(crate) fn empty(self: &Arc<Self>) {
        let mut f = self.front.lock();
        if f.closing {
            return;
        }
        tracing::info!(queue = %self.name, "diskqueue emptying");
        self.drop_contents(&mut f);
        f.empty_requested = true;
        self.schedule_locked(&mut f);
    }

    /// Forgets every record the front holds and makes in-progress round results stale.
    fn drop_contents(&self, f: &mut Front) {
        f.epoch += 1;
        self.records_left_pending(f.pending_bytes);
        f.pending = VecDeque::new();
        f.pending_bytes = 0;
        f.writing = 0;
        f.read_ahead = VecDeque::new();
        f.read_ahead_bytes = 0;
        f.disk_depth = 0;
        // What the files hold is about to be deleted: nothing there is to be read any more.
        f.disk_unread = false;
    }

    pub(crate) fn request_close(self: &Arc<Self>, delete: bool) {
        let mut f = self.front.lock();
        if f.shut {
            return;
        }
        f.closing = true;
        f.read_ahead = VecDeque::new();
        f.read_ahead_bytes = 0;
        if delete {
            tracing::info!(queue = %self.name, "diskqueue deleting");
            self.drop_contents(&mut f);
            f.delete_requested = true;
        } else {
            tracing::info!(queue = %self.name, "diskqueue closing");
            f.close_requested = true;
        }
        self.schedule_locked(&mut f);
    }

    /// Called by the pool after a round panicked: the queue stops for good, and waiters on its load or
    /// close are released with an error instead of hanging.
    pub(crate) fn poisoned(&self) {
        // Give the write budget back, or publishers on every queue would wait for these bytes forever. The
        // round that panicked let go of the back lock while unwinding (taken first, as rounds do).
        let batch_bytes: usize = self.back.lock().batch_bytes();
        let mut f = self.front.lock();
        f.shut = true;
        f.closing = true;
        f.scheduled = false;
        self.pool.sub_pending(f.pending_bytes + batch_bytes);
        f.pending = VecDeque::new();
        f.pending_bytes = 0;
        drop(f);
        self.progress.notify_waiters();
        self.loaded.set(());
        self.closed.set(Err((
            io::ErrorKind::Other,
            "diskqueue I/O round panicked".to_owned(),
        )));
    }

    pub(crate) fn timer_fired(self: &Arc<Self>) {
        let mut f = self.front.lock();
        if f.timer_at.is_some_and(|t| t <= Instant::now()) {
            f.timer_at = None;
        }
        self.schedule_locked(&mut f);
    }
}
