//! The 16-byte message ID that names a message on the wire.
//!
//! nsqd renders each 64-bit GUID as 16 lowercase ASCII hex characters, and clients echo those 16 bytes back in
//! FIN, REQ and TOUCH. Go only checks the length of an echoed ID, never its content, so neither do we.

use std::fmt;

use crate::error::{ClientError, ErrorCode};

/// The number of bytes in a message ID.
pub const MSG_ID_LENGTH: usize = 16;

/// 16 ASCII hex characters, as Go's MessageID.
///
/// IDs built by [`MessageId::from_guid`] are always ASCII; IDs parsed from a client may hold any bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; MSG_ID_LENGTH]);

impl MessageId {
    /// Renders a GUID as the lowercase hex of its big-endian bytes, as Go's `guid.Hex()`.
    pub fn from_guid(guid: u64) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; MSG_ID_LENGTH];
        for (i, byte) in guid.to_be_bytes().iter().enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        MessageId(out)
    }

    /// The raw 16 bytes.
    pub fn as_bytes(&self) -> &[u8; MSG_ID_LENGTH] {
        &self.0
    }

    /// The ID as text; `""` if a client sent bytes that are not UTF-8.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Go prints the raw bytes with %s; the lossy form is identical for every valid UTF-8 ID.
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Go's getMessageID: any slice whose length is not exactly 16 -> fatal E_INVALID "invalid message ID". Content is not checked.
pub fn parse_message_id(p: &[u8]) -> Result<MessageId, ClientError> {
    <[u8; MSG_ID_LENGTH]>::try_from(p)
        .map(MessageId)
        .map_err(|_| ClientError::fatal(ErrorCode::Invalid, "invalid message ID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_guid_is_lowercase_big_endian_hex() {
        // The ID of the golden sub_rdy_message.json message frame.
        let id = MessageId::from_guid(0x18a3_48de_9840_1000);
        assert_eq!(id.as_str(), "18a348de98401000");
        assert_eq!(id.as_bytes(), b"18a348de98401000");
        assert_eq!(MessageId::from_guid(0).as_str(), "0000000000000000");
        assert_eq!(MessageId::from_guid(u64::MAX).as_str(), "ffffffffffffffff");
        assert_eq!(
            MessageId::from_guid(0xabcdef).to_string(),
            "0000000000abcdef"
        );
        assert_eq!(format!("{:?}", MessageId::from_guid(1)), "0000000000000001");
    }

    #[test]
    fn parse_checks_length_only() {
        let id = parse_message_id(b"zzzzzzzzzzzzzzzz").unwrap();
        assert_eq!(id.as_str(), "zzzzzzzzzzzzzzzz");
        for bad in [&b""[..], b"123", b"0123456789abcdef0", b"0123456789abcde"] {
            let err = parse_message_id(bad).unwrap_err();
            assert_eq!(err.to_string(), "E_INVALID invalid message ID");
            assert!(err.is_fatal());
        }
    }

    #[test]
    fn non_utf8_id_has_empty_str() {
        let id = parse_message_id(&[0xff; 16]).unwrap();
        assert_eq!(id.as_str(), "");
        assert_eq!(id.as_bytes(), &[0xff; 16]);
    }
}
