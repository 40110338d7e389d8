//! The lookupd TCP protocol V1 as bytes and values, without I/O (Go's `lookup_protocol_v1.go`).
//!
//! ```text
//! client → lookupd   "  V1"                                  magic, once
//!                    "PING\n"
//!                    "IDENTIFY\n" [i32 BE size] [JSON body]
//!                    "REGISTER <topic> [<channel>]\n"
//!                    "UNREGISTER <topic> [<channel>]\n"
//! lookupd → client   [u32 BE size] [data]                    "OK", the IDENTIFY JSON, or "E_CODE text"
//! ```
//!
//! Unlike nsqd's V2 frames there is no frame type; an error is a response whose text starts with its code, and
//! every error closes the connection. A line is trimmed of surrounding whitespace and split on single spaces,
//! so `"REGISTER  t"` has an empty topic. Everything stays bytes, so an error echoes a bad name exactly as sent.
//!
//! Limits Go does not have: a command line may be at most [`MAX_LINE_LENGTH`] bytes and an IDENTIFY body at
//! most [`MAX_IDENTIFY_BODY`]; a negative or larger size closes the connection after an `E_BAD_BODY` (Go's
//! process panics on a negative size).

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde_json::Value;

use crate::db::PeerFields;

/// The 4 bytes a client sends first.
pub const MAGIC_V1: &[u8; 4] = b"  V1";
/// The answer to any other magic.
pub const BAD_PROTOCOL: &[u8] = b"E_BAD_PROTOCOL";
/// The answer to PING, REGISTER and UNREGISTER.
pub const OK: &[u8] = b"OK";
/// The longest command line accepted, newline excluded. Real lines are a command and two names of at most
/// 64 bytes each.
pub const MAX_LINE_LENGTH: usize = 64 * 1024;
/// The largest IDENTIFY body accepted. nsqd's is about 200 bytes.
pub const MAX_IDENTIFY_BODY: usize = 1024 * 1024;

/// A protocol error: its code and the rest of its text, sent as `"<code> <text>"`. All of them are fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// `E_INVALID`, `E_BAD_BODY`, `E_BAD_TOPIC` or `E_BAD_CHANNEL`.
    pub code: &'static str,
    /// The description, bytes because it may quote what the client sent.
    pub text: Vec<u8>,
}

impl ProtocolError {
    fn new(code: &'static str, text: impl Into<Vec<u8>>) -> Self {
        Self {
            code,
            text: text.into(),
        }
    }

    /// `E_INVALID <text>`.
    pub fn invalid(text: impl Into<Vec<u8>>) -> Self {
        Self::new("E_INVALID", text)
    }

    /// `E_BAD_BODY <text>`.
    pub fn bad_body(text: impl Into<Vec<u8>>) -> Self {
        Self::new("E_BAD_BODY", text)
    }

    /// The bytes sent to the client.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.code.len() + 1 + self.text.len());
        out.extend_from_slice(self.code.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.text);
        out
    }
}

/// A command line, split into its words.
///
/// `REGISTER`/`UNREGISTER` carry the outcome of validating their arguments rather than failing the parse,
/// because Go reports "client must IDENTIFY" before it looks at the names; the caller makes that check first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `PING`.
    Ping,
    /// `IDENTIFY`; its size and body follow the line.
    Identify,
    /// `REGISTER topic [channel]`.
    Register(Result<TopicChannel, ProtocolError>),
    /// `UNREGISTER topic [channel]`.
    Unregister(Result<TopicChannel, ProtocolError>),
}

/// The validated arguments of REGISTER and UNREGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicChannel {
    /// The topic.
    pub topic: String,
    /// The channel, when one was given (a present but empty one counts as absent, as in Go).
    pub channel: Option<String>,
}

/// Parses one line (without its `\n`) into a command.
pub fn parse_line(line: &[u8]) -> Result<Command, ProtocolError> {
    let line = trim_space(line);
    let mut words = line.split(|&b| b == b' ');
    let name = words.next().unwrap_or_default();
    let params: Vec<&[u8]> = words.collect();
    match name {
        b"PING" => Ok(Command::Ping),
        b"IDENTIFY" => Ok(Command::Identify),
        b"REGISTER" => Ok(Command::Register(topic_and_channel("REGISTER", &params))),
        b"UNREGISTER" => Ok(Command::Unregister(topic_and_channel(
            "UNREGISTER",
            &params,
        ))),
        _ => {
            let mut text = b"invalid command ".to_vec();
            text.extend_from_slice(name);
            Err(ProtocolError::invalid(text))
        }
    }
}

