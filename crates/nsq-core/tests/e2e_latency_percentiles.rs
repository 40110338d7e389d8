//! Proves end-to-end processing latency tracking: with `--e2e-processing-latency-percentile` set, FIN records
//! how long a message took from publish to finish, channels report the count and one value per percentile,
//! and a topic merges its channels; without percentiles the figures are `null` (None).

mod common;

use std::time::Duration;

use common::{bodies, registry, take_all};
use nsq_core::CoreConfig;

const TIMEOUT: Duration = Duration::from_secs(60);
/// Real (wall clock) time between publish and FIN, so the recorded latencies have a known floor.
const HELD: Duration = Duration::from_millis(5);

fn with_percentiles() -> CoreConfig {
    CoreConfig {
        e2e_percentiles: vec![0.99, 0.5],
        ..CoreConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn fin_records_latencies_and_the_topic_merges_its_channels() {
    let (topics, _scan) = registry(with_percentiles());
    let (topic, _) = topics.get_topic("t");
    let a = topic.get_channel("a").0;
    let b = topic.get_channel("b").0;
    topic
        .put_messages(bodies(3, 16), Duration::ZERO)
        .expect("mpub");
    std::thread::sleep(HELD);

    for m in take_all(&a, 1, TIMEOUT) {
        a.finish(1, &m.id).expect("fin");
    }
    let on_b = take_all(&b, 2, TIMEOUT);
    b.finish(2, &on_b[0].id).expect("fin");
    // REQ is not a finish and records nothing.
    b.requeue(2, &on_b[1].id, Duration::ZERO).expect("req");

    let floor = HELD.as_nanos() as f64;
    let sa = a.stats(false).e2e_processing_latency;
    assert_eq!(sa.count, 3);
    let pa = sa.percentiles.expect("percentiles configured");
    assert_eq!(pa.len(), 2);
    assert_eq!((pa[0].0, pa[1].0), (0.99, 0.5));
    assert!(pa.iter().all(|&(_, v)| v >= floor), "{pa:?}");
    assert!(pa[0].1 >= pa[1].1, "p99 below p50: {pa:?}");

    let sb = b.stats(false).e2e_processing_latency;
    assert_eq!(sb.count, 1);

    let st = topic.stats(None, false).e2e_processing_latency;
    assert_eq!(st.count, 4, "the topic merges its channels");
    let pt = st.percentiles.expect("merged percentiles");
    assert_eq!(pt.len(), 2);
    assert!(pt.iter().all(|&(_, v)| v >= floor), "{pt:?}");
}

#[tokio::test(start_paused = true)]
async fn configured_but_unused_reports_zero_counts() {
    let (topics, _scan) = registry(with_percentiles());
    let (topic, _) = topics.get_topic("t");
    let c = topic.get_channel("c").0;
    let s = c.stats(false).e2e_processing_latency;
    assert_eq!(s.count, 0);
    assert_eq!(s.percentiles, Some(vec![(0.99, 0.0), (0.5, 0.0)]));
    // A topic without channels has nothing to merge: Go reports null.
    let (lonely, _) = topics.get_topic("lonely");
    assert_eq!(
        lonely.stats(None, false).e2e_processing_latency.percentiles,
        None
    );
}

#[tokio::test(start_paused = true)]
async fn without_percentiles_nothing_is_tracked() {
    let (topics, _scan) = registry(CoreConfig::default());
    let (topic, _) = topics.get_topic("t");
    let c = topic.get_channel("c").0;
    topic
        .put_messages(bodies(3, 16), Duration::ZERO)
        .expect("mpub");
    for m in take_all(&c, 1, TIMEOUT) {
        c.finish(1, &m.id).expect("fin");
    }
    let s = c.stats(false).e2e_processing_latency;
    assert_eq!((s.count, s.percentiles), (0, None));
    let t = topic.stats(None, false).e2e_processing_latency;
    assert_eq!((t.count, t.percentiles), (0, None));
}

/// Go moves the two half-windows forward on every insert and every query, once per half-window passed, so a
/// latency is reported for at most the configured window even when the channel goes quiet.
#[tokio::test(start_paused = true)]
async fn latencies_older_than_the_window_are_forgotten() {
    let cfg = CoreConfig {
        e2e_window: Duration::from_secs(10),
        ..with_percentiles()
    };
    let (topics, _scan) = registry(cfg);
    let (topic, _) = topics.get_topic("t");
    let c = topic.get_channel("c").0;
    let fin_all = |n: usize| {
        topic
            .put_messages(bodies(n, 16), Duration::ZERO)
            .expect("mpub");
        for m in take_all(&c, 1, TIMEOUT) {
            c.finish(1, &m.id).expect("fin");
        }
    };
    let start = tokio::time::Instant::now();
    fin_all(3);

    // Past one half-window the samples are still inside the window.
    tokio::time::sleep_until(start + Duration::from_secs(6)).await;
    assert_eq!(c.stats(false).e2e_processing_latency.count, 3);

    // Past the whole window, with no FIN since, they are gone from the channel and the topic.
    tokio::time::sleep_until(start + Duration::from_secs(11)).await;
    assert_eq!(
        c.stats(false).e2e_processing_latency.count,
        0,
        "stale latencies reported"
    );
    assert_eq!(topic.stats(None, false).e2e_processing_latency.count, 0);

    // A FIN after a long quiet spell starts from an empty window, not from a stale half.
    fin_all(2);
    tokio::time::sleep_until(start + Duration::from_secs(40)).await;
    fin_all(1);
    assert_eq!(c.stats(false).e2e_processing_latency.count, 1);
}
