//! Bodies are zero-copy slices of the buffer they arrived in, except while a message waits to be deferred:
//! a REQ with a delay or a DPUB gives the body its own allocation, so a long deferral does not keep the whole
//! read buffer alive. Immediate delivery keeps sharing.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{registry, settle, FakeConsumer};
use nsq_core::CoreConfig;
use tokio::time::{sleep, Instant};

/// A 16-byte body sliced out of a 64 KiB buffer, like a PUB body out of a connection read buffer.
fn sliced_body() -> Bytes {
    let read_buffer = Bytes::from(vec![7u8; 64 * 1024]);
    read_buffer.slice(100..116)
}

fn within(body: &Bytes, buffer_start: *const u8) -> bool {
    let p = body.as_ptr() as usize;
    let start = buffer_start as usize;
    p >= start && p < start + 64 * 1024
}

#[tokio::test(start_paused = true)]
async fn immediate_delivery_shares_the_read_buffer_but_deferral_copies() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("t");
    let channel = topic.get_channel("c").0;
    channel.add_client(FakeConsumer::new(1)).expect("subscribe");

    let body = sliced_body();
    let buffer_start = read_buffer_start(&body);
    topic
        .put_message(body.clone(), Duration::ZERO)
        .expect("pub");
    let mut out = Vec::new();
    assert_eq!(channel.take(1, 1, Duration::from_secs(60), 0, &mut out), 1);
    assert!(
        within(&out[0].body, buffer_start),
        "immediate delivery must not copy the body"
    );

    // REQ with a delay: the deferred copy no longer points into the read buffer.
    channel
        .requeue(1, &out[0].id, Duration::from_millis(100))
        .expect("req");
    sleep(Duration::from_millis(150)).await;
    settle().await;
    let mut again = Vec::new();
    assert_eq!(
        channel.take(1, 1, Duration::from_secs(60), 0, &mut again),
        1
    );
    assert_eq!(again[0].body, body);
    assert!(
        !within(&again[0].body, buffer_start),
        "a REQ-deferred body must have its own allocation"
    );

    // DPUB: the same.
    let body = sliced_body();
    let buffer_start = read_buffer_start(&body);
    let start = Instant::now();
    topic
        .put_message(body.clone(), Duration::from_millis(100))
        .expect("dpub");
    tokio::time::sleep_until(start + Duration::from_millis(150)).await;
    settle().await;
    let mut deferred = Vec::new();
    assert_eq!(
        channel.take(1, 1, Duration::from_secs(60), 0, &mut deferred),
        1
    );
    assert_eq!(deferred[0].body, body);
    assert!(
        !within(&deferred[0].body, buffer_start),
        "a DPUB body must have its own allocation"
    );
}

/// The start of the 64 KiB buffer a [`sliced_body`] points into (the slice starts 100 bytes in).
fn read_buffer_start(body: &Bytes) -> *const u8 {
    body.as_ptr().wrapping_sub(100)
}
