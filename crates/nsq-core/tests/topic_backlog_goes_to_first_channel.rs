//! Proves where messages wait when a topic cannot fan out: with no channel, or while paused, they stay at the
//! topic; the first channel receives that backlog, later channels do not, and emptying the topic drops it.

mod common;

use std::time::Duration;

use common::{bodies, registry, take_all};
use nsq_core::CoreConfig;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn first_channel_gets_the_backlog_and_a_later_one_does_not() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("early");
    let published = bodies(5, 32);
    topic
        .put_messages(published.iter().cloned(), Duration::ZERO)
        .expect("mpub");
    assert_eq!(topic.depth(), 5);
    assert_eq!(topic.stats(None, false).depth, 5);

    let (first, created) = topic.get_channel("first");
    assert!(created);
    assert_eq!(topic.depth(), 0, "the backlog moved to the first channel");
    assert_eq!(first.depth(), 5);
    let (second, _) = topic.get_channel("second");
    assert_eq!(
        second.depth(),
        0,
        "a later channel does not see old messages"
    );

    let later = bodies(1, 32).remove(0);
    topic
        .put_message(later.clone(), Duration::ZERO)
        .expect("pub");
    let got: Vec<_> = take_all(&first, 1, TIMEOUT)
        .into_iter()
        .map(|m| m.body)
        .collect();
    let mut want = published.clone();
    want.push(later.clone());
    assert_eq!(got, want);
    let got: Vec<_> = take_all(&second, 1, TIMEOUT)
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(got, vec![later]);
}

#[tokio::test(start_paused = true)]
async fn paused_topic_holds_messages_until_unpaused() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("held");
    let a = topic.get_channel("a").0;
    topic.pause();
    assert!(topic.is_paused());

    let published = bodies(3, 16);
    topic
        .put_messages(published.iter().cloned(), Duration::ZERO)
        .expect("mpub");
    assert_eq!(topic.depth(), 3);
    assert_eq!(a.depth(), 0);

    // A channel created while paused does not drain the backlog either, but it is there to receive it.
    let b = topic.get_channel("b").0;
    assert_eq!(topic.depth(), 3);
    assert_eq!(b.depth(), 0);
    assert!(topic.stats(None, false).paused);

    topic.unpause();
    assert_eq!(topic.depth(), 0);
    for c in [&a, &b] {
        let got: Vec<_> = take_all(c, 1, TIMEOUT)
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(got, published, "channel {}", c.name());
    }

    // After unpausing, publishing fans out directly again.
    topic
        .put_message(published[0].clone(), Duration::ZERO)
        .expect("pub");
    assert_eq!((topic.depth(), a.depth(), b.depth()), (0, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn emptying_a_topic_drops_its_backlog() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("dropped");
    topic
        .put_messages(bodies(4, 16), Duration::ZERO)
        .expect("mpub");
    assert_eq!(topic.depth(), 4);
    topic.empty();
    assert_eq!(topic.depth(), 0);
    let c = topic.get_channel("c").0;
    assert_eq!(c.depth(), 0);
    // Publishing counts are history, not depth: they survive the empty.
    assert_eq!(topic.stats(None, false).message_count, 4);
}

#[tokio::test(start_paused = true)]
async fn emptying_a_topic_leaves_its_channels_alone() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("kept");
    let c = topic.get_channel("c").0;
    topic
        .put_messages(bodies(4, 16), Duration::ZERO)
        .expect("mpub");
    topic.empty();
    assert_eq!(c.depth(), 4);
}
