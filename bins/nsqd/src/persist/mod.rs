//! What nsqd keeps on disk and how it gets there: the data-path lock, `nsqd.dat`, the diskqueues' shared I/O
//! threads, loading everything at start and writing everything at exit.
//!
//! Start (Go `New` + `LoadMetadata` + `PersistMetadata`): lock `--data-path`, read `nsqd.dat`, create each
//! topic unstarted with its channels and paused flags, wait until every diskqueue has read its metadata (so
//! the first `/stats` already shows the depths), start the topics, rewrite `nsqd.dat`.
//!
//! Run: every create or delete of a non-ephemeral topic or channel, and every pause change, marks the
//! metadata dirty; one task rewrites the file off the async workers, coalescing bursts into one write.
//!
//! Exit (Go `NSQD.Exit`): after the topics are closed and clients are gone, every message still in memory
//! (queued, in flight or deferred) is written to its diskqueue, every diskqueue is closed (data and metadata
//! fsynced), `nsqd.dat` is written a last time, and the I/O threads stop.

mod dirlock;
mod metadata;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nsq_core::diskqueue::{DiskQueueOptions, IoPool};
use nsq_core::{DiskStorage, Storage, Topics, DISK_HEADER_LEN};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use dirlock::DirLock;
pub use metadata::{ChannelMetadata, Metadata, TopicMetadata, METADATA_FILE};

use crate::options::Options;

/// Threads doing diskqueue file I/O. Two keep one queue's fsync from holding up every other queue's writes
/// on a small machine without competing much with the async workers.
const IO_THREADS: usize = 2;

/// Bytes published but not yet written to a diskqueue file, across all queues, above which publishers wait
/// (the policy of the write buffer when full). Each publisher also waits for its own records to be written
/// before its OK; this bound covers many publishers at once and backlogs moved between queues. 8 MiB keeps
/// nsqd's peak RSS for a 1M-message backlog near Go's without costing throughput (benches/README.md).
const MAX_PENDING_WRITE_BYTES: usize = 8 * 1024 * 1024;

/// The persistent side of one daemon.
#[derive(Debug)]
pub struct Persistence {
    data_path: PathBuf,
    _lock: DirLock,
    pool: Arc<IoPool>,
    storage: Storage,
    dirty: Arc<Dirty>,
}

/// "`nsqd.dat` needs rewriting", with a wake-up for the writer task.
#[derive(Debug, Default)]
pub struct Dirty {
    flag: AtomicBool,
    wake: Notify,
}

