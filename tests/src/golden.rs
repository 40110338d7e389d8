//! Typed views of the golden captures in `shared/golden/` (see its README).
//!
//! The captures are plain JSON written by the capture tooling. The tests only need a few of their
//! fields, so these types keep the shape loose (`Option` wherever a field is absent on some steps)
//! and leave the interpretation to the test files. The hex fields are authoritative; the `*_text`
//! renderings are only used in messages for humans.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The flags every nsqd capture used, with ports and the data path replaced by placeholders.
/// The test harness supplies its own values for these, so they are not "extra" flags.
const COMMON_NSQD_FLAG_PREFIXES: &[&str] = &[
    "--tcp-address=",
    "--http-address=",
    "--broadcast-address=",
    "--node-id=",
    "--data-path=",
];

/// One `tcp/*.json` file: a single conversation with a daemon.
#[derive(Debug, Clone, Deserialize)]
pub struct Transcript {
    /// The file name without `.json`.
    pub name: String,
    /// What the conversation shows, including any setup done outside the connection.
    pub description: String,
    /// `nsqd`, `nsqlookupd`, or (for `nsqd_to_lookupd`) the recording side.
    pub daemon: String,
    /// The exact daemon flags, with ports and temp dirs as `<placeholders>`.
    pub daemon_flags: Vec<String>,
    /// The steps in wall-clock order.
    pub steps: Vec<Step>,
}

/// One step of a transcript: a client write, a listening window, or a bare note.
#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    /// Bytes the client wrote in one `write()`.
    pub send_hex: Option<String>,
    /// Readable rendering of `send_hex`.
    pub send_text: Option<String>,
    /// Everything the server sent during the window, concatenated.
    pub recv_hex: Option<String>,
    /// `recv_hex` decoded into frames, with the arrival time of each.
    pub recv_frames: Option<Vec<GoldenFrame>>,
    /// Whether the server closed the connection during the window.
    pub closed_after: Option<bool>,
    /// How long the capture listened in this window.
    pub listened_ms: Option<u64>,
    /// Whether the close came as a TCP reset.
    pub connection_reset: Option<bool>,
    /// `deflate`, `snappy` or `tls` for bytes after an upgrade.
    pub transport: Option<String>,
    /// Free-form explanation by the capture tooling.
    pub note: Option<String>,
}

/// What kind of step a [`Step`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// The client writes bytes.
    Send,
    /// The client listens for a window.
    Recv,
    /// Only a note (for example an out-of-band action of the capture).
    Note,
}

impl Step {
    /// Classifies the step by the fields it carries.
    pub fn kind(&self) -> StepKind {
        if self.send_hex.is_some() {
            StepKind::Send
        } else if self.recv_hex.is_some() {
            StepKind::Recv
        } else {
            StepKind::Note
        }
    }

    /// The bytes of a send step.
    pub fn send_bytes(&self) -> Result<Vec<u8>> {
        decode_hex(self.send_hex.as_deref().unwrap_or_default())
    }

    /// The raw bytes of a recv step.
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        decode_hex(self.recv_hex.as_deref().unwrap_or_default())
    }
}

/// One decoded frame of a recv step.
#[derive(Debug, Clone, Deserialize)]
pub struct GoldenFrame {
    /// The frame's size field (type + data length).
    pub size: u32,
    /// 0 = response, 1 = error, 2 = message (absent for nsqlookupd frames).
    #[serde(rename = "type")]
    pub frame_type: Option<i32>,
    /// Readable rendering of the data.
    pub data_text: String,
    /// Milliseconds after the start of the window when the frame was read.
    pub t_ms: Option<u64>,
    /// The decoded message for message frames.
    pub message: Option<GoldenMessage>,
}

/// The decoded fields of a message frame.
#[derive(Debug, Clone, Deserialize)]
pub struct GoldenMessage {
    /// Nanosecond timestamp set when the message was published.
    pub timestamp_ns: i64,
    /// Delivery attempts, starting at 1.
    pub attempts: u16,
    /// The 16-character ASCII hex message id.
    pub id: String,
    /// Readable rendering of the body.
    pub body_text: String,
    /// Body length in bytes.
    pub body_len: usize,
}

