//! The handful of NSQ V2 client-side encoders and frame decoders the bench tool needs.
//!
//! The tool deliberately does not use `nsq-protocol`'s command and frame codecs: it is a
//! black-box client that must keep working (and keep measuring the same bytes) while the
//! server-side crates change. (Only the stream compression formats, which Go fixes, come from
//! `nsq_protocol::compress`; see [`crate::conn`].) Everything
//! here is sans-IO: encoders append to a caller-owned `BytesMut`, and decoders borrow from the
//! read buffer so the hot paths allocate nothing per message.
//!
//! ```text
//! server frame:  [i32 BE size][i32 BE frame type][data ...]   (size counts type + data)
//! message data:  [i64 BE timestamp ns][u16 BE attempts][16 ASCII-hex id bytes][body ...]
//! ```

use std::io;

use bytes::{BufMut, BytesMut};
use nsq_protocol::compress::Codec;

use crate::conn::Features;

/// The four bytes that select protocol V2 at the start of every connection.
pub const MAGIC_V2: &[u8; 4] = b"  V2";

/// The body of the response frame nsqd sends as a heartbeat; the client must answer `NOP`.
pub const HEARTBEAT: &[u8] = b"_heartbeat_";

/// The body of a successful response frame.
pub const OK: &[u8] = b"OK";

/// Length of a message id on the wire.
pub const MESSAGE_ID_LEN: usize = 16;

/// Bytes of a message payload before the body: timestamp, attempts and id.
pub const MESSAGE_HEADER_LEN: usize = 8 + 2 + MESSAGE_ID_LEN;

/// Frames larger than this are treated as a corrupt stream rather than buffered.
pub const MAX_FRAME_SIZE: usize = 64 << 20;

const FRAME_TYPE_RESPONSE: i32 = 0;
const FRAME_TYPE_ERROR: i32 = 1;
const FRAME_TYPE_MESSAGE: i32 = 2;

/// One server frame, borrowed from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Frame type 0: `OK`, `CLOSE_WAIT`, `_heartbeat_` or an IDENTIFY JSON answer.
    Response(&'a [u8]),
    /// Frame type 1: an `E_*` error string.
    Error(&'a [u8]),
    /// Frame type 2: a message payload, see [`parse_message`].
    Message(&'a [u8]),
}

/// A message payload split into its fields, borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRef<'a> {
    /// Nanoseconds since the Unix epoch at which nsqd created the message.
    pub timestamp: i64,
    /// How many times the message has been delivered, this delivery included.
    pub attempts: u16,
    /// The id to quote in `FIN`, `REQ` and `TOUCH`.
    pub id: &'a [u8],
    /// The bytes the publisher sent.
    pub body: &'a [u8],
}

/// Decodes the first frame in `buf`.
///
/// Returns `Ok(None)` until the whole frame is buffered, otherwise the frame and the number of
/// bytes it occupies, so a caller can walk many frames and advance its buffer once.
pub fn parse_frame(buf: &[u8]) -> io::Result<Option<(Frame<'_>, usize)>> {
    let Some(size_bytes) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let size = i32::from_be_bytes(*size_bytes);
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| (4..=MAX_FRAME_SIZE).contains(&s))
        .ok_or_else(|| invalid(format!("bad frame size {size}")))?;
    let total = 4 + size;
    if buf.len() < total {
        return Ok(None);
    }
    let frame_type = i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let data = &buf[8..total];
    let frame = match frame_type {
        FRAME_TYPE_RESPONSE => Frame::Response(data),
        FRAME_TYPE_ERROR => Frame::Error(data),
        FRAME_TYPE_MESSAGE => Frame::Message(data),
        other => return Err(invalid(format!("unknown frame type {other}"))),
    };
    Ok(Some((frame, total)))
}

/// Splits a message frame's payload into timestamp, attempts, id and body.
pub fn parse_message(payload: &[u8]) -> io::Result<MessageRef<'_>> {
    if payload.len() < MESSAGE_HEADER_LEN {
        return Err(invalid(format!(
            "message payload of {} bytes is shorter than its header",
            payload.len()
        )));
    }
    let (ts, rest) = payload.split_at(8);
    let (attempts, rest) = rest.split_at(2);
    let (id, body) = rest.split_at(MESSAGE_ID_LEN);
    Ok(MessageRef {
        timestamp: i64::from_be_bytes(ts.try_into().map_err(|_| invalid("timestamp"))?),
        attempts: u16::from_be_bytes([attempts[0], attempts[1]]),
        id,
        body,
    })
}