/// Go's `getTopicChan`.
fn topic_and_channel(verb: &str, params: &[&[u8]]) -> Result<TopicChannel, ProtocolError> {
    let Some(&topic) = params.first() else {
        return Err(ProtocolError::invalid(format!(
            "{verb} insufficient number of params"
        )));
    };
    let channel = params.get(1).copied().unwrap_or_default();
    let valid = |name: &[u8], check: fn(&str) -> bool| std::str::from_utf8(name).is_ok_and(check);
    if !valid(topic, nsq_protocol::is_valid_topic_name) {
        return Err(bad_name("E_BAD_TOPIC", verb, "topic", topic));
    }
    if !channel.is_empty() && !valid(channel, nsq_protocol::is_valid_channel_name) {
        return Err(bad_name("E_BAD_CHANNEL", verb, "channel", channel));
    }
    // Valid names are ASCII, so these conversions are lossless.
    let topic = String::from_utf8_lossy(topic).into_owned();
    let channel = (!channel.is_empty()).then(|| String::from_utf8_lossy(channel).into_owned());
    Ok(TopicChannel { topic, channel })
}

fn bad_name(code: &'static str, verb: &str, what: &str, name: &[u8]) -> ProtocolError {
    let mut text = format!("{verb} {what} name '").into_bytes();
    text.extend_from_slice(name);
    text.extend_from_slice(b"' is not valid");
    ProtocolError::new(code, text)
}

/// Go's `strings.TrimSpace` on bytes: ASCII white space, and Unicode white space when the line is UTF-8.
fn trim_space(line: &[u8]) -> &[u8] {
    match std::str::from_utf8(line) {
        Ok(s) => s.trim().as_bytes(),
        Err(_) => line.trim_ascii(),
    }
}

/// Checks the IDENTIFY size prefix; `Ok` is the body length to read.
pub fn identify_body_len(size: i32) -> Result<usize, ProtocolError> {
    match usize::try_from(size) {
        Ok(n) if n <= MAX_IDENTIFY_BODY => Ok(n),
        _ => Err(ProtocolError::bad_body(format!(
            "IDENTIFY invalid body size {size}"
        ))),
    }
}

/// Decodes an IDENTIFY body as Go's `json.Unmarshal` into `PeerInfo` would, then requires the fields Go
/// requires. Keys match case-insensitively, later duplicates win, unknown keys are ignored, `null` leaves a
/// field empty, and a value of the wrong type (a port of `1.0` or `"4150"`) is an error.
pub fn parse_identify(body: &[u8]) -> Result<PeerFields, ProtocolError> {
    let decode_error = || ProtocolError::bad_body("IDENTIFY failed to decode JSON body");
    let value: Value = serde_json::from_slice(body).map_err(|_| decode_error())?;
    let mut fields = PeerFields::default();
    let object = match value {
        Value::Object(object) => object,
        Value::Null => Default::default(),
        _ => return Err(decode_error()),
    };
    let mut type_error = false;
    for (key, value) in &object {
        let Some(field) = FIELD_NAMES
            .iter()
            .find(|f| f.eq_ignore_ascii_case(key))
            .copied()
        else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let ok = match field {
            "tcp_port" => set_int(&mut fields.tcp_port, value),
            "http_port" => set_int(&mut fields.http_port, value),
            "hostname" => set_str(&mut fields.hostname, value),
            "broadcast_address" => set_str(&mut fields.broadcast_address, value),
            "version" => set_str(&mut fields.version, value),
            "topology_zone" => set_str(&mut fields.topology_zone, value),
            "topology_region" => set_str(&mut fields.topology_region, value),
            // remote_address is accepted and then replaced by the real one.
            _ => value.is_string(),
        };
        type_error |= !ok;
    }
    if type_error {
        return Err(decode_error());
    }
    if fields.broadcast_address.is_empty()
        || fields.tcp_port == 0
        || fields.http_port == 0
        || fields.version.is_empty()
    {
        return Err(ProtocolError::bad_body("IDENTIFY missing fields"));
    }
    Ok(fields)
}

/// The JSON names of `PeerInfo`'s exported fields.
const FIELD_NAMES: [&str; 8] = [
    "remote_address",
    "hostname",
    "broadcast_address",
    "tcp_port",
    "http_port",
    "version",
    "topology_zone",
    "topology_region",
];

fn set_int(field: &mut i64, value: &Value) -> bool {
    match value.as_i64() {
        Some(n) => {
            *field = n;
            true
        }
        None => false,
    }
}

fn set_str(field: &mut String, value: &Value) -> bool {
    match value.as_str() {
        Some(s) => {
            s.clone_into(field);
            true
        }
        None => false,
    }
}

/// lookupd's IDENTIFY answer. Go builds it from a map, so the keys come out sorted.
#[derive(Debug, Serialize)]
pub struct IdentifyResponse<'a> {
    /// `--broadcast-address`.
    pub broadcast_address: &'a str,
    /// The OS hostname.
    pub hostname: &'a str,
    /// The HTTP listener's port (nsqd queries `/channels` there); -1 for a unix socket.
    pub http_port: i32,
    /// The TCP listener's port; -1 for a unix socket.
    pub tcp_port: i32,
    /// The version string.
    pub version: &'a str,
}

