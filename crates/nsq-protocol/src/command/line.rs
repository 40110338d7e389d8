//! Splitting command lines off the read buffer.

use bytes::{Bytes, BytesMut};

/// Go reads a command line with a 16 KiB bufio reader: a line longer than this without '\n' makes nsqd close the
/// connection silently (no error frame).
///
/// The limit counts the `'\n'` too: a line of 16383 bytes plus its newline is the longest that fits.
pub const MAX_LINE_LENGTH: usize = 16 * 1024;

/// One command line, split on single spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The command name, case-sensitive (`nop` is not `NOP`).
    pub name: Bytes,
    /// The parameters after the name; Go's `params[1..]`.
    pub params: Vec<Bytes>,
}

/// The read buffer holds [`MAX_LINE_LENGTH`] bytes and none of them is a `'\n'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("command line longer than {MAX_LINE_LENGTH} bytes")]
pub struct LineTooLong;

/// Splits one command line off `buf`. Strips '\n' and one optional trailing '\r', splits on single b' ' exactly as
/// Go's bytes.Split (so "PUB  t" yields an empty param, and an empty line yields name "" and no params).
/// Ok(None) until a '\n' is buffered; Err(LineTooLong) if MAX_LINE_LENGTH bytes are buffered with no '\n'.
///
/// The name and parameters share the memory of the split-off line; nothing is copied.
pub fn decode_line(buf: &mut BytesMut) -> Result<Option<Line>, LineTooLong> {
    let window = &buf[..buf.len().min(MAX_LINE_LENGTH)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= MAX_LINE_LENGTH {
            return Err(LineTooLong);
        }
        return Ok(None);
    };
    let mut line = buf.split_to(newline + 1).freeze();
    line.truncate(newline);
    if line.last() == Some(&b'\r') {
        line.truncate(newline - 1);
    }
    Ok(Some(split_line(&line)))
}

fn split_line(line: &Bytes) -> Line {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, &b) in line.iter().enumerate() {
        if b == b' ' {
            pieces.push(line.slice(start..i));
            start = i + 1;
        }
    }
    pieces.push(line.slice(start..));
    let mut pieces = pieces.into_iter();
    let name = pieces.next().unwrap_or_default();
    Line {
        name,
        params: pieces.collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, params: &[&str]) -> Line {
        Line {
            name: Bytes::copy_from_slice(name.as_bytes()),
            params: params
                .iter()
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .collect(),
        }
    }

    fn decode_all(input: &[u8]) -> Vec<Line> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(l) = decode_line(&mut buf).unwrap() {
            out.push(l);
        }
        assert!(buf.is_empty(), "leftover {buf:?}");
        out
    }

    #[test]
    fn splits_name_and_params() {
        assert_eq!(
            decode_all(b"SUB golden_sub ch\n"),
            vec![line("SUB", &["golden_sub", "ch"])]
        );
        assert_eq!(decode_all(b"NOP\n"), vec![line("NOP", &[])]);
        assert_eq!(decode_all(b"RDY\n"), vec![line("RDY", &[])]);
        assert_eq!(
            decode_all(b"REQ 0000000000000000 0\nCLS\n"),
            vec![line("REQ", &["0000000000000000", "0"]), line("CLS", &[])]
        );
    }

    #[test]
    fn crlf_is_stripped_once() {
        // Golden pub_crlf.json: "PUB golden_crlf\r\n" is accepted.
        assert_eq!(
            decode_all(b"PUB golden_crlf\r\n"),
            vec![line("PUB", &["golden_crlf"])]
        );
        assert_eq!(decode_all(b"NOP\r\r\n"), vec![line("NOP\r", &[])]);
        assert_eq!(decode_all(b"\r\n"), vec![line("", &[])]);
    }

    #[test]
    fn empty_line_has_empty_name_and_no_params() {
        // Golden empty_line.json sends a bare "\n".
        assert_eq!(decode_all(b"\n"), vec![line("", &[])]);
    }

    #[test]
    fn spaces_split_like_go_bytes_split() {
        assert_eq!(decode_all(b"PUB  t\n"), vec![line("PUB", &["", "t"])]);
        assert_eq!(decode_all(b"PUB t \n"), vec![line("PUB", &["t", ""])]);
        assert_eq!(decode_all(b" \n"), vec![line("", &[""])]);
        assert_eq!(decode_all(b"A\tB\n"), vec![line("A\tB", &[])]);
    }

    #[test]
    fn incomplete_line_waits_without_consuming() {
        let mut buf = BytesMut::from(&b"SUB topic ch"[..]);
        assert_eq!(decode_line(&mut buf), Ok(None));
        assert_eq!(&buf[..], b"SUB topic ch");
        buf.extend_from_slice(b"\nRDY 1");
        assert_eq!(
            decode_line(&mut buf).unwrap(),
            Some(line("SUB", &["topic", "ch"]))
        );
        assert_eq!(&buf[..], b"RDY 1");
        assert_eq!(decode_line(&mut buf), Ok(None));
    }

    #[test]
    fn body_bytes_after_the_line_stay_in_the_buffer() {
        let mut buf = BytesMut::from(&b"PUB t\n\x00\x00\x00\x01a"[..]);
        assert_eq!(decode_line(&mut buf).unwrap(), Some(line("PUB", &["t"])));
        assert_eq!(&buf[..], b"\x00\x00\x00\x01a");
    }

    #[test]
    fn line_too_long() {
        // The longest accepted line: 16383 bytes plus '\n' fill the 16 KiB reader exactly.
        let mut longest = vec![b'A'; MAX_LINE_LENGTH - 1];
        longest.push(b'\n');
        let mut buf = BytesMut::from(&longest[..]);
        let l = decode_line(&mut buf).unwrap().unwrap();
        assert_eq!(l.name.len(), MAX_LINE_LENGTH - 1);

        // 16384 bytes with no newline: Go's ReadSlice fails with ErrBufferFull.
        let mut buf = BytesMut::from(&vec![b'A'; MAX_LINE_LENGTH][..]);
        assert_eq!(decode_line(&mut buf), Err(LineTooLong));

        // A newline just past the window does not rescue the line.
        let mut too_long = vec![b'A'; MAX_LINE_LENGTH];
        too_long.push(b'\n');
        let mut buf = BytesMut::from(&too_long[..]);
        assert_eq!(decode_line(&mut buf), Err(LineTooLong));

        // One byte short of the limit still waits.
        let mut buf = BytesMut::from(&vec![b'A'; MAX_LINE_LENGTH - 1][..]);
        assert_eq!(decode_line(&mut buf), Ok(None));
    }
}
