//! Server-to-client frames of protocol V2.
//!
//! nsqd answers with length-prefixed frames: a response (`OK`, JSON, `_heartbeat_`, `CLOSE_WAIT`), an error
//! (`"{code} {desc}"`) or a message. The encoders append to a caller-owned buffer so a connection can reuse one
//! write buffer; the decoders are for the client side (tests and the bench tool).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::ClientError;
use crate::message_id::{MessageId, MSG_ID_LENGTH};

/// The four bytes a client sends first to select protocol V2.
pub const MAGIC_V2: &[u8; 4] = b"  V2";

/// The response payload nsqd sends as a heartbeat.
pub const HEARTBEAT: &[u8] = b"_heartbeat_";
/// The response payload for a successful command.
pub const OK: &[u8] = b"OK";
/// The response payload for CLS.
pub const CLOSE_WAIT: &[u8] = b"CLOSE_WAIT";
/// The error payload for a wrong protocol magic. Go writes the bare code, without a description or a
/// trailing space, so this one is not built from [`ClientError`].
pub const BAD_PROTOCOL: &[u8] = b"E_BAD_PROTOCOL";

/// Bytes before a message body in a message frame payload: timestamp, attempts and ID.
pub const MESSAGE_HEADER_LENGTH: usize = 8 + 2 + MSG_ID_LENGTH;

/// The kind of a frame, the second field of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum FrameType {
    /// A response: `OK`, a JSON document, `_heartbeat_` or `CLOSE_WAIT`.
    Response = 0,
    /// An error: `"{code} {desc}"`.
    Error = 1,
    /// A message: see [`encode_message_frame`].
    Message = 2,
}

impl FrameType {
    /// The frame type for a wire value, if it is one of the three known ones.
    pub fn from_i32(value: i32) -> Option<Self> {
        match value {
            0 => Some(FrameType::Response),
            1 => Some(FrameType::Error),
            2 => Some(FrameType::Message),
            _ => None,
        }
    }
}

/// Malformed frames seen by the client-side decoders.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size field is smaller than the 4-byte frame type it must cover.
    #[error("invalid frame size {0}")]
    InvalidSize(i32),
    /// The frame type is not 0, 1 or 2.
    #[error("unknown frame type {0}")]
    UnknownFrameType(i32),
    /// A message frame payload shorter than the 26-byte message header.
    #[error("message frame too short: {0} bytes")]
    MessageTooShort(usize),
}

/// Appends `[i32 BE size=len+4][i32 BE type][data]`.
///
/// # Panics
///
/// If `data` is longer than `i32::MAX - 4` bytes, which the size field cannot express.
pub fn encode_frame(dst: &mut BytesMut, frame_type: FrameType, data: &[u8]) {
    dst.reserve(8 + data.len());
    dst.put_i32(wire_len(data.len() + 4));
    dst.put_i32(frame_type as i32);
    dst.put_slice(data);
}

/// Appends an error frame carrying `err`'s `"{code} {desc}"` text.
pub fn encode_error_frame(dst: &mut BytesMut, err: &ClientError) {
    encode_frame(dst, FrameType::Error, &err.to_bytes());
}

/// Appends a whole message frame: `[size][type=2][i64 BE timestamp ns][u16 BE attempts][16-byte id][body]`.
///
/// # Panics
///
/// If the frame would be longer than the size field can express.
pub fn encode_message_frame(
    dst: &mut BytesMut,
    timestamp_ns: i64,
    attempts: u16,
    id: &MessageId,
    body: &[u8],
) {
    dst.reserve(8 + MESSAGE_HEADER_LENGTH + body.len());
    dst.put_i32(wire_len(4 + MESSAGE_HEADER_LENGTH + body.len()));
    dst.put_i32(FrameType::Message as i32);
    dst.put_i64(timestamp_ns);
    dst.put_u16(attempts);
    dst.put_slice(id.as_bytes());
    dst.put_slice(body);
}

/// Client side (tests, bench tool): splits one frame off the front of buf; Ok(None) until complete.
///
/// Nothing is consumed until the whole frame is buffered.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<(FrameType, Bytes)>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let Ok(size_usize) = usize::try_from(size) else {
        return Err(FrameError::InvalidSize(size));
    };
    if size_usize < 4 {
        return Err(FrameError::InvalidSize(size));
    }
    if buf.len() < 8 {
        return Ok(None);
    }
    let raw_type = i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let frame_type = FrameType::from_i32(raw_type).ok_or(FrameError::UnknownFrameType(raw_type))?;
    if buf.len() < 4 + size_usize {
        buf.reserve(4 + size_usize - buf.len());
        return Ok(None);
    }
    buf.advance(8);
    let data = buf.split_to(size_usize - 4).freeze();
    Ok(Some((frame_type, data)))
}

/// A message frame payload taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedMessage {
    /// Nanoseconds since the Unix epoch at which nsqd created the message.
    pub timestamp_ns: i64,
    /// How many times the message has been delivered, this delivery included.
    pub attempts: u16,
    /// The ID to echo in FIN, REQ and TOUCH.
    pub id: MessageId,
    /// The message body, sharing `data`'s memory.
    pub body: Bytes,
}