/// Appends `IDENTIFY\n[i32 len][json]`.
pub fn encode_identify(buf: &mut BytesMut, json: &[u8]) {
    buf.put_slice(b"IDENTIFY\n");
    put_len(buf, json.len());
    buf.put_slice(json);
}

/// Appends `SUB <topic> <channel>\n`.
pub fn encode_sub(buf: &mut BytesMut, topic: &str, channel: &str) {
    buf.put_slice(b"SUB ");
    buf.put_slice(topic.as_bytes());
    buf.put_u8(b' ');
    buf.put_slice(channel.as_bytes());
    buf.put_u8(b'\n');
}

/// Appends `RDY <n>\n`.
pub fn encode_rdy(buf: &mut BytesMut, n: u32) {
    buf.put_slice(format!("RDY {n}\n").as_bytes());
}

/// Appends `FIN <id>\n`.
pub fn encode_fin(buf: &mut BytesMut, id: &[u8]) {
    buf.put_slice(b"FIN ");
    buf.put_slice(id);
    buf.put_u8(b'\n');
}

/// Appends `NOP\n`, the answer to a heartbeat.
pub fn encode_nop(buf: &mut BytesMut) {
    buf.put_slice(b"NOP\n");
}

/// Appends `PUB <topic>\n[i32 len][body]`.
pub fn encode_pub(buf: &mut BytesMut, topic: &str, body: &[u8]) {
    buf.put_slice(b"PUB ");
    buf.put_slice(topic.as_bytes());
    buf.put_u8(b'\n');
    put_len(buf, body.len());
    buf.put_slice(body);
}

/// Appends `MPUB <topic>\n[i32 total_len][i32 n]([i32 len][body])*`.
pub fn encode_mpub<'a, I>(buf: &mut BytesMut, topic: &str, bodies: I)
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: Clone,
{
    let bodies = bodies.into_iter();
    let (count, body_bytes) = bodies.clone().fold((0usize, 0usize), |(n, total), b| {
        (n + 1, total + 4 + b.len())
    });
    buf.put_slice(b"MPUB ");
    buf.put_slice(topic.as_bytes());
    buf.put_u8(b'\n');
    put_len(buf, 4 + body_bytes);
    put_len(buf, count);
    for body in bodies {
        put_len(buf, body.len());
        buf.put_slice(body);
    }
}

/// Builds the IDENTIFY JSON the tool sends: enough for nsqd to name the client in `/stats`,
/// without feature negotiation so the answer is a plain `OK`.
pub fn identify_json(role: &str) -> String {
    identify_json_with(role, &Features::default())
}

/// Like [`identify_json`], and when `features` asks for anything, with `feature_negotiation`
/// and the `tls_v1`, `snappy`, `deflate` and `deflate_level` fields that request it (nsqd then
/// answers with a JSON object, see [`crate::conn::Conn::connect_with`]).
pub fn identify_json_with(role: &str, features: &Features) -> String {
    let mut json = format!(
        "{{\"client_id\":\"nsq_bench_{role}\",\"hostname\":\"nsq_bench\",\"user_agent\":\"nsq_bench/{}\",\"feature_negotiation\":{}",
        env!("CARGO_PKG_VERSION"),
        features.any()
    );
    if features.tls {
        json.push_str(",\"tls_v1\":true");
    }
    match features.compression {
        None => {}
        Some(Codec::Snappy) => json.push_str(",\"snappy\":true"),
        Some(Codec::Deflate { level }) => {
            json.push_str(&format!(",\"deflate\":true,\"deflate_level\":{level}"));
        }
    }
    json.push('}');
    json
}

