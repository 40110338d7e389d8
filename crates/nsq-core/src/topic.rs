//! A topic: the publish side of nsqd, fanning every message out to each of its channels (Go `nsqd/topic.go`).
//!
//! Go runs a `messagePump` goroutine per topic that copies messages from the topic's queue to every channel.
//! Here publishing fans out directly, under the topic lock, whenever the topic has channels, is not paused and
//! has no backlog. Otherwise messages wait in the topic's own queue (memory, then backend), and that backlog is
//! moved to the channels when the first channel appears or the topic is unpaused. Channels created later do not
//! see earlier messages, as in Go.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::backend::{store_batch, BackendQueue, Storage, WriteReceipt};
use crate::channel::{mem_capacity, Channel};
use crate::error::Error;
use crate::events::Event;
use crate::guid::GuidFactory;
use crate::message::{now_ns, Message};
use crate::quantile::Quantile;
use crate::shared::Shared;
use crate::stats::{E2eStats, TopicStats};

/// Messages moved from the topic backlog to the channels per step.
const DRAIN_CHUNK: usize = 4096;

#[derive(Debug)]
struct State {
    channels: BTreeMap<String, Arc<Channel>>,
    memory: VecDeque<Message>,
    backend: Box<dyn BackendQueue>,
    guid: GuidFactory,
}

impl State {
    fn backlog_is_empty(&self) -> bool {
        self.memory.is_empty() && self.backend.depth() == 0
    }
}

/// A topic.
#[derive(Debug)]
pub struct Topic {
    name: String,
    ephemeral: bool,
    mem_capacity: usize,
    shared: Arc<Shared>,
    state: Mutex<State>,
    /// False until [`Topic::start`]: like a paused topic, an unstarted one keeps what is published, so the
    /// channels created while it starts (from `nsqd.dat`, or from nsqlookupd) all receive it.
    started: AtomicBool,
    /// A backlog hand-off is waiting for room in the diskqueue write budget.
    resume_pending: AtomicBool,
    me: Weak<Topic>,
    paused: AtomicBool,
    exiting: AtomicBool,
    message_count: AtomicU64,
    message_bytes: AtomicU64,
}

impl Topic {
    pub(crate) fn new(name: &str, shared: Arc<Shared>) -> Arc<Self> {
        let ephemeral = nsq_protocol::is_ephemeral(name);
        let cfg = &shared.cfg;
        Arc::new_cyclic(|me: &Weak<Topic>| {
            let me_for_self = me.clone();
            let me = me.clone();
            let backend = shared.storage.backend_for(
                name,
                ephemeral,
                Box::new(move || {
                    if let Some(topic) = me.upgrade() {
                        topic.backend_readable();
                    }
                }),
            );
            Self {
                name: name.to_owned(),
                ephemeral,
                mem_capacity: mem_capacity(cfg.mem_queue_size, ephemeral),
                state: Mutex::new(State {
                    channels: BTreeMap::new(),
                    memory: VecDeque::new(),
                    backend,
                    guid: GuidFactory::new(cfg.node_id),
                }),
                shared: Arc::clone(&shared),
                started: AtomicBool::new(false),
                resume_pending: AtomicBool::new(false),
                me: me_for_self,
                paused: AtomicBool::new(false),
                exiting: AtomicBool::new(false),
                message_count: AtomicU64::new(0),
                message_bytes: AtomicU64::new(0),
            }
        })
    }

    /// Lets messages flow to the channels (Go `Topic.Start`), delivering what was published meanwhile.
    pub fn start(&self) {
        let mut st = self.state.lock();
        self.started.store(true, Ordering::Release);
        self.drain_backlog(&mut st);
    }