impl Dirty {
    /// Asks for `nsqd.dat` to be rewritten soon. Never blocks.
    pub fn mark(&self) {
        self.flag.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

impl Persistence {
    /// Locks `--data-path` (the working directory when empty, as in Go) and prepares the diskqueue storage.
    /// Does not read anything yet.
    pub fn open(opts: &Options) -> std::io::Result<Self> {
        let data_path = if opts.data_path.is_empty() {
            std::env::current_dir()?
        } else {
            PathBuf::from(&opts.data_path)
        };
        let lock = DirLock::lock(&data_path)?;
        let pool = IoPool::new(IO_THREADS, MAX_PENDING_WRITE_BYTES);
        let options = DiskQueueOptions {
            data_path: data_path.clone(),
            max_bytes_per_file: opts.max_bytes_per_file,
            min_msg_size: i32::try_from(DISK_HEADER_LEN).unwrap_or(i32::MAX),
            max_msg_size: i32::try_from(opts.max_msg_size.saturating_add(DISK_HEADER_LEN as i64))
                .unwrap_or(i32::MAX),
            sync_every: opts.sync_every,
            sync_timeout: opts.sync_timeout,
            ..DiskQueueOptions::default()
        };
        let storage = Storage::Disk(DiskStorage {
            options: Arc::new(options),
            pool: Arc::clone(&pool),
        });
        Ok(Self {
            data_path,
            _lock: lock,
            pool,
            storage,
            dirty: Arc::new(Dirty::default()),
        })
    }

    /// The directory holding everything.
    pub fn data_path(&self) -> &Path {
        &self.data_path
    }

    /// Where topics and channels keep their overflow.
    pub fn storage(&self) -> Storage {
        self.storage.clone()
    }

    /// The dirty flag of `nsqd.dat`, for the event sink and the pause handlers.
    pub fn dirty(&self) -> Arc<Dirty> {
        Arc::clone(&self.dirty)
    }

    /// Waits while too much published data is still waiting to be written (backpressure for publishers).
    pub async fn writable(&self) {
        self.pool.writable().await;
    }

    /// Recreates the topics and channels of `nsqd.dat` (Go `LoadMetadata`), waits for their diskqueues to
    /// load, starts the topics and rewrites the file (Go `PersistMetadata` right after loading).
    pub async fn load(&self, topics: &Topics) -> std::io::Result<()> {
        let path = self.data_path.clone();
        let metadata = tokio::task::spawn_blocking(move || Metadata::load(&path))
            .await
            .map_err(std::io::Error::other)??;
        let mut started = Vec::new();
        for t in metadata.map(|m| m.topics).unwrap_or_default() {
            if !nsq_protocol::is_valid_topic_name(&t.name) {
                tracing::warn!(topic = %t.name, "skipping creation of invalid topic");
                continue;
            }
            let (topic, created) = topics.get_topic_unstarted(&t.name);
            if t.paused {
                topic.pause();
            }
            for c in t.channels.unwrap_or_default() {
                if !nsq_protocol::is_valid_channel_name(&c.name) {
                    tracing::warn!(channel = %c.name, "skipping creation of invalid channel");
                    continue;
                }
                let (channel, _) = topic.get_channel(&c.name);
                if c.paused {
                    channel.pause();
                }
            }
            if created {
                started.push(topic);
            }
        }
        for topic in &started {
            for queue in topic.disk_queues() {
                queue.loaded().await;
            }
        }
        for topic in started {
            topic.start();
        }
        self.write_metadata(topics).await
    }

    /// Rewrites `nsqd.dat` from the topics as they are now.
    pub async fn write_metadata(&self, topics: &Topics) -> std::io::Result<()> {
        self.dirty.flag.store(false, Ordering::Release);
        let snapshot = Metadata::snapshot(topics);
        let path = self.data_path.clone();
        tokio::task::spawn_blocking(move || snapshot.write(&path))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Rewrites `nsqd.dat` whenever it is marked dirty, until `stop` fires.
    pub async fn run_metadata_writer(
        self: Arc<Self>,
        topics: Arc<Topics>,
        stop: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = self.dirty.wake.notified() => {}
                () = stop.cancelled() => return,
            }
            if !self.dirty.flag.load(Ordering::Acquire) {
                continue;
            }
            if let Err(e) = self.write_metadata(&topics).await {
                tracing::error!("failed to persist metadata - {e}");
            }
        }
    }

    /// Writes every message held in memory to the diskqueues, closes them and writes `nsqd.dat`. The topics
    /// must be closed already (no more publishes or deliveries).
    pub async fn shutdown(&self, topics: &Topics) {
        let mut moved = 0;
        let mut queues = Vec::new();
        for topic in topics.topics() {
            moved += topic.flush();
            queues.extend(topic.disk_queues());
        }
        tracing::info!(messages = moved, queues = queues.len(), "flushing to disk");
        for queue in &queues {
            if let Err(e) = queue.close().await {
                tracing::error!("failed to close diskqueue - {e}");
            }
        }
        if let Err(e) = self.write_metadata(topics).await {
            tracing::error!("failed to persist metadata - {e}");
        }
        let pool = Arc::clone(&self.pool);
        let _ = tokio::task::spawn_blocking(move || pool.shutdown()).await;
    }
}
