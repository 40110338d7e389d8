//! A Go-compatible diskqueue (go-diskqueue v1.1.0 on-disk format).
//!
//! nsqd keeps what overflows a topic's or channel's memory queue in a diskqueue, and must read the files Go
//! nsqd left behind. This module stores opaque records ([`Bytes`]) in that format and knows nothing of NSQ
//! messages.
//!
//! # Format
//!
//! Data files are `<data_path>/<name>.diskqueue.%06d.dat`, holding records `[i32 BE length][payload]`.
//! Writing moves to the next file number before a record that would take a non-empty file past
//! `max_bytes_per_file` (the v1.1.0 rule; v1.0.0 rolled after, so its files may be larger, and a finished
//! file is read up to its real size). `<name>.diskqueue.meta.dat` holds `"%d\n%d,%d\n%d,%d\n"`: depth, read
//! file and position, write file and position, of what is on disk; the read position is the one after the
//! last popped record. A fully read file is deleted. A bad record length or a truncated record renames the
//! file to `*.bad` and reading goes on in the next file.
//!
//! # Threading model
//!
//! Callers (`put`, `pop`, `depth`, `empty`) run on async workers, often under a topic's or channel's lock,
//! so they only touch in-memory state behind a short lock: `put` appends to a pending list, `pop` takes
//! from a read-ahead buffer. All file I/O and fsync happens on the threads of an [`IoPool`] shared by every
//! queue. A queue with work is put on the pool's run queue once (a `scheduled` flag), so at most one thread
//! works on a queue at a time; a round writes pending records in a batch through a buffered writer, refills
//! the read-ahead (in 64 KiB reads, records split out without copying), deletes fully read files and syncs
//! when due. When the reader has caught up with the writer, freshly written records go into the read-ahead
//! from memory instead of being read back. `on_readable` is called from a pool thread when the read-ahead
//! goes from empty to non-empty; it must not block (it may call `pop`).
//!
//! Memory is bounded by two named policies: unwritten records across all queues are bounded by the pool's
//! `max_pending_bytes`, above which publishers wait in [`IoPool::writable`]; each queue's read-ahead is
//! bounded by `read_ahead_bytes` (refilled when it falls below half, always at least one record).
//!
//! Syncs (fsync of the write file, then the metadata written to a temporary file, fsynced and renamed) happen
//! every `sync_every` writes plus pops, `sync_timeout` after the first unsynced change, on every write file
//! switch and read file switch, and at close. A failed write keeps its records pending and is retried after
//! a backoff (50 ms doubling to 2 s); nothing accepted is dropped while the queue is open.
//!
//! # What a crash can lose
//!
//! - SIGKILL (or an abort): records accepted by `put` that no round has written yet (bounded in total by
//!   the pool's `max_pending_bytes`, normally a few milliseconds' worth), including bytes still in a round's
//!   write buffer. Records written but not yet synced sit in the page cache and survive the process, but the
//!   metadata may be up to one sync behind: on restart the read position may replay records popped since the
//!   last sync (at-least-once), and a write file longer than the metadata says is read to its real size while
//!   writing starts a new file (go-diskqueue #31).
//! - Power loss: additionally whatever the page cache held since the last fsync (up to `sync_every`
//!   operations or `sync_timeout`). A torn record is caught by its length and its file is set aside as
//!   `*.bad`.

mod files;
mod latch;
mod pool;
mod queue;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use pool::IoPool;
use queue::QueueInner;

/// Settings shared by every queue of a daemon (Go's diskqueue.New arguments).
#[derive(Debug, Clone)]
pub struct DiskQueueOptions {
    /// The directory holding the data and metadata files.
    pub data_path: PathBuf,
    /// `--max-bytes-per-file`: the size at which writing moves to a new file.
    pub max_bytes_per_file: i64,
    /// The smallest valid record (nsqd passes 26, the message header); smaller lengths mean corruption.
    pub min_msg_size: i32,
    /// The largest valid record (nsqd passes `--max-msg-size` + 26).
    pub max_msg_size: i32,
    /// `--sync-every`: writes plus pops between fsyncs (0 or less: only the timeout syncs).
    pub sync_every: i64,
    /// `--sync-timeout`: the longest an unsynced change waits for an fsync.
    pub sync_timeout: Duration,
    /// How many payload bytes a queue keeps read ahead in memory.
    pub read_ahead_bytes: usize,
}

impl Default for DiskQueueOptions {
    fn default() -> Self {
        DiskQueueOptions {
            data_path: PathBuf::from("."),
            max_bytes_per_file: 100 * 1024 * 1024,
            min_msg_size: 26,
            max_msg_size: 1024 * 1024 + 26,
            sync_every: 2500,
            sync_timeout: Duration::from_secs(2),
            read_ahead_bytes: 1024 * 1024,
        }
    }
}