impl Transcript {
    /// Reads one transcript file.
    pub fn load(path: &Path) -> Result<Transcript> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading transcript {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("parsing transcript {}", path.display()))
    }

    /// Reads every `*.json` transcript in `dir`, sorted by file name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Transcript>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Transcript::load(p)).collect()
    }

    /// Whether this is a client conversation with nsqd's V2 TCP protocol. `nsqd_to_lookupd` also
    /// says `daemon: nsqd`, but there nsqd is the client of a lookupd, so it is not one.
    pub fn is_nsqd_v2(&self) -> bool {
        self.daemon == "nsqd"
            && self.name != "nsqd_to_lookupd"
            && !self.name.starts_with("lookupd_")
    }

    /// The flags beyond the common ones every capture used, for example `--max-msg-size=100`.
    ///
    /// Fails if a remaining flag still holds a `<placeholder>` (a certificate path, an auth server
    /// port): those captures need infrastructure this harness does not provide.
    pub fn extra_flags(&self) -> Result<Vec<String>> {
        extra_nsqd_flags(&self.daemon_flags)
    }
}

/// Strips the common nsqd flags from a capture's flag list (see [`Transcript::extra_flags`]).
pub fn extra_nsqd_flags(flags: &[String]) -> Result<Vec<String>> {
    let mut extra = Vec::new();
    for flag in flags {
        if COMMON_NSQD_FLAG_PREFIXES
            .iter()
            .any(|p| flag.starts_with(p))
        {
            continue;
        }
        if flag.contains('<') {
            bail!("flag {flag:?} needs a value this harness cannot provide");
        }
        extra.push(flag.clone());
    }
    Ok(extra)
}

/// `http/nsqd.json` or `http/nsqlookupd.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpGolden {
    /// Human title of the capture.
    pub title: String,
    /// The daemon instances the exchanges ran against, by name.
    pub instances: serde_json::Map<String, serde_json::Value>,
    /// The exchanges in the order they were made.
    pub exchanges: Vec<Exchange>,
}

impl HttpGolden {
    /// Reads one HTTP capture file.
    pub fn load(path: &Path) -> Result<HttpGolden> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The flags of one instance (with placeholders).
    pub fn instance_flags(&self, instance: &str) -> Result<Vec<String>> {
        let flags = self
            .instances
            .get(instance)
            .and_then(|i| i.get("flags"))
            .with_context(|| format!("instance {instance} has no flags"))?;
        Ok(serde_json::from_value(flags.clone())?)
    }
}

/// One HTTP exchange, a raw exchange, or a note.
#[derive(Debug, Clone, Deserialize)]
pub struct Exchange {
    /// Unique name of the exchange.
    pub name: String,
    /// Which daemon instance served it (absent on some notes).
    pub instance: Option<String>,
    /// What the exchange shows and the state behind it.
    pub description: Option<String>,
    /// The request, for ordinary exchanges.
    pub request: Option<HttpRequest>,
    /// The response, for ordinary exchanges.
    pub response: Option<HttpResponseGolden>,
    /// Bytes written to and read from the port, for exchanges that are not HTTP requests.
    pub raw_exchange: Option<RawExchange>,
    /// Text of a note entry.
    pub note: Option<String>,
}

/// A captured request.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpRequest {
    /// The method, for example `GET`.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Request headers in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body as text, when it was text.
    pub body_text: Option<String>,
    /// The body as hex, when it was binary.
    pub body_hex: Option<String>,
    /// A description of a large body that was not stored.
    pub body_summary: Option<BodySummary>,
}

/// Description of an elided request body: one byte repeated, ending with `last_bytes_text`.
#[derive(Debug, Clone, Deserialize)]
pub struct BodySummary {
    /// Total length in bytes.
    pub length: usize,
    /// The first bytes; the body repeats the first byte.
    pub first_bytes_text: String,
    /// The last bytes of the body.
    pub last_bytes_text: String,
}

