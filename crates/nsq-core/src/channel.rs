//! A channel: one independent copy of a topic's stream, load-balanced over its consumers (Go `nsqd/channel.go`).
//!
//! # How messages reach several consumers
//! Go lets every client's message pump read the same buffered Go channel. Here the queue is a `VecDeque` behind
//! the channel's mutex and each consumer's pump *takes* a batch of up to `RDY - in_flight` messages in one
//! locked step, which also records them as in flight. A pump with nothing to take waits on [`Channel::notify`],
//! which every put wakes. Taking batches keeps the lock off the per-message path (one lock per batch per
//! consumer) and makes RDY the only thing that decides how many messages a consumer holds.
//!
//! # Lock order
//! `Topic.state` before `Channel.state`. [`Consumer`] callbacks run under `Channel.state` and must not call back.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::backend::{store_batch, BackendQueue, WriteTicket};
use crate::consumer::Consumer;
use crate::deferred::DeferredQueue;
use crate::error::Error;
use crate::in_flight::InFlightQueue;
use crate::message::{now_ns, Message};
use crate::quantile::Quantile;
use crate::shared::Shared;
use crate::stats::{ChannelStats, E2eStats};
use nsq_protocol::MessageId;

/// Queue capacity (in messages) above which an emptied queue releases its buffer.
pub(crate) const SHRINK_ABOVE: usize = 64 * 1024;

#[derive(Debug)]
struct State {
    memory: VecDeque<Message>,
    backend: Box<dyn BackendQueue>,
    in_flight: InFlightQueue,
    deferred: DeferredQueue,
    clients: BTreeMap<u64, Arc<dyn Consumer>>,
    /// The wake-up currently registered with the queue scanner, if any.
    scheduled: Option<Instant>,
    e2e: Option<Quantile>,
    global_msg_count: u64,
}

/// A channel of a topic.
#[derive(Debug)]
pub struct Channel {
    topic_name: String,
    name: String,
    ephemeral: bool,
    mem_capacity: usize,
    shared: Arc<Shared>,
    me: Weak<Channel>,
    state: Mutex<State>,
    notify: Notify,
    paused: AtomicBool,
    exiting: AtomicBool,
    message_count: AtomicU64,
    requeue_count: AtomicU64,
    timeout_count: AtomicU64,
}

