//! The snappy and deflate codecs speak the same bytes as Go nsqd: they decode the golden captures from the real
//! daemon, our snappy writer reproduces nsqd's bytes, our output is read by independent decoders, input split
//! anywhere decodes the same, corrupt input is an error (never a panic), and the per-call output limit holds
//! against a decompression bomb. Random data comes from a seeded xorshift, so failures reproduce.

// The helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};

use bytes::{BufMut, BytesMut};
use nsq_protocol::compress::{
    Codec, CodecError, Decoder, Encoder, MAX_SNAPPY_BLOCK, SNAPPY_STREAM_IDENTIFIER,
};
use serde_json::Value;

const OK_FRAME: &[u8] = b"\x00\x00\x00\x06\x00\x00\x00\x00OK";

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn bytes_below(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn golden(name: &str) -> Value {
    let path = format!(
        "{}/../../../shared/golden/tcp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading golden {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn steps(doc: &Value) -> &Vec<Value> {
    doc["steps"].as_array().unwrap()
}

/// The client's compressed writes and the plaintext each one carries, in order.
fn golden_sends(doc: &Value, transport: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let sends: Vec<_> = steps(doc)
        .iter()
        .filter(|s| s["transport"] == transport && s.get("send_hex").is_some())
        .map(|s| {
            (
                unhex(s["send_hex"].as_str().unwrap()),
                unhex(s["plain_hex"].as_str().unwrap()),
            )
        })
        .collect();
    assert!(!sends.is_empty(), "golden has no {transport} sends");
    sends
}

/// The server's compressed bytes in each listening window (after any plain frames that came before the upgrade),
/// and the plaintext frames the capture decoded from them.
fn golden_recvs(doc: &Value, transport: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut recvs = Vec::new();
    for step in steps(doc) {
        let Some(frames) = step.get("recv_frames").and_then(Value::as_array) else {
            continue;
        };
        let wire = unhex(step["recv_hex"].as_str().unwrap());
        let mut plain_prefix = 0;
        let mut plain = Vec::new();
        for frame in frames {
            let size = frame["size"].as_u64().unwrap() as usize;
            if frame.get("transport").is_none() {
                plain_prefix += 4 + size;
                continue;
            }
            assert_eq!(frame["transport"], transport);
            // Only the OK frame appears compressed in these captures; build its bytes from size, type and text.
            assert_eq!(frame["data_text"], "OK");
            plain.put_u32(size as u32);
            plain.put_u32(frame["type"].as_u64().unwrap() as u32);
            plain.put_slice(b"OK");
        }
        if !plain.is_empty() {
            recvs.push((wire[plain_prefix..].to_vec(), plain));
        }
    }
    assert!(!recvs.is_empty(), "golden has no {transport} replies");
    recvs
}

/// Decodes `wire` with `decoder`, feeding it in pieces whose sizes `split` picks, with an unlimited output.
fn decode_in_pieces(
    decoder: &mut Decoder,
    wire: &[u8],
    mut split: impl FnMut() -> usize,
) -> Vec<u8> {
    let mut input = BytesMut::new();
    let mut out = BytesMut::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let n = split().clamp(1, rest.len());
        input.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        decoder.decode(&mut input, &mut out, usize::MAX).unwrap();
    }
    assert!(
        input.is_empty(),
        "{} wire bytes left undecoded",
        input.len()
    );
    out.to_vec()
}

/// Decodes a whole stream with a small output limit per call, checking the limit and the "call again" contract.
fn decode_with_limit(decoder: &mut Decoder, wire: &[u8], limit: usize) -> Vec<u8> {
    let mut input = BytesMut::from(wire);
    let mut out = BytesMut::new();
    loop {
        let before = out.len();
        let n = decoder.decode(&mut input, &mut out, limit).unwrap();
        assert!(n <= limit, "decode produced {n} bytes with limit {limit}");
        assert_eq!(out.len() - before, n);
        if n < limit {
            break;
        }
    }
    assert!(
        input.is_empty(),
        "{} wire bytes left undecoded",
        input.len()
    );
    out.to_vec()
}

fn encode_all(codec: Codec, plain: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    Encoder::new(codec).encode(plain, &mut out);
    out.to_vec()
}

fn decode_all(codec: Codec, wire: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut input = BytesMut::from(wire);
    let mut out = BytesMut::new();
    Decoder::new(codec).decode(&mut input, &mut out, usize::MAX)?;
    Ok(out.to_vec())
}

const CODECS: [Codec; 4] = [
    Codec::Snappy,
    Codec::Deflate { level: 1 },
    Codec::Deflate { level: 6 },
    Codec::Deflate { level: 9 },
];

// ---- golden captures ----

#[test]
fn golden_client_writes_decode_to_their_plaintext() {
    for (file, transport, codec) in [
        ("identify_snappy.json", "snappy", Codec::Snappy),
        (
            "identify_deflate.json",
            "deflate",
            Codec::Deflate { level: 6 },
        ),
    ] {
        let doc = golden(file);
        // Whole writes, one decoder for the connection (deflate's dictionary carries across writes).
        let mut decoder = Decoder::new(codec);
        for (wire, plain) in golden_sends(&doc, transport) {
            let mut input = BytesMut::from(&wire[..]);
            let mut out = BytesMut::new();
            let n = decoder.decode(&mut input, &mut out, usize::MAX).unwrap();
            assert_eq!(n, plain.len(), "{file}");
            assert_eq!(&out[..], &plain[..], "{file}");
            assert!(input.is_empty(), "{file}: bytes left over");
        }
        // The same writes one byte at a time.
        let mut decoder = Decoder::new(codec);
        for (wire, plain) in golden_sends(&doc, transport) {
            assert_eq!(
                decode_in_pieces(&mut decoder, &wire, || 1),
                plain,
                "{file} byte by byte"
            );
        }
    }
}

#[test]
fn golden_server_replies_decode_to_ok_frames() {
    for (file, transport, codec) in [
        ("identify_snappy.json", "snappy", Codec::Snappy),
        (
            "identify_deflate.json",
            "deflate",
            Codec::Deflate { level: 6 },
        ),
    ] {
        let doc = golden(file);
        let recvs = golden_recvs(&doc, transport);
        assert!(
            recvs.len() >= 2,
            "{file}: expected the IDENTIFY OK and the PUB OK"
        );
        let mut decoder = Decoder::new(codec);
        for (wire, plain) in &recvs {
            assert_eq!(plain, OK_FRAME);
            assert_eq!(
                decode_in_pieces(&mut decoder, wire, || usize::MAX),
                *plain,
                "{file}"
            );
        }
        let mut decoder = Decoder::new(codec);
        for (wire, plain) in &recvs {
            assert_eq!(
                decode_in_pieces(&mut decoder, wire, || 1),
                *plain,
                "{file} byte by byte"
            );
        }
    }
}

#[test]
fn snappy_encoder_reproduces_nsqd_bytes() {
    let doc = golden("identify_snappy.json");
    let recvs = golden_recvs(&doc, "snappy");
    let mut encoder = Encoder::new(Codec::Snappy);
    for (wire, plain) in &recvs {
        let mut out = BytesMut::new();
        encoder.encode(plain, &mut out);
        assert_eq!(&out[..], &wire[..]);
    }
    // The first reply starts with the stream identifier and later ones do not.
    assert!(recvs[0].0.starts_with(&SNAPPY_STREAM_IDENTIFIER));
    assert!(!recvs[1].0.starts_with(&SNAPPY_STREAM_IDENTIFIER));
    // The client's PUB in the capture is also stream identifier plus one uncompressed chunk; we match it too.
    let (wire, plain) = &golden_sends(&doc, "snappy")[0];
    assert_eq!(encode_all(Codec::Snappy, plain), *wire);
}

#[test]
fn deflate_encoder_output_is_sync_flushed_and_nsqd_readable() {
    let doc = golden("identify_deflate.json");
    let mut encoder = Encoder::new(Codec::Deflate { level: 6 });
    let mut inflater = flate2::Decompress::new(false);
    for (_, plain) in golden_sends(&doc, "deflate") {
        let mut out = BytesMut::new();
        encoder.encode(&plain, &mut out);
        assert!(
            out.ends_with(&[0, 0, 0xff, 0xff]),
            "no sync flush marker: {:02x?}",
            &out[..]
        );
        // Each write must be decodable on its own, right away, as nsqd's reader needs.
        let mut plain_out = Vec::with_capacity(plain.len() + 16);
        inflater
            .decompress_vec(&out, &mut plain_out, flate2::FlushDecompress::None)
            .unwrap();
        assert_eq!(plain_out, plain);
    }
}

// ---- round trips ----

fn round_trip_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let compressible: Vec<u8> = (0..1 << 20)
        .map(|i: usize| b"PUB topic\nmessage body "[i % 23] ^ ((i / 4096) as u8 & 1))
        .collect();
    vec![
        ("empty", Vec::new()),
        ("one byte", vec![b'x']),
        ("ok frame", OK_FRAME.to_vec()),
        ("17 zeros", vec![0; 17]),
        ("64 KiB", vec![7; MAX_SNAPPY_BLOCK]),
        ("64 KiB + 1 random", rng.bytes(MAX_SNAPPY_BLOCK + 1)),
        (
            "64 KiB + 1 compressible",
            compressible[..MAX_SNAPPY_BLOCK + 1].to_vec(),
        ),
        ("1 MiB compressible", compressible),
        ("300 KiB random", rng.bytes(300 * 1024)),
    ]
}