/// Appends `[u32 BE len][data]` to `out`.
pub fn encode_response(out: &mut BytesMut, data: &[u8]) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.reserve(4 + data.len());
    out.put_u32(len);
    out.put_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command with its argument check applied, as the connection applies it after IDENTIFY.
    fn command(line: &[u8]) -> Result<Command, ProtocolError> {
        match parse_line(line)? {
            Command::Register(Err(e)) | Command::Unregister(Err(e)) => Err(e),
            other => Ok(other),
        }
    }

    fn names(topic: &str, channel: Option<&str>) -> Result<TopicChannel, ProtocolError> {
        Ok(TopicChannel {
            topic: topic.to_owned(),
            channel: channel.map(str::to_owned),
        })
    }

    fn error_text(line: &[u8]) -> String {
        String::from_utf8(command(line).unwrap_err().to_bytes()).unwrap()
    }

    #[test]
    fn lines_are_trimmed_and_split_on_single_spaces() {
        assert_eq!(command(b"  PING  \r"), Ok(Command::Ping));
        assert_eq!(
            command(b"REGISTER t c"),
            Ok(Command::Register(names("t", Some("c"))))
        );
        assert_eq!(
            command(b"UNREGISTER t"),
            Ok(Command::Unregister(names("t", None)))
        );
        assert_eq!(
            error_text(b"REGISTER  t"),
            "E_BAD_TOPIC REGISTER topic name '' is not valid"
        );
    }

    #[test]
    fn go_error_texts() {
        assert_eq!(error_text(b""), "E_INVALID invalid command ");
        assert_eq!(error_text(b"FOO"), "E_INVALID invalid command FOO");
        assert_eq!(error_text(b"ping"), "E_INVALID invalid command ping");
        assert_eq!(
            error_text(b"REGISTER"),
            "E_INVALID REGISTER insufficient number of params"
        );
        assert_eq!(
            error_text(b"UNREGISTER "),
            "E_INVALID UNREGISTER insufficient number of params"
        );
        assert_eq!(
            error_text(b"REGISTER bad!topic"),
            "E_BAD_TOPIC REGISTER topic name 'bad!topic' is not valid"
        );
        assert_eq!(
            error_text(b"REGISTER golden_t bad!chan"),
            "E_BAD_CHANNEL REGISTER channel name 'bad!chan' is not valid"
        );
        let err = command(b"REGISTER t\xff").unwrap_err();
        assert_eq!(
            err.to_bytes(),
            b"E_BAD_TOPIC REGISTER topic name 't\xff' is not valid"
        );
    }

    #[test]
    fn identify_size_limits() {
        assert_eq!(identify_body_len(0), Ok(0));
        assert_eq!(identify_body_len(149), Ok(149));
        assert_eq!(
            identify_body_len(-1).unwrap_err().to_bytes(),
            b"E_BAD_BODY IDENTIFY invalid body size -1"
        );
        assert!(identify_body_len(i32::MAX).is_err());
    }

    #[test]
    fn identify_json_like_go() {
        let nsqd = br#"{"broadcast_address":"127.0.0.1","hostname":"vm","http_port":50077,"tcp_port":45671,"topology_region":"","topology_zone":"","version":"1.3.0"}"#;
        let fields = parse_identify(nsqd).unwrap();
        assert_eq!(fields.http_port, 50077);
        assert_eq!(fields.hostname, "vm");
        let folded =
            br#"{"BROADCAST_ADDRESS":"a","Tcp_Port":1,"http_port":2,"version":"v","extra":[1]}"#;
        assert_eq!(parse_identify(folded).unwrap().broadcast_address, "a");
        let bad = |body: &[u8]| String::from_utf8(parse_identify(body).unwrap_err().to_bytes());
        let decode = Ok("E_BAD_BODY IDENTIFY failed to decode JSON body".to_owned());
        assert_eq!(bad(b"nope"), decode);
        assert_eq!(bad(b"[]"), decode);
        assert_eq!(bad(br#"{"tcp_port":1.0}"#), decode);
        assert_eq!(bad(br#"{"tcp_port":"1"}"#), decode);
        assert_eq!(bad(br#"{"version":1}"#), decode);
        let missing = Ok("E_BAD_BODY IDENTIFY missing fields".to_owned());
        assert_eq!(bad(b"null"), missing);
        assert_eq!(
            bad(br#"{"broadcast_address":"a","tcp_port":1,"version":"v","http_port":null}"#),
            missing
        );
    }

    #[test]
    fn responses_are_size_prefixed_without_a_type() {
        let mut out = BytesMut::new();
        encode_response(&mut out, OK);
        assert_eq!(&out[..], b"\x00\x00\x00\x02OK");
    }
}
