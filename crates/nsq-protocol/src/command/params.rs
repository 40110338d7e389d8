//! Parameter checks for each command line, with Go's exact error texts.
//!
//! `params` never includes the command name, so Go's `params[1]` is `params[0]` here and Go's
//! `len(params) < 3` is `params.len() < 2`.

use std::fmt::Write as _;

use bytes::Bytes;

use crate::error::{ClientError, ErrorCode};
use crate::message_id::{parse_message_id, MessageId};
use crate::names::{is_valid_channel_name, is_valid_topic_name};

/// Nanoseconds per millisecond, for Go's `time.Duration(ms) * time.Millisecond`.
const NANOS_PER_MILLI: i64 = 1_000_000;

/// The topic and channel of a valid SUB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubParams {
    /// A valid topic name.
    pub topic: String,
    /// A valid channel name.
    pub channel: String,
}

/// Go's protocol.ByteToBase10: digits only (empty input -> Ok(0)), wrapping on overflow; anything else -> None.
pub fn byte_to_base10(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.wrapping_mul(10).wrapping_add(u64::from(d - b'0')))
    })
}

/// The fatal error for a command name nsqd does not know, `"invalid command {name}"`.
pub fn invalid_command(name: &[u8]) -> ClientError {
    ClientError::fatal(
        ErrorCode::Invalid,
        format!("invalid command {}", String::from_utf8_lossy(name)),
    )
}

/// AUTH takes no parameters on its line; Go's `len(params) != 1` check.
pub fn check_auth_params(params: &[Bytes]) -> Result<(), ClientError> {
    if params.is_empty() {
        Ok(())
    } else {
        Err(invalid("AUTH invalid number of parameters"))
    }
}

/// Checks SUB's topic and channel.
pub fn parse_sub(params: &[Bytes]) -> Result<SubParams, ClientError> {
    if params.len() < 2 {
        return Err(invalid("SUB insufficient number of parameters"));
    }
    let topic = valid_name(&params[0], is_valid_topic_name).ok_or_else(|| {
        ClientError::fatal(
            ErrorCode::BadTopic,
            format!("SUB topic name {} is not valid", go_quote(&params[0])),
        )
    })?;
    let channel = valid_name(&params[1], is_valid_channel_name).ok_or_else(|| {
        ClientError::fatal(
            ErrorCode::BadChannel,
            format!("SUB channel name {} is not valid", go_quote(&params[1])),
        )
    })?;
    Ok(SubParams { topic, channel })
}

/// Checks the topic of PUB (or of DPUB, whose other checks are in [`parse_dpub`]); `cmd` names the command in
/// the error text.
pub fn parse_pub_topic(cmd: &str, params: &[Bytes]) -> Result<String, ClientError> {
    let Some(raw) = params.first() else {
        return Err(invalid(format!("{cmd} insufficient number of parameters")));
    };
    valid_name(raw, is_valid_topic_name).ok_or_else(|| {
        ClientError::fatal(
            ErrorCode::BadTopic,
            format!("{cmd} topic name {} is not valid", go_quote(raw)),
        )
    })
}

/// Checks MPUB's topic. Go repeats the code inside the description, so the frame reads
/// `E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "…" is not valid`.
pub fn parse_mpub_topic(params: &[Bytes]) -> Result<String, ClientError> {
    let Some(raw) = params.first() else {
        return Err(invalid("MPUB insufficient number of parameters"));
    };
    valid_name(raw, is_valid_topic_name).ok_or_else(|| {
        ClientError::fatal(
            ErrorCode::BadTopic,
            format!("E_BAD_TOPIC MPUB topic name {} is not valid", go_quote(raw)),
        )
    })
}