#[test]
fn round_trip_whole_byte_by_byte_and_random_splits() {
    let mut rng = XorShift(42);
    for codec in CODECS {
        for (name, plain) in round_trip_inputs() {
            let wire = encode_all(codec, &plain);
            if plain.is_empty() {
                assert!(
                    wire.is_empty(),
                    "{codec:?} {name}: empty input must write nothing"
                );
            }
            assert_eq!(
                decode_all(codec, &wire).unwrap(),
                plain,
                "{codec:?} {name} whole"
            );
            if plain.len() <= MAX_SNAPPY_BLOCK + 1 {
                let got = decode_in_pieces(&mut Decoder::new(codec), &wire, || 1);
                assert_eq!(got, plain, "{codec:?} {name} byte by byte");
            }
            let mut split_rng = XorShift(rng.next() | 1);
            let got = decode_in_pieces(&mut Decoder::new(codec), &wire, || {
                split_rng.below(3000) + 1
            });
            assert_eq!(got, plain, "{codec:?} {name} random splits");
            let limit = rng.below(5000) + 1;
            assert_eq!(
                decode_with_limit(&mut Decoder::new(codec), &wire, limit),
                plain,
                "{codec:?} {name} limit {limit}"
            );
        }
    }
}

#[test]
fn many_writes_on_one_connection_round_trip() {
    let mut rng = XorShift(7);
    for codec in CODECS {
        let mut encoder = Encoder::new(codec);
        let mut decoder = Decoder::new(codec);
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        let mut expected = Vec::new();
        for _ in 0..300 {
            let len = [0, 1, 10, 30, 200, 5000, 70_000][rng.below(7)];
            let plain: Vec<u8> = if rng.below(2) == 0 {
                rng.bytes(len)
            } else {
                (0..len).map(|i| b"abcabcabd"[i % 9]).collect()
            };
            let mut wire = BytesMut::new();
            encoder.encode(&plain, &mut wire);
            expected.extend_from_slice(&plain);
            // A flushed write is decodable in full before anything else arrives.
            input.extend_from_slice(&wire);
            decoder.decode(&mut input, &mut out, usize::MAX).unwrap();
            assert_eq!(
                out.len(),
                expected.len(),
                "{codec:?}: a flushed write did not decode in full"
            );
        }
        assert_eq!(&out[..], &expected[..], "{codec:?}");
    }
}

