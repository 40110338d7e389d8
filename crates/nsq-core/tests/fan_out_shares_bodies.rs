//! Proves that a topic hands every message to every channel, in publish order, sharing one body allocation
//! between the channels, and that PUB and MPUB are counted in the stats.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{bodies, registry, take_all};
use nsq_core::CoreConfig;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn every_channel_gets_every_message_in_order_without_copies() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, created) = topics.get_topic("orders");
    assert!(created);
    let channels: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|name| topic.get_channel(name).0)
        .collect();

    let published = bodies(105, 64);
    // Five single PUBs, then one MPUB of a hundred.
    for body in &published[..5] {
        topic
            .put_message(body.clone(), Duration::ZERO)
            .expect("publish");
    }
    topic
        .put_messages(published[5..].iter().cloned(), Duration::ZERO)
        .expect("mpub");

    let taken: Vec<_> = channels.iter().map(|c| take_all(c, 1, TIMEOUT)).collect();
    for (msgs, channel) in taken.iter().zip(&channels) {
        assert_eq!(msgs.len(), published.len(), "channel {}", channel.name());
        for (msg, body) in msgs.iter().zip(&published) {
            assert_eq!(msg.body, *body, "order on channel {}", channel.name());
            assert_eq!(
                msg.body.as_ptr(),
                body.as_ptr(),
                "channel {} got a copy of the body",
                channel.name()
            );
            assert_eq!(msg.attempts, 1);
        }
    }
    // The same message has the same id and timestamp on every channel.
    for ((a, b), c) in taken[0].iter().zip(&taken[1]).zip(&taken[2]) {
        assert_eq!((a.id, a.timestamp), (b.id, b.timestamp));
        assert_eq!((a.id, a.timestamp), (c.id, c.timestamp));
    }
    // Ids are unique within the topic.
    let mut ids: Vec<_> = taken[0].iter().map(|m| m.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), published.len());
}

#[tokio::test(start_paused = true)]
async fn pub_and_mpub_are_counted_in_topic_and_channel_stats() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("counted");
    let a = topic.get_channel("a").0;
    let b = topic.get_channel("b").0;

    topic
        .put_message(Bytes::from_static(b"hello"), Duration::ZERO)
        .expect("pub");
    let batch = bodies(10, 200);
    topic
        .put_messages(batch.iter().cloned(), Duration::ZERO)
        .expect("mpub");

    let stats = topic.stats(None, false);
    assert_eq!(stats.message_count, 11);
    assert_eq!(stats.message_bytes, 5 + 10 * 200);
    assert_eq!(stats.depth, 0, "fanned out, nothing waits at the topic");
    assert_eq!(stats.channels.len(), 2);
    for ch in &stats.channels {
        assert_eq!(ch.message_count, 11, "{}", ch.channel_name);
        assert_eq!(ch.depth, 11, "{}", ch.channel_name);
        assert_eq!(ch.in_flight_count, 0);
    }

    // Taking moves messages from depth to in flight on one channel only.
    assert_eq!(take_all(&a, 7, TIMEOUT).len(), 11);
    let a_stats = a.stats(false);
    assert_eq!((a_stats.depth, a_stats.in_flight_count), (0, 11));
    assert_eq!(a_stats.global_msg_count, 11);
    let b_stats = b.stats(false);
    assert_eq!((b_stats.depth, b_stats.in_flight_count), (11, 0));

    // Filtering the topic's stats by channel lists only that channel.
    let only_b = topic.stats(Some("b"), false);
    assert_eq!(only_b.channels.len(), 1);
    assert_eq!(only_b.channels[0].channel_name, "b");
}