/// Why a diskqueue refused a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskQueueError {
    /// The record's length is outside `[min_msg_size, max_msg_size]`.
    #[error("invalid message write size ({len}) minMsgSize={min} maxMsgSize={max}")]
    InvalidSize {
        /// The record's length.
        len: usize,
        /// The smallest valid length.
        min: i32,
        /// The largest valid length.
        max: i32,
    },
    /// The queue is closed or being deleted.
    #[error("exiting")]
    Closed,
}

/// A handle to one queue; clones share it.
#[derive(Clone)]
pub struct DiskQueue {
    inner: Arc<QueueInner>,
}

impl std::fmt::Debug for DiskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl DiskQueue {
    /// Opens the queue `name` (the topic name or `topic:channel`). Does no file I/O: loading the metadata is
    /// scheduled on the pool. `on_readable` is called from a pool thread (with no lock a caller can take
    /// held) whenever records become available to `pop` after the read-ahead was empty.
    pub fn open(
        name: &str,
        opts: Arc<DiskQueueOptions>,
        pool: Arc<IoPool>,
        on_readable: Box<dyn Fn() + Send + Sync>,
    ) -> DiskQueue {
        DiskQueue {
            inner: QueueInner::new(name, opts, pool, on_readable),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Blocks the calling (non-async) thread until the initial load finished.
    pub fn wait_loaded(&self) {
        self.inner.loaded.wait_blocking();
    }

    /// Waits until the initial load finished.
    pub async fn loaded(&self) {
        self.inner.loaded.wait().await;
    }

    /// Appends a record; never blocks, never does I/O (the pool writes it). Records outside
    /// `[min_msg_size, max_msg_size]` are refused, as are puts after `close` or `delete`.
    pub fn put(&self, record: Bytes) -> Result<(), DiskQueueError> {
        self.inner.put_many(std::iter::once(record))
    }

    /// Appends several records under one lock. Records of a bad size are skipped and the first such error is
    /// returned; the others are stored.
    pub fn put_batch(
        &self,
        records: impl IntoIterator<Item = Bytes>,
    ) -> Result<(), DiskQueueError> {
        self.inner.put_many(records)
    }

    /// The oldest record, from the in-memory read-ahead; `None` when the read-ahead is empty (a refill is
    /// then scheduled and `on_readable` fires when it lands). Never blocks.
    pub fn pop(&self) -> Option<Bytes> {
        self.inner.pop()
    }

    /// Records stored and not yet popped: pending writes, on disk, and in the read-ahead.
    pub fn depth(&self) -> i64 {
        self.inner.depth()
    }

    /// Go's Empty: drops every record at once; a pool thread then deletes the data files and starts over in
    /// the next file number, persisting the metadata. Records put after `empty` returns are kept.
    pub fn empty(&self) {
        self.inner.empty();
    }

    /// Go's Delete as nsqd uses it (empty, then close): data files and metadata file removed; the queue
    /// refuses puts afterwards.
    pub async fn delete(&self) {
        self.inner.request_close(true);
        let _ = self.inner.closed.wait().await;
    }

    /// A ticket for everything accepted so far: [`DiskQueue::written`] with it completes once those records
    /// are in a file (handed to the kernel, not necessarily fsynced), as Go's `Put` returns.
    pub fn accepted(&self) -> u64 {
        self.inner.accepted()
    }

    /// Waits until the records up to `ticket` (from [`DiskQueue::accepted`]) were written to a file, or
    /// dropped by `empty`/`delete`, or the queue stopped.
    pub async fn written(&self, ticket: u64) {
        self.inner.wait_done(ticket).await;
    }

    /// Starts [`DiskQueue::delete`] without waiting for it (for callers holding a lock).
    pub fn start_delete(&self) {
        self.inner.request_close(true);
    }

    /// Go's Close: writes every pending record, fsyncs, persists the metadata (with the read position after
    /// the last popped record, so records still in the read-ahead are read again after a restart) and closes
    /// the files. Puts afterwards are refused. Every call returns the outcome of the first.
    pub async fn close(&self) -> std::io::Result<()> {
        self.inner.request_close(false);
        to_io(self.inner.closed.wait().await)
    }

    /// [`DiskQueue::close`] for non-async callers: blocks the calling thread.
    pub fn close_blocking(&self) -> std::io::Result<()> {
        self.inner.request_close(false);
        to_io(self.inner.closed.wait_blocking())
    }
}

fn to_io(result: queue::CloseResult) -> std::io::Result<()> {
    result.map_err(|(kind, msg)| std::io::Error::new(kind, msg))
}
