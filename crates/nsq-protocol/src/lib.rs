//! Sans-IO wire formats of NSQ protocol V2, the TCP protocol between nsqd and its clients.
//!
//! This crate is the single place that knows the bytes: command lines and bodies, response/error/message
//! frames, message IDs, topic and channel names, the IDENTIFY JSON and the exact error texts Go's nsqd sends.
//! It does no I/O and has no async code: decoders take a `BytesMut` read buffer and return `Ok(None)` until a
//! whole item is buffered, and encoders append to a caller-owned `BytesMut`. It must not depend on tokio,
//! on the daemon crates or on any domain type; it depends only on bytes, serde, serde_json and thiserror, plus
//! snap, flate2 and crc32c for the compression codecs of [`compress`].
//!
//! # Connection start
//!
//! A client opens with the 4-byte magic [`MAGIC_V2`] (`"  V2"`, two spaces). A wrong magic gets one error frame
//! with the bare payload [`frame::BAD_PROTOCOL`] and the connection closes.
//!
//! # Client to server: commands
//!
//! ```text
//! NAME SP param SP param ... LF          one text line, '\r' before '\n' tolerated,
//!                                        at most 16 KiB including the '\n'
//!
//! IDENTIFY, AUTH, PUB, DPUB add a body after the line:
//! +----------------+=====================+
//! | i32 BE size    |  size bytes of body |
//! +----------------+=====================+
//!
//! MPUB adds:
//! +-------------+-------------+---------------+========+---------------+========+
//! | i32 BE total| i32 BE count| i32 BE len[0] | body 0 | i32 BE len[1] | body 1 | ...
//! +-------------+-------------+---------------+========+---------------+========+
//! ```
//!
//! See [`command`] for the two-stage decoding (line, then body) that keeps Go's order of checks.
//!
//! # Server to client: frames
//!
//! ```text
//! +----------------+----------------+=========================+
//! | i32 BE size    | i32 BE type    |  size - 4 bytes of data |
//! +----------------+----------------+=========================+
//!   size counts the type and the data     type: 0 response, 1 error, 2 message
//! ```
//!
//! A response carries `OK`, `_heartbeat_`, `CLOSE_WAIT` or a JSON document; an error carries
//! `"{code} {desc}"` (see [`ClientError`]). A message frame's data is:
//!
//! ```text
//! +----------------------+----------------+----------------------------+==========+
//! | i64 BE timestamp ns  | u16 BE attempts| 16 bytes ASCII hex ID      |   body   |
//! +----------------------+----------------+----------------------------+==========+
//!   0                    8                10                           26
//! ```

pub mod command;
pub mod compress;
pub mod error;
pub mod frame;
pub mod identify;
pub mod json;
pub mod message_id;
pub mod names;

/// The NSQ release this implementation is compatible with, reported wherever Go reports `version.Binary`
/// (IDENTIFY replies, `/info`, `/stats`, `nsqd.dat`, lookupd registrations). nsqadmin parses it as semver.
pub const NSQ_VERSION: &str = "1.3.0";

pub use command::{
    byte_to_base10, check_auth_params, clamp_req_timeout, decode_body, decode_line, encode_command,
    encode_command_with_body, encode_mpub, go_quote, invalid_command, parse_dpub, parse_fin,
    parse_mpub_topic, parse_pub_topic, parse_rdy, parse_req, parse_sub, parse_touch, Body,
    BodyKind, Limits, Line, LineTooLong, SubParams, MAX_LINE_LENGTH,
};
pub use error::{ClientError, ErrorCode};
pub use frame::{
    decode_frame, decode_message, encode_error_frame, encode_frame, encode_message_frame,
    DecodedMessage, FrameError, FrameType, BAD_PROTOCOL, CLOSE_WAIT, HEARTBEAT, MAGIC_V2,
    MESSAGE_HEADER_LENGTH, OK,
};
pub use identify::{parse_identify, IdentifyData, IdentifyResponse};
pub use json::to_go_json;
pub use message_id::{parse_message_id, MessageId, MSG_ID_LENGTH};
pub use names::{
    is_ephemeral, is_valid_channel_name, is_valid_topic_name, EPHEMERAL_SUFFIX, MAX_NAME_LENGTH,
};
