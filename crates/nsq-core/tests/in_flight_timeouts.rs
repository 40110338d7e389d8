//! Proves the in-flight and deferred life cycle under paused time: a message not finished within its timeout
//! goes back to the queue, FIN prevents that, TOUCH moves the deadline up to the `--max-msg-timeout` cap, REQ
//! requeues at once or after a delay, and only the owner may act on a message. DPUB delays first delivery.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{registry, settle, take_all, FakeConsumer};
use nsq_core::{Channel, CoreConfig, Error, Message, MessageId, Topic};
use tokio::time::{sleep_until, Instant};

const SECOND: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A topic `t` with channel `c`, consumer 1 subscribed and one message published.
fn setup(
    cfg: CoreConfig,
) -> (
    nsq_core::Topics,
    Arc<Topic>,
    Arc<Channel>,
    Arc<FakeConsumer>,
) {
    let (topics, _scan) = registry(cfg);
    let (topic, _) = topics.get_topic("t");
    let channel = topic.get_channel("c").0;
    let consumer = FakeConsumer::new(1);
    channel.add_client(consumer.clone()).expect("subscribe");
    topic
        .put_message(Bytes::from_static(b"payload"), Duration::ZERO)
        .expect("pub");
    (topics, topic, channel, consumer)
}

fn take_one(channel: &Channel, client_id: u64, timeout: Duration) -> Message {
    let mut out = Vec::new();
    assert_eq!(channel.take(client_id, 1, timeout, 0, &mut out), 1);
    out.remove(0)
}

/// Sleeps (in paused time) to `at`, then lets the scanner run.
async fn at(at: Instant) {
    sleep_until(at).await;
    settle().await;
}

