//! Proves the `--mem-queue-size` split: messages beyond it go to the backend (a `MemoryBackend` for durable
//! topics and channels until the diskqueue lands) and are still delivered in order, while ephemeral ones drop the overflow as Go does.

mod common;

use std::time::Duration;

use common::{bodies, registry, take_all};
use nsq_core::CoreConfig;

const TIMEOUT: Duration = Duration::from_secs(60);

fn small() -> CoreConfig {
    CoreConfig {
        mem_queue_size: 10,
        ..CoreConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn channel_overflow_goes_to_the_backend_and_is_delivered_in_order() {
    let (topics, _scan) = registry(small());
    let (topic, _) = topics.get_topic("t");
    let channel = topic.get_channel("c").0;
    let published = bodies(25, 16);
    topic
        .put_messages(published.iter().cloned(), Duration::ZERO)
        .expect("mpub");

    let s = channel.stats(false);
    assert_eq!((s.depth, s.backend_depth), (25, 15));
    let got: Vec<_> = take_all(&channel, 1, TIMEOUT)
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(got, published);
    let s = channel.stats(false);
    assert_eq!((s.depth, s.backend_depth, s.in_flight_count), (0, 0, 25));
    // Go counts only messages read from the memory queue in global_msg_count.
    assert_eq!(s.global_msg_count, 10);
}

#[tokio::test(start_paused = true)]
async fn topic_backlog_overflows_too_and_reaches_the_first_channel_whole() {
    let (topics, _scan) = registry(small());
    let (topic, _) = topics.get_topic("t");
    let published = bodies(25, 16);
    topic
        .put_messages(published.iter().cloned(), Duration::ZERO)
        .expect("mpub");
    let s = topic.stats(None, false);
    assert_eq!((s.depth, s.backend_depth), (25, 15));

    let channel = topic.get_channel("c").0;
    assert_eq!(topic.depth(), 0);
    let s = channel.stats(false);
    assert_eq!((s.depth, s.backend_depth), (25, 15));
    let got: Vec<_> = take_all(&channel, 1, TIMEOUT)
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(got, published);
}

#[tokio::test(start_paused = true)]
async fn ephemeral_channel_drops_its_overflow() {
    let (topics, _scan) = registry(small());
    let (topic, _) = topics.get_topic("t");
    let durable = topic.get_channel("c").0;
    let ephemeral = topic.get_channel("c#ephemeral").0;
    assert!(ephemeral.is_ephemeral());
    let published = bodies(25, 16);
    topic
        .put_messages(published.iter().cloned(), Duration::ZERO)
        .expect("mpub");

    let s = ephemeral.stats(false);
    assert_eq!((s.depth, s.backend_depth), (10, 0));
    // Every message was put, even the dropped ones.
    assert_eq!(s.message_count, 25);
    let got: Vec<_> = take_all(&ephemeral, 1, TIMEOUT)
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(got, published[..10].to_vec(), "the first ten are kept");
    // The durable sibling is unaffected.
    assert_eq!(durable.depth(), 25);
}

#[tokio::test(start_paused = true)]
async fn ephemeral_topic_drops_its_overflow() {
    let (topics, _scan) = registry(small());
    let (topic, _) = topics.get_topic("t#ephemeral");
    topic
        .put_messages(bodies(25, 16), Duration::ZERO)
        .expect("mpub");
    let s = topic.stats(None, false);
    assert_eq!((s.depth, s.backend_depth, s.message_count), (10, 0, 25));
}

#[tokio::test(start_paused = true)]
async fn zero_mem_queue_sends_everything_to_the_backend() {
    let cfg = CoreConfig {
        mem_queue_size: 0,
        ..CoreConfig::default()
    };
    let (topics, _scan) = registry(cfg);
    let (topic, _) = topics.get_topic("t");
    let channel = topic.get_channel("c").0;
    let published = bodies(5, 16);
    topic
        .put_messages(published.iter().cloned(), Duration::ZERO)
        .expect("mpub");
    let s = channel.stats(false);
    assert_eq!((s.depth, s.backend_depth), (5, 5));
    let got: Vec<_> = take_all(&channel, 1, TIMEOUT)
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(got, published);
}