/// Checks DPUB's topic and defer time; returns the topic and the defer in milliseconds.
///
/// Go converts the parsed count to a `time.Duration` in nanoseconds with wrapping 64-bit arithmetic and checks
/// that duration, so the check here does the same and the returned value is that duration in milliseconds. It
/// equals the parsed number for every input below about 9.2e12 ms.
pub fn parse_dpub(params: &[Bytes], max_req_timeout_ms: u64) -> Result<(String, u64), ClientError> {
    if params.len() < 2 {
        return Err(invalid("DPUB insufficient number of parameters"));
    }
    let topic = parse_pub_topic("DPUB", params)?;
    let Some(timeout_ms) = byte_to_base10(&params[1]) else {
        return Err(invalid(format!(
            "DPUB could not parse timeout {}",
            String::from_utf8_lossy(&params[1])
        )));
    };
    let duration_ns = go_duration_ns(timeout_ms);
    if duration_ns < 0 || duration_ns > go_duration_ns(max_req_timeout_ms) {
        return Err(invalid(format!(
            "DPUB timeout {timeout_ms} out of range 0-{max_req_timeout_ms}"
        )));
    }
    Ok((topic, duration_ns.unsigned_abs() / 1_000_000))
}

/// Checks RDY's count; no parameter means 1.
pub fn parse_rdy(params: &[Bytes], max_rdy_count: i64) -> Result<i64, ClientError> {
    let count = match params.first() {
        None => 1,
        Some(raw) => match byte_to_base10(raw) {
            // Go converts with int64(b10), which wraps huge counts to negative numbers.
            Some(n) => n as i64,
            None => {
                return Err(invalid(format!(
                    "RDY could not parse count {}",
                    String::from_utf8_lossy(raw)
                )))
            }
        },
    };
    if count < 0 || count > max_rdy_count {
        return Err(invalid(format!(
            "RDY count {count} out of range 0-{max_rdy_count}"
        )));
    }
    Ok(count)
}

/// Checks FIN's message ID.
pub fn parse_fin(params: &[Bytes]) -> Result<MessageId, ClientError> {
    let Some(raw) = params.first() else {
        return Err(invalid("FIN insufficient number of params"));
    };
    parse_message_id(raw)
}

/// Checks REQ's message ID and timeout; returns the timeout in milliseconds as sent (see [`clamp_req_timeout`]).
pub fn parse_req(params: &[Bytes]) -> Result<(MessageId, u64), ClientError> {
    if params.len() < 2 {
        return Err(invalid("REQ insufficient number of params"));
    }
    let id = parse_message_id(&params[0])?;
    let timeout_ms = byte_to_base10(&params[1]).ok_or_else(|| {
        invalid(format!(
            "REQ could not parse timeout {}",
            String::from_utf8_lossy(&params[1])
        ))
    })?;
    Ok((id, timeout_ms))
}

/// Clamps a REQ timeout into `0..=max_req_timeout_ms` as Go does (no error, unlike DPUB).
///
/// Go first converts the milliseconds to a nanosecond `time.Duration` with wrapping arithmetic, so a huge
/// timeout may wrap negative and become 0; this reproduces that.
pub fn clamp_req_timeout(timeout_ms: u64, max_req_timeout_ms: u64) -> u64 {
    let duration_ns = go_duration_ns(timeout_ms);
    if duration_ns < 0 {
        0
    } else if duration_ns > go_duration_ns(max_req_timeout_ms) {
        max_req_timeout_ms
    } else {
        duration_ns.unsigned_abs() / 1_000_000
    }
}

/// Checks TOUCH's message ID.
pub fn parse_touch(params: &[Bytes]) -> Result<MessageId, ClientError> {
    let Some(raw) = params.first() else {
        return Err(invalid("TOUCH insufficient number of params"));
    };
    parse_message_id(raw)
}

/// Quotes bytes as Go's `%q` (strconv.Quote) does.
///
/// ASCII is exact: `\"`, `\\`, `\a \b \f \n \r \t \v`, other control bytes and DEL as `\xNN`, printable
/// characters as themselves. Bytes that are not UTF-8 become `\xNN`. Valid non-ASCII characters are kept unless
/// Rust sees them as control characters or they are in a short list of invisible ones (spaces other than
/// U+0020, format characters, private use), which become `\uNNNN`. Go's full printability table also escapes
/// unassigned code points; that is the one known gap.
pub fn go_quote(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            quote_char(&mut out, c);
        }
        for &byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
    out
}

