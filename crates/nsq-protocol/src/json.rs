//! JSON output that matches Go's `encoding/json` byte for byte.
//!
//! NSQ clients and tools see JSON written by Go, and the golden captures compare it as bytes. `serde_json`'s
//! compact output already matches for objects, numbers and most strings, but Go escapes three HTML characters
//! and two line separators inside strings, and Go 1.19 (the golden build) writes backspace and form feed as
//! `\u0008` and `\u000c`. [`to_go_json`] adds exactly those differences. Floats are not adjusted; none of the
//! types in this crate has one.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};

/// Serializes `value` compactly, escaping strings as Go's `json.Marshal` does.
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut ser = Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// A compact formatter with Go's string escapes.
#[derive(Debug, Clone, Copy)]
struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        let escaped: &[u8] = match char_escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"\\/",
            CharEscape::Backspace => b"\\u0008",
            CharEscape::FormFeed => b"\\u000c",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let buf = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0x0f)],
                ];
                return writer.write_all(&buf);
            }
        };
        writer.write_all(escaped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_match_serde_json() {
        let value = serde_json::json!({"a": 1, "b": [true, null], "c": "text", "d": -5});
        assert_eq!(
            to_go_json(&value).unwrap(),
            serde_json::to_vec(&value).unwrap()
        );
    }

    #[test]
    fn strings_are_escaped_like_go() {
        let s = "<a&b>\u{2028}\u{2029}\"\\/\n\r\t\u{8}\u{c}\u{1}\u{7f}é";
        let out = String::from_utf8(to_go_json(s).unwrap()).unwrap();
        assert_eq!(
            out,
            "\"\\u003ca\\u0026b\\u003e\\u2028\\u2029\\\"\\\\/\\n\\r\\t\\u0008\\u000c\\u0001\u{7f}é\""
        );
    }
}