/// Parses a message frame payload (>= 26 bytes).
pub fn decode_message(mut data: Bytes) -> Result<DecodedMessage, FrameError> {
    if data.len() < MESSAGE_HEADER_LENGTH {
        return Err(FrameError::MessageTooShort(data.len()));
    }
    let timestamp_ns = data.get_i64();
    let attempts = data.get_u16();
    let mut id = [0u8; MSG_ID_LENGTH];
    data.copy_to_slice(&mut id);
    Ok(DecodedMessage {
        timestamp_ns,
        attempts,
        id: MessageId(id),
        body: data,
    })
}

/// Converts a length to the signed 32-bit size field, which is all the wire format allows.
pub(crate) fn wire_len(len: usize) -> i32 {
    match i32::try_from(len) {
        Ok(n) => n,
        Err(_) => panic!("length {len} does not fit the 32-bit size field"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ok_frame_matches_golden() {
        // Every golden OK reply is this frame.
        let mut dst = BytesMut::new();
        encode_frame(&mut dst, FrameType::Response, OK);
        assert_eq!(&dst[..], &hex("00000006000000004f4b")[..]);
    }

    #[test]
    fn error_frame_matches_golden() {
        // Golden mpub_over_max_body_size.json.
        let err = ClientError::fatal(ErrorCode::BadBody, "MPUB body too big 1044 > 1000");
        let mut dst = BytesMut::new();
        encode_error_frame(&mut dst, &err);
        assert_eq!(
            &dst[..],
            &hex("0000002c00000001455f4241445f424f4459204d50554220626f647920746f6f206269672031303434203e2031303030")[..]
        );
    }

    #[test]
    fn bad_protocol_frame_matches_golden() {
        // Golden bad_magic.json: the bare code, no trailing space.
        let mut dst = BytesMut::new();
        encode_frame(&mut dst, FrameType::Error, BAD_PROTOCOL);
        assert_eq!(
            &dst[..],
            &hex("0000001200000001455f4241445f50524f544f434f4c")[..]
        );
    }

    #[test]
    fn message_frame_matches_golden() {
        // Golden sub_rdy_message.json: the one message frame received after RDY 1.
        let golden = hex("000000270000000218ea1b07cb11813b0001313861333438646539383430313030307061796c6f61642d31");
        let mut dst = BytesMut::new();
        let id = MessageId::from_guid(0x18a3_48de_9840_1000);
        encode_message_frame(&mut dst, 1_795_277_121_746_207_035, 1, &id, b"payload-1");
        assert_eq!(&dst[..], &golden[..]);

        let mut buf = BytesMut::from(&golden[..]);
        let (frame_type, data) = decode_frame(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        assert_eq!(frame_type, FrameType::Message);
        let msg = decode_message(data).unwrap();
        assert_eq!(msg.timestamp_ns, 1_795_277_121_746_207_035);
        assert_eq!(msg.attempts, 1);
        assert_eq!(msg.id.as_str(), "18a348de98401000");
        assert_eq!(&msg.body[..], b"payload-1");
    }

    #[test]
    fn frames_round_trip_and_split_pipelined_input() {
        let mut buf = BytesMut::new();
        encode_frame(&mut buf, FrameType::Response, OK);
        encode_frame(&mut buf, FrameType::Error, b"E_INVALID invalid command FOO");
        encode_frame(&mut buf, FrameType::Response, HEARTBEAT);
        encode_frame(&mut buf, FrameType::Response, b"");
        let (t, d) = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!((t, &d[..]), (FrameType::Response, OK));
        let (t, d) = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!(
            (t, &d[..]),
            (FrameType::Error, &b"E_INVALID invalid command FOO"[..])
        );
        let (t, d) = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!((t, &d[..]), (FrameType::Response, HEARTBEAT));
        let (t, d) = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!((t, &d[..]), (FrameType::Response, &b""[..]));
        assert_eq!(decode_frame(&mut buf).unwrap(), None);
    }

    #[test]
    fn truncated_frames_wait_without_consuming() {
        let mut whole = BytesMut::new();
        encode_frame(&mut whole, FrameType::Response, CLOSE_WAIT);
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(decode_frame(&mut buf).unwrap(), None, "cut at {cut}");
            assert_eq!(&buf[..], &whole[..cut]);
        }
    }

    #[test]
    fn bad_sizes_and_types_are_errors() {
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 0, 0, 0, 0][..]);
        assert_eq!(decode_frame(&mut buf), Err(FrameError::InvalidSize(3)));
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(decode_frame(&mut buf), Err(FrameError::InvalidSize(-1)));
        let mut buf = BytesMut::from(&[0, 0, 0, 4, 0, 0, 0, 3][..]);
        assert_eq!(decode_frame(&mut buf), Err(FrameError::UnknownFrameType(3)));
    }

    #[test]
    fn short_message_payload_is_an_error() {
        assert_eq!(
            decode_message(Bytes::from_static(&[0; 25])),
            Err(FrameError::MessageTooShort(25))
        );
        let msg = decode_message(Bytes::from_static(&[b'0'; 26])).unwrap();
        assert!(msg.body.is_empty());
    }
}
