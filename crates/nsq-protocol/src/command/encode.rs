//! Client-side command encoders, for tests and the bench tool.

use bytes::{BufMut, BytesMut};

use crate::frame::wire_len;

/// Appends `"NAME p1 p2\n"`.
pub fn encode_command(dst: &mut BytesMut, name: &str, params: &[&[u8]]) {
    let len = name.len() + params.iter().map(|p| p.len() + 1).sum::<usize>() + 1;
    dst.reserve(len);
    dst.put_slice(name.as_bytes());
    for param in params {
        dst.put_u8(b' ');
        dst.put_slice(param);
    }
    dst.put_u8(b'\n');
}

/// Appends the command line, then `[i32 BE len][body]`.
///
/// # Panics
///
/// If `body` is longer than `i32::MAX` bytes.
pub fn encode_command_with_body(dst: &mut BytesMut, name: &str, params: &[&[u8]], body: &[u8]) {
    encode_command(dst, name, params);
    dst.reserve(4 + body.len());
    dst.put_i32(wire_len(body.len()));
    dst.put_slice(body);
}

/// Appends `MPUB topic\n[i32 total][i32 n]([i32 len][body])*`, where `total` counts everything after itself.
///
/// # Panics
///
/// If the batch is longer than `i32::MAX` bytes.
pub fn encode_mpub(dst: &mut BytesMut, topic: &str, bodies: &[&[u8]]) {
    encode_command(dst, "MPUB", &[topic.as_bytes()]);
    let total = 4 + bodies.iter().map(|b| 4 + b.len()).sum::<usize>();
    dst.reserve(4 + total);
    dst.put_i32(wire_len(total));
    dst.put_i32(wire_len(bodies.len()));
    for body in bodies {
        dst.put_i32(wire_len(body.len()));
        dst.put_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{decode_line, Line};
    use bytes::Bytes;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn command_lines_match_golden() {
        let mut dst = BytesMut::new();
        encode_command(&mut dst, "SUB", &[b"golden_sub", b"ch"]);
        assert_eq!(&dst[..], &hex("53554220676f6c64656e5f7375622063680a")[..]);
        let mut dst = BytesMut::new();
        encode_command(&mut dst, "RDY", &[]);
        assert_eq!(&dst[..], &hex("5244590a")[..]);
        let mut dst = BytesMut::new();
        encode_command(&mut dst, "RDY", &[b"1"]);
        assert_eq!(&dst[..], &hex("52445920310a")[..]);
    }

    #[test]
    fn bodies_match_golden() {
        // Golden sub_rdy_message.json PUB and dpub_ok.json DPUB.
        let mut dst = BytesMut::new();
        encode_command_with_body(&mut dst, "PUB", &[b"golden_sub"], b"payload-1");
        assert_eq!(
            &dst[..],
            &hex("50554220676f6c64656e5f7375620a000000097061796c6f61642d31")[..]
        );
        let mut dst = BytesMut::new();
        encode_command_with_body(&mut dst, "DPUB", &[b"golden_dpub", b"5000"], b"later");
        assert_eq!(
            &dst[..],
            &hex("4450554220676f6c64656e5f6470756220353030300a000000056c61746572")[..]
        );
    }

    #[test]
    fn every_line_command_round_trips() {
        let id: &[u8] = b"18a348de98401000";
        let cases: [(&str, Vec<&[u8]>); 8] = [
            ("SUB", vec![b"t", b"c#ephemeral"]),
            ("RDY", vec![b"2500"]),
            ("FIN", vec![id]),
            ("REQ", vec![id, b"1000"]),
            ("TOUCH", vec![id]),
            ("CLS", vec![]),
            ("NOP", vec![]),
            ("AUTH", vec![]),
        ];
        let mut buf = BytesMut::new();
        for (name, params) in &cases {
            encode_command(&mut buf, name, params);
        }
        for (name, params) in &cases {
            let line = decode_line(&mut buf).unwrap().unwrap();
            assert_eq!(
                line,
                Line {
                    name: Bytes::copy_from_slice(name.as_bytes()),
                    params: params.iter().map(|p| Bytes::copy_from_slice(p)).collect(),
                }
            );
        }
        assert!(buf.is_empty());
    }
}
