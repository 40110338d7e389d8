//! Proves channel pause, empty and sampling: a paused channel hands out nothing and unpausing wakes a waiting
//! consumer, emptying drops queued, in-flight and deferred messages and tells the consumers, and a sample rate
//! keeps about that share of the messages.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{bodies, registry, take_all, FakeConsumer};
use nsq_core::{CoreConfig, Error};
use tokio::sync::oneshot;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn paused_channel_delivers_nothing_and_unpause_wakes_the_waiter() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("t");
    let channel = topic.get_channel("c").0;
    let consumer = FakeConsumer::new(1);
    channel.add_client(consumer.clone()).expect("subscribe");

    channel.pause();
    assert!(channel.is_paused());
    assert_eq!(consumer.paused(), 1);
    topic
        .put_message(Bytes::from_static(b"held"), Duration::ZERO)
        .expect("pub");
    assert!(take_all(&channel, 1, TIMEOUT).is_empty());
    assert_eq!(channel.depth(), 1, "paused messages still queue");
    assert!(channel.stats(false).paused);

    // A consumer pump, written the way the daemon's is: enable the wake-up, try to take, then wait.
    let (tx, mut rx) = oneshot::channel();
    let pump_channel = channel.clone();
    tokio::spawn(async move {
        loop {
            let notified = pump_channel.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut out = Vec::new();
            if pump_channel.take(1, 1, TIMEOUT, 0, &mut out) > 0 {
                let _ = tx.send(out.remove(0));
                return;
            }
            notified.await;
        }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(rx.try_recv().is_err(), "delivered while paused");

    channel.unpause();
    assert_eq!(consumer.unpaused(), 1);
    let msg = tokio::time::timeout(Duration::from_secs(1), rx)
        .await
        .expect("unpause did not wake the pump")
        .expect("pump ended");
    assert_eq!(&msg.body[..], b"held");
}

#[tokio::test(start_paused = true)]
async fn empty_drops_queued_in_flight_and_deferred_messages() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("t");
    let channel = topic.get_channel("c").0;
    let consumer = FakeConsumer::new(1);
    channel.add_client(consumer.clone()).expect("subscribe");
    topic
        .put_messages(bodies(6, 16), Duration::ZERO)
        .expect("mpub");
    topic
        .put_message(Bytes::from_static(b"dpub"), Duration::from_secs(30))
        .expect("dpub");

    let mut out = Vec::new();
    assert_eq!(channel.take(1, 3, TIMEOUT, 0, &mut out), 3);
    channel
        .requeue(1, &out[0].id, Duration::from_secs(10))
        .expect("req");
    let s = channel.stats(false);
    assert_eq!((s.depth, s.in_flight_count, s.deferred_count), (3, 2, 2));

    channel.empty();
    assert_eq!(consumer.emptied(), 1);
    let s = channel.stats(false);
    assert_eq!((s.depth, s.in_flight_count, s.deferred_count), (0, 0, 0));
    assert_eq!(channel.finish(1, &out[1].id), Err(Error::NotInFlight));

    // Nothing comes back later: the timeouts and deferrals went with the messages.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let s = channel.stats(false);
    assert_eq!((s.depth, s.timeout_count), (0, 0));
    assert_eq!(consumer.timed_out(), 0);

    // The channel still works afterwards, and its new in-flight messages still time out.
    topic
        .put_message(Bytes::from_static(b"after"), Duration::ZERO)
        .expect("pub");
    let got = take_all(&channel, 1, Duration::from_secs(1));
    assert_eq!(got.len(), 1);
    tokio::time::sleep(Duration::from_millis(1010)).await;
    assert_eq!(channel.stats(false).timeout_count, 1);
}

#[tokio::test(start_paused = true)]
async fn sample_rate_keeps_about_that_share() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("t");
    let channel = topic.get_channel("c").0;
    topic
        .put_messages(bodies(10_000, 8), Duration::ZERO)
        .expect("mpub");

    let mut kept = Vec::new();
    while channel.take(1, 256, TIMEOUT, 50, &mut kept) > 0 {}
    // Go keeps a message when rand(100) <= rate, so 51 in 100; the bounds are over six standard deviations.
    assert!(
        (4_800..=5_400).contains(&kept.len()),
        "kept {} of 10000",
        kept.len()
    );
    let s = channel.stats(false);
    assert_eq!(s.depth, 0, "skipped messages are dropped for this channel");
    assert_eq!(s.in_flight_count as usize, kept.len());
    // What is kept keeps its order.
    assert!(kept.windows(2).all(|w| w[0].body < w[1].body));

    // A rate of 0 means no sampling.
    topic
        .put_messages(bodies(1_000, 8), Duration::ZERO)
        .expect("mpub");
    let mut all = Vec::new();
    while channel.take(1, 256, TIMEOUT, 0, &mut all) > 0 {}
    assert_eq!(all.len(), 1_000);
}