#[test]
fn snappy_output_is_read_by_snap_frame_decoder() {
    for (name, plain) in round_trip_inputs() {
        let wire = encode_all(Codec::Snappy, &plain);
        let mut got = Vec::new();
        snap::read::FrameDecoder::new(&wire[..])
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, plain, "{name}");
    }
}

#[test]
fn deflate_output_is_read_by_flate2_deflate_decoder() {
    for level in [1, 6, 9] {
        for (name, plain) in round_trip_inputs() {
            let wire = encode_all(Codec::Deflate { level }, &plain);
            let mut got = Vec::new();
            // A sync-flushed stream has no final block, so the reader hits the end of its input mid-stream; read
            // what it can and stop at that point.
            let mut reader = flate2::read::DeflateDecoder::new(&wire[..]);
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => panic!("level {level} {name}: {e}"),
                }
            }
            assert_eq!(got, plain, "level {level} {name}");
        }
    }
}

#[test]
fn snappy_chunks_hold_at_most_64_kib_and_compress_when_worth_it() {
    // 64 KiB + 1 of compressible data: identifier, a compressed full block, a one-byte uncompressed block.
    let plain = vec![b'a'; MAX_SNAPPY_BLOCK + 1];
    let wire = encode_all(Codec::Snappy, &plain);
    assert!(wire.starts_with(&SNAPPY_STREAM_IDENTIFIER));
    let mut chunks = Vec::new();
    let mut rest = &wire[SNAPPY_STREAM_IDENTIFIER.len()..];
    while !rest.is_empty() {
        let len = rest[1] as usize | (rest[2] as usize) << 8 | (rest[3] as usize) << 16;
        chunks.push((rest[0], len));
        rest = &rest[4 + len..];
    }
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    assert_eq!(chunks[0].0, 0x00);
    assert!(chunks[0].1 < 4 + MAX_SNAPPY_BLOCK / 2, "{chunks:?}");
    assert_eq!(chunks[1], (0x01, 4 + 1));
}