/// Builds an `InvalidData` error, the kind used for every protocol violation.
pub fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn put_len(buf: &mut BytesMut, len: usize) {
    // Bodies above i32::MAX cannot be expressed on the wire; the CLI bounds sizes far below it.
    buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(frame_type: i32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(i32::try_from(data.len()).unwrap() + 4).to_be_bytes());
        v.extend_from_slice(&frame_type.to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_each_frame_type_and_reports_its_length() {
        let mut buf = frame(0, b"OK");
        buf.extend(frame(1, b"E_INVALID oops"));
        buf.extend(frame(2, &[7; 30]));
        let (f, used) = parse_frame(&buf).unwrap().unwrap();
        assert_eq!((f, used), (Frame::Response(b"OK"), 10));
        let (f, used2) = parse_frame(&buf[used..]).unwrap().unwrap();
        assert_eq!(f, Frame::Error(b"E_INVALID oops"));
        let (f, _) = parse_frame(&buf[used + used2..]).unwrap().unwrap();
        assert_eq!(f, Frame::Message(&[7; 30][..]));
    }

    #[test]
    fn incomplete_frames_need_more_bytes() {
        let buf = frame(0, b"_heartbeat_");
        for cut in 0..buf.len() {
            assert_eq!(parse_frame(&buf[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn rejects_corrupt_sizes_and_types() {
        assert!(parse_frame(&[0, 0, 0, 2, 0, 0]).is_err());
        assert!(parse_frame(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(parse_frame(&frame(9, b"x")).is_err());
    }

    #[test]
    fn splits_a_message_payload() {
        let mut p = Vec::new();
        p.extend_from_slice(&1_700_000_000_000_000_000i64.to_be_bytes());
        p.extend_from_slice(&3u16.to_be_bytes());
        p.extend_from_slice(b"0123456789abcdef");
        p.extend_from_slice(b"hello");
        let m = parse_message(&p).unwrap();
        assert_eq!(m.timestamp, 1_700_000_000_000_000_000);
        assert_eq!(m.attempts, 3);
        assert_eq!(m.id, b"0123456789abcdef");
        assert_eq!(m.body, b"hello");
        assert!(parse_message(&p[..25]).is_err());
    }

    #[test]
    fn encodes_commands_byte_for_byte() {
        let mut b = BytesMut::new();
        encode_sub(&mut b, "t", "c");
        encode_rdy(&mut b, 2500);
        encode_fin(&mut b, b"0123456789abcdef");
        encode_nop(&mut b);
        assert_eq!(&b[..], b"SUB t c\nRDY 2500\nFIN 0123456789abcdef\nNOP\n");

        b.clear();
        encode_pub(&mut b, "t", b"abc");
        assert_eq!(&b[..], b"PUB t\n\x00\x00\x00\x03abc");

        b.clear();
        encode_identify(&mut b, b"{}");
        assert_eq!(&b[..], b"IDENTIFY\n\x00\x00\x00\x02{}");
    }

    #[test]
    fn mpub_lengths_cover_count_and_every_body() {
        let mut b = BytesMut::new();
        let bodies: [&[u8]; 2] = [b"ab", b"cde"];
        encode_mpub(&mut b, "t", bodies);
        let mut want = b"MPUB t\n".to_vec();
        want.extend_from_slice(&(4 + 4 + 2 + 4 + 3i32).to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(b"ab");
        want.extend_from_slice(&3i32.to_be_bytes());
        want.extend_from_slice(b"cde");
        assert_eq!(&b[..], &want[..]);
    }

    #[test]
    fn identify_json_is_valid_json() {
        let v: serde_json::Value = serde_json::from_str(&identify_json("writer")).unwrap();
        assert_eq!(v["client_id"], "nsq_bench_writer");
        assert_eq!(v["feature_negotiation"], false);
        assert!(v.get("tls_v1").is_none() && v.get("snappy").is_none());
    }

    #[test]
    fn identify_json_requests_the_features() {
        let tls_deflate = Features {
            tls: true,
            compression: Some(Codec::Deflate { level: 3 }),
        };
        let v: serde_json::Value =
            serde_json::from_str(&identify_json_with("reader", &tls_deflate)).unwrap();
        assert_eq!(v["feature_negotiation"], true);
        assert_eq!(v["tls_v1"], true);
        assert_eq!(v["deflate"], true);
        assert_eq!(v["deflate_level"], 3);
        assert!(v.get("snappy").is_none());

        let snappy = Features {
            tls: false,
            compression: Some(Codec::Snappy),
        };
        let v: serde_json::Value =
            serde_json::from_str(&identify_json_with("writer", &snappy)).unwrap();
        assert_eq!(v["feature_negotiation"], true);
        assert_eq!(v["snappy"], true);
        assert!(v.get("tls_v1").is_none() && v.get("deflate").is_none());
    }
}