    /// Whether fan-out is on hold: not started yet, or paused.
    fn is_holding(&self) -> bool {
        !self.started.load(Ordering::Acquire) || self.is_paused()
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the name ends in `#ephemeral`.
    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// Whether fan-out is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Whether the topic is being deleted or closed.
    pub fn is_exiting(&self) -> bool {
        self.exiting.load(Ordering::Acquire)
    }

    /// Publishes one message (PUB, DPUB, HTTP `/pub`). A non-zero `defer` delays delivery on every channel.
    pub fn put_message(&self, body: Bytes, defer: Duration) -> Result<WriteReceipt, Error> {
        self.put_messages(std::iter::once(body), defer)
    }

    /// Publishes a batch (MPUB, HTTP `/mpub`) with one lock of the topic and of each channel.
    pub fn put_messages(
        &self,
        bodies: impl IntoIterator<Item = Bytes>,
        defer: Duration,
    ) -> Result<WriteReceipt, Error> {
        let mut st = self.state.lock();
        // Checked under the lock, which `close` takes to set the flag: nothing is fanned out to a channel
        // that is already closing (it would refuse, and the message would be lost after its OK).
        if self.is_exiting() {
            return Err(Error::Exiting);
        }
        let mut bytes = 0u64;
        let defer_ms = u32::try_from(defer.as_millis()).unwrap_or(u32::MAX);
        // One clock read per batch: every message of an MPUB shares its publish time.
        let now = now_ns();
        let msgs: Vec<Message> = bodies
            .into_iter()
            .map(|body| {
                bytes += body.len() as u64;
                // A deferred body is copied once here and shared by every channel (see `unpin_body`).
                let body = if defer_ms == 0 {
                    body
                } else {
                    Bytes::copy_from_slice(&body)
                };
                Message {
                    id: st.guid.next_id_at(now),
                    body,
                    timestamp: now,
                    attempts: 0,
                    deferred_ms: defer_ms,
                }
            })
            .collect();
        self.message_count
            .fetch_add(msgs.len() as u64, Ordering::Relaxed);
        self.message_bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut receipt = WriteReceipt::default();
        if st.channels.is_empty() || self.is_holding() || !st.backlog_is_empty() {
            let st = &mut *st;
            let (_, to_backend) = store_batch(
                &mut st.memory,
                self.mem_capacity,
                st.backend.as_mut(),
                msgs.into_iter(),
            );
            if to_backend > 0 {
                receipt.add(st.backend.ticket());
            }
            return Ok(receipt);
        }
        fan_out(&st.channels, msgs, &mut receipt);
        Ok(receipt)
    }

    /// Returns the named channel, creating it if needed (Go `GetChannel`); `true` when it was created.
    /// The first channel of a topic receives the topic's backlog.
    pub fn get_channel(&self, name: &str) -> (Arc<Channel>, bool) {
        let channel = {
            let mut st = self.state.lock();
            if let Some(c) = st.channels.get(name) {
                return (Arc::clone(c), false);
            }
            let channel = Channel::new(&self.name, name, Arc::clone(&self.shared));
            st.channels.insert(name.to_owned(), Arc::clone(&channel));
            self.drain_backlog(&mut st);
            channel
        };
        self.shared.emit(Event::ChannelCreated {
            topic: self.name.clone(),
            channel: name.to_owned(),
        });
        (channel, true)
    }

    /// Returns the named channel if it exists.
    pub fn get_existing_channel(&self, name: &str) -> Option<Arc<Channel>> {
        self.state.lock().channels.get(name).cloned()
    }

    /// All channels, sorted by name.
    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.state.lock().channels.values().cloned().collect()
    }

    /// Deletes a channel (Go `DeleteExistingChannel`). Returns true when an ephemeral topic is left without
    /// channels and should itself be deleted.
    pub fn delete_existing_channel(&self, name: &str) -> Result<bool, Error> {
        let (channel, now_empty) = {
            let mut st = self.state.lock();
            let channel = st.channels.remove(name).ok_or(Error::ChannelNotFound)?;
            (channel, st.channels.is_empty())
        };
        channel.delete();
        self.shared.emit(Event::ChannelDeleted {
            topic: self.name.clone(),
            channel: name.to_owned(),
        });
        Ok(now_empty && self.ephemeral)
    }