#[test]
fn our_decoders_read_independent_encoders() {
    for (name, plain) in round_trip_inputs() {
        let mut wire = Vec::new();
        let mut w = snap::write::FrameEncoder::new(&mut wire);
        w.write_all(&plain).unwrap();
        w.flush().unwrap();
        drop(w);
        assert_eq!(
            decode_all(Codec::Snappy, &wire).unwrap(),
            plain,
            "snap {name}"
        );

        let mut w = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(5));
        w.write_all(&plain).unwrap();
        w.flush().unwrap();
        let wire = w.get_ref().clone();
        assert_eq!(
            decode_all(Codec::Deflate { level: 5 }, &wire).unwrap(),
            plain,
            "flate2 {name}"
        );
        // A finished stream decodes too; what follows its final block is an error.
        let mut wire = w.finish().unwrap();
        assert_eq!(
            decode_all(Codec::Deflate { level: 5 }, &wire).unwrap(),
            plain,
            "flate2 finished {name}"
        );
        wire.push(0);
        assert!(matches!(
            decode_all(Codec::Deflate { level: 5 }, &wire),
            Err(CodecError::DeflateAfterEnd { len: 1 })
        ));
    }
}

#[test]
fn deflate_levels_outside_1_to_9_are_clamped() {
    for level in [0, 10, u32::MAX] {
        let plain = b"PUB t\n\x00\x00\x00\x05hello".repeat(50);
        let wire = encode_all(Codec::Deflate { level }, &plain);
        assert!(wire.len() < plain.len());
        assert_eq!(decode_all(Codec::Deflate { level }, &wire).unwrap(), plain);
    }
}

// ---- corrupt input ----

/// A snappy stream: identifier, then one chunk of `chunk_type` holding `body` (checksum included if data).
fn snappy_stream(chunk_type: u8, body: &[u8]) -> Vec<u8> {
    let mut wire = SNAPPY_STREAM_IDENTIFIER.to_vec();
    wire.push(chunk_type);
    wire.extend_from_slice(&(body.len() as u32).to_le_bytes()[..3]);
    wire.extend_from_slice(body);
    wire
}