impl Channel {
    pub(crate) fn new(topic_name: &str, name: &str, shared: Arc<Shared>) -> Arc<Self> {
        let ephemeral = nsq_protocol::is_ephemeral(name);
        let cfg = Arc::clone(&shared.cfg);
        let e2e = (!cfg.e2e_percentiles.is_empty()).then(|| Quantile::new(cfg.e2e_window));
        Arc::new_cyclic(|me: &Weak<Channel>| {
            let waker = me.clone();
            let backend = shared.storage.backend_for(
                &format!("{topic_name}:{name}"),
                ephemeral,
                Box::new(move || {
                    if let Some(channel) = waker.upgrade() {
                        channel.notify.notify_waiters();
                    }
                }),
            );
            Self {
                topic_name: topic_name.to_owned(),
                name: name.to_owned(),
                ephemeral,
                mem_capacity: mem_capacity(cfg.mem_queue_size, ephemeral),
                shared,
                me: me.clone(),
                state: Mutex::new(State {
                    memory: VecDeque::new(),
                    backend,
                    in_flight: InFlightQueue::default(),
                    deferred: DeferredQueue::default(),
                    clients: BTreeMap::new(),
                    scheduled: None,
                    e2e,
                    global_msg_count: 0,
                }),
                notify: Notify::new(),
                paused: AtomicBool::new(false),
                exiting: AtomicBool::new(false),
                message_count: AtomicU64::new(0),
                requeue_count: AtomicU64::new(0),
                timeout_count: AtomicU64::new(0),
            }
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The owning topic's name.
    pub fn topic_name(&self) -> &str {
        &self.topic_name
    }

    /// Whether the name ends in `#ephemeral`.
    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// Whether delivery is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Whether the channel is being deleted or closed.
    pub fn is_exiting(&self) -> bool {
        self.exiting.load(Ordering::Acquire)
    }

    /// Woken whenever messages may have become available or the pause state changed. Consumers create a
    /// `notified()` future, `enable()` it, *then* try [`Channel::take`], and await it only if nothing was taken.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }

    /// Puts fanned-out messages at the tail (Go `PutMessage`, batched).
    /// Returns a ticket when some of them went to the disk backend.
    pub(crate) fn put_batch(
        &self,
        msgs: impl Iterator<Item = Message>,
    ) -> Result<Option<WriteTicket>, Error> {
        if self.is_exiting() {
            return Err(Error::Exiting);
        }
        let mut st = self.state.lock();
        let st_ref = &mut *st;
        let (n, to_backend) = store_batch(
            &mut st_ref.memory,
            self.mem_capacity,
            st_ref.backend.as_mut(),
            msgs,
        );
        let ticket = if to_backend > 0 {
            st.backend.ticket()
        } else {
            None
        };
        drop(st);
        self.message_count.fetch_add(n, Ordering::Relaxed);
        self.notify.notify_waiters();
        Ok(ticket)
    }

    /// Defers a fanned-out DPUB message (Go `PutMessageDeferred`); it counts as put.
    pub(crate) fn put_deferred(&self, msg: Message, delay: Duration) {
        self.message_count.fetch_add(1, Ordering::Relaxed);
        let mut st = self.state.lock();
        st.deferred.push(msg, Instant::now() + delay);
        self.reschedule(&mut st);
    }

    /// Hands up to `max` messages to consumer `client_id`, recording them in flight with `msg_timeout`, and
    /// appends copies to `out`. See [`Channel::take_with`], which the message pump uses to avoid the copies.
    pub fn take(
        &self,
        client_id: u64,
        max: usize,
        msg_timeout: Duration,
        sample_rate: i32,
        out: &mut Vec<Message>,
    ) -> usize {
        self.take_with(client_id, max, msg_timeout, sample_rate, |m| {
            out.push(m.clone());
            true
        })
    }

    /// Hands up to `max` messages to consumer `client_id`, recording them in flight with `msg_timeout`, and
    /// shows each delivered message (attempts already incremented) to `deliver` while the channel is locked,
    /// so the caller can encode it straight into its output buffer without cloning the message. `deliver`
    /// returns false to stop after that message (the caller's buffer is full).
    /// Messages skipped by sampling (`sample_rate` in 1..=99) are dropped for this channel, as in Go.
    /// Returns how many were delivered.
    pub fn take_with(
        &self,
        client_id: u64,
        max: usize,
        msg_timeout: Duration,
        sample_rate: i32,
        mut deliver: impl FnMut(&Message) -> bool,
    ) -> usize {
        if max == 0 || self.is_paused() || self.is_exiting() {
            return 0;
        }
        let mut st = self.state.lock();
        // Read under the lock, so deliveries get deadlines in the order they are recorded.
        let now = Instant::now();
        let deadline = now + msg_timeout;
        let mut taken = 0;
        let mut from_memory = 0;
        let mut rng = (sample_rate > 0).then(rand::thread_rng);
        while taken < max {
            let mut msg = match st.memory.pop_front() {
                Some(m) => {
                    from_memory += 1;
                    m
                }
                None => match st.backend.pop() {
                    Some(m) => m,
                    None => break,
                },
            };
            if let Some(rng) = rng.as_mut() {
                if rng.gen_range(0..100) > sample_rate {
                    continue;
                }
            }
            msg.attempts = msg.attempts.wrapping_add(1);
            let more = deliver(&msg);
            st.in_flight.insert(msg, client_id, now, deadline);
            taken += 1;
            if !more {
                break;
            }
        }
        st.global_msg_count += from_memory;
        if st.memory.is_empty() && st.memory.capacity() > SHRINK_ABOVE {
            // A drained backlog gives its memory back instead of keeping its high-water capacity.
            st.memory = VecDeque::new();
        }
        if taken > 0 {
            self.reschedule(&mut st);
        }
        taken
    }

    /// FIN (Go `FinishMessage`).
    pub fn finish(&self, client_id: u64, id: &MessageId) -> Result<(), Error> {
        let mut st = self.state.lock();
        let entry = st.in_flight.remove(id, client_id)?;
        if let Some(q) = st.e2e.as_mut() {
            q.insert(now_ns().saturating_sub(entry.msg.timestamp));
        }
        Ok(())
    }

    /// REQ (Go `RequeueMessage`): `delay` zero puts the message back at the tail, otherwise it is deferred.
    pub fn requeue(&self, client_id: u64, id: &MessageId, delay: Duration) -> Result<(), Error> {
        let mut st = self.state.lock();
        let entry = st.in_flight.remove(id, client_id)?;
        self.requeue_count.fetch_add(1, Ordering::Relaxed);
        if delay.is_zero() {
            // Go refuses a requeue while the channel exits and loses the message; here it goes back in the
            // queue, which the exit flush then writes to the backend.
            self.put_locked(&mut st, entry.msg);
            drop(st);
            self.notify.notify_waiters();
        } else {
            let mut msg = entry.msg;
            msg.unpin_body();
            st.deferred.push(msg, Instant::now() + delay);
            self.reschedule(&mut st);
        }
        Ok(())
    }

    /// TOUCH (Go `TouchMessage`): the deadline becomes now + `msg_timeout`, capped at delivery +
    /// `--max-msg-timeout`.
    pub fn touch(
        &self,
        client_id: u64,
        id: &MessageId,
        msg_timeout: Duration,
    ) -> Result<(), Error> {
        let mut st = self.state.lock();
        let now = Instant::now();
        st.in_flight.touch(
            id,
            client_id,
            now,
            msg_timeout,
            self.shared.cfg.max_msg_timeout,
        )?;
        self.reschedule(&mut st);
        Ok(())
    }

    /// Adds a consumer (Go `AddClient`), enforcing `--max-channel-consumers`.
    pub fn add_client(&self, consumer: Arc<dyn Consumer>) -> Result<(), Error> {
        if self.is_exiting() {
            return Err(Error::Exiting);
        }
        let mut st = self.state.lock();
        let id = consumer.id();
        if st.clients.contains_key(&id) {
            return Ok(());
        }
        let limit = self.shared.cfg.max_channel_consumers;
        if limit != 0 && i64::try_from(st.clients.len()).unwrap_or(i64::MAX) >= limit {
            return Err(Error::TooManyConsumers {
                topic: self.topic_name.clone(),
                channel: self.name.clone(),
                limit,
            });
        }
        st.clients.insert(id, consumer);
        Ok(())
    }

    /// Removes a consumer (Go `RemoveClient`). Returns true when an ephemeral channel just lost its last
    /// consumer and should be deleted. Its in-flight messages stay until they time out, as in Go.
    pub(crate) fn remove_client(&self, client_id: u64) -> bool {
        let mut st = self.state.lock();
        st.clients.remove(&client_id).is_some() && st.clients.is_empty() && self.ephemeral
    }

    /// Stops delivery (Go `Pause`).
    pub fn pause(&self) {
        self.set_paused(true);
    }

    /// Resumes delivery (Go `UnPause`).
    pub fn unpause(&self) {
        self.set_paused(false);
    }

    fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        for c in self.clients() {
            if paused {
                c.pause();
            } else {
                c.unpause();
            }
        }
        self.notify.notify_waiters();
    }

    /// Drops every queued, in-flight and deferred message (Go `Empty`).
    pub fn empty(&self) {
        let mut st = self.state.lock();
        st.memory = VecDeque::new();
        st.backend.empty();
        st.in_flight.drain().for_each(drop);
        st.deferred.drain().for_each(drop);
        for c in st.clients.values() {
            c.empty();
        }
    }

    /// Deletes the channel: closes its consumers and drops its messages (Go `exit(true)`).
    pub(crate) fn delete(&self) {
        self.exiting.store(true, Ordering::Release);
        for c in self.clients() {
            c.close();
        }
        self.empty();
        self.state.lock().backend.delete();
        self.notify.notify_waiters();
    }

    /// Closes the channel at shutdown: consumers are closed, messages stay (Go `exit(false)`).
    pub(crate) fn close(&self) {
        self.exiting.store(true, Ordering::Release);
        for c in self.clients() {
            c.close();
        }
        self.notify.notify_waiters();
    }

    /// Moves the memory queue, then the in-flight messages, then the deferred ones to the backend, as Go's
    /// `Channel.flush` does at exit (in-flight ones keep their incremented attempts; deferred ones lose their
    /// delay, as the disk format has no field for it). Returns how many moved.
    pub(crate) fn flush(&self) -> usize {
        let mut st = self.state.lock();
        let st = &mut *st;
        let mut deferred: Vec<_> = st.deferred.drain_timed().collect();
        deferred.sort_by_key(|t| (t.when, t.seq));
        let mut n = 0;
        let mut all = std::mem::take(&mut st.memory)
            .into_iter()
            .chain(st.in_flight.drain().map(|entry| entry.msg))
            .chain(deferred.into_iter().map(|t| t.item))
            .inspect(|_| n += 1);
        st.backend.put_batch(&mut all);
        drop(all);
        n
    }

    /// Requeues expired in-flight messages and releases due deferred ones; called by [`QueueScan`].
    pub(crate) fn process_queues(&self, now: Instant) {
        let mut st = self.state.lock();
        if st.scheduled.is_some_and(|s| s <= now) {
            st.scheduled = None;
        }
        let mut released = false;
        while let Some(entry) = st.in_flight.pop_expired(now) {
            self.timeout_count.fetch_add(1, Ordering::Relaxed);
            if let Some(c) = st.clients.get(&entry.client_id) {
                c.timed_out_message();
            }
            self.put_locked(&mut st, entry.msg);
            released = true;
        }
        while let Some(msg) = st.deferred.pop_due(now) {
            self.put_locked(&mut st, msg);
            released = true;
        }
        self.reschedule(&mut st);
        drop(st);
        if released {
            self.notify.notify_waiters();
        }
    }

    /// A snapshot for `/stats`.
    pub fn stats(&self, include_clients: bool) -> ChannelStats {
        let (mut stats, clients) = {
            let st = self.state.lock();
            let e2e = match &st.e2e {
                Some(q) => E2eStats {
                    count: q.count(),
                    percentiles: Some(q.query(&self.shared.cfg.e2e_percentiles)),
                },
                None => E2eStats::default(),
            };
            let clients: Vec<_> = if include_clients {
                st.clients.values().cloned().collect()
            } else {
                Vec::new()
            };
            let stats = ChannelStats {
                channel_name: self.name.clone(),
                depth: len_i64(st.memory.len()) + st.backend.depth(),
                backend_depth: st.backend.depth(),
                in_flight_count: len_i64(st.in_flight.len()),
                deferred_count: len_i64(st.deferred.len()),
                message_count: self.message_count.load(Ordering::Relaxed),
                requeue_count: self.requeue_count.load(Ordering::Relaxed),
                timeout_count: self.timeout_count.load(Ordering::Relaxed),
                client_count: st.clients.len(),
                clients: Vec::new(),
                paused: self.is_paused(),
                global_msg_count: st.global_msg_count,
                e2e_processing_latency: e2e,
            };
            (stats, clients)
        };
        stats.clients = clients.iter().map(|c| c.stats(&self.topic_name)).collect();
        stats
    }

    /// The diskqueue behind this channel's overflow, if it has one.
    pub fn disk_queue(&self) -> Option<crate::diskqueue::DiskQueue> {
        self.state.lock().backend.disk_queue()
    }

    /// A copy of this channel's latency estimator, for the topic's merged figures.
    pub(crate) fn e2e_snapshot(&self) -> Option<Quantile> {
        self.state.lock().e2e.clone()
    }

    /// Messages queued in memory plus backend.
    pub fn depth(&self) -> i64 {
        let st = self.state.lock();
        len_i64(st.memory.len()) + st.backend.depth()
    }

    fn clients(&self) -> Vec<Arc<dyn Consumer>> {
        self.state.lock().clients.values().cloned().collect()
    }

    /// Go's `put`: memory while there is room, the backend after that.
    fn put_locked(&self, st: &mut State, msg: Message) {
        if st.memory.len() < self.mem_capacity {
            st.memory.push_back(msg);
        } else {
            st.backend.put(msg);
        }
    }

    fn reschedule(&self, st: &mut State) {
        let next = match (st.in_flight.next_deadline(), st.deferred.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(next) = next {
            if st.scheduled.is_none_or(|s| next < s) {
                st.scheduled = Some(next);
                self.shared.scan.schedule(next, self.me.clone());
            }
        }
    }
}

/// Go gives ephemeral queues with `--mem-queue-size=0` an unbuffered Go channel: a message survives only if a
/// consumer is waiting right then. A capacity of one is the closest bounded equivalent.
pub(crate) fn mem_capacity(mem_queue_size: i64, ephemeral: bool) -> usize {
    let size = usize::try_from(mem_queue_size).unwrap_or(0);
    if size == 0 && ephemeral {
        1
    } else {
        size
    }
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