    /// Stops fan-out; published messages wait at the topic.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    /// Resumes fan-out, delivering the backlog to the channels.
    pub fn unpause(&self) {
        let mut st = self.state.lock();
        self.paused.store(false, Ordering::Release);
        self.drain_backlog(&mut st);
    }

    /// Drops the topic's own backlog (Go `Topic.Empty`); channels keep theirs.
    pub fn empty(&self) {
        let mut st = self.state.lock();
        st.memory = VecDeque::new();
        st.backend.empty();
    }

    /// Deletes the topic and all its channels (Go `Topic.Delete`).
    /// Reports the topic's deletion, then each channel's, in Go's order (lookupd hears UNREGISTER for the topic,
    /// then for each channel). Only the first call reports anything.
    pub(crate) fn delete(&self) {
        let (channels, first) = {
            let mut st = self.state.lock();
            let first = !self.exiting.swap(true, Ordering::AcqRel);
            (std::mem::take(&mut st.channels), first)
        };
        if first {
            self.shared.emit(Event::TopicDeleted {
                topic: self.name.clone(),
            });
        }
        for (name, c) in channels {
            c.delete();
            self.shared.emit(Event::ChannelDeleted {
                topic: self.name.clone(),
                channel: name,
            });
        }
        let mut st = self.state.lock();
        st.memory = VecDeque::new();
        st.backend.delete();
    }

    /// Closes the topic at shutdown (Go `Topic.Close`): consumers are disconnected, messages stay.
    pub(crate) fn close(&self) {
        // Under the lock, so no publish or backlog hand-off is half way through (see `put_messages`).
        let channels = {
            let st = self.state.lock();
            self.exiting.store(true, Ordering::Release);
            st.channels.values().cloned().collect::<Vec<_>>()
        };
        for c in channels {
            c.close();
        }
    }

    /// Moves every message held in memory (the topic's and its channels', including in-flight and deferred
    /// ones) to the backends, as Go's `Topic.flush` and `Channel.flush` do at exit. Returns how many moved.
    pub fn flush(&self) -> usize {
        let (mut n, channels) = {
            let mut st = self.state.lock();
            let memory = std::mem::take(&mut st.memory);
            let n = memory.len();
            st.backend.put_batch(&mut memory.into_iter());
            (n, st.channels.values().cloned().collect::<Vec<_>>())
        };
        for c in channels {
            n += c.flush();
        }
        n
    }

    /// The diskqueues of this topic and its channels, for loading and closing them.
    pub fn disk_queues(&self) -> Vec<crate::diskqueue::DiskQueue> {
        let (own, channels) = {
            let st = self.state.lock();
            (
                st.backend.disk_queue(),
                st.channels.values().cloned().collect::<Vec<_>>(),
            )
        };
        own.into_iter()
            .chain(channels.iter().filter_map(|c| c.disk_queue()))
            .collect()
    }

    /// Asks the pool to continue the backlog hand-off once the write budget has room again.
    fn resume_when_writable(&self, pool: Option<&Arc<crate::diskqueue::IoPool>>) {
        let Some(pool) = pool else { return };
        if self.resume_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.me.clone();
        pool.call_when_writable(Box::new(move || {
            if let Some(topic) = me.upgrade() {
                topic.resume_pending.store(false, Ordering::Release);
                topic.backend_readable();
            }
        }));
    }

    /// The backend has messages again: continue handing the backlog to the channels.
    fn backend_readable(&self) {
        let mut st = self.state.lock();
        if !self.is_exiting() {
            self.drain_backlog(&mut st);
        }
    }