fn quote_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if c < ' ' || c == '\x7f' => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c if c.is_ascii() => out.push(c),
        c if is_go_printable(c) => out.push(c),
        c if u32::from(c) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
        c => {
            let _ = write!(out, "\\U{:08x}", u32::from(c));
        }
    }
}

/// An approximation of Go's `unicode.IsPrint` for non-ASCII characters.
fn is_go_printable(c: char) -> bool {
    let cp = u32::from(c);
    let invisible = c.is_control()
        || matches!(
            cp,
            0x00a0 | 0x00ad | 0x0600..=0x0605 | 0x061c | 0x06dd | 0x070f | 0x1680 | 0x180e
                | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064 | 0x2066..=0x206f
                | 0x3000 | 0xe000..=0xf8ff | 0xfeff | 0xfff9..=0xfffb | 0xfffe | 0xffff
                | 0xf0000..
        );
    !invisible
}

fn invalid(desc: impl Into<String>) -> ClientError {
    ClientError::fatal(ErrorCode::Invalid, desc)
}

/// The name as a `String` if it passes `check`; names that are not UTF-8 are never valid.
fn valid_name(raw: &[u8], check: fn(&str) -> bool) -> Option<String> {
    std::str::from_utf8(raw)
        .ok()
        .filter(|name| check(name))
        .map(str::to_owned)
}

