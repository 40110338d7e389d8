//! Where messages go once a memory queue is full (Go's `BackendQueue`).
//!
//! This is the seam for persistence: a Go-format diskqueue will implement [`BackendQueue`] and replace
//! [`MemoryBackend`] for non-ephemeral topics and channels. Ephemeral ones use [`DummyBackend`], which drops
//! overflow exactly as Go's `newDummyBackendQueue` does.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::Arc;

use bytes::BytesMut;

use crate::diskqueue::{DiskQueue, DiskQueueOptions, IoPool};
use crate::message::{Message, DISK_HEADER_LEN};

/// How much encoding space a disk backend reserves at a time: records are split off one block, so encoding
/// costs one allocation per block rather than one per message.
const ENCODE_BLOCK: usize = 64 * 1024;

/// Overflow storage for a topic or channel. Calls happen under the owner's lock, so they must not block.
pub trait BackendQueue: Send + Debug {
    /// Stores one message at the tail.
    fn put(&mut self, msg: Message);
    /// Stores several messages at the tail, in order (one lock of a disk queue instead of one per message).
    fn put_batch(&mut self, msgs: &mut dyn Iterator<Item = Message>) {
        for m in msgs {
            self.put(m);
        }
    }
    /// Takes the oldest message, if any.
    fn pop(&mut self) -> Option<Message>;
    /// How many messages are stored.
    fn depth(&self) -> i64;
    /// Drops everything stored.
    fn empty(&mut self);
    /// Drops everything stored and removes any files for good: the topic or channel is being deleted.
    fn delete(&mut self) {
        self.empty();
    }
    /// A ticket covering everything stored so far, when storing is asynchronous (see [`WriteReceipt`]).
    fn ticket(&self) -> Option<WriteTicket> {
        None
    }
    /// The diskqueue behind this backend, if it is one (for loading, closing and deleting it).
    fn disk_queue(&self) -> Option<DiskQueue> {
        None
    }
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

/// Go's `put` for a batch: messages go to `memory` while it holds fewer than `capacity`, the rest to
/// `backend` in one call (one diskqueue lock and one encoding block for the lot). Returns how many were
/// stored in all and how many of them went to the backend.
pub(crate) fn store_batch(
    memory: &mut VecDeque<Message>,
    capacity: usize,
    backend: &mut dyn BackendQueue,
    msgs: impl Iterator<Item = Message>,
) -> (u64, u64) {
    let mut total = 0u64;
    let mut to_memory = 0u64;
    let mut msgs = msgs.inspect(|_| total += 1);
    while memory.len() < capacity {
        match msgs.next() {
            Some(msg) => {
                memory.push_back(msg);
                to_memory += 1;
            }
            None => break,
        }
    }
    backend.put_batch(&mut msgs);
    drop(msgs);
    (total, total - to_memory)
}

/// Where a daemon's topics and channels keep what overflows their memory queues.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// In memory only ([`MemoryBackend`]): for tests and benchmarks of the domain alone.
    #[default]
    Memory,
    /// In Go-format diskqueue files ([`DiskBackend`]).
    Disk(DiskStorage),
}

/// The diskqueue settings and I/O threads every queue of a daemon shares.
#[derive(Debug, Clone)]
pub struct DiskStorage {
    /// File layout and sync settings.
    pub options: Arc<DiskQueueOptions>,
    /// The threads that do the file I/O.
    pub pool: Arc<IoPool>,
}

/// Called by a backend (from whatever thread its I/O runs on, with none of its locks held) when messages
/// became available to `pop` after it had none to give.
pub(crate) type OnReadable = Box<dyn Fn() + Send + Sync>;

impl Storage {
    /// The backend for the queue `queue_name` (a topic name, or `topic:channel`). Ephemeral queues get a
    /// [`DummyBackend`] whatever the storage.
    pub(crate) fn backend_for(
        &self,
        queue_name: &str,
        ephemeral: bool,
        on_readable: OnReadable,
    ) -> Box<dyn BackendQueue> {
        if ephemeral {
            return Box::new(DummyBackend);
        }
        match self {
            Storage::Memory => Box::new(MemoryBackend::default()),
            Storage::Disk(disk) => Box::new(DiskBackend {
                queue: DiskQueue::open(
                    queue_name,
                    Arc::clone(&disk.options),
                    Arc::clone(&disk.pool),
                    on_readable,
                ),
                scratch: BytesMut::new(),
            }),
        }
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

/// Overflow in a Go-format diskqueue: each message becomes one record in Go's layout
/// ([`Message::encode_disk`]), and records read back become messages whose bodies are slices of the read
/// buffer.
#[derive(Debug)]
pub struct DiskBackend {
    queue: DiskQueue,
    scratch: BytesMut,
}

impl DiskBackend {
    fn encode(&mut self, msg: &Message) -> bytes::Bytes {
        let need = DISK_HEADER_LEN + msg.body.len();
        if self.scratch.capacity() < need {
            self.scratch.reserve(need.max(ENCODE_BLOCK));
        }
        msg.encode_disk(&mut self.scratch);
        self.scratch.split().freeze()
    }
}

impl BackendQueue for DiskBackend {
    fn put(&mut self, msg: Message) {
        let record = self.encode(&msg);
        if let Err(e) = self.queue.put(record) {
            tracing::error!(id = %msg.id, "failed to write message to backend - {e}");
        }
    }
    fn put_batch(&mut self, msgs: &mut dyn Iterator<Item = Message>) {
        let records: Vec<_> = msgs.map(|m| self.encode(&m)).collect();
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.queue.put_batch(records) {
            tracing::error!("failed to write messages to backend - {e}");
        }
    }
    fn pop(&mut self) -> Option<Message> {
        loop {
            let record = self.queue.pop()?;
            match Message::decode_disk(record) {
                Some(m) => return Some(m),
                // Go logs and skips a record it cannot decode.
                None => tracing::error!("failed to decode message from backend - too short"),
            }
        }
    }
    fn depth(&self) -> i64 {
        self.queue.depth()
    }
    fn empty(&mut self) {
        self.queue.empty();
    }
    fn delete(&mut self) {
        self.queue.start_delete();
    }
    fn ticket(&self) -> Option<WriteTicket> {
        Some(WriteTicket {
            ticket: self.queue.accepted(),
            queue: self.queue.clone(),
        })
    }
    fn disk_queue(&self) -> Option<DiskQueue> {
        Some(self.queue.clone())
    }
}

/// "Everything this diskqueue accepted up to `ticket`".
#[derive(Debug, Clone)]
pub struct WriteTicket {
    queue: DiskQueue,
    ticket: u64,
}

/// What a publish waits for before its `OK`: the disk writes of the records it produced. Go's diskqueue
/// `Put` returns once the record is written to the file, so a message acknowledged by Go nsqd survives a
/// crash of the process unless it sat in a memory queue; waiting for this receipt gives the same promise,
/// while the writing itself stays on the diskqueue's I/O threads and is batched across publishers. Most
/// publishes touch no disk and get an empty receipt (no allocation).
#[derive(Debug, Default)]
pub struct WriteReceipt {
    tickets: Vec<WriteTicket>,
}

impl WriteReceipt {
    pub(crate) fn add(&mut self, ticket: Option<WriteTicket>) {
        if let Some(t) = ticket {
            self.tickets.push(t);
        }
    }

    /// Completes once every record of the publish is in a file.
    pub async fn written(self) {
        for t in self.tickets {
            t.queue.written(t.ticket).await;
        }
    }
}
