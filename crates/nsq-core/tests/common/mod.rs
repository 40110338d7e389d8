//! Fixtures shared by the nsq-core behaviour tests: a consumer that records every callback, a registry with its
//! queue scanner running, and helpers to publish and drain messages.
//!
//! Each test binary uses a different subset, so unused helpers are expected here.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use nsq_core::stats::ClientStats;
use nsq_core::{Channel, Consumer, CoreConfig, Message, QueueScan, Topics};

/// A consumer that only counts what the channel tells it.
#[derive(Debug, Default)]
pub(crate) struct FakeConsumer {
    id: u64,
    timed_out: AtomicU64,
    emptied: AtomicU64,
    paused: AtomicU64,
    unpaused: AtomicU64,
    closed: AtomicU64,
}

impl FakeConsumer {
    pub(crate) fn new(id: u64) -> Arc<Self> {
        Arc::new(Self {
            id,
            ..Self::default()
        })
    }

    pub(crate) fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::SeqCst)
    }

    pub(crate) fn emptied(&self) -> u64 {
        self.emptied.load(Ordering::SeqCst)
    }

    pub(crate) fn paused(&self) -> u64 {
        self.paused.load(Ordering::SeqCst)
    }

    pub(crate) fn unpaused(&self) -> u64 {
        self.unpaused.load(Ordering::SeqCst)
    }

    pub(crate) fn closed(&self) -> u64 {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Consumer for FakeConsumer {
    fn id(&self) -> u64 {
        self.id
    }
    fn timed_out_message(&self) {
        self.timed_out.fetch_add(1, Ordering::SeqCst);
    }
    fn empty(&self) {
        self.emptied.fetch_add(1, Ordering::SeqCst);
    }
    fn pause(&self) {
        self.paused.fetch_add(1, Ordering::SeqCst);
    }
    fn unpause(&self) {
        self.unpaused.fetch_add(1, Ordering::SeqCst);
    }
    fn close(&self) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
    fn stats(&self, _topic_name: &str) -> ClientStats {
        ClientStats::default()
    }
}

/// A registry whose scanner task runs on the current runtime until the test ends.
pub(crate) fn registry(cfg: CoreConfig) -> (Topics, Arc<QueueScan>) {
    let scan = QueueScan::new();
    tokio::spawn(Arc::clone(&scan).run(std::future::pending()));
    (Topics::new(cfg, Arc::clone(&scan)), scan)
}

/// `n` distinct bodies of `size` bytes; the first bytes carry the index so order can be checked.
pub(crate) fn bodies(n: usize, size: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            let mut v = format!("{i:08}").into_bytes();
            v.resize(size.max(8), b'x');
            Bytes::from(v)
        })
        .collect()
}

/// Takes everything currently deliverable for `client_id`.
pub(crate) fn take_all(channel: &Channel, client_id: u64, msg_timeout: Duration) -> Vec<Message> {
    let mut out = Vec::new();
    while channel.take(client_id, 256, msg_timeout, 0, &mut out) > 0 {}
    out
}

/// Lets spawned tasks (the scanner) run whatever became ready.
pub(crate) async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// Wraps a future and counts how often the executor polls it: a parked task is not polled, so the count is a
/// direct measure of how often the scanner woke up.
#[derive(Debug)]
pub(crate) struct PollCounter<F> {
    inner: Pin<Box<F>>,
    polls: Arc<AtomicUsize>,
}

impl<F> PollCounter<F> {
    pub(crate) fn new(inner: F) -> (Self, Arc<AtomicUsize>) {
        let polls = Arc::new(AtomicUsize::new(0));
        (
            Self {
                inner: Box::pin(inner),
                polls: Arc::clone(&polls),
            },
            polls,
        )
    }
}

impl<F: Future> Future for PollCounter<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.inner.as_mut().poll(cx)
    }
}
