//! Client-to-server commands of protocol V2, decoded in two stages as Go's `protocol_v2.go` does.
//!
//! A command is a text line (`NAME p1 p2\n`), and IDENTIFY, AUTH, PUB, DPUB and MPUB follow it with a
//! length-prefixed binary body. Go checks the connection state and the line's parameters *before* it reads the
//! body, and those checks decide which error a client sees (an invalid topic is reported even when the body
//! size is also bad). So decoding is split to leave room for the caller's checks in between:
//!
//! 1. [`decode_line`] splits one line off the read buffer.
//! 2. The caller checks the state and validates the parameters with the `parse_*` helpers.
//! 3. For a body command, [`decode_body`] checks the size prefix against [`Limits`] and then waits for, and
//!    splits off, the body.
//!
//! The `encode_*` functions are the client side, used by tests and the bench tool.

mod body;
mod encode;
mod line;
mod params;

pub use body::{decode_body, Body, BodyKind, Limits};
pub use encode::{encode_command, encode_command_with_body, encode_mpub};
pub use line::{decode_line, Line, LineTooLong, MAX_LINE_LENGTH};
pub use params::{
    byte_to_base10, check_auth_params, clamp_req_timeout, go_quote, invalid_command, parse_dpub,
    parse_fin, parse_mpub_topic, parse_pub_topic, parse_rdy, parse_req, parse_sub, parse_touch,
    SubParams,
};