#[test]
fn snappy_bad_checksum_is_an_error() {
    // Uncompressed chunk: flip a checksum bit, then a data bit.
    let wire = encode_all(Codec::Snappy, OK_FRAME);
    for at in [14, 20] {
        let mut bad = wire.clone();
        bad[at] ^= 0x10;
        let err = decode_all(Codec::Snappy, &bad).unwrap_err();
        assert!(matches!(err, CodecError::SnappyChecksum { .. }), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");
    }
    // Compressed chunk: flip a checksum bit.
    let mut wire = encode_all(Codec::Snappy, &[b'z'; 1000]);
    assert_eq!(wire[10], 0x00, "expected a compressed chunk");
    wire[15] ^= 1;
    assert!(matches!(
        decode_all(Codec::Snappy, &wire),
        Err(CodecError::SnappyChecksum { .. })
    ));
}

#[test]
fn snappy_reserved_chunk_types_are_errors() {
    for chunk_type in [0x02, 0x40, 0x7f] {
        let wire = snappy_stream(chunk_type, b"abcd");
        // The header alone is enough to reject the chunk.
        let err = decode_all(Codec::Snappy, &wire[..14]).unwrap_err();
        assert!(
            matches!(err, CodecError::SnappyReservedChunk { chunk_type: t } if t == chunk_type),
            "{err}"
        );
        assert!(err.to_string().contains("reserved"), "{err}");
    }
}

#[test]
fn snappy_requires_the_stream_identifier_first() {
    let wire = encode_all(Codec::Snappy, OK_FRAME);
    let err = decode_all(Codec::Snappy, &wire[10..]).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::SnappyMissingStreamIdentifier { chunk_type: 0x01 }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("stream identifier"), "{err}");
    // Padding before the identifier is refused too, as in Go's reader.
    let err = decode_all(Codec::Snappy, &[0xfe, 0, 0, 0]).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::SnappyMissingStreamIdentifier { chunk_type: 0xfe }
        ),
        "{err}"
    );
    // A wrong identifier body or length.
    let mut bad = SNAPPY_STREAM_IDENTIFIER;
    bad[9] = b'X';
    assert!(matches!(
        decode_all(Codec::Snappy, &bad),
        Err(CodecError::SnappyBadStreamIdentifier)
    ));
    assert!(matches!(
        decode_all(Codec::Snappy, b"\xff\x07\x00\x00sNaPpYY"),
        Err(CodecError::SnappyBadStreamIdentifier)
    ));
}

#[test]
fn snappy_oversized_and_undersized_chunks_are_errors() {
    // An uncompressed chunk one byte over 64 KiB of plaintext: rejected from the header, before the body.
    let header = snappy_stream(0x01, &vec![0; 4 + MAX_SNAPPY_BLOCK + 1]);
    let err = decode_all(Codec::Snappy, &header[..14]).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::SnappyChunkTooLong {
                chunk_type: 0x01,
                ..
            }
        ),
        "{err}"
    );
    // A compressed chunk longer than any encoding of a full block.
    let header = snappy_stream(0x00, &vec![0; 4 + 76_490 + 1]);
    let err = decode_all(Codec::Snappy, &header[..14]).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::SnappyChunkTooLong {
                chunk_type: 0x00,
                ..
            }
        ),
        "{err}"
    );
    // A compressed block that announces more than 64 KiB of plaintext (varint 65537 = 81 80 04).
    let mut body = vec![0, 0, 0, 0, 0x81, 0x80, 0x04];
    body.extend_from_slice(&[0; 16]);
    let err = decode_all(Codec::Snappy, &snappy_stream(0x00, &body)).unwrap_err();
    assert!(
        matches!(err, CodecError::SnappyBlockTooLarge { len: 65537 }),
        "{err}"
    );
    // Data chunks too short for their checksum.
    for chunk_type in [0x00, 0x01] {
        let err = decode_all(Codec::Snappy, &snappy_stream(chunk_type, b"abc")).unwrap_err();
        assert!(
            matches!(err, CodecError::SnappyChunkTooShort { len: 3 }),
            "{err}"
        );
    }
    // A compressed chunk whose block is garbage.
    let err = decode_all(
        Codec::Snappy,
        &snappy_stream(0x00, &[0, 0, 0, 0, 0x05, 0xff, 0xff]),
    )
    .unwrap_err();
    assert!(matches!(err, CodecError::SnappyCorrupt(_)), "{err}");
}