impl HttpRequest {
    /// Rebuilds the request body (including elided large bodies).
    pub fn body(&self) -> Result<Vec<u8>> {
        if let Some(hex) = &self.body_hex {
            return decode_hex(hex);
        }
        if let Some(text) = &self.body_text {
            return Ok(text.as_bytes().to_vec());
        }
        if let Some(summary) = &self.body_summary {
            let fill = *summary
                .first_bytes_text
                .as_bytes()
                .first()
                .context("empty body pattern")?;
            let tail = summary.last_bytes_text.as_bytes();
            let mut body = vec![fill; summary.length.saturating_sub(tail.len())];
            body.extend_from_slice(tail);
            return Ok(body);
        }
        Ok(Vec::new())
    }
}

/// A captured response.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpResponseGolden {
    /// For example `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// The status code.
    pub status: u16,
    /// Headers in wire order and wire case.
    pub headers: Vec<(String, String)>,
    /// `content-length`, `chunked` or `none`.
    pub transfer: String,
    /// The body as text (absent for elided pprof bodies).
    pub body_text: Option<String>,
    /// A parsed copy of a JSON body.
    pub body_json: Option<serde_json::Value>,
    /// A description of an elided (runtime-specific) body.
    pub body_summary: Option<serde_json::Value>,
}

/// Bytes sent to a port and everything read back.
#[derive(Debug, Clone, Deserialize)]
pub struct RawExchange {
    /// The bytes written.
    pub send_hex: String,
    /// Everything read until the server closed.
    pub recv_hex: String,
}

/// Decodes lowercase or uppercase hex.
pub fn decode_hex(hex: &str) -> Result<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        bail!("odd-length hex string");
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair)?;
            u8::from_str_radix(text, 16).with_context(|| format!("bad hex byte {text:?}"))
        })
        .collect()
}

/// A short readable description of a frame, for mismatch reports.
pub fn describe(frame: &crate::wire::Frame) -> String {
    match frame.frame_type {
        0 => format!("response {:?}", render_text(&frame.data)),
        1 => format!("error {:?}", render_text(&frame.data)),
        2 => match crate::wire::Message::parse(&frame.data) {
            Some(m) => format!(
                "message(attempts={}, body={:?})",
                m.attempts,
                render_text(&m.body)
            ),
            None => "short message frame".to_owned(),
        },
        other => format!("frame of type {other} {:?}", render_text(&frame.data)),
    }
}

/// Renders bytes the way the golden files render `*_text` fields: printable ASCII and `\n \r \t`
/// kept, a backslash doubled, every other byte as `\xNN`.
pub fn render_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' | b'\r' | b'\t' | 0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(decode_hex("00ff4f4B").unwrap(), vec![0, 0xff, 0x4f, 0x4b]);
        assert!(decode_hex("abc").is_err());
        assert!(decode_hex("zz").is_err());
    }

    #[test]
    fn text_rendering_matches_the_readme_rules() {
        assert_eq!(render_text(b"a\\b\n\x00\x7f"), "a\\\\b\n\\x00\\x7f");
    }

    #[test]
    fn extra_flags_drop_the_common_ones_and_refuse_placeholders() {
        let flags: Vec<String> = [
            "--tcp-address=127.0.0.1:<tcp_port>",
            "--data-path=<fresh temp dir>",
            "--max-msg-size=100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            extra_nsqd_flags(&flags).unwrap(),
            vec!["--max-msg-size=100".to_string()]
        );
        let tls = vec!["--tls-cert=<self-signed>".to_string()];
        assert!(extra_nsqd_flags(&tls).is_err());
    }

    #[test]
    fn elided_bodies_are_rebuilt_with_their_tail() {
        let request = HttpRequest {
            method: "POST".into(),
            target: "/mpub".into(),
            headers: vec![],
            body_text: None,
            body_hex: None,
            body_summary: Some(BodySummary {
                length: 5,
                first_bytes_text: "www".into(),
                last_bytes_text: "ww\n".into(),
            }),
        };
        assert_eq!(request.body().unwrap(), b"wwww\n");
    }
}
