//! Length-prefixed command bodies, with nsqd's size limits enforced before any body byte is awaited.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{ClientError, ErrorCode};

/// The server's size limits, from `--max-msg-size` and `--max-body-size`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest single message body (PUB, DPUB and each MPUB message).
    pub max_msg_size: i64,
    /// The largest IDENTIFY, AUTH or whole MPUB body.
    pub max_body_size: i64,
}

/// Which command a body belongs to; it decides the size rules and the error texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A JSON document of client settings.
    Identify,
    /// The auth secret.
    Auth,
    /// One message.
    Pub,
    /// One deferred message.
    Dpub,
    /// A count followed by length-prefixed messages.
    Mpub,
}

impl BodyKind {
    /// The command name as used in error texts.
    pub fn command_name(self) -> &'static str {
        match self {
            BodyKind::Identify => "IDENTIFY",
            BodyKind::Auth => "AUTH",
            BodyKind::Pub => "PUB",
            BodyKind::Dpub => "DPUB",
            BodyKind::Mpub => "MPUB",
        }
    }
}

/// A decoded body, sharing the read buffer's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The body of IDENTIFY, AUTH, PUB or DPUB.
    Single(Bytes),
    /// The messages of an MPUB, in order.
    Multi(Vec<Bytes>),
}

/// After the caller validated a body command's line, decodes its length-prefixed body. Checks sizes in Go's order
/// against `limits` BEFORE waiting for/allocating the body; Ok(None) until enough bytes are buffered (nothing is
/// consumed from buf until the whole body is there); on success consumes exactly the body bytes and returns
/// zero-copy `Bytes` (BytesMut::split_to(..).freeze()).
///
/// While it waits, it reserves room in `buf` for the rest of a body whose size already passed the limits, so
/// the caller's next read can fill it.
///
/// MPUB follows Go, which reads the count and the messages straight from the stream after the 4-byte total:
/// the total is only checked against the limits, and exactly the bytes the messages need are consumed. Each
/// call walks the message headers buffered so far (no copying), so a batch that trickles in costs
/// O(messages) per call.
pub fn decode_body(
    buf: &mut BytesMut,
    kind: BodyKind,
    limits: &Limits,
) -> Result<Option<Body>, ClientError> {
    let Some(size) = peek_i32(buf, 0) else {
        return Ok(None);
    };
    let name = kind.command_name();
    match kind {
        BodyKind::Identify | BodyKind::Auth => {
            if i64::from(size) > limits.max_body_size {
                return Err(bad_body(format!(
                    "{name} body too big {size} > {}",
                    limits.max_body_size
                )));
            }
            if size <= 0 {
                return Err(bad_body(format!("{name} invalid body size {size}")));
            }
            Ok(take_single(buf, size))
        }
        BodyKind::Pub | BodyKind::Dpub => {
            if size <= 0 {
                return Err(bad_message(format!(
                    "{name} invalid message body size {size}"
                )));
            }
            if i64::from(size) > limits.max_msg_size {
                return Err(bad_message(format!(
                    "{name} message too big {size} > {}",
                    limits.max_msg_size
                )));
            }
            Ok(take_single(buf, size))
        }
        BodyKind::Mpub => decode_mpub(buf, size, limits),
    }
}

fn decode_mpub(
    buf: &mut BytesMut,
    size: i32,
    limits: &Limits,
) -> Result<Option<Body>, ClientError> {
    if size <= 0 {
        return Err(bad_body(format!("MPUB invalid body size {size}")));
    }
    if i64::from(size) > limits.max_body_size {
        return Err(bad_body(format!(
            "MPUB body too big {size} > {}",
            limits.max_body_size
        )));
    }
    // The declared total is only a hint from here on; it has passed the limit, so it is safe to reserve.
    let hint = 4 + positive(size);
    let Some(count) = peek_i32(buf, 4) else {
        reserve_to(buf, hint);
        return Ok(None);
    };
    // Each message needs at least its 4-byte length and one body byte; the count itself takes 4.
    let max_messages = (limits.max_body_size - 4) / 5;
    if count <= 0 || i64::from(count) > max_messages {
        return Err(bad_body(format!("MPUB invalid message count {count}")));
    }

    let mut end = 8usize;
    for i in 0..count {
        let Some(len) = peek_i32(buf, end) else {
            reserve_to(buf, hint.max(end + 4));
            return Ok(None);
        };
        if len <= 0 {
            return Err(bad_message(format!(
                "MPUB invalid message({i}) body size {len}"
            )));
        }
        if i64::from(len) > limits.max_msg_size {
            return Err(bad_message(format!(
                "MPUB message too big {len} > {}",
                limits.max_msg_size
            )));
        }
        end = end.saturating_add(4 + positive(len));
        if buf.len() < end {
            reserve_to(buf, hint.max(end));
            return Ok(None);
        }
    }

    let mut whole = buf.split_to(end).freeze();
    whole.advance(8);
    // Every counted message is buffered by now, so the count no longer comes from the peer alone.
    let mut bodies = Vec::with_capacity(positive(count));
    while whole.has_remaining() {
        let len = positive(whole.get_i32());
        bodies.push(whole.split_to(len));
    }
    Ok(Some(Body::Multi(bodies)))
}