    /// A snapshot for `/stats`; `channel` limits the channels listed.
    pub fn stats(&self, channel: Option<&str>, include_clients: bool) -> TopicStats {
        let (depth, backend_depth, channels) = {
            let st = self.state.lock();
            let depth = i64::try_from(st.memory.len()).unwrap_or(i64::MAX) + st.backend.depth();
            (
                depth,
                st.backend.depth(),
                st.channels.values().cloned().collect::<Vec<_>>(),
            )
        };
        let e2e = self.aggregate_e2e(&channels);
        let channels = channels
            .iter()
            .filter(|c| channel.is_none_or(|name| c.name() == name))
            .map(|c| c.stats(include_clients))
            .collect();
        TopicStats {
            topic_name: self.name.clone(),
            channels,
            depth,
            backend_depth,
            message_count: self.message_count.load(Ordering::Relaxed),
            message_bytes: self.message_bytes.load(Ordering::Relaxed),
            paused: self.is_paused(),
            e2e_processing_latency: e2e,
        }
    }

    /// Messages waiting at the topic (memory plus backend).
    pub fn depth(&self) -> i64 {
        let st = self.state.lock();
        i64::try_from(st.memory.len()).unwrap_or(i64::MAX) + st.backend.depth()
    }

    /// Go's `AggregateChannelE2eProcessingLatency`: `null` percentiles when no channel tracks latency.
    fn aggregate_e2e(&self, channels: &[Arc<Channel>]) -> E2eStats {
        let mut merged: Option<Quantile> = None;
        for c in channels {
            if let Some(q) = c.e2e_snapshot() {
                merged
                    .get_or_insert_with(|| Quantile::new(self.shared.cfg.e2e_window))
                    .merge(&q);
            }
        }
        match merged {
            Some(q) => E2eStats {
                count: q.count(),
                percentiles: Some(q.query(&self.shared.cfg.e2e_percentiles)),
            },
            None => E2eStats::default(),
        }
    }

    /// Moves the backlog to the channels in chunks, so the hand-off never holds two copies of a large backlog,
    /// then releases the emptied queue's memory.
    fn drain_backlog(&self, st: &mut State) {
        if st.channels.is_empty() || self.is_holding() || st.backlog_is_empty() {
            return;
        }
        let pool = match self.shared.storage {
            Storage::Disk(ref disk) => Some(&disk.pool),
            Storage::Memory => None,
        };
        loop {
            let mut chunk = Vec::with_capacity(DRAIN_CHUNK);
            while chunk.len() < DRAIN_CHUNK {
                if let Some(m) = st.memory.pop_front() {
                    chunk.push(m);
                    continue;
                }
                // Records read from the topic's files are written again to the channels' files: wait for
                // room in the write budget first, as a publisher would (resumed by the pool).
                if pool.is_some_and(|p| p.is_full()) {
                    self.resume_when_writable(pool);
                    break;
                }
                match st.backend.pop() {
                    Some(m) => chunk.push(m),
                    None => break,
                }
            }
            if chunk.is_empty() {
                break;
            }
            // Moving a backlog acknowledges nothing, so nobody waits for its disk writes.
            let mut unused = WriteReceipt::default();
            fan_out(&st.channels, chunk, &mut unused);
        }
        st.memory = VecDeque::new();
    }
}

/// Copies each message to every channel; the last channel takes the originals, so one channel means no clones.
fn fan_out(
    channels: &BTreeMap<String, Arc<Channel>>,
    msgs: Vec<Message>,
    receipt: &mut WriteReceipt,
) {
    let has_deferred = msgs.iter().any(|m| m.deferred_ms != 0);
    let last = channels.len().saturating_sub(1);
    let mut msgs = Some(msgs);
    for (i, channel) in channels.values().enumerate() {
        let batch = if i == last {
            msgs.take().unwrap_or_default()
        } else {
            msgs.clone().unwrap_or_default()
        };
        // A channel that is exiting is being deleted; its copy is dropped, as Go's pump does.
        if has_deferred {
            let (deferred, now): (Vec<_>, Vec<_>) =
                batch.into_iter().partition(|m| m.deferred_ms != 0);
            for m in deferred {
                let delay = m.deferred();
                channel.put_deferred(m, delay);
            }
            if let Ok(ticket) = channel.put_batch(now.into_iter()) {
                receipt.add(ticket);
            }
        } else {
            if let Ok(ticket) = channel.put_batch(batch.into_iter()) {
                receipt.add(ticket);
            }
        }
    }
}
