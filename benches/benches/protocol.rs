//! Micro-benchmarks of the sans-IO wire formats on the hot paths of a busy nsqd: decoding PUB and MPUB from a
//! read buffer, encoding message frames into a write buffer, and (on the client side) splitting frames.
//!
//! Inputs are built once; each iteration decodes from a fresh copy of the wire bytes made outside the timed
//! section, so the figures are the decoders' cost only.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use nsq_protocol::{
    decode_body, decode_frame, decode_line, decode_message, encode_command_with_body,
    encode_message_frame, encode_mpub, Body, BodyKind, Limits, MessageId,
};

const BODY: usize = 200;
const BATCH: usize = 200;
/// nsqd's default `--max-msg-size` and `--max-body-size`.
const LIMITS: Limits = Limits {
    max_msg_size: 1024 * 1024,
    max_body_size: 5 * 1024 * 1024,
};

fn body() -> Vec<u8> {
    (0..BODY).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Decodes one line and its body, as the connection reader does for each command.
fn decode_command(buf: &mut BytesMut, kind: BodyKind) -> Body {
    let line = decode_line(buf).expect("line").expect("complete line");
    black_box(&line);
    decode_body(buf, kind, &LIMITS)
        .expect("body")
        .expect("complete body")
}

fn pub_and_mpub(c: &mut Criterion) {
    let body = body();

    let mut wire = BytesMut::new();
    encode_command_with_body(&mut wire, "PUB", &[b"bench_topic"], &body);
    let mut group = c.benchmark_group("decode_pub");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("200B", |b| {
        b.iter_batched(
            || wire.clone(),
            |mut buf| decode_command(&mut buf, BodyKind::Pub),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let bodies: Vec<&[u8]> = vec![&body[..]; BATCH];
    let mut wire = BytesMut::new();
    encode_mpub(&mut wire, "bench_topic", &bodies);
    let mut group = c.benchmark_group("decode_mpub");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("200x200B", |b| {
        b.iter_batched(
            || wire.clone(),
            |mut buf| match decode_command(&mut buf, BodyKind::Mpub) {
                Body::Multi(v) => {
                    assert_eq!(v.len(), BATCH);
                    v
                }
                Body::Single(_) => unreachable!("MPUB decodes to many bodies"),
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn frames(c: &mut Criterion) {
    let body = Bytes::from(body());
    let ids: Vec<MessageId> = (0..BATCH as u64)
        .map(|i| MessageId::from_guid(0x1234_5678_0000 + i))
        .collect();

    let mut group = c.benchmark_group("encode_message_frame");
    group.throughput(Throughput::Elements(BATCH as u64));
    // One reused write buffer, as a connection's pump keeps it.
    let mut out = BytesMut::with_capacity(BATCH * (BODY + 64));
    group.bench_function("200x200B", |b| {
        b.iter(|| {
            out.clear();
            for id in &ids {
                encode_message_frame(&mut out, 1_700_000_000_000_000_000, 1, id, &body);
            }
            black_box(out.len())
        })
    });
    group.finish();

    let mut wire = BytesMut::new();
    for id in &ids {
        encode_message_frame(&mut wire, 1_700_000_000_000_000_000, 1, id, &body);
    }
    let mut group = c.benchmark_group("decode_frame");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("200x200B_messages", |b| {
        b.iter_batched(
            || wire.clone(),
            |mut buf| {
                let mut n = 0;
                while let Some((_, data)) = decode_frame(&mut buf).expect("frame") {
                    black_box(decode_message(data).expect("message"));
                    n += 1;
                }
                assert_eq!(n, BATCH);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, pub_and_mpub, frames);
criterion_main!(benches);