/// Splits `[size][body]` off `buf` once all of it is there.
fn take_single(buf: &mut BytesMut, size: i32) -> Option<Body> {
    let total = 4 + positive(size);
    if buf.len() < total {
        reserve_to(buf, total);
        return None;
    }
    buf.advance(4);
    Some(Body::Single(buf.split_to(total - 4).freeze()))
}

/// The big-endian `i32` at `offset`, if buffered.
fn peek_i32(buf: &[u8], offset: usize) -> Option<i32> {
    let bytes = buf.get(offset..offset.checked_add(4)?)?;
    Some(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A size already checked to be positive.
fn positive(n: i32) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// Makes room for `total` bytes in `buf` without reallocating on every call.
fn reserve_to(buf: &mut BytesMut, total: usize) {
    if buf.capacity() < total {
        buf.reserve(total - buf.len());
    }
}

fn bad_body(desc: String) -> ClientError {
    ClientError::fatal(ErrorCode::BadBody, desc)
}

fn bad_message(desc: String) -> ClientError {
    ClientError::fatal(ErrorCode::BadMessage, desc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{decode_line, encode_command_with_body, encode_mpub};

    const DEFAULT: Limits = Limits {
        max_msg_size: 1024 * 1024,
        max_body_size: 5 * 1024 * 1024,
    };
    /// The limits of the golden `*_over_*` captures: --max-msg-size=100 --max-body-size=1000.
    const SMALL: Limits = Limits {
        max_msg_size: 100,
        max_body_size: 1000,
    };

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fatal_text(r: Result<Option<Body>, ClientError>) -> String {
        let err = r.unwrap_err();
        assert!(err.is_fatal(), "{err}");
        err.to_string()
    }

    /// Feeds `input` one byte at a time: every proper prefix must wait without consuming, the whole must decode.
    fn decode_trickled(input: &[u8], kind: BodyKind, limits: &Limits) -> Body {
        let mut buf = BytesMut::new();
        for (i, &b) in input.iter().enumerate() {
            assert_eq!(decode_body(&mut buf, kind, limits), Ok(None), "at {i}");
            assert_eq!(&buf[..], &input[..i], "consumed at {i}");
            buf.extend_from_slice(&[b]);
        }
        let body = decode_body(&mut buf, kind, limits).unwrap().unwrap();
        assert!(buf.is_empty());
        body
    }

    #[test]
    fn single_bodies_round_trip_and_wait_when_truncated() {
        for (name, kind) in [
            ("IDENTIFY", BodyKind::Identify),
            ("AUTH", BodyKind::Auth),
            ("PUB", BodyKind::Pub),
            ("DPUB", BodyKind::Dpub),
        ] {
            let mut wire = BytesMut::new();
            encode_command_with_body(&mut wire, name, &[], b"payload-1");
            let line = decode_line(&mut wire).unwrap().unwrap();
            assert_eq!(&line.name[..], name.as_bytes());
            let body = decode_trickled(&wire, kind, &DEFAULT);
            assert_eq!(body, Body::Single(Bytes::from_static(b"payload-1")));
        }
    }

    #[test]
    fn pipelined_pubs_consume_exactly_one_body_each() {
        // Golden pub_pipelined.json: three PUBs in one write.
        let wire = hex("50554220676f6c64656e5f706970650a000000016150554220676f6c64656e5f706970650a000000016250554220676f6c64656e5f706970650a0000000163");
        let mut buf = BytesMut::from(&wire[..]);
        for expected in [b"a", b"b", b"c"] {
            let line = decode_line(&mut buf).unwrap().unwrap();
            assert_eq!(&line.name[..], b"PUB");
            assert_eq!(&line.params[0][..], b"golden_pipe");
            let body = decode_body(&mut buf, BodyKind::Pub, &DEFAULT).unwrap();
            assert_eq!(body, Some(Body::Single(Bytes::copy_from_slice(expected))));
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn identify_and_auth_size_errors() {
        // Golden identify_over_max_body_size.json, identify_zero_size_body.json, auth_empty_secret.json.
        let mut buf = BytesMut::from(&1001i32.to_be_bytes()[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Identify, &SMALL)),
            "E_BAD_BODY IDENTIFY body too big 1001 > 1000"
        );
        assert_eq!(buf.len(), 4, "nothing consumed on error");
        let mut buf = BytesMut::from(&0i32.to_be_bytes()[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Identify, &SMALL)),
            "E_BAD_BODY IDENTIFY invalid body size 0"
        );
        let mut buf = BytesMut::from(&0i32.to_be_bytes()[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Auth, &SMALL)),
            "E_BAD_BODY AUTH invalid body size 0"
        );
        let mut buf = BytesMut::from(&1001i32.to_be_bytes()[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Auth, &SMALL)),
            "E_BAD_BODY AUTH body too big 1001 > 1000"
        );
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Identify, &SMALL)),
            "E_BAD_BODY IDENTIFY invalid body size -1"
        );
        // Exactly the limit is accepted.
        let mut buf = BytesMut::from(&1000i32.to_be_bytes()[..]);
        buf.extend_from_slice(&[b'x'; 1000]);
        assert!(matches!(
            decode_body(&mut buf, BodyKind::Identify, &SMALL),
            Ok(Some(Body::Single(b))) if b.len() == 1000
        ));
    }

    #[test]
    fn pub_and_dpub_size_errors() {
        // Golden pub_negative_size.json: the size field is ffffffff.
        let mut buf = BytesMut::from(&hex("ffffffff")[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Pub, &DEFAULT)),
            "E_BAD_MESSAGE PUB invalid message body size -1"
        );
        let mut buf = BytesMut::from(&0i32.to_be_bytes()[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Pub, &DEFAULT)),
            "E_BAD_MESSAGE PUB invalid message body size 0"
        );
        // Golden pub_over_max_msg_size.json / dpub_over_max_msg_size.json: rejected before the body arrives.
        let mut buf = BytesMut::from(&101i32.to_be_bytes()[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Pub, &SMALL)),
            "E_BAD_MESSAGE PUB message too big 101 > 100"
        );
        let mut buf = BytesMut::from(&101i32.to_be_bytes()[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Dpub, &SMALL)),
            "E_BAD_MESSAGE DPUB message too big 101 > 100"
        );
        let mut buf = BytesMut::from(&i32::MIN.to_be_bytes()[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Dpub, &SMALL)),
            "E_BAD_MESSAGE DPUB invalid message body size -2147483648"
        );
        // Golden pub_max_msg_size_ok.json: exactly the limit is accepted.
        let mut buf = BytesMut::from(&100i32.to_be_bytes()[..]);
        buf.extend_from_slice(&[b'x'; 100]);
        assert!(matches!(
            decode_body(&mut buf, BodyKind::Pub, &SMALL),
            Ok(Some(Body::Single(b))) if b.len() == 100
        ));
    }

    #[test]
    fn huge_declared_body_is_rejected_without_reserving() {
        let mut buf = BytesMut::from(&i32::MAX.to_be_bytes()[..]);
        assert!(decode_body(&mut buf, BodyKind::Pub, &DEFAULT).is_err());
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn mpub_golden_ok() {
        // Golden mpub_ok.json: three messages "m1", "message two", "3".
        let wire = hex("4d50554220676f6c64656e5f6d7075620a0000001e00000003000000026d310000000b6d6573736167652074776f0000000133");
        let mut ours = BytesMut::new();
        encode_mpub(&mut ours, "golden_mpub", &[b"m1", b"message two", b"3"]);
        assert_eq!(&ours[..], &wire[..]);

        let mut buf = BytesMut::from(&wire[..]);
        let line = decode_line(&mut buf).unwrap().unwrap();
        assert_eq!(&line.name[..], b"MPUB");
        let body = decode_trickled(&buf, BodyKind::Mpub, &DEFAULT);
        assert_eq!(
            body,
            Body::Multi(vec![
                Bytes::from_static(b"m1"),
                Bytes::from_static(b"message two"),
                Bytes::from_static(b"3"),
            ])
        );
    }

    #[test]
    fn mpub_total_size_errors() {
        // Golden mpub_zero_body.json.
        let mut buf = BytesMut::from(&hex("00000000")[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Mpub, &DEFAULT)),
            "E_BAD_BODY MPUB invalid body size 0"
        );
        let mut buf = BytesMut::from(&hex("ffffffff")[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Mpub, &DEFAULT)),
            "E_BAD_BODY MPUB invalid body size -1"
        );
        // Golden mpub_over_max_body_size.json: only the first 4 bytes are needed to reject it.
        let mut buf = BytesMut::from(&hex("00000414")[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Mpub, &SMALL)),
            "E_BAD_BODY MPUB body too big 1044 > 1000"
        );
    }

    #[test]
    fn mpub_count_errors() {
        // Golden mpub_zero_messages.json: total 4, count 0.
        let mut buf = BytesMut::from(&hex("0000000400000000")[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Mpub, &DEFAULT)),
            "E_BAD_BODY MPUB invalid message count 0"
        );
        let mut buf = BytesMut::from(&hex("00000004ffffffff")[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Mpub, &DEFAULT)),
            "E_BAD_BODY MPUB invalid message count -1"
        );
        // (1000 - 4) / 5 = 199 messages at most.
        let mut buf = BytesMut::from(&hex("00000010000000c8")[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Mpub, &SMALL)),
            "E_BAD_BODY MPUB invalid message count 200"
        );
        let mut buf = BytesMut::from(&hex("00000010000000c7")[..]);
        assert_eq!(decode_body(&mut buf, BodyKind::Mpub, &SMALL), Ok(None));
        assert_eq!(buf.len(), 8);
    }

    #[test]
    fn mpub_message_errors() {
        // Golden mpub_empty_message.json: the second message (index 1) has length 0.
        let mut buf = BytesMut::from(&hex("0000000e00000002000000026f6b00000000")[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Mpub, &DEFAULT)),
            "E_BAD_MESSAGE MPUB invalid message(1) body size 0"
        );
        let mut buf = BytesMut::from(&hex("0000000e00000002ffffffff")[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Mpub, &DEFAULT)),
            "E_BAD_MESSAGE MPUB invalid message(0) body size -1"
        );
        // Golden mpub_over_max_msg_size.json: "ok" then a 101-byte message; reported before its body arrives.
        let mut buf = BytesMut::from(&hex("0000007300000002000000026f6b00000065")[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Mpub, &SMALL)),
            "E_BAD_MESSAGE MPUB message too big 101 > 100"
        );
    }

    #[test]
    fn mpub_errors_do_not_wait_for_later_messages() {
        // Message 0 is fine but message 1 is bad, and message 2 has not arrived: the error is reported now.
        let mut buf = BytesMut::from(&hex("0000001000000003000000016100000000")[..]);
        assert_eq!(
            fatal_text(decode_body(&mut buf, BodyKind::Mpub, &DEFAULT)),
            "E_BAD_MESSAGE MPUB invalid message(1) body size 0"
        );
    }

    #[test]
    fn mpub_ignores_the_declared_total_like_go() {
        // The total says 100 bytes, but the messages need only 4 + 5: exactly those are consumed and the
        // following command line stays in the buffer.
        let mut buf = BytesMut::from(&hex("0000006400000001000000016e")[..]);
        buf.extend_from_slice(b"NOP\n");
        assert_eq!(
            decode_body(&mut buf, BodyKind::Mpub, &DEFAULT),
            Ok(Some(Body::Multi(vec![Bytes::from_static(b"n")])))
        );
        assert_eq!(&buf[..], b"NOP\n");

        // A total smaller than the messages is not an error either.
        let mut buf = BytesMut::from(&hex("0000000100000001000000036162")[..]);
        assert_eq!(decode_body(&mut buf, BodyKind::Mpub, &DEFAULT), Ok(None));
        buf.extend_from_slice(b"c");
        assert_eq!(
            decode_body(&mut buf, BodyKind::Mpub, &DEFAULT),
            Ok(Some(Body::Multi(vec![Bytes::from_static(b"abc")])))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn empty_buffer_waits() {
        for kind in [
            BodyKind::Identify,
            BodyKind::Auth,
            BodyKind::Pub,
            BodyKind::Dpub,
            BodyKind::Mpub,
        ] {
            let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
            assert_eq!(decode_body(&mut buf, kind, &DEFAULT), Ok(None));
            assert_eq!(buf.len(), 3);
        }
    }

    #[test]
    fn bodies_share_the_read_buffer() {
        let mut buf = BytesMut::new();
        encode_mpub(&mut buf, "t", &[b"first", b"second"]);
        decode_line(&mut buf).unwrap().unwrap();
        let start = buf.as_ptr() as usize;
        let end = start + buf.len();
        let Some(Body::Multi(bodies)) = decode_body(&mut buf, BodyKind::Mpub, &DEFAULT).unwrap()
        else {
            panic!("expected an MPUB body");
        };
        for body in bodies {
            let p = body.as_ptr() as usize;
            assert!(p >= start && p < end, "body was copied");
        }
    }
}
