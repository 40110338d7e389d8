//! A publish-to-deliver round trip through nsq-core without sockets: an MPUB of 200 messages of 200 bytes into
//! a topic with 1 or 4 channels, then every channel's consumer takes everything in batches of 256 (as a pump
//! with RDY 256 would) and finishes each message. It measures fan-out, the queues and the in-flight index.
//!
//! The state is the same at the start of every iteration (all queues empty), so iterations are independent.

use std::time::Duration;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use nsq_core::{Channel, CoreConfig, QueueScan, Topics};

const BODY: usize = 200;
const BATCH: usize = 200;
const RDY: usize = 256;
const CLIENT: u64 = 1;
/// Long enough that nothing times out during a run; the scanner is not running anyway.
const MSG_TIMEOUT: Duration = Duration::from_secs(60);

fn round_trip(c: &mut Criterion) {
    let bodies: Vec<Bytes> = (0..BATCH)
        .map(|i| Bytes::from(vec![b'a' + (i % 26) as u8; BODY]))
        .collect();
    let mut group = c.benchmark_group("publish_take_finish");
    group.throughput(Throughput::Elements(BATCH as u64));
    for channels in [1usize, 4] {
        let topics = Topics::new(CoreConfig::default(), QueueScan::new());
        let (topic, _) = topics.get_topic("bench");
        let chans: Vec<std::sync::Arc<Channel>> = (0..channels)
            .map(|i| topic.get_channel(&format!("ch{i}")).0)
            .collect();
        let mut taken = Vec::with_capacity(RDY);
        group.bench_function(format!("{channels}_channels"), |b| {
            b.iter(|| {
                topic
                    .put_messages(bodies.iter().cloned(), Duration::ZERO)
                    .expect("publish");
                for ch in &chans {
                    let mut delivered = 0;
                    loop {
                        taken.clear();
                        let n = ch.take(CLIENT, RDY, MSG_TIMEOUT, 0, &mut taken);
                        if n == 0 {
                            break;
                        }
                        for m in &taken {
                            ch.finish(CLIENT, &m.id).expect("fin");
                        }
                        delivered += n;
                    }
                    assert_eq!(delivered, BATCH);
                }
                black_box(&taken);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