#[tokio::test(start_paused = true)]
async fn unfinished_message_is_requeued_after_its_timeout() {
    let (_topics, _topic, channel, consumer) = setup(CoreConfig::default());
    let start = Instant::now();
    let first = take_one(&channel, 1, SECOND);
    assert_eq!(first.attempts, 1);

    at(start + ms(999)).await;
    let s = channel.stats(false);
    assert_eq!((s.in_flight_count, s.timeout_count, s.depth), (1, 0, 0));
    assert_eq!(consumer.timed_out(), 0);

    at(start + ms(1001)).await;
    let s = channel.stats(false);
    assert_eq!((s.in_flight_count, s.timeout_count, s.depth), (0, 1, 1));
    assert_eq!(consumer.timed_out(), 1);

    let again = take_one(&channel, 1, SECOND);
    assert_eq!(again.attempts, 2);
    assert_eq!(again.id, first.id);
    assert_eq!(again.timestamp, first.timestamp);
    assert_eq!(again.body, first.body);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_consumer_is_woken_by_a_timeout() {
    let (_topics, _topic, channel, _consumer) = setup(CoreConfig::default());
    let start = Instant::now();
    let _ = take_one(&channel, 1, SECOND);
    let waiter = channel.notify().notified();
    tokio::pin!(waiter);
    waiter.as_mut().enable();
    tokio::select! {
        () = &mut waiter => {}
        () = sleep_until(start + ms(1500)) => panic!("no wake-up after the timeout"),
    }
    assert_eq!(channel.depth(), 1);
}

#[tokio::test(start_paused = true)]
async fn fin_before_the_deadline_prevents_the_timeout() {
    let (_topics, _topic, channel, consumer) = setup(CoreConfig::default());
    let start = Instant::now();
    let msg = take_one(&channel, 1, SECOND);
    at(start + ms(500)).await;
    channel.finish(1, &msg.id).expect("fin");
    at(start + ms(3000)).await;
    let s = channel.stats(false);
    assert_eq!(
        (s.in_flight_count, s.timeout_count, s.depth, s.requeue_count),
        (0, 0, 0, 0)
    );
    assert_eq!(consumer.timed_out(), 0);
    assert_eq!(channel.finish(1, &msg.id), Err(Error::NotInFlight));
}

#[tokio::test(start_paused = true)]
async fn touch_moves_the_deadline_up_to_the_max_msg_timeout() {
    let cfg = CoreConfig {
        max_msg_timeout: Duration::from_secs(3),
        ..CoreConfig::default()
    };
    let (_topics, _topic, channel, consumer) = setup(cfg);
    let start = Instant::now();
    let msg = take_one(&channel, 1, SECOND);

    // Deadline 1.0 s -> 1.9 s.
    at(start + ms(900)).await;
    channel.touch(1, &msg.id, SECOND).expect("touch");
    at(start + ms(1500)).await;
    assert_eq!(channel.stats(false).timeout_count, 0, "touch had no effect");

    // -> 2.8 s, then 3.7 s would pass delivery + 3 s, so the deadline is capped at 3.0 s.
    at(start + ms(1800)).await;
    channel.touch(1, &msg.id, SECOND).expect("touch");
    at(start + ms(2700)).await;
    channel.touch(1, &msg.id, SECOND).expect("touch");
    at(start + ms(2990)).await;
    assert_eq!(channel.stats(false).timeout_count, 0);
    at(start + ms(3010)).await;
    let s = channel.stats(false);
    assert_eq!(
        (s.timeout_count, s.in_flight_count),
        (1, 0),
        "the deadline was not capped"
    );
    assert_eq!(consumer.timed_out(), 1);
    assert_eq!(channel.touch(1, &msg.id, SECOND), Err(Error::NotInFlight));
}

#[tokio::test(start_paused = true)]
async fn touch_can_shorten_the_deadline_too() {
    let (_topics, _topic, channel, _consumer) = setup(CoreConfig::default());
    let start = Instant::now();
    let msg = take_one(&channel, 1, Duration::from_secs(60));
    channel.touch(1, &msg.id, SECOND).expect("touch");
    at(start + ms(1010)).await;
    assert_eq!(channel.stats(false).timeout_count, 1);
}

#[tokio::test(start_paused = true)]
async fn req_zero_puts_the_message_back_at_once() {
    let (_topics, _topic, channel, consumer) = setup(CoreConfig::default());
    let msg = take_one(&channel, 1, SECOND);
    channel.requeue(1, &msg.id, Duration::ZERO).expect("req");
    let s = channel.stats(false);
    assert_eq!(
        (
            s.depth,
            s.in_flight_count,
            s.deferred_count,
            s.requeue_count
        ),
        (1, 0, 0, 1)
    );
    let again = take_one(&channel, 1, SECOND);
    assert_eq!((again.id, again.attempts), (msg.id, 2));
    // A requeue is not a timeout.
    assert_eq!(channel.stats(false).timeout_count, 0);
    assert_eq!(consumer.timed_out(), 0);
}

#[tokio::test(start_paused = true)]
async fn req_with_delay_defers_the_message_until_it_is_due() {
    let (_topics, _topic, channel, _consumer) = setup(CoreConfig::default());
    let msg = take_one(&channel, 1, Duration::from_secs(60));
    let start = Instant::now();
    channel
        .requeue(1, &msg.id, Duration::from_secs(5))
        .expect("req");
    let s = channel.stats(false);
    assert_eq!(
        (
            s.depth,
            s.in_flight_count,
            s.deferred_count,
            s.requeue_count
        ),
        (0, 0, 1, 1)
    );
    // A deferred message is not in flight.
    assert_eq!(channel.finish(1, &msg.id), Err(Error::NotInFlight));

    at(start + ms(4990)).await;
    assert!(take_all(&channel, 1, SECOND).is_empty(), "released early");
    assert_eq!(channel.stats(false).deferred_count, 1);

    at(start + ms(5010)).await;
    let s = channel.stats(false);
    assert_eq!((s.depth, s.deferred_count), (1, 0));
    let again = take_one(&channel, 1, SECOND);
    assert_eq!((again.id, again.attempts), (msg.id, 2));
}

#[tokio::test(start_paused = true)]
async fn only_the_owner_may_finish_requeue_or_touch() {
    let (_topics, _topic, channel, _consumer) = setup(CoreConfig::default());
    channel.add_client(FakeConsumer::new(2)).expect("subscribe");
    let msg = take_one(&channel, 1, SECOND);

    assert_eq!(channel.finish(2, &msg.id), Err(Error::NotOwned));
    assert_eq!(
        channel.requeue(2, &msg.id, Duration::ZERO),
        Err(Error::NotOwned)
    );
    assert_eq!(channel.touch(2, &msg.id, SECOND), Err(Error::NotOwned));
    assert_eq!(channel.stats(false).in_flight_count, 1, "still in flight");

    let unknown = MessageId::from_guid(0xdead_beef);
    assert_eq!(channel.finish(1, &unknown), Err(Error::NotInFlight));
    assert_eq!(
        channel.requeue(1, &unknown, Duration::ZERO),
        Err(Error::NotInFlight)
    );
    assert_eq!(channel.touch(1, &unknown, SECOND), Err(Error::NotInFlight));
    assert_eq!(channel.stats(false).requeue_count, 0);

    channel.finish(1, &msg.id).expect("owner fin");
}

#[tokio::test(start_paused = true)]
async fn timeout_goes_to_the_consumer_that_held_the_message() {
    let (_topics, topic, channel, one) = setup(CoreConfig::default());
    let two = FakeConsumer::new(2);
    channel.add_client(two.clone()).expect("subscribe");
    topic
        .put_message(Bytes::from_static(b"second"), Duration::ZERO)
        .expect("pub");
    let start = Instant::now();
    let _ = take_one(&channel, 2, SECOND);
    let _ = take_one(&channel, 1, Duration::from_secs(10));
    at(start + ms(1010)).await;
    assert_eq!((one.timed_out(), two.timed_out()), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn dpub_is_delivered_only_after_the_defer() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("later");
    let channel = topic.get_channel("c").0;
    let start = Instant::now();
    topic
        .put_message(Bytes::from_static(b"deferred"), Duration::from_secs(2))
        .expect("dpub");
    let s = channel.stats(false);
    assert_eq!((s.depth, s.deferred_count, s.message_count), (0, 1, 1));
    assert!(take_all(&channel, 1, SECOND).is_empty());

    at(start + ms(1990)).await;
    assert!(take_all(&channel, 1, SECOND).is_empty(), "delivered early");

    at(start + ms(2010)).await;
    let got = take_all(&channel, 1, SECOND);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].body[..], b"deferred");
    assert_eq!(got[0].attempts, 1);
    assert_eq!(channel.stats(false).requeue_count, 0);
}
