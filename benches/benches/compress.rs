//! Micro-benchmarks of the negotiated compression codecs on the shape of nsqd's hot path: a pump flush of 64
//! message frames of 200 bytes (about 15 KiB, under the default 16 KiB output buffer) encoded for the wire, and
//! a client's MPUB of 200 messages decoded by the reader.
//!
//! The bodies are text-like (a repeating alphabet with a counter), so they compress as real payloads often do;
//! random bodies would measure only the codecs' incompressible fallback.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use nsq_protocol::compress::{Codec, Decoder, Encoder};
use nsq_protocol::{encode_message_frame, encode_mpub, MessageId};

const BODY: usize = 200;

fn bodies(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut b: Vec<u8> = (0..BODY).map(|j| b'a' + (j % 26) as u8).collect();
            b[..8].copy_from_slice(format!("{i:08}").as_bytes());
            b
        })
        .collect()
}

/// 64 message frames, as one pump flush of a consumer with a large RDY.
fn flush_of_frames() -> BytesMut {
    let mut out = BytesMut::new();
    for (i, body) in bodies(64).iter().enumerate() {
        let id = MessageId(
            *format!("{i:016x}")
                .as_bytes()
                .first_chunk()
                .expect("16 bytes"),
        );
        encode_message_frame(&mut out, 1_795_000_000_000_000_000, 1, &id, body);
    }
    out
}

fn codecs() -> [(&'static str, Codec); 2] {
    [
        ("snappy", Codec::Snappy),
        ("deflate6", Codec::Deflate { level: 6 }),
    ]
}

fn encode_flush(c: &mut Criterion) {
    let plain = flush_of_frames();
    let mut group = c.benchmark_group("encode_flush_64x200B");
    group.throughput(Throughput::Bytes(plain.len() as u64));
    for (name, codec) in codecs() {
        let mut encoder = Encoder::new(codec);
        let mut wire = BytesMut::with_capacity(plain.len() * 2);
        group.bench_function(name, |b| {
            b.iter(|| {
                wire.clear();
                encoder.encode(black_box(&plain), &mut wire);
                black_box(wire.len())
            })
        });
    }
    group.finish();
}

fn decode_mpub(c: &mut Criterion) {
    let list = bodies(200);
    let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
    let mut plain = BytesMut::new();
    encode_mpub(&mut plain, "bench_topic", &refs);
    let mut group = c.benchmark_group("decode_mpub_200x200B");
    group.throughput(Throughput::Bytes(plain.len() as u64));
    for (name, codec) in codecs() {
        // A stream of identical compressed MPUBs, decoded one at a time as the reader does.
        let mut encoder = Encoder::new(codec);
        let mut one = BytesMut::new();
        encoder.encode(&plain, &mut one);
        let mut decoder = Decoder::new(codec);
        let mut input = BytesMut::new();
        let mut out = BytesMut::with_capacity(plain.len() * 2);
        // The snappy stream identifier is sent once; prime the decoder with it.
        decoder
            .decode(&mut one.clone(), &mut out, usize::MAX)
            .expect("decodes");
        let mut steady = BytesMut::new();
        encoder.encode(&plain, &mut steady);
        group.bench_function(name, |b| {
            b.iter(|| {
                input.extend_from_slice(&steady);
                out.clear();
                while !input.is_empty() {
                    decoder
                        .decode(&mut input, &mut out, 64 * 1024)
                        .expect("decodes");
                }
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode_flush, decode_mpub);
criterion_main!(benches);
