//! Proves that the queue scanner costs nothing for channels with no deadline: with 10,000 subscribed channels
//! and nothing in flight it has nothing pending and is not woken, and with one in-flight message per channel it
//! holds one wake-up per channel and does no work before the deadline.
//!
//! The scanner's future is wrapped in a poll counter: a task that is never polled does no work, so the count is
//! the CPU cost measure, without adding instrumentation to the crate.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{settle, FakeConsumer, PollCounter};
use nsq_core::{Channel, CoreConfig, QueueScan, Topics};
use tokio::time::{sleep, sleep_until, Instant};

const CHANNELS: u64 = 10_000;

/// 10,000 topics, each with one channel, one subscribed consumer and one queued message.
fn populate(topics: &Topics) -> Vec<(Arc<Channel>, Arc<FakeConsumer>)> {
    (0..CHANNELS)
        .map(|i| {
            let (topic, _) = topics.get_topic(&format!("topic_{i}"));
            let channel = topic.get_channel("c").0;
            let consumer = FakeConsumer::new(i);
            channel.add_client(consumer.clone()).expect("subscribe");
            topic
                .put_message(Bytes::from_static(b"m"), Duration::ZERO)
                .expect("pub");
            (channel, consumer)
        })
        .collect()
}

#[tokio::test]
async fn idle_channels_schedule_nothing_and_never_wake_the_scanner() {
    let scan = QueueScan::new();
    let (counted, polls) = PollCounter::new(Arc::clone(&scan).run(std::future::pending()));
    tokio::spawn(counted);
    let topics = Topics::new(CoreConfig::default(), Arc::clone(&scan));
    let channels = populate(&topics);
    assert_eq!(scan.pending(), 0);

    // One second of real time with 10,000 idle channels: the scanner is polled once when it starts and parks.
    settle().await;
    let before = polls.load(Ordering::SeqCst);
    sleep(Duration::from_secs(1)).await;
    let during = polls.load(Ordering::SeqCst) - before;
    assert_eq!(during, 0, "the scanner woke {during} times while idle");
    assert!(before <= 1, "polled {before} times at start");
    assert_eq!(scan.pending(), 0);

    // The counter does see work: one short in-flight timeout wakes the scanner and is processed.
    let (channel, consumer) = &channels[0];
    let mut out = Vec::new();
    assert_eq!(
        channel.take(0, 1, Duration::from_millis(50), 0, &mut out),
        1
    );
    assert_eq!(scan.pending(), 1);
    sleep(Duration::from_millis(200)).await;
    assert!(
        polls.load(Ordering::SeqCst) > before,
        "timeout did not wake the scanner"
    );
    assert_eq!(consumer.timed_out(), 1);
    assert_eq!(scan.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn one_wake_up_per_busy_channel_and_no_work_before_the_deadline() {
    let scan = QueueScan::new();
    let (counted, polls) = PollCounter::new(Arc::clone(&scan).run(std::future::pending()));
    tokio::spawn(counted);
    let topics = Topics::new(CoreConfig::default(), Arc::clone(&scan));
    let channels = populate(&topics);

    let start = Instant::now();
    let mut out = Vec::new();
    for (i, (channel, _)) in channels.iter().enumerate() {
        out.clear();
        let taken = channel.take(i as u64, 1, Duration::from_secs(60), 0, &mut out);
        assert_eq!(taken, 1);
    }
    let pending = scan.pending();
    assert!(
        (CHANNELS as usize..=CHANNELS as usize + 10).contains(&pending),
        "pending {pending}"
    );

    sleep_until(start + Duration::from_secs(59)).await;
    settle().await;
    // Started, woken once by the first registration, then asleep until the common deadline.
    let woken = polls.load(Ordering::SeqCst);
    assert!(
        woken <= 3,
        "the scanner was polled {woken} times before any deadline"
    );
    for (channel, consumer) in &channels {
        let s = channel.stats(false);
        assert_eq!((s.in_flight_count, s.timeout_count), (1, 0));
        assert_eq!(consumer.timed_out(), 0);
    }
    assert_eq!(scan.pending(), pending);

    sleep_until(start + Duration::from_millis(60_010)).await;
    settle().await;
    for (channel, consumer) in &channels {
        let s = channel.stats(false);
        assert_eq!((s.in_flight_count, s.timeout_count, s.depth), (0, 1, 1));
        assert_eq!(consumer.timed_out(), 1);
    }
    assert_eq!(scan.pending(), 0, "nothing left to wake for");
}