#[test]
fn snappy_skips_padding_skippable_chunks_and_repeated_identifiers() {
    let mut rng = XorShift(99);
    let mut wire = SNAPPY_STREAM_IDENTIFIER.to_vec();
    let mut expected = Vec::new();
    for i in 0..20 {
        match i % 4 {
            0 => wire.extend_from_slice(&snappy_stream(0xfe, &vec![0; rng.below(100)])[10..]),
            1 => wire.extend_from_slice(
                &snappy_stream(0x80 + rng.below(0x7e) as u8, &rng.bytes_below(3000))[10..],
            ),
            2 => wire.extend_from_slice(&SNAPPY_STREAM_IDENTIFIER),
            _ => {
                let plain = rng.bytes_below(200);
                wire.extend_from_slice(&encode_all(Codec::Snappy, &plain)[10..]);
                expected.extend_from_slice(&plain);
            }
        }
    }
    // A 1 MiB skippable chunk, which is dropped as it streams in rather than buffered.
    wire.extend_from_slice(&snappy_stream(0xfd, &vec![1; 1 << 20])[10..]);
    wire.extend_from_slice(&encode_all(Codec::Snappy, b"tail")[10..]);
    expected.extend_from_slice(b"tail");
    assert_eq!(decode_all(Codec::Snappy, &wire).unwrap(), expected);
    let mut input = BytesMut::new();
    let mut out = BytesMut::new();
    let mut decoder = Decoder::new(Codec::Snappy);
    for piece in wire.chunks(4096) {
        input.extend_from_slice(piece);
        decoder.decode(&mut input, &mut out, usize::MAX).unwrap();
        assert!(
            input.len() < 80_000,
            "the decoder kept {} bytes buffered",
            input.len()
        );
    }
    assert_eq!(&out[..], &expected[..]);
}

#[test]
fn garbage_deflate_is_an_error() {
    // Block type 3 is reserved; a stored block whose length and its complement disagree.
    for wire in [
        &[0x07u8, 0, 0, 0][..],
        &[0x00, 0x05, 0x00, 0x05, 0x00, 1, 2, 3, 4, 5][..],
    ] {
        let err = decode_all(Codec::Deflate { level: 6 }, wire).unwrap_err();
        assert!(matches!(err, CodecError::Deflate(_)), "{err}");
        assert!(err.to_string().contains("deflate"), "{err}");
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = XorShift(0xdead_beef);
    let mut errors = [0usize; 2];
    for round in 0..3000 {
        let codec = if round % 2 == 0 {
            Codec::Snappy
        } else {
            Codec::Deflate { level: 6 }
        };
        let mut wire = rng.bytes_below(300);
        if round % 4 == 0 {
            // Give snappy a valid start so the chunk parser, not just the identifier check, sees garbage.
            let mut start = SNAPPY_STREAM_IDENTIFIER.to_vec();
            start.append(&mut wire);
            wire = start;
        }
        let mut decoder = Decoder::new(codec);
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        for piece in wire.chunks(rng.below(40) + 1) {
            input.extend_from_slice(piece);
            if decoder
                .decode(&mut input, &mut out, rng.below(100) + 1)
                .is_err()
            {
                errors[round % 2] += 1;
                break;
            }
        }
    }
    // Garbage is overwhelmingly rejected by both codecs, rather than silently accepted.
    assert!(errors[0] > 1000 && errors[1] > 1000, "{errors:?}");
}

// ---- output limit ----

#[test]
fn output_limit_holds_for_a_10_mib_bomb() {
    let plain = vec![0u8; 10 << 20];
    for codec in CODECS {
        let wire = encode_all(codec, &plain);
        assert!(
            wire.len() < plain.len() / 10,
            "{codec:?}: {} wire bytes",
            wire.len()
        );
        // All the wire bytes at once, then a budget per call that is no multiple of a snappy block.
        let mut decoder = Decoder::new(codec);
        let mut input = BytesMut::from(&wire[..]);
        let mut out = BytesMut::new();
        let limit = 10_000;
        let mut total = 0;
        let mut calls = 0;
        loop {
            out.clear();
            let n = decoder.decode(&mut input, &mut out, limit).unwrap();
            assert!(
                n <= limit && out.len() == n,
                "{codec:?}: {n} bytes with limit {limit}"
            );
            assert!(out.iter().all(|&b| b == 0));
            total += n;
            calls += 1;
            if n < limit {
                break;
            }
        }
        assert_eq!(total, plain.len(), "{codec:?}");
        assert!(calls >= plain.len() / limit, "{codec:?}: {calls} calls");
        // A zero limit produces nothing and consumes nothing that would produce output.
        let mut decoder = Decoder::new(codec);
        let mut input = BytesMut::from(&wire[..]);
        let mut out = BytesMut::new();
        assert_eq!(decoder.decode(&mut input, &mut out, 0).unwrap(), 0);
        assert!(out.is_empty());
        assert_eq!(
            decode_with_limit(&mut decoder, &input.split().freeze(), 1 << 20).len(),
            plain.len()
        );
    }
}
