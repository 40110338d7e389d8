//! Whatever a peer sends, decoding ends in a command, an error or a request for more bytes: never a panic, never
//! an allocation sized by the peer. Random lines and bodies (a seeded xorshift, so failures reproduce) are fed
//! to every decoder, whole and byte by byte.

use bytes::{BufMut, BytesMut};
use nsq_protocol::{decode_body, decode_frame, decode_line, BodyKind, Limits};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const LIMITS: Limits = Limits {
    max_msg_size: 1024,
    max_body_size: 4096,
};
const KINDS: [BodyKind; 5] = [
    BodyKind::Identify,
    BodyKind::Auth,
    BodyKind::Pub,
    BodyKind::Dpub,
    BodyKind::Mpub,
];

/// Random bytes biased towards the interesting ones: separators, digits and size fields near the limits.
fn garbage(rng: &mut XorShift) -> BytesMut {
    let len = rng.below(300) as usize;
    let mut b = BytesMut::with_capacity(len + 16);
    while b.len() < len {
        match rng.below(6) {
            0 => b.put_u8(b'\n'),
            1 => b.put_u8(b' '),
            2 => b.put_i32(
                [0, 1, -1, 4, 5, 1024, 1025, 4096, 4097, i32::MAX, i32::MIN]
                    [rng.below(11) as usize],
            ),
            3 => b.put_u8(b'0' + rng.below(10) as u8),
            _ => b.put_u8(rng.next() as u8),
        }
    }
    b
}

fn drain(mut buf: BytesMut, kind: BodyKind) {
    // Lines until the decoder needs more or refuses.
    while let Ok(Some(_)) = decode_line(&mut buf) {}
    let before = buf.len();
    match decode_body(&mut buf, kind, &LIMITS) {
        Ok(Some(_)) => assert!(buf.len() < before, "a decoded body must consume bytes"),
        Ok(None) => assert_eq!(buf.len(), before, "an incomplete body must consume nothing"),
        Err(e) => assert!(e.is_fatal(), "body errors are fatal: {e}"),
    }
    while let Ok(Some(_)) = decode_frame(&mut buf) {}
}

#[test]
fn random_input_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for i in 0..20_000 {
        let input = garbage(&mut rng);
        drain(input, KINDS[i % KINDS.len()]);
    }
}

#[test]
fn byte_by_byte_arrival_agrees_with_all_at_once() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for i in 0..2_000 {
        let input = garbage(&mut rng);
        let kind = KINDS[i % KINDS.len()];
        let whole = decode_body(&mut input.clone(), kind, &LIMITS);
        let mut trickle = BytesMut::new();
        let mut result = Ok(None);
        for &byte in input.iter() {
            trickle.put_u8(byte);
            result = decode_body(&mut trickle, kind, &LIMITS);
            if !matches!(result, Ok(None)) {
                break;
            }
        }
        match (&whole, &result) {
            (Ok(Some(a)), Ok(Some(b))) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a, b),
            (Ok(None), Ok(None)) => {}
            other => panic!(
                "whole {:?} vs trickled {:?} for {:?}",
                other.0,
                other.1,
                &input[..]
            ),
        }
    }
}
