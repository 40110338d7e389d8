//! Proves the delete cascade: an ephemeral channel goes when its last consumer leaves and an ephemeral topic
//! goes with its last channel, durable ones stay, and deleting a channel or topic closes its consumers and
//! drops its messages.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{registry, take_all, FakeConsumer};
use nsq_core::{CoreConfig, Error};

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn ephemeral_channel_and_topic_go_with_the_last_consumer() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("t#ephemeral");
    let channel = topic.get_channel("c#ephemeral").0;
    let (one, two) = (FakeConsumer::new(1), FakeConsumer::new(2));
    channel.add_client(one.clone()).expect("subscribe");
    channel.add_client(two.clone()).expect("subscribe");

    topics.remove_consumer(&channel, 1);
    assert!(topic.get_existing_channel("c#ephemeral").is_some());
    assert!(topics.get_existing_topic("t#ephemeral").is_some());

    // Removing a consumer that never subscribed changes nothing.
    topics.remove_consumer(&channel, 99);
    assert!(topic.get_existing_channel("c#ephemeral").is_some());

    topics.remove_consumer(&channel, 2);
    assert!(topic.get_existing_channel("c#ephemeral").is_none());
    assert!(channel.is_exiting());
    assert!(topics.get_existing_topic("t#ephemeral").is_none());
    assert!(topic.is_exiting());
    assert_eq!(
        topic
            .put_message(Bytes::from_static(b"late"), Duration::ZERO)
            .err(),
        Some(Error::Exiting)
    );
}

#[tokio::test(start_paused = true)]
async fn ephemeral_topic_stays_while_another_channel_remains() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("t#ephemeral");
    let a = topic.get_channel("a#ephemeral").0;
    let b = topic.get_channel("b#ephemeral").0;
    a.add_client(FakeConsumer::new(1)).expect("subscribe");
    b.add_client(FakeConsumer::new(2)).expect("subscribe");

    topics.remove_consumer(&a, 1);
    assert!(topic.get_existing_channel("a#ephemeral").is_none());
    assert!(topics.get_existing_topic("t#ephemeral").is_some());
    topics.remove_consumer(&b, 2);
    assert!(topics.get_existing_topic("t#ephemeral").is_none());
}

#[tokio::test(start_paused = true)]
async fn ephemeral_channel_of_a_durable_topic_goes_alone() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("t");
    let channel = topic.get_channel("c#ephemeral").0;
    channel.add_client(FakeConsumer::new(1)).expect("subscribe");
    topics.remove_consumer(&channel, 1);
    assert!(topic.get_existing_channel("c#ephemeral").is_none());
    assert!(topics.get_existing_topic("t").is_some());
    assert!(!topic.is_exiting());
}

#[tokio::test(start_paused = true)]
async fn durable_channel_stays_without_consumers() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("t#ephemeral");
    let channel = topic.get_channel("c").0;
    channel.add_client(FakeConsumer::new(1)).expect("subscribe");
    topic
        .put_message(Bytes::from_static(b"kept"), Duration::ZERO)
        .expect("pub");
    topics.remove_consumer(&channel, 1);
    assert!(topic.get_existing_channel("c").is_some());
    assert!(topics.get_existing_topic("t#ephemeral").is_some());
    assert!(!channel.is_exiting());
    assert_eq!(channel.depth(), 1);
    assert_eq!(channel.stats(false).client_count, 0);
}

#[tokio::test(start_paused = true)]
async fn deleting_a_channel_closes_its_consumers_and_drops_its_messages() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("t");
    let channel = topic.get_channel("c").0;
    let other = topic.get_channel("other").0;
    let consumer = FakeConsumer::new(1);
    channel.add_client(consumer.clone()).expect("subscribe");
    topic
        .put_messages(
            [b"a", b"b", b"c"].map(|b| Bytes::from_static(b)),
            Duration::ZERO,
        )
        .expect("mpub");
    let mut out = Vec::new();
    assert_eq!(channel.take(1, 1, TIMEOUT, 0, &mut out), 1);

    assert_eq!(topic.delete_existing_channel("c"), Ok(false));
    assert_eq!(consumer.closed(), 1);
    assert!(channel.is_exiting());
    let s = channel.stats(false);
    assert_eq!((s.depth, s.in_flight_count), (0, 0));
    assert!(take_all(&channel, 1, TIMEOUT).is_empty());
    assert!(topic.get_existing_channel("c").is_none());
    assert_eq!(
        channel.add_client(FakeConsumer::new(2)),
        Err(Error::Exiting)
    );
    assert_eq!(
        topic.delete_existing_channel("c"),
        Err(Error::ChannelNotFound)
    );
    // The sibling keeps its copy and new messages go only to it.
    assert_eq!(other.depth(), 3);
    topic
        .put_message(Bytes::from_static(b"d"), Duration::ZERO)
        .expect("pub");
    assert_eq!((other.depth(), channel.depth()), (4, 0));
}

#[tokio::test(start_paused = true)]
async fn deleting_a_topic_deletes_its_channels() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("t");
    let a = topic.get_channel("a").0;
    let b = topic.get_channel("b").0;
    let (one, two) = (FakeConsumer::new(1), FakeConsumer::new(2));
    a.add_client(one.clone()).expect("subscribe");
    b.add_client(two.clone()).expect("subscribe");
    topic
        .put_message(Bytes::from_static(b"x"), Duration::ZERO)
        .expect("pub");

    topics.delete_existing_topic("t").expect("delete");
    assert!(topics.get_existing_topic("t").is_none());
    assert!(topic.is_exiting());
    assert!(a.is_exiting() && b.is_exiting());
    assert_eq!((one.closed(), two.closed()), (1, 1));
    assert_eq!((a.depth(), b.depth()), (0, 0));
    assert!(topic.channels().is_empty());
    assert_eq!(topics.delete_existing_topic("t"), Err(Error::TopicNotFound));
    // The name can be used again, for a fresh topic.
    let (again, created) = topics.get_topic("t");
    assert!(created);
    assert!(!again.is_exiting());
}

#[tokio::test(start_paused = true)]
async fn max_channel_consumers_is_enforced() {
    let cfg = CoreConfig {
        max_channel_consumers: 2,
        ..CoreConfig::default()
    };
    let (topics, _scan) = registry(cfg);
    let channel = topics.get_topic("t").0.get_channel("c").0;
    channel.add_client(FakeConsumer::new(1)).expect("first");
    channel.add_client(FakeConsumer::new(2)).expect("second");
    // Re-adding a subscribed client is not a new consumer.
    channel.add_client(FakeConsumer::new(2)).expect("again");
    let err = channel.add_client(FakeConsumer::new(3)).unwrap_err();
    assert_eq!(err.to_string(), "consumers for t:c exceeds limit of 2");
}