/// Go's `time.Duration(ms) * time.Millisecond`: a reinterpreting cast and a wrapping multiply.
fn go_duration_ns(ms: u64) -> i64 {
    (ms as i64).wrapping_mul(NANOS_PER_MILLI)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn err_text<T: std::fmt::Debug>(r: Result<T, ClientError>) -> String {
        let err = r.unwrap_err();
        assert!(err.is_fatal(), "{err}");
        err.to_string()
    }

    #[test]
    fn base10_edge_cases() {
        assert_eq!(byte_to_base10(b""), Some(0));
        assert_eq!(byte_to_base10(b"0"), Some(0));
        assert_eq!(byte_to_base10(b"007"), Some(7));
        assert_eq!(byte_to_base10(b"3600000"), Some(3_600_000));
        assert_eq!(byte_to_base10(b"18446744073709551615"), Some(u64::MAX));
        // One past u64::MAX wraps to 0, as Go's unchecked arithmetic does.
        assert_eq!(byte_to_base10(b"18446744073709551616"), Some(0));
        assert_eq!(byte_to_base10(b"-1"), None);
        assert_eq!(byte_to_base10(b"+1"), None);
        assert_eq!(byte_to_base10(b" 1"), None);
        assert_eq!(byte_to_base10(b"1a"), None);
        assert_eq!(byte_to_base10(b"abc"), None);
    }

    #[test]
    fn quote_like_go() {
        assert_eq!(go_quote(b"bad!topic"), "\"bad!topic\"");
        assert_eq!(go_quote(b""), "\"\"");
        assert_eq!(go_quote(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote(b"\n\r\t"), "\"\\n\\r\\t\"");
        assert_eq!(go_quote(b"\x07\x08\x0c\x0b"), "\"\\a\\b\\f\\v\"");
        assert_eq!(go_quote(b"\x00\x1f\x7f"), "\"\\x00\\x1f\\x7f\"");
        assert_eq!(go_quote(b"\xff\xfe"), "\"\\xff\\xfe\"");
        assert_eq!(go_quote("ümlaut".as_bytes()), "\"ümlaut\"");
        assert_eq!(go_quote("a\u{a0}b".as_bytes()), "\"a\\u00a0b\"");
        assert_eq!(go_quote("\u{200b}".as_bytes()), "\"\\u200b\"");
        assert_eq!(go_quote("\u{85}".as_bytes()), "\"\\u0085\"");
        assert_eq!(go_quote("\u{f0000}".as_bytes()), "\"\\U000f0000\"");
        // A truncated multi-byte sequence is one bad byte at a time.
        assert_eq!(go_quote(b"a\xe2\x82"), "\"a\\xe2\\x82\"");
    }

    #[test]
    fn sub_params() {
        assert_eq!(
            parse_sub(&p(&["golden_sub", "ch"])).unwrap(),
            SubParams {
                topic: "golden_sub".into(),
                channel: "ch".into()
            }
        );
        assert_eq!(
            parse_sub(&p(&["t", "ch#ephemeral", "extra"]))
                .unwrap()
                .channel,
            "ch#ephemeral"
        );
        assert_eq!(
            err_text(parse_sub(&p(&["golden_sub"]))),
            "E_INVALID SUB insufficient number of parameters"
        );
        assert_eq!(
            err_text(parse_sub(&p(&[]))),
            "E_INVALID SUB insufficient number of parameters"
        );
        assert_eq!(
            err_text(parse_sub(&p(&["bad!topic", "ch"]))),
            "E_BAD_TOPIC SUB topic name \"bad!topic\" is not valid"
        );
        assert_eq!(
            err_text(parse_sub(&p(&["t", "bad!chan"]))),
            "E_BAD_CHANNEL SUB channel name \"bad!chan\" is not valid"
        );
        // The topic is checked before the channel.
        assert_eq!(
            parse_sub(&p(&["bad!", "bad!"])).unwrap_err().code(),
            ErrorCode::BadTopic
        );
        assert_eq!(
            err_text(parse_sub(&p(&["t", ""]))),
            "E_BAD_CHANNEL SUB channel name \"\" is not valid"
        );
        let non_utf8 = vec![Bytes::from_static(b"t\xff"), Bytes::from_static(b"c")];
        assert_eq!(
            err_text(parse_sub(&non_utf8)),
            "E_BAD_TOPIC SUB topic name \"t\\xff\" is not valid"
        );
    }

    #[test]
    fn pub_topic() {
        assert_eq!(
            parse_pub_topic("PUB", &p(&["golden_pub"])).unwrap(),
            "golden_pub"
        );
        assert_eq!(
            parse_pub_topic("PUB", &p(&["t#ephemeral"])).unwrap(),
            "t#ephemeral"
        );
        assert_eq!(
            err_text(parse_pub_topic("PUB", &p(&[]))),
            "E_INVALID PUB insufficient number of parameters"
        );
        assert_eq!(
            err_text(parse_pub_topic("PUB", &p(&["bad!topic"]))),
            "E_BAD_TOPIC PUB topic name \"bad!topic\" is not valid"
        );
        let long = "t".repeat(65);
        assert_eq!(
            err_text(parse_pub_topic("PUB", &p(&[&long]))),
            "E_BAD_TOPIC PUB topic name \"ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt\" is not valid"
        );
        // "PUB  t" has an empty first parameter.
        assert_eq!(
            err_text(parse_pub_topic("PUB", &p(&["", "t"]))),
            "E_BAD_TOPIC PUB topic name \"\" is not valid"
        );
    }

    #[test]
    fn mpub_topic_doubles_the_code() {
        assert_eq!(
            parse_mpub_topic(&p(&["golden_mpub"])).unwrap(),
            "golden_mpub"
        );
        assert_eq!(
            err_text(parse_mpub_topic(&p(&[]))),
            "E_INVALID MPUB insufficient number of parameters"
        );
        assert_eq!(
            err_text(parse_mpub_topic(&p(&["bad!topic"]))),
            "E_BAD_TOPIC E_BAD_TOPIC MPUB topic name \"bad!topic\" is not valid"
        );
    }

    #[test]
    fn dpub_params() {
        assert_eq!(
            parse_dpub(&p(&["golden_dpub", "5000"]), 3_600_000).unwrap(),
            ("golden_dpub".to_owned(), 5000)
        );
        assert_eq!(
            parse_dpub(&p(&["t", "3600000"]), 3_600_000).unwrap().1,
            3_600_000
        );
        assert_eq!(parse_dpub(&p(&["t", "0"]), 3_600_000).unwrap().1, 0);
        assert_eq!(
            err_text(parse_dpub(&p(&["golden_dpub"]), 3_600_000)),
            "E_INVALID DPUB insufficient number of parameters"
        );
        assert_eq!(
            err_text(parse_dpub(&p(&["bad!topic", "1"]), 3_600_000)),
            "E_BAD_TOPIC DPUB topic name \"bad!topic\" is not valid"
        );
        assert_eq!(
            err_text(parse_dpub(&p(&["t", "-1"]), 3_600_000)),
            "E_INVALID DPUB could not parse timeout -1"
        );
        assert_eq!(
            err_text(parse_dpub(&p(&["t", "3600001"]), 3_600_000)),
            "E_INVALID DPUB timeout 3600001 out of range 0-3600000"
        );
        // 2^63 / 10^6 + 1 ms wraps to a negative duration in Go.
        assert_eq!(
            err_text(parse_dpub(&p(&["t", "9223372036855"]), 3_600_000)),
            "E_INVALID DPUB timeout 9223372036855 out of range 0-3600000"
        );
    }

    #[test]
    fn rdy_params() {
        assert_eq!(parse_rdy(&p(&[]), 2500), Ok(1));
        assert_eq!(parse_rdy(&p(&["0"]), 2500), Ok(0));
        assert_eq!(parse_rdy(&p(&["2500"]), 2500), Ok(2500));
        assert_eq!(parse_rdy(&p(&[""]), 2500), Ok(0));
        assert_eq!(
            err_text(parse_rdy(&p(&["-1"]), 2500)),
            "E_INVALID RDY could not parse count -1"
        );
        assert_eq!(
            err_text(parse_rdy(&p(&["2501"]), 2500)),
            "E_INVALID RDY count 2501 out of range 0-2500"
        );
        assert_eq!(
            err_text(parse_rdy(&p(&["18446744073709551615"]), 2500)),
            "E_INVALID RDY count -1 out of range 0-2500"
        );
    }

    #[test]
    fn fin_req_touch_params() {
        let id = "0000000000000000";
        assert_eq!(parse_fin(&p(&[id])).unwrap().as_str(), id);
        assert_eq!(
            err_text(parse_fin(&p(&[]))),
            "E_INVALID FIN insufficient number of params"
        );
        // Golden fin_bad_id_length.json sends "FIN 123".
        assert_eq!(
            err_text(parse_fin(&p(&["123"]))),
            "E_INVALID invalid message ID"
        );

        assert_eq!(parse_req(&p(&[id, "0"])).unwrap().1, 0);
        assert_eq!(parse_req(&p(&[id, "1000"])).unwrap().1, 1000);
        assert_eq!(
            err_text(parse_req(&p(&[id]))),
            "E_INVALID REQ insufficient number of params"
        );
        assert_eq!(
            err_text(parse_req(&p(&["short", "0"]))),
            "E_INVALID invalid message ID"
        );
        assert_eq!(
            err_text(parse_req(&p(&[id, "abc"]))),
            "E_INVALID REQ could not parse timeout abc"
        );

        assert_eq!(parse_touch(&p(&[id])).unwrap().as_str(), id);
        assert_eq!(
            err_text(parse_touch(&p(&[]))),
            "E_INVALID TOUCH insufficient number of params"
        );
        assert_eq!(
            err_text(parse_touch(&p(&["0123456789abcdef0"]))),
            "E_INVALID invalid message ID"
        );
    }

    #[test]
    fn req_timeout_clamps_like_go() {
        assert_eq!(clamp_req_timeout(0, 3_600_000), 0);
        assert_eq!(clamp_req_timeout(1000, 3_600_000), 1000);
        assert_eq!(clamp_req_timeout(3_600_001, 3_600_000), 3_600_000);
        // Wraps negative in Go's nanosecond arithmetic, so it becomes 0.
        assert_eq!(clamp_req_timeout(9_223_372_036_855, 3_600_000), 0);
    }

    #[test]
    fn auth_and_unknown_command_helpers() {
        assert_eq!(check_auth_params(&p(&[])), Ok(()));
        assert_eq!(
            err_text(check_auth_params(&p(&["x"]))),
            "E_INVALID AUTH invalid number of parameters"
        );
        assert_eq!(
            invalid_command(b"FOO").to_string(),
            "E_INVALID invalid command FOO"
        );
        assert_eq!(
            invalid_command(b"nop").to_string(),
            "E_INVALID invalid command nop"
        );
        assert_eq!(
            invalid_command(b"").to_string(),
            "E_INVALID invalid command "
        );
    }
}
